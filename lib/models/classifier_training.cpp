#include "models/classifier_training.h"

#include <algorithm>
#include <utility>

#include "core/rng.h"

namespace gen {

void augment(const uint8_t* hwc, int S, int C, bool flip, int dx, int dy, float* out) {
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        int sx = x - dx, sy = y - dy;
        if (flip) sx = S - 1 - sx;
        float v = -1.0f;
        if (sx >= 0 && sx < S && sy >= 0 && sy < S) v = hwc[(sy * S + sx) * C + c] / 127.5f - 1.0f;
        out[(c * S + y) * S + x] = v;
      }
}

const std::vector<uint32_t>& EpochOrder::of(int64_t epoch) {
  if (epoch == epoch_) return order_;
  order_.resize(static_cast<size_t>(count_));
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
  Rng shuffle(seed_, /*stream=*/1000 + static_cast<uint64_t>(epoch));
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[shuffle.below(static_cast<uint32_t>(i))]);
  epoch_ = epoch;
  return order_;
}

double accuracy(Classifier& model, const std::vector<float>& x, const Dataset& set) {
  if (set.count == 0) return 0;
  const Classified out = classify(model, x.data(), set.count, true, false);
  const int64_t K = model.config().classes;
  int64_t right = 0;
  for (int i = 0; i < set.count; ++i) {
    const float* p = out.probs.data() + static_cast<int64_t>(i) * K;
    right += std::max_element(p, p + K) - p == set.labels[static_cast<size_t>(i)];
  }
  return static_cast<double>(right) / set.count;
}

}  // namespace gen
