// GAN checkpoints (gan.st, written by `ggan train`): safetensors with both networks and what
// sampling, scoring and resuming need.
//
// Tensors: "g.NAME" for every generator weight, "g.running" (BatchNorm's running statistics),
// "d.NAME" for every discriminator weight (F32); with training state, "g.optimizer.m",
// "g.optimizer.v", "d.optimizer.m", "d.optimizer.v". Metadata: format "gen-gan", version "1",
// config (JSON: the networks' shape, the loss, the class names), step, seed, and with training
// state "train" (JSON: the settings, each Adam's step count, the RNG state), so that a resumed
// run continues exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/gan.h"
#include "tensor/optimizer.h"
#include "train/train_state.h"

namespace gen {

class Safetensors;  // io/safetensors.h

// How the two networks are scored against each other: the non-saturating BCE of the DCGAN
// paper, the hinge loss, or the Wasserstein loss with a gradient penalty (WGAN-GP).
enum class GanObjective { bce, hinge, wgan_gp };
const char* objective_name(GanObjective objective);
// "bce", "hinge", "wgan-gp"; throws UsageError otherwise.
GanObjective parse_objective(const std::string& name);

struct GanModel {
  GanConfig net;
  GanObjective objective = GanObjective::bce;
  std::vector<std::string> class_names;  // net.classes of them
};

struct GanCheckpoint {
  std::string path;
  GanModel model;
  ZeroedFloats g, d;           // in the networks' parameter order
  std::vector<float> running;  // the generator's BatchNorm statistics
  int64_t step = 0;
  uint64_t seed = 1;
  std::optional<TrainState> train;  // optimizers: the generator's, the discriminator's
};

// Writes atomically. train may be null (weights only).
void gan_save(const std::string& path, const GanModel& model, const Generator& g, const Discriminator& d,
              int64_t step, uint64_t seed, const TrainState* train, const AdamW* adam_g, const AdamW* adam_d);
// Validates the format, the config and every tensor's shape; throws Error naming the file (a
// diffusion checkpoint: "not a GAN: its format is 'gen-unet', ...").
// Without training_state the optimizers' moments are checked for their shape but not read.
GanCheckpoint gan_load(const std::string& path, bool training_state = true);
// The same from a file already read (a fuzzer's bytes: Safetensors::parse).
GanCheckpoint gan_load(const Safetensors& st, bool training_state = true);

}  // namespace gen
