// A GPT (Radford et al. 2019, as nanoGPT's model.py): token and position embeddings, L blocks
// of pre-norm causal self-attention and a GELU MLP, a final layer norm, and a language-model
// head tied to the token embedding. Linear layers and layer norms have biases. Dropout, while
// training and when asked (GptDropout), where nanoGPT's model.py has it: on the embeddings'
// sum, on the attention weights, and on each residual branch before it joins the stream.
//
//   gen::GptConfig config{.vocab = 65, .context = 64, .layers = 4, .heads = 4, .embd = 128};
//   gen::Gpt model(config);
//   model.init(rng);                                  // nanoGPT's initialization
//   gen::Graph g(arena, true);
//   auto loss = model.loss(g, ids, targets, B, T);   // ids, targets [B,T]
//   g.backward();                                      // gradients in model.params().grads()
//
// Weight names follow nanoGPT's state_dict (transformer.h.0.attn.c_attn.weight, ...) so that a
// checkpoint maps onto the PyTorch model one to one.
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

struct GptConfig {
  int64_t vocab = 0;
  int64_t context = 64;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t embd = 128;
  // Throws UsageError naming the problem (embd not divisible by heads, sizes out of range).
  void validate() const;
  // Forward FLOPs per token, counting a multiply-add as 2 (for GFLOP/s figures).
  double flops_per_token() const;
};

// Dropout while training: the rate, and a key that decides the masks (one per step; each shard,
// layer and site draws its own from it, so the masks do not depend on threads or ranks).
struct GptDropout {
  float p = 0;
  uint64_t key = 0;
};

// The keys and values of the tokens so far, per layer, so that generating one more token costs
// one token's worth of work plus attention over the cache (not a whole window's forward pass).
struct GptCache {
  // The weights as step() reads them (nn::pack_rows), packed by make_cache(): a cache belongs
  // to the weights it was made from.
  ZeroedFloats weights;
  std::vector<float> k, v;  // v [layers, context, C]; k per layer [context, C] or, transposed, [C, context rounded up] (gpt.cpp, key_stride)
  int64_t length = 0;       // tokens in the cache (at positions 0..length-1)
  std::vector<float> x, normed, qkv, attended, hidden, activated, stats, logits;  // scratch: a row per token of a step
};

class Gpt {
 public:
  // All weights zero (init() draws them), or `weights` as they are (a checkpoint's, no copy).
  explicit Gpt(const GptConfig& config, ZeroedFloats weights = {});
  Gpt(const Gpt&) = delete;  // its tensors point into its own parameter buffer
  Gpt& operator=(const Gpt&) = delete;
  const GptConfig& config() const { return config_; }
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }
  // The blocks' weight matrices (attention's and the MLP's), as indices into params().views():
  // what Muon updates (tensor/optimizer.h); the embeddings, biases and norms stay AdamW's.
  std::vector<size_t> block_matrices() const;

  // nanoGPT's initialization: N(0, 0.02) for matrices and embeddings, N(0, 0.02/sqrt(2L)) for
  // the residual projections, zero biases, unit layer-norm gains.
  void init(Rng& rng);

  // logits [B,T,V] for ids [B,T] (T <= context); the weights' gradients go to the shard's copy
  // (Parameters::set_shards).
  Tensor logits(Graph& g, const uint32_t* ids, int64_t B, int64_t T, int shard = 0, GptDropout dropout = {});
  // A cache sized for this model (empty), with the weights packed for step().
  GptCache make_cache() const;
  // Appends `token` at position cache.length (< context) and returns the logits [V] for the
  // token after it. Gives the logits logits() gives at that position, up to rounding.
  const std::vector<float>& step(GptCache& cache, uint32_t token);
  // Appends n tokens at once (a prompt, or the window refilled when it slides; cache.length + n
  // <= context) and returns the logits for the token after the last: the same to the bit as n
  // one-token steps, and the same cache, at a fraction of the cost (the weights stream once per
  // four tokens (two where vectors are narrower than 16 floats), not once per token).
  const std::vector<float>& step(GptCache& cache, const uint32_t* tokens, int64_t n);

  // Mean next-token cross-entropy against targets [B,T].
  Graph::Loss loss(Graph& g, const uint32_t* ids, const uint32_t* targets, int64_t B, int64_t T, int shard = 0,
                   GptDropout dropout = {});

  struct BatchLoss {
    double mean = 0;      // mean cross-entropy over the batch's B * T tokens
    int64_t correct = 0;  // tokens whose most likely prediction is the target
  };
  // A training step's forward and backward pass (or, without training, an evaluation's forward
  // pass) over a batch split into params().shards() equal parts (B a multiple of them), this
  // process's parts run in parallel on the OpenMP threads, each on its own arena (arenas.size()
  // >= its shards), the rest on the cluster's other ranks (run_shards). Training zeroes the
  // gradients first and leaves the batch's gradient in params().grads(). Results depend on the
  // number of shards, not on the number of threads or ranks.
  BatchLoss batch_loss(std::vector<Arena>& arenas, const uint32_t* ids, const uint32_t* targets, int64_t B,
                       int64_t T, bool training, Cluster* cluster = nullptr, GptDropout dropout = {});

 private:
  struct Block {
    Tensor ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc_proj_w, fc_proj_b;
    // Every weight, in the order they are declared.
    std::array<Tensor*, 12> tensors() {
      return {&ln1_w, &ln1_b, &attn_w, &attn_b, &proj_w, &proj_b, &ln2_w, &ln2_b, &fc_w, &fc_b, &fc_proj_w, &fc_proj_b};
    }
  };
  int64_t packed_size() const;  // of GptCache::weights

  GptConfig config_;
  Parameters params_;
  Tensor wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Block> blocks_;
};

}  // namespace gen
