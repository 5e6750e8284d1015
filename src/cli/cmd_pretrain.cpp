// edgellm pretrain: a LLaMA model trained from random initialisation on plain text — the
// corpus tokenized once into a memory-mapped token file (train/token_corpus.h), packed windows
// that each start with BOS, full-parameter AdamW with warmup + cosine decay, clipping,
// accumulation, periodic validation on held-out text, atomic checkpoints with exact resume.
// The optimisation loop is the one `tune --method full` runs (train/trainer.h).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "eval/model_files.h"
#include "io/model_writer.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

namespace fs = std::filesystem;

namespace {

std::string default_cache_dir() {
  if (const char* e = std::getenv("EDGELLM_CACHE")) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/edgellm";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/edgellm";
  return ".edgellm-cache";
}

// The random initial model, written once into OUT/init (directory renamed into place, so a
// killed run never leaves a partial one); a resumed run reloads the same file.
std::string write_init(const ModelConfig& c, uint64_t seed, float stddev, const std::string& out) {
  const std::string dir = out + "/init", tmp = out + "/init.tmp";
  if (fs::exists(dir + "/config.json")) return dir;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  write_hf_dir(c, pretrain_init_source(seed, c.n_layers, stddev), tmp, DType::F32);
  fs::rename(tmp, dir, ec);
  if (ec) fail("[pretrain] cannot rename {} to {}: {}", tmp, dir, ec.message());
  return dir;
}

}  // namespace

