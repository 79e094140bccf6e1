// gtrain: train a small GPT on token ids; resume exactly; fine-tune from a checkpoint.
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "train/options.h"
#include "train/train_gpt.h"

namespace {

int run(int argc, char** argv) {
  gen::GptTrainJob job;
  job.run.steps = 2000;
  CLI::App app("gtrain: train a small GPT on token ids (from gtok encode); resume exactly; fine-tune", "gtrain");
  app.set_version_flag("--version", "gtrain 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later options override
  app.add_option("ids", job.input, "Token ids, text or binary (gtok encode); - is stdin (default)");
  gen::add_run_options(app, job.run, {.output = "lm.st", .plot = "Draw train and validation loss against step as a PNG"});
  auto* tokenizer = app.add_option("--tokenizer", job.tokenizer, "The tokenizer model the ids came from (gtok train)");
  auto* init = app.add_option("--init", job.init, "Start from this checkpoint's weights and tokenizer (fine-tune)");
  tokenizer->excludes(init)->excludes(app.get_option("--resume"));
  init->excludes(app.get_option("--resume"));
  app.add_option("--val", job.val, "Validation ids (default: the last --val-fraction of the input)");
  auto& c = job.config;
  app.add_option("--layers", c.layers, "Transformer blocks")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--heads", c.heads, "Attention heads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--embd", c.embd, "Embedding width")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--context", c.context, "Context length in tokens")->check(CLI::Range(1, 65536))->capture_default_str();
  gen::SettingList settings = gen::gpt_setting_list(job.settings);
  settings.register_options(app);
  app.add_option("--eval-every", job.eval_every, "Steps between validation losses")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  app.footer(R"(Defaults are nanoGPT's CPU recipe for character-level Shakespeare (0.8M parameters with its
65-symbol vocabulary).
Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gtok train --model-type char shakespeare.txt -o char.model
  gtok encode -m char.model shakespeare.txt | gtrain --tokenizer char.model - -o lm.st
  gtrain --tokenizer char.model --steps 500 --log train.tsv --plot loss.png corpus.ids -o lm.st
  gtrain --resume lm.st --steps 3000 corpus.ids -o lm.st        # continue to step 3000)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw gen::UsageError(e.what());
  }
  settings.check();
  gen::finish_run_options(app, job.run);
  // Options that a checkpoint decides: say so rather than ignore them silently.
  const std::vector<std::string> shape = {"--layers", "--heads", "--embd", "--context"};
  if (!job.run.resume.empty())
    gen::warn_ignored(app, settings.options({"--layers", "--heads", "--embd", "--context", "--seed"}),
                      "--resume continues with the checkpoint's settings");
  if (!job.init.empty()) gen::warn_ignored(app, shape, "--init keeps the checkpoint's model shape");
  gen::train_gpt(job);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gen::sleep_when_idle(argv);
  return gen::tool_main("gtrain", argc, argv, run);
}
