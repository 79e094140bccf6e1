#include "core/cli.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace gen {

std::string shown(const std::string& text) {
  if (text.size() <= 40) return text;
  std::string cut(text, 0, 37);
  cut.append("...");
  return cut;
}

CLI::Validator finite_number(double lo, double hi, bool open_low) {
  const std::string range = fmt::format("{}{}, {}]", open_low ? "(" : "[", lo, hi);
  return CLI::Validator(
      [lo, hi, open_low, range](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "";  // not a number: CLI11's conversion says so
        if (!std::isfinite(v)) return fmt::format("{} is not a finite number", shown(text));
        if ((open_low ? v > lo : v >= lo) && v <= hi) return "";
        return fmt::format("{} is outside {}", shown(text), range);
      },
      range);
}

CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        if (digits) (void)std::strtoull(text.c_str(), nullptr, 10);
        if (digits && errno == 0) return "";
        return fmt::format("{} is not a seed (a whole number 0..18446744073709551615)", shown(text));
      },
      "SEED");
}

void setup_app(CLI::App& app, const char* tool) {
  app.set_version_flag("--version", fmt::format("{} {}", tool, kVersion));
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later options override
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    throw UsageError(e.what());
  }
  return std::nullopt;
}

}  // namespace gen
