// edgellm pretrain: a LLaMA model trained from random initialisation on plain text
// (train/pretrain.h). The CLI maps flags to PretrainOptions and prints progress.
#include <fmt/format.h>

#include <cstdlib>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "eval/model_files.h"
#include "train/pretrain.h"

namespace edgellm::cli {

namespace {
std::string default_cache_dir() {
  if (const char* e = std::getenv("EDGELLM_CACHE")) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/edgellm";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/edgellm";
  return ".edgellm-cache";
}
}  // namespace

void register_pretrain(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pretrain", "train a LLaMA model from random initialisation on plain text files");
  struct Args {
    PretrainOptions p;
    std::string schedule = "cosine";
    std::string precision = "fp32", optim_state = "fp32";
    float min_lr = -1.f;
    int threads = 0, log_every = 10;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  PretrainOptions& p = a->p;
  p.cache = default_cache_dir();
  p.o.lr = 1e-3f;
  p.o.seq = 0;
  p.o.adamw.weight_decay = 0.1f;
  p.o.adamw.max_grad_norm = 1.f;
  p.o.val_max = 32;
  cmd->add_option("--shape", p.shape,
                  "a preset name or dim=..,layers=..,heads=..,kv_heads=..,ff=..,vocab=..,ctx=..[,"
                  "tied=1]")
      ->required();
  cmd->add_option("--tokenizer", p.tokenizer, "tokenizer.model / tokenizer.json / tokenizer.bin")
      ->required();
  cmd->add_option("--data", p.data, "training text files (each one document)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--val-data", p.val_data,
                  "held-out text files (default: the last --val-frac of the training stream)")
      ->expected(1, -1);
  cmd->add_option("--val-frac", p.val_frac, "held-out tail of the stream without --val-data");
  cmd->add_option("--tokens", p.tokens, "training tokens (steps = tokens / (seq·batch·accum))")
      ->required();
  cmd->add_option("--out,-o", p.out, "output directory (model, checkpoint, metrics)")->required();
  cmd->add_option("--cache", p.cache, "directory of token files reused across runs");
  cmd->add_option("--seq", p.o.seq, "tokens per sequence (default: the shape's ctx)");
  cmd->add_option("--batch", p.o.batch, "sequences per micro-batch");
  cmd->add_option("--grad-accum", p.o.grad_accum, "micro-batches per optimizer step");
  cmd->add_option("--lr", p.o.lr, "peak learning rate");
  cmd->add_option("--min-lr", a->min_lr, "learning rate at the end of the decay (default lr/10)");
  cmd->add_option("--schedule", a->schedule, "cosine | linear | constant");
  cmd->add_option("--warmup", p.o.warmup, "linear warmup steps");
  cmd->add_option("--weight-decay", p.o.adamw.weight_decay, "AdamW decoupled weight decay");
  cmd->add_option("--clip", p.o.adamw.max_grad_norm, "max global gradient norm (0 = off)");
  cmd->add_option("--precision", a->precision,
                  "fp32 | bf16: matmuls in bf16 with fp32 accumulation and fp32 master weights "
                  "(about twice the GEMM rate on CPUs with AVX512_BF16)");
  cmd->add_option("--optim-state", a->optim_state,
                  "fp32 | 8bit: AdamW moments in fp32 (8 bytes per parameter) or 8-bit block-wise "
                  "(2 bytes + scales)");
  cmd->add_option("--init-std", p.init_std, "stddev of the initial weights");
  cmd->add_option("--seed", p.o.seed, "seed of initialisation and data order");
  cmd->add_option("--val-every", p.o.val_every, "steps between validation losses");
  cmd->add_option("--val-max", p.o.val_max, "validation sequences (evenly spaced)");
  cmd->add_option("--save-every", p.o.save_every, "steps between checkpoints");
  cmd->add_flag("--resume", p.o.resume, "continue from OUT/checkpoint if present");
  cmd->add_option("--log-every", a->log_every, "steps between progress lines");
  cmd->add_option("--threads,-t", a->threads, "threads (default: OMP_NUM_THREADS or all cores)");
  cmd->add_flag("--json", a->json, "machine-readable JSON on stdout");
  cmd->callback([a] {
    set_num_threads(a->threads);
    PretrainOptions p = a->p;
    p.o.schedule = lr_schedule_from_name(a->schedule);
    p.o.precision = matmul_math_from_name(a->precision);
    p.o.adamw.state = optim_state_from_name(a->optim_state);
    p.o.min_lr = a->min_lr >= 0 ? a->min_lr : p.o.lr / 10;
    int64_t steps = 0;
    const PretrainReport r = pretrain(
        p,
        [&](const PretrainReport& r) {
          steps = r.steps;
          std::fprintf(stderr,
                       "[pretrain] %s token file %s: %lld tokens; held out %lld tokens\n"
                       "[pretrain] %s, %.2f M parameters; %lld steps of %lld tokens (%zu "
                       "windows, %zu held out); memory plan:\n%s",
                       r.reused_tokens ? "reusing" : "wrote", r.token_file.c_str(),
                       static_cast<long long>(r.corpus_tokens),
                       static_cast<long long>(r.val_tokens), r.config.shape_spec().c_str(),
                       r.config.n_params() / 1e6, static_cast<long long>(r.steps),
                       static_cast<long long>(r.tokens_per_step), r.train_windows, r.val_windows,
                       r.plan.table().c_str());
        },
        [&](const StepLog& s) {
          if (!a->json && (s.step % a->log_every == 0 || s.val_loss >= 0))
            print_step_line(s, steps);
        });
    copy_tokenizer_into(p.tokenizer, p.out);
    const nlohmann::json j = {{"out", p.out},
                              {"steps", r.steps},
                              {"loss", r.last.loss},
                              {"val_loss", r.last.val_loss},
                              {"tokens_per_s", r.last.tokens_per_s},
                              {"peak_rss_bytes", r.last.peak_rss},
                              {"memory_plan", r.plan.to_json()}};
    if (a->json) return print_json(j);
    std::fprintf(stderr, "[pretrain] wrote %s (loss %.4f, held-out %.4f)\n", p.out.c_str(),
                 r.last.loss, r.last.val_loss);
  });
}

}  // namespace edgellm::cli
