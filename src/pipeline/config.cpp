#include "pipeline/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <set>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

// One list of fields per section, walked both ways (to JSON, from JSON) so the two cannot
// disagree about names.
struct Binder {
  bool reading = false;
  const nlohmann::json* in = nullptr;  // reading: the section object
  nlohmann::json* out = nullptr;       // writing
  std::string where;                   // "file: section"
  std::set<std::string> seen;

  template <typename T>
  void operator()(const char* name, T& v) {
    seen.insert(name);
    if (!reading) {
      (*out)[name] = v;
      return;
    }
    auto it = in->find(name);
    if (it == in->end()) return;
    try {
      T x = it->get<T>();
      if constexpr (std::is_same_v<T, std::string>) x = expand_vars(x);
      v = std::move(x);
    } catch (const nlohmann::json::exception&) {
      fail("[pipeline] {}: field '{}': value {} has the wrong type", where, name, it->dump());
    }
  }
  void check_unknown() const {
    if (!reading) return;
    for (auto it = in->begin(); it != in->end(); ++it)
      if (!seen.count(it.key())) fail("[pipeline] {}: unknown field '{}'", where, it.key());
  }
};

void bind(Binder& b, ModelSection& s) {
  b("path", s.path);
  b("tokenizer", s.tokenizer);
}
void bind(Binder& b, TaskSection& s) {
  b("kind", s.kind);
  b("data", s.data);
  b("families", s.families);
  b("n_train", s.n_train);
  b("n_test", s.n_test);
  b("min_words", s.min_words);
  b("max_words", s.max_words);
  b("seed", s.seed);
}
void bind(Binder& b, CalibrationSection& s) {
  b("source", s.source);
  b("text", s.text);
  b("n", s.n);
  b("seq", s.seq);
  b("temperature", s.temperature);
  b("seed", s.seed);
}
void bind(Binder& b, CompressSection& s) {
  b("policy", s.policy);
  b("bits", s.bits);
  b("sparsity", s.sparsity);
  b("quantizer", s.quantizer);
  b("pruner", s.pruner);
  b("scheme", s.scheme);
  b("group", s.group);
  b("relative", s.relative);
  b("granularity", s.granularity);
  b("target_bpw", s.target_bpw);
}
void bind(Binder& b, TuneSection& s) {
  b("method", s.method);
  b("steps", s.steps);
  b("seq", s.seq);
  b("batch", s.batch);
  b("grad_accum", s.grad_accum);
  b("lr", s.lr);
  b("schedule", s.schedule);
  b("warmup", s.warmup);
  b("rank", s.rank);
  b("alpha", s.alpha);
  b("dropout", s.dropout);
  b("targets", s.targets);
  b("val_frac", s.val_frac);
  b("val_every", s.val_every);
  b("save_every", s.save_every);
  b("exits", s.exits);
  b("n_exits", s.n_exits);
  b("window", s.window);
  b("exit_schedule", s.exit_schedule);
  b("lora_mode", s.lora_mode);
  b("head_mode", s.head_mode);
  b("last", s.last);
  b("seed", s.seed);
}
void bind(Binder& b, EvaluateSection& s) {
  b("task_limit", s.task_limit);
  b("max_new_tokens", s.max_new_tokens);
  b("ppl_text", s.ppl_text);
  b("ppl_ctx", s.ppl_ctx);
  b("ppl_max_tokens", s.ppl_max_tokens);
  b("mmlu_data", s.mmlu_data);
  b("mmlu_shots", s.mmlu_shots);
  b("mmlu_limit", s.mmlu_limit);
  b("mmlu_subjects", s.mmlu_subjects);
}
void bind(Binder& b, PlanSection& s) {
  b("device", s.device);
  b("samples", s.samples);
  b("overlap", s.overlap);
  b("grid", s.grid);
  b("vanilla_bits", s.vanilla_bits);
}

template <typename F>
void each_section(PipelineConfig& c, F&& f) {
  f("model", c.model);
  f("task", c.task);
  f("calibration", c.calibration);
  f("compress", c.compress);
  f("tune", c.tune);
  f("evaluate", c.evaluate);
  f("plan", c.plan);
}

nlohmann::json toml_to_json(const toml::node& n) {
  if (const auto* t = n.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = toml_to_json(v);
    return j;
  }
  if (const auto* a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *a) j.push_back(toml_to_json(v));
    return j;
  }
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return i->get();
  if (const auto* d = n.as_floating_point()) return d->get();
  if (const auto* b = n.as_boolean()) return b->get();
  fail("[pipeline] TOML value of unsupported type (dates and times are not configuration)");
}

}  // namespace

std::string expand_vars(const std::string& s) {
  static const std::string var = "${EDGELLM_DATA}";
  const auto p = s.find(var);
  if (p == std::string::npos) return s;
  const char* env = std::getenv("EDGELLM_DATA");
  const std::string data = env && *env ? env : "../shared/data";
  return expand_vars(s.substr(0, p) + data + s.substr(p + var.size()));
}

nlohmann::json PipelineConfig::to_json() const {
  PipelineConfig c = *this;
  nlohmann::json j = {{"name", c.name}, {"out", c.out}, {"threads", c.threads}};
  each_section(c, [&](const char* name, auto& sec) {
    Binder b;
    b.out = &j[name];
    bind(b, sec);
  });
  return j;
}

PipelineConfig PipelineConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail("[pipeline] {}: expected an object of sections", source);
  PipelineConfig c;
  std::set<std::string> known = {"name", "out", "threads"};
  try {
    if (j.contains("name")) c.name = j.at("name").get<std::string>();
    if (j.contains("out")) c.out = expand_vars(j.at("out").get<std::string>());
    if (j.contains("threads")) c.threads = j.at("threads").get<int>();
  } catch (const nlohmann::json::exception&) {
    fail("[pipeline] {}: 'name' and 'out' must be strings, 'threads' an integer", source);
  }
  each_section(c, [&](const char* name, auto& sec) {
    known.insert(name);
    auto it = j.find(name);
    if (it == j.end()) return;
    if (!it->is_object()) fail("[pipeline] {}: section '{}' must be an object", source, name);
    Binder b;
    b.reading = true;
    b.in = &*it;
    b.where = source + ": " + name;
    bind(b, sec);
    b.check_unknown();
  });
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) fail("[pipeline] {}: unknown section '{}'", source, it.key());
  return c;
}

PipelineConfig load_config(const std::string& path) {
  const std::string text = read_file(path);
  const bool is_toml = path.size() >= 5 && path.substr(path.size() - 5) == ".toml";
  nlohmann::json j;
  if (is_toml) {
    try {
      j = toml_to_json(toml::parse(text, path));
    } catch (const toml::parse_error& e) {
      fail("[pipeline] {}: line {}: {}", path, e.source().begin.line, e.description());
    }
  } else {
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail("[pipeline] {}: malformed JSON: {}", path, e.what());
    }
  }
  return PipelineConfig::from_json(j, path);
}

}  // namespace edgellm::pipeline
