#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "eval/model_files.h"
#include "train/trainer.h"
#include "util/error.h"

namespace edgellm::cli {

namespace {

// Layer indices beyond any model's (config.h kMaxLayers) are refused while parsing, before the
// model is known, so a range like 0-2000000000 cannot expand into billions of entries; the
// adapter checks the real count.
constexpr int kMaxLayerIndex = kMaxLayers - 1;

int parse_layer_index(const std::string& s, const std::string& all) {
  int v = 0;
  const char* e = s.data() + s.size();
  const auto r = std::from_chars(s.data(), e, v);
  if (s.empty() || r.ec != std::errc() || r.ptr != e || v < 0 || v > kMaxLayerIndex)
    fail(
        "[tune] --lora-layers '{}': '{}' is not a layer index in [0, {}] (expected a list like "
        "0,1,4-7)",
        all, s, kMaxLayerIndex);
  return v;
}

std::vector<int> parse_layers(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(parse_layer_index(item, s));
      continue;
    }
    const int lo = parse_layer_index(item.substr(0, dash), s);
    const int hi = parse_layer_index(item.substr(dash + 1), s);
    if (lo > hi) fail("[tune] --lora-layers '{}': range '{}' is empty", s, item);
    for (int l = lo; l <= hi; ++l) out.push_back(l);
  }
  // An empty list means "all layers" to the adapter, so a list that parses to nothing (",")
  // must not silently become that.
  if (!s.empty() && out.empty()) fail("[tune] --lora-layers '{}': no layers given", s);
  return out;
}

// Numeric flags CLI11 accepts as any float (including nan and inf): checked before anything runs.
void check_finite(const char* flag, double v, double lo, double hi, bool lo_open) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok)
    fail("[tune] {} {}: must be a finite number in {}{}, {}]", flag, v, lo_open ? "(" : "[", lo,
         hi);
}

}  // namespace

