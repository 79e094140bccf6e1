#include "train/options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "core/cli.h"
#include "core/cluster.h"
#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "io/image_files.h"
#include "train/settings.h"

namespace gen {

void add_run_options(CLI::App& app, RunOptions& run, const RunHelp& help) {
  run.threads = default_threads();
  app.add_option("-o,--output", run.output, fmt::format("The checkpoint to write, e.g. {}", help.output))->required();
  app.add_option("--resume", run.resume,
                 "Continue this checkpoint's run exactly: its settings, data and random state (--steps may grow)");
  app.add_option("--steps", run.steps, help.steps)->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  app.add_option("--seed", run.seed, help.seed)->check(seed_number())->capture_default_str();
  app.add_option("--threads", run.threads, help.threads)->check(CLI::Range(1, 256));
  app.add_option("--save-every", run.save_every, "Steps between checkpoints (0: only at the end)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  app.add_flag("--no-optimizer", run.no_optimizer, "Save the weights only (smaller; cannot be resumed)");
  app.add_option("--log", run.log, "Write a row per step to this TSV file, as it goes (tail -f, gnuplot, awk)");
  app.add_option("--plot", run.plot, help.plot);
  app.add_option("--time-limit", run.time_limit,
                 "Stop after this many minutes of training (the step expected to reach them is the last: "
                 "evaluated and saved as the last planned one is); a learning-rate schedule with a warmup is "
                 "planned at the warmup's end to end with the time (fewer --steps)")
      ->check(finite_number(0, 1e7));
  if (help.preview) {
    app.add_option("--preview", run.preview, help.preview);
    app.add_option("--preview-every", run.preview_every, "Steps between previews (0: only at the end)")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  }
  app.add_flag("-q,--quiet", run.quiet, "No progress or summary on stderr");
}

void add_image_data_options(CLI::App& app, std::string& data, std::string& labels, bool folders) {
  app.add_option("--data", data,
                 fmt::format("fashion-mnist (Debian's dataset-fashion-mnist, training set), an IDX image file (with "
                             "--labels){}",
                             folders ? ", or a folder of PNGs" : ""))
      ->capture_default_str();
  app.add_option("--labels", labels, "IDX labels for an IDX --data file");
}

void check_outputs(const RunOptions& run) {
  namespace fs = std::filesystem;
  if (cluster().rank() != 0) return;  // rank 0 writes
  std::vector<std::pair<const char*, const std::string*>> outputs = {
      {"-o", &run.output}, {"--log", &run.log}, {"--plot", &run.plot}, {"--preview", &run.preview}};
  std::vector<std::pair<std::string, std::string>> named;
  for (const auto& [option, path] : outputs) named.emplace_back(option, *path);
  check_distinct_outputs(named);
  for (const auto& [option, path] : outputs) {
    if (path->empty()) continue;
    if (*path == "-") throw UsageError(fmt::format("{} -: a training output must be a file", option));
    const bool image = option == std::string("--plot") || option == std::string("--preview");
    if (image) check_output_pattern(*path, option, {".png"});
    else check_output_pattern(*path, option, {});
    // Numbered previews (img-%03d.png): the pattern and its folder are what can be checked.
    if (option == std::string("--preview") && path->find('%') != std::string::npos) continue;
    // A device or FIFO (/dev/null, a named pipe) is not probed: opening it would be a write
    // (a FIFO's reader would see its end).
    std::error_code type_ec;
    const fs::file_status type = fs::status(*path, type_ec);
    if (fs::is_directory(type)) throw Error(*path, "is a directory");
    if (fs::exists(type) && !fs::is_regular_file(type)) continue;
    // The probe: a temporary file beside the destination, removed again (Output without commit).
    Output probe(*path);
  }
}

void finish_run_options(const CLI::App& app, RunOptions& run) {
  run.steps_given = app.count("--steps") > 0;
  check_outputs(run);
}

void warn_ignored(const CLI::App& app, const std::vector<std::string>& names, const std::string& why) {
  std::string given;
  for (const std::string& name : names)
    if (app.count(name) > 0) given += (given.empty() ? "" : ", ") + name;
  if (!given.empty()) warn(fmt::format("{} ignored: {}", given, why));
}

void finish_train_options(const CLI::App& app, RunOptions& run, const SettingList& settings,
                          const std::vector<std::string>& model_options) {
  cluster();  // under mpirun, MPI starts now: warnings and errors come from rank 0 once
  settings.check();
  finish_run_options(app, run);
  if (run.resume.empty()) return;
  std::vector<std::string> others = model_options;
  others.push_back("--seed");
  warn_ignored(app, settings.options(others), "--resume continues with the checkpoint's settings");
}

int64_t resume_total(const RunOptions& run, int64_t saved_total, int64_t done) {
  const int64_t total = run.steps_given ? run.steps : saved_total;
  if (total <= done)
    throw UsageError(fmt::format("the checkpoint is at step {} already: give --steps above it", done));
  return total;
}

}  // namespace gen

namespace gen {

int64_t resume_from(const std::optional<TrainState>& train, int64_t step, uint64_t seed, SettingList& settings,
                    RunOptions& run) {
  if (!train) throw Error(run.resume, "has no training state to resume from (saved with --no-optimizer)");
  settings.from_json(train->settings, run.resume);
  run.seed = seed;
  return resume_total(run, train->steps, step);
}

}  // namespace gen
