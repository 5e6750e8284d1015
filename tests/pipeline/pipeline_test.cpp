// The whole pipeline on a tiny random model: every stage runs, a re-run skips them all, a run
// killed (SIGKILL) in the middle of tuning resumes from the tune checkpoint and ends with the
// same metrics as an uninterrupted run, and the report's SVGs parse and its markdown figures
// equal report.json.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "io/checkpoint.h"
#include "io/packed_tensors.h"
#include "kill_util.h"
#include "pipeline/report.h"
#include "pipeline/stage.h"
#include "test_util.h"
#include "util/mapped_file.h"
#include "xml_check.h"

namespace edgellm::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kTok = "models/stories260K/tok512.model";

int run_cli(const std::vector<std::string>& args, const std::string& log) {
  std::string cmd = "OMP_NUM_THREADS=1 '" + testing::cli_path() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  return std::system((cmd + " > '" + log + "' 2>&1").c_str());
}

// A random model of the given shape (once per directory) and a config running every stage in
// seconds.
json tiny_config(const std::string& dir, const std::string& shape, int64_t steps) {
  const std::string model = dir + "/model";
  if (!fs::exists(model + "/config.json")) {
    EXPECT_EQ(run_cli({"make-model", "--shape", shape, "--out", model, "--seed", "3"},
                      dir + "/make-model.log"),
              0);
  }
  return json{
      {"name", "tiny"},
      {"out", dir + "/out"},
      {"threads", 1},
      {"model", {{"path", model}, {"tokenizer", testing::data_path(kTok)}}},
      {"task",
       {{"families", {"copy", "last", "add"}}, {"n_train", 60}, {"n_test", 6}, {"seed", 2}}},
      {"calibration", {{"n", 2}, {"seq", 16}, {"seed", 5}}},
      {"compress", {{"bits", 4}}},
      {"tune",
       {{"steps", steps},
        {"seq", 192},
        {"grad_accum", 1},
        {"save_every", 2},
        {"val_every", 4},
        {"n_exits", 2}}},
      {"evaluate", {{"max_new_tokens", 4}}},
      {"plan", {{"grid", 4}, {"samples", 2}}}};
}

std::string write_config(const std::string& dir, const json& j) {
  const std::string p = dir + "/pipeline.json";
  std::ofstream(p) << j.dump(2);
  return p;
}

// Table rows of the figure `id` in report.md (header and separator dropped), cells trimmed.
std::vector<std::vector<std::string>> md_table(const std::string& md, const std::string& id) {
  const std::string marker = "<!-- figure: " + id + " -->\n";
  const auto p = md.find(marker);
  EXPECT_NE(p, std::string::npos) << id;
  std::istringstream in(md.substr(p + marker.size()));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool started = false;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      if (started) break;
      continue;
    }
    started = true;
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
        cell += '|';
        ++i;
      } else if (line[i] == '|') {
        cells.push_back(cell.substr(1, cell.size() - 2));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    rows.push_back(cells);
  }
  if (rows.size() >= 2) rows.erase(rows.begin(), rows.begin() + 2);
  return rows;
}

void expect_cell(const std::string& cell, const json& v, const std::string& where) {
  if (v.is_null()) {
    EXPECT_EQ(cell, "–") << where;
  } else if (v.is_number()) {
    const double x = v.get<double>();
    if (!std::isfinite(x)) {
      EXPECT_EQ(cell, "n/a") << where;
      return;
    }
    const double y = std::stod(cell);
    EXPECT_NEAR(y, x, 1e-5 * std::max(1.0, std::abs(x))) << where << ": '" << cell << "'";
  } else {
    EXPECT_EQ(cell, v.get<std::string>()) << where;
  }
}

