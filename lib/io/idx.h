// Image datasets: IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and folders of PNGs.
//
// IDX layout, all integers big-endian:
//   bytes 0..1   zero
//   byte  2      the element type; only 0x08 (unsigned byte) is supported
//   byte  3      the number of dimensions, D (1 to 4)
//   then         D uint32 sizes, then the elements, row-major, filling the rest of the file exactly
// Images are 0x00000803 (N, rows, columns) and labels 0x00000801 (N). A file that starts with
// the gzip magic (1f 8b) is inflated first, as a stream: the header's sizes are checked against
// the byte limit before anything is allocated, and inflating stops one byte past what the header
// declares, so a gzip bomb costs no more than its header admits.
//
//   gen::Dataset train = gen::load_fashion_mnist(true);           // 60000 x 28 x 28, labels 0..9
//   gen::Image first = train.image(0);
//   gen::Dataset faces = gen::load_png_folder("faces/");          // sorted by file name, no labels
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"

namespace gen {

inline constexpr size_t kIdxMaxBytes = size_t{1} << 30;  // the elements of one IDX file, inflated

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;  // the product of dims bytes
};

// Reads an IDX file of unsigned bytes (gzip or not); errors name the file.
IdxArray read_idx(const std::string& path, size_t max_bytes = kIdxMaxBytes);
IdxArray parse_idx(std::string_view bytes, const std::string& name, size_t max_bytes = kIdxMaxBytes);

// The contents of a gzip file (several members are concatenated, as gzip -d does); throws
// Error(name, ...) on corrupt or truncated data, trailing garbage, or more than max_bytes out.
std::string gunzip(std::string_view bytes, const std::string& name, size_t max_bytes = kIdxMaxBytes);

struct Dataset {
  int count = 0, height = 0, width = 0, channels = 1;
  std::vector<uint8_t> images;  // count images, one after another, each as Image::pixels
  std::vector<uint8_t> labels;  // one per image, or empty: unlabelled

  size_t image_size() const { return static_cast<size_t>(height) * width * channels; }
  const uint8_t* image_data(int i) const { return images.data() + i * image_size(); }
  Image image(int i) const;  // a copy; i in 0..count-1 (unchecked, like operator[])
  bool labelled() const { return !labels.empty(); }
};

// An image file (3 dimensions) and a label file (1 dimension) of the same count, labels below
// num_classes. Images are gray.
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, int num_classes = 10,
                      size_t max_bytes = kIdxMaxBytes);

// Debian's dataset-fashion-mnist: train (60000) or test (10000) set, from dir/{train,t10k}-
// {images-idx3,labels-idx1}-ubyte.gz (or the same names without .gz).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
Dataset load_fashion_mnist(bool train, const std::string& dir = kFashionMnistDir);

inline constexpr std::array<const char*, 10> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
// The class a name means, ignoring case and anything but letters and digits, either half of
// "T-shirt/top" alone included ("sneaker", "ankle-boot", "tshirt", "top"); -1 if none.
int fashion_mnist_class(std::string_view name);

// Every *.png (any case) directly in dir, sorted by file name, decoded; all must have the same
// size and channels, else an Error names the odd file. Unlabelled. The images together may
// hold at most max_bytes.
Dataset load_png_folder(const std::string& dir, const PngLimits& limits = {}, size_t max_bytes = size_t{1} << 31);

}  // namespace gen
