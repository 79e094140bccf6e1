// gtrain: train a small GPT on token ids; resume exactly; fine-tune from a checkpoint.
#include <CLI/CLI.hpp>

#include "core/cli.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "train/train_gpt.h"

namespace {

int run(int argc, char** argv) {
  gen::GptTrainJob job;
  CLI::App app("gtrain: train a small GPT on token ids (from gtok encode); resume exactly; fine-tune", "gtrain");
  gen::setup_app(app, "gtrain");
  gen::add_gpt_train_options(app, job);
  app.footer(R"(Defaults are nanoGPT's CPU recipe for character-level Shakespeare (0.8M parameters with its
65-symbol vocabulary).
Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gtok train --model-type char shakespeare.txt -o char.model
  gtok encode -m char.model shakespeare.txt | gtrain --tokenizer char.model - -o lm.st
  gtrain --tokenizer char.model --steps 500 --log train.tsv --plot loss.png corpus.ids -o lm.st
  gtrain --resume lm.st --steps 3000 corpus.ids -o lm.st        # continue to step 3000)");
  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  gen::train_gpt_command(app, job);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gen::spin_briefly_when_idle(argv);
  return gen::tool_main("gtrain", argc, argv, run);
}
