#include "train/train_gan.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "core/cluster.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "io/image_files.h"
#include "models/adversarial.h"
#include "models/gan.h"
#include "models/gan_checkpoint.h"
#include "train/loop.h"
#include "train/train_state.h"
#include "train/training_images.h"

namespace gen {

SettingList gan_setting_list(GanTrainSettings& s) {
  SettingList list;
  list.add("--batch", s.batch, 1, 1 << 14, "Images per step (real and fake each)");
  list.add("--lr", s.lr, 0, 1e6, "Adam learning rate, both networks", Bound::open_low);
  list.add("--beta1", s.beta1, 0, 0.9999, "Adam beta1");
  list.add("--beta2", s.beta2, 0, 0.99999, "Adam beta2");
  list.add("--d-steps", s.d_steps, 1, 100, "Discriminator steps per generator step");
  list.add("--gp", s.gp, 0, 1e6, "Gradient penalty weight (wgan-gp)");
  list.add("--limit", s.limit, 0, int64_t{1} << 31, "Use only the first N images (0: all)");
  return list;
}

namespace {

// WGAN-GP's own recipe (Gulrajani et al. 2017) for the settings not given: --d-steps 5, --lr
// 1e-4, --beta1 0, --beta2 0.9. given(option) says whether an option was on the command line.
template <typename Given>
void wgan_defaults(GanTrainSettings& s, Given given) {
  if (!given("--d-steps")) s.d_steps = 5;
  if (!given("--lr")) s.lr = 1e-4f;
  if (!given("--beta1")) s.beta1 = 0.0f;
  if (!given("--beta2")) s.beta2 = 0.9f;
}

class GanTask : public TrainTask {
 public:
  GanTask(GanTrainJob& job, const GanModel& info, const Dataset& set, int64_t total, std::string fingerprint)
      : job_(job), info_(info), total_(total), fingerprint_(std::move(fingerprint)), G_(info.net), D_(info.net),
        rng_(job.run.seed),
        race_(G_, D_, info.objective,
              {.batch = job.settings.batch, .lr = job.settings.lr, .beta1 = job.settings.beta1,
               .beta2 = job.settings.beta2, .d_steps = job.settings.d_steps, .gp = job.settings.gp},
              set, rng_, &cluster()),
        monitor_(set, info.objective) {}
  Generator& G() { return G_; }
  Discriminator& D() { return D_; }
  Rng& rng() { return rng_; }
  AdversarialStep& race() { return race_; }

  std::vector<Column> columns() const override {
    return {loss_column("d_loss", "D loss"), loss_column("g_loss", "G loss"), shown_column("d_real", "D(x)"),
            shown_column("d_fake", "D(G(z))"), figure_column("gp")};
  }

  StepResult step(int64_t step, bool /*last*/) override {
    const AdversarialFigures f = race_.step();
    StepResult r;
    r.values = {f.d_loss, f.g_loss, f.d_real, f.d_fake, f.gp};
    if (std::isfinite(f.d_loss) && std::isfinite(f.g_loss)) r.messages = monitor_.observe(step + 1, f, G_, job_.run.seed);
    return r;
  }

  void save(const std::string& path, int64_t steps, bool optimizer) override {
    TrainState state{.steps = total_, .settings = gan_setting_list(job_.settings).to_json(), .data = fingerprint_,
                     .rng = rng_.save(), .optimizers = {}};
    gan_save(path, info_, G_, D_, steps, job_.run.seed, optimizer ? &state : nullptr, &race_.adam_g(), &race_.adam_d());
  }

  // A grid from fixed latents (the same at every preview): one column per class when
  // conditional, else 8x8.
  void preview(const std::string& path) override {
    const GanConfig& c = G_.config();
    const int64_t classes = c.classes, cols = classes > 0 ? classes : 8, rows = classes > 0 ? 6 : 8, n = cols * rows;
    std::vector<float> z(static_cast<size_t>(n * c.latent));
    std::vector<uint32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      draw_latent(z.data() + i * c.latent, c.latent, job_.run.seed + 1000, i, 1.0);
      labels[static_cast<size_t>(i)] = classes > 0 ? static_cast<uint32_t>(i % classes) : 0;
    }
    std::vector<float> x = generate(G_, z, labels, n);
    write_images(path, tiles_from_floats(x.data(), n, c.image_channels, c.image_size), fmt::format("{}x{}", cols, rows),
                 2);
  }

 private:
  GanTrainJob& job_;
  const GanModel& info_;
  int64_t total_;
  std::string fingerprint_;
  Generator G_;
  Discriminator D_;
  Rng rng_;
  AdversarialStep race_;
  CollapseMonitor monitor_;
};

}  // namespace

