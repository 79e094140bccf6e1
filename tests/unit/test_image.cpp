#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/image.h"
#include "io/image_files.h"

using namespace gen;

namespace {

// PNGs are made byte by byte here, not with libpng, so that the tests control every field and
// can build what libpng's writer never would (bad CRCs, lying headers, truncations).
std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string chunk(const std::string& type, const std::string& data, bool good_crc = true) {
  std::string body = type + data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  if (!good_crc) crc ^= 1;
  return be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
}

std::string zlib(const std::string& raw) {
  uLongf size = compressBound(raw.size());
  std::string out(size, '\0');
  REQUIRE(compress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                   raw.size()) == Z_OK);
  out.resize(size);
  return out;
}

const std::string kSignature = "\x89PNG\r\n\x1a\n";

std::string ihdr(uint32_t width, uint32_t height, int depth, int color, int interlace = 0) {
  return chunk("IHDR",
               be32(width) + be32(height) +
                   std::string{static_cast<char>(depth), static_cast<char>(color), 0, 0, static_cast<char>(interlace)});
}

// rows: each row's packed samples; a filter byte 0 goes in front of each.
std::string make_png(uint32_t width, int depth, int color, const std::vector<std::string>& rows,
                     const std::string& before_idat = "") {
  std::string raw;
  for (const auto& row : rows) raw += '\0' + row;
  return kSignature + ihdr(width, static_cast<uint32_t>(rows.size()), depth, color) + before_idat +
         chunk("IDAT", zlib(raw)) + chunk("IEND", "");
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

Image decode(const std::string& png, const PngLimits& limits = {}) { return decode_png(png, "t.png", limits); }

std::string decode_error(const std::string& png, const PngLimits& limits = {}) {
  try {
    decode_png(png, "t.png", limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

Image random_image(int width, int height, int channels, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image(width, height, channels);
  for (auto& p : image.pixels) p = static_cast<uint8_t>(rng());
  return image;
}

std::string make_temp_dir() {
  char dir[] = "/tmp/gen_image_XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return dir;
}

// Whatever is written to fd 2 while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char path[] = "/tmp/gen_stderr_XXXXXX";
    int fd = mkstemp(path);
    path_ = path;
    saved_ = dup(2);
    dup2(fd, 2);
    close(fd);
  }
  std::string finish() {
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::string text = read_file(path_);
    unlink(path_.c_str());
    return text;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("png: gray and RGB images survive encode and decode, odd sizes and 1x1 included") {
  for (int channels : {1, 3})
    for (auto [w, h] : {std::pair{1, 1}, {3, 5}, {17, 2}, {1, 9}, {31, 29}}) {
      Image image = random_image(w, h, channels, static_cast<uint32_t>(w * 100 + h + channels));
      std::vector<uint8_t> png = encode_png(image);
      Image back = decode_png(std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "x.png");
      CHECK(back == image);
      CHECK(encode_png(back) == png);  // deterministic
    }
  std::string dir = make_temp_dir();
  Image image = random_image(13, 7, 3, 1);
  write_png(dir + "/a.png", image);
  CHECK(read_png(dir + "/a.png") == image);
  write_png(dir + "/a.png", convert_channels(image, 1));  // replaced in place
  CHECK(read_png(dir + "/a.png").channels == 1);

  // "-" reads stdin.
  int saved = dup(0);
  int fd = open((dir + "/a.png").c_str(), O_RDONLY);
  dup2(fd, 0);
  close(fd);
  Image from_stdin = read_png("-");
  dup2(saved, 0);
  close(saved);
  CHECK(from_stdin == convert_channels(image, 1));
  CHECK_THROWS_WITH_AS(read_png(dir + "/a.png", PngLimits{.max_file_bytes = 10}),
                       (dir + "/a.png: larger than the limit of 10 bytes").c_str(), Error);
  unlink((dir + "/a.png").c_str());
  rmdir(dir.c_str());

  CHECK_THROWS_AS(encode_png(Image()), Error);
  Image broken(2, 2, 1);
  broken.pixels.pop_back();
  CHECK_THROWS_WITH_AS(encode_png(broken), "<image>: image 2x2 gray holds 3 bytes, 4 expected", Error);
  CHECK_THROWS_WITH_AS(write_png("/tmp/never.png", broken), "/tmp/never.png: image 2x2 gray holds 3 bytes, 4 expected",
                       Error);
  CHECK(access("/tmp/never.png", F_OK) != 0);
}

TEST_CASE("png: low-bit gray expands to 0..255, 16-bit scales to 8 bits") {
  // 1 bit: 10 pixels in 2 bytes, 1 0 1 1 0 0 0 0 | 1 1
  Image g1 = decode(make_png(10, 1, 0, {bytes({0xB0, 0xC0})}));
  CHECK(g1.channels == 1);
  CHECK(g1.pixels == std::vector<uint8_t>{255, 0, 255, 255, 0, 0, 0, 0, 255, 255});
  Image g2 = decode(make_png(4, 2, 0, {bytes({0x1B})}));  // 0 1 2 3
  CHECK(g2.pixels == std::vector<uint8_t>{0, 85, 170, 255});
  Image g4 = decode(make_png(3, 4, 0, {bytes({0x0F, 0x80})}));  // 0 15 8
  CHECK(g4.pixels == std::vector<uint8_t>{0, 255, 136});

  Image g16 = decode(make_png(4, 16, 0, {bytes({0, 0, 0xFF, 0xFF, 0x80, 0x80, 0x01, 0x01})}));
  CHECK(g16.pixels == std::vector<uint8_t>{0, 255, 128, 1});
  Image rgb16 = decode(make_png(1, 16, 2, {bytes({0x0A, 0x0A, 0x14, 0x14, 0xFE, 0xFE})}));
  CHECK(rgb16.channels == 3);
  CHECK(rgb16.pixels == std::vector<uint8_t>{10, 20, 254});
}

TEST_CASE("png: palettes become RGB; alpha and tRNS are composited over black") {
  std::string plte = chunk("PLTE", bytes({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}));
  Image p8 = decode(make_png(4, 8, 3, {bytes({3, 2, 1, 0})}, plte));
  CHECK(p8.channels == 3);
  CHECK(p8.pixels == std::vector<uint8_t>{10, 20, 30, 0, 0, 255, 0, 255, 0, 255, 0, 0});
  Image p2 = decode(make_png(3, 2, 3, {bytes({0x1B})}, plte));  // 0 1 2 (3 is padding)
  CHECK(p2.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255});
  // tRNS: entry 0 transparent, entry 1 half, entries 2 and 3 opaque.
  Image pt = decode(make_png(3, 8, 3, {bytes({0, 1, 3})}, plte + chunk("tRNS", bytes({0, 128}))));
  CHECK(pt.channels == 3);
  CHECK(pt.pixels == std::vector<uint8_t>{0, 0, 0, 0, 128, 0, 10, 20, 30});

  Image ga = decode(make_png(3, 8, 4, {bytes({200, 255, 200, 0, 200, 128})}));
  CHECK(ga.channels == 1);
  CHECK(ga.pixels == std::vector<uint8_t>{200, 0, 100});  // 200 * 128 / 255 = 100.4
  Image ga16 = decode(make_png(1, 16, 4, {bytes({0xFF, 0xFF, 0x80, 0x80})}));
  CHECK(ga16.pixels == std::vector<uint8_t>{128});
  Image rgba = decode(make_png(2, 8, 6, {bytes({10, 20, 30, 255, 100, 200, 250, 51})}));
  CHECK(rgba.channels == 3);
  CHECK(rgba.pixels == std::vector<uint8_t>{10, 20, 30, 20, 40, 50});
  // A gray tRNS names one transparent value.
  Image gt = decode(make_png(3, 8, 0, {bytes({7, 8, 9})}, chunk("tRNS", bytes({0, 8}))));
  CHECK(gt.channels == 1);
  CHECK(gt.pixels == std::vector<uint8_t>{7, 0, 9});
}

TEST_CASE("png: an interlaced image decodes like the same image stored plainly") {
  const int w = 7, h = 5;
  Image plain = random_image(w, h, 1, 42);
  // Adam7: seven passes, each a small image of its own with filter bytes.
  const int pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                          {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  std::string raw;
  for (const auto& [x0, y0, dx, dy] : pass) {
    if (x0 >= w || y0 >= h) continue;
    for (int y = y0; y < h; y += dy) {
      raw += '\0';
      for (int x = x0; x < w; x += dx) raw += static_cast<char>(plain.at(x, y));
    }
  }
  std::string png = kSignature + ihdr(w, h, 8, 0, 1) + chunk("IDAT", zlib(raw)) + chunk("IEND", "");
  CHECK(decode(png) == plain);
}

TEST_CASE("png: ancillary chunks are skipped and libpng says nothing on stderr") {
  std::string extra = chunk("gAMA", be32(45455)) + chunk("tEXt", std::string("Comment\0hello", 13)) +
                      chunk("zTXt", std::string("Comment\0\0", 9) + zlib(std::string(100000, 'x'))) +
                      chunk("tEXt", "Bad\0crc", false) + chunk("prVt", "private chunk");
  StderrCapture capture;
  Image image = decode(make_png(2, 8, 0, {bytes({1, 2}), bytes({3, 4})}, extra));
  std::string error = decode_error(make_png(2, 8, 0, {bytes({1, 2})}, chunk("IDAT", "x", false)));
  std::string printed = capture.finish();
  CHECK(image.pixels == std::vector<uint8_t>{1, 2, 3, 4});
  CHECK(error.rfind("t.png: not a valid PNG: ", 0) == 0);
  CHECK(printed == "");
}

TEST_CASE("png: damaged and truncated files are errors naming the file") {
  CHECK(decode_error("") == "t.png: not a PNG file (no PNG signature)");
  CHECK(decode_error("GIF89a....") == "t.png: not a PNG file (no PNG signature)");
  CHECK(decode_error(kSignature) == "t.png: not a valid PNG: the file ends too soon (truncated)");
  std::vector<uint8_t> good = encode_png(random_image(9, 6, 3, 7));
  std::string png(good.begin(), good.end());

  // Every truncation, down to the signature.
  for (size_t n = 8; n < png.size(); ++n) {
    std::string error = decode_error(png.substr(0, n));
    CHECK_MESSAGE(error.rfind("t.png: not a valid PNG: ", 0) == 0, n, ": ", error);
  }
  // Every single flipped byte after the signature: each chunk here is critical and CRC-checked.
  for (size_t i = 8; i < png.size(); ++i) {
    std::string bad = png;
    bad[i] = static_cast<char>(bad[i] ^ 0x5A);
    std::string error = decode_error(bad);
    CHECK_MESSAGE(error.rfind("t.png: ", 0) == 0, i, ": ", error);
  }
  // A wrong IDAT CRC, a missing IEND, a missing IDAT, nonsense in IHDR.
  std::string body = zlib(std::string(1, '\0') + "ab");
  CHECK(decode_error(kSignature + ihdr(2, 1, 8, 0) + chunk("IDAT", body, false) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: IDAT: CRC error");
  CHECK(decode_error(kSignature + ihdr(2, 1, 8, 0) + chunk("IDAT", body)) ==
        "t.png: not a valid PNG: the file ends too soon (truncated)");
  CHECK(decode_error(kSignature + ihdr(2, 2, 8, 0) + chunk("IDAT", body) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: not enough image data");
  CHECK(decode_error(kSignature + ihdr(0, 1, 8, 0) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: invalid IHDR data (image width is zero in IHDR)");
  CHECK(decode_error(kSignature + ihdr(2, 1, 8, 0) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: IEND: out of place");
  CHECK(decode_error(make_png(1, 8, 3, {bytes({0})})) == "t.png: not a valid PNG: IDAT: Missing PLTE before IDAT");
  CHECK(decode_error(kSignature + ihdr(1, 1, 3, 0) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: invalid IHDR data (invalid bit depth in IHDR)");
  CHECK(decode_error(kSignature + ihdr(1, 1, 8, 5) + chunk("IEND", "")) ==
        "t.png: not a valid PNG: invalid IHDR data (invalid color type in IHDR)");
  CHECK(decode_error(make_png(1, 8, 3, {bytes({0})})).rfind("t.png: not a valid PNG: ", 0) == 0);  // no PLTE
}

TEST_CASE("png: the size in the header is checked before anything is inflated") {
  CHECK(decode_error(kSignature + ihdr(20000, 1, 8, 0) + chunk("IEND", "")) ==
        "t.png: image is 20000x1, over the limit of 16384 pixels a side");
  // A 16384 x 16384 bomb: a quarter of a gigabyte of zeros would inflate from a few hundred
  // kilobytes. The header alone must stop it.
  auto start = std::chrono::steady_clock::now();
  CHECK(decode_error(kSignature + ihdr(16384, 16384, 8, 0) + chunk("IDAT", zlib(std::string(1 << 16, '\0'))) +
                     chunk("IEND", "")) ==
        "t.png: image is 16384x16384 = 268435456 pixels, over the limit of 33554432");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  Image image = random_image(11, 10, 1, 3);
  std::vector<uint8_t> png = encode_png(image);
  std::string text(png.begin(), png.end());
  CHECK(decode_error(text, PngLimits{.max_pixels = 100}) ==
        "t.png: image is 11x10 = 110 pixels, over the limit of 100");
  CHECK(decode_error(text, PngLimits{.max_side = 10}) == "t.png: image is 11x10, over the limit of 10 pixels a side");
  CHECK(decode(text, PngLimits{.max_side = 11, .max_pixels = 110}) == image);
}

TEST_CASE("grid: tiles in rows with padding around and between, empty cells left as padding") {
  std::vector<Image> tiles;
  for (uint8_t v : {10, 20, 30}) tiles.push_back(Image(2, 3, 1, v));
  tiles[1].at(1, 2) = 99;
  Image grid = make_grid(tiles, 2, 2, 1, 0);
  CHECK(grid.width == 2 * 3 + 1);
  CHECK(grid.height == 2 * 4 + 1);
  CHECK(grid.channels == 1);
  const char* expected[] = {
      "0000000",  //
      "0aa0bb0",  //
      "0aa0bb0",  //
      "0aa0bX0",  //
      "0000000",  //
      "0cc0000",  //
      "0cc0000",  //
      "0cc0000",  //
      "0000000",
  };
  for (int y = 0; y < grid.height; ++y)
    for (int x = 0; x < grid.width; ++x) {
      char c = expected[y][x];
      int want = c == '0' ? 0 : c == 'a' ? 10 : c == 'b' ? 20 : c == 'c' ? 30 : 99;
      CHECK_MESSAGE(grid.at(x, y) == want, x, ",", y);
    }
  Image rgb = make_grid({Image(1, 1, 3, 5)}, 1, 1);
  CHECK(rgb.width == 5);
  CHECK(rgb.at(2, 2, 2) == 5);
  CHECK(rgb.at(0, 0, 1) == 128);
  Image no_pad = make_grid({Image(1, 1, 1, 1), Image(1, 1, 1, 2)}, 2, 1, 0);
  CHECK(no_pad.pixels == std::vector<uint8_t>{1, 2});

  CHECK_THROWS_WITH_AS(make_grid({}, 1, 1), "grid: no images to lay out", Error);
  CHECK_THROWS_WITH_AS(make_grid(tiles, 1, 2), "grid: 3 images do not fit in 1x2 cells", Error);
  CHECK_THROWS_WITH_AS(make_grid(tiles, 0, 2), "grid: 0 columns and 2 rows: both must be at least 1", Error);
  CHECK_THROWS_WITH_AS(make_grid(tiles, 2, 2, -1), "grid: padding -1 is negative", Error);
  tiles.push_back(Image(2, 3, 3));
  CHECK_THROWS_WITH_AS(make_grid(tiles, 2, 2), "grid: image 3 is 2x3 RGB, image 0 is 2x3 gray: all must be alike",
                       Error);
  CHECK_THROWS_WITH_AS(make_grid({Image(1, 1, 1)}, 1, 1, 50000), "grid: a grid of 100001x100001 pixels is too large",
                       Error);
}

TEST_CASE("float form: CHW in [-1, 1], every byte back exactly, out-of-range values clamped") {
  Image all(256, 1, 1);
  for (int i = 0; i < 256; ++i) all.pixels[i] = static_cast<uint8_t>(i);
  std::vector<float> f = to_floats(all);
  CHECK(f[0] == -1.0f);
  CHECK(f[255] == 1.0f);
  CHECK(f[128] == doctest::Approx(128 / 127.5 - 1));
  CHECK(from_floats(f.data(), 1, 1, 256) == all);

  Image rgb(2, 1, 3);
  rgb.pixels = {0, 51, 102, 153, 204, 255};
  std::vector<float> planes = to_floats(rgb);  // R plane, G plane, B plane
  std::vector<float> expected = {0, 153, 51, 204, 102, 255};
  for (size_t i = 0; i < planes.size(); ++i) CHECK(planes[i] == doctest::Approx(expected[i] / 127.5 - 1));
  CHECK(from_floats(planes.data(), 3, 1, 2) == rgb);

  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  float odd[] = {2.0f, -3.0f, 0.0f, nan, inf, -inf, 0.999f, -0.999f};
  CHECK(from_floats(odd, 1, 1, 8).pixels == std::vector<uint8_t>{255, 0, 128, 128, 255, 0, 255, 0});
  CHECK_THROWS_AS(from_floats(odd, 2, 1, 4), Error);  // 2 channels
}

TEST_CASE("convert_channels: gray to RGB copies, RGB to gray is BT.601 luma") {
  Image rgb(3, 1, 3);
  rgb.pixels = {255, 0, 0, 0, 255, 0, 10, 10, 10};
  CHECK(convert_channels(rgb, 1).pixels == std::vector<uint8_t>{76, 150, 10});
  Image gray(2, 1, 1);
  gray.pixels = {7, 200};
  CHECK(convert_channels(gray, 3).pixels == std::vector<uint8_t>{7, 7, 7, 200, 200, 200});
  CHECK(convert_channels(gray, 1) == gray);
  CHECK(describe(rgb) == "3x1 RGB");
}

TEST_CASE("find_class: names, halves of slashed names, numbers") {
  std::vector<std::string> names = {"T-shirt/top", "Trouser", "Ankle boot"};
  CHECK(find_class(names, "ankle boot") == 2);
  CHECK(find_class(names, "Ankle-Boot") == 2);
  CHECK(find_class(names, "tshirt") == 0);
  CHECK(find_class(names, "top") == 0);
  CHECK(find_class(names, "t-shirt/top") == 0);
  CHECK(find_class(names, "1") == 1);
  CHECK(find_class(names, "3") == -1);
  CHECK(find_class(names, "hat") == -1);
  CHECK(find_class(names, "") == -1);
  CHECK(find_class({"0", "1", "2"}, "2") == 2);
}
