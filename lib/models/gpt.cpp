#include "models/gpt.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "tensor/kernels.h"

namespace gen {

void GptConfig::validate() const {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(vocab >= 1 && vocab <= (int64_t{1} << 24), fmt::format("vocabulary size {} is out of range", vocab));
  check(context >= 1 && context <= 65536, fmt::format("--context {} is out of range (1..65536)", context));
  check(layers >= 1 && layers <= 256, fmt::format("--layers {} is out of range (1..256)", layers));
  check(heads >= 1 && heads <= 256, fmt::format("--heads {} is out of range (1..256)", heads));
  check(embd >= 1 && embd <= 65536, fmt::format("--embd {} is out of range (1..65536)", embd));
  check(embd % heads == 0, fmt::format("--embd {} is not divisible by --heads {}", embd, heads));
}

double GptConfig::flops_per_token() const {
  // Matrix multiplies: per layer 12 C^2 weights (qkv 3, proj 1, mlp 8), the head V C; attention
  // scores and mixing about 2 T C per token on average (causal: half of 4 T C).
  double C = static_cast<double>(embd);
  double per_layer = 2.0 * 12.0 * C * C + 2.0 * static_cast<double>(context) * C;
  return static_cast<double>(layers) * per_layer + 2.0 * C * static_cast<double>(vocab);
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
  config_.validate();
  const int64_t C = config_.embd, V = config_.vocab;
  size_t wte = params_.add("transformer.wte.weight", {V, C}, true);
  size_t wpe = params_.add("transformer.wpe.weight", {config_.context, C}, true);
  struct BlockIds {
    size_t v[12];
  };
  std::vector<BlockIds> block_ids;
  for (int64_t l = 0; l < config_.layers; ++l) {
    std::string p = fmt::format("transformer.h.{}.", l);
    BlockIds b;
    b.v[0] = params_.add(p + "ln_1.weight", {C}, false);
    b.v[1] = params_.add(p + "ln_1.bias", {C}, false);
    b.v[2] = params_.add(p + "attn.c_attn.weight", {3 * C, C}, true);
    b.v[3] = params_.add(p + "attn.c_attn.bias", {3 * C}, false);
    b.v[4] = params_.add(p + "attn.c_proj.weight", {C, C}, true);
    b.v[5] = params_.add(p + "attn.c_proj.bias", {C}, false);
    b.v[6] = params_.add(p + "ln_2.weight", {C}, false);
    b.v[7] = params_.add(p + "ln_2.bias", {C}, false);
    b.v[8] = params_.add(p + "mlp.c_fc.weight", {4 * C, C}, true);
    b.v[9] = params_.add(p + "mlp.c_fc.bias", {4 * C}, false);
    b.v[10] = params_.add(p + "mlp.c_proj.weight", {C, 4 * C}, true);
    b.v[11] = params_.add(p + "mlp.c_proj.bias", {C}, false);
    block_ids.push_back(b);
  }
  size_t lnf_w = params_.add("transformer.ln_f.weight", {C}, false);
  size_t lnf_b = params_.add("transformer.ln_f.bias", {C}, false);
  params_.allocate();
  wte_ = params_.tensor(wte);
  wpe_ = params_.tensor(wpe);
  lnf_w_ = params_.tensor(lnf_w);
  lnf_b_ = params_.tensor(lnf_b);
  for (const auto& b : block_ids) {
    Block block;
    Tensor* fields[] = {&block.ln1_w, &block.ln1_b, &block.attn_w, &block.attn_b, &block.proj_w,  &block.proj_b,
                        &block.ln2_w, &block.ln2_b, &block.fc_w,   &block.fc_b,   &block.fc_proj_w, &block.fc_proj_b};
    for (int k = 0; k < 12; ++k) *fields[k] = params_.tensor(b.v[k]);
    blocks_.push_back(block);
  }
}

void Gpt::init(Rng& rng) {
  const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.layers));
  for (size_t i = 0; i < params_.views().size(); ++i) {
    const auto& view = params_.views()[i];
    float* w = params_.values() + view.offset;
    bool norm_gain = view.name.find("ln_") != std::string::npos && view.name.ends_with(".weight");
    if (norm_gain) {
      std::fill(w, w + view.size, 1.0f);
    } else if (view.shape.size() == 1) {
      std::fill(w, w + view.size, 0.0f);
    } else {
      float std = view.name.ends_with("c_proj.weight") ? residual_std : 0.02f;
      for (size_t k = 0; k < view.size; ++k) w[k] = std * rng.normal();
    }
  }
}

