// Fuzz the reader of tokenizer model files (sentencepiece's ModelProto, as gtok train writes
// it and checkpoints embed it): any bytes give a tokenizer that encodes and decodes a short text
// exactly, or an Error naming the file; never a crash. The seed corpus in
// tests/fuzz/tokenizer_model/ holds small models of each type.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    gen::Tokenizer tok = gen::Tokenizer::from_bytes(bytes, "fuzz");
    const std::string text = "the quick brown fox, 42 times\n";
    const std::vector<uint32_t> ids = tok.encode(text);
    for (uint32_t id : ids)
      if (id >= static_cast<uint32_t>(tok.vocab_size())) std::abort();
    (void)tok.decode(ids);
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz", 0) != 0) std::abort();
  }
  return 0;
}
