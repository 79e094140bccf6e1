// How a GAN learns (Goodfellow et al. 2014): an arms race. The detective (discriminator D)
// takes a step towards telling real images from the forger's; then the forger (generator G)
// takes a step towards images the updated detective calls real. With BCE the forger's loss is
// the non-saturating -log D(G(z)); hinge and WGAN use -D(G(z)). WGAN-GP (Gulrajani et al. 2017)
// adds a penalty that keeps the critic's gradient norm near 1 at points between real and fake
// images. Training collapses in two ways the monitor watches for: a detective that always wins
// (its loss near 0), or a forger that draws the same picture whatever z says (samples from
// different latents nearly equal).
//
//   gen::AdversarialStep race(G, D, objective, config, set, rng);
//   gen::AdversarialFigures f = race.step();        // d_steps detective steps, one forger step
//   gen::CollapseMonitor monitor(set, objective);
//   for (auto& warning : monitor.observe(step, f, G, seed)) ...
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cluster.h"
#include "core/rng.h"
#include "io/idx.h"
#include "models/gan.h"
#include "models/gan_checkpoint.h"
#include "tensor/optimizer.h"

namespace gen {

// The latent of image `index` drawn with `seed`: its own random stream, so that an image depends
// on the seed and its index only (not on how many are drawn). psi < 1 pulls it towards the mean
// (truncation).
void draw_latent(float* z, int64_t latent, uint64_t seed, int64_t index, double psi);

// Spherical interpolation between a and b (Shoemake 1985): a Gaussian latent's norm stays
// typical along the way, where a straight line passes near the origin (a blurrier, "average"
// image).
void slerp(const float* a, const float* b, float* out, int64_t n, double t);

// The generator at inference (BatchNorm's running statistics) on n latents z [n, latent], in
// batches: images [n, C, S, S]. labels[n] when conditional.
std::vector<float> generate(Generator& G, const std::vector<float>& z, const std::vector<uint32_t>& labels, int64_t n);

// Mean distance between pairs of n images (RMS over pixels): how different the samples are.
double diversity(const float* x, int64_t n, int64_t P);

// The discriminator's verdict as a learner reads it: a probability for BCE, a raw score else.
float verdict(GanObjective objective, float logit);

struct AdversarialConfig {
  int64_t batch = 64;
  float lr = 2e-4f;
  float beta1 = 0.5f, beta2 = 0.999f;
  int64_t d_steps = 1;  // detective steps per forger step
  float gp = 10.0f;     // WGAN-GP's penalty weight
};

// One step's figures: the arms race in numbers.
struct AdversarialFigures {
  double d_loss = 0, g_loss = 0;  // the detective's (with the penalty) and the forger's
  double d_real = 0, d_fake = 0;  // the verdict on real images and on the forger's
  double gp = 0;                  // the penalty (WGAN-GP)
};

// The batch goes in shards of at least kMinShardImages images (tensor/shards.h), fixed by the
// batch: the same bytes on any threads and ranks. The generator's batch normalization sees the
// whole batch's statistics (its shards meet).
class AdversarialStep {
 public:
  static constexpr int64_t kMinShardImages = 32;
  // cluster: the ranks that share the shards (null: this process alone).
  AdversarialStep(Generator& G, Discriminator& D, GanObjective objective, const AdversarialConfig& config,
                  const Dataset& set, Rng& rng, Cluster* cluster = nullptr);
  // config.d_steps detective steps, then one forger step. A non-finite loss stops the step
  // before its update (the caller sees it in the figures).
  AdversarialFigures step();
  AdamW& adam_g() { return adam_g_; }
  AdamW& adam_d() { return adam_d_; }
  const AdamW& adam_g() const { return adam_g_; }
  const AdamW& adam_d() const { return adam_d_; }

 private:
  // A batch of real images (those of this process's shards) into real_ with their labels,
  // latents z_ for the fakes (asked for the same classes), and WGAN-GP's mixing weights mix_.
  void real_batch();
  // One detective step on local shard j: its real images against its fakes. The fakes come
  // from generator graph `from` (kept for the forger's step when it is the last).
  void detective(int j, Graph& from, Graph& g, double* figures);

  Generator& G_;
  Discriminator& D_;
  GanObjective objective_;
  AdversarialConfig config_;
  const Dataset& set_;
  Rng& rng_;
  Cluster* cluster_;
  AdamW adam_g_, adam_d_;
  std::vector<Arena> arenas_;  // one per local shard
  std::vector<Tensor> fakes_;  // each local shard's fakes, on its kept generator graph
  std::vector<float> real_, z_, mix_, signs_, ones_;
  std::vector<uint32_t> labels_;
};

class CollapseMonitor {
 public:
  // The yardstick: how different the set's first images are from each other.
  CollapseMonitor(const Dataset& set, GanObjective objective);
  // After each step: warnings (once each) when the detective's loss averaged over 100 steps is
  // near 0 (BCE), or every 500 steps when 32 samples from fixed latents (drawn from seed) are
  // nearly equal.
  std::vector<std::string> observe(int64_t step, const AdversarialFigures& f, Generator& G, uint64_t seed);

 private:
  GanObjective objective_;
  double real_diversity_ = 0;
  double recent_d_loss_ = 0;
  int64_t recent_n_ = 0;
  bool warned_loss_ = false, warned_same_ = false;
};

}  // namespace gen
