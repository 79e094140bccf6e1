#include "tensor/conv.h"

#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/fast_math.h"
#include "tensor/kernels.h"
#include "tensor/vec.h"

namespace gen::nn {

namespace {

// dst[ox] = src[ox + shift] where 0 <= ox + shift < W, else 0, for ox in [0, OW): one row of
// im2col at stride 1 (W = 0: a row of zeros), for doubles (floats take im2col_padded).
template <typename T>
void shifted_row(T* dst, const T* src, int64_t OW, int64_t shift, int64_t W) {
  const int64_t lo = std::clamp<int64_t>(-shift, 0, OW), hi = std::clamp<int64_t>(W - shift, lo, OW);
  for (int64_t ox = 0; ox < lo; ++ox) dst[ox] = T(0);
  for (int64_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox + shift];
  for (int64_t ox = hi; ox < OW; ++ox) dst[ox] = T(0);
}

// Stride 2: dst[ox] = src[2 ox + shift] where 0 <= 2 ox + shift < W, else 0, for ox in [0, OW);
// and its adjoint, dst[2 ox + shift] += src[ox] for the same ox (col2im's rows). The stride-2
// layers of the GAN and the classifier spend their im2col time here.
template <typename T>
void strided_row(T* dst, const T* src, int64_t OW, int64_t shift, int64_t W) {
  for (int64_t ox = 0; ox < OW; ++ox) {
    const int64_t x = 2 * ox + shift;
    dst[ox] = x >= 0 && x < W ? src[x] : T(0);
  }
}
template <typename T>
void strided_row_add(T* dst, const T* src, int64_t OW, int64_t shift, int64_t W) {
  for (int64_t ox = 0; ox < OW; ++ox) {
    const int64_t x = 2 * ox + shift;
    if (x >= 0 && x < W) dst[x] += src[ox];
  }
}
#if defined(__AVX512F__)
// The lanes t of 16 with 0 <= base + t < W.
inline __mmask16 inside(int64_t base, int64_t W) {
  const int64_t lo = std::clamp<int64_t>(-base, 0, 16), hi = std::clamp<int64_t>(W - base, lo, 16);
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}
// src + offset as a float pointer that may lie outside the row: only masked lanes are touched.
inline const float* at(const float* src, int64_t offset) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(src) + static_cast<uintptr_t>(offset * 4));
}
inline float* at(float* dst, int64_t offset) {
  return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(dst) + static_cast<uintptr_t>(offset * 4));
}
template <>
void strided_row<float>(float* dst, const float* src, int64_t OW, int64_t shift, int64_t W) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t v = 0; v * 16 < OW; ++v) {
    const int64_t base = 32 * v + shift;
    const __mmask16 ma = inside(base, W), mb = inside(base + 16, W);
    const __m512 a = ma ? _mm512_maskz_loadu_ps(ma, at(src, base)) : _mm512_setzero_ps();
    const __m512 b = mb ? _mm512_maskz_loadu_ps(mb, at(src, base + 16)) : _mm512_setzero_ps();
    const int64_t left = std::min<int64_t>(16, OW - 16 * v);
    _mm512_mask_storeu_ps(dst + 16 * v, static_cast<__mmask16>((1u << left) - 1), _mm512_permutex2var_ps(a, even, b));
  }
}
template <>
void strided_row_add<float>(float* dst, const float* src, int64_t OW, int64_t shift, int64_t W) {
  // Each source lane spread to every other lane, zeros between: [s0 0 s1 0 ...], [s8 0 ...].
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
  const __m512i high = _mm512_setr_epi32(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t v = 0; v * 16 < OW; ++v) {
    const int64_t left = std::min<int64_t>(16, OW - 16 * v), base = 32 * v + shift;
    const __m512 x = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << left) - 1), src + 16 * v);
    const __mmask16 ma = inside(base, W), mb = inside(base + 16, W);
    if (ma) {
      float* d = at(dst, base);
      _mm512_mask_storeu_ps(d, ma, _mm512_add_ps(_mm512_maskz_loadu_ps(ma, d), _mm512_permutex2var_ps(x, low, zero)));
    }
    if (mb) {
      float* d = at(dst, base + 16);
      _mm512_mask_storeu_ps(d, mb, _mm512_add_ps(_mm512_maskz_loadu_ps(mb, d), _mm512_permutex2var_ps(x, high, zero)));
    }
  }
}
#endif

#if defined(__AVX512F__)
// Strided convolutions of small images, by gathers: the rows of im2col are as short as the
// output (7 to 14 values), so copying them row by row pays a call and a branch per handful of
// values. Instead each tap (ky, kx) has a table of where each output pixel reads in its channel
// plane (-1: padding), and a channel's K K rows are K K P gathered values, 16 at a time. The
// adjoint, col2im, scatters back: within one tap the pixels read are distinct, so the 16 lanes
// of a scatter never collide.
const int32_t* tap_offsets(const ConvShape& s) {
  thread_local std::vector<int32_t> taps;
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW;
  taps.resize(static_cast<size_t>(s.K * s.K * P));
  for (int64_t ky = 0; ky < s.K; ++ky)
    for (int64_t kx = 0; kx < s.K; ++kx)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          const int64_t y = oy * s.stride + ky - s.pad, x = ox * s.stride + kx - s.pad;
          taps[static_cast<size_t>((ky * s.K + kx) * P + oy * OW + ox)] =
              y >= 0 && y < s.H && x >= 0 && x < s.W ? static_cast<int32_t>(y * s.W + x) : -1;
        }
  return taps.data();
}
inline __mmask16 tail(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1); }

