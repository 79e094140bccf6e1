// The image classifier behind `gscore`: a small CNN that labels images, and whose penultimate
// features are what the Fréchet distance (eval/fid.h) compares, an Inception-style FID with a
// network that knows the data.
//
//   x [B,C,S,S] -> conv 3x3 (channels[0]), ReLU -> per further level: conv 3x3 stride 2
//   (channels[l]), ReLU -> flatten (or global average pooling) -> linear (features), ReLU
//   = the features -> linear (classes) = the logits
//
// With channels {32, 64, 128}, 256 features and 10 classes on 28x28 images: 28 -> 14 -> 7,
// 1.7M parameters (most of them in the 6272 x 256 layer after the flatten).
//
//   gen::Classifier model(config);  model.init(rng);
//   gen::Graph g(arena, true);
//   auto out = model.forward(g, images);                   // out.logits [B,classes], out.features [B,F]
//   auto loss = g.cross_entropy(out.logits, labels);  g.backward();
//   auto probs = gen::classify(model, x.data(), n);        // batched inference: probs and features
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "tensor/graph.h"
#include "tensor/shards.h"
#include "tensor/tensor.h"

namespace gen {

struct ClassifierConfig {
  int64_t image_channels = 1;
  int64_t image_size = 28;
  std::vector<int64_t> channels = {32, 64, 128};  // per level; stride 2 from the second on
  int64_t features = 256;                         // width of the penultimate layer
  int64_t classes = 10;
  bool pool = false;  // global average pooling before the features layer instead of flattening
  // Throws UsageError naming the problem.
  void validate() const;
  // The side of the last level's feature maps (28 -> 14 -> 7: 7).
  int64_t final_size() const;
  // Forward FLOPs per image (multiply-add = 2).
  double flops_per_image() const;
};

class Classifier {
 public:
  // All weights zero (init() draws them), or `weights` as they are (a checkpoint's, no copy).
  explicit Classifier(const ClassifierConfig& config, ZeroedFloats weights = {});
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;
  const ClassifierConfig& config() const { return config_; }
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }

  // He (Kaiming) uniform initialization for the layers followed by a ReLU (bound sqrt(6 /
  // fan_in)), PyTorch's default bound 1/sqrt(fan_in) for the output layer, zero biases.
  void init(Rng& rng);

  struct Output {
    Tensor logits;    // [B, classes]
    Tensor features;  // [B, features]: the penultimate layer, after its ReLU
  };
  // x [B,C,S,S], values in [-1, 1] (io/image.h's to_floats). The weights' gradients go to the
  // shard's copy (Parameters::set_shards, run_shards).
  Output forward(Graph& g, const Tensor& x, int shard = 0);

 private:
  ClassifierConfig config_;
  Parameters params_;
  std::vector<Tensor> conv_w_, conv_b_;
  Tensor fc_w_, fc_b_, out_w_, out_b_;
};

// The classifier on many images, in batches, without gradients: probs [n, classes] (softmax of
// the logits) and features [n, features], each filled when asked for (non-null). images holds n
// images of the model's size as floats (CHW, [-1, 1]).
struct Classified {
  std::vector<float> probs, features;
};
Classified classify(Classifier& model, const float* images, int64_t n, bool want_probs = true,
                    bool want_features = true, int64_t batch = 250);


}  // namespace gen
