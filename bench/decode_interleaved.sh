#!/usr/bin/env bash
# Decode speed of edgellm and llama.cpp in interleaved rounds: every round runs every file once
# (llama.cpp's llama-bench and edgellm bench on each GGUF, then edgellm on each packed model), so a
# machine whose speed drifts between runs (±30 % on the 2-core VMs of docs/compression.md) moves
# all of them alike; prints each figure per round, the medians, and every edgellm model's ratio
# to llama.cpp on the REF file (per round and of the medians).
#   bench/decode_interleaved.sh LLAMA_BUILD_DIR "GGUF ..." ["PACKED_DIR ..."]
#   ROUNDS=5 TG=64 THREADS=2 REF=<first GGUF>
# LLAMA_BUILD_DIR as in bench/llamacpp_compare.sh (which also makes the GGUF files).
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA="${1:?usage: bench/decode_interleaved.sh LLAMA_BUILD_DIR \"GGUF ...\" [\"PACKED_DIR ...\"]}"
read -r -a GGUFS <<<"${2:?no GGUF files given}"
read -r -a PACKED <<<"${3:-}"
ROUNDS="${ROUNDS:-5}"
TG="${TG:-64}"
THREADS="${THREADS:-2}"
REF="${REF:-${GGUFS[0]}}"
BIN="${EDGELLM_BIN:-build/release/edgellm}"
[ -x "$LLAMA/bin/llama-bench" ] || { echo "no $LLAMA/bin/llama-bench" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no $BIN: build edgellm first (cmake --build --preset release)" >&2; exit 2; }
for f in "${GGUFS[@]}" "${PACKED[@]}"; do
  [ -e "$f" ] || { echo "no such model: $f" >&2; exit 2; }
done

llama_tg() {
  "$LLAMA/bin/llama-bench" -m "$1" -p 0 -n "$TG" -r 1 -t "$THREADS" -o json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["avg_ts"], 2))'
}
edgellm_tg() {
  "$BIN" bench --model "$1" --pp 0 --tg "$TG" --reps 1 --threads "$THREADS" --json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tg"]["tokens_per_s"], 2))'
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $THREADS threads; tg$TG; $ROUNDS rounds; $(date -u +%FT%TZ)"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
for ((r = 1; r <= ROUNDS; ++r)); do
  for g in "${GGUFS[@]}"; do
    echo "$r llama.cpp $(basename "$g") $(llama_tg "$g")" | tee -a "$LOG"
    echo "$r edgellm $(basename "$g") $(edgellm_tg "$g")" | tee -a "$LOG"
  done
  for p in "${PACKED[@]}"; do
    echo "$r edgellm $(basename "$p") $(edgellm_tg "$p")" | tee -a "$LOG"
  done
done
python3 - "$LOG" "$(basename "$REF")" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, engine, model, v = line.split()
    runs[(engine, model)].append(float(v))
ref = runs[("llama.cpp", sys.argv[2])]
print(f"\n| engine | model | tok/s median (range) | vs llama.cpp {sys.argv[2]}: median (per round) |")
print("|---|---|---|---|")
for (engine, model), v in runs.items():
    med = statistics.median(v)
    ratio = "1" if v is ref else (
        f"{med / statistics.median(ref):.3f} ("
        + " ".join(f"{a / b:.2f}" for a, b in zip(v, ref)) + ")")
    print(f"| {engine} | {model} | {med:.1f} ({min(v):.1f}-{max(v):.1f}) | {ratio} |")
EOF
