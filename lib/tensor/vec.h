// One vector type for the kernels that are the same shape at every width: GCC's vector
// extensions, kFloats floats wide where the compiler targets AVX-512 (16), AVX2 (8) or only SSE
// (4). A kernel written on Vec compiles to zmm, ymm or xmm instructions from one source, so the
// machine that runs the tests runs the logic of every width. Arithmetic is element-wise; a * b + c
// contracts to one fused multiply-add (GCC's default -ffp-contract=fast).
//
//   Vec acc = {};
//   for (int64_t i = 0; i + kFloats <= n; i += kFloats) acc += load(w + i) * load(x + i);
//   float dot = sum(acc);
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__FMA__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gen::vec {

#if defined(__AVX512F__)
constexpr int kFloats = 16;
#elif defined(__AVX2__)
constexpr int kFloats = 8;
#else
constexpr int kFloats = 4;
#endif

using Vec = float __attribute__((vector_size(kFloats * sizeof(float))));

// An unaligned load (memcpy of a vector's bytes: one vmovups).
inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// x in every lane (x - 0 is x for every x, -0 included; x + 0 is not, and would not fold away).
inline Vec broadcast(float x) { return x - Vec{}; }

// a * b + c rounded once where the CPU has fused multiply-adds, whatever the optimization level
// (GCC contracts a * b + c only from -O2: the sanitizer build's -O1 rounds twice); a * b + c
// otherwise.
inline Vec fma(Vec a, Vec b, Vec c) {
#if defined(__FMA__) && defined(__AVX512F__)
  return (Vec)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && defined(__AVX2__)
  return (Vec)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__FMA__)
  return (Vec)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
#else
  return a * b + c;
#endif
}

// Lane indices for pick(): an int32 per lane.
using Index = int32_t __attribute__((vector_size(kFloats * sizeof(int32_t))));

// Lane l of the result is lane index[l] of the pair (a, b): a's lanes are 0 .. kFloats - 1, b's
// kFloats .. 2 kFloats - 1. One vpermt2ps with AVX-512; with AVX2 a permute of each and a blend
// on the index's bit 3; lane by lane otherwise. (GCC's __builtin_shuffle would do, but Clang,
// which builds the fuzzers, has no variable-index shuffle.)
inline Vec pick(Vec a, Vec b, Index index) {
#if defined(__AVX512F__)
  return (Vec)_mm512_permutex2var_ps((__m512)a, (__m512i)index, (__m512)b);
#elif defined(__AVX2__)
  const __m256i i = (__m256i)index;
  const __m256 from_a = _mm256_permutevar8x32_ps((__m256)a, i), from_b = _mm256_permutevar8x32_ps((__m256)b, i);
  return (Vec)_mm256_blendv_ps(from_a, from_b, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
#else
  Vec r;
  for (int l = 0; l < kFloats; ++l) {
    const int k = index[l] & (2 * kFloats - 1);
    r[l] = k < kFloats ? a[k] : b[k - kFloats];
  }
  return r;
#endif
}

// An unaligned store.
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

#if defined(__AVX2__) && !defined(__AVX512F__)
namespace detail {
// AVX2's mask of lanes [lo, hi): all ones in those lanes, zero elsewhere.
inline __m256i lanes_mask(int64_t lo, int64_t hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(lo)), lane);
  return _mm256_andnot_si256(below_lo, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(hi)), lane));
}
}  // namespace detail
#endif

// Lanes [lo, hi) (0 <= lo <= hi <= kFloats) of a vector at p + shift, the others zero: lane l
// is p[shift + l], and nothing but p[shift + lo, shift + hi) is read (p + shift itself may lie
// outside the array). Masked loads with AVX-512 and AVX2 (masked-off lanes never fault); a copy
// of the values otherwise. (With AVX2 a copy was a call to memcpy: Winograd's transforms of the
// U-Net took 4-5x as long as with AVX-512 on a Zen 4, whose two widths have the same peak.)
inline Vec load_lanes(const float* p, int64_t shift, int64_t lo, int64_t hi) {
  const auto at = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(shift * 4);
#if defined(__AVX512F__)
  const auto mask = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
  return (Vec)_mm512_maskz_loadu_ps(mask, reinterpret_cast<const void*>(at));
#elif defined(__AVX2__)
  return (Vec)_mm256_maskload_ps(reinterpret_cast<const float*>(at), detail::lanes_mask(lo, hi));
#else
  Vec v{};
  std::memcpy(reinterpret_cast<float*>(&v) + lo, reinterpret_cast<const float*>(at) + lo,
              static_cast<size_t>(hi - lo) * sizeof(float));
  return v;
#endif
}
// The first n lanes (0 <= n <= kFloats) of a vector at p, the others zero, and the store of v's
// first n lanes: nothing past p + n is read or written.
inline Vec load_first(const float* p, int64_t n) { return load_lanes(p, 0, 0, n); }
inline void store_first(float* p, Vec v, int64_t n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), (__m512)v);
#elif defined(__AVX2__)
  // Not vmaskmovps, whose stores are slow on AMD: a Zen 4 took 453-520 ms for the U-Net step
  // of an AVX2 build with them, 344-375 with these pieces. Four, two and one lanes.
  if (n == 8) {
    _mm256_storeu_ps(p, (__m256)v);
    return;
  }
  __m128 part = _mm256_castps256_ps128((__m256)v);
  if (n >= 4) {
    _mm_storeu_ps(p, part);
    part = _mm256_extractf128_ps((__m256)v, 1);
    p += 4, n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
    part = _mm_movehl_ps(part, part);
    p += 2, n -= 2;
  }
  if (n == 1) _mm_store_ss(p, part);
#else
  std::memcpy(p, &v, static_cast<size_t>(n) * sizeof(float));
#endif
}

// The lanes' sum, by halves: (lower half + upper half) until 4 lanes remain, then
// (l0 + l2) + (l1 + l3).
namespace detail {
using F4 = float __attribute__((vector_size(4 * sizeof(float))));
inline float sum(F4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }
template <typename Half, typename Whole>
inline Half halves_added(Whole v) {
  Half lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  return lo + hi;
}
}  // namespace detail
inline float sum(Vec v) {
#if defined(__AVX512F__)
  using F8 = float __attribute__((vector_size(8 * sizeof(float))));
  return detail::sum(detail::halves_added<detail::F4>(detail::halves_added<F8>(v)));
#elif defined(__AVX2__)
  return detail::sum(detail::halves_added<detail::F4>(v));
#else
  return detail::sum(v);
#endif
}

}  // namespace gen::vec
