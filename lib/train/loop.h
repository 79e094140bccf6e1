// The one training loop. Every trainer (gtrain, gdiffuse train, ggan train, gscore train) is a
// TrainTask, which knows its model's step, the figures the step reports and how to write its
// checkpoint; train_loop() owns everything around the step, the same way for all of them:
//
//   - Ctrl-C and SIGTERM finish the step, save, and exit 130 or 143;
//   - the live progress line (the loss columns averaged since the last hundredth step, the rate,
//     the ETA) and the messages a step has (an evaluation, an epoch's end, a warning);
//   - the TSV log (a row per step: step, the task's columns, items/s, seconds), written as it
//     goes; if it cannot be written (a full disk), the checkpoint is still saved before the run
//     stops;
//   - the divergence stop: a loss column that is NaN or infinite ends the run with one line,
//     keeping the last checkpoint written (if any), writing no new one;
//   - a checkpoint every --save-every steps and at the end, a preview every --preview-every
//     steps and at the end, a wall-clock --time-limit;
//   - the loss chart on stderr at the end and the loss plot (PNG).
//
//   struct MyTask : gen::TrainTask { ... };
//   gen::LoopOptions options = ...;          // from the command line (train/options.h)
//   gen::train_loop(task, options);
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/options.h"

namespace gen {

// A figure a step reports: a column of the log.
struct Column {
  std::string name;             // the log's header ("train_loss")
  std::string format = "{:.6f}";  // how the log writes it
  // A loss: watched for divergence (its `label` names it in the message: "the loss"), shown on
  // the progress line (as `label`, averaged over recent steps) and drawn in the plot.
  bool loss = false;
  std::string label;
  // Measured now and then (a validation loss): drawn as dots; an empty cell when not measured.
  bool occasional = false;
  // Not a loss, but shown on the progress line too (as `label`, averaged like the losses).
  bool shown = false;
};

// A figure; a loss (labelled for messages: "loss", "D loss"); an occasional one.
inline Column figure_column(std::string name, std::string format = "{:.6f}") {
  Column c;
  c.name = std::move(name), c.format = std::move(format);
  return c;
}
inline Column loss_column(std::string name, std::string label, bool occasional = false) {
  Column c = figure_column(std::move(name));
  c.loss = true, c.label = std::move(label), c.occasional = occasional;
  return c;
}
inline Column shown_column(std::string name, std::string label, std::string format = "{:.4f}") {
  Column c = figure_column(std::move(name), std::move(format));
  c.shown = true, c.label = std::move(label);
  return c;
}
inline Column occasional_column(std::string name, std::string format = "{:.6f}") {
  Column c = figure_column(std::move(name), std::move(format));
  c.occasional = true;
  return c;
}

struct StepResult {
  std::vector<double> values;         // one per column; NaN in an occasional column: not measured
  std::string status;                 // extra text for the progress line ("epoch 2")
  std::vector<std::string> messages;  // lines of their own, above the progress line
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual std::vector<Column> columns() const = 0;
  // Optimizer step number `step` (0-based: the steps done before it); `last`: the run ends after
  // it (its last planned step, or the one its time limit ends with), or a time-limited run plans
  // its end after it (LoopOptions::plan_at), so that the task measures what it measures at the
  // end (a validation loss) there.
  virtual StepResult step(int64_t step, bool last) = 0;
  // A time-limited run's plan, made after LoopOptions::plan_at steps: it ends after `steps` steps
  // (fewer than it was to): a schedule that ended at the last step ends there now, and the
  // checkpoint's planned total is this (plan_schedule below).
  virtual void plan(int64_t /*steps*/) {}
  // Writes the checkpoint after `steps` steps (atomically), with or without the optimizer state.
  virtual void save(const std::string& path, int64_t steps, bool optimizer) = 0;
  // Writes a preview of the model as it is now (a sample grid), if the task has one.
  virtual void preview(const std::string& /*path*/) {}
  // A last line for stderr after a completed run ("test accuracy 91.2%"), or "".
  virtual std::string summary() { return ""; }
};

struct LoopOptions {
  LoopOptions(const RunOptions& run_options, int64_t first, int64_t total, double items, std::string item_unit)
      : run(run_options), first_step(first), steps(total), items_per_step(items), unit(std::move(item_unit)) {}
  RunOptions run;             // what the command line asked for
  int64_t first_step = 0;     // steps done before (a resumed run)
  int64_t steps = 0;          // the total to reach
  double items_per_step = 0;  // for the rate: tokens or images per step
  std::string unit;           // "tok", "img"
  // The start-up line: "TOOL: BANNER; 2000 steps of BATCH" (or "steps 1001 to 2000 of BATCH").
  std::string banner, batch;
  std::string plot_title, plot_y_label;
  // With --time-limit, the run times its steps up to plan_at (the step up to which the task's
  // schedule does not depend on the total: its warmup's end; 7 steps in at least) and then plans
  // its total to what fits in the time left, so that the schedule ends with the time, not cut
  // off where the time runs out; the same weights as --steps with that total and no time limit.
  // -1: no plan (a schedule that does not depend on the total). The step at plan_at measures its
  // occasional figures (`last`), and the plan counts one such measurement (at what that one cost
  // above a step) every occasional_every steps and at the end (0: none).
  int64_t plan_at = -1;
  int64_t occasional_every = 0;
};

// TrainTask::plan for a cosine schedule: a decay that ended at the run's last step (total) ends
// at the new last step.
inline void plan_schedule(int64_t steps, int64_t& total, int64_t& decay_steps) {
  if (decay_steps == total) decay_steps = steps;
  total = steps;
}

// Runs the task from options.first_step to options.steps (or the time limit). Throws
// Interrupted after a Ctrl-C (having saved), Error on divergence.
void train_loop(TrainTask& task, const LoopOptions& options);

}  // namespace gen
