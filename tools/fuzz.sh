#!/usr/bin/env bash
# Bounded fuzz stage (docs/reliability.md): builds the libFuzzer harnesses (CMake preset "fuzz":
# clang, ASan + UBSan + fuzzer coverage), writes seed corpora with the project's own writers
# (fuzz/make_corpus.cpp; nothing third-party), then runs every harness on its corpus.
#
#   tools/fuzz.sh                    each harness for FUZZ_SECONDS (default 25 s; 12 harnesses:
#                                    about 5 minutes of fuzzing)
#   FUZZ_RUNS=1000000 tools/fuzz.sh  each harness for a number of executions instead
#   FUZZ_PRESET=ci-debug tools/fuzz.sh   the harnesses of another tree that builds them (tools/test.sh:
#                                    the sanitizer tree, which also holds the tests)
#
# Corpora grow in build/<preset>/corpus/<harness>; a crash leaves build/<preset>/artifacts/<harness>-*
# and makes the script exit non-zero. Needs clang, libclang-rt-dev and libomp-dev
# (tools/install-deps.sh --tests).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESSES=(safetensors gguf llama2c tokenizer_bin tokenizer_json config_json adapter_config alpaca
  mmlu_csv device_preset pipeline_config compressed_model)
targets=(fuzz_make_corpus)
for h in "${HARNESSES[@]}"; do targets+=("fuzz_$h"); done
preset="${FUZZ_PRESET:-fuzz}"
b="build/$preset"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)" --target "${targets[@]}"
corpus=$b/corpus
artifacts=$b/artifacts
rm -rf "$corpus.seed"
"$b/fuzz_make_corpus" "$corpus.seed"
mkdir -p "$artifacts"
export OMP_NUM_THREADS=1
# The harnesses write each input to a file (the readers map files): keep that in memory.
[[ -z "${TMPDIR:-}" && -d /dev/shm ]] && export TMPDIR=/dev/shm
limit=(-max_total_time="${FUZZ_SECONDS:-25}")
[[ -n "${FUZZ_RUNS:-}" ]] && limit=(-runs="$FUZZ_RUNS")
status=0
for h in "${HARNESSES[@]}"; do
  mkdir -p "$corpus/$h"
  cp -n "$corpus.seed/$h"/* "$corpus/$h"/
  log="$b/$h.log"
  if "$b/fuzz_$h" "${limit[@]}" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$h-" "$corpus/$h" >"$log" 2>&1; then
    result=ok
  else
    result="FINDING (see $log)"
    status=1
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "fuzz_$h: ${execs:-?} executions, $(ls "$corpus/$h" | wc -l) corpus files: $result"
done
exit $status
