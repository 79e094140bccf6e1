// The GAN behind `ggan`: a DCGAN generator (the forger) and discriminator (the detective) for
// small images (Radford et al. 2016, sized for 28x28).
//
//   generator:     z [B, latent] (+ class embedding) -> linear -> [g_channels, base, base] ->
//                  BatchNorm, ReLU -> per further level: transposed conv 4x4 stride 2 (channels
//                  halved), BatchNorm, ReLU -> transposed conv 4x4 stride 2 to the image's
//                  channels -> tanh: an image in [-1, 1]
//   discriminator: image -> per level: conv 4x4 stride 2 (d_channels, doubled per level),
//                  leaky ReLU 0.2 -> flatten -> linear -> one logit (+ the projection of a class
//                  embedding on the features, Miyato and Koyama 2018, when conditional)
//
// With latent 64, g_channels 256, d_channels 64 and two levels on 28x28 (base 7): a 1.33M-
// parameter generator (54 MFLOP per image) and a 0.14M-parameter discriminator. The
// discriminator has no normalization, so that its gradient with respect to the input (WGAN-GP's
// penalty) can be built exactly as a graph of its weights: input_gradient().
//
//   gen::Generator G(config);  gen::Discriminator D(config);  G.init(rng);  D.init(rng);
//   gen::Graph g(arena, true);
//   gen::Tensor fake = G.forward(g, g.constant({B, latent}, z), labels);
//   auto out = D.forward(g, fake, labels);            // out.logits [B, 1]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "tensor/graph.h"
#include "tensor/tensor.h"

namespace gen {

struct GanConfig {
  int64_t image_channels = 1;
  int64_t image_size = 28;
  int64_t latent = 64;
  int64_t g_channels = 256;  // the generator's widest level (the base size)
  int64_t d_channels = 64;   // the discriminator's first level
  int64_t levels = 2;        // factors of 2 between the base size and the image
  int64_t classes = 0;       // > 0: class-conditional
  // Throws UsageError naming the problem.
  void validate() const;
  int64_t base_size() const { return image_size >> levels; }
  // The discriminator's flattened features.
  int64_t d_features() const;
  double g_flops_per_image() const;  // forward, multiply-add = 2
  double d_flops_per_image() const;
};

class Generator {
 public:
  // All weights zero (init() draws them), or `weights` as they are (a checkpoint's, no copy).
  explicit Generator(const GanConfig& config, ZeroedFloats weights = {});
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  const GanConfig& config() const { return config_; }
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }
  // BatchNorm's running means and variances, layer after layer (mean then variance): updated by
  // training forwards, used by inference ones; saved with the weights.
  std::vector<float>& running() { return running_; }
  const std::vector<float>& running() const { return running_; }

  // DCGAN's initialization: weights N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0; running
  // statistics mean 0, variance 1.
  void init(Rng& rng);
  // z [B, latent] -> images [B, C, S, S] in [-1, 1]. labels[B] when conditional (else null).
  // A training graph normalizes with the batch's statistics; an inference graph with the
  // running ones, so that each image depends on its own z only. In shards (tensor/shards.h) the
  // weights' gradients go to the shard's copy, and a training graph's statistics are the whole
  // batch's (its shards meet through the graph).
  Tensor forward(Graph& g, const Tensor& z, const uint32_t* labels, int shard = 0);

 private:
  GanConfig config_;
  Parameters params_;
  std::vector<float> running_;
  Tensor embed_, fc_w_;
  std::vector<Tensor> bn_w_, bn_b_, conv_w_;
  Tensor out_b_;
};

class Discriminator {
 public:
  explicit Discriminator(const GanConfig& config, ZeroedFloats weights = {});
  Discriminator(const Discriminator&) = delete;
  Discriminator& operator=(const Discriminator&) = delete;
  const GanConfig& config() const { return config_; }
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }

  // Weights N(0, 0.02), biases 0.
  void init(Rng& rng);

  struct Output {
    Tensor logits;            // [B, 1]: how real each image looks (before the sigmoid)
    std::vector<Tensor> pre;  // each level's convolution output, before its leaky ReLU
  };
  // x [B, C, S, S] in [-1, 1]; labels[B] when conditional (else null). Without weight_grads
  // the backward pass computes no gradients for the discriminator's weights, only for x (the
  // generator's step, which updates the generator alone). shard: as the generator's.
  Output forward(Graph& g, const Tensor& x, const uint32_t* labels, bool weight_grads = true, int shard = 0);

  // d logit / d x for each image of a forward pass (`at`, from any graph), as a tensor [B, C, S,
  // S] of this graph that depends on the discriminator's weights: a penalty on it (WGAN-GP's
  // gradient_penalty) sends exact gradients to them. The network is piecewise linear in x, so
  // the backward pass is a chain of transposed convolutions with the same weights and the leaky
  // ReLU slopes at `at` as constants.
  Tensor input_gradient(Graph& g, const Output& at, const uint32_t* labels, int shard = 0);

  static constexpr float kSlope = 0.2f;

 private:
  GanConfig config_;
  Parameters params_;
  std::vector<Tensor> conv_w_, conv_b_;
  Tensor out_w_, out_b_, embed_;
};

}  // namespace gen
