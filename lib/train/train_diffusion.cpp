#include "train/train_diffusion.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "core/cluster.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "diffusion/diffusion.h"
#include "diffusion/guidance.h"
#include "diffusion/training.h"
#include "io/image_files.h"
#include "models/unet.h"
#include "models/unet_checkpoint.h"
#include "tensor/graph.h"
#include "tensor/shards.h"
#include "tensor/optimizer.h"
#include "train/loop.h"
#include "train/train_state.h"
#include "train/training_images.h"

namespace gen {

SettingList diffusion_setting_list(DiffusionTrainSettings& s) {
  SettingList list;
  list.add("--batch", s.batch, 1, 1 << 14, "Images per step");
  list.add("--decay-steps", s.decay_steps, 0, int64_t{1} << 30,
           "Step where the cosine schedule reaches --min-lr (0: --steps)");
  list.add("--lr", s.lr, 0, 1e6, "Peak learning rate (AdamW)", Bound::open_low);
  list.add("--min-lr", s.min_lr, 0, 1e6, "Final learning rate (cosine)");
  list.add("--warmup", s.warmup, 0, int64_t{1} << 30, "Linear warmup steps");
  list.add("--weight-decay", s.weight_decay, 0, 10, "AdamW weight decay");
  list.add("--grad-clip", s.grad_clip, 0, 1e6, "Clip gradients to this global norm (0: off)");
  list.add("--ema", s.ema, 0, 0.99999, "Decay of the weights' moving average used for sampling");
  list.add("--cond-drop", s.cond_drop, 0, 1, "Share of labels dropped (for classifier-free guidance)");
  list.add("--limit", s.limit, 0, int64_t{1} << 31, "Use only the first N images (0: all)");
  list.add_check([&s] { return s.min_lr > s.lr ? std::string("--min-lr is above --lr") : std::string(); });
  return list;
}

namespace {

class DiffusionTask : public TrainTask {
 public:
  DiffusionTask(DiffusionTrainJob& job, const DiffusionModel& info, const Dataset& set, int64_t total,
                std::string fingerprint)
      : job_(job), s_(job.settings), info_(info), set_(set), total_(total), fingerprint_(std::move(fingerprint)),
        schedule_(info.schedule, info.T), model_(info.unet), rng_(job.run.seed),
        adam_(model_.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = s_.weight_decay}) {
    // Each step's batch in shards fixed by the batch, their gradients added in a fixed tree
    // (run_shards): the same seed and data give the same checkpoint on any threads and ranks.
    model_.params().set_shards(batch_shards(s_.batch, 16), &cluster());
    arenas_.resize(static_cast<size_t>(model_.params().local_shards()));
  }
  Unet& model() { return model_; }
  Rng& rng() { return rng_; }
  AdamW& adam() { return adam_; }
  std::vector<float>& ema() { return ema_; }

  std::vector<Column> columns() const override {
    return {figure_column("lr", "{:.6e}"), loss_column("loss", "loss"), figure_column("grad_norm", "{:.4f}")};
  }

  StepResult step(int64_t step, bool /*last*/) override {
    const int64_t B = s_.batch, C = info_.unet.image_channels, S = info_.unet.image_size;
    const int64_t shards = model_.params().shards(), Bs = B / shards, P = C * S * S;
    diffusion_batch(set_, schedule_, info_.unet.classes, s_.cond_drop, rng_, B, batch_);
    const double loss = mean_loss(run_shards(
        model_.params(), arenas_, true,
        [&](int shard, Graph& g) {
          const int64_t b0 = shard * Bs;
          Tensor pred = model_.forward(g, g.constant({Bs, C, S, S}, batch_.xt.data() + b0 * P), batch_.t.data() + b0,
                                       batch_.labels.data() + b0, shard);
          return ShardFigures{g.mse(pred, g.constant({Bs, C, S, S}, batch_.eps.data() + b0 * P)), 0};
        },
        &cluster()));
    const float lr = cosine_lr(step, {.lr = s_.lr, .min_lr = s_.min_lr, .warmup = s_.warmup, .decay_steps = s_.decay_steps});
    const float norm = grad_norm(model_.params());
    if (std::isfinite(loss)) {
      adam_.step(model_.params(), lr, clip_scale(norm, s_.grad_clip));
      ema_update(ema_.data(), model_.params().values(), ema_.size(), step, s_.ema);
    }
    StepResult r;
    r.values = {lr, loss, norm};
    return r;
  }

