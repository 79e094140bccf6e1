// gscore: an image classifier and the evaluator of generated images. train (a small CNN on
// Fashion-MNIST), classify (a label and a confidence per image), fid (the Fréchet distance of
// the classifier's penultimate features between samples and a reference set, with the
// samples' class histogram).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
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
#include "eval/fid.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/image_files.h"
#include "models/checkpoint.h"
#include "models/classifier.h"
#include "models/classifier_checkpoint.h"
#include "tensor/optimizer.h"

namespace {

using gen::Error;
using gen::UsageError;

// ---------------------------------------------------------------------------------------------
// Data sets and image files.

std::string describe_wanted(const gen::ClassifierConfig& c) {
  return fmt::format("{}x{} {}", c.image_size, c.image_size, c.image_channels == 1 ? "gray" : "RGB");
}

void check_dataset(const gen::Dataset& set, const std::string& name, const gen::ClassifierConfig& c) {
  if (set.width != c.image_size || set.height != c.image_size || set.channels != c.image_channels)
    throw Error(name, fmt::format("images are {}x{} {}; the classifier wants {}", set.width, set.height,
                                  set.channels == 1 ? "gray" : "RGB", describe_wanted(c)));
}

// PNG files given on the command line, a folder standing for its *.png files (sorted by name).
std::vector<std::string> expand_paths(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (arg != "-" && fs::is_directory(arg, ec)) {
      std::vector<std::string> found;
      fs::directory_iterator it(arg, ec);
      if (ec) throw Error(arg, gen::system_reason("cannot list", ec.value()));
      for (; it != fs::directory_iterator(); it.increment(ec)) {
        std::string file = it->path().filename().string();
        std::string ext = file.size() > 4 ? file.substr(file.size() - 4) : "";
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
        std::error_code type_ec;
        if (ext == ".png" && it->is_regular_file(type_ec)) found.push_back(it->path().string());
      }
      if (ec) throw Error(arg, gen::system_reason("cannot list", ec.value()));
      if (found.empty()) throw Error(arg, "no .png files in the folder");
      std::sort(found.begin(), found.end());
      paths.insert(paths.end(), found.begin(), found.end());
    } else {
      paths.push_back(arg);
    }
  }
  return paths;
}

// Each PNG, checked to be of the classifier's size, as floats one after another.
std::vector<float> read_images(const std::vector<std::string>& paths, const gen::ClassifierConfig& c) {
  const int64_t P = c.image_channels * c.image_size * c.image_size;
  std::vector<float> x(static_cast<size_t>(P) * paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    gen::Image image = gen::read_png(paths[i]);
    if (image.width != c.image_size || image.height != c.image_size || image.channels != c.image_channels)
      throw Error(paths[i], fmt::format("the image is {}; the classifier wants {}", gen::describe(image),
                                        describe_wanted(c)));
    gen::to_floats(image, x.data() + static_cast<int64_t>(i) * P);
  }
  return x;
}

uint32_t expected_class(const std::vector<std::string>& names, const std::string& name) {
  int k = gen::find_class(names, name);
  if (k >= 0) return static_cast<uint32_t>(k);
  throw UsageError(fmt::format("--expect '{}': not a class of this classifier; the classes are: {}", name,
                               gen::class_list(names)));
}

// The index of the largest of k probabilities.
int64_t argmax(const float* p, int64_t k) { return std::max_element(p, p + k) - p; }

// ---------------------------------------------------------------------------------------------
// train

struct Settings {
  int64_t batch = 128;
  int64_t steps = 0;        // 0: epochs x batches per epoch
  int64_t decay_steps = 0;  // 0: = steps
  float lr = 2e-3f;
  float min_lr = 2e-5f;
  int64_t warmup = 100;
  float weight_decay = 0.05f;
  float grad_clip = 0.0f;
  bool flip = true;
  int64_t shift = 1;
  int64_t images = 0;  // the training set's size (resume checks it)

