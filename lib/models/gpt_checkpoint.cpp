#include "models/gpt_checkpoint.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "text/tokenizer.h"

namespace gen {
namespace {
constexpr const char* kFormat = "gen-gpt";
constexpr const char* kVersion = "1";
}  // namespace

void GptCheckpoint::copy_weights(Gpt& model) const {
  std::memcpy(model.params().values(), weights.data(), weights.size() * sizeof(float));
}

void gpt_save(const std::string& path, const Gpt& model, const std::string& tokenizer, int64_t step, uint64_t seed,
              const TrainState* train, const AdamW* adam) {
  const GptConfig& c = model.config();
  SafetensorsWriter w;
  w.metadata.insert_or_assign("format", kFormat);
  w.metadata.insert_or_assign("version", kVersion);
  w.metadata["config"] = nlohmann::json{{"vocab", c.vocab}, {"context", c.context}, {"layers", c.layers},
                                        {"heads", c.heads}, {"embd", c.embd}}
                             .dump();
  w.metadata["tokenizer_sha256"] = sha256_hex(tokenizer);
  w.metadata["tokenizer_vocab"] = std::to_string(c.vocab);
  w.metadata["step"] = std::to_string(step);
  w.metadata["seed"] = std::to_string(seed);
  for (const auto& view : model.params().views())
    w.add_f32_borrowed(view.name, view.shape, model.params().values() + view.offset);
  w.add("tokenizer", Dtype::U8, {static_cast<int64_t>(tokenizer.size())}, tokenizer);
  if (train) add_train_state(w, *train, {{"", adam}});
  w.save(path);
}

GptCheckpoint gpt_load(const std::string& path, bool training_state) {
  return gpt_load(Safetensors::read(path), training_state);
}

GptCheckpoint gpt_load(const Safetensors& st, bool training_state) {
  const std::string& path = st.name();
  GptCheckpoint ckpt;
  ckpt.path = path;
  check_format(st, kFormat, kVersion, "a language model");
  try {
    auto config = nlohmann::json::parse(st.meta("config"));
    ckpt.config.vocab = config_int(st, config, "vocab");
    ckpt.config.context = config_int(st, config, "context");
    ckpt.config.layers = config_int(st, config, "layers");
    ckpt.config.heads = config_int(st, config, "heads");
    ckpt.config.embd = config_int(st, config, "embd");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, fmt::format("the model config in the metadata is not valid ({})", e.what()));
  }
  try {
    ckpt.config.validate();
  } catch (const UsageError& e) {
    throw Error(path, std::string("the model config is not valid: ") + e.what());
  }
  ckpt.step = meta_int(st, "step");
  ckpt.seed = static_cast<uint64_t>(meta_int(st, "seed"));

  // The tokenizer: present, the hash recorded, the vocabulary the model's.
  const auto& tokenizer = st.get("tokenizer");
  if (tokenizer.dtype != Dtype::U8) throw Error(path, "tensor 'tokenizer' is not U8");
  ckpt.tokenizer = st.bytes(tokenizer);
  ckpt.tokenizer_sha256 = sha256_hex(ckpt.tokenizer);
  if (ckpt.tokenizer_sha256 != st.meta("tokenizer_sha256"))
    throw Error(path, "the embedded tokenizer does not match its recorded SHA-256 (the file is damaged)");
  Tokenizer tok = Tokenizer::from_bytes(ckpt.tokenizer, path + ": tokenizer");
  if (tok.vocab_size() != ckpt.config.vocab)
    throw Error(path, fmt::format("the embedded tokenizer has {} pieces but the model {}", tok.vocab_size(),
                                  ckpt.config.vocab));

  // Every weight with its exact shape; nothing unexpected.
  const ParameterLimit limit = parameter_limit(st);  // before anything is allocated
  Gpt layout(ckpt.config);
  ckpt.weights.assign_zeros(layout.params().size());
  for (const auto& view : layout.params().views())
    st.read_f32(view.name, view.shape, ckpt.weights.data() + view.offset);
  ckpt.train = read_train_state(st, {{"", static_cast<int64_t>(layout.params().size())}}, training_state);
  for (const auto& entry : st.entries()) {
    bool known = entry.name == "tokenizer" || is_train_tensor(entry.name, {{"", 1}}) ||
                 layout.params().find(entry.name) != nullptr;
    if (!known) throw Error(path, fmt::format("unexpected tensor '{}' for this model", entry.name));
  }
  return ckpt;
}

}  // namespace gen
