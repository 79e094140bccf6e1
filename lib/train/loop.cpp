#include "train/loop.h"

#include <fmt/format.h>
#include <fmt/printf.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "core/cluster.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/signals.h"
#include "core/tool_main.h"
#include "io/plot.h"

namespace gen {
namespace {
// Where the preview of a step goes: the --preview file (each preview replaces the last), or with
// a numbered name (p-%05d.png) a grid of its own per preview, numbered by the step.
std::string preview_path(const std::string& preview, int64_t step) {
  return preview.find('%') == std::string::npos ? preview : fmt::sprintf(preview, step);
}


using Curve = std::vector<std::pair<int64_t, double>>;

// The loss curve as text: the first loss (*) and an occasional one (o) against step.
std::string loss_chart(const Curve& train, const Curve& val, const std::string& train_name,
                       const std::string& val_name) {
  if (train.size() < 2) return "";
  constexpr int kWidth = 64, kHeight = 14;
  const int64_t first = train.front().first, last = train.back().first;
  std::vector<std::string> grid(kHeight, std::string(kWidth, ' '));
  // Averaged per column, so that noise does not fill the picture.
  std::vector<double> sum(kWidth, 0);
  std::vector<int> count(kWidth, 0);
  auto column_of = [&](int64_t step) {
    const double span = static_cast<double>(std::max<int64_t>(last - first, 1));
    return std::clamp(static_cast<int>(static_cast<double>(step - first) / span * (kWidth - 1)), 0, kWidth - 1);
  };
  for (const auto& [step, loss] : train) {
    sum[static_cast<size_t>(column_of(step))] += loss;
    count[static_cast<size_t>(column_of(step))]++;
  }
  // The scale leaves out the first column (the loss at initialization would flatten the rest).
  double lo = INFINITY, hi = -INFINITY;
  for (int column = 1; column < kWidth; ++column)
    if (count[static_cast<size_t>(column)]) {
      const double mean = sum[static_cast<size_t>(column)] / count[static_cast<size_t>(column)];
      lo = std::min(lo, mean), hi = std::max(hi, mean);
    }
  for (const auto& [step, loss] : val) lo = std::min(lo, loss), hi = std::max(hi, loss);
  if (!(hi > lo)) hi = lo + 1;
  auto row_of = [&](double loss) {
    return std::clamp(static_cast<int>(std::lround((hi - loss) / (hi - lo) * (kHeight - 1))), 0, kHeight - 1);
  };
  for (int column = 0; column < kWidth; ++column)
    if (count[static_cast<size_t>(column)])
      grid[static_cast<size_t>(row_of(sum[static_cast<size_t>(column)] / count[static_cast<size_t>(column)]))]
          [static_cast<size_t>(column)] = '*';
  for (const auto& [step, loss] : val) grid[static_cast<size_t>(row_of(loss))][static_cast<size_t>(column_of(step))] = 'o';
  std::string chart = val.empty() ? fmt::format("{} (*)\n", train_name)
                                  : fmt::format("{} (*) and {} (o)\n", train_name, val_name);
  for (int row = 0; row < kHeight; ++row)
    chart += fmt::format("{:6.3f} |{}\n", hi - (hi - lo) * row / (kHeight - 1), grid[static_cast<size_t>(row)]);
  chart += fmt::format("       +{}\n", std::string(kWidth, '-'));
  chart += fmt::format("        {}{:>{}}\n", first, fmt::format("step {}", last),
                       kWidth - static_cast<int>(std::to_string(first).size()));
  return chart;
}

// The loss curves as a PNG: one loss drawn at every step (light) and as its moving average over
// 1% of the run (dark); several losses as their moving averages over 2%; occasional figures (a
// validation loss) as dots.
std::string loss_plot(const std::vector<Column>& columns, const std::vector<Curve>& curves, const LoopOptions& o) {
  Chart chart;
  chart.title = o.plot_title, chart.x_label = "step", chart.y_label = o.plot_y_label;
  auto series = [](std::string name, uint32_t rgb, double width, bool markers) {
    ChartSeries s;
    s.name = std::move(name), s.rgb = rgb, s.width = width, s.markers = markers;
    return s;
  };
  size_t losses = 0;
  for (const Column& c : columns) losses += c.loss && !c.occasional;
  const uint32_t dark[] = {0x1f5fa8, 0xd62728, 0x2ca02c, 0x9467bd};
  size_t drawn = 0;
  for (size_t k = 0; k < columns.size(); ++k) {
    const Column& c = columns[k];
    const Curve& curve = curves[k];
    if (!c.loss) continue;
    if (c.occasional) {
      ChartSeries dots = series(c.label, 0xd62728, 2, true);
      for (auto [step, v] : curve) dots.points.emplace_back(static_cast<double>(step), v);
      chart.series.push_back(std::move(dots));
      continue;
    }
    const size_t window = std::max<size_t>(1, curve.size() / (losses == 1 ? 100 : 50));
    ChartSeries raw = series(c.label + " (each step)", 0xb9d3ea, 1, false);
    ChartSeries smooth = series(losses == 1 ? c.label + " (moving average)" : c.label, dark[drawn++ % 4], 2, false);
    double sum = 0;
    for (size_t i = 0; i < curve.size(); ++i) {
      raw.points.emplace_back(static_cast<double>(curve[i].first), curve[i].second);
      sum += curve[i].second;
      if (i >= window) sum -= curve[i - window].second;
      if (i + 1 >= window)
        smooth.points.emplace_back(static_cast<double>(curve[i].first), sum / static_cast<double>(window));
    }
    if (losses == 1) chart.series.push_back(std::move(raw));
    chart.series.push_back(std::move(smooth));
  }
  // Dots on top.
  std::stable_partition(chart.series.begin(), chart.series.end(), [](const ChartSeries& s) { return !s.markers; });
  return render_png(chart);
}

// The most steps (from done to at most total) whose time fits in `seconds`: each step at per_step,
// and an occasional measurement (every `every` steps and at the last) at `occasional` more.
int64_t steps_that_fit(int64_t done, int64_t total, double seconds, double per_step, double occasional, int64_t every) {
  auto cost = [&](int64_t last) {
    const int64_t measured = every > 0 ? last / every - done / every + (last % every != 0) : 0;
    return static_cast<double>(last - done) * per_step + static_cast<double>(measured) * occasional;
  };
  if (cost(total) <= seconds) return total;
  int64_t fits = done, not_fits = total;  // the cost grows with the last step
  while (not_fits - fits > 1) {
    const int64_t mid = fits + (not_fits - fits) / 2;
    (cost(mid) <= seconds ? fits : not_fits) = mid;
  }
  return fits;
}

}  // namespace

void train_loop(TrainTask& task, const LoopOptions& o) {
  // In an MPI job every rank runs the steps; rank 0 alone writes (checkpoints, log, plot,
  // preview) and reports progress.
  Cluster& ranks = cluster();
  const bool leader = ranks.rank() == 0;
  RunOptions run = o.run;
  if (!leader) run.quiet = true, run.log.clear(), run.plot.clear(), run.preview.clear();
  GracefulStop graceful;  // Ctrl-C finishes the step and saves
  const std::vector<Column> columns = task.columns();
  std::optional<Output> plot;  // opened now, so that a bad path fails before training
  if (!run.plot.empty()) plot.emplace(run.plot);
  std::optional<Output> log;
  if (!run.log.empty()) {
    log.emplace(run.log, Output::Mode::direct);  // follow it with tail -f
    std::string header = "step";
    for (const Column& c : columns) header += "\t" + c.name;
    log->write(header + fmt::format("\t{}_per_s\tseconds\n", o.unit == "tok" ? "tokens" : "images"));
    log->flush();
  }
  if (!run.quiet) {
    const std::string plan = o.first_step > 0 ? fmt::format("steps {} to {}", o.first_step + 1, o.steps)
                                              : fmt::format("{} step{}", o.steps, o.steps == 1 ? "" : "s");
    std::fprintf(stderr, "%s: %s; %s of %s\n", tool_name(), o.banner.c_str(), plan.c_str(), o.batch.c_str());
  }

  std::vector<Curve> curves(columns.size());
  std::vector<double> recent(columns.size(), 0);
  int64_t recent_n = 0;
  int64_t total = o.steps;  // a time limit may plan fewer (below)
  const bool plans = run.time_limit > 0 && o.plan_at - o.first_step >= 7 && o.plan_at < total;
  double first_seconds = 0;  // when this run's first step ended (a first step is slower: allocation)
  Progress progress("train", static_cast<uint64_t>(o.steps), "", run.quiet);
  progress.set_start(static_cast<uint64_t>(o.first_step));  // rates and ETA count this run's steps
  const auto start = std::chrono::steady_clock::now();
  int64_t step = o.first_step;
  int64_t saved = -1;
  auto save = [&] {
    if (leader) task.save(run.output, step, !run.no_optimizer);
    saved = step;
  };
  auto finish_outputs = [&] {
    if (log) log->commit();
    if (plot) {
      plot->write(loss_plot(columns, curves, o));
      plot->commit();
    }
  };

  while (step < total) {
    // With a time limit, the step expected to reach it (the mean step so far) is the last one;
    // every rank agrees (a collective), so that all stop at the same step.
    bool out_of_time = false;
    if (run.time_limit > 0 && step > o.first_step) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double per_step = seconds / static_cast<double>(step - o.first_step);
      out_of_time = ranks.any(seconds + per_step >= 60 * run.time_limit);
    }
    const bool planning = plans && step + 1 == o.plan_at;
    const double began = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    StepResult r = task.step(step, step + 1 == total || out_of_time || planning);
    if (r.values.size() != columns.size()) throw std::logic_error("train_loop: a step reported the wrong figures");
    for (size_t k = 0; k < columns.size(); ++k)
      if (columns[k].loss && !columns[k].occasional && !std::isfinite(r.values[k]))
        throw Error(run.output, fmt::format("training diverged at step {}: {} is {} (lower --lr?); the last "
                                            "checkpoint written, if any, is kept",
                                            step + 1, "the " + columns[k].label,
                                            std::isnan(r.values[k]) ? "NaN" : "infinite"));
    ++step;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = static_cast<double>(step - o.first_step) * o.items_per_step / std::max(seconds, 1e-9);
    if (step == o.first_step + 1) first_seconds = seconds;
    if (planning) {
      // The steps after the first and before this one give a step's time; this one's time above
      // it, an occasional measurement's. 1% of the time left is kept in hand. Every rank takes
      // the fewest steps any rank planned.
      const double per_step = (began - first_seconds) / static_cast<double>(step - o.first_step - 2);
      double planned = static_cast<double>(steps_that_fit(step, total, 0.99 * (60 * run.time_limit - seconds), per_step,
                                                          std::max(0.0, seconds - began - per_step),
                                                          o.occasional_every));
      std::vector<double> all(static_cast<size_t>(ranks.size()));
      ranks.gather(&planned, 1, all.data());
      const int64_t fits = static_cast<int64_t>(*std::min_element(all.begin(), all.end()));
      if (fits < total) {
        total = fits;
        task.plan(total);
        progress.set_total(static_cast<uint64_t>(total));
        progress.message(fmt::format("time limit: {} steps fit in {} minutes (a step {:.3g} ms): the schedule ends at "
                                     "step {} (--steps {} without --time-limit: the same weights)",
                                     total, run.time_limit, 1000 * per_step, total, total));
      }
    }

    std::string status = r.status;
    ++recent_n;
    for (size_t k = 0; k < columns.size(); ++k) {
      const double v = r.values[k];
      if (columns[k].loss && std::isfinite(v)) curves[k].emplace_back(step, v);
      if (!(columns[k].loss || columns[k].shown) || columns[k].occasional) continue;
      recent[k] += v;
      status += fmt::format("{}{} {:.4f}", status.empty() ? "" : ", ", columns[k].label.empty() ? columns[k].name
                                                                                               : columns[k].label,
                            recent[k] / static_cast<double>(recent_n));
    }
    const std::string figures = status;  // without the rate: for the preview's line
    status += fmt::format("{}{:.0f} {}/s", status.empty() ? "" : ", ", rate, o.unit);
    if (step % 100 == 0) std::fill(recent.begin(), recent.end(), 0.0), recent_n = 0;
    for (const std::string& m : r.messages) progress.message(m);

    if (log) {
      try {
        std::string row = std::to_string(step);
        for (size_t k = 0; k < columns.size(); ++k) {
          row += '\t';
          if (!(std::isnan(r.values[k]) && columns[k].occasional))
            row += fmt::format(fmt::runtime(columns[k].format), r.values[k]);
        }
        log->write(row + fmt::format("\t{:.1f}\t{:.3f}\n", rate, seconds));
        log->flush();
      } catch (...) {
        // The log failed (a full disk): the run stops, but keeps what it learned.
        save();
        throw;
      }
    }
    if (run.time_limit > 0 && step - o.first_step >= 10) {
      // With a time budget, the bar and the ETA are for the steps the budget will allow.
      const double per_second = static_cast<double>(step - o.first_step) / std::max(seconds, 1e-9);
      progress.set_total(static_cast<uint64_t>(std::min<double>(
          static_cast<double>(total), static_cast<double>(o.first_step) + per_second * 60 * run.time_limit)));
    }
    progress.update(static_cast<uint64_t>(step), status);
    if (run.preview_every > 0 && !run.preview.empty() && step % run.preview_every == 0 && step < total) {
      task.preview(preview_path(run.preview, step));
      progress.message(fmt::format("step {}: {}; preview in {}", step, figures, preview_path(run.preview, step)));
    }
    if (run.save_every > 0 && step % run.save_every == 0 && step < total) save();
    // Every rank stops at the same step (a collective: one rank may see the signal a step late).
    if (ranks.any(stop_requested())) {
      save();
      finish_outputs();
      progress.message(fmt::format("interrupted: saved step {} to {}", step, run.output));
      throw Interrupted();
    }
    if (out_of_time && step < total) {
      // A planned run cut short: its schedule is the plan's (whose total the checkpoint keeps).
      progress.message(total < o.steps ? fmt::format("time limit: {} minutes are up at step {} of the {} planned (--steps "
                                                     "{} --decay-steps {} without --time-limit: the same weights)",
                                                     run.time_limit, step, total, step, total)
                                       : fmt::format("time limit: {} minutes are up at step {}", run.time_limit, step));
      break;
    }
  }
  if (saved != step) save();
  finish_outputs();
  if (!run.preview.empty()) task.preview(preview_path(run.preview, step));
  progress.finish();
  if (run.quiet) return;
  for (size_t k = 0; k < columns.size(); ++k) {
    if (!columns[k].loss || columns[k].occasional) continue;
    const Curve* val = nullptr;
    std::string val_name;
    for (size_t j = 0; j < columns.size(); ++j)
      if (columns[j].loss && columns[j].occasional) val = &curves[j], val_name = columns[j].label;
    std::fputs(loss_chart(curves[k], val ? *val : Curve{}, columns[k].label, val_name).c_str(), stderr);
    break;  // the first loss only
  }
  if (ranks.size() > 1 && step > o.first_step) {
    const double steps = static_cast<double>(step - o.first_step);
    std::fprintf(stderr, "%s: %d ranks; rank 0 spent %.2f ms a step exchanging gradients and figures, and %.2f ms "
                 "waiting for the other ranks\n",
                 tool_name(), ranks.size(), 1000 * ranks.exchange_seconds() / steps, 1000 * ranks.wait_seconds() / steps);
  }
  const std::string summary = task.summary();
  if (!summary.empty()) std::fprintf(stderr, "%s: %s\n", tool_name(), summary.c_str());
  std::fprintf(stderr, "%s: wrote %s (step %lld)\n", tool_name(), run.output.c_str(), static_cast<long long>(step));
}

}  // namespace gen
