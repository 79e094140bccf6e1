#include "tensor/graph.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <omp.h>

#include "tensor/activations.h"
#include "tensor/conv.h"
#include "tensor/kernels.h"

namespace gen {

namespace {

// The GPT layers below allocate their outputs' gradients unzeroed (Arena::allocate_deferred);
// in backward, each claims the gradients it writes, overwriting them the first time. Their tape
// steps are ClaimingSteps, so that backward() knows when another layer's step, which only adds,
// needs them zeroed.
struct ClaimingStep {
  std::function<void()> run;
  void operator()() const { run(); }
};

Tensor activation(Arena& arena, bool training, std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena.allocate(t.size());
  if (training) t.grad = arena.allocate_deferred(t.size());
  return t;
}

// Whether the first writer of t's gradient is here: overwrite it then.
bool first_write(Arena* arena, const Tensor& t) { return t.grad && arena->claim(t.grad, t.size()); }

// t's gradient, to read: zeroed if no layer wrote it (t went nowhere).
const float* gradient(Arena* arena, const Tensor& t) {
  if (arena->claim(t.grad, t.size())) std::fill(t.grad, t.grad + t.size(), 0.0f);
  return t.grad;
}

}  // namespace

Tensor Graph::tensor(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena_.allocate(t.size());
  if (training_) t.grad = arena_.allocate(t.size(), /*zeroed=*/true);
  return t;
}

Tensor Graph::embedding(const uint32_t* ids, int64_t B, int64_t T, const Tensor& wte, const Tensor& wpe) {
  int64_t C = wte.dim(-1);
  Tensor out = activation(arena_, training_, {B, T, C});
  nn::embedding_forward(out.data, ids, wte.data, wpe.data, B, T, C);
  if (training_)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      nn::embedding_backward(wte.grad, wpe.grad, gradient(arena, out), ids, B, T, C);
    }});
  return out;
}

Tensor Graph::linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t C = x.dim(-1), OC = w.dim(0), N = x.size() / C;
  std::vector<int64_t> shape = x.shape;
  shape.back() = OC;
  Tensor out = activation(arena_, training_, shape);
  nn::linear_forward(out.data, x.data, w.data, b.data, N, C, OC);
  if (training_)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      nn::linear_backward(x.grad, w.grad, b.grad, gradient(arena, out), x.data, w.data, N, C, OC,
                          first_write(arena, x));
    }});
  return out;
}

Tensor Graph::layernorm(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t C = x.dim(-1), N = x.size() / C;
  Tensor out = activation(arena_, training_, x.shape);
  float* mean = arena_.allocate(N);
  float* rstd = arena_.allocate(N);
  nn::layernorm_forward(out.data, mean, rstd, x.data, w.data, b.data, N, C);
  if (training_)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      nn::layernorm_backward(x.grad, w.grad, b.grad, gradient(arena, out), x.data, w.data, mean, rstd, N, C,
                             first_write(arena, x));
    }});
  return out;
}

Tensor Graph::gelu(const Tensor& x) {
  Tensor out = activation(arena_, training_, x.shape);
  int64_t n = x.size();
  nn::gelu_forward(out.data, x.data, n);
  if (training_ && x.grad)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      nn::gelu_backward(x.grad, x.data, gradient(arena, out), n, first_write(arena, x));
    }});
  return out;
}

Tensor Graph::add(const Tensor& a, const Tensor& b) {
  Tensor out = activation(arena_, training_, a.shape);
  int64_t n = a.size();
  nn::residual_forward(out.data, a.data, b.data, n);
  if (training_)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      const float* dout = gradient(arena, out);
      bool first_a = first_write(arena, a);  // before b's: a.grad may be b.grad (x + x)
      nn::residual_backward(a.grad, b.grad, dout, n, first_a, first_write(arena, b));
    }});
  return out;
}

Tensor Graph::attention(const Tensor& qkv, int64_t NH) {
  int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  Tensor out = activation(arena_, training_, {B, T, C});
  float* att = arena_.allocate(B * NH * T * T);
  nn::attention_forward(out.data, att, qkv.data, B, T, C, NH);
  if (training_ && qkv.grad)
    tape_.push_back(ClaimingStep{[=, arena = &arena_] {
      nn::attention_backward(qkv.grad, gradient(arena, out), qkv.data, att, B, T, C, NH, first_write(arena, qkv));
    }});
  return out;
}

Graph::Loss Graph::cross_entropy(const Tensor& logits, const uint32_t* targets) {
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
  if (training_) {
    float* dloss = arena_.allocate(N);
    std::fill(dloss, dloss + N, 1.0f / static_cast<float>(N));
    float* probs = loss.probs.data;
    if (logits.grad)
      tape_.push_back(ClaimingStep{[=, arena = &arena_] {
        nn::softmax_cross_entropy_backward(logits.grad, probs, targets, dloss, N, V, first_write(arena, logits));
      }});
  }
  return loss;
}