// Every available figure of report.json appears in report.md with the same numbers.
void expect_md_equals_json(const std::string& md, const json& rep) {
  int checked = 0;
  for (const json& f : rep["figures"]) {
    const std::string id = f["id"];
    if (!f["available"].get<bool>()) {
      EXPECT_NE(md.find("<!-- figure: " + id + " -->\n*Not available"), std::string::npos) << id;
      continue;
    }
    const auto rows = md_table(md, id);
    const std::string kind = f["kind"];
    if (kind == "table") {
      ASSERT_EQ(rows.size(), f["rows"].size()) << id;
      for (size_t r = 0; r < rows.size(); ++r)
        for (size_t c = 0; c < rows[r].size(); ++c) expect_cell(rows[r][c], f["rows"][r][c], id);
    } else if (kind == "bar") {
      ASSERT_EQ(rows.size(), f["groups"].size()) << id;
      for (size_t g = 0; g < rows.size(); ++g) {
        EXPECT_EQ(rows[g][0], f["groups"][g].get<std::string>()) << id;
        for (size_t k = 0; k < f["series"].size(); ++k)
          expect_cell(rows[g][k + 1], f["series"][k]["values"][g], id);
      }
    } else {
      ASSERT_FALSE(rows.empty()) << id;
      for (const auto& row : rows) {
        const double x = std::stod(row[0]);
        for (size_t k = 0; k < f["series"].size(); ++k) {
          const json& s = f["series"][k];
          bool found = false;
          for (size_t i = 0; i < s["x"].size(); ++i)
            if (s["x"][i].get<double>() == x) {
              expect_cell(row[k + 1], s["y"][i], id);
              found = true;
            }
          if (!found) {
            EXPECT_EQ(row[k + 1], "") << id;
          }
        }
      }
    }
    ++checked;
  }
  EXPECT_GE(checked, 7);
}

