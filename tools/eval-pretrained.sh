#!/usr/bin/env bash
# Bits per byte of a model on the held-out texts, beside stories260K and xz -9e, plus greedy
# continuations of three openings (MODEL.md's evaluation table).
#   tools/eval-pretrained.sh [MODEL_DIR]   (default models/edgellm-tiny)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGELLM_DATA:-../shared/data}"
MODEL="${1:-models/edgellm-tiny}"
BIN="${EDGELLM_BIN:-build/release/edgellm}"
S260="$DATA/models/stories260K/stories260K.bin"
declare -A TEXT=(
  [heldout-books]="$DATA/text/books/eltec_eng_novels_part02.txt"
  [wikitext2-test]="$DATA/text/wikitext-2-raw/wiki.test.raw"
  [tinystories-val]="$DATA/text/tinystories/tinystories_val.txt")
printf '| text | bytes | %s bpb (ppl) | stories260K bpb (ppl) | xz -9e bpb |\n|---|---|---|---|---|\n' \
  "$(basename "$MODEL")"
for name in heldout-books wikitext2-test tinystories-val; do
  f="${TEXT[$name]}"
  bytes=$(stat -c %s "$f")
  ours=$("$BIN" ppl --model "$MODEL" --text "$f" --ctx 512 --json)
  s260=$("$BIN" ppl --model "$S260" --text "$f" --ctx 512 --json)
  xzb=$(xz -9e -k -c "$f" | wc -c)
  python3 - "$name" "$bytes" "$ours" "$s260" "$xzb" <<'PY'
import json, sys
name, nbytes, ours, s260, xzb = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
print(f"| {name} | {nbytes} | {ours['bpb']:.3f} ({ours['ppl']:.2f}) | {s260['bpb']:.3f} ({s260['ppl']:.2f}) | {8 * xzb / nbytes:.3f} |")
PY
done
echo
for p in "Once upon a time" "It was a dark and stormy night" "The history of the city"; do
  printf -- '- "%s" →' "$p"
  "$BIN" generate --model "$MODEL" --prompt "$p" -n 48 --temp 0 | tr '\n' ' '
  echo
done
