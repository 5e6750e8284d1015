#!/usr/bin/env bash
# Adaptive layer tuning vs LoRA baselines on edgellm-tiny (12 layers), instruction-tuned on
# Alpaca (prompt masked) at equal steps, on the dense model and on its LUC-compressed version,
# plus baselines at ALT's memory: held-out response NLL per exit and with the votes, exact
# match of greedy responses (docs/alt.md "Results: Alpaca"). ~25 min of one core.
# Usage: bench/alt_alpaca.sh [OUT_DIR] (default /tmp/alt_alpaca)
set -euo pipefail
cd "$(dirname "$0")/.."
E=build/release/edgellm
D=${EDGELLM_DATA:-../shared/data}
OUT=${1:-/tmp/alt_alpaca}
STEPS=${STEPS:-200}  # STEPS=2 EVAL_LIMIT=3: a smoke run of the script itself
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
# Held out (never trained on): the last 100 records of the file, walking back from its end,
# whose prompt (the Alpaca template) + response is at most 600 characters, so that the whole
# sequence fits the --seq 256 the tuning uses (>= 2.3 characters per token); train: the rest.
python3 - "$D/instruct/alpaca_small.json" "$OUT" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1], encoding="utf-8"))
def prompt(r):  # the template of src/train/data.cpp (only its length matters here)
    if r.get("input"):
        return ("Below is an instruction that describes a task, paired with an input that "
                "provides further context. Write a response that appropriately completes the "
                "request.\n\n### Instruction:\n" + r["instruction"] + "\n\n### Input:\n" +
                r["input"] + "\n\n### Response:\n")
    return ("Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.\n\n### Instruction:\n" + r["instruction"] +
            "\n\n### Response:\n")
held = []
for i in range(len(recs) - 1, -1, -1):
    if len(held) < 100 and len(prompt(recs[i]) + recs[i]["output"]) <= 600:
        held.append(i)
keep = set(held)
json.dump([recs[i] for i in sorted(held)], open(sys.argv[2] + "/heldout.json", "w"))
json.dump([r for i, r in enumerate(recs) if i not in keep], open(sys.argv[2] + "/train.json", "w"))
print(f"[alt_alpaca] {len(recs) - len(held)} train / {len(held)} held-out records "
      f"(held out from record {min(held)} on)", file=sys.stderr)
PY
DENSE=models/edgellm-tiny
LUC=$OUT/luc
# The pipeline's default compression (data-free calibration, LUC allocation).
[ -f "$LUC/model.safetensors" ] ||
  $E compress --model $DENSE --calib data-free --policy luc --bits 4 --sparsity 0.5 \
    --quantizer gptq --pruner sparsegpt --out "$LUC" >"$OUT/compress.log" 2>&1
COMMON=(--data "$OUT/train.json" --steps $STEPS --seq 256 --batch 1 --grad-accum 8 --seed 1 --json)
run() {  # name, model, tune args...
  local name=$1 m=$2
  shift 2
  rm -rf "$OUT/$name"
  $E tune -m "$m" "${COMMON[@]}" --out "$OUT/$name" "$@" >"$OUT/$name.tune.json" \
    2>"$OUT/$name.tune.log"
}
# eval name, model, [adapter]: final head (all adapters); ALT adapters also every exit and the
# votes' NLL with the vote's greedy decoding.
ev() {
  local name=$1 m=$2 ad=${3:-}
  local EV=(-m "$m" --data "$OUT/heldout.json" --json ${EVAL_LIMIT:+--limit $EVAL_LIMIT})
  if [ -z "$ad" ]; then
    $E eval-task "${EV[@]}" >"$OUT/$name.final.json" 2>/dev/null
    return
  fi
  $E eval-task "${EV[@]}" --adapter "$ad" >"$OUT/$name.final.json" 2>/dev/null
  if [ -f "$ad/edgellm_exits.json" ]; then
    $E eval-task "${EV[@]}" --adapter "$ad" --vote >"$OUT/$name.vote.json" 2>/dev/null
  fi
}
for base in dense luc; do
  if [ $base = dense ]; then m=$DENSE; else m=$LUC; fi
  ev $base-base $m
  run $base-lora $m --method lora
  run $base-partial3 $m --method partial --last 3
  ALT=(--method alt --lora-mode cumulative)
  run $base-alt-random-cumulative $m "${ALT[@]}" --exit-schedule random
  run $base-alt-curriculum-cumulative $m "${ALT[@]}" --exit-schedule curriculum
  if [ $base = dense ]; then
    # Branch mode without the prefix cache: 200 x 8 sequences are less than one epoch, so the
    # cache would only hold memory, never hit.
    BR=(--method alt --lora-mode branch --prefix-cache-mb 0)
    run $base-alt-random-branch $m "${BR[@]}" --exit-schedule random
    run $base-alt-curriculum-branch $m "${BR[@]}" --exit-schedule curriculum
    # At ALT's memory: partial tuning of the last 4 layers (the K whose plan is closest to
    # ALT's) and vanilla LoRA with activation checkpointing (its plan is below ALT's).
    run $base-partial4 $m --method partial --last 4
    run $base-lora-ckpt $m --method lora --checkpoint-activations
  fi
  for r in "$OUT"/$base-*.tune.json; do
    r=$(basename "$r" .tune.json)
    ev "$r" $m "$OUT/$r"
  done
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
print("| run | s/step (rough) | planned MiB | peak RSS MiB | exit 3 | exit 6 | exit 9 | "
      "exit 12 / final | vote max-renorm | vote mean | EM final | EM vote |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
rows = ["base", "lora", "partial3", "alt-random-branch", "alt-random-cumulative",
        "alt-curriculum-branch", "alt-curriculum-cumulative", "partial4", "lora-ckpt"]
for base in ["dense", "luc"]:
    for r in rows:
        n = f"{base}-{r}"
        if not os.path.exists(f"{out}/{n}.final.json"):
            continue
        f = json.load(open(f"{out}/{n}.final.json"))
        secs = plan = rss = ""
        if os.path.exists(f"{out}/{n}/metrics.jsonl"):
            steps = [json.loads(l) for l in open(f"{out}/{n}/metrics.jsonl")]
            secs = "%.3f" % (sum(s["seconds"] for s in steps) / len(steps))
            t = json.load(open(f"{out}/{n}.tune.json"))
            plan = "%.1f" % (t["memory_plan"]["total"] / 2**20)
            rss = "%.1f" % (t["peak_rss_steps_bytes"] / 2**20)
        em = lambda j: "%d/%d" % (j["correct"], j["n"])
        if os.path.exists(f"{out}/{n}.vote.json"):
            v = json.load(open(f"{out}/{n}.vote.json"))
            e = ["%.4f" % x for x in v["exit_response_nll"]]
            e += ["%.4f" % v["vote_max_renorm_nll"], "%.4f" % v["vote_mean_nll"]]
            ems = [em(f), em(v)]
        else:
            e = ["", "", "", "%.4f" % f["response_nll"], "", ""]
            ems = [em(f), ""]
        print(f"| {n} | {secs} | {plan} | {rss} | " + " | ".join(e + ems) + " |")
PY
