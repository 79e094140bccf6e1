// The tape: a model's forward pass calls layers through a Graph, which computes each layer and
// records how to send gradients back through it; backward() replays the records in reverse.
// No model writes its own backward pass.
//
//   gen::Graph g(arena, /*training=*/true);
//   gen::Tensor h = g.embedding(ids, B, T, wte, wpe);
//   h = g.add(h, g.linear(g.gelu(g.linear(h, w1, b1)), w2, b2));
//   auto loss = g.cross_entropy(g.linear(h, wte, {}), targets);
//   g.backward();                     // parameter gradients accumulate in Parameters::grads()
//
// Activations come from the arena; reset the arena (and make a new Graph) for the next step.
// A layer's output has a gradient only while backward() needs it: a buffer lent from the arena
// when the first backward step writes it, and taken back for a later one once the layer that
// made the output has sent it on. So the gradients of a deep model's activations take about one
// layer's worth of memory, not a copy of every activation. Gradients that outlive backward() are
// those of the weights (Parameters::grads()) and of inputs made by tensor().
// Without training the graph records nothing and allocates no gradients.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "tensor/activations.h"
#include "tensor/gan_losses.h"  // GanLoss
#include "tensor/tensor.h"

namespace gen {

class Graph;
class ShardSum;  // tensor/shards.h

// The gradient of a layer's output (Tensor::node), while backward() has it.
struct GradSlot {
  Graph* owner;        // whose arena lends the buffer (a tensor may go on to another graph)
  int64_t size;        // floats
  float* grad = nullptr;
  size_t capacity = 0;  // floats in the lent buffer
};

class Graph {
 public:
  // shards: how a graph of one shard of a batch meets the others (batch normalization's
  // statistics are the whole batch's); null for a whole batch.
  Graph(Arena& arena, bool training, ShardSum* shards = nullptr)
      : arena_(arena), training_(training), shards_(shards) {}
  Graph(const Graph&) = delete;  // the tape's steps point at it
  Graph& operator=(const Graph&) = delete;

  // An input of this shape (with a zeroed gradient when training, which outlives backward()).
  Tensor tensor(std::vector<int64_t> shape);

  // ids[B,T] -> [B,T,C]: token embedding wte[V,C] plus position embedding wpe[>=T,C].
  Tensor embedding(const uint32_t* ids, int64_t B, int64_t T, const Tensor& wte, const Tensor& wpe);
  // x[..., C] -> [..., OC] with w[OC,C] and b[OC] (b may be undefined); plus residual[..., OC]
  // if given: add(residual, linear(x, w, b)) without the product's tensor in between.
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual = {});
  Tensor layernorm(const Tensor& x, const Tensor& w, const Tensor& b);
  Tensor gelu(const Tensor& x);
  Tensor add(const Tensor& a, const Tensor& b);
  // Inverted dropout (nn::dropout_forward) while training with p > 0; x itself otherwise. key
  // decides the mask: give each use its own.
  Tensor dropout(const Tensor& x, float p, uint64_t key);
  // qkv[B,T,3C] -> [B,T,C], NH heads; causal, or over every position (an image's pixels).
  Tensor attention(const Tensor& qkv, int64_t NH, bool causal = true, float dropout = 0, uint64_t key = 0);
  // x[B,M,N] -> [B,N,M] (an image's channel planes [B,C,HW] to its pixels as tokens [B,HW,C]).
  Tensor transpose(const Tensor& x);

