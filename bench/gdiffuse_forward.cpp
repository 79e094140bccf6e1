// The forward pass of a gdiffuse checkpoint's U-Net on given inputs, for the PyTorch mirror's
// sanity check in bench/gdiffuse.sh (gdiffuse_torch.py check). The training weights ("raw.")
// when the checkpoint has them, else its EMA. Prints the model's forward FLOPs per image.
// Usage: gdiffuse_forward CKPT IN OUT
//   IN: int64 B, then x float[B,C,S,S], t float[B], labels uint32[B] (little-endian);
//   OUT: eps float[B,C,S,S].
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include "models/unet.h"
#include "models/unet_checkpoint.h"
#include "tensor/graph.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: gdiffuse_forward CKPT IN OUT\n");
    return 2;
  }
  gen::DiffusionCheckpoint ckpt = gen::diffusion_load(argv[1]);
  gen::Unet model(ckpt.model.unet);
  if (ckpt.train)
    std::copy(ckpt.raw.begin(), ckpt.raw.end(), model.params().values());
  else
    std::copy(ckpt.ema.begin(), ckpt.ema.end(), model.params().values());
  const auto& u = ckpt.model.unet;
  const int64_t P = u.image_channels * u.image_size * u.image_size;
  std::ifstream in(argv[2], std::ios::binary);
  int64_t B = 0;
  in.read(reinterpret_cast<char*>(&B), sizeof B);
  std::vector<float> x(static_cast<size_t>(B * P)), t(static_cast<size_t>(B));
  std::vector<uint32_t> labels(static_cast<size_t>(B));
  in.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
  in.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(t.size() * sizeof(float)));
  in.read(reinterpret_cast<char*>(labels.data()), static_cast<std::streamsize>(labels.size() * sizeof(uint32_t)));
  if (!in) {
    std::fprintf(stderr, "%s: too short\n", argv[2]);
    return 1;
  }
  gen::Arena arena;
  gen::Graph g(arena, false);
  gen::Tensor out = model.forward(g, g.constant({B, u.image_channels, u.image_size, u.image_size}, x.data()),
                                  t.data(), labels.data());
  std::ofstream(argv[3], std::ios::binary)
      .write(reinterpret_cast<const char*>(out.data), static_cast<std::streamsize>(out.size() * sizeof(float)));
  std::printf("%.0f\n", u.flops_per_image());
  return 0;
}
