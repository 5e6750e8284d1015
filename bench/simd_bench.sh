#!/usr/bin/env bash
# Portable (run-time SIMD dispatch) vs -march=native binaries, and the portable binary under each
# forced SIMD target, side by side in one run (docs/simd.md). CPU time from `perf stat -e
# task-clock` with 1 thread (run-queue waits on a shared machine do not inflate it):
#   prefill ms/token = (cpu(pp PP, tg 1) − cpu(pp 1, tg 1)) / ((REPS+1)·(PP − 1))
#   decode  ms/token = (cpu(pp 1, tg TG) − cpu(pp 1, tg 1)) / ((REPS+1)·(TG − 1))
# (bench runs a warm-up rep plus REPS=1 timed ones, all counted), so that the model load, which
# the subtraction removes, is small beside the work; min over ROUNDS alternating rounds. Each entry
# of RUNS is LABEL=BINARY[@TARGET]; MODELS are anything `edgellm bench -m` reads (.gguf, .bin,
# model directories, compressed ones included). PP=0 skips the prefill runs (decode only).
#   bench/simd_bench.sh "MODELS" "RUNS" [PP TG ROUNDS]
# e.g. bench/simd_bench.sh "m_f32.gguf m_q8_0.gguf" "native=/tmp/a portable=/tmp/b avx2=/tmp/b@avx2"
set -euo pipefail
MODELS="$1" RUNS="$2" PP="${3:-512}" TG="${4:-128}" R="${5:-3}" REPS=1
command -v perf >/dev/null || { echo "perf (linux-perf) is needed" >&2; exit 1; }
out=$(mktemp)
cpu() {  # binary target model pp tg -> task-clock ms
  EDGELLM_TARGET="$2" OMP_NUM_THREADS=1 perf stat -x, -e task-clock "$1" bench -m "$3" --pp "$4" \
    --tg "$5" --reps "$REPS" 2>&1 >/dev/null | grep task-clock | cut -d, -f1
}
for _ in $(seq "$R"); do
  for m in $MODELS; do
    for run in $RUNS; do
      label=${run%%=*} spec=${run#*=}
      bin=${spec%@*} tgt=""
      [[ "$spec" == *@* ]] && tgt=${spec#*@}
      c1=$(cpu "$bin" "$tgt" "$m" 1 1) cp=nan
      [[ "$PP" -gt 1 ]] && cp=$(cpu "$bin" "$tgt" "$m" "$PP" 1)
      echo "$m $label $c1 $cp" \
        "$(cpu "$bin" "$tgt" "$m" 1 "$TG")" >>"$out"
    done
  done
done
python3 - "$out" "$PP" "$TG" "$REPS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
P, T, K = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) + 1  # + the warm-up rep
# min of each CPU time over the rounds, then the differences (the model load's noise is in
# every run; a min per run is the least disturbed estimate of each).
mins = {}
for m, label, c1, cp, ct in rows:
    b = mins.setdefault((m, label), [1e18] * 3)
    for i, v in enumerate((c1, cp, ct)): b[i] = min(b[i], float(v))  # nan: no prefill run
best = {k: ((cp - c1) / (K * (P - 1)) if P > 1 else float('nan'), (ct - c1) / (K * (T - 1)))
        for k, (c1, cp, ct) in mins.items()}
labels = list(dict.fromkeys(r[1] for r in rows)); ref = labels[0]
print(f"{'model':<16} {'run':<10} {'pp'+str(P)+' ms/tok':>12} {'tok/s':>7} {'vs '+ref:>8} "
      f"{'tg'+str(T)+' ms/tok':>12} {'tok/s':>7} {'vs '+ref:>8}")
for m in dict.fromkeys(r[0] for r in rows):
    for l in labels:
        pp, tg = best[(m, l)]; rp, rt = best[(m, ref)]
        print(f"{m:<16} {l:<10} {pp:12.3f} {1e3/pp:7.1f} {rp/pp:8.3f} {tg:12.3f} {1e3/tg:7.1f} {rt/tg:8.3f}")
PY
