// Fuzz every checkpoint kind's loader, the whole path from bytes to a model: the safetensors
// container, the format, the model config, the embedded tokenizer (GPT), every tensor's shape,
// the training state, then the model built from it and run once on a tiny input. Any bytes give
// a working model or an Error naming the file; never a crash, and never more memory than the
// file's size justifies (the loaders cap a model at what its file holds). The seed corpus in
// tests/fuzz/checkpoint/ holds a small checkpoint of each kind.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/adversarial.h"
#include "models/classifier.h"
#include "models/classifier_checkpoint.h"
#include "models/gan.h"
#include "models/gan_checkpoint.h"
#include "models/gpt.h"
#include "models/gpt_checkpoint.h"
#include "models/unet.h"
#include "models/unet_checkpoint.h"
#include "tensor/graph.h"

namespace {

void expect_named(const gen::Error& e) {
  if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
}

template <typename Load>
void attempt(Load load) {
  try {
    load();
  } catch (const gen::Error& e) {
    expect_named(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::optional<gen::Safetensors> st;
  try {
    st.emplace(gen::Safetensors::parse(bytes, "fuzz"));
  } catch (const gen::Error& e) {
    expect_named(e);
    return 0;
  }
  // Each kind loaded for training (everything read) and, apart, as the sampling tools load it
  // (the optimizer's moments checked, not read): bytes one refuses must not crash the other.
  attempt([&] { (void)gen::gpt_load(*st); });
  attempt([&] {
    gen::GptCheckpoint c = gen::gpt_load(*st, /*training_state=*/false);
    gen::Gpt model(c.config);
    c.copy_weights(model);
    std::vector<uint32_t> ids = {0};
    gen::Arena arena;
    gen::Graph g(arena, false);
    (void)model.logits(g, ids.data(), 1, 1);
  });
  attempt([&] { (void)gen::diffusion_load(*st); });
  attempt([&] {
    gen::DiffusionCheckpoint c = gen::diffusion_load(*st, /*training_state=*/false);  // as gdiffuse sample loads
    gen::Unet model(c.model.unet, std::move(c.ema));
    const int64_t P = c.model.unet.image_channels * c.model.unet.image_size * c.model.unet.image_size;
    std::vector<float> x(static_cast<size_t>(P), 0.1f), t = {1.0f};
    std::vector<uint32_t> label = {0};
    gen::Arena arena;
    gen::Graph g(arena, false);
    (void)model.forward(g, g.constant({1, c.model.unet.image_channels, c.model.unet.image_size, c.model.unet.image_size}, x.data()),
                        t.data(), label.data());
  });
  attempt([&] { (void)gen::gan_load(*st); });
  attempt([&] {
    gen::GanCheckpoint c = gen::gan_load(*st, /*training_state=*/false);  // as ggan sample loads
    gen::Generator G(c.model.net, std::move(c.g));
    G.running() = c.running;
    std::vector<float> z(static_cast<size_t>(c.model.net.latent), 0.5f);
    (void)gen::generate(G, z, {0}, 1);
  });
  attempt([&] { (void)gen::classifier_load(*st); });
  attempt([&] {
    gen::ClassifierCheckpoint c = gen::classifier_load(*st, /*training_state=*/false);  // as gscore loads
    gen::Classifier model(c.model.net, std::move(c.weights));
    const int64_t P = c.model.net.image_channels * c.model.net.image_size * c.model.net.image_size;
    std::vector<float> x(static_cast<size_t>(P), 0.1f);
    (void)gen::classify(model, x.data(), 1);
  });
  return 0;
}