  nlohmann::json to_json() const {
    return {{"batch", batch},   {"decay_steps", decay_steps},   {"lr", lr},   {"min_lr", min_lr},
            {"warmup", warmup}, {"weight_decay", weight_decay}, {"grad_clip", grad_clip},
            {"flip", flip},     {"shift", shift},               {"images", images}};
  }
  void from_json(const nlohmann::json& j) {
    batch = j.at("batch");
    decay_steps = j.at("decay_steps");
    lr = j.at("lr");
    min_lr = j.at("min_lr");
    warmup = j.at("warmup");
    weight_decay = j.at("weight_decay");
    grad_clip = j.at("grad_clip");
    flip = j.at("flip");
    shift = j.at("shift");
    images = j.at("images");
  }
};

struct TrainArgs {
  std::string data = "fashion-mnist", labels, test, test_labels, output, resume, log, channels = "32,64,128";
  int64_t features = 256, epochs = 5, limit = 0, test_limit = 0;
  bool pool = false, no_flip = false, no_optimizer = false, quiet = false, steps_given = false;
  Settings settings;
  uint64_t seed = 1;
  int threads = gen::default_threads();
};

// A training image, augmented: mirrored left to right (if flip) and shifted by (dx, dy) pixels
// with black coming in at the edges. In: HWC bytes; out: CHW floats in [-1, 1].
void augment(const uint8_t* hwc, int S, int C, bool flip, int dx, int dy, float* out) {
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        int sx = x - dx, sy = y - dy;
        if (flip) sx = S - 1 - sx;
        float v = -1.0f;
        if (sx >= 0 && sx < S && sy >= 0 && sy < S) v = hwc[(sy * S + sx) * C + c] / 127.5f - 1.0f;
        out[(c * S + y) * S + x] = v;
      }
}

// The share of images whose most likely class is their label.
double accuracy(gen::Classifier& model, const std::vector<float>& x, const gen::Dataset& set) {
  if (set.count == 0) return 0;
  gen::Classified out = gen::classify(model, x.data(), set.count, true, false);
  const int64_t K = model.config().classes;
  int64_t right = 0;
  for (int i = 0; i < set.count; ++i) right += argmax(out.probs.data() + i * K, K) == set.labels[static_cast<size_t>(i)];
  return static_cast<double>(right) / set.count;
}

