#include "tensor/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/threads.h"
#include "tensor/fast_math.h"
#include "tensor/kernels.h"
#include "tensor/vec.h"

namespace gen::nn {

namespace {

// Per-thread scratch buffers of at least n values, kept between calls: im2col's columns are
// large (C K K x OH OW), and allocating them per call costs page faults and zeroing. SLOT picks
// one of several independent buffers.
template <typename T, int SLOT = 0>
T* scratch(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// floor(a / b) for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }

// dst[i] = src[S i] for i < n: S = 1 and 2 (every stride of the models) as constants, so that the
// compiler vectorizes them (a copy; a permute of two vectors per vector).
template <int S, typename T>
void every(T* dst, const T* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[S * i];
}
template <typename T>
void every(T* dst, const T* src, int64_t n, int64_t S) {
  if (S == 1) return every<1>(dst, src, n);
  if (S == 2) return every<2>(dst, src, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = src[S * i];
}

// dst[y OW + j] = from[y Wq + j] for y < rows, j < OW (a window of a plane Wq wide, made
// contiguous): whole vectors while they end inside the rows x OW values written (a row's last
// vector runs on into the next rows, written after it), a part of a vector for the rest. Reads
// up to a vector past the window's last row.
template <typename T>
void copy_window(T* dst, const T* from, int64_t rows, int64_t OW, int64_t Wq) {
  if constexpr (std::is_same_v<T, float>) {
    const int64_t total = rows * OW;
    for (int64_t y = 0; y < rows; ++y) {
      float* d = dst + y * OW;
      const float* src = from + y * Wq;
      const int64_t room = total - y * OW - (vec::kFloats - 1);
      int64_t j = 0;
      for (; j < OW && j < room; j += vec::kFloats) vec::store(d + j, vec::load(src + j));
      for (; j < OW; j += vec::kFloats) {
        const int64_t n = std::min<int64_t>(vec::kFloats, OW - j);
        vec::store_first(d + j, vec::load_first(src + j, n), n);
      }
    }
  } else {
    for (int64_t y = 0; y < rows; ++y) std::copy_n(from + y * Wq, OW, dst + y * OW);
  }
}
// The lanes that interleave two vectors, a's and b's from lane `first` on: lane 2 t of the
// result is a's lane first + t, lane 2 t + 1 b's (indices for vec::pick, wrapped into range).
vec::Index interleaved(int64_t first) {
  vec::Index index;
  for (int l = 0; l < vec::kFloats; ++l)
    index[l] = static_cast<int32_t>(((l % 2) * vec::kFloats + first + l / 2) % (2 * vec::kFloats));
  return index;
}

// even[i] = row[2 i], odd[i] = row[2 i + 1] for i < cols (and 2 i, 2 i + 1 < W): a row of a
// channel into its two column phases, a vector of it at a time, picked apart in registers.
inline void split_row(float* even, float* odd, const float* row, int64_t W, int64_t cols) {
  constexpr int64_t kHalf = vec::kFloats / 2;
  vec::Index evens, odds;
  for (int l = 0; l < vec::kFloats; ++l) {
    evens[l] = 2 * (l % kHalf);
    odds[l] = 2 * (l % kHalf) + 1;
  }
  for (int64_t x0 = 0; x0 < W; x0 += vec::kFloats) {
    const int64_t n = std::min<int64_t>(vec::kFloats, W - x0), i0 = x0 / 2;
    const vec::Vec v = vec::load_first(row + x0, n);
    const int64_t n_even = std::min((n + 1) / 2, cols - i0), n_odd = std::min(n / 2, cols - i0);
    if (n_even > 0) vec::store_first(even + i0, vec::pick(v, v, evens), n_even);
    if (n_odd > 0) vec::store_first(odd + i0, vec::pick(v, v, odds), n_odd);
  }
}

// A convolution's input as the planes its taps read, one channel at a time, for every stride.
// Tap k (ky or kx) reads input row S o + k - pad for output row o: always in phase
// a = (k - pad) mod S of the rows, at row o + d of that phase, d = floor((k - pad) / S). So each
// channel splits into S x S phase planes, plane (a, b) holding pixel (S m + a, S n + b) at (m, n),
// with m and n from `lo` = floor(-pad / S) (zero where outside the image), and every row of
// im2col is a stride-1 window of one plane: OH rows of OW values, copied a row at a time (its
// adjoint at stride 2 is StridedCol2im). With S = 1 the one plane is the zero-padded image. (A
// gather per 16 values, the strided im2col before, cost ~40 cycles a gather on Zen 5.)
template <typename T>
class Phases {
 public:
  explicit Phases(const ConvShape& s)
      : s_(s), OH_(s.OH()), OW_(s.OW()), lo_(floor_div(-s.pad, s.stride)) {
    const int64_t reach = floor_div(s.K - 1 - s.pad, s.stride) - lo_;  // the taps' spread of d
    Hq_ = OH_ + reach;
    Wq_ = OW_ + reach;
    if (OH_ > 0 && OW_ > 0 && OW_ < vec::kFloats) plan_copies();
  }
  int64_t OH() const { return OH_; }
  int64_t OW() const { return OW_; }
  int64_t Wq() const { return Wq_; }
  int64_t Hq() const { return Hq_; }
  // The planes of one channel of `images` images (and a vector of slack for copy_window's
  // reads), in the thread's scratch, zeroed: fill() writes the same pixels for every channel, so
  // the borders stay zero.
  T* planes(int64_t images = 1) const {
    const int64_t n = images * values() + 2 * vec::kFloats;
    T* p = scratch<T, 5>(static_cast<size_t>(n));
    std::fill_n(p, n, T(0));
    return p;
  }
  // A window of the planes (at `window`) into dst, its OH x OW values contiguous: im2col's row
  // for one image. Reads up to two vectors past the window's last row.
  void copy(T* dst, const T* window) const {
    if constexpr (std::is_same_v<T, float>) {
      if (!starts_.empty()) {
        const int64_t total = OH_ * OW_;
        for (size_t v = 0; v < starts_.size(); ++v) {
          const float* from = window + starts_[v];
          const vec::Vec x = vec::pick(vec::load(from), vec::load(from + vec::kFloats), picks_[v]);
          const int64_t at = static_cast<int64_t>(v) * vec::kFloats;
          if (at + vec::kFloats <= total)
            vec::store(dst + at, x);
          else
            vec::store_first(dst + at, x, total - at);
        }
        return;
      }
    }
    copy_window(dst, window, OH_, OW_, Wq_);
  }
  int64_t values() const { return s_.stride * s_.stride * Hq_ * Wq_; }
  // Tap ky K + kx (its row of im2col's columns) reads the window of plane `plane` at (row, column).
  struct Tap {
    int64_t index, plane, row, column;
  };
  Tap tap(int64_t ky, int64_t kx) const {
    const int64_t S = s_.stride, dy = floor_div(ky - s_.pad, S), dx = floor_div(kx - s_.pad, S);
    const int64_t a = ky - s_.pad - S * dy, b = kx - s_.pad - S * dx;
    return {ky * s_.K + kx, a * S + b, dy - lo_, dx - lo_};
  }
  int64_t lo() const { return lo_; }
  // Where tap (ky, kx)'s window starts in the planes.
  int64_t window(int64_t ky, int64_t kx) const {
    const Tap t = tap(ky, kx);
    return (t.plane * Hq_ + t.row) * Wq_ + t.column;
  }
  // The planes of channel `plane` (H x W). Pixels past the planes' last row or column are read
  // by no tap and left out.
  void fill(T* planes, const T* plane) const {
    const int64_t S = s_.stride, cols = Wq_ + lo_;  // image columns S n + b with n < cols land
    if constexpr (std::is_same_v<T, float>) {
      if (S == 2) {
        for (int64_t y = 0; y < s_.H && y / 2 - lo_ < Hq_; ++y) {
          // Phase (y % 2, 0)'s row, from its column for image column 0; phase (y % 2, 1)'s after it.
          float* even = planes + ((y % 2) * 2 * Hq_ + y / 2 - lo_) * Wq_ - lo_;
          split_row(even, even + Hq_ * Wq_, plane + y * s_.W, s_.W, cols);
        }
        return;
      }
    }
    each_row([&](const T* row, T* at, int64_t b, int64_t n) { every(at, row + b, n, S); }, plane, planes);
  }
 private:
  // f(image row, its first pixel of column phase b in the planes, b, how many) for each row and
  // column phase.
  template <typename F, typename Image, typename Planes>
  void each_row(F f, Image* image, Planes* planes) const {
    const int64_t S = s_.stride;
    for (int64_t y = 0; y < s_.H; ++y) {
      const int64_t a = y % S, m = y / S - lo_;
      if (m >= Hq_) break;
      for (int64_t b = 0; b < S; ++b) {
        const int64_t n = std::min((s_.W - b + S - 1) / S, Wq_ + lo_);
        if (n > 0) f(image + y * s_.W, planes + ((a * S + b) * Hq_ + m) * Wq_ - lo_, b, n);
      }
    }
  }
  // copy()'s plan for windows narrower than a vector: vector v of the window's values (lanes
  // v kFloats ..) is picked from the two vectors at window + starts_[v], in registers, and stored
  // whole; a row at a time, a load and an overlapping store a row (7 values at DCGAN's 7x7), took
  // 4x as long. Empty where a vector's values span more than two vectors of the planes.
  void plan_copies() {
    const int64_t total = OH_ * OW_;
    auto offset = [&](int64_t e) { return e / OW_ * Wq_ + e % OW_; };
    for (int64_t e0 = 0; e0 < total; e0 += vec::kFloats) {
      vec::Index index;
      for (int l = 0; l < vec::kFloats; ++l) {
        const int64_t off = offset(std::min(e0 + l, total - 1)) - offset(e0);
        if (off >= 2 * vec::kFloats) {
          starts_.clear();
          picks_.clear();
          return;
        }
        index[l] = static_cast<int32_t>(off);
      }
      starts_.push_back(offset(e0));
      picks_.push_back(index);
    }
  }
  ConvShape s_;
  int64_t OH_, OW_, lo_, Hq_ = 0, Wq_ = 0;
  std::vector<int64_t> starts_;
  std::vector<vec::Index> picks_;
};

// col[C K K, OH OW] from img[C,H,W], row r at col + r * ld: each column holds the K x K x C
// window under one output pixel (zeros where the window hangs over the padding). For `images`
// images at once (image i at img + i * stride, its columns at col + i OH OW, side by side in rows
// ld >= images OH OW long), a channel of all of them at a time, so that each row of the columns
// is written from start to end.
template <typename T>
void im2col(T* col, int64_t ld, const T* img, int64_t stride, int64_t images, const ConvShape& s) {
  const Phases<T> q(s);
  if (q.OH() <= 0 || q.OW() <= 0) return;
  const int64_t P = q.OH() * q.OW(), values = q.values();
  T* planes = q.planes(images);
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t i = 0; i < images; ++i) q.fill(planes + i * values, img + i * stride + c * s.H * s.W);
    for (int64_t ky = 0; ky < s.K; ++ky)
      for (int64_t kx = 0; kx < s.K; ++kx) {
        T* row = col + ((c * s.K + ky) * s.K + kx) * ld;
        for (int64_t i = 0; i < images; ++i)
          q.copy(row + i * P, planes + i * values + q.window(ky, kx));
      }
  }
}

// Stride 2's col2im (float): each image row is summed a vector at a time in registers, from the
// rows of the columns that land on it, and added to the image once. Row y's pixels of column
// phase b are plane (y mod 2, b)'s row y / 2 - lo (Phases): a vector of them is the sum, over the
// taps that read that plane, of the tap's row of columns at the plane row, shifted by the tap's
// column. The two phases' vectors are then interleaved. The plan (which rows of the columns, at
// what shift, into which lanes) is the same for every channel and image; it is made once a call.
// (Adding each tap's rows into the planes in memory, a masked load after a masked store to nearby
// bytes, stalled ~20 cycles a row on Zen 5; this is 4x faster at DCGAN's shapes.)
class StridedCol2im {
 public:
  StridedCol2im(const Phases<float>& q, const ConvShape& s) : interleave_(interleaved(0)) {
    constexpr int64_t kHalf = vec::kFloats / 2;
    // Rows even then odd: the masked additions of neighbouring rows touch the same cache lines,
    // and one right after the other waited for the first's store.
    for (int64_t parity = 0; parity < 2; ++parity)
      for (int64_t y = parity; y < s.H; y += 2) {
        const int64_t a = y % 2, r = y / 2 - q.lo();
        if (r >= q.Hq()) continue;
        for (int64_t x0 = 0; x0 < s.W; x0 += vec::kFloats) {
          Slot slot{y * s.W + x0, std::min<int64_t>(vec::kFloats, s.W - x0), {}};
          const int64_t j = x0 / 2 - q.lo();  // the plane column of lane 0, either phase
          for (int64_t b = 0; b < 2; ++b) {
            slot.first[b] = static_cast<int64_t>(terms_.size());
            for (int64_t k = 0; k < s.K * s.K; ++k) {
              const auto t = q.tap(k / s.K, k % s.K);
              if (t.plane != a * 2 + b) continue;
              const int64_t oy = r - t.row, lo = std::max<int64_t>(t.column - j, 0);
              const int64_t hi = std::min<int64_t>({t.column + q.OW() - j, kHalf});
              if (oy >= 0 && oy < q.OH() && lo < hi) terms_.push_back({t.index, oy * q.OW(), j - t.column, lo, hi});
            }
          }
          slot.first[2] = static_cast<int64_t>(terms_.size());
          slots_.push_back(slot);
        }
      }
  }
  // image[H, W] += the columns' values at its pixels, tap k's row of columns at rows + k ld.
  void add(float* image, const float* rows, int64_t ld) const {
    // A phase's sum in a register (an array of two, indexed by phase, lived on the stack: a
    // load and a store a term).
    auto sum = [&](int64_t first, int64_t last) {
      vec::Vec v{};
      for (int64_t k = first; k < last; ++k) {
        const Term& t = terms_[static_cast<size_t>(k)];
        v += vec::load_lanes(rows + t.tap * ld + t.offset, t.shift, t.lo, t.hi);
      }
      return v;
    };
    for (const Slot& slot : slots_) {
      const vec::Vec even = sum(slot.first[0], slot.first[1]), odd = sum(slot.first[1], slot.first[2]);
      float* at = image + slot.at;
      vec::store_first(at, vec::load_first(at, slot.n) + vec::pick(even, odd, interleave_), slot.n);
    }
  }

