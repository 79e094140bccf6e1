// gtok: train a sentencepiece tokenizer, and turn text into token ids and back, exactly.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "core/utf8.h"
#include "io/token_stream.h"
#include "text/encode_stream.h"
#include "text/tokenizer.h"

namespace {

using gen::Error;

struct Common {
  std::string model;
  std::vector<std::string> inputs{"-"};
  std::string output = "-";
  int threads = gen::default_threads();
  bool quiet = false;
};

gen::Tokenizer load_model(const std::string& path, bool strict = false) {
  gen::Tokenizer tok = gen::Tokenizer::load(path);
  if (tok.normalizes() && !strict)  // strict encoding checks the round trip instead
    gen::warn(path + ": this model normalizes text (it was not trained by gtok): decode(encode(text)) may differ "
                     "from the text");
  return tok;
}

uint64_t input_size(const std::vector<std::string>& inputs) {
  uint64_t total = 0;
  for (const auto& path : inputs) {
    if (path == "-") return 0;
    struct stat info;
    if (stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) total += static_cast<uint64_t>(info.st_size);
  }
  return total;
}

// ---- train ---------------------------------------------------------------------------------
struct TrainArgs {
  Common common;
  gen::TokenizerTrainOptions options;
  bool no_byte_fallback = false;
};

void add_train_command(CLI::App& app, TrainArgs& args) {
  auto* cmd = app.add_subcommand("train", "Train a tokenizer on text files (or stdin)");
  cmd->add_option("inputs", args.common.inputs, "Text files; - is stdin (default)");
  cmd->add_option("-o,--output", args.common.output, "Where to write the model, e.g. tok.model")->required();
  cmd->add_option("--model-type", args.options.model_type, "bpe, unigram, char or word")
      ->check(CLI::IsMember({"bpe", "unigram", "char", "word"}))
      ->capture_default_str();
  cmd->add_option("--vocab-size", args.options.vocab_size,
                  "Number of pieces (default 4096; char: every character in the text)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--no-byte-fallback", args.no_byte_fallback,
                "Map characters outside the vocabulary to <unk> instead of their UTF-8 bytes (no exact round trip)");
  cmd->add_option("--character-coverage", args.options.character_coverage,
                  "Share of characters the vocabulary must cover; the rest fall back to bytes "
                  "(default 1.0 for char, 0.9995 otherwise)")
      ->check(gen::finite_number(0.5, 1));
  cmd->add_option("--seed", args.options.seed, "Seed for sentencepiece's sampling: the same seed and --threads give the same model")->check(gen::seed_number())->capture_default_str();
  cmd->add_option("--threads", args.common.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_flag("--verbose", args.options.verbose, "Show sentencepiece's own log");
  cmd->add_flag("-q,--quiet", args.common.quiet, "No summary on stderr");
  cmd->footer(R"(Examples:
  gtok train corpus.txt -o tok.model                         # BPE, 4096 pieces
  gtok train --model-type char tinyshakespeare.txt -o char.model
  cat /usr/share/games/fortunes/*.u8 | gtok train --vocab-size 2000 - -o tok.model)");
}

int run_train(TrainArgs& args) {
  args.options.byte_fallback = !args.no_byte_fallback;
  args.options.threads = args.common.threads;
  gen::Output out(args.common.output);  // a bad output path fails before the work
  auto start = std::chrono::steady_clock::now();
  gen::TrainingText read;
  // On a terminal, say what is going on while sentencepiece trains (it can take a while), and
  // erase the line afterwards, so that an error stays the one line on the screen.
  bool status_line = !args.common.quiet && isatty(STDERR_FILENO);
  if (status_line)
    args.options.on_start = [&](const gen::TrainingText& text) {
      std::fprintf(stderr, "gtok: training a %s tokenizer on %llu lines (%s) ...", args.options.model_type.c_str(),
                   static_cast<unsigned long long>(text.lines),
                   gen::Progress::format_amount(static_cast<double>(text.bytes), "B").c_str());
    };
  struct EraseLine {
    bool active;
    ~EraseLine() {
      if (active) std::fputs("\r\x1b[K", stderr);
    }
  } erase{status_line};
  std::string model = gen::tokenizer_train(args.common.inputs, args.options, &read);
  if (status_line) std::fputs("\r\x1b[K", stderr);
  erase.active = false;
  gen::Tokenizer tok = gen::Tokenizer::from_bytes(model, args.common.output);
  out.write(model);
  out.commit();
  if (!args.common.quiet) {
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "gtok: %s: %s model, %u pieces, from %llu line%s (%s) in %.1f s\n", args.common.output.c_str(),
                 args.options.model_type.c_str(), tok.vocab_size(), static_cast<unsigned long long>(read.lines),
                 read.lines == 1 ? "" : "s", gen::Progress::format_amount(static_cast<double>(read.bytes), "B").c_str(),
                 seconds);
  }
  return 0;
}

// ---- encode --------------------------------------------------------------------------------
struct EncodeArgs {
  Common common;
  std::string encoder = "native";
  bool binary = false;
  bool pieces = false;
  bool strict = false;
};

void add_model_option(CLI::App* cmd, Common& common) {
  cmd->add_option("-m,--model", common.model, "Tokenizer model (from gtok train)")->required();
}

void add_encode_command(CLI::App& app, EncodeArgs& args) {
  auto* cmd = app.add_subcommand("encode", "Text to token ids");
  add_model_option(cmd, args.common);
  cmd->add_option("inputs", args.common.inputs, "Text files, each encoded on its own (a file without a final newline does not run into the next); - is stdin (default)");
  cmd->add_option("-o,--output", args.common.output, "Where to write the ids; - is stdout (default)");
  auto* binary = cmd->add_flag("--binary", args.binary, "Binary ids (magic GIDS, little-endian uint32) instead of text");
  cmd->add_flag("--pieces", args.pieces, "Print the pieces instead of ids")->excludes(binary);
  cmd->add_flag("--strict", args.strict,
                "Reject invalid UTF-8 and text the model cannot represent (by default invalid bytes become byte "
                "tokens, so the round trip stays exact)");
  cmd->add_option("--threads", args.common.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--encoder", args.encoder,
                  "native: gtok's own BPE and char encoders where they apply (same ids, faster); "
                  "sentencepiece: always sentencepiece's (for comparison)")
      ->check(CLI::IsMember({"native", "sentencepiece"}))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args.common.quiet, "No progress on stderr");
  cmd->footer(R"(Examples:
  gtok encode -m tok.model corpus.txt > corpus.ids
  gtok encode -m tok.model --binary big.txt -o big.ids
  echo "To be, or not to be" | gtok encode -m tok.model --pieces)");
}

int run_encode(EncodeArgs& args) {
  gen::Tokenizer tok = load_model(args.common.model, args.strict);
  if (args.encoder == "sentencepiece") tok.use_sentencepiece_encoder();
  if (args.binary && args.common.output == "-" && isatty(STDOUT_FILENO))
    throw gen::UsageError("binary ids are not written to a terminal: use -o FILE or a pipe");
  gen::Output out(args.common.output);
  gen::TokenFormat format = args.binary ? gen::TokenFormat::binary : gen::TokenFormat::text;
  gen::TokenWriter writer(out, format, tok.newline_id());
  gen::Progress progress("encode", input_size(args.common.inputs), "B", args.common.quiet);
  gen::EncodeStreamOptions options;
  options.strict = args.strict;
  options.threads = args.common.threads;
  if (args.pieces) {
    options.format = [&](gen::EncodedPart& part) {
      size_t on_line = 0;
      for (uint32_t id : part.ids) {
        if (on_line++ > 0) part.formatted.push_back(' ');
        part.formatted += tok.piece_display(id);
        if (static_cast<int64_t>(id) == tok.newline_id()) {
          part.formatted.push_back('\n');
          on_line = 0;
        }
      }
      if (on_line > 0) part.formatted.push_back('\n');
    };
  } else {
    options.format = [&](gen::EncodedPart& part) {
      gen::TokenFormatter formatter(format, tok.newline_id());
      formatter.append(part.formatted, part.ids);
      formatter.finish(part.formatted);
    };
  }
  uint64_t done = 0, unknown = 0;
  for (const auto& path : args.common.inputs) {
    gen::Input input(path);
    uint64_t before = done;
    options.progress = [&](uint64_t bytes) { progress.update(done = before + bytes); };
    gen::encode_stream(tok, input, options, [&](gen::EncodedPart& part) {
      unknown += static_cast<uint64_t>(std::count(part.ids.begin(), part.ids.end(), tok.unk_id()));
      if (args.pieces) {
        out.write(part.formatted);
      } else {
        writer.write_formatted(part.formatted);
      }
    });
  }
  writer.finish();
  out.commit();
  if (done >= (uint64_t{8} << 20)) progress.finish();
  if (unknown > 0)
    gen::warn(fmt::format("{} pieces of text outside the vocabulary of {} became <unk> (the model has no byte "
                          "fallback): decoding will not give the text back",
                          unknown, args.common.model));
  return 0;
}

// ---- decode --------------------------------------------------------------------------------
struct DecodeArgs {
  Common common;
  bool pieces = false;
};

void add_decode_command(CLI::App& app, DecodeArgs& args) {
  auto* cmd = app.add_subcommand("decode", "Token ids (text or binary), or pieces, to text");
  add_model_option(cmd, args.common);
  cmd->add_option("inputs", args.common.inputs, "Id files, text or binary (detected); - is stdin (default)");
  cmd->add_option("-o,--output", args.common.output, "Where to write the text; - is stdout (default)");
  cmd->add_flag("--pieces", args.pieces,
                "Read pieces separated by white space, as gtok encode --pieces writes them (\\n, \\t, \\r, \\\\ "
                "and \\xNN escaped), instead of ids");
  cmd->footer(R"(Examples:
  gtok decode -m tok.model corpus.ids > corpus.txt
  gsample lm.st --ids | gtok decode -m tok.model
  echo "300 301 302 3" | gtok decode -m tok.model
  gtok encode -m tok.model --pieces poem.txt | gtok decode -m tok.model --pieces | cmp - poem.txt)");
}

// The piece a word of gtok encode --pieces stands for: its escapes undone. Empty if malformed.
std::optional<std::string> unescape_piece(std::string_view word) {
  std::string piece;
  for (size_t i = 0; i < word.size(); ++i) {
    if (word[i] != '\\') {
      piece.push_back(word[i]);
      continue;
    }
    if (++i == word.size()) return std::nullopt;
    const char c = word[i];
    if (c == 'n') piece.push_back('\n');
    else if (c == 't') piece.push_back('\t');
    else if (c == 'r') piece.push_back('\r');
    else if (c == '\\') piece.push_back('\\');
    else if (c == 'x' && i + 2 < word.size() && std::isxdigit(static_cast<unsigned char>(word[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(word[i + 2]))) {
      piece.push_back(static_cast<char>(std::stoi(std::string(word.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return piece;
}

// Pieces, separated by spaces, tabs and newlines, to text; streamed.
void decode_pieces(const gen::Tokenizer& tok, gen::ByteSource& input, gen::Output& out) {
  std::unordered_map<std::string, uint32_t> ids;
  for (uint32_t id = tok.vocab_size(); id-- > 0;) ids[tok.piece(id)] = id;  // the first id of a piece wins
  std::string word;
  uint64_t line = 1;
  auto flush_word = [&] {
    if (word.empty()) return;
    const std::optional<std::string> piece = unescape_piece(word);
    auto it = piece ? ids.find(*piece) : ids.end();
    if (!piece || it == ids.end())
      throw gen::Error(fmt::format("{}:{}", input.name(), line),
                       fmt::format("'{}' is {} of {}", gen::shown(word), piece ? "not a piece" : "a malformed escape in a piece",
                                   tok.name()));
    out.write(tok.surface(it->second));
    word.clear();
  };
  std::vector<char> buffer(size_t{1} << 16);
  for (size_t got; (got = input.read(buffer.data(), buffer.size())) > 0;) {
    for (size_t i = 0; i < got; ++i) {
      const char c = buffer[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        flush_word();
        if (c == '\n') ++line;
      } else {
        word.push_back(c);
        if (word.size() > 4096) throw gen::Error(fmt::format("{}:{}", input.name(), line), "a piece over 4096 bytes");
      }
    }
  }
  flush_word();
}

int run_decode(DecodeArgs& args) {
  gen::Tokenizer tok = load_model(args.common.model);
  gen::Output out(args.common.output);
  for (const auto& path : args.common.inputs) {
    gen::Input input(path);
    if (args.pieces) {
      decode_pieces(tok, input, out);
      continue;
    }
    gen::TokenReader reader(input);
    reader.set_vocabulary(tok.vocab_size(), "the vocabulary of " + args.common.model);
    for (uint32_t id; reader.next(id);) out.write(tok.surface(id));
  }
  out.commit();
  return 0;
}

// ---- count ---------------------------------------------------------------------------------
struct CountArgs {
  Common common;
  bool lines = false;
};

void add_count_command(CLI::App& app, CountArgs& args) {
  auto* cmd = app.add_subcommand("count", "Tokens, characters and bytes per file (or per line)");
  add_model_option(cmd, args.common);
  cmd->add_option("inputs", args.common.inputs, "Text files; - is stdin (default)");
  cmd->add_flag("--lines", args.lines, "One row per line of text instead of per file");
  cmd->add_option("--threads", args.common.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->footer(R"(Output: tab-separated, with a header: file, tokens, chars, bytes, chars/token
  (with --lines: file, line, tokens, chars, bytes). The newline counts as a character and a token.
Examples:
  gtok count -m tok.model corpus.txt
  gtok count -m char.model corpus.txt; gtok count -m bpe.model corpus.txt   # compare tokenizers
  gtok count -m tok.model --lines poem.txt | sort -t$'\t' -k3 -n | tail)");
}

int run_count(CountArgs& args) {
  gen::Tokenizer tok = load_model(args.common.model);
  gen::Output out("-");
  out.write(args.lines ? "file\tline\ttokens\tchars\tbytes\n" : "file\ttokens\tchars\tbytes\tchars/token\n");
  auto ratio = [](uint64_t chars, uint64_t tokens) {
    return tokens ? fmt::format("{:.3f}", static_cast<double>(chars) / static_cast<double>(tokens)) : std::string("-");
  };
  uint64_t all_tokens = 0, all_chars = 0, all_bytes = 0;
  gen::EncodeStreamOptions options;
  options.threads = args.common.threads;
  for (const auto& path : args.common.inputs) {
    gen::Input input(path);
    uint64_t tokens = 0, chars = 0, bytes = 0, line = 0;
    if (args.lines) {
      // One row per line: encode line by line (the ids of a line end with its newline token).
      options.format = [&](gen::EncodedPart& part) {
        std::vector<uint32_t> ids;
        std::string_view text = part.text;
        while (!text.empty()) {
          size_t end = text.find('\n');
          end = end == std::string_view::npos ? text.size() : end + 1;
          ids.clear();
          tok.encode(text.substr(0, end), ids);
          part.formatted += fmt::format("{}\t{}\t{}\n", ids.size(), gen::utf8_count_chars(text.substr(0, end)), end);
          text.remove_prefix(end);
        }
      };
    } else {
      options.format = [&](gen::EncodedPart& part) { part.formatted = std::to_string(gen::utf8_count_chars(part.text)); };
    }
    gen::encode_stream(tok, input, options, [&](gen::EncodedPart& part) {
      tokens += part.ids.size();
      bytes += part.text.size();
      if (!args.lines) {
        chars += std::stoull(part.formatted);
        return;
      }
      std::string_view rows = part.formatted;
      while (!rows.empty()) {
        size_t end = rows.find('\n') + 1;
        out.write(fmt::format("{}\t{}\t{}", path, ++line, rows.substr(0, end)));
        rows.remove_prefix(end);
      }
    });
    if (args.lines) continue;
    out.write(fmt::format("{}\t{}\t{}\t{}\t{}\n", path, tokens, chars, bytes, ratio(chars, tokens)));
    all_tokens += tokens;
    all_chars += chars;
    all_bytes += bytes;
  }
  if (!args.lines && args.common.inputs.size() > 1)
    out.write(fmt::format("total\t{}\t{}\t{}\t{}\n", all_tokens, all_chars, all_bytes, ratio(all_chars, all_tokens)));
  out.commit();
  return 0;
}

// ---- show ----------------------------------------------------------------------------------
struct ShowArgs {
  Common common;
  std::vector<std::string> text;
  std::string file;
  bool ids = false;
  std::string separator = "|";
};

void add_show_command(CLI::App& app, ShowArgs& args) {
  auto* cmd = app.add_subcommand("show", "Show how text splits into pieces, marked: un|b|el|ie|v|able");
  add_model_option(cmd, args.common);
  auto* text = cmd->add_option("text", args.text, "Text to show (words are joined by spaces); without it, read --file or stdin");
  cmd->add_option("-f,--file", args.file, "Read the text from this file (- is stdin)")->excludes(text);
  cmd->add_flag("--ids", args.ids, "Show each piece's id after it: un(359)");
  cmd->add_option("--separator", args.separator, "What marks a boundary")->capture_default_str();
  cmd->footer(R"(Byte tokens show as <0xNN>, the newline token as \n at the end of its line.
Examples:
  gtok show -m tok.model "unbelievable"
  gtok show -m tok.model --ids "To be, or not to be"
  head -3 corpus.txt | gtok show -m tok.model)");
}

int run_show(ShowArgs& args) {
  gen::Tokenizer tok = load_model(args.common.model);
  std::string text;
  if (!args.text.empty()) {
    for (const auto& word : args.text) text += (text.empty() ? "" : " ") + word;
  } else {
    text = gen::read_file(args.file.empty() ? "-" : args.file);
  }
  std::vector<uint32_t> ids;
  tok.encode(text, ids);
  gen::Output out("-");
  bool line_start = true;
  for (uint32_t id : ids) {
    if (!line_start) out.write(args.separator);
    bool newline = static_cast<int64_t>(id) == tok.newline_id();
    if (newline) {
      out.write("\\n");
    } else if (tok.is_byte(id)) {
      out.write(tok.piece(id));
    } else {
      // The surface, with control characters made visible.
      for (char c : tok.surface(id)) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '\t') out.write("\\t");
        else if (c == '\r') out.write("\\r");
        else if (u < 0x20 || u == 0x7f) out.write(fmt::format("\\x{:02x}", u));
        else out.put(c);
      }
    }
    if (args.ids) out.write(fmt::format("({})", id));
    line_start = newline;
    if (newline) out.put('\n');
  }
  if (!line_start) out.put('\n');
  out.commit();
  return 0;
}

// ---- vocab ---------------------------------------------------------------------------------
void add_vocab_command(CLI::App& app, Common& args) {
  auto* cmd = app.add_subcommand("vocab", "The vocabulary: id, piece, score and type, tab-separated");
  add_model_option(cmd, args);
  cmd->add_option("-o,--output", args.output, "Where to write it; - is stdout (default)");
  cmd->footer(R"(Pieces are shown as stored: ▁ is a space; \n, \t, \r and \xNN escape control characters.
Types: normal, byte (<0xNN>, byte fallback), control (<s>, </s>), unknown (<unk>), user (\n).
Examples:
  gtok vocab -m tok.model | less
  gtok vocab -m tok.model | awk -F'\t' '$4 == "normal"' | sort -t$'\t' -k3 -g -r | head)");
}

int run_vocab(Common& args) {
  gen::Tokenizer tok = load_model(args.model);
  gen::Output out(args.output);
  out.write("id\tpiece\tscore\ttype\n");
  for (uint32_t id = 0; id < tok.vocab_size(); ++id)
    out.write(fmt::format("{}\t{}\t{}\t{}\n", id, tok.piece_display(id), tok.score(id) + 0.0f, tok.piece_type(id)));
  out.commit();
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app("gtok: train a sentencepiece tokenizer; turn text into token ids and back, exactly", "gtok");
  app.require_subcommand(1);
  gen::setup_app(app, "gtok");
  app.footer(R"(Examples:
  gtok train corpus.txt -o tok.model
  gtok encode -m tok.model corpus.txt > corpus.ids
  gtok decode -m tok.model corpus.ids | cmp - corpus.txt     # exact round trip
  gtok show -m tok.model "unbelievable"                      # un|b|el|ie|v|able
Run 'gtok COMMAND --help' for a command's options. '-' means stdin or stdout.)");
  TrainArgs train;
  EncodeArgs encode;
  DecodeArgs decode;
  CountArgs count;
  ShowArgs show;
  Common vocab;
  add_train_command(app, train);
  add_encode_command(app, encode);
  add_decode_command(app, decode);
  add_count_command(app, count);
  add_show_command(app, show);
  add_vocab_command(app, vocab);
  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  const std::string chosen = app.get_subcommands().front()->get_name();
  if (chosen == "train") return run_train(train);
  if (chosen == "encode") return run_encode(encode);
  if (chosen == "decode") return run_decode(decode);
  if (chosen == "count") return run_count(count);
  if (chosen == "show") return run_show(show);
  return run_vocab(vocab);
}

}  // namespace

int main(int argc, char** argv) { return gen::tool_main("gtok", argc, argv, run); }
