// gtrain: train a small GPT on token ids; resume exactly; fine-tune from a checkpoint.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/signals.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "io/plot.h"
#include "io/token_stream.h"
#include "models/gpt.h"
#include "models/gpt_checkpoint.h"
#include "tensor/optimizer.h"
#include "text/tokenizer.h"

namespace {

using gen::Error;

// Everything that shapes the optimization (and the validation figures); saved in the checkpoint
// and restored by --resume. How often to evaluate is not saved: it changes nothing.
struct Settings {
  int64_t batch = 12;
  int64_t steps = 2000;
  int64_t decay_steps = 0;  // 0: = steps
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int64_t warmup = 100;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;
  float beta1 = 0.9f;
  float beta2 = 0.99f;
  int64_t eval_every = 250;
  int64_t eval_batches = 20;
  double val_fraction = 0.1;

  nlohmann::json to_json() const {
    return {{"batch", batch},         {"steps", steps},     {"decay_steps", decay_steps},   {"lr", lr},
            {"min_lr", min_lr},       {"warmup", warmup},   {"weight_decay", weight_decay}, {"grad_clip", grad_clip},
            {"beta1", beta1},         {"beta2", beta2},     {"eval_batches", eval_batches},
            {"val_fraction", val_fraction}};
  }
  void from_json(const nlohmann::json& j) {
    batch = j.at("batch");
    decay_steps = j.at("decay_steps");
    lr = j.at("lr");
    min_lr = j.at("min_lr");
    warmup = j.at("warmup");
    weight_decay = j.at("weight_decay");
    grad_clip = j.at("grad_clip");
    beta1 = j.at("beta1");
    beta2 = j.at("beta2");
    eval_batches = j.at("eval_batches");
    val_fraction = j.at("val_fraction");
  }
};

struct Args {
  std::string input = "-";
  std::string output;
  std::string tokenizer;
  std::string init;
  std::string resume;
  std::string val;
  std::string log;
  std::string plot;
  gen::GptConfig config{.vocab = 0, .context = 64, .layers = 4, .heads = 4, .embd = 128};
  Settings settings;
  uint64_t seed = 1;
  int threads = gen::default_threads();
  int64_t save_every = 0;
  bool no_optimizer = false;
  bool quiet = false;
  bool steps_given = false;
};

std::vector<uint32_t> read_ids(const std::string& path, uint32_t vocab) {
  gen::Input input(path);
  gen::TokenReader reader(input);
  reader.set_vocabulary(vocab, "the tokenizer's vocabulary");
  std::vector<uint32_t> ids;
  for (uint32_t id; reader.next(id);) ids.push_back(id);
  return ids;
}

// Next-token batches from a token sequence: x = data[o, o+T), y = data[o+1, o+T+1].
void sample_batch(const std::vector<uint32_t>& data, gen::Rng& rng, int64_t B, int64_t T, uint32_t* x,
                  uint32_t* y) {
  uint32_t positions = static_cast<uint32_t>(data.size() - static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b) {
    size_t offset = rng.below(positions);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(offset), T, x + b * T);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(offset) + 1, T, y + b * T);
  }
}

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

// Mean loss and next-token accuracy over fixed batches (the same ones every time, so that the
// curve is comparable from one evaluation to the next).
Evaluation evaluate(gen::Gpt& model, const std::vector<uint32_t>& data, const Settings& s, uint64_t seed,
                    std::vector<gen::Arena>& arenas) {
  const int64_t B = s.batch, T = model.config().context;
  gen::Rng rng(seed, /*stream=*/7);
  std::vector<uint32_t> x(static_cast<size_t>(B * T)), y(static_cast<size_t>(B * T));
  Evaluation e;
  for (int64_t k = 0; k < s.eval_batches; ++k) {
    sample_batch(data, rng, B, T, x.data(), y.data());
    auto loss = model.batch_loss(arenas, x.data(), y.data(), B, T, /*training=*/false);
    e.loss += loss.mean;
    e.accuracy += static_cast<double>(loss.correct) / static_cast<double>(B * T);
  }
  e.loss /= static_cast<double>(s.eval_batches);
  e.accuracy /= static_cast<double>(s.eval_batches);
  return e;
}

