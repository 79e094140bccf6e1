#include "io/image.h"

#include <png.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"

namespace gen {
namespace {


// libpng reports errors by calling an error function that must not return; ours longjmps back
// to the setjmp in one of the png_* stage functions below. A longjmp that skips a C++ object
// with a destructor is undefined behaviour, so those stage functions and every callback hold
// only trivially destructible locals, and whatever owns memory (the png_struct guard, the pixel
// buffers) lives in their callers, which the longjmp never crosses.
struct PngIo {
  const unsigned char* data = nullptr;  // reading: the whole file
  size_t size = 0;
  size_t position = 0;
  std::vector<uint8_t>* out = nullptr;  // writing
  char message[256] = {};
  char warning[256] = {};  // the last one: it says what "Invalid IHDR data" means
};
static_assert(std::is_trivially_destructible_v<PngIo>);

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->message, sizeof io->message, "%s", message ? message : "unknown libpng error");
  png_longjmp(png, 1);
}

// Warnings (an ancillary chunk with a bad CRC, extra compressed data) are not worth a line on
// stderr in the middle of a tool's output: the image still decodes. The last one is kept
// because libpng explains a bad IHDR in warnings before its error.
void on_png_warning(png_structp png, png_const_charp message) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->warning, sizeof io->warning, "%s", message ? message : "");
}

void on_png_read(png_structp png, png_bytep out, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->position) png_error(png, "the file ends too soon (truncated)");
  std::memcpy(out, io->data + io->position, n);
  io->position += n;
}

void on_png_write(png_structp png, png_bytep data, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    io->out->insert(io->out->end(), data, data + n);
  } catch (const std::bad_alloc&) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");  // outside the handler: nothing left to destroy
}

void on_png_flush(png_structp) {}

struct PngHeader {
  png_uint_32 width, height;
  int channels;  // after the transforms: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int bit_depth;
  size_t rowbytes;
};

// Reads up to the image data and sets the transforms that bring any PNG to 8-bit samples.
bool png_stage_header(png_structp png, png_infop info, PngHeader* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &header->width, &header->height, &depth, &color, &interlace, nullptr, nullptr);
  png_set_expand(png);  // palette -> RGB, gray 1/2/4 -> 8 bits, tRNS -> an alpha channel
  if (depth == 16) png_set_scale_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header->channels = png_get_channels(png, info);
  header->bit_depth = png_get_bit_depth(png, info);
  header->rowbytes = png_get_rowbytes(png, info);
  return true;
}

// Decodes every row, then reads to IEND so that a damaged tail is noticed too.
bool png_stage_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

bool png_stage_write(png_structp png, png_infop info, png_uint_32 width, png_uint_32 height, int color,
                     png_bytepp rows, std::vector<png_text>& text) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, width, height, 8, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!text.empty()) png_set_text(png, info, text.data(), static_cast<int>(text.size()));
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

struct PngReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngWriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriteGuard() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// libpng's messages start with a capital ("Not enough image data"); ours follow a colon.
std::string lower_first(std::string text) {
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      !std::isupper(static_cast<unsigned char>(text[1])))
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string png_reason(const PngIo& io) {
  std::string text = lower_first(io.message);
  if (text == "invalid IHDR data" && io.warning[0]) text += " (" + lower_first(io.warning) + ")";
  return "not a valid PNG: " + text;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void check_size(const std::string& name, uint64_t width, uint64_t height, const PngLimits& limits) {
  if (width > static_cast<uint64_t>(limits.max_side) || height > static_cast<uint64_t>(limits.max_side))
    throw Error(name,
                fmt::format("image is {}x{}, over the limit of {} pixels a side", width, height, limits.max_side));
  if (width * height > static_cast<uint64_t>(limits.max_pixels))
    throw Error(name, fmt::format("image is {}x{} = {} pixels, over the limit of {}", width, height, width * height,
                                  limits.max_pixels));
}

}  // namespace

Image::Image(int width_, int height_, int channels_, uint8_t fill)
    : width(width_), height(height_), channels(channels_) {
  if (width < 1 || height < 1) throw Error("<image>", fmt::format("size {}x{} is not positive", width, height));
  if (channels != 1 && channels != 3) throw Error("<image>", fmt::format("{} channels (1 or 3 expected)", channels));
  if (int64_t{width} * height * channels > kMaxImageSamples)
    throw Error("<image>", fmt::format("{}x{}x{} is too large", width, height, channels));
  pixels.assign(size(), fill);
}

std::string describe(const Image& image) {
  const char* kind = image.channels == 1 ? "gray" : image.channels == 3 ? "RGB" : nullptr;
  if (kind) return fmt::format("{}x{} {}", image.width, image.height, kind);
  return fmt::format("{}x{} with {} channels", image.width, image.height, image.channels);
}

