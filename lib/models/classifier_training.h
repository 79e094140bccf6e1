// How a classifier learns: epochs over the training images, each in its own shuffled order,
// each image augmented (mirrored, shifted by a pixel or two) so that the network learns the
// garment rather than its exact pixels; the loss is the cross-entropy of the predicted class
// probabilities against the labels. Accuracy is the share of images whose most likely class is
// their label.
//
//   gen::EpochOrder order(seed, set.count);
//   const std::vector<uint32_t>& images = order.of(epoch);     // the same for a resumed run
//   gen::augment(set.image_data(i), S, C, flip, dx, dy, x);     // HWC bytes -> CHW floats
#pragma once

#include <cstdint>
#include <vector>

#include "io/idx.h"
#include "models/classifier.h"

namespace gen {

// A training image, augmented: mirrored left to right (if flip) and shifted by (dx, dy) pixels
// with black coming in at the edges. In: HWC bytes; out: CHW floats in [-1, 1].
void augment(const uint8_t* hwc, int S, int C, bool flip, int dx, int dy, float* out);

// Each epoch's order of the images: a shuffle drawn from the seed and the epoch alone, so that a
// resumed run sees the same batches.
class EpochOrder {
 public:
  EpochOrder(uint64_t seed, int count) : seed_(seed), count_(count) {}
  const std::vector<uint32_t>& of(int64_t epoch);

 private:
  uint64_t seed_;
  int count_;
  int64_t epoch_ = -1;
  std::vector<uint32_t> order_;
};

// The share of the images x (the set's, as floats) whose most likely class is their label.
double accuracy(Classifier& model, const std::vector<float>& x, const Dataset& set);

}  // namespace gen
