// Training the image classifier (gscore train): labelled images in, a checkpoint out; exact
// resume. The step is a batch of the epoch's shuffled, augmented images
// (models/classifier_training.h) with AdamW and the cosine schedule, the test accuracy measured
// at each epoch's end; train_loop() does the rest.
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
struct ClassifierTrainSettings {
  int64_t batch = 128;
  int64_t decay_steps = 0;  // 0: the last step
  float lr = 2e-3f;
  float min_lr = 2e-5f;
  int64_t warmup = 100;
  float weight_decay = 0.05f;
  float grad_clip = 0.0f;
  bool no_flip = false;
  int64_t shift = 1;
  int64_t limit = 0, test_limit = 0;  // the first N images only (0: all)
};

SettingList classifier_setting_list(ClassifierTrainSettings& s);

struct ClassifierTrainJob {
  RunOptions run;  // run.steps 0: epochs passes over the images
  std::string data = "fashion-mnist", labels, test, test_labels, channels = "32,64,128";
  int64_t features = 256, epochs = 5;
  bool pool = false;
  ClassifierTrainSettings settings;
};

void train_classifier(ClassifierTrainJob& job);

// The command line: the options (every setting, the shared run options, the model, the data)
// into app, bound to job; after parsing, train_classifier_command checks them and trains.
void add_classifier_train_options(CLI::App& app, ClassifierTrainJob& job);
void train_classifier_command(const CLI::App& app, ClassifierTrainJob& job);

}  // namespace gen
