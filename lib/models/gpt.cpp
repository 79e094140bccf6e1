#include "models/gpt.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "core/error.h"
#include "core/threads.h"
#include "tensor/kernels.h"
#include "tensor/vec.h"

namespace gen {

namespace {

// Whether step() takes its vector path through attention: heads a whole number of vectors wide
// (tensor/vec.h: 16 floats with AVX-512, 8 with AVX2, 4 otherwise). It keeps a layer's keys
// transposed then, [C, kKeyStride(context)] instead of [context, C], so that a query's scores
// over kFloats positions take one vector multiply and add per query element.
bool vector_heads(int64_t head_size) { return head_size % vec::kFloats == 0; }

// The transposed keys' row stride: the context rounded up to whole blocks of transposed_scores,
// so that its loads never leave a row (the positions past the context are zeros, never stored).
constexpr int64_t kKeyBlock = 4 * vec::kFloats;
int64_t key_stride(int64_t context) { return (context + kKeyBlock - 1) / kKeyBlock * kKeyBlock; }

// p itself, but as a value the compiler must have in a register: an add that takes it cannot
// fuse with the multiply that made it.
inline vec::Vec rounded(vec::Vec p) {
  asm("" : "+v"(p));
  return p;
}

// scores[j] = scale * (q . k_j) for j < n, the keys transposed (kt[i * stride + j] = k_j[i],
// stride a multiple of kKeyBlock). Each dot product is the products, each rounded, added in
// order from i = 0: what the loop over one key's contiguous elements computes as GCC vectorizes
// it with AVX-512 (vmulps, then the lanes added one by one), so there the logits are the same
// to the bit as logits()'s (elsewhere they agree up to rounding). Four blocks of positions at a
// time: four chains of additions in flight, not one.
void transposed_scores(float* scores, const float* q, const float* kt, int64_t stride, int64_t head_size, int64_t n,
                       float scale) {
  using vec::kFloats;
  using vec::Vec;
  for (int64_t j = 0; j < n; j += kKeyBlock) {
    Vec dot[4] = {};
    for (int64_t i = 0; i < head_size; ++i) {
      const Vec qi = vec::broadcast(q[i]);
      const float* row = kt + i * stride + j;
      for (int b = 0; b < 4; ++b) dot[b] += rounded(qi * vec::load(row + b * kFloats));
    }
    float block[kKeyBlock];
    for (int b = 0; b < 4; ++b) vec::store(block + b * kFloats, dot[b] * scale);
    std::copy_n(block, std::min(kKeyBlock, n - j), scores + j);
  }
}

// out[i] = sum over j < n of (scores[j] / sum) v_j[i] for i < head_size (a whole number of
// vectors), v_j at values + j * stride. The sums stay in registers across j (in memory, each j
// waits for the previous one's store); each step is a fused multiply-add in order of j, as the
// loop over out[] compiles to, so the result is the same to the bit.
void mix_values(float* out, const float* scores, float sum, const float* values, int64_t stride, int64_t head_size,
                int64_t n) {
  using vec::kFloats;
  using vec::Vec;
  int64_t i = 0;
  for (; i + 2 * kFloats <= head_size; i += 2 * kFloats) {
    Vec a = {}, b = {};
    for (int64_t j = 0; j < n; ++j) {
      const Vec w = vec::broadcast(scores[j] / sum);
      a += w * vec::load(values + j * stride + i);
      b += w * vec::load(values + j * stride + i + kFloats);
    }
    vec::store(out + i, a);
    vec::store(out + i + kFloats, b);
  }
  if (i < head_size) {
    Vec a = {};
    for (int64_t j = 0; j < n; ++j) a += vec::broadcast(scores[j] / sum) * vec::load(values + j * stride + i);
    vec::store(out + i, a);
  }
}

}  // namespace

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

std::vector<size_t> Gpt::block_matrices() const {
  std::vector<size_t> matrices;
  const auto& views = params_.views();
  for (size_t i = 0; i < views.size(); ++i)
    if (views[i].shape.size() == 2 && views[i].name.starts_with("transformer.h.")) matrices.push_back(i);
  return matrices;
}

Gpt::Gpt(const GptConfig& config, ZeroedFloats weights) : config_(config) {
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
  params_.allocate(std::move(weights));
  wte_ = params_.tensor(wte);
  wpe_ = params_.tensor(wpe);
  lnf_w_ = params_.tensor(lnf_w);
  lnf_b_ = params_.tensor(lnf_b);
  for (const auto& b : block_ids) {
    Block block;
    auto fields = block.tensors();
    for (size_t k = 0; k < fields.size(); ++k) *fields[k] = params_.tensor(b.v[k]);
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

namespace {
// A key of its own for each shard and site, from the step's.
uint64_t site_key(uint64_t key, int shard, int64_t site) {
  return mix64(key ^ ((static_cast<uint64_t>(shard) << 32) + static_cast<uint64_t>(site) + 1) * 0x9E3779B97F4A7C15ull);
}
}  // namespace

Tensor Gpt::logits(Graph& g, const uint32_t* ids, int64_t B, int64_t T, int shard, GptDropout dropout) {
  const bool drop = g.training() && dropout.p > 0;
  const Tensor wte = params_.in_shard(wte_, shard);
  Tensor x = g.embedding(ids, B, T, wte, params_.in_shard(wpe_, shard));
  if (drop) x = g.dropout(x, dropout.p, site_key(dropout.key, shard, 0));
  int64_t site = 1;
  for (const Block& block : blocks_) {
    Block b = block;
    for (Tensor* t : b.tensors()) *t = params_.in_shard(*t, shard);
    // x + attention, then x + MLP: each projection adds into the residual stream (after its
    // dropout, if any).
    Tensor attended = g.attention(g.linear(g.layernorm(x, b.ln1_w, b.ln1_b), b.attn_w, b.attn_b), config_.heads,
                                  /*causal=*/true, drop ? dropout.p : 0.0f, site_key(dropout.key, shard, site++));
    if (drop)
      x = g.add(x, g.dropout(g.linear(attended, b.proj_w, b.proj_b), dropout.p, site_key(dropout.key, shard, site++)));
    else
      x = g.linear(attended, b.proj_w, b.proj_b, x);
    Tensor hidden = g.gelu(g.linear(g.layernorm(x, b.ln2_w, b.ln2_b), b.fc_w, b.fc_b));
    if (drop)
      x = g.add(x, g.dropout(g.linear(hidden, b.fc_proj_w, b.fc_proj_b), dropout.p, site_key(dropout.key, shard, site++)));
    else
      x = g.linear(hidden, b.fc_proj_w, b.fc_proj_b, x);
  }
  x = g.layernorm(x, params_.in_shard(lnf_w_, shard), params_.in_shard(lnf_b_, shard));
  return g.linear(x, wte, Tensor{});  // the head shares the token embedding
}

// Floats of the weights packed for step(): every block's four matrices, then the head.
int64_t Gpt::packed_size() const {
  const int64_t C = config_.embd;
  return config_.layers * (nn::packed_rows_size(3 * C, C) + nn::packed_rows_size(C, C) +
                           nn::packed_rows_size(4 * C, C) + nn::packed_rows_size(C, 4 * C)) +
         nn::packed_rows_size(config_.vocab, C);
}

GptCache Gpt::make_cache() const {
  const int64_t C = config_.embd;
  GptCache cache;
  cache.weights.assign_zeros(static_cast<size_t>(packed_size()));
  float* p = cache.weights.data();
  auto pack = [&p](const Tensor& w, int64_t OC, int64_t IC) {
    nn::pack_rows(p, w.data, OC, IC);
    p += nn::packed_rows_size(OC, IC);
  };
  for (const Block& b : blocks_) {  // in the order step() reads them
    pack(b.attn_w, 3 * C, C);
    pack(b.proj_w, C, C);
    pack(b.fc_w, 4 * C, C);
    pack(b.fc_proj_w, C, 4 * C);
  }
  pack(wte_, config_.vocab, C);
  cache.k.assign(static_cast<size_t>(config_.layers * key_stride(config_.context) * C), 0.0f);
  cache.v.assign(static_cast<size_t>(config_.layers * config_.context * C), 0.0f);
  cache.x.resize(static_cast<size_t>(C));
  cache.normed.resize(static_cast<size_t>(C));
  cache.qkv.resize(static_cast<size_t>(3 * C));
  cache.attended.resize(static_cast<size_t>(C));
  cache.hidden.resize(static_cast<size_t>(4 * C));
  cache.activated.resize(static_cast<size_t>(4 * C));
  cache.stats.resize(2);
  cache.logits.resize(static_cast<size_t>(config_.vocab));
  return cache;
}

const std::vector<float>& Gpt::step(GptCache& cache, uint32_t token) { return step(cache, &token, 1); }

const std::vector<float>& Gpt::step(GptCache& cache, const uint32_t* tokens, int64_t n) {
  const int64_t C = config_.embd, NH = config_.heads, HS = C / NH, T = config_.context, TK = key_stride(T);
  const int64_t t0 = cache.length;
  if (n < 1) throw Error("gpt", fmt::format("a step of {} tokens", n));
  if (t0 + n > T) throw Error("gpt", fmt::format("{} more tokens do not fit the cache ({} of {} used)", n, t0, T));
  if (cache.weights.size() != static_cast<size_t>(packed_size()))
    throw std::logic_error("Gpt::step: a cache made by another model's make_cache()");
  // Each token's row of every buffer; the products take the rows together (nn::linear_rows_share:
  // the weights stream once per four rows, each row's result the same to the bit as alone).
  auto rows = [n](std::vector<float>& buffer, int64_t width) {
    if (buffer.size() < static_cast<size_t>(n * width)) buffer.resize(static_cast<size_t>(n * width));
    return buffer.data();
  };
  // One parallel region a step (a region a product cost ~1 us each, 17 a token): the threads
  // share out each product's blocks of outputs (nn::linear_rows_share), then the attention's
  // (row, head) pairs, with a barrier wherever the next stage reads what all of them wrote. Each
  // layer norm is computed by every thread into its own buffer (a few hundred values: less than a
  // barrier), and each thread's GELU takes its own outputs of the product before it. Every value
  // is computed as on one thread: the same bits on any number of them.
  const int threads = threads_for(NH * n, C * C >= 16384);
  float* x = rows(cache.x, C);
  float* normed = rows(cache.normed, threads * C);  // a thread's rows at normed + part n C
  float* qkv = rows(cache.qkv, 3 * C);
  float* attended = rows(cache.attended, C);
  float* hidden = rows(cache.hidden, 4 * C);
  float* activated = rows(cache.activated, 4 * C);
  float* stats = rows(cache.stats, threads * 2);  // layer norms' means and reciprocal deviations, a thread's 2 n
  nn::embedding_forward(x, tokens, wte_.data, wpe_.data + t0 * C, 1, n, C);
  const bool vector_path = vector_heads(HS);
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  std::vector<float> all_scores(static_cast<size_t>(threads * (t0 + n)));  // a thread's t0 + n
  SpinBarrier barrier;
  auto run = [&](int part, int parts) {
    float* norm = normed + part * n * C;
    float* mean = stats + part * 2 * n;
    float* scores = all_scores.data() + part * (t0 + n);
    const float* packed = cache.weights.data();  // make_cache()'s order
    auto weights = [&packed](int64_t OC, int64_t IC) {
      const float* w = packed;
      packed += nn::packed_rows_size(OC, IC);
      return w;
    };
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const Block& b = blocks_[l];
      float* keys = cache.k.data() + static_cast<int64_t>(l) * TK * C;
      float* values = cache.v.data() + static_cast<int64_t>(l) * T * C;
      nn::layernorm_forward(norm, mean, mean + n, x, b.ln1_w.data, b.ln1_b.data, n, C);
      const auto [q0, q1] = nn::linear_rows_share(qkv, norm, weights(3 * C, C), b.attn_b.data, n, C, 3 * C,
                                                  nullptr, part, parts);
      // This thread's keys and values into the cache.
      for (int64_t r = 0; r < n; ++r) {
        const float* row = qkv + r * 3 * C;
        const int64_t t = t0 + r;
        for (int64_t i = std::max(q0, C); i < std::min(q1, 2 * C); ++i) {
          if (vector_path)
            keys[(i - C) * TK + t] = row[i];
          else
            keys[t * C + i - C] = row[i];
        }
        for (int64_t i = std::max(q0, 2 * C); i < q1; ++i) values[t * C + i - 2 * C] = row[i];
      }
      barrier.wait(parts);
      // Each token attends to the cache up to itself: this thread's (row, head) pairs, every
      // parts-th (later rows attend to more keys: a window's refill split in halves of rows gave
      // one thread twice the other's work).
      for (int64_t k = part; k < n * NH; k += parts) {
        const int64_t r = k / NH, h = k % NH, t = t0 + r;
        const float* q = qkv + r * 3 * C + h * HS;
        float maximum = -INFINITY;
        if (vector_path) {
          transposed_scores(scores, q, keys + h * HS * TK, TK, HS, t + 1, scale);
          for (int64_t j = 0; j <= t; ++j) maximum = std::max(maximum, scores[j]);
        } else {
          for (int64_t j = 0; j <= t; ++j) {
            const float* key = keys + j * C + h * HS;
            float dot = 0;
            for (int64_t i = 0; i < HS; ++i) dot += q[i] * key[i];
            scores[j] = dot * scale;
            maximum = std::max(maximum, scores[j]);
          }
        }
        float sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          scores[j] = std::exp(scores[j] - maximum);
          sum += scores[j];
        }
        float* o = attended + r * C + h * HS;
        if (vector_path) {
          mix_values(o, scores, sum, values + h * HS, C, HS, t + 1);
          continue;
        }
        std::fill(o, o + HS, 0.0f);
        for (int64_t j = 0; j <= t; ++j) {
          const float* v = values + j * C + h * HS;
          float w = scores[j] / sum;
          for (int64_t i = 0; i < HS; ++i) o[i] += w * v[i];
        }
      }
      barrier.wait(parts);
      nn::linear_rows_share(x, attended, weights(C, C), b.proj_b.data, n, C, C, x, part, parts);
      barrier.wait(parts);
      nn::layernorm_forward(norm, mean, mean + n, x, b.ln2_w.data, b.ln2_b.data, n, C);
      const auto [f0, f1] = nn::linear_rows_share(hidden, norm, weights(4 * C, C), b.fc_b.data, n, C, 4 * C,
                                                  nullptr, part, parts);
      for (int64_t r = 0; r < n; ++r) nn::gelu_forward(activated + r * 4 * C + f0, hidden + r * 4 * C + f0, f1 - f0);
      barrier.wait(parts);
      nn::linear_rows_share(x, activated, weights(C, 4 * C), b.fc_proj_b.data, n, 4 * C, C, x, part, parts);
      barrier.wait(parts);
    }
    // The logits of the last token only.
    nn::layernorm_forward(norm, mean, mean + 1, x + (n - 1) * C, lnf_w_.data, lnf_b_.data, 1, C);
    nn::linear_rows_share(cache.logits.data(), norm, weights(config_.vocab, C), nullptr, 1, C, config_.vocab,
                          nullptr, part, parts);
  };
  if (threads == 1) {
    run(0, 1);  // no region: a team of one still ends with a futex
  } else {
#pragma omp parallel num_threads(threads)
    run(omp_get_thread_num(), omp_get_num_threads());
  }
  cache.length += n;
  return cache.logits;
}

Graph::Loss Gpt::loss(Graph& g, const uint32_t* ids, const uint32_t* targets, int64_t B, int64_t T, int shard,
                      GptDropout dropout) {
  return g.cross_entropy(logits(g, ids, B, T, shard, dropout), targets);
}

Gpt::BatchLoss Gpt::batch_loss(std::vector<Arena>& arenas, const uint32_t* ids, const uint32_t* targets, int64_t B,
                               int64_t T, bool training, Cluster* cluster, GptDropout dropout) {
  const int shards = params_.shards();
  if (B % shards != 0) throw std::logic_error("Gpt::batch_loss: the batch does not split into the shards");
  const int64_t rows = B / shards * T;
  const std::vector<ShardFigures> parts = run_shards(
      params_, arenas, training,
      [&](int s, Graph& g) {
        const Graph::Loss part = loss(g, ids + s * rows, targets + s * rows, B / shards, T, s, dropout);
        return ShardFigures{part.mean, static_cast<double>(part.correct)};
      },
      cluster);
  BatchLoss result;
  result.mean = mean_loss(parts);
  for (const ShardFigures& part : parts) result.correct += static_cast<int64_t>(part.extra);
  return result;
}

}  // namespace gen
