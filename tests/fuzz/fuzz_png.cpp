// Fuzz the PNG reader: any bytes give a well-formed 8-bit gray or RGB image that encodes and
// decodes back to itself, or an Error naming the file; never a crash, a leak or a libpng
// message on stderr. The limits keep a lying header from asking for more memory than the fuzzer has.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "io/image.h"

namespace {
uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Most mutations would only break a CRC and stop at the first chunk; half the time the CRCs are
// made right again so that the fuzzer reaches the decoder with damaged contents.
void fix_crcs(std::string& bytes) {
  auto* p = reinterpret_cast<unsigned char*>(bytes.data());
  for (size_t at = 8; at + 12 <= bytes.size();) {
    uint64_t length = be32(p + at);
    if (length > bytes.size() - at - 12) break;
    uint32_t crc = static_cast<uint32_t>(crc32(0, p + at + 4, static_cast<uInt>(length + 4)));
    for (int k = 0; k < 4; ++k) p[at + 8 + length + k] = static_cast<unsigned char>(crc >> (24 - 8 * k));
    at += 12 + length;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size > 0 && (data[size - 1] & 1)) fix_crcs(bytes);
  gen::PngLimits limits;
  limits.max_side = 4096;
  limits.max_pixels = 1 << 20;
  try {
    gen::Image image = gen::decode_png(bytes, "fuzz", limits);
    gen::check_image(image);  // throws only if the reader broke its promise
    std::vector<uint8_t> png = gen::encode_png(image);
    gen::Image back = gen::decode_png(std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "again");
    if (!(back == image)) std::abort();
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
  }
  return 0;
}
