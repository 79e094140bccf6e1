#include "models/next_token.h"

#include <algorithm>

namespace gen {

void next_token_batch(const std::vector<uint32_t>& data, Rng& rng, int64_t B, int64_t T, uint32_t* x, uint32_t* y) {
  const uint32_t positions = static_cast<uint32_t>(data.size() - static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b) {
    const auto offset = static_cast<std::ptrdiff_t>(rng.below(positions));
    std::copy_n(data.begin() + offset, T, x + b * T);
    std::copy_n(data.begin() + offset + 1, T, y + b * T);
  }
}

Evaluation evaluate(Gpt& model, const std::vector<uint32_t>& data, int64_t B, int64_t T, int64_t windows,
                    uint64_t seed, std::vector<Arena>& arenas, Cluster* cluster) {
  Rng rng(seed, /*stream=*/7);
  std::vector<uint32_t> x(static_cast<size_t>(B * T)), y(static_cast<size_t>(B * T));
  Evaluation e;
  for (int64_t done = 0; done < windows;) {
    const int64_t n = std::min(B, windows - done);
    next_token_batch(data, rng, n, T, x.data(), y.data());
    const Gpt::BatchLoss loss = model.batch_loss(arenas, x.data(), y.data(), n, T, /*training=*/false, cluster);
    e.loss += loss.mean * static_cast<double>(n);
    e.accuracy += static_cast<double>(loss.correct) / static_cast<double>(T);
    done += n;
  }
  e.loss /= static_cast<double>(windows);
  e.accuracy /= static_cast<double>(windows);
  return e;
}

}  // namespace gen
