#include "tensor/blas.h"

#include <atomic>
#include <stdexcept>
#include <string>

#include <dlfcn.h>

namespace gen::blas {

namespace {

// The C interfaces, as OpenBLAS exports them (cblas.h's enums are ints).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using Dgemm = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double, double*,
                       int);
using Dsyevd = void (*)(const char*, const char*, const int*, double*, const int*, double*, double*, const int*, int*,
                        const int*, int*);
using SetThreads = void (*)(int);

struct Library {
  Sgemm sgemm;
  Dgemm dgemm;
  Dsyevd dsyevd;
};

std::atomic<bool> is_loaded{false};

void* symbol(void* handle, const char* name) {
  void* f = dlsym(handle, name);
  if (!f) throw std::runtime_error(std::string("OpenBLAS (libopenblas.so.0) has no ") + name);
  return f;
}

Library load() {
  void* handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw std::runtime_error(std::string("cannot load OpenBLAS (install libopenblas0): ") + (why ? why : "dlopen failed"));
  }
  reinterpret_cast<SetThreads>(symbol(handle, "openblas_set_num_threads"))(1);
  Library lib{reinterpret_cast<Sgemm>(symbol(handle, "cblas_sgemm")),
              reinterpret_cast<Dgemm>(symbol(handle, "cblas_dgemm")),
              reinterpret_cast<Dsyevd>(symbol(handle, "dsyevd_"))};
  is_loaded.store(true);
  return lib;
}

const Library& library() {
  static const Library lib = load();  // thread-safe; a failed load throws and is tried again next call
  return lib;
}

int transpose(bool t) { return t ? kTrans : kNoTrans; }

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  library().sgemm(kRowMajor, transpose(ta), transpose(tb), static_cast<int>(M), static_cast<int>(N),
                  static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C,
                  static_cast<int>(ldc));
}

void dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
           const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  library().dgemm(kRowMajor, transpose(ta), transpose(tb), static_cast<int>(M), static_cast<int>(N),
                  static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C,
                  static_cast<int>(ldc));
}

int dsyevd(char jobz, char uplo, int n, double* a, int lda, double* w, double* work, int lwork, int* iwork,
           int liwork) {
  int info = 0;
  library().dsyevd(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info);
  return info;
}

bool loaded() { return is_loaded.load(); }

}  // namespace gen::blas
