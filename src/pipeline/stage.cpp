#include "pipeline/stage.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "pipeline/content_hash.h"
#include "pipeline/stages.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace fs = std::filesystem;

// Bumped when a stage's output format changes, so old runs are redone rather than misread.
constexpr int kStageFormat = 1;

nlohmann::json StageContext::read_json(const std::string& stage, const std::string& file) const {
  const std::string p = stage_dir(stage) + "/" + file;
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    fail("[pipeline] {}: malformed JSON: {}", p, e.what());
  }
}

const std::vector<Stage>& pipeline_stages() {
  static const std::vector<Stage> s = {profile_stage(),  compress_stage(), tune_stage(),
                                       evaluate_stage(), plan_stage(),     report_stage()};
  return s;
}

const Stage& find_stage(const std::string& name) {
  std::string names;
  for (const Stage& s : pipeline_stages()) {
    if (s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  fail("[pipeline] stage '{}' unknown ({})", name, names);
}

namespace {

nlohmann::json read_json_or_null(const std::string& p) {
  if (!fs::exists(p)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception&) {
    return nullptr;  // a torn or foreign file: treated as absent, the stage re-runs
  }
}

std::string outputs_hash(const std::string& dir) {
  Hasher h;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "stage.json" &&
        e.path().filename() != "inputs.json")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    h.add(fs::relative(f, dir).generic_string());
    h.add_path(f.string());
  }
  return h.hex();
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string stage_inputs_hash(const Stage& s, const PipelineConfig& cfg, const std::string& out) {
  Hasher h;
  h.add(s.name).add_u64(kStageFormat);
  h.add(s.config ? s.config(cfg).dump() : "{}");
  for (const std::string& up : s.after) {
    const nlohmann::json j = read_json_or_null(out + "/" + up + "/stage.json");
    h.add(up).add(j.is_object() ? j.value("outputs_hash", "") : "absent");
  }
  if (s.inputs)
    for (const std::string& p : s.inputs(cfg)) h.add(p).add_path(p);
  return h.hex();
}

RunResult run_pipeline(const PipelineConfig& cfg, const RunOptions& o) {
  RunResult res;
  res.out = o.out.empty() ? cfg.out : o.out;
  if (res.out.empty()) fail("[pipeline] no output directory (config 'out' or --out)");
  fs::create_directories(res.out);
  const std::vector<Stage>& stages = pipeline_stages();
  size_t from = stages.size();
  if (!o.from.empty())
    for (size_t i = 0; i < stages.size(); ++i)
      if (stages[i].name == find_stage(o.from).name) from = i;
  write_file_atomic(res.out + "/config.json", cfg.to_json().dump(2) + "\n");
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& s = stages[i];
    StageOutcome oc;
    oc.name = s.name;
    const std::string final_dir = res.out + "/" + s.name, tmp = final_dir + ".tmp";
    oc.inputs_hash = stage_inputs_hash(s, cfg, res.out);
    const nlohmann::json done = read_json_or_null(final_dir + "/stage.json");
    if (i < from && done.is_object() && done.value("inputs_hash", "") == oc.inputs_hash) {
      oc.skipped = true;
      oc.outputs_hash = done.value("outputs_hash", "");
      if (!o.quiet) std::fprintf(stderr, "[%s] unchanged, skipped\n", s.name.c_str());
      res.stages.push_back(oc);
      continue;
    }
    const nlohmann::json partial = read_json_or_null(tmp + "/inputs.json");
    if (fs::exists(tmp)) {
      if (i < from && partial.is_object() && partial.value("inputs_hash", "") == oc.inputs_hash)
        oc.resumed = true;
      else
        fs::remove_all(tmp);
    }
    fs::create_directories(tmp);
    write_file_atomic(
        tmp + "/inputs.json",
        nlohmann::json{{"stage", s.name}, {"inputs_hash", oc.inputs_hash}}.dump(2) + "\n");
    if (!o.quiet)
      std::fprintf(stderr, "[%s] %s%s\n", s.name.c_str(), oc.resumed ? "resuming: " : "",
                   s.summary.c_str());
    StageContext ctx{cfg, res.out, tmp, oc.resumed, {}, {}};
    const std::string name = s.name;
    auto last = std::make_shared<double>(-1e9);
    auto start = std::make_shared<double>(now_s());
    const bool quiet = o.quiet;
    ctx.progress = [name, last, start, quiet](const std::string& what, double d, double total) {
      const double t = now_s();
      if (quiet || (t - *last < 2.0 && d < total)) return;
      *last = t;
      const double el = t - *start;
      const double eta = d > 0 ? el / d * (total - d) : 0;
      std::fprintf(stderr, "[%s] %s %.0f/%.0f  %.0fs elapsed  ETA %.0fs\n", name.c_str(),
                   what.c_str(), d, total, el, eta);
    };
    ctx.log = [name, quiet](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "[%s] %s\n", name.c_str(), line.c_str());
    };
    const double t0 = now_s();
    s.run(ctx);
    oc.seconds = now_s() - t0;
    oc.outputs_hash = outputs_hash(tmp);
    write_file_atomic(tmp + "/stage.json",
                      nlohmann::json{{"stage", s.name},
                                     {"format", kStageFormat},
                                     {"inputs_hash", oc.inputs_hash},
                                     {"outputs_hash", oc.outputs_hash},
                                     {"seconds", oc.seconds},
                                     {"resumed", oc.resumed},
                                     {"config", s.config ? s.config(cfg) : nlohmann::json()}}
                              .dump(2) +
                          "\n");
    fs::remove(tmp + "/inputs.json");
    // The previous finished output goes only once the new one is complete; the rename is atomic.
    if (fs::exists(final_dir)) fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    if (!o.quiet) std::fprintf(stderr, "[%s] done in %.1fs\n", s.name.c_str(), oc.seconds);
    res.stages.push_back(oc);
  }
  // The report, where a reader looks first: OUT/report.{md,html,json}. figures/ goes along so
  // report.md's image links resolve from OUT/ as well.
  const std::string rd = res.out + "/report";
  for (const char* f : {"report.md", "report.html", "report.json"})
    if (fs::exists(rd + "/" + f)) write_file_atomic(res.out + "/" + f, read_file(rd + "/" + f));
  if (fs::exists(rd + "/figures")) {
    fs::create_directories(res.out + "/figures");
    for (const auto& e : fs::directory_iterator(rd + "/figures"))
      write_file_atomic(res.out + "/figures/" + e.path().filename().string(),
                        read_file(e.path().string()));
  }
  return res;
}

}  // namespace edgellm::pipeline