void check_image(const Image& image, const std::string& name) {
  if (image.width < 1 || image.height < 1)
    throw Error(name, fmt::format("image size {}x{} is not positive", image.width, image.height));
  if (image.channels != 1 && image.channels != 3)
    throw Error(name, fmt::format("image has {} channels (1 or 3 expected)", image.channels));
  if (int64_t{image.width} * image.height * image.channels > kMaxImageSamples)
    throw Error(name, fmt::format("image {} is too large", describe(image)));
  if (image.pixels.size() != image.size())
    throw Error(
        name, fmt::format("image {} holds {} bytes, {} expected", describe(image), image.pixels.size(), image.size()));
}

Image convert_channels(const Image& image, int channels) {
  check_image(image);
  if (channels != 1 && channels != 3) throw Error("<image>", fmt::format("{} channels (1 or 3 expected)", channels));
  if (channels == image.channels) return image;
  Image out(image.width, image.height, channels);
  const size_t n = static_cast<size_t>(image.width) * image.height;
  const uint8_t* in = image.pixels.data();
  uint8_t* o = out.pixels.data();
  if (channels == 3) {
    for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[i];
  } else {
    for (size_t i = 0; i < n; ++i)
      o[i] = static_cast<uint8_t>((299u * in[3 * i] + 587u * in[3 * i + 1] + 114u * in[3 * i + 2] + 500u) / 1000u);
  }
  return out;
}

Image read_png(const std::string& path, const PngLimits& limits) {
  return decode_png(read_file(path, limits.max_file_bytes), path, limits);
}

Image decode_png(std::string_view bytes, const std::string& name, const PngLimits& limits) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 8 || png_sig_cmp(data, 0, 8) != 0) throw Error(name, "not a PNG file (no PNG signature)");
  // The size in IHDR, checked before libpng allocates a row: a bomb fails here, not after
  // inflating gigabytes. libpng checks IHDR's CRC and the rest itself.
  if (bytes.size() >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0)
    check_size(name, be32(data + 16), be32(data + 20), limits);

  PngIo io;
  io.data = data;
  io.size = bytes.size();
  PngReadGuard guard;
  guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, on_png_error, on_png_warning);
  if (!guard.png) throw std::bad_alloc();
  guard.info = png_create_info_struct(guard.png);
  if (!guard.info) throw std::bad_alloc();
  png_set_read_fn(guard.png, &io, on_png_read);
  png_set_user_limits(guard.png, static_cast<png_uint_32>(limits.max_side), static_cast<png_uint_32>(limits.max_side));
  png_set_chunk_malloc_max(guard.png, limits.max_chunk_bytes);
  // Text, profiles and unknown chunks mean nothing here: skip them rather than inflate them.
  static const png_byte kSkipped[] = "iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf\0tIME\0pCAL\0sCAL\0hIST";
  png_set_keep_unknown_chunks(guard.png, PNG_HANDLE_CHUNK_NEVER, nullptr, 0);
  png_set_keep_unknown_chunks(guard.png, PNG_HANDLE_CHUNK_NEVER, kSkipped, sizeof kSkipped / 5);

  PngHeader header{};
  if (!png_stage_header(guard.png, guard.info, &header)) throw Error(name, png_reason(io));
  check_size(name, header.width, header.height, limits);  // no IHDR first: libpng failed above
  const int in_channels = header.channels;
  if (header.bit_depth != 8 || in_channels < 1 || in_channels > 4 ||
      header.rowbytes != static_cast<size_t>(header.width) * in_channels)
    throw Error(name, fmt::format("unexpected PNG layout after conversion ({} channels of {} bits)", in_channels,
                                  header.bit_depth));

  const bool alpha = in_channels == 2 || in_channels == 4;
  Image image(static_cast<int>(header.width), static_cast<int>(header.height), alpha ? in_channels - 1 : in_channels);
  std::vector<uint8_t> with_alpha;
  uint8_t* target = image.pixels.data();
  if (alpha) {
    with_alpha.resize(header.rowbytes * header.height);
    target = with_alpha.data();
  }
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 y = 0; y < header.height; ++y) rows[y] = target + y * header.rowbytes;
  if (!png_stage_pixels(guard.png, rows.data())) throw Error(name, png_reason(io));

  if (alpha) {
    const size_t n = static_cast<size_t>(header.width) * header.height;
    const int c = image.channels;
    const uint8_t* in = with_alpha.data();
    uint8_t* out = image.pixels.data();
    for (size_t i = 0; i < n; ++i, in += in_channels, out += c) {
      const unsigned a = in[c];
      for (int k = 0; k < c; ++k) out[k] = static_cast<uint8_t>((in[k] * a + 127u) / 255u);
    }
  }
  return image;
}

