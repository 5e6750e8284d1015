// A tuning run: model + data + method -> planned memory, optimizer steps with progress and a
// JSONL loss curve, periodic validation, atomic checkpoints that resume bit-exactly, outputs.
//
// One optimizer step = grad_accum × batch sequences drawn in the seeded data order; each runs
// forward + backward on its own (memory for one sequence) and their gradients add, scaled by
// 1 / (unmasked tokens of the whole step), so the step's loss is the token mean over the step
// whatever the split into batch and accumulation.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/matmul.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/alt_planner.h"
#include "train/data.h"
#include "train/engine.h"
#include "train/exits.h"
#include "train/full_params.h"
#include "train/memory.h"
#include "train/optimizer.h"
#include "train/prefix_cache.h"

namespace edgellm {

// Lora: adapters on all (or --lora-layers) layers; Full: every weight; Alt: adaptive layer
// tuning (PAPER.md §2): each step trains one exit's window of adapters and its head.
enum class TuneMethod { Lora, Full, Alt };
TuneMethod tune_method_from_name(const std::string& name);

// Adaptive layer tuning (issue 9). Each optimizer step picks one exit (ExitPicker), runs the
// forward only to its depth d, and the backward only through layers [d - window, d) and that
// exit's head; adapters sit in every layer and each is trained when its layer is in the window
// of a picked exit.
struct AltOptions {
  int exits = 4;  // T: exits after layers ceil((i+1)·L/T)
  // Whether the user gave --exits / --prefix-cache-mb (the --mem-budget planner keeps what the
  // user fixed and chooses the rest; alt_planner.h).
  bool exits_set = false, prefix_cache_set = false;
  std::vector<int> exit_layers;  // explicit depths (overrides exits)
  ExitSchedule schedule = ExitSchedule::Random;
  std::vector<double> exit_weights;  // weighted schedule (empty: the depths)
  int window = 0;                    // m; 0 = ceil(L / T)
  // Cumulative by measurement (docs/alt.md): with every adapter active at inference it gives
  // far lower held-out perplexity at every exit than branch on edgellm-tiny/Shakespeare.
  ExitLoraMode lora_mode = ExitLoraMode::Cumulative;
  ExitHeadMode head_mode = ExitHeadMode::Shared;
  // Branch mode: memory for cached frozen-prefix hidden states (0 disables the cache), and their
  // encoding (train/prefix_cache.h: f32 exact, bf16 / int8 hold 2× / ~4× the sequences).
  int64_t prefix_cache_mb = 512;
  PrefixCacheDType prefix_cache_dtype = PrefixCacheDType::F32;
  // Non-empty: the cache is a file in this directory and prefix_cache_mb caps its disk bytes;
  // memory then holds one entry (train/prefix_cache.h).
  std::string prefix_cache_dir;
};

struct TuneOptions {
  TuneMethod method = TuneMethod::Lora;
  LoraConfig lora;
  int64_t steps = 100;
  int64_t seq = 256;  // tokens per sequence (the planned maximum)
  int batch = 1;
  int grad_accum = 1;
  float lr = 4e-4f;
  float min_lr = 0.f;  // floor of the linear/cosine decay
  LrSchedule schedule = LrSchedule::Constant;
  int64_t warmup = 0;
  AdamWConfig adamw;
  uint64_t seed = 0;
  int64_t val_every = 0;  // steps between validation losses (0: only at the end)
  int64_t val_max = 64;   // validation sequences evaluated (the first ones of the split)
  bool checkpoint_activations = false;
  // Partial checkpointing: the window's lowest K layers recomputed (EngineOptions). Alt with a
  // budget: the least the planner may choose.
  int recompute_layers = 0;
  int64_t head_rows = 128;  // logits computed this many rows at a time (EngineOptions)
  // bytes; 0 = unchecked. Alt: the planner chooses window, checkpointing, logit rows and exits
  // to fit it (alt_planner.h); other methods: a plan over it is refused before step 1.
  int64_t mem_budget = 0;
  std::string out;         // output directory ("" = write nothing)
  int64_t save_every = 0;  // steps between checkpoints (0: only at the end)
  bool resume = false;     // continue from out/checkpoint if present
  std::string base_model;  // recorded in adapter_config.json
  AltOptions alt;          // method Alt only
  // How the fp32 matmuls run (kernels/matmul.h): Bf16 = mixed precision, fp32 master weights.
  MatmulMath precision = MatmulMath::Fp32;
};

struct StepLog {
  int64_t step = 0;  // 1-based optimizer step just done
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;       // unmasked target tokens in the step
  double seconds = 0;       // this step
  double tokens_per_s = 0;  // input tokens processed per second in this step
  double elapsed = 0, eta = 0;
  size_t peak_rss = 0;
  double val_loss = -1;               // when validated after this step
  int exit = -1;                      // Alt: index of the exit this step trained
  int exit_depth = 0;                 // Alt: its depth
  std::vector<double> val_exit_loss;  // Alt, when validated: each exit's validation loss
};

// Counters of the branch-mode prefix cache.
struct PrefixCacheStats {
  int64_t hits = 0, misses = 0, entries = 0;
  size_t bytes = 0;
};

class Trainer {
 public:
  // Plans memory and checks it against the budget before allocating anything large; throws
  // with the plan printed if it does not fit.
  Trainer(const Model& base, const Dataset& data, TuneOptions o);
  ~Trainer();

