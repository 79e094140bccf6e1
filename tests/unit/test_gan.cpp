// The DCGAN of ggan: sizes, gradients of both networks against finite differences, the
// discriminator's input gradient (WGAN-GP) against the tape and against finite differences, the
// checkpoint, and a learning test (samples come to look like the tiny data set).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "models/gan.h"
#include "io/safetensors.h"
#include "models/gan_checkpoint.h"
#include "tensor/optimizer.h"

using namespace gen;

namespace {
GanConfig tiny(int64_t classes) {
  GanConfig c;
  c.image_size = 8, c.latent = 4, c.g_channels = 8, c.d_channels = 4, c.levels = 2, c.classes = classes;
  return c;
}

// Random weights everywhere, not DCGAN's small ones: every path carries signal.
void randomize(Parameters& p, Rng& rng, float scale) {
  for (size_t i = 0; i < p.size(); ++i) p.values()[i] = scale * rng.normal();
}
}  // namespace

TEST_CASE("gan: the default networks' sizes (1.33M and 0.14M parameters, 54 MFLOP per generated image)") {
  GanConfig c;
  Generator G(c);
  Discriminator D(c);
  CHECK(G.params().size() == 1329921);
  CHECK(D.params().size() == 138561);
  CHECK(G.running().size() == 2 * (256 + 128));
  CHECK(c.g_flops_per_image() == doctest::Approx(54.2e6).epsilon(0.01));
  CHECK(c.d_flops_per_image() == doctest::Approx(13.3e6).epsilon(0.02));
  GanConfig bad = c;
  bad.image_size = 30;
  CHECK_THROWS_AS(bad.validate(), UsageError);

  Rng rng(1);
  G.init(rng);
  Arena arena;
  Graph g(arena, false);
  std::vector<float> z(3 * 64);
  for (auto& v : z) v = rng.normal();
  Tensor x = G.forward(g, g.constant({3, 64}, z.data()), nullptr);
  CHECK(x.shape == std::vector<int64_t>{3, 1, 28, 28});
  for (int64_t i = 0; i < x.size(); ++i) REQUIRE(std::abs(x.data[i]) <= 1.0f);
  Discriminator::Output out = D.forward(g, x, nullptr);
  CHECK(out.logits.shape == std::vector<int64_t>{3, 1});
}

TEST_CASE("gan: the generator's gradients match finite differences, for every weight (conditional)") {
  Generator G(tiny(3));
  Rng rng(7);
  G.init(rng);
  randomize(G.params(), rng, 0.5f);
  const int64_t B = 4, P = 64;
  std::vector<float> z(B * 4), target(B * P);
  for (auto& v : z) v = rng.normal();
  for (auto& v : target) v = rng.normal();
  std::vector<uint32_t> labels = {0, 2, 1, 2};
  Arena arena;
  // Batch statistics throughout (a training graph), with or without the backward pass.
  auto loss_at = [&](bool backward) {
    arena.reset();
    Graph g(arena, true);
    Tensor x = G.forward(g, g.constant({B, 4}, z.data()), labels.data());
    double loss = g.mse(x, g.constant({B, 1, 8, 8}, target.data()));
    if (backward) g.backward();
    return loss;
  };
  test::check_model_gradient(G.params(), loss_at, 1e-2f, 0.03, {"embed.weight", "fc.weight", "convt.0.weight"});
}

TEST_CASE("gan: the discriminator's gradients match finite differences, for every weight (conditional)") {
  Discriminator D(tiny(3));
  Rng rng(8);
  randomize(D.params(), rng, 0.3f);
  const int64_t B = 4, P = 64;
  std::vector<float> x(B * P), signs = {1, -1, 1, -1};
  for (auto& v : x) v = rng.normal();
  std::vector<uint32_t> labels = {0, 2, 1, 2};
  for (GanLoss kind : {GanLoss::bce, GanLoss::linear}) {
    CAPTURE(static_cast<int>(kind));
    Arena arena;
    auto loss_at = [&](bool training) {
      arena.reset();
      Graph g(arena, training);
      Discriminator::Output out = D.forward(g, g.constant({B, 1, 8, 8}, x.data()), labels.data());
      double loss = g.gan_loss(out.logits, signs.data(), kind, 2.0f);
      if (training) g.backward();
      return loss;
    };
    test::check_model_gradient(D.params(), loss_at, 1e-2f, 0.03, {"embed.weight", "conv.0.weight", "out.weight"});
  }
}

