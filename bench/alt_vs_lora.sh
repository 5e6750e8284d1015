#!/usr/bin/env bash
# Per-iteration time and memory of Edge-LLM adaptive layer tuning (ALT) vs vanilla LoRA, edgellm
# and a PyTorch baseline (bench/alt_torch.py) side by side in one run (docs/alt.md "Speed and
# memory"). Random weights of SHAPE, seq 512, one sequence per step, T = 4 exits, window
# m = ceil(L/T), LoRA rank 8 / alpha 16 on q,k,v,o,gate,up,down (edgellm tune's defaults).
#   bench/alt_vs_lora.sh SHAPE [OUT_DIR]   (default OUT_DIR /tmp/alt_vs_lora/SHAPE)
#   SHAPE: 134M | tinyllama-1.1b | an edgellm --shape key=value list (a small one checks the script)
#   STEPS=2 (timed steps per exit and per LoRA run)  SEQ=512  EXITS=4  THREADS=2
# Needs build/release/edgellm and, for the baseline, python3-torch + libopenblas0-openmp for
# /usr/bin/python3 (see bench/pretrain_torch.py: OpenBLAS goes first on LD_LIBRARY_PATH for the
# PyTorch processes only).
#
# Runs, each timing STEPS steps after warm-up:
#   edgellm lora                  1 + STEPS steps, the first dropped
#   edgellm alt cumulative        round-robin over the exits, (1 + STEPS)·T steps, the first round
#                                 of T dropped (edgellm's default LoRA mode; no prefix cache)
#   edgellm alt branch + cache    the same in branch mode with the prefix cache: the data file is
#                                 ONE sequence, so the first round fills the cache (misses) and
#                                 every later step of an exit with layers below its window hits
#                                 (the cache is keyed by sequence and window start and hits from
#                                 the second epoch, docs/alt.md): the timed rounds are the steady
#                                 state of a long multi-epoch run whose cache holds every sequence
#   edgellm lora / alt offloaded  the lora and alt cumulative runs with --optim-offload OUT/moments
#                                 (AdamW moments in a file, memory holds a staging buffer)
#   edgellm alt branch, partial   branch + cache, moments offloaded and --recompute-layers K
#                                 (RECOMPUTE, default 1: the window's lowest K layers keep only
#                                 their inputs and are recomputed in the backward, K layers'
#                                 activations fewer for K more layer forwards per step)
#   edgellm alt branch, lean      branch + cache, moments offloaded and --checkpoint-activations
#                                 (the window keeps its layer inputs and recomputes its m - 1
#                                 lower layers one at a time in the backward): ALT's smallest
#                                 memory, at the cost of m - 1 more layer forwards per step
#   pytorch lora, pytorch alt     bench/alt_torch.py, one process per exit (so each has its own
#                                 peak RSS), 1 + STEPS steps each, the first dropped (TORCH=0: not
#                                 run, and left out of the table)
# Every edgellm run reads the same one-sequence text (the first lines of tinyshakespeare): what
# the tokens are does not change the work of a step. edgellm's weights are bf16 (its format for
# these shapes; its GEMMs round the activation operand to bf16, accumulate in fp32), PyTorch's
# fp32 throughout.
#
# Prints one markdown table (also OUT/table.md; raw figures in OUT/results.json): s/iter (mean
# over exits and per exit), speed vs the same engine's vanilla LoRA next to the FLOP bound,
# edgellm's planned activation + gradient + optimizer memory, peak RSS and its growth over the
# steps. The bound: with a frozen base a layer costs ~2p FLOPs per token forward and ~2p backward
# (input gradient only; p = its weights), the head (norm + LM head) ~4·V·C forward + backward, so
# per token vanilla LoRA costs L·4p + 4VC and an exit at depth D with window [l0, D) costs
# l0·2p + (D - l0)·4p + 4VC, or (D - l0)·4p + 4VC with a prefix-cache hit; bound = LoRA cost /
# mean over exits. (Attention scores, norms, adapters and the optimizer are left out.)
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPE=${1:?usage: bench/alt_vs_lora.sh SHAPE [OUT_DIR]  (134M | tinyllama-1.1b | key=value,...)}
OUT=${2:-/tmp/alt_vs_lora/$(echo "$SHAPE" | tr -c 'A-Za-z0-9.\n' '_')}
STEPS=${STEPS:-2}
RECOMPUTE=${RECOMPUTE:-1}
TORCH=${TORCH:-1}
SEQ=${SEQ:-512}
T=${EXITS:-4}
THREADS=${THREADS:-2}
E=build/release/edgellm
D=${EDGELLM_DATA:-../shared/data}
PY=/usr/bin/python3
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
die() {
  echo "alt_vs_lora: $*" >&2
  exit 1
}
[ -x "$E" ] || die "build $E first (cmake --build --preset release --target edgellm)"
if [ "$TORCH" != 0 ]; then
  "$PY" -c "import torch" 2>/dev/null ||
    die "$PY has no torch: apt-get install python3-torch libopenblas0-openmp (or TORCH=0)"
  [ -f "$OPENBLAS_DIR/libblas.so.3" ] ||
    die "$OPENBLAS_DIR missing: apt-get install libopenblas0-openmp (or TORCH=0)"
