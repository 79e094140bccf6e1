#include "models/adversarial.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "io/image.h"
#include "tensor/graph.h"
#include "tensor/shards.h"

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
                                 const AdversarialConfig& config, const Dataset& set, Rng& rng, Cluster* cluster)
    : G_(G), D_(D), objective_(objective), config_(config), set_(set), rng_(rng), cluster_(cluster),
      adam_g_(G.params().size(), {.beta1 = config.beta1, .beta2 = config.beta2, .eps = 1e-8f, .weight_decay = 0.0f}),
      adam_d_(D.params().size(), {.beta1 = config.beta1, .beta2 = config.beta2, .eps = 1e-8f, .weight_decay = 0.0f}) {
  const int shards = batch_shards(config.batch, kMinShardImages);
  G.params().set_shards(shards, cluster);
  D.params().set_shards(shards, cluster);
  const GanConfig& c = G.config();
  const int local = G.params().local_shards();
  const int64_t B = config.batch, b = B / shards, P = c.image_channels * c.image_size * c.image_size;
  arenas_.resize(static_cast<size_t>(local));
  fakes_.resize(static_cast<size_t>(local));
  real_.resize(static_cast<size_t>(local * b * P));
  z_.resize(static_cast<size_t>(B * c.latent));
  mix_.resize(static_cast<size_t>(B));
  labels_.resize(static_cast<size_t>(B));
  signs_.resize(static_cast<size_t>(2 * b));
  for (int64_t i = 0; i < 2 * b; ++i) signs_[static_cast<size_t>(i)] = i < b ? 1.0f : -1.0f;
  ones_.assign(static_cast<size_t>(b), 1.0f);
}

void AdversarialStep::real_batch() {
  // Every rank draws the whole batch (the same stream), and keeps its shards' images.
  const GanConfig& c = G_.config();
  const int64_t B = config_.batch, S = c.image_size, C = c.image_channels, P = C * S * S;
  const int64_t b = B / G_.params().shards(), mine = G_.params().first_shard() * b,
                end = mine + G_.params().local_shards() * b;
  for (int64_t i = 0; i < B; ++i) {
    const uint32_t k = rng_.below(static_cast<uint32_t>(set_.count));
    if (i >= mine && i < end)
      hwc_to_floats(set_.image_data(static_cast<int>(k)), static_cast<int>(S), static_cast<int>(S),
                    static_cast<int>(C), real_.data() + (i - mine) * P);
    labels_[static_cast<size_t>(i)] = c.classes > 0 ? set_.labels[k] : 0;
  }
  for (auto& v : z_) v = rng_.normal();
  if (objective_ == GanObjective::wgan_gp)
    for (auto& e : mix_) e = rng_.uniform();
}

namespace {
GanLoss gan_loss_kind(GanObjective objective) {
  return objective == GanObjective::bce     ? GanLoss::bce
         : objective == GanObjective::hinge ? GanLoss::hinge
                                            : GanLoss::linear;
}
}  // namespace

void AdversarialStep::detective(int j, Graph& from, Graph& g, double* figures) {
  const GanConfig& c = G_.config();
  const int shard = G_.params().first_shard() + j;
  const int64_t b = config_.batch / G_.params().shards(), at = shard * b, C = c.image_channels, S = c.image_size,
                P = C * S * S, L = c.latent;
  const uint32_t* labels = labels_.data() + at;  // the fakes are asked for the real images' classes
  Tensor fake = G_.forward(from, from.constant({b, L}, z_.data() + at * L), c.classes > 0 ? labels : nullptr, shard);
  fakes_[static_cast<size_t>(j)] = fake;
  // Real images should score high, the forger's low (a copy: no gradient flows to the forger).
  std::vector<float> both(static_cast<size_t>(2 * b * P));
  std::copy(real_.begin() + j * b * P, real_.begin() + (j + 1) * b * P, both.begin());
  std::copy(fake.data, fake.data + b * P, both.begin() + b * P);
  std::vector<uint32_t> both_labels(labels, labels + b);
  both_labels.insert(both_labels.end(), labels, labels + b);
  D_.params().zero_shard_grads(shard);
  Discriminator::Output out = D_.forward(g, g.constant({2 * b, C, S, S}, both.data()), both_labels.data(), true, shard);
  double loss = g.gan_loss(out.logits, signs_.data(), gan_loss_kind(objective_), 2.0f), real = 0, fooled = 0, gp = 0;
  for (int64_t i = 0; i < b; ++i) {
    real += verdict(objective_, out.logits.data[i]) / static_cast<double>(b);
    fooled += verdict(objective_, out.logits.data[b + i]) / static_cast<double>(b);
  }
  if (objective_ == GanObjective::wgan_gp) {
    // The penalty on the critic's gradient at points between real and fake images.
    std::vector<float> hat(static_cast<size_t>(b * P));
    for (int64_t i = 0; i < b; ++i) {
      const float e = mix_[static_cast<size_t>(at + i)];
      for (int64_t q = 0; q < P; ++q)
        hat[static_cast<size_t>(i * P + q)] = e * both[static_cast<size_t>(i * P + q)] +
                                              (1 - e) * both[static_cast<size_t>((b + i) * P + q)];
    }
    Graph at_hat(arenas_[static_cast<size_t>(j)], false);
    Discriminator::Output there = D_.forward(at_hat, at_hat.constant({b, C, S, S}, hat.data()), labels, true, shard);
    gp = g.gradient_penalty(D_.input_gradient(g, there, labels, shard), config_.gp);
    loss += gp;
  }
  figures[0] = loss, figures[1] = real, figures[2] = fooled, figures[3] = gp;
  g.backward();
}

