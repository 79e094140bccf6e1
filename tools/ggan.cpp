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

#include "core/cli.h"
#include "core/cluster.h"
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
#include "models/adversarial.h"
#include "models/gan_checkpoint.h"
#include "train/train_gan.h"

namespace {

using gen::Error;
using gen::UsageError;

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
// sample, interpolate, score

struct Loaded {
  gen::GanCheckpoint ckpt;
  std::unique_ptr<gen::Generator> G;
  std::unique_ptr<gen::Discriminator> D;
};

Loaded load(const std::string& path, int threads) {
  gen::use_threads(threads);
  Loaded l{gen::gan_load(path, /*training_state=*/false), nullptr, nullptr};
  l.G = std::make_unique<gen::Generator>(l.ckpt.model.net, std::move(l.ckpt.g));
  l.G->running() = l.ckpt.running;
  l.D = std::make_unique<gen::Discriminator>(l.ckpt.model.net, std::move(l.ckpt.d));
  return l;
}

struct SampleArgs {
  std::string checkpoint, output, grid, prompt;
  int64_t n = 64, frames = 10;
  uint64_t seed = 1, from = 1, to = 2;
  double psi = 1;
  int scale = 1;
  bool lerp = false, quiet = false, labels = false;
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
  if (a.labels) {
    if (a.prompt != "all") throw UsageError("--labels: for the grid of --prompt all (a row per class) written as one PNG");
    gen::check_labelled_grid(a.output, "the grid of --prompt all (a row per class)");
  }
  Loaded l = load(a.checkpoint, a.threads);
  const gen::GanConfig& c = l.ckpt.model.net;
  int64_t n = a.n;
  std::string grid = a.grid;
  std::vector<uint32_t> labels = prompt_labels(l, a, n, grid);
  if (a.output.find('%') == std::string::npos) (void)gen::parse_grid(grid, n);  // a bad --grid fails now
  // Under mpirun each rank draws its share of the images (each from its own latent), and rank 0
  // writes what one process would.
  gen::Cluster& cluster = gen::cluster();
  const gen::Share mine = gen::share_of(n, cluster);
  std::vector<float> z(static_cast<size_t>(mine.size() * c.latent));
  for (int64_t i = mine.begin; i < mine.end; ++i) {
    // With --prompt all, image i of each class row has the latent of image i.
    const int64_t index = a.prompt == "all" ? i % a.n : i;
    gen::draw_latent(z.data() + (i - mine.begin) * c.latent, c.latent, a.seed, index, a.psi);
  }
  const std::vector<uint32_t> my_labels(labels.begin() + mine.begin, labels.begin() + mine.end);
  const int64_t P = c.image_channels * c.image_size * c.image_size;
  const std::vector<float> x =
      gen::gather_shares(cluster, gen::generate(*l.G, z, my_labels, mine.size()).data(), n, P);
  gen::GridLabels names;  // --labels: a class name beside each row of --prompt all
  if (a.labels) names.rows = l.ckpt.model.class_names;
  if (cluster.rank() == 0)
    gen::write_images(a.output, gen::tiles_from_floats(x.data(), n, c.image_channels, c.image_size), grid, a.scale,
                      names);
  return 0;
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
  gen::draw_latent(za.data(), L, a.from, 0, a.psi);
  gen::draw_latent(zb.data(), L, a.to, 0, a.psi);
  for (int64_t f = 0; f < n; ++f) {
    const double t = static_cast<double>(f) / static_cast<double>(n - 1);
    float* out = z.data() + f * L;
    if (a.lerp)
      for (int64_t k = 0; k < L; ++k) out[k] = static_cast<float>((1 - t) * za[k] + t * zb[k]);
    else
      gen::slerp(za.data(), zb.data(), out, L, t);
  }
  std::vector<uint32_t> labels(static_cast<size_t>(n), label[0]);
  std::vector<float> x = gen::generate(*l.G, z, labels, n);
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
        fmt::print("{}\t{:.1f}% real\t(logit {:.3f})\n", path, 100.0 * gen::verdict(m.objective, logit), logit);
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
  gen::setup_app(app, "ggan");
  app.require_subcommand(1);
  app.footer(R"(Examples:
  ggan train -o gan.st --steps 5000 --preview preview.png --preview-every 500 --log train.tsv
  ggan sample gan.st --seed 7 -n 64 --grid 8x8 --scale 2 -o grid.png
  ggan interpolate gan.st --from 3 --to 8 --frames 10 --scale 2 -o walk.png
  ggan score gan.st real.png fake.png
See ggan SUBCOMMAND --help, and man ggan.)");

  gen::GanTrainJob train;
  auto* cmd_train = app.add_subcommand("train", "Train a DCGAN: generator against discriminator");
  gen::add_gan_train_options(*cmd_train, train);
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
        ->check(gen::finite_number(0, 1, true))->capture_default_str();
    cmd->add_option("--scale", a.scale, "Draw each pixel as SCALE x SCALE")->check(CLI::Range(1, 32))
        ->capture_default_str();
    cmd->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  };
  auto* cmd_sample = app.add_subcommand("sample", "Images from the generator; the same seed gives the same images");
  add_common(cmd_sample, sample);
  cmd_sample->add_option("-n", sample.n, "Images (with --prompt all: per class)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_sample->add_option("--seed", sample.seed, "Seed: image i has the latent of stream i of this seed")
      ->check(gen::seed_number())->capture_default_str();
  cmd_sample->add_flag("--labels", sample.labels, "With --prompt all: each class's name beside its row");
  cmd_sample->footer(R"(Examples:
  ggan sample gan.st --seed 7 -n 64 --grid 8x8 --scale 2 -o grid.png
  ggan sample gan.st -n 1000 -o samples/s-%04d.png      # for gscore fid
  ggan sample cgan.st --prompt all -n 8 -o classes.png  # a row per class
  ggan sample cgan.st --prompt all -n 8 --scale 2 --labels -o classes.png   # named
  ggan sample gan.st --truncation 0.5 -o typical.png)");

  auto* cmd_interp = app.add_subcommand("interpolate", "A walk through latent space from one seed's image to another's");
  add_common(cmd_interp, interp);
  cmd_interp->add_option("--from", interp.from, "Seed of the first image (image 0 of ggan sample --seed FROM)")
      ->check(gen::seed_number())->capture_default_str();
  cmd_interp->add_option("--to", interp.to, "Seed of the last image")->check(gen::seed_number())->capture_default_str();
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

  std::vector<std::string> info_files;
  auto* cmd_info = gen::add_info_command(app, info_files);

  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  if (*cmd_info) {
    gen::print_image_text(info_files);
    return 0;
  }
  if (*cmd_train) {
    gen::train_gan_command(*cmd_train, train);
    return 0;
  }
  if (*cmd_sample) return run_sample(sample);
  if (*cmd_interp) return run_interpolate(interp);
  return run_score(score);
}

}  // namespace

int main(int argc, char** argv) {
  gen::spin_briefly_when_idle(argv);
  return gen::tool_main("ggan", argc, argv, run);
}