int run_train(TrainArgs& args) {
  gen::GracefulStop graceful;
  gen::use_threads(args.threads);
  Settings& s = args.settings;
  gen::ClassifierModel info;
  std::optional<gen::ClassifierCheckpoint> checkpoint;
  int64_t step = 0;
  if (!args.resume.empty()) {
    checkpoint = gen::classifier_load(args.resume);
    gen::resume_settings(*checkpoint, args.resume, s);
    info = checkpoint->model;
    step = checkpoint->step;
    args.seed = checkpoint->seed;
    if (!args.steps_given) s.steps = s.decay_steps;
    if (s.steps <= step)
      throw UsageError(fmt::format("the checkpoint is at step {} already: give --steps above it", step));
  }

  // The data, checked against the model.
  gen::ImageData data = gen::load_image_data(args.data, args.labels);
  gen::limit_images(data.set, args.limit);
  if (!data.set.labelled())
    throw Error(args.data, "has no labels: training needs labelled images (fashion-mnist, or IDX files with --labels)");
  if (data.set.height != data.set.width)
    throw Error(args.data, fmt::format("images are {}x{}: the classifier wants square images", data.set.width,
                                       data.set.height));
  if (data.class_names.size() < 2) throw Error(args.data, "the labels name fewer than 2 classes");
  if (!checkpoint) {
    info.net.image_channels = data.set.channels;
    info.net.image_size = data.set.height;
    info.net.channels = gen::parse_int_list(args.channels, "--channels", "32,64,128");
    info.net.features = args.features;
    info.net.classes = static_cast<int64_t>(data.class_names.size());
    info.net.pool = args.pool;
    info.class_names = data.class_names;
    try {
      info.net.validate();
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
    s.images = data.set.count;
    s.flip = !args.no_flip;
  } else {
    check_dataset(data.set, args.data, info.net);
    if (s.images != data.set.count)
      throw Error(args.data, fmt::format("has {} images but the checkpoint was trained on {}: resume on the same "
                                         "data (and --limit)", data.set.count, s.images));
  }
  for (uint8_t l : data.set.labels)
    if (l >= info.net.classes)
      throw Error(args.labels.empty() ? args.data : args.labels,
                  fmt::format("label {} is outside the model's {} classes", l, info.net.classes));

  // The test set: --test, or Fashion-MNIST's own when training on it.
  std::string test_spec = args.test;
  if (test_spec.empty() && gen::is_fashion_mnist(args.data) && args.data != "fashion-mnist:test")
    test_spec = "fashion-mnist:test";
  gen::ImageData test;
  std::vector<float> test_x;
  if (!test_spec.empty()) {
    test = gen::load_image_data(test_spec, args.test_labels);
    gen::limit_images(test.set, args.test_limit);
    if (!test.set.labelled()) throw Error(test_spec, "has no labels: a test set needs them (--test-labels)");
    check_dataset(test.set, test_spec, info.net);
    for (uint8_t l : test.set.labels)
      if (l >= info.net.classes)
        throw Error(test_spec, fmt::format("label {} is outside the model's {} classes", l, info.net.classes));
    test_x = gen::dataset_floats(test.set);
  }

  const int64_t B = s.batch, C = info.net.image_channels, S = info.net.image_size, P = C * S * S;
  const int64_t per_epoch = (data.set.count + B - 1) / B;
  if (!checkpoint) {
    if (s.steps == 0) s.steps = args.epochs * per_epoch;
    if (s.decay_steps == 0) s.decay_steps = s.steps;
  }

  gen::Classifier model(info.net);
  gen::Rng rng(args.seed);
  gen::AdamW adam(model.params().size(), {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                          .weight_decay = s.weight_decay});
  double test_accuracy = -1;
  if (checkpoint) {
    auto& train = *checkpoint->train;
    std::copy(checkpoint->weights.begin(), checkpoint->weights.end(), model.params().values());
    adam.m() = train.m;
    adam.v() = train.v;
    adam.set_steps(train.adam_steps);
    rng.restore(train.rng);
    test_accuracy = checkpoint->test_accuracy;
  } else {
    model.init(rng);
  }

  auto save = [&](int64_t at) {
    const float* w = model.params().values();
    std::vector<float> weights(w, w + model.params().size());
    if (args.no_optimizer) {
      gen::classifier_save(args.output, info, weights, at, args.seed, test_accuracy, nullptr);
      return;
    }
    gen::ClassifierTrainState state;
    state.m = adam.m();
    state.v = adam.v();
    state.adam_steps = adam.steps();
    state.rng = rng.save();
    state.settings = s.to_json().dump();
    gen::classifier_save(args.output, info, weights, at, args.seed, test_accuracy, &state);
  };

  std::optional<gen::Output> log;
  if (!args.log.empty()) {
    log.emplace(args.log, gen::Output::Mode::direct);
    log->write("step\tepoch\tlr\tloss\taccuracy\tgrad_norm\timages_per_s\tseconds\ttest_accuracy\n");
  }
  if (!args.quiet)
    std::fprintf(stderr,
                 "gscore: %zu parameters (channels %s, %lld features, %lld classes), %d training images of %lldx%lld"
                 "%s; %lld steps of %lld images (%lld per epoch), %.2f GFLOP per step\n",
                 model.params().size(), args.channels.c_str(), static_cast<long long>(info.net.features),
                 static_cast<long long>(info.net.classes), data.set.count, static_cast<long long>(S),
                 static_cast<long long>(S),
                 test.set.count ? fmt::format(", {} test images", test.set.count).c_str() : "",
                 static_cast<long long>(s.steps), static_cast<long long>(B), static_cast<long long>(per_epoch),
                 3 * info.net.flops_per_image() * static_cast<double>(B) / 1e9);

  gen::Arena arena;
  std::vector<float> x(static_cast<size_t>(B * P));
  std::vector<uint32_t> labels(static_cast<size_t>(B));
  std::vector<uint32_t> order;
  int64_t order_epoch = -1;
  gen::Progress progress("train", static_cast<uint64_t>(s.steps), "", args.quiet);
  progress.set_start(static_cast<uint64_t>(step));
  auto start = std::chrono::steady_clock::now();
  const int64_t first_step = step;
  double epoch_loss = 0, epoch_right = 0, epoch_seen = 0;
  while (step < s.steps) {
    // Each epoch visits the images in its own order, a shuffle drawn from the seed and the epoch
    // alone, so that a resumed run sees the same batches.
    const int64_t epoch = step / per_epoch, in_epoch = step % per_epoch;
    if (epoch != order_epoch) {
      order.resize(static_cast<size_t>(data.set.count));
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
      gen::Rng shuffle(args.seed, /*stream=*/1000 + static_cast<uint64_t>(epoch));
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.below(static_cast<uint32_t>(i))]);
      order_epoch = epoch;
    }
    const int64_t first = in_epoch * B, n = std::min(B, data.set.count - first);
    for (int64_t b = 0; b < n; ++b) {
      const uint32_t i = order[static_cast<size_t>(first + b)];
      const bool flip = s.flip && rng.below(2) == 1;
      const int span = static_cast<int>(2 * s.shift + 1);
      const int dx = s.shift > 0 ? static_cast<int>(rng.below(static_cast<uint32_t>(span))) - static_cast<int>(s.shift) : 0;
      const int dy = s.shift > 0 ? static_cast<int>(rng.below(static_cast<uint32_t>(span))) - static_cast<int>(s.shift) : 0;
      augment(data.set.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(C), flip, dx, dy,
              x.data() + b * P);
      labels[static_cast<size_t>(b)] = data.set.labels[i];
    }
    arena.reset();
    gen::Graph g(arena, true);
    model.params().zero_grads();
    gen::Classifier::Output out = model.forward(g, g.constant({n, C, S, S}, x.data()));
    gen::Graph::Loss loss = g.cross_entropy(out.logits, labels.data());
    if (!std::isfinite(loss.mean))
      throw Error(args.output, fmt::format("training diverged at step {}: the loss is {} (lower --lr?)", step + 1,
                                           std::isnan(loss.mean) ? "NaN" : "infinite"));
    g.backward();
    float norm = gen::clip_grad_norm(model.params(), s.grad_clip);
    float lr = gen::cosine_lr(step, {.lr = s.lr, .min_lr = s.min_lr, .warmup = s.warmup, .decay_steps = s.decay_steps});
    adam.step(model.params(), lr);
    ++step;
    epoch_loss += loss.mean * static_cast<double>(n);
    epoch_right += static_cast<double>(loss.correct);
    epoch_seen += static_cast<double>(n);

    const bool epoch_end = step % per_epoch == 0 || step == s.steps;
    std::string test_field;
    if (epoch_end && !test_x.empty()) {
      test_accuracy = accuracy(model, test_x, test.set);
      test_field = fmt::format("{:.4f}", test_accuracy);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double images_per_s = static_cast<double>((step - first_step) * B) / std::max(seconds, 1e-9);
    if (log) {
      log->write(fmt::format("{}\t{:.4f}\t{:.6e}\t{:.6f}\t{:.4f}\t{:.4f}\t{:.1f}\t{:.3f}\t{}\n", step,
                             static_cast<double>(step) / static_cast<double>(per_epoch), lr, loss.mean,
                             static_cast<double>(loss.correct) / static_cast<double>(n), norm, images_per_s, seconds,
                             test_field));
      log->flush();
    }
    progress.update(static_cast<uint64_t>(step),
                    fmt::format("epoch {}, loss {:.4f}, {:.0f} img/s", epoch + 1, epoch_loss / std::max(epoch_seen, 1.0),
                                images_per_s));
    if (epoch_end) {
      std::string line = fmt::format("epoch {} (step {}): train loss {:.4f}, accuracy {:.1f}%", epoch + 1, step,
                                     epoch_loss / std::max(epoch_seen, 1.0),
                                     100 * epoch_right / std::max(epoch_seen, 1.0));
      if (!test_x.empty()) line += fmt::format("; test accuracy {:.2f}%", 100 * test_accuracy);
      progress.message(line);
      epoch_loss = epoch_right = epoch_seen = 0;
    }
    if (gen::stop_requested()) {
      save(step);
      if (log) log->commit();
      progress.message(fmt::format("interrupted: saved step {} to {}", step, args.output));
      throw gen::Interrupted();
    }
  }
  save(step);
  if (log) log->commit();
  progress.finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!args.quiet) {
    if (test_accuracy >= 0)
      std::fprintf(stderr, "gscore: test accuracy %.2f%% (%d images)\n", 100 * test_accuracy, test.set.count);
    std::fprintf(stderr, "gscore: wrote %s (step %lld, %s)\n", args.output.c_str(), static_cast<long long>(step),
                 gen::Progress::format_duration(seconds).c_str());
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// classify and fid

struct ScoreArgs {
  std::string checkpoint, expect, ref = "fashion-mnist:test";
  std::vector<std::string> images;
  int64_t ref_limit = 0;
  int threads = gen::default_threads();
  bool quiet = false;
};

struct Loaded {
  gen::ClassifierCheckpoint ckpt;
  std::unique_ptr<gen::Classifier> model;
};

Loaded load(const ScoreArgs& a) {
  gen::use_threads(a.threads);
  Loaded l{gen::classifier_load(a.checkpoint), nullptr};
  l.model = std::make_unique<gen::Classifier>(l.ckpt.model.net);
  std::copy(l.ckpt.weights.begin(), l.ckpt.weights.end(), l.model->params().values());
  return l;
}

// "Ankle boot: 15 of 16 (93.8%)"
void print_expected(const std::vector<std::string>& names, uint32_t want, const std::vector<float>& probs,
                    int64_t n) {
  const int64_t K = static_cast<int64_t>(names.size());
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) right += argmax(probs.data() + i * K, K) == want;
  fmt::print("expected {}: {} of {} ({:.1f}%)\n", names[want], right, n,
             100.0 * static_cast<double>(right) / static_cast<double>(n));
}

