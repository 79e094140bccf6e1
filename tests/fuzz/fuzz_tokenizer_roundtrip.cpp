// Fuzz the tokenizer's exactness: for any bytes x, decode(encode(x)) == x, with a BPE and a
// char model trained at start-up on a small corpus made here. The native encoders must give
// sentencepiece's own ids. Strict encoding either succeeds with the same ids or names the first
// ill-formed byte.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "text/tokenizer.h"

namespace {
std::vector<gen::Tokenizer>* models;
std::vector<gen::Tokenizer>* references;  // the same models, encoding through sentencepiece
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string corpus;
  const char* lines[] = {"the quick brown fox jumps over the lazy dog", "  to be, or not to be\tthat is",
                         "caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87", "unbelievable tokens\r"};
  for (int i = 0; i < 200; ++i) corpus += std::string(lines[i % 4]) + "\n";
  char path[] = "/tmp/gen_fuzz_corpus_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, corpus.data(), corpus.size()) != static_cast<ssize_t>(corpus.size())) std::abort();
  close(fd);
  models = new std::vector<gen::Tokenizer>();
  references = new std::vector<gen::Tokenizer>();
  for (const char* type : {"bpe", "char"}) {
    gen::TokenizerTrainOptions options;
    options.model_type = type;
    options.vocab_size = type[0] == 'b' ? 320 : 0;
    models->push_back(gen::Tokenizer::from_bytes(gen::tokenizer_train({path}, options), type));
    references->push_back(gen::Tokenizer::from_bytes(models->back().serialized(), type));
    references->back().use_sentencepiece_encoder();
  }
  unlink(path);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (size_t m = 0; m < models->size(); ++m) {
    const gen::Tokenizer& tok = (*models)[m];
    std::vector<uint32_t> ids = tok.encode(text);
    if (tok.decode(ids) != text) std::abort();
    if ((*references)[m].encode(text) != ids) std::abort();
    std::vector<uint32_t> strict_ids;
    try {
      tok.encode(text, strict_ids, gen::Tokenizer::Strictness{true, "fuzz", 0});
      if (strict_ids != ids || gen::utf8_first_invalid(text) != text.size()) std::abort();
    } catch (const gen::Error& e) {
      std::string expected = "fuzz: invalid UTF-8 at byte offset " + std::to_string(gen::utf8_first_invalid(text));
      if (e.what() != expected) std::abort();
    }
  }
  return 0;
}
