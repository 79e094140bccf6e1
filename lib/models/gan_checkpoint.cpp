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
              int64_t step, uint64_t seed, const TrainState* train, const AdamW* adam_g, const AdamW* adam_d) {
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
  if (train) add_train_state(w, *train, {{"g.", adam_g}, {"d.", adam_d}});
  w.save(path);
}

GanCheckpoint gan_load(const std::string& path, bool training_state) {
  return gan_load(Safetensors::read(path), training_state);
}

GanCheckpoint gan_load(const Safetensors& st, bool training_state) {
  const std::string& path = st.name();
  check_format(st, kFormat, kVersion, "a GAN");
  GanCheckpoint ckpt;
  ckpt.path = path;
  GanModel& m = ckpt.model;
  try {
    auto config = nlohmann::json::parse(st.meta("config"));
    m.net.image_channels = config_int(st, config, "image_channels");
    m.net.image_size = config_int(st, config, "image_size");
    m.net.latent = config_int(st, config, "latent");
    m.net.g_channels = config_int(st, config, "g_channels");
    m.net.d_channels = config_int(st, config, "d_channels");
    m.net.levels = config_int(st, config, "levels");
    m.net.classes = config_int(st, config, "classes");
    m.class_names = config.at("class_names").get<std::vector<std::string>>();
    m.objective = parse_objective(config.at("loss").get<std::string>());
    m.net.validate();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path, fmt::format("the model config in the metadata is not valid ({})", e.what()));
  }
  if (static_cast<int64_t>(m.class_names.size()) != m.net.classes)
    throw Error(path, fmt::format("the config names {} classes but the model has {}", m.class_names.size(),
                                  m.net.classes));
  ckpt.step = meta_int(st, "step");
  ckpt.seed = static_cast<uint64_t>(meta_int(st, "seed"));

  const ParameterLimit limit = parameter_limit(st);  // before anything is allocated
  Generator g(m.net);
  Discriminator d(m.net);
  const int64_t ng = static_cast<int64_t>(g.params().size()), nd = static_cast<int64_t>(d.params().size());
  ckpt.g.assign_zeros(static_cast<size_t>(ng));
  ckpt.d.assign_zeros(static_cast<size_t>(nd));
  ckpt.running.resize(g.running().size());
  for (const auto& view : g.params().views())
    st.read_f32(fmt::format("g.{}", view.name), view.shape, ckpt.g.data() + view.offset);
  for (const auto& view : d.params().views())
    st.read_f32(fmt::format("d.{}", view.name), view.shape, ckpt.d.data() + view.offset);
  st.read_f32("g.running", {static_cast<int64_t>(ckpt.running.size())}, ckpt.running.data());
  for (float v : ckpt.running)
    if (!std::isfinite(v)) throw Error(path, "the BatchNorm statistics hold a non-finite value");
  ckpt.train = read_train_state(st, {{"g.", ng}, {"d.", nd}}, training_state);
  for (const auto& entry : st.entries()) {
    const std::string& name = entry.name;
    bool known = name == "g.running" || is_train_tensor(name, {{"g.", ng}, {"d.", nd}}) ||
                 (name.starts_with("g.") && g.params().find(name.substr(2))) ||
                 (name.starts_with("d.") && d.params().find(name.substr(2)));
    if (!known) throw Error(path, fmt::format("unexpected tensor '{}' for this model", name));
  }
  return ckpt;
}

}  // namespace gen
