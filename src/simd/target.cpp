#include "simd/target.h"

#include <cstdlib>
#include <mutex>

#include "simd/hwy_config.h"
// hwy_config.h must come first.
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "util/error.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace edgellm::simd {

namespace detail {
std::atomic<bool> g_ready{false};
std::atomic<int64_t> g_active_bit{0};
}  // namespace detail

namespace {

struct Named {
  int64_t bit;
  const char* name;
};

// Best first (Highway: a lower bit is a better target within an architecture).
constexpr Named kTargets[] = {
#if HWY_ARCH_X86
    {HWY_AVX3_DL, "avx512_dl"}, {HWY_AVX3, "avx512"},   {HWY_AVX2, "avx2"},
    {HWY_SSE4, "sse4"},         {HWY_SSSE3, "ssse3"},
#elif HWY_ARCH_ARM
    {HWY_SVE2_128, "sve2_128"}, {HWY_SVE_256, "sve_256"}, {HWY_SVE2, "sve2"},
    {HWY_SVE, "sve"},           {HWY_NEON, "neon"},
#endif
    {HWY_SCALAR, "scalar"},     {HWY_EMU128, "emu128"},
};

std::mutex g_mu;
std::once_flag g_once;

int64_t cpu_targets() {
  hwy::SetSupportedTargetsForTest(0);  // drop any mock: what the CPU has
  return hwy::SupportedTargets();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ", ";
    s += x;
  }
  return s.empty() ? "none" : s;
}

std::vector<std::string> names(int64_t mask) {
  std::vector<std::string> out;
  for (const Named& t : kTargets)
    if (mask & t.bit) out.push_back(t.name);
  return out;
}

// Under g_mu.
void note_active() {
  const int64_t supported = hwy::SupportedTargets() & HWY_TARGETS;
  detail::g_active_bit.store(supported & -supported, std::memory_order_release);  // lowest: best
}
void apply(const std::string& name) {
  const int64_t cpu = cpu_targets();
  if (name.empty() || name == "best") {
    hwy::GetChosenTarget().Update(cpu);
    note_active();
    return;
  }
  int64_t bit = 0;
  for (const Named& t : kTargets)
    if (name == t.name) bit = t.bit;
  if (bit == 0)
    fail(
        "[simd] EDGELLM_TARGET='{}' is not a SIMD target of this architecture (this build "
        "compiles: {})",
        name, join(names(HWY_TARGETS)));
  if (!(bit & HWY_TARGETS))
    fail("[simd] EDGELLM_TARGET='{}' is not compiled into this build (compiled: {})", name,
         join(names(HWY_TARGETS)));
  if (!(bit & cpu))
    fail("[simd] EDGELLM_TARGET='{}': this CPU cannot execute it (available: {})", name,
         join(names(cpu & HWY_TARGETS)));
  hwy::SetSupportedTargetsForTest(bit);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  note_active();
}

}  // namespace

void detail::init_from_env() {
  std::call_once(g_once, [] {
    std::lock_guard<std::mutex> lock(g_mu);
    const char* env = std::getenv("EDGELLM_TARGET");
    apply(env ? env : "");
    g_ready.store(true, std::memory_order_release);
  });
}

std::string active_target() {
  detail::ensure_init();
  std::lock_guard<std::mutex> lock(g_mu);
  const int64_t supported = hwy::SupportedTargets() & HWY_TARGETS;
  // The chosen target is the best of the supported ones (Highway's dispatch rule).
  for (const Named& t : kTargets)
    if (supported & t.bit) return t.name;
  return "none";
}

std::vector<std::string> available_targets() {
  detail::ensure_init();
  std::lock_guard<std::mutex> lock(g_mu);
  const int64_t mock = hwy::SupportedTargets();
  const int64_t cpu = cpu_targets();
  // Restore the active choice (cpu_targets() dropped the mock).
  if (mock != cpu) hwy::SetSupportedTargetsForTest(mock);
  return names(cpu & HWY_TARGETS);
}

std::vector<std::string> compiled_targets() { return names(HWY_TARGETS); }

void set_target(const std::string& name) {
  detail::ensure_init();
  std::lock_guard<std::mutex> lock(g_mu);
  apply(name);
}

std::string cpu_features() {
  std::string s;
  auto add = [&](bool has, const char* n) {
    if (!has) return;
    if (!s.empty()) s += ' ';
    s += n;
  };
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  add(__builtin_cpu_supports("sse4.2"), "sse4.2");
  add(__builtin_cpu_supports("avx"), "avx");
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("bmi2"), "bmi2");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512dq"), "avx512dq");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vnni"), "avx512_vnni");
  add(__builtin_cpu_supports("avx512vbmi2"), "avx512_vbmi2");
  add(__builtin_cpu_supports("avx512bf16"), "avx512_bf16");
#elif defined(__aarch64__) && defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  add(hw & (1UL << 1), "asimd");     // HWCAP_ASIMD
  add(hw & (1UL << 9), "fphp");      // HWCAP_FPHP: fp16 arithmetic
  add(hw & (1UL << 20), "asimddp");  // HWCAP_ASIMDDP: int8 dot product
  add(hw & (1UL << 22), "sve");      // HWCAP_SVE
  add(hw2 & (1UL << 1), "sve2");     // HWCAP2_SVE2
  add(hw2 & (1UL << 14), "bf16");    // HWCAP2_BF16
  add(hw2 & (1UL << 13), "i8mm");    // HWCAP2_I8MM
#endif
  return s;
}

bool cpu_has_bf16_dot() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#elif defined(__aarch64__) && defined(__linux__)
  return getauxval(AT_HWCAP2) & (1UL << 14);
#else
  return false;
#endif
}

}  // namespace edgellm::simd
