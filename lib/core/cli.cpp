#include "core/cli.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/error.h"

namespace gen {

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
