#include "tensor/sgemm.h"

// gen's own kernel where the compiler targets AVX2 and FMA (x86-64-v3) or AVX-512 (x86-64-v4):
// one source on vec::Vec for both widths. A baseline x86-64 build (the package's fallback
// library) calls OpenBLAS, whose own dispatch runs faster kernels than SSE code could.
#if defined(__AVX2__) && defined(__FMA__)
#define GEN_SGEMM_NATIVE 1
#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

#include "tensor/vec.h"
#else
#include "tensor/blas.h"
#endif

namespace gen::nn {

#if defined(GEN_SGEMM_NATIVE)

namespace {

using vec::kFloats;
using vec::Vec;

// The micro-tile: kMR rows of C by kNV vectors, kMR * kNV accumulators held in registers, plus
// kNV for a row of B and one for a broadcast element of A: each step of depth is kNV loads, kMR
// broadcasts and kMR * kNV FMAs, enough independent FMAs to cover their latency. AVX-512 has 32
// vector registers: 12 x 2 vectors (24 accumulators, 27 registers in all); AVX2 has 16: 6 x 2
// (12, 15 in all), the shape of BLIS's Haswell kernel.
constexpr int kMR = kFloats == 16 ? 12 : 6;
constexpr int kNV = 2;
constexpr int64_t kNR = kFloats * kNV;
// A transposed B is packed, a kKC x kNC block at a time (in L2: 512 KB at most), so that its
// rows become contiguous; the kernel reads A in place: a kMR x kKC micro-panel (at most 12 KB,
// in L1) reused across the whole row of tiles. Packing A costs more than it saves at these
// sizes (bench/sgemm.cpp: the products are a few hundred wide and deep), but for a transposed
// A a page wide or more (pack_at). An untransposed B is packed too where a tile's rows are one
// cache line (AVX2): read in place, a 16-float row every 6 cycles from rows 512 bytes to 2 KB
// apart, the weight gradients (dy^T x, B = x) ran at 56-93 GFLOP/s on a Zen 4, packed at
// 90-107. The AVX-512 kernel reads its 32-float rows in place: packing them cost it 5-10% on
// those products. Depths over kKC are split into equal blocks (768 = 3 x 256).
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 512;
static_assert(kNC % kNR == 0, "a block of columns is whole panels");
constexpr bool kPackUntransposedB = kFloats < 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// This thread's buffer for the packed B: one kKC x kNC block (512 KB), the most any product
// packs, allocated on its first use and kept for the life of the thread.
float* packed_b() {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buffer;
  if (!buffer) {
    buffer.reset(static_cast<float*>(std::aligned_alloc(64, kKC * kNC * sizeof(float))));
    if (!buffer) throw std::bad_alloc();
  }
  return buffer.get();
}

// The transpose of a kFloats x kFloats block in registers (r[i] is row i; afterwards column i),
// in log2(kFloats) stages: the stage of distance d swaps bit d of the row index with bit d of
// the lane index (rows i and i + d, for i without bit d, trade the first's lanes with bit d for
// the second's lanes without it), and the swaps of all the bits make the transpose. Each new row
// is one vec::pick of a pair: a vpermt2ps with AVX-512.
constexpr int kStages = std::countr_zero(static_cast<unsigned>(kFloats));
struct TransposeLanes {
  vec::Index low[kStages], high[kStages];  // lane picks of rows i and i + d at stage s (d = kFloats >> (s + 1))
};
TransposeLanes transpose_lanes() {
  TransposeLanes t;
  for (int s = 0; s < kStages; ++s) {
    const int d = kFloats >> (s + 1);
    for (int l = 0; l < kFloats; ++l) {
      t.low[s][l] = l & d ? kFloats + l - d : l;
      t.high[s][l] = l & d ? kFloats + l : l + d;
    }
  }
  return t;
}
void transpose(Vec r[kFloats], const TransposeLanes& t) {
#pragma GCC unroll 4
  for (int s = 0; s < kStages; ++s) {
    const int d = kFloats >> (s + 1);
#pragma GCC unroll 16
    for (int i = 0; i < kFloats; ++i) {
      if (i & d) continue;
      const Vec a = r[i], b = r[i + d];
      r[i] = vec::pick(a, b, t.low[s]);
      r[i + d] = vec::pick(a, b, t.high[s]);
    }
  }
}

// Copies op(B)[p0 : p0 + kc, j0 : j0 + nc] from a stored B [N, K] (transposed: the weights of a
// linear layer) into micro-panels of kNR columns: panel j holds, for each k, the kNR values of
// row k at pb + j * kNR * kc + k * kNR, zero past nc. A transpose, kFloats x kFloats at a time in
// registers: scalar copies with strided stores cost a tenth of the product.
void pack_bt(const float* B, int64_t ldb, int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* pb) {
  static const TransposeLanes lanes = transpose_lanes();
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = std::min<int64_t>(kNR, nc - jr);
    float* dst = pb + jr * kc;
    for (int v = 0; v < kNV; ++v) {
      const int64_t rows = std::clamp<int64_t>(nr - kFloats * v, 0, kFloats);
      const float* src = B + (j0 + jr + kFloats * v) * ldb + p0;
      for (int64_t k = 0; k < kc; k += kFloats) {
        const int64_t depth = std::min<int64_t>(kFloats, kc - k);
        Vec r[kFloats];
        for (int i = 0; i < kFloats; ++i) r[i] = i < rows ? vec::load_first(src + i * ldb + k, depth) : Vec{};
        transpose(r, lanes);
        for (int64_t i = 0; i < depth; ++i) vec::store(dst + (k + i) * kNR + kFloats * v, r[i]);
      }
    }
  }
}

// The same panels from a B stored [K, N] (untransposed): rows of kNR copied, zero past nc.
void pack_bn(const float* B, int64_t ldb, int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* pb) {
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = std::min<int64_t>(kNR, nc - jr);
    float* dst = pb + jr * kc;
    const float* src = B + p0 * ldb + j0 + jr;
    for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        const int64_t lanes = std::clamp<int64_t>(nr - kFloats * v, 0, kFloats);
        vec::store(dst + k * kNR + kFloats * v, lanes == kFloats ? vec::load(src + k * ldb + kFloats * v)
                                                                 : vec::load_first(src + k * ldb + kFloats * v, lanes));
      }
    }
  }
}

