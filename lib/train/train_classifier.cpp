#include "train/train_classifier.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "core/cluster.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "io/image_files.h"
#include "models/classifier.h"
#include "models/classifier_checkpoint.h"
#include "models/classifier_training.h"
#include "tensor/graph.h"
#include "tensor/shards.h"
#include "tensor/optimizer.h"
#include "train/loop.h"
#include "train/train_state.h"
#include "train/training_images.h"

namespace gen {

SettingList classifier_setting_list(ClassifierTrainSettings& s) {
  SettingList list;
  list.add("--batch", s.batch, 1, 1 << 14, "Images per step");
  list.add("--decay-steps", s.decay_steps, 0, int64_t{1} << 30, "Step where the cosine reaches --min-lr (0: the last)");
  list.add("--lr", s.lr, 0, 1e6, "Peak learning rate (AdamW)", Bound::open_low);
  list.add("--min-lr", s.min_lr, 0, 1e6, "Final learning rate (cosine)");
  list.add("--warmup", s.warmup, 0, int64_t{1} << 30, "Linear warmup steps");
  list.add("--weight-decay", s.weight_decay, 0, 10, "AdamW weight decay (weights, not biases)");
  list.add("--grad-clip", s.grad_clip, 0, 1e6, "Clip gradients to this global norm (0: off)");
  list.add_flag("--no-flip", s.no_flip, "No random left-right mirroring of training images");
  list.add("--shift", s.shift, 0, 64, "Random shifts of training images by up to N pixels (0: none)");
  list.add("--limit", s.limit, 0, int64_t{1} << 31, "Use only the first N training images (0: all)");
  list.add("--test-limit", s.test_limit, 0, int64_t{1} << 31, "Use only the first N test images (0: all)");
  list.add_check([&s] { return s.min_lr > s.lr ? std::string("--min-lr is above --lr") : std::string(); });
  return list;
}

namespace {

void check_dataset(const Dataset& set, const std::string& name, const ClassifierConfig& c) {
  if (set.width != c.image_size || set.height != c.image_size || set.channels != c.image_channels)
    throw Error(name, fmt::format("images are {}x{} {}; the classifier wants {}x{} {}", set.width, set.height,
                                  set.channels == 1 ? "gray" : "RGB", c.image_size, c.image_size,
                                  c.image_channels == 1 ? "gray" : "RGB"));
}

class ClassifierTask : public TrainTask {
 public:
  ClassifierTask(ClassifierTrainJob& job, const ClassifierModel& info, const Dataset& set, const Dataset& test,
                 int64_t total, std::string fingerprint)
      : job_(job), s_(job.settings), info_(info), set_(set), test_(test), total_(total),
        fingerprint_(std::move(fingerprint)), model_(info.net), rng_(job.run.seed),
        adam_(model_.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = s_.weight_decay}),
        order_(job.run.seed, set.count) {
    const int64_t P = info.net.image_channels * info.net.image_size * info.net.image_size;
    x_.resize(static_cast<size_t>(s_.batch * P));
    labels_.resize(static_cast<size_t>(s_.batch));
    // Shards of at least 32 images, fixed by the batch (run_shards): the same bytes on any threads
    // and ranks (at 16, the default batch of 128 in 8 shards, steps were 12% slower here). An epoch's last, shorter batch keeps the shards' places (some fuller than others,
    // or empty), each shard's loss weighted by its share.
    model_.params().set_shards(batch_shards(s_.batch, 32), &cluster());
    arenas_.resize(static_cast<size_t>(model_.params().local_shards()));
    if (test.count > 0) test_x_ = dataset_floats(test);
  }
  Classifier& model() { return model_; }
  Rng& rng() { return rng_; }
  AdamW& adam() { return adam_; }
  double test_accuracy = -1;  // -1: not measured

  int64_t per_epoch() const { return (set_.count + s_.batch - 1) / s_.batch; }

  std::vector<Column> columns() const override {
    return {figure_column("epoch", "{:.4f}"),  figure_column("lr", "{:.6e}"),
            loss_column("loss", "loss"),       figure_column("accuracy", "{:.4f}"),
            figure_column("grad_norm", "{:.4f}"), occasional_column("test_accuracy", "{:.4f}")};
  }

