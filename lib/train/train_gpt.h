// Training the GPT (gtrain): token ids in, a checkpoint out; exact resume; fine-tuning from a
// checkpoint's weights. The step is next-token prediction (models/next_token.h) with AdamW,
// gradient clipping and nanoGPT's warmup + cosine schedule; train_loop() does the rest.
//
//   gen::GptTrainJob job;  job.run.output = "lm.st";  job.tokenizer = "char.model";
//   job.input = "corpus.ids";
//   gen::train_gpt(job);
// or from a command line: add_gpt_train_options(app, job); parse; train_gpt_command(app, job).
#pragma once

#include <cstdint>
#include <string>

#include "models/gpt.h"
#include "train/options.h"
#include "train/settings.h"

namespace CLI {
class App;
}

namespace gen {

// Everything that shapes the optimization (and the validation figures): saved in the checkpoint
// and restored by --resume. How often to evaluate is not saved: it changes nothing.
struct GptTrainSettings {
  int64_t batch = 12;
  int64_t decay_steps = 0;  // 0: --steps
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int64_t warmup = 100;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;
  float beta1 = 0.9f;
  float beta2 = 0.99f;
  int64_t eval_batches = 20;
  double val_fraction = 0.1;
};

// The settings as options and saved keys, with their ranges.
SettingList gpt_setting_list(GptTrainSettings& s);

struct GptTrainJob {
  RunOptions run;
  std::string input = "-";  // token ids
  std::string tokenizer, init, val;
  GptConfig config{.vocab = 0, .context = 64, .layers = 4, .heads = 4, .embd = 128};
  GptTrainSettings settings;
  int64_t eval_every = 250;
};

void train_gpt(GptTrainJob& job);

// gtrain's command line: the options (every setting, the shared run options, the model's shape,
// the data) into app, bound to job; then, after parsing, train_gpt_command checks them and trains.
void add_gpt_train_options(CLI::App& app, GptTrainJob& job);
void train_gpt_command(const CLI::App& app, GptTrainJob& job);

}  // namespace gen