 private:
  struct Term {  // lanes [lo, hi) of tap `tap`'s row of columns at `offset`, shifted: lane l is value shift + l
    int64_t tap, offset, shift, lo, hi;
  };
  struct Slot {  // image values [at, at + n): terms [first[b], first[b + 1]) for column phase b
    int64_t at, n, first[3];
  };
  vec::Index interleave_;
  std::vector<Term> terms_;
  std::vector<Slot> slots_;
};

// The adjoint of im2col: img[C,H,W] += each column's values back at their pixels, for `images`
// images as there.
template <typename T>
void col2im(T* img, int64_t stride, int64_t images, const T* col, int64_t ld, const ConvShape& s) {
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, KK = s.K * s.K;
  if (OH <= 0 || OW <= 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (s.stride == 2) {
      const StridedCol2im plan(Phases<float>(s), s);
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t i = 0; i < images; ++i) plan.add(img + i * stride + c * s.H * s.W, col + c * KK * ld + i * P, ld);
      return;
    }
  }
  // Otherwise value by value (doubles for the gradient checks; strides 1 and 3 and up, which no
  // model's transposed convolution has).
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t k = 0; k < KK; ++k) {
      const T* row = col + (c * KK + k) * ld;
      for (int64_t i = 0; i < images; ++i)
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t y = oy * s.stride + k / s.K - s.pad;
          if (y < 0 || y >= s.H) continue;
          T* out = img + i * stride + (c * s.H + y) * s.W;
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int64_t x = ox * s.stride + k % s.K - s.pad;
            if (x >= 0 && x < s.W) out[x] += row[i * P + oy * OW + ox];
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


// A 1x1 convolution with stride 1 and no padding needs no im2col: the image is its own matrix.
bool is_pointwise(const ConvShape& s) { return s.K == 1 && s.stride == 1 && s.pad == 0; }

// Threads for `items` independent pieces of `work` multiply-adds in all: one when the work is
// too small to pay for waking a second thread (tiny test models, single images).
int conv_threads(int64_t items, double work) { return threads_for(items, work >= double(1 << 20)); }
// The work conv_threads() counts for one value of an element-wise pass (a load, a store and a
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
int64_t images_side_by_side(int64_t B, int64_t per_image) {
  int64_t n = 1;
  while (2 * n * per_image <= 512 && 2 * n <= B) n *= 2;
  return n;
}
int64_t images_per_gemm(const ConvShape& s) { return images_side_by_side(s.B, s.OH() * s.OW()); }

// Channels of im2col's columns made and multiplied at a time: about 256 rows (the depth sgemm
// takes at once), so that the columns' scratch is at most 256 rows of up to 512 values (512 KB,
// in L2) where whole they were 3.2 MB at DCGAN's widest layer (8 images of 128 channels at 4x4).
// Measured, the layer's time moved within noise either way. A 1x1 convolution's columns are its
// images (no chunks).
int64_t chunk_channels(const ConvShape& s) {
  return is_pointwise(s) ? s.C : std::clamp<int64_t>(256 / (s.K * s.K), 1, s.C);
}
ConvShape with_channels(ConvShape s, int64_t C) {
  s.C = C;
  return s;
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
  const Phases<T> q(s);  // one plane: the zero-padded image, Hq = H + 2 pad rows
  const int64_t ld = q.Hq() * q.OW();
  T* planes = q.planes();
  for (int64_t c = 0; c < s.C; ++c) {
    q.fill(planes, img + c * s.H * s.W);
    for (int64_t kx = 0; kx < s.K; ++kx)
      copy_window(rows + (c * s.K + kx) * ld, planes + q.window(0, kx), q.Hq(), q.OW(), q.Wq());
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
  // What is added to channel o of image b at every pixel: the bias and the image's vector.
  T added(int64_t b, int64_t o, int64_t OC) const {
    return (bias ? bias[o] : T(0)) + (per_image ? per_image[b * OC + o] : T(0));
  }
  // out[c, :] of image b: the sum of what is added (and out itself when accumulating).
  void fill(T* o, int64_t b, int64_t OC, int64_t P, bool accumulate) const {
    for (int64_t c = 0; c < OC; ++c) {
      const T add = added(b, c, OC);
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
  // Channels [c0, c0 + n) of images [b, b + m) as the convolution reads them: themselves (image
  // i at the pointer + i C H W), or silu(x scale + shift) per channel, made in the thread's
  // scratch buffer (image i at the pointer + i n H W). The second of the pair is that stride.
  std::pair<const T*, int64_t> input(const T* inp, int64_t b, int64_t m, const ConvShape& s, int64_t c0,
                                     int64_t n) const {
    const int64_t HW = s.H * s.W;
    const T* x = inp + (b * s.C + c0) * HW;
    if (!scale) return {x, s.C * HW};
    T* y = scratch<T, 4>(static_cast<size_t>(m * n * HW));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < n; ++c) {
        const int64_t at = (b + i) * s.C + c0 + c;
        affine_silu(y + (i * n + c) * HW, x + (i * s.C + c) * HW, HW, scale[at], shift[at]);
      }
    return {y, n * HW};
  }
};

// Winograd's minimal filtering, F(2x2, 3x3) (Lavin and Gray 2016), for the 3x3 convolutions of
// stride 1 and padding 1 between many channels (the U-Net's): each 2x2 tile of the output comes
// from the 4x4 tile of the input under it, as out = A^T [(G g G^T) . (B^T d B)] A. The
// element-wise product, summed over input channels, is 16 products (one per position xi of the
// 4x4 transform): M[xi][OC, tiles] = U[xi][OC, C] V[xi][C, tiles], 16 multiply-adds a tile and
// channel pair where the direct convolution takes 36 (2.25x fewer; 1.7x at 7x7, whose 4x4 tiles
// cover 8x8). The transforms are additions, a vector of tiles (one tile row) at a time: a
// channel's rows are first split into their even and odd columns (zero-padded), so that the
// four columns under a row of tiles are four plain loads. Images go several to a product, as
// for im2col. Float and double share the code (vector lanes, or one double at a time), so the
// gradient checks in double run this logic.
template <typename T>
struct Lanes {  // a vector of floats, or one double
  using V = T;
  static constexpr int64_t kCount = 1;
  static V load(const T* p, int64_t) { return *p; }
  static void store(T* p, V v, int64_t) { *p = v; }
};
template <>
struct Lanes<float> {
  using V = vec::Vec;
  static constexpr int64_t kCount = vec::kFloats;
  static V load(const float* p, int64_t n) { return vec::load_first(p, n); }
  static void store(float* p, V v, int64_t n) { vec::store_first(p, v, n); }
};

// Where it pays, measured on the U-Net's layers (Zen 5, batch 64): from 14x14 up and 16
// channels each side, 1.3-1.6x faster than im2col or kernel rows. At 7x7, with three images to a
// vector of tiles, the layers alone ran 15-20% faster than im2col, but gdiffuse's training step
// ran 3-7% slower (one thread, side by side): 7x7 keeps im2col.
// F(4x4, 3x3) (6x6 input tiles, 36 products: 1.8x fewer multiply-adds than these at 28x28, 1.4x
// at 14x14) was written and measured (Zen 4, batch 64, two threads, 2026-12-06): the 28x28
// layers ran 10-20% faster, the 14x14 ones 1.5-2x slower (4x4 tiles cover 16x16 there; and at
// 28x28 its products, of these' shapes, 36 for 8 images where these take 64, took 0.86 of the
// time for 0.56 of the work), gdiffuse's step moved within the machine's noise, and its float
// error grew 20-fold (the largest error 3-5e-5 of the outputs' RMS, against 1-3e-6 here and for
// im2col). Not kept.
bool by_winograd(const ConvShape& s) {
  return s.K == 3 && s.stride == 1 && s.pad == 1 && s.C >= 16 && s.OC >= 16 && s.H * s.W >= 196;
}

template <typename T>
class Winograd {
 public:
  explicit Winograd(const ConvShape& s) : s_(s), TH_((s.H + 1) / 2), TW_((s.W + 1) / 2), T_(TH_ * TW_) {
    constexpr int64_t kLanes = Lanes<T>::kCount;
    if constexpr (std::is_same_v<T, float>) {
      // Small images several to a vector: image g's tile tx in lane g (TW + 1) + tx, one lane
      // between images (it reads the next image's first column; its results are dropped).
      if (TW_ + 1 <= kLanes) G_ = kLanes / (TW_ + 1);
      if (G_ > 1)
        for (int l = 0; l < vec::kFloats; ++l) compact_[l] = static_cast<int32_t>((l / TW_ * (TW_ + 1) + l % TW_) % (2 * kLanes));
      // put()'s: an output row's first vector from image g's lanes; its second (one image) from
      // the vectors' upper halves.
      for (int64_t g = 0; g < G_; ++g) interleave_.push_back(interleaved(g * TW_));
      upper_ = interleaved(kLanes / 2);
    }
    SW_ = G_ > 1 ? TW_ + 1 : TW_ + 1 + kLanes;
    AW_ = G_ * SW_ + kLanes;
  }
  int64_t tiles() const { return T_; }
  int64_t tile_rows() const { return TH_; }
  int64_t tile_columns() const { return TW_; }
  // Images a vector of the transforms take (1 for doubles and wide images).
  int64_t images_per_vector() const { return G_; }
  // U[16][OC, C] = G w[o, c] G^T for every pair, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
  // in the calling thread's scratch (a fresh vector a call, at these sizes, was page faults).
  const T* filters(const T* w) const {
    const int64_t OC = s_.OC, C = s_.C;
    T* u = scratch<T, 7>(static_cast<size_t>(16 * OC * C));
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const T* g = w + (o * C + c) * 9;
        T t[4][3];  // G g
        for (int j = 0; j < 3; ++j) {
          t[0][j] = g[j];
          t[1][j] = T(0.5) * (g[j] + g[3 + j] + g[6 + j]);
          t[2][j] = T(0.5) * (g[j] - g[3 + j] + g[6 + j]);
          t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; ++i) {
          const T r[4] = {t[i][0], T(0.5) * (t[i][0] + t[i][1] + t[i][2]), T(0.5) * (t[i][0] - t[i][1] + t[i][2]),
                          t[i][2]};
          for (int j = 0; j < 4; ++j) u[((i * 4 + j) * OC + o) * C + c] = r[j];
        }
      }
    return u;
  }
  // The split rows' buffer: rows -1 .. 2 TH of the zero-padded images, each as its even and odd
  // padded columns (padded column x + 1 is image column x), an array of each with a segment of
  // SW_ values for each image of a vector; zeroed, and only the images' pixels written per
  // channel, so the padding stays zero.
  T* rows() const {
    const int64_t n = (2 * TH_ + 2) * 2 * AW_;
    T* r = scratch<T, 6>(static_cast<size_t>(n));
    std::fill_n(r, n, T(0));
    return r;
  }
  // V[16][C, N] from G (<= images_per_vector()) images' channels [C, H, W] (image g at image +
  // g stride): their tile rows [ty0, ty1), in columns at + (ty - ty0) G TW + g TW + tx.
  void inputs(T* v, int64_t N, int64_t at, const T* image, int64_t stride, int64_t G, T* rows, int64_t ty0,
              int64_t ty1) const {
    using L = Lanes<T>;
    using V = typename L::V;
    const int64_t C = s_.C, H = s_.H, W = s_.W, plane = C * N;
    // Image rows 2 ty0 - 1 .. 2 ty1 (padded rows 2 ty0 .. 2 ty1 + 1).
    const int64_t y0 = std::max<int64_t>(2 * ty0 - 1, 0), y1 = std::min(2 * ty1 + 1, H);
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t g = 0; g < G; ++g) {
        const T* channel = image + g * stride + c * H * W;
        // The next channel on its way into the cache while this one is transformed (a row's
        // loads waited on memory a third of the time without).
        if (c + 1 < C)
          for (int64_t p = y0 * W; p < y1 * W; p += 16) __builtin_prefetch(channel + H * W + p);
        for (int64_t y = y0; y < y1; ++y) split(rows + (y + 1) * 2 * AW_ + g * SW_, channel + y * W);
      }
      for (int64_t ty = ty0; ty < ty1; ++ty)
        for (int64_t t0 = 0; t0 < TW_; t0 += L::kCount) {
          // Lanes loaded and values stored: every image's tiles, or a vector of one image's.
          const int64_t n = G_ > 1 ? G * TW_ : std::min(L::kCount, TW_ - t0);
          const int64_t loaded = G_ > 1 ? (G - 1) * SW_ + TW_ : n;
          V d[4][4];
          for (int i = 0; i < 4; ++i) {
            const T* even = rows + (2 * ty + i) * 2 * AW_ + t0;
            const T* odd = even + AW_;
            d[i][0] = L::load(even, loaded);
            d[i][1] = L::load(odd, loaded);
            d[i][2] = L::load(even + 1, loaded);
            d[i][3] = L::load(odd + 1, loaded);
          }
          // B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
          V e[4][4];
          for (int j = 0; j < 4; ++j) {
            e[0][j] = d[0][j] - d[2][j];
            e[1][j] = d[1][j] + d[2][j];
            e[2][j] = d[2][j] - d[1][j];
            e[3][j] = d[1][j] - d[3][j];
          }
          T* to = v + c * N + at + (ty - ty0) * G * TW_ + t0;
          for (int i = 0; i < 4; ++i) {
            store(to + (4 * i) * plane, e[i][0] - e[i][2], n);
            store(to + (4 * i + 1) * plane, e[i][1] + e[i][2], n);
            store(to + (4 * i + 2) * plane, e[i][2] - e[i][1], n);
            store(to + (4 * i + 3) * plane, e[i][1] - e[i][3], n);
          }
        }
    }
  }
  // The adjoint of outputs(), for the weight gradient: G[16][OC, N] = A Y A^T for each 2x2 tile
  // Y of G images' output gradients dout[OC, H, W] (image g at dout + g stride; zero past the
  // image), in inputs()'s columns.
  void gradients(T* gout, int64_t N, int64_t at, const T* dout, int64_t stride, int64_t G, int64_t ty0,
                 int64_t ty1) const {
    using L = Lanes<T>;
    using V = typename L::V;
    const int64_t OC = s_.OC, H = s_.H, W = s_.W, plane = OC * N, width = G_ * TW_ + L::kCount;
    // Row y's even and odd columns, image g's TW of each from g TW.
    T* split_rows = scratch<T, 8>(static_cast<size_t>(2 * TH_ * 2 * width));
    std::fill_n(split_rows, 2 * TH_ * 2 * width, T(0));
    for (int64_t o = 0; o < OC; ++o) {
      for (int64_t g = 0; g < G; ++g)
        for (int64_t y = 2 * ty0; y < std::min(2 * ty1, H); ++y) {
          T* even = split_rows + y * 2 * width + g * TW_;
          const T* row = dout + g * stride + (o * H + y) * W;
          if constexpr (std::is_same_v<T, float>) {
            split_row(even, even + width, row, W, TW_);
          } else {
            for (int64_t x = 0; x < W; ++x) even[(x % 2) * width + x / 2] = row[x];
          }
        }
      for (int64_t ty = ty0; ty < ty1; ++ty)
        for (int64_t t0 = 0; t0 < TW_; t0 += L::kCount) {
          const int64_t n = G_ > 1 ? G * TW_ : std::min(L::kCount, TW_ - t0);
          V t[4][2];  // A Y, A = [1 0; 1 1; 1 -1; 0 -1]
          for (int q = 0; q < 2; ++q) {
            const V y0 = L::load(split_rows + (2 * ty) * 2 * width + q * width + t0, n);
            const V y1 = L::load(split_rows + (2 * ty + 1) * 2 * width + q * width + t0, n);
            t[0][q] = y0;
            t[1][q] = y0 + y1;
            t[2][q] = y0 - y1;
            t[3][q] = V{} - y1;
          }
          T* to = gout + o * N + at + (ty - ty0) * G * TW_ + t0;
          for (int i = 0; i < 4; ++i) {
            L::store(to + (4 * i) * plane, t[i][0], n);
            L::store(to + (4 * i + 1) * plane, t[i][0] + t[i][1], n);
            L::store(to + (4 * i + 2) * plane, t[i][0] - t[i][1], n);
            L::store(to + (4 * i + 3) * plane, V{} - t[i][1], n);
          }
        }
    }
  }
  // The adjoint of filters(): dw[o, c] += G^T dU[., o, c] G for dU[16][OC, C].
  void add_filter_gradients(T* dw, const T* du) const {
    const int64_t OC = s_.OC, C = s_.C;
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t c = 0; c < C; ++c) {
        T r[4][3];  // dU G
        for (int i = 0; i < 4; ++i) {
          const T* d = du + (i * 4 * OC + o) * C + c;
          const T d0 = d[0], d1 = d[OC * C], d2 = d[2 * OC * C], d3 = d[3 * OC * C];
          r[i][0] = d0 + T(0.5) * (d1 + d2);
          r[i][1] = T(0.5) * (d1 - d2);
          r[i][2] = T(0.5) * (d1 + d2) + d3;
        }
        T* g = dw + (o * C + c) * 9;
        for (int l = 0; l < 3; ++l) {
          g[l] += r[0][l] + T(0.5) * (r[1][l] + r[2][l]);
          g[3 + l] += T(0.5) * (r[1][l] - r[2][l]);
          g[6 + l] += T(0.5) * (r[1][l] + r[2][l]) + r[3][l];
        }
      }
  }
  // out[OC, OH, OW] of G images (image g at out + g stride) = A^T M A from M[16][OC, N] in
  // inputs()'s columns, A^T = [1 1 1 0; 0 1 -1 -1]. What is added on the way: add[g OC + o] at
  // every pixel (or nothing: null), plus (image g's at plus + g stride; null: nothing), and what
  // out holds when accumulating. Only accumulating reads out: adding into out's rows in memory,
  // a masked load after a masked store to the row before, stalled.
  void outputs(T* out, int64_t stride, int64_t G, const T* m, int64_t N, int64_t at, const T* add, const T* plus,
               bool accumulate, int64_t ty0, int64_t ty1) const {
    using L = Lanes<T>;
    using V = typename L::V;
    const int64_t OC = s_.OC, H = s_.H, W = s_.W, plane = OC * N;
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t ty = ty0; ty < ty1; ++ty)
        for (int64_t t0 = 0; t0 < TW_; t0 += L::kCount) {
          const int64_t n = G_ > 1 ? G * TW_ : std::min(L::kCount, TW_ - t0);
          const T* from = m + o * N + at + (ty - ty0) * G * TW_ + t0;
          V s[2][4];
          for (int j = 0; j < 4; ++j) {
            const V m0 = L::load(from + j * plane, n), m1 = L::load(from + (4 + j) * plane, n);
            const V m2 = L::load(from + (8 + j) * plane, n), m3 = L::load(from + (12 + j) * plane, n);
            s[0][j] = m0 + m1 + m2;
            s[1][j] = m1 - m2 - m3;
          }
          for (int i = 0; i < 2 && 2 * ty + i < H; ++i) {
            const V left = s[i][0] + s[i][1] + s[i][2], right = s[i][1] - s[i][2] - s[i][3];
            const int64_t offset = (o * H + 2 * ty + i) * W + 2 * t0, count = std::min(2 * (G_ > 1 ? TW_ : n), W - 2 * t0);
            for (int64_t g = 0; g < G; ++g)
              put(out + g * stride + offset, plus ? plus + g * stride + offset : nullptr, left, right, g, count,
                  add ? add[g * OC + o] : T(0), accumulate);
          }
        }
  }

 private:
  // The even and odd padded columns of an image row (padded column x + 1 is column x) into a
  // segment of the split rows: the image's even columns are the padded odd ones, its odd
  // columns the padded even ones from 1.
  void split(T* even, const T* row) const {
    T* odd = even + AW_;
    if constexpr (std::is_same_v<T, float>) {
      split_row(odd, even + 1, row, s_.W, SW_ - 1);
    } else {
      for (int64_t x = 0; x < s_.W; x += 2) odd[x / 2] = row[x];
      for (int64_t x = 1; x < s_.W; x += 2) even[(x + 1) / 2] = row[x];
    }
  }
  // The first n values of a vector of transforms, at p: the images' lanes made contiguous first
  // where several share the vector.
  void store(T* p, typename Lanes<T>::V x, int64_t n) const {
    if constexpr (std::is_same_v<T, float>) {
      if (G_ > 1) x = vec::pick(x, x, compact_);
    }
    Lanes<T>::store(p, x, n);
  }
  // dst[2 t] = left[t] + bias, dst[2 t + 1] = right[t] + bias for the first n values, t counted
  // from image g's first lane (+ plus[i] where plus is given, + dst[i] when accumulating).
  void put(T* dst, const T* plus, typename Lanes<T>::V left, typename Lanes<T>::V right, int64_t g, int64_t n,
           T bias, bool accumulate) const {
    if constexpr (std::is_same_v<T, float>) {
      const vec::Vec halves[2] = {vec::pick(left, right, interleave_[static_cast<size_t>(g)]),
                                  vec::pick(left, right, upper_)};
      for (int h = 0; h < 2 && h * vec::kFloats < n; ++h) {
        const int64_t k = std::min<int64_t>(vec::kFloats, n - h * vec::kFloats), at = h * vec::kFloats;
        vec::Vec x = halves[h] + vec::broadcast(bias);
        if (plus) x += vec::load_first(plus + at, k);
        if (accumulate) x += vec::load_first(dst + at, k);
        vec::store_first(dst + at, x, k);
      }
    } else {
      (void)g;
      const T both[2] = {left, right};
      for (int64_t i = 0; i < n; ++i)
        dst[i] = both[i] + bias + (plus ? plus[i] : T(0)) + (accumulate ? dst[i] : T(0));
    }
  }
  ConvShape s_;
  int64_t TH_, TW_, T_;
  int64_t G_ = 1, SW_ = 0, AW_ = 0;  // images a vector; a split row's segment and array widths
  vec::Index compact_{}, upper_{};
  std::vector<vec::Index> interleave_;
};

