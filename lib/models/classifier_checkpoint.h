// Classifier checkpoints (classifier.st, written by `gscore train`): safetensors with the weights
// and what labelling and resuming need.
//
// Tensors: every classifier weight under its name (F32); with training state, "optimizer.m" and
// "optimizer.v". Metadata: format "gen-classifier", version "1", config (JSON: the network's
// shape and the class names), step, seed, test_accuracy (a fraction, or "" if never measured),
// and with training state "train" (train/train_state.h: the settings, the data's fingerprint,
// AdamW's step count, the RNG state), so that a resumed run continues exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/classifier.h"
#include "tensor/optimizer.h"
#include "train/train_state.h"

namespace gen {

class Safetensors;  // io/safetensors.h

struct ClassifierModel {
  ClassifierConfig net;
  std::vector<std::string> class_names;  // net.classes of them
};

struct ClassifierCheckpoint {
  std::string path;
  ClassifierModel model;
  ZeroedFloats weights;  // in the classifier's parameter order
  int64_t step = 0;
  uint64_t seed = 1;
  double test_accuracy = -1;  // -1: not measured
  std::optional<TrainState> train;
};

// Writes atomically, the weights (in the classifier's parameter order) and adam's moments from
// their buffers. train may be null (weights only).
void classifier_save(const std::string& path, const ClassifierModel& model, const float* weights, int64_t step,
                     uint64_t seed, double test_accuracy, const TrainState* train, const AdamW* adam);
// Validates the format, the config and every tensor's shape; throws Error naming the file (a
// GPT or diffusion checkpoint: "not an image classifier: its format is 'gen-unet', ...").
// Without training_state the optimizer's moments are checked for their shape but not read.
ClassifierCheckpoint classifier_load(const std::string& path, bool training_state = true);
// The same from a file already read (a fuzzer's bytes: Safetensors::parse).
ClassifierCheckpoint classifier_load(const Safetensors& st, bool training_state = true);

}  // namespace gen