Tensor Gpt::logits(Graph& g, const uint32_t* ids, int64_t B, int64_t T) {
  Tensor x = g.embedding(ids, B, T, wte_, wpe_);
  for (const Block& b : blocks_) {
    Tensor attended = g.linear(g.attention(g.linear(g.layernorm(x, b.ln1_w, b.ln1_b), b.attn_w, b.attn_b),
                                           config_.heads),
                               b.proj_w, b.proj_b);
    x = g.add(x, attended);
    Tensor mlp = g.linear(g.gelu(g.linear(g.layernorm(x, b.ln2_w, b.ln2_b), b.fc_w, b.fc_b)), b.fc_proj_w,
                          b.fc_proj_b);
    x = g.add(x, mlp);
  }
  x = g.layernorm(x, lnf_w_, lnf_b_);
  return g.linear(x, wte_, Tensor{});  // the head shares the token embedding
}

GptCache Gpt::make_cache() const {
  const int64_t C = config_.embd;
  GptCache cache;
  cache.k.assign(static_cast<size_t>(config_.layers * config_.context * C), 0.0f);
  cache.v.assign(cache.k.size(), 0.0f);
  cache.x.resize(static_cast<size_t>(C));
  cache.normed.resize(static_cast<size_t>(C));
  cache.qkv.resize(static_cast<size_t>(3 * C));
  cache.attended.resize(static_cast<size_t>(C));
  cache.projected.resize(static_cast<size_t>(C));
  cache.hidden.resize(static_cast<size_t>(4 * C));
  cache.activated.resize(static_cast<size_t>(4 * C));
  cache.logits.resize(static_cast<size_t>(config_.vocab));
  return cache;
}

const std::vector<float>& Gpt::step(GptCache& cache, uint32_t token) {
  const int64_t C = config_.embd, NH = config_.heads, HS = C / NH, T = config_.context;
  const int64_t t = cache.length;
  if (t >= T) throw Error("gpt", fmt::format("the cache is full ({} tokens)", T));
  float* x = cache.x.data();
  float mean, rstd;
  nn::embedding_forward(x, &token, wte_.data, wpe_.data + t * C, 1, 1, C);
  std::vector<float> scores(static_cast<size_t>(t + 1));
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const Block& b = blocks_[l];
    float* keys = cache.k.data() + static_cast<int64_t>(l) * T * C;
    float* values = cache.v.data() + static_cast<int64_t>(l) * T * C;
    nn::layernorm_forward(cache.normed.data(), &mean, &rstd, x, b.ln1_w.data, b.ln1_b.data, 1, C);
    nn::linear_forward(cache.qkv.data(), cache.normed.data(), b.attn_w.data, b.attn_b.data, 1, C, 3 * C);
    std::copy_n(cache.qkv.data() + C, C, keys + t * C);
    std::copy_n(cache.qkv.data() + 2 * C, C, values + t * C);
    const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
    for (int64_t h = 0; h < NH; ++h) {
      const float* q = cache.qkv.data() + h * HS;
      float maximum = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) {
        const float* k = keys + j * C + h * HS;
        float dot = 0;
        for (int64_t i = 0; i < HS; ++i) dot += q[i] * k[i];
        scores[static_cast<size_t>(j)] = dot * scale;
        maximum = std::max(maximum, scores[static_cast<size_t>(j)]);
      }
      float sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - maximum);
        sum += scores[static_cast<size_t>(j)];
      }
      float* o = cache.attended.data() + h * HS;
      std::fill(o, o + HS, 0.0f);
      for (int64_t j = 0; j <= t; ++j) {
        const float* v = values + j * C + h * HS;
        float w = scores[static_cast<size_t>(j)] / sum;
        for (int64_t i = 0; i < HS; ++i) o[i] += w * v[i];
      }
    }
    nn::linear_forward(cache.projected.data(), cache.attended.data(), b.proj_w.data, b.proj_b.data, 1, C, C);
    nn::residual_forward(x, x, cache.projected.data(), C);
    nn::layernorm_forward(cache.normed.data(), &mean, &rstd, x, b.ln2_w.data, b.ln2_b.data, 1, C);
    nn::linear_forward(cache.hidden.data(), cache.normed.data(), b.fc_w.data, b.fc_b.data, 1, C, 4 * C);
    nn::gelu_forward(cache.activated.data(), cache.hidden.data(), 4 * C);
    nn::linear_forward(cache.projected.data(), cache.activated.data(), b.fc_proj_w.data, b.fc_proj_b.data, 1, 4 * C, C);
    nn::residual_forward(x, x, cache.projected.data(), C);
  }
  nn::layernorm_forward(cache.normed.data(), &mean, &rstd, x, lnf_w_.data, lnf_b_.data, 1, C);
  nn::linear_forward<float>(cache.logits.data(), cache.normed.data(), wte_.data, nullptr, 1, C, config_.vocab);
  ++cache.length;
  return cache.logits;
}

Graph::Loss Gpt::loss(Graph& g, const uint32_t* ids, const uint32_t* targets, int64_t B, int64_t T) {
  return g.cross_entropy(logits(g, ids, B, T), targets);
}

}  // namespace gen
