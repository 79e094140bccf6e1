#include <doctest/doctest.h>

#include <unistd.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/token_stream.h"

using namespace gen;

namespace {
std::vector<uint32_t> read_ids(std::string_view bytes) {
  MemorySource source(bytes, "ids");
  TokenReader reader(source);
  std::vector<uint32_t> ids;
  for (uint32_t id; reader.next(id);) ids.push_back(id);
  return ids;
}

std::string error_of(std::string_view bytes) {
  try {
    read_ids(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string format_ids(TokenFormat format, const std::vector<uint32_t>& ids, int64_t newline) {
  std::string out;
  TokenFormatter formatter(format, newline);
  formatter.append(out, ids);
  formatter.finish(out);
  return out;
}
}  // namespace

TEST_CASE("text ids: any ASCII whitespace separates, line breaks carry no meaning") {
  CHECK(read_ids("1 2\n3\t4\r\n  5\v6\f7") == std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7});
  CHECK(read_ids("") == std::vector<uint32_t>{});
  CHECK(read_ids(" \n\n ") == std::vector<uint32_t>{});
  CHECK(read_ids("0007 4294967295\n") == std::vector<uint32_t>{7, 4294967295u});
}

TEST_CASE("text ids: errors name line and column") {
  CHECK(error_of("1 2\n3 abc 4") == "ids:2:3: 'abc' is not a token id");
  CHECK(error_of("5\n\n  -3") == "ids:3:3: negative token id -3");
  CHECK(error_of("4294967296") == "ids:1:1: token id 4294967296 is too large");
  CHECK(error_of("1 99999999999999999999999999") == "ids:1:3: token id 999999999999999999999999... is too large");
  CHECK(error_of("1 +2") == "ids:1:3: '+2' is not a token id");
  CHECK(error_of("1,2") == "ids:1:1: '1,2' is not a token id");
  CHECK(error_of(std::string("7 \x01\xff", 4)) == "ids:1:3: '\\x01\\xff' is not a token id");
  CHECK(error_of("1 -") == "ids:1:3: '-' is not a token id");
  CHECK(error_of("abcdefghijklmnopqrstuvwxyz") == "ids:1:1: 'abcdefghijklmnopqrstuvwx...' is not a token id");
}

TEST_CASE("text writer breaks after newline tokens and every 32 ids") {
  CHECK(format_ids(TokenFormat::text, {5, 6, 3, 7}, 3) == "5 6 3\n7\n");
  CHECK(format_ids(TokenFormat::text, {}, 3) == "");
  std::vector<uint32_t> many(33, 1);
  std::string text = format_ids(TokenFormat::text, many, 3);
  CHECK(text.find('\n') == 32 * 2 - 1);
  CHECK(read_ids(text) == many);
}

TEST_CASE("binary ids round trip, and malformed binary streams are rejected") {
  std::vector<uint32_t> ids = {0, 1, 65535, 4294967295u, 3};
  std::string out;
  TokenFormatter formatter(TokenFormat::binary, 3);
  formatter.append(out, ids);
  std::string stream = std::string("GIDS\x01\x00\x00\x00", 8) + out;
  CHECK(read_ids(stream) == ids);
  CHECK(read_ids(std::string("GIDS\x01\x00\x00\x00", 8)).empty());
  CHECK(error_of(stream + "xy") == "ids: truncated binary token stream: 2 stray bytes after id #5");
  CHECK(error_of(std::string("GIDS\x02\x00\x00\x00", 8)) ==
        "ids: unsupported binary token stream version 2 (this gen reads 1)");
  CHECK(error_of("GIDS\x01") == "ids: truncated binary token stream: no version after the magic");
}

TEST_CASE("TokenWriter writes the binary header only when there are ids") {
  char path[] = "/tmp/gen_test_ids_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    Output out(path);
    TokenWriter writer(out, TokenFormat::binary, 3);
    writer.finish();
    out.commit();
  }
  CHECK(read_file(path).empty());
  {
    Output out(path);
    TokenWriter writer(out, TokenFormat::binary, 3);
    writer.write(9);
    writer.finish();
    out.commit();
  }
  CHECK(read_ids(read_file(path)) == std::vector<uint32_t>{9});
  unlink(path);
}

TEST_CASE("TokenReader checks ids against a vocabulary when given one") {
  for (std::string bytes : {std::string("1 2\n3 7"), std::string("GIDS\x01\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x00", 16)}) {
    MemorySource source(bytes, "ids");
    TokenReader reader(source);
    reader.set_vocabulary(5, "the vocabulary of tok.model");
    std::string error;
    try {
      for (uint32_t id; reader.next(id);) {
      }
    } catch (const Error& e) {
      error = e.what();
    }
    CHECK(error.find("token id 7 is outside the vocabulary of tok.model (0..4)") != std::string::npos);
  }
}
