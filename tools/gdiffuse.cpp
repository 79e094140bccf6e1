// gdiffuse: diffusion on images. noise (the forward process), train (a U-Net denoiser),
// sample (the reverse process, DDPM or DDIM, with classifier-free guidance), denoise
// (image-to-image from step t).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/printf.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
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
#include "diffusion/diffusion.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/image_files.h"
#include "io/plot.h"
#include "models/checkpoint.h"
#include "models/unet.h"
#include "models/unet_checkpoint.h"
#include "tensor/optimizer.h"

namespace {

using gen::Error;
using gen::UsageError;

// The class index for a prompt (a class name as find_class takes it, or its number).
uint32_t class_index(const std::vector<std::string>& names, const std::string& prompt, const std::string& file) {
  if (names.empty()) throw Error(file, fmt::format("prompt '{}': this model has no classes", prompt));
  int k = gen::find_class(names, prompt);
  if (k < 0) throw Error(file, fmt::format("unknown class '{}'; the classes are: {}", prompt, gen::class_list(names)));
  return static_cast<uint32_t>(k);
}

// ---------------------------------------------------------------------------------------------
// The denoiser at sampling time, with classifier-free guidance:
// eps = eps(x, none) + w (eps(x, class) - eps(x, none)), both halves in one batch.

struct Denoiser {
  const gen::DiffusionModel& info;
  gen::Unet& model;
  std::vector<uint32_t> labels;  // per image; info.unet.classes means "no class"
  double guidance = 1;
  gen::Arena arena;
  // Images per forward pass: an inference pass still keeps every activation of its batch (about
  // 4 MB per image for the default U-Net), so large n go through in chunks.
  static constexpr int64_t kChunk = 16;

  void operator()(const float* x, int64_t t, float* eps, int64_t n) {
    for (int64_t start = 0; start < n; start += kChunk)
      chunk(x + start * pixels(), t, eps + start * pixels(), start, std::min(kChunk, n - start));
  }

 private:
  int64_t pixels() const { return info.unet.image_channels * info.unet.image_size * info.unet.image_size; }

