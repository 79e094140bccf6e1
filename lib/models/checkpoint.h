// What every checkpoint kind shares: the format check and integer metadata.
//
//   Safetensors st = Safetensors::read(path);
//   check_format(st, "gen-unet", "1", "a diffusion model");   // throws Error naming the file
//   int64_t step = meta_int(st, "step");
#pragma once

#include <cstdint>
#include <string>

#include "io/safetensors.h"

namespace gen {

// Throws Error unless the file's metadata says this format and version; `what` names the kind
// for the message ("not a diffusion model: its format is 'gen-gpt'").
void check_format(const Safetensors& st, const char* format, const char* version, const char* what);

// The metadata value as an integer, or throws Error naming the file and the key.
int64_t meta_int(const Safetensors& st, const std::string& key);

}  // namespace gen
