// Choosing the next token from a model's logits: repetition penalty, temperature, top-k,
// top-p (nucleus) and min-p filtering, then a seeded draw. Small and separate from the model.
//
//   gen::SamplerConfig config{.temperature = 0.8f, .top_k = 40};
//   gen::Sampler sampler(config, seed);
//   uint32_t next = sampler.sample(logits, vocab, recent_tokens);
//   auto top = gen::Sampler::top_candidates(probs, vocab, 5);   // for --probs and --trace
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace gen {

struct SamplerConfig {
  float temperature = 1.0f;     // 0: always the most likely token (greedy)
  int top_k = 0;                // keep the k most likely tokens (0: all)
  float top_p = 1.0f;           // keep the most likely tokens whose probabilities add up to p
  float min_p = 0.0f;           // drop tokens less likely than min_p times the most likely one
  float repeat_penalty = 1.0f;  // divide positive logits (multiply negative ones) of recent tokens
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at
};

class Sampler {
 public:
  Sampler(const SamplerConfig& config, uint64_t seed, uint64_t stream = 0) : config_(config), rng_(seed, stream) {}
  // The next token; `recent` is the context so far (for the repetition penalty).
  uint32_t sample(std::span<const float> logits, std::span<const uint32_t> recent);
  // The distribution sample() draws from, after penalty, temperature and filters (sums to 1).
  std::vector<float> distribution(std::span<const float> logits, std::span<const uint32_t> recent) const;
  // softmax(logits / temperature); temperature 0 puts all the mass on the argmax.
  static std::vector<float> softmax(std::span<const float> logits, float temperature);
  // The k most probable (id, probability) pairs, most probable first.
  static std::vector<std::pair<uint32_t, float>> top_candidates(std::span<const float> probs, int k);

 private:
  SamplerConfig config_;
  Rng rng_;
};

}  // namespace gen
