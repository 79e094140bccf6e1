#include "text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <functional>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"

namespace gen {
namespace {

constexpr size_t kMaxModelBytes = size_t{256} << 20;
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, sentencepiece's space
constexpr size_t kMaxSentence = 1 << 14;                    // longer lines are cut for training

// Feeds the lines of several files to the sentencepiece trainer, cutting very long lines
// (sentencepiece would skip them) at a space or character boundary.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  LineIterator(const std::vector<std::string>& paths, TrainingText& read) : paths_(paths), read_(read) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

  void Next() override {
    for (;;) {
      if (!pending_.empty()) {
        take_sentence();
        return;
      }
      if (!next_line()) {
        done_ = true;
        return;
      }
    }
  }

 private:
  void take_sentence() {
    size_t cut = pending_.size();
    if (cut > kMaxSentence) {
      cut = kMaxSentence;
      size_t space = pending_.rfind(' ', cut);
      if (space != std::string::npos && space > cut / 2) {
        cut = space;
      } else {
        while (cut > 0 && (static_cast<unsigned char>(pending_[cut]) & 0xC0) == 0x80) --cut;
        if (cut == 0) cut = kMaxSentence;
      }
    }
    line_.assign(pending_, 0, cut);
    pending_.erase(0, cut);
  }

  static constexpr size_t kMaxTextBytes = size_t{1} << 30;
  // The next non-empty line of input into pending_; false when all files are read.
  bool next_line() {
    for (;;) {
      if (!input_) {
        if (file_ == paths_.size()) return false;
        input_ = std::make_unique<Input>(paths_[file_++]);
        begin_ = end_ = searched_ = 0;
      }
      // Search only what has not been searched: a line with no end in sight (/dev/zero) must
      // not make each read rescan all of it.
      size_t newline = buffer_.find('\n', std::max(begin_, searched_));
      if (newline != std::string::npos && newline < end_) {
        pending_.assign(buffer_, begin_, newline - begin_);
        begin_ = searched_ = newline + 1;
        ++read_.lines;
        if (!pending_.empty()) return true;
        continue;
      }
      // Keep the partial line, read more.
      buffer_.erase(0, begin_);
      end_ -= begin_;
      begin_ = 0;
      searched_ = end_;
      buffer_.resize(std::max<size_t>(end_ + (1 << 16), buffer_.size()));
      size_t got = input_->read(buffer_.data() + end_, buffer_.size() - end_);
      read_.bytes += got;
      // The limit every reader keeps (an endless input such as /dev/zero ends here, named).
      if (read_.bytes > kMaxTextBytes)
        throw Error(input_->name(), fmt::format("more than {} GiB of training text: over the limit",
                                                kMaxTextBytes >> 30));
      end_ += got;
      if (got == 0) {
        pending_.assign(buffer_, 0, end_);
        if (end_ > 0) ++read_.lines;
        input_.reset();
        if (!pending_.empty()) return true;
      }
    }
  }

