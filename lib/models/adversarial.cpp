#include "models/adversarial.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io/image.h"
#include "tensor/graph.h"

namespace gen {

void draw_latent(float* z, int64_t latent, uint64_t seed, int64_t index, double psi) {
  Rng rng(seed, /*stream=*/static_cast<uint64_t>(index));
  for (int64_t k = 0; k < latent; ++k) z[k] = static_cast<float>(psi) * rng.normal();
}

void slerp(const float* a, const float* b, float* out, int64_t n, double t) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t k = 0; k < n; ++k) dot += double{a[k]} * b[k], na += double{a[k]} * a[k], nb += double{b[k]} * b[k];
  const double cos_omega = std::clamp(dot / std::sqrt(na * nb + 1e-30), -1.0, 1.0), omega = std::acos(cos_omega);
  if (std::sin(omega) < 1e-6) {  // (anti)parallel: a line is as good
    for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>((1 - t) * a[k] + t * b[k]);
    return;
  }
  const double wa = std::sin((1 - t) * omega) / std::sin(omega), wb = std::sin(t * omega) / std::sin(omega);
  for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>(wa * a[k] + wb * b[k]);
}

std::vector<float> generate(Generator& G, const std::vector<float>& z, const std::vector<uint32_t>& labels, int64_t n) {
  const GanConfig& c = G.config();
  const int64_t P = c.image_channels * c.image_size * c.image_size, batch = 256;
  std::vector<float> images(static_cast<size_t>(n * P));
  Arena arena;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t B = std::min(batch, n - start);
    arena.reset();
    Graph g(arena, false);
    Tensor x = G.forward(g, g.constant({B, c.latent}, z.data() + start * c.latent),
                         c.classes > 0 ? labels.data() + start : nullptr);
    std::copy(x.data, x.data + B * P, images.begin() + start * P);
  }
  return images;
}

double diversity(const float* x, int64_t n, int64_t P) {
  double sum = 0;
  int64_t pairs = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double d = 0;
      for (int64_t k = 0; k < P; ++k) {
        const double e = x[i * P + k] - x[j * P + k];
        d += e * e;
      }
      sum += std::sqrt(d / static_cast<double>(P));
      ++pairs;
    }
  return pairs ? sum / static_cast<double>(pairs) : 0;
}

float verdict(GanObjective objective, float logit) {
  return objective == GanObjective::bce ? 1.0f / (1.0f + std::exp(-logit)) : logit;
}

AdversarialStep::AdversarialStep(Generator& G, Discriminator& D, GanObjective objective,
                                 const AdversarialConfig& config, const Dataset& set, Rng& rng)
    : G_(G), D_(D), objective_(objective), config_(config), set_(set), rng_(rng),
      adam_g_(G.params().size(), {.beta1 = config.beta1, .beta2 = config.beta2, .eps = 1e-8f, .weight_decay = 0.0f}),
      adam_d_(D.params().size(), {.beta1 = config.beta1, .beta2 = config.beta2, .eps = 1e-8f, .weight_decay = 0.0f}) {
  const GanConfig& c = G.config();
  const int64_t B = config.batch, P = c.image_channels * c.image_size * c.image_size;
  x_.resize(static_cast<size_t>(2 * B * P));
  hat_.resize(static_cast<size_t>(B * P));
  z_.resize(static_cast<size_t>(B * c.latent));
  labels_.resize(static_cast<size_t>(2 * B));
  signs_.resize(static_cast<size_t>(2 * B));
  for (int64_t b = 0; b < 2 * B; ++b) signs_[static_cast<size_t>(b)] = b < B ? 1.0f : -1.0f;
  ones_.assign(static_cast<size_t>(B), 1.0f);
}

void AdversarialStep::real_batch() {
  const GanConfig& c = G_.config();
  const int64_t B = config_.batch, S = c.image_size, C = c.image_channels, P = C * S * S;
  for (int64_t b = 0; b < B; ++b) {
    const uint32_t i = rng_.below(static_cast<uint32_t>(set_.count));
    hwc_to_floats(set_.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(S), static_cast<int>(C),
                  x_.data() + b * P);
    const uint32_t label = c.classes > 0 ? set_.labels[i] : 0;
    labels_[static_cast<size_t>(b)] = label;
    labels_[static_cast<size_t>(B + b)] = label;  // the fakes are asked for the same classes
  }
  for (auto& v : z_) v = rng_.normal();
}