AdversarialFigures AdversarialStep::step() {
  const GanConfig& c = G_.config();
  const int local = G_.params().local_shards();
  const int64_t shards = G_.params().shards();
  const uint32_t* no_labels = nullptr;
  AdversarialFigures f;
  ShardTeam team(local, cluster_);
  // Each shard's generator forward of the last detective step, kept for the forger's step.
  std::vector<std::unique_ptr<Graph>> kept(static_cast<size_t>(local));
  for (int64_t k = 0; k < config_.d_steps; ++k) {
    real_batch();
    std::vector<double> mine(4 * static_cast<size_t>(local));
    team.run([&](int j) {
      Arena& arena = arenas_[static_cast<size_t>(j)];
      if (k == 0) arena.reset();
      ShardSum* shards_meet = team.member(j);
      Graph once(arena, true, shards_meet), g(arena, true, shards_meet);
      Graph* from = &once;
      if (k + 1 == config_.d_steps) from = (kept[static_cast<size_t>(j)] = std::make_unique<Graph>(arena, true, shards_meet)).get();
      detective(j, *from, g, mine.data() + 4 * j);
    });
    D_.params().reduce_shards(cluster_);
    const std::vector<double> all = gather_shards(mine, cluster_);
    f = {};
    for (int64_t s = 0; s < shards; ++s) {
      f.d_loss += all[static_cast<size_t>(4 * s)] / static_cast<double>(shards);
      f.d_real += all[static_cast<size_t>(4 * s + 1)] / static_cast<double>(shards);
      f.d_fake += all[static_cast<size_t>(4 * s + 2)] / static_cast<double>(shards);
      f.gp += all[static_cast<size_t>(4 * s + 3)] / static_cast<double>(shards);
    }
    if (!std::isfinite(f.d_loss)) return f;
    adam_d_.step(D_.params(), config_.lr);
  }
  // The forger's step: make the (updated) detective call the fakes real. Non-saturating for
  // BCE (maximize log D(G(z))), -D(G(z)) for hinge and WGAN.
  std::vector<double> mine(static_cast<size_t>(local));
  team.run([&](int j) {
    const int shard = G_.params().first_shard() + j;
    const int64_t b = config_.batch / shards;
    Graph g(arenas_[static_cast<size_t>(j)], true, team.member(j));
    Discriminator::Output out = D_.forward(g, fakes_[static_cast<size_t>(j)],
                                           c.classes > 0 ? labels_.data() + shard * b : no_labels, false, shard);
    const GanLoss kind = gan_loss_kind(objective_);
    mine[static_cast<size_t>(j)] = g.gan_loss(out.logits, ones_.data(), kind == GanLoss::bce ? kind : GanLoss::linear);
    G_.params().zero_shard_grads(shard);
    g.backward();
    kept[static_cast<size_t>(j)]->backward();
  });
  G_.params().reduce_shards(cluster_);
  const std::vector<double> all = gather_shards(mine, cluster_);
  for (double loss : all) f.g_loss += loss / static_cast<double>(shards);
  if (!std::isfinite(f.g_loss)) return f;
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
