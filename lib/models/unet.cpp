#include "models/unet.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "tensor/conv.h"

namespace gen {

void UnetConfig::validate() const {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(image_channels == 1 || image_channels == 3, fmt::format("{} image channels: 1 or 3", image_channels));
  check(!channels.empty() && channels.size() <= 6, "the U-Net needs 1 to 6 levels of channels");
  check(groups >= 1, "GroupNorm needs at least one group");
  for (int64_t c : channels)
    check(c >= 1 && c <= 4096 && c % groups == 0,
          fmt::format("{} channels: must be 1..4096 and divisible by the {} groups", c, groups));
  int64_t size = image_size;
  for (size_t l = 0; l + 1 < channels.size(); ++l) {
    check(size % 2 == 0, fmt::format("image size {} cannot be halved {} times", image_size, channels.size() - 1));
    size /= 2;
  }
  check(image_size >= 1 && image_size <= 1024, fmt::format("image size {} is out of range (1..1024)", image_size));
  check(time_dim >= 2 && time_dim % 2 == 0 && time_dim <= 4096, "the time embedding width must be even, 2..4096");
  check(classes >= 0 && classes <= 100000, fmt::format("{} classes is out of range", classes));
}

double UnetConfig::flops_per_image() const {
  // 3x3 convolutions dominate: 2 * 9 * in * out per output pixel.
  auto conv = [](int64_t in, int64_t out, int64_t k, int64_t pixels) {
    return 2.0 * static_cast<double>(k * k * in * out * pixels);
  };
  auto res = [&](int64_t in, int64_t out, int64_t pixels) {
    return conv(in, out, 3, pixels) + conv(out, out, 3, pixels) + (in != out ? conv(in, out, 1, pixels) : 0.0);
  };
  const size_t L = channels.size();
  double flops = conv(image_channels, channels[0], 3, image_size * image_size);
  int64_t size = image_size, in = channels[0];
  for (size_t l = 0; l < L; ++l) {
    flops += res(in, channels[l], size * size);
    in = channels[l];
    if (l + 1 < L) {
      flops += conv(in, in, 3, (size / 2) * (size / 2));
      size /= 2;
    }
  }
  flops += res(in, in, size * size);
  if (attention) {  // q, k, v and the projection per pixel; scores and their mix over pixel pairs
    const double n = static_cast<double>(size * size), c = static_cast<double>(in);
    flops += 2.0 * n * c * 4 * c + 2.0 * 2 * n * n * c;
  }
  for (size_t l = L; l-- > 0;) {
    flops += res(in + channels[l], channels[l], size * size);
    in = channels[l];
    if (l > 0) {
      size *= 2;
      flops += conv(in, channels[l - 1], 3, size * size);
      in = channels[l - 1];
    }
  }
  return flops + conv(channels[0], image_channels, 3, image_size * image_size);
}

Unet::Conv Unet::add_conv(const std::string& name, int64_t in, int64_t out, int64_t k) {
  Conv c;
  bind_.push_back(params_.add(name + ".weight", {out, in, k, k}, true));
  bind_.push_back(params_.add(name + ".bias", {out}, false));
  return c;
}

Unet::Res Unet::add_res(const std::string& name, int64_t in, int64_t out) {
  Res r;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, bool decay) {
    bind_.push_back(params_.add(name + "." + n, std::move(shape), decay));
  };
  add("norm1.weight", {in}, false);
  add("norm1.bias", {in}, false);
  add("conv1.weight", {out, in, 3, 3}, true);
  add("conv1.bias", {out}, false);
  add("time.weight", {out, config_.time_dim}, true);
  add("time.bias", {out}, false);
  add("norm2.weight", {out}, false);
  add("norm2.bias", {out}, false);
  add("conv2.weight", {out, out, 3, 3}, true);
  add("conv2.bias", {out}, false);
  if (in != out) {
    add("skip.weight", {out, in, 1, 1}, true);
    add("skip.bias", {out}, false);
  }
  return r;
}

