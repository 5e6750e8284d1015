#include "train/pretrain.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/model_writer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace fs = std::filesystem;

namespace {

// The random initial model, written once into OUT/init (the directory is renamed into place, so
// a killed run never leaves a partial one); a resumed run reloads the same file.
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

PretrainReport pretrain(PretrainOptions p,
                        const std::function<void(const PretrainReport&)>& on_plan,
                        const std::function<void(const StepLog&)>& on_step, int64_t stop_after) {
  TuneOptions& o = p.o;
  o.method = TuneMethod::Full;
  o.out = p.out;
  if (p.out.empty()) fail("[pretrain] --out is required");
  if (p.cache.empty()) p.cache = p.out + "/tokens";
  PretrainReport r;
  const ModelConfig shape = ModelConfig::parse_shape(p.shape);
  if (o.seq == 0) o.seq = shape.max_seq_len;
  if (o.seq < 2 || o.seq > shape.max_seq_len)
    fail("[pretrain] --seq {} outside [2, ctx={}]", o.seq, shape.max_seq_len);
  if (p.tokens <= 0) fail("[pretrain] --tokens {} must be positive", p.tokens);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("[pretrain] --lr {} must be positive", o.lr);
  if (!(o.min_lr >= 0) || !(o.min_lr <= o.lr))
    fail("[pretrain] --min-lr {} outside [0, lr={}]", o.min_lr, o.lr);
  if (!(p.val_frac >= 0 && p.val_frac < 1))
    fail("[pretrain] --val-frac {} outside [0, 1)", p.val_frac);
  if (!(p.init_std > 0) || !std::isfinite(p.init_std))
    fail("[pretrain] --init-std {} must be positive", p.init_std);
  if (o.batch <= 0 || o.grad_accum <= 0)
    fail("[pretrain] --batch {} and --grad-accum {} must be positive", o.batch, o.grad_accum);
  r.tokens_per_step = o.seq * o.batch * o.grad_accum;
  o.steps = (p.tokens + r.tokens_per_step - 1) / r.tokens_per_step;

  const auto tok = load_tokenizer(p.tokenizer);
  if (tok->vocab_size() > shape.vocab_size)
    fail("[pretrain] tokenizer {} has {} pieces, more than vocab={} of --shape", p.tokenizer,
         tok->vocab_size(), shape.vocab_size);
  r.config = shape;
  r.config.bos_id = tok->bos_id();
  r.config.eos_id = tok->eos_id();

  Dataset data;
  data.kind = "pretrain";
  auto corpus = TokenCorpus::build(p.data, *tok, p.tokenizer, p.cache, &r.reused_tokens);
  data.source = corpus->path();
  r.token_file = corpus->path();
  r.corpus_tokens = corpus->size();
  auto tw = std::make_shared<TokenWindows>();
  tw->corpus = corpus;
  tw->seq = o.seq;
  tw->bos = tok->bos_id();
  tw->end = corpus->size();
  auto vw = std::make_shared<TokenWindows>(*tw);
  if (!p.val_data.empty()) {
    auto vc = TokenCorpus::build(p.val_data, *tok, p.tokenizer, p.cache);
    r.val_token_file = vc->path();
    vw->corpus = vc;
    vw->begin = 0;
    vw->end = vc->size();
  } else {
    // The held-out tail starts at a window boundary of the training stream.
    const auto cut = static_cast<int64_t>(static_cast<double>(corpus->size()) * (1 - p.val_frac));
    tw->end = cut / o.seq * o.seq;
    vw->begin = tw->end;
  }
  r.val_tokens = vw->end - vw->begin;
  // Validation reads o.val_max windows spread evenly over the held-out text.
  const int64_t n_val_all = r.val_tokens / o.seq;
  vw->stride = std::max<int64_t>(1, n_val_all / std::max<int64_t>(1, o.val_max));
  data.train_windows = tw;
  if (n_val_all > 0) data.val_windows = vw;
  r.train_windows = tw->size();
  r.val_windows = data.n_val();
  if (r.train_windows == 0)
    fail("[pretrain] {}: {} training tokens make no window of --seq {}", corpus->path(),
         tw->end - tw->begin, o.seq);

  fs::create_directories(p.out);
  o.base_model = write_init(r.config, o.seed, p.init_std, p.out);
  // Mapped, not copied: the trainer's fp32 copy (FullParams) is the only one kept resident, so
  // a step holds one set of weights, not two (134M: 512 MiB less peak RSS).
  LoadOptions lo;
  lo.copy_weights = false;
  auto m = Model::load(o.base_model, lo);
  Trainer tr(*m, data, o);
  r.plan = tr.plan();
  r.steps = o.steps;
  if (on_plan) on_plan(r);
  tr.run(
      [&](const StepLog& s) {
        r.last = s;
        if (on_step) on_step(s);
      },
      stop_after);
  if (tr.step() == o.steps) {
    const nlohmann::json run = {{"shape", r.config.shape_spec()},
                                {"n_params", r.config.n_params()},
                                {"tokenizer", p.tokenizer},
                                {"data", p.data},
                                {"val_data", p.val_data},
                                {"token_file", r.token_file},
                                {"corpus_tokens", r.corpus_tokens},
                                {"val_tokens", r.val_tokens},
                                {"tokens", o.steps * r.tokens_per_step},
                                {"steps", o.steps},
                                {"seq", o.seq},
                                {"batch", o.batch},
                                {"grad_accum", o.grad_accum},
                                {"lr", o.lr},
                                {"min_lr", o.min_lr},
                                {"schedule", lr_schedule_name(o.schedule)},
                                {"warmup", o.warmup},
                                {"weight_decay", o.adamw.weight_decay},
                                {"clip", o.adamw.max_grad_norm},
                                {"precision", matmul_math_name(o.precision)},
                                {"optim_state", optim_state_name(o.adamw.state)},
                                {"init_std", p.init_std},
                                {"seed", o.seed},
                                {"loss", r.last.loss},
                                {"val_loss", r.last.val_loss},
                                {"elapsed_s", r.last.elapsed},
                                {"peak_rss_bytes", r.last.peak_rss}};
    write_file_atomic(p.out + "/pretrain.json", run.dump(2) + "\n");
  }
  return r;
}

}  // namespace edgellm