TEST_CASE("gan: input_gradient is d logit / d x: it matches the tape and finite differences") {
  Discriminator D(tiny(3));
  Rng rng(9);
  randomize(D.params(), rng, 0.3f);
  const int64_t B = 3, P = 64;
  std::vector<float> x(B * P);
  for (auto& v : x) v = rng.normal();
  std::vector<uint32_t> labels = {2, 0, 1};
  Arena arena;
  Graph g(arena, false);
  Discriminator::Output at = D.forward(g, g.constant({B, 1, 8, 8}, x.data()), labels.data());
  Tensor d = D.input_gradient(g, at, labels.data());
  REQUIRE(d.shape == std::vector<int64_t>{B, 1, 8, 8});

  // The tape: backward from the sum of the logits (the linear loss -s x with s = -1, times B).
  Arena arena2;
  Graph t(arena2, true);
  Tensor input = t.tensor({B, 1, 8, 8});
  std::copy(x.begin(), x.end(), input.data);
  std::vector<float> minus(B, -1.0f);
  t.gan_loss(D.forward(t, input, labels.data()).logits, minus.data(), GanLoss::linear, static_cast<float>(B));
  t.backward();
  double worst = 0;
  for (int64_t k = 0; k < B * P; ++k) worst = std::max(worst, double{std::abs(d.data[k] - input.grad[k])});
  CHECK(worst < 1e-5);

  // Finite differences of each image's logit.
  auto logit = [&](int64_t b) {
    Arena a;
    Graph f(a, false);
    return double{D.forward(f, f.constant({B, 1, 8, 8}, x.data()), labels.data()).logits.data[b]};
  };
  double diff = 0, norm = 0;
  for (int64_t k = 0; k < B * P; ++k) {
    const float saved = x[k];
    x[k] = saved + 1e-3f;
    const double plus = logit(k / P);
    x[k] = saved - 1e-3f;
    const double minus_ = logit(k / P);
    x[k] = saved;
    const double numeric = (plus - minus_) / 2e-3;
    diff += (numeric - d.data[k]) * (numeric - d.data[k]);
    norm += numeric * numeric;
  }
  CHECK(std::sqrt(diff / norm) < 0.01);
}

TEST_CASE("gan: WGAN-GP's penalty sends exact gradients to every discriminator weight") {
  Discriminator D(tiny(3));
  Rng rng(10);
  randomize(D.params(), rng, 0.3f);
  const int64_t B = 3, P = 64;
  std::vector<float> x(B * P);
  for (auto& v : x) v = rng.normal();
  std::vector<uint32_t> labels = {1, 1, 0};
  Arena arena;
  auto loss_at = [&](bool training) {
    arena.reset();
    Graph f(arena, false);
    Discriminator::Output at = D.forward(f, f.constant({B, 1, 8, 8}, x.data()), labels.data());
    Graph g(arena, training);
    double loss = g.gradient_penalty(D.input_gradient(g, at, labels.data()), 10.0f);
    if (training) g.backward();
    return loss;
  };
  // Small steps: the leaky ReLU's slopes are taken where the pre-activations are, and a step
  // that moves one across 0 changes the function.
  test::check_model_gradient(D.params(), loss_at, 2e-3f, 0.03, {"conv.0.weight", "conv.1.weight", "out.weight",
                                                                "embed.weight"});
}

TEST_CASE("gan: checkpoint round trip, and a diffusion or missing file is refused") {
  GanModel m;
  m.net = tiny(2);
  m.objective = GanObjective::hinge;
  m.class_names = {"square", "bar"};
  Generator G(m.net);
  Discriminator D(m.net);
  Rng rng(3);
  G.init(rng);
  D.init(rng);
  G.running()[1] = 0.25f;
  AdamW adam_g(G.params().size(), {}), adam_d(D.params().size(), {});
  adam_g.m().assign(G.params().size(), 0.5f), adam_g.v().assign(G.params().size(), 0.25f);
  adam_d.m().assign(D.params().size(), -0.5f), adam_d.v().assign(D.params().size(), 0.125f);
  adam_g.set_steps(12), adam_d.set_steps(60);
  TrainState state;
  state.steps = 100;
  state.rng = rng.save();
  state.settings = {{"batch", 4}};
  state.data = "fingerprint";
  const std::string path = "/tmp/gen-test-gan-" + std::to_string(getpid()) + ".st";
  gan_save(path, m, G, D, 12, 5, &state, &adam_g, &adam_d);
  GanCheckpoint c = gan_load(path);
  CHECK(c.model.objective == GanObjective::hinge);
  CHECK(c.model.class_names == m.class_names);
  CHECK(c.model.net.classes == 2);
  CHECK(c.step == 12);
  CHECK(c.seed == 5);
  CHECK(std::vector<float>(c.g.begin(), c.g.end()) ==
        std::vector<float>(G.params().values(), G.params().values() + G.params().size()));
  CHECK(std::vector<float>(c.d.begin(), c.d.end()) ==
        std::vector<float>(D.params().values(), D.params().values() + D.params().size()));
  CHECK(c.running == G.running());
  REQUIRE(c.train);
  REQUIRE(c.train->optimizers.size() == 2);
  CHECK(c.train->optimizers[1].steps == 60);
  CHECK(c.train->optimizers[0].steps == 12);
  CHECK(c.train->optimizers[1].m == adam_d.m());
  CHECK(c.train->optimizers[0].v == adam_g.v());
  CHECK(c.train->rng.state == state.rng.state);
  CHECK(c.train->steps == 100);
  CHECK(c.train->data == "fingerprint");
  CHECK(c.train->settings == state.settings);
  // Loaded to sample from: the same weights, the moments checked but not read.
  GanCheckpoint sampling = gan_load(path, /*training_state=*/false);
  CHECK(std::vector<float>(sampling.g.begin(), sampling.g.end()) == std::vector<float>(c.g.begin(), c.g.end()));
  REQUIRE(sampling.train);
  CHECK(sampling.train->optimizers[1].v.empty());
  CHECK(sampling.train->optimizers[1].steps == 60);
  // A moment one value short is refused whether or not the moments are read.
  {
    Safetensors st = Safetensors::read(path);
    SafetensorsWriter w;
    w.metadata = st.metadata();
    for (const auto& e : st.entries()) {
      std::string bytes = st.bytes(e);
      std::vector<int64_t> shape = e.shape;
      if (e.name == "d.optimizer.v") {
        bytes.resize(bytes.size() - sizeof(float));
        shape[0] -= 1;
      }
      w.add(e.name, e.dtype, shape, bytes);
    }
    w.save(path);
  }
  CHECK_THROWS_AS(gan_load(path), Error);
  CHECK_THROWS_AS(gan_load(path, /*training_state=*/false), Error);
  gan_save(path, m, G, D, 12, 5, nullptr, nullptr, nullptr);
  CHECK_FALSE(gan_load(path).train);
  std::filesystem::remove(path);
  CHECK_THROWS_AS(gan_load(path), Error);
  CHECK_THROWS_AS(parse_objective("wgan"), UsageError);
}

