// The six stages (one file each, stage_<name>.cpp) and what they share. Each stage reads only
// its config section(s), the files named by its `inputs`, and its upstream stages' outputs, and
// writes only into its own directory. What each writes (the contract the later stages and the
// report read):
//   profile/   calibration.json  {source, n, seq, seed, tokens: [[...]], sample_text}
//              profile.json      {calibration: {...}, sensitivity: null | {s_quant: [L],
//                                 s_prune: [L], bits, sparsity_levels}, not_run: [...]}
//   compress/  allocation.json   {policy, policy_requested, compressed, bits: [L],
//                                 sparsity: [L], layers: [{bytes, weight_mse, ...}],
//                                 packed_bytes, dense_bytes, notes: [...], not_run: [...]}
//              model/            the compressed model (absent when nothing was compressed)
//   tune/      adapter_model.safetensors, adapter_config.json, metrics.jsonl, checkpoint/,
//              task/train.jsonl, task/test.jsonl,
//              tune.json         {method, steps, loss, val_loss, peak_rss_bytes,
//                                 memory: {vanilla_lora: plan, this_run: plan}, exits: [...]}
//   evaluate/  evaluate.json     {conditions: [{name, label, exits: [{exit, head, task, ppl,
//                                 mmlu}], vote}], not_run: [...]}
//   plan/      plan.json         {device, runs: [{key, label, seconds, speedup, ...}], not_run}
//   report/    report.json (every figure), report.md, report.html
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "pipeline/stage.h"
#include "pipeline/synthetic_task.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::pipeline {

Stage profile_stage();
Stage compress_stage();
Stage tune_stage();
Stage evaluate_stage();
Stage plan_stage();
Stage report_stage();

// The base model of the run (threads set from the config) and its tokenizer.
std::shared_ptr<Model> load_base_model(const PipelineConfig& cfg);
std::unique_ptr<Tokenizer> load_run_tokenizer(const PipelineConfig& cfg, const Model& base);
// The model the tune and evaluate stages run: OUT/compress/model when compression produced one,
// else the base model.
std::string tuned_base_path(const StageContext& ctx);
// The task records of the run: synthetic from task.seed, or the Alpaca file split in two.
TaskSplit task_split(const PipelineConfig& cfg);
// Files a stage reading the model depends on (the model path, and the tokenizer when given).
std::vector<std::string> model_inputs(const PipelineConfig& cfg);

}  // namespace edgellm::pipeline
