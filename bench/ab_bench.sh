#!/usr/bin/env bash
# A/B speed check of two edgellm binaries (e.g. before and after a change) on one model, for
# machines too noisy for a single run: the two binaries alternate ROUNDS times and we report
#   wall   — `edgellm bench` tokens/s with OMP_NUM_THREADS=2, best and median over the rounds;
#   cpu    — CPU time per token from `perf stat -e task-clock` with 1 thread, which run-queue waits
#            on a loaded machine do not inflate: prefill = cpu(pp PP) − cpu(pp 1), decode =
#            (cpu(tg TG) − cpu(tg 1)) / (TG − 1), min and median over the rounds.
#   bench/ab_bench.sh BIN_A BIN_B MODEL [PP TG ROUNDS]     (default 128 32 5)
# Copy both binaries to the same local directory first (/tmp): on this machine a binary run from
# the /work file system was repeatedly slower than the same file run from /tmp.
set -euo pipefail
A="$1" B="$2" M="$3" PP="${4:-128}" TG="${5:-32}" R="${6:-5}"
command -v perf >/dev/null || { echo "perf (linux-perf) is needed for the CPU-time figures" >&2; exit 1; }
out=$(mktemp)
cpu() {  # binary pp tg -> task-clock ms
  OMP_NUM_THREADS=1 perf stat -x, -e task-clock "$1" bench -m "$M" --pp "$2" --tg "$3" --reps 1 \
    2>&1 >/dev/null | grep task-clock | cut -d, -f1
}
for _ in $(seq "$R"); do
  for who in A B; do
    bin=$([ "$who" = A ] && echo "$A" || echo "$B")
    w=$(OMP_NUM_THREADS=2 "$bin" bench -m "$M" --pp "$PP" --tg "$TG" --reps 3 --json 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["pp"]["tokens_per_s"], j["tg"]["tokens_per_s"])')
    echo "$who wall $w $(cpu "$bin" 1 1) $(cpu "$bin" "$PP" 1) $(cpu "$bin" 1 "$TG")" >>"$out"
  done
done
python3 - "$out" "$PP" "$TG" "$A" "$B" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
P, T = int(sys.argv[2]), int(sys.argv[3])
for who, name in (("A", sys.argv[4]), ("B", sys.argv[5])):
    r = [x for x in rows if x[0] == who]
    pp = [float(x[2]) for x in r]; tg = [float(x[3]) for x in r]
    cpp = [(float(x[5]) - float(x[4])) / (P - 1) for x in r]
    ctg = [(float(x[6]) - float(x[4])) / (T - 1) for x in r]
    print(f"{who} {name}: n={len(r)}")
    print(f"  wall, 2 threads: pp{P} best {max(pp):.1f} median {st.median(pp):.1f} tok/s | "
          f"tg{T} best {max(tg):.1f} median {st.median(tg):.1f} tok/s")
    print(f"  CPU, 1 thread:   prefill min {min(cpp):.3f} median {st.median(cpp):.3f} ms/token | "
          f"decode min {min(ctg):.3f} median {st.median(ctg):.3f} ms/token")
EOF
rm -f "$out"