// Copies the micro-panel of a transposed A, the mr (<= kMR) values of each of kc steps of
// depth (a[k * lda + r]), to pa[k * kMR + r]. Read in place with lda of a page or more (conv.cpp's
// weights: 1024 or 2048 floats), each step of depth is a new page, which neither the TLB's
// first level nor the prefetchers (they stop at a page's end) follow: the AVX2 kernel ran the
// DCGAN's W^T dy at 0.76-0.83 of OpenBLAS's speed in place, 0.96-0.99 packed (and in place with
// lda = 256), on a Zen 4. The copy is kc x mr floats a tile, against kc x mr x N FMAs. With lda
// under a page it costs more than it saves (the GPT's weight gradients, lda 64 to 256: 5%).
constexpr int64_t kPage = 4096;
void pack_at(const float* a, int64_t lda, int64_t mr, int64_t kc, float* pa) {
  static_assert(kMR <= kFloats, "a step of depth of the micro-panel is one vector");
  for (int64_t k = 0; k < kc; ++k) vec::store_first(pa + k * kMR, vec::load_first(a + k * lda, mr), mr);
}

// C[ROWS, kFloats NV] = alpha A B + beta C over depth kc. A in place: element (r, k) at
// a[r * lda + k] (ROW_MAJOR_A) or a[k * lda + r]; row k of B at b + k * ldb (a packed panel, or B
// itself). The last vector of each row of B and C has `last` lanes (1 to kFloats: the columns of
// a partial tile); nothing past them is read or written. beta == 0 writes C unread. alpha and
// beta come by reference, read after the loop: as scalar arguments they were kept in vector
// registers through it, and with generic tuning (-march=x86-64-v4) GCC then spilled a vector of
// B to the stack inside the loop (27% slower).
struct Scaling {
  float alpha, beta;
};
template <int ROWS, int NV, bool ROW_MAJOR_A>
void kernel(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
            int64_t last, const Scaling& scaling) {
  // The tile of C is needed only at the end: start fetching its rows now, behind the FMAs.
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) __builtin_prefetch(c + r * ldc, 0, 3);
  Vec acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec{};
  }
  for (int64_t k = 0; k < kc; ++k) {
    Vec bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = v + 1 == NV && last < kFloats ? vec::load_first(b + k * ldb + kFloats * v, last)
                                            : vec::load(b + k * ldb + kFloats * v);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const Vec ar = vec::broadcast(ROW_MAJOR_A ? a[r * lda + k] : a[k * lda + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = vec::fma(ar, bv[v], acc[r][v]);
    }
  }
  const float beta = scaling.beta;
  const Vec va = vec::broadcast(scaling.alpha), vb = vec::broadcast(beta);
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = v + 1 == NV ? last : kFloats;
      float* cr = c + r * ldc + kFloats * v;
      Vec x;
      if (beta == 0.0f)
        x = acc[r][v] * va;
      else if (beta == 1.0f)
        x = vec::fma(acc[r][v], va, vec::load_first(cr, lanes));
      else
        x = vec::fma(acc[r][v], va, vb * vec::load_first(cr, lanes));
      vec::store_first(cr, x, lanes);
    }
  }
}

