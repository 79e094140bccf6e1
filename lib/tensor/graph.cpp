#include "tensor/graph.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <omp.h>

#include "core/cluster.h"
#include "tensor/activations.h"
#include "tensor/conv.h"
#include "tensor/kernels.h"
#include "tensor/shards.h"

namespace gen {

Tensor Graph::activation(std::vector<int64_t> shape, bool grad) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena_.allocate(t.size());
  if (training_ && grad) t.node = &slots_.emplace_back(GradSlot{this, t.size()});
  return t;
}

void Graph::record(std::function<void()> run, const Tensor& output) { tape_.push_back({std::move(run), output.node}); }

float* Graph::lend(int64_t n, size_t* capacity) {
  const size_t want = static_cast<size_t>(n);
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it)
    if (it->second >= want && (best == free_.end() || it->second < best->second)) best = it;
  if (best == free_.end()) {
    *capacity = want;
    return arena_.allocate(n);
  }
  float* p = best->first;
  *capacity = best->second;
  free_.erase(best);
  return p;
}

void Graph::give_back(GradSlot* slot) {
  if (!slot || !slot->grad) return;
  free_.emplace_back(slot->grad, slot->capacity);
  slot->grad = nullptr;
}

const float* Graph::read(const Tensor& out) {
  if (!out.node) return out.grad;
  GradSlot& slot = *out.node;
  if (!slot.grad) {  // nothing consumed the output: its gradient is zero
    slot.grad = slot.owner->lend(slot.size, &slot.capacity);
    std::fill(slot.grad, slot.grad + slot.size, 0.0f);
  }
  return slot.grad;
}

std::pair<float*, bool> Graph::write(const Tensor& t) {
  if (!t.node) return {t.grad, false};
  GradSlot& slot = *t.node;
  if (slot.grad) return {slot.grad, false};
  slot.grad = slot.owner->lend(slot.size, &slot.capacity);
  return {slot.grad, true};
}

void Graph::pass_on(const Tensor& out, const Tensor& t) {
  if (!has_grad(t)) return;
  GradSlot* o = out.node;
  if (t.node && !t.node->grad && t.node->owner == o->owner && o->grad) {
    // t's gradient so far is out's: t takes the buffer over instead of a copy.
    t.node->grad = o->grad;
    t.node->capacity = o->capacity;
    o->grad = nullptr;
    return;
  }
  auto [dt, first] = write(t);
  nn::residual_backward<float>(dt, nullptr, read(out), t.size(), first, false);
}

float* Graph::accumulate(const Tensor& t) {
  auto [grad, first] = write(t);
  if (first) std::fill(grad, grad + t.size(), 0.0f);
  return grad;
}

Tensor Graph::tensor(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena_.allocate(t.size());
  if (training_) t.grad = arena_.allocate(t.size(), /*zeroed=*/true);
  return t;
}

Tensor Graph::embedding(const uint32_t* ids, int64_t B, int64_t T, const Tensor& wte, const Tensor& wpe) {
  int64_t C = wte.dim(-1);
  Tensor out = activation({B, T, C}, has_grad(wte) || has_grad(wpe));
  nn::embedding_forward(out.data, ids, wte.data, wpe.data, B, T, C);
  if (out.node)
    record([=, this] { nn::embedding_backward(accumulate(wte), accumulate(wpe), read(out), ids, B, T, C); }, out);
  return out;
}

Tensor Graph::linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual) {
  int64_t C = x.dim(-1), OC = w.dim(0), N = x.size() / C;
  std::vector<int64_t> shape = x.shape;
  shape.back() = OC;
  if (residual.defined() && residual.size() != N * OC)
    throw std::logic_error("Graph::linear: the residual differs in size from the output");
  Tensor out = activation(shape, has_grad(x) || has_grad(w) || has_grad(b) || has_grad(residual));
  nn::linear_forward(out.data, x.data, w.data, b.data, N, C, OC, residual.data);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      pass_on(out, residual);
      auto [dx, first] = write(x);
      nn::linear_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, N, C, OC, first);
    }, out);
  return out;
}

Tensor Graph::layernorm(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t C = x.dim(-1), N = x.size() / C;
  Tensor out = activation(x.shape, has_grad(x) || has_grad(w) || has_grad(b));
  float* mean = arena_.allocate(N);
  float* rstd = arena_.allocate(N);
  nn::layernorm_forward(out.data, mean, rstd, x.data, w.data, b.data, N, C);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      nn::layernorm_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, mean, rstd, N, C, first);
    }, out);
  return out;
}

Tensor Graph::gelu(const Tensor& x) {
  Tensor out = activation(x.shape, has_grad(x));
  int64_t n = x.size();
  nn::gelu_forward(out.data, x.data, n);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      if (dx) nn::gelu_backward(dx, x.data, dout, n, first);
    }, out);
  return out;
}