int run_classify(const ScoreArgs& a) {
  Loaded l = load(a);
  const auto& names = l.ckpt.model.class_names;
  std::optional<uint32_t> want;
  if (!a.expect.empty()) want = expected_class(names, a.expect);
  std::vector<std::string> paths = expand_paths(a.images);
  std::vector<float> x = read_images(paths, l.ckpt.model.net);
  const int64_t n = static_cast<int64_t>(paths.size()), K = l.ckpt.model.net.classes;
  gen::Classified out = gen::classify(*l.model, x.data(), n, true, false);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = out.probs.data() + i * K;
    int64_t k = argmax(p, K);
    fmt::print("{}\t{}\t{:.0f}%\n", paths[static_cast<size_t>(i)], names[static_cast<size_t>(k)], 100.0 * p[k]);
  }
  if (want) print_expected(names, *want, out.probs, n);
  return 0;
}

int run_fid(const ScoreArgs& a) {
  Loaded l = load(a);
  const gen::ClassifierConfig& net = l.ckpt.model.net;
  const auto& names = l.ckpt.model.class_names;
  std::optional<uint32_t> want;
  if (!a.expect.empty()) want = expected_class(names, a.expect);
  std::vector<std::string> paths = expand_paths(a.images);
  if (paths.size() < 2) throw UsageError("the Fréchet distance needs at least 2 sample images");
  std::vector<float> x = read_images(paths, net);
  const int64_t n = static_cast<int64_t>(paths.size()), K = net.classes, F = net.features;

  // The reference: Fashion-MNIST's test or training set, or a folder of PNGs.
  gen::ImageData ref = gen::load_image_data(a.ref, "");
  gen::limit_images(ref.set, a.ref_limit);
  check_dataset(ref.set, a.ref, net);
  if (ref.set.count < 2) throw Error(a.ref, "the reference needs at least 2 images");
  if (!a.quiet)
    std::fprintf(stderr, "gscore: features of %lld samples and %d reference images\n", static_cast<long long>(n),
                 ref.set.count);
  gen::Classified samples = gen::classify(*l.model, x.data(), n, true, true);
  gen::Classified reference = gen::classify(*l.model, gen::dataset_floats(ref.set).data(), ref.set.count, false, true);
  const double fid = gen::frechet_distance(gen::fit_gaussian(samples.features.data(), n, F),
                                           gen::fit_gaussian(reference.features.data(), ref.set.count, F));
  if (n < F)
    gen::warn(fmt::format("{} samples for {}-d features: the covariance is singular and the FID biased upward; "
                          "compare FIDs of equally many samples (1000 or more is better)", n, F));

  std::vector<int64_t> counts(static_cast<size_t>(K), 0);
  double confidence = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = samples.probs.data() + i * K;
    int64_t k = argmax(p, K);
    ++counts[static_cast<size_t>(k)];
    confidence += p[k];
  }
  fmt::print("FID {:.4f} ({} samples against {} images of {}; {}-d features)\n", fid, n, ref.set.count, a.ref, F);
  fmt::print("mean confidence {:.1f}%\n", 100 * confidence / static_cast<double>(n));
  size_t width = 0;
  for (const auto& name : names) width = std::max(width, name.size());
  for (int64_t k = 0; k < K; ++k)
    fmt::print("{:<{}}  {:>6}  {:5.1f}%\n", names[static_cast<size_t>(k)], width, counts[static_cast<size_t>(k)],
               100.0 * static_cast<double>(counts[static_cast<size_t>(k)]) / static_cast<double>(n));
  if (want) print_expected(names, *want, samples.probs, n);
  return 0;
}

