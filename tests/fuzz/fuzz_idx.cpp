// Fuzz the IDX reader (plain and gzip): any bytes give an array whose data is exactly the
// product of its dimensions, or an Error naming the file; never a crash. The byte limit keeps a
// lying header or a gzip bomb within the fuzzer's memory.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    gen::IdxArray array = gen::parse_idx(bytes, "fuzz", size_t{1} << 24);
    uint64_t product = 1;
    for (uint32_t d : array.dims) product *= d;
    if (array.dims.empty() || array.dims.size() > 4 || product != array.data.size()) std::abort();
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
  }
  return 0;
}
