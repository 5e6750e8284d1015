#!/usr/bin/env bash
# Per-iteration time and memory of ALT (T = 4, m = 3, each exit once: round-robin) vs vanilla
# LoRA in the same engine, 134M shape (random bf16 weights), seq 512, one sequence per step
# (docs/alt.md "Speed and memory"). Usage: bench/alt_vs_lora_134m.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
E=build/release/edgellm
D=${EDGELLM_DATA:-../shared/data}
OUT=${1:-/tmp/alt_134m}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
[ -f "$OUT/m134/model.safetensors" ] || $E make-model --shape 134M --out "$OUT/m134" --dtype bf16
COMMON=(-m "$OUT/m134" --tokenizer "$D/models/llama2-tokenizer/tokenizer.model"
  --data "$D/text/tinyshakespeare/input.txt" --seq 512 --val-frac 0 --seed 1 --json)
rm -rf "$OUT/lora" "$OUT/alt" "$OUT/alt-nocache"
$E tune "${COMMON[@]}" --method lora --steps 3 --out "$OUT/lora" >"$OUT/lora.json"
$E tune "${COMMON[@]}" --method alt --exit-schedule round-robin --steps 8 --out "$OUT/alt" \
  >"$OUT/alt.json"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for r in ["lora", "alt"]:
    j = json.load(open(f"{out}/{r}.json"))
    s = [json.loads(l) for l in open(f"{out}/{r}/metrics.jsonl")][1:]  # first step warms up
    p = j["memory_plan"]
    per_exit = {}
    for x in s:
        per_exit.setdefault(x.get("exit_depth", 12), []).append(x["seconds"])
    print(r, "s/iter mean %.2f" % (sum(x["seconds"] for x in s) / len(s)),
          "by depth", {d: round(sum(v) / len(v), 2) for d, v in sorted(per_exit.items())},
          "peak RSS %.0f MiB" % (j["peak_rss_bytes"] / 2**20),
          "plan MiB", {k: round(v / 2**20, 1) for k, v in p.items()})
PY
