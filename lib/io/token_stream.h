// Token-id streams, the currency between gtok, gtrain and gsample.
//
// Two forms; readers detect which by the first four bytes.
//
// Text (the default): decimal ids separated by ASCII whitespace. Line breaks carry no meaning;
// writers break a line after each newline token and after every 32 ids, so that a line of ids
// matches a line of text and `head` shows something readable:
//     464 2241 271 3
//     85 1130 3
//
// Binary (for large corpora), all integers little-endian:
//     bytes 0..3   magic "GIDS"
//     bytes 4..7   uint32 version, 1
//     then         uint32 token ids, 4 bytes each, to the end of the stream
// The count is implied by the length; a length that leaves a partial id is an error. An empty
// stream (no ids) is written as zero bytes in both forms.
//
//   gen::Input in(path);
//   gen::TokenReader reader(in);
//   reader.set_vocabulary(vocab, "the vocabulary of tok.model");   // ids >= vocab are errors
//   for (uint32_t id; reader.next(id);) use(id);
//
//   gen::TokenWriter writer(out, gen::TokenFormat::text, newline_id);
//   writer.write(id); ... writer.finish();
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/files.h"

namespace gen {

enum class TokenFormat { text, binary };

inline constexpr char kTokenMagic[4] = {'G', 'I', 'D', 'S'};
inline constexpr uint32_t kTokenVersion = 1;

class TokenReader {
 public:
  explicit TokenReader(ByteSource& source);
  // The next id; false at the end. Throws Error (with where()) on a malformed stream.
  bool next(uint32_t& id);
  // From now on, an id >= vocab is an error: "token id N is outside DESCRIPTION (0..vocab-1)".
  void set_vocabulary(uint32_t vocab, std::string description);
  // Where the last id returned came from: "file:line:column" or "file: id #N".
  std::string where() const;
  TokenFormat format() const { return format_; }

 private:
  bool fill();  // more bytes into the buffer; false at end of input
  int peek();   // next byte or -1, without consuming
  void advance();

  ByteSource& source_;
  TokenFormat format_ = TokenFormat::text;
  std::string buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  uint64_t line_ = 1;
  uint64_t column_ = 1;
  uint64_t token_line_ = 0;
  uint64_t token_column_ = 0;
  uint64_t count_ = 0;
  uint32_t vocab_ = 0;  // 0: no check
  std::string vocab_description_;
  bool check(uint32_t id) const;
};

// Appends ids in either form to a string; one formatter per independent piece of output.
class TokenFormatter {
 public:
  TokenFormatter(TokenFormat format, int64_t newline_id) : format_(format), newline_id_(newline_id) {}
  void append(std::string& out, uint32_t id);
  void append(std::string& out, std::span<const uint32_t> ids) {
    for (uint32_t id : ids) append(out, id);
  }
  // Ends an unfinished text line.
  void finish(std::string& out);

 private:
  static constexpr int kIdsPerLine = 32;
  TokenFormat format_;
  int64_t newline_id_;
  int on_line_ = 0;
};

class TokenWriter {
 public:
  TokenWriter(Output& out, TokenFormat format, int64_t newline_id)
      : out_(out), format_(format), formatter_(format, newline_id) {}
  void write(uint32_t id);
  void write(std::span<const uint32_t> ids);
  // Bytes already formatted by a TokenFormatter of the same form (parallel encoders).
  void write_formatted(std::string_view bytes);
  void finish();

 private:
  void start();
  Output& out_;
  TokenFormat format_;
  TokenFormatter formatter_;
  std::string pending_;
  bool started_ = false;
};

}  // namespace gen
