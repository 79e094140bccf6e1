// Single-precision GEMM for the small products of training (a few hundred rows, columns and
// depth), where OpenBLAS's per-call overhead leaves speed behind. Blocked after BLIS (Van Zee and
// van de Geijn 2015), with one FMA micro-kernel for all four transpose cases, written once on
// vec::Vec for both widths (AVX-512: 12 rows x 32 columns of accumulators; AVX2: 6 x 16): a
// transposed B is packed (transposed back) into a thread-local buffer, everything else is read
// in place.
//
//   gen::nn::sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);  // C = A B^T
//
// Without AVX2 and FMA at compile time (the baseline x86-64 library of a GEN_PORTABLE build) it
// calls cblas_sgemm.
#pragma once

#include <cstdint>

namespace gen::nn {

// C[M,N] = alpha op(A) op(B) + beta C, row-major, op(A) [M,K], op(B) [K,N], leading dimensions
// (row strides of the stored matrices) lda, ldb, ldc; the semantics of cblas_sgemm: beta == 0
// does not read C, and alpha == 0 or K == 0 does not read A or B. Single-threaded; safe to call
// from many threads at once.
void sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Which kernel sgemm runs: "AVX-512, 12 x 32 tile", "AVX2, 6 x 16 tile" or
// "cblas_sgemm (OpenBLAS)".
const char* sgemm_kernel();

}  // namespace gen::nn