// The loss curve as text: train loss (*) and validation loss (o) against step.
std::string loss_chart(const std::vector<std::pair<int64_t, double>>& train,
                       const std::vector<std::pair<int64_t, double>>& val) {
  if (train.size() < 2) return "";
  constexpr int kWidth = 64, kHeight = 14;
  int64_t last = train.back().first;
  std::vector<std::string> grid(kHeight, std::string(kWidth, ' '));
  // Train loss averaged per column, so that noise does not fill the picture.
  std::vector<double> sum(kWidth, 0);
  std::vector<int> count(kWidth, 0);
  auto column_of = [&](int64_t step) {
    return std::clamp(static_cast<int>(static_cast<double>(step) / static_cast<double>(std::max<int64_t>(last, 1)) *
                                       (kWidth - 1)),
                      0, kWidth - 1);
  };
  for (const auto& [step, loss] : train) {
    sum[static_cast<size_t>(column_of(step))] += loss;
    count[static_cast<size_t>(column_of(step))]++;
  }
  // The scale leaves out the first column (the loss at initialization would flatten the rest).
  double lo = INFINITY, hi = -INFINITY;
  for (int column = 1; column < kWidth; ++column)
    if (count[static_cast<size_t>(column)]) {
      double mean = sum[static_cast<size_t>(column)] / count[static_cast<size_t>(column)];
      lo = std::min(lo, mean);
      hi = std::max(hi, mean);
    }
  for (const auto& [step, loss] : val) {
    lo = std::min(lo, loss);
    hi = std::max(hi, loss);
  }
  if (!(hi > lo)) hi = lo + 1;
  auto row_of = [&](double loss) {
    return std::clamp(static_cast<int>(std::lround((hi - loss) / (hi - lo) * (kHeight - 1))), 0, kHeight - 1);
  };
  for (int column = 0; column < kWidth; ++column)
    if (count[static_cast<size_t>(column)])
      grid[static_cast<size_t>(row_of(sum[static_cast<size_t>(column)] / count[static_cast<size_t>(column)]))]
          [static_cast<size_t>(column)] = '*';
  for (const auto& [step, loss] : val) grid[static_cast<size_t>(row_of(loss))][static_cast<size_t>(column_of(step))] = 'o';
  std::string chart = "loss  (* train, o validation)\n";
  for (int row = 0; row < kHeight; ++row) {
    double value = hi - (hi - lo) * row / (kHeight - 1);
    chart += fmt::format("{:6.3f} |{}\n", value, grid[static_cast<size_t>(row)]);
  }
  chart += fmt::format("       +{}\n", std::string(kWidth, '-'));
  chart += fmt::format("        0{:>{}}\n", fmt::format("step {}", last), kWidth - 1);
  return chart;
}

// The loss curves as a PNG chart: every step's train loss (light), its moving average over
// 1% of the run (dark) and the validation loss at each evaluation (dots).
std::string loss_plot(const std::vector<std::pair<int64_t, double>>& train,
                      const std::vector<std::pair<int64_t, double>>& val, const std::string& title) {
  gen::Chart chart;
  chart.title = title, chart.x_label = "step", chart.y_label = "loss (cross-entropy, nats per token)";
  auto series = [](std::string name, uint32_t rgb, double width, bool markers) {
    gen::ChartSeries s;
    s.name = std::move(name), s.rgb = rgb, s.width = width, s.markers = markers;
    return s;
  };
  gen::ChartSeries raw = series("train (each step)", 0xb9d3ea, 1, false);
  gen::ChartSeries smooth = series("train (moving average)", 0x1f5fa8, 2, false);
  size_t window = std::max<size_t>(1, train.size() / 100);
  double sum = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    raw.points.emplace_back(static_cast<double>(train[i].first), train[i].second);
    sum += train[i].second;
    if (i >= window) sum -= train[i - window].second;
    if (i + 1 >= window) smooth.points.emplace_back(static_cast<double>(train[i].first), sum / static_cast<double>(window));
  }
  chart.series = {std::move(raw), std::move(smooth)};
  if (!val.empty()) {
    gen::ChartSeries v = series("validation", 0xd62728, 2, true);
    for (auto [step, loss] : val) v.points.emplace_back(static_cast<double>(step), loss);
    chart.series.push_back(std::move(v));
  }
  return gen::render_png(chart);
}

