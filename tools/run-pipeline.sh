#!/usr/bin/env bash
# The main job on the embedded default model (stories260K from EDGELLM_DATA), in minutes: build,
# inspect, generate, perplexity, LoRA tuning with held-out perplexity before/after, and the
# hardware-scheduling reproduction of the paper. Compression (LUC) and adaptive layer tuning plug
# in here as they land.
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
echo "--- LoRA tuning on Shakespeare (held-out perplexity before / after) ---"
head -c 900000 "$DATA/text/tinyshakespeare/input.txt" >"$OUT/shakespeare_train.txt"
tail -c 200000 "$DATA/text/tinyshakespeare/input.txt" >"$OUT/shakespeare_val.txt"
$BIN ppl --model "$MODEL" --text "$OUT/shakespeare_val.txt" --ctx 256 --max-tokens 8192
$BIN tune --model "$MODEL" --data "$OUT/shakespeare_train.txt" --method lora --steps 300 --seq 64 \
  --lr 3e-3 --out "$OUT/lora_shakespeare" --log-every 100
$BIN ppl --model "$MODEL" --adapter "$OUT/lora_shakespeare" --text "$OUT/shakespeare_val.txt" \
  --ctx 256 --max-tokens 8192
echo "--- hardware scheduling: the paper's accelerator, LLaMA-7B shape ---"
$BIN sim paper