void register_tune(CLI::App& app) {
  auto* cmd = app.add_subcommand("tune", "fine-tune a model (LoRA or full) on text or Alpaca data");
  struct Args : ModelArgs {
    std::string data, method = "lora", targets = "q,k,v,o,gate,up,down", layers,
                      schedule = "constant", budget, precision = "fp32", optim_state = "fp32";
    double val_frac = 0.05;
    int log_every = 1;
    int last = 0;  // partial: last layers carrying adapters
    std::string exit_layers, exit_schedule = "random", lora_mode = "cumulative",
                             head_mode = "shared", prefix_cache_dtype = "f32";
    TuneOptions o;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--data", a->data, "plain text file, or Alpaca .json / .jsonl")->required();
  cmd->add_option("--method", a->method,
                  "lora | full | partial (LoRA on the last --last layers) | alt (adaptive layer "
                  "tuning through early exits)");
  cmd->add_option("--last", a->last, "partial: number of last layers carrying adapters");
  CLI::Option* exits_opt =
      cmd->add_option("--exits", a->o.alt.exits, "alt: exits T, after layers ceil((i+1)L/T)");
  cmd->add_option("--exit-layers", a->exit_layers, "alt: exit depths, e.g. 3,6,9,12");
  cmd->add_option("--exit-schedule", a->exit_schedule,
                  "alt: random | curriculum | round-robin | weighted");
  cmd->add_option("--window", a->o.alt.window, "alt: layers back-propagated per step (0: L/T)");
  cmd->add_option("--lora-mode", a->lora_mode,
                  "alt: cumulative (default: all adapters active, one stream) | branch (the frozen "
                  "base below the window, as the official code)");
  cmd->add_option("--head-mode", a->head_mode,
                  "alt: shared (frozen head, per-exit norm gain) | cloned (full head per exit)");
  CLI::Option* cache_opt =
      cmd->add_option("--prefix-cache-mb", a->o.alt.prefix_cache_mb,
                      "alt, branch mode: MiB of cached frozen-prefix hidden states (0: off)");
  cmd->add_option("--prefix-cache-dtype", a->prefix_cache_dtype,
                  "alt, branch mode: f32 (exact) | bf16 | int8 (per-token scale): 2x / ~4x the "
                  "sequences in the same MiB, the window trained on the rounded input");
  cmd->add_option("--prefix-cache-dir", a->o.alt.prefix_cache_dir,
                  "alt, branch mode: keep the cache in a file in this directory (then "
                  "--prefix-cache-mb caps disk bytes, and memory holds one entry)");
  cmd->add_option("--out", a->o.out, "output directory (adapter or model, metrics, checkpoint)")
      ->required();
  cmd->add_option("--steps", a->o.steps, "optimizer steps");
  cmd->add_option("--seq", a->o.seq, "tokens per sequence");
  cmd->add_option("--batch", a->o.batch, "sequences per micro-batch");
  cmd->add_option("--grad-accum", a->o.grad_accum, "micro-batches per optimizer step");
  cmd->add_option("--lr", a->o.lr, "peak learning rate");
  cmd->add_option("--schedule", a->schedule, "constant | linear | cosine");
  cmd->add_option("--warmup", a->o.warmup, "linear warmup steps");
  cmd->add_option("--weight-decay", a->o.adamw.weight_decay, "AdamW decoupled weight decay");
  cmd->add_option("--clip", a->o.adamw.max_grad_norm, "max global gradient norm (0 = off)");
  cmd->add_option("--precision", a->precision,
                  "fp32 | bf16: matmuls against fp32 weights (full fine-tuning, an fp32 base) in "
                  "bf16 with fp32 accumulation");
  cmd->add_option("--optim-state", a->optim_state,
                  "fp32 | 8bit: AdamW moments in fp32 or 8-bit block-wise");
  cmd->add_option("--optim-offload", a->o.adamw.offload_dir,
                  "keep the AdamW moments in a file in this directory, each step reading the ones "
                  "it updates through a small buffer (alt: one window's per step)");
  cmd->add_option("--rank,-r", a->o.lora.rank, "LoRA rank");
  cmd->add_option("--alpha", a->o.lora.alpha, "LoRA alpha (scale = alpha / rank)");
  cmd->add_option("--dropout", a->o.lora.dropout, "LoRA dropout");
  cmd->add_option("--targets", a->targets, "LoRA target modules: q,k,v,o,gate,up,down | all");
  cmd->add_option("--lora-layers", a->layers, "layers carrying adapters, e.g. 0-3,7 (default all)");
  cmd->add_option("--seed", a->o.seed, "seed of initialisation, data order and dropout");
  cmd->add_option("--val-frac", a->val_frac, "held-out fraction of the data");
  cmd->add_option("--val-every", a->o.val_every, "steps between validation losses");
  cmd->add_option("--save-every", a->o.save_every, "steps between checkpoints");
  cmd->add_flag("--resume", a->o.resume, "continue from OUT/checkpoint if present");
  cmd->add_flag("--checkpoint-activations", a->o.checkpoint_activations,
                "keep only layer inputs; recompute every layer of the window but the top one "
                "in the backward");
  cmd->add_option("--recompute-layers", a->o.recompute_layers,
                  "partial checkpointing: the backward recomputes the lowest K layers of the "
                  "window (one layer's activations saved each, for one more layer forward)");
  cmd->add_option("--mem-budget", a->budget,
                  "memory budget (e.g. 4G): alt picks window, checkpointing, logit rows and exits "
                  "to fit it; every method refuses to start if the plan exceeds it");
  cmd->add_option("--log-every", a->log_every, "steps between progress lines");
  cmd->callback([a, exits_opt, cache_opt] {
    apply_threads(*a);
    TuneOptions o = a->o;
    check_finite("--lr", o.lr, 0, 10, true);
    if (!(a->val_frac >= 0 && a->val_frac < 1))
      fail("[tune] --val-frac {}: must be in [0, 1)", a->val_frac);
    check_finite("--weight-decay", o.adamw.weight_decay, 0, 1e6, false);
    check_finite("--clip", o.adamw.max_grad_norm, 0, 1e30, false);
    check_finite("--alpha", o.lora.alpha, -1e30, 1e30, false);
    if (!(o.lora.dropout >= 0 && o.lora.dropout < 1))
      fail("[tune] --dropout {}: must be in [0, 1)", o.lora.dropout);
    for (auto [flag, v] : {std::pair{"--steps", o.steps}, std::pair{"--seq", o.seq},
                           std::pair{"--log-every", int64_t{a->log_every}},
                           std::pair{"--rank", int64_t{o.lora.rank}}})
      if (v <= 0) fail("[tune] {} {}: must be positive", flag, v);
    for (auto [flag, v] : {std::pair{"--warmup", o.warmup}, std::pair{"--val-every", o.val_every},
                           std::pair{"--save-every", o.save_every}})
      if (v < 0) fail("[tune] {} {}: must not be negative", flag, v);
    // partial = LoRA on the last K layers only (the backward stops below them).
    const bool partial = a->method == "partial";
    if (partial && !a->layers.empty())
      fail("[tune] --method partial takes --last K, not --lora-layers '{}'", a->layers);
    if (!partial && a->last != 0) fail("[tune] --last {} needs --method partial", a->last);
    o.method = tune_method_from_name(partial ? "lora" : a->method);
    o.schedule = lr_schedule_from_name(a->schedule);
    o.precision = matmul_math_from_name(a->precision);
    o.adamw.state = optim_state_from_name(a->optim_state);
    o.lora.targets = lora_targets_from_list(a->targets, "--targets");
    o.lora.layers = parse_layers(a->layers);
    const bool alt = a->method == "alt";
    if (a->o.recompute_layers < 0)
      fail("[tune] --recompute-layers {}: must not be negative", a->o.recompute_layers);
    if (!alt && (a->exit_layers.size() || a->o.alt.window != 0))
      fail("[tune] --exit-layers and --window need --method alt");
    if (alt) {
      if (o.alt.exits < 1 || o.alt.exits > kMaxLayers)
        fail("[tune] --exits {}: must be within 1..{}", o.alt.exits, kMaxLayers);
      if (o.alt.window < 0) fail("[tune] --window {}: must not be negative", o.alt.window);
      if (o.alt.prefix_cache_mb < 0)
        fail("[tune] --prefix-cache-mb {}: must not be negative", o.alt.prefix_cache_mb);
      o.alt.schedule = parse_exit_schedule(a->exit_schedule);
      o.alt.lora_mode = exit_lora_mode_from_name(a->lora_mode);
      o.alt.head_mode = exit_head_mode_from_name(a->head_mode);
      o.alt.prefix_cache_dtype = prefix_cache_dtype_from_name(a->prefix_cache_dtype);
      o.alt.exits_set = exits_opt->count() > 0;
      o.alt.prefix_cache_set = cache_opt->count() > 0;
      if (const std::string& dir = o.alt.prefix_cache_dir; !dir.empty()) {
        if (o.alt.lora_mode != ExitLoraMode::Branch)
          fail("[tune] --prefix-cache-dir needs --lora-mode branch (only branch mode caches)");
        if (!std::filesystem::is_directory(dir))
          fail("[tune] --prefix-cache-dir '{}': not a directory", dir);
      }
    } else if (!o.alt.prefix_cache_dir.empty()) {
      fail("[tune] --prefix-cache-dir needs --method alt");
    }
    if (const std::string& dir = o.adamw.offload_dir;
        !dir.empty() && !std::filesystem::is_directory(dir))
      fail("[tune] --optim-offload '{}': not a directory", dir);
    if (!a->budget.empty()) o.mem_budget = parse_bytes(a->budget, "--mem-budget");
    o.base_model = a->model;
    auto m = load_model(*a);
    if (alt && !a->exit_layers.empty())
      o.alt.exit_layers = parse_exit_depths(a->exit_layers, m->config().n_layers);
    if (partial) {
      const int L = m->config().n_layers;
      if (a->last < 1 || a->last > L)
        fail("[tune] --last {} must be within 1..{} (the model's layers)", a->last, L);
      o.lora.layers.clear();
      for (int l = L - a->last; l < L; ++l) o.lora.layers.push_back(l);
    }
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    const Dataset data = load_dataset(a->data, *tok, o.seq, a->val_frac, o.seed);
    // Resident before the trainer exists: what the run adds is measured from here (docs/alt.md).
    const RssMark mark = start_rss_measurement();
    Trainer tr(*m, data, o);
    const MemoryPlan& p = tr.plan();
    std::fprintf(stderr,
                 "[tune] %s on %s: %zu train / %zu val sequences (%s, %lld truncated), memory "
                 "plan:\n%s",
                 a->method.c_str(), a->data.c_str(), data.train.size(), data.val.size(),
                 data.kind.c_str(), static_cast<long long>(data.truncated), p.table().c_str());
    const TuneOptions& in_force = tr.options();
    if (const AltPlanChoice* ch = tr.alt_plan_choice())
      std::fprintf(stderr,
                   "[tune] --mem-budget %.1f MiB: %s\n[tune]   why: %s\n[tune]   batch %d x "
                   "accumulation %d: one sequence per forward/backward, the peak does not depend "
                   "on them\n",
                   o.mem_budget / 1048576.0, ch->knobs.describe().c_str(), ch->reason.c_str(),
                   o.batch, o.grad_accum);
    else if (alt)
      std::fprintf(stderr,
                   "[tune] alt: %scheckpointing (window layers recomputed: %d), logit rows %lld\n",
                   in_force.checkpoint_activations ? ""
                   : in_force.recompute_layers > 0 ? "partial "
                                                   : "no ",
                   tr.engine().recompute_layers(), static_cast<long long>(in_force.head_rows));
    StepLog last;
    size_t step_hwm = 0;  // peak RSS up to the last step (before the final save)
    tr.run([&](const StepLog& s) {
      last = s;
      step_hwm = hwm_rss_bytes();
      if (a->json) return;
      if (s.step % a->log_every == 0 || s.step == o.steps || s.val_loss >= 0)
        print_step_line(s, o.steps);
    });
    // A fully fine-tuned model is an HF directory: keep its tokenizer with it.
    if (a->method == "full")
      copy_tokenizer_into(
          a->tokenizer.empty() ? find_tokenizer_file(a->model, m->checkpoint()) : a->tokenizer,
          o.out);
    nlohmann::json alt_json;
    if (ExitHeads* h = tr.exit_heads()) {
      const PrefixCacheStats& cs = tr.prefix_cache_stats();
      alt_json = {{"exit_depths", h->config().depths},
                  {"window", h->config().window},
                  {"head_mode", exit_head_mode_name(h->config().head_mode)},
                  {"lora_mode", exit_lora_mode_name(h->config().lora_mode)},
                  {"schedule", h->config().schedule},
                  {"val_exit_loss", last.val_exit_loss},
                  {"prefix_cache",
                   {{"dtype", prefix_cache_dtype_name(tr.options().alt.prefix_cache_dtype)},
                    {"storage", tr.options().alt.prefix_cache_dir.empty() ? "memory" : "disk"},
                    {"hits", cs.hits},
                    {"misses", cs.misses},
                    {"entries", cs.entries},
                    {"bytes", cs.bytes}}}};
      if (!a->json) {
        std::fprintf(
            stderr, "[tune] alt: exits at [%s], window %d; prefix cache %lld hits, %lld misses\n",
            fmt::format("{}", fmt::join(h->config().depths, ",")).c_str(), h->config().window,
            static_cast<long long>(cs.hits), static_cast<long long>(cs.misses));
        for (size_t i = 0; i < last.val_exit_loss.size(); ++i)
          std::fprintf(stderr, "[tune] exit %zu (depth %d): val loss %.4f\n", i, h->depth(int(i)),
                       last.val_exit_loss[i]);
      }
    }
    if (a->json)
      print_json({{"out", o.out},
                  {"alt", alt_json},
                  {"method", a->method},
                  {"steps", tr.step()},
                  {"loss", last.loss},
                  {"val_loss", last.val_loss},
                  {"tokens_per_s", last.tokens_per_s},
                  {"peak_rss_bytes", last.peak_rss},
                  {"rss_before_trainer_bytes", mark.rss},
                  {"peak_rss_steps_bytes", mark.reset ? step_hwm : 0},
                  {"memory_plan", p.to_json()},
                  {"memory", tr.plan_json()}});
    else {
      if (mark.reset && step_hwm > 0)
        std::fprintf(stderr,
                     "[tune] peak RSS over the steps %.1f MiB: %.1f MiB above the %.1f MiB "
                     "resident before the trainer (plan %.1f MiB, of which weights %.1f MiB were "
                     "loaded before)\n",
                     step_hwm / 1048576.0, (double(step_hwm) - double(mark.rss)) / 1048576.0,
                     mark.rss / 1048576.0, p.total() / 1048576.0,
                     p[MemCategory::Weights] / 1048576.0);
      std::fprintf(stderr, "[tune] wrote %s\n", o.out.c_str());
    }
  });
}

}  // namespace edgellm::cli
