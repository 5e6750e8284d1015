#include "pipeline/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

using nlohmann::json;

std::string format_number(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.6g}", v);
}

namespace {

json unavailable(const std::string& id, const std::string& title, const std::string& kind,
                 const std::string& reason) {
  return {{"id", id}, {"title", title}, {"kind", kind}, {"available", false}, {"reason", reason}};
}

void add_not_run(json& list, const json& src) {
  if (!src.is_array()) return;
  for (const auto& x : src)
    if (std::find(list.begin(), list.end(), x) == list.end()) list.push_back(x);
}

json sensitivity_figure(const json& prof) {
  const json& s = prof["sensitivity"];
  if (!s.is_object())
    return unavailable("sensitivity", "Per-layer sensitivity (paper Fig. 3)", "line",
                       prof["not_run"].is_array() && !prof["not_run"].empty()
                           ? prof["not_run"][0].get<std::string>()
                           : "not measured");
  json f = {{"id", "sensitivity"}, {"title", "Per-layer sensitivity (paper Fig. 3)"},
            {"kind", "line"},      {"available", true},
            {"x_label", "layer"},  {"y_label", "layer output MSE"},
            {"log_y", true},       {"series", json::array()}};
  for (const char* k : {"s_quant", "s_prune"}) {
    if (!s.contains(k)) continue;
    const auto v = s[k].get<std::vector<double>>();
    std::vector<double> x(v.size());
    for (size_t i = 0; i < v.size(); ++i) x[i] = double(i);
    f["series"].push_back(
        {{"name", std::string(k) == "s_quant" ? "quantization" : "pruning"}, {"x", x}, {"y", v}});
  }
  return f;
}

json allocation_figures(const json& alloc, json& figs) {
  const auto bits = alloc["bits"].get<std::vector<int>>();
  const auto sp = alloc["sparsity"].get<std::vector<double>>();
  std::vector<std::string> groups;
  for (size_t i = 0; i < bits.size(); ++i) groups.push_back(std::to_string(i));
  json b = {
      {"id", "allocation_bits"},
      {"title", fmt::format("Bit-width per layer (policy {})", alloc["policy"].get<std::string>())},
      {"kind", "bar"},
      {"available", true},
      {"y_label", "bits"},
      {"x_label", "layer"},
      {"groups", groups},
      {"series", {{{"name", "bits"}, {"values", bits}}}}};
  json s = b;
  s["id"] = "allocation_sparsity";
  s["title"] = fmt::format("Sparsity per layer (policy {})", alloc["policy"].get<std::string>());
  s["y_label"] = "fraction of weights pruned";
  s["series"] = {{{"name", "sparsity"}, {"values", sp}}};
  figs.push_back(b);
  figs.push_back(s);
  return nullptr;
}

// One training-loss series per exit (ALT: each step trains the exit in its "exit_depth"; other
// methods: the last layer), and the validation loss of every exit when recorded.
json loss_figure(const std::string& metrics_path) {
  std::map<int, std::pair<std::vector<double>, std::vector<double>>> train, val;
  std::istringstream in(read_file(metrics_path));
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    const double step = j["step"].get<double>();
    const int depth = j.value("exit_depth", 0);
    auto& t = train[depth];
    t.first.push_back(step);
    t.second.push_back(j["loss"].get<double>());
    ++n;
    if (j.contains("val_exit_loss") && j.contains("val_exit_depths")) {
      const auto d = j["val_exit_depths"].get<std::vector<int>>();
      const auto v = j["val_exit_loss"].get<std::vector<double>>();
      for (size_t i = 0; i < d.size() && i < v.size(); ++i)
        val[d[i]].first.push_back(step), val[d[i]].second.push_back(v[i]);
    } else if (j.contains("val_loss")) {
      val[depth].first.push_back(step), val[depth].second.push_back(j["val_loss"]);
    }
  }
  json f = {{"id", "loss"},      {"title", "Tuning loss per exit"},
            {"kind", "line"},    {"available", n > 0},
            {"x_label", "step"}, {"y_label", "cross-entropy (nats/token)"},
            {"markers", false},  {"series", json::array()}};
  auto name = [](const char* what, int d) {
    return d > 0 ? fmt::format("{} (exit after layer {})", what, d)
                 : fmt::format("{} (last layer)", what);
  };
  for (const auto& [d, xy] : train)
    f["series"].push_back({{"name", name("train", d)}, {"x", xy.first}, {"y", xy.second}});
  for (const auto& [d, xy] : val)
    f["series"].push_back({{"name", name("validation", d)}, {"x", xy.first}, {"y", xy.second}});
  if (n == 0) f["reason"] = "no tuning steps recorded";
  return f;
}

