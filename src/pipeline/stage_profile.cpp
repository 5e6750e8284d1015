// profile: calibration data, then per-layer sensitivity (PAPER.md §1). The calibration set is
// data-free samples from the model (LLM-QAT) or windows of a text (eval/calibration.h, the same
// windows `edgellm profile` reads); sensitivity is measured on it by eval/sensitivity.h: every
// layer fed the dense model's hidden states, dense and with each candidate (RTN bits, pruner
// sparsity) alone, output MSE. sens.json is the full profile (the compress stage's input),
// sensitivity.svg the paper's Fig. 3, profile.json the summary the report reads.
#include <filesystem>

#include "compress/compress_linear.h"
#include "eval/calibration.h"
#include "eval/data_free_calib.h"
#include "eval/model_files.h"
#include "eval/sensitivity.h"
#include "kernels/threads.h"
#include "pipeline/stages.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

std::shared_ptr<Model> load_base_model(const PipelineConfig& cfg) {
  set_num_threads(cfg.threads);
  return Model::load(cfg.model.path);
}

std::unique_ptr<Tokenizer> load_run_tokenizer(const PipelineConfig& cfg, const Model& base) {
  return load_tokenizer_for(base, cfg.model.tokenizer);
}

std::string tuned_base_path(const StageContext& ctx) {
  const std::string m = ctx.stage_dir("compress") + "/model";
  return std::filesystem::exists(m) ? m : ctx.cfg.model.path;
}

std::vector<std::string> model_inputs(const PipelineConfig& cfg) {
  std::vector<std::string> v{cfg.model.path};
  if (!cfg.model.tokenizer.empty()) v.push_back(cfg.model.tokenizer);
  return v;
}

namespace {

void run_profile(StageContext& ctx) {
  const CalibrationSection& c = ctx.cfg.calibration;
  const CompressSection& cs = ctx.cfg.compress;
  auto m = load_base_model(ctx.cfg);
  auto tok = load_run_tokenizer(ctx.cfg, *m);
  CalibOptions co;
  if (c.source == "data-free") {
    co.source = "data-free";
  } else if (c.source == "text") {
    if (c.text.empty()) fail("[profile] calibration.source 'text' needs calibration.text");
    co.source = c.text;
  } else {
    fail("[profile] calibration.source '{}' unknown (data-free, text)", c.source);
  }
  co.windows = c.n;
  co.len = c.seq;
  co.seed = c.seed;
  co.temperature = static_cast<float>(c.temperature);
  const Calibration cal = load_calibration(*m, tok.get(), co);
  const std::vector<std::vector<int32_t>>& seqs = cal.windows;
  const std::string sample = tok->decode(seqs.front());
  nlohmann::json calib = {
      {"source", c.source},           {"n", seqs.size()},     {"seq", c.seq}, {"seed", c.seed},
      {"temperature", c.temperature}, {"sample_text", sample}};
  nlohmann::json full = calib;
  full["tokens"] = seqs;
  write_file_atomic(ctx.dir + "/calibration.json", full.dump() + "\n");
  ctx.log(fmt::format("{} calibration sequences of {} tokens ({})", seqs.size(), c.seq, c.source));

  // Sensitivity at the bits and sparsities the policies read: the base bit-width B and its
  // neighbours (luc gives a layer B−1..B+1), 8 bits, and the pruner at four sparsities.
  ProfileOptions po;
  po.bits.clear();
  for (int b : {cs.bits - 1, cs.bits, cs.bits + 1, 8})
    if (b >= 2 && b <= 8 && std::find(po.bits.begin(), po.bits.end(), b) == po.bits.end())
      po.bits.push_back(b);
  std::sort(po.bits.begin(), po.bits.end());
  po.pruner =
      cs.pruner == "none" ? Pruner::Magnitude : pruner_from_name(cs.pruner, "compress.pruner");
  po.group = cs.group;
  // Per-linear curves (7× more layer runs) only for the per-linear budget that reads them.
  po.per_linear = cs.policy == "budget" && cs.granularity == "linear";
  po.progress = [&](int done, int L) { ctx.progress("layers profiled", done, L); };
  SensitivityProfile prof = profile_sensitivity(*m, seqs, po);
  prof.model = ctx.cfg.model.path;
  prof.calibration = cal.provenance;
  write_file_atomic(ctx.dir + "/sens.json", prof.to_json().dump(2) + "\n");
  write_file_atomic(ctx.dir + "/sensitivity.svg", sensitivity_svg(prof));
  const int B = cs.bits >= 2 && cs.bits <= 8 ? cs.bits : po.bits.back();
  nlohmann::json out = {{"calibration", calib},
                        {"sensitivity",
                         {{"bits", B},
                          {"s_quant", prof.s_quant(B)},
                          {"s_prune", prof.s_prune()},
                          {"profiled_bits", prof.bits},
                          {"profiled_sparsity", prof.sparsity},
                          {"pruner", prof.pruner}}},
                        {"not_run", nlohmann::json::array()}};
  write_file_atomic(ctx.dir + "/profile.json", out.dump(2) + "\n");
  ctx.log(fmt::format("sensitivity of {} layers at bits {} and sparsity {} ({})", prof.n_layers(),
                      nlohmann::json(prof.bits).dump(), nlohmann::json(prof.sparsity).dump(),
                      prof.pruner));
}

}  // namespace

Stage profile_stage() {
  Stage s;
  s.name = "profile";
  s.summary = "calibration data (data-free samples or text) and per-layer sensitivity";
  s.config = [](const PipelineConfig& c) {
    const nlohmann::json j = c.to_json();
    nlohmann::json j2 = {{"model", j["model"]},
                         {"calibration", j["calibration"]},
                         {"bits", c.compress.bits},
                         {"pruner", c.compress.pruner},
                         {"group", c.compress.group}};
    // Only when on, so the profiles of existing per-layer runs keep their hash.
    if (c.compress.policy == "budget" && c.compress.granularity == "linear")
      j2["per_linear"] = true;
    return j2;
  };
  s.inputs = [](const PipelineConfig& c) {
    auto v = model_inputs(c);
    if (c.calibration.source == "text") v.push_back(c.calibration.text);
    return v;
  };
  s.run = run_profile;
  return s;
}

}  // namespace edgellm::pipeline
