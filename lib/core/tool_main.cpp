#include "core/tool_main.h"

#include <signal.h>

#include <cstdio>
#include <new>

#include <fmt/format.h>

#include "core/cli.h"
#include "core/cluster.h"
#include "core/error.h"
#include "core/files.h"
#include "core/signals.h"

namespace gen {
namespace {
const char* g_tool = "gen";
bool g_quiet = false;

// One line, always: control characters (a newline in a file name) are shown escaped.
std::string one_line(const std::string& message) {
  std::string line;
  for (char c : message) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') line += "\\n";
    else if (c == '\t') line += "\\t";
    else if (c == '\r') line += "\\r";
    else if (u < 0x20 || u == 0x7f) line += fmt::format("\\x{:02x}", u);
    else line.push_back(c);
  }
  return line;
}

// One line. In an MPI job a usage error (the same command line on every rank) is said by rank 0
// alone; after any other error the whole job ends (the other ranks may be waiting on this one).
int report(const std::string& message, int code) {
  Cluster* c = cluster_if_started();
  if (code == 2 && c && c->rank() != 0) return code;
  std::fprintf(stderr, "%s: %s\n", g_tool, one_line(message).c_str());
  std::fflush(stderr);
  if (c && code != 2) c->fail(code);
  return code;
}
}  // namespace

const char* tool_name() { return g_tool; }

bool quiet() { return g_quiet; }
void set_quiet(bool quiet) { g_quiet = quiet; }

void warn(const std::string& message) {
  const Cluster* c = cluster_if_started();
  if (c && c->rank() != 0) return;  // said once, by rank 0
  std::fprintf(stderr, "%s: warning: %s\n", g_tool, one_line(message).c_str());
}

int tool_main(const char* tool, int argc, char** argv, const std::function<int(int, char**)>& body) {
  g_tool = tool;
  install_signal_handlers();
  try {
    int code = body(argc, argv);
    close_stdout();
    return code;
  } catch (const BrokenPipe&) {
    die_of_signal(SIGPIPE);
  } catch (const Interrupted&) {
    return stop_exit_code();
  } catch (const UsageError& e) {
    std::string message = e.what();
    if (message.find("--help)") == std::string::npos) message += " (see " + help_command() + " --help)";
    return report(message, 2);
  } catch (const Error& e) {
    return report(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    return report(std::string("internal error: ") + e.what(), 1);
  }
}

}  // namespace gen
