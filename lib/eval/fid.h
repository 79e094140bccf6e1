// The Fréchet distance between two sets of feature vectors, each summed up as a Gaussian (mean
// and covariance): the FID of Heusel et al. 2017 ("GANs Trained by a Two Time-Scale Update Rule
// Converge to a Local Nash Equilibrium", eq. 6), here on the penultimate features of our own
// classifier (models/classifier.h) instead of Inception-v3's pool3 features:
//
//   d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))
//
// tr (S1 S2)^(1/2) is computed as tr (S1^(1/2) S2 S1^(1/2))^(1/2): S1^(1/2) from S1's symmetric
// eigendecomposition, then the eigenvalues of the symmetric S1^(1/2) S2 S1^(1/2), each clamped
// at 0 before its square root (covariances of fewer samples than dimensions are singular).
// Everything is double; the eigendecompositions are LAPACK's dsyevd from OpenBLAS (tensor/blas.h)
// (divide and conquer, on one thread as the tools set it: a 256-dimensional covariance in 15.6
// ms on a Zen 5 here, where the cyclic Jacobi written here before took 3.4 s; eigenvalues equal
// to 2e-13).
//
//   gen::Gaussian a = gen::fit_gaussian(features_a.data(), n_a, 256);
//   double fid = gen::frechet_distance(a, gen::fit_gaussian(features_b.data(), n_b, 256));
#pragma once

#include <cstdint>
#include <vector>

namespace gen {

struct Gaussian {
  int64_t dim = 0;
  int64_t count = 0;          // the samples it was fitted to
  std::vector<double> mean;   // [dim]
  std::vector<double> cov;    // [dim, dim], row-major, symmetric
};

// The mean and the unbiased covariance (divided by n - 1, as numpy's cov and the reference FID
// code) of n vectors x[n, d]; n >= 2.
Gaussian fit_gaussian(const float* x, int64_t n, int64_t d);

// The Fréchet distance (squared, as FID is reported) between two Gaussians of the same
// dimension; never negative (a rounding error below zero reads 0).
double frechet_distance(const Gaussian& a, const Gaussian& b);

// tr (A B)^(1/2) for symmetric positive semi-definite A, B [n, n].
double trace_sqrt_product(const std::vector<double>& a, const std::vector<double>& b, int64_t n);

// The eigendecomposition of a symmetric a[n, n] (LAPACK's dsyevd): values[n] in
// ascending order and, if vectors is not null, the matching unit eigenvectors as the columns of
// vectors[n, n] (a = V diag(values) V^T).
void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>& values, std::vector<double>* vectors);

}  // namespace gen
