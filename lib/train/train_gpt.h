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
  float dropout = 0;       // nanoGPT's: the embeddings, the attention weights, each residual branch
  int64_t grad_accum = 1;  // batches of --batch sequences whose gradients make one step
  bool muon = false;       // the blocks' matrices by Muon (tensor/optimizer.h), the rest by AdamW
  float muon_momentum = 0.95f;
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
  std::string evaluate;  // --evaluate CHECKPOINT: no training; the input is text to score
  int64_t windows = 0;   // --windows N with --evaluate: the mean over N random windows instead
};

void train_gpt(GptTrainJob& job);

// gtrain --evaluate CHECKPOINT FILE: the model's loss on a text (encoded with the checkpoint's
// tokenizer), as llama-perplexity reports it. Windows of the context slide by half a context;
// each token after the first is predicted once, from the tokens before it in its window (at
// least half a context of them, but in the first window). Prints to stdout the tokens, the
// bytes, the mean loss in nats per token, the perplexity e^loss and the bits per byte (the
// total loss in bits over the bytes of the predicted tokens). With --windows N: the mean loss over N
// random windows of the context instead (nanoGPT's estimate, and gtrain's validation loss: drawn
// from --seed as training draws its validation windows, so that a run's estimate is the first
// --eval-batches x --batch of them).
struct TextEvaluation {
  int64_t context = 0, stride = 0;  // the windows' length and how far each slides
  int64_t tokens = 0;  // predicted tokens
  int64_t bytes = 0;   // their bytes
  double nats = 0;     // their summed loss
};
TextEvaluation evaluate_text(Gpt& model, const std::vector<uint32_t>& ids, const std::vector<size_t>& token_bytes,
                             int64_t windows_per_batch);
void evaluate_gpt(const GptTrainJob& job);

// gtrain's command line: the options (every setting, the shared run options, the model's shape,
// the data) into app, bound to job; then, after parsing, train_gpt_command checks them and trains.
void add_gpt_train_options(CLI::App& app, GptTrainJob& job);
void train_gpt_command(const CLI::App& app, GptTrainJob& job);

}  // namespace gen
