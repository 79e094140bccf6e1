// 8-bit images: PNG in and out, grids of samples, and the float form that models work on.
//
// An Image is row-major with its channels interleaved: pixel (x, y) channel c is
// pixels[(y * width + x) * channels + c]. channels is 1 (gray) or 3 (RGB); there is no alpha.
//
// read_png accepts every PNG colour type and bit depth and brings it to that form:
//   gray 1/2/4 bits   expanded to 8 bits (0..255 spread evenly)
//   16-bit samples    scaled to 8 bits with rounding (v * 255 / 65535), not truncated
//   palette           looked up: RGB
//   alpha, tRNS       composited over black (out = v * a / 255, rounded): a transparent pixel
//                     becomes black, which is the background of Fashion-MNIST and of our grids;
//                     stripping alpha instead would expose whatever colour sits under it
//   interlaced        de-interlaced
// Gamma, colour profiles and text chunks are ignored: samples are taken as they are stored.
// The reader checks the size in the header against PngLimits before it allocates or inflates
// anything, so a huge image or a decompression bomb fails at once. Corrupt or truncated data
// (a CRC error, too little image data, a missing IEND) is an Error naming the file; libpng's
// warnings are dropped, never printed.
//
//   gen::Image img = gen::read_png("shirt.png");          // or "-" for stdin
//   std::vector<float> x = gen::to_floats(img);            // CHW in [-1, 1]
//   gen::write_png("out.png", gen::from_floats(x.data(), 1, 28, 28));
//   gen::write_png("grid.png", gen::make_grid(samples, 8, 8));
#pragma once

#include "core/provenance.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gen {

// The most samples (width x height x channels) an image may hold.
inline constexpr int64_t kMaxImageSamples = int64_t{1} << 31;

struct Image {
  int width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;

  Image() = default;
  // width x height x channels, every sample set to fill. Throws Error("<image>", ...) on a
  // non-positive size, channels other than 1 or 3, or more than 2^31 samples.
  Image(int width, int height, int channels, uint8_t fill = 0);

  size_t size() const { return static_cast<size_t>(width) * height * channels; }
  uint8_t& at(int x, int y, int c = 0) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  uint8_t at(int x, int y, int c = 0) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  bool operator==(const Image&) const = default;
};

// "28x28 gray", "64x48 RGB": for messages.
std::string describe(const Image& image);

// Throws Error(name, reason) unless the image is well formed: positive size, 1 or 3 channels,
// pixels.size() == width * height * channels.
void check_image(const Image& image, const std::string& name = "<image>");

// Gray <-> RGB. To gray: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), rounded. To RGB: the
// gray value in all three channels. Converting to the channel count an image has is a copy.
Image convert_channels(const Image& image, int channels);

struct PngLimits {
  int max_side = 16384;                      // width and height each
  int64_t max_pixels = int64_t{1} << 25;     // width * height (32 Mpx: about 100 MB as RGB)
  size_t max_file_bytes = size_t{1} << 28;   // the compressed file
  size_t max_chunk_bytes = size_t{8} << 20;  // any one ancillary chunk libpng keeps in memory
};

Image read_png(const std::string& path, const PngLimits& limits = {});
// The PNG in bytes; name is what errors say (the file name, or "-").
Image decode_png(std::string_view bytes, const std::string& name, const PngLimits& limits = {});

// 8-bit gray or RGB, non-interlaced, zlib's default compression, with the text fields as tEXt
// chunks before the pixels. The same image and text always give the same bytes (no time
// stamp). write_png goes through Output (atomic, "-" is stdout) and writes the run's provenance
// (core/provenance.h) and then `extra` as the text.
std::vector<uint8_t> encode_png(const Image& image, const TextFields& text = {});
void write_png(const std::string& path, const Image& image, const TextFields& extra = {});

// Tiles of one size and channel count laid out row by row into cols x rows cells, with pad
// pixels of pad_value between cells and around the border (as torchvision's make_grid). Fewer
// tiles than cells leaves the last cells pad_value. The default mid gray shows up against
// black (Fashion-MNIST) and white backgrounds alike. Throws Error("grid", reason) when there
// are no tiles, too many, tiles that differ, cols or rows < 1, pad < 0, or a result too large.
Image make_grid(const std::vector<Image>& tiles, int cols, int rows, int pad = 2, uint8_t pad_value = 128);

// Models see images as float CHW (channel planes, each row-major) in [-1, 1]: v = p / 127.5 - 1.
// Back: p = round((v + 1) * 127.5), clamped to 0..255; NaN becomes 128. Every byte survives
// the round trip exactly.
void hwc_to_floats(const uint8_t* hwc, int height, int width, int channels, float* chw);
void floats_to_hwc(const float* chw, int height, int width, int channels, uint8_t* hwc);
void to_floats(const Image& image, float* chw);  // image.size() floats
std::vector<float> to_floats(const Image& image);
Image from_floats(const float* chw, int channels, int height, int width);

}  // namespace gen
