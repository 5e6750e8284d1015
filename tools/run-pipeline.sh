#!/usr/bin/env bash
# The main job on the embedded default model (stories260K from EDGELLM_DATA): build, inspect,
# generate, and measure perplexity. Later stages of the Edge-LLM pipeline plug in here.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGELLM_DATA:-../shared/data}"
[ -d "$DATA" ] || { echo "error: EDGELLM_DATA directory '$DATA' not found" >&2; exit 1; }
MODEL="$DATA/models/stories260K/stories260K.bin"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target edgellm
BIN=build/release/edgellm
OUT="${OUT_DIR:-out}"
mkdir -p "$OUT"
$BIN info --model "$MODEL"
echo "--- generate (greedy) ---"
$BIN generate --model "$MODEL" -n 60 --temp 0
echo "--- perplexity ---"
$BIN ppl --model "$MODEL" --text "$DATA/text/tinystories/tinystories_val.txt" --ctx 512 \
  --max-tokens 8192 --json | tee "$OUT/ppl_stories260K.json"
