// The plotting module: well-formed SVG (libxml2) whatever the text, escaped labels, sensible
// ticks, points placed where the axes say.
#include "report/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "xml_check.h"

namespace edgellm::report {
namespace {

using edgellm::testing::xml_error;
using edgellm::testing::xml_root;

TEST(SvgPlot, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  EXPECT_EQ(xml_escape(std::string("x\x01y", 3)), "xy");  // not even escapable in XML 1.0
}

TEST(SvgPlot, LineChartIsWellFormedWithHostileText) {
  LineChart c;
  c.title = "loss <per exit> & \"vote\"";
  c.x_label = "step's";
  c.y_label = "nats</text><script>";
  c.series = {{"train <a>", {1, 2, 3, 4}, {3.0, 2.5, 2.0, 1.9}},
              {"val & more", {2, 4}, {2.7, 2.1}}};
  const std::string svg = render_svg(c);
  EXPECT_EQ(xml_error(svg), "") << svg;
  EXPECT_EQ(xml_root(svg), "svg");
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("loss &lt;per exit&gt; &amp; &quot;vote&quot;"), std::string::npos);
  // Two series: two paths.
  EXPECT_EQ(std::count(svg.begin(), svg.end(), 'M') >= 2, true);
}

TEST(SvgPlot, BarChartAndPanelsAreWellFormed) {
  BarChart b;
  b.title = "memory";
  b.y_label = "MiB";
  b.groups = {"weights", "adapters", "grads", "optimizer", "acts", "scratch", "total", "x", "y"};
  b.series_names = {"LoRA", "Edge-LLM"};
  b.values = {{10, 1, 1, 2, 30, 4, 48, 0, 1}, {3, 1, 1, 2, 8, 4, 19, NAN, 2}};
  const std::string one = render_svg(b);
  EXPECT_EQ(xml_error(one), "");
  // One rect per finite value, plus the background, the frame and two legend swatches.
  const std::regex rect("<rect ");
  const auto n =
      std::distance(std::sregex_iterator(one.begin(), one.end(), rect), std::sregex_iterator());
  EXPECT_EQ(n, 17 + 1 + 1 + 2);
  LineChart l;
  l.log_x = true;
  l.series = {{"s", {1e3, 1e4, 1e6}, {1, 2, 3}}};
  const std::string panels = render_panels_svg("two & more", {b, l, LineChart{}}, 2);
  EXPECT_EQ(xml_error(panels), "");
  EXPECT_NE(panels.find("no data"), std::string::npos);  // the empty chart says so
}

TEST(SvgPlot, PointsLandWhereTheAxesSay) {
  LineChart c;
  c.series = {{"s", {0, 10}, {0, 10}}};
  c.markers = true;
  const std::string svg = render_svg(c, {400, 300});
  // Markers at the data extremes: x spans the plot width, y the tick range. Both circles exist
  // and the second lies right of and above the first (SVG y grows downwards).
  std::smatch m;
  std::regex circ("<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"");
  std::vector<std::pair<double, double>> pts;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circ); it != std::sregex_iterator();
       ++it)
    pts.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_GT(pts[1].first, pts[0].first + 200);
  EXPECT_LT(pts[1].second, pts[0].second - 100);
}

TEST(SvgPlot, NiceTicksCoverTheRange) {
  const auto t = nice_ticks(0.13, 0.87, 5);
  ASSERT_GE(t.size(), 3u);
  const double step = t[1] - t[0];
  EXPECT_NEAR(step, 0.2, 1e-12);
  EXPECT_GE(t.front(), 0.13 - 1e-12);
  EXPECT_LE(t.back(), 0.87 + 1e-12);
  EXPECT_EQ(tick_label(0.2), "0.2");
  EXPECT_EQ(tick_label(1500), "1500");
  EXPECT_EQ(tick_label(2e7), "2e+07");
  EXPECT_EQ(tick_label(250), "250");
}

}  // namespace
}  // namespace edgellm::report
