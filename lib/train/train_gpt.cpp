#include "train/train_gpt.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

#include "core/cluster.h"
#include "core/error.h"
#include "core/files.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/tool_main.h"
#include "io/token_stream.h"
#include "models/gpt_checkpoint.h"
#include "models/next_token.h"
#include "tensor/optimizer.h"
#include "text/tokenizer.h"
#include "train/loop.h"
#include "train/train_state.h"

namespace gen {

SettingList gpt_setting_list(GptTrainSettings& s) {
  SettingList list;
  list.add("--batch", s.batch, 1, 1 << 16, "Sequences per step");
  list.add("--decay-steps", s.decay_steps, 0, int64_t{1} << 30,
           "Step where the cosine schedule reaches --min-lr (0: --steps)");
  list.add("--lr", s.lr, 0, 1e6, "Peak learning rate", Bound::open_low);
  list.add("--min-lr", s.min_lr, 0, 1e6, "Final learning rate");
  list.add("--warmup", s.warmup, 0, int64_t{1} << 30, "Linear warmup steps");
  list.add("--weight-decay", s.weight_decay, 0, 10, "AdamW decoupled weight decay (matrices only)");
  list.add("--grad-clip", s.grad_clip, 0, 1e6, "Clip gradients to this global norm (0: off)");
  list.add("--beta1", s.beta1, 0, 0.9999, "AdamW beta1");
  list.add("--beta2", s.beta2, 0, 0.99999, "AdamW beta2");
  list.add("--eval-batches", s.eval_batches, 1, 1 << 20, "Batches per validation loss");
  list.add("--val-fraction", s.val_fraction, 0, 0.9, "Share of the input held out for validation");
  list.newer_from_here();
  list.add("--dropout", s.dropout, 0, 0.9,
           "Dropout while training, where nanoGPT has it: embeddings, attention weights, residual branches");
  list.add("--grad-accum", s.grad_accum, 1, 1024,
           "Batches whose gradients make one step: --batch sequences at a time, --batch x N per step");
  list.add_flag("--muon", s.muon,
                "Update the blocks' weight matrices with Muon (orthogonalized momentum, at AdamW's learning rate "
                "and weight decay); the embeddings, biases and norms with AdamW");
  list.add("--muon-momentum", s.muon_momentum, 0, 0.9999, "Muon's Nesterov momentum");
  list.add_check([&s] { return s.min_lr > s.lr ? std::string("--min-lr is above --lr") : std::string(); });
  return list;
}

namespace {

// A GPT batch of B sequences of T tokens in shards of at least 256 tokens: at 192 (batch 12 in 4
// shards) the recipe's steps were 5-9% slower here, its products too small.
int gpt_shards(int64_t B, int64_t T) { return batch_shards(B, (255 + T) / T); }

std::vector<uint32_t> read_ids(const std::string& path, uint32_t vocab) {
  Input input(path);
  TokenReader reader(input);
  reader.set_vocabulary(vocab, "the tokenizer's vocabulary");
  std::vector<uint32_t> ids;
  // The limit every reader keeps: 2^28 ids (1 GiB as 32-bit ids); an endless stream ends here,
  // named, not in "out of memory".
  constexpr size_t kMaxIds = size_t{1} << 28;
  for (uint32_t id; reader.next(id);) {
    if (ids.size() == kMaxIds) throw Error(path, fmt::format("more than {} token ids: over the limit", kMaxIds));
    ids.push_back(id);
  }
  return ids;
}

std::string_view bytes_of(const std::vector<uint32_t>& ids) {
  return {reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(uint32_t)};
}

class GptTask : public TrainTask {
 public:
  GptTask(GptTrainJob& job, Gpt& model, std::string tokenizer, std::vector<uint32_t> train, std::vector<uint32_t> val,
          int64_t total, std::string fingerprint)
      : job_(job), s_(job.settings), model_(model), tokenizer_(std::move(tokenizer)), train_(std::move(train)),
        val_(std::move(val)), total_(total), fingerprint_(std::move(fingerprint)), rng_(job.run.seed),
        adam_(model.params().size(), {.beta1 = s_.beta1, .beta2 = s_.beta2, .eps = 1e-8f,
                                      .weight_decay = s_.weight_decay}),
        muon_(model.block_matrices(), {.momentum = s_.muon_momentum, .weight_decay = s_.weight_decay}) {
    if (s_.muon) adam_.leave_out(model.block_matrices(), model.params().views().size());
    const int64_t B = s_.batch, T = model.config().context;
    model_.params().set_shards(gpt_shards(B, T), &cluster());
    arenas_.resize(static_cast<size_t>(model_.params().local_shards()));
    x_.resize(static_cast<size_t>(B * T));
    y_.resize(static_cast<size_t>(B * T));
  }
  Rng& rng() { return rng_; }
  AdamW& adam() { return adam_; }

