// The image classifier (models/classifier.h): shapes, the tape's gradients, a learning test on a
// tiny synthetic data set, checkpoints, and class names.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "models/classifier.h"
#include "models/classifier_checkpoint.h"
#include "models/unet_checkpoint.h"
#include "tensor/optimizer.h"

using namespace gen;

namespace {

ClassifierConfig tiny(bool pool = false) {
  ClassifierConfig c;
  c.image_size = 12;
  c.channels = {6, 8};
  c.features = 16;
  c.classes = 4;
  c.pool = pool;
  return c;
}

// Four classes of 12x12 images on a noisy black background, at a random place: a horizontal
// bar, a vertical bar, a hollow square, a filled 3x3 blob.
void synthetic_image(uint32_t label, Rng& rng, float* x) {
  const int S = 12;
  for (int k = 0; k < S * S; ++k) x[k] = -1.0f + 0.3f * rng.uniform();
  const int ox = static_cast<int>(rng.below(6)), oy = static_cast<int>(rng.below(6));
  auto set = [&](int px, int py) { x[(oy + py) * S + ox + px] = 1.0f - 0.3f * rng.uniform(); };
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) {
      bool on = false;
      if (label == 0) on = j == 2 || j == 3;                                 // horizontal bar
      if (label == 1) on = i == 2 || i == 3;                                 // vertical bar
      if (label == 2) on = i == 0 || i == 5 || j == 0 || j == 5;             // hollow square
      if (label == 3) on = i >= 1 && i <= 3 && j >= 1 && j <= 3;             // blob
      if (on) set(i, j);
    }
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (std::to_string(getpid()) + "-" + name)).string();
}

}  // namespace

TEST_CASE("classifier: shapes and the parameter count of the default") {
  ClassifierConfig standard;
  CHECK(standard.final_size() == 7);
  Classifier big(standard);
  // 3x3 convolutions 1->32->64->128, 6272 -> 256 features, 256 -> 10.
  CHECK(big.params().size() == (288 + 32) + (18432 + 64) + (73728 + 128) + (6272 * 256 + 256) + (2560 + 10));
  for (bool pool : {false, true}) {
    Classifier model(tiny(pool));
    Rng rng(1);
    model.init(rng);
    Arena arena;
    Graph g(arena, false);
    std::vector<float> x(3 * 144);
    for (auto& v : x) v = rng.normal();
    auto out = model.forward(g, g.constant({3, 1, 12, 12}, x.data()));
    CHECK(out.logits.shape == std::vector<int64_t>{3, 4});
    CHECK(out.features.shape == std::vector<int64_t>{3, 16});
    for (int64_t i = 0; i < out.features.size(); ++i) CHECK(out.features.data[i] >= 0.0f);  // after a ReLU
    // classify() gives the same features and a softmax of the same logits.
    Classified c = classify(model, x.data(), 3, true, true, /*batch=*/2);
    for (int64_t i = 0; i < 3 * 16; ++i) CHECK(c.features[static_cast<size_t>(i)] == doctest::Approx(out.features.data[i]));
    for (int64_t b = 0; b < 3; ++b) {
      double sum = 0;
      for (int64_t k = 0; k < 4; ++k) sum += c.probs[static_cast<size_t>(b * 4 + k)];
      CHECK(sum == doctest::Approx(1));
      CHECK(std::log(c.probs[static_cast<size_t>(b * 4)] / c.probs[static_cast<size_t>(b * 4 + 1)]) ==
            doctest::Approx(out.logits.data[b * 4] - out.logits.data[b * 4 + 1]).epsilon(1e-4));
    }
  }
  ClassifierConfig bad = standard;
  bad.classes = 1;
  CHECK_THROWS_AS(bad.validate(), UsageError);
}

TEST_CASE("classifier: the tape's gradients match finite differences of the loss, for every weight") {
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    ClassifierConfig c = tiny(pool);
    c.image_size = 6;
    Classifier model(c);
    Rng rng(7);
    model.init(rng);
    // Finite differences straddle a ReLU's kink wherever a pre-activation lies within h of 0, so
    // keep every unit far from it: small weights, and biases of +3 (a live unit) or -3 (a dead
    // one, which must pass no gradient) by turns. The kink itself is checked in test_activations.
    for (const auto& view : model.params().views()) {
      float* w = model.params().values() + view.offset;
      const bool bias = view.name.ends_with(".bias");
      for (size_t i = 0; i < view.size; ++i) w[i] = bias ? (i % 2 ? -3.0f : 3.0f) : 0.2f * w[i] + 0.02f * rng.normal();
    }
    const int64_t B = 3;
    std::vector<float> x(static_cast<size_t>(B * 36));
    for (auto& v : x) v = rng.normal();
    std::vector<uint32_t> labels = {0, 3, 1};
    Arena arena;
    auto loss_at = [&](bool training) {
      arena.reset();
      Graph g(arena, training);
      auto out = model.forward(g, g.constant({B, 1, 6, 6}, x.data()));
      double loss = g.cross_entropy(out.logits, labels.data()).mean;
      if (training) g.backward();
      return loss;
    };
    model.params().zero_grads();
    loss_at(true);
    std::vector<float> analytic(model.params().grads(), model.params().grads() + model.params().size());
    for (const auto& view : model.params().views()) {
      CAPTURE(view.name);
      double diff = 0, norm = 0;
      for (size_t i = view.offset; i < view.offset + view.size; ++i) {
        float& w = model.params().values()[i];
        float saved = w;
        const float h = 1e-2f;
        w = saved + h;
        double plus = loss_at(false);
        w = saved - h;
        double minus = loss_at(false);
        w = saved;
        double numeric = (plus - minus) / (2.0 * h);
        diff += (numeric - analytic[i]) * (numeric - analytic[i]);
        norm += numeric * numeric;
      }
      CHECK(norm > 0);
      CHECK(std::sqrt(diff / std::max(norm, 1e-30)) < 0.03);
    }
  }
}

