#include "report/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgellm::report {

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&apos;";
        break;
      default:
        if (u >= 0x20 || ch == '\t' || ch == '\n') o += ch;
    }
  }
  return o;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(std::isfinite(lo) && std::isfinite(hi))) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.2g}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
const char* color(size_t i) { return kColors[i % 8]; }

// A linear or log10 axis mapping data values onto [p0, p1] pixels.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1, p0 = 0, p1 = 1;
  bool ok(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double t(double v) const { return log ? std::log10(v) : v; }
  double px(double v) const { return p0 + (t(v) - lo) / (hi - lo) * (p1 - p0); }
};

// Fits the axis to [mn, mx] (data units) and returns its ticks (data units).
std::vector<double> fit_axis(Axis& a, double mn, double mx, bool include_zero) {
  if (!(mn <= mx)) mn = 0, mx = 1;
  if (a.log) {
    double l = std::floor(std::log10(mn)), h = std::ceil(std::log10(mx));
    if (h == l) h = l + 1;
    a.lo = l, a.hi = h;
    std::vector<double> t;
    const bool dense = h - l <= 2;
    for (double e = l; e <= h; ++e)
      for (double m : {1.0, 2.0, 5.0}) {
        if (!dense && m != 1.0) continue;
        const double v = m * std::pow(10.0, e);
        if (std::log10(v) <= h + 1e-9) t.push_back(v);
      }
    return t;
  }
  if (include_zero) mn = std::min(mn, 0.0), mx = std::max(mx, 0.0);
  if (mn == mx) mn -= 0.5 * (std::abs(mn) + 1), mx += 0.5 * (std::abs(mx) + 1);
  std::vector<double> t = nice_ticks(mn, mx, 5);
  const double step = t.size() > 1 ? t[1] - t[0] : 1;
  a.lo = std::min(mn, t.front() > mn ? t.front() - step : t.front());
  a.hi = std::max(mx, t.back() < mx ? t.back() + step : t.back());
  if (a.lo < t.front()) t.insert(t.begin(), t.front() - step);
  if (a.hi > t.back()) t.push_back(t.back() + step);
  a.lo = t.front(), a.hi = t.back();
  return t;
}

struct Frame {
  double x0, y0, x1, y1;  // plot area (pixels): left, top, right, bottom
};

std::string text(double x, double y, const std::string& s, const char* anchor, int size,
                 const std::string& extra = "") {
  return fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\"{}>{}"
      "</text>\n",
      x, y, size, anchor, extra, xml_escape(s));
}

// Title, legend row, frame, y axis with ticks, grid and label. Returns the plot area.
std::string chrome(double ox, double oy, Size sz, const std::string& title,
                   const std::string& y_label, const std::vector<std::string>& legend, bool bars,
                   Frame& f) {
  std::string s;
  f = {ox + 64, oy + 52, ox + sz.width - 14, oy + sz.height - 46};
  s += text(ox + sz.width / 2, oy + 18, title, "middle", 13, " font-weight=\"bold\"");
  double lx = f.x0;
  for (size_t i = 0; i < legend.size(); ++i) {
    if (bars)
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n",
                       lx, oy + 28, color(i));
    else
      s += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
          "stroke-width=\"2\"/>\n",
          lx, oy + 33, lx + 12, oy + 33, color(i));
    s += text(lx + 15, oy + 37, legend[i], "start", 10);
    lx += 24 + 6.0 * static_cast<double>(legend[i].size());
  }
  s += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
      "stroke=\"#444\"/>\n",
      f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
  const double cy = (f.y0 + f.y1) / 2;
  s += text(ox + 14, cy, y_label, "middle", 11,
            fmt::format(" transform=\"rotate(-90 {:.1f} {:.1f})\"", ox + 14, cy));
  return s;
}

std::string y_ticks(const Axis& ay, const std::vector<double>& ticks, const Frame& f) {
  std::string s;
  for (double v : ticks) {
    const double y = ay.px(v);
    if (y < f.y0 - 0.5 || y > f.y1 + 0.5) continue;
    s += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", f.x0,
        y, f.x1, y);
    s += text(f.x0 - 5, y + 3.5, tick_label(v), "end", 10);
  }
  return s;
}