  // Images first..first+n-1 of the batch (their labels), at x and eps.
  void chunk(const float* x, int64_t t, float* eps, int64_t first, int64_t n) {
    const int64_t C = info.unet.image_channels, S = info.unet.image_size, P = pixels();
    const bool guided = info.unet.classes > 0 && guidance != 1;
    const int64_t B = guided ? 2 * n : n;
    std::vector<float> ts(static_cast<size_t>(B), static_cast<float>(t));
    std::vector<uint32_t> ls(labels.begin() + first, labels.begin() + first + n);
    arena.reset();
    gen::Graph g(arena, false);
    gen::Tensor input = g.tensor({B, C, S, S});
    std::copy(x, x + n * P, input.data);
    if (guided) {
      std::copy(x, x + n * P, input.data + n * P);
      ls.resize(static_cast<size_t>(B), static_cast<uint32_t>(info.unet.classes));
    }
    gen::Tensor out = model.forward(g, input, ts.data(), ls.data());
    if (!guided) {
      std::copy(out.data, out.data + n * P, eps);
      return;
    }
    const float w = static_cast<float>(guidance);
    for (int64_t k = 0; k < n * P; ++k) eps[k] = out.data[n * P + k] + w * (out.data[k] - out.data[n * P + k]);
  }
};

// ---------------------------------------------------------------------------------------------
// noise: the forward process.

struct NoiseArgs {
  std::string input, output, strip, schedule = "linear";
  int64_t t = -1, T = 1000;
  int scale = 1;
  uint64_t seed = 1;
};

int run_noise(const NoiseArgs& a) {
  gen::Schedule s(gen::Schedule::parse(a.schedule), a.T);
  std::vector<int64_t> steps;
  if (!a.strip.empty()) {
    steps = gen::parse_int_list(a.strip, "--strip", "0,25,50");
  } else {
    if (a.t < 0) throw UsageError("give --t STEP (or --strip 0,25,50,...)");
    steps.push_back(a.t);
  }
  // Step 0 in these options is the clean image; step k is x after k noising steps, i.e. the
  // schedule's index k-1. So --t ranges over 0..T.
  for (int64_t t : steps)
    if (t < 0 || t > a.T) throw UsageError(fmt::format("step {} is outside 0..{} (--steps)", t, a.T));
  gen::check_output_pattern(a.output);
  gen::Image image = gen::read_png(a.input);
  std::vector<float> x0 = gen::to_floats(image), eps(x0.size()), xt(x0.size());
  gen::Rng rng(a.seed);
  for (auto& e : eps) e = rng.normal();  // one noise for every step: the image dissolves into it
  std::vector<gen::Image> tiles;
  for (int64_t t : steps) {
    if (t == 0)
      xt = x0;
    else
      s.noise(xt.data(), x0.data(), eps.data(), static_cast<int64_t>(x0.size()), t - 1);
    tiles.push_back(gen::from_floats(xt.data(), image.channels, image.height, image.width));
  }
  gen::write_images(a.output, tiles, fmt::format("{}x1", tiles.size()), a.scale);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// train

struct Settings {
  int64_t batch = 64;
  int64_t steps = 4000;
  int64_t decay_steps = 0;  // 0: = steps
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int64_t warmup = 200;
  float weight_decay = 0.0f;
  float grad_clip = 1.0f;
  float ema = 0.999f;
  float cond_drop = 0.1f;

  nlohmann::json to_json() const {
    return {{"batch", batch},   {"decay_steps", decay_steps},   {"lr", lr},           {"min_lr", min_lr},
            {"warmup", warmup}, {"weight_decay", weight_decay}, {"grad_clip", grad_clip}, {"ema", ema},
            {"cond_drop", cond_drop}};
  }
  void from_json(const nlohmann::json& j) {
    batch = j.at("batch");
    decay_steps = j.at("decay_steps");
    lr = j.at("lr");
    min_lr = j.at("min_lr");
    warmup = j.at("warmup");
    weight_decay = j.at("weight_decay");
    grad_clip = j.at("grad_clip");
    ema = j.at("ema");
    cond_drop = j.at("cond_drop");
  }
};

struct TrainArgs {
  std::string data = "fashion-mnist", labels, output, resume, log, plot, preview;
  std::string channels = "32,64,128", schedule = "linear";
  int64_t T = 1000, groups = 8, time_dim = 128;
  bool unconditional = false, attention = false;
  Settings settings;
  uint64_t seed = 1;
  int threads = gen::default_threads();
  int64_t save_every = 0, preview_every = 0, limit = 0;
  bool quiet = false, steps_given = false;
};

// A sample grid from fixed noise with the EMA weights: one column per class (or 10 images
// unconditioned), DDIM 50 steps, guidance 3 — how the model is doing, every --preview-every.
void write_preview(const std::string& path, const gen::DiffusionModel& info, const std::vector<float>& ema,
                   uint64_t seed) {
  gen::Unet model(info.unet);
  std::copy(ema.begin(), ema.end(), model.params().values());
  const int64_t classes = info.unet.classes, per_class = 4;
  const int64_t n = classes > 0 ? classes * per_class : 40;
  const int64_t P = info.unet.image_channels * info.unet.image_size * info.unet.image_size;
  Denoiser denoiser{info, model, {}, classes > 0 ? 3.0 : 1.0, {}};
  for (int64_t i = 0; i < n; ++i)
    denoiser.labels.push_back(classes > 0 ? static_cast<uint32_t>(i % classes) : 0);
  gen::Rng rng(seed, /*stream=*/11);  // the same noise at every preview
  std::vector<float> x(static_cast<size_t>(n * P));
  for (auto& v : x) v = rng.normal();
  gen::Schedule s(info.schedule, info.T);
  gen::Sampler sampler{.steps = 50, .eta = 0, .clamp = true};
  sampler.run(s, x.data(), n, P, info.T - 1,
              [&](const float* xt, int64_t t, float* eps) { denoiser(xt, t, eps, n); }, rng);
  auto tiles = gen::tiles_from_floats(x.data(), n, info.unet.image_channels, info.unet.image_size);
  gen::write_images(path, tiles, classes > 0 ? fmt::format("{}x{}", classes, per_class) : "10x4", 2);
}

int run_train(TrainArgs& args) {
  gen::GracefulStop graceful;
  gen::use_threads(args.threads);
  Settings& s = args.settings;
  gen::DiffusionModel info;
  std::optional<gen::DiffusionCheckpoint> checkpoint;
  int64_t step = 0;
  if (!args.resume.empty()) {
    checkpoint = gen::diffusion_load(args.resume);
    gen::resume_settings(*checkpoint, args.resume, s);
    info = checkpoint->model;
    step = checkpoint->step;
    args.seed = checkpoint->seed;
    if (!args.steps_given) s.steps = step;
    if (s.steps <= step)
      throw UsageError(fmt::format("the checkpoint is at step {} already: give --steps above it", step));
  }

  // The data, checked against the model.
  gen::ImageData data = gen::load_image_data(args.data, args.labels);
  gen::limit_images(data.set, args.limit);
  if (data.set.height != data.set.width)
    throw Error(args.data, fmt::format("images are {}x{}: the U-Net wants square images", data.set.width,
                                       data.set.height));
  if (!checkpoint) {
    info.unet.image_channels = data.set.channels;
    info.unet.image_size = data.set.height;
    info.unet.channels = gen::parse_int_list(args.channels, "--channels", "32,64,128");
    info.unet.groups = args.groups;
    info.unet.time_dim = args.time_dim;
    info.unet.attention = args.attention;
    bool conditional = data.set.labelled() && !args.unconditional;
    info.unet.classes = conditional ? static_cast<int64_t>(data.class_names.size()) : 0;
    if (conditional) info.class_names = data.class_names;
    info.schedule = gen::Schedule::parse(args.schedule);
    info.T = args.T;
    try {
      info.unet.validate();
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
  } else if (data.set.height != info.unet.image_size || data.set.channels != info.unet.image_channels) {
    throw Error(args.data, fmt::format("images are {}x{}x{} but the checkpoint's model wants {}x{}x{}",
                                       data.set.width, data.set.height, data.set.channels, info.unet.image_size,
                                       info.unet.image_size, info.unet.image_channels));
  }
  gen::Schedule schedule(info.schedule, info.T);

  gen::Unet model(info.unet);
  gen::Rng rng(args.seed);
  gen::AdamW adam(model.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                          .weight_decay = s.weight_decay});
  std::vector<float> ema;
  if (checkpoint) {
    auto& train = *checkpoint->train;
    std::copy(train.raw.begin(), train.raw.end(), model.params().values());
    adam.m() = train.m;
    adam.v() = train.v;
    adam.set_steps(train.adam_steps);
    rng.restore(train.rng);
    ema = checkpoint->ema;
  } else {
    model.init(rng);
    ema.assign(model.params().values(), model.params().values() + model.params().size());
  }
  if (s.decay_steps == 0) s.decay_steps = s.steps;

  auto save = [&](int64_t at) {
    gen::DiffusionTrainState state;
    state.raw.assign(model.params().values(), model.params().values() + model.params().size());
    state.m = adam.m();
    state.v = adam.v();
    state.adam_steps = adam.steps();
    state.rng = rng.save();
    state.settings = s.to_json().dump();
    gen::diffusion_save(args.output, info, ema, at, args.seed, &state);
  };

  std::optional<gen::Output> plot;
  if (!args.plot.empty()) plot.emplace(args.plot);
  std::optional<gen::Output> log;
  if (!args.log.empty()) {
    log.emplace(args.log, gen::Output::Mode::direct);
    log->write("step\tlr\tloss\tgrad_norm\timages_per_s\tseconds\n");
  }
  if (!args.preview.empty()) gen::check_output_pattern(args.preview, "--preview");
  const int64_t B = s.batch, C = info.unet.image_channels, S = info.unet.image_size, P = C * S * S;
  if (!args.quiet)
    std::fprintf(stderr, "gdiffuse: %zu parameters (channels %s, %lld classes), %d images of %lldx%lld, %s schedule, "
                 "T %lld; %lld steps of %lld images, %.2f GFLOP per step\n",
                 model.params().size(), args.channels.c_str(), static_cast<long long>(info.unet.classes),
                 data.set.count, static_cast<long long>(S), static_cast<long long>(S),
                 gen::Schedule::name(info.schedule), static_cast<long long>(info.T), static_cast<long long>(s.steps),
                 static_cast<long long>(B), 3 * info.unet.flops_per_image() * static_cast<double>(B) / 1e9);

  // Each step's batch in equal shards, one per thread, their gradients added in shard order
  // (run_shards): the same threads, seed and data give the same checkpoint.
  model.params().set_shards(gen::batch_shards(B, args.threads));
  const int shards = model.params().shards();
  const int64_t Bs = B / shards;
  std::vector<gen::Arena> arenas(static_cast<size_t>(shards));
  std::vector<float> x0(static_cast<size_t>(B * P)), eps(x0.size()), xt(x0.size()), t(static_cast<size_t>(B));
  std::vector<uint32_t> labels(static_cast<size_t>(B));
  std::vector<std::pair<int64_t, double>> curve;
  gen::Progress progress("train", static_cast<uint64_t>(s.steps), "", args.quiet);
  progress.set_start(static_cast<uint64_t>(step));
  auto start = std::chrono::steady_clock::now();
  const int64_t first_step = step;
  double recent = 0;
  int64_t recent_n = 0;
  auto finish_outputs = [&] {
    if (log) log->commit();
    if (plot) {
      gen::Chart chart;
      chart.title = fmt::format("gdiffuse: U-Net {}, batch {}", args.channels, B);
      chart.x_label = "step";
      chart.y_label = "loss (mean squared error of the predicted noise)";
      gen::ChartSeries raw, smooth;
      raw.name = "each step", raw.rgb = 0xb9d3ea, raw.width = 1;
      smooth.name = "moving average", smooth.rgb = 0x1f5fa8, smooth.width = 2;
      size_t window = std::max<size_t>(1, curve.size() / 50);
      double sum = 0;
      for (size_t i = 0; i < curve.size(); ++i) {
        raw.points.emplace_back(static_cast<double>(curve[i].first), curve[i].second);
        sum += curve[i].second;
        if (i >= window) sum -= curve[i - window].second;
        if (i + 1 >= window)
          smooth.points.emplace_back(static_cast<double>(curve[i].first), sum / static_cast<double>(window));
      }
      chart.series = {raw, smooth};
      plot->write(gen::render_png(chart));
      plot->commit();
    }
  };
  while (step < s.steps) {
    // A batch: images, classes (dropped to "no class" with probability cond_drop), steps, noise.
    for (int64_t b = 0; b < B; ++b) {
      uint32_t i = rng.below(static_cast<uint32_t>(data.set.count));
      gen::hwc_to_floats(data.set.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(S),
                         static_cast<int>(C), x0.data() + b * P);
      uint32_t label = info.unet.classes > 0 ? data.set.labels[i] : 0;
      if (info.unet.classes > 0 && rng.uniform() < s.cond_drop) label = static_cast<uint32_t>(info.unet.classes);
      labels[static_cast<size_t>(b)] = label;
      int64_t ti = rng.below(static_cast<uint32_t>(info.T));
      t[static_cast<size_t>(b)] = static_cast<float>(ti);
      for (int64_t k = 0; k < P; ++k) eps[static_cast<size_t>(b * P + k)] = rng.normal();
      schedule.noise(xt.data() + b * P, x0.data() + b * P, eps.data() + b * P, P, ti);
    }
    const auto loss = static_cast<float>(gen::run_shards(model.params(), arenas, true, [&](int shard, gen::Graph& g) {
      const int64_t b0 = shard * Bs;
      gen::Tensor pred = model.forward(g, g.constant({Bs, C, S, S}, xt.data() + b0 * P), t.data() + b0,
                                       labels.data() + b0, shard);
      return static_cast<double>(g.mse(pred, g.constant({Bs, C, S, S}, eps.data() + b0 * P)));
    }));
    if (!std::isfinite(loss))
      throw Error(args.output, fmt::format("training diverged at step {}: the loss is {} (lower --lr?)", step + 1,
                                           std::isnan(loss) ? "NaN" : "infinite"));
    float norm = gen::clip_grad_norm(model.params(), s.grad_clip);
    float lr = gen::cosine_lr(step, {.lr = s.lr, .min_lr = s.min_lr, .warmup = s.warmup, .decay_steps = s.decay_steps});
    adam.step(model.params(), lr);
    // EMA of the weights; early on, a shorter memory so that it does not average the noise of
    // the first steps in (as in many DDPM implementations: min(decay, (1 + n) / (10 + n))).
    const float decay = std::min(s.ema, (1.0f + static_cast<float>(step)) / (10.0f + static_cast<float>(step)));
    const float* w = model.params().values();
    for (size_t k = 0; k < ema.size(); ++k) ema[k] = decay * ema[k] + (1 - decay) * w[k];
    ++step;
    curve.emplace_back(step, loss);
    recent += loss;
    ++recent_n;

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double images_per_s = static_cast<double>((step - first_step) * B) / std::max(seconds, 1e-9);
    if (log) {
      log->write(fmt::format("{}\t{:.6e}\t{:.6f}\t{:.4f}\t{:.1f}\t{:.3f}\n", step, lr, loss, norm, images_per_s,
                             seconds));
      log->flush();
    }
    progress.update(static_cast<uint64_t>(step),
                    fmt::format("loss {:.4f}, lr {:.1e}, {:.0f} img/s", recent / static_cast<double>(recent_n), lr,
                                images_per_s));
    if (step % 100 == 0) recent = 0, recent_n = 0;
    if (args.preview_every > 0 && !args.preview.empty() && step % args.preview_every == 0) {
      write_preview(args.preview, info, ema, args.seed);
      progress.message(fmt::format("step {}: loss {:.4f}; preview in {}", step, loss, args.preview));
    }
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
  if (!args.preview.empty()) write_preview(args.preview, info, ema, args.seed);
  progress.finish(fmt::format("loss {:.4f}", curve.empty() ? 0.0 : curve.back().second));
  if (!args.quiet) std::fprintf(stderr, "gdiffuse: wrote %s (step %lld)\n", args.output.c_str(), static_cast<long long>(step));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sample and denoise

struct SampleArgs {
  std::string checkpoint, output, grid, prompt, sampler = "ddim", trajectory, gif, input;
  int64_t n = 16, steps = 50, t = -1;
  int scale = 1;
  double eta = -1, guidance = 3;
  uint64_t seed = 1;
  int threads = gen::default_threads();
  bool no_clamp = false, quiet = false;
};

int run_sample(const SampleArgs& a, bool denoise) {
  gen::use_threads(a.threads);
  if (a.sampler != "ddpm" && a.sampler != "ddim")
    throw UsageError(fmt::format("--sampler '{}': ddpm or ddim", a.sampler));
  if (a.guidance < 0) throw UsageError("--guidance must be >= 0");
  if (a.output.empty() && a.prompt != "list") throw UsageError("give -o FILE.png for the images");
  gen::check_output_pattern(a.output);
  if (!a.trajectory.empty()) gen::check_output_pattern(a.trajectory, "--trajectory");
  if (!a.gif.empty()) {
    gen::check_output_pattern(a.gif, "--gif");
    if (a.gif.find('%') != std::string::npos) throw UsageError(fmt::format("--gif '{}': one file, not numbered", a.gif));
  }
  gen::DiffusionCheckpoint ckpt = gen::diffusion_load(a.checkpoint);
  const gen::DiffusionModel& info = ckpt.model;
  if (a.prompt == "list") {
    if (info.class_names.empty()) throw Error(a.checkpoint, "this model has no classes (trained unconditionally)");
    for (size_t i = 0; i < info.class_names.size(); ++i) fmt::print("{}\t{}\n", i, info.class_names[i]);
    return 0;
  }
  const int64_t C = info.unet.image_channels, S = info.unet.image_size, P = C * S * S;
  gen::Unet model(info.unet);
  std::copy(ckpt.ema.begin(), ckpt.ema.end(), model.params().values());
  gen::Schedule schedule(info.schedule, info.T);

  // Which class each image gets: the prompt's, every class in turn ("all": one row per class),
  // or none.
  int64_t n = a.n;
  std::string grid = a.grid;
  std::vector<uint32_t> labels;
  const uint32_t none = static_cast<uint32_t>(info.unet.classes);
  if (a.prompt == "all") {
    if (info.unet.classes == 0) throw Error(a.checkpoint, "--prompt all: this model has no classes");
    if (grid.empty()) grid = fmt::format("{}x{}", n, info.unet.classes);
    for (int64_t c = 0; c < info.unet.classes; ++c)
      for (int64_t i = 0; i < a.n; ++i) labels.push_back(static_cast<uint32_t>(c));
    n = static_cast<int64_t>(labels.size());
  } else if (!a.prompt.empty()) {
    labels.assign(static_cast<size_t>(n), class_index(info.class_names, a.prompt, a.checkpoint));
  } else {
    labels.assign(static_cast<size_t>(n), none);
  }
  if (a.output.find('%') == std::string::npos) (void)gen::parse_grid(grid, n);  // a bad --grid fails now

  // The start: pure noise at step T-1, or (denoise) the image noised to step t.
  gen::Rng rng(a.seed);
  std::vector<float> x(static_cast<size_t>(n * P));
  int64_t start = info.T - 1;
  if (denoise) {
    if (a.t < 0 || a.t > info.T) throw UsageError(fmt::format("--t {} is outside 0..{}", a.t, info.T));
    gen::Image image = gen::read_png(a.input);
    if (image.width != S || image.height != S || image.channels != C)
      throw Error(a.input, fmt::format("the image is {}x{} with {} channel{}; the model wants {}x{} with {}",
                                       image.width, image.height, image.channels, image.channels == 1 ? "" : "s", S,
                                       S, C));
    std::vector<float> x0 = gen::to_floats(image), eps(static_cast<size_t>(P));
    for (int64_t i = 0; i < n; ++i) {
      for (auto& e : eps) e = rng.normal();
      if (a.t == 0)
        std::copy(x0.begin(), x0.end(), x.begin() + i * P);
      else
        schedule.noise(x.data() + i * P, x0.data(), eps.data(), P, a.t - 1);
    }
    start = a.t - 1;
  } else {
    for (auto& v : x) v = rng.normal();
  }

  gen::Sampler sampler;
  sampler.steps = a.sampler == "ddpm" && a.steps == 50 && !denoise ? info.T : a.steps;
  sampler.eta = a.eta >= 0 ? a.eta : (a.sampler == "ddpm" ? 1.0 : 0.0);
  sampler.clamp = !a.no_clamp;
  Denoiser denoiser{info, model, labels, labels.empty() || labels[0] == none ? 1.0 : a.guidance, {}};
  if (a.prompt == "all") denoiser.guidance = a.guidance;

  // The trajectory: the first images (up to 8) at 10 points of the reverse process.
  std::vector<int64_t> ts = sampler.timesteps(std::max<int64_t>(start, 0));
  const int64_t rows = std::min<int64_t>(n, 8), points = 10;
  std::vector<gen::Image> snapshots;
  std::vector<size_t> at;
  for (int64_t k = 1; k < points; ++k) at.push_back(static_cast<size_t>((static_cast<int64_t>(ts.size()) * k) / (points - 1)) - 1);
  std::vector<std::vector<gen::Image>> trajectory(static_cast<size_t>(rows));
  if (!a.trajectory.empty())
    for (int64_t r = 0; r < rows; ++r)
      trajectory[static_cast<size_t>(r)].push_back(gen::from_floats(x.data() + r * P, static_cast<int>(C),
                                                                    static_cast<int>(S), static_cast<int>(S)));
  // The animation: the same images side by side, at up to 50 evenly spaced steps and the start.
  std::vector<gen::Image> frames;
  const int64_t every = (static_cast<int64_t>(ts.size()) + 49) / 50;
  auto add_frame = [&](const float* xt) {
    frames.push_back(gen::enlarge(
        gen::make_grid(gen::tiles_from_floats(xt, rows, C, S), static_cast<int>(rows), 1), a.scale));
  };
  if (!a.gif.empty()) add_frame(x.data());
  gen::Progress progress(denoise ? "denoise" : "sample", static_cast<uint64_t>(ts.size()), "", a.quiet);
  if (start >= 0)
    sampler.run(
        schedule, x.data(), n, P, start, [&](const float* xt, int64_t t, float* eps) { denoiser(xt, t, eps, n); }, rng,
        [&](int64_t index, int64_t, const float* xt) {
          progress.update(static_cast<uint64_t>(index + 1));
          if (!a.trajectory.empty() && std::find(at.begin(), at.end(), static_cast<size_t>(index)) != at.end())
            for (int64_t r = 0; r < rows; ++r)
              trajectory[static_cast<size_t>(r)].push_back(gen::from_floats(
                  xt + r * P, static_cast<int>(C), static_cast<int>(S), static_cast<int>(S)));
          if (!a.gif.empty() && ((index + 1) % every == 0 || index + 1 == static_cast<int64_t>(ts.size())))
            add_frame(xt);
        });
  progress.finish();
  gen::write_images(a.output, gen::tiles_from_floats(x.data(), n, C, S), grid, a.scale);
  if (!a.trajectory.empty()) {
    std::vector<gen::Image> tiles;
    for (auto& row : trajectory) tiles.insert(tiles.end(), row.begin(), row.end());
    gen::write_images(a.trajectory, tiles, fmt::format("{}x{}", trajectory[0].size(), rows), a.scale);
  }
  if (!a.gif.empty()) gen::write_gif(a.gif, frames, 8, 150);
  return 0;
}

// ---------------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  CLI::App app("gdiffuse: diffusion on images: noise, train a denoiser, sample with guidance", "gdiffuse");
  app.set_version_flag("--version", "gdiffuse 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1);

  NoiseArgs noise;
  auto* cmd_noise = app.add_subcommand("noise", "The forward process: an image buried in noise up to step t");
  cmd_noise->add_option("image", noise.input, "A PNG image (- is stdin)")->required();
  cmd_noise->add_option("--t", noise.t, "Step: 0 is the image, --steps is pure noise");
  cmd_noise->add_option("--strip", noise.strip, "Several steps side by side, e.g. 0,25,50,75,100");
  cmd_noise->add_option("--steps", noise.T, "Steps of the whole process (T)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_noise->add_option("--schedule", noise.schedule, "linear or cosine")->capture_default_str();
  cmd_noise->add_option("-s,--seed", noise.seed, "Seed of the noise")->capture_default_str();
  cmd_noise->add_option("--scale", noise.scale, "Draw each pixel as an NxN block")->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd_noise->add_option("-o,--output", noise.output, "PNG to write (- is stdout)")->required();
  cmd_noise->footer(R"(Examples:
  gdiffuse noise shirt.png --t 50 --steps 100 -o noisy.png
  gdiffuse noise shirt.png --strip 0,10,25,50,100 --steps 100 -o strip.png   # the image dissolving)");

  TrainArgs train;
  auto* cmd_train = app.add_subcommand("train", "Train a U-Net denoiser (epsilon prediction)");
  cmd_train->add_option("--data", train.data,
                        "fashion-mnist (Debian's dataset-fashion-mnist), an IDX image file (with --labels), or a "
                        "folder of PNGs")
      ->capture_default_str();
  cmd_train->add_option("--labels", train.labels, "IDX labels for an IDX --data file");
  cmd_train->add_option("--limit", train.limit, "Use only the first N images");
  cmd_train->add_option("-o,--output", train.output, "The checkpoint to write, e.g. ddpm.st")->required();
  cmd_train->add_option("--resume", train.resume, "Continue this checkpoint's run exactly (--steps may grow)");
  cmd_train->add_option("--channels", train.channels, "U-Net channels per level (the image halves between levels)")
      ->capture_default_str();
  cmd_train->add_option("--groups", train.groups, "GroupNorm groups")->capture_default_str();
  cmd_train->add_option("--time-dim", train.time_dim, "Width of the time embedding")->capture_default_str();
  cmd_train->add_flag("--attention", train.attention, "Self-attention over the pixels after the middle block (7x7)");
  cmd_train->add_option("--schedule", train.schedule, "Noise schedule: linear or cosine")->capture_default_str();
  cmd_train->add_option("--T", train.T, "Diffusion steps")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd_train->add_flag("--unconditional", train.unconditional, "Ignore the labels (no guidance later)");
  auto& s = train.settings;
  cmd_train->add_option("--batch", s.batch, "Images per step")->check(CLI::Range(1, 1 << 14))->capture_default_str();
  cmd_train->add_option("--steps", s.steps, "Optimizer steps in all (with --resume: the new total)")
      ->check(CLI::Range(1, 1 << 30))->capture_default_str();
  cmd_train->add_option("--decay-steps", s.decay_steps, "Step where the cosine schedule reaches --min-lr (default --steps)")
      ->check(CLI::Range(1, 1 << 30));
  cmd_train->add_option("--lr", s.lr, "Peak learning rate (AdamW)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd_train->add_option("--min-lr", s.min_lr, "Final learning rate (cosine)")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--warmup", s.warmup, "Linear warmup steps")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--weight-decay", s.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--grad-clip", s.grad_clip, "Clip gradients to this global norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd_train->add_option("--ema", s.ema, "Decay of the weights' moving average used for sampling")
      ->check(CLI::Range(0.0, 0.99999))->capture_default_str();
  cmd_train->add_option("--cond-drop", s.cond_drop, "Share of labels dropped (for classifier-free guidance)")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd_train->add_option("--seed", train.seed, "Seed for initialization, batches and noise")->capture_default_str();
  cmd_train->add_option("--threads", train.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd_train->add_option("--save-every", train.save_every, "Steps between checkpoints (0: only at the end)")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--preview", train.preview, "A sample grid from fixed noise (PNG), at the end and every "
                                                    "--preview-every steps");
  cmd_train->add_option("--preview-every", train.preview_every, "Steps between previews")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--log", train.log, "Write a row per step to this TSV file");
  cmd_train->add_option("--plot", train.plot, "Draw the loss against step as a PNG");
  cmd_train->add_flag("-q,--quiet", train.quiet, "No progress on stderr");
  cmd_train->footer(R"(Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gdiffuse train -o ddpm.st --steps 4000 --preview preview.png --preview-every 500 --log train.tsv
  gdiffuse train --resume ddpm.st --steps 6000 -o ddpm.st)");

  SampleArgs sample, den;
  auto add_sampling = [](CLI::App* cmd, SampleArgs& a) {
    cmd->add_option("checkpoint", a.checkpoint, "A diffusion checkpoint (gdiffuse train)")->required();
    cmd->add_option("-p,--prompt", a.prompt, "A class name or number; 'all' for a row per class; 'list' prints them");
    cmd->add_option("-g,--guidance", a.guidance, "Classifier-free guidance scale (1: conditional only; 0: none)")
        ->capture_default_str();
    cmd->add_option("--sampler", a.sampler, "ddim or ddpm")->capture_default_str();
    cmd->add_option("--steps", a.steps, "Denoiser calls (ddpm without --steps: all T)")->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--eta", a.eta, "DDIM's eta: 0 deterministic, 1 DDPM's noise (default by --sampler)");
    cmd->add_flag("--no-clamp", a.no_clamp, "Do not clamp the predicted image to [-1, 1] at each step");
    cmd->add_option("-s,--seed", a.seed, "Seed: the same seed gives the same images")->capture_default_str();
    cmd->add_option("--grid", a.grid, "Columns x rows of the output grid, e.g. 8x8");
    cmd->add_option("--trajectory", a.trajectory, "Also write the first images at 10 points of the reverse process");
    cmd->add_option("--gif", a.gif, "Also write the reverse process as an animated GIF (the first images, up to 8)");
    cmd->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
    cmd->add_option("-o,--output", a.output,
                    "PNG grid to write (- is stdout), numbered files: out-%03d.png, or an animation: out.gif");
    cmd->add_option("--scale", a.scale, "Draw each pixel as an NxN block")->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", a.quiet, "No progress on stderr");
  };
  auto* cmd_sample = app.add_subcommand("sample", "The reverse process: images out of noise");
  add_sampling(cmd_sample, sample);
  cmd_sample->add_option("-n", sample.n, "Images (with --prompt all: per class)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_sample->footer(R"(Examples:
  gdiffuse sample ddpm.st --prompt "ankle boot" --guidance 3 -n 16 -o boots.png
  gdiffuse sample ddpm.st --prompt all -n 8 -o classes.png          # a row per class
  gdiffuse sample ddpm.st --prompt sneaker --trajectory traj.png -n 4 -o out.png
  gdiffuse sample ddpm.st --prompt sneaker --gif reverse.gif --scale 3 -n 4 -o out.png
  gdiffuse sample ddpm.st --prompt list)");

  auto* cmd_denoise = app.add_subcommand("denoise", "Image to image: noise an image to step t, then denoise it");
  add_sampling(cmd_denoise, den);
  cmd_denoise->add_option("image", den.input, "A PNG of the model's size")->required();
  cmd_denoise->add_option("--t", den.t, "How far to noise it (0..T): higher keeps less of the image")->required();
  cmd_denoise->add_option("-n", den.n, "Variations")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd_denoise->footer(R"(Examples:
  gdiffuse denoise ddpm.st shirt.png --t 300 -n 8 -o variations.png
  gdiffuse denoise ddpm.st shirt.png --t 600 --prompt dress -o dress.png)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw UsageError(e.what());
  }
  if (*cmd_noise) return run_noise(noise);
  if (*cmd_train) {
    train.steps_given = cmd_train->count("--steps") > 0;
    if (s.min_lr > s.lr) throw UsageError("--min-lr is above --lr");
    return run_train(train);
  }
  if (*cmd_sample) return run_sample(sample, false);
  return run_sample(den, true);
}

}  // namespace

int main(int argc, char** argv) {
  gen::sleep_when_idle(argv);
  return gen::tool_main("gdiffuse", argc, argv, run);
}
