#include "models/classifier.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

void ClassifierConfig::validate() const {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(image_channels == 1 || image_channels == 3, fmt::format("{} image channels: 1 or 3", image_channels));
  check(image_size >= 1 && image_size <= 1024, fmt::format("image size {} is out of range (1..1024)", image_size));
  check(!channels.empty() && channels.size() <= 6, "the classifier needs 1 to 6 levels of channels");
  for (int64_t c : channels) check(c >= 1 && c <= 4096, fmt::format("{} channels: must be 1..4096", c));
  check(features >= 1 && features <= 65536, fmt::format("{} features: must be 1..65536", features));
  check(classes >= 2 && classes <= 100000, fmt::format("{} classes: must be 2..100000", classes));
  const int64_t flat = pool ? channels.back() : channels.back() * final_size() * final_size();
  check(flat * features <= (int64_t{1} << 28),
        fmt::format("the features layer would have {} x {} weights: too many (fewer channels, or pooling)", flat,
                    features));
}

int64_t ClassifierConfig::final_size() const {
  int64_t size = image_size;
  for (size_t l = 1; l < channels.size(); ++l) size = (size - 1) / 2 + 1;  // 3x3, stride 2, padding 1
  return size;
}

double ClassifierConfig::flops_per_image() const {
  double flops = 0;
  int64_t size = image_size, in = image_channels;
  for (size_t l = 0; l < channels.size(); ++l) {
    if (l > 0) size = (size - 1) / 2 + 1;
    flops += 2.0 * 9.0 * static_cast<double>(in * channels[l] * size * size);
    in = channels[l];
  }
  const int64_t flat = pool ? in : in * size * size;
  return flops + 2.0 * static_cast<double>(flat * features + features * classes);
}

Classifier::Classifier(const ClassifierConfig& config, ZeroedFloats weights) : config_(config) {
  config_.validate();
  std::vector<size_t> ids;
  int64_t in = config_.image_channels;
  for (size_t l = 0; l < config_.channels.size(); ++l) {
    const int64_t out = config_.channels[l];
    ids.push_back(params_.add(fmt::format("conv.{}.weight", l), {out, in, 3, 3}, true));
    ids.push_back(params_.add(fmt::format("conv.{}.bias", l), {out}, false));
    in = out;
  }
  const int64_t flat = config_.pool ? in : in * config_.final_size() * config_.final_size();
  const size_t fc_w = params_.add("features.weight", {config_.features, flat}, true);
  const size_t fc_b = params_.add("features.bias", {config_.features}, false);
  const size_t out_w = params_.add("out.weight", {config_.classes, config_.features}, true);
  const size_t out_b = params_.add("out.bias", {config_.classes}, false);
  params_.allocate(std::move(weights));
  for (size_t l = 0; l < config_.channels.size(); ++l) {
    conv_w_.push_back(params_.tensor(ids[2 * l]));
    conv_b_.push_back(params_.tensor(ids[2 * l + 1]));
  }
  fc_w_ = params_.tensor(fc_w);
  fc_b_ = params_.tensor(fc_b);
  out_w_ = params_.tensor(out_w);
  out_b_ = params_.tensor(out_b);
}

void Classifier::init(Rng& rng) {
  for (const auto& view : params_.views()) {
    float* w = params_.values() + view.offset;
    if (view.name.ends_with(".bias")) {
      std::fill(w, w + view.size, 0.0f);
      continue;
    }
    int64_t fan_in = 1;
    for (size_t d = 1; d < view.shape.size(); ++d) fan_in *= view.shape[d];
    const float gain = view.name == "out.weight" ? 1.0f : std::sqrt(6.0f);
    const float bound = gain / std::sqrt(static_cast<float>(fan_in));
    for (size_t k = 0; k < view.size; ++k) w[k] = (2 * rng.uniform() - 1) * bound;
  }
}

Classifier::Output Classifier::forward(Graph& g, const Tensor& x, int shard) {
  auto p = [&](const Tensor& t) { return params_.in_shard(t, shard); };
  Tensor h = x;
  for (size_t l = 0; l < conv_w_.size(); ++l)
    h = g.relu(g.conv2d(h, p(conv_w_[l]), p(conv_b_[l]), l == 0 ? 1 : 2, 1));
  if (config_.pool) {
    h = g.global_avg_pool(h);
  } else {
    // Flattening an NCHW tensor is a view with another shape: the data is already in that order.
    const int64_t B = h.dim(0);
    h.shape = {B, h.size() / B};
  }
  Output out;
  out.features = g.relu(g.linear(h, p(fc_w_), p(fc_b_)));
  out.logits = g.linear(out.features, p(out_w_), p(out_b_));
  return out;
}

Classified classify(Classifier& model, const float* images, int64_t n, bool want_probs, bool want_features,
                    int64_t batch) {
  const ClassifierConfig& c = model.config();
  const int64_t P = c.image_channels * c.image_size * c.image_size, K = c.classes, F = c.features;
  Classified result;
  if (want_probs) result.probs.resize(static_cast<size_t>(n * K));
  if (want_features) result.features.resize(static_cast<size_t>(n * F));
  Arena arena;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t B = std::min(batch, n - start);
    arena.reset();
    Graph g(arena, false);
    Classifier::Output out = model.forward(g, g.constant({B, c.image_channels, c.image_size, c.image_size}, images + start * P));
    if (want_features) std::copy(out.features.data, out.features.data + B * F, result.features.data() + start * F);
    if (!want_probs) continue;
    for (int64_t b = 0; b < B; ++b) {
      const float* logits = out.logits.data + b * K;
      float* p = result.probs.data() + (start + b) * K;
      const float top = *std::max_element(logits, logits + K);
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += p[k] = std::exp(logits[k] - top);
      for (int64_t k = 0; k < K; ++k) p[k] = static_cast<float>(p[k] / sum);
    }
  }
  return result;
}

}  // namespace gen
