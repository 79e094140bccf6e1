// Training the GAN (ggan train): images in, a checkpoint with both networks out; exact resume.
// The step is the adversarial step (models/adversarial.h), watched by the collapse monitor;
// train_loop() does the rest. The preview is a grid from fixed latents.
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
struct GanTrainSettings {
  int64_t batch = 64;
  float lr = 2e-4f;
  float beta1 = 0.5f, beta2 = 0.999f;
  int64_t d_steps = 1;  // discriminator steps per generator step
  float gp = 10.0f;     // WGAN-GP's penalty weight
  int64_t limit = 0;    // the first N images only (0: all)
};

SettingList gan_setting_list(GanTrainSettings& s);

struct GanTrainJob {
  RunOptions run;
  std::string data = "fashion-mnist", labels, loss = "bce";
  int64_t latent = 64, g_channels = 256, d_channels = 64;
  bool conditional = false;
  GanTrainSettings settings;
};

void train_gan(GanTrainJob& job);

// The command line: the options (every setting, the shared run options, the model, the data)
// into app, bound to job; after parsing, train_gan_command checks them and trains.
void add_gan_train_options(CLI::App& app, GanTrainJob& job);
void train_gan_command(const CLI::App& app, GanTrainJob& job);

}  // namespace gen