// Winograd's work in pieces of up to 512 tiles, as im2col's products go up to 512 columns:
// images side by side (a power of two of them, so that 64 split evenly: 8 at 14x14, 2 at 28x28),
// or an image's tile rows a few at a time where one image has more. (Budgets of 256 to 1024
// tiles measured within a few percent of each other on the U-Net's layers; whole groups of 8
// images at 28x28, 1568 tiles, were slower.)
struct TilePieces {
  int64_t images, rows, splits, count;  // piece p: images [p / splits * images, + images), tile rows
  TilePieces(const ConvShape& s, int64_t tile_rows, int64_t tile_columns) {
    constexpr int64_t kTiles = 512;  // images_side_by_side's 512
    const int64_t tiles = tile_rows * tile_columns;
    images = images_side_by_side(s.B, tiles);
    rows = tiles <= kTiles ? tile_rows : std::max<int64_t>(kTiles / tile_columns, 1);
    splits = (tile_rows + rows - 1) / rows;
    count = (s.B + images - 1) / images * splits;
  }
  // Piece p's first image, its images, and its tile rows [ty0, ty1).
  void at(int64_t p, int64_t B, int64_t tile_rows, int64_t& b0, int64_t& k, int64_t& ty0, int64_t& ty1) const {
    b0 = p / splits * images;
    k = std::min(images, B - b0);
    ty0 = p % splits * rows;
    ty1 = std::min(tile_rows, ty0 + rows);
  }
};

