#!/usr/bin/env bash
# Speed under contention (issue 11 item 7): `ppl` on 4,096 tokens and greedy decode of 128 tokens
# with 2 threads, alone and beside one CPU-bound competitor (a busy loop), with edgellm's default
# passive OpenMP wait and with OMP_WAIT_POLICY=ACTIVE (the OpenMP default before the fix), side by
# side in one run.
#
#   bench/contention.sh [MODEL] [TEXT]
#     MODEL  default: models/edgellm-tiny (committed)
#     TEXT   default: $EDGELLM_DATA/text/wikitext-2-raw/wiki.test.raw
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${EDGELLM_BIN:-build/release/edgellm}"
MODEL="${1:-models/edgellm-tiny}"
DATA="${EDGELLM_DATA:-../shared/data}"
TEXT="${2:-$DATA/text/wikitext-2-raw/wiki.test.raw}"
[ -x "$BIN" ] || { echo "error: $BIN not built (cmake --build --preset release)" >&2; exit 1; }
[ -f "$TEXT" ] || { echo "error: $TEXT not found (set EDGELLM_DATA)" >&2; exit 1; }

secs() {  # wall seconds of a command
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
run_ppl() { env "$@" "$BIN" ppl --model "$MODEL" --text "$TEXT" --max-tokens 4096 --threads 2; }
run_gen() {
  env "$@" "$BIN" generate --model "$MODEL" --prompt "Once upon a time" -n 128 \
    --temp 0 --threads 2
}

printf '%-10s %-22s %10s %10s\n' "wait" "competitor" "ppl s" "decode s"
for policy in passive active; do
  envs=()
  [ "$policy" = active ] && envs=(OMP_WAIT_POLICY=ACTIVE)
  for comp in none busy-loop; do
    pid=""
    if [ "$comp" = busy-loop ]; then
      (while :; do :; done) &
      pid=$!
      sleep 0.5
    fi
    p=$(secs run_ppl "${envs[@]}")
    g=$(secs run_gen "${envs[@]}")
    [ -n "$pid" ] && kill "$pid" && wait "$pid" 2>/dev/null || true
    printf '%-10s %-22s %10.2f %10.2f\n' "$policy" "$comp" "$p" "$g"
  done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