  void plan(int64_t steps) override { plan_schedule(steps, total_, s_.decay_steps); }

  void save(const std::string& path, int64_t steps, bool optimizer) override {
    TrainState state{.steps = total_, .settings = diffusion_setting_list(s_).to_json(), .data = fingerprint_,
                     .rng = rng_.save(), .optimizers = {}};
    diffusion_save(path, info_, ema_, steps, job_.run.seed, optimizer ? &state : nullptr, model_.params().values(),
                   &adam_);
  }

  // A sample grid from fixed noise with the EMA weights: one column per class (or 10 images
  // unconditioned), DDIM 50 steps, guidance 3.
  void preview(const std::string& path) override {
    Unet model(info_.unet);
    std::copy(ema_.begin(), ema_.end(), model.params().values());
    const int64_t classes = info_.unet.classes, per_class = 4;
    const int64_t n = classes > 0 ? classes * per_class : 40;
    const int64_t P = info_.unet.image_channels * info_.unet.image_size * info_.unet.image_size;
    std::vector<uint32_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back(classes > 0 ? static_cast<uint32_t>(i % classes) : 0);
    GuidedDenoiser denoiser(model, labels, classes > 0 ? 3.0 : 1.0);
    std::vector<Rng> rngs = image_streams(job_.run.seed + 11, 0, n);  // the same noise at every preview
    std::vector<float> x(static_cast<size_t>(n * P));
    for (int64_t i = 0; i < n * P; ++i) x[static_cast<size_t>(i)] = rngs[static_cast<size_t>(i / P)].normal();
    DiffusionSampler sampler{.steps = 50, .eta = 0, .clamp = true};
    sampler.run(schedule_, x.data(), n, P, info_.T - 1,
                [&](const float* xt, int64_t t, float* eps) { denoiser(xt, t, eps, n); }, rngs);
    write_images(path, tiles_from_floats(x.data(), n, info_.unet.image_channels, info_.unet.image_size),
                 classes > 0 ? fmt::format("{}x{}", classes, per_class) : "10x4", 2);
  }

 private:
  DiffusionTrainJob& job_;
  DiffusionTrainSettings& s_;
  const DiffusionModel& info_;
  const Dataset& set_;
  int64_t total_;
  std::string fingerprint_;
  Schedule schedule_;
  Unet model_;
  Rng rng_;
  AdamW adam_;
  std::vector<float> ema_;
  std::vector<Arena> arenas_;
  DiffusionBatch batch_;
};

}  // namespace