// conv_weight_backward's Winograd path: dU[16][OC, C] = sum over tiles of (A dY A^T) (B^T d B),
// 16 products of [OC, tiles] by [tiles, C] each thread over its pieces (summed in thread order,
// as conv_weight_backward's sums), then dw += G^T dU G.
template <typename T>
void conv_weight_winograd(T* dw, const T* dout, const T* inp, const ConvShape& s) {
  const Winograd<T> wg(s);
  const int64_t TH = wg.tile_rows(), TW = wg.tile_columns(), HW = s.H * s.W;
  const TilePieces pieces(s, TH, TW);
  const int64_t most = pieces.images * pieces.rows * TW;  // tiles in a piece
  const int threads = conv_threads(pieces.count, conv_work(s));
  std::vector<T*> partial(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    T* v = scratch<T, 0>(static_cast<size_t>(16 * s.C * most));
    T* g = scratch<T, 1>(static_cast<size_t>(16 * s.OC * most));
    T* mine = scratch<T, 3>(static_cast<size_t>(16 * s.OC * s.C));
    T* rows = wg.rows();
    T beta = T(0);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < pieces.count; ++p) {
      int64_t b0, k, ty0, ty1;
      pieces.at(p, s.B, TH, b0, k, ty0, ty1);
      const int64_t per_image = (ty1 - ty0) * TW, N = k * per_image;
      for (int64_t g0 = 0; g0 < k; g0 += wg.images_per_vector()) {
        const int64_t G = std::min(wg.images_per_vector(), k - g0);
        wg.inputs(v, N, g0 * per_image, inp + (b0 + g0) * s.C * HW, s.C * HW, G, rows, ty0, ty1);
        wg.gradients(g, N, g0 * per_image, dout + (b0 + g0) * s.OC * HW, s.OC * HW, G, ty0, ty1);
      }
      for (int64_t xi = 0; xi < 16; ++xi)
        gemm_strided<T>(false, true, s.OC, s.C, N, T(1), g + xi * s.OC * N, N, v + xi * s.C * N, N, beta,
                        mine + xi * s.OC * s.C, s.C);
      beta = T(1);
    }
    if (beta == T(1)) partial[static_cast<size_t>(omp_get_thread_num())] = mine;
  }
  T* first = nullptr;
  for (T* part : partial) {
    if (!part) continue;
    if (!first) {
      first = part;
      continue;
    }
    for (int64_t i = 0; i < 16 * s.OC * s.C; ++i) first[i] += part[i];
  }
  if (first) wg.add_filter_gradients(dw, first);
}

