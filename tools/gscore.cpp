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

#include "core/cli.h"
#include "core/cluster.h"
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
#include "train/train_classifier.h"

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
      if (arg != "-" && !fs::exists(arg, ec)) throw Error(arg, "cannot open: no such file or folder");
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
  Loaded l{gen::classifier_load(a.checkpoint, /*training_state=*/false), nullptr};
  l.model = std::make_unique<gen::Classifier>(l.ckpt.model.net, std::move(l.ckpt.weights));
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
  const int64_t n = static_cast<int64_t>(paths.size()), K = net.classes, F = net.features;
  // Under mpirun each rank reads and classifies its share of the samples and of the reference;
  // the rows come together in order, so every rank fits the Gaussians of one process.
  gen::Cluster& cluster = gen::cluster();
  const gen::Share mine = gen::share_of(n, cluster);
  const bool writer = cluster.rank() == 0;
  std::vector<float> x = read_images({paths.begin() + mine.begin, paths.begin() + mine.end}, net);

  // The reference: Fashion-MNIST's test or training set, or a folder of PNGs.
  gen::ImageData ref = gen::load_image_data(a.ref, "");
  gen::limit_images(ref.set, a.ref_limit);
  check_dataset(ref.set, a.ref, net);
  if (ref.set.count < 2) throw Error(a.ref, "the reference needs at least 2 images");
  if (!a.quiet && writer)
    std::fprintf(stderr, "gscore: features of %lld samples and %d reference images\n", static_cast<long long>(n),
                 ref.set.count);
  const gen::Classified share = gen::classify(*l.model, x.data(), mine.size(), true, true);
  gen::Classified samples{gen::gather_shares(cluster, share.probs.data(), n, K),
                          gen::gather_shares(cluster, share.features.data(), n, F)};
  const gen::Share ref_mine = gen::share_of(ref.set.count, cluster);
  const std::vector<float> ref_x = gen::dataset_floats(ref.set);
  const int64_t P = net.image_channels * net.image_size * net.image_size;
  const std::vector<float> reference = gen::gather_shares(
      cluster, gen::classify(*l.model, ref_x.data() + ref_mine.begin * P, ref_mine.size(), false, true).features.data(),
      ref.set.count, F);
  const double fid = gen::frechet_distance(gen::fit_gaussian(samples.features.data(), n, F),
                                           gen::fit_gaussian(reference.data(), ref.set.count, F));
  if (!writer) return 0;
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
  gen::setup_app(app, "gscore");
  app.require_subcommand(1);
  app.footer(R"(Examples:
  gscore train -o classifier.st --log train.tsv          # Fashion-MNIST, about 92% test accuracy
  gscore classify classifier.st --expect sneaker out-*.png
  gscore fid classifier.st --ref fashion-mnist:test samples/
See gscore SUBCOMMAND --help, and man gscore.)");

  gen::ClassifierTrainJob train;
  auto* cmd_train = app.add_subcommand("train", "Train the CNN classifier");
  gen::add_classifier_train_options(*cmd_train, train);
  cmd_train->footer(R"(Ctrl-C finishes the step, saves the checkpoint and exits 130.
Examples:
  gscore train -o classifier.st --log train.tsv --plot loss.png   # Fashion-MNIST, 5 epochs
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
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 31));
  cmd_fid->footer(R"(An Inception-style FID, computed with a classifier that knows this data instead
of Inception-v3; prints the FID, the mean confidence and the class histogram.
Examples:
  gdiffuse sample ddpm.st --prompt all -n 100 -o samples/s-%04d.png
  gscore fid classifier.st --ref fashion-mnist:test samples/
  gscore fid classifier.st --ref real/ fake/ --expect sneaker)");

  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  if (*cmd_train) {
    gen::train_classifier_command(*cmd_train, train);
    return 0;
  }
  if (*cmd_classify) return run_classify(classify);
  return run_fid(fid);
}

}  // namespace

int main(int argc, char** argv) {
  gen::spin_briefly_when_idle(argv);
  return gen::tool_main("gscore", argc, argv, run);
}
