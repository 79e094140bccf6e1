// The denoiser of the diffusion model: a small U-Net (Ronneberger et al. 2015, as in DDPM, Ho
// et al. 2020) that predicts the noise eps in a noisy image x_t, given the step t and a class.
//
//   x [B,C,S,S] -> conv_in -> per level: a residual block (kept for the skip), then a stride-2
//   convolution down -> a middle residual block at the smallest size -> per level, going up:
//   concatenate the skip, a residual block, then nearest upsampling and a convolution ->
//   GroupNorm, SiLU, conv_out -> eps [B,C,S,S]
//
// A residual block: GroupNorm, SiLU, 3x3 conv; plus a projection of the time embedding added
// per channel; GroupNorm, SiLU, 3x3 conv; plus the input (through a 1x1 conv when the channels
// change). The time embedding: sinusoidal features of t through linear, SiLU, linear; with
// classes, a learned class embedding is added to it. The extra class index `classes` is "no
// class" (label dropout during training; the unconditional half of classifier-free guidance).
//
// With channels {32, 64, 128} on 28x28 images: 28 -> 14 -> 7, 1.45M parameters.
//
// With `attention`, the middle residual block (at the smallest size: 7x7 here) is followed by
// self-attention over its pixels (as DDPM's 16x16 level): GroupNorm, then each pixel's channels
// through a linear layer to q, k, v, one head over every pixel, a linear projection (zero at
// initialization, so that the block starts as the identity), added to the block's input.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "tensor/graph.h"
#include "tensor/shards.h"
#include "tensor/tensor.h"

namespace gen {

struct UnetConfig {
  int64_t image_channels = 1;
  int64_t image_size = 28;
  std::vector<int64_t> channels = {32, 64, 128};  // per level; the image halves between levels
  int64_t groups = 8;                             // GroupNorm groups
  int64_t time_dim = 128;                         // width of the time (and class) embedding
  int64_t classes = 10;                           // 0: unconditional
  bool attention = false;                         // self-attention after the middle block
  // Throws UsageError naming the problem.
  void validate() const;
  // Forward FLOPs per image (multiply-add = 2), for GFLOP/s figures.
  double flops_per_image() const;
};

class Unet {
 public:
  // All weights zero (init() draws them), or `weights` as they are (a checkpoint's, no copy).
  explicit Unet(const UnetConfig& config, ZeroedFloats weights = {});
  Unet(const Unet&) = delete;
  Unet& operator=(const Unet&) = delete;
  const UnetConfig& config() const { return config_; }
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }

  // PyTorch's default initialization (uniform within 1/sqrt(fan_in)) for convolutions and
  // linear layers, unit GroupNorm gains, N(0, 1) class embeddings, and a zero output
  // convolution, so that the untrained network predicts eps = 0.
  void init(Rng& rng);

  // eps [B,C,S,S] for x [B,C,S,S], steps t[B] (as floats) and labels[B] (< classes, or ==
  // classes for "no class"; ignored without classes). The weights' gradients go to the shard's
  // copy (Parameters::set_shards, run_shards).
  Tensor forward(Graph& g, const Tensor& x, const float* t, const uint32_t* labels, int shard = 0);

 private:
  struct Res {
    Tensor gn1_w, gn1_b, conv1_w, conv1_b, time_w, time_b, gn2_w, gn2_b, conv2_w, conv2_b, skip_w, skip_b;
    // Every weight, in the order they are declared; the skip projection's two last (a block
    // whose input and output widths agree has none).
    std::array<Tensor*, 12> tensors() {
      return {&gn1_w, &gn1_b, &conv1_w, &conv1_b, &time_w, &time_b, &gn2_w, &gn2_b, &conv2_w, &conv2_b, &skip_w, &skip_b};
    }
  };
  struct Conv {
    Tensor w, b;
  };
  Res add_res(const std::string& name, int64_t in, int64_t out);
  Conv add_conv(const std::string& name, int64_t in, int64_t out, int64_t k);
  Tensor res(Graph& g, const Res& r, const Tensor& x, const Tensor& temb, int shard);
  Tensor attend(Graph& g, const Tensor& x, int shard);
  Conv in_shard(const Conv& c, int shard);

  UnetConfig config_;
  Parameters params_;
  std::vector<size_t> bind_;  // weights declared, in order, bound to their members after allocate()
  Conv conv_in_, time1_, time2_, conv_out_;
  Tensor class_emb_, out_gn_w_, out_gn_b_;
  std::vector<Res> down_res_, up_res_;
  std::vector<Conv> down_, up_;
  Res mid_;
  Tensor attn_norm_w_, attn_norm_b_, attn_qkv_w_, attn_qkv_b_, attn_proj_w_, attn_proj_b_;
};

}  // namespace gen
