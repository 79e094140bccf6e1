// Language-model checkpoints (lm.st): safetensors with everything a run needs.
//
// Tensors: every weight under its nanoGPT name (F32); "tokenizer" (U8), the serialized
// sentencepiece model; unless saved without optimizer state, "optimizer.m" and "optimizer.v"
// (F32 [parameters], AdamW's moments in weight order).
// Metadata: format "gen-gpt", version "1", config (JSON: vocab, context, layers, heads, embd),
// tokenizer_sha256 (equal to `sha256sum` of the tokenizer file), tokenizer_vocab, step, seed,
// and with optimizer state "train" (train/train_state.h: the settings, the data's fingerprint,
// AdamW's step count, the batch sampler's RNG state), so that a resumed run continues exactly.
//
//   gen::gpt_save("lm.st", model, tokenizer_bytes, step, seed, &state, &adam);
//   gen::GptCheckpoint ckpt = gen::gpt_load("lm.st");   // checks everything, throws Error
//   gen::Gpt model(ckpt.config, std::move(ckpt.weights));  // or ckpt.copy_weights(model)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/gpt.h"
#include "tensor/optimizer.h"
#include "train/train_state.h"

namespace gen {

class Safetensors;  // io/safetensors.h

struct GptCheckpoint {
  std::string path;
  GptConfig config;
  std::string tokenizer;         // serialized sentencepiece model
  std::string tokenizer_sha256;
  ZeroedFloats weights;          // in Gpt's parameter order
  int64_t step = 0;
  uint64_t seed = 1;
  std::optional<TrainState> train;  // one optimizer
  void copy_weights(Gpt& model) const;
};

// Writes atomically (temporary file, fsync, rename). train may be null (weights only); with it,
// adam's moments are written from its buffers.
void gpt_save(const std::string& path, const Gpt& model, const std::string& tokenizer, int64_t step, uint64_t seed,
              const TrainState* train, const AdamW* adam);
// Without training_state the optimizer's moments are checked for their shape but not read (sampling).
GptCheckpoint gpt_load(const std::string& path, bool training_state = true);
// The same from a file already read (a fuzzer's bytes: Safetensors::parse).
GptCheckpoint gpt_load(const Safetensors& st, bool training_state = true);

}  // namespace gen
