// ggan: a generative adversarial network on images. train (a DCGAN generator, the forger,
// against a discriminator, the detective), sample (images from seeds), interpolate (a walk
// between two seeds' latents), score (the discriminator's verdict on images).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
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
#include "io/image.h"
#include "io/image_files.h"
#include "io/plot.h"
#include "models/checkpoint.h"
#include "models/gan.h"
#include "models/gan_checkpoint.h"
#include "tensor/optimizer.h"

namespace {

using gen::Error;
using gen::UsageError;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// The latent of image `index` drawn with `seed`: its own random stream, so that an image
// depends on the seed and its index only (not on how many are drawn), and `interpolate --from
// S` starts at image 0 of `sample --seed S`. psi < 1 pulls it towards the mean (truncation).
void draw_latent(float* z, int64_t latent, uint64_t seed, int64_t index, double psi) {
  gen::Rng rng(seed, /*stream=*/static_cast<uint64_t>(index));
  for (int64_t k = 0; k < latent; ++k) z[k] = static_cast<float>(psi) * rng.normal();
}

// The generator at inference (BatchNorm's running statistics) on n latents, in batches.
std::vector<float> generate(gen::Generator& G, const std::vector<float>& z, const std::vector<uint32_t>& labels,
                            int64_t n) {
  const gen::GanConfig& c = G.config();
  const int64_t P = c.image_channels * c.image_size * c.image_size, batch = 256;
  std::vector<float> images(static_cast<size_t>(n * P));
  gen::Arena arena;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t B = std::min(batch, n - start);
    arena.reset();
    gen::Graph g(arena, false);
    gen::Tensor x = G.forward(g, g.constant({B, c.latent}, z.data() + start * c.latent),
                              c.classes > 0 ? labels.data() + start : nullptr);
    std::copy(x.data, x.data + B * P, images.begin() + start * P);
  }
  return images;
}

// Mean distance between pairs of n images (RMS over pixels): how different the samples are.
double diversity(const float* x, int64_t n, int64_t P) {
  double sum = 0;
  int64_t pairs = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double d = 0;
      for (int64_t k = 0; k < P; ++k) {
        double e = x[i * P + k] - x[j * P + k];
        d += e * e;
      }
      sum += std::sqrt(d / static_cast<double>(P));
      ++pairs;
    }
  return pairs ? sum / static_cast<double>(pairs) : 0;
}

void check_image_size(const gen::Image& image, const std::string& name, const gen::GanConfig& c) {
  if (image.width != c.image_size || image.height != c.image_size || image.channels != c.image_channels)
    throw Error(name, fmt::format("the image is {}; the model wants {}x{} {}", gen::describe(image), c.image_size,
                                  c.image_size, c.image_channels == 1 ? "gray" : "RGB"));
}

// The class index for a prompt, or an error naming the checkpoint.
uint32_t class_index(const gen::GanModel& m, const std::string& prompt, const std::string& file) {
  if (m.class_names.empty()) throw Error(file, fmt::format("--prompt '{}': this model has no classes", prompt));
  int k = gen::find_class(m.class_names, prompt);
  if (k < 0)
    throw Error(file, fmt::format("unknown class '{}'; the classes are: {}", prompt, gen::class_list(m.class_names)));
  return static_cast<uint32_t>(k);
}

// ---------------------------------------------------------------------------------------------
// train

struct Settings {
  int64_t batch = 64;
  int64_t steps = 5000;
  float lr = 2e-4f;
  float beta1 = 0.5f, beta2 = 0.999f;
  int64_t d_steps = 1;  // discriminator steps per generator step
  float gp = 10.0f;     // WGAN-GP's penalty weight
  int64_t images = 0;   // the training set's size (resume checks it)

  nlohmann::json to_json() const {
    return {{"batch", batch}, {"steps", steps}, {"lr", lr}, {"beta1", beta1}, {"beta2", beta2},
            {"d_steps", d_steps}, {"gp", gp}, {"images", images}};
  }
  void from_json(const nlohmann::json& j) {
    batch = j.at("batch");
    steps = j.at("steps");
    lr = j.at("lr");
    beta1 = j.at("beta1");
    beta2 = j.at("beta2");
    d_steps = j.at("d_steps");
    gp = j.at("gp");
    images = j.at("images");
  }
};

struct TrainArgs {
  std::string data = "fashion-mnist", labels, output, resume, log, plot, preview, loss = "bce";
  int64_t latent = 64, g_channels = 256, d_channels = 64, limit = 0;
  int64_t steps = 0;  // --steps as given (resume: the new total; else the saved plan)
  bool conditional = false;
  Settings settings;
  uint64_t seed = 1;
  int threads = gen::default_threads();
  int64_t save_every = 0, preview_every = 0;
  double minutes = 0;  // a wall-clock budget: stop (and save) after the step that passes it
  bool quiet = false, steps_given = false, no_optimizer = false;
};

// One step of the trace: the arms race in numbers.
struct Trace {
  double d_loss = 0, g_loss = 0, d_real = 0, d_fake = 0, gp = 0;
};

