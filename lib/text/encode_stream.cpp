#include "text/encode_stream.h"

#include <algorithm>

#include "core/signals.h"
#include "core/threads.h"

namespace gen {
namespace {
constexpr size_t kBlockBytes = size_t{4} << 20;
constexpr size_t kMinPartBytes = size_t{64} << 10;
}  // namespace

void encode_stream(const Tokenizer& tok, ByteSource& input, const EncodeStreamOptions& options,
                   const std::function<void(EncodedPart&)>& consume) {
  std::string buffer;
  size_t used = 0;
  uint64_t offset = 0;  // of buffer[0] in the input
  bool at_end = false;
  std::vector<EncodedPart> parts;
  while (!at_end || used > 0) {
    // Fill the buffer to a block that ends at a line break (or at the end of input).
    size_t cut = std::string::npos;
    while (!at_end) {
      if (used >= kBlockBytes && (cut = buffer.rfind('\n', used - 1)) != std::string::npos) break;
      // Grow by doubling: a small input never pays for a large buffer.
      if (buffer.size() < used + (1 << 16)) buffer.resize(std::max<size_t>(buffer.size() * 2, 1 << 17));
      size_t got = input.read(buffer.data() + used, buffer.size() - used);
      used += got;
      at_end = got == 0;
    }
    size_t block = at_end ? used : cut + 1;
    if (block == 0) break;
    std::string_view text(buffer.data(), block);

    // Parts of at least kMinPartBytes, a few per thread, each ending at a line break.
    size_t wanted = std::clamp<size_t>(block / kMinPartBytes, 1, static_cast<size_t>(std::max(1, options.threads)) * 4);
    parts.clear();
    for (size_t begin = 0; begin < block;) {
      size_t end = block;
      if (parts.size() + 1 < wanted) {
        size_t target = begin + (block - begin) / (wanted - parts.size());
        size_t line_end = text.find('\n', target);
        if (line_end != std::string_view::npos) end = line_end + 1;
      }
      EncodedPart part;
      part.text = text.substr(begin, end - begin);
      part.offset = offset + begin;
      parts.push_back(std::move(part));
      begin = end;
    }
    parallel_for(parts.size(), options.threads, [&](size_t i) {
      EncodedPart& part = parts[i];
      Tokenizer::Strictness strictness{options.strict, input.name(), part.offset};
      part.ids.reserve(part.text.size() / 3);
      tok.encode(part.text, part.ids, strictness);
      if (options.format) options.format(part);
    });
    for (auto& part : parts) consume(part);
    check_interrupted();

    offset += block;
    if (options.progress) options.progress(offset);
    buffer.erase(0, block);
    used -= block;
  }
}

}  // namespace gen