  const std::vector<std::string>& paths_;
  TrainingText& read_;
  size_t file_ = 0;
  std::unique_ptr<Input> input_;
  std::string buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t searched_ = 0;  // buffer_ before this holds no newline after begin_
  std::string pending_;
  std::string line_;
  bool done_ = false;
};

// A minimal reader of the protobuf wire format, for the fields of sentencepiece's ModelProto
// that its C++ API does not expose. Field numbers from sentencepiece_model.proto:
//   ModelProto      pieces = 1, trainer_spec = 2, normalizer_spec = 3
//   SentencePiece   piece = 1, score = 2 (float), type = 3
//                   (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6)
//   TrainerSpec     model_type = 3 (UNIGRAM 1, BPE 2, WORD 3, CHAR 4), treat_whitespace_as_suffix = 24
//   NormalizerSpec  name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3,
//                   remove_extra_whitespaces = 4, escape_whitespaces = 5 (the last three default true)
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}
  bool ok() const { return ok_; }
  // The next field: its number, and its value as an integer (varint, fixed32, fixed64) or bytes
  // (length-delimited). False at the end, or on malformed data (then ok() is false).
  bool next(uint32_t& field, uint64_t& value, std::string_view& bytes) {
    if (position_ >= data_.size()) return false;
    uint64_t key;
    if (!varint(key)) return fail();
    field = static_cast<uint32_t>(key >> 3);
    switch (key & 7) {
      case 0:
        return varint(value) || fail();
      case 1:
      case 5: {
        size_t n = (key & 7) == 1 ? 8 : 4;
        if (data_.size() - position_ < n) return fail();
        value = 0;
        std::memcpy(&value, data_.data() + position_, n);  // little-endian host
        position_ += n;
        return true;
      }
      case 2: {
        uint64_t length;
        if (!varint(length) || length > data_.size() - position_) return fail();
        bytes = data_.substr(position_, length);
        position_ += length;
        return true;
      }
      default:
        return fail();
    }
  }

 private:
  bool fail() {
    ok_ = false;
    position_ = data_.size();
    return false;
  }
  bool varint(uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && position_ < data_.size(); shift += 7) {
      uint8_t byte = static_cast<uint8_t>(data_[position_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (byte < 0x80) return true;
    }
    return false;
  }
  std::string_view data_;
  size_t position_ = 0;
  bool ok_ = true;
};

enum PieceType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// What the native encoders need to know about a model.
struct ModelFacts {
  struct Piece {
    std::string text;
    float score = 0;
    uint8_t type = kNormal;
  };
  std::vector<Piece> pieces;
  int model_type = 1;
  bool treat_whitespace_as_suffix = false;
  std::string normalizer_name;
  bool has_charsmap = false;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  bool ok = true;
};

ModelFacts read_model_facts(std::string_view serialized) {
  ModelFacts facts;
  ProtoReader model(serialized);
  uint32_t field;
  uint64_t value;
  std::string_view bytes;
  while (model.next(field, value, bytes)) {
    if (field == 1) {
      ModelFacts::Piece piece;
      ProtoReader reader(bytes);
      std::string_view piece_bytes;
      while (reader.next(field, value, piece_bytes)) {
        if (field == 1) piece.text.assign(piece_bytes);
        if (field == 2) {
          uint32_t bits = static_cast<uint32_t>(value);
          std::memcpy(&piece.score, &bits, 4);
        }
        if (field == 3) piece.type = static_cast<uint8_t>(value);
      }
      facts.ok &= reader.ok();
      facts.pieces.push_back(std::move(piece));
    } else if (field == 2) {
      ProtoReader reader(bytes);
      std::string_view unused;
      while (reader.next(field, value, unused)) {
        if (field == 3) facts.model_type = static_cast<int>(value);
        if (field == 24) facts.treat_whitespace_as_suffix = value != 0;
      }
      facts.ok &= reader.ok();
    } else if (field == 3) {
      ProtoReader reader(bytes);
      std::string_view text;
      while (reader.next(field, value, text)) {
        if (field == 1) facts.normalizer_name.assign(text);
        if (field == 2) facts.has_charsmap = !text.empty();
        if (field == 3) facts.add_dummy_prefix = value != 0;
        if (field == 4) facts.remove_extra_whitespaces = value != 0;
        if (field == 5) facts.escape_whitespaces = value != 0;
      }
      facts.ok &= reader.ok();
    }
  }
  facts.ok &= model.ok();
  return facts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Feeds the sentences read beforehand to the trainer.
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return next_ >= sentences_.size(); }
  void Next() override { ++next_; }
  const std::string& value() const override { return sentences_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t next_ = 0;
};

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
}

