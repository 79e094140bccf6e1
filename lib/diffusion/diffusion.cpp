#include "diffusion/diffusion.h"

#include <algorithm>
#include <stdexcept>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

Schedule::Schedule(Kind kind, int64_t T) : kind_(kind) {
  if (T < 1 || T > 100000) throw UsageError(fmt::format("{} diffusion steps is out of range (1..100000)", T));
  beta_.resize(static_cast<size_t>(T));
  abar_.resize(static_cast<size_t>(T));
  if (kind == Kind::linear) {
    // DDPM's 1e-4..0.02 over 1000 steps, scaled so that other T keep the same total noise.
    double scale = 1000.0 / static_cast<double>(T);
    double lo = scale * 1e-4, hi = std::min(scale * 0.02, 0.999);
    for (int64_t t = 0; t < T; ++t)
      beta_[static_cast<size_t>(t)] = T == 1 ? hi : lo + (hi - lo) * static_cast<double>(t) / static_cast<double>(T - 1);
  } else {
    const double s = 0.008;
    auto f = [&](double u) { return std::pow(std::cos((u + s) / (1 + s) * M_PI / 2), 2); };
    for (int64_t t = 0; t < T; ++t) {
      double a = f(static_cast<double>(t) / static_cast<double>(T)), b = f(static_cast<double>(t + 1) / static_cast<double>(T));
      beta_[static_cast<size_t>(t)] = std::min(1 - b / a, 0.999);
    }
  }
  double product = 1;
  for (size_t t = 0; t < beta_.size(); ++t) abar_[t] = product *= 1 - beta_[t];
}

Schedule::Kind Schedule::parse(const std::string& name) {
  if (name == "linear") return Kind::linear;
  if (name == "cosine") return Kind::cosine;
  throw UsageError(fmt::format("unknown schedule '{}': linear or cosine", name));
}

const char* Schedule::name(Kind kind) { return kind == Kind::linear ? "linear" : "cosine"; }

void Schedule::noise(float* xt, const float* x0, const float* eps, int64_t n, int64_t t) const {
  const float a = static_cast<float>(std::sqrt(abar(t))), b = static_cast<float>(std::sqrt(1 - abar(t)));
  for (int64_t i = 0; i < n; ++i) xt[i] = a * x0[i] + b * eps[i];
}

std::vector<int64_t> DiffusionSampler::timesteps(int64_t start) const {
  int64_t S = std::clamp<int64_t>(steps, 1, start + 1);
  std::vector<int64_t> ts;
  for (int64_t i = 0; i < S; ++i) {
    int64_t t = static_cast<int64_t>(std::llround(static_cast<double>(start) -
                                                  static_cast<double>(i) * static_cast<double>(start + 1) /
                                                      static_cast<double>(S)));
    if (ts.empty() || t < ts.back()) ts.push_back(std::max<int64_t>(t, 0));
  }
  return ts;
}

std::vector<Rng> image_streams(uint64_t seed, int64_t begin, int64_t end) {
  std::vector<Rng> streams;
  for (int64_t i = begin; i < end; ++i) streams.emplace_back(seed, static_cast<uint64_t>(i));
  return streams;
}

void DiffusionSampler::run(const Schedule& s, float* x, int64_t images, int64_t pixels, int64_t start,
                           const Predict& predict, std::vector<Rng>& rngs, const Observe& observe) const {
  if (rngs.size() != static_cast<size_t>(images)) throw std::logic_error("DiffusionSampler::run: one rng per image");
  const int64_t n = images * pixels;
  std::vector<float> eps(static_cast<size_t>(n));
  std::vector<int64_t> ts = timesteps(start);
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t t = ts[i], prev = i + 1 < ts.size() ? ts[i + 1] : -1;
    predict(x, t, eps.data());
    const double a = s.abar(t), a_prev = s.abar(prev);
    const double sigma = eta * std::sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev));
    const double dir = std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma));
    for (int64_t k = 0; k < n; ++k) {
      double e = eps[static_cast<size_t>(k)];
      double x0 = (x[k] - std::sqrt(1 - a) * e) / std::sqrt(a);
      if (clamp) {
        double clamped = std::clamp(x0, -1.0, 1.0);
        if (clamped != x0) e = (x[k] - std::sqrt(a) * clamped) / std::sqrt(1 - a);
        x0 = clamped;
      }
      double z = sigma > 0 ? rngs[static_cast<size_t>(k / pixels)].normal() : 0.0;
      x[k] = static_cast<float>(std::sqrt(a_prev) * x0 + dir * e + sigma * z);
    }
    if (observe) observe(static_cast<int64_t>(i), prev, x);
  }
}

}  // namespace gen
