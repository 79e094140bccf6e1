// Fuzz the token-id stream reader (text and binary): any bytes must give ids or an Error with
// a position, never a crash, a hang or undefined behaviour. Ids read back from what the
// formatter writes must be the same ids.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "io/token_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<uint32_t> ids;
  try {
    gen::MemorySource source(bytes, "fuzz");
    gen::TokenReader reader(source);
    for (uint32_t id; reader.next(id);) ids.push_back(id);
  } catch (const gen::Error& e) {
    if (std::string(e.what()).rfind("fuzz", 0) != 0) std::abort();  // errors name the input
    return 0;
  }
  for (auto format : {gen::TokenFormat::text, gen::TokenFormat::binary}) {
    std::string written = format == gen::TokenFormat::binary ? std::string("GIDS\x01\x00\x00\x00", 8) : "";
    gen::TokenFormatter formatter(format, 3);
    formatter.append(written, ids);
    formatter.finish(written);
    gen::MemorySource again(written, "again");
    gen::TokenReader reader(again);
    std::vector<uint32_t> back;
    for (uint32_t id; reader.next(id);) back.push_back(id);
    if (back != ids) std::abort();
  }
  return 0;
}