void im2col_gather(float* col, int64_t ld, const float* img, const ConvShape& s) {
  const int64_t P = s.OH() * s.OW(), KK = s.K * s.K;
  const int32_t* taps = tap_offsets(s);
  const __m512i none = _mm512_set1_epi32(-1);
  for (int64_t c = 0; c < s.C; ++c) {
    const float* plane = img + c * s.H * s.W;
    for (int64_t k = 0; k < KK; ++k) {
      float* row = col + (c * KK + k) * ld;
      const int32_t* offsets = taps + k * P;
      for (int64_t v = 0; v < P; v += 16) {
        const __mmask16 lanes = tail(P - v);
        const __m512i idx = _mm512_maskz_loadu_epi32(lanes, offsets + v);
        const __mmask16 valid = _mm512_mask_cmpgt_epi32_mask(lanes, idx, none);
        _mm512_mask_storeu_ps(row + v, lanes, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, plane, 4));
      }
    }
  }
}

void col2im_scatter(float* img, const float* col, int64_t ld, const ConvShape& s) {
  const int64_t P = s.OH() * s.OW(), KK = s.K * s.K;
  const int32_t* taps = tap_offsets(s);
  const __m512i none = _mm512_set1_epi32(-1);
  for (int64_t c = 0; c < s.C; ++c) {
    float* plane = img + c * s.H * s.W;
    for (int64_t k = 0; k < KK; ++k) {
      const float* row = col + (c * KK + k) * ld;
      const int32_t* offsets = taps + k * P;
      for (int64_t v = 0; v < P; v += 16) {
        const __mmask16 lanes = tail(P - v);
        const __m512i idx = _mm512_maskz_loadu_epi32(lanes, offsets + v);
        const __mmask16 valid = _mm512_mask_cmpgt_epi32_mask(lanes, idx, none);
        const __m512 old = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, plane, 4);
        _mm512_mask_i32scatter_ps(plane, valid, idx, _mm512_add_ps(old, _mm512_maskz_loadu_ps(lanes, row + v)), 4);
      }
    }
  }
}
#endif

// rows x OW values from `from` (row stride Wp) into dst, contiguous: whole vectors while they end
// inside the rows x OW values written, the rest one by one.
void copy_window(float* dst, const float* from, int64_t rows, int64_t OW, int64_t Wp) {
  const int64_t total = rows * OW;
  for (int64_t y = 0; y < rows; ++y) {
    float* d = dst + y * OW;
    const float* src = from + y * Wp;
    const int64_t room = total - y * OW - (vec::kFloats - 1);
    int64_t j = 0;
    for (; j < OW && j < room; j += vec::kFloats) vec::store(d + j, vec::load(src + j));
    for (; j < OW; ++j) d[j] = src[j];
  }
}
// A zero-bordered plane (Hp x Wp, kFloats values of slack) per thread, and channel c of img
// copied into its interior.
std::vector<float>& zeroed_plane(const ConvShape& s) {
  thread_local std::vector<float> plane;
  plane.assign(static_cast<size_t>((s.H + 2 * s.pad) * (s.W + 2 * s.pad) + vec::kFloats), 0.0f);
  return plane;
}
void fill_plane(std::vector<float>& plane, const float* img, int64_t c, const ConvShape& s) {
  const int64_t Wp = s.W + 2 * s.pad;
  for (int64_t y = 0; y < s.H; ++y)
    std::memcpy(plane.data() + (y + s.pad) * Wp + s.pad, img + (c * s.H + y) * s.W,
                static_cast<size_t>(s.W) * sizeof(float));
}
// Stride 1 (float): each channel is first copied into a zero-bordered plane, so that every row of
// im2col is a plain copy of OW values from it, a vector at a time (short rows copied one by one,
// or with a branch per part, cost more than the copying). A row's last vector may run past OW
// into the next rows of the same tap, which are written after it, but never past the tap's last
// value (the next image's columns may follow). The plane's slack takes the vectors that read
// past its last row.
void im2col_padded(float* col, int64_t ld, const float* img, const ConvShape& s) {
  const int64_t OH = s.OH(), OW = s.OW(), K = s.K, Wp = s.W + 2 * s.pad;
  std::vector<float>& plane = zeroed_plane(s);
  for (int64_t c = 0; c < s.C; ++c) {
    fill_plane(plane, img, c, s);
    for (int64_t ky = 0; ky < K; ++ky)
      for (int64_t kx = 0; kx < K; ++kx)
        copy_window(col + ((c * K + ky) * K + kx) * ld, plane.data() + ky * Wp + kx, OH, OW, Wp);
  }
}

// col[C K K, OH OW] from img[C,H,W], row r at col + r * ld (ld >= OH OW: several images side by
// side): each column holds the K x K x C window under one output pixel (zeros where the window
// hangs over the padding).
template <typename T>
void im2col(T* col, int64_t ld, const T* img, const ConvShape& s) {
  if constexpr (std::is_same_v<T, float>)
    if (s.stride == 1 && s.OH() > 0 && s.OW() > 0) return im2col_padded(col, ld, img, s);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (s.stride != 1) return im2col_gather(col, ld, img, s);
#endif
  const int64_t OH = s.OH(), OW = s.OW(), K = s.K;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t ky = 0; ky < K; ++ky)
      for (int64_t kx = 0; kx < K; ++kx) {
        T* row = col + ((c * K + ky) * K + kx) * ld;
        for (int64_t oy = 0; oy < OH; ++oy) {
          int64_t y = oy * s.stride + ky - s.pad;
          T* dst = row + oy * OW;
          if (y < 0 || y >= s.H) {
            shifted_row(dst, static_cast<const T*>(nullptr), OW, 0, 0);
            continue;
          }
          const T* src = img + (c * s.H + y) * s.W;
          if (s.stride == 1) {
            shifted_row(dst, src, OW, kx - s.pad, s.W);
          } else if (s.stride == 2) {
            strided_row(dst, src, OW, kx - s.pad, s.W);
          } else {
            for (int64_t ox = 0; ox < OW; ++ox) {
              int64_t x = ox * s.stride + kx - s.pad;
              dst[ox] = x >= 0 && x < s.W ? src[x] : T(0);
            }
          }
        }
      }
}

