#include "train/memory.h"

#include <fmt/format.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace edgellm {

const char* mem_category_name(MemCategory c) {
  static const char* names[kMemCategories] = {"weights",   "adapters",    "gradients",
                                              "optimizer", "activations", "scratch",
                                              "workspace", "prefix_cache"};
  return names[static_cast<int>(c)];
}

size_t MemoryPlan::total() const {
  size_t t = 0;
  for (size_t b : bytes) t += b;
  return t;
}

std::string MemoryPlan::table() const {
  std::string s;
  for (int i = 0; i < kMemCategories; ++i)
    s += fmt::format("  {:<12} {:>10.1f} MiB\n", mem_category_name(static_cast<MemCategory>(i)),
                     bytes[i] / 1048576.0);
  s += fmt::format("  {:<12} {:>10.1f} MiB\n", "total", total() / 1048576.0);
  return s;
}

nlohmann::json MemoryPlan::to_json() const {
  nlohmann::json j;
  for (int i = 0; i < kMemCategories; ++i)
    j[mem_category_name(static_cast<MemCategory>(i))] = bytes[i];
  j["total"] = total();
  return j;
}

float* Arena::take(size_t n) {
  // 16-float (64-byte) alignment of every buffer: whole cache lines, aligned AVX-512 loads.
  const size_t padded = (n + 15) & ~size_t(15);
  if (measuring_) {
    counted_ += padded;
    return nullptr;
  }
  EDGELLM_CHECK(used_ + padded <= buf_.size(), "arena overflow: {} + {} > {}", used_, padded,
                buf_.size());
  float* p = buf_.data() + used_;
  used_ += padded;
  return p;
}

void Arena::allocate() {
  buf_.assign(counted_, 0.f);
  measuring_ = false;
  used_ = 0;
}

int64_t parse_bytes(const std::string& s, const std::string& what) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) fail("[train] {} '{}': expected a size such as 4G or 512M", what, s);
  const double v = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    mul = 1048576.0;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    mul = 1073741824.0;
  else
    fail("[train] {} '{}': unknown unit '{}' (K, M, G)", what, s, unit);
  return static_cast<int64_t>(v * mul);
}

size_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

size_t current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

RssMark start_rss_measurement() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  RssMark m;
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    m.reset = std::fputs("5", f) >= 0;
    m.reset = (std::fclose(f) == 0) && m.reset;
  }
  m.rss = current_rss_bytes();
  return m;
}

size_t hwm_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
  std::fclose(f);
  return static_cast<size_t>(kb) * 1024;
}

}  // namespace edgellm