// A grid from fixed latents (the same at every preview): one column per class when
// conditional, else 8x8.
void write_preview(const std::string& path, gen::Generator& G, uint64_t seed) {
  const gen::GanConfig& c = G.config();
  const int64_t classes = c.classes, cols = classes > 0 ? classes : 8, rows = classes > 0 ? 6 : 8, n = cols * rows;
  std::vector<float> z(static_cast<size_t>(n * c.latent));
  std::vector<uint32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    draw_latent(z.data() + i * c.latent, c.latent, seed + 1000, i, 1.0);
    labels[static_cast<size_t>(i)] = classes > 0 ? static_cast<uint32_t>(i % classes) : 0;
  }
  std::vector<float> x = generate(G, z, labels, n);
  gen::write_images(path, gen::tiles_from_floats(x.data(), n, c.image_channels, c.image_size),
                    fmt::format("{}x{}", cols, rows), 2);
}

int run_train(TrainArgs& args) {
  gen::GracefulStop graceful;
  gen::use_threads(args.threads);
  Settings& s = args.settings;
  gen::GanModel info;
  std::optional<gen::GanCheckpoint> checkpoint;
  int64_t step = 0;
  if (!args.resume.empty()) {
    checkpoint = gen::gan_load(args.resume);
    gen::resume_settings(*checkpoint, args.resume, s);
    info = checkpoint->model;
    step = checkpoint->step;
    args.seed = checkpoint->seed;
    if (args.steps_given) s.steps = args.steps;
    if (s.steps <= step)
      throw UsageError(fmt::format("the checkpoint is at step {} already: give --steps above it", step));
  }
  if (!args.preview.empty()) gen::check_output_pattern(args.preview, "--preview");

  gen::ImageData data = gen::load_image_data(args.data, args.labels);
  gen::limit_images(data.set, args.limit);
  if (data.set.count < 1) throw Error(args.data, "no images");
  if (!checkpoint) {
    info.net.image_channels = data.set.channels;
    info.net.image_size = data.set.height;
    info.net.latent = args.latent;
    info.net.g_channels = args.g_channels;
    info.net.d_channels = args.d_channels;
    info.objective = gen::parse_objective(args.loss);
    if (args.conditional) {
      if (!data.set.labelled())
        throw Error(args.data, "has no labels: --conditional needs labelled images (fashion-mnist, or IDX with --labels)");
      info.net.classes = static_cast<int64_t>(data.class_names.size());
      info.class_names = data.class_names;
    }
    if (data.set.width != data.set.height)
      throw Error(args.data, fmt::format("images are {}x{}: the GAN wants square images", data.set.width,
                                         data.set.height));
    try {
      info.net.validate();
    } catch (const UsageError& e) {
      throw Error(args.data, fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
    s.images = data.set.count;
  } else {
    if (data.set.width != info.net.image_size || data.set.height != info.net.image_size ||
        data.set.channels != info.net.image_channels)
      throw Error(args.data, fmt::format("images are {}x{}x{} but the checkpoint's model wants {}x{}x{}",
                                         data.set.width, data.set.height, data.set.channels, info.net.image_size,
                                         info.net.image_size, info.net.image_channels));
    if (s.images != data.set.count)
      throw Error(args.data, fmt::format("has {} images but the checkpoint was trained on {}: resume on the same "
                                         "data (and --limit)", data.set.count, s.images));
  }
  if (info.net.classes > 0 && !data.set.labelled())
    throw Error(args.data, "has no labels: this model is class-conditional (fashion-mnist, or IDX with --labels)");
  for (uint8_t l : data.set.labels)
    if (info.net.classes > 0 && l >= info.net.classes)
      throw Error(args.data, fmt::format("label {} is outside the model's {} classes", l, info.net.classes));

  gen::Generator G(info.net);
  gen::Discriminator D(info.net);
  gen::Rng rng(args.seed);
  const gen::AdamWConfig adam_config{.beta1 = s.beta1, .beta2 = s.beta2, .eps = 1e-8f, .weight_decay = 0.0f};
  gen::AdamW adam_g(G.params().size(), adam_config), adam_d(D.params().size(), adam_config);
  if (checkpoint) {
    auto& train = *checkpoint->train;
    std::copy(checkpoint->g.begin(), checkpoint->g.end(), G.params().values());
    std::copy(checkpoint->d.begin(), checkpoint->d.end(), D.params().values());
    G.running() = checkpoint->running;
    adam_g.m() = train.g_m, adam_g.v() = train.g_v, adam_g.set_steps(train.g_adam_steps);
    adam_d.m() = train.d_m, adam_d.v() = train.d_v, adam_d.set_steps(train.d_adam_steps);
    rng.restore(train.rng);
  } else {
    G.init(rng);
    D.init(rng);
  }

  auto save = [&](int64_t at) {
    if (args.no_optimizer) {
      gen::gan_save(args.output, info, G, D, at, args.seed, nullptr);
      return;
    }
    gen::GanTrainState state;
    state.g_m = adam_g.m(), state.g_v = adam_g.v(), state.g_adam_steps = adam_g.steps();
    state.d_m = adam_d.m(), state.d_v = adam_d.v(), state.d_adam_steps = adam_d.steps();
    state.rng = rng.save();
    state.settings = s.to_json().dump();
    gen::gan_save(args.output, info, G, D, at, args.seed, &state);
  };

  std::optional<gen::Output> plot;
  if (!args.plot.empty()) plot.emplace(args.plot);
  std::optional<gen::Output> log;
  if (!args.log.empty()) {
    log.emplace(args.log, gen::Output::Mode::direct);
    log->write("step\td_loss\tg_loss\td_real\td_fake\tgp\timages_per_s\tseconds\n");
  }

  const gen::GanConfig& c = info.net;
  const int64_t B = s.batch, C = c.image_channels, S = c.image_size, P = C * S * S, L = c.latent;
  const bool wgan = info.objective == gen::GanObjective::wgan_gp;
  const gen::GanLoss kind = info.objective == gen::GanObjective::bce     ? gen::GanLoss::bce
                            : info.objective == gen::GanObjective::hinge ? gen::GanLoss::hinge
                                                                         : gen::GanLoss::linear;
  // The discriminator's numbers for a learner: probabilities for BCE, raw scores otherwise.
  auto verdict = [&](float logit) { return info.objective == gen::GanObjective::bce ? sigmoid(logit) : logit; };
  if (!args.quiet)
    std::fprintf(stderr,
                 "ggan: generator %zu parameters, discriminator %zu (%s loss%s), %d images of %lldx%lld; %lld steps "
                 "of %lld images, %.2f GFLOP per step\n",
                 G.params().size(), D.params().size(), gen::objective_name(info.objective),
                 c.classes > 0 ? fmt::format(", {} classes", c.classes).c_str() : "", data.set.count,
                 static_cast<long long>(S), static_cast<long long>(S), static_cast<long long>(s.steps),
                 static_cast<long long>(B),
                 static_cast<double>(B) *
                     (3 * c.g_flops_per_image() +
                      static_cast<double>(s.d_steps) * (3 * 2 * c.d_flops_per_image() + (wgan ? 4 * c.d_flops_per_image() : 0)) +
                      3 * c.d_flops_per_image()) /
                     1e9);

  // How different real images are from each other: the yardstick for collapse.
  std::vector<float> x(static_cast<size_t>(2 * B * P)), hat(static_cast<size_t>(B * P)), z(static_cast<size_t>(B * L));
  std::vector<uint32_t> labels(static_cast<size_t>(2 * B));
  std::vector<float> signs(static_cast<size_t>(2 * B));
  for (int64_t b = 0; b < 2 * B; ++b) signs[static_cast<size_t>(b)] = b < B ? 1.0f : -1.0f;
  const std::vector<float> ones(static_cast<size_t>(B), 1.0f);
  double real_diversity = 0;
  {
    const int64_t n = std::min<int64_t>(64, data.set.count);
    std::vector<float> r(static_cast<size_t>(n * P));
    for (int64_t i = 0; i < n; ++i)
      gen::hwc_to_floats(data.set.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(S),
                         static_cast<int>(C), r.data() + i * P);
    real_diversity = diversity(r.data(), n, P);
  }

  gen::Arena arena;
  std::vector<std::pair<int64_t, Trace>> curve;
  gen::Progress progress("train", static_cast<uint64_t>(s.steps), "", args.quiet);
  progress.set_start(static_cast<uint64_t>(step));
  auto start = std::chrono::steady_clock::now();
  const int64_t first_step = step;
  Trace recent;
  int64_t recent_n = 0;
  bool warned_loss = false, warned_same = false;

  auto finish_outputs = [&] {
    if (log) log->commit();
    if (!plot) return;
    gen::Chart chart;
    chart.title = fmt::format("ggan: {} loss, batch {}", gen::objective_name(info.objective), B);
    chart.x_label = "step";
    chart.y_label = "loss (moving average)";
    gen::ChartSeries d_series, g_series;
    d_series.name = "discriminator (detective)", d_series.rgb = 0xd62728, d_series.width = 2;
    g_series.name = "generator (forger)", g_series.rgb = 0x1f5fa8, g_series.width = 2;
    const size_t window = std::max<size_t>(1, curve.size() / 50);
    double ds = 0, gs = 0;
    for (size_t i = 0; i < curve.size(); ++i) {
      ds += curve[i].second.d_loss, gs += curve[i].second.g_loss;
      if (i >= window) ds -= curve[i - window].second.d_loss, gs -= curve[i - window].second.g_loss;
      if (i + 1 < window) continue;
      const double at = static_cast<double>(curve[i].first), w = static_cast<double>(window);
      d_series.points.emplace_back(at, ds / w);
      g_series.points.emplace_back(at, gs / w);
    }
    chart.series = {d_series, g_series};
    plot->write(gen::render_png(chart));
    plot->commit();
  };

  // A batch of real images (with their labels in labels[0..B)) into x[0..B).
  auto real_batch = [&] {
    for (int64_t b = 0; b < B; ++b) {
      const uint32_t i = rng.below(static_cast<uint32_t>(data.set.count));
      gen::hwc_to_floats(data.set.image_data(static_cast<int>(i)), static_cast<int>(S), static_cast<int>(S),
                         static_cast<int>(C), x.data() + b * P);
      const uint32_t label = c.classes > 0 ? data.set.labels[i] : 0;
      labels[static_cast<size_t>(b)] = label;
      labels[static_cast<size_t>(B + b)] = label;  // the fakes are asked for the same classes
    }
    for (auto& v : z) v = rng.normal();
  };
  const uint32_t* fake_labels = c.classes > 0 ? labels.data() + B : nullptr;

  while (step < s.steps) {
    Trace t;
    arena.reset();
    gen::Graph gG(arena, true);  // the generator's forward, kept for its step
    gen::Tensor fake;
    for (int64_t k = 0; k < s.d_steps; ++k) {
      // The detective's step: real images should score high, the forger's low.
      real_batch();
      if (k + 1 < s.d_steps) {
        gen::Graph once(arena, true);
        fake = G.forward(once, once.constant({B, L}, z.data()), fake_labels);
      } else {
        fake = G.forward(gG, gG.constant({B, L}, z.data()), fake_labels);
      }
      std::copy(fake.data, fake.data + B * P, x.begin() + B * P);
      gen::Graph gD(arena, true);
      D.params().zero_grads();
      gen::Discriminator::Output out = D.forward(gD, gD.constant({2 * B, C, S, S}, x.data()), labels.data());
      t.d_loss = gD.gan_loss(out.logits, signs.data(), kind, 2.0f);
      t.d_real = t.d_fake = 0;
      for (int64_t b = 0; b < B; ++b) {
        t.d_real += verdict(out.logits.data[b]) / static_cast<double>(B);
        t.d_fake += verdict(out.logits.data[B + b]) / static_cast<double>(B);
      }
      if (wgan) {
        // The penalty on the critic's gradient at points between real and fake images.
        for (int64_t b = 0; b < B; ++b) {
          const float e = rng.uniform();
          for (int64_t q = 0; q < P; ++q) hat[static_cast<size_t>(b * P + q)] = e * x[b * P + q] + (1 - e) * x[(B + b) * P + q];
        }
        gen::Graph at_hat(arena, false);
        gen::Discriminator::Output there = D.forward(at_hat, at_hat.constant({B, C, S, S}, hat.data()), labels.data());
        t.gp = gD.gradient_penalty(D.input_gradient(gD, there, labels.data()), s.gp);
        t.d_loss += t.gp;
      }
      if (!std::isfinite(t.d_loss))
        throw Error(args.output, fmt::format("training diverged at step {}: the discriminator's loss is {} (lower --lr?)",
                                             step + 1, std::isnan(t.d_loss) ? "NaN" : "infinite"));
      gD.backward();
      adam_d.step(D.params(), s.lr);
    }
    // The forger's step: make the (updated) detective call the fakes real. Non-saturating for
    // BCE (maximize log D(G(z))), -D(G(z)) for hinge and WGAN.
    {
      gen::Graph gD(arena, true);
      gen::Discriminator::Output out = D.forward(gD, fake, fake_labels, /*weight_grads=*/false);
      t.g_loss = gD.gan_loss(out.logits, ones.data(), kind == gen::GanLoss::bce ? kind : gen::GanLoss::linear);
      if (!std::isfinite(t.g_loss))
        throw Error(args.output, fmt::format("training diverged at step {}: the generator's loss is {} (lower --lr?)",
                                             step + 1, std::isnan(t.g_loss) ? "NaN" : "infinite"));
      G.params().zero_grads();
      gD.backward();
      gG.backward();
      adam_g.step(G.params(), s.lr);
    }
    ++step;
    curve.emplace_back(step, t);
    recent.d_loss += t.d_loss, recent.g_loss += t.g_loss, recent.d_real += t.d_real, recent.d_fake += t.d_fake;
    ++recent_n;

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double images_per_s = static_cast<double>((step - first_step) * B) / std::max(seconds, 1e-9);
    if (log) {
      log->write(fmt::format("{}\t{:.6f}\t{:.6f}\t{:.4f}\t{:.4f}\t{:.6f}\t{:.1f}\t{:.3f}\n", step, t.d_loss, t.g_loss,
                             t.d_real, t.d_fake, t.gp, images_per_s, seconds));
      log->flush();
    }
    if (args.minutes > 0 && step - first_step >= 10) {
      // With a time budget, the bar and the ETA are for the steps the budget will allow.
      const double rate = static_cast<double>(step - first_step) / std::max(seconds, 1e-9);
      progress.set_total(static_cast<uint64_t>(
          std::min<double>(static_cast<double>(s.steps), static_cast<double>(first_step) + rate * 60 * args.minutes)));
    }
    const double rn = static_cast<double>(recent_n);
    progress.update(static_cast<uint64_t>(step),
                    fmt::format("D loss {:.3f}, G loss {:.3f}, D(x) {:.2f}, D(G(z)) {:.2f}, {:.0f} img/s",
                                recent.d_loss / rn, recent.g_loss / rn, recent.d_real / rn, recent.d_fake / rn,
                                images_per_s));
    if (step % 100 == 0) {
      // Collapse, as the trace shows it: a detective that always wins.
      if (info.objective == gen::GanObjective::bce && recent.d_loss / rn < 0.01 && !warned_loss) {
        progress.message(fmt::format(
            "warning: step {}: the discriminator's loss is near 0 ({:.4f}): it wins every time and the generator "
            "learns nothing (training has collapsed; lower --lr or restart with another --seed)",
            step, recent.d_loss / rn));
        warned_loss = true;
      }
      recent = Trace{}, recent_n = 0;
    }
    if (step % 500 == 0) {
      // ... or a forger that draws the same picture whatever z says.
      const int64_t n = 32;
      std::vector<float> zs(static_cast<size_t>(n * L));
      std::vector<uint32_t> ls(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        draw_latent(zs.data() + i * L, L, args.seed + 2000, i, 1.0);
        ls[static_cast<size_t>(i)] = c.classes > 0 ? static_cast<uint32_t>(i % c.classes) : 0;
      }
      std::vector<float> samples = generate(G, zs, ls, n);
      const double d = diversity(samples.data(), n, P);
      if (d < 0.2 * real_diversity && !warned_same) {
        progress.message(fmt::format(
            "warning: step {}: samples from different z are nearly equal (mean distance {:.3f}, real images {:.3f}): "
            "mode collapse",
            step, d, real_diversity));
        warned_same = true;
      }
    }
    if (args.preview_every > 0 && !args.preview.empty() && step % args.preview_every == 0) {
      write_preview(args.preview, G, args.seed);
      progress.message(fmt::format("step {}: D loss {:.3f}, G loss {:.3f}, D(x) {:.2f}, D(G(z)) {:.2f}; preview in {}",
                                   step, t.d_loss, t.g_loss, t.d_real, t.d_fake, args.preview));
    }
    if (args.save_every > 0 && step % args.save_every == 0 && step < s.steps) save(step);
    if (gen::stop_requested()) {
      save(step);
      finish_outputs();
      progress.message(fmt::format("interrupted: saved step {} to {}", step, args.output));
      throw gen::Interrupted();
    }
    if (args.minutes > 0 && seconds >= 60 * args.minutes && step < s.steps) {
      progress.message(fmt::format("time limit: {} minutes are up at step {}", args.minutes, step));
      break;
    }
  }
  save(step);
  finish_outputs();
  if (!args.preview.empty()) write_preview(args.preview, G, args.seed);
  progress.finish();
  if (!args.quiet) std::fprintf(stderr, "ggan: wrote %s (step %lld)\n", args.output.c_str(), static_cast<long long>(step));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sample, interpolate, score

struct Loaded {
  gen::GanCheckpoint ckpt;
  std::unique_ptr<gen::Generator> G;
  std::unique_ptr<gen::Discriminator> D;
};

Loaded load(const std::string& path, int threads) {
  gen::use_threads(threads);
  Loaded l{gen::gan_load(path), nullptr, nullptr};
  l.G = std::make_unique<gen::Generator>(l.ckpt.model.net);
  std::copy(l.ckpt.g.begin(), l.ckpt.g.end(), l.G->params().values());
  l.G->running() = l.ckpt.running;
  l.D = std::make_unique<gen::Discriminator>(l.ckpt.model.net);
  std::copy(l.ckpt.d.begin(), l.ckpt.d.end(), l.D->params().values());
  return l;
}

struct SampleArgs {
  std::string checkpoint, output, grid, prompt;
  int64_t n = 64, frames = 10;
  uint64_t seed = 1, from = 1, to = 2;
  double psi = 1;
  int scale = 1;
  bool lerp = false, quiet = false;
  int threads = gen::default_threads();
};

void check_psi(double psi) {
  if (!(psi > 0 && psi <= 1)) throw UsageError(fmt::format("--truncation {}: psi must be in (0, 1]", psi));
}

// The classes asked for: one (--prompt NAME) for all n images, every class in turn ("all": a
// row per class, n each), or none. Returns the labels; n and grid are updated for "all".
std::vector<uint32_t> prompt_labels(const Loaded& l, const SampleArgs& a, int64_t& n, std::string& grid,
                                    bool single = false) {
  const gen::GanModel& m = l.ckpt.model;
  if (a.prompt.empty()) {
    if (m.net.classes > 0)
      throw Error(a.checkpoint, fmt::format("this model is class-conditional: give --prompt CLASS{} (the classes "
                                            "are: {})", single ? "" : " or all", gen::class_list(m.class_names)));
    return std::vector<uint32_t>(static_cast<size_t>(n), 0);
  }
  if (a.prompt == "all") {
    if (m.net.classes == 0) throw Error(a.checkpoint, "--prompt all: this model has no classes");
    std::vector<uint32_t> labels;
    for (int64_t k = 0; k < m.net.classes; ++k)
      for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<uint32_t>(k));
    if (grid.empty()) grid = fmt::format("{}x{}", n, m.net.classes);
    n *= m.net.classes;
    return labels;
  }
  return std::vector<uint32_t>(static_cast<size_t>(n), class_index(m, a.prompt, a.checkpoint));
}

int run_sample(const SampleArgs& a) {
  check_psi(a.psi);
  gen::check_output_pattern(a.output);
  Loaded l = load(a.checkpoint, a.threads);
  const gen::GanConfig& c = l.ckpt.model.net;
  int64_t n = a.n;
  std::string grid = a.grid;
  std::vector<uint32_t> labels = prompt_labels(l, a, n, grid);
  if (a.output.find('%') == std::string::npos) (void)gen::parse_grid(grid, n);  // a bad --grid fails now
  std::vector<float> z(static_cast<size_t>(n * c.latent));
  for (int64_t i = 0; i < n; ++i) {
    // With --prompt all, image i of each class row has the latent of image i.
    const int64_t index = a.prompt == "all" ? i % a.n : i;
    draw_latent(z.data() + i * c.latent, c.latent, a.seed, index, a.psi);
  }
  std::vector<float> x = generate(*l.G, z, labels, n);
  gen::write_images(a.output, gen::tiles_from_floats(x.data(), n, c.image_channels, c.image_size), grid, a.scale);
  return 0;
}

// Spherical interpolation between a and b (Shoemake 1985): a Gaussian latent's norm stays
// typical along the way, where a straight line passes near the origin (a blurrier, "average"
// image).
void slerp(const float* a, const float* b, float* out, int64_t n, double t) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t k = 0; k < n; ++k) dot += double{a[k]} * b[k], na += double{a[k]} * a[k], nb += double{b[k]} * b[k];
  const double cos_omega = std::clamp(dot / std::sqrt(na * nb + 1e-30), -1.0, 1.0), omega = std::acos(cos_omega);
  if (std::sin(omega) < 1e-6) {  // (anti)parallel: a line is as good
    for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>((1 - t) * a[k] + t * b[k]);
    return;
  }
  const double wa = std::sin((1 - t) * omega) / std::sin(omega), wb = std::sin(t * omega) / std::sin(omega);
  for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>(wa * a[k] + wb * b[k]);
}

