// The U-Net denoiser and the diffusion process: shapes, schedule facts, the sampler's
// steps, and a learning test (the denoising loss falls on a tiny data set).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>
#include <string>

#include "core/rng.h"
#include "gradcheck.h"
#include "diffusion/diffusion.h"
#include "models/unet.h"
#include "tensor/optimizer.h"

using namespace gen;

namespace {
UnetConfig tiny() {
  UnetConfig c;
  c.image_size = 8;
  c.channels = {8, 16};
  c.groups = 4;
  c.time_dim = 16;
  c.classes = 2;
  return c;
}
}  // namespace

TEST_CASE("schedule: abar falls from about 1 to about 0; noise mixes image and eps") {
  for (auto kind : {Schedule::Kind::linear, Schedule::Kind::cosine}) {
    Schedule s(kind, 1000);
    CHECK(s.abar(-1) == 1.0);
    CHECK(s.abar(0) > 0.99);
    CHECK(s.abar(999) < 1e-3);
    for (int64_t t = 1; t < 1000; ++t) REQUIRE(s.abar(t) < s.abar(t - 1));
  }
  Schedule s(Schedule::Kind::linear, 1000);
  CHECK(s.beta(0) == doctest::Approx(1e-4));
  CHECK(s.beta(999) == doctest::Approx(0.02));
  float x0 = 0.5f, eps = -1.0f, xt = 0;
  s.noise(&xt, &x0, &eps, 1, 500);
  CHECK(xt == doctest::Approx(std::sqrt(s.abar(500)) * 0.5 - std::sqrt(1 - s.abar(500))));
  CHECK_THROWS(Schedule::parse("quadratic"));
}

TEST_CASE("sampler: trailing timesteps; DDIM with a perfect denoiser recovers the image") {
  DiffusionSampler sampler;
  sampler.steps = 4;
  Schedule linear(Schedule::Kind::linear, 1000);
  CHECK(sampler.timesteps(linear, 999) == std::vector<int64_t>{999, 749, 499, 249});
  sampler.steps = 2000;  // more steps than there are: each step once
  CHECK(sampler.timesteps(linear, 9).size() == 10);
  // If the denoiser knows the image, eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar), and DDIM
  // (eta 0) lands on x0 from any start.
  Schedule s(Schedule::Kind::cosine, 100);
  std::vector<float> x0 = {0.3f, -0.7f, 0.9f}, x = {1.2f, -0.4f, 0.1f};
  sampler.steps = 10;
  std::vector<Rng> rngs = image_streams(1, 0, 1);
  sampler.run(s, x.data(), 1, 3, 99, [&](const float* xt, int64_t t, float* eps) {
    for (int k = 0; k < 3; ++k) eps[k] = static_cast<float>((xt[k] - std::sqrt(s.abar(t)) * x0[k]) / std::sqrt(1 - s.abar(t)));
  }, rngs);
  for (int k = 0; k < 3; ++k) CHECK(x[k] == doctest::Approx(x0[k]).epsilon(1e-4));
}

namespace {
// Data from N(mu, s^2) per pixel: the exact denoiser is eps = sigma (x_t - alpha mu) / (alpha^2
// s^2 + sigma^2), and the ODE that DDIM and DPM-Solver++ solve carries x_T to the same quantile
// of the data: x0 = mu + s (x_T - alpha_T mu) / sqrt(alpha_T^2 s^2 + sigma_T^2).
struct GaussianData {
  double mu = 0.4, s = 0.3;
  const Schedule& schedule;
  void eps(const float* x, int64_t t, float* out, int64_t n) const {
    const double a = std::sqrt(schedule.abar(t)), sg = std::sqrt(1 - schedule.abar(t));
    for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>(sg * (x[k] - a * mu) / (a * a * s * s + sg * sg));
  }
  double x0(double xT, int64_t T) const {
    const double a = std::sqrt(schedule.abar(T)), sg = std::sqrt(1 - schedule.abar(T));
    return mu + s * (xT - a * mu) / std::sqrt(a * a * s * s + sg * sg);
  }
  // The largest error of the sampler from these starts at T - 1.
  double error(const DiffusionSampler& sampler, const std::vector<float>& starts) const {
    std::vector<float> x = starts;
    std::vector<Rng> rngs = image_streams(1, 0, 1);
    const int64_t n = static_cast<int64_t>(x.size());
    sampler.run(schedule, x.data(), 1, n, schedule.T() - 1,
                [&](const float* xt, int64_t t, float* out) { eps(xt, t, out, n); }, rngs);
    double worst = 0;
    for (int64_t k = 0; k < n; ++k) worst = std::max(worst, std::abs(x[k] - x0(starts[k], schedule.T() - 1)));
    return worst;
  }
};
}  // namespace

