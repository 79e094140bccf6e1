#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"

using namespace gen;

namespace {
std::string file_with_header(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + data;
}

std::string parse_error(const std::string& bytes) {
  try {
    Safetensors::parse(bytes, "x.st");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("safetensors: what the writer writes, the reader reads back") {
  char path[] = "/tmp/gen_st_XXXXXX";
  close(mkstemp(path));
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::string tokenizer = "serialized model bytes";
  {
    SafetensorsWriter w;
    w.metadata["format"] = "gen-test";
    w.metadata["config"] = R"({"layers": 4})";
    w.add_f32("a", {2, 3}, a.data());
    w.add("tokenizer", Dtype::U8, {static_cast<int64_t>(tokenizer.size())}, tokenizer);
    w.add("empty", Dtype::F32, {0}, "");
    Output out(path);
    w.write(out);
    out.commit();
  }
  std::string raw = read_file(path);
  uint64_t header_length;
  std::memcpy(&header_length, raw.data(), 8);
  CHECK(header_length % 8 == 0);
  Safetensors st = Safetensors::read(path);
  CHECK(st.meta("format") == "gen-test");
  CHECK(st.meta("config") == R"({"layers": 4})");
  std::vector<float> back(6);
  st.read_f32("a", {2, 3}, back.data());
  CHECK(back == a);
  CHECK(st.bytes(st.get("tokenizer")) == tokenizer);
  CHECK(st.get("empty").count() == 0);
  CHECK_THROWS_WITH_AS(st.read_f32("a", {3, 2}, back.data()),
                       (std::string(path) + ": tensor 'a' has shape [2, 3], expected [3, 2]").c_str(), Error);
  CHECK_THROWS_WITH_AS(st.get("b"), (std::string(path) + ": no tensor 'b'").c_str(), Error);
  CHECK_THROWS_WITH_AS(st.meta("step"), (std::string(path) + ": no metadata 'step'").c_str(), Error);

  // Cut short in place while open (the same file, not a new one renamed over it): the tensors
  // read later say so, in one line naming the file; never SIGBUS, as a mapping would.
  REQUIRE(truncate(path, static_cast<off_t>(raw.size() - 4)) == 0);
  CHECK_THROWS_WITH_AS(st.bytes(st.get("tokenizer")),
                       doctest::Contains((std::string(path) + ": changed while being read: it ends at byte").c_str()), Error);
  CHECK(st.get("empty").count() == 0);
  unlink(path);
}

TEST_CASE("safetensors: the reader rejects every kind of damage before touching data") {
  std::string eight(8, 'x');
  CHECK(parse_error("abc") == "x.st: not a valid safetensors file: 3 bytes is too short for the header length");
  CHECK(parse_error(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)).find("is over the limit") != std::string::npos);
  CHECK(parse_error(file_with_header("{}", "").substr(0, 9)).find("runs past the end of the file") != std::string::npos);
  CHECK(parse_error(file_with_header("{not json", "")).find("the header is not JSON") != std::string::npos);
  CHECK(parse_error(file_with_header("[1,2]", "")) == "x.st: not a valid safetensors file: the header is not a JSON object");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a' appears twice");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': unsupported dtype 'Q4'");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': a dimension is not a non-negative integer");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': shape [3] of F32 needs 12 bytes, data_offsets give 8");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': data_offsets [0, 16] are outside the data section of 8 bytes");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a' does not start where the one before it ends");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight)) ==
        "x.st: not a valid safetensors file: 4 bytes after the last tensor");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': shape too large");
  CHECK(parse_error(file_with_header(R"({"__metadata__":{"k":5}})", "")) ==
        "x.st: not a valid safetensors file: metadata 'k' is not a string");
  CHECK(parse_error(file_with_header(R"({"a":{"dtype":"F32","shape":[2]}})", eight)) ==
        "x.st: not a valid safetensors file: tensor 'a': no data_offsets [begin, end]");
}
