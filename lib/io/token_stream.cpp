#include "io/token_stream.h"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace gen {
namespace {
constexpr size_t kChunk = 1 << 16;

bool is_space(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

TokenReader::TokenReader(ByteSource& source) : source_(source) {
  while (end_ - begin_ < 4 && fill()) {
  }
  if (end_ - begin_ >= 4 && std::memcmp(buffer_.data() + begin_, kTokenMagic, 4) == 0) {
    format_ = TokenFormat::binary;
    begin_ += 4;
    while (end_ - begin_ < 4 && fill()) {
    }
    if (end_ - begin_ < 4) throw Error(source_.name(), "truncated binary token stream: no version after the magic");
    uint32_t version;
    std::memcpy(&version, buffer_.data() + begin_, 4);  // little-endian host (x86-64)
    begin_ += 4;
    if (version != kTokenVersion)
      throw Error(source_.name(), fmt::format("unsupported binary token stream version {} (this gen reads {})",
                                              version, kTokenVersion));
  }
}

void TokenReader::set_vocabulary(uint32_t vocab, std::string description) {
  vocab_ = vocab;
  vocab_description_ = std::move(description);
}

bool TokenReader::check(uint32_t id) const {
  if (vocab_ > 0 && id >= vocab_)
    throw Error(where(), fmt::format("token id {} is outside {} (0..{})", id, vocab_description_, vocab_ - 1));
  return true;
}

bool TokenReader::fill() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() - end_ < kChunk) buffer_.resize(end_ + kChunk);
  size_t got = source_.read(buffer_.data() + end_, buffer_.size() - end_);
  end_ += got;
  return got > 0;
}

int TokenReader::peek() {
  if (begin_ == end_ && !fill()) return -1;
  return static_cast<unsigned char>(buffer_[begin_]);
}

void TokenReader::advance() {
  if (buffer_[begin_] == '\n') {
    ++line_;
    column_ = 1;
  } else {
    ++column_;
  }
  ++begin_;
}

bool TokenReader::next(uint32_t& id) {
  if (format_ == TokenFormat::binary) {
    while (end_ - begin_ < 4) {
      if (!fill()) {
        if (end_ == begin_) return false;
        throw Error(source_.name(), fmt::format("truncated binary token stream: {} stray bytes after id #{}",
                                                end_ - begin_, count_));
      }
    }
    std::memcpy(&id, buffer_.data() + begin_, 4);
    begin_ += 4;
    ++count_;
    return check(id);
  }
  int c;
  while ((c = peek()) >= 0 && is_space(c)) advance();
  if (c < 0) return false;
  token_line_ = line_;
  token_column_ = column_;
  ++count_;
  // At most 25 bytes of it: more than any valid id, enough for a message, and bounded when the
  // input is endless (/dev/zero).
  std::string word;
  size_t length = 0, digits = 0;
  while (length < 25 && (c = peek()) >= 0 && !is_space(c)) {
    word.push_back(static_cast<char>(c));
    digits += c >= '0' && c <= '9';
    ++length;
    advance();
  }
  if (length == 25 && (c = peek()) >= 0 && !is_space(c)) {
    word.resize(24);
    word += "...";
    if (digits == length) ++digits;  // a long number: "too large", not "not an id"
    ++length;                        // too long to be an id, whatever follows
  }
  if (digits != length) {
    bool negative = length > 1 && word[0] == '-' && digits == length - 1;
    if (negative) throw Error(where(), fmt::format("negative token id {}", word));
    std::string shown;
    for (char ch : word) {
      unsigned char u = static_cast<unsigned char>(ch);
      shown += u >= 0x20 && u < 0x7f ? std::string(1, ch) : fmt::format("\\x{:02x}", u);
    }
    throw Error(where(), fmt::format("'{}' is not a token id", shown));
  }
  uint64_t value = 0;
  auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (error != std::errc() || length > 20 || value > UINT32_MAX)
    throw Error(where(), fmt::format("token id {} is too large", word));
  id = static_cast<uint32_t>(value);
  return check(id);
}

std::string TokenReader::where() const {
  if (format_ == TokenFormat::binary) return fmt::format("{}: id #{}", source_.name(), count_);
  return fmt::format("{}:{}:{}", source_.name(), token_line_, token_column_);
}

void TokenFormatter::append(std::string& out, uint32_t id) {
  if (format_ == TokenFormat::binary) {
    char bytes[4];
    std::memcpy(bytes, &id, 4);
    out.append(bytes, 4);
    return;
  }
  if (on_line_ > 0) out.push_back(' ');
  char digits[16];
  auto result = std::to_chars(digits, digits + sizeof digits, id);
  out.append(digits, result.ptr);
  if (++on_line_ >= kIdsPerLine || static_cast<int64_t>(id) == newline_id_) {
    out.push_back('\n');
    on_line_ = 0;
  }
}

void TokenFormatter::finish(std::string& out) {
  if (format_ == TokenFormat::text && on_line_ > 0) out.push_back('\n');
  on_line_ = 0;
}

void TokenWriter::start() {
  if (started_) return;
  started_ = true;
  if (format_ == TokenFormat::binary) {
    out_.write(kTokenMagic, 4);
    uint32_t version = kTokenVersion;
    out_.write(&version, 4);
  }
}

void TokenWriter::write(uint32_t id) {
  start();
  formatter_.append(pending_, id);
  if (pending_.size() >= kChunk) {
    out_.write(pending_);
    pending_.clear();
  }
}

void TokenWriter::write(std::span<const uint32_t> ids) {
  for (uint32_t id : ids) write(id);
}

void TokenWriter::write_formatted(std::string_view bytes) {
  if (bytes.empty()) return;
  start();
  out_.write(pending_);
  pending_.clear();
  out_.write(bytes);
}

void TokenWriter::finish() {
  formatter_.finish(pending_);
  out_.write(pending_);
  pending_.clear();
}

}  // namespace gen