TEST_CASE("sampler: DPM-Solver++(2M) solves the reverse ODE to second order; DDIM to first") {
  Schedule s(Schedule::Kind::linear, 1000);
  GaussianData data{.schedule = s};
  std::vector<float> starts = {-2.0f, -0.5f, 0.0f, 0.7f, 1.9f};
  DiffusionSampler ddim, dpm;
  dpm.method = DiffusionSampler::Method::dpmpp_2m;
  dpm.clamp = ddim.clamp = false;  // the Gaussian's tails pass 1
  // Its steps: evenly spaced in lambda = log(alpha / sigma), from T-1 to 0.
  dpm.steps = 10;
  const std::vector<int64_t> ts = dpm.timesteps(s, 999);
  REQUIRE(ts.size() == 10);
  CHECK(ts.front() == 999);
  CHECK(ts.back() == 0);
  auto lambda = [&](int64_t t) { return 0.5 * std::log(s.abar(t) / (1 - s.abar(t))); };
  const double h = (lambda(0) - lambda(999)) / 9;
  for (size_t i = 1; i < ts.size(); ++i) CHECK(lambda(ts[i]) - lambda(ts[i - 1]) == doctest::Approx(h).epsilon(0.15));
  // Exactly the steps asked for, distinct, even where the nearest steps coincide (the cosine
  // schedule's capped last beta puts a large step in lambda between T-2 and T-1).
  Schedule cosine(Schedule::Kind::cosine, 1000);
  for (int64_t steps : {2, 15, 100, 999, 1000, 5000}) {
    CAPTURE(steps);
    dpm.steps = steps;
    for (const Schedule* schedule : {&s, &cosine}) {
      const std::vector<int64_t> got = dpm.timesteps(*schedule, 999);
      CHECK(static_cast<int64_t>(got.size()) == std::min<int64_t>(steps, 1000));
      CHECK(got.front() == 999);
      CHECK(got.back() == 0);
      for (size_t i = 1; i < got.size(); ++i) REQUIRE(got[i] < got[i - 1]);
    }
  }
  // One step is DDIM's from T-1 straight to the image (the mean of the data given x_T).
  ddim.steps = dpm.steps = 1;
  CHECK(data.error(dpm, starts) == doctest::Approx(data.error(ddim, starts)).epsilon(1e-5));
  // From 10 steps on DPM-Solver++(2M) is 5 times closer than DDIM, and doubling the steps at
  // least halves the error of both (first order); DPM-Solver++'s falls by about 4 (second
  // order) from 20 steps on.
  std::vector<double> e_ddim, e_dpm;
  for (int64_t steps : {10, 20, 40, 80}) {
    ddim.steps = dpm.steps = steps;
    e_ddim.push_back(data.error(ddim, starts));
    e_dpm.push_back(data.error(dpm, starts));
    CAPTURE(steps);
    CHECK(e_dpm.back() < e_ddim.back() / 5);
  }
  for (size_t i = 1; i < e_dpm.size(); ++i) {
    CAPTURE(i);
    CHECK(e_ddim[i - 1] / e_ddim[i] == doctest::Approx(2).epsilon(0.2));
    if (i > 1) CHECK(e_dpm[i - 1] / e_dpm[i] > 3);
  }
  CHECK(DiffusionSampler::named("dpm++2m")->method == DiffusionSampler::Method::dpmpp_2m);
  CHECK(DiffusionSampler::named("ddim")->method == DiffusionSampler::Method::ddim);
  CHECK(DiffusionSampler::named("ddim")->eta == 0.0);
  CHECK(DiffusionSampler::named("ddpm")->method == DiffusionSampler::Method::ddim);
  CHECK(DiffusionSampler::named("ddpm")->eta == 1.0);
  CHECK(!DiffusionSampler::named("euler"));
}

TEST_CASE("unet: output shape, zero at initialization, parameter count of the default") {
  UnetConfig standard;
  Unet big(standard);
  CHECK(big.params().size() > 1'000'000);
  CHECK(big.params().size() < 2'000'000);
  Unet model(tiny());
  Rng rng(3);
  model.init(rng);
  Arena arena;
  Graph g(arena, false);
  std::vector<float> x(2 * 64), t = {3, 900};
  for (auto& v : x) v = rng.normal();
  std::vector<uint32_t> labels = {0, 2};
  Tensor out = model.forward(g, g.constant({2, 1, 8, 8}, x.data()), t.data(), labels.data());
  CHECK(out.shape == std::vector<int64_t>{2, 1, 8, 8});
  for (int64_t i = 0; i < out.size(); ++i) REQUIRE(out.data[i] == 0.0f);  // conv_out starts at zero
}

