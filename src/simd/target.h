// The one run-time SIMD dispatch decision. Every kernel of simd.h runs on the active target: the
// best one the CPU supports among those compiled into this build, unless EDGELLM_TARGET names
// one (read once, before the first kernel call; a target the CPU or the build lacks is an error
// that lists the available ones). Tests switch targets with set_target() to run each kernel on
// every target the machine can execute.
#pragma once

#include <atomic>
#include <string>
#include <vector>

namespace edgellm::simd {

// Target names: "scalar" (Highway's HWY_SCALAR, one lane: the portable fallback of x86 builds),
// "emu128" (Highway's 4-lane emulation, where a build uses it as its fallback), "sse4", "avx2"
// (AVX2+FMA+F16C+BMI2), "avx512" (F/VL/DQ/BW), "avx512_dl" (+VNNI/VBMI2/BITALG, only in -march
// builds that have it), "neon", "sve", "sve2", "sve_256", "sve2_128".
std::string active_target();
// Targets compiled into this build that the CPU can execute, best first.
std::vector<std::string> available_targets();
// Targets compiled into this build, best first (whether or not the CPU has them).
std::vector<std::string> compiled_targets();
// Makes `name` the active target ("" or "best": the best available). Throws Error if the build or
// the CPU lacks it. Not thread-safe against concurrent kernel calls: call between them.
void set_target(const std::string& name);

// The CPU's SIMD-relevant features as the OS reports them (cpuid on x86, hwcaps on aarch64), e.g.
// "avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 avx512_vnni".
std::string cpu_features();
// Whether the CPU has bf16 dot-product instructions (x86 AVX512_BF16, aarch64 BF16).
bool cpu_has_bf16_dot();

namespace detail {
void init_from_env();  // applies EDGELLM_TARGET once
extern std::atomic<bool> g_ready;
// The active target's Highway bit (HWY_AVX3, HWY_NEON, ...), kept by set_target/init: a plain
// load for per-GEMV kernel choices (hwy::SupportedTargets() was ~5% of a decode profile).
extern std::atomic<int64_t> g_active_bit;
inline void ensure_init() {
  if (!g_ready.load(std::memory_order_acquire)) [[unlikely]]
    init_from_env();
}
}  // namespace detail

}  // namespace edgellm::simd