  // Image layers, on NCHW tensors [B,C,H,W].
  // w[OC,C,K,K], b[OC] (b may be undefined); K from w, square.
  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad);
  // w[C,OC,K,K] (PyTorch's layout), b[OC]: [B,C,H,W] -> [B,OC,(H-1)stride-2pad+K, ...].
  Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad);
  // G groups over the channels; w[C], b[C].
  Tensor groupnorm(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G);
  Tensor silu(const Tensor& x);
  Tensor upsample2x(const Tensor& x);
  // x[B,C,H,W] + e[B,C] at every pixel.
  Tensor add_channels(const Tensor& x, const Tensor& e);
  // [B,C1,H,W] and [B,C2,H,W] -> [B,C1+C2,H,W].
  Tensor concat_channels(const Tensor& a, const Tensor& b);
  // table[V,C] rows picked by ids[N] -> [N,C].
  Tensor gather_rows(const Tensor& table, const uint32_t* ids, int64_t N);
  // A constant input (no gradient) of this shape, holding a copy of values.
  Tensor constant(std::vector<int64_t> shape, const float* values);

  // Mean squared error of pred against target (same size; target gets no gradient);
  // backward() starts from here.
  float mse(const Tensor& pred, const Tensor& target);

  struct Loss {
    float mean = 0;   // mean cross-entropy over the rows
    Tensor probs;     // softmax of the logits, [N,V]
    int64_t correct;  // rows whose most likely token is the target
  };
  // Mean cross-entropy of logits[N,V] against targets[N]; backward() starts from here, with the
  // gradient of weight times the mean (a shard's share of a batch whose shards differ in size).
  Loss cross_entropy(const Tensor& logits, const uint32_t* targets, float weight = 1);

  void backward();
  bool training() const { return training_; }

  // Classifier layers (tensor/activations.h).
  Tensor relu(const Tensor& x);
  // [B,C,H,W] -> [B,C]: the mean of each channel.
  Tensor global_avg_pool(const Tensor& x);

  // GAN layers (tensor/activations.h, tensor/gan_losses.h).
  Tensor leaky_relu(const Tensor& x, float slope);
  Tensor tanh(const Tensor& x);
  // Batch normalization over x[B,C] or x[B,C,H,W], per channel, w[C], b[C] (PyTorch's
  // BatchNorm1d/2d, eps 1e-5). Training: the batch's statistics, and running_mean[C],
  // running_var[C] (if not null) move towards them, running = (1 - momentum) running +
  // momentum stat, with the unbiased variance (n/(n-1), n = B*H*W values per channel).
  // Otherwise (an evaluation graph): the running statistics, which must then be given.
  Tensor batchnorm(const Tensor& x, const Tensor& w, const Tensor& b, float* running_mean, float* running_var,
                   float momentum = 0.1f);
  // A GAN loss on the discriminator's logits (N values, [N] or [N,1]) with signs[N] (+1 real,
  // -1 fake): weight times the mean of f(signs[i] logits[i]) (GanLoss says which f). Like mse,
  // backward() starts from here; its gradient adds to logits' gradient, so the losses of two
  // calls on one graph add up. signs is copied.
  float gan_loss(const Tensor& logits, const float* signs, GanLoss kind, float weight = 1);
  // a * b elementwise (same size; either may be a constant).
  Tensor mul(const Tensor& a, const Tensor& b);
  // WGAN-GP's penalty on g[N, ...] (N rows): weight times the mean over rows of
  // (||g_n||_2 - 1)^2; backward() starts from here too. The gradient reaches only what g was
  // computed from on this graph (no gradient of a gradient).
  float gradient_penalty(const Tensor& g, float weight);

  // silu(groupnorm(x)) in one pass, without the normalized tensor in between (the U-Net's
  // blocks); w[C], b[C].
  Tensor groupnorm_silu(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G);
  // Inference only (throws std::logic_error on a training graph; nn::conv2d_inference):
  // conv2d(silu(groupnorm(x, gn_w, gn_b, G)), w, b) + per_image[B,OC] at every pixel + plus
  // [B,OC,OH,OW], without the normalized tensor or the sums in between. Any of per_image, plus
  // and gn_w may be undefined (no normalization without gn_w).
  Tensor conv2d_inference(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad,
                          const Tensor& per_image, const Tensor& plus, const Tensor& gn_w, const Tensor& gn_b,
                          int64_t G);

 private:
  struct Step {
    std::function<void()> run;
    GradSlot* output;  // the gradient the step sends on and then gives back (or null)
  };
  // A layer's output: values from the arena, and a gradient slot when training and `grad` (a
  // gradient flows back from it: to an input or a weight).
  Tensor activation(std::vector<int64_t> shape, bool grad);
  void record(std::function<void()> run, const Tensor& output);
  // In backward steps. The gradient of out to read (zeros if nothing wrote it).
  const float* read(const Tensor& out);
  // Where to write t's gradient, and whether the caller is its first writer, who overwrites the
  // buffer instead of adding to it (the weights' gradients and inputs' are only added to). Null
  // when no gradient flows to t.
  std::pair<float*, bool> write(const Tensor& t);
  // Sends out's gradient on to t unchanged (t = out's input through an identity, as a sum's
  // terms are): t takes out's buffer over if it has none yet, and out is then left without.
  void pass_on(const Tensor& out, const Tensor& t);
  // t's gradient to add to (a new buffer zeroed), or null when none flows to t.
  float* accumulate(const Tensor& t);
  // A buffer of at least n floats: one given back before (the smallest that fits), or new.
  float* lend(int64_t n, size_t* capacity);
  void give_back(GradSlot* slot);

  Arena& arena_;
  bool training_;
  ShardSum* shards_;
  std::vector<Step> tape_;
  std::deque<GradSlot> slots_;
  std::vector<std::pair<float*, size_t>> free_;  // buffers given back, and their capacity
};

// Whether a gradient flows to t (a weight's, an input's, or a training graph's layer output).
inline bool has_grad(const Tensor& t) { return t.grad != nullptr || t.node != nullptr; }

}  // namespace gen
