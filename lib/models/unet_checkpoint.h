// Diffusion checkpoints (ddpm.st): safetensors with everything sampling and resuming need.
//
// Tensors: every U-Net weight under its name (F32), holding the exponential moving average of
// the training weights (what sampling uses; Ho et al. 2020 sample with EMA weights too); with
// training state, "raw.NAME" (the training weights themselves), "optimizer.m" and "optimizer.v".
// Metadata: format "gen-unet", version "1", config (JSON: the U-Net's shape, the noise schedule,
// T, the class names), step, seed, and with training state "train" (JSON: the settings, AdamW's
// step count, the RNG state), so that a resumed run continues exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/diffusion.h"
#include "models/unet.h"
#include "tensor/optimizer.h"
#include "train/train_state.h"

namespace gen {

class Safetensors;  // io/safetensors.h

struct DiffusionModel {
  UnetConfig unet;
  Schedule::Kind schedule = Schedule::Kind::linear;
  int64_t T = 1000;
  std::vector<std::string> class_names;  // unet.classes of them
};

struct DiffusionCheckpoint {
  std::string path;
  DiffusionModel model;
  ZeroedFloats ema;  // in the U-Net's parameter order
  int64_t step = 0;
  uint64_t seed = 1;
  std::vector<float> raw;  // with training state (when loaded): the training weights themselves
  std::optional<TrainState> train;
};

// Writes atomically. train may be null (sampling weights only); with it, raw (the training
// weights) and adam's moments are written too, from their buffers.
void diffusion_save(const std::string& path, const DiffusionModel& model, const std::vector<float>& ema, int64_t step,
                    uint64_t seed, const TrainState* train, const float* raw, const AdamW* adam);
// Validates the format, the config and every tensor's shape; throws Error naming the file.
// Without training_state the training weights and the optimizer state are checked for their
// shapes but not read (sampling: a quarter of the file).
DiffusionCheckpoint diffusion_load(const std::string& path, bool training_state = true);
// The same from a file already read (a fuzzer's bytes: Safetensors::parse).
DiffusionCheckpoint diffusion_load(const Safetensors& st, bool training_state = true);

}  // namespace gen
