#include "text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
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

  // The next non-empty line of input into pending_; false when all files are read.
  bool next_line() {
    for (;;) {
      if (!input_) {
        if (file_ == paths_.size()) return false;
        input_ = std::make_unique<Input>(paths_[file_++]);
        begin_ = end_ = 0;
      }
      size_t newline = buffer_.find('\n', begin_);
      if (newline != std::string::npos && newline < end_) {
        pending_.assign(buffer_, begin_, newline - begin_);
        begin_ = newline + 1;
        ++read_.lines;
        if (!pending_.empty()) return true;
        continue;
      }
      // Keep the partial line, read more.
      buffer_.erase(0, begin_);
      end_ -= begin_;
      begin_ = 0;
      buffer_.resize(std::max<size_t>(end_ + (1 << 16), buffer_.size()));
      size_t got = input_->read(buffer_.data() + end_, buffer_.size() - end_);
      read_.bytes += got;
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
  std::string pending_;
  std::string line_;
  bool done_ = false;
};

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// sentencepiece's messages read "Internal: ./src/x.cc(660) [(a) == (b)] Vocabulary size ...";
// keep the sentence after the bracket.
std::string clean_message(const std::string& message) {
  size_t bracket = message.find("] ");
  return bracket == std::string::npos ? message : message.substr(bracket + 2);
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

  TrainingText text;
  LineIterator lines(paths, text);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (read) *read = text;
  if (text.bytes == 0 || text.lines == 0) throw Error(name, "no text to train on (empty input)");
  if (!status.ok()) {
    std::string message = clean_message(status.message());
    if (message.find("Vocabulary size too high") != std::string::npos ||
        message.find("smaller than required_chars") != std::string::npos || message.find("(vocab_size)") == 0 ||
        std::string(status.message()).find("(vocab_size) >= (0)") != std::string::npos)
      throw Error(name, fmt::format("vocab size {} cannot be reached for a {} model on this text: {}", vocab_size,
                                    type, message.find("(vocab_size)") == 0 ? "too small" : message));
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
  unk_id_ = static_cast<uint32_t>(sp.unk_id());
  surfaces_.resize(static_cast<size_t>(size));
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (int id = 0; id < size; ++id) {
    const std::string& piece = sp.IdToPiece(id);
    std::string& surface = surfaces_[static_cast<size_t>(id)];
    if (sp.IsByte(id)) {
      unsigned value = 0;
      if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X>", &value) == 1 && value < 256) {
        surface.assign(1, static_cast<char>(value));
        byte_ids_[value] = id;
      }
    } else if (sp.IsUnknown(id)) {
      surface = " \xE2\x81\x87 ";  // sentencepiece's unk surface, " ⁇ "
    } else if (sp.IsControl(id) || sp.IsUnused(id)) {
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
  }
  // Every byte piece must be there for byte fallback to be usable.
  if (std::count(std::begin(byte_ids_), std::end(byte_ids_), -1) > 0) std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  int newline = sp.PieceToId("\n");
  newline_id_ = newline != sp.unk_id() && sp.IdToPiece(newline) == "\n" ? newline : byte_ids_[static_cast<unsigned char>('\n')];
  int space = sp.PieceToId(kSpaceSymbol);
  space_id_ = space != sp.unk_id() && sp.IdToPiece(space) == kSpaceSymbol ? space : -1;
  // A foreign model may add a dummy prefix or normalize; find out with a probe.
  const std::string probe = " A  b\tc. 1\n";
  exact_ = newline_id_ >= 0 && has_byte_fallback() && decode(encode(probe)) == probe;
}

void Tokenizer::encode(std::string_view text, std::vector<uint32_t>& ids, const Strictness& strictness) const {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t newline = text.find('\n', begin);
    size_t end = newline == std::string_view::npos ? text.size() : newline;
    encode_line(text.substr(begin, end - begin), ids, strictness, strictness.offset + begin);
    if (newline == std::string_view::npos) break;
    if (newline_id_ < 0)
      throw Error(strictness.name.empty() ? name_ : strictness.name,
                  fmt::format("{}: the tokenizer has no newline piece and no byte fallback, so it cannot encode a "
                              "line break (byte offset {})",
                              name_, strictness.offset + newline));
    ids.push_back(static_cast<uint32_t>(newline_id_));
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
    if (end > start) encode_segment(line.substr(start, end - start), ids, strictness, offset + start);
  };
  for (size_t i = 0; i < line.size();) {
    if (static_cast<unsigned char>(line[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t length = utf8_char_length(line, i);
    bool is_space_symbol = length == 3 && line.compare(i, 3, kSpaceSymbol) == 0;
    if (length != 0 && !(is_space_symbol && has_byte_fallback())) {
      i += length;
      continue;
    }
    // A byte sentencepiece cannot carry: ill-formed UTF-8, or a literal U+2581.
    if (length == 0 && strictness.strict)
      throw Error(strictness.name.empty() ? name_ : strictness.name,
                  fmt::format("invalid UTF-8 at byte offset {}", offset + i));
    flush(i);
    size_t count = length == 0 ? 1 : length;
    for (size_t k = 0; k < count; ++k) {
      int64_t byte_id = byte_ids_[static_cast<unsigned char>(line[i + k])];
      ids.push_back(static_cast<uint32_t>(byte_id >= 0 ? byte_id : unk_id_));
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
  auto status = processor_->Encode(segment, &piece_ids);
  if (!status.ok()) throw Error(name_, "encoding failed: " + clean_message(status.message()));
  const int64_t e2 = byte_ids_[0xE2], x96 = byte_ids_[0x96], x81 = byte_ids_[0x81];
  size_t n = piece_ids.size();
  for (size_t k = 0; k < n; ++k) {
    int id = piece_ids[k];
    // An escaped space that fell back to bytes becomes the space piece again.
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
        (void)processor_->Encode(segment.substr(i, length), &single);
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

const std::string& Tokenizer::piece(uint32_t id) const { return processor_->IdToPiece(static_cast<int>(id)); }

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

float Tokenizer::score(uint32_t id) const { return processor_->GetScore(static_cast<int>(id)); }

bool Tokenizer::is_byte(uint32_t id) const { return processor_->IsByte(static_cast<int>(id)); }

const char* Tokenizer::piece_type(uint32_t id) const {
  int i = static_cast<int>(id);
  if (processor_->IsUnknown(i)) return "unknown";
  if (processor_->IsControl(i)) return "control";
  if (processor_->IsByte(i)) return "byte";
  if (processor_->IsUnused(i)) return "unused";
  if (static_cast<int64_t>(id) == newline_id_) return "user";
  return "normal";
}

}  // namespace gen
