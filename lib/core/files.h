// Reading and writing files, where "-" means stdin or stdout.
//
// Output to a regular file is atomic: it writes to a hidden temporary file in the destination's
// folder, and commit() flushes, fsyncs and renames it into place. Until then the destination
// is untouched; if the Output is destroyed without commit() (an exception), or SIGINT/SIGTERM
// arrives, the temporary file is removed. The replacement keeps the old file's mode (and, as
// root, its owner); a symbolic link is followed, so its target is replaced, not the link; a
// read-only file is refused. A device or FIFO (/dev/null, a named pipe) is written straight
// through. Every write is checked; a write to a closed pipe throws BrokenPipe.
//
//   gen::Output out(path);            // path or "-"
//   out.write("hello\n");
//   out.commit();                     // the file appears, complete, or not at all
//
//   gen::Input in(path);              // path or "-"
//   char buf[4096]; size_t n = in.read(buf, sizeof buf);   // 0 at end of input
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gen {

// Anything bytes can be read from: a file, stdin, a memory buffer (tests, fuzzers).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; returns 0 only at the end. Throws Error on failure.
  virtual size_t read(char* data, size_t n) = 0;
  // The name used in error messages.
  virtual const std::string& name() const = 0;
};

class Input : public ByteSource {
 public:
  explicit Input(std::string path);  // "-" is stdin; throws Error if it cannot be opened
  ~Input() override;
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
  size_t read(char* data, size_t n) override;
  const std::string& name() const override { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

class MemorySource : public ByteSource {
 public:
  MemorySource(std::string_view data, std::string name = "<memory>")
      : data_(data), name_(std::move(name)) {}
  size_t read(char* data, size_t n) override;
  const std::string& name() const override { return name_; }

 private:
  std::string_view data_;
  size_t position_ = 0;
  std::string name_;
};

// The whole of a file (or stdin); refuses files larger than max_bytes.
std::string read_file(const std::string& path, size_t max_bytes = size_t{1} << 30);
std::string read_all(ByteSource& source, size_t max_bytes = size_t{1} << 30);

class Output {
 public:
  enum class Mode { atomic, direct };
  // "-" is stdout (written through, not atomic). Mode::direct writes a regular file in place,
  // as it goes, for logs that one follows with tail -f: it is truncated first, never renamed.
  explicit Output(std::string path, Mode mode = Mode::atomic);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void write(std::string_view bytes);
  void write(const void* data, size_t n) { write(std::string_view(static_cast<const char*>(data), n)); }
  void put(char c) {
    if (buffer_.size() >= kBufferSize) flush();
    buffer_.push_back(c);
  }
  void flush();
  // Completes the file: flush, fsync, rename over the destination. Call exactly once.
  void commit();
  // commit()'s first half: flush, fsync and close, the file still under its hidden temporary
  // name (removed if commit() never comes). A set of files that must appear together is
  // finished one by one, then committed: a failure before the renames leaves none of them.
  void finish();
  const std::string& name() const { return path_; }
  bool is_stdout() const { return path_ == "-"; }

 private:
  static constexpr size_t kBufferSize = 1 << 16;
  void write_fd(const char* data, size_t n);
  void discard();

  std::string path_;
  std::string temp_path_;
  std::string target_;   // where the temporary file is renamed to (symbolic links resolved)
  bool direct_ = false;  // a device or FIFO, written without a temporary file
  int fd_ = -1;
  int temp_slot_ = -1;
  bool committed_ = false, finished_ = false;
  std::string buffer_;
};

// Refuses (UsageError) two outputs of one command naming the same file ("--gif and -o name the
// same file 'x.png'"), paths resolved; empty ones (not asked for) are skipped.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

// Flushes and closes stdout, reporting a failed write (a full disk) as an Error on "-".
void close_stdout();

}  // namespace gen
