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
#include <string>

#include <CLI/CLI.hpp>


namespace gen {

inline constexpr const char* kVersion = "0.1.0";

void setup_app(CLI::App& app, const char* tool);
// The build of the library this process runs: "native (-march=native)" (or the GEN_MARCH it was
// built for: "x86-64-v3 (-march=x86-64-v3)"), or in a portable build
// the level the loader picked ("x86-64-v4 (glibc-hwcaps)", "x86-64-v3 ...", "x86-64 (baseline)").
// --version prints it on its second line.
const char* kernel_level();
// Parses; the exit status if the tool should stop now (--help, --version, "TOOL help"), else
// nothing. Throws UsageError for a bad command line: an unknown option or command is named with
// the nearest real one ("unknown option --temp; did you mean --temperature?"). Before parsing it
// gives every subcommand --version, and every command that runs -q/--quiet where the tool did
// not add its own: after parsing, gen::quiet() (core/tool_main.h) says whether it was given.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);
// "ggan sample": the command whose --help a usage error points to (the tool before parsing).
const std::string& help_command();

// The checks of every tool's numbers. CLI11's Range, PositiveNumber and NonNegativeNumber let
// NaN and infinity through; these do not.
//   app.add_option("--guidance", g)->check(gen::finite_number(0, 100));
// A finite number within [lo, hi] ((lo, hi] with open_low). A value that is not a number at all
// is left to CLI11's conversion, which says so.
CLI::Validator finite_number(double lo, double hi, bool open_low = false);
// A seed: decimal digits for 0 .. 2^64 - 1; "-1", "1e3" and 99999999999999999999 are refused,
// never wrapped around.
CLI::Validator seed_number();
// What a message may echo of a value typed or read: at most 40 characters.
std::string shown(const std::string& text);

}  // namespace gen