Tensor Graph::dropout(const Tensor& x, float p, uint64_t key) {
  if (!training_ || p <= 0) return x;
  Tensor out = activation(x.shape, has_grad(x));
  const int64_t n = x.size();
  nn::dropout_forward(out.data, x.data, n, p, key);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      if (dx) nn::dropout_backward(dx, dout, n, p, key, first);
    }, out);
  return out;
}

Tensor Graph::add(const Tensor& a, const Tensor& b) {
  Tensor out = activation(a.shape, has_grad(a) || has_grad(b));
  int64_t n = a.size();
  nn::residual_forward(out.data, a.data, b.data, n);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      if (a.node != b.node) {
        pass_on(out, a);
        auto [db, first_b] = write(b);
        nn::residual_backward<float>(nullptr, db, dout, n, false, first_b);
        return;
      }
      auto [da, first_a] = write(a);  // a is b (x + x): 2 dout
      auto [db, first_b] = write(b);
      nn::residual_backward(da, db, dout, n, first_a, first_b);
    }, out);
  return out;
}

Tensor Graph::attention(const Tensor& qkv, int64_t NH, bool causal, float dropout, uint64_t key) {
  int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  Tensor out = activation({B, T, C}, has_grad(qkv));
  float* att = arena_.allocate(B * NH * T * T);
  if (!training_) dropout = 0;
  nn::attention_forward(out.data, att, qkv.data, B, T, C, NH, causal, dropout, key);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dqkv, first] = write(qkv);
      if (dqkv) nn::attention_backward(dqkv, dout, qkv.data, att, B, T, C, NH, first, causal, dropout, key);
    }, out);
  return out;
}

Tensor Graph::transpose(const Tensor& x) {
  const int64_t B = x.dim(0), M = x.dim(1), N = x.dim(2);
  Tensor out = activation({B, N, M}, has_grad(x));
  // to[b, n, m] = from[b, m, n] (or += with add): forward x to out, backward dout to dx.
  auto swap = [](float* to, const float* from, int64_t B, int64_t M, int64_t N, bool add) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          float& d = to[(b * N + n) * M + m];
          d = add ? d + from[(b * M + m) * N + n] : from[(b * M + m) * N + n];
        }
  };
  swap(out.data, x.data, B, M, N, false);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      if (dx) swap(dx, dout, B, N, M, !first);
    }, out);
  return out;
}

Graph::Loss Graph::cross_entropy(const Tensor& logits, const uint32_t* targets, float weight) {
  int64_t V = logits.dim(-1), N = logits.size() / V;
  Loss loss;
  loss.probs = Tensor{arena_.allocate(logits.size()), nullptr, logits.shape};
  float* losses = arena_.allocate(N);
  nn::softmax_cross_entropy_forward(losses, loss.probs.data, logits.data, targets, N, V);
  double sum = 0;
  loss.correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    sum += losses[n];
    const float* p = loss.probs.data + n * V;
    loss.correct += std::max_element(p, p + V) - p == static_cast<int64_t>(targets[n]);
  }
  loss.mean = static_cast<float>(sum / static_cast<double>(N));
  if (training_ && has_grad(logits)) {
    float* dloss = arena_.allocate(N);
    std::fill(dloss, dloss + N, weight / static_cast<float>(N));
    float* probs = loss.probs.data;
    record([=, this] {
      auto [dlogits, first] = write(logits);
      nn::softmax_cross_entropy_backward(dlogits, probs, targets, dloss, N, V, first);
    }, Tensor{});
  }
  return loss;
}

Tensor Graph::conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad) {
  nn::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), stride, pad};
  Tensor out = activation({s.B, s.OC, s.OH(), s.OW()}, has_grad(x) || has_grad(w) || has_grad(b));
  nn::conv2d_forward(out.data, x.data, w.data, b.data, s);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      nn::conv2d_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, s, first);
    }, out);
  return out;
}

Tensor Graph::conv2d_inference(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad,
                               const Tensor& per_image, const Tensor& plus, const Tensor& gn_w, const Tensor& gn_b,
                               int64_t G) {
  if (training_) throw std::logic_error("Graph::conv2d_inference on a training graph");
  nn::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), stride, pad};
  Tensor out = activation({s.B, s.OC, s.OH(), s.OW()}, false);
  if ((per_image.defined() && per_image.size() != s.B * s.OC) || (plus.defined() && plus.size() != out.size()) ||
      w.dim(1) != s.C || (gn_w.defined() && (!gn_b.defined() || G < 1 || s.C % G != 0)))
    throw std::logic_error("Graph::conv2d_inference: shapes");
  nn::conv2d_inference(out.data, x.data, w.data, b.data, s, per_image.data, plus.data, gn_w.data, gn_b.data, G);
  return out;
}

