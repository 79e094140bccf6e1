#include "models/checkpoint.h"

#include <fmt/format.h>

#include "core/error.h"

namespace gen {

void check_format(const Safetensors& st, const char* format, const char* version, const char* what) {
  if (!st.metadata().count("format")) throw Error(st.name(), "not a gen checkpoint (its metadata has no format)");
  const std::string& found = st.meta("format");
  if (found != format)
    throw Error(st.name(), fmt::format("not {}: its format is '{}', expected '{}'", what, found, format));
  if (st.meta("version") != version)
    throw Error(st.name(), fmt::format("checkpoint version {} is not supported (this gen reads {})",
                                       st.meta("version"), version));
}

int64_t meta_int(const Safetensors& st, const std::string& key) {
  const std::string& text = st.meta(key);
  try {
    size_t used = 0;
    long long value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw Error(st.name(), fmt::format("metadata '{}' is not an integer: '{}'", key, text));
}

}  // namespace gen
