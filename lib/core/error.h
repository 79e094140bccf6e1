// Errors of the gen library. The library never exits and never asserts on input: it throws
// one of these, and the tool's main (core/tool_main.h) prints one line and picks the exit code.
//
//   throw gen::Error(path, "not a tokenizer model");        // gtok: tok.model: not a tokenizer model
//   throw gen::Error(fmt::format("{}:{}:{}", path, line, column), "negative token id -3");
//   throw gen::UsageError("--top-p must be in (0, 1]");     // exit 2
#pragma once

#include <stdexcept>
#include <string>

namespace gen {

// A failure tied to a file (or "-" for stdin/stdout, or a file:line:column position).
class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string reason);
  const std::string& where() const { return where_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string where_;
  std::string reason_;
};

// The command line asks for something impossible: exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// SIGINT or SIGTERM arrived and the job stopped cleanly: exit status 130 (143 for SIGTERM).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

// The reader of our stdout went away (`gtok encode big.txt | head -1`): end quietly.
class BrokenPipe : public std::runtime_error {
 public:
  BrokenPipe() : std::runtime_error("broken pipe") {}
};

// "reason: strerror(errno)" for a failed system call.
std::string system_reason(const std::string& what, int errnum);

}  // namespace gen
