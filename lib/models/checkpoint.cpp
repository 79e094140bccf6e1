#include "models/checkpoint.h"

#include <cstdint>

#include <bit>

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

void check_format(const Safetensors& st, const char* format, const char* version, const char* what) {
  if (!st.metadata().count("format")) throw Error(st.name(), "not a gen checkpoint (its metadata has no format)");
  const std::string& found = st.meta("format");
  if (found != format)
    throw Error(st.name(), fmt::format("not {}: its format is '{}', expected '{}'", what, found, format));
  if (st.meta("version") != version)
    throw Error(st.name(), fmt::format("checkpoint version {} is not supported (this gen reads {})",
                                       st.meta("version"), version));
}

int64_t meta_int(const Safetensors& st, const std::string& key) {
  const std::string& text = st.meta(key);
  try {
    size_t used = 0;
    long long value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw Error(st.name(), fmt::format("metadata '{}' is not an integer: '{}'", key, text));
}

void rng_to_json(nlohmann::json& j, const Rng::State& rng) {
  j["rng_state"] = std::to_string(rng.state);
  j["rng_increment"] = std::to_string(rng.increment);
  j["rng_seed"] = std::to_string(rng.seed);
  j["rng_spare_bits"] = std::bit_cast<uint32_t>(rng.spare);
  j["rng_has_spare"] = rng.has_spare;
}

std::string train_metadata(nlohmann::json fields, const std::string& settings, const Rng::State& rng) {
  fields["settings"] = nlohmann::json::parse(settings);
  rng_to_json(fields, rng);
  return fields.dump();
}

Rng::State rng_from_json(const nlohmann::json& j) {
  Rng::State rng{};
  rng.state = std::stoull(j.at("rng_state").get<std::string>());
  rng.increment = std::stoull(j.at("rng_increment").get<std::string>());
  rng.seed = std::stoull(j.at("rng_seed").get<std::string>());
  rng.spare = std::bit_cast<float>(j.at("rng_spare_bits").get<uint32_t>());
  rng.has_spare = j.at("rng_has_spare").get<bool>();
  return rng;
}

int64_t config_int(const Safetensors& st, const nlohmann::json& config, const char* key) {
  if (!config.is_object() || !config.contains(key))
    throw Error(st.name(), fmt::format("the model config has no '{}'", key));
  const nlohmann::json& v = config[key];
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
    throw Error(st.name(), fmt::format("the model config's '{}' is {}, not a whole number", key, v.dump()));
  return v.get<int64_t>();
}

std::vector<int64_t> config_ints(const Safetensors& st, const nlohmann::json& config, const char* key) {
  if (!config.is_object() || !config.contains(key) || !config[key].is_array())
    throw Error(st.name(), fmt::format("the model config has no list '{}'", key));
  std::vector<int64_t> values;
  for (size_t i = 0; i < config[key].size(); ++i) {
    const nlohmann::json one = {{key, config[key][i]}};
    values.push_back(config_int(st, one, key));
  }
  return values;
}

ParameterLimit parameter_limit(const Safetensors& st) {
  uint64_t bytes = 0;
  for (const auto& entry : st.entries())
    if (entry.dtype == Dtype::F32) bytes += entry.size;
  return ParameterLimit(bytes / sizeof(float), st.name());
}

}  // namespace gen