json memory_figure(const json& tune, const json& alloc) {
  const json& v = tune["memory"]["vanilla_lora"];
  const json& r = tune["memory"]["this_run"];
  std::vector<std::string> groups;
  std::vector<double> a, b;
  // The trainer's categories in their own order (train/memory.h), then the total.
  for (const char* k : {"weights", "adapters", "gradients", "optimizer", "activations", "scratch",
                        "workspace", "prefix_cache", "total"}) {
    if (!v.contains(k)) continue;
    groups.push_back(k);
    a.push_back(v[k].get<double>() / 1048576.0);
    b.push_back(r.value(k, 0.0) / 1048576.0);
  }
  json f = {{"id", "memory"},
            {"title", "Tuning memory per category: vanilla LoRA vs this run (planned = allocated)"},
            {"kind", "bar"},
            {"available", true},
            {"x_label", "category"},
            {"y_label", "MiB"},
            {"groups", groups},
            {"series",
             {{{"name", "vanilla LoRA (uncompressed base, all layers)"}, {"values", a}},
              {{"name", "this run (" + tune["method"].get<std::string>() + ")"}, {"values", b}}}}};
  json notes = json::array();
  notes.push_back(fmt::format("peak resident set of the tuning process: {:.1f} MiB (measured)",
                              tune["peak_rss_bytes"].get<double>() / 1048576.0));
  if (alloc["compressed"].get<bool>())
    notes.push_back(fmt::format(
        "compressed decoder linears store {:.2f} MiB packed (bf16: {:.2f} MiB); the run tunes on "
        "the packed weights",
        alloc["packed_bytes"].get<double>() / 1048576.0,
        alloc["dense_bf16_bytes"].get<double>() / 1048576.0));
  f["notes"] = notes;
  return f;
}

double num_or_nan(const json& j) { return j.is_number() ? j.get<double>() : NAN; }

json metrics_table(const json& ev) {
  json f = {{"id", "metrics"},
            {"title", "Metrics per condition and exit (vote: when exits exist)"},
            {"kind", "table"},
            {"available", true},
            {"columns",
             {"condition", "exit", "task exact match", "task response NLL", "perplexity",
              "MMLU micro", "MMLU macro"}},
            {"rows", json::array()}};
  for (const auto& c : ev["conditions"]) {
    for (const auto& e : c["exits"]) {
      f["rows"].push_back({c["label"], e["exit"], e["task"]["exact_match"],
                           e["task"]["response_nll"],
                           e["ppl"].is_object() ? e["ppl"]["ppl"] : json(nullptr),
                           e["mmlu"].is_object() ? e["mmlu"]["micro"] : json(nullptr),
                           e["mmlu"].is_object() ? e["mmlu"]["macro"] : json(nullptr)});
    }
    if (c["vote"].is_object())
      f["rows"].push_back({c["label"], "vote", c["vote"]["task"]["exact_match"],
                           c["vote"]["task"]["response_nll"], nullptr, nullptr, nullptr});
  }
  return f;
}

json family_figure(const json& ev) {
  json f = {{"id", "task_groups"},
            {"title", "Held-out exact match per task family"},
            {"kind", "bar"},
            {"available", true},
            {"x_label", "task family"},
            {"y_label", "exact match"},
            {"groups", json::array()},
            {"series", json::array()}};
  std::vector<std::string> groups;
  for (const auto& c : ev["conditions"])
    for (const auto& g : c["exits"].back()["task"]["groups"])
      if (std::find(groups.begin(), groups.end(), g["name"]) == groups.end())
        groups.push_back(g["name"]);
  groups.push_back("all");
  f["groups"] = groups;
  for (const auto& c : ev["conditions"]) {
    const json& t = c["exits"].back()["task"];
    json v = json::array();  // null where a condition has no such family
    for (const auto& name : groups) {
      json x = name == "all" ? t["exact_match"] : json(nullptr);
      for (const auto& g : t["groups"])
        if (g["name"] == name) x = g["exact_match"];
      v.push_back(x);
    }
    f["series"].push_back({{"name", c["label"]}, {"values", v}});
  }
  return f;
}