fi
export OMP_NUM_THREADS=$THREADS
mkdir -p "$OUT"
echo "[alt_vs_lora] $(date -u +%FT%TZ) shape $SHAPE, seq $SEQ, T $T, $STEPS timed steps," \
  "$THREADS threads; $(uptime)" >&2
uptime >"$OUT/load_before.txt"

# The random bf16 model, kept between runs of the same shape.
if [ ! -f "$OUT/model/model.safetensors" ] ||
  [ "$(cat "$OUT/model.shape" 2>/dev/null)" != "$SHAPE" ]; then
  rm -rf "$OUT/model"
  $E make-model --shape "$SHAPE" --out "$OUT/model" --dtype bf16 >/dev/null
  echo "$SHAPE" >"$OUT/model.shape"
fi
read -r L C < <("$PY" -c 'import json, sys; c = json.load(open(sys.argv[1]))
print(c["num_hidden_layers"], c["hidden_size"])' "$OUT/model/config.json")
M=$(((L + T - 1) / T))
# One training sequence: about 1.5·SEQ tokens of text (checked below from tune's own count).
head -c $((SEQ * 5)) "$D/text/tinyshakespeare/input.txt" | sed '$d' >"$OUT/one_sequence.txt"
# Prefix cache: one sequence's window input [SEQ, C] fp32 per exit, whole MiB.
CACHE_MB=$(((T * SEQ * C * 4 + (1 << 20) - 1) >> 20))

COMMON=(-m "$OUT/model" --tokenizer "$D/models/llama2-tokenizer/tokenizer.model"
  --data "$OUT/one_sequence.txt" --seq "$SEQ" --val-frac 0 --seed 1 --json --threads "$THREADS"
  --log-every 1000000)
ALT_STEPS=$(((1 + STEPS) * T))
run_edgellm() { # NAME ARGS...: OUT/NAME/ (metrics.jsonl), OUT/NAME.json, OUT/NAME.log
  local name=$1
  shift
  rm -rf "${OUT:?}/$name"
  echo "[alt_vs_lora] edgellm $name ..." >&2
  $E tune "${COMMON[@]}" "$@" --out "$OUT/$name" >"$OUT/$name.json" 2>"$OUT/$name.log"
  grep -q "^\[tune\] .*: 1 train / 0 val sequences" "$OUT/$name.log" ||
    die "$OUT/one_sequence.txt is not one sequence of $SEQ tokens:" \
      "$(grep -m1 'train /' "$OUT/$name.log")"
}
run_edgellm lora --method lora --steps $((1 + STEPS))
run_edgellm alt --method alt --exits "$T" --window "$M" --exit-schedule round-robin \
  --steps "$ALT_STEPS"
run_edgellm alt-branch --method alt --exits "$T" --window "$M" --exit-schedule round-robin \
  --steps "$ALT_STEPS" --lora-mode branch --prefix-cache-mb "$CACHE_MB"
# The same LoRA and ALT runs with the AdamW moments in a file (--optim-offload): memory holds a
# staging buffer; ALT reads and writes one window's moments per step, LoRA all of them.
mkdir -p "$OUT/moments"
run_edgellm lora-offload --method lora --steps $((1 + STEPS)) --optim-offload "$OUT/moments"
run_edgellm alt-offload --method alt --exits "$T" --window "$M" --exit-schedule round-robin \
  --steps "$ALT_STEPS" --optim-offload "$OUT/moments"
run_edgellm alt-branch-partial --method alt --exits "$T" --window "$M" \
  --exit-schedule round-robin --steps "$ALT_STEPS" --lora-mode branch --prefix-cache-mb "$CACHE_MB" \
  --optim-offload "$OUT/moments" --recompute-layers "$RECOMPUTE"
run_edgellm alt-branch-lean --method alt --exits "$T" --window "$M" --exit-schedule round-robin \
  --steps "$ALT_STEPS" --lora-mode branch --prefix-cache-mb "$CACHE_MB" \
  --optim-offload "$OUT/moments" --checkpoint-activations

run_torch() { # NAME ARGS...: OUT/NAME.json
  local name=$1
  shift
  echo "[alt_vs_lora] pytorch $name ..." >&2
  LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PY" bench/alt_torch.py \
    --shape "$SHAPE" --seq "$SEQ" --steps "$STEPS" --threads "$THREADS" --seed 1 "$@" \
    >"$OUT/$name.json"
}
read -r -a DEPTHS < <("$PY" -c 'import json, sys
print(*json.load(open(sys.argv[1]))["alt"]["exit_depths"])' "$OUT/alt.json")
rm -f "$OUT"/torch-*.json
if [ "$TORCH" != 0 ]; then
  run_torch torch-lora --method lora
  for d in "${DEPTHS[@]}"; do
    run_torch "torch-alt-$d" --method alt --exit "$d" --window "$M"
  done
fi
uptime >"$OUT/load_after.txt"

"$PY" - "$OUT" "$SHAPE" "$STEPS" "$T" "$M" "$THREADS" "$RECOMPUTE" "${DEPTHS[@]}" \
  <<'PY' | tee "$OUT/table.md"
import json
import os
import sys

out, shape, threads = sys.argv[1], sys.argv[2], sys.argv[6]
steps, T, m, K = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[7])
depths = [int(x) for x in sys.argv[8:]]
MiB = 2**20
cfg = json.load(open(f"{out}/model/config.json"))
L, C, V = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]
FF = cfg["intermediate_size"]
Q = cfg["num_attention_heads"] * cfg["head_dim"]
KV = cfg["num_key_value_heads"] * cfg["head_dim"]
seq = json.load(open(f"{out}/lora/run.json"))["seq"]
results = {}


