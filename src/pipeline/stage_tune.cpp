// tune: the adaptation task's records (synthetic from a seed, or an Alpaca file split in two),
// then tuning on the compressed model with the trainer (train/trainer.h) in this stage's
// directory. The trainer checkpoints every tune.save_every steps there; a killed run leaves
// OUT/tune.tmp behind with the same input hash, and the re-run resumes from its checkpoint
// bit-exactly. The memory of vanilla LoRA (uncompressed base, every layer) is planned beside the
// run's own plan, through the same engine planning, for the report's comparison.
#include <filesystem>
#include <sstream>

#include "pipeline/stages.h"
#include "pipeline/synthetic_task.h"
#include "train/exits.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

TaskSplit task_split(const PipelineConfig& cfg) {
  const TaskSection& t = cfg.task;
  if (t.kind == "synthetic") {
    SyntheticTaskOptions o;
    o.families = t.families;
    o.n_train = t.n_train;
    o.n_test = t.n_test;
    o.min_words = t.min_words;
    o.max_words = t.max_words;
    o.seed = t.seed;
    return synthetic_task(o);
  }
  if (t.kind == "alpaca") {
    if (t.data.empty()) fail("[tune] task.kind 'alpaca' needs task.data");
    TaskSplit s = split_records(read_task_records(t.data), t.n_test, t.seed);
    if (t.n_train > 0 && static_cast<int64_t>(s.train.size()) > t.n_train)
      s.train.resize(static_cast<size_t>(t.n_train));
    return s;
  }
  fail("[tune] task.kind '{}' unknown (synthetic, alpaca)", t.kind);
}