json speed_figures(const json& plan, json& figs) {
  std::vector<std::string> groups;
  std::vector<double> secs, speed;
  json rows = json::array();
  for (const auto& r : plan["runs"]) {
    groups.push_back(r["label"]);
    secs.push_back(r["seconds"]);
    speed.push_back(r["speedup"]);
    rows.push_back({r["label"], r["method"], r["mean_bits"], r["mean_sparsity"], r["seconds"],
                    r["speedup"], r["tuning_bytes"].get<double>() / 1048576.0,
                    r["weights_bytes"].get<double>() / 1048576.0});
  }
  figs.push_back({{"id", "speedup"},
                  {"title", fmt::format("Simulated tuning iteration on '{}' (hwsim model output, "
                                        "not a measurement)",
                                        plan["device"].get<std::string>())},
                  {"kind", "bar"},
                  {"available", true},
                  {"x_label", "configuration"},
                  {"y_label", "seconds / iteration"},
                  {"groups", groups},
                  {"series", {{{"name", "seconds / iteration"}, {"values", secs}}}}});
  figs.push_back({{"id", "speedup_table"},
                  {"title", "Simulated speedup vs vanilla LoRA"},
                  {"kind", "table"},
                  {"available", true},
                  {"columns",
                   {"configuration", "method", "mean bits", "mean sparsity", "s / iteration",
                    "speedup", "tuning MiB", "weights MiB"}},
                  {"rows", rows}});
  return nullptr;
}

std::string cell_text(const json& c) {
  if (c.is_null()) return "–";
  if (c.is_number()) return format_number(c.get<double>());
  if (c.is_string()) return c.get<std::string>();
  return c.dump();
}

// Rows of a figure as text cells (header first): the one tabular view md and html share.
std::vector<std::vector<std::string>> figure_rows(const json& f) {
  std::vector<std::vector<std::string>> rows;
  const std::string kind = f["kind"];
  if (kind == "table") {
    std::vector<std::string> h;
    for (const auto& c : f["columns"]) h.push_back(c);
    rows.push_back(h);
    for (const auto& r : f["rows"]) {
      std::vector<std::string> row;
      for (const auto& c : r) row.push_back(cell_text(c));
      rows.push_back(row);
    }
  } else if (kind == "bar") {
    std::vector<std::string> h{f.value("x_label", "group")};
    for (const auto& s : f["series"]) h.push_back(s["name"]);
    rows.push_back(h);
    for (size_t g = 0; g < f["groups"].size(); ++g) {
      std::vector<std::string> row{cell_text(f["groups"][g])};
      for (const auto& s : f["series"])
        row.push_back(g < s["values"].size() ? cell_text(s["values"][g]) : "");
      rows.push_back(row);
    }
  } else {
    std::vector<std::string> h{f.value("x_label", "x")};
    for (const auto& s : f["series"]) h.push_back(s["name"]);
    rows.push_back(h);
    std::set<double> xs;
    for (const auto& s : f["series"])
      for (const auto& x : s["x"]) xs.insert(x.get<double>());
    std::vector<double> xv(xs.begin(), xs.end());
    // Long curves are shown at about 20 evenly spaced x values (the last one always); the JSON
    // holds every point.
    // Every x of a short series (e.g. validation every N steps) is shown too.
    std::set<double> show;
    const size_t stride = std::max<size_t>(1, (xv.size() + 19) / 20);
    for (size_t i = 0; i < xv.size(); ++i)
      if (i % stride == 0 || i + 1 == xv.size()) show.insert(xv[i]);
    for (const auto& s : f["series"])
      if (s["x"].size() <= 20)
        for (const auto& x : s["x"]) show.insert(x.get<double>());
    const std::vector<double> shown(show.begin(), show.end());
    for (double x : shown) {
      std::vector<std::string> row{format_number(x)};
      for (const auto& s : f["series"]) {
        std::string cell;
        for (size_t i = 0; i < s["x"].size(); ++i)
          if (s["x"][i].get<double>() == x) cell = cell_text(s["y"][i]);
        row.push_back(cell);
      }
      rows.push_back(row);
    }
  }
  return rows;
}

std::string md_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|')
      o += "\\|";
    else if (c == '\n')
      o += ' ';
    else
      o += c;
  }
  return o;
}

std::string html_escape(const std::string& s) { return report::xml_escape(s); }

}  // namespace

report::Chart figure_chart(const json& f) {
  if (f["kind"] == "bar") {
    report::BarChart b;
    b.title = f["title"];
    b.y_label = f.value("y_label", "");
    for (const auto& g : f["groups"]) b.groups.push_back(g);
    for (const auto& s : f["series"]) {
      b.series_names.push_back(s["name"]);
      std::vector<double> v;
      for (const auto& x : s["values"]) v.push_back(num_or_nan(x));
      b.values.push_back(v);
    }
    return b;
  }
  report::LineChart l;
  l.title = f["title"];
  l.x_label = f.value("x_label", "");
  l.y_label = f.value("y_label", "");
  l.log_y = f.value("log_y", false);
  l.markers = f.value("markers", true);
  for (const auto& s : f["series"]) {
    report::Series se{s["name"], {}, {}};
    for (const auto& x : s["x"]) se.x.push_back(num_or_nan(x));
    for (const auto& y : s["y"]) se.y.push_back(num_or_nan(y));
    l.series.push_back(se);
  }
  return l;
}