  std::vector<Column> columns() const override {
    return {figure_column("lr", "{:.6e}"),         loss_column("train_loss", "loss"),
            figure_column("train_acc", "{:.4f}"),   loss_column("val_loss", "validation loss", /*occasional=*/true),
            occasional_column("val_acc", "{:.4f}"), figure_column("grad_norm", "{:.4f}")};
  }

  StepResult step(int64_t step, bool last) override {
    const int64_t B = s_.batch, T = model_.config().context, N = s_.grad_accum;
    // N batches, their gradients summed and then averaged: one step of N x B sequences. The
    // dropout masks' key of each batch is drawn from the run's generator (saved, so a resumed run
    // draws the same ones).
    Gpt::BatchLoss loss;
    const size_t P = static_cast<size_t>(model_.params().size());
    for (int64_t k = 0; k < N; ++k) {
      next_token_batch(train_, rng_, B, T, x_.data(), y_.data());
      const GptDropout dropout{.p = s_.dropout, .key = s_.dropout > 0 ? rng_.next_u64() : 0};
      const Gpt::BatchLoss part =
          model_.batch_loss(arenas_, x_.data(), y_.data(), B, T, /*training=*/true, &cluster(), dropout);
      loss.mean += part.mean;
      loss.correct += part.correct;
      if (N == 1) break;
      const float* g = model_.params().grads();
      if (k == 0) accumulated_.assign(g, g + P);
      else
        for (size_t i = 0; i < P; ++i) accumulated_[i] += g[i];
    }
    if (N > 1) {
      const float share = 1.0f / static_cast<float>(N);
      float* g = model_.params().grads();
      for (size_t i = 0; i < P; ++i) g[i] = accumulated_[i] * share;
      loss.mean /= static_cast<double>(N);
    }
    StepResult r;
    const float lr = cosine_lr(step, {.lr = s_.lr, .min_lr = s_.min_lr, .warmup = s_.warmup, .decay_steps = s_.decay_steps});
    const float norm = grad_norm(model_.params());
    if (std::isfinite(loss.mean)) {  // else the loop stops the run, and the weights stay as they were
      const float scale = clip_scale(norm, s_.grad_clip);  // clipping inside the update
      adam_.step(model_.params(), lr, scale);
      if (s_.muon) muon_.step(model_.params(), adam_.m().data(), lr, scale);
    }
    double val_loss = NAN, val_acc = NAN;
    const int64_t done = step + 1;
    if (val_.size() > static_cast<size_t>(T) && (done % job_.eval_every == 0 || last)) {
      const Evaluation e = evaluate(model_, val_, B, T, s_.eval_batches * B, job_.run.seed, arenas_, &cluster());
      val_loss = e.loss, val_acc = e.accuracy;
      r.messages.push_back(fmt::format("step {}: train loss {:.4f}, val loss {:.4f}, val accuracy {:.1f}%, lr {:.2e}",
                                       done, loss.mean, e.loss, 100 * e.accuracy, lr));
    }
    r.values = {lr, loss.mean, static_cast<double>(loss.correct) / static_cast<double>(N * B * T), val_loss, val_acc,
                norm};
    return r;
  }

  void plan(int64_t steps) override { plan_schedule(steps, total_, s_.decay_steps); }

  void save(const std::string& path, int64_t steps, bool optimizer) override {
    TrainState state{.steps = total_, .settings = gpt_setting_list(s_).to_json(), .data = fingerprint_,
                     .rng = rng_.save(), .optimizers = {}};
    gpt_save(path, model_, tokenizer_, steps, job_.run.seed, optimizer ? &state : nullptr, &adam_);
  }