int run_training(Args& args) {
  gen::GracefulStop graceful;  // Ctrl-C finishes the step and saves
  // One thread pool: OpenMP's. The kernels split large GEMMs across it themselves.
  gen::use_threads(args.threads);
  Settings& s = args.settings;

  // The model and its tokenizer: new, from --init (fine-tune) or from --resume.
  std::string tokenizer_bytes;
  std::optional<gen::GptCheckpoint> checkpoint;
  if (!args.resume.empty() || !args.init.empty()) {
    checkpoint = gen::gpt_load(args.resume.empty() ? args.init : args.resume);
    tokenizer_bytes = checkpoint->tokenizer;
    args.config = checkpoint->config;
    if (!args.resume.empty()) {
      if (!checkpoint->train)
        throw Error(args.resume, "has no optimizer state to resume from (saved with --no-optimizer); use --init");
      auto saved = nlohmann::json::parse(checkpoint->train->settings);
      s.from_json(saved);
      if (!args.steps_given) s.steps = saved.at("steps");
      args.seed = checkpoint->train->seed;
    }
  } else {
    if (args.tokenizer.empty()) throw gen::UsageError("give --tokenizer tok.model (or --init/--resume lm.st)");
    tokenizer_bytes = gen::read_file(args.tokenizer, size_t{256} << 20);
  }
  gen::Tokenizer tok = gen::Tokenizer::from_bytes(tokenizer_bytes, args.tokenizer.empty() ? "tokenizer" : args.tokenizer);
  args.config.vocab = tok.vocab_size();
  if (s.decay_steps == 0) s.decay_steps = s.steps;
  gen::Gpt model(args.config);

  // Data.
  std::vector<uint32_t> data = read_ids(args.input, tok.vocab_size());
  std::vector<uint32_t> train, val;
  if (!args.val.empty()) {
    train = std::move(data);
    val = read_ids(args.val, tok.vocab_size());
  } else {
    size_t cut = data.size() - static_cast<size_t>(std::llround(static_cast<double>(data.size()) * s.val_fraction));
    val.assign(data.begin() + static_cast<std::ptrdiff_t>(cut), data.end());
    data.resize(cut);  // the training part stays where it is, not copied
    train = std::move(data);
  }
  const int64_t T = args.config.context, B = s.batch;
  if (train.size() <= static_cast<size_t>(T))
    throw Error(args.input, fmt::format("{} training tokens: need more than the context ({})", train.size(), T));
  bool has_val = val.size() > static_cast<size_t>(T);
  if (!has_val && (!args.val.empty() || s.val_fraction > 0))
    gen::warn(fmt::format("{} validation tokens, not more than the context ({}): no validation loss", val.size(), T));

  gen::Rng rng(args.seed);
  gen::AdamW adam(model.params().size(), {.beta1 = s.beta1, .beta2 = s.beta2, .eps = 1e-8f, .weight_decay = s.weight_decay});
  int64_t step = 0;
  if (checkpoint) {
    checkpoint->copy_weights(model);
    if (!args.resume.empty()) {
      step = checkpoint->train->step;
      rng.restore(checkpoint->train->sampler);
      adam.m() = std::move(checkpoint->train->m);
      adam.v() = std::move(checkpoint->train->v);
      adam.set_steps(checkpoint->train->adam_steps);
    }
    checkpoint.reset();  // its copies of the weights are in the model now
  } else {
    gen::Rng init_rng(args.seed, /*stream=*/1);
    model.init(init_rng);
  }
  if (step >= s.steps)
    throw gen::UsageError(fmt::format("the checkpoint is at step {} already: give --steps above it", step));

  auto save = [&](int64_t at) {
    gen::GptTrainState state;
    state.step = at;
    state.seed = args.seed;
    state.sampler = rng.save();
    state.adam_steps = adam.steps();
    state.settings = s.to_json().dump();
    // The moments lent to the checkpoint for the call, not copied: two model-sized buffers fewer.
    std::swap(state.m, adam.m());
    std::swap(state.v, adam.v());
    auto give_back = [&] {
      std::swap(state.m, adam.m());
      std::swap(state.v, adam.v());
    };
    try {
      gen::gpt_save(args.output, model, tokenizer_bytes, at, args.seed, args.no_optimizer ? nullptr : &state);
    } catch (...) {
      give_back();
      throw;
    }
    give_back();
  };

  std::optional<gen::Output> plot;  // opened now, so that a bad path fails before training
  if (!args.plot.empty()) plot.emplace(args.plot);
  std::optional<gen::Output> log;
  if (!args.log.empty()) {
    log.emplace(args.log, gen::Output::Mode::direct);  // follow it with tail -f
    log->write("step\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\tgrad_norm\ttokens_per_s\tseconds\n");
  }
  if (!args.quiet)
    std::fprintf(stderr, "gtrain: %zu parameters (%lld layers, %lld heads, %lld embd, context %lld, vocab %lld); %zu "
                 "train tokens, %zu validation tokens; %lld step%s of %lld x %lld tokens\n",
                 model.params().size(), static_cast<long long>(args.config.layers),
                 static_cast<long long>(args.config.heads), static_cast<long long>(args.config.embd),
                 static_cast<long long>(T), static_cast<long long>(args.config.vocab), train.size(), val.size(),
                 static_cast<long long>(s.steps), s.steps == 1 ? "" : "s", static_cast<long long>(B),
                 static_cast<long long>(T));

  model.params().set_shards(gen::batch_shards(B, args.threads));
  std::vector<gen::Arena> arenas(static_cast<size_t>(model.params().shards()));
  std::vector<uint32_t> x(static_cast<size_t>(B * T)), y(static_cast<size_t>(B * T));
  std::vector<std::pair<int64_t, double>> train_curve, val_curve;
  auto finish_outputs = [&] {
    if (log) log->commit();
    if (plot) {
      plot->write(loss_plot(train_curve, val_curve,
                            fmt::format("gtrain: {} layers, {} heads, {} embd, context {}, vocab {}, batch {}",
                                        args.config.layers, args.config.heads, args.config.embd, T,
                                        args.config.vocab, B)));
      plot->commit();
    }
  };
  gen::Progress progress("train", static_cast<uint64_t>(s.steps), "", args.quiet);
  progress.set_start(static_cast<uint64_t>(step));  // rates and ETA count this run's steps
  auto start = std::chrono::steady_clock::now();
  double last_train = NAN;
  int64_t first_step = step;
  while (step < s.steps) {
    sample_batch(train, rng, B, T, x.data(), y.data());
    auto loss = model.batch_loss(arenas, x.data(), y.data(), B, T, /*training=*/true);
    if (!std::isfinite(loss.mean))
      throw Error(args.output, fmt::format("training diverged at step {}: the loss is {} (lower --lr?); the last "
                                           "checkpoint written, if any, is kept",
                                           step + 1, std::isnan(loss.mean) ? "NaN" : "infinite"));
    // Clipping as a factor on the gradients inside the update: one pass over them fewer.
    float norm = gen::grad_norm(model.params());
    float lr = gen::cosine_lr(step, {.lr = s.lr, .min_lr = s.min_lr, .warmup = s.warmup, .decay_steps = s.decay_steps});
    adam.step(model.params(), lr, gen::clip_scale(norm, s.grad_clip));
    ++step;
    last_train = loss.mean;
    train_curve.emplace_back(step, loss.mean);

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double tokens_per_s = static_cast<double>((step - first_step) * B * T) / std::max(seconds, 1e-9);
    std::optional<Evaluation> evaluation;
    if (has_val && (step % s.eval_every == 0 || step == s.steps)) {
      evaluation = evaluate(model, val, s, args.seed, arenas);
      val_curve.emplace_back(step, evaluation->loss);
      progress.message(fmt::format("step {}: train loss {:.4f}, val loss {:.4f}, val accuracy {:.1f}%, lr {:.2e}, "
                                   "{:.0f} tokens/s",
                                   step, loss.mean, evaluation->loss, 100 * evaluation->accuracy, lr, tokens_per_s));
    }
    if (log)
      log->write(fmt::format("{}\t{:.6e}\t{:.6f}\t{:.4f}\t{}\t{}\t{:.4f}\t{:.0f}\t{:.3f}\n", step, lr, loss.mean,
                             static_cast<double>(loss.correct) / static_cast<double>(B * T),
                             evaluation ? fmt::format("{:.6f}", evaluation->loss) : "",
                             evaluation ? fmt::format("{:.4f}", evaluation->accuracy) : "", norm, tokens_per_s,
                             seconds));
    if (log) log->flush();
    progress.update(static_cast<uint64_t>(step), fmt::format("loss {:.4f}, lr {:.1e}, {:.0f} tok/s", loss.mean, lr, tokens_per_s));
    if (args.save_every > 0 && step % args.save_every == 0 && step < s.steps) save(step);
    if (gen::stop_requested()) {
      save(step);
      finish_outputs();
      progress.message(fmt::format("interrupted: saved step {} to {}", step, args.output));
      throw gen::Interrupted();
    }
  }
  save(step);
  finish_outputs();
  progress.finish(fmt::format("train loss {:.4f}", last_train));
  if (!args.quiet) {
    std::fputs(loss_chart(train_curve, val_curve).c_str(), stderr);
    std::fprintf(stderr, "gtrain: wrote %s (step %lld)\n", args.output.c_str(), static_cast<long long>(step));
  }
  return 0;
}

