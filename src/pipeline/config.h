// The pipeline's configuration: one struct per stage section, every field with a default, so
// `edgellm pipeline` with no flag runs the embedded default job (presets/pipelines/default.json
// holds the same values; a test keeps the two equal). Read from JSON or TOML with the same
// section and field names; an unknown section or field is an error naming it.
//
// Strings may contain ${EDGELLM_DATA}, replaced by that environment variable or, when it is
// unset, ../shared/data (the tests' convention), so the paper-shaped presets run unchanged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgellm::pipeline {

struct ModelSection {
  std::string path = "models/edgellm-tiny";  // checkpoint (HF dir, .gguf, llama2.c .bin)
  std::string tokenizer;                     // "" = found beside the model
};

// The adaptation task: generated (synthetic) or an Alpaca-style file.
struct TaskSection {
  std::string kind = "synthetic";  // synthetic | alpaca
  std::string data;                // alpaca: .json / .jsonl records
  // synthetic: task families mixed uniformly (see synthetic_task.h)
  std::vector<std::string> families = {"copy", "reverse", "last", "add"};
  int64_t n_train = 2000, n_test = 100;  // alpaca: n_test records held out, the rest trains
  int min_words = 2, max_words = 4;
  uint64_t seed = 1;
};

// Calibration data for profiling/compression: data-free samples from the model (LLM-QAT) or a
// text file.
struct CalibrationSection {
  std::string source = "data-free";  // data-free | text
  std::string text;                  // source = text: the file
  int64_t n = 16, seq = 128;         // sequences × tokens (BOS included)
  double temperature = 1.0;
  uint64_t seed = 7;
};

struct CompressSection {
  // uniform | luc | luc-literal | official | random | budget | none (compress/layer_allocation.h)
  std::string policy = "luc";
  int bits = 4;                      // B (16 = no quantization)
  double sparsity = 0.5;             // P, mean over layers
  std::string quantizer = "gptq";    // rtn | gptq
  std::string pruner = "sparsegpt";  // none | magnitude | wanda | sparsegpt
  std::string scheme = "sym";        // sym | asym
  int group = 0;                     // 0 = per output channel
  bool relative = false;  // sensitivities relative to each layer's output scale (not the paper)
  // budget: one (bits, sparsity) per "layer" or per "linear" (profiles per-linear curves too)
  std::string granularity = "layer";
  double target_bpw = 0;  // budget: bits per decoder-linear weight (0 = luc's size)
};

struct TuneSection {
  std::string method = "alt";  // alt (adaptive layer tuning, PAPER.md §2) | lora | partial | full
  int64_t steps = 300;
  int64_t seq = 128;
  int batch = 1, grad_accum = 4;
  float lr = 2e-3f;
  std::string schedule = "constant";
  int64_t warmup = 0;
  int rank = 8;
  float alpha = 16.f, dropout = 0.f;
  std::string targets = "all";
  double val_frac = 0.05;
  // Validation scores every exit (a forward per exit over the held-out slice): every 100 steps it
  // costs the embedded job a few percent of its tuning time, every 50 about a third.
  int64_t val_every = 100, save_every = 25;
  std::vector<int> exits;  // alt: exit depths (1-based; empty = n_exits at the paper's spacing)
  int n_exits = 4;         // alt: T, exits after layers ceil((i+1)·L/T)
  int window = 0;          // alt: trained layers below each exit (0 = ceil(L / T))
  std::string exit_schedule = "random";  // alt: random | curriculum | round-robin | weighted
  std::string lora_mode = "cumulative";  // alt: cumulative | branch
  std::string head_mode = "shared";      // alt: shared | cloned
  int last = 3;                          // partial: the last K layers carry adapters
  uint64_t seed = 0;
};

struct EvaluateSection {
  int64_t task_limit = 0;   // held-out records scored (0 = all)
  int max_new_tokens = 24;  // greedy decoding budget per response
  std::string ppl_text;     // perplexity text file ("" = skip)
  int64_t ppl_ctx = 128, ppl_max_tokens = 16384;
  std::string mmlu_data;  // MMLU directory ("" = skip)
  int mmlu_shots = 5;
  int64_t mmlu_limit = 10;                 // questions per subject (0 = all)
  std::vector<std::string> mmlu_subjects;  // empty = all
};

struct PlanSection {
  std::string device = "edge-accel";  // preset name or JSON file
  int samples = 16;                   // sequences per optimizer step
  std::string overlap = "paper";
  int grid = 20;
  int vanilla_bits = 8;  // the baseline: vanilla LoRA on this many bits (the paper's 8)
};

struct PipelineConfig {
  std::string name = "default";
  std::string out = "runs/default";  // --out overrides
  int threads = 0;                   // 0 = OMP_NUM_THREADS or all cores
  ModelSection model;
  TaskSection task;
  CalibrationSection calibration;
  CompressSection compress;
  TuneSection tune;
  EvaluateSection evaluate;
  PlanSection plan;

  nlohmann::json to_json() const;
  // Fields absent from `j` keep their defaults; `source` names the file in errors.
  static PipelineConfig from_json(const nlohmann::json& j, const std::string& source);
};

// .json, or .toml (through toml++: the TOML document is converted to JSON first).
PipelineConfig load_config(const std::string& path);
// ${EDGELLM_DATA} expansion (see header comment).
std::string expand_vars(const std::string& s);

}  // namespace edgellm::pipeline
