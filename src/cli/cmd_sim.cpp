// `edgellm sim`: the hardware simulator (src/hwsim). Parses options, calls the library, prints a
// table or JSON. Subcommands: gemm, trace, search (also the default: `edgellm sim --model-config
// ... --device ...`), eval, paper, flexgen, devices. `edgellm sim --trace ...` prints the trace.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "hwsim/flexgen.h"
#include "hwsim/paper.h"
#include "hwsim/search.h"
#include "util/error.h"
#include "util/json_field.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

namespace {

using namespace edgellm::hwsim;

struct TuneArgs {
  std::string model = "llama-7b";
  std::string device = "edge-accel";
  std::string method = "lora";
  int exit = 0;
  int window = 8;
  std::string bits;      // empty: the model's per-layer record, else 8
  std::string sparsity;  // empty: the model's per-layer record, else 0
  int batch = 1;
  int seq = 512;
  int rank = 8;
  int samples = 16;
  std::string overlap = "paper";
  int grid = 20;
  bool json = false;
};

void add_tune_args(CLI::App* c, TuneArgs& a) {
  c->add_option("--model-config", a.model, "model shape: preset name or HF config.json")
      ->capture_default_str();
  c->add_option("--device", a.device,
                "device preset (edge-accel, tx2, orin-nano, phone) or JSON file")
      ->capture_default_str();
  c->add_option("--method", a.method, "lora | partial | alt")->capture_default_str();
  c->add_option("--exit", a.exit, "alt: exit layer (0 = every exit, averaged)")
      ->capture_default_str();
  c->add_option("--window", a.window, "alt: window m; partial: last k layers")
      ->capture_default_str();
  c->add_option("--bits", a.bits,
                "weight bits: one value or one per layer (comma-separated); default: per linear "
                "from the model config's edgellm record (a compressed model), else 8");
  c->add_option("--sparsity", a.sparsity,
                "weight sparsity: one value or one per layer; default: from the model config's "
                "edgellm record, else 0");
  c->add_option("--batch", a.batch, "sequences per micro-batch (trace)")->capture_default_str();
  c->add_option("--seq", a.seq, "tokens per sequence")->capture_default_str();
  c->add_option("--rank", a.rank, "LoRA rank")->capture_default_str();
  c->add_option("--samples", a.samples, "sequences per optimizer step")->capture_default_str();
  c->add_option("--overlap", a.overlap, "paper | flexgen | none | all")->capture_default_str();
  c->add_option("--grid", a.grid, "placement grid steps per unit fraction")->capture_default_str();
  c->add_flag("--json", a.json, "machine-readable JSON on stdout");
}

TuneConfig make_tune(const TuneArgs& a, const ModelConfig& m) {
  TuneConfig t;
  t.method = parse_method(a.method);
  t.exit_layer = a.exit;
  t.window = t.method == Method::Lora ? 0 : a.window;
  if (!a.bits.empty()) t.bits = parse_layer_bits(a.bits, m.n_layers);
  if (!a.sparsity.empty()) t.sparsity = parse_layer_sparsity(a.sparsity, m.n_layers);
  t.batch = a.batch;
  t.seq = a.seq;
  t.lora_rank = a.rank;
  return t;
}

void run_trace(const TuneArgs& a, bool summary) {
  const ModelConfig m = load_model_shape(a.model);
  TuneConfig t = make_tune(a, m);
  if (t.method == Method::Alt && t.exit_layer == 0) t.exit_layer = m.n_layers;
  const Trace tr = build_trace(m, t);
  if (a.json || !summary) return print_json(tr.to_json(!summary));
  fmt::print(
      "{} ops, {:.3f} TFLOP (fwd {:.3f}, bwd {:.3f}), weights at rest {:.2f} GB, saved "
      "activations {:.1f} MB\n",
      tr.ops.size(), tr.total_flops() / 1e12, tr.gemm_flops(Phase::Forward) / 1e12,
      tr.gemm_flops(Phase::Backward) / 1e12, tr.weights_stored / 1e9, tr.saved_peak / 1e6);
}

void print_search(const SearchResult& r, const char* overlap) {
  const auto& s = r.best;
  if (!r.found) {
    fmt::print("overlap {}: no feasible schedule\n", overlap);
    return;
  }
  fmt::print(
      "overlap {:<8} {:.3f} s/iteration  {} micro-batch {} x {} per block; weights "
      "sram/dram/ssd {:.2f}/{:.2f}/{:.2f}, acts {:.2f}/{:.2f}/{:.2f}, grads "
      "{:.2f}/{:.2f}/{:.2f}\n",
      overlap, r.seconds, s.order(), s.micro_batch, s.batches_per_block, s.place.weights[0],
      s.place.weights[1], s.place.weights[2], s.place.acts[0], s.place.acts[1], s.place.acts[2],
      s.place.grads[0], s.place.grads[1], s.place.grads[2]);
  fmt::print(
      "  best row-by-row {:.3f} s, best column-by-column {:.3f} s; tuning memory {:.1f} MB, "
      "weights {:.2f} GB; {} schedules in {:.0f} ms\n",
      r.best_row_seconds, r.best_column_seconds, r.tuning_bytes / 1e6, r.weights_bytes / 1e9,
      r.evaluated, r.search_ms);
  for (const auto& e : r.per_exit) {
    fmt::print("  exit {:>3}: {:.3f} s  DRAM {:.2f}/{:.2f} GB  SSD {:.2f} GB\n", e.exit,
               e.cost.seconds, e.cost.mem.dram / 1e9, e.cost.mem.dram_cap / 1e9,
               e.cost.mem.ssd / 1e9);
    fmt::print("    {:<14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}\n", "block", "x", "time",
               "r_to_sram", "w_to_dram", "r_to_dram", "w_to_ssd", "compute", "binding");
    for (const auto& b : e.cost.blocks)
      fmt::print("    {:<14} {:>6g} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f}  {}\n",
                 b.name, b.repeat, b.time, b.r_to_sram, b.w_to_dram, b.r_to_dram, b.w_to_ssd,
                 b.comp, b.binding);
  }
}

void run_search(const TuneArgs& a) {
  const ModelConfig m = load_model_shape(a.model);
  const TuneConfig t = make_tune(a, m);
  const Device dev = Device::load(a.device);
  Workload wl;
  wl.samples_per_iteration = a.samples;
  std::vector<Overlap> overlaps;
  if (a.overlap == "all")
    overlaps = {Overlap::Paper, Overlap::FlexGen, Overlap::None};
  else
    overlaps = {parse_overlap(a.overlap)};
  nlohmann::json out;
  out["model"] = a.model;
  out["device"] = dev.to_json();
  out["method"] = a.method;
  for (Overlap o : overlaps) {
    SearchSpace sp;
    sp.overlap = o;
    sp.grid = a.grid;
    const SearchResult r = search(m, t, {}, dev, wl, sp);
    if (a.json)
      out["results"][overlap_name(o)] = r.to_json();
    else
      print_search(r, overlap_name(o));
  }
  if (a.json) print_json(out);
}

// `sim --from-run DIR`: the iteration a tuning run did on this CPU, estimated on an edge
// accelerator. The trainer leaves DIR/run.json (method, exits, window, seq, batch, rank, the
// measured seconds per step and peak RSS) and DIR/base_config.json (the base model's shape with
// its per-layer bits and sparsity); ALT's estimate is the mean over its exits, each step
// training one of them.
void run_from_run(const TuneArgs& a, const std::string& dir) {
  const std::string rp = dir + "/run.json";
  nlohmann::json r;
  try {
    r = nlohmann::json::parse(read_file(rp));
  } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range (number overflow)
    fail("[sim] {}: not valid JSON: {}", rp, e.what());
  }
  if (!r.is_object()) fail("[sim] {}: not a JSON object", rp);
  const ModelConfig m = load_model_shape(dir + "/base_config.json");
  auto field = [&](const char* k) -> const nlohmann::json& {
    if (!r.contains(k)) fail("[sim] {}: field '{}' is missing", rp, k);
    return r[k];
  };
  auto integer = [&](const char* k, int64_t lo, int64_t hi) {
    return json_int(field(k), JsonWhere{"sim", rp, k}, lo, hi);
  };
  const nlohmann::json& mj = field("method");
  if (!mj.is_string()) fail("[sim] {}: field 'method' is not a string: {}", rp, mj.dump());
  const std::string method = mj.get<std::string>();
  TuneConfig t;
  t.seq = static_cast<int>(integer("seq", 1, 1 << 20));
  t.batch = static_cast<int>(integer("batch", 1, 1 << 16));
  t.lora_rank = static_cast<int>(integer("rank", 1, 1 << 16));
  const int64_t accum = integer("grad_accum", 1, 1 << 20);
  std::vector<int> depths;
  if (method == "alt") {
    t.method = Method::Alt;
    t.window = static_cast<int>(integer("window", 1, m.n_layers));
    const nlohmann::json& d = field("exit_depths");
    if (!d.is_array() || d.empty()) fail("[sim] {}: field 'exit_depths' is not a list", rp);
    for (size_t i = 0; i < d.size(); ++i)
      depths.push_back(static_cast<int>(
          json_int(d[i], JsonWhere{"sim", rp, fmt::format("exit_depths[{}]", i)}, 1, m.n_layers)));
  } else if (method == "lora") {
    // LoRA on a suffix of the layers only is partial tuning (backward stops below it).
    const nlohmann::json& ll = field("lora_layers");
    if (!ll.is_array()) fail("[sim] {}: field 'lora_layers' is not a list", rp);
    const int k = static_cast<int>(ll.size());
    bool suffix = k > 0 && k < m.n_layers;
    for (int i = 0; suffix && i < k; ++i) suffix = ll[static_cast<size_t>(i)] == m.n_layers - k + i;
    t.method = suffix ? Method::Partial : Method::Lora;
    if (suffix) t.window = k;
  } else {
    fail("[sim] {}: method '{}' is not modelled by the simulator (lora, partial, alt)", rp, method);
  }
  const Device dev = Device::load(a.device);
  Workload wl;
  wl.samples_per_iteration = static_cast<int>(t.batch * accum);
  SearchSpace sp;
  sp.overlap = parse_overlap(a.overlap == "all" ? "paper" : a.overlap);
  sp.grid = a.grid;
  nlohmann::json per_exit = nlohmann::json::array();
  double est = 0, tuning_bytes = 0;
  bool found = true;
  for (int d : depths.empty() ? std::vector<int>{0} : depths) {
    TuneConfig x = t;
    if (d > 0) x.exit_layer = d, x.window = std::min(t.window, d);
    const SearchResult res = search(m, x, {}, dev, wl, sp);
    found = found && res.found;
    est += res.seconds;
    tuning_bytes = std::max(tuning_bytes, res.tuning_bytes);
    if (d > 0) per_exit.push_back({{"exit", d}, {"seconds", res.seconds}, {"found", res.found}});
  }
  est /= double(std::max<size_t>(1, depths.size()));
  const double measured = r.value("seconds_per_step", 0.0);
  const double rss = r.value("peak_rss_bytes", 0.0);
  nlohmann::json out = {{"run", dir},
                        {"method", method_name(t.method)},
                        {"model_shape", m.shape_spec()},
                        {"device", dev.name},
                        {"seq", t.seq},
                        {"samples_per_iteration", wl.samples_per_iteration},
                        {"exit_depths", depths},
                        {"window", t.window},
                        {"estimated_seconds_per_iteration", found ? nlohmann::json(est) : nullptr},
                        {"estimated_per_exit", per_exit},
                        {"estimated_tuning_bytes", tuning_bytes},
                        {"measured_cpu_seconds_per_step", measured},
                        {"measured_cpu_peak_rss_bytes", rss}};
  if (a.json) return print_json(out);
  fmt::print("run {}: {} on {}, seq {}, {} sequences per step{}\n", dir, method_name(t.method),
             m.shape_spec(), t.seq, wl.samples_per_iteration,
             depths.empty()
                 ? std::string()
                 : fmt::format(", exits {}, window {}", nlohmann::json(depths).dump(), t.window));
  fmt::print("  measured on this CPU:  {:.4f} s/step, peak RSS {:.1f} MiB\n", measured,
             rss / 1048576.0);
  if (!found) return fmt::print("  estimated on '{}': no feasible schedule\n", dev.name);
  fmt::print("  estimated on '{}': {:.4f} s/iteration{} (hwsim model), tuning memory {:.1f} MB\n",
             dev.name, est, depths.empty() ? "" : " (mean over exits)", tuning_bytes / 1e6);
  for (const auto& e : per_exit)
    fmt::print("    exit {:>3}: {:.4f} s\n", e["exit"].get<int>(), e["seconds"].get<double>());
}

