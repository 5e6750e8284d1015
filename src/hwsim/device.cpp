#include "hwsim/device.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::hwsim {

namespace detail {
const std::vector<std::pair<std::string, const char*>>& embedded_device_presets();
}

namespace {

using nlohmann::json;

const json& section(const json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) fail("[hwsim] {}: missing section '{}'", source, key);
  if (!it->is_object())
    fail("[hwsim] {}: section '{}' must be an object, got {}", source, key, it->dump());
  return *it;
}

// A required number that must be > 0 (or >= 0 when zero_ok); errors name section.field=value.
double number(const json& s, const char* sec, const char* key, const std::string& source,
              bool zero_ok = false) {
  auto it = s.find(key);
  if (it == s.end()) fail("[hwsim] {}: field '{}.{}' is missing", source, sec, key);
  if (!it->is_number())
    fail("[hwsim] {}: field '{}.{}' must be a number, got {}", source, sec, key, it->dump());
  double v = it->get<double>();
  if (v < 0 || (!zero_ok && v == 0))
    fail("[hwsim] {}: field '{}.{}' must be {}, got {}", source, sec, key,
         zero_ok ? "non-negative" : "positive", it->dump());
  return v;
}

int integer(const json& s, const char* sec, const char* key, const std::string& source) {
  double v = number(s, sec, key, source);
  // Range first: converting a double beyond int64 to an integer is undefined behaviour (a
  // fuzzer finding: cols = 5.6e77).
  if (v > 1e9 || v != std::floor(v))
    fail("[hwsim] {}: field '{}.{}' must be an integer, got {}", source, sec, key,
         s.at(key).dump());
  return static_cast<int>(v);
}

std::string source_of(const json& s, const char* sec, const std::string& source) {
  auto it = s.find("source");
  if (it == s.end() || !it->is_string() || it->get<std::string>().empty())
    fail("[hwsim] {}: field '{}.source' is missing: every figure must say where it came from",
         source, sec);
  return it->get<std::string>();
}

}  // namespace

Device Device::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail("[hwsim] {}: a device must be a JSON object", source);
  Device d;
  // json::value() throws a raw type_error for a present non-string (a fuzzer finding).
  auto text = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return std::string();
    if (!it->is_string())
      fail("[hwsim] {}: field '{}' must be a string, got {}", source, key, it->dump());
    return it->get<std::string>();
  };
  d.name = text("name");
  if (d.name.empty()) fail("[hwsim] {}: field 'name' is missing", source);
  d.description = text("description");

  const json& a = section(j, "array", source);
  d.array_rows = integer(a, "array", "rows", source);
  d.array_cols = integer(a, "array", "cols", source);
  if (!a.contains("dataflow") || !a["dataflow"].is_string())
    fail("[hwsim] {}: field 'array.dataflow' is missing (os, ws, is)", source);
  d.dataflow = parse_dataflow(a["dataflow"].get<std::string>(), source + ": array.dataflow");
  d.clock_hz = number(a, "array", "clock_mhz", source) * 1e6;
  d.sources.emplace_back("array", source_of(a, "array", source));

  const json& p = section(j, "precision", source);
  d.base_bits = integer(p, "precision", "base_bits", source);
  d.granularity_bits = integer(p, "precision", "granularity_bits", source);
  d.sources.emplace_back("precision", source_of(p, "precision", source));

  const json& v = section(j, "vector", source);
  d.vector_lanes = integer(v, "vector", "lanes", source);
  d.sources.emplace_back("vector", source_of(v, "vector", source));

  const json& s = section(j, "sram", source);
  d.sram_bytes = number(s, "sram", "bytes", source);
  d.sources.emplace_back("sram", source_of(s, "sram", source));

  const json& m = section(j, "dram", source);
  d.dram_bytes = number(m, "dram", "bytes", source);
  d.dram_bw = number(m, "dram", "bandwidth_GBps", source) * 1e9;
  d.sources.emplace_back("dram", source_of(m, "dram", source));

  const json& f = section(j, "ssd", source);
  d.ssd_bytes = number(f, "ssd", "bytes", source);
  d.ssd_read_bw = number(f, "ssd", "read_GBps", source) * 1e9;
  d.ssd_write_bw = number(f, "ssd", "write_GBps", source) * 1e9;
  d.sources.emplace_back("ssd", source_of(f, "ssd", source));

  const json& c = section(j, "capacity_fraction", source);
  d.capacity_fraction = number(c, "capacity_fraction", "value", source);
  if (d.capacity_fraction > 1)
    fail("[hwsim] {}: field 'capacity_fraction.value' must be in (0, 1], got {}", source,
         d.capacity_fraction);
  d.sources.emplace_back("capacity_fraction", source_of(c, "capacity_fraction", source));
  return d;
}

json Device::to_json() const {
  auto src = [&](const std::string& sec) {
    for (const auto& [k, v] : sources)
      if (k == sec) return v;
    return std::string("unspecified");
  };
  return json{
      {"name", name},
      {"description", description},
      {"array",
       {{"rows", array_rows},
        {"cols", array_cols},
        {"dataflow", dataflow_name(dataflow)},
        {"clock_mhz", clock_hz / 1e6},
        {"source", src("array")}}},
      {"precision",
       {{"base_bits", base_bits},
        {"granularity_bits", granularity_bits},
        {"source", src("precision")}}},
      {"vector", {{"lanes", vector_lanes}, {"source", src("vector")}}},
      {"sram", {{"bytes", sram_bytes}, {"source", src("sram")}}},
      {"dram", {{"bytes", dram_bytes}, {"bandwidth_GBps", dram_bw / 1e9}, {"source", src("dram")}}},
      {"ssd",
       {{"bytes", ssd_bytes},
        {"read_GBps", ssd_read_bw / 1e9},
        {"write_GBps", ssd_write_bw / 1e9},
        {"source", src("ssd")}}},
      {"capacity_fraction", {{"value", capacity_fraction}, {"source", src("capacity_fraction")}}},
  };
}

std::vector<std::string> Device::preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, _] : detail::embedded_device_presets()) names.push_back(n);
  return names;
}

const char* Device::preset_json(const std::string& name) {
  for (const auto& [n, text] : detail::embedded_device_presets())
    if (n == name) return text;
  return nullptr;
}

Device Device::load(const std::string& name_or_path) {
  if (const char* text = preset_json(name_or_path)) {
    return from_json(json::parse(text), "device preset '" + name_or_path + "'");
  }
  if (!std::filesystem::exists(name_or_path)) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("[hwsim] device '{}': neither a preset ({}) nor an existing file", name_or_path, known);
  }
  json j;
  try {
    j = json::parse(read_file(name_or_path));
  } catch (const json::exception& e) {  // parse_error, out_of_range (number overflow)
    fail("[hwsim] {}: not valid JSON: {}", name_or_path, e.what());
  }
  return from_json(j, name_or_path);
}

}  // namespace edgellm::hwsim