// conv_data_forward's Winograd path, piece by piece.
template <typename T>
void conv_winograd(T* out, const T* inp, const T* w, const ConvShape& s, bool accumulate, const ConvExtras<T>& extra) {
  const Winograd<T> wg(s);
  const T* u = wg.filters(w);
  const int64_t TH = wg.tile_rows(), TW = wg.tile_columns(), P = s.H * s.W;
  const TilePieces pieces(s, TH, TW);
  const int64_t most = pieces.images * pieces.rows * TW;
#pragma omp parallel num_threads(conv_threads(pieces.count, conv_work(s)))
  {
    T* v = scratch<T, 0>(static_cast<size_t>(16 * s.C * most));
    T* m = scratch<T, 1>(static_cast<size_t>(16 * s.OC * most));
    T* add = scratch<T, 9>(static_cast<size_t>(wg.images_per_vector() * s.OC));
    T* rows = wg.rows();
#pragma omp for schedule(static)
    for (int64_t p = 0; p < pieces.count; ++p) {
      int64_t b0, k, ty0, ty1;
      pieces.at(p, s.B, TH, b0, k, ty0, ty1);
      const int64_t per_image = (ty1 - ty0) * TW, N = k * per_image;
      const auto [images, stride] = extra.input(inp, b0, k, s, 0, s.C);
      for (int64_t g0 = 0; g0 < k; g0 += wg.images_per_vector())
        wg.inputs(v, N, g0 * per_image, images + g0 * stride, stride, std::min(wg.images_per_vector(), k - g0), rows,
                  ty0, ty1);
      for (int64_t xi = 0; xi < 16; ++xi)
        gemm_strided<T>(false, false, s.OC, N, s.C, T(1), u + xi * s.OC * s.C, s.C, v + xi * s.C * N, N, T(0),
                        m + xi * s.OC * N, N);
      for (int64_t g0 = 0; g0 < k; g0 += wg.images_per_vector()) {
        const int64_t G = std::min(wg.images_per_vector(), k - g0), b = b0 + g0;
        // The bias and each image's vector: one value a channel.
        const bool adds = extra.bias || extra.per_image;
        for (int64_t g = 0; adds && g < G; ++g)
          for (int64_t o = 0; o < s.OC; ++o)
            add[g * s.OC + o] = extra.added(b + g, o, s.OC);
        wg.outputs(out + b * s.OC * P, s.OC * P, G, m, N, g0 * per_image, adds ? add : nullptr,
                   extra.plus ? extra.plus + b * s.OC * P : nullptr, accumulate, ty0, ty1);
      }
    }
  }
}