  const MemoryPlan& plan() const { return plan_; }
  // Alt with --mem-budget: the planner's choice (null otherwise).
  const AltPlanChoice* alt_plan_choice() const { return alt_choice_.get(); }
  // What is allocated now, measured on the containers (TrainEngine::allocated, adapters, exit
  // heads, optimizer state, head gradients, the step's token buffers as planned, the prefix
  // cache's bytes so far): tests check it against plan().
  MemoryPlan allocated() const;
  // The options in force: the planner's choices applied (window, checkpointing, logit rows,
  // prefix cache).
  const TuneOptions& options() const { return o_; }
  // The chosen knobs and the planner's reasoning as JSON (run.json and tune --json).
  nlohmann::json plan_json() const;
  // Runs until opt.steps (or, for tests, `stop_after` steps have been done in this call).
  // Writes metrics/checkpoints/outputs under opt.out.
  void run(const std::function<void(const StepLog&)>& on_step = nullptr, int64_t stop_after = -1);
  // Validation loss at the model's head (Alt: at the deepest exit).
  double validation_loss();
  // Alt: every exit's validation loss, all adapters active (as at inference).
  std::vector<double> validation_exit_losses();
  ExitHeads* exit_heads() { return heads_.get(); }
  const PrefixCacheStats& prefix_cache_stats() const { return cache_stats_; }
  // Alt: exits trained by the steps done so far in this process, in order.
  const std::vector<int>& exit_sequence() const { return exit_seq_; }
  const TrainEngine& engine() const { return *engine_; }
  int64_t step() const { return step_; }
  LoraAdapters* lora() { return lora_.get(); }
  FullParams* full() { return full_.get(); }
  const Model& model() const;  // what the forward reads (the trainable copy for full)

  // What a checkpoint's state file holds (params, moments, exit heads): save writes these, load
  // requires exactly these.
  struct StateTensor {
    std::string name;
    DType dtype;
    uint8_t* data;  // in memory; nullptr: offloaded moments, reached through the section
    size_t bytes;
    AdamW::Section section = AdamW::kState;  // when data is nullptr
  };
  std::vector<StateTensor> state_tensors();
  void save_checkpoint();
  bool load_checkpoint();  // false if none
  void write_run_record();
  void save_outputs();

 private:
  const Model& base_;
  const Dataset& data_;
  TuneOptions o_;
  ScopedMatmulMath math_;  // set for the trainer's lifetime, before the engine plans its GEMMs
  std::unique_ptr<LoraAdapters> lora_;
  std::unique_ptr<FullParams> full_;
  std::unique_ptr<TrainEngine> engine_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<DataOrder> order_;
  Rng rng_;
  MemoryPlan plan_;
  size_t step_buffers_ = 0;
  std::unique_ptr<AltPlanChoice> alt_choice_;
  int64_t step_ = 0;
  double elapsed_ = 0;
  int l0_ = 0;  // lowest layer with adapters: the backward stops at its input

  // Alt
  double step_alt(const std::vector<const Example*>& batch, const std::vector<size_t>& idx,
                  float scale, int e);
  std::unique_ptr<ExitHeads> heads_;
  std::vector<float> head_grad_;  // parallel to heads_->params()
  ExitPicker picker_;
  int window_ = 0;
  std::vector<char> active_;  // per optimizer span: updated this step
  std::vector<int> exit_seq_;
  size_t n_lora_spans_ = 0;      // spans [0, n) are layers' adapters, then one per own exit
  std::vector<int> span_layer_;  // layer of each adapter span
  // Parameters [lo, hi) of lora->params() of each adapter span.
  std::vector<std::pair<size_t, size_t>> span_range_;
  // Points the adapter spans updated this step at the engine's gradients (a windowed engine
  // holds one window's).
  void bind_lora_grads();
  std::vector<int> exit_span_;                 // span of exit i, or -1
  std::unique_ptr<PrefixCache> prefix_cache_;  // branch mode with a cap
  PrefixCacheStats cache_stats_;
};

// Folds `a` into an fp32 copy of `base` and writes it as an HF directory (merged model).
void merge_adapter(const Model& base, const LoraAdapters& a, const std::string& out_dir);

}  // namespace edgellm
