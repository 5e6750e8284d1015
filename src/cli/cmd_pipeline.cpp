// `edgellm pipeline`: profile -> compress -> tune -> evaluate -> plan -> report (src/pipeline).
#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/report.h"
#include "pipeline/stage.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

void register_pipeline(CLI::App& app) {
  std::string stages;
  for (const auto& s : pipeline::pipeline_stages())
    stages += (stages.empty() ? "" : " -> ") + s.name;
  auto* cmd = app.add_subcommand(
      "pipeline", "the whole Edge-LLM flow with a report (" + stages + "); resumable");
  struct Args {
    std::string config, out, from;
    int threads = -1;
    bool json = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--config,-c", a->config,
                  "pipeline config (.json or .toml; default: the embedded default job, "
                  "presets/pipelines/default.json)");
  cmd->add_option("--out,-o", a->out, "output directory (default: the config's 'out')");
  cmd->add_option("--from", a->from, "re-run from this stage even if its inputs are unchanged");
  cmd->add_option("--threads,-t", a->threads, "threads (default: the config's, else all cores)");
  cmd->add_flag("--json", a->json, "print report.json (every figure) on stdout");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress lines");
  cmd->callback([a] {
    pipeline::PipelineConfig cfg;
    if (!a->config.empty()) cfg = pipeline::load_config(a->config);
    if (!a->out.empty()) cfg.out = a->out;
    if (a->threads >= 0) cfg.threads = a->threads;
    pipeline::RunOptions ro;
    ro.from = a->from;
    ro.quiet = a->quiet;
    const pipeline::RunResult r = pipeline::run_pipeline(cfg, ro);
    const nlohmann::json rep = nlohmann::json::parse(read_file(r.out + "/report.json"));
    if (a->json) return print_json(rep);
    std::fprintf(stderr, "\n%s\nreport: %s/report.html (and report.md, report.json)\n",
                 pipeline::summary_text(rep).c_str(), r.out.c_str());
  });
}

}  // namespace edgellm::cli
