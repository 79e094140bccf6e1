// AdamW with decoupled weight decay (Loshchilov and Hutter 2019, algorithm 2), gradient
// clipping by global norm, and the warmup + cosine learning-rate schedule of nanoGPT.
//
//   gen::AdamW adam(params.size(), {.beta1 = 0.9f, .beta2 = 0.99f, .weight_decay = 0.1f});
//   float norm = gen::grad_norm(params);          // clipping folded into the update:
//   adam.step(params, gen::cosine_lr(step, schedule), gen::clip_scale(norm, 1.0f));
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace gen {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // applied only to views with decay = true
};

class AdamW {
 public:
  AdamW(size_t size, AdamWConfig config) : config_(config), m_(size, 0.0f), v_(size, 0.0f) {}
  // One update with learning rate lr, on the gradients times grad_scale (what clip_grad_norm
  // would have scaled them by, without the pass that writes them); the step count (for bias
  // correction) advances. Elementwise, on OpenMP's threads: the result does not depend on them.
  void step(Parameters& params, float lr, float grad_scale = 1.0f);
  int64_t steps() const { return t_; }
  // The state, for exact resume from a checkpoint.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_steps(int64_t t) { t_ = t; }
  const AdamWConfig& config() const { return config_; }
  // Leaves these views (indices into params.views()) to another rule (Muon below): step() does
  // not touch their weights, and their stretch of m() is that rule's to use.
  void leave_out(const std::vector<size_t>& views, size_t view_count);

 private:
  AdamWConfig config_;
  std::vector<float> m_, v_;
  std::vector<char> left_out_;  // per view; empty: none
  int64_t t_ = 0;
};

// Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers"), in the form of Liu et al.
// 2025 ("Muon is scalable for LLM training"): for each matrix W [rows, cols], Nesterov momentum
// M = mu M + g, then the update U = g + mu M made orthogonal (five Newton-Schulz iterations
// of the quintic x -> a x + b x^3 + c x^5 on its singular values, from U / |U|_F), scaled by
// 0.2 sqrt(max(rows, cols)) so that its RMS matches AdamW's typical update, and applied with
// AdamW's learning rate and decoupled weight decay: W -= lr (wd W + scale O). The momentum lives in
// the AdamW's m() at the matrices' offsets (AdamW::leave_out gives them up), so a checkpoint
// saves and restores it as it does AdamW's moments.
//
//   adam.leave_out(matrices, params.views().size());
//   Muon muon(matrices, {.momentum = 0.95f, .weight_decay = 0.5f});
//   adam.step(params, lr, scale);  muon.step(params, adam.m().data(), lr, scale);
//
// Each matrix is one thread's (the products single-threaded): the bits do not depend on the
// thread count.
struct MuonConfig {
  float momentum = 0.95f;
  float weight_decay = 0.0f;
  int iterations = 5;
};

class Muon {
 public:
  // views: indices into the parameters' views, each of two dimensions.
  Muon(std::vector<size_t> views, MuonConfig config) : views_(std::move(views)), config_(config) {}
  void step(Parameters& params, float* momentum, float lr, float grad_scale = 1.0f) const;
  const MuonConfig& config() const { return config_; }

 private:
  std::vector<size_t> views_;
  MuonConfig config_;
};

// Newton-Schulz's orthogonalization, in place: x [rows, cols] (row-major) becomes about U V^T of
// its SVD U S V^T (singular values brought into about 0.7..1.2, not exactly 1: the quintic
// Muon uses trades exactness for speed), after `iterations` steps. scratch: reused buffers.
void orthogonalize(float* x, int64_t rows, int64_t cols, int iterations, std::vector<float>& scratch);

// The global L2 norm of the gradients, summed in double in a fixed order (not the threads').
float grad_norm(const Parameters& params);
// The factor that brings a gradient of this norm down to max_norm (if max_norm > 0), else 1.
float clip_scale(float norm, float max_norm);
// Scales all gradients so that their global L2 norm is at most max_norm (if max_norm > 0);
// returns the norm before clipping.
float clip_grad_norm(Parameters& params, float max_norm);

struct LrSchedule {
  float lr = 1e-3f;      // peak
  float min_lr = 1e-4f;  // floor, reached at decay_steps
  int64_t warmup = 100;
  int64_t decay_steps = 2000;
};
// nanoGPT's get_lr: linear warmup over `warmup` steps, then cosine from lr down to min_lr at
// decay_steps, then min_lr.
float cosine_lr(int64_t step, const LrSchedule& schedule);

}  // namespace gen
