#include "train/train_state.h"

#include <stdexcept>
#include <fmt/format.h>

#include "core/error.h"
#include "core/sha256.h"
#include "models/checkpoint.h"

namespace gen {

void add_train_state(SafetensorsWriter& w, const TrainState& state,
                     const std::vector<std::pair<std::string, const AdamW*>>& optimizers) {
  nlohmann::json j{{"steps", state.steps}, {"settings", state.settings}, {"data", state.data}};
  for (const auto& [prefix, adam] : optimizers) {
    const int64_t n = static_cast<int64_t>(adam->m().size());
    w.add_f32_borrowed(prefix + "optimizer.m", {n}, adam->m().data());
    w.add_f32_borrowed(prefix + "optimizer.v", {n}, adam->v().data());
    j[prefix + "adam_steps"] = adam->steps();
  }
  rng_to_json(j, state.rng);
  w.metadata["train"] = j.dump();
}

std::optional<TrainState> read_train_state(const Safetensors& st,
                                           const std::vector<std::pair<std::string, int64_t>>& optimizers,
                                           bool moments) {
  bool any = st.metadata().count("train") > 0;
  for (const auto& [prefix, n] : optimizers) any = any || st.has(prefix + "optimizer.m") || st.has(prefix + "optimizer.v");
  if (!any) return std::nullopt;
  TrainState state;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(st.meta("train"));
    if (!j.contains("steps") || !j["steps"].is_number_integer())
      throw Error(st.name(), "the training state's planned steps are not a whole number");
    state.steps = j["steps"].get<int64_t>();
    state.settings = j.at("settings");
    state.data = j.at("data").get<std::string>();
    state.rng = rng_from_json(j);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(st.name(), fmt::format("the training state in the metadata is not valid ({})", e.what()));
  }
  if (state.steps < 1 || state.steps > (int64_t{1} << 30))
    throw Error(st.name(), fmt::format("the training state's planned steps ({}) are outside 1..{}", state.steps,
                                       int64_t{1} << 30));
  for (const auto& [prefix, n] : optimizers) {
    OptimizerState o;
    const auto steps = j.find(prefix + "adam_steps");
    if (steps == j.end() || !steps->is_number_integer() ||
        (steps->is_number_unsigned() && steps->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) ||
        steps->get<int64_t>() < 0)
      throw Error(st.name(), fmt::format("the training state has no valid '{}adam_steps'", prefix));
    o.steps = steps->get<int64_t>();
    if (!moments) {
      for (const char* name : {"optimizer.m", "optimizer.v"}) st.check_f32(prefix + name, {n});
      state.optimizers.push_back(std::move(o));
      continue;
    }
    o.m.resize(static_cast<size_t>(n));
    o.v.resize(static_cast<size_t>(n));
    st.read_f32(prefix + "optimizer.m", {n}, o.m.data());
    st.read_f32(prefix + "optimizer.v", {n}, o.v.data());
    // A second moment is a running mean of squares: never negative, never NaN.
    for (size_t i = 0; i < o.v.size(); ++i)
      if (!(o.v[i] >= 0) || !std::isfinite(o.v[i]) || !std::isfinite(o.m[i]))
        throw Error(st.name(), fmt::format("tensor '{}optimizer.{}' holds an invalid value at {}", prefix,
                                           std::isfinite(o.m[i]) ? "v" : "m", i));
    state.optimizers.push_back(std::move(o));
  }
  return state;
}

bool is_train_tensor(const std::string& name, const std::vector<std::pair<std::string, int64_t>>& optimizers) {
  for (const auto& [prefix, n] : optimizers)
    if (name == prefix + "optimizer.m" || name == prefix + "optimizer.v") return true;
  return false;
}

void restore(AdamW& adam, OptimizerState& state) {
  if (state.m.size() != adam.m().size() || state.v.size() != adam.v().size())
    throw std::logic_error("restore: the optimizer state's moments were not read (read_train_state without moments)");
  adam.m() = std::move(state.m);
  adam.v() = std::move(state.v);
  adam.set_steps(state.steps);
}

std::string data_fingerprint(std::string_view bytes) { return sha256_hex(bytes); }

std::string data_fingerprint(const Dataset& set) {
  std::string bytes = fmt::format("{}x{}x{}x{}:", set.count, set.width, set.height, set.channels);
  bytes.append(reinterpret_cast<const char*>(set.images.data()), set.images.size());
  bytes.append(reinterpret_cast<const char*>(set.labels.data()), set.labels.size());
  return sha256_hex(bytes);
}

}  // namespace gen
