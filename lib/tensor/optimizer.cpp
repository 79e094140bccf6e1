#include "tensor/optimizer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/threads.h"
#include "tensor/sgemm.h"

namespace gen {

namespace {
constexpr size_t kChunk = size_t{1} << 14;  // floats per unit of work: 64 KiB of each array
// One view's stretch of AdamW. One loop for every width: GCC (-O3, -fno-math-errno, so that
// std::sqrt becomes vsqrtps) vectorizes it with zmm, ymm or xmm registers as the target has
// them, the tail with the same operations one at a time.
void adamw_update(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g,
                  size_t n, float lr, float decay, float grad_scale, float b1, float b2, float eps, float correction1,
                  float correction2) {
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;  // exactly g[i] when the scale is 1
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    float m_hat = m[i] / correction1;
    float v_hat = v[i] / correction2;
    // Decoupled decay first, as torch.optim.AdamW: w -= lr wd w; w -= lr m/(sqrt(v) + eps).
    w[i] -= decay * w[i];
    w[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

}  // namespace

void AdamW::step(Parameters& params, float lr, float grad_scale) {
  ++t_;
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  const float correction1 = 1.0f - std::pow(b1, static_cast<float>(t_));
  const float correction2 = 1.0f - std::pow(b2, static_cast<float>(t_));
  // The decay of each parameter, per chunk of kChunk, so that the loop over chunks splits
  // across threads however the views fall.
  const size_t n = params.size(), chunks = (n + kChunk - 1) / kChunk;
  float* w = params.values();
  const float* g = params.grads();
  float* m = m_.data();
  float* v = v_.data();
  const auto& views = params.views();
  const int threads = threads_for_pass(static_cast<int64_t>(n));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    const size_t begin = chunk * kChunk, end = std::min(n, begin + kChunk);
    // The views that overlap this chunk (views are in order and cover the buffer).
    auto view = std::upper_bound(views.begin(), views.end(), begin,
                                 [](size_t offset, const Parameters::View& x) { return offset < x.offset; });
    for (--view; view != views.end() && view->offset < end; ++view) {
      if (!left_out_.empty() && left_out_[static_cast<size_t>(view - views.begin())]) continue;
      const float decay = view->decay ? lr * config_.weight_decay : 0.0f;
      const size_t lo = std::max(begin, view->offset), hi = std::min(end, view->offset + view->size);
      adamw_update(w + lo, m + lo, v + lo, g + lo, hi - lo, lr, decay, grad_scale, b1, b2, eps, correction1,
                   correction2);
    }
  }
}

void AdamW::leave_out(const std::vector<size_t>& views, size_t view_count) {
  left_out_.assign(view_count, 0);
  for (size_t v : views) left_out_.at(v) = 1;
}

namespace {

// out[m, m] = alpha x x^T for x [m, k]: the product is symmetric, so only the
// blocks on and above the diagonal are multiplied (of `blocks` x `blocks` row blocks) and those
// below are their transposes: (blocks + 1) / (2 blocks) of the multiply-adds.
void gram(const float* x, int64_t m, int64_t k, float alpha, float* out, int blocks) {
  auto edge = [m, blocks](int i) { return m * i / blocks; };
  for (int i = 0; i < blocks; ++i)
    for (int j = i; j < blocks; ++j)
      nn::sgemm(false, true, edge(i + 1) - edge(i), edge(j + 1) - edge(j), k, alpha, x + edge(i) * k, k, x + edge(j) * k, k,
                0.0f, out + edge(i) * m + edge(j), m);
  for (int i = 1; i < blocks; ++i)  // row block i left of the diagonal
    for (int64_t r = edge(i); r < edge(i + 1); ++r)
      for (int64_t c = 0; c < edge(i); ++c) out[r * m + c] = out[c * m + r];
}

}  // namespace

void orthogonalize(float* x, int64_t rows, int64_t cols, int iterations, std::vector<float>& scratch) {
  // The quintic of Jordan et al.: steepest at 0 (a = 3.4445) so that small singular values grow
  // fast; its fixed points straddle 1.
  constexpr float a = 3.4445f, b = -4.7750f, c = 2.0315f;
  const int64_t n = rows * cols, m = std::min(rows, cols), k = n / std::max<int64_t>(m, 1);
  const bool wide = rows <= cols;
  // Works on w [m, k], the wide one of x and x^T: w_next = a w + (b A + c A A) w with A = w w^T.
  scratch.resize(static_cast<size_t>(2 * m * m + 2 * n));
  float* A = scratch.data();  // the Gram matrix w w^T [m, m]
  float* B = A + m * m;       // b A + c A A
  float* w = B + m * m;
  float* y = w + n;  // the next w
  auto transpose = [](const float* from, int64_t from_rows, int64_t from_cols, float* to) {
    for (int64_t r = 0; r < from_rows; ++r)
      for (int64_t j = 0; j < from_cols; ++j) to[j * from_rows + r] = from[r * from_cols + j];
  };
  if (wide) std::copy(x, x + n, w);
  else transpose(x, rows, cols, w);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * w[i];
  const float inverse = static_cast<float>(1.0 / (std::sqrt(sum) + 1e-7));
  for (int64_t i = 0; i < n; ++i) w[i] *= inverse;  // singular values now at most 1
  // Row blocks of 64 or more (measured on a Zen 4, one thread, the 6 x 192 model's four shapes:
  // blocks of 64 take 12.5% less time than the whole product, of 96 and of 48 less too, not as
  // much: smaller products run further from the kernel's peak).
  const int blocks = static_cast<int>(std::clamp<int64_t>(m / 64, 1, 4));
  for (int it = 0; it < iterations; ++it) {
    gram(w, m, k, 1.0f, A, blocks);
    gram(A, m, m, c, B, blocks);  // A A = A A^T
    for (int64_t i = 0; i < m * m; ++i) B[i] += b * A[i];
    std::copy(w, w + n, y);
    nn::sgemm(false, false, m, k, m, 1.0f, B, m, w, k, a, y, k);
    std::swap(w, y);
  }
  if (wide) std::copy(w, w + n, x);
  else transpose(w, cols, rows, x);
}

void Muon::step(Parameters& params, float* momentum, float lr, float grad_scale) const {
  const auto& views = params.views();
  float* values = params.values();
  const float* grads = params.grads();
  const float mu = config_.momentum, decay = lr * config_.weight_decay;
  const int threads = threads_for(static_cast<int64_t>(views_.size()), true);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> update, scratch;
#pragma omp for schedule(dynamic, 1)
    for (size_t k = 0; k < views_.size(); ++k) {
      const Parameters::View& view = views.at(views_[k]);
      const int64_t rows = view.shape.at(0), cols = view.shape.at(1);
      float* w = values + view.offset;
      const float* g = grads + view.offset;
      float* M = momentum + view.offset;
      update.resize(view.size);
      for (size_t i = 0; i < view.size; ++i) {
        const float gi = g[i] * grad_scale;
        M[i] = mu * M[i] + gi;
        update[i] = gi + mu * M[i];  // Nesterov
      }
      orthogonalize(update.data(), rows, cols, config_.iterations, scratch);
      const float step = lr * 0.2f * std::sqrt(static_cast<float>(std::max(rows, cols)));
      for (size_t i = 0; i < view.size; ++i) {
        w[i] -= decay * w[i];
        w[i] -= step * update[i];
      }
    }
  }
}

float grad_norm(const Parameters& params) {
  const size_t n = params.size(), chunks = (n + kChunk - 1) / kChunk;
  const float* g = params.grads();
  std::vector<double> partial(chunks, 0.0);
  const int threads = threads_for_pass(static_cast<int64_t>(n));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    double sum = 0;
    const size_t end = std::min(n, (chunk + 1) * kChunk);
#pragma omp simd reduction(+ : sum)
    for (size_t i = chunk * kChunk; i < end; ++i) sum += static_cast<double>(g[i]) * g[i];
    partial[chunk] = sum;
  }
  double sum = 0;
  for (double p : partial) sum += p;
  return static_cast<float>(std::sqrt(sum));
}

float clip_scale(float norm, float max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6f) : 1.0f;  // as torch.nn.utils.clip_grad_norm_
}

float clip_grad_norm(Parameters& params, float max_norm) {
  float norm = grad_norm(params);
  float scale = clip_scale(norm, max_norm);
  if (scale != 1.0f) {
    float* grads = params.grads();
    for (size_t i = 0; i < params.size(); ++i) grads[i] *= scale;
  }
  return norm;
}

float cosine_lr(int64_t step, const LrSchedule& s) {
  if (step < s.warmup) return s.lr * static_cast<float>(step + 1) / static_cast<float>(s.warmup + 1);
  if (step > s.decay_steps) return s.min_lr;
  double ratio = static_cast<double>(step - s.warmup) / static_cast<double>(std::max<int64_t>(1, s.decay_steps - s.warmup));
  double coefficient = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return static_cast<float>(s.min_lr + coefficient * (s.lr - s.min_lr));
}

}  // namespace gen
