#include "models/classifier_checkpoint.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"

namespace gen {
namespace {
constexpr const char* kFormat = "gen-classifier";
constexpr const char* kVersion = "1";
}  // namespace

void classifier_save(const std::string& path, const ClassifierModel& model, const float* weights, int64_t step,
                     uint64_t seed, double test_accuracy, const TrainState* train, const AdamW* adam) {
  const ClassifierConfig& c = model.net;
  SafetensorsWriter w;
  w.metadata = {{"format", kFormat}, {"version", kVersion}};
  w.metadata["config"] = nlohmann::json{{"image_channels", c.image_channels},
                                        {"image_size", c.image_size},
                                        {"channels", c.channels},
                                        {"features", c.features},
                                        {"classes", c.classes},
                                        {"pool", c.pool},
                                        {"class_names", model.class_names}}
                             .dump();
  w.metadata["step"] = std::to_string(step);
  w.metadata["seed"] = std::to_string(seed);
  w.metadata["test_accuracy"] = test_accuracy >= 0 ? fmt::format("{:.6f}", test_accuracy) : "";
  Classifier layout(c);
  for (const auto& view : layout.params().views())
    w.add_f32_borrowed(view.name, view.shape, weights + view.offset);
  if (train) add_train_state(w, *train, {{"", adam}});
  w.save(path);
}

ClassifierCheckpoint classifier_load(const std::string& path, bool training_state) {
  return classifier_load(Safetensors::read(path), training_state);
}

ClassifierCheckpoint classifier_load(const Safetensors& st, bool training_state) {
  const std::string& path = st.name();
  check_format(st, kFormat, kVersion, "an image classifier");
  ClassifierCheckpoint ckpt;
  ckpt.path = path;
  ClassifierModel& m = ckpt.model;
  try {
    auto config = nlohmann::json::parse(st.meta("config"));
    m.net.image_channels = config_int(st, config, "image_channels");
    m.net.image_size = config_int(st, config, "image_size");
    m.net.channels = config_ints(st, config, "channels");
    m.net.features = config_int(st, config, "features");
    m.net.classes = config_int(st, config, "classes");
    m.net.pool = config.at("pool").get<bool>();
    m.class_names = config.at("class_names").get<std::vector<std::string>>();
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
  if (st.metadata().count("test_accuracy") && !st.meta("test_accuracy").empty()) {
    const std::string& text = st.meta("test_accuracy");
    try {
      size_t used = 0;
      ckpt.test_accuracy = std::stod(text, &used);
      if (used != text.size() || !(ckpt.test_accuracy >= 0 && ckpt.test_accuracy <= 1)) throw std::out_of_range(text);
    } catch (const std::exception&) {
      throw Error(path, fmt::format("metadata 'test_accuracy' is not a fraction: '{}'", text));
    }
  }

  const ParameterLimit limit = parameter_limit(st);  // before anything is allocated
  Classifier layout(m.net);
  const int64_t n = static_cast<int64_t>(layout.params().size());
  ckpt.weights.assign_zeros(static_cast<size_t>(n));
  for (const auto& view : layout.params().views())
    st.read_f32(view.name, view.shape, ckpt.weights.data() + view.offset);
  ckpt.train = read_train_state(st, {{"", n}}, training_state);
  for (const auto& entry : st.entries()) {
    bool known = is_train_tensor(entry.name, {{"", n}}) || layout.params().find(entry.name);
    if (!known) throw Error(path, fmt::format("unexpected tensor '{}' for this model", entry.name));
  }
  return ckpt;
}

}  // namespace gen
