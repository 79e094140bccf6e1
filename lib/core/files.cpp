#include "core/files.h"

#include <filesystem>

#include <fmt/format.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <mutex>
#include <set>
#include <string>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/signals.h"

namespace gen {

Input::Input(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw UsageError("an input file name is empty");
  if (path_ == "-") {
    fd_ = STDIN_FILENO;
    return;
  }
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path_, system_reason("cannot open", errno));
  struct stat info;
  if (fstat(fd_, &info) == 0 && S_ISDIR(info.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw Error(path_, "is a directory");
  }
}

Input::~Input() {
  if (fd_ > STDERR_FILENO) ::close(fd_);
}

size_t Input::read(char* data, size_t n) {
  for (;;) {
    ssize_t got = ::read(fd_, data, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) continue;
    throw Error(path_, system_reason("read error", errno));
  }
}

size_t MemorySource::read(char* data, size_t n) {
  size_t take = std::min(n, data_.size() - position_);
  std::memcpy(data, data_.data() + position_, take);
  position_ += take;
  return take;
}

namespace {
std::string read_all(ByteSource& source, size_t max_bytes, size_t expected) {
  std::string text;
  // One buffer of the expected size (plus a byte to see the end) instead of doubling: a
  // checkpoint of tens of MB is read without a chain of copies and fresh pages.
  if (expected > 0 && expected < max_bytes) text.resize(expected + 1);
  size_t used = 0;
  for (;;) {
    if (used == text.size()) text.resize(std::max<size_t>(text.size() * 2, 1 << 17));
    size_t got = source.read(text.data() + used, text.size() - used);
    if (got == 0) break;
    used += got;
    if (used > max_bytes)
      throw Error(source.name(), "larger than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  text.resize(used);
  return text;
}

}  // namespace

std::string read_all(ByteSource& source, size_t max_bytes) { return read_all(source, max_bytes, 0); }

std::string read_file(const std::string& path, size_t max_bytes) {
  Input input(path);
  struct stat info;
  size_t expected = path != "-" && stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)
                        ? static_cast<size_t>(info.st_size) : 0;
  return read_all(input, max_bytes, expected);
}

namespace {

// Where writing to path goes: path itself, or the end of its chain of symbolic links (which
// may not exist yet).
std::string link_target(const std::string& path) {
  std::string at = path;
  for (int hops = 0;; ++hops) {
    struct stat link;
    if (lstat(at.c_str(), &link) != 0 || !S_ISLNK(link.st_mode)) return at;
    if (hops == 40) throw Error(path, "too many levels of symbolic links");
    std::string next(PATH_MAX, '\0');
    const ssize_t n = readlink(at.c_str(), next.data(), next.size());
    if (n < 0 || static_cast<size_t>(n) >= next.size()) return at;
    next.resize(static_cast<size_t>(n));
    const size_t slash = at.rfind('/');
    if (next.empty() || next[0] != '/') next = (slash == std::string::npos ? "" : at.substr(0, slash + 1)) + next;
    at = next;
  }
}

// "HOST.PID": who writes a temporary file (the host's name cut to letters, digits and '-').
std::string writer_tag() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string tag;
  for (const char* c = host; *c && tag.size() < 32; ++c)
    if (std::isalnum(static_cast<unsigned char>(*c)) || *c == '-') tag.push_back(*c);
  if (tag.empty()) tag = "host";
  return tag + "." + std::to_string(getpid());
}

// Temporary files of this host whose writer is gone (SIGKILL leaves them: nothing can remove
// them then), in folder: removed, once per folder and process, as git removes stale locks.
void remove_stale_temp_files(const std::string& folder) {
  static std::mutex mutex;
  static std::set<std::string> cleaned;
  std::lock_guard lock(mutex);
  if (!cleaned.insert(folder).second) return;
  DIR* dir = opendir(folder.empty() ? "." : folder.c_str());
  if (!dir) return;
  const std::string tag = writer_tag(), mark = ".tmp." + tag.substr(0, tag.rfind('.') + 1);
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    const size_t at = name.rfind(mark);
    if (name.empty() || name[0] != '.' || at == std::string::npos) continue;
    const size_t digits = at + mark.size(), dot = name.find('.', digits);
    if (dot == std::string::npos || dot == digits || dot + 7 != name.size()) continue;
    if (name.find_first_not_of("0123456789", digits) != dot) continue;
    const long pid = std::strtol(name.c_str() + digits, nullptr, 10);
    if (pid > 0 && pid != getpid() && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      (void)unlinkat(dirfd(dir), name.c_str(), 0);
  }
  closedir(dir);
}

}  // namespace

Output::Output(std::string path, Mode mode) : path_(std::move(path)) {
  buffer_.reserve(kBufferSize);
  if (path_.empty()) throw UsageError("an output file name is empty");
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    return;
  }
  // A symbolic link is written through, as cp does: its target is replaced, also one that does
  // not exist yet (a dangling link), and the link stays.
  const std::string through = link_target(path_);
  struct stat info;
  bool exists = stat(through.c_str(), &info) == 0;
  if (exists && S_ISDIR(info.st_mode)) throw Error(path_, "is a directory");
  if ((exists && !S_ISREG(info.st_mode)) || mode == Mode::direct) {
    // A device or a FIFO (/dev/null, a named pipe): written straight through, never replaced.
    fd_ = ::open(through.c_str(), O_WRONLY | O_CLOEXEC | (mode == Mode::direct ? O_CREAT | O_TRUNC : 0), 0666);
    if (fd_ < 0) throw Error(path_, system_reason("cannot open", errno));
    direct_ = true;
    return;
  }
  // A regular file, or none yet: the temporary file sits beside the real destination (a
  // symbolic link is followed, not replaced) so that rename() is atomic.
  std::string target = through;
  mode_t mask = umask(0);
  umask(mask);
  mode_t file_mode = 0666 & ~mask;
  if (exists) {
    if (access(through.c_str(), W_OK) != 0) throw Error(path_, system_reason("cannot write", errno));
    if (char* real = realpath(through.c_str(), nullptr)) {
      target = real;
      std::free(real);
    }
    file_mode = info.st_mode & 07777;
  }
  size_t slash = target.rfind('/');
  std::string folder = slash == std::string::npos ? "" : target.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? target : target.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") throw Error(path_, "not a file name");
  // Keep the temporary name within NAME_MAX (255) even for a long destination name. It names its
  // writer (host and process), so that a later write in this folder can remove it if SIGKILL
  // left it behind.
  remove_stale_temp_files(folder);
  temp_path_ = folder + "." + base.substr(0, 180) + ".tmp." + writer_tag() + ".XXXXXX";
  fd_ = mkostemp(temp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) {
    temp_path_.clear();
    throw Error(path_, system_reason("cannot create", errno));
  }
  temp_slot_ = register_temp_file(temp_path_);
  target_ = target;
  // mkstemp makes the file 0600: give it the mode of the file it replaces, or the mode a plain
  // open() would (0666 less umask), and as root keep the replaced file's owner.
  fchmod(fd_, file_mode);
  if (exists && geteuid() == 0) (void)!fchown(fd_, info.st_uid, info.st_gid);
}