std::string figure_svg(const json& f) {
  if (!f.value("available", false) || f["kind"] == "table") return "";
  const bool wide = f["kind"] == "bar" && f["groups"].size() > 8;
  return report::render_svg(figure_chart(f), {wide ? 760.0 : 620.0, 340});
}

json build_report(const StageContext& ctx) {
  const json prof = ctx.read_json("profile", "profile.json");
  const json alloc = ctx.read_json("compress", "allocation.json");
  const json tune = ctx.read_json("tune", "tune.json");
  const json ev = ctx.read_json("evaluate", "evaluate.json");
  const json plan = ctx.read_json("plan", "plan.json");
  json rep = {{"title", "edgellm pipeline report: " + ctx.cfg.name},
              {"config", ctx.cfg.to_json()},
              {"figures", json::array()},
              {"not_run", json::array()}};
  json& figs = rep["figures"];
  figs.push_back(sensitivity_figure(prof));
  allocation_figures(alloc, figs);
  figs.push_back(loss_figure(ctx.stage_dir("tune") + "/metrics.jsonl"));
  figs.push_back(memory_figure(tune, alloc));
  figs.push_back(metrics_table(ev));
  figs.push_back(family_figure(ev));
  speed_figures(plan, figs);
  for (const json* j : {&prof, &alloc, &tune, &ev, &plan})
    add_not_run(rep["not_run"], (*j)["not_run"]);
  add_not_run(rep["notes"], alloc["notes"]);
  if (!rep.contains("notes")) rep["notes"] = alloc["notes"];

  // The summary: the final exit of each condition (and the exit vote where there is one), and
  // the simulated speedup.
  json sum = json::array();
  auto row = [&](const std::string& label, const json& e) {
    sum.push_back({{"condition", label},
                   {"exact_match", e["task"]["exact_match"]},
                   {"correct", e["task"]["correct"]},
                   {"n", e["task"]["n"]},
                   {"response_nll", e["task"]["response_nll"]},
                   {"ppl", e["ppl"].is_object() ? e["ppl"]["ppl"] : json(nullptr)},
                   {"mmlu", e["mmlu"].is_object() ? e["mmlu"]["micro"] : json(nullptr)}});
  };
  for (const auto& c : ev["conditions"]) {
    row(c["label"].get<std::string>(), c["exits"].back());
    if (c["vote"].is_object()) row(c["label"].get<std::string>() + ", vote", c["vote"]);
  }
  rep["summary"] = {{"conditions", sum},
                    {"simulated_speedup", plan["runs"].back()["speedup"]},
                    {"device", plan["device"]},
                    {"tune_steps", tune["steps"]},
                    {"final_loss", tune["loss"]}};
  rep["calibration_sample"] = prof["calibration"]["sample_text"];
  rep["task_samples"] = ev["conditions"].back()["exits"].back()["task"]["samples"];
  return rep;
}

std::string report_markdown(const json& rep) {
  std::string s = "# " + rep["title"].get<std::string>() + "\n\n";
  s += "Generated by `edgellm pipeline`; every number below is read from `report.json`. "
       "Simulated figures are labelled as such; everything else was measured in this run.\n\n";
  for (const auto& f : rep["figures"]) {
    s += fmt::format("## {}\n\n<!-- figure: {} -->\n", f["title"].get<std::string>(),
                     f["id"].get<std::string>());
    if (!f.value("available", false)) {
      s += "*Not available: " + md_escape(f.value("reason", "")) + "*\n\n";
      continue;
    }
    if (f["kind"] != "table")
      s += fmt::format("![{}](figures/{}.svg)\n\n", md_escape(f["title"]),
                       f["id"].get<std::string>());
    const auto rows = figure_rows(f);
    for (size_t r = 0; r < rows.size(); ++r) {
      s += "|";
      for (const auto& c : rows[r]) {
        s += ' ';
        s += md_escape(c);
        s += " |";
      }
      s += "\n";
      if (r == 0) {
        s += "|";
        for (size_t k = 0; k < rows[r].size(); ++k) s += "---|";
        s += "\n";
      }
    }
    if (f.contains("notes"))
      for (const auto& n : f["notes"]) s += "\n- " + md_escape(n.get<std::string>());
    s += "\n\n";
  }
  s += "## Not run in this pipeline\n\n";
  for (const auto& n : rep["not_run"]) s += "- " + md_escape(n.get<std::string>()) + "\n";
  if (rep["notes"].is_array() && !rep["notes"].empty()) {
    s += "\n## Notes\n\n";
    for (const auto& n : rep["notes"]) s += "- " + md_escape(n.get<std::string>()) + "\n";
  }
  s += "\n## Held-out task samples (tuned)\n\n";
  for (const auto& x : rep["task_samples"])
    s += fmt::format("- expected `{}`, got `{}` {}\n", md_escape(x["expected"]),
                     md_escape(x["got"]), x["correct"].get<bool>() ? "✓" : "✗");
  s += "\n## Calibration sample (data-free: sampled from the model)\n\n```\n" +
       rep["calibration_sample"].get<std::string>() + "\n```\n";
  return s;
}

