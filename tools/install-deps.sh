#!/usr/bin/env bash
# Installs edgellm's dependencies, Debian packages only; nothing is downloaded at build or run time.
#   tools/install-deps.sh           build and run (tools/debian-packages.txt): the main job needs
#                                   nothing more, so a fresh machine gets to it sooner
#   tools/install-deps.sh --tests   also the tests' and developers' packages
#                                   (tools/debian-packages-test.txt), Node.js if the machine has
#                                   none, and the pinned npm packages of tests/conformance
# Packages already installed are not fetched again (no apt-get update when nothing is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
lists=(tools/debian-packages.txt)
tests=0
case "${1:-}" in
  "") ;;
  --tests) tests=1 lists+=(tools/debian-packages-test.txt) ;;
  *) echo "usage: tools/install-deps.sh [--tests]" >&2; exit 2 ;;
esac
# shellcheck disable=SC2046
want=($(cat "${lists[@]}"))
if [ "$tests" -eq 1 ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  want+=(nodejs npm)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$tests" -eq 0 ] || tests/conformance/setup.sh
echo "dependencies installed"
