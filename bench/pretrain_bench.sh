#!/usr/bin/env bash
# Pretraining throughput, edgellm vs a PyTorch baseline (bench/pretrain_torch.py), side by side
# in one run: the edgellm-tiny shape and the 134M shape, seq 512, batch 1, grad-accum 1, AdamW
# (weight decay 0.1, clip 1.0), full-parameter training from random init, fp32, on the same
# work: PyTorch starts from edgellm's OUT/init weights and reads edgellm's token file in
# edgellm's data order, so both loss curves must agree (printed). Text: a slice of a shared
# book. Prints one table (markdown) and writes every raw figure to WORK/results.json.
#   bench/pretrain_bench.sh [WORK_DIR]         (default /tmp/edgellm_pretrain_bench)
#   STEPS=8 WARMUP=2 THREADS=2 SHAPES="tiny 134M" ENGINES="edgellm edgellm-mixed pytorch"
# Engines: edgellm (fp32 throughout), edgellm-mixed (--precision bf16 --optim-state 8bit: bf16
# matmuls with fp32 accumulation and fp32 master weights, 8-bit AdamW moments), pytorch (fp32),
# pytorch-bf16 (the same script under torch.autocast bf16, fp32 AdamW state). The first edgellm
# engine listed writes the init weights and token file the others start from.
# Needs: build/release/{edgellm,bench_gemm_ceiling} (built if absent) and, for the baseline,
#   apt-get install python3-torch libopenblas0-openmp     (see bench/pretrain_torch.py)
#
# Throughput in GFLOP/s counts model FLOPs per trained token (the usual 6·N rule, made explicit):
#   F = 6·(N_lin + V·C) + 6·L·T·Q
#   N_lin = L·(C·Q + 2·C·KV + Q·C + 3·C·FF): the layers' matrices; V·C: the head's GEMM (tied or
#   not; the embedding lookup costs no FLOPs); 6·L·T·Q: Q·Kᵀ and P·V, 2·T·Q multiply-adds per
#   token per layer at full attention, halved by the causal mask, ×3 for forward + backward.
#   (C dim, Q = heads·head_dim, KV = kv_heads·head_dim, FF ff, V vocab, L layers, T seq.)
# Both engines are credited the same model FLOPs, whatever extra work they do (PyTorch's eager
# attention computes the masked half too). Ceilings: bench_gemm_ceiling (oneDNN fp32 sgemm and
# bf16 matmul on one 2048³ GEMM, edgellm's own kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/edgellm_pretrain_bench}"
DATA="${EDGELLM_DATA:-../shared/data}"
STEPS="${STEPS:-8}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
read -r -a SHAPE_LIST <<<"${SHAPES:-tiny 134M}"
read -r -a ENGINE_LIST <<<"${ENGINES:-edgellm edgellm-mixed pytorch}"
BIN=build/release/edgellm
CEIL=build/release/bench_gemm_ceiling
PY=/usr/bin/python3
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
if [ ! -x "$BIN" ] || [ ! -x "$CEIL" ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release -j"$(nproc)" --target edgellm bench_gemm_ceiling
fi
if [[ " ${ENGINE_LIST[*]} " == *" pytorch "* ]]; then
  "$PY" -c "import torch" 2>/dev/null ||
    { echo "pretrain_bench: $PY has no torch: apt-get install python3-torch libopenblas0-openmp" >&2; exit 1; }
  [ -f "$OPENBLAS_DIR/libblas.so.3" ] ||
    { echo "pretrain_bench: $OPENBLAS_DIR missing: apt-get install libopenblas0-openmp" >&2; exit 1; }
fi
CORES=$(getconf _NPROCESSORS_ONLN)  # before OMP_NUM_THREADS is set: nproc honours it
export OMP_NUM_THREADS="$THREADS"
mkdir -p "$WORK"

# Same text for both shapes: the first ~1 MB of the Gutenberg books (cut at a line end).
SLICE="$WORK/slice.txt"
[ -s "$SLICE" ] || head -c 1000000 "$DATA/text/books/gutenberg_books_part01.txt" |
  sed '$d' >"$SLICE"
# Tokenizers: a 4096-piece BPE trained on the slice for the tiny shape (its vocabulary),
# Llama 2's 32000-piece tokenizer for 134M.
[ -f "$WORK/tok4096/tokenizer.model" ] ||
  "$BIN" train-tokenizer --text "$SLICE" --vocab 4096 --seed 0 --out "$WORK/tok4096" >/dev/null 2>&1
declare -A SPEC=(
  [tiny]="dim=192,layers=12,heads=6,kv_heads=2,ff=512,vocab=4096,ctx=512,tied=1"
  [134M]="base=134M"
)
declare -A PYARGS=(
  [tiny]="--dim 192 --layers 12 --heads 6 --kv-heads 2 --ff 512 --vocab 4096 --tied"
  [134M]="--dim 768 --layers 12 --heads 12 --kv-heads 12 --ff 2048 --vocab 32000"
)
declare -A TOK=([tiny]="$WORK/tok4096/tokenizer.model"
  [134M]="$DATA/models/llama2-tokenizer/tokenizer.model")
SEQ=512
TOTAL=$((WARMUP + STEPS))

machine=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
flags=$(grep -m1 -o -w -E 'avx512f|avx512_bf16|amx_bf16|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "[pretrain_bench] $(date -u +%FT%TZ) $machine, $CORES cores, flags: $flags" >&2
echo "[pretrain_bench] load before: $(uptime)" >&2
load_before=$(uptime)

ceiling=$("$CEIL" 2048 5)
echo "[pretrain_bench] GEMM ceilings: $ceiling" >&2

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for shape in "${SHAPE_LIST[@]}"; do
  tokfile=""
  init=""
  bos=1
  windows=0
  for engine in "${ENGINE_LIST[@]}"; do
    if [[ "$engine" == edgellm* ]]; then
      extra=()
      [ "$engine" = edgellm-mixed ] && extra=(--precision bf16 --optim-state 8bit)
      out="$WORK/$engine-$shape"
      rm -rf "$out"
      log="$WORK/$engine-$shape.log"
      # Validation: one window at the end (outside the timed steps); no intermediate checkpoints.
      "$BIN" pretrain --shape "${SPEC[$shape]}" --tokenizer "${TOK[$shape]}" --data "$SLICE" \
        --val-frac 0.05 --val-max 1 --tokens $((TOTAL * SEQ)) --seq $SEQ --batch 1 \
        --grad-accum 1 --lr 1e-3 --schedule constant --weight-decay 0.1 --clip 1.0 --seed 1 \
        --log-every 1 --cache "$WORK/cache" --out "$out" --threads "$THREADS" "${extra[@]}" \
        2>"$log" >/dev/null
      "$PY" - "$out" "$log" "$shape" "$WARMUP" "$engine" >>"$RESULTS" <<'EOF'
import json, re, sys
out, log, shape, warmup, engine = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rows = [json.loads(l) for l in open(out + "/metrics.jsonl") if l.strip()]
timed = [r for r in rows if r["step"] > warmup]
text = open(log).read()
plan = re.findall(r"^  (\w+) +([\d.]+) MiB$", text, re.M)
cfg = json.load(open(out + "/init/config.json"))
tok = re.search(r"token file (\S+):", text).group(1)
s = sum(r["seconds"] for r in timed) / len(timed)
print(json.dumps({"shape": shape, "engine": engine, "s_per_step": s,
                  "s_per_step_min": min(r["seconds"] for r in timed),
                  "tokens_per_s": 512 / s,
                  "peak_rss_bytes": max(r["peak_rss_mb"] for r in rows) * 1048576,
                  "memory_plan_mib": {k: float(v) for k, v in plan},
                  "losses": [r["loss"] for r in rows], "token_file": tok,
                  "bos": cfg.get("bos_token_id", 1), "steps": len(timed), "warmup": warmup,
                  "train_windows": int(re.search(r"\((\d+) windows", text).group(1))}))
EOF
      field() { tail -1 "$RESULTS" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
      if [ -z "$tokfile" ]; then
        tokfile=$(field token_file)
        bos=$(field bos)
        windows=$(field train_windows)
        init="$out/init"
      fi
    else
      amp=()
      [ "$engine" = pytorch-bf16 ] && amp=(--amp-bf16)
      # shellcheck disable=SC2086  # PYARGS holds several flags
      LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PY" bench/pretrain_torch.py \
        ${PYARGS[$shape]} --seq $SEQ --batch 1 --steps "$STEPS" --warmup "$WARMUP" \
        --threads "$THREADS" --lr 1e-3 --weight-decay 0.1 --clip 1.0 \
        --seed 1 "${amp[@]}" ${tokfile:+--tokens "$tokfile" --bos "$bos" --train-windows "$windows" --init "$init"} |
        "$PY" -c 'import json,sys; r=json.load(sys.stdin); r["shape"]=sys.argv[1]; print(json.dumps(r))' "$shape" \
          >>"$RESULTS"
    fi
    echo "[pretrain_bench] $shape $engine: $(tail -1 "$RESULTS" | cut -c1-160)..." >&2
  done
done
load_after=$(uptime)
echo "[pretrain_bench] load after: $load_after" >&2

"$PY" - "$RESULTS" "$ceiling" "$machine, $CORES cores" "$flags" "$load_before" "$load_after" "$THREADS" \
  >"$WORK/table.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ceil = json.loads(sys.argv[2])
shapes = {"tiny": dict(C=192, L=12, Q=192, KV=64, FF=512, V=4096),
          "134M": dict(C=768, L=12, Q=768, KV=768, FF=2048, V=32000)}
T = 512
def flops_per_token(s):
    n_lin = s["L"] * (s["C"] * s["Q"] + 2 * s["C"] * s["KV"] + s["Q"] * s["C"] + 3 * s["C"] * s["FF"])
    return 6 * (n_lin + s["V"] * s["C"]) + 6 * s["L"] * T * s["Q"]
print(f"Machine: {sys.argv[3]}, {sys.argv[7]} threads; flags: {sys.argv[4]}")
print(f"Load before: {sys.argv[5].strip()}")
print(f"Load after:  {sys.argv[6].strip()}")
print(f"GEMM ceilings (2048³, {ceil['threads']} threads): fp32 {ceil['fp32_gflops']:.0f} GFLOP/s, "
      f"bf16 {ceil['bf16_gflops']:.0f} GFLOP/s\n")
print("| shape | engine | s/step (mean) | s/step (min) | tok/s | GFLOP/s | % fp32 ceil | % bf16 ceil "
      "| tok/s vs PyTorch | peak RSS | RSS vs PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for shape in shapes:
    sel = {r["engine"]: r for r in rows if r["shape"] == shape}
    ref = sel.get("pytorch")
    f = flops_per_token(shapes[shape])
    for eng in ("edgellm", "edgellm-mixed", "pytorch", "pytorch-bf16"):
        r = sel.get(eng)
        if not r:
            continue
        g = r["tokens_per_s"] * f / 1e9
        sp = f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}×" if ref else "–"
        mem = f"{r['peak_rss_bytes'] / ref['peak_rss_bytes']:.2f}×" if ref else "–"
        print(f"| {shape} | {eng} | {r['s_per_step']:.3f} | {r['s_per_step_min']:.3f} | "
              f"{r['tokens_per_s']:.0f} | {g:.1f} | "
              f"{100 * g / ceil['fp32_gflops']:.0f} % | {100 * g / ceil['bf16_gflops']:.0f} % | {sp} | "
              f"{r['peak_rss_bytes'] / 1048576:.0f} MiB | {mem} |")
print()
for shape in shapes:
    print(f"FLOPs per token, {shape}: {flops_per_token(shapes[shape]) / 1e6:.1f} M")
for r in rows:
    if r["engine"].startswith("edgellm"):
        plan = ", ".join(f"{k} {v:.1f}" for k, v in r["memory_plan_mib"].items())
        print(f"{r['engine']} memory plan of a step, {r['shape']} (MiB): {plan}")
    else:
        print(f"{r['engine']} (PyTorch {r['torch']}) {r['shape']}: RSS after `import torch` "
              f"{r['rss_after_import_bytes'] / 1048576:.0f} MiB; BLAS {r['blas'][-1] if r['blas'] else '?'}")
for r in rows:
    print(f"losses {r['shape']} {r['engine']}: " + " ".join(f"{x:.4f}" for x in r["losses"]))
for shape in shapes:
    sel = {r["engine"]: r for r in rows if r["shape"] == shape}
    for a, b in (("edgellm", "pytorch"), ("edgellm-mixed", "pytorch-bf16"),
                 ("edgellm-mixed", "edgellm")):
        if a in sel and b in sel:
            d = max(abs(x - y) for x, y in zip(sel[a]["losses"], sel[b]["losses"]))
            print(f"{shape} {a} vs {b}: same init, same windows in the same order; "
                  f"max |loss difference| {d:.2e}")
EOF
"$PY" -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1]) if l.strip()], indent=1))' \
  "$RESULTS" >"$WORK/results.json"
cat "$WORK/table.md"
