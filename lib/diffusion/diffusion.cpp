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

namespace {
// lambda = log(alpha / sigma), half the log signal-to-noise ratio; +inf at step -1 (the image).
double half_log_snr(const Schedule& s, int64_t t) { return 0.5 * (std::log(s.abar(t)) - std::log1p(-s.abar(t))); }
}  // namespace

std::vector<int64_t> DiffusionSampler::timesteps(const Schedule& s, int64_t start) const {
  const int64_t S = std::clamp<int64_t>(steps, 1, start + 1);
  std::vector<int64_t> ts;
  auto add = [&](int64_t t) {
    if (ts.empty() || t < ts.back()) ts.push_back(std::max<int64_t>(t, 0));
  };
  if (method == Method::ddim || S == 1) {
    for (int64_t i = 0; i < S; ++i)
      add(std::llround(static_cast<double>(start) -
                       static_cast<double>(i) * static_cast<double>(start + 1) / static_cast<double>(S)));
    return ts;
  }
  // Evenly spaced in lambda from `start` to step 0: the nearest step to each target, moved
  // where it must be so that the S steps are distinct (below the previous one, and above the
  // steps the remaining targets need), so that there are exactly S denoiser calls.
  const double from = half_log_snr(s, start), to = half_log_snr(s, 0);
  ts.push_back(start);
  int64_t nearest = start;
  for (int64_t i = 1; i < S; ++i) {
    const double target = from + (to - from) * static_cast<double>(i) / static_cast<double>(S - 1);
    while (nearest > 0 &&
           std::abs(half_log_snr(s, nearest - 1) - target) <= std::abs(half_log_snr(s, nearest) - target))
      --nearest;
    ts.push_back(std::clamp(nearest, S - 1 - i, ts.back() - 1));
  }
  return ts;
}

std::vector<Rng> image_streams(uint64_t seed, int64_t begin, int64_t end) {
  std::vector<Rng> streams;
  for (int64_t i = begin; i < end; ++i) streams.emplace_back(seed, static_cast<uint64_t>(i));
  return streams;
}

std::optional<DiffusionSampler> DiffusionSampler::named(const std::string& name) {
  DiffusionSampler sampler;
  if (name == "ddpm")
    sampler.eta = 1.0;
  else if (name == "dpm++2m")
    sampler.method = Method::dpmpp_2m;
  else if (name != "ddim")
    return std::nullopt;
  return sampler;
}

void DiffusionSampler::run(const Schedule& s, float* x, int64_t images, int64_t pixels, int64_t start,
                           const Predict& predict, std::vector<Rng>& rngs, const Observe& observe) const {
  if (rngs.size() != static_cast<size_t>(images)) throw std::logic_error("DiffusionSampler::run: one rng per image");
  if (method != Method::ddim && eta != 0) throw std::logic_error("DiffusionSampler::run: eta is DDIM's");
  const int64_t n = images * pixels;
  std::vector<float> eps(static_cast<size_t>(n)), x0_prev;
  std::vector<int64_t> ts = timesteps(s, start);
  auto lambda = [&](int64_t t) { return half_log_snr(s, t); };
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t t = ts[i], prev = i + 1 < ts.size() ? ts[i + 1] : -1;
    predict(x, t, eps.data());
    const double a = s.abar(t), a_prev = s.abar(prev);
    // The update is x_t' = cx x_t + c0 x0 + ce eps + sigma z (+ c1 x0_prev, second order).
    double cx = 0, c0 = std::sqrt(a_prev), c1 = 0, ce = 0, sigma = 0;
    if (method == Method::ddim) {
      sigma = eta * std::sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev));
      ce = std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma));
    } else if (prev >= 0) {
      const double h = lambda(prev) - lambda(t), m = -std::expm1(-h);  // 1 - e^-h
      cx = std::sqrt((1 - a_prev) / (1 - a));
      c0 = std::sqrt(a_prev) * m;
      if (i > 0) {
        const double r = (lambda(t) - lambda(ts[i - 1])) / h;
        c1 = -c0 / (2 * r);
        c0 += c0 / (2 * r);
      }
    }
    if (method == Method::dpmpp_2m) x0_prev.resize(static_cast<size_t>(n));
    const double alpha = std::sqrt(a), sigma_t = std::sqrt(1 - a);
    for (int64_t k = 0; k < n; ++k) {
      double e = eps[static_cast<size_t>(k)];
      double x0 = (x[k] - sigma_t * e) / alpha;
      if (clamp) {
        double clamped = std::clamp(x0, -1.0, 1.0);
        if (clamped != x0) e = (x[k] - alpha * clamped) / sigma_t;
        x0 = clamped;
      }
      double z = sigma > 0 ? rngs[static_cast<size_t>(k / pixels)].normal() : 0.0;
      double next = cx * x[k] + c0 * x0 + ce * e + sigma * z;
      if (method == Method::dpmpp_2m) {
        next += c1 * x0_prev[static_cast<size_t>(k)];
        x0_prev[static_cast<size_t>(k)] = static_cast<float>(x0);
      }
      x[k] = static_cast<float>(next);
    }
    if (observe) observe(static_cast<int64_t>(i), prev, x);
  }
}

}  // namespace gen
