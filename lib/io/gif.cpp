#include "io/gif.h"

#include <gif_lib.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/core.h>

#include "core/error.h"
#include "core/files.h"
#include "core/provenance.h"

namespace gen {

namespace {

constexpr int kRed = 6, kGreen = 7, kBlue = 6;  // levels of the RGB colour cube

// The palette (256 entries: GIF wants a power of two) and the index of each pixel of a frame.
std::vector<GifColorType> palette(int channels) {
  std::vector<GifColorType> colours(256, GifColorType{0, 0, 0});
  if (channels == 1) {
    for (int i = 0; i < 256; ++i) colours[static_cast<size_t>(i)] = GifColorType{GifByteType(i), GifByteType(i), GifByteType(i)};
    return colours;
  }
  auto level = [](int i, int levels) { return static_cast<GifByteType>((i * 255 + (levels - 1) / 2) / (levels - 1)); };
  for (int r = 0; r < kRed; ++r)
    for (int g = 0; g < kGreen; ++g)
      for (int b = 0; b < kBlue; ++b)
        colours[static_cast<size_t>((r * kGreen + g) * kBlue + b)] = GifColorType{level(r, kRed), level(g, kGreen), level(b, kBlue)};
  return colours;
}

std::vector<GifPixelType> indices(const Image& frame) {
  if (frame.channels == 1) return std::vector<GifPixelType>(frame.pixels.begin(), frame.pixels.end());
  std::vector<GifPixelType> out(static_cast<size_t>(frame.width) * frame.height);
  auto nearest = [](uint8_t v, int levels) { return (v * (levels - 1) + 127) / 255; };
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = &frame.pixels[3 * i];
    out[i] = static_cast<GifPixelType>((nearest(p[0], kRed) * kGreen + nearest(p[1], kGreen)) * kBlue +
                                       nearest(p[2], kBlue));
  }
  return out;
}

int append(GifFileType* gif, const GifByteType* data, int n) {
  auto* bytes = static_cast<std::vector<uint8_t>*>(gif->UserData);
  bytes->insert(bytes->end(), data, data + n);
  return n;
}

struct CloseGif {
  void operator()(GifFileType* gif) const { EGifCloseFile(gif, nullptr); }
};
struct FreeMap {
  void operator()(ColorMapObject* map) const { GifFreeMapObject(map); }
};

}  // namespace

bool is_gif_path(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".gif";
}

std::vector<uint8_t> encode_gif(const std::vector<Image>& frames, int delay_cs, int last_delay_cs,
                                const std::string& comment) {
  if (frames.empty()) throw Error("gif", "no frames");
  for (const Image& f : frames) {
    check_image(f, "gif");
    if (f.width != frames[0].width || f.height != frames[0].height || f.channels != frames[0].channels)
      throw Error("gif", fmt::format("frames differ: {} and {}", describe(frames[0]), describe(f)));
  }
  if (frames[0].width > 65535 || frames[0].height > 65535)
    throw Error("gif", fmt::format("{}: a GIF's sides are at most 65535 pixels", describe(frames[0])));
  for (int d : {delay_cs, last_delay_cs})
    if (d < 0 || d > 65535) throw Error("gif", fmt::format("delay {} is outside [0, 65535] hundredths of a second", d));

  std::vector<uint8_t> bytes;
  int error = 0;
  std::unique_ptr<GifFileType, CloseGif> gif(EGifOpen(&bytes, append, &error));
  auto check = [&](int status, const char* what) {
    if (status == GIF_ERROR) throw Error("gif", fmt::format("{}: {}", what, GifErrorString(gif ? gif->Error : error)));
  };
  if (!gif) check(GIF_ERROR, "open");
  const std::vector<GifColorType> colours = palette(frames[0].channels);
  std::unique_ptr<ColorMapObject, FreeMap> map(GifMakeMapObject(256, colours.data()));
  if (!map) throw Error("gif", "out of memory");
  EGifSetGifVersion(gif.get(), true);
  const int width = frames[0].width, height = frames[0].height;
  check(EGifPutScreenDesc(gif.get(), width, height, 8, 0, map.get()), "screen");
  // Loop forever (the Netscape application extension: sub-block 1, loop count 0).
  static const GifByteType netscape[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
  static const GifByteType forever[] = {1, 0, 0};
  check(EGifPutExtensionLeader(gif.get(), APPLICATION_EXT_FUNC_CODE), "loop");
  check(EGifPutExtensionBlock(gif.get(), sizeof netscape, netscape), "loop");
  check(EGifPutExtensionBlock(gif.get(), sizeof forever, forever), "loop");
  check(EGifPutExtensionTrailer(gif.get()), "loop");
  if (!comment.empty()) check(EGifPutComment(gif.get(), comment.c_str()), "comment");
  for (size_t i = 0; i < frames.size(); ++i) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.UserInputFlag = false;
    gcb.DelayTime = i + 1 == frames.size() ? last_delay_cs : delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType control[4];
    EGifGCBToExtension(&gcb, control);
    check(EGifPutExtension(gif.get(), GRAPHICS_EXT_FUNC_CODE, sizeof control, control), "frame");
    check(EGifPutImageDesc(gif.get(), 0, 0, width, height, false, nullptr), "frame");
    std::vector<GifPixelType> pixels = indices(frames[i]);
    for (int y = 0; y < height; ++y)
      check(EGifPutLine(gif.get(), pixels.data() + static_cast<size_t>(y) * width, width), "frame");
  }
  GifFileType* raw = gif.release();
  if (EGifCloseFile(raw, &error) == GIF_ERROR) throw Error("gif", fmt::format("close: {}", GifErrorString(error)));
  return bytes;
}

void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs, int last_delay_cs) {
  std::vector<uint8_t> bytes;
  try {
    std::string comment;
    for (const auto& [key, value] : provenance_text()) comment += key + ": " + value + "\n";
    if (!comment.empty()) comment.pop_back();
    bytes = encode_gif(frames, delay_cs, last_delay_cs, comment);
  } catch (const Error& e) {
    throw Error(path, e.reason());
  }
  Output out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace gen
