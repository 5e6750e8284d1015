#!/usr/bin/env bash
# Installs every build, run and test dependency of edgellm: the Debian packages listed in
# tools/debian-packages.txt, Node.js if the machine has none (tokenizer conformance test only),
# and the pinned npm packages of tests/conformance. Nothing is downloaded at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2046
$SUDO apt-get install -y -qq --no-install-recommends $(cat tools/debian-packages.txt) >/dev/null
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
tests/conformance/setup.sh
echo "dependencies installed"
