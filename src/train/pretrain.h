// Pretraining from scratch (edgellm pretrain): a random LLaMA of any shape trained on plain text
// with the trainer of train/trainer.h (full-parameter AdamW), over packed windows of a
// memory-mapped token corpus (train/token_corpus.h).
//
// OUT receives: init/ (the random initial model, written once, so a resumed run starts from the
// same weights), checkpoint/ (atomic, exact resume), metrics.jsonl (one line per step), and at
// the end the trained model (config.json + model.safetensors, f32) and pretrain.json (every
// setting and the final figures).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace edgellm {

struct PretrainOptions {
  std::string shape;      // ModelConfig::parse_shape syntax
  std::string tokenizer;  // tokenizer file (its vocabulary must fit the shape's)
  std::vector<std::string> data, val_data;
  std::string out, cache;   // output directory; token-file cache directory
  int64_t tokens = 0;       // training tokens; steps = ceil(tokens / (seq·batch·accum))
  double val_frac = 0.005;  // held-out tail of the stream when val_data is empty
  float init_std = 0.02f;
  TuneOptions o;  // seq (0 = the shape's ctx), batch, accumulation, lr, schedule, seed, ...
};

struct PretrainReport {
  ModelConfig config;
  std::string token_file, val_token_file;
  int64_t corpus_tokens = 0, val_tokens = 0, steps = 0, tokens_per_step = 0;
  size_t train_windows = 0, val_windows = 0;
  bool reused_tokens = false;
  MemoryPlan plan;
  StepLog last;
};

// Validates the options, builds (or reuses) the token files, writes/loads OUT/init and runs
// until the planned steps (or `stop_after` steps in this call, for tests). `on_plan` is called
// once before the first step with the report filled so far.
PretrainReport pretrain(PretrainOptions p,
                        const std::function<void(const PretrainReport&)>& on_plan = nullptr,
                        const std::function<void(const StepLog&)>& on_step = nullptr,
                        int64_t stop_after = -1);

}  // namespace edgellm