TEST_CASE("unet: the fused inference pass gives the training graph's output") {
  // Sampling runs the residual blocks through conv2d_inference (GroupNorm, SiLU, the time
  // embedding and the residual inside the convolutions); training runs them layer by layer.
  for (bool attention : {false, true}) {
    CAPTURE(attention);
    UnetConfig c = tiny();
    c.channels = {8, 16, 16};  // a block with a skip projection and one without
    c.attention = attention;
    Unet model(c);
    Rng rng(6);
    model.init(rng);
    for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.2f * rng.normal();
    const int64_t B = 5, P = 64;  // 5 images: 7x7-style grouping at 2x2 and a remainder
    std::vector<float> x(B * P), t = {3, 900, 10, 500, 999};
    for (auto& v : x) v = rng.normal();
    std::vector<uint32_t> labels = {0, 2, 1, 1, 0};
    Arena a1, a2;
    Graph training(a1, true), inference(a2, false);
    Tensor want = model.forward(training, training.constant({B, 1, 8, 8}, x.data()), t.data(), labels.data());
    Tensor got = model.forward(inference, inference.constant({B, 1, 8, 8}, x.data()), t.data(), labels.data());
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(got.data[i]) - want.data[i]));
      scale = std::max(scale, std::abs(static_cast<double>(want.data[i])));
    }
    CHECK(scale > 0.1);
    CHECK(worst < 1e-5 * scale);
    CHECK_THROWS_AS(training.conv2d_inference(got, model.params().tensor(0), {}, 1, 0, {}, {}, {}, {}, 1),
                    std::logic_error);
  }
}

TEST_CASE("unet: the tape's gradients match finite differences of the loss, for every weight") {
  // Without and with self-attention over the middle block's pixels (transposes, attention over
  // every position, the projections).
  for (bool attention : {false, true}) {
    CAPTURE(attention);
    UnetConfig c;
    c.image_size = 4, c.channels = {4, 8}, c.groups = 2, c.time_dim = 8, c.classes = 3;
    c.attention = attention;
    Unet model(c);
    Rng rng(5);
    model.init(rng);
    // Random weights everywhere (the zero output layer would hide every other path).
    for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.3f * rng.normal();
    const int64_t B = 2, P = 16;
    std::vector<float> x(B * P), target(B * P), t = {7, 420};
    for (auto& v : x) v = rng.normal();
    for (auto& v : target) v = rng.normal();
    std::vector<uint32_t> labels = {1, 3};  // a class and "no class"
    Arena arena;
    auto loss_at = [&](bool training) {
      arena.reset();
      Graph g(arena, training);
      Tensor pred = model.forward(g, g.constant({B, 1, 4, 4}, x.data()), t.data(), labels.data());
      double loss = g.mse(pred, g.constant({B, 1, 4, 4}, target.data()));
      if (training) g.backward();
      return loss;
    };
    test::check_model_gradient(model.params(), loss_at, 1e-2f, 0.03, {"class_emb.weight"});
  }
}

TEST_CASE("unet: learns to denoise a tiny data set (loss below 0.2 after 300 steps)") {
  // Two classes of 8x8 images: a bright square top-left, or a bright bar at the bottom.
  const int64_t B = 16, P = 64;
  std::vector<float> data(2 * P, -1.0f);
  for (int y = 1; y < 4; ++y)
    for (int x = 1; x < 4; ++x) data[y * 8 + x] = 1.0f;
  for (int x = 0; x < 8; ++x) data[P + 6 * 8 + x] = 1.0f;
  Unet model(tiny());
  Rng rng(4);
  model.init(rng);
  Schedule s(Schedule::Kind::cosine, 100);
  AdamW adam(model.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f});
  Arena arena;
  std::vector<float> x0(B * P), eps(B * P), xt(B * P), t(B);
  std::vector<uint32_t> labels(B);
  double first = 0, last = 0;
  const int steps = 300;
  for (int step = 0; step < steps; ++step) {
    for (int64_t b = 0; b < B; ++b) {
      labels[b] = static_cast<uint32_t>(b % 2);
      t[b] = static_cast<float>(rng.below(100));
      for (int64_t k = 0; k < P; ++k) {
        x0[b * P + k] = data[labels[b] * P + k];
        eps[b * P + k] = rng.normal();
      }
      s.noise(&xt[b * P], &x0[b * P], &eps[b * P], P, static_cast<int64_t>(t[b]));
    }
    arena.reset();
    Graph g(arena, true);
    model.params().zero_grads();
    Tensor pred = model.forward(g, g.constant({B, 1, 8, 8}, xt.data()), t.data(), labels.data());
    float loss = g.mse(pred, g.constant({B, 1, 8, 8}, eps.data()));
    g.backward();
    adam.step(model.params(), 2e-3f);
    if (step < 20) first += loss / 20;
    if (step >= steps - 50) last += loss / 50;
  }
  MESSAGE("denoising loss: first 20 steps " << first << ", last 50 steps " << last);
  CHECK(first > 0.6);
  CHECK(last < 0.2);
}
