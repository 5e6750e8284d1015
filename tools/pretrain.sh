#!/usr/bin/env bash
# Reproduces models/edgellm-tiny from the shared data: tokenizer, pretraining (resumable: rerun
# the script after an interruption), the committed bf16 export. About 90 minutes on 2 cores.
#   tools/pretrain.sh [WORK_DIR]     (default build/pretrain; EDGELLM_DATA as for the tests)
# Then tools/eval-pretrained.sh measures it (bits per byte against stories260K and xz -9e).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGELLM_DATA:-../shared/data}"
WORK="${1:-build/pretrain}"
BIN=build/release/edgellm
[ -x "$BIN" ] || { cmake --preset release >/dev/null && cmake --build --preset release -j"$(nproc)" --target edgellm; }
T="$DATA/text"
# Training text: 23 Gutenberg books, ELTeC-eng part 1, two TinyStories train excerpts. Held out:
# ELTeC-eng part 2 (whole novels never trained on); WikiText-2 and the TinyStories validation
# excerpt are never trained on either.
TRAIN=("$T/books/gutenberg_books_part01.txt" "$T/books/eltec_eng_novels_part01.txt"
       "$T/tinystories/tinystories_v1_train_part01.txt" "$T/tinystories/tinystoriesv2_gpt4_train_part01.txt")
HELDOUT="$T/books/eltec_eng_novels_part02.txt"
mkdir -p "$WORK"
[ -f "$WORK/tok4096/tokenizer.model" ] ||
  "$BIN" train-tokenizer --text "${TRAIN[@]}" --vocab 4096 --max-sentences 400000 --seed 0 \
    --out "$WORK/tok4096"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
"$BIN" pretrain \
  --shape dim=192,layers=12,heads=6,kv_heads=2,ff=512,vocab=4096,ctx=512,tied=1 \
  --tokenizer "$WORK/tok4096/tokenizer.model" --data "${TRAIN[@]}" --val-data "$HELDOUT" \
  --tokens 5000000 --seq 512 --batch 1 --grad-accum 8 --lr 1.5e-3 --warmup 100 \
  --weight-decay 0.1 --clip 1.0 --seed 1 --val-every 100 --val-max 16 --save-every 50 \
  --log-every 10 --cache "$WORK/cache" --out "$WORK/tiny" --resume
# The committed form: bf16 matrices (f32 norms), the tokenizer beside them.
"$BIN" convert --model "$WORK/tiny" --to safetensors --dtype bf16 --out "$WORK/edgellm-tiny"
cp "$WORK/tok4096/tokenizer.model" "$WORK/edgellm-tiny/"
sha256sum "$WORK/edgellm-tiny/model.safetensors"
