// The stage registry and the runner that makes the pipeline resumable.
//
//   profile ─► compress ─► tune ─► evaluate ─► plan ─► report
//
// A stage is one struct: its name, the upstream stages whose outputs it reads, the config it
// depends on, the files it reads, and one run function. The runner gives every stage a fresh
// directory OUT/<stage>.tmp, and when run returns, writes OUT/<stage>.tmp/stage.json (the hash
// of its inputs and of its outputs) and renames the directory to OUT/<stage>: a stage's outputs
// appear whole or not at all. On the next run a stage whose input hash equals the one in
// OUT/<stage>/stage.json is skipped. A stage interrupted mid-way left OUT/<stage>.tmp with its
// input hash in inputs.json: when the hash still matches, the directory is kept so the stage can
// continue (tune resumes from its checkpoint there); otherwise it is wiped.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/config.h"

namespace edgellm::pipeline {

// What a stage's run function gets.
struct StageContext {
  const PipelineConfig& cfg;
  std::string out;       // OUT
  std::string dir;       // OUT/<stage>.tmp: where this stage writes
  bool resumed = false;  // dir held a partial run with the same inputs
  // Directory of a finished upstream stage (OUT/<name>).
  std::string stage_dir(const std::string& name) const { return out + "/" + name; }
  // Reads OUT/<stage>/<file> as JSON (throws naming the file).
  nlohmann::json read_json(const std::string& stage, const std::string& file) const;
  // A progress line ("[stage] what done/total ... ETA") on stderr, at most every 2 s and at the
  // end; quiet when the runner was asked to be.
  std::function<void(const std::string& what, double done, double total)> progress;
  std::function<void(const std::string& line)> log;
};

struct Stage {
  std::string name;
  std::string summary;             // one line for --help and the docs
  std::vector<std::string> after;  // upstream stages whose outputs it reads
  // The configuration it depends on (hashed canonically).
  std::function<nlohmann::json(const PipelineConfig&)> config;
  // Files or directories it reads besides upstream outputs (hashed by content).
  std::function<std::vector<std::string>(const PipelineConfig&)> inputs;
  std::function<void(StageContext&)> run;
};

// profile, compress, tune, evaluate, plan, report — in order.
const std::vector<Stage>& pipeline_stages();
const Stage& find_stage(const std::string& name);  // throws listing the names

struct RunOptions {
  std::string out;   // overrides cfg.out when set
  std::string from;  // re-run this stage and every later one even if unchanged
  bool quiet = false;
};

struct StageOutcome {
  std::string name;
  bool skipped = false;
  bool resumed = false;
  double seconds = 0;
  std::string inputs_hash, outputs_hash;
};

struct RunResult {
  std::string out;
  std::vector<StageOutcome> stages;
};

RunResult run_pipeline(const PipelineConfig& cfg, const RunOptions& o);

// The input hash the runner computes for `stage` (upstream output hashes read from OUT).
std::string stage_inputs_hash(const Stage& s, const PipelineConfig& cfg, const std::string& out);

}  // namespace edgellm::pipeline