int run_interpolate(const SampleArgs& a) {
  check_psi(a.psi);
  if (a.frames < 2) throw UsageError(fmt::format("--frames {}: at least 2 (the two ends)", a.frames));
  gen::check_output_pattern(a.output);
  Loaded l = load(a.checkpoint, a.threads);
  const gen::GanConfig& c = l.ckpt.model.net;
  const int64_t L = c.latent, n = a.frames;
  std::string grid = a.grid.empty() ? fmt::format("{}x1", n) : a.grid;
  int64_t one = 1;
  std::string unused;
  SampleArgs single = a;
  if (a.prompt == "all") throw UsageError("--prompt all: interpolate walks within one class; give a class name");
  std::vector<uint32_t> label = prompt_labels(l, single, one, unused, /*single=*/true);
  if (a.output.find('%') == std::string::npos) (void)gen::parse_grid(grid, n);
  std::vector<float> za(static_cast<size_t>(L)), zb(static_cast<size_t>(L)), z(static_cast<size_t>(n * L));
  draw_latent(za.data(), L, a.from, 0, a.psi);
  draw_latent(zb.data(), L, a.to, 0, a.psi);
  for (int64_t f = 0; f < n; ++f) {
    const double t = static_cast<double>(f) / static_cast<double>(n - 1);
    float* out = z.data() + f * L;
    if (a.lerp)
      for (int64_t k = 0; k < L; ++k) out[k] = static_cast<float>((1 - t) * za[k] + t * zb[k]);
    else
      slerp(za.data(), zb.data(), out, L, t);
  }
  std::vector<uint32_t> labels(static_cast<size_t>(n), label[0]);
  std::vector<float> x = generate(*l.G, z, labels, n);
  gen::write_images(a.output, gen::tiles_from_floats(x.data(), n, c.image_channels, c.image_size), grid, a.scale);
  return 0;
}

