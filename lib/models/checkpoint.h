// What every checkpoint kind shares: the format check, integer metadata, the RNG state.
//
//   Safetensors st = Safetensors::read(path);
//   check_format(st, "gen-unet", "1", "a diffusion model");   // throws Error naming the file
//   int64_t step = meta_int(st, "step");
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"

namespace gen {

// Throws Error unless the file's metadata says this format and version; `what` names the kind
// for the message ("not a diffusion model: its format is 'gen-gpt'").
void check_format(const Safetensors& st, const char* format, const char* version, const char* what);

// The metadata value as an integer, or throws Error naming the file and the key.
int64_t meta_int(const Safetensors& st, const std::string& key);

// The model config's integer `key` (JSON), or throws Error naming the file and the key: a number
// that is not whole (16.7, 1e30) is refused, never truncated or cast.
int64_t config_int(const Safetensors& st, const nlohmann::json& config, const char* key);
// A list of them (the channels of each level).
std::vector<int64_t> config_ints(const Safetensors& st, const nlohmann::json& config, const char* key);

// The cap on a model built from this file's config (tensor/tensor.h): no more parameters than
// its F32 tensors hold. Build the layout while it lives.
ParameterLimit parameter_limit(const Safetensors& st);

// The RNG's state in a checkpoint's "train" JSON (rng_state, rng_increment, rng_seed as decimal
// strings; Box-Muller's waiting value as its bits, rng_spare_bits and rng_has_spare), so that a
// resumed run draws the same numbers. rng_from_json throws nlohmann's exceptions on bad input.
void rng_to_json(nlohmann::json& j, const Rng::State& rng);
Rng::State rng_from_json(const nlohmann::json& j);
// The "train" metadata of a checkpoint: fields (each kind's own, such as Adam's step counts),
// "settings" (the tool's settings, JSON text) and the RNG state, as JSON text.
std::string train_metadata(nlohmann::json fields, const std::string& settings, const Rng::State& rng);

// What resuming needs of a checkpoint of any kind (its train member an optional holding the
// settings as JSON): the training state must be there, and the settings go back into the
// tool's Settings (its from_json); errors name the file.
template <typename Checkpoint, typename Settings>
void resume_settings(const Checkpoint& checkpoint, const std::string& path, Settings& settings) {
  if (!checkpoint.train) throw Error(path, "has no training state to resume from (saved with --no-optimizer)");
  try {
    settings.from_json(nlohmann::json::parse(checkpoint.train->settings));
  } catch (const std::exception& e) {
    throw Error(path, fmt::format("the saved settings are not valid ({})", e.what()));
  }
}

}  // namespace gen