// The adjoint of im2col: img[C,H,W] += each column's values back at their pixels (row r of the
// columns at col + r * ld).
template <typename T>
void col2im(T* img, const T* col, int64_t ld, const ConvShape& s) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (s.stride != 1) return col2im_scatter(img, col, ld, s);
#endif
  const int64_t OH = s.OH(), OW = s.OW(), K = s.K;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t ky = 0; ky < K; ++ky)
      for (int64_t kx = 0; kx < K; ++kx) {
        const T* row = col + ((c * K + ky) * K + kx) * ld;
        for (int64_t oy = 0; oy < OH; ++oy) {
          int64_t y = oy * s.stride + ky - s.pad;
          if (y < 0 || y >= s.H) continue;
          T* dst = img + (c * s.H + y) * s.W;
          const T* src = row + oy * OW;
          if (s.stride == 1) {
            // x = ox + kx - pad over the columns that land inside the image.
            int64_t lo = std::clamp<int64_t>(s.pad - kx, 0, OW), hi = std::min<int64_t>(OW, s.W + s.pad - kx);
            T* d = dst + kx - s.pad;
            for (int64_t ox = lo; ox < hi; ++ox) d[ox] += src[ox];
            continue;
          }
          if (s.stride == 2) {
            strided_row_add(dst, src, OW, kx - s.pad, s.W);
            continue;
          }
          for (int64_t ox = 0; ox < OW; ++ox) {
            int64_t x = ox * s.stride + kx - s.pad;
            if (x >= 0 && x < s.W) dst[x] += src[ox];
          }
        }
      }
}

// sigmoid(x) = 1 / (1 + exp(-x)), vectorizable for float.
template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + fast_exp(-x));
}

// out[p] = silu(x[p] scale + shift) for p < n: one channel through GroupNorm's affine map (its
// statistics folded into scale and shift) and SiLU.
template <typename T>
void affine_silu(T* out, const T* x, int64_t n, T scale, T shift) {
  for (int64_t p = 0; p < n; ++p) {
    const T y = x[p] * scale + shift;
    out[p] = y * sigmoid(y);
  }
}

// GroupNorm's statistics folded into its affine map, for `channels` channels of one group:
// normalized x w + b = x scale + shift.
template <typename T>
void folded_affine(T* scale, T* shift, const T* w, const T* b, T mean, T rstd, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) {
    scale[c] = rstd * w[c];
    shift[c] = b[c] - mean * scale[c];
  }
}

// Per-thread scratch buffers of at least n values, kept between calls: im2col's columns are
// large (C K K x OH OW), and allocating them per call costs page faults and zeroing. SLOT picks
// one of several independent buffers.
template <typename T, int SLOT = 0>
T* scratch(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// A 1x1 convolution with stride 1 and no padding needs no im2col: the image is its own matrix.
bool is_pointwise(const ConvShape& s) { return s.K == 1 && s.stride == 1 && s.pad == 0; }

// Threads for `items` independent pieces of `work` multiply-adds in all: one when the work is
// too small to pay for waking a second thread (tiny test models, single images).
int threads_for(int64_t items, double work) {
  if (omp_in_parallel() || work < double(1 << 20)) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(items, 1)));
}
// The work threads_for() counts for one value of an element-wise pass (a load, a store and a
// little arithmetic, against a multiply-add): such passes over the U-Net's larger tensors (a
// batch of 28x28x32 images is 1.6M values) run on every thread, small ones on one.
constexpr double kPerValue = 4.0;
double conv_work(const ConvShape& s) {
  return static_cast<double>(s.B) * static_cast<double>(s.OC * s.C * s.K * s.K) * static_cast<double>(s.OH() * s.OW());
}

// Images per GEMM: a 7x7 image gives a product only 49 columns wide (or deep), which fills the
// micro-kernel's 32-wide tiles badly and pays its per-call and per-tile costs on little work, so
// small images go side by side in one im2col matrix, up to 512 columns (a power of two of them,
// so that 64 images split evenly).
int64_t images_per_gemm(const ConvShape& s) {
  const int64_t P = s.OH() * s.OW();
  int64_t n = 1;
  while (2 * n * P <= 512 && 2 * n <= s.B) n *= 2;
  return n;
}

// Stride-1 convolutions of images of 14x14 and up in K products instead of one over im2col's
// columns: rows[C K, Hp OW] holds, for each channel and kernel column kx, the input shifted by kx
// over every row of the zero-padded image (Hp = H + 2 pad rows), so that kernel row ky reads the
// columns [ky OW, ky OW + OH OW) of it: out = sum over ky of w_ky[OC, C K] rows(ky). The rows are
// a third of im2col's columns (K = 3) and stay in L2 where the columns did not (28x28: 0.3 MB
// against 0.9 MB for 32 channels); measured here a layer's forward pass and input gradient take
// 5-15% less time at 14x14 and 28x28, its weight gradient 3% less. One image per product: images
// side by side would put their padding rows into the product, and at 7x7 (several images to a
// product) im2col's columns stay faster.
bool by_kernel_rows(const ConvShape& s) {
  return s.stride == 1 && s.K > 1 && s.OH() * s.OW() >= 196;
}
template <typename T>
void kernel_rows(T* rows, const T* img, const ConvShape& s) {
  const int64_t OW = s.OW(), Hp = s.H + 2 * s.pad, ld = Hp * OW;
  if constexpr (std::is_same_v<T, float>) {  // as im2col_padded
    const int64_t Wp = s.W + 2 * s.pad;
    std::vector<float>& plane = zeroed_plane(s);
    for (int64_t c = 0; c < s.C; ++c) {
      fill_plane(plane, img, c, s);
      for (int64_t kx = 0; kx < s.K; ++kx) copy_window(rows + (c * s.K + kx) * ld, plane.data() + kx, Hp, OW, Wp);
    }
    return;
  }
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t kx = 0; kx < s.K; ++kx) {
      T* row = rows + (c * s.K + kx) * ld;
      std::fill(row, row + s.pad * OW, T(0));
      for (int64_t y = 0; y < s.H; ++y)
        shifted_row(row + (y + s.pad) * OW, img + (c * s.H + y) * s.W, OW, kx - s.pad, s.W);
      std::fill(row + (s.H + s.pad) * OW, row + ld, T(0));
    }
}
// w[OC, C, K, K] -> w_ky[K][OC, C K] (kernel row ky's weights, columns (c, kx)).
template <typename T>
std::vector<T> weights_by_kernel_row(const T* w, const ConvShape& s) {
  const int64_t CK = s.C * s.K;
  std::vector<T> out(static_cast<size_t>(s.K * s.OC * CK));
  for (int64_t o = 0; o < s.OC; ++o)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t ky = 0; ky < s.K; ++ky)
        for (int64_t kx = 0; kx < s.K; ++kx)
          out[static_cast<size_t>((ky * s.OC + o) * CK + c * s.K + kx)] = w[((o * s.C + c) * s.K + ky) * s.K + kx];
  return out;
}