TEST_CASE("classifier: learns four synthetic shapes (>= 95% on new images after 150 steps)") {
  Classifier model(tiny());
  Rng rng(11);
  model.init(rng);
  AdamW adam(model.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f});
  const int64_t B = 32, P = 144;
  std::vector<float> x(static_cast<size_t>(B * P));
  std::vector<uint32_t> labels(static_cast<size_t>(B));
  Arena arena;
  double first = 0;
  for (int step = 0; step < 150; ++step) {
    for (int64_t b = 0; b < B; ++b) {
      labels[static_cast<size_t>(b)] = rng.below(4);
      synthetic_image(labels[static_cast<size_t>(b)], rng, x.data() + b * P);
    }
    arena.reset();
    Graph g(arena, true);
    model.params().zero_grads();
    auto out = model.forward(g, g.constant({B, 1, 12, 12}, x.data()));
    auto loss = g.cross_entropy(out.logits, labels.data());
    g.backward();
    adam.step(model.params(), 3e-3f);
    if (step < 5) first += loss.mean / 5;
  }
  // New images, from another stream.
  Rng test_rng(12);
  const int64_t N = 400;
  std::vector<float> test(static_cast<size_t>(N * P));
  std::vector<uint32_t> truth(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    truth[static_cast<size_t>(i)] = test_rng.below(4);
    synthetic_image(truth[static_cast<size_t>(i)], test_rng, test.data() + i * P);
  }
  Classified c = classify(model, test.data(), N, true, false);
  int64_t right = 0;
  for (int64_t i = 0; i < N; ++i) {
    const float* p = c.probs.data() + i * 4;
    right += std::max_element(p, p + 4) - p == truth[static_cast<size_t>(i)];
  }
  double accuracy = static_cast<double>(right) / static_cast<double>(N);
  MESSAGE("synthetic shapes: first loss " << first << ", test accuracy " << accuracy);
  CHECK(first > 1.0);  // log(4) = 1.39 at the start
  CHECK(accuracy >= 0.95);
}

TEST_CASE("classifier checkpoint: round trip; other kinds refused with one clear message") {
  ClassifierModel info{tiny(), {"bar", "column", "T-shirt/top", "blob"}};
  Classifier model(info.net);
  Rng rng(3);
  model.init(rng);
  std::vector<float> weights(model.params().values(), model.params().values() + model.params().size());
  const std::string path = temp_path("classifier.st");
  AdamW adam(weights.size(), {});
  adam.m().assign(weights.size(), 0.5f);
  adam.v().assign(weights.size(), 0.25f);
  adam.set_steps(7);
  rng.normal();
  TrainState train;
  train.steps = 20;
  train.rng = rng.save();
  train.settings = {{"batch", 32}};
  classifier_save(path, info, weights.data(), 7, 42, 0.9125, &train, &adam);
  ClassifierCheckpoint back = classifier_load(path);
  CHECK(std::vector<float>(back.weights.begin(), back.weights.end()) == weights);
  CHECK(back.model.class_names == info.class_names);
  CHECK(back.model.net.channels == info.net.channels);
  CHECK(back.step == 7);
  CHECK(back.seed == 42);
  CHECK(back.test_accuracy == doctest::Approx(0.9125));
  REQUIRE(back.train);
  REQUIRE(back.train->optimizers.size() == 1);
  CHECK(back.train->optimizers[0].m == adam.m());
  CHECK(back.train->optimizers[0].steps == 7);
  CHECK(back.train->steps == 20);
  CHECK(back.train->rng.has_spare == train.rng.has_spare);
  CHECK(back.train->rng.state == train.rng.state);
  // Loaded to score with: the same weights, the moments checked but not read.
  ClassifierCheckpoint scoring = classifier_load(path, /*training_state=*/false);
  CHECK(std::vector<float>(scoring.weights.begin(), scoring.weights.end()) == weights);
  REQUIRE(scoring.train);
  CHECK(scoring.train->optimizers[0].m.empty());
  CHECK(scoring.train->optimizers[0].steps == 7);
  classifier_save(path, info, weights.data(), 7, 42, -1, nullptr, nullptr);
  back = classifier_load(path);
  CHECK(!back.train);
  CHECK(back.test_accuracy == -1);

  // A diffusion checkpoint is not a classifier.
  DiffusionModel unet;
  unet.unet.image_size = 4;
  unet.unet.channels = {8};
  unet.unet.classes = 0;
  unet.unet.time_dim = 8;
  Unet u(unet.unet);
  std::vector<float> uw(u.params().size(), 0.0f);
  diffusion_save(path, unet, uw, 1, 1, nullptr, nullptr, nullptr);
  try {
    classifier_load(path);
    FAIL("a diffusion checkpoint loaded as a classifier");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("not an image classifier: its format is 'gen-unet'") != std::string::npos);
  }
  std::filesystem::remove(path);
}
