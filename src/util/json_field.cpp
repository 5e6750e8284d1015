#include "util/json_field.h"

#include <cmath>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {
std::string shown(const nlohmann::json& v) { return v.dump().substr(0, 80); }
}  // namespace

int64_t json_int(const nlohmann::json& v, const JsonWhere& w, int64_t lo, int64_t hi) {
  bool in_range = false;
  int64_t out = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(INT64_MAX) && static_cast<int64_t>(u) >= lo &&
               static_cast<int64_t>(u) <= hi;
    out = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
    in_range = out >= lo && out <= hi;
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d))
      fail("[{}] {}: field '{}' must be an integer, got {}", w.tag, w.source, w.field, shown(v));
    // Compared as doubles first so the cast below is defined.
    in_range = d >= static_cast<double>(lo) && d <= static_cast<double>(hi);
    if (in_range) out = static_cast<int64_t>(d);
  } else {
    fail("[{}] {}: field '{}' must be an integer, got {}", w.tag, w.source, w.field, shown(v));
  }
  if (!in_range)
    fail("[{}] {}: field '{}' = {} is outside [{}, {}]", w.tag, w.source, w.field, shown(v), lo,
         hi);
  return out;
}

double json_number(const nlohmann::json& v, const JsonWhere& w, double lo, double hi) {
  if (!v.is_number())
    fail("[{}] {}: field '{}' must be a number, got {}", w.tag, w.source, w.field, shown(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    fail("[{}] {}: field '{}' = {} is outside [{}, {}]", w.tag, w.source, w.field, shown(v), lo,
         hi);
  return d;
}

bool json_bool(const nlohmann::json& v, const JsonWhere& w) {
  if (!v.is_boolean())
    fail("[{}] {}: field '{}' must be true or false, got {}", w.tag, w.source, w.field, shown(v));
  return v.get<bool>();
}

nlohmann::json read_json_file(const std::string& path, const char* tag) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("[{}] {}: not valid JSON: {}", tag, path, e.what());
  }
}

}  // namespace edgellm
