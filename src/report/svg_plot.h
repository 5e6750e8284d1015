// The one plotting module: line charts and grouped bar charts as plain, self-contained SVG
// (no scripts, no fonts or styles fetched from anywhere), with axes, ticks, axis labels and a
// legend. Every chart in the project (the pipeline report, the simulator's sweep plot) is drawn
// here, so they share one look and one escaping rule: all text goes through xml_escape.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace edgellm::report {

// &, <, >, " and ' as XML entities; bytes below 0x20 other than tab/newline dropped (XML 1.0
// forbids them even escaped).
std::string xml_escape(const std::string& s);

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false, log_y = false;  // log axes need positive values (others are skipped)
  bool markers = true;                // a dot on every point (off for long curves)
  // Tick labels at given x positions instead of the automatic ones (e.g. "512K", "1M").
  std::vector<double> x_tick_values;
  std::vector<std::string> x_tick_labels;
};

struct BarChart {
  std::string title, y_label;
  std::vector<std::string> groups;          // categories along x
  std::vector<std::string> series_names;    // one bar per series in each group
  std::vector<std::vector<double>> values;  // [series][group]
  bool log_y = false;
};

using Chart = std::variant<LineChart, BarChart>;

struct Size {
  double width = 480, height = 300;
};

// One chart as a standalone <svg> element.
std::string render_svg(const Chart& c, Size size = {});
// Several charts side by side (`cols` per row) under a common title, one <svg>.
std::string render_panels_svg(const std::string& title, const std::vector<Chart>& charts, int cols,
                              Size panel = {});

// "Nice" tick positions covering [lo, hi] (1, 2, 5 × 10^k steps, about `target` of them).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Short tick label: 3 significant digits, k/M suffixes not used (units belong to the axis).
std::string tick_label(double v);

}  // namespace edgellm::report
