#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

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

std::vector<float> Sampler::distribution(std::span<const float> logits, std::span<const uint32_t> recent) const {
  std::vector<float> adjusted(logits.begin(), logits.end());
  if (config_.repeat_penalty != 1.0f && config_.repeat_last_n > 0) {
    size_t from = recent.size() > static_cast<size_t>(config_.repeat_last_n)
                      ? recent.size() - static_cast<size_t>(config_.repeat_last_n)
                      : 0;
    std::unordered_set<uint32_t> seen(recent.begin() + static_cast<std::ptrdiff_t>(from), recent.end());
    for (uint32_t id : seen) {
      if (id >= adjusted.size()) continue;
      float& x = adjusted[id];
      x = x > 0 ? x / config_.repeat_penalty : x * config_.repeat_penalty;
    }
  }
  std::vector<float> p = softmax(adjusted, config_.temperature);
  if (config_.temperature <= 0) return p;
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