// out[b] (=, or += when accumulate) w[OC, C K K] col(inp[b]) (+ what `extra` adds), for every
// image; n images per product, their columns side by side.
template <typename T>
void conv_data_forward(T* out, const T* inp, const T* w, const ConvShape& s, bool accumulate,
                       const ConvExtras<T>& extra = {}) {
  if (by_winograd(s)) return conv_winograd(out, inp, w, s, accumulate, extra);
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K, n = images_per_gemm(s), groups = (s.B + n - 1) / n;
  // What is added goes in first, and the product is added to it (no zeroing pass, no bias pass).
  const bool onto = accumulate || extra.any_added();
  if (by_kernel_rows(s)) {
    const std::vector<T> wk = weights_by_kernel_row(w, s);
    const int64_t CK = s.C * s.K, OW = s.OW(), ld = (s.H + 2 * s.pad) * OW;
#pragma omp parallel num_threads(conv_threads(s.B, conv_work(s)))
    {
      T* rows = scratch<T, 0>(static_cast<size_t>(CK * ld));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < s.B; ++b) {
        kernel_rows(rows, extra.input(inp, b, 1, s, 0, s.C).first, s);
        T* o = out + b * s.OC * P;
        if (extra.any_added()) extra.fill(o, b, s.OC, P, accumulate);
        for (int64_t ky = 0; ky < s.K; ++ky)
          gemm_strided<T>(false, false, s.OC, P, CK, T(1), wk.data() + ky * s.OC * CK, CK, rows + ky * OW, ld,
                          ky > 0 || onto ? T(1) : T(0), o, P);
      }
    }
    return;
  }