def edgellm(name, drop):
    """An edgellm tune run: per-exit mean seconds over the steps after `drop`, memory."""
    j = json.load(open(f"{out}/{name}.json"))
    rows = [json.loads(x) for x in open(f"{out}/{name}/metrics.jsonl") if x.strip()][drop:]
    by = {}
    for r in rows:
        by.setdefault(r.get("exit_depth", L), []).append(r["seconds"])
    per = {d: sum(v) / len(v) for d, v in sorted(by.items())}
    p = j["memory_plan"]
    results["edgellm " + name] = res = dict(
        per_exit=per, mean=sum(per.values()) / len(per), peak=j["peak_rss_bytes"],
        growth=j["peak_rss_steps_bytes"] - j["rss_before_trainer_bytes"], plan=p,
        agopt=p["activations"] + p["gradients"] + p["optimizer"],
        cache=(j.get("alt") or {}).get("prefix_cache"), steps_timed=len(rows))
    return res


def torch_runs(name, files):
    """bench/alt_torch.py runs, one per exit: their means, the largest peak RSS."""
    js = [json.load(open(f"{out}/{f}.json")) for f in files]
    per = {j["exit_depth"]: j["s_per_iter"] for j in js}
    results["pytorch " + name] = res = dict(
        per_exit=per, mean=sum(per.values()) / len(per),
        peak=max(j["peak_rss_bytes"] for j in js),
        growth=max(j["peak_rss_bytes"] - j["rss_before_steps_bytes"] for j in js),
        peak_per_exit={j["exit_depth"]: j["peak_rss_bytes"] for j in js}, blas=js[0]["blas"],
        torch=js[0]["torch"], rss_after_import=js[0]["rss_after_import_bytes"],
        steps_timed=len(js[0]["step_seconds"]))
    return res


