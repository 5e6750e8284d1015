#!/usr/bin/env bash
# Adaptive layer tuning vs LoRA baselines on edgellm-tiny (12 layers), adapting to
# tinyshakespeare at equal steps; held-out perplexity per exit and with the votes
# (docs/alt.md "Results"). Usage: bench/alt_shakespeare.sh [OUT_DIR] (default /tmp/alt_shakespeare)
set -euo pipefail
cd "$(dirname "$0")/.."
E=build/release/edgellm
D=${EDGELLM_DATA:-../shared/data}
OUT=${1:-/tmp/alt_shakespeare}
STEPS=${STEPS:-150}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
# Train on the first 90% of the text, hold the last 10% out (cut at a line start).
python3 - "$D/text/tinyshakespeare/input.txt" "$OUT" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
cut = t.index("\n", int(len(t) * 0.9)) + 1
open(sys.argv[2] + "/train.txt", "w", encoding="utf-8").write(t[:cut])
open(sys.argv[2] + "/heldout.txt", "w", encoding="utf-8").write(t[cut:])
PY
M=models/edgellm-tiny
COMMON=(-m $M --data "$OUT/train.txt" --steps $STEPS --seq 128 --batch 4 --seed 1 --json)
PPL=(-m $M --text "$OUT/heldout.txt" --ctx 128 --json)
run() {  # name, tune args...
  local name=$1
  shift
  rm -rf "$OUT/$name"
  $E tune "${COMMON[@]}" --out "$OUT/$name" "$@" >"$OUT/$name.tune.json" 2>"$OUT/$name.tune.log"
}
run lora --method lora
run partial3 --method partial --last 3
for sch in random curriculum; do
  for mode in branch cumulative; do
    run alt-$sch-$mode --method alt --exit-schedule $sch --lora-mode $mode
  done
done
run alt-random-branch-cloned --method alt --lora-mode branch --head-mode cloned
$E ppl "${PPL[@]}" >"$OUT/base.ppl.json"
for r in lora partial3; do
  $E ppl "${PPL[@]}" --adapter "$OUT/$r" >"$OUT/$r.ppl.json"
done
for r in alt-random-branch alt-random-cumulative alt-curriculum-branch alt-curriculum-cumulative \
  alt-random-branch-cloned; do
  $E ppl "${PPL[@]}" --adapter "$OUT/$r" --vote >"$OUT/$r.ppl.json"
done
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
print("| run | s/step | planned MiB | exit 3 | exit 6 | exit 9 | exit 12 (final) | vote max-renorm | vote mean |")
print("|---|---|---|---|---|---|---|---|---|")
for r in ["base", "lora", "partial3", "alt-random-branch", "alt-random-cumulative",
          "alt-curriculum-branch", "alt-curriculum-cumulative", "alt-random-branch-cloned"]:
    p = json.load(open(f"{out}/{r}.ppl.json"))
    secs, plan = "", ""
    if os.path.exists(f"{out}/{r}/metrics.jsonl"):
        steps = [json.loads(l) for l in open(f"{out}/{r}/metrics.jsonl")]
        secs = "%.3f" % (sum(s["seconds"] for s in steps) / len(steps))
        plan = "%.1f" % (json.load(open(f"{out}/{r}.tune.json"))["memory_plan"]["total"] / 2**20)
    if "exits" in p:
        e = [f'{x["ppl"]:.2f}' for x in p["exits"]]
        v = [f'{p["vote_max_renorm"]["ppl"]:.2f}', f'{p["vote_mean"]["ppl"]:.2f}']
    else:
        e = ["", "", "", f'{p["ppl"]:.2f}']
        v = ["", ""]
    print(f"| {r} | {secs} | {plan} | " + " | ".join(e + v) + " |")
PY
