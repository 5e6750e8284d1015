// profile: calibration data, then per-layer sensitivity (PAPER.md §1). Today it produces the
// calibration set — data-free samples from the model (LLM-QAT) or windows of a text — and
// records that sensitivity was not measured: that needs the layer forward with taps, which
// plugs in here as the `sensitivity` entry of profile.json.
#include <filesystem>

#include "eval/data_free_calib.h"
#include "eval/model_files.h"
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

std::vector<std::vector<int32_t>> text_calibration(const CalibrationSection& c,
                                                   const Tokenizer& tok, int bos) {
  if (c.text.empty()) fail("[profile] calibration.source 'text' needs calibration.text");
  const std::vector<int32_t> ids = tok.encode(read_file(c.text));
  std::vector<std::vector<int32_t>> out;
  // Consecutive windows of seq−1 text tokens, each led by BOS (as the training windows are).
  const size_t w = static_cast<size_t>(c.seq - 1);
  for (size_t p = 0; out.size() < static_cast<size_t>(c.n) && p + w <= ids.size(); p += w) {
    std::vector<int32_t> s{bos};
    s.insert(s.end(), ids.begin() + static_cast<std::ptrdiff_t>(p),
             ids.begin() + static_cast<std::ptrdiff_t>(p + w));
    out.push_back(std::move(s));
  }
  if (out.empty())
    fail("[profile] {}: {} tokens make no calibration window of {}", c.text, ids.size(), c.seq);
  return out;
}

void run(StageContext& ctx) {
  const CalibrationSection& c = ctx.cfg.calibration;
  auto m = load_base_model(ctx.cfg);
  auto tok = load_run_tokenizer(ctx.cfg, *m);
  std::vector<std::vector<int32_t>> seqs;
  if (c.source == "data-free") {
    DataFreeCalibOptions o;
    o.n = c.n;
    o.seq = c.seq;
    o.temperature = static_cast<float>(c.temperature);
    o.seed = c.seed;
    o.progress = [&](int64_t d, int64_t t) { ctx.progress("calibration sequences", d, t); };
    seqs = data_free_calibration(*m, o);
  } else if (c.source == "text") {
    seqs = text_calibration(c, *tok, m->config().bos_id);
  } else {
    fail("[profile] calibration.source '{}' unknown (data-free, text)", c.source);
  }
  const std::string sample = tok->decode(seqs.front());
  nlohmann::json calib = {
      {"source", c.source},           {"n", seqs.size()},     {"seq", c.seq}, {"seed", c.seed},
      {"temperature", c.temperature}, {"sample_text", sample}};
  nlohmann::json full = calib;
  full["tokens"] = seqs;
  write_file_atomic(ctx.dir + "/calibration.json", full.dump() + "\n");
  ctx.log(fmt::format("{} calibration sequences of {} tokens ({})", seqs.size(), c.seq, c.source));
  nlohmann::json prof = {
      {"calibration", calib},
      {"sensitivity", nullptr},
      {"not_run",
       {"per-layer sensitivity (s_quant, s_prune; the paper's Fig. 3): needs sensitivity "
        "profiling over the layer taps, not merged yet"}}};
  write_file_atomic(ctx.dir + "/profile.json", prof.dump(2) + "\n");
}

}  // namespace

Stage profile_stage() {
  Stage s;
  s.name = "profile";
  s.summary = "calibration data (data-free samples or text) and per-layer sensitivity";
  s.config = [](const PipelineConfig& c) {
    return nlohmann::json{{"model", c.to_json()["model"]},
                          {"calibration", c.to_json()["calibration"]}};
  };
  s.inputs = [](const PipelineConfig& c) {
    auto v = model_inputs(c);
    if (c.calibration.source == "text") v.push_back(c.calibration.text);
    return v;
  };
  s.run = run;
  return s;
}

}  // namespace edgellm::pipeline