std::vector<uint8_t> encode_png(const Image& image, const TextFields& fields) {
  check_image(image);
  // tEXt: a key of 1 to 79 Latin-1 characters, a value without NUL.
  std::vector<png_text> text;
  for (const auto& [key, value] : fields) {
    if (key.empty() || key.size() > 79 || key.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
      throw Error("<image>", fmt::format("the text field '{}' cannot be a PNG tEXt chunk", key));
    png_text t{};
    t.compression = PNG_TEXT_COMPRESSION_NONE;
    t.key = const_cast<char*>(key.c_str());
    t.text = const_cast<char*>(value.c_str());
    t.text_length = value.size();
    text.push_back(t);
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(image.size() / 2 + 1024);
  PngIo io;
  io.out = &bytes;
  PngWriteGuard guard;
  guard.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, on_png_error, on_png_warning);
  if (!guard.png) throw std::bad_alloc();
  guard.info = png_create_info_struct(guard.png);
  if (!guard.info) throw std::bad_alloc();
  png_set_write_fn(guard.png, &io, on_png_write, on_png_flush);
  std::vector<png_bytep> rows(image.height);
  const size_t stride = static_cast<size_t>(image.width) * image.channels;
  for (int y = 0; y < image.height; ++y) rows[y] = const_cast<png_bytep>(image.pixels.data() + y * stride);
  const int color = image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
  if (!png_stage_write(guard.png, guard.info, static_cast<png_uint_32>(image.width),
                       static_cast<png_uint_32>(image.height), color, rows.data(), text))
    throw Error("<image>", fmt::format("cannot encode PNG: {}", io.message));
  return bytes;
}

void write_png(const std::string& path, const Image& image, const TextFields& extra) {
  check_image(image, path);
  TextFields text = provenance_text();
  text.insert(text.end(), extra.begin(), extra.end());
  std::vector<uint8_t> bytes = encode_png(image, text);
  Output out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

Image make_grid(const std::vector<Image>& tiles, int cols, int rows, int pad, uint8_t pad_value) {
  if (cols < 1 || rows < 1)
    throw Error("grid", fmt::format("{} columns and {} rows: both must be at least 1", cols, rows));
  if (pad < 0) throw Error("grid", fmt::format("padding {} is negative", pad));
  if (tiles.empty()) throw Error("grid", "no images to lay out");
  if (static_cast<int64_t>(tiles.size()) > int64_t{cols} * rows)
    throw Error("grid", fmt::format("{} images do not fit in {}x{} cells", tiles.size(), cols, rows));
  const Image& first = tiles[0];
  for (size_t i = 0; i < tiles.size(); ++i) {
    check_image(tiles[i], fmt::format("grid: image {}", i));
    if (tiles[i].width != first.width || tiles[i].height != first.height || tiles[i].channels != first.channels)
      throw Error("grid", fmt::format("image {} is {}, image 0 is {}: all must be alike", i, describe(tiles[i]),
                                      describe(first)));
  }
  const int64_t width = int64_t{cols} * (first.width + pad) + pad;
  const int64_t height = int64_t{rows} * (first.height + pad) + pad;
  if (width > INT_MAX || height > INT_MAX || width * height * first.channels > kMaxImageSamples)
    throw Error("grid", fmt::format("a grid of {}x{} pixels is too large", width, height));
  Image grid(static_cast<int>(width), static_cast<int>(height), first.channels, pad_value);
  const size_t tile_stride = static_cast<size_t>(first.width) * first.channels;
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int x0 = pad + static_cast<int>(i % cols) * (first.width + pad);
    const int y0 = pad + static_cast<int>(i / cols) * (first.height + pad);
    for (int y = 0; y < first.height; ++y)
      std::memcpy(&grid.at(x0, y0 + y), tiles[i].pixels.data() + y * tile_stride, tile_stride);
  }
  return grid;
}

void hwc_to_floats(const uint8_t* hwc, int height, int width, int channels, float* chw) {
  const size_t plane = static_cast<size_t>(height) * width;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < channels; ++c) chw[c * plane + i] = static_cast<float>(hwc[i * channels + c]) / 127.5f - 1.0f;
}

void floats_to_hwc(const float* chw, int height, int width, int channels, uint8_t* hwc) {
  const size_t plane = static_cast<size_t>(height) * width;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < channels; ++c) {
      const float v = chw[c * plane + i];
      // Written so that NaN fails both comparisons and lands on 0.0, mid gray.
      const float x = v > -1.0f ? (v < 1.0f ? v : 1.0f) : (v <= -1.0f ? -1.0f : 0.0f);
      hwc[i * channels + c] = static_cast<uint8_t>(static_cast<int>((x + 1.0f) * 127.5f + 0.5f));
    }
}

void to_floats(const Image& image, float* chw) {
  check_image(image);
  hwc_to_floats(image.pixels.data(), image.height, image.width, image.channels, chw);
}

std::vector<float> to_floats(const Image& image) {
  std::vector<float> out(image.size());
  to_floats(image, out.data());
  return out;
}

Image from_floats(const float* chw, int channels, int height, int width) {
  Image image(width, height, channels);
  floats_to_hwc(chw, height, width, channels, image.pixels.data());
  return image;
}

}  // namespace gen
