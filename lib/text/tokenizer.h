// The tokenizer: a sentencepiece model, trained and used so that decode(encode(x)) == x byte
// for byte, for any input, including invalid UTF-8.
//
//   gen::TokenizerTrainOptions options;          // bpe, vocab 4096, byte fallback
//   std::string model = gen::tokenizer_train({"corpus.txt"}, options);
//   gen::Tokenizer tok = gen::Tokenizer::from_bytes(model, "tok.model");
//   std::vector<uint32_t> ids;
//   tok.encode("To be, or not to be\n", ids);   // ... 3 (the newline token)
//   std::string text = tok.decode(ids);          // "To be, or not to be\n"
//
// How the round trip is made exact (sentencepiece alone normalizes text and drops newlines):
// - Training: identity normalization, no removal of extra whitespace, no dummy prefix (a
//   leading space stays a space), whitespace-only pieces allowed (runs of spaces), byte
//   fallback (any character outside the vocabulary becomes its UTF-8 bytes, <0xNN>), and "\n"
//   as a user-defined piece.
// - Encoding: the text is cut at newlines (each becomes the "\n" token, so a model learns where
//   lines end). Bytes sentencepiece cannot carry are emitted as byte tokens directly: bytes of
//   ill-formed UTF-8, and the character U+2581 '▁' itself, which sentencepiece uses for the
//   space. Byte tokens that sentencepiece emits for an escaped space are turned back into the
//   "▁" piece (or <0x20> if the model has none), so that a byte token always means that raw byte.
// - Decoding: each id has one fixed surface string (a piece with ▁ as space, a byte piece as
//   its byte, control pieces as nothing), so decoding is a table lookup and can stream.
// A model without byte fallback cannot carry characters outside its vocabulary: they become
// <unk>, which decodes as " ⁇ ". With strict checking such input is an error instead.
//
// Speed: sentencepiece's Encode builds a protobuf message with a string per piece, which costs
// more than the segmentation itself. For BPE and char models with gtok's settings, encoding
// runs sentencepiece's algorithm natively here (bpe_model.cc: merge the adjacent pair whose
// union is the best-scoring piece, ties to the leftmost; char: one piece per character), giving
// the same ids (the tests and a fuzzer compare the two); other models go through sentencepiece.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace gen {

struct TokenizerTrainOptions {
  std::string model_type = "bpe";  // bpe | unigram | char | word
  int vocab_size = 0;              // 0: 4096, or every character for the char model
  bool byte_fallback = true;
  double character_coverage = -1;  // < 0: 1.0 for char, 0.9995 otherwise
  uint32_t seed = 1;
  int threads = 1;
  bool verbose = false;  // sentencepiece's own log lines on stderr
  // Called once the text is read, before training starts (a status line).
  std::function<void(const struct TrainingText&)> on_start;
};

// Statistics of the text read for training.
struct TrainingText {
  uint64_t lines = 0;
  uint64_t bytes = 0;
};

// Trains on the lines of the given files ("-" is stdin); returns the serialized model.
std::string tokenizer_train(const std::vector<std::string>& paths, const TokenizerTrainOptions& options,
                            TrainingText* read = nullptr);

class Tokenizer {
 public:
  static Tokenizer load(const std::string& path);
  static Tokenizer from_bytes(std::string serialized, std::string name);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  uint32_t vocab_size() const { return static_cast<uint32_t>(surfaces_.size()); }
  const std::string& name() const { return name_; }
  const std::string& serialized() const { return serialized_; }

  // Strict encoding rejects ill-formed UTF-8 (which byte fallback would otherwise carry as
  // bytes), anything that would become <unk>, and (with a model that normalizes) any text that
  // would not come back unchanged, naming the byte offset in the file.
  struct Strictness {
    bool strict = false;
    std::string name;     // file name for messages
    uint64_t offset = 0;  // byte offset of `text` in that file
  };
  // Appends the ids of `text`, which may hold any bytes and any number of lines.
  void encode(std::string_view text, std::vector<uint32_t>& ids, const Strictness& strictness) const;
  void encode(std::string_view text, std::vector<uint32_t>& ids) const { encode(text, ids, Strictness()); }
  std::vector<uint32_t> encode(std::string_view text) const;

  // The bytes an id decodes to.
  const std::string& surface(uint32_t id) const { return surfaces_[id]; }
  std::string decode(const std::vector<uint32_t>& ids) const;

  // The piece as stored in the model ("▁the", "<0x0A>", "\n").
  const std::string& piece(uint32_t id) const;
  // The piece made printable: control characters escaped (\n, \t, \r, \xNN).
  std::string piece_display(uint32_t id) const;
  float score(uint32_t id) const;
  // "normal", "byte", "control", "unknown", "unused", "user"
  const char* piece_type(uint32_t id) const;
  bool is_byte(uint32_t id) const;
  int64_t newline_id() const { return newline_id_; }
  uint32_t unk_id() const { return unk_id_; }
  bool has_byte_fallback() const { return byte_ids_[0] >= 0; }
  // True when decode(encode(x)) == x for every x: byte fallback, a newline piece and no
  // normalization. Models trained by gtok are exact unless trained without byte fallback.
  bool exact() const { return exact_; }
  // The model changes text before segmenting it (NFKC, a dummy prefix, collapsed spaces):
  // true for sentencepiece's defaults, false for models trained by gtok.
  bool normalizes() const { return normalizes_; }
  // "bpe (native)", "char (native)" or "sentencepiece": who segments the text.
  const char* encoder_name() const;
  // Force encoding through sentencepiece (to compare the native encoders against it).
  void use_sentencepiece_encoder() { engine_ = Engine::sentencepiece; }

 private:
  Tokenizer() = default;
  void init();
  void encode_lines(std::string_view text, std::vector<uint32_t>& ids, const Strictness& strictness) const;
  void encode_line(std::string_view line, std::vector<uint32_t>& ids, const Strictness& strictness,
                   uint64_t offset) const;
  void encode_segment(std::string_view segment, std::vector<uint32_t>& ids, const Strictness& strictness,
                      uint64_t offset) const;
  // Sentencepiece's model step on one segment, natively: appends piece ids (unk for unknown
  // pieces, expanded to bytes with byte fallback, merged when consecutive without).
  void encode_native(std::string_view segment, std::vector<int>& out) const;
  void emit_native(std::string_view piece, int id, std::vector<int>& out, bool& previous_unknown) const;
  int lookup(std::string_view piece) const;
  void bpe_merge(std::string_view text, const std::function<void(std::string_view)>& piece_out) const;

  enum class Engine { sentencepiece, bpe, character };
  Engine engine_ = Engine::sentencepiece;
  bool pieces_split_at_spaces_ = false;
  uint64_t serial_ = 0;  // identifies this tokenizer to per-thread caches

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string serialized_;
  std::string name_;
  std::vector<std::string> surfaces_;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<uint8_t> types_;  // sentencepiece's ModelProto.SentencePiece.Type
  std::unordered_map<std::string_view, int> normal_ids_;  // normal, user-defined, unused pieces
  int64_t byte_ids_[256];
  int64_t newline_id_ = -1;
  int64_t space_id_ = -1;
  uint32_t unk_id_ = 0;
  bool exact_ = true;
  bool normalizes_ = false;
};

}  // namespace gen
