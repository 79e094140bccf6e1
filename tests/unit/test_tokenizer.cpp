#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "core/utf8.h"
#include "text/tokenizer.h"

using namespace gen;

namespace {

// A small corpus the test makes itself: made-up sentences over a fixed word list.
std::string make_corpus() {
  const char* words[] = {"the",   "quick",  "brown", "fox",    "jumps", "over", "lazy",  "dog",
                         "token", "tokens", "model", "learns", "where", "lines", "end",   "unbelievable",
                         "Hello", "World",  "caf\xC3\xA9", "na\xC3\xAFve", "over-the-top", "42", "3.14"};
  Rng rng(3);
  std::string text;
  for (int line = 0; line < 3000; ++line) {
    int n = 3 + static_cast<int>(rng.below(10));
    for (int w = 0; w < n; ++w) {
      if (w > 0) text += rng.below(10) == 0 ? "  " : " ";
      text += words[rng.below(sizeof words / sizeof *words)];
    }
    text += rng.below(4) == 0 ? ".\n" : "\n";
  }
  return text;
}

std::string write_temp(const std::string& contents) {
  char path[] = "/tmp/gen_corpus_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  Output out(path);
  out.write(contents);
  out.commit();
  return path;
}

const std::string& corpus_path() {
  static std::string path = write_temp(make_corpus());
  return path;
}

Tokenizer train(const std::string& type, int vocab = 0, bool byte_fallback = true) {
  TokenizerTrainOptions options;
  options.model_type = type;
  options.vocab_size = vocab;
  options.byte_fallback = byte_fallback;
  return Tokenizer::from_bytes(tokenizer_train({corpus_path()}, options), type + ".model");
}

const std::map<std::string, Tokenizer>& models() {
  static std::map<std::string, Tokenizer> all = [] {
    std::map<std::string, Tokenizer> m;
    m.emplace("bpe", train("bpe", 400));
    m.emplace("unigram", train("unigram", 320));
    m.emplace("char", train("char"));
    m.emplace("word", train("word", 280));
    return m;
  }();
  return all;
}

// Text that trips up a plain sentencepiece round trip.
std::vector<std::string> hard_texts() {
  std::vector<std::string> texts = {
      "",
      "\n",
      "\n\n\n",
      "the fox",
      " leading space",
      "   three leading spaces and trailing ones   ",
      "no newline at the end",
      "tabs\tand\t\tmore tabs\t",
      "runs     of      spaces\n   \n",
      "windows\r\nline\r\nends\r\n",
      "lone\rcarriage return",
      "\xE4\xB8\xAD\xE6\x96\x87 and \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",  // CJK
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 mixed",
      "literal \xE2\x96\x81 marks \xE2\x96\x81\xE2\x96\x81 and \xE2\x96\x81the",  // U+2581
      std::string("nul \0 byte\0", 11),
      "invalid \xFF\xFE utf-8 \xC3 here \xE4\xB8",
      "\xED\xA0\x80 surrogate, \xC0\x80 overlong",
      "caf\xC3\xA9 na\xC3\xAFve unbelievable over-the-top 42",
      "\x7f\x01\x02 controls\v\f",
  };
  // And random mixtures of the pieces above, seeded.
  Rng rng(11);
  const char* fragments[] = {" ", "  ", "\t", "\n", "\r\n", "the", "fox", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
                             "\xE2\x96\x81", "\xFF", "\xC3", "\xA9", "caf\xC3\xA9", "x", "\0", "unbelievable"};
  for (int t = 0; t < 200; ++t) {
    std::string text;
    int n = static_cast<int>(rng.below(30));
    for (int k = 0; k < n; ++k) {
      const char* f = fragments[rng.below(sizeof fragments / sizeof *fragments)];
      text += *f ? std::string(f) : std::string(1, '\0');
    }
    texts.push_back(text);
  }
  // Random bytes.
  for (int t = 0; t < 50; ++t) {
    std::string text(rng.below(64), '\0');
    for (auto& c : text) c = static_cast<char>(rng.below(256));
    texts.push_back(text);
  }
  return texts;
}

}  // namespace

TEST_CASE("decode(encode(x)) == x byte for byte, for every model type") {
  for (const auto& [type, tok] : models()) {
    CAPTURE(type);
    CHECK(tok.exact());
    for (const auto& text : hard_texts()) {
      CAPTURE(text);
      CHECK(tok.decode(tok.encode(text)) == text);
    }
  }
}

TEST_CASE("the newline is a token, and encoding is line by line") {
  for (const auto& [type, tok] : models()) {
    CAPTURE(type);
    REQUIRE(tok.newline_id() >= 0);
    CHECK(tok.piece(static_cast<uint32_t>(tok.newline_id())) == "\n");
    std::vector<uint32_t> ids = tok.encode("the fox\n\nthe dog\n");
    CHECK(std::count(ids.begin(), ids.end(), static_cast<uint32_t>(tok.newline_id())) == 3);
    std::vector<uint32_t> first = tok.encode("the fox\n"), second = tok.encode("the dog\n");
    std::vector<uint32_t> joined = first;
    joined.push_back(static_cast<uint32_t>(tok.newline_id()));
    joined.insert(joined.end(), second.begin(), second.end());
    CHECK(tok.encode("the fox\n\nthe dog\n") == joined);
  }
}

