#!/usr/bin/env bash
# edgellm next to llama.cpp, in one run on one machine (issue 8's performance section): prefill
# pp512 and decode tg128 at THREADS threads on the same GGUF files, plus edgellm's own packed
# (LUC) models, with bytes per weight and peak RSS; then the perplexity of a LUC model exported
# to GGUF, scored by llama.cpp's `llama-perplexity` and by `edgellm ppl --protocol llamacpp`.
#   bench/llamacpp_compare.sh LLAMA_BUILD_DIR [WORK_DIR]      (default WORK_DIR /tmp/edgellm_vs_llamacpp)
#   SHAPE=tinyllama-1.1b THREADS=2 REPS=3 TYPES="Q4_0 Q4_K_M Q8_0" PACKED="dir ..." PPL=1
# LLAMA_BUILD_DIR is a llama.cpp CMake build directory (bin/llama-bench, bin/llama-quantize,
# bin/llama-perplexity), built outside this repository from a llama.cpp source snapshot, e.g.
#   cmake -S llama.cpp -B /work/llama-build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
#     -DLLAMA_CURL=OFF && cmake --build /work/llama-build -j --target llama-bench \
#     llama-quantize llama-perplexity
# (on Intel machines with AMX: keep GGML_NATIVE but add -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF).
#
# What runs:
# - a random-weight model of SHAPE (seed 1, Llama 2 tokenizer in the metadata) written by
#   `edgellm make-model` as an F32 GGUF, and quantized by llama.cpp's own `llama-quantize` to
#   each of TYPES, so both engines read llama.cpp's files byte for byte;
# - PACKED: edgellm compressed model directories (e.g. the output of
#   `edgellm compress --policy luc ...`) measured by edgellm only; llama.cpp has no such format;
# - per file, edgellm `bench --pp 512 --tg 128 --reps REPS` and then `llama-bench -p 512 -n 128
#   -r REPS` back to back (both report the mean over their repetitions after a warm-up);
# - bits per weight of the decoder linears (codes, scales, zeros, masks: every stored byte of
#   the 7·L matrices, as `edgellm info` counts them) and the peak RSS of each process (GNU time);
# - PPL=1: models/edgellm-tiny compressed with LUC (B=4, P=0.5, GPTQ + SparseGPT, WikiText-2
#   valid calibration), exported by `edgellm convert --to gguf`, and scored on WikiText-2 test at
#   ctx 128 by both engines with llama.cpp's protocol (BOS per chunk, second half scored).
# Prints markdown tables; raw figures go to WORK_DIR/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA="${1:?usage: bench/llamacpp_compare.sh LLAMA_BUILD_DIR [WORK_DIR]}"
WORK="${2:-/tmp/edgellm_vs_llamacpp}"
SHAPE="${SHAPE:-tinyllama-1.1b}"
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
read -r -a TYPE_LIST <<<"${TYPES:-Q4_0 Q4_K_M Q8_0}"
read -r -a PACKED_LIST <<<"${PACKED:-}"
DATA="${EDGELLM_DATA:-../shared/data}"
BIN="${EDGELLM_BIN:-build/release/edgellm}"
for tool in llama-bench llama-quantize llama-perplexity; do
  [ -x "$LLAMA/bin/$tool" ] || { echo "no $LLAMA/bin/$tool: build llama.cpp first (see the header)" >&2; exit 2; }
done
[ -x "$BIN" ] || { cmake --preset release >/dev/null && cmake --build --preset release -j --target edgellm; }
mkdir -p "$WORK"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# Peak RSS in MiB of one command (GNU time's maximum resident set size, KiB), its stdout kept.
run_rss() {
  local out=$1
  shift
  /usr/bin/time -f '%M' -o "$out.rss" "$@" >"$out" 2>"$out.err" || {
    echo "failed: $*" >&2
    tail -5 "$out.err" >&2
    exit 1
  }
  echo $(($(tail -1 "$out.rss") / 1024))
}

linear_bpw() { # decoder-linear bits per weight of a model, as edgellm info counts stored bytes
  "$BIN" info --model "$1" --json | python3 -c '
import json,sys; s=json.load(sys.stdin)["storage"]["layers"]
print(round(8*sum(l["bytes"] for l in s)/sum(l["params"] for l in s),4))'
}

f32="$WORK/$SHAPE.F32.gguf"
[ -f "$f32" ] || "$BIN" make-model --shape "$SHAPE" --seed 1 --gguf "$f32" --gguf-dtype f32 \
  --tokenizer "$DATA/models/llama2-tokenizer/tokenizer.model" >/dev/null
models=()
for t in "${TYPE_LIST[@]}"; do
  g="$WORK/$SHAPE.$t.gguf"
  [ -f "$g" ] || "$LLAMA/bin/llama-quantize" "$f32" "$g" "$t" "$THREADS" >"$g.log" 2>&1 ||
    { tail -5 "$g.log" >&2; exit 1; }
  models+=("$g")