// sentencepiece's messages read "Internal: ./src/x.cc(660) [(a) == (b)] Vocabulary size ...";
// keep the sentence after the bracket (or the condition, if that is all there is), with
// options named as gtok spells them.
std::string clean_message(const std::string& message) {
  size_t open = message.find(" [");
  size_t close = message.find("] ");
  std::string text = message;
  if (close != std::string::npos) {
    text = message.substr(close + 2);
    if (text.find_first_not_of(' ') == std::string::npos && open != std::string::npos && open < close)
      text = "sentencepiece requires " + message.substr(open + 2, close - open - 2);
  }
  replace_all(text, "decrease character_coverage with --character_coverage option", "lower --character-coverage");
  replace_all(text, "character_coverage", "--character-coverage");
  replace_all(text, "Increase vocab_size", "Increase --vocab-size");
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace

std::string tokenizer_train(const std::vector<std::string>& paths, const TokenizerTrainOptions& options,
                            TrainingText* read) {
  const std::string name = join(paths);
  const std::string& type = options.model_type;
  if (type != "bpe" && type != "unigram" && type != "char" && type != "word")
    throw UsageError(fmt::format("unknown model type '{}' (bpe, unigram, char or word)", type));
  bool is_char = type == "char";
  int vocab_size = options.vocab_size > 0 ? options.vocab_size : is_char ? 1 << 20 : 4096;
  double coverage = options.character_coverage >= 0 ? options.character_coverage : is_char ? 1.0 : 0.9995;
  if (std::isnan(options.character_coverage)) throw UsageError("--character-coverage must be a number");
  double lowest_coverage = is_char ? 0.98 : 0.5;  // sentencepiece's limit for char models
  if (!(coverage >= lowest_coverage && coverage <= 1.0))  // also rejects NaN
    throw UsageError(fmt::format("--character-coverage must be in [{}, 1] for a {} model", lowest_coverage, type));
  // <unk>, <s>, </s>, the newline, the 256 byte pieces, and at least one more.
  int fewest = 4 + (options.byte_fallback ? 256 : 0) + 1;
  if (options.vocab_size > 0 && options.vocab_size < fewest)
    throw Error(join(paths), fmt::format("vocab size {} cannot be reached for a {} model: it needs at least {} pieces "
                                         "(<unk>, <s>, </s>, the newline{}, and the characters of the text)",
                                         vocab_size, type, fewest, options.byte_fallback ? ", 256 byte pieces" : ""));

  std::unordered_map<std::string, std::string> args = {
      {"model_type", type},
      {"vocab_size", std::to_string(vocab_size)},
      {"character_coverage", fmt::format("{}", coverage)},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "false"},
      {"user_defined_symbols", "\n"},
      {"max_sentence_length", std::to_string(kMaxSentence + 16)},
      {"num_threads", std::to_string(std::max(1, options.threads))},
      {"minloglevel", options.verbose ? "0" : "2"},
      {"model_prefix", ""},
  };
  // The char model takes every character it sees (at the coverage); a vocab-size cap only bites
  // when it is given.
  if (is_char && options.vocab_size == 0) args["hard_vocab_limit"] = "false";
  sentencepiece::SetRandomGeneratorSeed(options.seed);

  // Read everything first: an empty input fails before any training, and the caller can say
  // how much text there is.
  TrainingText text;
  std::vector<std::string> sentences;
  LineIterator lines(paths, text);
  for (; !lines.done(); lines.Next()) sentences.push_back(lines.value());
  if (read) *read = text;
  if (sentences.empty())
    throw Error(name, text.bytes == 0 ? "no text to train on (empty input)" : "no text to train on (only empty lines)");
  if (options.on_start) options.on_start(text);

  VectorIterator iterator(sentences);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model);
  if (!status.ok()) {
    std::string raw = status.message();
    std::string message = clean_message(raw);
    if (raw.find("vocab_size") != std::string::npos || raw.find("Vocabulary size") != std::string::npos ||
        raw.find("required_chars") != std::string::npos) {
      if (message.rfind("sentencepiece requires", 0) == 0)
        message = "too small for the special pieces, the byte pieces and the characters of this text";
      throw Error(name, fmt::format("vocab size {} cannot be reached for a {} model on this text: {}", vocab_size,
                                    type, message));
    }
    throw Error(name, "training failed: " + message);
  }
  return model;
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) { return from_bytes(read_file(path, kMaxModelBytes), path); }

