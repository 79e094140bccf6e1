// The main() of every tool: signals set up, errors turned into one line and an exit code.
//
//   int main(int argc, char** argv) {
//     return gen::tool_main("gtok", argc, argv, [](int argc, char** argv) { ...; return 0; });
//   }
//
// Exit codes: 0 success, 1 failure (`gtok: FILE: REASON` on stderr), 2 usage error,
// 130 after Ctrl-C. A closed stdout pipe ends the tool quietly, as SIGPIPE would.
#pragma once

#include <functional>
#include <string>

namespace gen {

int tool_main(const char* tool, int argc, char** argv, const std::function<int(int, char**)>& body);

// The tool's name as given to tool_main, for messages ("gtok").
const char* tool_name();

// A one-line message on stderr: "gtok: warning: ...". Said even when quiet: -q silences progress
// and summaries, not what the user should know.
void warn(const std::string& message);

// -q/--quiet: no progress or summary on stderr (errors and warnings still).
bool quiet();
void set_quiet(bool quiet);

}  // namespace gen
