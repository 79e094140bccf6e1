// The command line of every tool (CLI11), set up one way: --version ("gtok 0.1.0"), a later
// option overriding an earlier one, --help and --version printing and exiting 0, a parse error
// a UsageError (one line, exit 2).
//
//   CLI::App app("gtok: ...", "gtok");
//   gen::setup_app(app, "gtok");
//   ...options...
//   if (auto done = gen::parse_command_line(app, argc, argv)) return *done;   // --help, --version
#pragma once

#include <optional>

namespace CLI {
class App;
}

namespace gen {

inline constexpr const char* kVersion = "0.1.0";

void setup_app(CLI::App& app, const char* tool);
// Parses; the exit status if the tool should stop now (--help, --version), else nothing. Throws
// UsageError for a bad command line.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace gen
