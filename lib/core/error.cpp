#include "core/error.h"

#include <cstring>

namespace gen {

Error::Error(std::string where, std::string reason)
    : std::runtime_error(where.empty() ? reason : where + ": " + reason),
      where_(std::move(where)),
      reason_(std::move(reason)) {}

std::string system_reason(const std::string& what, int errnum) {
  std::string text = std::strerror(errnum);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return what.empty() ? text : what + ": " + text;
}

}  // namespace gen
