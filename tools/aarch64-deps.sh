#!/usr/bin/env bash
# Everything the aarch64 cross build (preset "aarch64", cmake/aarch64-linux-gnu.cmake) needs:
# the cross compiler, qemu-user, and Debian's arm64 -dev packages. oneDNN and SentencePiece
# are not co-installable as arm64 multiarch packages beside the amd64 ones this machine builds
# with, so their arm64 packages are downloaded and unpacked into build/aarch64-deps instead
# (installing libsentencepiece-dev:arm64 would REMOVE the amd64 one).
#   tools/aarch64-deps.sh            (idempotent; apt-get through sudo unless run as root)
# Only apt-get and dpkg run as root: build/ stays the invoking user's, so the builds that follow
# can write there.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends \
  g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libpcre2-dev:arm64 libicu-dev:arm64 \
  libfmt-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libtomlplusplus-dev:arm64 \
  libxml2-dev:arm64 libgomp1:arm64 >/dev/null
deps=build/aarch64-deps
if [ ! -f "$deps/.done" ]; then
  rm -rf "$deps"
  mkdir -p "$deps/debs"
  (cd "$deps/debs" && apt-get download -qq libdnnl-dev:arm64 libdnnl2:arm64 \
    libsentencepiece-dev:arm64 libsentencepiece0:arm64)
  for d in "$deps"/debs/*.deb; do dpkg -x "$d" "$deps"; done
  touch "$deps/.done"
fi
echo "aarch64 dependencies ready in $deps"
