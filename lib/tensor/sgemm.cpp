#include "tensor/sgemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <new>
#include <utility>
#else
#include "tensor/blas.h"
#endif

namespace gen::nn {

#if defined(__AVX512F__)

namespace {

// The micro-tile: kMR rows of C by kNV vectors of 16 floats, kMR * kNV = 24 accumulators held in
// zmm registers, plus kNV for a row of B and one for a broadcast element of A: each step of depth
// is kNV loads, kMR broadcasts and kMR * kNV FMAs, enough independent FMAs to cover their latency.
constexpr int kMR = 12;
constexpr int kNV = 2;
constexpr int64_t kNR = 16 * kNV;
// Only a transposed B is packed, a kKC x kNC block at a time (in L2: 512 KB at most), so that
// its rows become contiguous; otherwise the kernel reads rows of B in place, as it reads A: a
// kMR x kKC micro-panel (12 KB, in L1) reused across the whole row of tiles. Packing A, or an
// untransposed B, as BLIS does, costs more than it saves at these sizes (bench/sgemm.cpp): the
// products are a few hundred wide and deep. Depths over kKC are split into equal blocks (768 =
// 3 x 256).
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 512;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Lanes [0, n) of a 16-lane mask, n in [0, 16].
__mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>((uint32_t{1} << n) - 1); }

// A growable 64-byte-aligned float buffer, one per thread for the packed B: no allocation after
// the first call with the largest shape.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  float* get(int64_t n) {
    if (n > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = ceil_div(n, 16) * 16;  // aligned_alloc wants a multiple of the alignment
      data_ = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(size_) * sizeof(float)));
      if (!data_) {
        size_ = 0;
        throw std::bad_alloc();
      }
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

thread_local Buffer packed_b;

// r[i] = column i of the 16 x 16 matrix whose rows were r[0..15] (unpack within 128-bit lanes,
// then permute the lanes). The zero-masking forms with a full mask compile to the plain
// instructions; the plain intrinsics start from _mm512_undefined_ps(), which GCC 12 reports
// under -Wmaybe-uninitialized once inlined here.
void transpose16(__m512 r[16]) {
  constexpr __mmask16 all = 0xFFFF;
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
  }
  // u[4 g + c], 128-bit lane l: column 4 l + c, rows 4 g .. 4 g + 3.
  for (int g = 0; g < 16; g += 4) {
    const __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
    u[g] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, t0, t2));
    u[g + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, t0, t2));
    u[g + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, t1, t3));
    u[g + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, t1, t3));
  }
  // Lanes {0, 2} and {1, 3} of a pair, twice: 0x88 picks lanes 0, 2 of each operand, 0xdd 1, 3.
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_maskz_shuffle_f32x4(all, u[c], u[4 + c], 0x88);
    const __m512 v4 = _mm512_maskz_shuffle_f32x4(all, u[c], u[4 + c], 0xdd);
    const __m512 v8 = _mm512_maskz_shuffle_f32x4(all, u[8 + c], u[12 + c], 0x88);
    const __m512 v12 = _mm512_maskz_shuffle_f32x4(all, u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_maskz_shuffle_f32x4(all, v0, v8, 0x88);
    r[8 + c] = _mm512_maskz_shuffle_f32x4(all, v0, v8, 0xdd);
    r[4 + c] = _mm512_maskz_shuffle_f32x4(all, v4, v12, 0x88);
    r[12 + c] = _mm512_maskz_shuffle_f32x4(all, v4, v12, 0xdd);
  }
}