void train_gan(GanTrainJob& job) {
  use_threads(job.run.threads);
  check_outputs(job.run);
  RunOptions& run = job.run;
  GanTrainSettings& s = job.settings;
  GanModel info;
  std::optional<GanCheckpoint> checkpoint;
  int64_t step = 0, total = run.steps;
  if (!run.resume.empty()) {
    checkpoint = gan_load(run.resume);
    SettingList settings = gan_setting_list(s);
    info = checkpoint->model;
    step = checkpoint->step;
    total = resume_from(checkpoint->train, step, checkpoint->seed, settings, run);
  }

  ImageData data = load_training_images(job.data, job.labels, s.limit, "the GAN");
  const std::string fingerprint = data_fingerprint(data.set);
  if (!checkpoint) {
    info.net.image_channels = data.set.channels;
    info.net.image_size = data.set.height;
    info.net.latent = job.latent;
    info.net.g_channels = job.g_channels;
    info.net.d_channels = job.d_channels;
    info.objective = parse_objective(job.loss);
    if (job.conditional) {
      if (!data.set.labelled())
        throw Error(job.data, "has no labels: --conditional needs labelled images (fashion-mnist, or IDX with --labels)");
      info.net.classes = static_cast<int64_t>(data.class_names.size());
      info.class_names = data.class_names;
    }
    try {
      info.net.validate();
    } catch (const UsageError& e) {
      throw Error(job.data, fmt::format("{} (images {}x{})", e.what(), data.set.width, data.set.height));
    }
  }
  check_labels(data.set, job.data, info.net.classes);
  if (checkpoint)
    check_resumed_images(data.set, job.data, info.net.image_size, info.net.image_channels, fingerprint,
                         checkpoint->train->data, run.resume);

  GanTask task(job, info, data.set, total, fingerprint);
  if (checkpoint) {
    std::copy(checkpoint->g.begin(), checkpoint->g.end(), task.G().params().values());
    std::copy(checkpoint->d.begin(), checkpoint->d.end(), task.D().params().values());
    task.G().running() = checkpoint->running;
    restore(task.race().adam_g(), checkpoint->train->optimizers[0]);
    restore(task.race().adam_d(), checkpoint->train->optimizers[1]);
    task.rng().restore(checkpoint->train->rng);
    checkpoint.reset();
  } else {
    task.G().init(task.rng());
    task.D().init(task.rng());
  }

  const GanConfig& c = info.net;
  const int64_t B = s.batch, S = c.image_size;
  const bool wgan = info.objective == GanObjective::wgan_gp;
  const double flops = static_cast<double>(B) *
                       (3 * c.g_flops_per_image() +
                        static_cast<double>(s.d_steps) * (3 * 2 * c.d_flops_per_image() + (wgan ? 4 * c.d_flops_per_image() : 0)) +
                        3 * c.d_flops_per_image());
  LoopOptions loop(run, step, total, static_cast<double>(B), "img");
  loop.banner = fmt::format("generator {} parameters, discriminator {} ({} loss{}), {} images of {}x{}",
                            task.G().params().size(), task.D().params().size(), objective_name(info.objective),
                            c.classes > 0 ? fmt::format(", {} classes", c.classes) : "", data.set.count, S, S);
  loop.batch = fmt::format("{} images, {:.2f} GFLOP per step", B, flops / 1e9);
  loop.plot_title = fmt::format("ggan: {} loss, batch {}", objective_name(info.objective), B);
  loop.plot_y_label = "loss (moving average)";
  train_loop(task, loop);
}

void add_gan_train_options(CLI::App& app, GanTrainJob& job) {
  job.run.steps = 5000;
  add_image_data_options(app, job.data, job.labels, /*folders=*/true);
  add_run_options(app, job.run,
                  {.output = "gan.st",
                   .steps = "Generator steps in all (with --resume: the new total; default there: the saved one)",
                   .seed = "Seed for initialization, batches and latents",
                   .plot = "Draw both losses against step as a PNG",
                   .preview = "A sample grid from fixed latents (PNG), at the end and every --preview-every steps; p-%05d.png keeps each, numbered by step"});
  app.add_option("--loss", job.loss,
                 "bce (non-saturating, DCGAN), hinge, or wgan-gp (Wasserstein with gradient penalty; "
                 "defaults then: --d-steps 5, --lr 1e-4, --beta1 0, --beta2 0.9)")
      ->capture_default_str();
  app.add_flag("--conditional", job.conditional, "Condition both networks on the class (labelled data)");
  app.add_option("--latent", job.latent, "Size of the latent z")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--g-channels", job.g_channels,
                 "Generator channels at its smallest size (7x7 for 28x28; halved per level)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--d-channels", job.d_channels, "Discriminator channels at half the image size (doubled per level)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  gan_setting_list(job.settings).register_options(app);
}

void train_gan_command(const CLI::App& app, GanTrainJob& job) {
  finish_train_options(app, job.run, gan_setting_list(job.settings),
                       {"--loss", "--conditional", "--latent", "--g-channels", "--d-channels"});
  if (job.run.resume.empty() && parse_objective(job.loss) == GanObjective::wgan_gp)
    wgan_defaults(job.settings, [&](const char* name) { return app.count(name) > 0; });
  train_gan(job);
}

}  // namespace gen
