// evaluate: the same measurements on each condition — the base model, the compressed model
// (when compression changed it) and the compressed model with the tuned adapter: the task's
// held-out exact match and response NLL, perplexity on a text (evaluate.ppl_text) and MMLU
// (evaluate.mmlu_data). Results are per exit: the model's own head for the base and compressed
// models; for an ALT run's tuned model every exit and the vote (eval/exit_vote.h).
#include <cmath>
#include <filesystem>

#include "eval/exit_vote.h"
#include "eval/mmlu.h"
#include "eval/perplexity.h"
#include "eval/task_eval.h"
#include "pipeline/stages.h"
#include "train/data.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

nlohmann::json mmlu_json(const MmluResult& r) {
  nlohmann::json cats = nlohmann::json::object();
  for (const auto& g : r.categories) cats[g.name] = g.micro;
  return {{"shots", r.shots},         {"questions", r.overall.questions},
          {"micro", r.overall.micro}, {"macro", r.overall.macro},
          {"categories", cats},       {"seconds_per_question", r.seconds_per_question}};
}

nlohmann::json task_json(const TaskEvalResult& r) {
  auto g = [](const TaskGroupResult& x) {
    return nlohmann::json{{"name", x.name},
                          {"n", x.n},
                          {"correct", x.correct},
                          {"exact_match", x.exact_match},
                          {"response_nll", x.response_nll},
                          {"response_tokens", x.response_tokens}};
  };
  nlohmann::json j = g(r.overall);
  j["skipped_too_long"] = r.skipped_too_long;
  j["groups"] = nlohmann::json::array();
  for (const auto& x : r.groups) j["groups"].push_back(g(x));
  j["samples"] = nlohmann::json::array();
  for (const auto& s : r.samples)
    j["samples"].push_back(
        {{"prompt", s.prompt}, {"expected", s.expected}, {"got", s.got}, {"correct", s.correct}});
  j["seconds"] = r.seconds;
  return j;
}

