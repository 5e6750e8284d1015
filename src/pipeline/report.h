// The run's report. build_report gathers every figure from the stage outputs into one JSON
// document (report.json, also `edgellm pipeline --json`); report.md and report.html are both
// rendered from that document only, so their numbers are the JSON's. Figures:
//   kind "line"  {x_label, y_label, series: [{name, x: [], y: []}]}
//   kind "bar"   {y_label, groups: [], series: [{name, values: []}]}
//   kind "table" {columns: [], rows: [[cell, ...]]}
// each with id, title, available (false: `reason` says why, e.g. a stage that has not landed).
// Charts are drawn by report/svg_plot (the one plotting module).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/stage.h"
#include "report/svg_plot.h"

namespace edgellm::pipeline {

nlohmann::json build_report(const StageContext& ctx);
std::string report_markdown(const nlohmann::json& rep);
std::string report_html(const nlohmann::json& rep);
// The chart of a line or bar figure (tables have none).
report::Chart figure_chart(const nlohmann::json& fig);
// A figure's SVG ("" for tables and unavailable figures).
std::string figure_svg(const nlohmann::json& fig);
// The number format of every figure value in report.md: integers as integers, others %.6g.
std::string format_number(double v);
// The console summary: one line per condition and the simulated speedup.
std::string summary_text(const nlohmann::json& rep);

}  // namespace edgellm::pipeline
