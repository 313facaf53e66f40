#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing qwenasr needs.
# Safe to run repeatedly; needs root (or sudo) on a machine that reaches Debian's archive.
set -euo pipefail

packages=(
  # toolchain
  g++ meson ninja-build pkg-config python3 git ca-certificates
  # libraries the plugin and the local service link against
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libsoup-3.0-dev libjson-glib-dev libopus-dev libogg-dev glib-networking
  # runtime elements used by the tests and documented pipelines
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  fonts-dejavu-core
  # memory checking and fuzzing in the test command
  valgrind clang libclang-rt-14-dev clang-format
  # the real recogniser of the local service, its model and Debian's recorded speech
  libpocketsphinx-dev pocketsphinx-en-us pocketsphinx-testdata
  # the Python embedding example
  python3-gi gir1.2-gstreamer-1.0
  # the RTMP end-to-end tests run their own nginx with the RTMP module; ffmpeg publishes to
  # it, and decodes the closed captions as a viewer's player does (an independent decoder)
  nginx libnginx-mod-rtmp ffmpeg
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