TEST_CASE("the char model gives one token per character of its corpus") {
  const Tokenizer& tok = models().at("char");
  std::string corpus = read_file(corpus_path());
  CHECK(tok.encode(corpus).size() == utf8_count_chars(corpus));
  // Characters it never saw fall back to their UTF-8 bytes.
  CHECK(tok.encode("\xE4\xB8\xAD").size() == 3);
  CHECK(tok.is_byte(tok.encode("\xE4\xB8\xAD")[0]));
}

TEST_CASE("subword models compress their own corpus") {
  std::string corpus = read_file(corpus_path());
  size_t chars = utf8_count_chars(corpus);
  CHECK(models().at("bpe").encode(corpus).size() * 3 < chars);
  CHECK(models().at("unigram").encode(corpus).size() * 3 < chars);
  CHECK(models().at("word").encode(corpus).size() * 2 < chars);
  std::vector<uint32_t> ids = models().at("bpe").encode("unbelievable");
  CHECK(ids.size() <= 2);
}

TEST_CASE("training is deterministic for a seed") {
  TokenizerTrainOptions options;
  options.model_type = "unigram";
  options.vocab_size = 320;
  options.threads = 2;
  std::string a = tokenizer_train({corpus_path()}, options);
  std::string b = tokenizer_train({corpus_path()}, options);
  CHECK(a == b);
}

TEST_CASE("strict encoding rejects invalid UTF-8 with its byte offset") {
  const Tokenizer& tok = models().at("bpe");
  std::vector<uint32_t> ids;
  Tokenizer::Strictness strict{true, "in.txt", 100};
  CHECK_THROWS_WITH_AS(tok.encode("the fox\nok \xFF", ids, strict), "in.txt: invalid UTF-8 at byte offset 111", Error);
  ids.clear();
  CHECK_NOTHROW(tok.encode("the \xE4\xB8\xAD fox\n", ids, strict));
}

TEST_CASE("a model without byte fallback uses <unk>, and strict encoding names the character") {
  Tokenizer tok = train("bpe", 200, false);
  CHECK_FALSE(tok.has_byte_fallback());
  CHECK_FALSE(tok.exact());
  std::vector<uint32_t> ids = tok.encode("the \xE4\xB8\xAD");
  CHECK(std::string(tok.piece_type(ids.back())) == "unknown");
  CHECK(tok.decode(ids) == "the  \xE2\x81\x87 ");
  Tokenizer::Strictness strict{true, "in.txt", 0};
  CHECK_THROWS_WITH_AS(tok.encode("the fox \xE4\xB8\xAD", ids, strict),
                       "in.txt: byte offset 8: '\xE4\xB8\xAD' is not in the vocabulary of bpe.model (it has no byte "
                       "fallback)",
                       Error);
}

TEST_CASE("training and loading errors are clear") {
  TokenizerTrainOptions options;
  options.vocab_size = 100000;
  CHECK_THROWS_WITH_AS(tokenizer_train({corpus_path()}, options),
                       doctest::Contains("vocab size 100000 cannot be reached for a bpe model on this text"), Error);
  std::string empty = write_temp("");
  CHECK_THROWS_WITH_AS(tokenizer_train({empty}, TokenizerTrainOptions()),
                       (empty + ": no text to train on (empty input)").c_str(), Error);
  CHECK_THROWS_WITH_AS(Tokenizer::from_bytes("", "x.model"), "x.model: not a tokenizer model (empty file)", Error);
  CHECK_THROWS_WITH_AS(Tokenizer::from_bytes("this is not a model", "x.model"),
                       doctest::Contains("x.model: not a tokenizer model"), Error);
  CHECK_THROWS_AS(Tokenizer::load("/nonexistent.model"), Error);
  unlink(empty.c_str());
}

TEST_CASE("the native BPE and char encoders give exactly sentencepiece's ids") {
  std::vector<std::string> texts = hard_texts();
  texts.push_back(read_file(corpus_path()));
  for (const char* type : {"bpe", "char"}) {
    CAPTURE(type);
    const Tokenizer& native = models().at(type);
    CHECK(std::string(native.encoder_name()) == std::string(type) + " (native)");
    Tokenizer reference = Tokenizer::from_bytes(native.serialized(), "reference");
    reference.use_sentencepiece_encoder();
    for (const auto& text : texts) {
      CAPTURE(text.substr(0, 100));
      CHECK(native.encode(text) == reference.encode(text));
    }
  }
  // Without byte fallback too (unknown characters, merged runs of <unk>).
  Tokenizer native = train("bpe", 200, false);
  Tokenizer reference = Tokenizer::from_bytes(native.serialized(), "reference");
  reference.use_sentencepiece_encoder();
  for (const auto& text : texts) CHECK(native.encode(text) == reference.encode(text));
  CHECK(std::string(models().at("unigram").encoder_name()) == "sentencepiece");
}

TEST_CASE("a word model without the space piece still round-trips (spaces become <0x20>)") {
  std::string corpus;
  for (int i = 0; i < 500; ++i) corpus += "alpha beta gamma delta alpha beta\n";  // single spaces only
  std::string path = write_temp(corpus);
  TokenizerTrainOptions options;
  options.model_type = "word";
  options.vocab_size = 264;
  Tokenizer tok = Tokenizer::from_bytes(tokenizer_train({path}, options), "word.model");
  bool has_space_piece = false;
  for (uint32_t id = 0; id < tok.vocab_size(); ++id) has_space_piece |= tok.piece(id) == "\xE2\x96\x81";
  CHECK_FALSE(has_space_piece);
  CHECK(tok.exact());
  for (const auto& text : hard_texts()) CHECK(tok.decode(tok.encode(text)) == text);
  unlink(path.c_str());
}
