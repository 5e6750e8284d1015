#!/usr/bin/env bash
# The aarch64 stage of CI (docs/simd.md "aarch64"): cross-builds the test suites with Debian's
# g++-aarch64-linux-gnu against Debian's arm64 libraries and runs them under qemu-aarch64
# (qemu-user): the SIMD kernels on every aarch64 target qemu offers (SVE2, SVE, NEON), then the
# kernel, storage-format, tokenizer, model-golden and training-gradient suites.
#   tools/test-aarch64.sh        (installs its packages through tools/aarch64-deps.sh)
# The tokenizer and GGUF-type suites compare against the npm reference implementations: run
# tests/conformance/setup.sh first, or those tests are skipped. AARCH64_MODEL_FILTER and
# AARCH64_TRAIN_FILTER (gtest filters) override the selections below.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGELLM_DATA:-../shared/data}"
[ -d "$DATA" ] || { echo "error: EDGELLM_DATA directory '$DATA' not found" >&2; exit 1; }
export EDGELLM_DATA="$(cd "$DATA" && pwd)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
tools/aarch64-deps.sh
SUITES=(simd kernels tensor packed io tokenizer model train)
targets=(edgellm)
for s in "${SUITES[@]}"; do targets+=("test_$s"); done
cmake --preset aarch64 -DEDGELLM_WERROR=ON -DEDGELLM_REQUIRE_TESTS=ON >/dev/null
cmake --build --preset aarch64 -j"$(nproc)" --target "${targets[@]}"
b=build/aarch64
run() {  # qemu-cpu suite [gtest filter]
  local t0=$SECONDS
  qemu-aarch64 -cpu "$1" "$b/test_$2" --gtest_brief=1 --gtest_filter="${3:-*}" >"$b/test_$2.$1.log" 2>&1 ||
    { cat "$b/test_$2.$1.log"; echo "aarch64 test_$2 (qemu -cpu $1) failed" >&2; exit 1; }
  echo "aarch64 test_$2 (qemu -cpu $1): $(grep -h '^\[  PASSED' "$b/test_$2.$1.log")" \
    "$(grep -h '^\[  SKIPPED' "$b/test_$2.$1.log" || true) $((SECONDS - t0)) s"
}
# Every SIMD kernel against its scalar reference on each target: -cpu max has SVE2, SVE and NEON;
# cortex-a57 is a NEON-only core (the Raspberry Pi 3/4 class).
run max simd
run cortex-a57 simd
# BoundedCaches measures oneDNN's bf16 primitive cache, which aarch64 does not use (fp32 path);
# its 1,000 GEMMs take most of a minute under emulation.
run max kernels -BoundedCaches.*
for s in tensor packed io; do run max "$s"; done
run max tokenizer -HfBpe.EncodeSpeed # a speed check: meaningless under emulation
# Model goldens (stories260K against llama2.c, edgellm-tiny's bytes and greedy text, the packed
# model against its dequantized copy, layer taps, adapters, exit heads); left out here only the
# three that run long numeric loops (minutes under emulation; the x86 suites run them).
run max model "${AARCH64_MODEL_FILTER:--EdgellmTiny.ManySequenceLengthsDoNotGrowMemory:PackedModel.ReloadGivesTheIdenticalPerplexity:PackedModel.GgufExportReadsBackCloseToThePackedModel:PackedModel.LoraTrainsOnThePackedBaseLikeOnItsDequantizedCopy}"
# Training gradients: every backward against finite differences, windowed = full backward
# restricted to the window, exit-head gradients; not the learning runs (minutes under emulation).
run max train "${AARCH64_TRAIN_FILTER:-Window.*:ModelGrad.*:*Backward*:Exits.*:AdamWSpans.*:ShapeSpec.*:Alt.EachStep*}"
echo "aarch64: all suites passed under qemu-aarch64"
