// The layers of image models (the diffusion U-Net, the GAN, the classifier), as forward and
// backward kernel pairs over flat NCHW buffers, with the conventions of kernels.h: backward
// accumulates (+=) into gradients (into the input's gradient only if not told to overwrite it), a
// null gradient pointer means "not needed", and every kernel is a template over float and double
// (the gradient checks run in double).
//
//   nn::conv2d_forward(out, inp, w, b, {B, C, H, W, OC, K, stride, pad});
//   nn::groupnorm_forward(out, mean, rstd, inp, w, b, B, C, HW, G);
#pragma once

#include <cstdint>

namespace gen::nn {

// The shape of a 2-D convolution: inp[B,C,H,W], w[OC,C,K,K], b[OC] -> out[B,OC,OH,OW] with
// OH = (H + 2 pad - K) / stride + 1 (and OW likewise).
struct ConvShape {
  int64_t B, C, H, W, OC, K, stride = 1, pad = 0;
  int64_t OH() const { return (H + 2 * pad - K) / stride + 1; }
  int64_t OW() const { return (W + 2 * pad - K) / stride + 1; }
};

// Convolution as im2col + GEMM per image, images spread over the OpenMP threads. b may be null.
template <typename T>
void conv2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s);
template <typename T>
void conv2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s,
                     bool overwrite = false);

// Inference only (no backward): out = conv2d(silu(groupnorm(inp, gn_w, gn_b, G)), w, b) +
// per_image[B, OC] (a vector per image at every pixel) + plus[B, OC, OH, OW] (a residual): after
// a pass for the groups' statistics, each image's normalized input is made in a per-thread
// scratch buffer (in L2) as the convolution reads it, never written out whole, and what is added
// goes into out before the product is added to it. Every pointer but out, inp and w may be null
// (gn_w null: no normalization, no SiLU). The U-Net's residual blocks at sampling time.
template <typename T>
void conv2d_inference(T* out, const T* inp, const T* w, const T* b, const ConvShape& s, const T* per_image,
                      const T* plus, const T* gn_w = nullptr, const T* gn_b = nullptr, int64_t G = 1);

// Transposed convolution (the gradient of conv2d with respect to its input, used as an
// upsampling layer): inp[B,C,H,W], w[C,OC,K,K] (PyTorch's ConvTranspose2d layout), b[OC] ->
// out[B,OC,OH,OW] with OH = (H - 1) stride - 2 pad + K. Here s.C is the input's channels and
// s.H, s.W its size; s.OH()/OW() do not apply, use conv_transpose_size().
int64_t conv_transpose_size(int64_t H, int64_t K, int64_t stride, int64_t pad);
template <typename T>
void conv_transpose2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s);
template <typename T>
void conv_transpose2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s,
                               bool overwrite = false);

// Group normalization (Wu and He 2018): the C channels of each image are split into G groups
// and each group's C/G x HW values are normalized to mean 0, variance 1 (eps 1e-5), then scaled
// and shifted per channel: out[B,C,HW] = (inp - mean) rstd w[C] + b[C]. mean, rstd [B,G] saved.
template <typename T>
void groupnorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                       int64_t HW, int64_t G);
template <typename T>
void groupnorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G, bool overwrite = false);

// GroupNorm then SiLU in one pass (the pair before every convolution of a U-Net's residual
// block): out = silu(groupnorm(inp)). Backward recomputes the normalized values from inp and the
// saved mean, rstd rather than keeping them; b is needed for that.
template <typename T>
void groupnorm_silu_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                            int64_t HW, int64_t G);
template <typename T>
void groupnorm_silu_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* b,
                             const T* mean, const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G,
                             bool overwrite = false);

// SiLU (swish): out = x sigmoid(x), elementwise over n values.
template <typename T>
void silu_forward(T* out, const T* inp, int64_t n);
template <typename T>
void silu_backward(T* dinp, const T* inp, const T* dout, int64_t n);

// Nearest-neighbour upsampling by 2: inp[B,C,H,W] -> out[B,C,2H,2W]; backward sums each 2x2.
template <typename T>
void upsample2x_forward(T* out, const T* inp, int64_t BC, int64_t H, int64_t W);
template <typename T>
void upsample2x_backward(T* dinp, const T* dout, int64_t BC, int64_t H, int64_t W);

// A per-channel vector added to every pixel: out[B,C,HW] = x[B,C,HW] + e[B,C] (how a U-Net's
// residual block takes the time embedding).
template <typename T>
void add_channels_forward(T* out, const T* x, const T* e, int64_t B, int64_t C, int64_t HW);
template <typename T>
void add_channels_backward(T* dx, T* de, const T* dout, int64_t B, int64_t C, int64_t HW);

// Concatenation along channels: a[B,C1,HW] and b[B,C2,HW] -> out[B,C1+C2,HW] (skip connections).
template <typename T>
void concat_channels_forward(T* out, const T* a, const T* b, int64_t B, int64_t C1, int64_t C2, int64_t HW);
template <typename T>
void concat_channels_backward(T* da, T* db, const T* dout, int64_t B, int64_t C1, int64_t C2, int64_t HW);

// Mean squared error over n values: returns mean((pred - target)^2); backward adds
// 2 (pred - target) / n * dloss to dpred.
template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n);
template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n, T dloss);

// Rows of a table: out[N,C] = table[ids[n]] (class embeddings); backward adds into the rows.
template <typename T>
void gather_rows_forward(T* out, const T* table, const uint32_t* ids, int64_t N, int64_t C);
template <typename T>
void gather_rows_backward(T* dtable, const T* dout, const uint32_t* ids, int64_t N, int64_t C);

// Sinusoidal embedding of diffusion steps t[N] ("Attention Is All You Need", section 3.5, as
// DDPM): out[N,D], the first D/2 columns sin(t f_i), the rest cos(t f_i), f_i = 10000^(-i/(D/2)).
// Not differentiable (its input is an integer step). D must be even.
void timestep_embedding(float* out, const float* t, int64_t N, int64_t D);

}  // namespace gen::nn