// What an inference convolution adds to its product and does to its input, besides the
// weights (conv.h, conv2d_inference): all optional.
template <typename T>
struct ConvExtras {
  const T* bias = nullptr;       // [OC]
  const T* per_image = nullptr;  // [B, OC]: added like the bias, image by image
  const T* plus = nullptr;       // [B, OC, OH, OW]: added pixel by pixel (a residual)
  const T* scale = nullptr;      // [B, C]: the input becomes silu(x scale + shift) (with shift)
  const T* shift = nullptr;
  bool any_added() const { return bias || per_image || plus; }
  // out[c, :] of image b: the sum of what is added (and out itself when accumulating).
  void fill(T* o, int64_t b, int64_t OC, int64_t P, bool accumulate) const {
    for (int64_t c = 0; c < OC; ++c) {
      const T add = (bias ? bias[c] : T(0)) + (per_image ? per_image[b * OC + c] : T(0));
      T* oc = o + c * P;
      const T* pc = plus ? plus + (b * OC + c) * P : nullptr;
      if (accumulate && pc)
        for (int64_t p = 0; p < P; ++p) oc[p] += add + pc[p];
      else if (accumulate)
        for (int64_t p = 0; p < P; ++p) oc[p] += add;
      else if (pc)
        for (int64_t p = 0; p < P; ++p) oc[p] = add + pc[p];
      else
        for (int64_t p = 0; p < P; ++p) oc[p] = add;
    }
  }
  // Image b as the convolution reads it: itself, or silu(x scale + shift) per channel, made in
  // the thread's scratch buffer.
  const T* input(const T* inp, int64_t b, const ConvShape& s) const {
    const int64_t HW = s.H * s.W;
    const T* x = inp + b * s.C * HW;
    if (!scale) return x;
    T* y = scratch<T, 4>(static_cast<size_t>(s.C * HW));
    for (int64_t c = 0; c < s.C; ++c) affine_silu(y + c * HW, x + c * HW, HW, scale[b * s.C + c], shift[b * s.C + c]);
    return y;
  }
};

// out[b] (=, or += when accumulate) w[OC, C K K] col(inp[b]) (+ what `extra` adds), for every
// image; n images per product, their columns side by side.
template <typename T>
void conv_data_forward(T* out, const T* inp, const T* w, const ConvShape& s, bool accumulate,
                       const ConvExtras<T>& extra = {}) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K, n = images_per_gemm(s), groups = (s.B + n - 1) / n;
  // What is added goes in first, and the product is added to it (no zeroing pass, no bias pass).
  const bool onto = accumulate || extra.any_added();
  if (by_kernel_rows(s)) {
    const std::vector<T> wk = weights_by_kernel_row(w, s);
    const int64_t CK = s.C * s.K, OW = s.OW(), ld = (s.H + 2 * s.pad) * OW;
#pragma omp parallel num_threads(threads_for(s.B, conv_work(s)))
    {
      T* rows = scratch<T, 0>(static_cast<size_t>(CK * ld));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < s.B; ++b) {
        kernel_rows(rows, extra.input(inp, b, s), s);
        T* o = out + b * s.OC * P;
        if (extra.any_added()) extra.fill(o, b, s.OC, P, accumulate);
        for (int64_t ky = 0; ky < s.K; ++ky)
          gemm_strided<T>(false, false, s.OC, P, CK, T(1), wk.data() + ky * s.OC * CK, CK, rows + ky * OW, ld,
                          ky > 0 || onto ? T(1) : T(0), o, P);
      }
    }
    return;
  }
#pragma omp parallel num_threads(threads_for(groups, conv_work(s)))
  {
    T* col = is_pointwise(s) && n == 1 ? nullptr : scratch<T, 0>(static_cast<size_t>(CKK * P * n));
    T* product = n == 1 ? nullptr : scratch<T, 1>(static_cast<size_t>(s.OC * P * n));
#pragma omp for schedule(static)
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t b0 = group * n, m = std::min(n, s.B - b0), ld = m * P;
      if (m == 1) {
        const T* image = extra.input(inp, b0, s);
        if (!is_pointwise(s)) im2col(col, P, image, s);
        T* o = out + b0 * s.OC * P;
        if (extra.any_added()) extra.fill(o, b0, s.OC, P, accumulate);
        gemm_strided<T>(false, false, s.OC, P, CKK, T(1), w, CKK, is_pointwise(s) ? image : col, P,
                        onto ? T(1) : T(0), o, P);
        continue;
      }
      for (int64_t i = 0; i < m; ++i) im2col(col + i * P, ld, extra.input(inp, b0 + i, s), s);
      gemm_strided<T>(false, false, s.OC, ld, CKK, T(1), w, CKK, col, ld, T(0), product, ld);
      // product[OC, m P] back to the images' [OC, P], onto what is added.
      for (int64_t i = 0; i < m; ++i) {
        T* dst = out + (b0 + i) * s.OC * P;
        if (extra.any_added()) extra.fill(dst, b0 + i, s.OC, P, accumulate);
        for (int64_t o = 0; o < s.OC; ++o) {
          const T* src = product + o * ld + i * P;
          T* d = dst + o * P;
          if (onto)
            for (int64_t p = 0; p < P; ++p) d[p] += src[p];
          else
            for (int64_t p = 0; p < P; ++p) d[p] = src[p];
        }
      }
    }
  }
}

