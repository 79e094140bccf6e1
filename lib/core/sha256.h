// SHA-256 (FIPS 180-4), for naming what a checkpoint embeds: the hex digest of a tokenizer
// model equals `sha256sum tok.model`.
//
//   std::string hex = gen::sha256_hex(bytes);
#pragma once

#include <string>
#include <string_view>

namespace gen {

// With the CPU's SHA instructions where it has them.
std::string sha256_hex(std::string_view data);

namespace detail {
// The same without them (what runs where they are missing), for the tests.
std::string sha256_hex_portable(std::string_view data);
// Whether sha256_hex uses them on this CPU.
bool sha256_uses_cpu_instructions();
}  // namespace detail

}  // namespace gen
