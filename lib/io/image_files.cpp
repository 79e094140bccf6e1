#include "io/image_files.h"

#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <fmt/printf.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "core/cli.h"
#include "core/error.h"
#include "core/files.h"
#include "core/provenance.h"

namespace gen {

bool is_fashion_mnist(const std::string& spec) {
  return spec == "fashion-mnist" || spec == "fashion-mnist:train" || spec == "fashion-mnist:test";
}

ImageData load_image_data(const std::string& spec, const std::string& labels) {
  ImageData d;
  if (is_fashion_mnist(spec)) {
    d.set = load_fashion_mnist(spec != "fashion-mnist:test");
    d.class_names.assign(kFashionMnistClasses.begin(), kFashionMnistClasses.end());
    return d;
  }
  if (!labels.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(spec, ec))
      throw UsageError(fmt::format("--labels '{}' is for an IDX image file, and '{}' is a folder of PNGs "
                                   "(unlabelled)", shown(labels), shown(spec)));
    d.set = load_idx_pair(spec, labels);
    int classes = 0;
    for (uint8_t l : d.set.labels) classes = std::max(classes, l + 1);
    for (int c = 0; c < classes; ++c) d.class_names.push_back(std::to_string(c));
    return d;
  }
  std::error_code ec;
  if (!spec.empty() && !std::filesystem::is_directory(spec, ec) && std::filesystem::exists(spec, ec))
    throw Error(spec, "an IDX image file needs its labels: give --labels FILE");
  d.set = load_png_folder(spec);
  return d;
}

namespace {
// Lower-case letters and digits only: "Ankle boot" -> "ankleboot".
std::string simplify(std::string_view s) {
  std::string out;
  for (char ch : s)
    if (std::isalnum(static_cast<unsigned char>(ch))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}
}  // namespace

int find_class(const std::vector<std::string>& names, std::string_view name) {
  const std::string want = simplify(name);
  if (want.empty()) return -1;
  for (size_t i = 0; i < names.size(); ++i)
    if (simplify(names[i]) == want) return static_cast<int>(i);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& full = names[i];
    size_t slash = full.find('/');
    if (slash != std::string::npos &&
        (simplify(full.substr(0, slash)) == want || simplify(full.substr(slash + 1)) == want))
      return static_cast<int>(i);
  }
  bool digits = std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (digits && !name.empty() && name.size() < 7) {
    size_t index = std::stoul(std::string(name));
    if (index < names.size()) return static_cast<int>(index);
  }
  return -1;
}

std::string class_list(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += fmt::format("{}{}", list.empty() ? "" : ", ", n);
  return list;
}

void limit_images(Dataset& set, int64_t limit) {
  if (limit <= 0 || limit >= set.count) return;
  set.count = static_cast<int>(limit);
  set.images.resize(set.image_size() * static_cast<size_t>(limit));
  if (set.labelled()) set.labels.resize(static_cast<size_t>(limit));
}

std::vector<float> dataset_floats(const Dataset& set) {
  std::vector<float> x(set.image_size() * static_cast<size_t>(set.count));
  for (int i = 0; i < set.count; ++i)
    hwc_to_floats(set.image_data(i), set.height, set.width, set.channels, x.data() + i * set.image_size());
  return x;
}

std::vector<int64_t> parse_int_list(const std::string& spec, const char* option, const char* example) {
  std::vector<int64_t> out;
  std::string item;
  for (size_t i = 0; i <= spec.size(); ++i) {
    if (i == spec.size() || spec[i] == ',') {
      try {
        size_t used = 0;
        long long v = std::stoll(item, &used);
        if (used != item.size()) throw std::invalid_argument(item);
        out.push_back(v);
      } catch (const std::exception&) {
        throw UsageError(fmt::format("{} '{}': expected numbers like {}", option, spec, example));
      }
      item.clear();
    } else {
      item += spec[i];
    }
  }
  return out;
}

std::pair<int, int> parse_grid(const std::string& spec, int64_t n) {
  if (spec.empty()) {
    int cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
    return {cols, static_cast<int>((n + cols - 1) / cols)};
  }
  int cols = 0, rows = 0;
  char x = 0, extra = 0;
  if (std::sscanf(spec.c_str(), "%d%c%d%c", &cols, &x, &rows, &extra) != 3 || (x != 'x' && x != 'X') || cols < 1 ||
      rows < 1 || cols > 1000 || rows > 1000)
    throw UsageError(fmt::format("--grid '{}': expected COLSxROWS, e.g. 8x8", spec));
  if (static_cast<int64_t>(cols) * rows < n)
    throw UsageError(
        fmt::format("--grid {}x{} holds {} images, fewer than the {} asked for", cols, rows, cols * rows, n));
  return {cols, rows};
}

std::vector<Image> tiles_from_floats(const float* x, int64_t n, int64_t C, int64_t S) {
  std::vector<Image> tiles;
  for (int64_t i = 0; i < n; ++i)
    tiles.push_back(from_floats(x + i * C * S * S, static_cast<int>(C), static_cast<int>(S), static_cast<int>(S)));
  return tiles;
}

Image enlarge(const Image& image, int scale) {
  if (scale <= 1) return image;
  const int64_t width = int64_t{image.width} * scale, height = int64_t{image.height} * scale;
  if (width * height * image.channels > kMaxImageSamples)
    throw UsageError(fmt::format("--scale {}: the {}x{} picture would be {}x{}, over the limit of {} samples", scale,
                                 image.width, image.height, width, height, kMaxImageSamples));
  Image out(image.width * scale, image.height * scale, image.channels);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < image.channels; ++c) out.at(x, y, c) = image.at(x / scale, y / scale, c);
  return out;
}