e_lora, e_alt, e_br = edgellm("lora", 1), edgellm("alt", T), edgellm("alt-branch", T)
e_lora_off, e_alt_off = edgellm("lora-offload", 1), edgellm("alt-offload", T)
e_part, e_lean = edgellm("alt-branch-partial", T), edgellm("alt-branch-lean", T)
torch = os.path.exists(f"{out}/torch-lora.json")
t_lora = torch_runs("lora", ["torch-lora"]) if torch else None
t_alt = torch_runs("alt", [f"torch-alt-{d}" for d in depths]) if torch else None

# FLOP bound per token: a frozen layer 2p forward + 2p backward (input gradient), 2p when only
# forwarded below the window; the head 4VC; a prefix-cache hit skips the layers below the window.
p = C * Q + 2 * C * KV + Q * C + 3 * C * FF
head = 4 * V * C
lora_cost = L * 4 * p + head


def alt_cost(d, cached, recompute=0):
    l0 = max(0, d - m)  # each recomputed layer runs its forward twice: 2p more
    return ((0 if cached else l0 * 2 * p) + (d - l0) * 4 * p
            + min(recompute, d - l0 - 1, m - 1) * 2 * p + head)


def bound(cached, recompute=0):
    return lora_cost / (sum(alt_cost(d, cached, recompute) for d in depths) / len(depths))


cached_exits = [d for d in depths if d > m]  # exits with layers below their window
hits_expected = steps * len(cached_exits)


def mib(x):
    return f"{x / MiB:.1f} MiB"


print(f"Shape {shape} (L {L}, C {C}, FF {FF}, V {V}, Q {Q}, KV {KV}), seq {seq}, T {T} exits "
      f"at {depths}, window {m}, {threads} threads; {steps} timed steps per exit / LoRA run")
print()
print(f"| run | s/iter (mean over exits) | s/iter at exit {' / '.join(map(str, depths))} "
      "| speed vs own LoRA | FLOP bound | act + grad + opt (plan) | plan total | peak RSS "
      "| RSS growth over steps |")
print("|---|---|---|---|---|---|---|---|---|")
rows = [(f"edgellm LoRA (all {L} layers)", e_lora, e_lora, None),
        ("edgellm ALT cumulative, no cache", e_alt, e_lora, bound(False)),
        ("edgellm ALT branch, prefix-cache hits", e_br, e_lora, bound(True)),
        ("edgellm LoRA, moments offloaded", e_lora_off, e_lora, None),
        ("edgellm ALT cumulative, moments offloaded", e_alt_off, e_lora, bound(False)),
        (f"edgellm ALT branch, cache hits, moments offloaded, {K} of {m} window layers "
         "recomputed", e_part, e_lora, bound(True, K)),
        (f"edgellm ALT branch, cache hits, moments offloaded, window recomputed ({m - 1} of {m})",
         e_lean, e_lora, bound(True, m - 1))]
if torch:
    rows += [(f"PyTorch LoRA (all {L} layers)", t_lora, t_lora, None),
             ("PyTorch ALT (no cache)", t_alt, t_lora, bound(False))]
for name, r, ref, b in rows:
    plan = r.get("plan")
    exits = " / ".join(f"{r['per_exit'][d]:.2f}" for d in depths) if len(r["per_exit"]) > 1 else ""
    print(f"| {name} | {r['mean']:.2f} | {exits} | {ref['mean'] / r['mean']:.2f}× | "
          f"{f'{b:.2f}×' if b else ''} | {mib(r['agopt']) if plan else '–'} | "
          f"{mib(plan['total']) if plan else '–'} | {r['peak'] / MiB:.0f} MiB | "
          f"{r['growth'] / MiB:.0f} MiB |")