// kernels[a row-major][rows - 1][vectors - 1]: every partial tile gets a kernel of its exact
// size, so that M = 64 (attention) does not pay for 72 rows.
using Kernel = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                        const Scaling&);
template <bool ROW_MAJOR_A, int R, size_t... V>
constexpr std::array<Kernel, kNV> kernel_row(std::index_sequence<V...>) {
  return {kernel<R, static_cast<int>(V) + 1, ROW_MAJOR_A>...};
}
template <bool ROW_MAJOR_A, size_t... R>
constexpr std::array<std::array<Kernel, kNV>, kMR> kernel_table(std::index_sequence<R...>) {
  return {kernel_row<ROW_MAJOR_A, static_cast<int>(R) + 1>(std::make_index_sequence<kNV>())...};
}
constexpr std::array<std::array<std::array<Kernel, kNV>, kMR>, 2> kernels = {
    kernel_table<false>(std::make_index_sequence<kMR>()), kernel_table<true>(std::make_index_sequence<kMR>())};

// C = beta C, for the products that read neither A nor B.
void scale(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + N, 0.0f);
    else
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
  }
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale(M, N, beta, C, ldc);
    return;
  }
  const int64_t kc_step = ceil_div(K, ceil_div(K, kKC));
  const int64_t nc_step = ceil_div(N, ceil_div(N, kNC));
  const bool pack = tb || kPackUntransposedB;
  float* pb = pack ? packed_b() : nullptr;  // ceil_div(nc_step, kNR) * kNR * kc_step <= kNC * kKC floats
  // A transposed A whose steps of depth are a page apart or more is packed, a tile at a time.
  const bool pack_a = ta && lda >= kPage / static_cast<int64_t>(sizeof(float));
  alignas(64) float pa[kMR * kKC];
  // op(A)(i, k) is A[i * lda + k], or A[k * lda + i] transposed.
  const int64_t a_row = ta ? 1 : lda, a_col = ta ? lda : 1;
  // Rows are dealt evenly to the tiles (M = 64: 11, 11, 11, 11, 10, 10, not 5 x 12 + 4): a
  // 4-row tile has too few independent FMAs to hide their latency.
  const int64_t row_tiles = ceil_div(M, kMR);
  for (int64_t jc = 0; jc < N; jc += nc_step) {
    const int64_t nc = std::min(nc_step, N - jc);
    for (int64_t pc = 0; pc < K; pc += kc_step) {
      const int64_t kc = std::min(kc_step, K - pc);
      // The first block of depth applies beta; the later ones add to what it wrote.
      const Scaling scaling{alpha, pc == 0 ? beta : 1.0f};
      if (pack) (tb ? pack_bt : pack_bn)(B, ldb, jc, nc, pc, kc, pb);
      for (int64_t tile = 0; tile < row_tiles; ++tile) {
        const int64_t ir = M * tile / row_tiles, mr = M * (tile + 1) / row_tiles - ir;
        const auto& row_kernels = kernels[!ta][mr - 1];
        const float* a = A + ir * a_row + pc * a_col;
        int64_t a_stride = lda;
        if (pack_a) {
          pack_at(a, lda, mr, kc, pa);
          a = pa;
          a_stride = kMR;
        }
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = std::min(kNR, nc - jr);
          const int64_t vectors = ceil_div(nr, kFloats);
          const int64_t last = nr - kFloats * (vectors - 1);
          const float* b = pack ? pb + jr * kc : B + pc * ldb + jc + jr;
          row_kernels[vectors - 1](kc, a, a_stride, b, pack ? kNR : ldb, C + ir * ldc + jc + jr, ldc, last, scaling);
        }
      }
    }
  }
}

const char* sgemm_kernel() { return kFloats == 16 ? "AVX-512, 12 x 32 tile" : "AVX2, 6 x 16 tile"; }

#else  // neither AVX2 with FMA nor AVX-512 at compile time: OpenBLAS

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  blas::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char* sgemm_kernel() { return "cblas_sgemm (OpenBLAS)"; }

#endif

}  // namespace gen::nn
