#!/usr/bin/env bash
# Installs every build, run and test dependency of edgellm from Debian packages (and the npm
# packages of the tokenizer conformance test). Nothing is downloaded at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config git ca-certificates clang-format \
  libdnnl-dev libfmt-dev nlohmann-json3-dev libcli11-dev libsentencepiece-dev libpcre2-dev \
  libicu-dev libgtest-dev libgmock-dev libbenchmark-dev >/dev/null
# Node.js runs only the tokenizer conformance test; use the machine's own if it has one.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -x tests/conformance/setup.sh ]; then tests/conformance/setup.sh; fi
echo "dependencies installed"
