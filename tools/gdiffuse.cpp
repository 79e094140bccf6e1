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

#include "core/cli.h"
#include "core/cluster.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/signals.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "diffusion/diffusion.h"
#include "diffusion/guidance.h"
#include "io/idx.h"
#include "io/image.h"
#include "io/image_files.h"
#include "io/plot.h"
#include "models/checkpoint.h"
#include "models/unet.h"
#include "models/unet_checkpoint.h"
#include "train/train_diffusion.h"

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
// noise: the forward process.

struct NoiseArgs {
  std::string input, output, strip, schedule = "linear";
  int64_t t = -1, T = 1000;
  int scale = 1;
  uint64_t seed = 1;
  bool labels = false;
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
  if (a.labels) {
    if (a.strip.empty()) throw UsageError("--labels: for a --strip written as one PNG");
    gen::check_labelled_grid(a.output, "a --strip");
  }
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
  gen::GridLabels labels;
  if (a.labels)
    for (int64_t t : steps) labels.columns.push_back(fmt::format("t={}", t));
  gen::write_images(a.output, tiles, fmt::format("{}x1", tiles.size()), a.scale, labels);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// sample and denoise

struct SampleArgs {
  std::string checkpoint, output, grid, prompt, negative, sampler = "ddim", trajectory, gif, input;
  int64_t n = 16, steps = 50, t = -1;
  int scale = 1;
  double eta = -1, guidance = 3, strength = -1;
  uint64_t seed = 1;
  int threads = gen::default_threads();
  bool no_clamp = false, quiet = false, labels = false;
};

int run_sample(const SampleArgs& a, bool denoise) {
  gen::use_threads(a.threads);
  std::optional<gen::DiffusionSampler> named = gen::DiffusionSampler::named(a.sampler);
  if (!named) throw UsageError(fmt::format("--sampler '{}': ddim, ddpm or dpm++2m", a.sampler));
  gen::DiffusionSampler sampler = *named;
  if (sampler.method == gen::DiffusionSampler::Method::dpmpp_2m && a.eta > 0) throw UsageError("--eta: DDIM's and DDPM's (dpm++2m is deterministic)");
  if (a.guidance < 0) throw UsageError("--guidance must be >= 0");
  if (a.output.empty() && a.prompt != "list") throw UsageError("give -o FILE.png for the images");
  gen::check_distinct_outputs({{"-o", a.output}, {"--trajectory", a.trajectory}, {"--gif", a.gif}});
  gen::check_output_pattern(a.output);
  if (!a.trajectory.empty()) gen::check_output_pattern(a.trajectory, "--trajectory");
  if (!a.gif.empty()) {
    gen::check_output_pattern(a.gif, "--gif", {".gif"});
    if (a.gif.find('%') != std::string::npos) throw UsageError(fmt::format("--gif '{}': one file, not numbered", a.gif));
  }
  gen::DiffusionCheckpoint ckpt = gen::diffusion_load(a.checkpoint, /*training_state=*/false);
  const gen::DiffusionModel& info = ckpt.model;
  if (a.labels) {
    if (a.prompt != "all") throw UsageError("--labels: for the grid of --prompt all (a row per class) written as one PNG");
    gen::check_labelled_grid(a.output, "the grid of --prompt all (a row per class)");
  }
  if (a.prompt == "list") {
    if (info.class_names.empty()) throw Error(a.checkpoint, "this model has no classes (trained unconditionally)");
    for (size_t i = 0; i < info.class_names.size(); ++i) fmt::print("{}\t{}\n", i, info.class_names[i]);
    return 0;
  }
  const int64_t C = info.unet.image_channels, S = info.unet.image_size, P = C * S * S;
  gen::Unet model(info.unet, std::move(ckpt.ema));
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
  uint32_t away = gen::GuidedDenoiser::kNoClass;
  if (!a.negative.empty()) {
    if (info.unet.classes == 0) throw Error(a.checkpoint, "--negative-prompt: this model has no classes");
    away = class_index(info.class_names, a.negative, a.checkpoint);
    if (!labels.empty() && labels[0] == away && a.prompt != "all")
      throw UsageError(fmt::format("--negative-prompt '{}' is the --prompt: guidance would cancel out", a.negative));
  }
  if (a.output.find('%') == std::string::npos) (void)gen::parse_grid(grid, n);  // a bad --grid fails now

  // Under mpirun each rank samples its share of the images (their own noise streams), and rank
  // 0 writes what one process would.
  gen::Cluster& cluster = gen::cluster();
  const gen::Share mine = gen::share_of(n, cluster);
  const int64_t m = mine.size();
  const bool writer = cluster.rank() == 0;
  std::vector<gen::Rng> rngs = gen::image_streams(a.seed, mine.begin, mine.end);
  std::vector<uint32_t> my_labels(labels.begin() + mine.begin, labels.begin() + mine.end);

  // The start: pure noise at step T-1, or (denoise) the image noised to step t.
  std::vector<float> x(static_cast<size_t>(m * P));
  int64_t start = info.T - 1;
  if (denoise) {
    // --strength s is the step s T (stable-diffusion.cpp's --strength): 0 keeps the image, 1 is noise.
    if ((a.t >= 0) == (a.strength >= 0)) throw UsageError("give --t STEP or --strength S (one of them)");
    const int64_t t = a.t >= 0 ? a.t : std::llround(a.strength * static_cast<double>(info.T));
    if (t > info.T) throw UsageError(fmt::format("--t {} is outside 0..{}", t, info.T));
    gen::Image image = gen::read_png(a.input);
    if (image.width != S || image.height != S || image.channels != C)
      throw Error(a.input, fmt::format("the image is {}x{} with {} channel{}; the model wants {}x{} with {}",
                                       image.width, image.height, image.channels, image.channels == 1 ? "" : "s", S,
                                       S, C));
    std::vector<float> x0 = gen::to_floats(image), eps(static_cast<size_t>(P));
    for (int64_t i = 0; i < m; ++i) {
      for (auto& e : eps) e = rngs[static_cast<size_t>(i)].normal();
      if (t == 0)
        std::copy(x0.begin(), x0.end(), x.begin() + i * P);
      else
        schedule.noise(x.data() + i * P, x0.data(), eps.data(), P, t - 1);
    }
    start = t - 1;
  } else {
    for (int64_t i = 0; i < m * P; ++i) x[static_cast<size_t>(i)] = rngs[static_cast<size_t>(i / P)].normal();
  }

  sampler.steps = a.sampler == "ddpm" && a.steps == 50 && !denoise ? info.T : a.steps;  // DDPM: every step
  if (a.eta >= 0) sampler.eta = a.eta;
  sampler.clamp = !a.no_clamp;
  // Guidance needs something to steer towards or away from: a class, or a negative prompt.
  const bool steered = a.prompt == "all" || (!labels.empty() && labels[0] != none) || !a.negative.empty();
  gen::GuidedDenoiser denoiser(model, my_labels, steered ? a.guidance : 1.0, away);

  // The trajectory: the first images (up to 8) at 10 points of the reverse process.
  std::vector<int64_t> ts = sampler.timesteps(schedule, std::max<int64_t>(start, 0));
  const int64_t rows = std::min<int64_t>(n, 8), points = 10;
  // The first rows images as they are now, gathered from the ranks that hold them.
  auto first_rows = [&](const float* xt) {
    const int64_t held = std::clamp<int64_t>(rows - mine.begin, 0, m);
    std::vector<float> all(static_cast<size_t>(rows * P));
    cluster.gather_rows(xt, held, P, all.data());
    return all;
  };
  std::vector<gen::Image> snapshots;
  std::vector<size_t> at;
  for (int64_t k = 1; k < points; ++k) at.push_back(static_cast<size_t>((static_cast<int64_t>(ts.size()) * k) / (points - 1)) - 1);
  std::vector<std::vector<gen::Image>> trajectory(static_cast<size_t>(rows));
  auto snapshot = [&](const float* xt) {
    const std::vector<float> first = first_rows(xt);
    for (int64_t r = 0; r < rows; ++r)
      trajectory[static_cast<size_t>(r)].push_back(
          gen::from_floats(first.data() + r * P, static_cast<int>(C), static_cast<int>(S), static_cast<int>(S)));
  };
  if (!a.trajectory.empty()) snapshot(x.data());
  // The animation: the same images side by side, at up to 50 evenly spaced steps and the start.
  std::vector<gen::Image> frames;
  const int64_t every = (static_cast<int64_t>(ts.size()) + 49) / 50;
  auto add_frame = [&](const float* xt) {
    const std::vector<float> first = first_rows(xt);
    frames.push_back(gen::enlarge(
        gen::make_grid(gen::tiles_from_floats(first.data(), rows, C, S), static_cast<int>(rows), 1), a.scale));
  };
  if (!a.gif.empty()) add_frame(x.data());
  gen::Progress progress(denoise ? "denoise" : "sample", static_cast<uint64_t>(ts.size()), "", a.quiet || !writer);
  if (start >= 0)
    sampler.run(
        schedule, x.data(), m, P, start,
        [&](const float* xt, int64_t t, float* eps) {
          if (m > 0) denoiser(xt, t, eps, m);
        },
        rngs,
        [&](int64_t index, int64_t, const float* xt) {
          progress.update(static_cast<uint64_t>(index + 1));
          if (!a.trajectory.empty() && std::find(at.begin(), at.end(), static_cast<size_t>(index)) != at.end())
            snapshot(xt);
          if (!a.gif.empty() && ((index + 1) % every == 0 || index + 1 == static_cast<int64_t>(ts.size())))
            add_frame(xt);
        });
  progress.finish();
  const std::vector<float> images = gen::gather_shares(cluster, x.data(), n, P);
  if (!writer) return 0;
  gen::GridLabels names;  // --labels: a class name beside each row of --prompt all
  if (a.labels) names.rows = info.class_names;
  gen::write_images(a.output, gen::tiles_from_floats(images.data(), n, C, S), grid, a.scale, names);
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
  gen::setup_app(app, "gdiffuse");
  app.require_subcommand(1);
  app.footer(R"(Examples:
  gdiffuse noise data/ankle-boot.png --strip 0,10,25,50,100 --steps 100 --scale 4 -o strip.png
  gdiffuse train -o ddpm.st --steps 4000 --preview preview.png --preview-every 500 --plot loss.png
  gdiffuse sample ddpm.st --prompt "ankle boot" --guidance 3 -n 16 --scale 4 -o boots.png
  gdiffuse sample ddpm.st --prompt all -n 8 --trajectory traj.png -o classes.png
  gdiffuse denoise ddpm.st data/t-shirt.png --t 400 --prompt dress -n 8 -o dresses.png
See gdiffuse COMMAND --help, and man gdiffuse.)");

  NoiseArgs noise;
  auto* cmd_noise = app.add_subcommand("noise", "The forward process: an image buried in noise up to step t");
  cmd_noise->add_option("image", noise.input, "A PNG image (- is stdin)")->required();
  cmd_noise->add_option("--t", noise.t, "Step: 0 is the image, --steps is pure noise")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd_noise->add_option("--strip", noise.strip, "Several steps side by side, e.g. 0,25,50,75,100");
  cmd_noise->add_option("--steps", noise.T, "Steps of the whole process (T)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_noise->add_option("--schedule", noise.schedule, "linear or cosine")->capture_default_str();
  cmd_noise->add_option("-s,--seed", noise.seed, "Seed of the noise")->check(gen::seed_number())->capture_default_str();
  cmd_noise->add_option("--scale", noise.scale, "Draw each pixel as an NxN block")->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd_noise->add_option("-o,--output", noise.output, "PNG to write (- is stdout)")->required();
  cmd_noise->add_flag("--labels", noise.labels, "Write each step (t=25) above its image in the strip");
  cmd_noise->footer(R"(Examples:
  gdiffuse noise shirt.png --t 50 --steps 100 -o noisy.png
  gdiffuse noise shirt.png --strip 0,10,25,50,100 --steps 100 -o strip.png   # the image dissolving
  gdiffuse noise shirt.png --strip 0,10,25,50,100 --steps 100 --scale 4 --labels -o strip.png)");

  gen::DiffusionTrainJob train;
  auto* cmd_train = app.add_subcommand("train", "Train a U-Net denoiser (epsilon prediction)");
  gen::add_diffusion_train_options(*cmd_train, train);
  cmd_train->footer(R"(Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gdiffuse train -o ddpm.st --steps 4000 --preview preview.png --preview-every 500 --log train.tsv
  gdiffuse train -o ddpm.st --time-limit 15 --plot loss.png     # as far as 15 minutes go
  gdiffuse train --resume ddpm.st --steps 6000 -o ddpm.st)");

  SampleArgs sample, den;
  auto add_sampling = [](CLI::App* cmd, SampleArgs& a) {
    cmd->add_option("checkpoint", a.checkpoint, "A diffusion checkpoint (gdiffuse train)")->required();
    cmd->add_option("-p,--prompt", a.prompt, "A class name or number; 'all' for a row per class; 'list' prints them");
    cmd->add_option("--negative-prompt", a.negative,
                    "A class to steer away from: guidance pushes from it instead of from 'no class'");
    cmd->add_option("-g,--guidance", a.guidance, "Classifier-free guidance scale (1: conditional only; 0: none)")
        ->check(gen::finite_number(0, 1000))->capture_default_str();
    cmd->add_option("--sampler", a.sampler, "ddim, ddpm or dpm++2m (DPM-Solver++: DDIM-50's images in 10-20 steps)")
        ->capture_default_str();
    cmd->add_option("--steps", a.steps, "Denoiser calls (ddpm without --steps: all T)")->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--eta", a.eta, "DDIM's eta: 0 deterministic, 1 DDPM's noise (default by --sampler)")
        ->check(gen::finite_number(0, 1));
    cmd->add_flag("--no-clamp", a.no_clamp, "Do not clamp the predicted image to [-1, 1] at each step");
    cmd->add_option("-s,--seed", a.seed, "Seed: the same seed gives the same images")->check(gen::seed_number())->capture_default_str();
    cmd->add_option("--grid", a.grid, "Columns x rows of the output grid, e.g. 8x8");
    cmd->add_option("--trajectory", a.trajectory, "Also write the first images at 10 points of the reverse process");
    cmd->add_option("--gif", a.gif, "Also write the reverse process as an animated GIF (the first images, up to 8)");
    cmd->add_option("--threads", a.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
    cmd->add_option("-o,--output", a.output,
                    "PNG grid to write (- is stdout), numbered files: out-%03d.png, or an animation: out.gif");
    cmd->add_option("--scale", a.scale, "Draw each pixel as an NxN block")->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", a.quiet, "No progress on stderr");
    cmd->add_flag("--labels", a.labels, "With --prompt all: each class's name beside its row");
  };
  auto* cmd_sample = app.add_subcommand("sample", "The reverse process: images out of noise");
  add_sampling(cmd_sample, sample);
  cmd_sample->add_option("-n", sample.n, "Images (with --prompt all: per class)")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd_sample->footer(R"(Examples:
  gdiffuse sample ddpm.st --prompt "ankle boot" --guidance 3 -n 16 -o boots.png
  gdiffuse sample ddpm.st --prompt "ankle boot" --sampler dpm++2m --steps 15 -n 64 -o boots.png  # fast
  gdiffuse sample ddpm.st --prompt all -n 8 -o classes.png          # a row per class
  gdiffuse sample ddpm.st --prompt all -n 8 --scale 2 --labels -o classes.png   # named
  gdiffuse sample ddpm.st --prompt sneaker --trajectory traj.png -n 4 -o out.png
  gdiffuse sample ddpm.st --prompt sneaker --gif reverse.gif --scale 3 -n 4 -o out.png
  gdiffuse sample ddpm.st --prompt "ankle boot" --negative-prompt sneaker -n 8 -o boots.png
  gdiffuse sample ddpm.st --prompt list)");

  auto* cmd_denoise = app.add_subcommand("denoise", "Image to image: noise an image to step t, then denoise it");
  add_sampling(cmd_denoise, den);
  cmd_denoise->add_option("image", den.input, "A PNG of the model's size")->required();
  auto* t_option = cmd_denoise->add_option("--t", den.t, "How far to noise it (0..T): higher keeps less of the image")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd_denoise->add_option("--strength", den.strength, "The same as a share of T, 0..1 (0 keeps the image, 1 is all noise)")
      ->check(gen::finite_number(0, 1))->excludes(t_option);
  cmd_denoise->add_option("-n", den.n, "Variations")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd_denoise->footer(R"(Examples:
  gdiffuse denoise ddpm.st shirt.png --t 300 -n 8 -o variations.png
  gdiffuse denoise ddpm.st shirt.png --t 600 --prompt dress -o dress.png
  gdiffuse denoise ddpm.st shirt.png --strength 0.5 --prompt coat --negative-prompt shirt -o coat.png)");

  std::vector<std::string> info_files;
  auto* cmd_info = gen::add_info_command(app, info_files);

  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  if (*cmd_info) {
    gen::print_image_text(info_files);
    return 0;
  }
  if (*cmd_noise) return run_noise(noise);
  if (*cmd_train) {
    gen::train_diffusion_command(*cmd_train, train);
    return 0;
  }
  if (*cmd_sample) return run_sample(sample, false);
  return run_sample(den, true);
}

}  // namespace

int main(int argc, char** argv) {
  gen::spin_briefly_when_idle(argv);
  return gen::tool_main("gdiffuse", argc, argv, run);
}
