// gsample: generate text from a language model checkpoint, token by token, with the sampling
// knobs a learner turns; or show the next-token distribution itself.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/cli.h"
#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "io/token_stream.h"
#include "models/gpt.h"
#include "models/gpt_checkpoint.h"
#include "models/sampler.h"
#include "text/tokenizer.h"

namespace {

using gen::Error;

struct Args {
  std::string checkpoint;
  std::optional<std::string> prompt;
  std::string prompt_file;
  std::string tokenizer;
  std::string temperatures = "1.0";
  gen::SamplerConfig sampler;
  int64_t max_tokens = 200;
  uint64_t seed = 1;
  std::vector<std::string> stops;
  int num_samples = 1;
  bool ids = false;
  int probs = 0;
  bool trace = false;
  bool echo = false;
  int threads = gen::default_threads();
  bool no_cache = false;
};

std::vector<float> parse_temperatures(const std::string& text) {
  std::vector<float> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t comma = text.find(',', begin);
    std::string item = text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    try {
      size_t used = 0;
      float t = std::stof(item, &used);
      if (used != item.size() || !(t >= 0) || !std::isfinite(t)) throw std::invalid_argument(item);
      values.push_back(t);
    } catch (const std::exception&) {
      throw gen::UsageError(fmt::format("--temperature: '{}' is not a temperature (a number >= 0)", gen::shown(item)));
    }
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return values;
}

// A piece made readable in one line: control characters escaped, in quotes.
std::string shown(const gen::Tokenizer& tok, uint32_t id) {
  std::string text = "'";
  for (char c : tok.surface(id)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n') text += "\\n";
    else if (c == '\t') text += "\\t";
    else if (c == '\'') text += "\\'";
    else if (u < 0x20 || u == 0x7f || (u >= 0x80 && tok.is_byte(id))) text += fmt::format("\\x{:02x}", u);
    else text.push_back(c);
  }
  return text + "'";
}

// The logits for the next token after `context` (its last model.context() tokens), computed
// afresh: a forward pass over the whole window.
std::vector<float> next_logits(gen::Gpt& model, gen::Arena& arena, const std::vector<uint32_t>& context) {
  const int64_t window = std::min<int64_t>(static_cast<int64_t>(context.size()), model.config().context);
  const uint32_t* ids = context.data() + context.size() - static_cast<size_t>(window);
  arena.reset();
  gen::Graph g(arena, false);
  gen::Tensor logits = model.logits(g, ids, 1, window);
  const int64_t V = model.config().vocab;
  const float* last = logits.data + (window - 1) * V;
  return std::vector<float>(last, last + V);
}

// The same logits from a KV cache: each new token costs one token's work plus attention over the
// cache. When the context outgrows the model's window, the window slides: the cache is rebuilt
// from the last half window of tokens (so from then on the model sees between half and a whole
// window, where the uncached path always sees a whole one). A prompt, or the half window, goes in
// as one step of many tokens, which reads the weights once per four of them.
class CachedLogits {
 public:
  explicit CachedLogits(gen::Gpt& model) : model_(model), cache_(model.make_cache()) {}
  const std::vector<float>& next(const std::vector<uint32_t>& context) {
    const size_t window = static_cast<size_t>(model_.config().context);
    if (cache_.length == 0 && context.size() > window) start_ = context.size() - window;
    if (context.size() - start_ > window) {
      start_ = context.size() - std::max<size_t>(1, window / 2);
      cache_.length = 0;
    }
    const size_t done = start_ + static_cast<size_t>(cache_.length);  // the tokens not yet in the cache, at once
    return model_.step(cache_, context.data() + done, static_cast<int64_t>(context.size() - done));
  }
  // A new sequence: the cache emptied, the weights it packed kept.
  void restart() {
    cache_.length = 0;
    start_ = 0;
  }

 private:
  gen::Gpt& model_;
  gen::GptCache cache_;
  size_t start_ = 0;
};

// Streams tokens out (as text or as ids), holding back those that might begin a stop string.
// When a stop string appears, what comes before it is written (as text to the byte, as ids
// up to the last whole token before it) and generation ends.
class StopWatcher {
 public:
  StopWatcher(const std::vector<std::string>& stops, std::function<void(std::string_view)> write_text,
              std::function<void(uint32_t)> write_id)
      : stops_(stops), write_text_(std::move(write_text)), write_id_(std::move(write_id)) {}