void train_diffusion(DiffusionTrainJob& job) {
  use_threads(job.run.threads);
  check_outputs(job.run);
  RunOptions& run = job.run;
  DiffusionTrainSettings& s = job.settings;
  DiffusionModel info;
  std::optional<DiffusionCheckpoint> checkpoint;
  int64_t step = 0, total = run.steps;
  if (!run.resume.empty()) {
    checkpoint = diffusion_load(run.resume);
    SettingList settings = diffusion_setting_list(s);
    info = checkpoint->model;
    step = checkpoint->step;
    total = resume_from(checkpoint->train, step, checkpoint->seed, settings, run);
  }

  // The data, checked against the model.
  ImageData data = load_training_images(job.data, job.labels, s.limit, "the U-Net");
  const std::string fingerprint = data_fingerprint(data.set);
  if (!checkpoint) {
    info.unet.image_channels = data.set.channels;
    info.unet.image_size = data.set.height;
    info.unet.channels = parse_int_list(job.channels, "--channels", "32,64,128");
    info.unet.groups = job.groups;
    info.unet.time_dim = job.time_dim;
    info.unet.attention = job.attention;
    const bool conditional = data.set.labelled() && !job.unconditional;
    info.unet.classes = conditional ? static_cast<int64_t>(data.class_names.size()) : 0;
    if (conditional) info.class_names = data.class_names;
    info.schedule = Schedule::parse(job.schedule);
    info.T = job.T;
    try {
      info.unet.validate();
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
  }
  check_labels(data.set, job.data, info.unet.classes);
  if (checkpoint)
    check_resumed_images(data.set, job.data, info.unet.image_size, info.unet.image_channels, fingerprint,
                         checkpoint->train->data, run.resume);
  if (s.decay_steps == 0) s.decay_steps = total;

  DiffusionTask task(job, info, data.set, total, fingerprint);
  if (checkpoint) {
    std::copy(checkpoint->raw.begin(), checkpoint->raw.end(), task.model().params().values());
    restore(task.adam(), checkpoint->train->optimizers[0]);
    task.rng().restore(checkpoint->train->rng);
    task.ema().assign(checkpoint->ema.begin(), checkpoint->ema.end());
    checkpoint.reset();
  } else {
    task.model().init(task.rng());
    const float* w = task.model().params().values();
    task.ema().assign(w, w + task.model().params().size());
  }

  const int64_t B = s.batch, S = info.unet.image_size;
  const std::string channels = format_int_list(info.unet.channels);
  LoopOptions loop(run, step, total, static_cast<double>(B), "img");
  loop.banner = fmt::format("{} parameters (channels {}, {} classes{}), {} images of {}x{}, {} schedule, T {}",
                            task.model().params().size(), channels, info.unet.classes,
                            info.unet.attention ? ", attention" : "", data.set.count, S, S,
                            Schedule::name(info.schedule), info.T);
  loop.batch = fmt::format("{} images, {:.2f} GFLOP per step", B,
                           3 * info.unet.flops_per_image() * static_cast<double>(B) / 1e9);
  loop.plot_title = fmt::format("gdiffuse: U-Net {}, batch {}", channels, B);
  loop.plot_y_label = "loss (mean squared error of the predicted noise)";
  loop.plan_at = s.warmup;  // the warmup does not depend on the total
  train_loop(task, loop);
}

void add_diffusion_train_options(CLI::App& app, DiffusionTrainJob& job) {
  job.run.steps = 4000;
  add_image_data_options(app, job.data, job.labels, /*folders=*/true);
  add_run_options(app, job.run,
                  {.output = "ddpm.st",
                   .seed = "Seed for initialization, batches and noise",
                   .preview = "A sample grid from fixed noise (PNG), at the end and every --preview-every steps; p-%05d.png keeps each, numbered by step"});
  app.add_option("--channels", job.channels, "U-Net channels per level (the image halves between levels)")
      ->capture_default_str();
  app.add_option("--groups", job.groups, "GroupNorm groups")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--time-dim", job.time_dim, "Width of the time embedding")
      ->check(CLI::Range(2, 65536))
      ->capture_default_str();
  app.add_flag("--attention", job.attention, "Self-attention over the pixels after the middle block (7x7)");
  app.add_option("--schedule", job.schedule, "Noise schedule: linear or cosine")->capture_default_str();
  app.add_option("--T", job.T, "Diffusion steps")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_flag("--unconditional", job.unconditional, "Ignore the labels (no guidance later)");
  diffusion_setting_list(job.settings).register_options(app);
}

void train_diffusion_command(const CLI::App& app, DiffusionTrainJob& job) {
  finish_train_options(app, job.run, diffusion_setting_list(job.settings),
                       {"--channels", "--groups", "--time-dim", "--attention", "--schedule", "--T", "--unconditional"});
  train_diffusion(job);
}

}  // namespace gen
