// What every checkpoint kind shares: the format check, integer metadata, the RNG state.
//
//   Safetensors st = Safetensors::read(path);
//   check_format(st, "gen-unet", "1", "a diffusion model");   // throws Error naming the file
//   int64_t step = meta_int(st, "step");
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/safetensors.h"

namespace gen {

// Throws Error unless the file's metadata says this format and version; `what` names the kind
// for the message ("not a diffusion model: its format is 'gen-gpt'").
void check_format(const Safetensors& st, const char* format, const char* version, const char* what);

// The metadata value as an integer, or throws Error naming the file and the key.
int64_t meta_int(const Safetensors& st, const std::string& key);

// The RNG's state in a checkpoint's "train" JSON (rng_state, rng_increment, rng_seed as decimal
// strings; Box-Muller's waiting value as its bits, rng_spare_bits and rng_has_spare), so that a
// resumed run draws the same numbers. rng_from_json throws nlohmann's exceptions on bad input.
void rng_to_json(nlohmann::json& j, const Rng::State& rng);
Rng::State rng_from_json(const nlohmann::json& j);

}  // namespace gen