#pragma omp parallel num_threads(conv_threads(groups, conv_work(s)))
  {
    const int64_t chunk = chunk_channels(s), KK = s.K * s.K;
    T* col = is_pointwise(s) && n == 1 ? nullptr : scratch<T, 0>(static_cast<size_t>(chunk * KK * P * n));
    T* product = n == 1 ? nullptr : scratch<T, 1>(static_cast<size_t>(s.OC * P * n));
#pragma omp for schedule(static)
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t b0 = group * n, m = std::min(n, s.B - b0), ld = m * P;
      // One image: the product goes straight onto its output; several: into `product` first.
      T* o = m == 1 ? out + b0 * s.OC * P : product;
      if (m == 1 && extra.any_added()) extra.fill(o, b0, s.OC, P, accumulate);
      const bool onto_o = m == 1 && onto;
      if (m == 1 && is_pointwise(s)) {
        gemm_strided<T>(false, false, s.OC, P, CKK, T(1), w, CKK, extra.input(inp, b0, 1, s, 0, s.C).first, P,
                        onto_o ? T(1) : T(0), o, P);
        continue;
      }
      for (int64_t c0 = 0; c0 < s.C; c0 += chunk) {
        const ConvShape part = with_channels(s, std::min(chunk, s.C - c0));
        const auto [images, stride] = extra.input(inp, b0, m, s, c0, part.C);
        im2col(col, ld, images, stride, m, part);
        gemm_strided<T>(false, false, s.OC, ld, part.C * KK, T(1), w + c0 * KK, CKK, col, ld,
                        c0 > 0 || onto_o ? T(1) : T(0), o, ld);
      }
      if (m == 1) continue;
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(s.B, conv_work(s)))
    for (int64_t b = 0; b < s.B; ++b)
      gemm_strided<T>(true, false, CKK, P, s.OC, T(1), w, CKK, dout + b * s.OC * P, P, overwrite ? T(0) : T(1),
                      dinp + b * s.C * s.H * s.W, P);
    return;
  }
  if (overwrite) std::fill(dinp, dinp + s.B * s.C * s.H * s.W, T(0));  // col2im adds
  // Otherwise (strided): columns = w^T dout for n images side by side in one product, then
  // col2im of each image's share.
  const int64_t n = images_per_gemm(s), groups = (s.B + n - 1) / n;
