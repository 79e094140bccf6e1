// tensor/vec.h at the width this build compiles it for (16, 8 or 4 floats: make test-avx2 runs
// these at 8 on a machine with AVX-512): the partial loads and stores touch exactly the lanes
// they name, and pick() takes each lane from where its index says.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "tensor/vec.h"

using gen::vec::kFloats;
using gen::vec::Vec;

TEST_CASE("vec: load_lanes reads lanes [lo, hi) and zeroes the rest; store_first writes n lanes only") {
  constexpr int64_t n = kFloats;
  // Distinct values, with room for the shifts below on both sides of p.
  std::vector<float> data(3 * n + 8);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i + 1);
  const float* p = data.data() + n;
  for (int64_t lo = 0; lo <= n; ++lo)
    for (int64_t hi = lo; hi <= n; ++hi)
      for (int64_t shift : {int64_t{0}, int64_t{-3}, int64_t{5}}) {
        const Vec v = gen::vec::load_lanes(p, shift, lo, hi);
        for (int64_t l = 0; l < n; ++l) {
          CAPTURE(lo);
          CAPTURE(hi);
          CAPTURE(shift);
          CAPTURE(l);
          CHECK(v[l] == (l >= lo && l < hi ? p[shift + l] : 0.0f));
        }
      }
  Vec v;
  for (int64_t l = 0; l < n; ++l) v[l] = -static_cast<float>(l + 1);
  for (int64_t count = 0; count <= n; ++count) {
    std::vector<float> out(3 * n, 7.0f);
    gen::vec::store_first(out.data() + n, v, count);
    const Vec back = gen::vec::load_first(out.data() + n, count);
    for (int64_t i = 0; i < 3 * n; ++i) {
      CAPTURE(count);
      CAPTURE(i);
      const int64_t l = i - n;
      CHECK(out[i] == (l >= 0 && l < count ? v[l] : 7.0f));
    }
    for (int64_t l = 0; l < n; ++l) CHECK(back[l] == (l < count ? v[l] : 0.0f));
  }
}

TEST_CASE("vec: pick takes lane index[l] of the pair, fma and sum") {
  Vec a, b;
  for (int l = 0; l < kFloats; ++l) a[l] = static_cast<float>(l), b[l] = static_cast<float>(100 + l);
  for (int rotate = 0; rotate < 2 * kFloats; ++rotate) {
    gen::vec::Index index;
    for (int l = 0; l < kFloats; ++l) index[l] = (l * 3 + rotate) % (2 * kFloats);
    const Vec r = gen::vec::pick(a, b, index);
    for (int l = 0; l < kFloats; ++l) {
      const int k = index[l];
      CHECK(r[l] == (k < kFloats ? a[k] : b[k - kFloats]));
    }
  }
  const Vec f = gen::vec::fma(a, gen::vec::broadcast(2.0f), b);
  float expected = 0;
  for (int l = 0; l < kFloats; ++l) {
    CHECK(f[l] == 2.0f * a[l] + b[l]);
    expected += a[l];
  }
  CHECK(gen::vec::sum(a) == expected);  // whole numbers: exact in any order
}
