#include "tensor/graph.h"

#include <algorithm>

#include "tensor/kernels.h"

namespace gen {

Tensor Graph::tensor(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = arena_.allocate(t.size());
  if (training_) t.grad = arena_.allocate(t.size(), /*zeroed=*/true);
  return t;
}

Tensor Graph::embedding(const uint32_t* ids, int64_t B, int64_t T, const Tensor& wte, const Tensor& wpe) {
  int64_t C = wte.dim(-1);
  Tensor out = tensor({B, T, C});
  nn::embedding_forward(out.data, ids, wte.data, wpe.data, B, T, C);
  if (training_)
    tape_.push_back([=] { nn::embedding_backward(wte.grad, wpe.grad, out.grad, ids, B, T, C); });
  return out;
}

Tensor Graph::linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t C = x.dim(-1), OC = w.dim(0), N = x.size() / C;
  std::vector<int64_t> shape = x.shape;
  shape.back() = OC;
  Tensor out = tensor(shape);
  nn::linear_forward(out.data, x.data, w.data, b.data, N, C, OC);
  if (training_)
    tape_.push_back([=] { nn::linear_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, N, C, OC); });
  return out;
}

Tensor Graph::layernorm(const Tensor& x, const Tensor& w, const Tensor& b) {
  int64_t C = x.dim(-1), N = x.size() / C;
  Tensor out = tensor(x.shape);
  float* mean = arena_.allocate(N);
  float* rstd = arena_.allocate(N);
  nn::layernorm_forward(out.data, mean, rstd, x.data, w.data, b.data, N, C);
  if (training_)
    tape_.push_back([=] {
      nn::layernorm_backward(x.grad, w.grad, b.grad, out.grad, x.data, w.data, mean, rstd, N, C);
    });
  return out;
}

Tensor Graph::gelu(const Tensor& x) {
  Tensor out = tensor(x.shape);
  int64_t n = x.size();
  nn::gelu_forward(out.data, x.data, n);
  if (training_) tape_.push_back([=] { nn::gelu_backward(x.grad, x.data, out.grad, n); });
  return out;
}

Tensor Graph::add(const Tensor& a, const Tensor& b) {
  Tensor out = tensor(a.shape);
  int64_t n = a.size();
  nn::residual_forward(out.data, a.data, b.data, n);
  if (training_) tape_.push_back([=] { nn::residual_backward(a.grad, b.grad, out.grad, n); });
  return out;
}

Tensor Graph::attention(const Tensor& qkv, int64_t NH) {
  int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  Tensor out = tensor({B, T, C});
  float* att = arena_.allocate(B * NH * T * T);
  nn::attention_forward(out.data, att, qkv.data, B, T, C, NH);
  if (training_)
    tape_.push_back([=] { nn::attention_backward(qkv.grad, out.grad, qkv.data, att, B, T, C, NH); });
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
    tape_.push_back([=] { nn::softmax_cross_entropy_backward(logits.grad, probs, targets, dloss, N, V); });
  }
  return loss;
}

void Graph::backward() {
  for (auto step = tape_.rbegin(); step != tape_.rend(); ++step) (*step)();
  tape_.clear();
}

}  // namespace gen
