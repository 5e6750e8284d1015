#!/usr/bin/env bash
# Engine benchmark of issue 2: prefill pp512 and decode tg128 with 2 threads on random-weight
# models of the 134M shape and the TinyLlama-1.1B shape, F32 and each quantized type we read,
# next to llama.cpp's figures measured on this machine class (2 threads). Writes one JSON file.
#   bench/engine_bench.sh [OUT_JSON] [SHAPES...]     (default: 134M tinyllama-1.1b)
#   DTYPES="f32 q8_0" restricts the storage types; EDGELLM_BIN picks the binary.
# Needs ~9 GB of free disk for the TinyLlama files (kept in $BENCH_DIR, default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench_engine.json}"
shift || true
[ $# -gt 0 ] && SHAPES=("$@") || SHAPES=(134M tinyllama-1.1b)
BIN="${EDGELLM_BIN:-build/release/edgellm}"
DIR="${BENCH_DIR:-/tmp/edgellm_bench}"
THREADS="${THREADS:-2}"
mkdir -p "$DIR"
[ -x "$BIN" ] || { cmake --preset release >/dev/null && cmake --build --preset release -j --target edgellm; }

# llama.cpp on this machine class, 2 threads (issue 2): tokens/s.
declare -A REF=(
  [134M.f32.pp]=1173 [134M.f32.tg]=120
  [tinyllama-1.1b.f32.pp]=94 [tinyllama-1.1b.f32.tg]=7.4
  [tinyllama-1.1b.q8_0.tg]=27.2 [tinyllama-1.1b.q4_0.pp]=207 [tinyllama-1.1b.q4_0.tg]=50.9
)
echo "[" >"$OUT.tmp"
first=1
for shape in "${SHAPES[@]}"; do
  hf="$DIR/$shape"
  [ -f "$hf/model.safetensors" ] || "$BIN" make-model --shape "$shape" --out "$hf" --seed 1 >/dev/null
  for dt in ${DTYPES:-f32 f16 bf16 q8_0 q4_0 q4_k q6_k}; do
    if [ "$dt" = f32 ]; then m="$hf"; else
      m="$DIR/$shape.$dt.gguf"
      [ -f "$m" ] || "$BIN" convert --model "$hf" --to gguf --dtype "$dt" --out "$m" >/dev/null
    fi
    res=$(OMP_NUM_THREADS=$THREADS "$BIN" bench --model "$m" --pp 512 --tg 128 --reps 3 --threads "$THREADS" --json)
    ref_pp=${REF[$shape.$dt.pp]:-null}
    ref_tg=${REF[$shape.$dt.tg]:-null}
    entry=$(python3 -c '
import json,sys
r=json.loads(sys.argv[1]); pp=r["pp"]["tokens_per_s"]; tg=r["tg"]["tokens_per_s"]
rp=None if sys.argv[4]=="null" else float(sys.argv[4]); rt=None if sys.argv[5]=="null" else float(sys.argv[5])
print(json.dumps({"shape":sys.argv[2],"dtype":sys.argv[3],"pp512_tok_s":round(pp,1),"tg128_tok_s":round(tg,2),
 "llamacpp_pp512":rp,"llamacpp_tg128":rt,"pp_ratio":None if rp is None else round(pp/rp,3),
 "tg_ratio":None if rt is None else round(tg/rt,3),"peak_rss_mb":round(r["peak_rss_mb"]),"weight_mb":round(r["weight_bytes"]/1e6)}))
' "$res" "$shape" "$dt" "$ref_pp" "$ref_tg")
    echo "$entry"
    [ $first = 1 ] || echo "," >>"$OUT.tmp"
    first=0
    echo "$entry" >>"$OUT.tmp"
  done
done
echo "]" >>"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
