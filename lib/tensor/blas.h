// OpenBLAS, loaded the first time it is needed (dlopen of libopenblas.so.0, the library Debian's
// alternatives point at), not when a tool starts: loading and relocating it costs about 7 ms of a
// start-up (its DYNAMIC_ARCH build carries the kernels of every CPU), and most runs never call it:
// gen's own SGEMM does the products where the CPU has AVX-512. What calls it: the products of the
// double-precision checks, SGEMM without AVX-512, and LAPACK's eigensolver in FID.
//
//   gen::blas::sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);  // cblas_sgemm, row-major
//
// Once loaded, OpenBLAS runs on one thread: the callers split work across OpenMP's threads
// (core/threads.h), so BLAS's pool and OpenMP's never fight over the cores. If the library
// cannot be loaded, the first call throws std::runtime_error saying so.
#pragma once

#include <cstdint>

namespace gen::blas {

// C[M,N] = alpha op(A) op(B) + beta C, row-major, with cblas_sgemm's semantics.
void sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void dgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// LAPACK's dsyevd (column-major a[n, lda], the lower triangle read when uplo is 'L'); returns
// its info. lwork == -1 and liwork == -1 ask for the workspace sizes, in work[0] and iwork[0].
int dsyevd(char jobz, char uplo, int n, double* a, int lda, double* w, double* work, int lwork, int* iwork,
           int liwork);

// Whether this process has loaded OpenBLAS yet (for tests of the laziness).
bool loaded();

}  // namespace gen::blas
