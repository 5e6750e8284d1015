#include "hwsim/paper.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "report/svg_plot.h"
#include "util/error.h"

namespace edgellm::hwsim {

std::vector<int> luc_bits(int n_layers, int bits, int extra) {
  std::vector<int> b(n_layers, bits);
  for (int i = 0; i < std::min(extra, n_layers); ++i)
    b[i % 2 == 0 ? i / 2 : n_layers - 1 - i / 2] += 1;
  return b;
}

namespace {

TuneConfig base_tune(const ModelConfig& m, const PaperOptions& o) {
  TuneConfig t;
  t.seq = o.seq;
  t.base_bits = 8;
  t.bits.assign(m.n_layers, 8);
  t.sparsity.assign(m.n_layers, 0.0);
  return t;
}

TuneConfig alt_tune(const ModelConfig& m, const PaperOptions& o) {
  TuneConfig t = base_tune(m, o);
  t.method = Method::Alt;
  t.window = o.window;
  return t;
}

TuneConfig luc_tune(const ModelConfig& m, const PaperOptions& o, int bits) {
  TuneConfig t = alt_tune(m, o);
  const int extra = o.luc_extra_layers >= 0 ? o.luc_extra_layers
                                            : static_cast<int>(std::lround(0.1 * m.n_layers));
  t.bits = luc_bits(m.n_layers, bits, extra);
  t.sparsity.assign(m.n_layers, o.sparsity);
  return t;
}

SearchResult run(const ModelConfig& m, const TuneConfig& t, const Device& dev,
                 const PaperOptions& o) {
  Workload wl;
  wl.samples_per_iteration = o.samples;
  SearchSpace sp;
  sp.overlap = o.overlap;
  sp.grid = o.grid;
  SearchResult r = search(m, t, {}, dev, wl, sp);
  if (!r.found)
    fail("[hwsim] no feasible schedule for method {} on device '{}' (model does not fit?)",
         method_name(t.method), dev.name);
  return r;
}

// The binding term that accounts for most of the expected iteration time.
std::string dominant(const SearchResult& r) {
  std::map<std::string, double> s;
  for (const auto& e : r.per_exit)
    for (const auto& b : e.cost.blocks) s[b.binding] += b.time * b.repeat;
  std::string best;
  double v = -1;
  for (const auto& [k, x] : s)
    if (x > v) v = x, best = k;
  return best;
}

// Memory per iteration of one micro-batch: saved activations + trained LoRA state, peak over exits.
double tuning_bytes(const ModelConfig& m, TuneConfig t) {
  t.batch = 1;
  double peak = 0;
  for (int e : iteration_exits(m, t, {})) {
    t.exit_layer = t.method == Method::Alt ? e : 0;
    Trace tr = build_trace(m, t);
    peak = std::max(peak, tr.saved_peak + 4.0 * t.state_bytes * tr.lora_params_trained);
  }
  return peak;
}

}  // namespace

PaperReport reproduce_paper(const ModelConfig& m, const Device& dev, const PaperOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  PaperReport rep;
  rep.device = dev.name;
  rep.opts = o;
  TuneConfig prune = alt_tune(m, o);
  prune.sparsity.assign(m.n_layers, o.sparsity);
  rep.cases = {
      {"lora", "vanilla LoRA, 8-bit", base_tune(m, o), {}, 1.0, 0.0},
      {"alt", "adaptive layer tuning, 8-bit", alt_tune(m, o), {}, 0, 2.24},
      {"alt_prune", "ALT + 50% pruning, 8-bit", prune, {}, 0, 2.37},
      {"luc4_alt", "LUC 4-bit (+50% sparsity) + ALT", luc_tune(m, o, 4), {}, 0, 3.38},
      {"luc5_alt", "LUC 5-bit (+50% sparsity) + ALT", luc_tune(m, o, 5), {}, 0, 2.92},
  };
  for (auto& c : rep.cases) c.result = run(m, c.tune, dev, o);
  const double base = rep.cases[0].result.seconds;
  for (auto& c : rep.cases) c.speedup = base / c.result.seconds;
  rep.lora_tuning_bytes = tuning_bytes(m, rep.cases[0].tune);
  rep.alt_tuning_bytes = tuning_bytes(m, rep.cases[1].tune);
  rep.memory_reduction = rep.lora_tuning_bytes / rep.alt_tuning_bytes;
  rep.lora_total_bytes = rep.lora_tuning_bytes + rep.cases[0].result.weights_bytes;
  rep.edge_total_bytes = tuning_bytes(m, rep.cases[3].tune) + rep.cases[3].result.weights_bytes;
  rep.search_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

nlohmann::json PaperReport::to_json() const {
  nlohmann::json j;
  j["model"] = "llama-7b shape";
  j["device"] = device;
  j["seq"] = opts.seq;
  j["samples_per_iteration"] = opts.samples;
  j["window"] = opts.window;
  j["overlap"] = overlap_name(opts.overlap);
  for (const auto& c : cases) {
    nlohmann::json x{{"label", c.label},
                     {"iteration_seconds", c.result.seconds},
                     {"binding", dominant(c.result)},
                     {"schedule", schedule_json(c.result.best)}};
    if (c.key != "lora") {
      x["speedup"] = c.speedup;
      x["paper"] = c.paper;
    }
    j[c.key] = x;
  }
  j["memory_reduction"] = {{"value", memory_reduction},
                           {"paper", paper_memory_reduction},
                           {"lora_bytes", lora_tuning_bytes},
                           {"alt_bytes", alt_tuning_bytes},
                           {"what",
                            "saved activations + trained LoRA params/grads/AdamW moments, "
                            "micro-batch 1, peak over exits"}};
  j["total_memory_with_weights"] = {{"lora8_bytes", lora_total_bytes},
                                    {"luc4_alt_bytes", edge_total_bytes},
                                    {"ratio", lora_total_bytes / edge_total_bytes}};
  j["search_ms"] = search_ms;
  return j;
}

std::string PaperReport::table() const {
  std::string s = fmt::format(
      "Edge-LLM hardware reproduction: LLaMA-7B shape, device '{}', seq {}, {} samples/iteration, "
      "window {}, overlap {}\n\n",
      device, opts.seq, opts.samples, opts.window, overlap_name(opts.overlap));
  s += fmt::format("{:<34} {:>10} {:>9} {:>7}  {:<10} {}\n", "configuration", "iter (s)", "speedup",
                   "paper", "binding", "schedule");
  for (const auto& c : cases) {
    const auto& b = c.result.best;
    s += fmt::format(
        "{:<34} {:>10.3f} {:>8.2f}x {:>7}  {:<10} {} gbs={} nb={} w_ssd={:.2f} a_ssd={:.2f}\n",
        c.label, c.result.seconds, c.speedup,
        c.paper > 0 ? fmt::format("{:.2f}x", c.paper) : std::string("-"), dominant(c.result),
        b.order(), b.micro_batch, b.batches_per_block, b.place.weights[kSsd], b.place.acts[kSsd]);
  }
  s += fmt::format(
      "\nmemory per iteration (activations + LoRA state): LoRA {:.1f} MB, ALT {:.1f} MB -> {:.2f}x "
      "less (paper 4x)\n",
      lora_tuning_bytes / 1e6, alt_tuning_bytes / 1e6, memory_reduction);
  s += fmt::format(
      "with frozen weights: LoRA 8-bit {:.2f} GB, LUC 4-bit + ALT {:.2f} GB ({:.2f}x)\n",
      lora_total_bytes / 1e9, edge_total_bytes / 1e9, lora_total_bytes / edge_total_bytes);
  return s;
}

std::vector<SweepPoint> sweep(const ModelConfig& m, const Device& dev, const PaperOptions& o) {
  std::vector<SweepPoint> pts;
  auto point = [&](const std::string& axis, double x, const Device& d, int bits) {
    SweepPoint p;
    p.axis = axis;
    p.x = x;
    SearchResult l = run(m, base_tune(m, o), d, o);
    SearchResult e = run(m, luc_tune(m, o, bits), d, o);
    p.lora_seconds = l.seconds;
    p.edge_seconds = e.seconds;
    p.speedup = l.seconds / e.seconds;
    p.lora_binding = dominant(l);
    p.edge_binding = dominant(e);
    pts.push_back(p);
  };
  for (double kb : {128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0}) {
    Device d = dev;
    d.sram_bytes = kb * 1024;
    point("sram_bytes", d.sram_bytes, d, 4);
  }
  for (double gbps : {8.5, 17.0, 25.6, 34.1, 59.7, 102.4, 204.8}) {
    Device d = dev;
    d.dram_bw = gbps * 1e9;
    point("dram_GBps", gbps, d, 4);
  }
  for (int bits : {2, 3, 4, 5, 6, 8}) point("bits", bits, dev, bits);
  // Array size moves the compute/memory balance: a faster array exposes the memory terms.
  for (int side : {16, 32, 64, 128, 256}) {
    Device d = dev;
    d.array_rows = d.array_cols = side;
    d.vector_lanes = side;
    point("array", side, d, 4);
  }
  return pts;
}

std::string sweep_table(const std::vector<SweepPoint>& pts) {
  std::string s = fmt::format("{:<11} {:>10} {:>11} {:>11} {:>8}  {:<10} {}\n", "axis", "value",
                              "LoRA8 (s)", "LUC+ALT (s)", "speedup", "LoRA bind", "LUC+ALT bind");
  for (const auto& p : pts)
    s += fmt::format(
        "{:<11} {:>10} {:>11.3f} {:>11.3f} {:>7.2f}x  {:<10} {}\n", p.axis,
        p.axis == "sram_bytes" ? fmt::format("{:.0f}K", p.x / 1024) : fmt::format("{:g}", p.x),
        p.lora_seconds, p.edge_seconds, p.speedup, p.lora_binding, p.edge_binding);
  return s;
}

std::string sweep_svg(const std::vector<SweepPoint>& pts, const std::string& device) {
  struct Ax {
    const char* axis;
    const char* title;
    const char* xlabel;
    bool speed;
    bool logx;
  } axes[] = {
      {"sram_bytes", "Iteration time vs SRAM", "SRAM size", false, true},
      {"dram_GBps", "Iteration time vs DRAM bandwidth", "DRAM bandwidth (GB/s)", false, true},
      {"bits", "Speedup over LoRA 8-bit vs bits", "LUC bits (+ALT, 50% sparse)", true, false},
      {"array", "Speedup vs array size", "array side (R = C)", true, true}};
  std::vector<report::Chart> charts;
  for (const Ax& ax : axes) {
    report::LineChart c;
    c.title = ax.title;
    c.x_label = ax.xlabel;
    c.y_label = ax.speed ? "speedup (x)" : "seconds / iteration";
    c.log_x = ax.logx;
    report::Series lora{"LoRA 8-bit", {}, {}}, edge{"LUC 4-bit + ALT", {}, {}},
        sp{ax.axis == std::string("bits") ? "LUC b-bit + ALT vs LoRA 8-bit"
                                          : "LUC 4-bit + ALT vs LoRA 8-bit",
           {},
           {}};
    for (const auto& p : pts) {
      if (p.axis != ax.axis) continue;
      lora.x.push_back(p.x), lora.y.push_back(p.lora_seconds);
      edge.x.push_back(p.x), edge.y.push_back(p.edge_seconds);
      sp.x.push_back(p.x), sp.y.push_back(p.speedup);
      // Ticks at the swept values (SRAM sizes in K/M).
      c.x_tick_values.push_back(p.x);
      c.x_tick_labels.push_back(p.axis == "sram_bytes"
                                    ? (p.x >= 1048576 ? fmt::format("{:g}M", p.x / 1048576)
                                                      : fmt::format("{:g}K", p.x / 1024))
                                    : fmt::format("{:g}", p.x));
    }
    if (sp.x.empty()) continue;
    if (ax.speed)
      c.series = {sp};
    else
      c.series = {lora, edge};
    charts.push_back(c);
  }
  return report::render_panels_svg(
      fmt::format("edgellm hwsim sweep: LLaMA-7B tuning iteration on '{}' (model output, not "
                  "measured)",
                  device),
      charts, 4, {400, 340});
}

}  // namespace edgellm::hwsim