// dinp[b] += col2im(w^T dout[b]), for every image. With stride 1 this is itself a convolution,
// of dout with the kernel flipped and its channels swapped (padding K - 1 - pad): im2col and a
// GEMM that adds straight into dinp, instead of a GEMM into columns and col2im's scattered adds.
template <typename T>
void conv_data_backward(T* dinp, const T* dout, const T* w, const ConvShape& s, bool overwrite) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K, KK = s.K * s.K;
  if (s.stride == 1 && !is_pointwise(s) && s.K - 1 - s.pad >= 0) {
    std::vector<T> flipped(static_cast<size_t>(s.OC * CKK));
    for (int64_t o = 0; o < s.OC; ++o)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t k = 0; k < KK; ++k)
          flipped[static_cast<size_t>((c * s.OC + o) * KK + KK - 1 - k)] = w[(o * s.C + c) * KK + k];
    conv_data_forward(dinp, dout, flipped.data(), ConvShape{s.B, s.OC, s.OH(), s.OW(), s.C, s.K, 1, s.K - 1 - s.pad},
                      !overwrite);
    return;
  }
  if (is_pointwise(s)) {
#pragma omp parallel for schedule(static) num_threads(threads_for(s.B, conv_work(s)))
    for (int64_t b = 0; b < s.B; ++b)
      gemm_strided<T>(true, false, CKK, P, s.OC, T(1), w, CKK, dout + b * s.OC * P, P, overwrite ? T(0) : T(1),
                      dinp + b * s.C * s.H * s.W, P);
    return;
  }
  if (overwrite) std::fill(dinp, dinp + s.B * s.C * s.H * s.W, T(0));  // col2im adds
  // Otherwise (strided): columns = w^T dout for n images side by side in one product, then
  // col2im of each image's share.
  const int64_t n = images_per_gemm(s), groups = (s.B + n - 1) / n;
#pragma omp parallel num_threads(threads_for(groups, conv_work(s)))
  {
    T* col = scratch<T, 0>(static_cast<size_t>(CKK * P * n));
    T* packed = n == 1 ? nullptr : scratch<T, 1>(static_cast<size_t>(s.OC * P * n));
#pragma omp for schedule(static)
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t b0 = group * n, m = std::min(n, s.B - b0), ld = m * P;
      const T* d = dout + b0 * s.OC * P;
      if (m > 1) {
        for (int64_t i = 0; i < m; ++i)
          for (int64_t o = 0; o < s.OC; ++o) std::copy_n(d + (i * s.OC + o) * P, P, packed + o * ld + i * P);
        d = packed;
      }
      gemm_strided<T>(true, false, CKK, ld, s.OC, T(1), w, CKK, d, ld, T(0), col, ld);
      for (int64_t i = 0; i < m; ++i) col2im(dinp + (b0 + i) * s.C * s.H * s.W, col + i * P, ld, s);
    }
  }
}

// dw[OC, C K K] += sum over images of dout[b] col(inp[b])^T, computed transposed, as
// dw^T[C K K, OC] = col dout^T: the GEMM then packs (transposes) dout, OC rows, rather than the
// columns, C K K rows. n images per product, side by side, as in the forward pass. Each thread
// sums its own images into its own buffer; the buffers are then added in thread order, so that
// the result does not depend on which thread finishes first (same inputs, same bits).
template <typename T>
void conv_weight_backward(T* dw, const T* dout, const T* inp, const ConvShape& s) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K, n = images_per_gemm(s), groups = (s.B + n - 1) / n;
  const int threads = threads_for(groups, conv_work(s));
  // The sums live in per-thread scratch, not fresh vectors: at these sizes (up to a megabyte)
  // a vector per call costs page faults.
  // A thread's first product overwrites its sums (no zeroing pass); a thread given no images
  // leaves its sums out.
  std::vector<T*> partial(static_cast<size_t>(threads));
  const bool rows_path = by_kernel_rows(s);
#pragma omp parallel num_threads(threads)
  {
    T* mine = scratch<T, 3>(static_cast<size_t>(s.OC * CKK));
    T beta = T(0);
    if (rows_path) {
      // mine[K][C K, OC]: kernel row ky's share, rows(ky) dout^T.
      const int64_t CK = s.C * s.K, OW = s.OW(), ld = (s.H + 2 * s.pad) * OW;
      T* rows = scratch<T, 0>(static_cast<size_t>(CK * ld));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < s.B; ++b) {
        kernel_rows(rows, inp + b * s.C * s.H * s.W, s);
        for (int64_t ky = 0; ky < s.K; ++ky)
          gemm_strided<T>(false, true, CK, s.OC, P, T(1), rows + ky * OW, ld, dout + b * s.OC * P, P, beta,
                          mine + ky * CK * s.OC, s.OC);
        beta = T(1);
      }
    } else {
      T* col = is_pointwise(s) && n == 1 ? nullptr : scratch<T, 0>(static_cast<size_t>(CKK * P * n));
      T* grads = n == 1 ? nullptr : scratch<T, 1>(static_cast<size_t>(s.OC * P * n));
#pragma omp for schedule(static)
      for (int64_t group = 0; group < groups; ++group) {
        const int64_t b0 = group * n, m = std::min(n, s.B - b0), ld = m * P;
        const T* image = inp + b0 * s.C * s.H * s.W;
        const T* d = dout + b0 * s.OC * P;
        if (m == 1) {
          if (!is_pointwise(s)) im2col(col, P, image, s);
        } else {
          for (int64_t i = 0; i < m; ++i) {
            im2col(col + i * P, ld, image + i * s.C * s.H * s.W, s);
            for (int64_t o = 0; o < s.OC; ++o) std::copy_n(d + (i * s.OC + o) * P, P, grads + o * ld + i * P);
          }
          d = grads;
        }
        gemm_strided<T>(false, true, CKK, s.OC, ld, T(1), m == 1 && is_pointwise(s) ? image : col, ld, d, ld, beta,
                        mine, s.OC);
        beta = T(1);
      }
    }
    if (beta == T(1)) partial[static_cast<size_t>(omp_get_thread_num())] = mine;
  }
  // Row k = (c K + ky) K + kx of dw^T, or ky C K + c K + kx on the kernel-rows path: added in
  // blocks of 8 output channels, so that a row's 8 sums are read at once and the 8 rows of dw
  // written stay in cache (rows a power-of-two apart share a cache set: 8 fit its ways, 16 not).
  constexpr int64_t kBlock = 8;
  for (const T* part : partial) {
    if (!part) continue;
    for (int64_t o0 = 0; o0 < s.OC; o0 += kBlock) {
      const int64_t o1 = std::min(s.OC, o0 + kBlock);
      for (int64_t c = 0, k = 0; c < s.C; ++c)
        for (int64_t ky = 0; ky < s.K; ++ky)
          for (int64_t kx = 0; kx < s.K; ++kx, ++k) {
            const T* from = part + (rows_path ? (ky * s.C + c) * s.K + kx : k) * s.OC;
            for (int64_t o = o0; o < o1; ++o) dw[o * CKK + k] += from[o];
          }
    }
  }
}

