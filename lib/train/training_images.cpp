#include "train/training_images.h"

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

ImageData load_training_images(const std::string& spec, const std::string& labels, int64_t limit, const char* model) {
  ImageData data = load_image_data(spec, labels);
  limit_images(data.set, limit);
  if (data.set.count < 1) throw Error(spec, "no images");
  if (data.set.height != data.set.width)
    throw Error(spec, fmt::format("images are {}x{}: {} wants square images", data.set.width, data.set.height, model));
  return data;
}

void check_resumed_images(const Dataset& set, const std::string& name, int64_t size, int64_t channels,
                          const std::string& fingerprint, const std::string& saved, const std::string& checkpoint) {
  if (set.width != size || set.height != size || set.channels != channels)
    throw Error(name, fmt::format("images are {}x{}x{} but the checkpoint's model wants {}x{}x{}", set.width,
                                  set.height, set.channels, size, size, channels));
  if (fingerprint != saved)
    throw Error(name, fmt::format("not the images {} was trained on (resume on the same data, --labels included)",
                                  checkpoint));
}

void check_labels(const Dataset& set, const std::string& name, int64_t classes) {
  if (classes <= 0) return;  // unconditional: the labels, if any, are not used
  if (!set.labelled())
    throw Error(name, "has no labels: this model is class-conditional (fashion-mnist, or IDX with --labels)");
  for (uint8_t l : set.labels)
    if (l >= classes) throw Error(name, fmt::format("label {} is outside the model's {} classes", l, classes));
}

std::string format_int_list(const std::vector<int64_t>& values) {
  std::string text;
  for (int64_t v : values) {
    if (!text.empty()) text += ',';
    text += std::to_string(v);
  }
  return text;
}

}  // namespace gen