Tensor Graph::conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad) {
  nn::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(1), w.dim(2), stride, pad};
  Tensor out = activation({s.B, s.OC, nn::conv_transpose_size(s.H, s.K, stride, pad),
                           nn::conv_transpose_size(s.W, s.K, stride, pad)},
                          has_grad(x) || has_grad(w) || has_grad(b));
  nn::conv_transpose2d_forward(out.data, x.data, w.data, b.data, s);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      nn::conv_transpose2d_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, s, first);
    }, out);
  return out;
}

Tensor Graph::groupnorm(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = activation(x.shape, has_grad(x) || has_grad(w) || has_grad(b));
  float* mean = arena_.allocate(B * G);
  float* rstd = arena_.allocate(B * G);
  nn::groupnorm_forward(out.data, mean, rstd, x.data, w.data, b.data, B, C, HW, G);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      nn::groupnorm_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, mean, rstd, B, C, HW, G, first);
    }, out);
  return out;
}

Tensor Graph::silu(const Tensor& x) {
  Tensor out = activation(x.shape, has_grad(x));
  int64_t n = x.size();
  nn::silu_forward(out.data, x.data, n);
  if (out.node) record([=, this] { nn::silu_backward(accumulate(x), x.data, read(out), n); }, out);
  return out;
}

Tensor Graph::upsample2x(const Tensor& x) {
  int64_t BC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  Tensor out = activation({x.dim(0), x.dim(1), 2 * H, 2 * W}, has_grad(x));
  nn::upsample2x_forward(out.data, x.data, BC, H, W);
  if (out.node) record([=, this] { nn::upsample2x_backward(accumulate(x), read(out), BC, H, W); }, out);
  return out;
}

Tensor Graph::add_channels(const Tensor& x, const Tensor& e) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = activation(x.shape, has_grad(x) || has_grad(e));
  nn::add_channels_forward(out.data, x.data, e.data, B, C, HW);
  if (out.node)
    record([=, this] { nn::add_channels_backward(accumulate(x), accumulate(e), read(out), B, C, HW); }, out);
  return out;
}

Tensor Graph::concat_channels(const Tensor& a, const Tensor& b) {
  int64_t B = a.dim(0), C1 = a.dim(1), C2 = b.dim(1), HW = a.size() / (B * C1);
  Tensor out = activation({B, C1 + C2, a.dim(2), a.dim(3)}, has_grad(a) || has_grad(b));
  nn::concat_channels_forward(out.data, a.data, b.data, B, C1, C2, HW);
  if (out.node)
    record([=, this] { nn::concat_channels_backward(accumulate(a), accumulate(b), read(out), B, C1, C2, HW); }, out);
  return out;
}

Tensor Graph::gather_rows(const Tensor& table, const uint32_t* ids, int64_t N) {
  int64_t C = table.dim(-1);
  Tensor out = activation({N, C}, has_grad(table));
  nn::gather_rows_forward(out.data, table.data, ids, N, C);
  if (out.node) record([=, this] { nn::gather_rows_backward(accumulate(table), read(out), ids, N, C); }, out);
  return out;
}

Tensor Graph::constant(std::vector<int64_t> shape, const float* values) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena_.allocate(t.size());
  std::copy(values, values + t.size(), t.data);
  return t;
}

float Graph::mse(const Tensor& pred, const Tensor& target) {
  int64_t n = pred.size();
  double loss = nn::mse_forward(pred.data, target.data, n);
  if (training_ && has_grad(pred))
    record([=, this] { nn::mse_backward(accumulate(pred), pred.data, target.data, n, 1.0f); }, Tensor{});
  return static_cast<float>(loss);
}

void Graph::backward() {
  for (auto step = tape_.rbegin(); step != tape_.rend(); ++step) {
    step->run();
    give_back(step->output);  // the layer has sent its output's gradient on
  }
  tape_.clear();
}

Tensor Graph::relu(const Tensor& x) {
  Tensor out = activation(x.shape, has_grad(x));
  int64_t n = x.size();
  nn::relu_forward(out.data, x.data, n);
  if (out.node) record([=, this] { nn::relu_backward(accumulate(x), x.data, read(out), n); }, out);
  return out;
}

Tensor Graph::global_avg_pool(const Tensor& x) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = activation({B, C}, has_grad(x));
  nn::global_avg_pool_forward(out.data, x.data, B * C, HW);
  if (out.node) record([=, this] { nn::global_avg_pool_backward(accumulate(x), read(out), B * C, HW); }, out);
  return out;
}

Tensor Graph::leaky_relu(const Tensor& x, float slope) {
  Tensor out = activation(x.shape, has_grad(x));
  int64_t n = x.size();
  nn::leaky_relu_forward(out.data, x.data, n, slope);
  if (out.node) record([=, this] { nn::leaky_relu_backward(accumulate(x), x.data, read(out), n, slope); }, out);
  return out;
}