void register_pretrain(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pretrain", "train a LLaMA model from random initialisation on plain text files");
  struct Args {
    std::string shape, tokenizer, out, cache = default_cache_dir(), schedule = "cosine";
    std::vector<std::string> data, val_data;
    int64_t tokens = 0;
    double val_frac = 0.005;
    float init_std = 0.02f, min_lr = -1.f;
    int threads = 0, log_every = 10;
    bool json = false;
    TuneOptions o;
  };
  auto a = std::make_shared<Args>();
  a->o.lr = 1e-3f;
  a->o.seq = 0;
  a->o.adamw.weight_decay = 0.1f;
  a->o.adamw.max_grad_norm = 1.f;
  a->o.val_max = 32;
  cmd->add_option("--shape", a->shape,
                  "a preset name or dim=..,layers=..,heads=..,kv_heads=..,ff=..,vocab=..,ctx=..[,"
                  "tied=1]")
      ->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model / tokenizer.json / tokenizer.bin")
      ->required();
  cmd->add_option("--data", a->data, "training text files (each one document)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--val-data", a->val_data,
                  "held-out text files (default: the last --val-frac of the training stream)")
      ->expected(1, -1);
  cmd->add_option("--val-frac", a->val_frac, "held-out tail of the stream without --val-data");
  cmd->add_option("--tokens", a->tokens, "training tokens (steps = tokens / (seq·batch·accum))")
      ->required();
  cmd->add_option("--out,-o", a->out, "output directory (model, checkpoint, metrics)")->required();
  cmd->add_option("--cache", a->cache, "directory of token files reused across runs");
  cmd->add_option("--seq", a->o.seq, "tokens per sequence (default: the shape's ctx)");
  cmd->add_option("--batch", a->o.batch, "sequences per micro-batch");
  cmd->add_option("--grad-accum", a->o.grad_accum, "micro-batches per optimizer step");
  cmd->add_option("--lr", a->o.lr, "peak learning rate");
  cmd->add_option("--min-lr", a->min_lr, "learning rate at the end of the decay (default lr/10)");
  cmd->add_option("--schedule", a->schedule, "cosine | linear | constant");
  cmd->add_option("--warmup", a->o.warmup, "linear warmup steps");
  cmd->add_option("--weight-decay", a->o.adamw.weight_decay, "AdamW decoupled weight decay");
  cmd->add_option("--clip", a->o.adamw.max_grad_norm, "max global gradient norm (0 = off)");
  cmd->add_option("--init-std", a->init_std, "stddev of the initial weights");
  cmd->add_option("--seed", a->o.seed, "seed of initialisation and data order");
  cmd->add_option("--val-every", a->o.val_every, "steps between validation losses");
  cmd->add_option("--val-max", a->o.val_max, "validation sequences (evenly spaced)");
  cmd->add_option("--save-every", a->o.save_every, "steps between checkpoints");
  cmd->add_flag("--resume", a->o.resume, "continue from OUT/checkpoint if present");
  cmd->add_option("--log-every", a->log_every, "steps between progress lines");
  cmd->add_option("--threads,-t", a->threads, "threads (default: OMP_NUM_THREADS or all cores)");
  cmd->add_flag("--json", a->json, "machine-readable JSON on stdout");
  cmd->callback([a] {
    set_num_threads(a->threads);
    TuneOptions o = a->o;
    o.method = TuneMethod::Full;
    o.schedule = lr_schedule_from_name(a->schedule);
    o.out = a->out;
    const ModelConfig shape = ModelConfig::parse_shape(a->shape);
    if (o.seq == 0) o.seq = shape.max_seq_len;
    if (o.seq < 2 || o.seq > shape.max_seq_len)
      fail("[pretrain] --seq {} outside [2, ctx={}]", o.seq, shape.max_seq_len);
    if (a->tokens <= 0) fail("[pretrain] --tokens {} must be positive", a->tokens);
    if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("[pretrain] --lr {} must be positive", o.lr);
    if (!(a->val_frac >= 0 && a->val_frac < 1))
      fail("[pretrain] --val-frac {} outside [0, 1)", a->val_frac);
    if (o.batch <= 0 || o.grad_accum <= 0)
      fail("[pretrain] --batch {} and --grad-accum {} must be positive", o.batch, o.grad_accum);
    o.min_lr = a->min_lr >= 0 ? a->min_lr : o.lr / 10;
    const int64_t per_step = o.seq * o.batch * o.grad_accum;
    o.steps = (a->tokens + per_step - 1) / per_step;

    const auto tok = load_tokenizer(a->tokenizer);
    if (tok->vocab_size() > shape.vocab_size)
      fail("[pretrain] tokenizer {} has {} pieces, more than vocab={} of --shape", a->tokenizer,
           tok->vocab_size(), shape.vocab_size);
    ModelConfig c = shape;
    c.bos_id = tok->bos_id();
    c.eos_id = tok->eos_id();

    bool reused = false;
    Dataset data;
    data.kind = "pretrain";
    auto corpus = TokenCorpus::build(a->data, *tok, a->tokenizer, a->cache, &reused);
    data.source = corpus->path();
    std::fprintf(stderr, "[pretrain] %s token file %s: %lld tokens in %zu documents\n",
                 reused ? "reusing" : "wrote", corpus->path().c_str(),
                 static_cast<long long>(corpus->size()), corpus->doc_starts().size());
    auto tw = std::make_shared<TokenWindows>();
    tw->corpus = corpus;
    tw->seq = o.seq;
    tw->bos = tok->bos_id();
    tw->end = corpus->size();
    auto vw = std::make_shared<TokenWindows>(*tw);
    if (!a->val_data.empty()) {
      auto vc = TokenCorpus::build(a->val_data, *tok, a->tokenizer, a->cache, &reused);
      std::fprintf(stderr, "[pretrain] held-out token file %s: %lld tokens\n", vc->path().c_str(),
                   static_cast<long long>(vc->size()));
      vw->corpus = vc;
      vw->begin = 0;
      vw->end = vc->size();
    } else {
      const int64_t cut =
          (static_cast<int64_t>(corpus->size() * (1 - a->val_frac)) / o.seq) * o.seq;
      tw->end = cut;
      vw->begin = cut;
    }
    const int64_t n_val_all = (vw->end - vw->begin) / o.seq;
    vw->stride = std::max<int64_t>(1, n_val_all / std::max<int64_t>(1, o.val_max));
    data.train_windows = tw;
    if (n_val_all > 0) data.val_windows = vw;
    if (tw->size() == 0)
      fail("[pretrain] {}: {} tokens make no window of --seq {}", corpus->path(), corpus->size(),
           o.seq);

    fs::create_directories(a->out);
    const std::string init = write_init(c, o.seed, a->init_std, a->out);
    o.base_model = init;
    auto m = Model::load(init, LoadOptions{});
    Trainer tr(*m, data, o);
    std::fprintf(stderr,
                 "[pretrain] %s, %.2f M parameters; %lld steps of %lld tokens (%zu windows, %zu "
                 "held out); memory plan:\n%s",
                 c.shape_spec().c_str(), c.n_params() / 1e6, static_cast<long long>(o.steps),
                 static_cast<long long>(per_step), tw->size(), data.n_val(),
                 tr.plan().table().c_str());
    StepLog last;
    tr.run([&](const StepLog& s) {
      last = s;
      if (!a->json && (s.step % a->log_every == 0 || s.step == o.steps || s.val_loss >= 0))
        print_step_line(s, o.steps);
    });
    copy_tokenizer_into(a->tokenizer, a->out);
    const nlohmann::json run = {{"shape", c.shape_spec()},
                                {"n_params", c.n_params()},
                                {"tokenizer", a->tokenizer},
                                {"data", a->data},
                                {"val_data", a->val_data},
                                {"token_file", corpus->path()},
                                {"corpus_tokens", corpus->size()},
                                {"tokens", tr.step() * per_step},
                                {"steps", tr.step()},
                                {"seq", o.seq},
                                {"batch", o.batch},
                                {"grad_accum", o.grad_accum},
                                {"lr", o.lr},
                                {"min_lr", o.min_lr},
                                {"warmup", o.warmup},
                                {"weight_decay", o.adamw.weight_decay},
                                {"clip", o.adamw.max_grad_norm},
                                {"init_std", a->init_std},
                                {"seed", o.seed},
                                {"loss", last.loss},
                                {"val_loss", last.val_loss},
                                {"tokens_per_s", last.tokens_per_s},
                                {"peak_rss_bytes", last.peak_rss}};
    write_file_atomic(a->out + "/pretrain.json", run.dump(2) + "\n");
    if (a->json) return print_json(run);
    std::fprintf(stderr, "[pretrain] wrote %s (loss %.4f, held-out %.4f)\n", a->out.c_str(),
                 last.loss, last.val_loss);
  });
}

}  // namespace edgellm::cli