// Copies op(B)[p0 : p0 + kc, j0 : j0 + nc] from a stored B [N, K] (transposed: the weights of a
// linear layer) into micro-panels of kNR columns: panel j holds, for each k, the kNR values of
// row k at pb + j * kNR * kc + k * kNR, zero past nc. A transpose, 16 x 16 at a time in
// registers: scalar copies with strided stores cost a tenth of the product.
void pack_b(const float* B, int64_t ldb, int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* pb) {
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = std::min<int64_t>(kNR, nc - jr);
    float* dst = pb + jr * kc;
    for (int v = 0; v < kNV; ++v) {
      const int64_t rows = std::clamp<int64_t>(nr - 16 * v, 0, 16);
      const float* src = B + (j0 + jr + 16 * v) * ldb + p0;
      for (int64_t k = 0; k < kc; k += 16) {
        const int64_t depth = std::min<int64_t>(16, kc - k);
        const __mmask16 mask = first_lanes(depth);
        __m512 r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, src + i * ldb + k) : _mm512_setzero_ps();
        transpose16(r);
        for (int64_t i = 0; i < depth; ++i) _mm512_store_ps(dst + (k + i) * kNR + 16 * v, r[i]);
      }
    }
  }
}

// C[ROWS, 16 NV] = alpha A B + beta C over depth kc. A in place: element (r, k) at a[r * lda + k]
// (ROW_MAJOR_A) or a[k * lda + r]; row k of B at b + k * ldb (a packed panel, or B itself). The
// last vector of each row of B and C is loaded and stored under `last` (the columns of a partial
// tile). beta == 0 writes C unread. alpha and beta come by reference, read after the loop: as
// scalar arguments they were kept in vector registers through it, and with generic tuning
// (-march=x86-64-v4) GCC then spilled a vector of B to the stack inside the loop (27% slower).
struct Scaling {
  float alpha, beta;
};
template <int ROWS, int NV, bool ROW_MAJOR_A>
void kernel(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
            __mmask16 last, const Scaling& scaling) {
  // The tile of C is needed only at the end: start fetching its rows now, behind the FMAs.
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
  __m512 acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = _mm512_maskz_loadu_ps(v + 1 == NV ? last : __mmask16{0xFFFF}, b + k * ldb + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const __m512 ar = _mm512_set1_ps(ROW_MAJOR_A ? a[r * lda + k] : a[k * lda + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  const float beta = scaling.beta;
  const __m512 va = _mm512_set1_ps(scaling.alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v + 1 == NV ? last : __mmask16{0xFFFF};
      float* cr = c + r * ldc + 16 * v;
      __m512 x;
      if (beta == 0.0f)
        x = _mm512_mul_ps(acc[r][v], va);
      else if (beta == 1.0f)
        x = _mm512_fmadd_ps(acc[r][v], va, _mm512_maskz_loadu_ps(mask, cr));
      else
        x = _mm512_fmadd_ps(acc[r][v], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask, cr)));
      _mm512_mask_storeu_ps(cr, mask, x);
    }
  }
}

// kernels[a row-major][rows - 1][vectors - 1]: every partial tile gets a kernel of its exact
// size, so that M = 64 (attention) does not pay for 72 rows.
using Kernel = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, __mmask16,
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
  float* pb = tb ? packed_b.get(ceil_div(nc_step, kNR) * kNR * kc_step) : nullptr;
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
      if (tb) pack_b(B, ldb, jc, nc, pc, kc, pb);
      for (int64_t tile = 0; tile < row_tiles; ++tile) {
        const int64_t ir = M * tile / row_tiles, mr = M * (tile + 1) / row_tiles - ir;
        const auto& row_kernels = kernels[!ta][mr - 1];
        const float* a = A + ir * a_row + pc * a_col;
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = std::min(kNR, nc - jr);
          const int64_t vectors = ceil_div(nr, 16);
          const __mmask16 last = first_lanes(nr - 16 * (vectors - 1));
          const float* b = tb ? pb + jr * kc : B + pc * ldb + jc + jr;
          row_kernels[vectors - 1](kc, a, lda, b, tb ? kNR : ldb, C + ir * ldc + jc + jr, ldc, last, scaling);
        }
      }
    }
  }
}

bool sgemm_is_native() { return true; }

#else  // no AVX-512 at compile time: OpenBLAS

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  blas::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool sgemm_is_native() { return false; }

#endif

}  // namespace gen::nn