print()
print(f"FLOPs per token (bound model): vanilla LoRA {lora_cost / 1e6:.0f} M; ALT by exit "
      + ", ".join(f"{d}: {alt_cost(d, False) / 1e6:.0f} M ({alt_cost(d, True) / 1e6:.0f} M "
                  "cached)" for d in depths)
      + f"; p = {p / 1e6:.2f} M per layer, head 4VC = {head / 1e6:.0f} M")
if torch:
    print(f"edgellm vs PyTorch, same method: LoRA {t_lora['mean'] / e_lora['mean']:.2f}× faster, "
          f"ALT {t_alt['mean'] / e_alt['mean']:.2f}× (cumulative), "
          f"{t_alt['mean'] / e_br['mean']:.2f}× (branch with cache hits vs PyTorch without); "
          f"peak RSS LoRA {e_lora['peak'] / t_lora['peak']:.2f}×, ALT "
          f"{e_alt['peak'] / t_alt['peak']:.2f}× PyTorch's")
print(f"act + grad + opt, vanilla LoRA / ALT: both moments in memory "
      f"{e_lora['agopt'] / e_alt['agopt']:.2f}×; both offloaded "
      f"{e_lora_off['agopt'] / e_alt_off['agopt']:.2f}×; ALT offloaded vs LoRA in memory "
      f"{e_lora['agopt'] / e_alt_off['agopt']:.2f}×; activations alone "
      f"{e_lora['plan']['activations'] / e_alt['plan']['activations']:.2f}×; ALT partial (cache, "
      f"offloaded, {K} recomputed) vs LoRA in memory {e_lora['agopt'] / e_part['agopt']:.2f}×, "
      f"vs LoRA offloaded {e_lora_off['agopt'] / e_part['agopt']:.2f}×; ALT lean (cache, "
      f"offloaded, recomputed) vs LoRA in memory {e_lora['agopt'] / e_lean['agopt']:.2f}×, vs "
      f"LoRA offloaded {e_lora_off['agopt'] / e_lean['agopt']:.2f}×")
c = e_br["cache"]
print(f"edgellm branch prefix cache: {c['hits']} hits (expected {hits_expected}: {steps} per exit "
      f"at {cached_exits}), {c['misses']} misses, {c['entries']} entries, {mib(c['bytes'])} "
      f"(cap {mib(e_br['plan']['prefix_cache'])})")
if c["hits"] != hits_expected:
    print("WARNING: not every timed branch step hit the cache: its row is not the cached state")
for k in ("lora", "alt", "alt-branch", "lora-offload", "alt-offload", "alt-branch-partial",
          "alt-branch-lean"):
    pl = results["edgellm " + k]["plan"]
    print(f"edgellm {k} plan (MiB): " + ", ".join(f"{n} {v / MiB:.1f}" for n, v in pl.items()))
if torch:
    print(f"PyTorch {t_lora['torch']}, BLAS {t_lora['blas'][-1] if t_lora['blas'] else '?'}; RSS "
          f"after import torch {t_lora['rss_after_import'] / MiB:.0f} MiB; ALT peak RSS by exit: "
          + ", ".join(f"{d}: {v / MiB:.0f} MiB" for d, v in sorted(t_alt["peak_per_exit"].items())))
print("load before: " + open(f"{out}/load_before.txt").read().strip())
print("load after:  " + open(f"{out}/load_after.txt").read().strip())
json.dump(dict(shape=shape, L=L, C=C, V=V, FF=FF, seq=seq, depths=depths, window=m, steps=steps,
               threads=threads, bound_no_cache=bound(False), bound_cache=bound(True),
               flops_per_token=dict(lora=lora_cost, alt={d: alt_cost(d, False) for d in depths},
                                    alt_cached={d: alt_cost(d, True) for d in depths}),
               runs=results),
          open(f"{out}/results.json", "w"), indent=1)
PY
