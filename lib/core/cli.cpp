#include "core/cli.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/provenance.h"
#include "core/tool_main.h"

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

namespace {
std::string g_version = "gen 0.1.0";
std::string g_help_command;  // "ggan sample": whose --help a usage error points to

// What --version prints: the tool and version, then the kernels this process runs.
std::string version_text() { return g_version + "\nkernels: " + kernel_level(); }

// "ggan sample" for the subcommand sample of ggan.
std::string command_path(const CLI::App* cmd) {
  std::string path = cmd->get_name();
  for (const CLI::App* p = cmd->get_parent(); p; p = p->get_parent()) path = p->get_name() + " " + path;
  return path;
}

// The conventions every command keeps, added where the tool did not: --version on subcommands
// too, and -q/--quiet on every command that runs (no progress or summary on stderr).
void add_conventions(CLI::App& cmd, bool* quiet_flag) {
  const std::vector<CLI::App*> subs = cmd.get_subcommands({});
  if (cmd.get_parent() && !cmd.get_option_no_throw("--version")) cmd.set_version_flag("--version", version_text());
  if (subs.empty() && !cmd.get_option_no_throw("--quiet"))
    cmd.add_flag("-q,--quiet", *quiet_flag, "No progress or summary on stderr");
  for (CLI::App* sub : subs) add_conventions(*sub, quiet_flag);
}

// The command the line chose: the deepest subcommand parsed so far (the app itself if none).
CLI::App* chosen_command(CLI::App& app) {
  CLI::App* cmd = &app;
  while (!cmd->get_subcommands().empty()) cmd = cmd->get_subcommands().back();
  return cmd;
}

// Levenshtein distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The name among `names` nearest to `typed`: the only one it begins (a cut-short option), else
// the one fewest edits away, if that is close enough to be a typo. Empty if none is.
std::string nearest(const std::string& typed, const std::vector<std::string>& names) {
  std::vector<std::string> extended;
  for (const std::string& name : names)
    if (typed.size() >= 3 && name.size() > typed.size() && name.compare(0, typed.size(), typed) == 0)
      extended.push_back(name);
  if (extended.size() == 1) return extended[0];
  std::string best;
  size_t best_distance = std::max<size_t>(2, typed.size() / 3) + 1;
  for (const std::string& name : names) {
    const size_t d = edit_distance(typed, name);
    if (d < best_distance) best = name, best_distance = d;
  }
  return best;
}

std::vector<std::string> option_names(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
    for (const std::string& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

// CLI11's "The following arguments were not expected: 0.5 --temp" as "unknown option --temp;
// did you mean --temperature?" where an option was mistyped.
std::string explain_extras(const CLI::App& cmd, const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos) return message;
  std::istringstream words(message.substr(colon + 2));
  const std::string where = cmd.get_parent() ? " of " + command_path(&cmd) : "";
  for (std::string word; words >> word;) {
    if (word.size() < 2 || word[0] != '-' || (word[1] >= '0' && word[1] <= '9') || word[1] == '.') continue;
    word = word.substr(0, word.find('='));
    const std::string guess = nearest(word, option_names(cmd));
    if (!guess.empty()) return fmt::format("unknown option {}{}; did you mean {}?", shown(word), where, guess);
    return fmt::format("unknown option {}{}", shown(word), where);
  }
  return message;
}
// A word as a shell would need it: plain, or in single quotes.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./:,=+-%@", c);
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return path != "-" && std::filesystem::is_regular_file(path, ec);
}

// The run as a command with every setting that decides what it computes, defaults included, for
// the images it writes (core/provenance.h): the outputs, threads and progress are left out, and
// a file is named without its folder (its SHA-256 goes beside), so the same settings give the
// same bytes wherever they run.
void record_provenance(const CLI::App& cmd) {
  static const std::vector<std::string> kLeftOut = {"output", "threads", "quiet", "help", "version", "trajectory",
                                                    "gif", "log", "plot", "preview", "save-every"};
  std::string command = command_path(&cmd);
  std::vector<std::string> inputs;
  auto value = [&](const std::string& v) {
    if (is_file(v)) inputs.push_back(v);
    return shell_word(is_file(v) ? std::filesystem::path(v).filename().string() : v);
  };
  for (const CLI::Option* o : cmd.get_options())
    if (o->get_positional())
      for (const std::string& v : o->results()) command += " " + value(v);
  for (const CLI::Option* o : cmd.get_options()) {
    if (o->get_positional()) continue;
    const std::vector<std::string>& longs = o->get_lnames();
    if (!longs.empty() && std::find(kLeftOut.begin(), kLeftOut.end(), longs[0]) != kLeftOut.end()) continue;
    const std::string name = longs.empty() ? "-" + o->get_snames().at(0) : "--" + longs[0];
    if (o->get_type_size_max() == 0) {  // a flag
      if (o->count() > 0) command += " " + name;
      continue;
    }
    std::vector<std::string> values = o->results();
    if (values.empty() && !o->get_default_str().empty()) values.push_back(o->get_default_str());
    if (values.size() > 1 && o->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeLast)
      values.erase(values.begin(), values.end() - 1);
    for (const std::string& v : values) command += " " + name + " " + value(v);
  }
  set_provenance(g_version, command, inputs);
}
}  // namespace

const char* kernel_level() {
#ifdef GEN_KERNEL_LEVEL
  return GEN_KERNEL_LEVEL;
#else
  return "unknown";
#endif
}

void setup_app(CLI::App& app, const char* tool) {
  g_version = fmt::format("{} {}", tool, kVersion);
  g_help_command = tool;
  app.set_version_flag("--version", version_text());
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later options override
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  static bool quiet_flag = false;
  add_conventions(app, &quiet_flag);
  const std::vector<CLI::App*> commands = app.get_subcommands({});
  if (!commands.empty()) {
    // The command named on the line: "help" prints the tool's help; an unknown one is named.
    std::string named;
    for (int i = 1; i < argc && named.empty(); ++i)
      if (argv[i][0] != '-') named = argv[i];
    if (named == "help") {
      std::fputs(app.help().c_str(), stdout);
      return 0;
    }
    std::vector<std::string> names;
    for (const CLI::App* sub : commands) names.push_back(sub->get_name());
    if (!named.empty() && std::find(names.begin(), names.end(), named) == names.end()) {
      const std::string guess = nearest(named, names);
      std::string list;
      for (size_t i = 0; i < names.size(); ++i)
        list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
      throw UsageError(fmt::format("unknown command '{}'{} ({})", shown(named),
                                   guess.empty() ? "" : "; did you mean " + guess + "?", list));
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    CLI::App* cmd = chosen_command(app);
    g_help_command = command_path(cmd);
    std::string message = e.what();
    // An unknown option is the cause to name first: a mistyped required option is also "required".
    std::string extras;
    for (const std::string& word : cmd->remaining()) extras += " " + word;
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
      message = explain_extras(*cmd, message);
    } else if (!extras.empty()) {
      const std::string unknown = explain_extras(*cmd, ":" + extras);
      if (unknown != ":" + extras) message = unknown;
    }
    throw UsageError(message);
  }
  const CLI::App* cmd = chosen_command(app);
  g_help_command = command_path(cmd);
  record_provenance(*cmd);
  const CLI::Option* quiet = cmd->get_option_no_throw("--quiet");
  set_quiet(quiet_flag || (quiet && quiet->count() > 0));
  return std::nullopt;
}

const std::string& help_command() { return g_help_command; }

}  // namespace gen
