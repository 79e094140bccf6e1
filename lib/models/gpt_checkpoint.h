// Language-model checkpoints (lm.st): safetensors with everything a run needs.
//
// Tensors: every weight under its nanoGPT name (F32); "tokenizer" (U8), the serialized
// sentencepiece model; unless saved without optimizer state, "optimizer.m" and "optimizer.v"
// (F32 [parameters], AdamW's moments in weight order).
// Metadata: format "gen-gpt", version "1", config (JSON: vocab, context, layers, heads, embd),
// tokenizer_sha256 (equal to `sha256sum` of the tokenizer file), tokenizer_vocab, step, seed,
// and with optimizer state "train" (JSON: the training settings, AdamW's step count, the batch
// sampler's RNG state), so that a resumed run continues exactly.
//
//   gen::gpt_save("lm.st", model, tokenizer_bytes, &state);
//   gen::GptCheckpoint ckpt = gen::gpt_load("lm.st");   // checks everything, throws Error
//   gen::Gpt model(ckpt.config); ckpt.copy_weights(model);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/gpt.h"

namespace gen {

struct GptTrainState {
  int64_t step = 0;      // optimizer steps done
  uint64_t seed = 1;
  Rng::State sampler{};  // the batch sampler's RNG
  int64_t adam_steps = 0;
  std::vector<float> m, v;
  std::string settings;  // training settings as JSON, restored on --resume
};

struct GptCheckpoint {
  std::string path;
  GptConfig config;
  std::string tokenizer;         // serialized sentencepiece model
  std::string tokenizer_sha256;
  std::vector<float> weights;    // in Gpt's parameter order
  int64_t step = 0;
  uint64_t seed = 1;
  std::optional<GptTrainState> train;
  void copy_weights(Gpt& model) const;
};

// Writes atomically (temporary file, fsync, rename). train may be null (weights only).
void gpt_save(const std::string& path, const Gpt& model, const std::string& tokenizer, int64_t step, uint64_t seed,
              const GptTrainState* train);
// Without training_state the optimizer state is checked for its shape but not copied (sampling).
GptCheckpoint gpt_load(const std::string& path, bool training_state = true);

}  // namespace gen