Tokenizer Tokenizer::from_bytes(std::string serialized, std::string name) {
  Tokenizer tok;
  tok.serialized_ = std::move(serialized);
  tok.name_ = std::move(name);
  if (tok.serialized_.empty()) throw Error(tok.name_, "not a tokenizer model (empty file)");
  // What sentencepiece would abort on (its trie builder throws through code that cannot pass the
  // exception on: std::terminate): refused first, with a line.
  const ModelFacts facts = read_model_facts(tok.serialized_);
  if (!facts.ok) throw Error(tok.name_, "not a tokenizer model (its pieces cannot be read)");
  for (size_t i = 0; i < facts.pieces.size(); ++i)
    if (facts.pieces[i].text.empty() || facts.pieces[i].text.find('\0') != std::string::npos)
      throw Error(tok.name_, fmt::format("not a tokenizer model (piece {} is empty or holds a NUL byte)", i));
  tok.processor_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto status = tok.processor_->LoadFromSerializedProto(tok.serialized_);
  if (!status.ok() || tok.processor_->GetPieceSize() <= 0)
    throw Error(tok.name_, "not a tokenizer model (sentencepiece: " +
                               (status.ok() ? std::string("no pieces") : clean_message(status.message())) + ")");
  tok.init();
  return tok;
}

void Tokenizer::init() {
  const auto& sp = *processor_;
  int size = sp.GetPieceSize();
  ModelFacts facts = read_model_facts(serialized_);
  if (!facts.ok || facts.pieces.size() != static_cast<size_t>(size))
    throw Error(name_, "not a tokenizer model (its pieces cannot be read)");
  // Every text must encode to ids of this vocabulary: a model whose unknown piece is missing
  // (sentencepiece's unk_id() -1) would give id 2^32 - 1 for what it cannot cover.
  if (sp.unk_id() < 0 || sp.unk_id() >= size) throw Error(name_, "not a tokenizer model (it has no <unk> piece)");
  unk_id_ = static_cast<uint32_t>(sp.unk_id());
  surfaces_.resize(static_cast<size_t>(size));
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  bool single_char_reserved = false;
  // normal_ids_ holds views of these strings: no reallocation after this (short strings live
  // inside the std::string object and would move).
  pieces_.reserve(static_cast<size_t>(size));
  for (int id = 0; id < size; ++id) {
    auto& info = facts.pieces[static_cast<size_t>(id)];
    pieces_.push_back(std::move(info.text));
    scores_.push_back(info.score);
    types_.push_back(info.type);
    const std::string& piece = pieces_.back();
    std::string& surface = surfaces_[static_cast<size_t>(id)];
    if (info.type == kByte) {
      unsigned value = 0;
      if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X>", &value) == 1 && value < 256) {
        surface.assign(1, static_cast<char>(value));
        byte_ids_[value] = id;
      }
    } else if (info.type == kUnknown) {
      surface = " \xE2\x81\x87 ";  // sentencepiece's unk surface, " ⁇ "
    } else if (info.type == kControl || info.type == kUnused) {
      surface.clear();
    } else {
      for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          surface.push_back(' ');
          i += kSpaceSymbol.size();
        } else {
          surface.push_back(piece[i++]);
        }
      }
    }
    if (info.type == kNormal || info.type == kUserDefined || info.type == kUnused) {
      normal_ids_.emplace(piece, id);
    } else if (!piece.empty() && utf8_char_length(piece, 0) == piece.size()) {
      single_char_reserved = true;
    }
  }
  // Every byte piece must be there for byte fallback to be usable.
  if (std::count(std::begin(byte_ids_), std::end(byte_ids_), -1) > 0) std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  int newline = sp.PieceToId("\n");
  newline_id_ = newline != sp.unk_id() && sp.IdToPiece(newline) == "\n" ? newline : byte_ids_[static_cast<unsigned char>('\n')];
  int space = sp.PieceToId(kSpaceSymbol);
  // The id that stands for one space: the "▁" piece, or else (a word model with a small
  // vocabulary may lack it) the byte piece <0x20>.
  space_id_ = space != sp.unk_id() && sp.IdToPiece(space) == kSpaceSymbol ? space : byte_ids_[static_cast<unsigned char>(' ')];

  // The native encoders reproduce sentencepiece for models that normalize nothing but spaces.
  bool plain = facts.normalizer_name == "identity" && !facts.has_charsmap && !facts.add_dummy_prefix &&
               !facts.remove_extra_whitespaces && facts.escape_whitespaces && !facts.treat_whitespace_as_suffix &&
               !single_char_reserved;
  normalizes_ = facts.normalizer_name != "identity" || facts.has_charsmap || facts.add_dummy_prefix ||
                facts.remove_extra_whitespaces || !facts.escape_whitespaces || facts.treat_whitespace_as_suffix;
  for (const auto& piece : facts.pieces) plain &= piece.type != kUnused;
  for (size_t id = 0; id < pieces_.size(); ++id) plain &= types_[id] != kUserDefined || pieces_[id] == "\n";
  engine_ = !plain ? Engine::sentencepiece
            : facts.model_type == 2 ? Engine::bpe
            : facts.model_type == 4 ? Engine::character
                                    : Engine::sentencepiece;
  // Text splits into independent chunks at each space that follows a non-space, unless some
  // piece holds a space after a non-space character (models trained with split_by_whitespace
  // never do).
  pieces_split_at_spaces_ = true;
  for (const auto& [piece, id] : normal_ids_) {
    size_t first_other = 0;
    while (piece.compare(first_other, kSpaceSymbol.size(), kSpaceSymbol) == 0) first_other += kSpaceSymbol.size();
    if (piece.find(kSpaceSymbol, first_other) != std::string_view::npos) pieces_split_at_spaces_ = false;
  }
  static std::atomic<uint64_t> serials{0};
  serial_ = ++serials;
  exact_ = newline_id_ >= 0 && has_byte_fallback() && !normalizes_;
}

