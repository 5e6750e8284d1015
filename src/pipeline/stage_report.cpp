// report: report.json (every figure), report.md and report.html (both rendered from it), and
// each chart as figures/<id>.svg. The runner then publishes the three reports to OUT/.
#include <filesystem>

#include "pipeline/report.h"
#include "pipeline/stages.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

void run_report(StageContext& ctx) {
  const nlohmann::json rep = build_report(ctx);
  std::filesystem::create_directories(ctx.dir + "/figures");
  for (const auto& f : rep["figures"]) {
    const std::string svg = figure_svg(f);
    if (!svg.empty())
      write_file_atomic(ctx.dir + "/figures/" + f["id"].get<std::string>() + ".svg", svg);
  }
  write_file_atomic(ctx.dir + "/report.json", rep.dump(2) + "\n");
  write_file_atomic(ctx.dir + "/report.md", report_markdown(rep));
  write_file_atomic(ctx.dir + "/report.html", report_html(rep));
}

}  // namespace

Stage report_stage() {
  Stage s;
  s.name = "report";
  s.summary = "report.json, report.md and report.html with inline SVG charts";
  s.after = {"profile", "compress", "tune", "evaluate", "plan"};
  s.config = [](const PipelineConfig& c) {
    nlohmann::json j = c.to_json();
    j.erase("out");  // where the run lives and how many threads it used are not its content
    j.erase("threads");
    return j;
  };
  s.run = run_report;
  return s;
}

}  // namespace edgellm::pipeline
