// UTF-8 scanning, by the well-formedness table of Unicode 15 (section 3.9, table 3-7): no
// overlong forms, no surrogates, nothing above U+10FFFF.
//
//   size_t n = gen::utf8_char_length(text, i);   // 1..4, or 0 if the byte at i starts no valid char
#pragma once

#include <cstddef>
#include <string_view>

namespace gen {

// Length of the well-formed UTF-8 character starting at text[i], or 0 if there is none.
size_t utf8_char_length(std::string_view text, size_t i);

// Number of characters, counting each byte of an ill-formed sequence as one.
size_t utf8_count_chars(std::string_view text);

// Offset of the first ill-formed byte, or text.size() if the text is valid UTF-8.
size_t utf8_first_invalid(std::string_view text);

}  // namespace gen