 private:
  GptTrainJob& job_;
  GptTrainSettings& s_;
  Gpt& model_;
  std::string tokenizer_;
  std::vector<uint32_t> train_, val_;
  int64_t total_;
  std::string fingerprint_;
  Rng rng_;
  AdamW adam_;
  Muon muon_;  // with --muon: the blocks' matrices, their momentum in adam_.m()
  std::vector<Arena> arenas_;
  std::vector<uint32_t> x_, y_;
  std::vector<float> accumulated_;  // --grad-accum: the gradients summed so far this step
};

}  // namespace

void train_gpt(GptTrainJob& job) {
  use_threads(job.run.threads);  // OpenMP's pool; the kernels split large GEMMs across it
  check_outputs(job.run);
  GptTrainSettings& s = job.settings;
  RunOptions& run = job.run;

  // The model and its tokenizer: new, from --init (fine-tune) or from --resume.
  std::string tokenizer_bytes;
  std::optional<GptCheckpoint> checkpoint;
  int64_t step = 0, total = run.steps;
  if (!run.resume.empty() || !job.init.empty()) {
    const std::string& path = run.resume.empty() ? job.init : run.resume;
    checkpoint = gpt_load(path);
    tokenizer_bytes = checkpoint->tokenizer;
    job.config = checkpoint->config;
    if (!run.resume.empty()) {
      // The saved settings replace the command line's; one that the checkpoint predates
      // (--dropout, --grad-accum, --muon) takes its default, what the older run did, not the
      // value given on the command line (which gtrain says it ignores).
      s = GptTrainSettings{};
      SettingList settings = gpt_setting_list(s);
      step = checkpoint->step;
      total = resume_from(checkpoint->train, step, checkpoint->seed, settings, run);
    }
  } else {
    if (job.tokenizer.empty()) throw UsageError("give --tokenizer tok.model (or --init/--resume lm.st)");
    tokenizer_bytes = read_file(job.tokenizer, size_t{256} << 20);
  }
  Tokenizer tok = Tokenizer::from_bytes(tokenizer_bytes, job.tokenizer.empty() ? "tokenizer" : job.tokenizer);
  job.config.vocab = tok.vocab_size();
  if (s.decay_steps == 0) s.decay_steps = total;
  Gpt model(job.config);

  // Data: the input, split into training and validation ids (or --val).
  std::vector<uint32_t> data = read_ids(job.input, tok.vocab_size());
  std::string fingerprint = data_fingerprint(bytes_of(data));
  std::vector<uint32_t> train, val;
  if (!job.val.empty()) {
    train = std::move(data);
    val = read_ids(job.val, tok.vocab_size());
    fingerprint += "+" + data_fingerprint(bytes_of(val));
  } else {
    const size_t cut = data.size() - static_cast<size_t>(std::llround(static_cast<double>(data.size()) * s.val_fraction));
    val.assign(data.begin() + static_cast<std::ptrdiff_t>(cut), data.end());
    data.resize(cut);  // the training part stays where it is, not copied
    train = std::move(data);
  }
  if (checkpoint && checkpoint->train && !run.resume.empty() && checkpoint->train->data != fingerprint)
    throw Error(job.val.empty() ? job.input : job.input + " and " + job.val,
                fmt::format("not the data {} was trained on (resume on the same ids, and the same --val)", run.resume));
  const int64_t T = job.config.context, B = s.batch;
  if (train.size() <= static_cast<size_t>(T))
    throw Error(job.input, fmt::format("{} training tokens: need more than the context ({})", train.size(), T));
  const bool has_val = val.size() > static_cast<size_t>(T);
  if (!has_val && (!job.val.empty() || s.val_fraction > 0))
    warn(fmt::format("{} validation tokens, not more than the context ({}): no validation loss", val.size(), T));

  const size_t train_tokens = train.size(), val_tokens = val.size();
  GptTask task(job, model, tokenizer_bytes, std::move(train), std::move(val), total, fingerprint);
  if (checkpoint) {
    checkpoint->copy_weights(model);
    if (!run.resume.empty()) {
      task.rng().restore(checkpoint->train->rng);
      restore(task.adam(), checkpoint->train->optimizers[0]);
    }
    checkpoint.reset();  // its copies of the weights are in the model now
  } else {
    Rng init_rng(run.seed, /*stream=*/1);
    model.init(init_rng);
  }

  LoopOptions loop(run, step, total, static_cast<double>(s.grad_accum * B * T), "tok");
  const GptConfig& c = job.config;
  loop.banner = fmt::format("{} parameters ({} layers, {} heads, {} embd, context {}, vocab {}); {} train tokens, {} "
                            "validation tokens",
                            model.params().size(), c.layers, c.heads, c.embd, T, c.vocab, train_tokens, val_tokens);
  loop.batch = fmt::format("{}{} x {} tokens{}, {:.2f} GFLOP per step",
                           s.grad_accum > 1 ? fmt::format("{} batches of ", s.grad_accum) : "", B, T,
                           s.dropout > 0 ? fmt::format(", dropout {}", s.dropout) : "",
                           3 * c.flops_per_token() * static_cast<double>(s.grad_accum * B * T) / 1e9);
  loop.plot_title = fmt::format("gtrain: {} layers, {} heads, {} embd, context {}, vocab {}, batch {}", c.layers, c.heads,
                                c.embd, T, c.vocab, B);
  loop.plot_y_label = "loss (cross-entropy, nats per token)";
  loop.plan_at = s.warmup;  // the warmup does not depend on the total
  loop.occasional_every = has_val ? job.eval_every : 0;
  train_loop(task, loop);
}

TextEvaluation evaluate_text(Gpt& model, const std::vector<uint32_t>& ids, const std::vector<size_t>& token_bytes,
                             int64_t windows_per_batch) {
  const int64_t n = static_cast<int64_t>(ids.size()), T = std::min<int64_t>(model.config().context, n - 1);
  const int64_t V = model.config().vocab, stride = std::max<int64_t>(1, T / 2);
  TextEvaluation result{.context = T, .stride = stride};
  if (n < 2) return result;
  // Window starts: every stride, and one that ends at the text's end.
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + T < n; s += stride) starts.push_back(s);
  if (starts.empty() || starts.back() + T < n - 1) starts.push_back(n - 1 - T);
  Arena arena;
  std::vector<uint32_t> x;
  int64_t scored_to = 0;  // targets 1..scored_to are counted
  for (size_t first = 0; first < starts.size(); first += static_cast<size_t>(windows_per_batch)) {
    const size_t count = std::min(starts.size() - first, static_cast<size_t>(windows_per_batch));
    x.clear();
    for (size_t w = 0; w < count; ++w)
      x.insert(x.end(), ids.begin() + starts[first + w], ids.begin() + starts[first + w] + T);
    arena.reset();
    Graph g(arena, false);
    const Tensor logits = model.logits(g, x.data(), static_cast<int64_t>(count), T);
    for (size_t w = 0; w < count; ++w) {
      const int64_t s = starts[first + w];
      for (int64_t t = 0; t < T; ++t) {
        const int64_t target = s + t + 1;  // the token position t predicts
        if (target <= scored_to) continue;
        const float* row = logits.data + (static_cast<int64_t>(w) * T + t) * V;
        double maximum = row[0], sum = 0;
        for (int64_t v = 1; v < V; ++v) maximum = std::max<double>(maximum, row[v]);
        for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - maximum);
        const uint32_t id = ids[static_cast<size_t>(target)];
        result.nats += maximum + std::log(sum) - row[id];
        result.bytes += static_cast<int64_t>(token_bytes[static_cast<size_t>(target)]);
        ++result.tokens;
        scored_to = target;
      }
    }
  }
  return result;
}