TEST(Pipeline, RunsEveryStageThenSkipsAllAndReportsConsistently) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("pipeline");
  const json cj =
      tiny_config(dir, "dim=32,layers=2,heads=4,kv_heads=2,ff=64,vocab=512,ctx=256,tied=1", 6);
  const PipelineConfig cfg = PipelineConfig::from_json(cj, "test");
  RunOptions ro;
  ro.quiet = true;
  const RunResult a = run_pipeline(cfg, ro);
  ASSERT_EQ(a.stages.size(), 6u);
  for (const auto& s : a.stages) {
    EXPECT_FALSE(s.skipped) << s.name;
    EXPECT_TRUE(fs::exists(a.out + "/" + s.name + "/stage.json")) << s.name;
    EXPECT_FALSE(fs::exists(a.out + "/" + s.name + ".tmp")) << s.name;
  }
  const RunResult b = run_pipeline(cfg, ro);
  for (size_t i = 0; i < b.stages.size(); ++i) {
    EXPECT_TRUE(b.stages[i].skipped) << b.stages[i].name;
    EXPECT_EQ(b.stages[i].outputs_hash, a.stages[i].outputs_hash);
  }
  // A changed evaluate section re-runs evaluate and what reads it, nothing upstream.
  PipelineConfig c2 = cfg;
  c2.evaluate.max_new_tokens = 5;
  const RunResult c = run_pipeline(c2, ro);
  std::map<std::string, bool> skipped;
  for (const auto& s : c.stages) skipped[s.name] = s.skipped;
  EXPECT_TRUE(skipped["profile"] && skipped["compress"] && skipped["tune"] && skipped["plan"]);
  EXPECT_FALSE(skipped["evaluate"]);
  EXPECT_FALSE(skipped["report"]);
  // --from re-runs from there even though nothing changed.
  ro.from = "plan";
  const RunResult d = run_pipeline(c2, ro);
  EXPECT_TRUE(d.stages[3].skipped);
  EXPECT_FALSE(d.stages[4].skipped);
  EXPECT_FALSE(d.stages[5].skipped);

  // The report: files, well-formed SVGs (alone and inside the HTML), markdown = JSON.
  const json rep = json::parse(read_file(a.out + "/report.json"));
  const std::string md = read_file(a.out + "/report.md");
  const std::string html = read_file(a.out + "/report.html");
  int svgs = 0;
  for (const auto& e : fs::directory_iterator(a.out + "/report/figures")) {
    const std::string svg = read_file(e.path().string());
    EXPECT_EQ(testing::xml_error(svg), "") << e.path();
    EXPECT_EQ(testing::xml_root(svg), "svg");
    ++svgs;
  }
  EXPECT_GE(svgs, 6);
  const std::regex inline_svg("<svg[\\s\\S]*?</svg>");
  int in_html = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), inline_svg);
       it != std::sregex_iterator(); ++it, ++in_html)
    EXPECT_EQ(testing::xml_error(it->str()), "");
  EXPECT_EQ(in_html, svgs);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no fetches
  EXPECT_EQ(html.find("<script"), std::string::npos);
  expect_md_equals_json(md, rep);
  // The report says plainly what did not run (no perplexity text or MMLU data was given).
  EXPECT_NE(md.find("Not run in this pipeline"), std::string::npos);
  EXPECT_NE(md.find("no evaluate.ppl_text"), std::string::npos);
  // Profile measured a sensitivity per layer; LUC allocated from it: bits within B±1, mean
  // sparsity P; the compressed model is packed and reloads.
  const json prof = json::parse(read_file(a.out + "/profile/profile.json"));
  EXPECT_EQ(prof["sensitivity"]["s_quant"].size(), 2u);
  EXPECT_TRUE(fs::exists(a.out + "/profile/sens.json"));
  const json alloc = json::parse(read_file(a.out + "/compress/allocation.json"));
  EXPECT_TRUE(alloc["compressed"].get<bool>());
  EXPECT_EQ(alloc["policy"], "luc");
  for (int b : alloc["bits"].get<std::vector<int>>()) EXPECT_TRUE(b >= 3 && b <= 5) << b;
  const auto sp = alloc["sparsity"].get<std::vector<double>>();
  EXPECT_NEAR((sp[0] + sp[1]) / 2, 0.5, 1e-6);
  EXPECT_LT(alloc["linear_bits_per_weight"].get<double>(), 16.0);
  // Base and compressed: the model's own head; tuned (ALT, 2 exits): each exit and the vote.
  const json ev = json::parse(read_file(a.out + "/evaluate/evaluate.json"));
  ASSERT_EQ(ev["conditions"].size(), 3u);  // base, compressed, tuned
  EXPECT_EQ(ev["conditions"][0]["exits"][0]["exit"], 2);
  EXPECT_TRUE(ev["conditions"][0]["vote"].is_null());
  ASSERT_EQ(ev["conditions"][2]["exits"].size(), 2u);
  EXPECT_EQ(ev["conditions"][2]["exits"][0]["exit"], 1);
  EXPECT_EQ(ev["conditions"][2]["exits"][1]["exit"], 2);
  EXPECT_TRUE(ev["conditions"][2]["vote"].is_object());
  const json tune = json::parse(read_file(a.out + "/tune/tune.json"));
  EXPECT_EQ(tune["method"], "alt");
  EXPECT_EQ(tune["alt"]["exit_depths"], json({1, 2}));
  fs::remove_all(dir);
}

// compress.policy budget with granularity linear: the profile measures per-linear curves, the
// allocation is chosen per linear within compress.target_bpw, the packed model stores exactly
// those bits per linear, and the plan stage simulates them (parameter-weighted mean bits).
TEST(Pipeline, BudgetPerLinearAllocatesAndPlansPerLinear) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("pipeline_perlinear");
  json cj =
      tiny_config(dir, "dim=32,layers=2,heads=4,kv_heads=2,ff=64,vocab=512,ctx=256,tied=1", 2);
  cj["compress"] = {{"policy", "budget"},
                    {"granularity", "linear"},
                    {"target_bpw", 4.2},
                    {"bits", 4},
                    {"sparsity", 0.3}};
  const RunResult a = run_pipeline(PipelineConfig::from_json(cj, "test"), RunOptions{"", "", true});
  const json sens = json::parse(read_file(a.out + "/profile/sens.json"));
  EXPECT_TRUE(sens["per_linear"].get<bool>());
  const json alloc = json::parse(read_file(a.out + "/compress/allocation.json"));
  EXPECT_EQ(alloc["policy"], "budget");
  EXPECT_EQ(alloc["granularity"], "linear");
  EXPECT_TRUE(alloc.contains("linears"));  // at this target some layer's linears differ
  const Checkpoint ck = load_checkpoint(a.out + "/compress/model");
  const ModelConfig& c = ck.config;
  const double params = double(storage_summary(ck)["linear_params"].get<int64_t>());
  EXPECT_LE(double(alloc["packed_bytes"].get<int64_t>()), 4.2 * params / 8);
  double bits = 0;
  for (int l = 0; l < c.n_layers; ++l)
    for (int t = 0; t < kLinears; ++t) {
      const LinearId id = static_cast<LinearId>(t);
      // The allocation's per-linear entry (or the layer's, when its linears share one).
      const int want = alloc.contains("linears")
                           ? alloc["linears"][l][linear_name(id)]["bits"].get<int>()
                           : alloc["bits"][l].get<int>();
      const int stored = c.layers[l].at(id).bits;
      EXPECT_EQ(stored == 0 ? 16 : stored, want) << l << " " << t;
      bits += double(want) * double(c.linear_in(id) * c.linear_out(id));
    }
  const json plan = json::parse(read_file(a.out + "/plan/plan.json"));
  EXPECT_NEAR(plan["runs"][1]["mean_bits"].get<double>(), bits / params, 1e-9);
  fs::remove_all(dir);
}