#pragma omp parallel num_threads(conv_threads(groups, conv_work(s)))
  {
    const int64_t chunk = chunk_channels(s);
    T* col = scratch<T, 0>(static_cast<size_t>(chunk * KK * P * n));
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
      for (int64_t c0 = 0; c0 < s.C; c0 += chunk) {
        const ConvShape part = with_channels(s, std::min(chunk, s.C - c0));
        gemm_strided<T>(true, false, part.C * KK, ld, s.OC, T(1), w + c0 * KK, CKK, d, ld, T(0), col, ld);
        col2im(dinp + (b0 * s.C + c0) * s.H * s.W, s.C * s.H * s.W, m, col, ld, part);
      }
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
  if (by_winograd(s)) return conv_weight_winograd(dw, dout, inp, s);
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K, n = images_per_gemm(s), groups = (s.B + n - 1) / n;
  const int threads = conv_threads(groups, conv_work(s));
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
      const int64_t chunk = chunk_channels(s), KK = s.K * s.K;
      T* col = is_pointwise(s) && n == 1 ? nullptr : scratch<T, 0>(static_cast<size_t>(chunk * KK * P * n));
      T* grads = n == 1 ? nullptr : scratch<T, 1>(static_cast<size_t>(s.OC * P * n));
#pragma omp for schedule(static)
      for (int64_t group = 0; group < groups; ++group) {
        const int64_t b0 = group * n, m = std::min(n, s.B - b0), ld = m * P;
        const T* image = inp + b0 * s.C * s.H * s.W;
        const T* d = dout + b0 * s.OC * P;
        if (m > 1) {
          for (int64_t i = 0; i < m; ++i)
            for (int64_t o = 0; o < s.OC; ++o) std::copy_n(d + (i * s.OC + o) * P, P, grads + o * ld + i * P);
          d = grads;
        }
        if (m == 1 && is_pointwise(s)) {
          gemm_strided<T>(false, true, CKK, s.OC, ld, T(1), image, ld, d, ld, beta, mine, s.OC);
        } else {
          for (int64_t c0 = 0; c0 < s.C; c0 += chunk) {
            const ConvShape part = with_channels(s, std::min(chunk, s.C - c0));
            im2col(col, ld, image + c0 * s.H * s.W, s.C * s.H * s.W, m, part);
            gemm_strided<T>(false, true, part.C * KK, s.OC, ld, T(1), col, ld, d, ld, beta, mine + c0 * KK * s.OC,
                            s.OC);
          }
        }
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(s.B * G, kPerValue * static_cast<double>(s.B * s.C * HW)))
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
#pragma omp parallel num_threads(conv_threads(B * G, 8.0 * static_cast<double>(B * C * HW)))
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(B * G, 8.0 * static_cast<double>(B * C * HW)))
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(B * G, 8.0 * static_cast<double>(B * C * HW)))
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(n, kPerValue * static_cast<double>(n)))
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * sigmoid(inp[i]);
}

template <typename T>
void silu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(n, kPerValue * static_cast<double>(n)))
  for (int64_t i = 0; i < n; ++i) {
    T s = sigmoid(inp[i]);
    dinp[i] += dout[i] * s * (T(1) + inp[i] * (T(1) - s));
  }
}

template <typename T>
void upsample2x_forward(T* out, const T* inp, int64_t BC, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(BC, kPerValue * static_cast<double>(4 * BC * H * W)))
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      const T* src = inp + (bc * H + y / 2) * W;
      T* dst = out + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[2 * x] = dst[2 * x + 1] = src[x];
    }
}

template <typename T>
void upsample2x_backward(T* dinp, const T* dout, int64_t BC, int64_t H, int64_t W) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(BC, kPerValue * static_cast<double>(4 * BC * H * W)))
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      T* dst = dinp + (bc * H + y / 2) * W;
      const T* src = dout + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[x] += src[2 * x] + src[2 * x + 1];
    }
}

template <typename T>
void add_channels_forward(T* out, const T* x, const T* e, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(B * C, kPerValue * static_cast<double>(B * C * HW)))
  for (int64_t bc = 0; bc < B * C; ++bc)
    for (int64_t p = 0; p < HW; ++p) out[bc * HW + p] = x[bc * HW + p] + e[bc];
}

template <typename T>
void add_channels_backward(T* dx, T* de, const T* dout, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(B * C, kPerValue * static_cast<double>(B * C * HW)))
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
#pragma omp parallel for schedule(static) num_threads(conv_threads(B, kPerValue * static_cast<double>(B * (C1 + C2) * HW)))
  for (int64_t i = 0; i < B; ++i) {
    T* o = out + i * (C1 + C2) * HW;
    std::copy(a + i * C1 * HW, a + (i + 1) * C1 * HW, o);
    std::copy(b + i * C2 * HW, b + (i + 1) * C2 * HW, o + C1 * HW);
  }
}

template <typename T>
void concat_channels_backward(T* da, T* db, const T* dout, int64_t B, int64_t C1, int64_t C2, int64_t HW) {
#pragma omp parallel for schedule(static) num_threads(conv_threads(B, kPerValue * static_cast<double>(B * (C1 + C2) * HW)))
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
