// Fuzz the safetensors reader: any bytes give a checkpoint whose every tensor lies inside the
// file with a size that matches its shape, or an Error naming the file; never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    gen::Safetensors st = gen::Safetensors::parse(bytes, "fuzz");
    for (const auto& entry : st.entries()) {
      if (static_cast<size_t>(entry.count()) * gen::dtype_size(entry.dtype) != entry.size) std::abort();
      if (entry.offset + entry.size > size) std::abort();
      std::string copy = st.bytes(entry);  // every byte readable (ASan checks)
      if (copy.size() != entry.size) std::abort();
    }
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz: ", 0) != 0) std::abort();
  }
  return 0;
}