done
models+=("${PACKED_LIST[@]}")

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $THREADS threads; $(date -u +%FT%TZ)"
echo "llama.cpp: $("$LLAMA/bin/llama-bench" --version 2>&1 | head -1 || true)"
echo
echo "| model | linear bits/weight | edgellm pp512 | llama.cpp pp512 | pp ratio | edgellm tg128 | llama.cpp tg128 | tg ratio | edgellm RSS MiB | llama.cpp RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  name=$(basename "$m")
  bpw=$(linear_bpw "$m")
  e_rss=$(run_rss "$WORK/e.json" env OMP_NUM_THREADS="$THREADS" "$BIN" bench --model "$m" \
    --pp 512 --tg 128 --reps "$REPS" --threads "$THREADS" --json)
  read -r e_pp e_tg < <(python3 -c '
import json,sys; r=json.load(open(sys.argv[1])); print(r["pp"]["tokens_per_s"], r["tg"]["tokens_per_s"])' "$WORK/e.json")
  l_pp=null l_tg=null l_rss=null
  if [[ "$m" == *.gguf ]]; then
    l_rss=$(run_rss "$WORK/l.json" "$LLAMA/bin/llama-bench" -m "$m" -p 512 -n 128 -r "$REPS" \
      -t "$THREADS" -o json)
    read -r l_pp l_tg < <(python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
pp=[x["avg_ts"] for x in r if x["n_prompt"]>0]; tg=[x["avg_ts"] for x in r if x["n_gen"]>0]
print(pp[0], tg[0])' "$WORK/l.json")
  fi
  python3 - "$name" "$bpw" "$e_pp" "$e_tg" "$e_rss" "$l_pp" "$l_tg" "$l_rss" "$RESULTS" <<'EOF'
import json, sys
name, bpw = sys.argv[1], float(sys.argv[2])
e_pp, e_tg, e_rss = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
num = lambda s: None if s == "null" else float(s)
l_pp, l_tg, l_rss = num(sys.argv[6]), num(sys.argv[7]), num(sys.argv[8])
ratio = lambda a, b: None if b is None else round(a / b, 3)
row = {"model": name, "linear_bpw": bpw, "edgellm_pp512": round(e_pp, 2), "llamacpp_pp512": l_pp,
       "pp_ratio": ratio(e_pp, l_pp), "edgellm_tg128": round(e_tg, 2), "llamacpp_tg128": l_tg,
       "tg_ratio": ratio(e_tg, l_tg), "edgellm_rss_mib": e_rss, "llamacpp_rss_mib": l_rss}
with open(sys.argv[9], "a") as f:
    f.write(json.dumps(row) + "\n")
fmt = lambda v, d=2: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
print(f"| {name} | {bpw:.3f} | {e_pp:.1f} | {fmt(l_pp, 1)} | {fmt(row['pp_ratio'], 3)} | {e_tg:.2f} | "
      f"{fmt(l_tg)} | {fmt(row['tg_ratio'], 3)} | {e_rss} | {fmt(None if l_rss is None else int(l_rss))} |")
EOF
done

if [ "${PPL:-1}" = 1 ]; then
  tiny=models/edgellm-tiny
  wiki="$DATA/text/wikitext-2-raw"
  luc="$WORK/tiny-luc-b4-p05"
  [ -f "$luc/config.json" ] || "$BIN" compress --model "$tiny" --calib "$wiki/wiki.valid.raw" \
    --calib-windows 32 --calib-len 128 --policy luc --bits 4 --sparsity 0.5 --quantizer gptq \
    --pruner sparsegpt --out "$luc" >"$WORK/tiny-luc.log" 2>&1
  "$BIN" convert --model "$luc" --to gguf --out "$luc.gguf" >/dev/null
  echo
  echo "| model (WikiText-2 test, ctx 128, llama.cpp protocol) | edgellm ppl | llama.cpp ppl | relative difference |"
  echo "|---|---|---|---|"
  for m in "$luc" "$luc.gguf"; do
    e=$("$BIN" ppl --model "$m" --text "$wiki/wiki.test.raw" --ctx 128 --protocol llamacpp --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["ppl"])')
    l=null
    if [[ "$m" == *.gguf ]]; then
      "$LLAMA/bin/llama-perplexity" -m "$m" -f "$wiki/wiki.test.raw" -c 128 -b 128 -t "$THREADS" \
        >"$WORK/ppl.log" 2>&1 || { tail -5 "$WORK/ppl.log" >&2; exit 1; }
      l=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$WORK/ppl.log")
    fi
    python3 - "$(basename "$m")" "$e" "$l" "$RESULTS" <<'EOF'
import json, sys
name, e, l = sys.argv[1], float(sys.argv[2]), sys.argv[3]
l = None if l == "null" else float(l)
diff = "–" if l is None else f"{(e - l) / l:+.2e}"
lt = "–" if l is None else f"{l:.4f}"
print(f"| {name} | {e:.4f} | {lt} | {diff} |")
with open(sys.argv[4], "a") as f:
    f.write(json.dumps({"ppl_model": name, "edgellm_ppl": e, "llamacpp_ppl": l}) + "\n")
EOF
  done
fi
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' \
  "$RESULTS" >"$WORK/results.json.tmp" && mv "$WORK/results.json.tmp" "$WORK/results.json"
echo "raw figures: $WORK/results.json"