Tensor Graph::conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad) {
  nn::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), stride, pad};
  Tensor out = tensor({s.B, s.OC, s.OH(), s.OW()});
  nn::conv2d_forward(out.data, x.data, w.data, b.data, s);
  if (training_)
    tape_.push_back([=] { nn::conv2d_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, s); });
  return out;
}

Tensor Graph::conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad) {
  nn::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(1), w.dim(2), stride, pad};
  Tensor out = tensor({s.B, s.OC, nn::conv_transpose_size(s.H, s.K, stride, pad),
                       nn::conv_transpose_size(s.W, s.K, stride, pad)});
  nn::conv_transpose2d_forward(out.data, x.data, w.data, b.data, s);
  if (training_)
    tape_.push_back([=] { nn::conv_transpose2d_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, s); });
  return out;
}

Tensor Graph::groupnorm(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = tensor(x.shape);
  float* mean = arena_.allocate(B * G);
  float* rstd = arena_.allocate(B * G);
  nn::groupnorm_forward(out.data, mean, rstd, x.data, w.data, b.data, B, C, HW, G);
  if (training_)
    tape_.push_back([=] {
      nn::groupnorm_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, mean, rstd, B, C, HW, G);
    });
  return out;
}

Tensor Graph::silu(const Tensor& x) {
  Tensor out = tensor(x.shape);
  int64_t n = x.size();
  nn::silu_forward(out.data, x.data, n);
  if (training_ && x.grad) tape_.push_back([=] { nn::silu_backward(x.grad, x.data, out.grad, n); });
  return out;
}

Tensor Graph::upsample2x(const Tensor& x) {
  int64_t BC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  Tensor out = tensor({x.dim(0), x.dim(1), 2 * H, 2 * W});
  nn::upsample2x_forward(out.data, x.data, BC, H, W);
  if (training_ && x.grad) tape_.push_back([=] { nn::upsample2x_backward(x.grad, out.grad, BC, H, W); });
  return out;
}

Tensor Graph::add_channels(const Tensor& x, const Tensor& e) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = tensor(x.shape);
  nn::add_channels_forward(out.data, x.data, e.data, B, C, HW);
  if (training_) tape_.push_back([=] { nn::add_channels_backward(x.grad, e.grad, out.grad, B, C, HW); });
  return out;
}

Tensor Graph::concat_channels(const Tensor& a, const Tensor& b) {
  int64_t B = a.dim(0), C1 = a.dim(1), C2 = b.dim(1), HW = a.size() / (B * C1);
  Tensor out = tensor({B, C1 + C2, a.dim(2), a.dim(3)});
  nn::concat_channels_forward(out.data, a.data, b.data, B, C1, C2, HW);
  if (training_) tape_.push_back([=] { nn::concat_channels_backward(a.grad, b.grad, out.grad, B, C1, C2, HW); });
  return out;
}

Tensor Graph::gather_rows(const Tensor& table, const uint32_t* ids, int64_t N) {
  int64_t C = table.dim(-1);
  Tensor out = tensor({N, C});
  nn::gather_rows_forward(out.data, table.data, ids, N, C);
  if (training_ && table.grad) tape_.push_back([=] { nn::gather_rows_backward(table.grad, out.grad, ids, N, C); });
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
  if (training_) tape_.push_back([=] { nn::mse_backward(pred.grad, pred.data, target.data, n, 1.0f); });
  return static_cast<float>(loss);
}

void Graph::backward() {
  // A step that is not a ClaimingStep only adds to gradients: zero the deferred ones first.
  if (!std::all_of(tape_.begin(), tape_.end(), [](const auto& step) { return step.template target<ClaimingStep>(); }))
    arena_.zero_deferred();
  for (auto step = tape_.rbegin(); step != tape_.rend(); ++step) (*step)();
  tape_.clear();
}

Tensor Graph::relu(const Tensor& x) {
  Tensor out = tensor(x.shape);
  int64_t n = x.size();
  nn::relu_forward(out.data, x.data, n);
  if (training_ && x.grad) tape_.push_back([=] { nn::relu_backward(x.grad, x.data, out.grad, n); });
  return out;
}

Tensor Graph::global_avg_pool(const Tensor& x) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = tensor({B, C});
  nn::global_avg_pool_forward(out.data, x.data, B * C, HW);
  if (training_ && x.grad) tape_.push_back([=] { nn::global_avg_pool_backward(x.grad, out.grad, B * C, HW); });
  return out;
}

Tensor Graph::leaky_relu(const Tensor& x, float slope) {
  Tensor out = tensor(x.shape);
  int64_t n = x.size();
  nn::leaky_relu_forward(out.data, x.data, n, slope);
  if (training_ && x.grad) tape_.push_back([=] { nn::leaky_relu_backward(x.grad, x.data, out.grad, n, slope); });
  return out;
}