const char* Tokenizer::encoder_name() const {
  switch (engine_) {
    case Engine::bpe:
      return "bpe (native)";
    case Engine::character:
      return "char (native)";
    default:
      return "sentencepiece";
  }
}

void Tokenizer::encode(std::string_view text, std::vector<uint32_t>& ids, const Strictness& strictness) const {
  size_t first_id = ids.size();
  encode_lines(text, ids, strictness);
  if (!strictness.strict || exact_) return;
  // Strict with a model that may change text (it normalizes): check the round trip itself.
  std::string back;
  for (size_t k = first_id; k < ids.size(); ++k) back += surfaces_[ids[k]];
  if (back == text) return;
  size_t at = 0;
  while (at < back.size() && at < text.size() && back[at] == text[at]) ++at;
  throw Error(strictness.name.empty() ? name_ : strictness.name,
              fmt::format("byte offset {}: the text does not come back unchanged from {} (it normalizes text)",
                          strictness.offset + at, name_));
}

void Tokenizer::encode_lines(std::string_view text, std::vector<uint32_t>& ids, const Strictness& strictness) const {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t newline = text.find('\n', begin);
    size_t end = newline == std::string_view::npos ? text.size() : newline;
    encode_line(text.substr(begin, end - begin), ids, strictness, strictness.offset + begin);
    if (newline == std::string_view::npos) break;
    // A model with neither a newline piece nor byte fallback (not one of ours) gets <unk>.
    if (newline_id_ < 0 && strictness.strict)
      throw Error(strictness.name.empty() ? name_ : strictness.name,
                  fmt::format("byte offset {}: a line break cannot be represented by {} (it has no newline piece "
                              "and no byte fallback)",
                              strictness.offset + newline, name_));
    ids.push_back(static_cast<uint32_t>(newline_id_ >= 0 ? newline_id_ : unk_id_));
    begin = newline + 1;
  }
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids;
  encode(text, ids);
  return ids;
}

