// Which Highway targets this build compiles (include before hwy/highway.h, in src/simd only).
// Portable x86-64 builds: HWY_SCALAR ("scalar"), SSE4, AVX2, AVX-512 (HWY_AVX3); SSSE3 is dropped
// (no CPU we target stops there and each target costs compile time). aarch64: NEON plus SVE/SVE2
// where the compiler supports them. A -march=native build compiles its own baseline (e.g.
// AVX3_DL on Zen 4 / Ice Lake) and the targets above it only.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
