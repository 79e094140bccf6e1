// The GIF writer, read back with giflib's decoder: frames, pixels, delays, the loop, errors.
#include <doctest/doctest.h>
#include <gif_lib.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gif.h"
#include "io/image.h"

using namespace gen;

namespace {

struct Reader {
  const std::vector<uint8_t>* bytes;
  size_t at = 0;
};
int read_bytes(GifFileType* gif, GifByteType* out, int n) {
  auto* r = static_cast<Reader*>(gif->UserData);
  const size_t take = std::min(static_cast<size_t>(n), r->bytes->size() - r->at);
  std::memcpy(out, r->bytes->data() + r->at, take);
  r->at += take;
  return static_cast<int>(take);
}

// Decodes every frame to RGB (through each frame's or the global palette).
struct Decoded {
  int width = 0, height = 0;
  std::vector<std::vector<uint8_t>> rgb;
  std::vector<int> delays;
  bool loops = false;
};
Decoded decode(const std::vector<uint8_t>& bytes) {
  Reader reader{&bytes};
  int error = 0;
  GifFileType* gif = DGifOpen(&reader, read_bytes, &error);
  REQUIRE(gif != nullptr);
  REQUIRE(DGifSlurp(gif) == GIF_OK);
  Decoded d;
  d.width = gif->SWidth;
  d.height = gif->SHeight;
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& frame = gif->SavedImages[i];
    const ColorMapObject* map = frame.ImageDesc.ColorMap ? frame.ImageDesc.ColorMap : gif->SColorMap;
    REQUIRE(map != nullptr);
    std::vector<uint8_t> rgb;
    for (int p = 0; p < frame.ImageDesc.Width * frame.ImageDesc.Height; ++p) {
      const GifColorType c = map->Colors[frame.RasterBits[p]];
      rgb.insert(rgb.end(), {c.Red, c.Green, c.Blue});
    }
    d.rgb.push_back(rgb);
    GraphicsControlBlock gcb;
    REQUIRE(DGifSavedExtensionToGCB(gif, i, &gcb) == GIF_OK);
    d.delays.push_back(gcb.DelayTime);
  }
  for (int i = 0; i < gif->ImageCount; ++i)
    for (int e = 0; e < gif->SavedImages[i].ExtensionBlockCount; ++e) {
      const ExtensionBlock& b = gif->SavedImages[i].ExtensionBlocks[e];
      if (b.Function == APPLICATION_EXT_FUNC_CODE && b.ByteCount == 11 && std::memcmp(b.Bytes, "NETSCAPE2.0", 11) == 0)
        d.loops = true;
    }
  DGifCloseFile(gif, &error);
  return d;
}

}  // namespace

TEST_CASE("gif: gray frames round trip exactly, with their delays and a loop") {
  std::vector<Image> frames;
  for (int f = 0; f < 3; ++f) {
    Image im(5, 4, 1);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 37 + f * 91) % 256);
    frames.push_back(im);
  }
  const std::vector<uint8_t> bytes = encode_gif(frames, 7, 120);
  CHECK(std::string(bytes.begin(), bytes.begin() + 6) == "GIF89a");
  CHECK(bytes == encode_gif(frames, 7, 120));  // the same frames, the same bytes
  Decoded d = decode(bytes);
  CHECK(d.width == 5);
  CHECK(d.height == 4);
  REQUIRE(d.rgb.size() == 3);
  CHECK(d.delays == std::vector<int>{7, 7, 120});
  CHECK(d.loops);
  for (size_t f = 0; f < 3; ++f)
    for (size_t i = 0; i < frames[f].pixels.size(); ++i) {
      CHECK(d.rgb[f][3 * i] == frames[f].pixels[i]);
      CHECK(d.rgb[f][3 * i + 2] == frames[f].pixels[i]);
    }
}

TEST_CASE("gif: RGB frames go to the nearest colour of the cube") {
  Image im(16, 16, 3);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 53) % 256);
  Decoded d = decode(encode_gif({im, im}, 10, 10));
  REQUIRE(d.rgb.size() == 2);
  for (size_t i = 0; i < im.pixels.size(); ++i) {
    const int tolerance = i % 3 == 1 ? 22 : 26;  // half a step of 7 green levels, of 6 red or blue
    CHECK(std::abs(int(d.rgb[0][i]) - int(im.pixels[i])) <= tolerance);
  }
  // Black and white survive exactly.
  Image bw(2, 1, 3);
  bw.pixels = {0, 0, 0, 255, 255, 255};
  CHECK(decode(encode_gif({bw}, 0, 0)).rgb[0] == bw.pixels);
}

TEST_CASE("gif: bad frames and delays are errors") {
  CHECK_THROWS_AS(encode_gif({}, 10, 10), Error);
  CHECK_THROWS_AS(encode_gif({Image(2, 2, 1), Image(3, 2, 1)}, 10, 10), Error);
  CHECK_THROWS_AS(encode_gif({Image(2, 2, 1), Image(2, 2, 3)}, 10, 10), Error);
  CHECK_THROWS_AS(encode_gif({Image(2, 2, 1)}, -1, 10), Error);
  CHECK_THROWS_AS(encode_gif({Image(2, 2, 1)}, 10, 70000), Error);
  CHECK(is_gif_path("walk.GIF"));
  CHECK(!is_gif_path("walk.png"));
  CHECK(!is_gif_path("gif"));
}