void evaluate_gpt(const GptTrainJob& job) {
  use_threads(job.run.threads);
  GptCheckpoint checkpoint = gpt_load(job.evaluate, /*training_state=*/false);
  Tokenizer tok = Tokenizer::from_bytes(checkpoint.tokenizer, job.evaluate + ": tokenizer");
  Gpt model(checkpoint.config, std::move(checkpoint.weights));
  const std::string text = read_file(job.input);
  const std::vector<uint32_t> ids = tok.encode(text);
  if (ids.size() < 2) throw Error(job.input, fmt::format("{} token{}: need at least 2 to predict one",
                                                         ids.size(), ids.size() == 1 ? "" : "s"));
  if (job.windows > 0) {
    const int64_t T = model.config().context;
    if (ids.size() <= static_cast<size_t>(T))
      throw Error(job.input, fmt::format("{} tokens: --windows needs more than the context ({})", ids.size(), T));
    // 16 windows a batch, in shards as training takes them.
    constexpr int64_t B = 16;
    if (job.windows % B != 0)
      throw UsageError(fmt::format("--windows: {} is not a multiple of {} (the windows go {} at a time)", job.windows,
                                   B, B));
    model.params().set_shards(gpt_shards(B, T));
    std::vector<Arena> arenas(static_cast<size_t>(model.params().local_shards()));
    const Evaluation e = evaluate(model, ids, B, T, job.windows, job.run.seed, arenas);
    Output out("-");
    out.write(fmt::format("{}: {} random windows of {} tokens (seed {}) with {}\nloss {:.4f} nats/token, accuracy "
                          "{:.2f}%\n",
                          job.input, job.windows, T, job.run.seed, job.evaluate, e.loss, 100 * e.accuracy));
    out.commit();
    return;
  }
  std::vector<size_t> token_bytes(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) token_bytes[i] = tok.surface(ids[i]).size();
  const TextEvaluation e = evaluate_text(model, ids, token_bytes, 8);
  const double loss = e.nats / static_cast<double>(e.tokens);
  Output out("-");
  out.write(fmt::format("{}: {} tokens predicted ({} bytes) with {} (context {}, windows sliding by {})\n"
                        "loss {:.4f} nats/token, perplexity {:.3f}, {:.4f} bits/byte\n",
                        job.input, e.tokens, e.bytes, job.evaluate, e.context, e.stride, loss, std::exp(loss),
                        e.nats / std::log(2.0) / static_cast<double>(std::max<int64_t>(e.bytes, 1))));
  out.commit();
}