std::vector<double> parse_fractions(const std::string& s, const char* what) {
  std::vector<double> v = parse_layer_sparsity(s, 3);
  if (v.size() != 3) fail("[hwsim] --{}: give sram,dram,ssd fractions", what);
  return v;
}

}  // namespace

void register_sim(CLI::App& app) {
  auto* sim = app.add_subcommand("sim", "simulate tuning on an edge accelerator (hwsim)");
  sim->require_subcommand(0, 1);
  auto base = std::make_shared<TuneArgs>();
  auto want_trace = std::make_shared<bool>(false);
  add_tune_args(sim, *base);
  sim->add_flag("--trace", *want_trace, "print the op trace of one iteration (JSON)");
  auto from_run = std::make_shared<std::string>();
  sim->add_option("--from-run", *from_run,
                  "a `tune` output directory: estimate its iteration (shape, bits, sparsity, "
                  "method, exits, window, seq, batch from run.json / base_config.json) on "
                  "--device, next to the measured CPU figures");

  // sim gemm
  auto* gemm =
      sim->add_subcommand("gemm", "cycles of one GEMM on an R x C systolic array (Scale-Sim v2)");
  struct GemmArgs {
    int rows = 32, cols = 32;
    std::string dataflow = "os";
    int64_t m = 0, n = 0, k = 0;
    int bits = 8, base_bits = 8, granularity = 1;
    bool json = false;
  };
  auto g = std::make_shared<GemmArgs>();
  gemm->add_option("--rows", g->rows, "array rows R")->capture_default_str();
  gemm->add_option("--cols", g->cols, "array columns C")->capture_default_str();
  gemm->add_option("--dataflow", g->dataflow, "os | ws | is")->capture_default_str();
  gemm->add_option("--m", g->m, "ifmap/ofmap rows")->required();
  gemm->add_option("--n", g->n, "filter/ofmap columns")->required();
  gemm->add_option("--k", g->k, "reduction length")->required();
  gemm->add_option("--bits", g->bits, "weight bits (flexible-precision MAC)")
      ->capture_default_str();
  gemm->add_option("--granularity", g->granularity, "MAC bit granularity")->capture_default_str();
  gemm->add_flag("--json", g->json, "JSON output");
  gemm->callback([g] {
    const auto r = systolic_gemm(g->rows, g->cols, parse_dataflow(g->dataflow, "--dataflow"),
                                 {g->m, g->n, g->k});
    const double rate = mac_rate(g->bits, g->base_bits, g->granularity);
    nlohmann::json j{{"rows", g->rows},
                     {"cols", g->cols},
                     {"dataflow", g->dataflow},
                     {"M", g->m},
                     {"N", g->n},
                     {"K", g->k},
                     {"total_cycles", r.total_cycles},
                     {"folds", r.folds},
                     {"cycles_per_fold", r.cycles_per_fold},
                     {"overall_util_pct", r.overall_util_pct},
                     {"mapping_eff_pct", r.mapping_eff_pct},
                     {"compute_util_pct", r.compute_util_pct},
                     {"sram_ifmap_reads", r.sram_ifmap_reads},
                     {"sram_filter_reads", r.sram_filter_reads},
                     {"sram_ofmap_writes", r.sram_ofmap_writes},
                     {"weight_bits", g->bits},
                     {"mac_rate", rate},
                     {"cycles_at_weight_bits", static_cast<double>(r.total_cycles + 1) / rate}};
    if (g->json) return print_json(j);
    fmt::print(
        "{}x{} {}  M={} N={} K={}: {} cycles ({} folds x {}), util {:.2f}%, mapping "
        "efficiency {:.2f}%, compute util {:.2f}%\n",
        g->rows, g->cols, g->dataflow, g->m, g->n, g->k, r.total_cycles, r.folds, r.cycles_per_fold,
        r.overall_util_pct, r.mapping_eff_pct, r.compute_util_pct);
    fmt::print("SRAM reads: ifmap {}, filter {}; ofmap writes {} (elements)\n", r.sram_ifmap_reads,
               r.sram_filter_reads, r.sram_ofmap_writes);
  });

  // sim trace
  auto* trace = sim->add_subcommand("trace", "op trace of one tuning iteration (JSON)");
  auto ta = std::make_shared<TuneArgs>();
  auto summary = std::make_shared<bool>(false);
  add_tune_args(trace, *ta);
  trace->add_flag("--summary", *summary, "totals only (no op list)");
  trace->callback([ta, summary] { run_trace(*ta, *summary); });

  // sim search
  auto* srch = sim->add_subcommand("search", "best schedule, placement and predicted latency");
  auto sa = std::make_shared<TuneArgs>();
  add_tune_args(srch, *sa);
  srch->callback([sa] { run_search(*sa); });

  // sim eval: one given schedule
  auto* ev = sim->add_subcommand("eval", "predicted latency and memory of one given schedule");
  auto ea = std::make_shared<TuneArgs>();
  add_tune_args(ev, *ea);
  struct EvalArgs {
    int micro_batch = 1, nb = 1;
    double sram_share = 0;
    std::string w = "0,1,0", act = "0,1,0", grad = "0,1,0";
  };
  auto es = std::make_shared<EvalArgs>();
  ev->add_option("--micro-batch", es->micro_batch, "sequences per micro-batch")
      ->capture_default_str();
  ev->add_option("--nb", es->nb, "micro-batches per block (1 = row-by-row)")->capture_default_str();
  ev->add_option("--sram-share", es->sram_share, "share of SRAM for resident tensors")
      ->capture_default_str();
  ev->add_option("--weights", es->w, "weights sram,dram,ssd fractions")->capture_default_str();
  ev->add_option("--acts", es->act, "saved activations sram,dram,ssd")->capture_default_str();
  ev->add_option("--grads", es->grad, "LoRA state sram,dram,ssd")->capture_default_str();
  ev->callback([ea, es] {
    const ModelConfig m = load_model_shape(ea->model);
    const TuneConfig t = make_tune(*ea, m);
    const Device dev = Device::load(ea->device);
    Schedule s;
    s.micro_batch = es->micro_batch;
    s.batches_per_block = es->nb;
    s.sram_resident_share = es->sram_share;
    s.overlap = parse_overlap(ea->overlap == "all" ? "paper" : ea->overlap);
    auto f = [](const std::string& x, const char* what) {
      auto v = parse_fractions(x, what);
      return Fractions{v[0], v[1], v[2]};
    };
    s.place.weights = f(es->w, "weights");
    s.place.acts = f(es->act, "acts");
    s.place.grads = f(es->grad, "grads");
    Workload wl;
    wl.samples_per_iteration = ea->samples;
    const SearchResult r = evaluate_schedule(m, t, {}, dev, wl, s);
    if (ea->json) return print_json(r.to_json());
    for (const auto& e : r.per_exit)
      if (!e.cost.feasible)
        fmt::print("exit {}: placement rejected: {}\n", e.exit, e.cost.infeasible_reason);
    print_search(r, overlap_name(s.overlap));
  });

  // sim paper
  auto* paper =
      sim->add_subcommand("paper", "reproduce the paper's speedups and memory (LLaMA-7B)");
  struct PaperArgs {
    std::string device = "edge-accel", model = "llama-7b", plot, overlap = "paper";
    int seq = 512, samples = 16, grid = 20;
    bool json = false, sweep = false;
  };
  auto pa = std::make_shared<PaperArgs>();
  paper->add_option("--device", pa->device, "device preset or JSON file")->capture_default_str();
  paper->add_option("--model-config", pa->model, "model shape")->capture_default_str();
  paper->add_option("--seq", pa->seq, "tokens per sequence")->capture_default_str();
  paper->add_option("--samples", pa->samples, "sequences per optimizer step")
      ->capture_default_str();
  paper->add_option("--overlap", pa->overlap, "paper | flexgen | none")->capture_default_str();
  paper->add_option("--grid", pa->grid, "placement grid steps")->capture_default_str();
  paper->add_flag("--sweep", pa->sweep, "also sweep SRAM size, DRAM bandwidth and bits");
  paper->add_option("--plot", pa->plot,
                    "write the sweep as an SVG plot to this file (implies --sweep)");
  paper->add_flag("--json", pa->json, "JSON output");
  paper->callback([pa] {
    const ModelConfig m = load_model_shape(pa->model);
    const Device dev = Device::load(pa->device);
    PaperOptions o;
    o.seq = pa->seq;
    o.samples = pa->samples;
    o.grid = pa->grid;
    o.overlap = parse_overlap(pa->overlap);
    const PaperReport rep = reproduce_paper(m, dev, o);
    nlohmann::json j = rep.to_json();
    std::vector<SweepPoint> pts;
    if (pa->sweep || !pa->plot.empty()) {
      pts = sweep(m, dev, o);
      for (const auto& p : pts)
        j["sweep"].push_back({{"axis", p.axis},
                              {"x", p.x},
                              {"lora8_seconds", p.lora_seconds},
                              {"luc_alt_seconds", p.edge_seconds},
                              {"speedup", p.speedup},
                              {"lora8_binding", p.lora_binding},
                              {"luc_alt_binding", p.edge_binding}});
    }
    if (!pa->plot.empty()) {
      write_file_atomic(pa->plot, sweep_svg(pts, dev.name));
      j["plot"] = pa->plot;
    }
    if (pa->json) return print_json(j);
    fmt::print("{}", rep.table());
    if (!pts.empty())
      fmt::print("\nsweep (LUC 4-bit + ALT unless the axis is bits):\n{}", sweep_table(pts));
    if (!pa->plot.empty()) fmt::print("\nplot written to {}\n", pa->plot);
  });

  // sim flexgen
  auto* fg = sim->add_subcommand("flexgen", "FlexGen's own cost model check value (OPT-30B, T4)");
  auto fj = std::make_shared<bool>(false);
  fg->add_flag("--json", *fj, "JSON output");
  fg->callback([fj] {
    const FlexGenResult r = flexgen_cost(FlexGenCase{});
    if (*fj) return print_json(r.to_json());
    fmt::print(
        "FlexGen cost model, OPT-30B s=512 n=32 gbs=48 nb=3, weights 20% GPU / 80% CPU, T4 "
        "constants:\n  T = {:.1f} s, {:.2f} tokens/s (FlexGen's estimate 645.8 s, 7.14 tok/s; "
        "measured 7.32)\n",
        r.total_s, r.tokens_per_s);
  });

  // sim devices
  auto* dv = sim->add_subcommand("devices", "list device presets, or print one as editable JSON");
  auto show = std::make_shared<std::string>();
  dv->add_option("--show", *show, "preset name or file: print its JSON");
  dv->callback([show] {
    if (!show->empty()) {
      if (const char* text = Device::preset_json(*show)) {
        std::printf("%s", text);
        return;
      }
      return print_json(Device::load(*show).to_json());
    }
    for (const auto& n : Device::preset_names()) {
      const Device d = Device::load(n);
      fmt::print("{:<11} {}\n", n, d.description);
    }
  });

  // `edgellm sim [--trace] --model-config ... --device ...` without a subcommand.
  sim->callback([sim, base, want_trace, from_run] {
    if (!sim->get_subcommands().empty()) return;
    if (!from_run->empty()) return run_from_run(*base, *from_run);
    if (*want_trace) return run_trace(*base, false);
    run_search(*base);
  });
}

}  // namespace edgellm::cli
