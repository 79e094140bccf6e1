// Fuzz the PNG reader: any bytes give a well-formed 8-bit gray or RGB image that encodes and
// decodes back to itself, or an Error naming the file; never a crash, a leak or a libpng
// message on stderr. The text reader (gdiffuse info, ggan info) gets the same bytes, as a PNG
// and with a GIF's signature in front: its fields, or an Error naming the file; the fields
// written back with the image come back the same. The limits keep a lying header from asking for more memory than the fuzzer has.
#include <zlib.h>

#include <algorithm>
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
    const gen::TextFields text = {{"Software", "fuzz"}, {"gen:command", std::string(bytes, 0, std::min<size_t>(size, 64))}};
    const bool writable = text[1].second.find('\0') == std::string::npos;
    std::vector<uint8_t> png = gen::encode_png(image, writable ? text : gen::TextFields{});
    const std::string encoded(reinterpret_cast<const char*>(png.data()), png.size());
    gen::Image back = gen::decode_png(encoded, "again");
    if (!(back == image)) std::abort();
    if (writable && gen::image_text(encoded, "again") != text) std::abort();
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
  }
  for (const std::string& image : {bytes, "GIF89a" + bytes.substr(std::min<size_t>(size, 6))}) {
    try {
      (void)gen::image_text(image, "fuzz");
    } catch (const gen::Error& e) {
      if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
    }
  }
  return 0;
}
