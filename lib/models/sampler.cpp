#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>

namespace gen {

std::vector<float> Sampler::softmax(std::span<const float> logits, float temperature) {
  std::vector<float> p(logits.size(), 0.0f);
  if (logits.empty()) return p;
  size_t best = static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (temperature <= 0) {
    p[best] = 1.0f;
    return p;
  }
  double sum = 0;
  for (size_t v = 0; v < logits.size(); ++v) {
    p[v] = std::exp((logits[v] - logits[best]) / temperature);
    sum += p[v];
  }
  for (auto& x : p) x = static_cast<float>(x / sum);
  return p;
}

std::vector<std::pair<uint32_t, float>> Sampler::top_candidates(std::span<const float> probs, int k) {
  std::vector<uint32_t> order(probs.size());
  std::iota(order.begin(), order.end(), 0u);
  size_t n = std::min(order.size(), static_cast<size_t>(std::max(k, 0)));
  // Ties go to the smaller id, so the listing is the same every time.
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](uint32_t a, uint32_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
  std::vector<std::pair<uint32_t, float>> top;
  for (size_t i = 0; i < n; ++i) top.emplace_back(order[i], probs[order[i]]);
  return top;
}

namespace {

// The renormalizing sum of the tokens filters keep, when they keep all of them: the sum in the
// order of the sorted path (most probable first), without sorting the whole vocabulary every
// token. Summed in double, floats of at least 2^-29 are multiples of 2^-52, so while their sum
// stays below 2 every partial sum is exact and their order does not matter; they all come
// before the smaller ones in the sorted order, and only those (often few) are sorted. Empty
// when that does not hold (a NaN, or a sum of 2 or more), for the caller to sort after all.
std::optional<double> sum_most_probable_first(const std::vector<float>& p) {
  constexpr float kExact = 0x1p-29f;
  double sum = 0;
  std::vector<float> small;
  for (float x : p) {
    if (x >= kExact) sum += x;
    else if (x > 0) small.push_back(x);
    else if (std::isnan(x)) return std::nullopt;  // zeros add nothing
  }
  if (!(sum < 2)) return std::nullopt;
  std::sort(small.begin(), small.end(), std::greater<float>());  // equal values add alike in any order
  for (float x : small) sum += x;
  return sum;
}

}  // namespace

std::vector<float> Sampler::distribution(std::span<const float> logits, std::span<const uint32_t> recent) const {
  std::span<const float> scores = logits;
  std::vector<float> adjusted;
  if (config_.repeat_penalty != 1.0f && config_.repeat_last_n > 0) {
    adjusted.assign(logits.begin(), logits.end());
    scores = adjusted;
    size_t from = recent.size() > static_cast<size_t>(config_.repeat_last_n)
                      ? recent.size() - static_cast<size_t>(config_.repeat_last_n)
                      : 0;
    // Each recent token once, however often it appeared.
    std::vector<uint32_t> seen(recent.begin() + static_cast<std::ptrdiff_t>(from), recent.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (uint32_t id : seen) {
      if (id >= adjusted.size()) continue;
      float& x = adjusted[id];
      x = x > 0 ? x / config_.repeat_penalty : x * config_.repeat_penalty;
    }
  }
  std::vector<float> p = softmax(scores, config_.temperature);
  if (config_.temperature <= 0) return p;
  // Without filters (the default) every token is kept: only the sum needs the sorted order.
  bool filters = (config_.top_k > 0 && static_cast<size_t>(config_.top_k) < p.size()) || config_.top_p < 1.0f ||
                 config_.min_p > 0;
  if (!filters) {
    if (std::optional<double> sum = sum_most_probable_first(p)) {
      for (auto& x : p) x = static_cast<float>(x / *sum);
      return p;
    }
  }
  // Filters keep a prefix of the tokens sorted by probability (ties: smaller id first).
  std::vector<uint32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return p[a] > p[b]; });
  size_t keep = order.size();
  if (config_.top_k > 0) keep = std::min(keep, static_cast<size_t>(config_.top_k));
  if (config_.top_p < 1.0f) {
    double cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += p[order[i]];
      if (cumulative >= config_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (config_.min_p > 0) {
    float floor = config_.min_p * p[order[0]];
    size_t i = 1;
    while (i < keep && p[order[i]] >= floor) ++i;
    keep = i;
  }
  std::vector<float> filtered(p.size(), 0.0f);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += p[order[i]];
  for (size_t i = 0; i < keep; ++i) filtered[order[i]] = static_cast<float>(p[order[i]] / sum);
  return filtered;
}

uint32_t Sampler::sample(std::span<const float> logits, std::span<const uint32_t> recent) {
  std::vector<float> p = distribution(logits, recent);
  if (config_.temperature <= 0)
    return static_cast<uint32_t>(std::max_element(p.begin(), p.end()) - p.begin());
  // Inverse CDF with one uniform draw; the last token with mass catches rounding.
  double u = rng_.uniform(), cumulative = 0;
  uint32_t last = 0;
  for (size_t v = 0; v < p.size(); ++v) {
    if (p[v] <= 0) continue;
    last = static_cast<uint32_t>(v);
    cumulative += p[v];
    if (u < cumulative) return last;
  }
  return last;
}

}  // namespace gen
