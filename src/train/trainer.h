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

#include "model/lora.h"
#include "model/model.h"
#include "train/data.h"
#include "train/engine.h"
#include "train/full_params.h"
#include "train/memory.h"
#include "train/optimizer.h"

namespace edgellm {

enum class TuneMethod { Lora, Full };
TuneMethod tune_method_from_name(const std::string& name);

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
  int64_t mem_budget = 0;  // bytes; 0 = unchecked
  std::string out;         // output directory ("" = write nothing)
  int64_t save_every = 0;  // steps between checkpoints (0: only at the end)
  bool resume = false;     // continue from out/checkpoint if present
  std::string base_model;  // recorded in adapter_config.json
};

struct StepLog {
  int64_t step = 0;  // 1-based optimizer step just done
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;       // unmasked target tokens in the step
  double seconds = 0;       // this step
  double tokens_per_s = 0;  // input tokens processed per second in this step
  double elapsed = 0, eta = 0;
  size_t peak_rss = 0;
  double val_loss = -1;  // when validated after this step
};

class Trainer {
 public:
  // Plans memory and checks it against the budget before allocating anything large; throws
  // with the plan printed if it does not fit.
  Trainer(const Model& base, const Dataset& data, TuneOptions o);
  ~Trainer();

  const MemoryPlan& plan() const { return plan_; }
  // Runs until opt.steps (or, for tests, `stop_after` steps have been done in this call).
  // Writes metrics/checkpoints/outputs under opt.out.
  void run(const std::function<void(const StepLog&)>& on_step = nullptr, int64_t stop_after = -1);
  double validation_loss();
  int64_t step() const { return step_; }
  LoraAdapters* lora() { return lora_.get(); }
  FullParams* full() { return full_.get(); }
  const Model& model() const;  // what the forward reads (the trainable copy for full)

  void save_checkpoint();
  bool load_checkpoint();  // false if none
  void save_outputs();

 private:
  const Model& base_;
  const Dataset& data_;
  TuneOptions o_;
  std::unique_ptr<LoraAdapters> lora_;
  std::unique_ptr<FullParams> full_;
  std::unique_ptr<TrainEngine> engine_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<DataOrder> order_;
  Rng rng_;
  MemoryPlan plan_;
  int64_t step_ = 0;
  double elapsed_ = 0;
  int l0_ = 0;  // lowest layer with adapters: the backward stops at its input
};

// Folds `a` into an fp32 copy of `base` and writes it as an HF directory (merged model).
void merge_adapter(const Model& base, const LoraAdapters& a, const std::string& out_dir);

}  // namespace edgellm