void write_images(const std::string& output, const std::vector<Image>& tiles, const std::string& grid, int scale,
                  const GridLabels& labels) {
  if (is_gif_path(output)) {
    std::vector<Image> frames;
    for (const Image& tile : tiles) frames.push_back(enlarge(tile, scale));
    write_gif(output, frames, kFrameDelay, kLastFrameDelay);
    return;
  }
  if (output.find('%') != std::string::npos) {
    // All of the set or none of it: each file finished under its temporary name, then all renamed.
    std::vector<std::unique_ptr<Output>> files;
    for (size_t i = 0; i < tiles.size(); ++i) {
      TextFields text = provenance_text();
      if (!text.empty()) text.emplace_back("gen:image", fmt::format("{} of {}", i, tiles.size()));
      const std::vector<uint8_t> bytes = encode_png(enlarge(tiles[i], scale), text);
      files.push_back(std::make_unique<Output>(fmt::sprintf(output, i)));
      files.back()->write(bytes.data(), bytes.size());
      files.back()->finish();
    }
    for (auto& file : files) file->commit();
    return;
  }
  auto [cols, rows] = parse_grid(grid, static_cast<int64_t>(tiles.size()));
  if (cols == 1 && rows == 1) {
    write_png(output, enlarge(tiles[0], scale));
    return;
  }
  std::vector<Image> padded = tiles;
  while (static_cast<int64_t>(padded.size()) < static_cast<int64_t>(cols) * rows)
    padded.emplace_back(tiles[0].width, tiles[0].height, tiles[0].channels, 0);
  Image picture = enlarge(make_grid(padded, cols, rows), scale);
  if (!labels.columns.empty() || !labels.rows.empty()) {
    // make_grid's layout: a 2-pixel pad around and between the cells, then enlarged.
    const int pad = 2, w = tiles[0].width, h = tiles[0].height;
    std::vector<double> xs, ys;
    for (int c = 0; c < cols; ++c) xs.push_back(scale * (pad + c * (w + pad) + w / 2.0));
    for (int r = 0; r < rows; ++r) ys.push_back(scale * (pad + r * (h + pad) + h / 2.0));
    picture = label_grid(picture, labels, xs, ys, std::clamp(4.0 + 3.0 * scale, 10.0, 20.0));
  }
  write_png(output, picture);
}

void print_image_text(const std::vector<std::string>& paths) {
  Output out("-");
  for (size_t i = 0; i < paths.size(); ++i) {
    const TextFields fields = read_image_text(paths[i]);
    if (fields.empty()) throw Error(paths[i], "holds no text: it was not written by a gen tool");
    if (paths.size() > 1) out.write(fmt::format("{}==> {} <==\n", i ? "\n" : "", paths[i]));
    for (const auto& [key, value] : fields) out.write(fmt::format("{}: {}\n", key, value));
    out.flush();
  }
  out.commit();
}

CLI::App* add_info_command(CLI::App& app, std::vector<std::string>& paths) {
  const std::string tool = app.get_name();
  CLI::App* cmd = app.add_subcommand("info", "How an image was made: the tool, its settings, its inputs' SHA-256");
  cmd->add_option("images", paths, "PNG or GIF files written by gdiffuse or ggan")->required();
  cmd->footer(fmt::format(R"(Every PNG and GIF that gdiffuse and ggan write carries the tool and version, the command with
every setting that decides the pixels (defaults included), and the SHA-256 of each input.
Examples:
  {0} info grid.png
  {0} info samples/s-0007.png   # which image of the set, too
  {0} info walk.gif)",
                          tool));
  return cmd;
}

void check_labelled_grid(const std::string& output, const char* what) {
  if (output.find('%') != std::string::npos || is_gif_path(output))
    throw UsageError(fmt::format("--labels: for {} written as one PNG", what));
}

void check_output_pattern(const std::string& output, const char* option,
                          std::initializer_list<const char*> extensions) {
  if (output.find('%') != std::string::npos) {
    // One field %d, %Nd or %0Nd (N up to 2 digits); %% is a percent sign.
    size_t fields = 0;
    bool valid = true;
    for (size_t i = 0; i < output.size(); ++i) {
      if (output[i] != '%') continue;
      if (i + 1 < output.size() && output[i + 1] == '%') {
        ++i;
        continue;
      }
      size_t j = i + 1, digits = 0;
      while (j < output.size() && std::isdigit(static_cast<unsigned char>(output[j]))) ++j, ++digits;
      valid = valid && digits <= 2 && j < output.size() && output[j] == 'd';
      ++fields;
      i = j;
    }
    if (fields != 1 || !valid)
      throw UsageError(fmt::format("{} '{}': a numbered output needs one field like %03d", option, shown(output)));
    if (is_gif_path(output))
      throw UsageError(
          fmt::format("{} '{}': numbered outputs are PNGs; a .gif is one animation", option, shown(output)));
  }
  if (output == "-") return;
  std::string extension = std::filesystem::path(output).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!extension.empty() && extensions.size() > 0 &&
      std::none_of(extensions.begin(), extensions.end(), [&](const char* e) { return extension == e; })) {
    std::string names;
    for (const char* e : extensions) names += std::string(names.empty() ? "" : " or ") + e;
    throw UsageError(fmt::format("{} '{}': this is written as {}; name it {}", option, shown(output),
                                 extensions.size() == 1 ? "a PNG" : "a PNG or an animated GIF", names));
  }
  const std::filesystem::path folder = std::filesystem::path(output).parent_path();
  std::error_code ec;
  if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
    const bool exists = std::filesystem::exists(folder, ec);
    throw Error(shown(output), exists ? fmt::format("cannot write there: '{}' is not a folder", shown(folder.string()))
                                      : fmt::format("cannot write there: the folder '{}' does not exist",
                                                    shown(folder.string())));
  }
}

}  // namespace gen