void add_gpt_train_options(CLI::App& app, GptTrainJob& job) {
  job.run.steps = 2000;
  app.add_option("ids", job.input, "Token ids, text or binary (gtok encode); - is stdin (default)");
  add_run_options(app, job.run, {.output = "lm.st", .plot = "Draw train and validation loss against step as a PNG"});
  auto* tokenizer = app.add_option("--tokenizer", job.tokenizer, "The tokenizer model the ids came from (gtok train)");
  auto* init = app.add_option("--init", job.init, "Start from this checkpoint's weights and tokenizer (fine-tune)");
  tokenizer->excludes(init)->excludes(app.get_option("--resume"));
  init->excludes(app.get_option("--resume"));
  app.add_option("--val", job.val, "Validation ids (default: the last --val-fraction of the input)");
  GptConfig& c = job.config;
  app.add_option("--layers", c.layers, "Transformer blocks")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--heads", c.heads, "Attention heads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--embd", c.embd, "Embedding width")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--context", c.context, "Context length in tokens")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  gpt_setting_list(job.settings).register_options(app);
  app.add_option("--eval-every", job.eval_every, "Steps between validation losses")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  // --evaluate: no training, so no checkpoint to write (-o is required only to train).
  app.get_option("--output")->required(false);
  auto* evaluate = app.add_option("--evaluate", job.evaluate,
                                  "Train nothing: print the loss, perplexity and bits per byte of the input, which is "
                                  "text, under this checkpoint");
  for (const char* other : {"--resume", "--init", "--tokenizer", "--output", "--val"})
    evaluate->excludes(app.get_option(other));
  app.add_option("--windows", job.windows,
                 "With --evaluate: the mean loss over N random windows of the context (a multiple of 16; "
                 "nanoGPT's estimate, drawn by --seed as training's validation windows are), not every token once")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->needs(evaluate);
}

void train_gpt_command(const CLI::App& app, GptTrainJob& job) {
  if (!job.evaluate.empty()) {
    evaluate_gpt(job);
    return;
  }
  if (job.run.output.empty()) throw UsageError("--output is required");
  const std::vector<std::string> shape = {"--layers", "--heads", "--embd", "--context"};
  finish_train_options(app, job.run, gpt_setting_list(job.settings), shape);
  if (!job.init.empty()) warn_ignored(app, shape, "--init keeps the checkpoint's model shape");
  train_gpt(job);
}

}  // namespace gen
