// A program of someone else's, built against an installed gen (tests/package/test_install.sh):
// the headers under include/gen, libgen.a and what it links, found by pkg-config or by CMake.
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"
#include "io/image.h"
#include "tensor/kernels.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer FOLDER\n");
    return 2;
  }
  // SHA-256 of "abc" (FIPS 180-2's first example).
  std::printf("sha256(abc) %s\n", gen::sha256_hex("abc").c_str());
  // A 2x3 by 3x2 product through the library's GEMM.
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12};
  std::vector<float> c(4);
  gen::nn::gemm<float>(false, false, 2, 2, 3, 1.0f, a.data(), b.data(), 0.0f, c.data());
  std::printf("gemm %g %g %g %g\n", c[0], c[1], c[2], c[3]);
  // A PNG written atomically and read back.
  gen::Image image(4, 3, 1, 0);
  image.at(1, 2) = 200;
  const std::string path = std::string(argv[1]) + "/dot.png";
  gen::write_png(path, image);
  const gen::Image back = gen::read_png(path);
  std::printf("png %dx%d pixel %d\n", back.width, back.height, back.pixels[2 * 4 + 1]);
  // Errors are exceptions naming the file.
  try {
    gen::read_png(std::string(argv[1]) + "/missing.png");
  } catch (const gen::Error& e) {
    std::printf("error %s\n", e.reason().c_str());
  }
  return 0;
}