void run_evaluate(StageContext& ctx) {
  const EvaluateSection& e = ctx.cfg.evaluate;
  auto base = load_base_model(ctx.cfg);
  auto tok = load_run_tokenizer(ctx.cfg, *base);
  const std::string cpath = tuned_base_path(ctx);
  std::shared_ptr<Model> comp = cpath == ctx.cfg.model.path ? base : Model::load(cpath);
  const nlohmann::json tune = ctx.read_json("tune", "tune.json");
  std::unique_ptr<LoraAdapters> adapter;
  if (tune["method"] == "lora" || tune["method"] == "alt" || tune["method"] == "partial")
    adapter =
        std::make_unique<LoraAdapters>(LoraAdapters::load(ctx.stage_dir("tune"), comp->config()));
  std::shared_ptr<Model> tuned = comp;
  if (tune["method"] == "full") tuned = Model::load(ctx.stage_dir("tune"));

  std::vector<PromptResponse> data;
  for (const TaskRecord& r : read_task_records(ctx.stage_dir("tune") + "/task/test.jsonl"))
    data.push_back({alpaca_prompt(r.instruction, r.input), r.output, r.family});
  std::vector<int32_t> ppl_ids;
  if (!e.ppl_text.empty()) ppl_ids = ppl_tokens(*tok, read_file(e.ppl_text), e.ppl_max_tokens);
  std::vector<MmluSubject> mmlu;
  if (!e.mmlu_data.empty()) {
    std::vector<std::string> names = e.mmlu_subjects;
    if (names.empty()) names = mmlu_subjects(e.mmlu_data);
    for (const auto& n : names) mmlu.push_back(load_mmlu_subject(e.mmlu_data, n));
  }

  // The tuned condition of an ALT run is evaluated at every exit and by the vote, each from
  // one trunk forward with every adapter active (docs/alt.md).
  std::unique_ptr<ExitHeads> heads;
  if (ExitHeads::present(ctx.stage_dir("tune")))
    heads = std::make_unique<ExitHeads>(ExitHeads::load(ctx.stage_dir("tune"), comp->config()));

  struct Cond {
    std::string name, label;
    const Model* m;
    const LoraAdapters* a;
    const ExitHeads* h;
  };
  std::vector<Cond> conds = {{"base", "base model", base.get(), nullptr, nullptr}};
  if (comp != base)
    conds.push_back({"compressed", "compressed, before tuning", comp.get(), nullptr, nullptr});
  conds.push_back({"tuned", comp != base ? "compressed + tuned" : "tuned", tuned.get(),
                   adapter.get(), heads.get()});

  // MMLU of one condition: exit `exit` alone, or with `vote` every exit and the vote at once.
  auto run_mmlu = [&](const Cond& c, int exit, bool vote, const std::string& what) {
    MmluOptions mo;
    mo.shots = e.mmlu_shots;
    mo.limit = e.mmlu_limit;
    mo.adapter = c.a;
    mo.exits = c.h;
    mo.exit = c.h && !vote ? exit : -1;
    mo.vote = vote;
    mo.progress = [&](const std::string&, int64_t d, int64_t t) {
      ctx.progress(what + ": MMLU questions", d, t);
    };
    return evaluate_mmlu(*c.m, *tok, mmlu, mo);
  };
  // One measurement: exit index `exit` of h (-1: the model's own head), or the vote. pe / mv:
  // the perplexity and MMLU of every exit and the vote, from one trunk forward per window or
  // question (null: measured here).
  auto measure = [&](const Cond& c, int exit, bool vote, const std::string& what,
                     const PplExitsResult* pe, const MmluResult* mv) {
    nlohmann::json ex = {
        {"exit", c.h && !vote ? c.h->depth(exit) : c.m->config().n_layers},
        {"head",
         c.h && !vote && c.h->own(exit) ? exit_head_mode_name(c.h->config().head_mode) : "final"}};
    TaskEvalOptions to;
    to.max_new_tokens = e.max_new_tokens;
    to.limit = e.task_limit;
    to.adapter = c.a;
    to.exits = c.h;
    to.exit = c.h && !vote ? exit : -1;
    to.vote = vote;
    to.progress = [&](int64_t d, int64_t t) { ctx.progress(what + ": task examples", d, t); };
    ex["task"] = task_json(evaluate_task(*c.m, *tok, data, to));
    ex["ppl"] = nullptr;
    if (!ppl_ids.empty()) {
      const int64_t pctx = std::min<int64_t>(e.ppl_ctx, c.m->config().max_seq_len);
      if (pe) {
        const double nll = vote ? pe->vote_max_renorm_nll : pe->exit_mean_nll[exit];
        ex["ppl"] = {{"text", e.ppl_text},
                     {"protocol", vote ? "standard, vote max-then-renormalise" : "standard"},
                     {"ctx", pe->ctx},
                     {"tokens", pe->tokens},
                     {"mean_nll", nll},
                     {"ppl", std::exp(nll)},
                     {"seconds", pe->seconds}};
        if (vote) ex["ppl"]["vote_mean_ppl"] = pe->vote_mean_ppl;
      } else {
        PplOptions po;
        po.ctx = pctx;
        po.adapter = c.a;
        const PplResult p = perplexity(*c.m, ppl_ids, po);
        ex["ppl"] = {{"text", e.ppl_text},  {"protocol", p.protocol}, {"ctx", p.ctx},
                     {"tokens", p.tokens},  {"mean_nll", p.mean_nll}, {"ppl", p.ppl},
                     {"seconds", p.seconds}};
      }
    }
    ex["mmlu"] = nullptr;
    if (mv) {
      ex["mmlu"] = mmlu_json(vote ? *mv : mmlu_exit_result(*mv, exit));
    } else if (!mmlu.empty()) {
      ex["mmlu"] = mmlu_json(run_mmlu(c, exit, vote, what));
    }
    const auto& tj = ex["task"];
    ctx.log(fmt::format(
        "{}: exact match {:.3f} ({}/{}), response NLL {:.4f}{}{}", what,
        tj["exact_match"].get<double>(), tj["correct"].get<int64_t>(), tj["n"].get<int64_t>(),
        tj["response_nll"].get<double>(),
        tj["skipped_too_long"].get<int64_t>() > 0
            ? fmt::format(" ({} examples longer than the context left out)",
                          tj["skipped_too_long"].get<int64_t>())
            : "",
        ex["ppl"].is_object() ? fmt::format(", ppl {:.3f}", ex["ppl"]["ppl"].get<double>()) : ""));
    return ex;
  };

  nlohmann::json out = {{"conditions", nlohmann::json::array()}};
  for (const Cond& c : conds) {
    nlohmann::json exits = nlohmann::json::array(), vote = nullptr;
    if (!c.h) {
      exits.push_back(measure(c, -1, false, c.label, nullptr, nullptr));
    } else {
      std::unique_ptr<PplExitsResult> pe;
      if (!ppl_ids.empty())
        pe = std::make_unique<PplExitsResult>(perplexity_exits(
            *c.m, *c.h, c.a, ppl_ids, std::min<int64_t>(e.ppl_ctx, c.m->config().max_seq_len)));
      std::unique_ptr<MmluResult> mv;
      if (!mmlu.empty())
        mv = std::make_unique<MmluResult>(run_mmlu(c, -1, true, c.label + ", every exit"));
      for (int i = 0; i < c.h->n_exits(); ++i)
        exits.push_back(measure(c, i, false, fmt::format("{}, exit {}", c.label, c.h->depth(i)),
                                pe.get(), mv.get()));
      vote = measure(c, -1, true, c.label + ", vote", pe.get(), mv.get());
    }
    out["conditions"].push_back({{"name", c.name},
                                 {"label", c.label},
                                 {"model", c.m == base.get() ? ctx.cfg.model.path : cpath},
                                 {"adapter", c.a != nullptr},
                                 {"exits", exits},
                                 {"vote", vote}});
  }
  out["not_run"] = nlohmann::json::array();
  if (!heads) out["not_run"].push_back("per-exit metrics and exit voting: tune.method is not alt");
  if (e.ppl_text.empty()) out["not_run"].push_back("perplexity: no evaluate.ppl_text given");
  if (e.mmlu_data.empty()) out["not_run"].push_back("MMLU: no evaluate.mmlu_data given");
  write_file_atomic(ctx.dir + "/evaluate.json", out.dump(2) + "\n");
}

}  // namespace

Stage evaluate_stage() {
  Stage s;
  s.name = "evaluate";
  s.summary = "held-out task exact match and NLL, perplexity, MMLU: before and after tuning";
  s.after = {"compress", "tune"};
  s.config = [](const PipelineConfig& c) {
    const nlohmann::json j = c.to_json();
    return nlohmann::json{{"model", j["model"]}, {"evaluate", j["evaluate"]}};
  };
  s.inputs = [](const PipelineConfig& c) {
    auto v = model_inputs(c);
    if (!c.evaluate.ppl_text.empty()) v.push_back(c.evaluate.ppl_text);
    if (!c.evaluate.mmlu_data.empty()) v.push_back(c.evaluate.mmlu_data);
    return v;
  };
  s.run = run_evaluate;
  return s;
}

}  // namespace edgellm::pipeline
