// Encoding whole streams quickly: the input is cut into blocks that end at a line break, each
// block into parts that the threads encode side by side, and the parts' results are handed
// back in input order. Used by `gtok encode` and `gtok count`.
//
//   gen::encode_stream(tok, input, options, [&](const gen::EncodedPart& part) { ... });
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/files.h"
#include "text/tokenizer.h"

namespace gen {

struct EncodedPart {
  std::string_view text;      // the input bytes of this part (whole lines, but for the very end)
  uint64_t offset = 0;        // byte offset of text in the input
  std::vector<uint32_t> ids;  // their token ids
  std::string formatted;      // what `format` made of them, if given
};

struct EncodeStreamOptions {
  bool strict = false;
  int threads = 1;
  // Runs on the worker thread after a part is encoded (formatting output in parallel).
  std::function<void(EncodedPart&)> format;
  // Called with the number of input bytes done so far (progress).
  std::function<void(uint64_t)> progress;
};

// Encodes all of `input`; `consume` gets every part, in order, on the calling thread.
void encode_stream(const Tokenizer& tok, ByteSource& input, const EncodeStreamOptions& options,
                   const std::function<void(EncodedPart&)>& consume);

}  // namespace gen