AdversarialFigures AdversarialStep::step() {
  const GanConfig& c = G_.config();
  const int64_t B = config_.batch, C = c.image_channels, S = c.image_size, P = C * S * S, L = c.latent;
  const bool wgan = objective_ == GanObjective::wgan_gp;
  const GanLoss kind = objective_ == GanObjective::bce     ? GanLoss::bce
                       : objective_ == GanObjective::hinge ? GanLoss::hinge
                                                           : GanLoss::linear;
  const uint32_t* fake_labels = c.classes > 0 ? labels_.data() + B : nullptr;
  AdversarialFigures f;
  arena_.reset();
  Graph gG(arena_, true);  // the generator's forward, kept for its step
  Tensor fake;
  for (int64_t k = 0; k < config_.d_steps; ++k) {
    // The detective's step: real images should score high, the forger's low.
    real_batch();
    if (k + 1 < config_.d_steps) {
      Graph once(arena_, true);
      fake = G_.forward(once, once.constant({B, L}, z_.data()), fake_labels);
    } else {
      fake = G_.forward(gG, gG.constant({B, L}, z_.data()), fake_labels);
    }
    std::copy(fake.data, fake.data + B * P, x_.begin() + B * P);
    Graph gD(arena_, true);
    D_.params().zero_grads();
    Discriminator::Output out = D_.forward(gD, gD.constant({2 * B, C, S, S}, x_.data()), labels_.data());
    f.d_loss = gD.gan_loss(out.logits, signs_.data(), kind, 2.0f);
    f.d_real = f.d_fake = 0;
    for (int64_t b = 0; b < B; ++b) {
      f.d_real += verdict(objective_, out.logits.data[b]) / static_cast<double>(B);
      f.d_fake += verdict(objective_, out.logits.data[B + b]) / static_cast<double>(B);
    }
    if (wgan) {
      // The penalty on the critic's gradient at points between real and fake images.
      for (int64_t b = 0; b < B; ++b) {
        const float e = rng_.uniform();
        for (int64_t q = 0; q < P; ++q)
          hat_[static_cast<size_t>(b * P + q)] = e * x_[b * P + q] + (1 - e) * x_[(B + b) * P + q];
      }
      Graph at_hat(arena_, false);
      Discriminator::Output there = D_.forward(at_hat, at_hat.constant({B, C, S, S}, hat_.data()), labels_.data());
      f.gp = gD.gradient_penalty(D_.input_gradient(gD, there, labels_.data()), config_.gp);
      f.d_loss += f.gp;
    }
    if (!std::isfinite(f.d_loss)) return f;
    gD.backward();
    adam_d_.step(D_.params(), config_.lr);
  }
  // The forger's step: make the (updated) detective call the fakes real. Non-saturating for
  // BCE (maximize log D(G(z))), -D(G(z)) for hinge and WGAN.
  Graph gD(arena_, true);
  Discriminator::Output out = D_.forward(gD, fake, fake_labels, /*weight_grads=*/false);
  f.g_loss = gD.gan_loss(out.logits, ones_.data(), kind == GanLoss::bce ? kind : GanLoss::linear);
  if (!std::isfinite(f.g_loss)) return f;
  G_.params().zero_grads();
  gD.backward();
  gG.backward();
  adam_g_.step(G_.params(), config_.lr);
  return f;
}

CollapseMonitor::CollapseMonitor(const Dataset& set, GanObjective objective) : objective_(objective) {
  const int64_t n = std::min<int64_t>(64, set.count), S = set.height, C = set.channels, P = C * S * S;
  std::vector<float> r(static_cast<size_t>(n * P));
  for (int64_t i = 0; i < n; ++i)
    hwc_to_floats(set.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(S), static_cast<int>(C),
                  r.data() + i * P);
  real_diversity_ = diversity(r.data(), n, P);
}

std::vector<std::string> CollapseMonitor::observe(int64_t step, const AdversarialFigures& f, Generator& G,
                                                  uint64_t seed) {
  std::vector<std::string> warnings;
  recent_d_loss_ += f.d_loss;
  ++recent_n_;
  if (step % 100 == 0) {
    // Collapse, as the trace shows it: a detective that always wins.
    const double mean = recent_d_loss_ / static_cast<double>(recent_n_);
    if (objective_ == GanObjective::bce && mean < 0.01 && !warned_loss_) {
      warnings.push_back(fmt::format(
          "warning: step {}: the discriminator's loss is near 0 ({:.4f}): it wins every time and the generator "
          "learns nothing (training has collapsed; lower --lr or restart with another --seed)",
          step, mean));
      warned_loss_ = true;
    }
    recent_d_loss_ = 0, recent_n_ = 0;
  }
  if (step % 500 == 0) {
    // ... or a forger that draws the same picture whatever z says.
    const GanConfig& c = G.config();
    const int64_t n = 32, L = c.latent, P = c.image_channels * c.image_size * c.image_size;
    std::vector<float> zs(static_cast<size_t>(n * L));
    std::vector<uint32_t> ls(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      draw_latent(zs.data() + i * L, L, seed + 2000, i, 1.0);
      ls[static_cast<size_t>(i)] = c.classes > 0 ? static_cast<uint32_t>(i % c.classes) : 0;
    }
    std::vector<float> samples = generate(G, zs, ls, n);
    const double d = diversity(samples.data(), n, P);
    if (d < 0.2 * real_diversity_ && !warned_same_) {
      warnings.push_back(fmt::format(
          "warning: step {}: samples from different z are nearly equal (mean distance {:.3f}, real images {:.3f}): "
          "mode collapse",
          step, d, real_diversity_));
      warned_same_ = true;
    }
  }
  return warnings;
}

}  // namespace gen
