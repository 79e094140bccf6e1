#include "models/gan.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

namespace {
constexpr int64_t kKernel = 4;  // every (transposed) convolution: 4x4, stride 2, padding 1

// Rows of a [B, D] tensor as [B, D, 1, 1] (what the channel layers take) and back.
Tensor as_planes(const Tensor& t) { return reshaped(t, {t.dim(0), t.dim(1), 1, 1}); }
}  // namespace

void GanConfig::validate() const {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(image_channels == 1 || image_channels == 3, fmt::format("{} image channels: 1 or 3", image_channels));
  check(levels >= 1 && levels <= 6, fmt::format("{} levels: must be 1..6", levels));
  check(image_size >= 4 && image_size <= 1024, fmt::format("image size {} is out of range (4..1024)", image_size));
  check(image_size % (int64_t{1} << levels) == 0 && base_size() >= 1,
        fmt::format("image size {} is not divisible by 2^{} (the generator doubles the size {} times)", image_size,
                    levels, levels));
  check(latent >= 1 && latent <= 4096, fmt::format("latent size {}: must be 1..4096", latent));
  check(g_channels >= 1 && g_channels <= 4096 && (g_channels >> (levels - 1)) >= 1,
        fmt::format("{} generator channels: must be 1..4096 and at least 2^{} (halved per level)", g_channels,
                    levels - 1));
  check(d_channels >= 1 && (d_channels << (levels - 1)) <= 4096,
        fmt::format("{} discriminator channels: doubled per level, they must stay at most 4096", d_channels));
  check(classes >= 0 && classes <= 100000, fmt::format("{} classes: must be 0..100000", classes));
  const int64_t base = base_size();
  check(g_channels * base * base * (latent * (classes > 0 ? 2 : 1)) <= (int64_t{1} << 28),
        "the generator's first layer would be too large (smaller --latent or --g-channels)");
}

int64_t GanConfig::d_features() const { return (d_channels << (levels - 1)) * base_size() * base_size(); }

double GanConfig::g_flops_per_image() const {
  const int64_t base = base_size(), in = latent * (classes > 0 ? 2 : 1);
  double flops = 2.0 * static_cast<double>(in * g_channels * base * base);
  int64_t size = base, c = g_channels;
  for (int64_t l = 1; l <= levels; ++l) {
    const int64_t out = l == levels ? image_channels : c / 2;
    flops += 2.0 * static_cast<double>(size * size * c * out * kKernel * kKernel);
    size *= 2, c = out;
  }
  return flops;
}

double GanConfig::d_flops_per_image() const {
  double flops = 0;
  int64_t size = image_size, in = image_channels;
  for (int64_t l = 0; l < levels; ++l) {
    size /= 2;
    const int64_t out = d_channels << l;
    flops += 2.0 * static_cast<double>(size * size * in * out * kKernel * kKernel);
    in = out;
  }
  return flops + 2.0 * static_cast<double>(d_features()) * (classes > 0 ? 2 : 1);
}

// ---------------------------------------------------------------------------------------------

Generator::Generator(const GanConfig& config, ZeroedFloats weights) : config_(config) {
  config_.validate();
  const GanConfig& c = config_;
  const int64_t base = c.base_size(), in = c.latent * (c.classes > 0 ? 2 : 1);
  size_t embed = 0;
  if (c.classes > 0) embed = params_.add("embed.weight", {c.classes, c.latent}, true);
  const size_t fc = params_.add("fc.weight", {c.g_channels * base * base, in}, true);
  std::vector<size_t> bn, conv;
  int64_t ch = c.g_channels, running = 0;
  for (int64_t l = 0; l < c.levels; ++l) {
    if (l > 0) {
      conv.push_back(params_.add(fmt::format("convt.{}.weight", l - 1), {ch, ch / 2, kKernel, kKernel}, true));
      ch /= 2;
    }
    bn.push_back(params_.add(fmt::format("bn.{}.weight", l), {ch}, false));
    bn.push_back(params_.add(fmt::format("bn.{}.bias", l), {ch}, false));
    running += 2 * ch;
  }
  const size_t out_w = params_.add("out.weight", {ch, c.image_channels, kKernel, kKernel}, true);
  const size_t out_b = params_.add("out.bias", {c.image_channels}, false);
  params_.allocate(std::move(weights));
  running_.assign(static_cast<size_t>(running), 0.0f);
  if (c.classes > 0) embed_ = params_.tensor(embed);
  fc_w_ = params_.tensor(fc);
  for (size_t i = 0; i < bn.size(); i += 2) {
    bn_w_.push_back(params_.tensor(bn[i]));
    bn_b_.push_back(params_.tensor(bn[i + 1]));
  }
  for (size_t id : conv) conv_w_.push_back(params_.tensor(id));
  conv_w_.push_back(params_.tensor(out_w));  // the last transposed convolution
  out_b_ = params_.tensor(out_b);
}

void Generator::init(Rng& rng) {
  for (const auto& view : params_.views()) {
    float* w = params_.values() + view.offset;
    const bool scale = view.name.starts_with("bn.") && view.name.ends_with(".weight");
    if (view.name.ends_with(".bias")) {
      std::fill(w, w + view.size, 0.0f);
      continue;
    }
    for (size_t k = 0; k < view.size; ++k) w[k] = (scale ? 1.0f : 0.0f) + 0.02f * rng.normal();
  }
  // Running statistics: mean 0, variance 1 per layer.
  size_t at = 0;
  for (const Tensor& w : bn_w_) {
    const size_t C = static_cast<size_t>(w.size());
    std::fill(running_.begin() + static_cast<int64_t>(at), running_.begin() + static_cast<int64_t>(at + C), 0.0f);
    std::fill(running_.begin() + static_cast<int64_t>(at + C), running_.begin() + static_cast<int64_t>(at + 2 * C),
              1.0f);
    at += 2 * C;
  }
}

