#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/bench.h"
#include "kernels/threads.h"

namespace edgellm::cli {

void register_bench(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("bench", "prefill (pp) and decode (tg) speed of a model, JSON out");
  struct Args : ModelArgs {
    BenchOptions o;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a, false);
  cmd->add_option("--pp", a->o.pp, "prompt tokens processed in one batch (0 = skip)");
  cmd->add_option("--tg", a->o.tg, "tokens decoded one at a time (0 = skip)");
  cmd->add_option("--reps", a->o.reps, "timed repetitions (best is reported)")
      ->check(CLI::Range(1, 100));
  cmd->callback([a] {
    apply_threads(*a);
    auto m = load_model(*a);
    BenchResult r = bench_forward(*m, a->o);
    std::map<std::string, int64_t> dtypes;
    for (const Tensor& t : m->checkpoint().tensors.all()) dtypes[dtype_name(t.dtype)] += t.numel();
    nlohmann::json j{{"model", a->model},
                     {"n_params", m->config().n_params()},
                     {"weight_bytes", m->weight_bytes()},
                     {"params_by_dtype", dtypes},
                     {"threads", num_threads()},
                     {"reps", a->o.reps},
                     {"peak_rss_mb", r.peak_rss_mb}};
    if (a->o.pp > 0)
      j["pp"] = {
          {"tokens", a->o.pp}, {"seconds", r.pp_seconds}, {"tokens_per_s", r.pp_tokens_per_s}};
    if (a->o.tg > 0)
      j["tg"] = {
          {"tokens", a->o.tg}, {"seconds", r.tg_seconds}, {"tokens_per_s", r.tg_tokens_per_s}};
    if (a->json) return print_json(j);
    fmt::print("{}: pp{} {:.1f} tok/s, tg{} {:.2f} tok/s ({} threads, peak RSS {:.0f} MB)\n",
               a->model, a->o.pp, r.pp_tokens_per_s, a->o.tg, r.tg_tokens_per_s, num_threads(),
               r.peak_rss_mb);
  });
}

}  // namespace edgellm::cli
