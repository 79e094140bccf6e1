// Progress of a long job on stderr.
//
// On a terminal: one live line, redrawn at most 10 times a second, with a bar, the rate and
// the ETA. Otherwise (a log file, CI): a plain line every few seconds. Nothing when quiet.
//
//   gen::Progress progress("encode", total_bytes, "B", quiet);
//   for (...) progress.update(done_bytes);            // cheap: call it as often as you like
//   progress.update(done, "loss 1.93");             // extra text after the numbers
//   progress.finish();                               // the final line
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace gen {

class Progress {
 public:
  // total 0 means unknown (no bar, no ETA). unit "B" shows bytes as kB/MB/GB.
  Progress(std::string label, uint64_t total, std::string unit, bool quiet);
  ~Progress();
  void update(uint64_t done, std::string_view extra = {});
  void finish(std::string_view extra = {});
  // A line of its own on stderr (even when quiet is false only), above the live line.
  void message(std::string_view line);
  void set_total(uint64_t total) { total_ = total; }
  // Work already done before this run (a resumed job): counted as done, not in the rate.
  void set_start(uint64_t done) { start_done_ = done_ = done; }

  // "1:02:03", "4:05" for a number of seconds.
  static std::string format_duration(double seconds);
  // "1.2 MB", "532 B", "12.0 k" (unit other than B).
  static std::string format_amount(double amount, const std::string& unit);

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool final, std::string_view extra);

  std::string label_;
  uint64_t total_;
  std::string unit_;
  bool quiet_;
  bool terminal_;
  bool drawn_ = false;
  bool finished_ = false;
  uint64_t done_ = 0;
  uint64_t start_done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

}  // namespace gen