Unet::Unet(const UnetConfig& config, ZeroedFloats weights) : config_(config) {
  config_.validate();
  const auto& ch = config_.channels;
  const size_t L = ch.size();
  const int64_t D = config_.time_dim;
  // Declare every weight in forward order (the names follow the PyTorch mirror in bench/),
  // remembering for each the member it binds to.
  std::vector<Tensor*> targets;
  auto conv = [&](Conv& c, const std::string& name, int64_t in, int64_t out, int64_t k) {
    c = add_conv(name, in, out, k);
    targets.insert(targets.end(), {&c.w, &c.b});
  };
  auto block = [&](Res& r, const std::string& name, int64_t in, int64_t out) {
    r = add_res(name, in, out);
    const auto fields = r.tensors();
    targets.insert(targets.end(), fields.begin(), fields.end() - (in != out ? 0 : 2));
  };
  auto single = [&](Tensor& t, const std::string& name, std::vector<int64_t> shape, bool decay) {
    bind_.push_back(params_.add(name, std::move(shape), decay));
    targets.push_back(&t);
  };
  down_res_.resize(L);
  up_res_.resize(L);
  down_.resize(L - 1);
  up_.resize(L - 1);

  single(time1_.w, "time_mlp.0.weight", {D, ch[0]}, true);
  single(time1_.b, "time_mlp.0.bias", {D}, false);
  single(time2_.w, "time_mlp.2.weight", {D, D}, true);
  single(time2_.b, "time_mlp.2.bias", {D}, false);
  if (config_.classes > 0) single(class_emb_, "class_emb.weight", {config_.classes + 1, D}, false);
  conv(conv_in_, "conv_in", config_.image_channels, ch[0], 3);
  int64_t in = ch[0];
  for (size_t l = 0; l < L; ++l) {
    block(down_res_[l], fmt::format("down.{}.res", l), in, ch[l]);
    in = ch[l];
    if (l + 1 < L) conv(down_[l], fmt::format("down.{}.downsample", l), in, in, 3);
  }
  block(mid_, "mid", in, in);
  if (config_.attention) {
    single(attn_norm_w_, "mid.attn.norm.weight", {in}, false);
    single(attn_norm_b_, "mid.attn.norm.bias", {in}, false);
    single(attn_qkv_w_, "mid.attn.qkv.weight", {3 * in, in}, true);
    single(attn_qkv_b_, "mid.attn.qkv.bias", {3 * in}, false);
    single(attn_proj_w_, "mid.attn.proj.weight", {in, in}, true);
    single(attn_proj_b_, "mid.attn.proj.bias", {in}, false);
  }
  for (size_t l = L; l-- > 0;) {
    block(up_res_[l], fmt::format("up.{}.res", l), in + ch[l], ch[l]);
    in = ch[l];
    if (l > 0) {
      conv(up_[l - 1], fmt::format("up.{}.upsample", l), in, ch[l - 1], 3);
      in = ch[l - 1];
    }
  }
  single(out_gn_w_, "norm_out.weight", {ch[0]}, false);
  single(out_gn_b_, "norm_out.bias", {ch[0]}, false);
  conv(conv_out_, "conv_out", ch[0], config_.image_channels, 3);

  params_.allocate(std::move(weights));
  for (size_t i = 0; i < targets.size(); ++i) *targets[i] = params_.tensor(bind_[i]);
  bind_.clear();
}

void Unet::init(Rng& rng) {
  for (size_t i = 0; i < params_.views().size(); ++i) {
    const auto& view = params_.views()[i];
    float* w = params_.values() + view.offset;
    const std::string& name = view.name;
    bool norm = name.find("norm") != std::string::npos;
    if (name.starts_with("conv_out.") || name.starts_with("mid.attn.proj.")) {
      std::fill(w, w + view.size, 0.0f);
    } else if (norm) {
      std::fill(w, w + view.size, name.ends_with(".weight") ? 1.0f : 0.0f);
    } else if (name == "class_emb.weight") {
      for (size_t k = 0; k < view.size; ++k) w[k] = rng.normal();
    } else {
      // fan_in of the weight this belongs to: a bias takes its weight's.
      const auto* weight = name.ends_with(".bias") ? params_.find(name.substr(0, name.size() - 5) + ".weight") : &view;
      int64_t fan_in = 1;
      for (size_t d = 1; d < weight->shape.size(); ++d) fan_in *= weight->shape[d];
      float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
      for (size_t k = 0; k < view.size; ++k) w[k] = (2 * rng.uniform() - 1) * bound;
    }
  }
}

Unet::Conv Unet::in_shard(const Conv& c, int shard) { return {params_.in_shard(c.w, shard), params_.in_shard(c.b, shard)}; }