int run(int argc, char** argv) {
  Args args;
  CLI::App app("gtrain: train a small GPT on token ids (from gtok encode); resume exactly; fine-tune", "gtrain");
  app.set_version_flag("--version", "gtrain 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later options override
  app.add_option("ids", args.input, "Token ids, text or binary (gtok encode); - is stdin (default)");
  app.add_option("-o,--output", args.output, "The checkpoint to write, e.g. lm.st")->required();
  auto* tokenizer = app.add_option("--tokenizer", args.tokenizer, "The tokenizer model the ids came from (gtok train)");
  auto* init = app.add_option("--init", args.init, "Start from this checkpoint's weights and tokenizer (fine-tune)");
  auto* resume = app.add_option("--resume", args.resume,
                                "Continue this checkpoint's run exactly (its settings; --steps may grow)");
  tokenizer->excludes(init)->excludes(resume);
  init->excludes(resume);
  app.add_option("--val", args.val, "Validation ids (default: the last --val-fraction of the input)");
  app.add_option("--val-fraction", args.settings.val_fraction, "Share of the input held out for validation")
      ->check(CLI::Range(0.0, 0.9))->capture_default_str();
  auto& c = args.config;
  app.add_option("--layers", c.layers, "Transformer blocks")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--heads", c.heads, "Attention heads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--embd", c.embd, "Embedding width")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--context", c.context, "Context length in tokens")->check(CLI::Range(1, 65536))->capture_default_str();
  auto& s = args.settings;
  app.add_option("--batch", s.batch, "Sequences per step")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  app.add_option("--steps", s.steps, "Optimizer steps in all (with --resume: the new total)")
      ->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--decay-steps", s.decay_steps, "Step where the cosine schedule reaches --min-lr (default --steps)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--lr", s.lr, "Peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--min-lr", s.min_lr, "Final learning rate")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--warmup", s.warmup, "Linear warmup steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--weight-decay", s.weight_decay, "AdamW decoupled weight decay (matrices only)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--beta2", s.beta2, "AdamW beta2")->check(CLI::Range(0.0, 0.99999))->capture_default_str();
  app.add_option("--grad-clip", s.grad_clip, "Clip gradients to this global norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--seed", args.seed, "Seed for the initialization and the batches")->capture_default_str();
  app.add_option("--threads", args.threads, "Threads (the same threads, seed and data give the same checkpoint)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--eval-every", s.eval_every, "Steps between validation losses")
      ->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--eval-batches", s.eval_batches, "Batches per validation loss")
      ->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("--save-every", args.save_every, "Steps between checkpoints (0: only at the end)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-optimizer", args.no_optimizer, "Save weights only (smaller; cannot be resumed)");
  app.add_option("--log", args.log, "Write a row per step to this TSV file (gnuplot, awk)");
  app.add_option("--plot", args.plot, "Draw train and validation loss against step (this run's steps) as a PNG");
  app.add_flag("-q,--quiet", args.quiet, "No progress or summary on stderr");
  app.footer(R"(Defaults are nanoGPT's CPU recipe for character-level Shakespeare (0.8M parameters with its
65-symbol vocabulary). --threads defaults to the number of CPUs.
Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gtok train --model-type char shakespeare.txt -o char.model
  gtok encode -m char.model shakespeare.txt | gtrain --tokenizer char.model - -o lm.st
  gtrain --tokenizer char.model --steps 500 --log train.tsv --plot loss.png corpus.ids -o lm.st
  gtrain --resume lm.st --steps 2000 corpus.ids -o lm.st        # continue to step 2000)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw gen::UsageError(e.what());
  }
  if (s.min_lr > s.lr) throw gen::UsageError("--min-lr is above --lr");
  args.steps_given = app.count("--steps") > 0;
  // Options that a checkpoint decides: say so rather than ignore them silently.
  auto ignored = [&](std::initializer_list<const char*> names, const char* why) {
    std::string given;
    for (const char* name : names)
      if (app.count(name)) given += (given.empty() ? "" : ", ") + std::string(name);
    if (!given.empty()) gen::warn(fmt::format("{} ignored: {}", given, why));
  };
  if (!args.resume.empty())
    ignored({"--layers", "--heads", "--embd", "--context", "--batch", "--decay-steps", "--lr", "--min-lr", "--warmup",
             "--weight-decay", "--beta2", "--grad-clip", "--seed", "--val-fraction", "--eval-batches"},
            "--resume continues with the checkpoint's settings");
  if (!args.init.empty())
    ignored({"--layers", "--heads", "--embd", "--context"}, "--init keeps the checkpoint's model shape");
  return run_training(args);
}

}  // namespace

int main(int argc, char** argv) {
  gen::sleep_when_idle(argv);
  return gen::tool_main("gtrain", argc, argv, run);
}
