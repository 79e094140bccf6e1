// Writes what the PyTorch golden test (check_gpt.py) compares against: a small GPT's initial
// weights and a batch (golden_in.st), and what gen computes from them (golden_out.st): the
// logits, the loss, every gradient, and every weight after 3 AdamW steps on that batch, and
// after 3 steps with the blocks' matrices by Muon.
// Usage: gpt_golden DIR
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "models/gpt.h"
#include "tensor/optimizer.h"

using namespace gen;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gpt_golden DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const GptConfig config{.vocab = 11, .context = 8, .layers = 2, .heads = 2, .embd = 16};
  const int64_t B = 3, T = 8;
  // eps is 1e-6, not 1e-8: the key bias has an exactly-zero gradient in exact arithmetic, and
  // Adam divides its rounding noise (1e-10 in float, 1e-18 in double) by sqrt(v) + eps; with
  // 1e-8 that noise alone moves the weight by 1% of lr, which no float/double comparison holds.
  const AdamWConfig adam_config{.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f};
  const float lr = 1e-2f, clip = 1.0f;

  Gpt model(config);
  Rng rng(5);
  model.init(rng);
  std::vector<int64_t> ids64(B * T), targets64(B * T);
  std::vector<uint32_t> ids(B * T), targets(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    ids[i] = rng.below(static_cast<uint32_t>(config.vocab));
    targets[i] = rng.below(static_cast<uint32_t>(config.vocab));
    ids64[i] = ids[i];
    targets64[i] = targets[i];
  }

  SafetensorsWriter in;
  in.metadata["config"] = nlohmann::json{{"vocab", config.vocab}, {"context", config.context},
                                         {"layers", config.layers}, {"heads", config.heads}, {"embd", config.embd}}
                              .dump();
  in.metadata["adamw"] = nlohmann::json{{"lr", lr}, {"beta1", adam_config.beta1}, {"beta2", adam_config.beta2},
                                        {"eps", adam_config.eps}, {"weight_decay", adam_config.weight_decay},
                                        {"clip", clip}, {"steps", 3}}
                             .dump();
  for (const auto& view : model.params().views())
    in.add_f32(view.name, view.shape, model.params().values() + view.offset);
  auto as_bytes = [](const std::vector<int64_t>& v) {
    return std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
  };
  in.add("ids", Dtype::I64, {B, T}, as_bytes(ids64));
  in.add("targets", Dtype::I64, {B, T}, as_bytes(targets64));
  Output in_file(dir + "/golden_in.st");
  in.write(in_file);
  in_file.commit();

  SafetensorsWriter out;
  Arena arena;
  const std::vector<float> initial(model.params().values(), model.params().values() + model.params().size());
  // Three steps by AdamW ("after."), then from the same weights three with the blocks' matrices
  // by Muon ("muon."; gtrain --muon: momentum 0.95, AdamW's learning rate and weight decay).
  for (bool muon : {false, true}) {
    std::copy(initial.begin(), initial.end(), model.params().values());
    AdamW adam(model.params().size(), adam_config);
    const Muon by_muon(model.block_matrices(), {.momentum = 0.95f, .weight_decay = adam_config.weight_decay});
    if (muon) adam.leave_out(model.block_matrices(), model.params().views().size());
    for (int step = 0; step < 3; ++step) {
      arena.reset();
      Graph g(arena, true);
      model.params().zero_grads();
      Tensor logits = model.logits(g, ids.data(), B, T);
      Graph::Loss loss = g.cross_entropy(logits, targets.data());
      g.backward();
      if (step == 0 && !muon) {
        out.add_f32("logits", logits.shape, logits.data);
        out.add_f32("loss", {1}, &loss.mean);
        for (const auto& view : model.params().views())
          out.add_f32("grad." + view.name, view.shape, model.params().grads() + view.offset);
      }
      clip_grad_norm(model.params(), clip);
      adam.step(model.params(), lr);
      if (muon) by_muon.step(model.params(), adam.m().data(), lr);
    }
    for (const auto& view : model.params().views())
      out.add_f32((muon ? "muon." : "after.") + view.name, view.shape, model.params().values() + view.offset);
  }
  Output out_file(dir + "/golden_out.st");
  out.write(out_file);
  out_file.commit();
  return 0;
}