  // Adds a token; true when a stop string has appeared.
  bool add(uint32_t id, const std::string& surface) {
    tokens_.emplace_back(id, surface);
    pending_ += surface;
    size_t stop_at = std::string::npos;
    for (const auto& stop : stops_) stop_at = std::min(stop_at, pending_.find(stop));
    if (stop_at != std::string::npos) {
      size_t done = emit_before(stop_at);
      if (write_text_ && done < stop_at) write_text_(std::string_view(pending_).substr(done, stop_at - done));
      stopped_ = true;
      return true;
    }
    size_t hold = 0;  // the longest suffix of pending_ that begins some stop string
    for (const auto& stop : stops_)
      for (size_t n = std::min(stop.size() - 1, pending_.size()); n > hold; --n)
        if (pending_.compare(pending_.size() - n, n, stop, 0, n) == 0) {
          hold = n;
          break;
        }
    size_t done = emit_before(pending_.size() - hold);
    pending_.erase(0, done);
    tokens_.erase(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(emitted_));
    emitted_ = 0;
    return false;
  }
  void finish() {
    if (!stopped_) emit_before(pending_.size());
  }

 private:
  // Writes the whole tokens that end at or before byte `limit` of pending_; returns their bytes.
  size_t emit_before(size_t limit) {
    size_t done = 0;
    emitted_ = 0;
    for (const auto& [id, surface] : tokens_) {
      if (done + surface.size() > limit) break;
      if (write_id_) write_id_(id);
      if (write_text_) write_text_(surface);
      done += surface.size();
      ++emitted_;
    }
    return done;
  }
  const std::vector<std::string>& stops_;
  std::function<void(std::string_view)> write_text_;
  std::function<void(uint32_t)> write_id_;
  std::vector<std::pair<uint32_t, std::string>> tokens_;
  std::string pending_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

int run_sample(Args& args) {
  gen::use_threads(args.threads);
  std::vector<float> temperatures = parse_temperatures(args.temperatures);
  if (temperatures.size() > 1 && args.probs == 0)
    throw gen::UsageError("several temperatures are for --probs; give one to sample");
  auto& c = args.sampler;
  if (!(c.top_p > 0 && c.top_p <= 1)) throw gen::UsageError(fmt::format("--top-p {} is not in (0, 1]", c.top_p));

  gen::GptCheckpoint ckpt = gen::gpt_load(args.checkpoint, /*training_state=*/false);
  if (!args.tokenizer.empty()) {
    std::string bytes = gen::read_file(args.tokenizer, size_t{256} << 20);
    std::string hash = gen::sha256_hex(bytes);
    if (hash != ckpt.tokenizer_sha256)
      throw Error(args.tokenizer, fmt::format("is not the tokenizer {} was trained with (sha256 {}..., the checkpoint's "
                                              "is {}...)",
                                              args.checkpoint, hash.substr(0, 12), ckpt.tokenizer_sha256.substr(0, 12)));
  }
  gen::Tokenizer tok = gen::Tokenizer::from_bytes(ckpt.tokenizer, args.checkpoint + ": tokenizer");
  gen::Gpt model(ckpt.config, std::move(ckpt.weights));

  // The prompt: text, a file, ids on stdin, or (none at all) a newline.
  std::vector<uint32_t> prompt;
  std::string prompt_name = "--prompt";
  if (args.prompt || !args.prompt_file.empty()) {
    std::string text = args.prompt ? *args.prompt : gen::read_file(args.prompt_file);
    if (!args.prompt) prompt_name = args.prompt_file;
    prompt = tok.encode(text);
    if (prompt.empty()) throw Error(prompt_name, "the prompt encodes to no tokens");
  } else if (!isatty(STDIN_FILENO)) {
    gen::Input input("-");
    gen::TokenReader reader(input);
    prompt_name = "-";
    reader.set_vocabulary(tok.vocab_size(), "the vocabulary");
    for (uint32_t id; reader.next(id);) prompt.push_back(id);
  }
  if (prompt.empty()) {  // no prompt at all (or nothing on stdin): start a new line
    if (tok.newline_id() < 0) throw gen::UsageError("give a --prompt (this tokenizer has no newline token)");
    prompt.push_back(static_cast<uint32_t>(tok.newline_id()));
  }

  gen::Output out("-");
  gen::Arena arena;
  if (args.probs > 0) {
    // The next-token distribution for the prompt, at each temperature: the knob a learner turns.
    std::vector<float> logits = next_logits(model, arena, prompt);
    std::string prompt_text = tok.decode(prompt);
    std::string tail = prompt_text.size() > 40 ? prompt_text.substr(prompt_text.size() - 40) : prompt_text;
    std::string escaped;
    for (char ch : tail) escaped += ch == '\n' ? std::string("\\n") : ch == '\t' ? std::string("\\t") : std::string(1, ch);
    out.write(fmt::format("next token after \"{}{}\" ({} token{}), the {} most likely:\n",
                          prompt_text.size() > 40 ? "..." : "", escaped, prompt.size(), prompt.size() == 1 ? "" : "s",
                          args.probs));
    std::vector<std::vector<std::pair<uint32_t, float>>> columns;
    for (float t : temperatures) columns.push_back(gen::Sampler::top_candidates(gen::Sampler::softmax(logits, t), args.probs));
    std::string header = "rank";
    for (float t : temperatures) header += fmt::format("  {:<22}", fmt::format("temperature {}", t));
    while (header.back() == ' ') header.pop_back();
    out.write(header + "\n");
    for (int rank = 0; rank < args.probs && rank < static_cast<int>(logits.size()); ++rank) {
      std::string row = fmt::format("{:>4}", rank + 1);
      for (const auto& column : columns) {
        auto [id, p] = column[static_cast<size_t>(rank)];
        // Tokens with no probability at all (temperature 0) are left out.
        row += p > 0 ? fmt::format("  {:<12} {:>8.4f}%", shown(tok, id), 100.0 * p) : std::string(24, ' ');
      }
      while (row.back() == ' ') row.pop_back();
      out.write(row + "\n");
    }
    out.commit();
    return 0;
  }

  c.temperature = temperatures[0];
  const std::string prompt_text = args.echo ? tok.decode(prompt) : std::string();
  std::optional<CachedLogits> cached;
  if (!args.no_cache) cached.emplace(model);
  for (int k = 0; k < args.num_samples; ++k) {
    // Sample k is what --seed SEED+k alone gives: its label names that seed.
    const uint64_t seed = args.seed + static_cast<uint64_t>(k);
    if (args.num_samples > 1 && !args.ids)
      out.write(fmt::format("{}=== sample {} of {} (seed {}) ===\n", k ? "\n" : "", k + 1, args.num_samples, seed));
    gen::Sampler sampler(c, seed);
    std::vector<uint32_t> context = prompt;
    if (cached) cached->restart();
    gen::TokenWriter id_writer(out, gen::TokenFormat::text, tok.newline_id());
    std::string generated;  // for --trace
    char last = '\n';      // the text ends with a newline: one is added if the sample's does not
    if (args.echo && args.ids)
      for (uint32_t id : prompt) id_writer.write(id);
    else if (args.echo && !prompt_text.empty())
      out.write(prompt_text), last = prompt_text.back();
    StopWatcher watcher(
        args.stops,
        args.ids ? std::function<void(std::string_view)>() : [&](std::string_view text) {
          if (args.trace) generated += text;
          else out.write(text);
          if (!text.empty()) last = text.back();
        },
        args.ids ? std::function<void(uint32_t)>([&](uint32_t id) { id_writer.write(id); }) : std::function<void(uint32_t)>());
    if (args.trace) {
      std::string listing;
      for (uint32_t id : prompt) listing += fmt::format(" {}({})", shown(tok, id), id);
      out.write(fmt::format("prompt: {} tokens:{}\n", prompt.size(), listing));
    }
    std::vector<float> fresh;  // --no-cache's logits; the cache's are used where they lie
    for (int64_t n = 0; n < args.max_tokens; ++n) {
      const std::vector<float>& logits =
          cached ? cached->next(context) : (fresh = next_logits(model, arena, context));
      uint32_t next = sampler.sample(logits, context);
      if (args.trace) {
        std::vector<float> p = sampler.distribution(logits, context);
        std::string top;
        for (auto [id, q] : gen::Sampler::top_candidates(p, 5))
          if (q > 0) top += fmt::format(" {} {:.1f}%", shown(tok, id), 100.0 * q);
        out.write(fmt::format("step {}: after {} tokens, candidates:{} -> picked {} ({:.1f}%)\n", n + 1,
                              std::min<size_t>(context.size(), static_cast<size_t>(model.config().context)), top,
                              shown(tok, next), 100.0 * p[next]));
      }
      context.push_back(next);
      if (watcher.add(next, tok.surface(next))) break;
      out.flush();  // stream: each token (and each trace line) as soon as it is chosen
    }
    watcher.finish();
    if (args.ids) id_writer.finish();
    if (args.trace) out.write(fmt::format("text: {}\n", generated));
    else if (!args.ids && last != '\n') out.write("\n");
  }
  out.commit();
  return 0;
}

int run(int argc, char** argv) {
  Args args;
  CLI::App app("gsample: generate text from a language model (gtrain), token by token", "gsample");
  gen::setup_app(app, "gsample");
  app.add_option("checkpoint", args.checkpoint, "The model, e.g. lm.st")->required();
  auto* prompt = app.add_option("-p,--prompt", args.prompt,
                                "Text to continue (without it: token ids from stdin if it is not a terminal, else a "
                                "newline)");
  app.add_option("--prompt-file", args.prompt_file, "Read the prompt text from this file")->excludes(prompt);
  app.add_option("--tokenizer", args.tokenizer, "Check that this tokenizer model is the one inside the checkpoint");
  app.add_option("-n,--max-tokens", args.max_tokens, "Tokens to generate")->check(CLI::Range(int64_t{0}, int64_t{1} << 30))->capture_default_str();
  app.add_option("-t,--temperature", args.temperatures,
                 "Softmax temperature: 0 picks the most likely token; with --probs a list: 0.2,0.7,1.5")
      ->capture_default_str();
  auto& c = args.sampler;
  app.add_option("--top-k", c.top_k, "Sample among the k most likely tokens (0: all)")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  app.add_option("--top-p", c.top_p, "Sample among the most likely tokens covering this probability, in (0, 1]")->check(gen::finite_number(0, 1, true))->capture_default_str();
  app.add_option("--min-p", c.min_p, "Drop tokens less likely than this share of the most likely")->check(gen::finite_number(0, 1))->capture_default_str();
  app.add_option("--repeat-penalty", c.repeat_penalty, "Make recent tokens less likely (1: off)")->check(gen::finite_number(0.01, 100))->capture_default_str();
  app.add_option("--repeat-last-n", c.repeat_last_n, "How many recent tokens the penalty sees")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("-s,--seed", args.seed, "Seed: the same seed gives the same text")->check(gen::seed_number())->capture_default_str();
  app.add_option("--stop", args.stops, "Stop when this text appears (repeatable; it is not printed)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::Validator(
          [](std::string& text) { return text.empty() ? std::string("an empty stop text would stop at once") : ""; },
          "TEXT"));
  app.add_option("--num-samples", args.num_samples,
                 "Samples to draw (sample k is the one --seed SEED+k gives; with --ids they follow one another)")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_flag("--echo", args.echo, "Print the prompt before what follows it (as text, or as ids with --ids)");
  app.add_flag("--ids", args.ids, "Print token ids instead of text (for gtok decode)");
  app.add_option("--probs", args.probs, "Instead of sampling, print the K most likely next tokens for the prompt")->check(CLI::Range(1, 1 << 20));
  app.add_flag("--trace", args.trace,
               "Show each step: the candidates (after penalty, temperature and filters) and the one picked");
  app.add_option("--threads", args.threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_flag("--no-cache", args.no_cache,
               "Recompute the whole window for each token instead of using the KV cache (slower; for comparison)");
  app.footer(R"(Examples:
  gsample lm.st --prompt "ROMEO:" -n 200 --temperature 0.8 --seed 1
  gsample lm.st --prompt "ROMEO:" --probs 5 --temperature 0.2,0.7,1.5   # how temperature flattens
  gsample lm.st --prompt "To be" -n 20 --trace                           # the pipeline, step by step
  gsample lm.st --prompt "ROMEO:" --echo --num-samples 3  # each sample labelled with its seed
  gsample lm.st --ids -n 100 | gtok decode -m tok.model
The text ends with a newline (one is added if the sample does not end with one); --ids gives
exactly the tokens drawn.
Past the model's context the window slides: the KV cache restarts from the last half window.)");
  if (auto done = gen::parse_command_line(app, argc, argv)) return *done;
  if (args.ids && args.trace) throw gen::UsageError("--ids and --trace do not go together");
  if (args.echo && (args.trace || args.probs > 0))
    throw gen::UsageError(fmt::format("--echo and {} do not go together (it shows the prompt already)",
                                      args.trace ? "--trace" : "--probs"));
  return run_sample(args);
}

}  // namespace

int main(int argc, char** argv) { return gen::tool_main("gsample", argc, argv, run); }