void Tokenizer::encode_line(std::string_view line, std::vector<uint32_t>& ids, const Strictness& strictness,
                            uint64_t offset) const {
  size_t start = 0;
  auto flush = [&](size_t end) {
    // A very long line is cut where a space follows a non-space, where no piece can cross
    // (see pieces_split_at_spaces_), so that memory stays bounded.
    constexpr size_t kLongSegment = size_t{1} << 18;
    while (end - start > kLongSegment && pieces_split_at_spaces_) {
      size_t cut = line.find(' ', start + kLongSegment);
      while (cut < end && line[cut - 1] == ' ') cut = line.find(' ', cut + 1);
      if (cut >= end) break;
      encode_segment(line.substr(start, cut - start), ids, strictness, offset + start);
      start = cut;
    }
    if (end > start) encode_segment(line.substr(start, end - start), ids, strictness, offset + start);
  };
  for (size_t i = 0; i < line.size();) {
    if (static_cast<unsigned char>(line[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t length = utf8_char_length(line, i);
    bool is_space_symbol = length == 3 && line.compare(i, 3, kSpaceSymbol) == 0;
    if (length != 0 && !is_space_symbol) {
      i += length;
      continue;
    }
    // What sentencepiece cannot carry: ill-formed UTF-8, and a literal U+2581 (its space). With
    // byte fallback they become byte tokens; without, <unk> (or an error when strict).
    const std::string& file = strictness.name.empty() ? name_ : strictness.name;
    if (length == 0 && strictness.strict) throw Error(file, fmt::format("invalid UTF-8 at byte offset {}", offset + i));
    if (is_space_symbol && !has_byte_fallback() && strictness.strict)
      throw Error(file, fmt::format("byte offset {}: '\xE2\x96\x81' (U+2581) is not in the vocabulary of {} (it has "
                                    "no byte fallback)",
                                    offset + i, name_));
    flush(i);
    size_t count = length == 0 ? 1 : length;
    if (has_byte_fallback()) {
      for (size_t k = 0; k < count; ++k) ids.push_back(static_cast<uint32_t>(byte_ids_[static_cast<unsigned char>(line[i + k])]));
    } else {
      ids.push_back(unk_id_);
    }
    i += count;
    start = i;
  }
  flush(line.size());
}

void Tokenizer::encode_segment(std::string_view segment, std::vector<uint32_t>& ids, const Strictness& strictness,
                               uint64_t offset) const {
  thread_local std::vector<int> piece_ids;
  piece_ids.clear();
  if (engine_ == Engine::sentencepiece) {
    auto status = processor_->Encode(segment, &piece_ids);
    if (!status.ok()) throw Error(name_, "encoding failed: " + clean_message(status.message()));
  } else {
    encode_native(segment, piece_ids);
  }
  const int64_t e2 = byte_ids_[0xE2], x96 = byte_ids_[0x96], x81 = byte_ids_[0x81];
  size_t n = piece_ids.size();
  for (size_t k = 0; k < n; ++k) {
    int id = piece_ids[k];
    // An escaped space that fell back to bytes becomes a space token again, so that byte tokens
    // E2 96 81 can only mean a literal U+2581.
    if (id == e2 && space_id_ >= 0 && k + 2 < n && piece_ids[k + 1] == x96 && piece_ids[k + 2] == x81) {
      ids.push_back(static_cast<uint32_t>(space_id_));
      k += 2;
      continue;
    }
    if (static_cast<uint32_t>(id) == unk_id_ && strictness.strict) {
      // Find the first character that the model cannot represent, for the message.
      size_t at = 0;
      std::vector<int> single;
      for (size_t i = 0; i < segment.size();) {
        size_t length = std::max<size_t>(1, utf8_char_length(segment, i));
        single.clear();
        if (engine_ == Engine::sentencepiece) {
          (void)processor_->Encode(segment.substr(i, length), &single);
        } else {
          encode_native(segment.substr(i, length), single);
        }
        if (std::find(single.begin(), single.end(), static_cast<int>(unk_id_)) != single.end()) {
          at = i;
          break;
        }
        i += length;
      }
      throw Error(strictness.name.empty() ? name_ : strictness.name,
                  fmt::format("byte offset {}: '{}' is not in the vocabulary of {} (it has no byte fallback)",
                              offset + at, segment.substr(at, std::max<size_t>(1, utf8_char_length(segment, at))),
                              name_));
    }
    ids.push_back(static_cast<uint32_t>(id));
  }
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string text;
  for (uint32_t id : ids) {
    if (id >= surfaces_.size()) throw Error(name_, fmt::format("token id {} is outside the vocabulary", id));
    text += surfaces_[id];
  }
  return text;
}

const std::string& Tokenizer::piece(uint32_t id) const { return pieces_[id]; }

std::string Tokenizer::piece_display(uint32_t id) const {
  std::string shown;
  for (char c : piece(id)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') shown += "\\n";
    else if (c == '\t') shown += "\\t";
    else if (c == '\r') shown += "\\r";
    else if (c == '\\') shown += "\\\\";
    else if (u < 0x20 || u == 0x7f) shown += fmt::format("\\x{:02x}", u);
    else shown.push_back(c);
  }
  return shown;
}

float Tokenizer::score(uint32_t id) const { return scores_[id]; }

bool Tokenizer::is_byte(uint32_t id) const { return types_[id] == kByte; }

const char* Tokenizer::piece_type(uint32_t id) const {
  switch (types_[id]) {
    case kUnknown:
      return "unknown";
    case kControl:
      return "control";
    case kByte:
      return "byte";
    case kUnused:
      return "unused";
    case kUserDefined:
      return "user";
    default:
      return "normal";
  }
}

int Tokenizer::lookup(std::string_view piece) const {
  auto found = normal_ids_.find(piece);
  return found == normal_ids_.end() ? static_cast<int>(unk_id_) : found->second;
}

void Tokenizer::emit_native(std::string_view piece, int id, std::vector<int>& out, bool& previous_unknown) const {
  // As sentencepiece's PopulateSentencePieceText: an unknown piece becomes its bytes with byte
  // fallback; without, consecutive unknown pieces become one <unk>.
  bool unknown = static_cast<uint32_t>(id) == unk_id_;
  if (unknown && has_byte_fallback()) {
    for (char c : piece) out.push_back(static_cast<int>(byte_ids_[static_cast<unsigned char>(c)]));
  } else if (!(unknown && previous_unknown)) {
    out.push_back(id);
  }
  previous_unknown = unknown;
}

void Tokenizer::encode_native(std::string_view segment, std::vector<int>& out) const {
  // Normalize: the identity, but for spaces escaped as U+2581.
  thread_local std::string normalized;
  normalized.clear();
  for (char c : segment) {
    if (c == ' ') {
      normalized.append(kSpaceSymbol);
    } else {
      normalized.push_back(c);
    }
  }
  std::string_view text = normalized;
  auto char_length = [&](size_t i) { return std::max<size_t>(1, utf8_char_length(text, i)); };
  bool previous_unknown = false;
  if (engine_ == Engine::character) {
    for (size_t i = 0; i < text.size();) {
      size_t n = char_length(i);
      std::string_view piece = text.substr(i, n);
      emit_native(piece, lookup(piece), out, previous_unknown);
      i += n;
    }
    return;
  }

  // BPE. When no piece can cross from a non-space character into a following "▁" (true for
  // models trained with split_by_whitespace, checked at load), the text falls into independent
  // chunks "▁▁word", and merging each alone gives what merging the whole would. Words repeat,
  // so each thread remembers the ids of chunks it has seen (for this tokenizer only).
  if (!pieces_split_at_spaces_) {
    bpe_merge(text, [&](std::string_view piece) { emit_native(piece, lookup(piece), out, previous_unknown); });
    return;
  }
  struct ChunkCache {
    uint64_t owner = 0;
    std::unordered_map<std::string, std::vector<int>> ids;
  };
  thread_local ChunkCache cache;
  if (cache.owner != serial_ || cache.ids.size() > (size_t{1} << 16)) {
    cache.ids.clear();
    cache.owner = serial_;
  }
  thread_local std::vector<int> chunk_ids;
  thread_local std::string key;
  for (size_t begin = 0; begin < text.size();) {
    // The chunk: spaces, then everything up to the next space that follows a non-space.
    size_t end = begin;
    while (end < text.size() && text.compare(end, kSpaceSymbol.size(), kSpaceSymbol) == 0) end += kSpaceSymbol.size();
    while (end < text.size() && text.compare(end, kSpaceSymbol.size(), kSpaceSymbol) != 0) ++end;
    std::string_view chunk = text.substr(begin, end - begin);
    begin = end;
    key.assign(chunk);
    auto found = cache.ids.find(key);
    if (found != cache.ids.end()) {
      out.insert(out.end(), found->second.begin(), found->second.end());
      previous_unknown = false;  // cached chunks hold no <unk>
      continue;
    }
    chunk_ids.clear();
    bool unknown = false;
    bpe_merge(chunk, [&](std::string_view piece) {
      int id = lookup(piece);
      unknown |= static_cast<uint32_t>(id) == unk_id_;
      chunk_ids.push_back(id);
      emit_native(piece, id, out, previous_unknown);
    });
    if (!unknown) cache.ids.emplace(key, chunk_ids);
  }
}

void Tokenizer::bpe_merge(std::string_view text, const std::function<void(std::string_view)>& piece_out) const {
  // As sentencepiece's bpe_model.cc Model::Encode: start from characters; repeatedly merge the
  // adjacent pair whose union is the highest-scoring piece (ties: the leftmost pair).
  struct Symbol {
    int prev, next;
    uint32_t begin, size;
  };
  struct Pair {
    float score;
    int left, right;
    uint32_t size;
    bool operator<(const Pair& other) const {
      return score < other.score || (score == other.score && left > other.left);
    }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Pair> agenda;  // a binary heap
  symbols.clear();
  agenda.clear();
  for (size_t i = 0; i < text.size();) {
    uint32_t n = static_cast<uint32_t>(std::max<size_t>(1, utf8_char_length(text, i)));
    int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, i + n < text.size() ? index + 1 : -1, static_cast<uint32_t>(i), n});
    i += n;
  }
  auto maybe_add_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    uint32_t size = symbols[static_cast<size_t>(left)].size + symbols[static_cast<size_t>(right)].size;
    auto found = normal_ids_.find(text.substr(symbols[static_cast<size_t>(left)].begin, size));
    if (found == normal_ids_.end()) return;
    agenda.push_back({scores_[static_cast<size_t>(found->second)], left, right, size});
    std::push_heap(agenda.begin(), agenda.end());
  };
  for (size_t i = 1; i < symbols.size(); ++i) maybe_add_pair(static_cast<int>(i - 1), static_cast<int>(i));
  while (!agenda.empty()) {
    std::pop_heap(agenda.begin(), agenda.end());
    Pair top = agenda.back();
    agenda.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    Symbol& right = symbols[static_cast<size_t>(top.right)];
    // Skip pairs that an earlier merge made stale.
    if (left.size == 0 || right.size == 0 || left.size + right.size != top.size) continue;
    left.size += right.size;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    right.size = 0;
    maybe_add_pair(left.prev, top.left);
    maybe_add_pair(top.left, left.next);
  }
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<size_t>(i)].next)
    piece_out(text.substr(symbols[static_cast<size_t>(i)].begin, symbols[static_cast<size_t>(i)].size));
}

}  // namespace gen
