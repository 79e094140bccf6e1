// The options every trainer shares, declared once so that they read the same in every tool's
// --help: -o, --resume, --steps, --seed, --threads, --save-every, --no-optimizer, --log, --plot,
// --time-limit, -q (and --preview, --preview-every where the model can show samples); the one
// resume rule; and the check that every output can be written before the first step.
//
//   gen::RunOptions run;  run.steps = 2000;                 // the tool's default
//   gen::add_run_options(*app, run, {.output = "lm.st"});
//   app->parse(...);  gen::finish_run_options(*app, run);  // --steps given? outputs writable?
//   int64_t total = gen::resume_total(run, saved_total, done);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/settings.h"
#include "train/train_state.h"

namespace CLI {
class App;
}

namespace gen {

struct RunOptions {
  std::string output, resume, log, plot, preview;
  int64_t steps = 0;          // the total (with --resume: the new total, if given)
  bool steps_given = false;   // --steps was on the command line
  uint64_t seed = 1;
  int threads = 1;
  int64_t save_every = 0, preview_every = 0;
  double time_limit = 0;  // minutes; 0: none
  bool no_optimizer = false, quiet = false;
};

struct RunHelp {
  const char* output = "model.st";  // the example in -o's help
  const char* steps = "Optimizer steps in all (with --resume: the new total; default there: the saved one)";
  const char* seed = "Seed for the initialization and the batches";
  const char* plot = "Draw the loss against step as a PNG";
  const char* threads = "Threads (any count, or mpirun's ranks, gives the same checkpoint; default: the CPUs)";
  const char* preview = nullptr;  // the --preview help, if the model has a preview
};

// Adds the shared options (run.threads defaults to the CPUs; run.steps keeps the tool's default).
void add_run_options(CLI::App& app, RunOptions& run, const RunHelp& help);
// --data and --labels: the images an image trainer learns from (a folder of PNGs too, unless
// the model needs labels).
void add_image_data_options(CLI::App& app, std::string& data, std::string& labels, bool folders);

// After parsing: notes whether --steps was given, and checks the outputs (check_outputs).
void finish_run_options(const CLI::App& app, RunOptions& run);
// Every output (-o, --log, --plot, --preview) can be written, and no two share a path; throws
// Error naming the output (UsageError for a shared path). Writes nothing.
void check_outputs(const RunOptions& run);

// After parsing a trainer's command line: the checks between settings, finish_run_options, and
// with --resume the warning that the settings and model_options given are the checkpoint's.
void finish_train_options(const CLI::App& app, RunOptions& run, const SettingList& settings,
                          const std::vector<std::string>& model_options);

// One warning for the options among `names` given on the command line: "--lr, --batch ignored:
// WHY" (the options a checkpoint decides).
void warn_ignored(const CLI::App& app, const std::vector<std::string>& names, const std::string& why);

// The one resume rule: a resumed run goes on to the saved total unless --steps names a new one,
// which must be above the steps done (UsageError otherwise).
int64_t resume_total(const RunOptions& run, int64_t saved_total, int64_t done);

// What --resume takes from a checkpoint of any kind (its step and seed, and its train state if
// it was saved with one): the settings back in place (each checked as on the command line),
// the seed into run; returns the total to reach. Error if the checkpoint has no train state.
int64_t resume_from(const std::optional<TrainState>& train, int64_t step, uint64_t seed, SettingList& settings,
                    RunOptions& run);

}  // namespace gen