Tensor Graph::tanh(const Tensor& x) {
  Tensor out = activation(x.shape, has_grad(x));
  int64_t n = x.size();
  nn::tanh_forward(out.data, x.data, n);
  if (out.node) record([=, this] { nn::tanh_backward(accumulate(x), out.data, read(out), n); }, out);
  return out;
}

Tensor Graph::batchnorm(const Tensor& x, const Tensor& w, const Tensor& b, float* running_mean, float* running_var,
                        float momentum) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = activation(x.shape, has_grad(x) || has_grad(w) || has_grad(b));
  if (!training_) {
    if (!running_mean || !running_var) throw std::logic_error("Graph::batchnorm: evaluation needs running statistics");
    nn::batchnorm_inference(out.data, x.data, w.data, b.data, running_mean, running_var, B, C, HW);
    return out;
  }
  // The batch's sums (per channel: x, then x^2, then the count), over every shard if in shards.
  std::vector<double> sums(static_cast<size_t>(2 * C + 1));
  nn::batchnorm_sums(sums.data(), x.data, B, C, HW);
  sums.back() = static_cast<double>(B * HW);
  if (shards_) shards_->sum(sums.data(), sums.size());
  const double n = sums.back();
  if (n < 2) throw std::logic_error("Graph::batchnorm: training needs more than one value per channel");
  float* mean = arena_.allocate(C);
  float* rstd = arena_.allocate(C);
  nn::batchnorm_forward(out.data, mean, rstd, sums.data(), n, x.data, w.data, b.data, B, C, HW);
  if (running_mean && running_var && (!shards_ || shards_->leads())) {
    const double m = momentum, unbiased = n / (n - 1);
    for (int64_t c = 0; c < C; ++c) {
      running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * sums[static_cast<size_t>(c)] / n);
      running_var[c] =
          static_cast<float>((1 - m) * running_var[c] + m * nn::batchnorm_variance(sums.data(), C, c, n) * unbiased);
    }
  }
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      std::vector<double> mine(static_cast<size_t>(2 * C));
      nn::batchnorm_backward_sums(mine.data(), dout, x.data, mean, rstd, B, C, HW);
      std::vector<double> total = mine;
      if (shards_) shards_->sum(total.data(), total.size());
      nn::batchnorm_backward(accumulate(x), accumulate(w), accumulate(b), mine.data(), total.data(), n, dout, x.data,
                             w.data, mean, rstd, B, C, HW);
    }, out);
  return out;
}

float Graph::gan_loss(const Tensor& logits, const float* signs, GanLoss kind, float weight) {
  int64_t n = logits.size();
  double loss = weight * nn::gan_loss_forward(logits.data, signs, n, kind);
  if (training_ && has_grad(logits)) {
    float* s = arena_.allocate(n);
    std::copy(signs, signs + n, s);
    record([=, this] { nn::gan_loss_backward(accumulate(logits), logits.data, s, n, kind, weight); }, Tensor{});
  }
  return static_cast<float>(loss);
}

Tensor Graph::mul(const Tensor& a, const Tensor& b) {
  if (a.size() != b.size()) throw std::logic_error("Graph::mul: the tensors differ in size");
  Tensor out = activation(a.shape, has_grad(a) || has_grad(b));
  int64_t n = a.size();
  nn::mul_forward(out.data, a.data, b.data, n);
  if (out.node)
    record([=, this] { nn::mul_backward(accumulate(a), accumulate(b), read(out), a.data, b.data, n); }, out);
  return out;
}

float Graph::gradient_penalty(const Tensor& g, float weight) {
  int64_t N = g.dim(0), D = g.size() / N;
  double loss = weight * nn::gradient_penalty_forward(g.data, N, D);
  if (training_ && has_grad(g))
    record([=, this] { nn::gradient_penalty_backward(accumulate(g), g.data, N, D, weight); }, Tensor{});
  return static_cast<float>(loss);
}

Tensor Graph::groupnorm_silu(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = activation(x.shape, has_grad(x) || has_grad(w) || has_grad(b));
  float* mean = arena_.allocate(B * G);
  float* rstd = arena_.allocate(B * G);
  nn::groupnorm_silu_forward(out.data, mean, rstd, x.data, w.data, b.data, B, C, HW, G);
  if (out.node)
    record([=, this] {
      const float* dout = read(out);
      auto [dx, first] = write(x);
      nn::groupnorm_silu_backward(dx, accumulate(w), accumulate(b), dout, x.data, w.data, b.data, mean, rstd, B, C,
                                  HW, G, first);
    }, out);
  return out;
}

}  // namespace gen