  StepResult step(int64_t step, bool /*last*/) override {
    const int64_t B = s_.batch, C = info_.net.image_channels, S = info_.net.image_size, P = C * S * S;
    const int64_t epoch = step / per_epoch(), in_epoch = step % per_epoch();
    const std::vector<uint32_t>& order = order_.of(epoch);
    const int64_t first = in_epoch * B, n = std::min<int64_t>(B, set_.count - first);
    for (int64_t b = 0; b < n; ++b) {
      const uint32_t i = order[static_cast<size_t>(first + b)];
      const bool flip = !s_.no_flip && rng_.below(2) == 1;
      const int span = static_cast<int>(2 * s_.shift + 1), shift = static_cast<int>(s_.shift);
      const int dx = s_.shift > 0 ? static_cast<int>(rng_.below(static_cast<uint32_t>(span))) - shift : 0;
      const int dy = s_.shift > 0 ? static_cast<int>(rng_.below(static_cast<uint32_t>(span))) - shift : 0;
      augment(set_.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(C), flip, dx, dy,
              x_.data() + b * P);
      labels_[static_cast<size_t>(b)] = set_.labels[i];
    }
    const int64_t K = model_.params().shards(), Bs = B / K;
    auto size_of = [&](int64_t k) { return std::clamp<int64_t>(n - k * Bs, 0, Bs); };
    const std::vector<ShardFigures> parts = run_shards(
        model_.params(), arenas_, true,
        [&](int k, Graph& g) {
          const int64_t m = size_of(k);
          if (m == 0) return ShardFigures{};  // past the end of a short batch: no gradient
          Classifier::Output out = model_.forward(g, g.constant({m, C, S, S}, x_.data() + k * Bs * P), k);
          const float weight = static_cast<float>(m * K) / static_cast<float>(n);
          const Graph::Loss part = g.cross_entropy(out.logits, labels_.data() + k * Bs, weight);
          return ShardFigures{part.mean, static_cast<double>(part.correct)};
        },
        &cluster());
    struct {
      double mean = 0;
      int64_t correct = 0;
    } loss;
    for (int64_t k = 0; k < K; ++k) {
      loss.mean += parts[static_cast<size_t>(k)].loss * static_cast<double>(size_of(k)) / static_cast<double>(n);
      loss.correct += static_cast<int64_t>(parts[static_cast<size_t>(k)].extra);
    }
    const float lr = cosine_lr(step, {.lr = s_.lr, .min_lr = s_.min_lr, .warmup = s_.warmup, .decay_steps = s_.decay_steps});
    StepResult r;
    float norm = NAN;
    if (std::isfinite(loss.mean)) {
      norm = grad_norm(model_.params());
      adam_.step(model_.params(), lr, clip_scale(norm, s_.grad_clip));
    }
    epoch_loss_ += loss.mean * static_cast<double>(n);
    epoch_right_ += static_cast<double>(loss.correct);
    epoch_seen_ += static_cast<double>(n);
    const int64_t done = step + 1;
    double test_field = NAN;
    if (done % per_epoch() == 0 || done == total_) {
      std::string line = fmt::format("epoch {} (step {}): train loss {:.4f}, accuracy {:.1f}%", epoch + 1, done,
                                     epoch_loss_ / epoch_seen_, 100 * epoch_right_ / epoch_seen_);
      if (!test_x_.empty()) {
        test_field = test_accuracy = gen::accuracy(model_, test_x_, test_);
        line += fmt::format("; test accuracy {:.2f}%", 100 * test_accuracy);
      }
      r.messages.push_back(line);
      epoch_loss_ = epoch_right_ = epoch_seen_ = 0;
    }
    r.status = fmt::format("epoch {}", epoch + 1);
    r.values = {static_cast<double>(done) / static_cast<double>(per_epoch()), lr, loss.mean,
                static_cast<double>(loss.correct) / static_cast<double>(n), norm, test_field};
    return r;
  }

  void plan(int64_t steps) override { plan_schedule(steps, total_, s_.decay_steps); }

  void save(const std::string& path, int64_t steps, bool optimizer) override {
    TrainState state{.steps = total_, .settings = classifier_setting_list(s_).to_json(), .data = fingerprint_,
                     .rng = rng_.save(), .optimizers = {}};
    classifier_save(path, info_, model_.params().values(), steps, job_.run.seed, test_accuracy,
                    optimizer ? &state : nullptr, &adam_);
  }

  std::string summary() override {
    return test_accuracy >= 0 ? fmt::format("test accuracy {:.2f}% ({} images)", 100 * test_accuracy, test_.count) : "";
  }

 private:
  ClassifierTrainJob& job_;
  ClassifierTrainSettings& s_;
  const ClassifierModel& info_;
  const Dataset& set_;
  const Dataset& test_;
  int64_t total_;
  std::string fingerprint_;
  Classifier model_;
  Rng rng_;
  AdamW adam_;
  EpochOrder order_;
  std::vector<Arena> arenas_;
  std::vector<float> x_, test_x_;
  std::vector<uint32_t> labels_;
  double epoch_loss_ = 0, epoch_right_ = 0, epoch_seen_ = 0;
};

}  // namespace