// ---------------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  CLI::App app("gscore: an image classifier, and scores for generated images (labels, FID, class histogram)",
               "gscore");
  app.set_version_flag("--version", "gscore 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1);
  app.footer(R"(Examples:
  gscore train -o classifier.st --log train.tsv          # Fashion-MNIST, about 92% test accuracy
  gscore classify classifier.st --expect sneaker out-*.png
  gscore fid classifier.st --ref fashion-mnist:test samples/
See gscore SUBCOMMAND --help, and man gscore.)");

  TrainArgs train;
  auto& s = train.settings;
  auto* cmd_train = app.add_subcommand("train", "Train the CNN classifier");
  cmd_train->add_option("--data", train.data,
                        "fashion-mnist (Debian's dataset-fashion-mnist, training set) or an IDX image file with "
                        "--labels")
      ->capture_default_str();
  cmd_train->add_option("--labels", train.labels, "IDX labels for an IDX --data file");
  cmd_train->add_option("--limit", train.limit, "Use only the first N training images")->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--test", train.test,
                        "Test set measured after every epoch (default: fashion-mnist:test when training on "
                        "fashion-mnist)");
  cmd_train->add_option("--test-labels", train.test_labels, "IDX labels for an IDX --test file");
  cmd_train->add_option("--test-limit", train.test_limit, "Use only the first N test images")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("-o,--output", train.output, "The checkpoint to write, e.g. classifier.st")->required();
  cmd_train->add_option("--resume", train.resume, "Continue this checkpoint's run exactly (--steps may grow)");
  cmd_train->add_option("--channels", train.channels, "Convolution channels per level (stride 2 from the second)")
      ->capture_default_str();
  cmd_train->add_option("--features", train.features, "Width of the penultimate layer (the FID features)")
      ->capture_default_str();
  cmd_train->add_flag("--pool", train.pool, "Global average pooling instead of flattening before the features");
  cmd_train->add_option("--epochs", train.epochs, "Passes over the training images")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_train->add_option("--steps", s.steps, "Optimizer steps in all, instead of --epochs (with --resume: the new total)")
      ->check(CLI::Range(1, 1 << 30));
  cmd_train->add_option("--decay-steps", s.decay_steps, "Step where the cosine reaches --min-lr (default: the last)")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--batch", s.batch, "Images per step")->check(CLI::Range(1, 1 << 14))->capture_default_str();
  cmd_train->add_option("--lr", s.lr, "Peak learning rate (AdamW)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd_train->add_option("--min-lr", s.min_lr, "Final learning rate (cosine)")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--warmup", s.warmup, "Linear warmup steps")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--weight-decay", s.weight_decay, "AdamW weight decay (weights, not biases)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd_train->add_option("--grad-clip", s.grad_clip, "Clip gradients to this global norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd_train->add_flag("--no-flip", train.no_flip, "No random left-right mirroring of training images");
  cmd_train->add_option("--shift", s.shift, "Random shifts of training images by up to N pixels (0: none)")
      ->check(CLI::Range(0, 64))->capture_default_str();
  cmd_train->add_option("--seed", train.seed, "Seed for initialization, shuffling and augmentation")
      ->capture_default_str();
  cmd_train->add_option("--threads", train.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd_train->add_flag("--no-optimizer", train.no_optimizer, "Save the weights only (no --resume later)");
  cmd_train->add_option("--log", train.log, "Write a row per step to this TSV file (test accuracy at epoch ends)");
  cmd_train->add_flag("-q,--quiet", train.quiet, "No progress on stderr");
  cmd_train->footer(R"(Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gscore train -o classifier.st --log train.tsv          # Fashion-MNIST, 5 epochs
  gscore train --limit 2000 --steps 50 -o tiny.st        # a quick smoke test
  gscore train --resume classifier.st --steps 3000 -o classifier.st)");

  ScoreArgs classify, fid;
  auto add_common = [](CLI::App* cmd, ScoreArgs& a) {
    cmd->add_option("checkpoint", a.checkpoint, "A classifier checkpoint (gscore train)")->required();
    cmd->add_option("images", a.images, "PNG images of the classifier's size, or folders of them")->required();
    cmd->add_option("--expect", a.expect, "Also print the share of images classified as this class");
    cmd->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
    cmd->add_flag("-q,--quiet", a.quiet, "No progress on stderr");
  };
  auto* cmd_classify = app.add_subcommand("classify", "A label and its probability for each image");
  add_common(cmd_classify, classify);
  cmd_classify->footer(R"footer(Prints FILE<TAB>CLASS<TAB>CONFIDENCE per image; with --expect, a last line
"expected CLASS: K of N (P%)".
Examples:
  gscore classify classifier.st shirt.png boot.png
  gdiffuse sample ddpm.st --prompt "ankle boot" -n 64 -o boot-%03d.png
  gscore classify classifier.st --expect "ankle boot" boot-*.png | tail -1)footer");

  auto* cmd_fid = app.add_subcommand(
      "fid", "Frechet distance of the classifier's penultimate features: samples against a reference set");
  add_common(cmd_fid, fid);
  cmd_fid->add_option("--ref", fid.ref, "fashion-mnist:test, fashion-mnist:train, or a folder of PNGs")
      ->capture_default_str();
  cmd_fid->add_option("--ref-limit", fid.ref_limit, "Use only the first N reference images")
      ->check(CLI::NonNegativeNumber);
  cmd_fid->footer(R"(An Inception-style FID, computed with a classifier that knows this data instead
of Inception-v3; prints the FID, the mean confidence and the class histogram.
Examples:
  gdiffuse sample ddpm.st --prompt all -n 100 -o samples/s-%04d.png
  gscore fid classifier.st --ref fashion-mnist:test samples/
  gscore fid classifier.st --ref real/ fake/ --expect sneaker)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw UsageError(e.what());
  }
  if (*cmd_train) {
    train.steps_given = cmd_train->count("--steps") > 0;
    if (s.min_lr > s.lr) throw UsageError("--min-lr is above --lr");
    if (!train.resume.empty())
      for (const char* name : {"--channels", "--features", "--pool", "--epochs", "--batch", "--lr", "--min-lr",
                               "--warmup", "--decay-steps", "--weight-decay", "--grad-clip", "--no-flip", "--shift", "--seed"})
        if (cmd_train->count(name) > 0)
          gen::warn(fmt::format("{} ignored: --resume continues with the checkpoint's settings", name));
    return run_train(train);
  }
  if (*cmd_classify) return run_classify(classify);
  return run_fid(fid);
}

}  // namespace

int main(int argc, char** argv) {
  gen::sleep_when_idle(argv);
  return gen::tool_main("gscore", argc, argv, run);
}