std::string no_data(const Frame& f) {
  return text((f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2, "no data", "middle", 12);
}

std::string draw_line(const LineChart& c, double ox, double oy, Size sz) {
  Frame f;
  std::vector<std::string> legend;
  for (const Series& se : c.series) legend.push_back(se.name);
  std::string s = chrome(ox, oy, sz, c.title, c.y_label, legend, false, f);
  Axis ax{c.log_x}, ay{c.log_y};
  double xmn = std::numeric_limits<double>::infinity(), xmx = -xmn, ymn = xmn, ymx = -xmn;
  for (const Series& se : c.series)
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i)
      if (ax.ok(se.x[i]) && ay.ok(se.y[i])) {
        xmn = std::min(xmn, se.x[i]), xmx = std::max(xmx, se.x[i]);
        ymn = std::min(ymn, se.y[i]), ymx = std::max(ymx, se.y[i]);
      }
  s += text((f.x0 + f.x1) / 2, f.y1 + 36, c.x_label, "middle", 11);
  if (!(xmn <= xmx)) return s + no_data(f);
  ax.p0 = f.x0, ax.p1 = f.x1, ay.p0 = f.y1, ay.p1 = f.y0;
  std::vector<double> xt = fit_axis(ax, xmn, xmx, false);
  if (xmn != xmx && (!c.log_x || !c.x_tick_values.empty())) {
    // Lines span the data, not the rounded ticks, along x (log axes too when the ticks are the
    // caller's: decades would waste most of the width).
    const double pad = c.log_x ? 0.04 * (std::log10(xmx) - std::log10(xmn)) : 0;
    ax.lo = ax.t(xmn) - pad, ax.hi = ax.t(xmx) + pad;
    if (!c.log_x) xt = nice_ticks(xmn, xmx, 6);
  }
  const std::vector<double> yt = fit_axis(ay, ymn, ymx, false);
  s += y_ticks(ay, yt, f);
  std::vector<std::string> labels;
  if (!c.x_tick_values.empty()) {
    xt = c.x_tick_values;
    labels = c.x_tick_labels;
  }
  double last_label = -1e9;
  for (size_t i = 0; i < xt.size(); ++i) {
    if (!ax.ok(xt[i])) continue;
    const double x = ax.px(xt[i]);
    if (x < f.x0 - 0.5 || x > f.x1 + 0.5) continue;
    if (x - last_label < 30) continue;  // labels would overlap: keep the earlier one
    last_label = x;
    s += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#444\"/>\n", x,
        f.y1, x, f.y1 + 4);
    s += text(x, f.y1 + 16, i < labels.size() ? labels[i] : tick_label(xt[i]), "middle", 10);
  }
  for (size_t k = 0; k < c.series.size(); ++k) {
    const Series& se = c.series[k];
    std::string path, dots;
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!ax.ok(se.x[i]) || !ay.ok(se.y[i])) continue;
      const double x = ax.px(se.x[i]), y = ay.px(se.y[i]);
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", x, y);
      if (c.markers)
        dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", x, y,
                            color(k));
    }
    if (!path.empty())
      s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>\n", path,
                       color(k));
    s += dots;
  }
  return s;
}

std::string draw_bars(const BarChart& c, double ox, double oy, Size sz) {
  Frame f;
  std::string s = chrome(ox, oy, sz, c.title, c.y_label, c.series_names, true, f);
  Axis ay{c.log_y};
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  for (const auto& row : c.values)
    for (double v : row)
      if (ay.ok(v)) mn = std::min(mn, v), mx = std::max(mx, v);
  if (!(mn <= mx) || c.groups.empty()) return s + no_data(f);
  ay.p0 = f.y1, ay.p1 = f.y0;
  const std::vector<double> yt = fit_axis(ay, mn, mx, !c.log_y);
  s += y_ticks(ay, yt, f);
  const double gw = (f.x1 - f.x0) / static_cast<double>(c.groups.size());
  const size_t ns = std::max<size_t>(1, c.values.size());
  const double bw = gw * 0.8 / static_cast<double>(ns);
  const bool rotate = c.groups.size() > 6;
  const double base = c.log_y ? f.y1 : ay.px(0.0);
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const double gx = f.x0 + gw * static_cast<double>(g);
    for (size_t k = 0; k < c.values.size(); ++k) {
      if (g >= c.values[k].size() || !ay.ok(c.values[k][g])) continue;
      const double y = ay.px(c.values[k][g]);
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n",
          gx + gw * 0.1 + bw * static_cast<double>(k), std::min(y, base), bw, std::abs(base - y),
          color(k));
    }
    const double lx = gx + gw / 2;
    s += rotate ? text(lx, f.y1 + 14, c.groups[g], "end", 10,
                       fmt::format(" transform=\"rotate(-35 {:.1f} {:.1f})\"", lx, f.y1 + 14))
                : text(lx, f.y1 + 16, c.groups[g], "middle", 10);
  }
  return s;
}

std::string draw(const Chart& c, double ox, double oy, Size sz) {
  if (const auto* l = std::get_if<LineChart>(&c)) return draw_line(*l, ox, oy, sz);
  return draw_bars(std::get<BarChart>(c), ox, oy, sz);
}

std::string svg_open(double w, double h) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      w, h, w, h);
}

}  // namespace

std::string render_svg(const Chart& c, Size size) {
  return svg_open(size.width, size.height) + draw(c, 0, 0, size) + "</svg>\n";
}

std::string render_panels_svg(const std::string& title, const std::vector<Chart>& charts, int cols,
                              Size panel) {
  cols = std::max(1, cols);
  const size_t n = charts.size();
  const int rows =
      static_cast<int>((n + static_cast<size_t>(cols) - 1) / static_cast<size_t>(cols));
  const double top = title.empty() ? 0 : 34;
  const double w =
      panel.width * std::min<double>(cols, static_cast<double>(std::max<size_t>(n, 1)));
  const double h = top + panel.height * std::max(rows, 1);
  std::string s = svg_open(w, h);
  if (!title.empty()) s += text(w / 2, 22, title, "middle", 15, " font-weight=\"bold\"");
  for (size_t i = 0; i < n; ++i)
    s += draw(charts[i], panel.width * static_cast<double>(i % static_cast<size_t>(cols)),
              top + panel.height * static_cast<double>(i / static_cast<size_t>(cols)), panel);
  return s + "</svg>\n";
}

}  // namespace edgellm::report