Tensor Unet::res(Graph& g, const Res& block, const Tensor& x, const Tensor& temb, int shard) {
  const int64_t G = config_.groups;
  Res r = block;
  for (Tensor* t : r.tensors()) *t = params_.in_shard(*t, shard);
  if (!g.training()) {  // the same sums, fused: no normalized tensors, the additions in the convolutions
    Tensor h = g.conv2d_inference(x, r.conv1_w, r.conv1_b, 1, 1, g.linear(temb, r.time_w, r.time_b), {}, r.gn1_w,
                                  r.gn1_b, G);
    Tensor skip = r.skip_w.defined() ? g.conv2d(x, r.skip_w, r.skip_b, 1, 0) : x;
    return g.conv2d_inference(h, r.conv2_w, r.conv2_b, 1, 1, {}, skip, r.gn2_w, r.gn2_b, G);
  }
  Tensor h = g.conv2d(g.groupnorm_silu(x, r.gn1_w, r.gn1_b, G), r.conv1_w, r.conv1_b, 1, 1);
  h = g.add_channels(h, g.linear(temb, r.time_w, r.time_b));
  h = g.conv2d(g.groupnorm_silu(h, r.gn2_w, r.gn2_b, G), r.conv2_w, r.conv2_b, 1, 1);
  Tensor skip = r.skip_w.defined() ? g.conv2d(x, r.skip_w, r.skip_b, 1, 0) : x;
  return g.add(h, skip);
}

Tensor Unet::attend(Graph& g, const Tensor& x, int shard) {
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  auto p = [&](const Tensor& t) { return params_.in_shard(t, shard); };
  // The pixels as tokens: [B, C, H W] -> [B, H W, C].
  Tensor normed = g.groupnorm(x, p(attn_norm_w_), p(attn_norm_b_), config_.groups);
  Tensor tokens = g.transpose(reshaped(normed, {B, C, H * W}));
  Tensor mixed = g.attention(g.linear(tokens, p(attn_qkv_w_), p(attn_qkv_b_)), 1, /*causal=*/false);
  Tensor out = g.transpose(g.linear(mixed, p(attn_proj_w_), p(attn_proj_b_)));
  return g.add(x, reshaped(out, {B, C, H, W}));
}

Tensor Unet::forward(Graph& g, const Tensor& x, const float* t, const uint32_t* labels, int shard) {
  const int64_t B = x.dim(0);
  const auto& ch = config_.channels;
  const size_t L = ch.size();
  // The time embedding, shared by every block (through SiLU, as each block's projection wants).
  Tensor features = g.tensor({B, ch[0]});
  nn::timestep_embedding(features.data, t, B, ch[0]);
  features.grad = nullptr;  // an input: nothing to send back
  const Conv time1 = in_shard(time1_, shard), time2 = in_shard(time2_, shard);
  Tensor temb = g.linear(g.silu(g.linear(features, time1.w, time1.b)), time2.w, time2.b);
  if (config_.classes > 0) temb = g.add(temb, g.gather_rows(params_.in_shard(class_emb_, shard), labels, B));
  temb = g.silu(temb);

  const Conv conv_in = in_shard(conv_in_, shard);
  Tensor h = g.conv2d(x, conv_in.w, conv_in.b, 1, 1);
  std::vector<Tensor> skips;
  for (size_t l = 0; l < L; ++l) {
    h = res(g, down_res_[l], h, temb, shard);
    skips.push_back(h);
    if (l + 1 < L) {
      const Conv down = in_shard(down_[l], shard);
      h = g.conv2d(h, down.w, down.b, 2, 1);
    }
  }
  h = res(g, mid_, h, temb, shard);
  if (config_.attention) h = attend(g, h, shard);
  for (size_t l = L; l-- > 0;) {
    h = res(g, up_res_[l], g.concat_channels(h, skips[l]), temb, shard);
    if (l > 0) {
      const Conv up = in_shard(up_[l - 1], shard);
      h = g.conv2d(g.upsample2x(h), up.w, up.b, 1, 1);
    }
  }
  const Tensor gn_w = params_.in_shard(out_gn_w_, shard), gn_b = params_.in_shard(out_gn_b_, shard);
  const Conv conv_out = in_shard(conv_out_, shard);
  if (!g.training()) return g.conv2d_inference(h, conv_out.w, conv_out.b, 1, 1, {}, {}, gn_w, gn_b, config_.groups);
  return g.conv2d(g.groupnorm_silu(h, gn_w, gn_b, config_.groups), conv_out.w, conv_out.b, 1, 1);
}

}  // namespace gen