Output::~Output() {
  if (!committed_) discard();
  if (direct_ && fd_ >= 0) ::close(fd_);
}

void Output::discard() {
  if (temp_path_.empty()) return;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  unlink(temp_path_.c_str());
  unregister_temp_file(temp_slot_);
  temp_path_.clear();
}

void Output::write_fd(const char* data, size_t n) {
  while (n > 0) {
    ssize_t put = ::write(fd_, data, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) throw BrokenPipe();
      throw Error(path_, system_reason("write error", errno));
    }
    data += put;
    n -= static_cast<size_t>(put);
  }
}

void Output::write(std::string_view bytes) {
  if (buffer_.size() + bytes.size() > kBufferSize) {
    flush();
    if (bytes.size() >= kBufferSize) {
      write_fd(bytes.data(), bytes.size());
      return;
    }
  }
  buffer_.append(bytes);
}

void Output::flush() {
  if (buffer_.empty()) return;
  write_fd(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void Output::finish() {
  if (finished_) return;
  flush();
  finished_ = true;
  if (direct_) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw Error(path_, system_reason("write error", errno));
    return;
  }
  if (temp_path_.empty()) return;  // stdout: close_stdout() checks it at exit
  if (fsync(fd_) != 0) {
    int err = errno;
    discard();
    throw Error(path_, system_reason("cannot sync", err));
  }
  if (::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    discard();
    throw Error(path_, system_reason("write error", err));
  }
  fd_ = -1;
}

void Output::commit() {
  finish();
  committed_ = true;
  if (direct_ || temp_path_.empty()) return;
  if (rename(temp_path_.c_str(), target_.c_str()) != 0) {
    int err = errno;
    discard();
    throw Error(path_, system_reason("cannot rename into place", err));
  }
  unregister_temp_file(temp_slot_);
  temp_path_.clear();
}

void close_stdout() {
  bool failed = std::fflush(stdout) != 0 || std::ferror(stdout);
  int err = errno;
  if (std::fclose(stdout) != 0 && !failed) {
    failed = true;
    err = errno;
  }
  if (failed) {
    if (err == EPIPE) throw BrokenPipe();
    throw Error("-", system_reason("write error", err));
  }
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, fs::path>> seen;
  for (const auto& [option, path] : outputs) {
    if (path.empty()) continue;
    std::error_code ec;
    fs::path resolved = path == "-" ? fs::path("-") : fs::weakly_canonical(fs::absolute(path, ec), ec);
    if (ec) resolved = fs::path(path).lexically_normal();
    for (const auto& [other, other_path] : seen)
      if (other_path == resolved)
        throw UsageError(fmt::format("{} and {} name the same file '{}'", other, option, path));
    seen.emplace_back(option, resolved);
  }
}

}  // namespace gen
