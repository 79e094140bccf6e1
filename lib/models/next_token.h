// How a language model learns: next-token prediction. A batch is B windows of T tokens cut at
// random places of the training text, and the target of each token is the one after it; the
// loss is the mean cross-entropy of the model's prediction against those targets.
//
//   gen::Rng rng(seed);
//   gen::next_token_batch(ids, rng, B, T, x, y);        // x = ids[o, o+T), y = ids[o+1, o+T+1]
//   gen::Evaluation e = gen::evaluate(model, val, B, T, batches, seed, arenas);
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "models/gpt.h"
#include "tensor/tensor.h"

namespace gen {

// B windows of the token sequence, each at a random offset drawn from rng: x [B, T] the
// tokens, y [B, T] the tokens one place later. data.size() > T.
void next_token_batch(const std::vector<uint32_t>& data, Rng& rng, int64_t B, int64_t T, uint32_t* x, uint32_t* y);

struct Evaluation {
  double loss = 0;      // mean cross-entropy per token
  double accuracy = 0;  // share of tokens whose most likely prediction is the target
};

// The loss and accuracy over `windows` fixed windows of T tokens of held-out data, B at a time
// (the last batch may be smaller; B a multiple of the model's shards, and so must the last batch
// be), drawn from `seed`'s own stream: the same every time, so that the curve is comparable from
// one evaluation to the next, and the first n windows the same for any B.
Evaluation evaluate(Gpt& model, const std::vector<uint32_t>& data, int64_t B, int64_t T, int64_t windows,
                    uint64_t seed, std::vector<Arena>& arenas, Cluster* cluster = nullptr);

}  // namespace gen
