#include "core/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace gen {
namespace {

// Fixed storage: the handler may only touch memory that is never reallocated.
constexpr int kMaxTempFiles = 32;
constexpr size_t kMaxPath = 4096;
char g_temp_paths[kMaxTempFiles][kMaxPath];
std::atomic<bool> g_temp_used[kMaxTempFiles];
std::atomic<int> g_graceful{0};
volatile sig_atomic_t g_stop = 0;

void remove_temp_files() {
  for (int i = 0; i < kMaxTempFiles; ++i)
    if (g_temp_used[i].load()) unlink(g_temp_paths[i]);
}

void on_stop_signal(int sig) {
  if (g_graceful.load() > 0 && !g_stop) {
    g_stop = sig;  // the job finishes its step, saves and exits 128 + sig
    return;
  }
  remove_temp_files();
  _exit(sig == SIGINT ? 130 : 128 + sig);
}

}  // namespace

void install_signal_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int register_temp_file(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  for (int i = 0; i < kMaxTempFiles; ++i) {
    if (g_temp_used[i].load()) continue;
    std::memcpy(g_temp_paths[i], path.c_str(), path.size() + 1);
    g_temp_used[i].store(true);
    return i;
  }
  return -1;  // too many at once: still removed by the owner's destructor, not by the handler
}

void unregister_temp_file(int slot) {
  if (slot >= 0 && slot < kMaxTempFiles) g_temp_used[slot].store(false);
}

bool stop_requested() { return g_stop != 0; }

int stop_exit_code() { return g_stop == SIGTERM ? 128 + SIGTERM : 130; }

void check_interrupted() {
  if (g_stop) throw Interrupted();
}

GracefulStop::GracefulStop() { ++g_graceful; }
GracefulStop::~GracefulStop() { --g_graceful; }

void die_of_signal(int sig) {
  remove_temp_files();
  signal(sig, SIG_DFL);
  raise(sig);
  _exit(128 + sig);
}

}  // namespace gen