struct ScoreArgs {
  std::string checkpoint, prompt;
  std::vector<std::string> images;
  int threads = gen::default_threads();
};

int run_score(const ScoreArgs& a) {
  Loaded l = load(a.checkpoint, a.threads);
  const gen::GanModel& m = l.ckpt.model;
  const gen::GanConfig& c = m.net;
  uint32_t label = 0;
  if (c.classes > 0) {
    if (a.prompt.empty())
      throw Error(a.checkpoint, fmt::format("this model is class-conditional: give --prompt CLASS (the classes are: "
                                            "{})", gen::class_list(m.class_names)));
    label = class_index(m, a.prompt, a.checkpoint);
  } else if (!a.prompt.empty()) {
    throw Error(a.checkpoint, fmt::format("--prompt '{}': this model has no classes", a.prompt));
  }
  const int64_t P = c.image_channels * c.image_size * c.image_size, n = static_cast<int64_t>(a.images.size());
  std::vector<float> x(static_cast<size_t>(n * P));
  for (int64_t i = 0; i < n; ++i) {
    const std::string& path = a.images[static_cast<size_t>(i)];
    gen::Image image = gen::read_png(path);
    check_image_size(image, path, c);
    gen::to_floats(image, x.data() + i * P);
  }
  std::vector<uint32_t> labels(static_cast<size_t>(n), label);
  gen::Arena arena;
  const int64_t batch = 256;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t B = std::min(batch, n - start);
    arena.reset();
    gen::Graph g(arena, false);
    gen::Discriminator::Output out = l.D->forward(
        g, g.constant({B, c.image_channels, c.image_size, c.image_size}, x.data() + start * P), labels.data());
    for (int64_t i = 0; i < B; ++i) {
      const float logit = out.logits.data[i];
      const std::string& path = a.images[static_cast<size_t>(start + i)];
      if (m.objective == gen::GanObjective::bce)
        fmt::print("{}\t{:.1f}% real\t(logit {:.3f})\n", path, 100.0 * sigmoid(logit), logit);
      else  // no "-0.000"
        fmt::print("{}\t{:.3f}\t(critic score: higher is more real)\n", path, std::abs(logit) < 5e-4f ? 0.0f : logit);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  CLI::App app("ggan: a generative adversarial network: the forger (generator) against the detective (discriminator)",
               "ggan");
  app.set_version_flag("--version", "ggan 0.1.0");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1);
  app.footer(R"(Examples:
  ggan train -o gan.st --steps 5000 --preview preview.png --preview-every 500 --log train.tsv
  ggan sample gan.st --seed 7 -n 64 --grid 8x8 --scale 2 -o grid.png
  ggan interpolate gan.st --from 3 --to 8 --frames 10 --scale 2 -o walk.png
  ggan score gan.st real.png fake.png
See ggan SUBCOMMAND --help, and man ggan.)");

  TrainArgs train;
  Settings& s = train.settings;
  auto* cmd_train = app.add_subcommand("train", "Train a DCGAN: generator against discriminator");
  cmd_train->add_option("--data", train.data,
                        "fashion-mnist (Debian's dataset-fashion-mnist, training set), an IDX image file (with "
                        "--labels), or a folder of PNGs")
      ->capture_default_str();
  cmd_train->add_option("--labels", train.labels, "IDX labels for an IDX --data file");
  cmd_train->add_option("--limit", train.limit, "Use only the first N images")->check(CLI::NonNegativeNumber);
  cmd_train->add_option("-o,--output", train.output, "The checkpoint to write, e.g. gan.st")->required();
  cmd_train->add_option("--resume", train.resume, "Continue this checkpoint's run exactly (--steps may grow)");
  cmd_train->add_option("--loss", train.loss,
                        "bce (non-saturating, DCGAN), hinge, or wgan-gp (Wasserstein with gradient penalty; "
                        "defaults then: --d-steps 5, --lr 1e-4, --beta1 0, --beta2 0.9)")
      ->capture_default_str();
  cmd_train->add_flag("--conditional", train.conditional, "Condition both networks on the class (labelled data)");
  cmd_train->add_option("--latent", train.latent, "Size of the latent z")->capture_default_str();
  cmd_train->add_option("--g-channels", train.g_channels,
                        "Generator channels at its smallest size (7x7 for 28x28; halved per level)")
      ->capture_default_str();
  cmd_train->add_option("--d-channels", train.d_channels,
                        "Discriminator channels at half the image size (doubled per level)")
      ->capture_default_str();
  cmd_train->add_option("--steps", s.steps, "Generator steps in all (with --resume: the new total; default the saved one)")
      ->check(CLI::Range(1, 1 << 30))->capture_default_str();
  cmd_train->add_option("--batch", s.batch, "Images per step (real and fake each)")->check(CLI::Range(1, 1 << 14))
      ->capture_default_str();
  cmd_train->add_option("--lr", s.lr, "Adam learning rate, both networks")->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd_train->add_option("--beta1", s.beta1, "Adam beta1")->check(CLI::Range(0.0, 0.9999))->capture_default_str();
  cmd_train->add_option("--beta2", s.beta2, "Adam beta2")->check(CLI::Range(0.0, 0.99999))->capture_default_str();
  cmd_train->add_option("--d-steps", s.d_steps, "Discriminator steps per generator step")->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd_train->add_option("--gp", s.gp, "Gradient penalty weight (wgan-gp)")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd_train->add_option("--seed", train.seed, "Seed for initialization, batches and latents")->capture_default_str();
  cmd_train->add_option("--threads", train.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd_train->add_option("--time-limit", train.minutes,
                        "Stop after this many minutes of training (at the end of a step; saved as usual)")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--save-every", train.save_every, "Steps between checkpoints (0: only at the end)")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--preview", train.preview, "A sample grid from fixed latents (PNG), at the end and every "
                                                    "--preview-every steps");
  cmd_train->add_option("--preview-every", train.preview_every, "Steps between previews")
      ->check(CLI::NonNegativeNumber);
  cmd_train->add_option("--log", train.log, "Write a row per step to this TSV file");
  cmd_train->add_option("--plot", train.plot, "Draw both losses against step as a PNG");
  cmd_train->add_flag("--no-optimizer", train.no_optimizer, "Save the weights only (no --resume later)");
  cmd_train->add_flag("-q,--quiet", train.quiet, "No progress on stderr");
  cmd_train->footer(R"(The trace: D loss and G loss, D(x) (the detective's verdict on real images) and
D(G(z)) (on the forger's): the arms race. Warnings when it collapses.
Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  ggan train -o gan.st --steps 5000 --preview preview.png --preview-every 500 --log train.tsv
  ggan train --conditional -o cgan.st              # both networks told the class
  ggan train --loss wgan-gp -o wgan.st
  ggan train --steps 100000 --time-limit 15 -o gan.st  # as far as 15 minutes go
  ggan train --resume gan.st --steps 8000 -o gan.st)");

  SampleArgs sample, interp;
  auto add_common = [](CLI::App* cmd, SampleArgs& a) {
    cmd->add_option("checkpoint", a.checkpoint, "A GAN checkpoint (ggan train)")->required();
    cmd->add_option("-o,--output", a.output,
                    "Output PNG (- is stdout), numbered files like img-%03d.png, or an animation: walk.gif")
        ->required();
    cmd->add_option("--grid", a.grid, "COLSxROWS for one grid PNG");
    cmd->add_option("--prompt", a.prompt, "A class name or number (class-conditional models)");
    cmd->add_option("--truncation", a.psi, "psi in (0, 1]: latents scaled by psi, samples closer to the mean")
        ->capture_default_str();
    cmd->add_option("--scale", a.scale, "Draw each pixel as SCALE x SCALE")->check(CLI::Range(1, 32))
        ->capture_default_str();
    cmd->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  };
  auto* cmd_sample = app.add_subcommand("sample", "Images from the generator; the same seed gives the same images");
  add_common(cmd_sample, sample);
  cmd_sample->add_option("-n", sample.n, "Images (with --prompt all: per class)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_sample->add_option("--seed", sample.seed, "Seed: image i has the latent of stream i of this seed")
      ->capture_default_str();
  cmd_sample->footer(R"(Examples:
  ggan sample gan.st --seed 7 -n 64 --grid 8x8 --scale 2 -o grid.png
  ggan sample gan.st -n 1000 -o samples/s-%04d.png      # for gscore fid
  ggan sample cgan.st --prompt all -n 8 -o classes.png  # a row per class
  ggan sample gan.st --truncation 0.5 -o typical.png)");

  auto* cmd_interp = app.add_subcommand("interpolate", "A walk through latent space from one seed's image to another's");
  add_common(cmd_interp, interp);
  cmd_interp->add_option("--from", interp.from, "Seed of the first image (image 0 of ggan sample --seed FROM)")
      ->capture_default_str();
  cmd_interp->add_option("--to", interp.to, "Seed of the last image")->capture_default_str();
  cmd_interp->add_option("--frames", interp.frames, "Images along the way, both ends included")
      ->check(CLI::Range(int64_t{-1000000}, int64_t{100000}))->capture_default_str();
  cmd_interp->add_flag("--lerp", interp.lerp, "A straight line instead of the great circle (slerp)");
  cmd_interp->footer(R"(Examples:
  ggan interpolate gan.st --from 3 --to 8 --frames 10 --scale 2 -o walk.png
  ggan interpolate gan.st --from 3 --to 8 --frames 64 --grid 8x8 -o walk-grid.png
  ggan interpolate gan.st --from 3 --to 8 --frames 30 --scale 3 -o walk.gif
  ggan interpolate gan.st --from 3 --to 8 -o frames/f-%02d.png)");

  ScoreArgs score;
  auto* cmd_score = app.add_subcommand("score", "The discriminator's verdict: how real each image looks to it");
  cmd_score->add_option("checkpoint", score.checkpoint, "A GAN checkpoint (ggan train)")->required();
  cmd_score->add_option("images", score.images, "PNG images of the model's size")->required();
  cmd_score->add_option("--prompt", score.prompt, "The class to judge against (class-conditional models)");
  cmd_score->add_option("--threads", score.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd_score->footer(R"(Prints FILE<TAB>VERDICT per image: the probability of "real" (bce), or the critic's
score (hinge, wgan-gp).
Examples:
  ggan score gan.st data/ankle-boot.png
  ggan sample gan.st -n 4 -o fake-%d.png && ggan score gan.st fake-*.png)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw UsageError(e.what());
  }
  if (*cmd_train) {
    train.steps_given = cmd_train->count("--steps") > 0;
    train.steps = s.steps;
    if (!train.resume.empty()) {
      for (const char* name : {"--loss", "--conditional", "--latent", "--g-channels", "--d-channels", "--batch",
                               "--lr", "--beta1", "--beta2", "--d-steps", "--gp", "--seed"})
        if (cmd_train->count(name) > 0)
          gen::warn(fmt::format("{} ignored: --resume continues with the checkpoint's settings", name));
    } else if (gen::parse_objective(train.loss) == gen::GanObjective::wgan_gp) {
      // WGAN-GP's own recipe (Gulrajani et al. 2017), where not chosen.
      if (cmd_train->count("--d-steps") == 0) s.d_steps = 5;
      if (cmd_train->count("--lr") == 0) s.lr = 1e-4f;
      if (cmd_train->count("--beta1") == 0) s.beta1 = 0.0f;
      if (cmd_train->count("--beta2") == 0) s.beta2 = 0.9f;
    }
    return run_train(train);
  }
  if (*cmd_sample) return run_sample(sample);
  if (*cmd_interp) return run_interpolate(interp);
  return run_score(score);
}

}  // namespace

int main(int argc, char** argv) {
  gen::sleep_when_idle(argv);
  return gen::tool_main("ggan", argc, argv, run);
}