Tensor Generator::forward(Graph& g, const Tensor& z, const uint32_t* labels, int shard) {
  const GanConfig& c = config_;
  auto p = [&](const Tensor& t) { return params_.in_shard(t, shard); };
  const int64_t B = z.dim(0), base = c.base_size();
  Tensor in = z;
  if (c.classes > 0) {
    Tensor both = g.concat_channels(as_planes(z), as_planes(g.gather_rows(p(embed_), labels, B)));
    in = reshaped(both, {B, 2 * c.latent});
  }
  Tensor h = reshaped(g.linear(in, p(fc_w_), {}), {B, c.g_channels, base, base});
  float* running = running_.data();
  for (size_t l = 0; l < bn_w_.size(); ++l) {
    if (l > 0) h = g.conv_transpose2d(h, p(conv_w_[l - 1]), {}, 2, 1);
    const int64_t C = bn_w_[l].size();
    h = g.relu(g.batchnorm(h, p(bn_w_[l]), p(bn_b_[l]), running, running + C));
    running += 2 * C;
  }
  return g.tanh(g.conv_transpose2d(h, p(conv_w_.back()), p(out_b_), 2, 1));
}

// ---------------------------------------------------------------------------------------------

Discriminator::Discriminator(const GanConfig& config, ZeroedFloats weights) : config_(config) {
  config_.validate();
  const GanConfig& c = config_;
  std::vector<size_t> ids;
  int64_t in = c.image_channels;
  for (int64_t l = 0; l < c.levels; ++l) {
    const int64_t out = c.d_channels << l;
    ids.push_back(params_.add(fmt::format("conv.{}.weight", l), {out, in, kKernel, kKernel}, true));
    ids.push_back(params_.add(fmt::format("conv.{}.bias", l), {out}, false));
    in = out;
  }
  const size_t out_w = params_.add("out.weight", {1, c.d_features()}, true);
  const size_t out_b = params_.add("out.bias", {1}, false);
  size_t embed = 0;
  if (c.classes > 0) embed = params_.add("embed.weight", {c.classes, c.d_features()}, true);
  params_.allocate(std::move(weights));
  for (size_t i = 0; i < ids.size(); i += 2) {
    conv_w_.push_back(params_.tensor(ids[i]));
    conv_b_.push_back(params_.tensor(ids[i + 1]));
  }
  out_w_ = params_.tensor(out_w);
  out_b_ = params_.tensor(out_b);
  if (c.classes > 0) embed_ = params_.tensor(embed);
}

void Discriminator::init(Rng& rng) {
  for (const auto& view : params_.views()) {
    float* w = params_.values() + view.offset;
    for (size_t k = 0; k < view.size; ++k) w[k] = view.name.ends_with(".bias") ? 0.0f : 0.02f * rng.normal();
  }
}

Discriminator::Output Discriminator::forward(Graph& g, const Tensor& x, const uint32_t* labels, bool weight_grads,
                                             int shard) {
  const int64_t B = x.dim(0), F = config_.d_features();
  auto weight = [&](const Tensor& w) {
    Tensor t = params_.in_shard(w, shard);
    if (!weight_grads) t.grad = nullptr;
    return t;
  };
  Output out;
  Tensor h = x;
  for (size_t l = 0; l < conv_w_.size(); ++l) {
    out.pre.push_back(g.conv2d(h, weight(conv_w_[l]), weight(conv_b_[l]), 2, 1));
    h = g.leaky_relu(out.pre.back(), kSlope);
  }
  Tensor flat = reshaped(h, {B, F});
  out.logits = g.linear(flat, weight(out_w_), weight(out_b_));
  if (config_.classes > 0) {
    // The projection <embed[label], features>: a row-wise dot product, as a product and a sum
    // (a linear layer with constant weights 1).
    std::vector<float> ones(static_cast<size_t>(F), 1.0f);
    Tensor sum = g.linear(g.mul(g.gather_rows(weight(embed_), labels, B), flat), g.constant({1, F}, ones.data()), {});
    out.logits = g.add(out.logits, sum);
  }
  return out;
}

Tensor Discriminator::input_gradient(Graph& g, const Output& at, const uint32_t* labels, int shard) {
  auto p = [&](const Tensor& t) { return params_.in_shard(t, shard); };
  const Tensor& last = at.pre.back();
  const int64_t B = last.dim(0), F = config_.d_features();
  // d logit / d features: the output layer's weights, plus the label's embedding.
  std::vector<float> ones(static_cast<size_t>(B), 1.0f);
  Tensor d = g.linear(g.constant({B, 1}, ones.data()), reshaped(p(out_w_), {F, 1}), {});
  if (config_.classes > 0) d = g.add(d, g.gather_rows(p(embed_), labels, B));
  d = reshaped(d, last.shape);
  // Back through each level: the leaky ReLU's slope where the forward pass was, then the
  // convolution's input gradient, a transposed convolution with the same weights.
  std::vector<float> slopes;
  for (size_t l = conv_w_.size(); l-- > 0;) {
    const Tensor& pre = at.pre[l];
    slopes.resize(static_cast<size_t>(pre.size()));
    for (size_t k = 0; k < slopes.size(); ++k) slopes[k] = pre.data[k] > 0 ? 1.0f : kSlope;
    d = g.conv_transpose2d(g.mul(d, g.constant(pre.shape, slopes.data())), p(conv_w_[l]), {}, 2, 1);
  }
  return d;
}

}  // namespace gen
