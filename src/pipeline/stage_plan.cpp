// plan: the hardware simulator (src/hwsim, docs/hwsim.md) on a device preset with this run's own
// shape, per-layer bits and sparsity, sequence length, LoRA rank, method (for adaptive layer
// tuning its exits and window, averaged over exits): the best schedule's iteration time against
// vanilla LoRA at plan.vanilla_bits bits on the same device. These are simulator outputs, not
// measurements, and the report labels them so.
#include "hwsim/search.h"
#include "pipeline/stages.h"
#include "train/exits.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

using namespace edgellm::hwsim;

nlohmann::json run_case(const std::string& key, const std::string& label, const ModelConfig& m,
                        const TuneConfig& t, const Device& dev, const PlanSection& p) {
  Workload wl;
  wl.samples_per_iteration = p.samples;
  SearchSpace sp;
  sp.overlap = parse_overlap(p.overlap);
  sp.grid = p.grid;
  const SearchResult r = search(m, t, {}, dev, wl, sp);
  // Means weighted by parameter count (a per-linear allocation differs within a layer, and a
  // down_proj is not a k_proj).
  double bits = 0, sparsity = 0, n = 0;
  for (int l = 0; l < m.n_layers; ++l)
    for (int i = 0; i < kLinears; ++i) {
      const LinearId id = static_cast<LinearId>(i);
      const double w = double(m.linear_in(id) * m.linear_out(id));
      bits += w * t.linear_bits(m, l, id);
      sparsity += w * t.linear_sparsity(m, l, id);
      n += w;
    }
  nlohmann::json j = {{"key", key},
                      {"label", label},
                      {"method", method_name(t.method)},
                      {"mean_bits", bits / n},
                      {"mean_sparsity", sparsity / n},
                      {"found", r.found},
                      {"seconds", r.found ? r.seconds : -1.0},
                      {"tuning_bytes", r.tuning_bytes},
                      {"weights_bytes", r.weights_bytes},
                      {"schedule", r.found ? schedule_json(r.best) : nlohmann::json()}};
  return j;
}

void run_plan(StageContext& ctx) {
  const PlanSection& p = ctx.cfg.plan;
  const TuneSection& tu = ctx.cfg.tune;
  auto base = load_base_model(ctx.cfg);
  const ModelConfig& m = base->config();
  const Device dev = Device::load(p.device);
  const nlohmann::json alloc = ctx.read_json("compress", "allocation.json");
  const int seq = static_cast<int>(tu.seq);

  TuneConfig vanilla;
  vanilla.method = Method::Lora;
  vanilla.base_bits = p.vanilla_bits;
  vanilla.seq = seq;
  vanilla.lora_rank = tu.rank;

  TuneConfig run = vanilla;
  run.method = tu.method == "alt" ? Method::Alt : Method::Lora;
  // Per linear when the allocation differs within a layer: the run's own copy of the shape
  // carries them in its LayerConfig record, which the simulator reads per linear when run.bits
  // is empty (vanilla keeps the bare shape); else one bits and sparsity per layer.
  ModelConfig mr = m;
  mr.layers.resize(static_cast<size_t>(m.n_layers));
  if (alloc.contains("linears")) {
    for (int l = 0; l < m.n_layers; ++l)
      for (int i = 0; i < kLinears; ++i) {
        const LinearId id = static_cast<LinearId>(i);
        const nlohmann::json& x = alloc["linears"].at(l).at(linear_name(id));
        mr.layers[l].at(id).bits = x.at("bits").get<int>();  // 16: fp16 values, as run.bits
        mr.layers[l].at(id).scheme = QuantScheme::Sym;  // the record needs one; hwsim reads bits
        mr.layers[l].at(id).sparsity = x.at("sparsity").get<float>();
      }
  } else {
    run.bits = alloc["bits"].get<std::vector<int>>();
    run.sparsity = alloc["sparsity"].get<std::vector<double>>();
  }
  // ALT: the run's own exits and window (as the trainer places them); the iteration time is
  // the mean over exits (each step trains one exit, uniformly under the random schedule).
  std::vector<int> depths;
  if (run.method == Method::Alt) {
    const int T = std::max(1, tu.n_exits);
    depths = tu.exits.empty() ? exit_depths(m.n_layers, T) : tu.exits;
    run.window = tu.window > 0 ? tu.window : exit_window(m.n_layers, T);
  }
  nlohmann::json out = {{"device", dev.name},
                        {"device_description", dev.description},
                        {"model_shape", m.shape_spec()},
                        {"seq", seq},
                        {"samples_per_iteration", p.samples},
                        {"overlap", p.overlap},
                        {"runs", nlohmann::json::array()}};
  ctx.log(fmt::format("searching schedules on '{}'", dev.name));
  nlohmann::json a = run_case("vanilla_lora", fmt::format("vanilla LoRA, {}-bit", p.vanilla_bits),
                              m, vanilla, dev, p);
  nlohmann::json b;
  if (depths.empty()) {
    b = run_case("this_run", "this run", mr, run, dev, p);
  } else {
    nlohmann::json per_exit = nlohmann::json::array();
    double sum = 0;
    for (int d : depths) {
      TuneConfig r = run;
      r.exit_layer = d;
      r.window = std::min(run.window, d);
      nlohmann::json x = run_case("this_run", "this run", mr, r, dev, p);
      sum += x["seconds"].get<double>();
      per_exit.push_back({{"exit", d}, {"seconds", x["seconds"]}});
      b = x;  // the deepest exit's case carries the schedule and memory (its peak)
    }
    b["seconds"] = sum / double(depths.size());
    b["per_exit"] = per_exit;
    b["exits"] = depths;
    b["window"] = run.window;
  }
  b["label"] = fmt::format("this run ({}, {:.2f} bits, {:.0f}% sparse)", tu.method,
                           b["mean_bits"].get<double>(), 100 * b["mean_sparsity"].get<double>());
  const double va = a["seconds"].get<double>(), vb = b["seconds"].get<double>();
  a["speedup"] = 1.0;
  b["speedup"] = va > 0 && vb > 0 ? va / vb : -1.0;
  out["runs"].push_back(a);
  out["runs"].push_back(b);
  out["not_run"] = nlohmann::json::array();
  write_file_atomic(ctx.dir + "/plan.json", out.dump(2) + "\n");
  ctx.log(fmt::format("vanilla LoRA {:.4f} s/iteration, this run {:.4f} s ({:.2f}x)", va, vb,
                      b["speedup"].get<double>()));
}

}  // namespace

Stage plan_stage() {
  Stage s;
  s.name = "plan";
  s.summary = "simulated tuning iteration on a device preset vs vanilla LoRA (hwsim)";
  s.after = {"compress"};
  s.config = [](const PipelineConfig& c) {
    const nlohmann::json j = c.to_json();
    return nlohmann::json{{"model", j["model"]}, {"plan", j["plan"]}, {"tune", j["tune"]}};
  };
  s.inputs = [](const PipelineConfig& c) {
    std::vector<std::string> v{c.model.path};
    if (c.plan.device.find('/') != std::string::npos || c.plan.device.ends_with(".json"))
      v.push_back(c.plan.device);
    return v;
  };
  s.run = run_plan;
  return s;
}

}  // namespace edgellm::pipeline