namespace {

LoraConfig lora_config(const TuneSection& t) {
  LoraConfig l;
  l.rank = t.rank;
  l.alpha = t.alpha;
  l.dropout = t.dropout;
  l.targets = lora_targets_from_list(t.targets, "tune.targets");
  return l;
}

// Vanilla LoRA's plan: every layer adapted, on the uncompressed base, without allocating.
MemoryPlan vanilla_plan(const Model& base, const TuneSection& t) {
  MemoryPlan p;
  LoraAdapters a(base.config(), lora_config(t));
  p[MemCategory::Weights] = base.weight_bytes();
  p[MemCategory::Adapters] = a.params().size() * sizeof(float);
  p[MemCategory::Optimizer] = 2 * p[MemCategory::Adapters];
  TrainEngine e(base, &a, nullptr, EngineOptions{t.seq, false, 128});
  const MemoryPlan ep = e.plan();
  for (MemCategory k : {MemCategory::Gradients, MemCategory::Activations, MemCategory::Scratch,
                        MemCategory::Workspace})
    p[k] = ep[k];
  return p;
}

void run_tune(StageContext& ctx) {
  const TuneSection& t = ctx.cfg.tune;
  const bool alt = t.method == "alt", partial = t.method == "partial";
  if (!alt && (!t.exits.empty() || t.window != 0))
    fail("[tune] tune.exits / tune.window apply to method 'alt' only (tune.method is '{}')",
         t.method);
  const TaskSplit split = task_split(ctx.cfg);
  std::filesystem::create_directories(ctx.dir + "/task");
  write_file_atomic(ctx.dir + "/task/train.jsonl", task_records_jsonl(split.train));
  write_file_atomic(ctx.dir + "/task/test.jsonl", task_records_jsonl(split.test));

  auto base = load_base_model(ctx.cfg);
  auto tok = load_run_tokenizer(ctx.cfg, *base);
  const std::string mpath = tuned_base_path(ctx);
  std::shared_ptr<Model> m = mpath == ctx.cfg.model.path ? base : Model::load(mpath);
  TuneOptions o;
  o.method = tune_method_from_name(partial ? "lora" : t.method);
  o.lora = lora_config(t);
  const int L = m->config().n_layers;
  if (partial) {
    if (t.last < 1 || t.last > L)
      fail("[tune] tune.last {}: must be within 1..{} (the model's layers)", t.last, L);
    for (int l = L - t.last; l < L; ++l) o.lora.layers.push_back(l);
  }
  if (alt) {
    if (t.n_exits < 1 || t.n_exits > L)
      fail("[tune] tune.n_exits {}: must be within 1..{}", t.n_exits, L);
    if (t.window < 0) fail("[tune] tune.window {}: must not be negative", t.window);
    o.alt.exits = t.n_exits;
    if (!t.exits.empty()) check_exit_depths(t.exits, L, "tune.exits");
    o.alt.exit_layers = t.exits;
    o.alt.window = t.window;
    o.alt.schedule = parse_exit_schedule(t.exit_schedule);
    o.alt.lora_mode = exit_lora_mode_from_name(t.lora_mode);
    o.alt.head_mode = exit_head_mode_from_name(t.head_mode);
  }
  o.steps = t.steps;
  o.seq = t.seq;
  o.batch = t.batch;
  o.grad_accum = t.grad_accum;
  o.lr = t.lr;
  o.schedule = lr_schedule_from_name(t.schedule);
  o.warmup = t.warmup;
  o.seed = t.seed;
  o.val_every = t.val_every;
  o.save_every = t.save_every;
  o.out = ctx.dir;
  o.resume = true;  // a checkpoint here can only be a partial run with the same inputs
  o.base_model = mpath;
  const Dataset data = load_dataset(ctx.dir + "/task/train.jsonl", *tok, t.seq, t.val_frac, t.seed);
  Trainer tr(*m, data, o);
  if (tr.step() > 0) ctx.log(fmt::format("resumed from the checkpoint at step {}", tr.step()));
  StepLog last;
  tr.run([&](const StepLog& s) {
    last = s;
    ctx.progress(fmt::format("step (loss {:.4f}{})", s.loss,
                             s.val_loss >= 0 ? fmt::format(", val {:.4f}", s.val_loss) : ""),
                 double(s.step), double(t.steps));
  });
  // Loss of the last step: from the metrics file (a resumed run that had nothing left to do
  // called no step callback).
  double loss = last.loss, val = last.val_loss;
  size_t peak = last.peak_rss;
  {
    std::istringstream in(read_file(ctx.dir + "/metrics.jsonl"));
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        const auto j = nlohmann::json::parse(line);
        loss = j.value("loss", loss);
        if (j.contains("val_loss")) val = j["val_loss"].get<double>();
        peak = std::max(peak, static_cast<size_t>(j.value("peak_rss_mb", 0.0) * 1048576.0));
      }
  }
  nlohmann::json j = {
      {"method", t.method},
      {"model", mpath},
      {"steps", tr.step()},
      {"train_records", split.train.size()},
      {"test_records", split.test.size()},
      {"train_sequences", data.n_train()},
      {"val_sequences", data.n_val()},
      {"truncated", data.truncated},
      {"loss", loss},
      {"val_loss", val},
      {"peak_rss_bytes", peak},
      {"memory",
       {{"vanilla_lora", vanilla_plan(*base, t).to_json()}, {"this_run", tr.plan().to_json()}}},
      {"exits", nlohmann::json::array()},
      {"not_run", nlohmann::json::array()}};
  if (ExitHeads* h = tr.exit_heads()) {
    for (int i = 0; i < h->n_exits(); ++i)
      j["exits"].push_back({{"exit", i},
                            {"depth", h->depth(i)},
                            {"head", h->own(i) ? t.head_mode : std::string("final")}});
    const PrefixCacheStats& cs = tr.prefix_cache_stats();
    j["alt"] = {{"exit_depths", h->config().depths},
                {"window", h->config().window},
                {"head_mode", exit_head_mode_name(h->config().head_mode)},
                {"lora_mode", exit_lora_mode_name(h->config().lora_mode)},
                {"schedule", h->config().schedule},
                {"val_exit_loss", last.val_exit_loss},
                {"prefix_cache", {{"hits", cs.hits}, {"misses", cs.misses}}}};
  } else {
    j["exits"].push_back({{"exit", 0}, {"depth", L}, {"head", "final"}});
  }
  write_file_atomic(ctx.dir + "/tune.json", j.dump(2) + "\n");
}

}  // namespace

Stage tune_stage() {
  Stage s;
  s.name = "tune";
  s.summary = "adaptation task data and tuning (checkpointed, resumable)";
  s.after = {"compress"};
  s.config = [](const PipelineConfig& c) {
    const nlohmann::json j = c.to_json();
    return nlohmann::json{{"model", j["model"]}, {"task", j["task"]}, {"tune", j["tune"]}};
  };
  s.inputs = [](const PipelineConfig& c) {
    auto v = model_inputs(c);
    if (c.task.kind == "alpaca") v.push_back(c.task.data);
    return v;
  };
  s.run = run_tune;
  return s;
}

}  // namespace edgellm::pipeline
