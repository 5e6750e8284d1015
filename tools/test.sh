#!/usr/bin/env bash
# Builds two trees with warnings as errors and runs every test in both: the sanitizer tree
# (clang, ASan + UBSan at -O1, which also holds the libFuzzer harnesses: a bounded fuzz run of
# every parser comes first) and the release tree (GCC). One sanitizer build serves the tests and
# the fuzzers. The release run comes last; its ctest summary is the final line.
#   FUZZ_SECONDS (default 5) per harness; FUZZ_SECONDS=0 skips the fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGELLM_DATA:-../shared/data}"
[ -d "$DATA" ] || { echo "error: EDGELLM_DATA directory '$DATA' not found" >&2; exit 1; }
export EDGELLM_DATA="$(cd "$DATA" && pwd)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# The tests' own packages (GoogleTest, libxml2, Node.js and the pinned npm references): the main
# job's install leaves them out. Does nothing when they are present.
tools/install-deps.sh --tests
JOBS="$(nproc)"
cmake --preset ci-debug >/dev/null
cmake --build --preset ci-debug -j"$JOBS"
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  FUZZ_PRESET=ci-debug FUZZ_SECONDS="${FUZZ_SECONDS:-5}" tools/fuzz.sh
fi
# Under the sanitizers, skip only the tests named *Slow* and four more long learning runs (a
# model trained for hundreds of steps until its loss or perplexity crosses a line, a sweep of the
# simulator: the numbers are checked in the release run, the same code paths here by the
# gradient, resume and format tests; 98 s of the sanitizer suite), the speed check (meaningless
# here) and the kill-at-random-moments runs (dozens of processes each, 180 s of the sanitizer
# suite; their resume paths run here in the exact-resume tests, the killing itself in the release
# run). Everything that parses input runs here.
ASAN_OPTIONS=detect_leaks=1 ctest --preset ci-debug -j"$JOBS" --timeout 600 \
  -E 'Slow|EncodeSpeed|KillResume|Pipeline\.Killed|LearnsFarBelowUnigram|LoraOnShakespeareLowers|Stories260KNotWorseThanPerLayer|SweepTableAndSvg'
cmake --preset ci >/dev/null
cmake --build --preset ci -j"$JOBS"
# The SIMD kernels under each forced x86 target below the best one (docs/simd.md): test_simd
# already runs every kernel on every target; these run the kernel, storage and model-golden
# suites end to end on each target this CPU has (seconds).
for t in avx2 sse4 scalar; do
  EDGELLM_TARGET=$t build/ci/edgellm info --system >/dev/null 2>&1 || continue
  for s in kernels tensor model; do
    EDGELLM_TARGET=$t build/ci/test_$s --gtest_brief=1 >/dev/null ||
      { echo "test_$s failed with EDGELLM_TARGET=$t" >&2; exit 1; }
  done
  echo "EDGELLM_TARGET=$t: test_kernels test_tensor test_model passed"
done
ctest --preset ci -j"$JOBS" --timeout 900
