#!/usr/bin/env bash
# The main job: the Edge-LLM pipeline (profile → compress → tune → evaluate → plan → report) on
# the embedded default model, models/edgellm-tiny, with data that exists on any machine
# (data-free calibration, a synthetic adaptation task generated from a seed). Needs no
# ../shared. Resumable: re-running skips finished stages. Output: runs/default/report.{md,html}.
#   tools/run-pipeline.sh [--config presets/pipelines/X.json] [--out DIR] [--from STAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target edgellm
exec build/release/edgellm pipeline "$@"