// Sums of many values, in 16 independent lanes added at the end (a fixed order, so the same bits
// every run): the compiler vectorizes these loops, not a single running sum.
template <typename A, typename F>
A lane_sum(int64_t n, F value) {
  A lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) lanes[j] += value(i + j);
  for (; i < n; ++i) lanes[i % 16] += value(i);
  A sum = 0;
  for (int j = 0; j < 16; ++j) sum += lanes[j];
  return sum;
}

// The mean and 1 / sqrt(variance + 1e-5) of n values (a group of GroupNorm), summed in double.
template <typename T>
void group_statistics(T* mean, T* rstd, const T* x, int64_t n) {
  const double m = lane_sum<double>(n, [&](int64_t i) { return static_cast<double>(x[i]); }) / static_cast<double>(n);
  const double sq = lane_sum<double>(n, [&](int64_t i) {
    double d = static_cast<double>(x[i]) - m;
    return d * d;
  });
  *mean = static_cast<T>(m);
  *rstd = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(n) + 1e-5));
}

// out[b, c, :] = b[c] (or 0 without a bias) over P pixels; db[c] += sum of dout[b, c, :].
template <typename T>
void fill_bias(T* out, const T* bias, int64_t B, int64_t C, int64_t P) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) std::fill_n(out + (b * C + c) * P, P, bias ? bias[c] : T(0));
}
template <typename T>
void bias_backward(T* db, const T* dout, int64_t B, int64_t C, int64_t P) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const T* d = dout + (b * C + c) * P;
      db[c] += lane_sum<T>(P, [&](int64_t p) { return d[p]; });
    }
}

// A transposed convolution is a convolution read backwards: its output is the convolution's
// input. This is the convolution whose input has the transposed one's output shape.
ConvShape transposed(const ConvShape& s) {
  int64_t OH = conv_transpose_size(s.H, s.K, s.stride, s.pad), OW = conv_transpose_size(s.W, s.K, s.stride, s.pad);
  return ConvShape{s.B, s.OC, OH, OW, s.C, s.K, s.stride, s.pad};
}

}  // namespace

template <typename T>
void conv2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s) {
  conv_data_forward(out, inp, w, s, false, ConvExtras<T>{.bias = b});
}

template <typename T>
void conv2d_inference(T* out, const T* inp, const T* w, const T* b, const ConvShape& s, const T* per_image,
                      const T* plus, const T* gn_w, const T* gn_b, int64_t G) {
  ConvExtras<T> extra{.bias = b, .per_image = per_image, .plus = plus};
  std::vector<T> affine;  // scale [B, C], then shift [B, C]
  if (gn_w) {
    const int64_t CG = s.C / G, HW = s.H * s.W;
    affine.resize(static_cast<size_t>(2 * s.B * s.C));
    T* scale = affine.data();
    T* shift = scale + s.B * s.C;
#pragma omp parallel for schedule(static) num_threads(threads_for(s.B * G, kPerValue * static_cast<double>(s.B * s.C * HW)))
    for (int64_t bg = 0; bg < s.B * G; ++bg) {
      T mean, rstd;
      group_statistics(&mean, &rstd, inp + bg * CG * HW, CG * HW);
      const int64_t c0 = (bg % G) * CG, at = (bg / G) * s.C + c0;
      folded_affine(scale + at, shift + at, gn_w + c0, gn_b + c0, mean, rstd, CG);
    }
    extra.scale = scale;
    extra.shift = shift;
  }
  conv_data_forward(out, inp, w, s, false, extra);
}

template <typename T>
void conv2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s,
                     bool overwrite) {
  if (db) bias_backward(db, dout, s.B, s.OC, s.OH() * s.OW());
  if (dw) conv_weight_backward(dw, dout, inp, s);
  if (dinp) conv_data_backward(dinp, dout, w, s, overwrite);
}

int64_t conv_transpose_size(int64_t H, int64_t K, int64_t stride, int64_t pad) { return (H - 1) * stride - 2 * pad + K; }

template <typename T>
void conv_transpose2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s) {
  ConvShape c = transposed(s);
  fill_bias(out, b, c.B, c.C, c.H * c.W);  // the bias first, the convolution's adjoint added to it
  conv_data_backward(out, inp, w, c, false);
}

template <typename T>
void conv_transpose2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s,
                               bool overwrite) {
  ConvShape c = transposed(s);
  if (db) bias_backward(db, dout, c.B, c.C, c.H * c.W);
  if (dw) conv_weight_backward(dw, inp, dout, c);  // w[C_in, OC, K, K]: the convolution's [OC', C' K K]
  if (dinp) conv_data_forward(dinp, dout, w, c, !overwrite);
}

