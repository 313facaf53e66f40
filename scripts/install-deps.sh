#!/usr/bin/env bash
# Installs the Debian 12 packages that qwenasr needs: everything for building and testing
# (default, what scripts/test.sh and CI use), or with `demo` only what scripts/demo.sh needs.
#
#   scripts/install-deps.sh [all|demo]
#
# Safe to run repeatedly; needs root (or sudo) on a machine that reaches Debian's archive.
set -euo pipefail

set_name=${1:-all}

# What scripts/demo.sh needs: build the plugin and the local service, recognise with
# PocketSphinx, write a captioned MP4 (H.264 + AAC) and describe it.
demo_packages=(
  # toolchain
  g++ meson ninja-build pkg-config python3
  # libraries the plugin and the local service link against
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libsoup-3.0-dev libjson-glib-dev libopus-dev libogg-dev glib-networking
  # elements: decoding, conversion, mp4mux (good), x264enc (ugly), avenc_aac and the common
  # decoders (libav), textoverlay (x) and its font, gst-discoverer-1.0 (base-apps)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  fonts-dejavu-core
  # the real recogniser of the local service, its model and Debian's recorded speech
  libpocketsphinx-dev pocketsphinx-en-us pocketsphinx-testdata
)

# The rest of what the test command needs.
test_packages=(
  git ca-certificates
  # srtenc, webvttenc and the other elements of the pipeline tests
  gstreamer1.0-plugins-bad
  # memory checking, fuzzing and the format check
  valgrind clang libclang-rt-14-dev clang-format
  # the Python embedding example
  python3-gi gir1.2-gstreamer-1.0
  # the RTMP end-to-end tests run their own nginx with the RTMP module; ffmpeg publishes to
  # it and decodes closed captions as a viewer's player does (an independent decoder)
  nginx libnginx-mod-rtmp ffmpeg
)

case "$set_name" in
all) packages=("${demo_packages[@]}" "${test_packages[@]}") ;;
demo) packages=("${demo_packages[@]}") ;;
*)
  echo "usage: $0 [all|demo]" >&2
  exit 2
  ;;
esac

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
# Another apt run (e.g. unattended upgrades) may hold the lock: wait for it rather than fail.
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
$sudo "${apt[@]}" update
$sudo "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