TEST_CASE("gan: a class-conditional GAN learns a tiny data set (each class's samples within 0.3 RMS of its image)") {
  // Two classes of 8x8 images: a bright square top-left, or a bright bar at the bottom. (Without
  // classes a GAN this small often draws only one of them, mode collapse, depending on the seed;
  // with them, each class has one right answer.)
  const int64_t B = 16, P = 64;
  std::vector<float> data(2 * P, -1.0f);
  for (int y = 1; y < 4; ++y)
    for (int x = 1; x < 4; ++x) data[y * 8 + x] = 1.0f;
  for (int x = 0; x < 8; ++x) data[P + 6 * 8 + x] = 1.0f;
  GanConfig c = tiny(2);
  c.g_channels = 32, c.d_channels = 16, c.latent = 8;
  Generator G(c);
  Discriminator D(c);
  Rng rng(4);
  G.init(rng);
  D.init(rng);
  const AdamWConfig config{.beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
  AdamW adam_g(G.params().size(), config), adam_d(D.params().size(), config);
  std::vector<float> x(2 * B * P), z(B * c.latent), signs(2 * B), ones(B, 1.0f);
  std::vector<uint32_t> labels(2 * B);
  for (int64_t b = 0; b < 2 * B; ++b) signs[b] = b < B ? 1.0f : -1.0f;
  Arena arena;
  // The RMS distance of 32 samples of each class from that class's image.
  auto distance = [&](uint32_t k) {
    std::vector<float> zs(32 * c.latent);
    std::vector<uint32_t> ks(32, k);
    for (auto& v : zs) v = rng.normal();
    arena.reset();
    Graph g(arena, false);
    Tensor s = G.forward(g, g.constant({32, c.latent}, zs.data()), ks.data());
    double mean = 0;
    for (int64_t i = 0; i < 32; ++i) {
      double d = 0;
      for (int64_t q = 0; q < P; ++q) d += std::pow(s.data[i * P + q] - data[k * P + q], 2);
      mean += std::sqrt(d / P) / 32;
    }
    return mean;
  };
  const double before[2] = {distance(0), distance(1)};
  for (int step = 0; step < 400; ++step) {
    for (int64_t b = 0; b < B; ++b) {
      const uint32_t k = rng.below(2);
      labels[b] = labels[B + b] = k;
      std::copy(data.begin() + k * P, data.begin() + (k + 1) * P, x.begin() + b * P);
    }
    for (auto& v : z) v = rng.normal();
    arena.reset();
    Graph gG(arena, true);
    Tensor fake = G.forward(gG, gG.constant({B, c.latent}, z.data()), labels.data() + B);
    std::copy(fake.data, fake.data + B * P, x.begin() + B * P);
    {
      Graph gD(arena, true);
      D.params().zero_grads();
      gD.gan_loss(D.forward(gD, gD.constant({2 * B, 1, 8, 8}, x.data()), labels.data()).logits, signs.data(),
                  GanLoss::bce, 2);
      gD.backward();
      adam_d.step(D.params(), 1e-3f);
    }
    Graph gD(arena, true);
    G.params().zero_grads();
    gD.gan_loss(D.forward(gD, fake, labels.data() + B).logits, ones.data(), GanLoss::bce);
    gD.backward();
    gG.backward();
    adam_g.step(G.params(), 1e-3f);
  }
  const double after[2] = {distance(0), distance(1)};
  MESSAGE("RMS distance of samples to their class's image: squares " << before[0] << " -> " << after[0] << ", bars "
                                                                     << before[1] << " -> " << after[1]);
  for (int k = 0; k < 2; ++k) {
    CHECK(before[k] > 0.6);
    CHECK(after[k] < 0.3);
  }
}