namespace {


// The statistics of group bg and its affine map per channel, shared by the forward passes.
template <typename T>
void groupnorm_group(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t bg, int64_t C,
                     int64_t HW, int64_t G, bool with_silu) {
  const int64_t CG = C / G, n = CG * HW;
  const T* x = inp + bg * n;
  group_statistics(&mean[bg], &rstd[bg], x, n);
  const int64_t c0 = (bg % G) * CG;
  for (int64_t c = 0; c < CG; ++c) {
    T scale, shift;
    folded_affine(&scale, &shift, w + c0 + c, b + c0 + c, mean[bg], rstd[bg], 1);
    const T* xc = x + c * HW;
    T* o = out + bg * n + c * HW;
    if (with_silu)
      affine_silu(o, xc, HW, scale, shift);
    else
      for (int64_t p = 0; p < HW; ++p) o[p] = xc[p] * scale + shift;
  }
}

// The backward pass of group bg given dy, the gradient at the normalized output: dx += rstd (g -
// mean(g) - xhat mean(g xhat)) with g = dy w; the group's per-channel sums for dw and db go to
// sw[CG], sb[CG].
template <typename T>
void groupnorm_group_backward(T* dinp, T* sw, T* sb, const T* dy, const T* inp, const T* w, const T* mean,
                              const T* rstd, int64_t bg, int64_t C, int64_t HW, int64_t G, bool overwrite) {
  const int64_t CG = C / G, n = CG * HW, c0 = (bg % G) * CG;
  const T* x = inp + bg * n;
  const T m = mean[bg], r = rstd[bg];
  T g_mean = 0, gx_mean = 0;
  for (int64_t c = 0; c < CG; ++c) {
    const T* d = dy + c * HW;
    const T* xc = x + c * HW;
    const T sd = lane_sum<T>(HW, [&](int64_t p) { return d[p]; });
    const T sdx = lane_sum<T>(HW, [&](int64_t p) { return d[p] * (xc[p] - m); }) * r;
    sw[c] = sdx;
    sb[c] = sd;
    g_mean += sd * w[c0 + c];
    gx_mean += sdx * w[c0 + c];
  }
  g_mean /= static_cast<T>(n);
  gx_mean /= static_cast<T>(n);
  T* dx = dinp + bg * n;
  for (int64_t c = 0; c < CG; ++c) {
    const T wc = w[c0 + c];
    const T* d = dy + c * HW;
    const T* xc = x + c * HW;
    T* o = dx + c * HW;
    if (overwrite)
      for (int64_t p = 0; p < HW; ++p) o[p] = r * (d[p] * wc - g_mean - (xc[p] - m) * r * gx_mean);
    else
      for (int64_t p = 0; p < HW; ++p) o[p] += r * (d[p] * wc - g_mean - (xc[p] - m) * r * gx_mean);
  }
}

// Both backward passes: per group (in parallel) dy from dout (through the SiLU when asked:
// the normalized value is recomputed from the saved statistics rather than stored), then the
// normalization's backward; the per-channel sums for dw and db are kept per image and added in
// image order, for the same bits at any thread count.
template <typename T>
void groupnorm_backward_impl(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* b,
                             const T* mean, const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G,
                             bool with_silu, bool overwrite) {
  const int64_t CG = C / G, n = CG * HW;
  std::vector<T> sums(static_cast<size_t>(2 * B * C));
  T* sw = sums.data();
  T* sb = sums.data() + B * C;
  std::vector<T> no_grad;
  if (!dinp) no_grad.resize(static_cast<size_t>(B * C * HW));  // the group pass writes somewhere
  T* dx = dinp ? dinp : no_grad.data();
#pragma omp parallel num_threads(threads_for(B * G, 8.0 * static_cast<double>(B * C * HW)))
  {
    T* dy = with_silu ? scratch<T, 2>(static_cast<size_t>(n)) : nullptr;
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < B * G; ++bg) {
      const int64_t c0 = (bg % G) * CG;
      const T* d = dout + bg * n;
      if (with_silu) {
        const T* x = inp + bg * n;
        const T m = mean[bg], r = rstd[bg];
        for (int64_t c = 0; c < CG; ++c) {
          const T scale = r * w[c0 + c], shift = b[c0 + c] - m * scale;
          for (int64_t p = c * HW; p < (c + 1) * HW; ++p) {
            T y = x[p] * scale + shift, sg = sigmoid(y);
            dy[p] = d[p] * sg * (T(1) + y * (T(1) - sg));
          }
        }
        d = dy;
      }
      const int64_t image = bg / G;
      groupnorm_group_backward(dx, sw + image * C + c0, sb + image * C + c0, d, inp, w, mean, rstd, bg, C, HW, G,
                               overwrite || !dinp);
    }
  }
  for (int64_t i = 0; i < B; ++i)
    for (int64_t c = 0; c < C; ++c) {
      if (dw) dw[c] += sw[i * C + c];
      if (db) db[c] += sb[i * C + c];
    }
}

}  // namespace

template <typename T>
void groupnorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                       int64_t HW, int64_t G) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B * G, 8.0 * static_cast<double>(B * C * HW)))
  for (int64_t bg = 0; bg < B * G; ++bg) groupnorm_group(out, mean, rstd, inp, w, b, bg, C, HW, G, false);
}

template <typename T>
void groupnorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G, bool overwrite) {
  groupnorm_backward_impl(dinp, dw, db, dout, inp, w, static_cast<const T*>(nullptr), mean, rstd, B, C, HW, G,
                          false, overwrite);
}

template <typename T>
void groupnorm_silu_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                            int64_t HW, int64_t G) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B * G, 8.0 * static_cast<double>(B * C * HW)))
  for (int64_t bg = 0; bg < B * G; ++bg) groupnorm_group(out, mean, rstd, inp, w, b, bg, C, HW, G, true);
}

template <typename T>
void groupnorm_silu_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* b,
                             const T* mean, const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G,
                             bool overwrite) {
  groupnorm_backward_impl(dinp, dw, db, dout, inp, w, b, mean, rstd, B, C, HW, G, true, overwrite);
}

