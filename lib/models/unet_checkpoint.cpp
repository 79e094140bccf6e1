#include "models/unet_checkpoint.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"

namespace gen {
namespace {
constexpr const char* kFormat = "gen-unet";
constexpr const char* kVersion = "1";
}  // namespace

void diffusion_save(const std::string& path, const DiffusionModel& model, const std::vector<float>& ema, int64_t step,
                    uint64_t seed, const TrainState* train, const float* raw, const AdamW* adam) {
  const UnetConfig& c = model.unet;
  SafetensorsWriter w;
  w.metadata = {{"format", kFormat}, {"version", kVersion}};
  w.metadata["config"] = nlohmann::json{{"image_channels", c.image_channels},
                                        {"image_size", c.image_size},
                                        {"channels", c.channels},
                                        {"groups", c.groups},
                                        {"time_dim", c.time_dim},
                                        {"classes", c.classes},
                                        {"attention", c.attention},
                                        {"class_names", model.class_names},
                                        {"schedule", Schedule::name(model.schedule)},
                                        {"T", model.T}}
                             .dump();
  w.metadata["step"] = std::to_string(step);
  w.metadata["seed"] = std::to_string(seed);
  Unet layout(c);
  for (const auto& view : layout.params().views()) w.add_f32_borrowed(view.name, view.shape, ema.data() + view.offset);
  if (train) {
    for (const auto& view : layout.params().views())
      w.add_f32_borrowed(fmt::format("raw.{}", view.name), view.shape, raw + view.offset);
    add_train_state(w, *train, {{"", adam}});
  }
  w.save(path);
}

DiffusionCheckpoint diffusion_load(const std::string& path, bool training_state) {
  return diffusion_load(Safetensors::read(path), training_state);
}

DiffusionCheckpoint diffusion_load(const Safetensors& st, bool training_state) {
  const std::string& path = st.name();
  check_format(st, kFormat, kVersion, "a diffusion model");
  DiffusionCheckpoint ckpt;
  ckpt.path = path;
  DiffusionModel& m = ckpt.model;
  try {
    auto config = nlohmann::json::parse(st.meta("config"));
    m.unet.image_channels = config_int(st, config, "image_channels");
    m.unet.image_size = config_int(st, config, "image_size");
    m.unet.channels = config_ints(st, config, "channels");
    m.unet.groups = config_int(st, config, "groups");
    m.unet.time_dim = config_int(st, config, "time_dim");
    m.unet.classes = config_int(st, config, "classes");
    m.unet.attention = config.value("attention", false);  // absent before attention was an option
    m.class_names = config.at("class_names").get<std::vector<std::string>>();
    m.schedule = Schedule::parse(config.at("schedule").get<std::string>());
    m.T = config_int(st, config, "T");
    m.unet.validate();
    Schedule check(m.schedule, m.T);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path, fmt::format("the model config in the metadata is not valid ({})", e.what()));
  }
  if (static_cast<int64_t>(m.class_names.size()) != m.unet.classes)
    throw Error(path, fmt::format("the config names {} classes but the model has {}", m.class_names.size(),
                                  m.unet.classes));
  ckpt.step = meta_int(st, "step");
  ckpt.seed = static_cast<uint64_t>(meta_int(st, "seed"));

  const ParameterLimit limit = parameter_limit(st);  // before anything is allocated
  Unet layout(m.unet);
  const int64_t n = static_cast<int64_t>(layout.params().size());
  ckpt.ema.assign_zeros(static_cast<size_t>(n));
  for (const auto& view : layout.params().views()) st.read_f32(view.name, view.shape, ckpt.ema.data() + view.offset);
  ckpt.train = read_train_state(st, {{"", n}}, training_state);
  if (ckpt.train && !training_state) {
    for (const auto& view : layout.params().views()) st.check_f32(fmt::format("raw.{}", view.name), view.shape);
  } else if (ckpt.train) {
    ckpt.raw.resize(static_cast<size_t>(n));
    for (const auto& view : layout.params().views())
      st.read_f32(fmt::format("raw.{}", view.name), view.shape, ckpt.raw.data() + view.offset);
  }
  for (const auto& entry : st.entries()) {
    std::string name = entry.name.starts_with("raw.") ? entry.name.substr(4) : entry.name;
    bool known = is_train_tensor(name, {{"", n}}) || layout.params().find(name) != nullptr;
    if (!known) throw Error(path, fmt::format("unexpected tensor '{}' for this model", entry.name));
  }
  return ckpt;
}

}  // namespace gen
