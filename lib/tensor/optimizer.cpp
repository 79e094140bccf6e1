#include "tensor/optimizer.h"

#include <cmath>

namespace gen {

void AdamW::step(Parameters& params, float lr) {
  ++t_;
  const float b1 = config_.beta1, b2 = config_.beta2;
  const float correction1 = 1.0f - std::pow(b1, static_cast<float>(t_));
  const float correction2 = 1.0f - std::pow(b2, static_cast<float>(t_));
  float* w = params.values();
  const float* g = params.grads();
  for (const auto& view : params.views()) {
    const float decay = view.decay ? lr * config_.weight_decay : 0.0f;
    const size_t end = view.offset + view.size;
    for (size_t i = view.offset; i < end; ++i) {
      m_[i] = b1 * m_[i] + (1.0f - b1) * g[i];
      v_[i] = b2 * v_[i] + (1.0f - b2) * g[i] * g[i];
      float m_hat = m_[i] / correction1;
      float v_hat = v_[i] / correction2;
      // Decoupled decay first, as torch.optim.AdamW: w -= lr wd w; w -= lr m/(sqrt(v) + eps).
      w[i] -= decay * w[i];
      w[i] -= lr * m_hat / (std::sqrt(v_hat) + config_.eps);
    }
  }
}

float clip_grad_norm(Parameters& params, float max_norm) {
  double sum = 0;
  const float* g = params.grads();
  for (size_t i = 0; i < params.size(); ++i) sum += static_cast<double>(g[i]) * g[i];
  float norm = static_cast<float>(std::sqrt(sum));
  if (max_norm > 0 && norm > max_norm) {
    float scale = max_norm / (norm + 1e-6f);  // as torch.nn.utils.clip_grad_norm_
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
