#include "models/gan_checkpoint.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"

namespace gen {
namespace {
constexpr const char* kFormat = "gen-gan";
constexpr const char* kVersion = "1";
}  // namespace

const char* objective_name(GanObjective objective) {
  switch (objective) {
    case GanObjective::bce: return "bce";
    case GanObjective::hinge: return "hinge";
    case GanObjective::wgan_gp: return "wgan-gp";
  }
  return "?";
}

GanObjective parse_objective(const std::string& name) {
  for (GanObjective o : {GanObjective::bce, GanObjective::hinge, GanObjective::wgan_gp})
    if (name == objective_name(o)) return o;
  throw UsageError(fmt::format("loss '{}': expected bce, hinge or wgan-gp", name));
}

void gan_save(const std::string& path, const GanModel& model, const Generator& g, const Discriminator& d,
              int64_t step, uint64_t seed, const GanTrainState* train) {
  const GanConfig& c = model.net;
  SafetensorsWriter w;
  w.metadata = {{"format", kFormat}, {"version", kVersion}};
  w.metadata["config"] = nlohmann::json{{"image_channels", c.image_channels},
                                        {"image_size", c.image_size},
                                        {"latent", c.latent},
                                        {"g_channels", c.g_channels},
                                        {"d_channels", c.d_channels},
                                        {"levels", c.levels},
                                        {"classes", c.classes},
                                        {"class_names", model.class_names},
                                        {"loss", objective_name(model.objective)}}
                             .dump();
  w.metadata["step"] = std::to_string(step);
  w.metadata["seed"] = std::to_string(seed);
  for (const auto& view : g.params().views())
    w.add_f32_borrowed(fmt::format("g.{}", view.name), view.shape, g.params().values() + view.offset);
  w.add_f32_borrowed("g.running", {static_cast<int64_t>(g.running().size())}, g.running().data());
  for (const auto& view : d.params().views())
    w.add_f32_borrowed(fmt::format("d.{}", view.name), view.shape, d.params().values() + view.offset);
  if (train) {
    const int64_t ng = static_cast<int64_t>(g.params().size()), nd = static_cast<int64_t>(d.params().size());
    w.add_f32_borrowed("g.optimizer.m", {ng}, train->g_m.data());
    w.add_f32_borrowed("g.optimizer.v", {ng}, train->g_v.data());
    w.add_f32_borrowed("d.optimizer.m", {nd}, train->d_m.data());
    w.add_f32_borrowed("d.optimizer.v", {nd}, train->d_v.data());
    w.metadata["train"] = train_metadata({{"g_adam_steps", train->g_adam_steps}, {"d_adam_steps", train->d_adam_steps}},
                                         train->settings, train->rng);
  }
  w.save(path);
}

GanCheckpoint gan_load(const std::string& path) {
  Safetensors st = Safetensors::read(path);
  check_format(st, kFormat, kVersion, "a GAN");
  GanCheckpoint ckpt;
  ckpt.path = path;
  GanModel& m = ckpt.model;
  try {
    auto config = nlohmann::json::parse(st.meta("config"));
    m.net.image_channels = config.at("image_channels").get<int64_t>();
    m.net.image_size = config.at("image_size").get<int64_t>();
    m.net.latent = config.at("latent").get<int64_t>();
    m.net.g_channels = config.at("g_channels").get<int64_t>();
    m.net.d_channels = config.at("d_channels").get<int64_t>();
    m.net.levels = config.at("levels").get<int64_t>();
    m.net.classes = config.at("classes").get<int64_t>();
    m.class_names = config.at("class_names").get<std::vector<std::string>>();
    m.objective = parse_objective(config.at("loss").get<std::string>());
    m.net.validate();
  } catch (const std::exception& e) {
    throw Error(path, fmt::format("the model config in the metadata is not valid ({})", e.what()));
  }
  if (static_cast<int64_t>(m.class_names.size()) != m.net.classes)
    throw Error(path, fmt::format("the config names {} classes but the model has {}", m.class_names.size(),
                                  m.net.classes));
  ckpt.step = meta_int(st, "step");
  ckpt.seed = static_cast<uint64_t>(meta_int(st, "seed"));

  Generator g(m.net);
  Discriminator d(m.net);
  const int64_t ng = static_cast<int64_t>(g.params().size()), nd = static_cast<int64_t>(d.params().size());
  ckpt.g.resize(static_cast<size_t>(ng));
  ckpt.d.resize(static_cast<size_t>(nd));
  ckpt.running.resize(g.running().size());
  for (const auto& view : g.params().views())
    st.read_f32(fmt::format("g.{}", view.name), view.shape, ckpt.g.data() + view.offset);
  for (const auto& view : d.params().views())
    st.read_f32(fmt::format("d.{}", view.name), view.shape, ckpt.d.data() + view.offset);
  st.read_f32("g.running", {static_cast<int64_t>(ckpt.running.size())}, ckpt.running.data());
  for (float v : ckpt.running)
    if (!std::isfinite(v)) throw Error(path, "the BatchNorm statistics hold a non-finite value");
  if (st.metadata().count("train") || st.has("g.optimizer.m")) {
    GanTrainState train;
    train.g_m.resize(static_cast<size_t>(ng));
    train.g_v.resize(static_cast<size_t>(ng));
    train.d_m.resize(static_cast<size_t>(nd));
    train.d_v.resize(static_cast<size_t>(nd));
    st.read_f32("g.optimizer.m", {ng}, train.g_m.data());
    st.read_f32("g.optimizer.v", {ng}, train.g_v.data());
    st.read_f32("d.optimizer.m", {nd}, train.d_m.data());
    st.read_f32("d.optimizer.v", {nd}, train.d_v.data());
    try {
      auto state = nlohmann::json::parse(st.meta("train"));
      train.g_adam_steps = state.at("g_adam_steps").get<int64_t>();
      train.d_adam_steps = state.at("d_adam_steps").get<int64_t>();
      train.rng = rng_from_json(state);
      train.settings = state.at("settings").dump();
    } catch (const std::exception& e) {
      throw Error(path, fmt::format("the training state in the metadata is not valid ({})", e.what()));
    }
    ckpt.train = std::move(train);
  }
  for (const auto& entry : st.entries()) {
    const std::string& name = entry.name;
    bool known = name == "g.running" || name == "g.optimizer.m" || name == "g.optimizer.v" ||
                 name == "d.optimizer.m" || name == "d.optimizer.v" ||
                 (name.starts_with("g.") && g.params().find(name.substr(2))) ||
                 (name.starts_with("d.") && d.params().find(name.substr(2)));
    if (!known) throw Error(path, fmt::format("unexpected tensor '{}' for this model", name));
  }
  return ckpt;
}

}  // namespace gen
