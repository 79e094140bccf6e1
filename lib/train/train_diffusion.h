// Training the diffusion U-Net (gdiffuse train): images in, a checkpoint with the weights' moving
// average out; exact resume. The step is the DDPM batch (diffusion/training.h) with AdamW and
// the cosine schedule; train_loop() does the rest. The preview is a guided sample grid from
// fixed noise (diffusion/guidance.h).
#pragma once

#include <cstdint>
#include <string>

#include "train/options.h"
#include "train/settings.h"

namespace CLI {
class App;
}

namespace gen {

// Saved in the checkpoint and restored by --resume.
struct DiffusionTrainSettings {
  int64_t batch = 64;
  int64_t decay_steps = 0;  // 0: --steps
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int64_t warmup = 200;
  float weight_decay = 0.0f;
  float grad_clip = 1.0f;
  float ema = 0.999f;
  float cond_drop = 0.1f;
  int64_t limit = 0;  // the first N images only (0: all)
};

SettingList diffusion_setting_list(DiffusionTrainSettings& s);

struct DiffusionTrainJob {
  RunOptions run;
  std::string data = "fashion-mnist", labels;
  // The model (a new run's; a resumed run's come from the checkpoint).
  std::string channels = "32,64,128", schedule = "linear";
  int64_t T = 1000, groups = 8, time_dim = 128;
  bool unconditional = false, attention = false;
  DiffusionTrainSettings settings;
};

void train_diffusion(DiffusionTrainJob& job);

// The command line: the options (every setting, the shared run options, the model, the data)
// into app, bound to job; after parsing, train_diffusion_command checks them and trains.
void add_diffusion_train_options(CLI::App& app, DiffusionTrainJob& job);
void train_diffusion_command(const CLI::App& app, DiffusionTrainJob& job);

}  // namespace gen