template <typename T>
void silu_forward(T* out, const T* inp, int64_t n) {
#pragma omp parallel for schedule(static) num_threads(threads_for(n, kPerValue * static_cast<double>(n)))
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * sigmoid(inp[i]);
}

template <typename T>
void silu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
#pragma omp parallel for schedule(static) num_threads(threads_for(n, kPerValue * static_cast<double>(n)))
  for (int64_t i = 0; i < n; ++i) {
    T s = sigmoid(inp[i]);
    dinp[i] += dout[i] * s * (T(1) + inp[i] * (T(1) - s));
  }
}

template <typename T>
void upsample2x_forward(T* out, const T* inp, int64_t BC, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static) num_threads(threads_for(BC, kPerValue * static_cast<double>(4 * BC * H * W)))
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      const T* src = inp + (bc * H + y / 2) * W;
      T* dst = out + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[2 * x] = dst[2 * x + 1] = src[x];
    }
}

template <typename T>
void upsample2x_backward(T* dinp, const T* dout, int64_t BC, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static) num_threads(threads_for(BC, kPerValue * static_cast<double>(4 * BC * H * W)))
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      T* dst = dinp + (bc * H + y / 2) * W;
      const T* src = dout + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[x] += src[2 * x] + src[2 * x + 1];
    }
}

template <typename T>
void add_channels_forward(T* out, const T* x, const T* e, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B * C, kPerValue * static_cast<double>(B * C * HW)))
  for (int64_t bc = 0; bc < B * C; ++bc)
    for (int64_t p = 0; p < HW; ++p) out[bc * HW + p] = x[bc * HW + p] + e[bc];
}

template <typename T>
void add_channels_backward(T* dx, T* de, const T* dout, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B * C, kPerValue * static_cast<double>(B * C * HW)))
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const T* d = dout + bc * HW;
    if (dx)
      for (int64_t p = 0; p < HW; ++p) dx[bc * HW + p] += d[p];
    if (de) {
      T sum = 0;
      for (int64_t p = 0; p < HW; ++p) sum += d[p];
      de[bc] += sum;
    }
  }
}

template <typename T>
void concat_channels_forward(T* out, const T* a, const T* b, int64_t B, int64_t C1, int64_t C2, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B, kPerValue * static_cast<double>(B * (C1 + C2) * HW)))
  for (int64_t i = 0; i < B; ++i) {
    T* o = out + i * (C1 + C2) * HW;
    std::copy(a + i * C1 * HW, a + (i + 1) * C1 * HW, o);
    std::copy(b + i * C2 * HW, b + (i + 1) * C2 * HW, o + C1 * HW);
  }
}

template <typename T>
void concat_channels_backward(T* da, T* db, const T* dout, int64_t B, int64_t C1, int64_t C2, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(threads_for(B, kPerValue * static_cast<double>(B * (C1 + C2) * HW)))
  for (int64_t i = 0; i < B; ++i) {
    const T* d = dout + i * (C1 + C2) * HW;
    if (da)
      for (int64_t k = 0; k < C1 * HW; ++k) da[i * C1 * HW + k] += d[k];
    if (db)
      for (int64_t k = 0; k < C2 * HW; ++k) db[i * C2 * HW + k] += d[C1 * HW + k];
  }
}

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    sum += d * d;
  }
  return sum / static_cast<double>(n);
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n, T dloss) {
  const T scale = T(2) * dloss / static_cast<T>(n);
  for (int64_t i = 0; i < n; ++i) dpred[i] += scale * (pred[i] - target[i]);
}

template <typename T>
void gather_rows_forward(T* out, const T* table, const uint32_t* ids, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) std::copy_n(table + static_cast<int64_t>(ids[n]) * C, C, out + n * C);
}

template <typename T>
void gather_rows_backward(T* dtable, const T* dout, const uint32_t* ids, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    T* row = dtable + static_cast<int64_t>(ids[n]) * C;
    for (int64_t c = 0; c < C; ++c) row[c] += dout[n * C + c];
  }
}

void timestep_embedding(float* out, const float* t, int64_t N, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < half; ++i) {
      double f = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      double a = static_cast<double>(t[n]) * f;
      out[n * D + i] = static_cast<float>(std::sin(a));
      out[n * D + half + i] = static_cast<float>(std::cos(a));
    }
}

#define GEN_CONV_INSTANTIATE(T)                                                                                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvShape&);                           \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvShape&, bool);            \
  template void conv2d_inference<T>(T*, const T*, const T*, const T*, const ConvShape&, const T*, const T*,       \
                                    const T*, const T*, int64_t);                                               \
  template void conv_transpose2d_forward<T>(T*, const T*, const T*, const T*, const ConvShape&);                 \
  template void conv_transpose2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvShape&, bool);  \
  template void groupnorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,         \
                                     int64_t);                                                                   \
  template void groupnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,      \
                                      int64_t, int64_t, int64_t, bool);                                          \
  template void groupnorm_silu_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,    \
                                          int64_t);                                                              \
  template void groupnorm_silu_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,         \
                                           const T*, int64_t, int64_t, int64_t, int64_t, bool);                  \
  template void silu_forward<T>(T*, const T*, int64_t);                                                          \
  template void silu_backward<T>(T*, const T*, const T*, int64_t);                                               \
  template void upsample2x_forward<T>(T*, const T*, int64_t, int64_t, int64_t);                                 \
  template void upsample2x_backward<T>(T*, const T*, int64_t, int64_t, int64_t);                                 \
  template void add_channels_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);                      \
  template void add_channels_backward<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                           \
  template void concat_channels_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t);          \
  template void concat_channels_backward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t);               \
  template double mse_forward<T>(const T*, const T*, int64_t);                                                   \
  template void mse_backward<T>(T*, const T*, const T*, int64_t, T);                                             \
  template void gather_rows_forward<T>(T*, const T*, const uint32_t*, int64_t, int64_t);                         \
  template void gather_rows_backward<T>(T*, const T*, const uint32_t*, int64_t, int64_t);

GEN_CONV_INSTANTIATE(float)
GEN_CONV_INSTANTIATE(double)

}  // namespace gen::nn