void train_classifier(ClassifierTrainJob& job) {
  use_threads(job.run.threads);
  check_outputs(job.run);
  RunOptions& run = job.run;
  ClassifierTrainSettings& s = job.settings;
  ClassifierModel info;
  std::optional<ClassifierCheckpoint> checkpoint;
  int64_t step = 0, resumed_total = 0;
  if (!run.resume.empty()) {
    checkpoint = classifier_load(run.resume);
    SettingList settings = classifier_setting_list(s);
    info = checkpoint->model;
    step = checkpoint->step;
    resumed_total = resume_from(checkpoint->train, step, checkpoint->seed, settings, run);
  }

  // The data, checked against the model.
  ImageData data = load_training_images(job.data, job.labels, s.limit, "the classifier");
  if (!data.set.labelled())
    throw Error(job.data, "has no labels: training needs labelled images (fashion-mnist, or IDX files with --labels)");
  const std::string fingerprint = data_fingerprint(data.set);
  if (data.class_names.size() < 2) throw Error(job.data, "the labels name fewer than 2 classes");
  if (!checkpoint) {
    info.net.image_channels = data.set.channels;
    info.net.image_size = data.set.height;
    info.net.channels = parse_int_list(job.channels, "--channels", "32,64,128");
    info.net.features = job.features;
    info.net.classes = static_cast<int64_t>(data.class_names.size());
    info.net.pool = job.pool;
    info.class_names = data.class_names;
    try {
      info.net.validate();
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
  } else {
    check_resumed_images(data.set, job.data, info.net.image_size, info.net.image_channels, fingerprint,
                         checkpoint->train->data, run.resume);
  }
  check_labels(data.set, job.labels.empty() ? job.data : job.labels, info.net.classes);

  // The test set: --test, or Fashion-MNIST's own when training on it.
  std::string test_spec = job.test;
  if (test_spec.empty() && is_fashion_mnist(job.data) && job.data != "fashion-mnist:test")
    test_spec = "fashion-mnist:test";
  ImageData test;
  if (!test_spec.empty()) {
    test = load_image_data(test_spec, job.test_labels);
    limit_images(test.set, s.test_limit);
    if (!test.set.labelled()) throw Error(test_spec, "has no labels: a test set needs them (--test-labels)");
    check_dataset(test.set, test_spec, info.net);
    check_labels(test.set, test_spec, info.net.classes);
  }

  const int64_t B = s.batch, S = info.net.image_size;
  const int64_t per_epoch = (data.set.count + B - 1) / B;
  const int64_t total = checkpoint ? resumed_total : run.steps_given ? run.steps : job.epochs * per_epoch;
  if (s.decay_steps == 0) s.decay_steps = total;

  ClassifierTask task(job, info, data.set, test.set, total, fingerprint);
  if (checkpoint) {
    std::copy(checkpoint->weights.begin(), checkpoint->weights.end(), task.model().params().values());
    restore(task.adam(), checkpoint->train->optimizers[0]);
    task.rng().restore(checkpoint->train->rng);
    task.test_accuracy = checkpoint->test_accuracy;
    checkpoint.reset();
  } else {
    task.model().init(task.rng());
  }

  const std::string channels = format_int_list(info.net.channels);
  LoopOptions loop(run, step, total, static_cast<double>(B), "img");
  loop.banner = fmt::format("{} parameters (channels {}, {} features, {} classes), {} training images of {}x{}{}",
                            task.model().params().size(), channels, info.net.features, info.net.classes,
                            data.set.count, S, S, test.set.count ? fmt::format(", {} test images", test.set.count) : "");
  loop.batch = fmt::format("{} images ({} per epoch), {:.2f} GFLOP per step", B, per_epoch,
                           3 * info.net.flops_per_image() * static_cast<double>(B) / 1e9);
  loop.plot_title = fmt::format("gscore: classifier {}, batch {}", channels, B);
  loop.plot_y_label = "loss (cross-entropy)";
  loop.plan_at = s.warmup;  // the warmup does not depend on the total (the epochs' test accuracy: not counted)
  train_loop(task, loop);
}

void add_classifier_train_options(CLI::App& app, ClassifierTrainJob& job) {
  add_image_data_options(app, job.data, job.labels, /*folders=*/false);
  app.add_option("--test", job.test,
                 "Test set measured after every epoch (default: fashion-mnist:test when training on "
                 "fashion-mnist)");
  app.add_option("--test-labels", job.test_labels, "IDX labels for an IDX --test file");
  add_run_options(app, job.run,
                  {.output = "classifier.st",
                   .steps = "Optimizer steps in all, instead of --epochs (with --resume: the new total; default "
                            "there: the saved one)",
                   .seed = "Seed for initialization, shuffling and augmentation"});
  app.add_option("--channels", job.channels, "Convolution channels per level (stride 2 from the second)")
      ->capture_default_str();
  app.add_option("--features", job.features, "Width of the penultimate layer (the FID features)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_flag("--pool", job.pool, "Global average pooling instead of flattening before the features");
  app.add_option("--epochs", job.epochs, "Passes over the training images")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  classifier_setting_list(job.settings).register_options(app);
}

void train_classifier_command(const CLI::App& app, ClassifierTrainJob& job) {
  finish_train_options(app, job.run, classifier_setting_list(job.settings),
                       {"--channels", "--features", "--pool", "--epochs"});
  train_classifier(job);
}

}  // namespace gen
