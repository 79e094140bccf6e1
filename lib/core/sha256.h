// SHA-256 (FIPS 180-4), for naming what a checkpoint embeds: the hex digest of a tokenizer
// model equals `sha256sum tok.model`.
//
//   std::string hex = gen::sha256_hex(bytes);
#pragma once

#include <string>
#include <string_view>

namespace gen {

std::string sha256_hex(std::string_view data);

}  // namespace gen
