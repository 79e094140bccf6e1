// What a checkpoint holds besides a model's weights so that --resume continues a run exactly:
// one layout for every kind of model.
//
// Tensors: for each optimizer, "PREFIXoptimizer.m" and "PREFIXoptimizer.v" (F32 [parameters],
// AdamW's moments in weight order; PREFIX is "" for a model with one optimizer, "g." and "d."
// for a GAN's two). Metadata "train" (JSON): "steps" (the run's planned total), "settings" (the
// tool's settings, an object: see train/settings.h), "data" (a fingerprint of the training
// data: its SHA-256 as the tool computes it), "PREFIXadam_steps" per optimizer, and the RNG
// state (rng_state, rng_increment, rng_seed as decimal strings; Box-Muller's waiting value as
// its bits, rng_spare_bits and rng_has_spare). The step done and the seed are the checkpoint's
// own "step" and "seed" metadata.
//
//   gen::TrainState state{.steps = 2000, .settings = list.to_json(), .data = fingerprint, .rng = rng.save()};
//   gen::add_train_state(writer, state, {{"", &adam}});           // the moments are borrowed
//   std::optional<gen::TrainState> back = gen::read_train_state(st, {{"", n}});
//   gen::restore(adam, back->optimizers[0]);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/idx.h"
#include "io/safetensors.h"
#include "tensor/optimizer.h"

namespace gen {

struct OptimizerState {
  int64_t steps = 0;  // AdamW's step count (bias correction)
  std::vector<float> m, v;
};

struct TrainState {
  int64_t steps = 0;  // the run's planned total
  nlohmann::json settings = nlohmann::json::object();
  std::string data;  // the training data's fingerprint
  Rng::State rng{};
  std::vector<OptimizerState> optimizers;  // read back: one per prefix asked for, in order
};

// Adds the state to a checkpoint being written: the moments of each (prefix, optimizer) are
// borrowed from it (they must stay unchanged until the writer saves).
void add_train_state(SafetensorsWriter& w, const TrainState& state,
                     const std::vector<std::pair<std::string, const AdamW*>>& optimizers);
// The state of a checkpoint, or nothing if it was saved without (--no-optimizer). optimizers
// gives each prefix and its parameter count; every tensor and key is checked (Error names the
// file). Without moments (a checkpoint loaded to sample from) each optimizer's m and v are
// checked for their type and shape but not read: its OptimizerState holds them empty.
std::optional<TrainState> read_train_state(const Safetensors& st,
                                           const std::vector<std::pair<std::string, int64_t>>& optimizers,
                                           bool moments = true);
// Whether a tensor name is one of the train state's ("optimizer.m", "g.optimizer.v"...).
bool is_train_tensor(const std::string& name, const std::vector<std::pair<std::string, int64_t>>& optimizers);
// Puts a read-back state into an optimizer (its sizes checked by read_train_state; one read
// without its moments is refused).
void restore(AdamW& adam, OptimizerState& state);

// The fingerprint of training data: the SHA-256 (hex) of its bytes; of an image set, of its
// size, pixels and labels.
std::string data_fingerprint(std::string_view bytes);
std::string data_fingerprint(const Dataset& set);

}  // namespace gen
