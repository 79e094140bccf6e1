// What the image tools (gdiffuse, ggan, gscore) share at the command line: reading a data set
// named by a --data argument, and writing many generated images as one grid PNG or as numbered
// files.
//
//   gen::ImageData d = gen::load_image_data("fashion-mnist", "");   // or "x.idx.gz" + labels, or "pngs/"
//   gen::check_output_pattern(output);                               // before any work
//   gen::write_images(output, gen::tiles_from_floats(x, n, C, S), "8x8", /*scale=*/2);
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/gif.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/plot.h"

namespace CLI {
class App;
}

namespace gen {

struct ImageData {
  Dataset set;
  std::vector<std::string> class_names;  // empty: unlabelled
};

// "fashion-mnist" (or ":train", ":test"; Debian's dataset-fashion-mnist), an IDX image file with
// an IDX label file (labels non-empty; classes named "0", "1", ...), or a folder of PNGs
// (unlabelled). An IDX file without labels is an Error naming it.
bool is_fashion_mnist(const std::string& spec);
ImageData load_image_data(const std::string& spec, const std::string& labels);

// The class a name means among names: an exact match ignoring case and anything but letters and
// digits ("ankle-boot", "Ankle boot"), either half of a name with a slash ("t-shirt" or "top"
// for "T-shirt/top"), or the class's number; -1 if none.
int find_class(const std::vector<std::string>& names, std::string_view name);
// The names for a message: "T-shirt/top, Trouser, ...".
std::string class_list(const std::vector<std::string>& names);

// Keeps the first `limit` images (0: all).
void limit_images(Dataset& set, int64_t limit);

// The images of a data set as floats CHW in [-1, 1], one after another.
std::vector<float> dataset_floats(const Dataset& set);

// "32,64,128" -> {32, 64, 128}; otherwise a UsageError naming the option and an example
// ("--channels '8,x': expected numbers like 32,64,128").
std::vector<int64_t> parse_int_list(const std::string& spec, const char* option, const char* example);

// "8x4" -> {8, 4}, checked to hold n images; empty -> about square for n.
std::pair<int, int> parse_grid(const std::string& spec, int64_t n);

// n images [n, C, S, S] in [-1, 1] as 8-bit images.
std::vector<Image> tiles_from_floats(const float* x, int64_t n, int64_t C, int64_t S);

// Each pixel as a scale x scale block (28x28 images are small on a screen).
Image enlarge(const Image& image, int scale);

// One grid PNG (output without %; "-" is stdout; one image is written as it is, no frame), one
// file per image (output like "sample-%03d.png", numbered from 0), or, for an output ending in
// .gif, an animation with one image per frame (kFrameDelay hundredths of a second each, the last
// held for kLastFrameDelay). Files are atomic.
constexpr int kFrameDelay = 10, kLastFrameDelay = 100;
// With labels (a grid output only), the column and row labels are drawn beside the grid.
void write_images(const std::string& output, const std::vector<Image>& tiles, const std::string& grid, int scale,
                  const GridLabels& labels = {});

// `gdiffuse info` and `ggan info`: each file's text fields (how it was made) on stdout, "key:
// value" a line, under a "==> FILE <==" header when there are several files. A file without
// any is an error naming it.
void print_image_text(const std::vector<std::string>& paths);
// The `info` subcommand of a tool that writes images (gdiffuse, ggan), its files bound to paths.
CLI::App* add_info_command(CLI::App& app, std::vector<std::string>& paths);

// --labels draws beside one grid PNG: refused (UsageError, naming what it is for) for numbered
// outputs and animations.
void check_labelled_grid(const std::string& output, const char* what);

// Checked before any work: a numbered output needs exactly one integer field like %03d, and
// the folder it goes to must exist. option names it in the message ("--preview"). A name with an
// extension must have one of `extensions` (any when empty): -o x.jpg is refused, not written as
// PNG bytes under a JPEG's name; a name without one (/dev/null, a FIFO) is taken as it is.
void check_output_pattern(const std::string& output, const char* option = "-o",
                          std::initializer_list<const char*> extensions = {".png", ".gif"});

}  // namespace gen
