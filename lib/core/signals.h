// Signals: Ctrl-C and SIGTERM never leave a partial file behind.
//
// install_signal_handlers() (called by tool_main) makes SIGINT/SIGTERM remove every registered
// temporary file and exit 130 (143 for SIGTERM) at once, and ignores SIGPIPE so that a closed
// pipe shows up as EPIPE on write (see BrokenPipe). A job that wants to finish its step first
// (a trainer saving a checkpoint) holds a GracefulStop while it runs and polls
// stop_requested(); a second Ctrl-C still exits at once.
//
//   gen::GracefulStop graceful;
//   for (step...) { train_step(); if (gen::stop_requested()) { save(); throw gen::Interrupted(); } }
#pragma once

#include <string>

#include "core/error.h"

namespace gen {

void install_signal_handlers();

// Temporary files the signal handler removes. Returns a slot for unregister_temp_file.
int register_temp_file(const std::string& path);
void unregister_temp_file(int slot);

bool stop_requested();
// The exit status for the stop requested: 130 after SIGINT, 143 after SIGTERM.
int stop_exit_code();
// Throws Interrupted if a stop was requested (for loops without a checkpoint to save).
void check_interrupted();

class GracefulStop {
 public:
  GracefulStop();
  ~GracefulStop();
  GracefulStop(const GracefulStop&) = delete;
  GracefulStop& operator=(const GracefulStop&) = delete;
};

// Remove temporary files and end the process as if `sig` had killed it (used after EPIPE).
[[noreturn]] void die_of_signal(int sig);

}  // namespace gen
