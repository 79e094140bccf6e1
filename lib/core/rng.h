// The one random number generator of the suite: PCG32 (O'Neill 2014, "PCG: A Family of
// Simple Fast Space-Efficient Statistically Good Algorithms", pcg32 XSH-RR 64/32).
// Every random draw in a run comes from an Rng seeded from --seed, in a fixed order, so the
// same seed gives the same output. The state is two integers: a checkpoint saves it and a
// resumed run continues the same sequence.
//
//   gen::Rng rng(seed);                 // stream 0
//   float u = rng.uniform();            // [0, 1)
//   float z = rng.normal();             // N(0, 1)
//   uint32_t k = rng.below(10);         // 0..9, unbiased
//   gen::Rng worker = rng.stream(3);    // an independent sequence for worker 3, same seed
#pragma once

#include <cmath>
#include <cstdint>

namespace gen {

// A counter-based hash for random bits that must not depend on the order of drawing (dropout's
// masks, drawn by any thread): splitmix64's finalizer (Steele, Lea and Flood 2014) of x.
inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream_id = 0) { reseed(seed, stream_id); }

  void reseed(uint64_t seed, uint64_t stream_id = 0) {
    seed_ = seed;
    state_ = 0;
    increment_ = (stream_id << 1) | 1;
    next_u32();
    state_ += seed;
    next_u32();
  }

  uint32_t next_u32() {
    uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + increment_;
    uint32_t xorshifted = static_cast<uint32_t>(((old >> 18) ^ old) >> 27);
    uint32_t rot = static_cast<uint32_t>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
  }

  uint64_t next_u64() { return (static_cast<uint64_t>(next_u32()) << 32) | next_u32(); }

  // Uniform in [0, 1) with 24 random bits: exactly representable floats.
  float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }

  // Uniform integer in [0, bound), bound > 0 (Lemire 2019, nearly divisionless).
  uint32_t below(uint32_t bound) {
    uint64_t m = static_cast<uint64_t>(next_u32()) * bound;
    uint32_t low = static_cast<uint32_t>(m);
    if (low < bound) {
      uint32_t threshold = (0u - bound) % bound;
      while (low < threshold) {
        m = static_cast<uint64_t>(next_u32()) * bound;
        low = static_cast<uint32_t>(m);
      }
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Standard normal by Box-Muller; both values of a pair are used.
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = (static_cast<double>(next_u32()) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
    double u2 = static_cast<double>(next_u32()) * (1.0 / 4294967296.0);
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 6.283185307179586 * u2;
    spare_ = static_cast<float>(radius * std::sin(angle));
    has_spare_ = true;
    return static_cast<float>(radius * std::cos(angle));
  }

  // An independent generator with the same seed and another stream.
  Rng stream(uint64_t stream_id) const { return Rng(seed_, stream_id); }

  // Exact state, for checkpoints.
  struct State {
    uint64_t state, increment, seed;
    float spare;
    bool has_spare;
  };
  State save() const { return {state_, increment_, seed_, spare_, has_spare_}; }
  void restore(const State& s) {
    state_ = s.state;
    increment_ = s.increment | 1;
    seed_ = s.seed;
    spare_ = s.spare;
    has_spare_ = s.has_spare;
  }

 private:
  uint64_t state_ = 0;
  uint64_t increment_ = 1;
  uint64_t seed_ = 0;
  float spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace gen