std::string report_html(const json& rep) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
      html_escape(rep["title"]) +
      "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
      "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px "
      "8px;text-align:right}th{background:#eee}td:first-child{text-align:left}"
      ".na{color:#a33;font-style:italic}svg{display:block;margin:0.5em 0}</style>\n</head><body>\n";
  s += "<h1>" + html_escape(rep["title"]) + "</h1>\n";
  s += "<p>Every number is read from <code>report.json</code>. Simulated figures are labelled; "
       "everything else was measured in this run.</p>\n";
  for (const auto& f : rep["figures"]) {
    s += "<h2>" + html_escape(f["title"]) + "</h2>\n";
    if (!f.value("available", false)) {
      s += "<p class=\"na\">Not available: " + html_escape(f.value("reason", "")) + "</p>\n";
      continue;
    }
    s += figure_svg(f);
    const auto rows = figure_rows(f);
    s += f["kind"] == "table" ? "<table>\n" : "<details><summary>data</summary><table>\n";
    for (size_t r = 0; r < rows.size(); ++r) {
      s += "<tr>";
      for (const auto& c : rows[r])
        s += (r == 0 ? "<th>" : "<td>") + html_escape(c) + (r == 0 ? "</th>" : "</td>");
      s += "</tr>\n";
    }
    s += f["kind"] == "table" ? "</table>\n" : "</table></details>\n";
    if (f.contains("notes")) {
      s += "<ul>";
      for (const auto& n : f["notes"]) s += "<li>" + html_escape(n) + "</li>";
      s += "</ul>\n";
    }
  }
  s += "<h2>Not run in this pipeline</h2>\n<ul>";
  for (const auto& n : rep["not_run"]) s += "<li>" + html_escape(n) + "</li>";
  s += "</ul>\n";
  if (rep["notes"].is_array() && !rep["notes"].empty()) {
    s += "<h2>Notes</h2>\n<ul>";
    for (const auto& n : rep["notes"]) s += "<li>" + html_escape(n) + "</li>";
    s += "</ul>\n";
  }
  s += "<h2>Held-out task samples "
       "(tuned)</h2>\n<table><tr><th>expected</th><th>got</th><th></th></tr>\n";
  for (const auto& x : rep["task_samples"])
    s += "<tr><td>" + html_escape(x["expected"]) + "</td><td>" + html_escape(x["got"]) +
         "</td><td>" + (x["correct"].get<bool>() ? "&#10003;" : "&#10007;") + "</td></tr>\n";
  s += "</table>\n<h2>Calibration sample (data-free: sampled from the model)</h2>\n<pre>" +
       html_escape(rep["calibration_sample"]) + "</pre>\n</body></html>\n";
  return s;
}

std::string summary_text(const json& rep) {
  const json& sm = rep["summary"];
  std::string s = fmt::format("{:<34} {:>12} {:>13} {:>10} {:>8}\n", "condition", "exact match",
                              "response NLL", "ppl", "MMLU");
  for (const auto& c : sm["conditions"])
    s += fmt::format("{:<34} {:>5.3f} ({:>3}/{:<3}) {:>13.4f} {:>10} {:>8}\n",
                     c["condition"].get<std::string>(), c["exact_match"].get<double>(),
                     c["correct"].get<int64_t>(), c["n"].get<int64_t>(),
                     c["response_nll"].get<double>(), cell_text(c["ppl"]), cell_text(c["mmlu"]));
  s += fmt::format("simulated tuning speedup vs vanilla LoRA on '{}': {:.2f}x (hwsim model)\n",
                   sm["device"].get<std::string>(), sm["simulated_speedup"].get<double>());
  return s;
}

}  // namespace edgellm::pipeline