Tensor Graph::tanh(const Tensor& x) {
  Tensor out = tensor(x.shape);
  int64_t n = x.size();
  nn::tanh_forward(out.data, x.data, n);
  if (training_ && x.grad) tape_.push_back([=] { nn::tanh_backward(x.grad, out.data, out.grad, n); });
  return out;
}

Tensor Graph::batchnorm(const Tensor& x, const Tensor& w, const Tensor& b, float* running_mean, float* running_var,
                        float momentum) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = tensor(x.shape);
  if (!training_) {
    if (!running_mean || !running_var) throw std::logic_error("Graph::batchnorm: evaluation needs running statistics");
    nn::batchnorm_inference(out.data, x.data, w.data, b.data, running_mean, running_var, B, C, HW);
    return out;
  }
  const int64_t n = B * HW;
  if (n < 2) throw std::logic_error("Graph::batchnorm: training needs more than one value per channel");
  float* mean = arena_.allocate(C);
  float* rstd = arena_.allocate(C);
  nn::batchnorm_forward(out.data, mean, rstd, x.data, w.data, b.data, B, C, HW);
  if (running_mean && running_var) {
    const double m = momentum, unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
    for (int64_t c = 0; c < C; ++c) {
      // The biased variance back from rstd = 1/sqrt(var + eps).
      const double r = rstd[c], var = std::max(0.0, 1.0 / (r * r) - 1e-5);
      running_mean[c] = static_cast<float>((1 - m) * running_mean[c] + m * mean[c]);
      running_var[c] = static_cast<float>((1 - m) * running_var[c] + m * var * unbiased);
    }
  }
  tape_.push_back([=] {
    nn::batchnorm_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, mean, rstd, B, C, HW);
  });
  return out;
}

float Graph::gan_loss(const Tensor& logits, const float* signs, GanLoss kind, float weight) {
  int64_t n = logits.size();
  double loss = weight * nn::gan_loss_forward(logits.data, signs, n, kind);
  if (training_ && logits.grad) {
    float* s = arena_.allocate(n);
    std::copy(signs, signs + n, s);
    tape_.push_back([=] { nn::gan_loss_backward(logits.grad, logits.data, s, n, kind, weight); });
  }
  return static_cast<float>(loss);
}

Tensor Graph::mul(const Tensor& a, const Tensor& b) {
  if (a.size() != b.size()) throw std::logic_error("Graph::mul: the tensors differ in size");
  Tensor out = tensor(a.shape);
  int64_t n = a.size();
  nn::mul_forward(out.data, a.data, b.data, n);
  if (training_ && (a.grad || b.grad))
    tape_.push_back([=] { nn::mul_backward(a.grad, b.grad, out.grad, a.data, b.data, n); });
  return out;
}

float Graph::gradient_penalty(const Tensor& g, float weight) {
  int64_t N = g.dim(0), D = g.size() / N;
  double loss = weight * nn::gradient_penalty_forward(g.data, N, D);
  if (training_ && g.grad) tape_.push_back([=] { nn::gradient_penalty_backward(g.grad, g.data, N, D, weight); });
  return static_cast<float>(loss);
}

Tensor Graph::groupnorm_silu(const Tensor& x, const Tensor& w, const Tensor& b, int64_t G) {
  int64_t B = x.dim(0), C = x.dim(1), HW = x.size() / (B * C);
  Tensor out = tensor(x.shape);
  float* mean = arena_.allocate(B * G);
  float* rstd = arena_.allocate(B * G);
  nn::groupnorm_silu_forward(out.data, mean, rstd, x.data, w.data, b.data, B, C, HW, G);
  if (training_)
    tape_.push_back([=] {
      nn::groupnorm_silu_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, b.data, mean, rstd, B, C, HW, G);
    });
  return out;
}

double run_shards(Parameters& params, std::vector<Arena>& arenas, bool training,
                  const std::function<double(int shard, Graph& g)>& part) {
  const int shards = params.shards();
  if (arenas.size() < static_cast<size_t>(shards)) throw std::logic_error("run_shards: fewer arenas than shards");
  std::vector<double> losses(static_cast<size_t>(shards));
  std::exception_ptr failure;
  if (training) params.zero_grads();
  const int threads = std::min(shards, omp_get_max_threads());
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int s = 0; s < shards; ++s) {
    try {
      Arena& arena = arenas[static_cast<size_t>(s)];
      arena.reset();
      Graph g(arena, training);
      losses[static_cast<size_t>(s)] = part(s, g);
      if (training) g.backward();
    } catch (...) {
#pragma omp critical(gen_run_shards)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (training) params.reduce_shards();
  double sum = 0;
  for (double loss : losses) sum += loss;
  return sum / shards;
}

int batch_shards(int64_t batch, int threads) {
  int shards = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(batch, 1)));
  while (batch % shards != 0) --shards;
  return shards;
}

}  // namespace gen