size_t lines_in(const std::string& path) {
  std::ifstream f(path);
  size_t n = 0;
  for (std::string l; std::getline(f, l);) n += !l.empty();
  return n;
}

TEST(Pipeline, KilledDuringTuningResumesToTheSameMetrics) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("pipeline_kill");
  const std::string shape = "dim=48,layers=2,heads=4,kv_heads=2,ff=96,vocab=512,ctx=256,tied=1";
  const int64_t steps = 60;
  // Uninterrupted reference.
  json ref = tiny_config(dir, shape, steps);
  ref["out"] = dir + "/ref";
  ASSERT_EQ(run_cli({"pipeline", "--config", write_config(dir, ref)}, dir + "/ref.log"), 0)
      << read_file(dir + "/ref.log");
  // The same run, SIGKILLed once tuning has checkpointed a few steps.
  json cut = ref;
  cut["out"] = dir + "/cut";
  const std::string cfg = dir + "/cut.json";
  std::ofstream(cfg) << cut.dump(2);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    const std::string log = dir + "/cut1.log";
    freopen(log.c_str(), "w", stderr);
    execl(testing::cli_path().c_str(), "edgellm", "pipeline", "--config", cfg.c_str(), nullptr);
    _exit(127);
  }
  const std::string metrics = dir + "/cut/tune.tmp/metrics.jsonl";
  const auto t0 = std::chrono::steady_clock::now();
  while (lines_in(metrics) < 5 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  ASSERT_FALSE(fs::exists(dir + "/cut/tune/stage.json"));
  ASSERT_TRUE(fs::exists(dir + "/cut/tune.tmp/checkpoint/trainer_state.json"));
  const size_t done_before = lines_in(metrics);
  EXPECT_LT(done_before, static_cast<size_t>(steps));
  // Re-run: the finished stages are skipped, tune resumes from its checkpoint.
  ASSERT_EQ(run_cli({"pipeline", "--config", cfg}, dir + "/cut2.log"), 0)
      << read_file(dir + "/cut2.log");
  const std::string log = read_file(dir + "/cut2.log");
  EXPECT_NE(log.find("[profile] unchanged, skipped"), std::string::npos) << log;
  EXPECT_NE(log.find("[compress] unchanged, skipped"), std::string::npos) << log;
  EXPECT_NE(log.find("[tune] resuming"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from the checkpoint at step"), std::string::npos) << log;
  // Same adapter bytes, same losses, same metrics as the uninterrupted run.
  EXPECT_EQ(read_file(dir + "/cut/tune/adapter_model.safetensors"),
            read_file(dir + "/ref/tune/adapter_model.safetensors"));
  const json tr = json::parse(read_file(dir + "/ref/tune/tune.json"));
  const json tc = json::parse(read_file(dir + "/cut/tune/tune.json"));
  EXPECT_EQ(tc["loss"], tr["loss"]);
  EXPECT_EQ(tc["val_loss"], tr["val_loss"]);
  EXPECT_EQ(tc["steps"], steps);
  EXPECT_EQ(lines_in(dir + "/cut/tune/metrics.jsonl"), static_cast<size_t>(steps));
  const json er = json::parse(read_file(dir + "/ref/evaluate/evaluate.json"));
  const json ec = json::parse(read_file(dir + "/cut/evaluate/evaluate.json"));
  ASSERT_EQ(er["conditions"].size(), ec["conditions"].size());
  for (size_t i = 0; i < er["conditions"].size(); ++i) {
    const json& a = er["conditions"][i]["exits"][0]["task"];
    const json& b = ec["conditions"][i]["exits"][0]["task"];
    EXPECT_EQ(a["exact_match"], b["exact_match"]);
    EXPECT_EQ(a["response_nll"], b["response_nll"]);
    EXPECT_EQ(a["samples"], b["samples"]);
  }
  fs::remove_all(dir);
}

// The whole pipeline SIGKILLed at random moments, again and again — in profiling, compression,
// tuning, evaluation, planning and the report alike — and re-run with the same config until a
// run completes: every stage's result equals the uninterrupted run's, and nothing temporary is
// left in the output directory.
TEST(Pipeline, KilledAtRandomMomentsEndsWithTheSameResults) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("pipeline_kills");
  const std::string shape = "dim=48,layers=2,heads=4,kv_heads=2,ff=96,vocab=512,ctx=256,tied=1";
  json ref = tiny_config(dir, shape, 60);
  ref["out"] = dir + "/ref";
  const auto [code, span] =
      testing::run_to_end({"pipeline", "--config", write_config(dir, ref)}, dir + "/ref.log");
  ASSERT_EQ(code, 0) << read_file(dir + "/ref.log");
  json cut = ref;
  cut["out"] = dir + "/cut";
  const std::string cfg = dir + "/cut.json";
  std::ofstream(cfg) << cut.dump(2);
  const testing::Trials t =
      // Kill moments over a quarter of the uninterrupted time: a re-run skips the stages already
      // done, so with the whole span most re-runs would finish before their kill.
      testing::kill_until_done({"pipeline", "--config", cfg}, span / 4, 12, 7, dir + "/cut.log");
  std::printf("uninterrupted run %.2f s; %d runs killed, %d finished\n", span, t.killed,
              t.finished);
  EXPECT_GE(t.killed, 4);
  for (const char* f : {"compress/model/model.safetensors", "tune/adapter_model.safetensors",
                        "tune/exit_heads.safetensors"}) {
    EXPECT_TRUE(read_file(dir + "/cut/" + f) == read_file(dir + "/ref/" + f)) << f;
  }
  const json tr = json::parse(read_file(dir + "/ref/tune/tune.json"));
  const json tc = json::parse(read_file(dir + "/cut/tune/tune.json"));
  EXPECT_EQ(tc["loss"], tr["loss"]);
  EXPECT_EQ(lines_in(dir + "/cut/tune/metrics.jsonl"), lines_in(dir + "/ref/tune/metrics.jsonl"));
  const json er = json::parse(read_file(dir + "/ref/evaluate/evaluate.json"));
  const json ec = json::parse(read_file(dir + "/cut/evaluate/evaluate.json"));
  ASSERT_EQ(er["conditions"].size(), ec["conditions"].size());
  for (size_t i = 0; i < er["conditions"].size(); ++i) {
    const json& xr = er["conditions"][i]["exits"];
    const json& xc = ec["conditions"][i]["exits"];
    ASSERT_EQ(xr.size(), xc.size());
    for (size_t e = 0; e < xr.size(); ++e) {  // everything but the timings
      EXPECT_EQ(xc[e]["task"]["response_nll"], xr[e]["task"]["response_nll"]) << i << "/" << e;
      EXPECT_EQ(xc[e]["task"]["exact_match"], xr[e]["task"]["exact_match"]) << i << "/" << e;
    }
  }
  EXPECT_TRUE(fs::exists(dir + "/cut/report/report.md"));
  EXPECT_EQ(testing::leftovers(dir + "/cut"), std::vector<std::string>{});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace edgellm::pipeline
