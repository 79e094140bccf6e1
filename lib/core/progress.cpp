#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "core/tool_main.h"

namespace gen {

Progress::Progress(std::string label, uint64_t total, std::string unit, bool quiet)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      quiet_(quiet || gen::quiet()),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  // An exception unwound past us: erase the live line so that the error stands alone.
  if (drawn_ && terminal_ && !finished_) std::fputs("\r\x1b[K", stderr);
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string Progress::format_amount(double amount, const std::string& unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int k = 0;
  while (std::fabs(amount) >= 1000 && k < 4) {
    amount /= 1000;
    ++k;
  }
  if (k == 0) return fmt::format("{:.0f}{}{}", amount, unit.empty() ? "" : " ", unit);
  return fmt::format("{:.1f} {}{}", amount, prefixes[k], unit);
}

void Progress::update(uint64_t done, std::string_view extra) {
  done_ = done;
  if (quiet_) return;
  auto now = Clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (terminal_ ? 0.1 : 5.0)) return;
  last_draw_ = now;
  draw(false, extra);
}

void Progress::finish(std::string_view extra) {
  if (finished_) return;
  finished_ = true;
  if (quiet_) return;
  draw(true, extra);
}

void Progress::message(std::string_view line) {
  if (quiet_) return;
  if (terminal_ && drawn_) std::fputs("\r\x1b[K", stderr);
  std::fprintf(stderr, "%s: %.*s\n", tool_name(), static_cast<int>(line.size()), line.data());
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::draw(bool final, std::string_view extra) {
  double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_ - std::min(done_, start_done_)) / elapsed : 0;
  std::string line = fmt::format("{}: ", label_);
  if (total_ > 0) {
    double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (terminal_) {
      constexpr int kWidth = 24;
      int filled = static_cast<int>(fraction * kWidth);
      line.push_back('[');
      line.append(static_cast<size_t>(filled), '#');
      line.append(static_cast<size_t>(kWidth - filled), '.');
      line.append("] ");
    }
    if (unit_.empty()) {
      line += fmt::format("{:3.0f}% {}/{}", 100 * fraction, done_, total_);  // counts: whole numbers
    } else {
      line += fmt::format("{:3.0f}% {}/{}", 100 * fraction, format_amount(done_, unit_), format_amount(total_, unit_));
    }
  } else {
    line += format_amount(done_, unit_);
  }
  if (rate > 0 && rate < 1 && unit_.empty())
    line += fmt::format(", {:.1f} s each", 1 / rate);  // slow steps: "2.3 s each", not "0/s"
  else if (rate > 0 && rate < 10 && unit_.empty())
    line += fmt::format(", {:.1f}/s", rate);
  else
    line += fmt::format(", {}/s", format_amount(rate, unit_));
  if (final) {
    line += ", " + format_duration(elapsed);
  } else if (total_ > 0 && rate > 0) {
    line += ", ETA " + format_duration(static_cast<double>(total_ - std::min(done_, total_)) / rate);
  }
  if (!extra.empty()) line += fmt::format(", {}", extra);
  if (terminal_) {
    std::fprintf(stderr, "\r%s: %s\x1b[K%s", tool_name(), line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s: %s\n", tool_name(), line.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace gen
