#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Captions MEDIA (or, without it, the recorded speech Debian ships in pocketsphinx-testdata):
#
#   scripts/demo.sh [--no-setup] [MEDIA...]
#
# On a fresh Debian 12 machine it installs what is missing (scripts/install-deps.sh plus the
# PocketSphinx packages), builds into $BUILD_DIR (default build-demo), and then, per MEDIA:
#   - prints partial and final captions live with their times,
#   - writes MEDIA.srt next to the input, or into $OUT_DIR when the input's directory is not
#     writable or is system data (default $BUILD_DIR/demo-output),
#   - writes MEDIA.captioned.mp4 with the captions burned in: the input's video, or a generated
#     background when the input has none (the MP4 has no sound track).
# With DASHSCOPE_API_KEY set the cloud service recognises; otherwise the local service runs with
# the PocketSphinx engine on a free loopback port and is stopped on exit. Nothing is downloaded
# except Debian packages. *.raw is taken as headerless S16LE 16 kHz mono.
# --no-setup skips installing and building (the test suite uses it on its own build dir).
# DEMO_FAST=1 recognises as fast as possible instead of at the media's own pace.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build-demo}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/demo-output}
testdata=/usr/share/pocketsphinx/test/data

setup=1
if [ "${1:-}" = "--no-setup" ]; then
  setup=0
  shift
fi
media=("$@")
[ ${#media[@]} -gt 0 ] || media=("$testdata/goforward.raw" "$testdata/numbers.raw")

say() { printf '\n== %s\n' "$*"; }

if [ "$setup" = 1 ]; then
  say "Dependencies"
  "$root/scripts/install-deps.sh"
  # Not (yet) in install-deps.sh: the recogniser, its English model and the recorded speech.
  extra=(libpocketsphinx-dev pocketsphinx-en-us pocketsphinx-testdata)
  missing=()
  for p in "${extra[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "demo: installing ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi

  say "Build ($BUILD_DIR)"
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" "$root"
  elif ! grep -q "QWENASR_HAVE_POCKETSPHINX 1" "$BUILD_DIR/service/engine-config.h" 2>/dev/null; then
    # Configured before libpocketsphinx-dev was installed: look for it again.
    meson setup --reconfigure "$BUILD_DIR" "$root"
  fi
  ninja -C "$BUILD_DIR"
fi

service="$BUILD_DIR/service/qwenasr-local-service"
export GST_PLUGIN_PATH="$BUILD_DIR/gst/qwenasr${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
# glib-networking would route even ws://127.0.0.1 through a configured proxy.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

workdir=$(mktemp -d)
service_pid=""
cleanup() {
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url_args=()
if [ -n "${DASHSCOPE_API_KEY:-}" ]; then
  say "Service: Alibaba Cloud (DASHSCOPE_API_KEY is set)"
else
  say "Service: local, PocketSphinx engine"
  "$service" --engine pocketsphinx >"$workdir/url" 2>"$workdir/service.log" &
  service_pid=$!
  # It prints its URL once listening; the model takes about a second to load.
  for _ in $(seq 1 300); do
    [ -s "$workdir/url" ] && break
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
  done
  url=$(head -n1 "$workdir/url" 2>/dev/null || true)
  if [ -z "$url" ]; then
    echo "demo: the local service did not start:" >&2
    cat "$workdir/service.log" >&2
    exit 1
  fi
  echo "$url (pid $service_pid)"
  export DASHSCOPE_API_KEY=test-key
  url_args=("url=$url")
fi

# Whether the media has a video stream (gst-discoverer-1.0 is not in the installed packages):
# linking decodebin to a video-only sink fails without one.
has_video() {
  case "$1" in
  *.raw) return 1 ;;
  *) timeout 60 gst-launch-1.0 -q filesrc location="$1" ! decodebin ! video/x-raw ! \
    fakesink num-buffers=1 >/dev/null 2>&1 ;;
  esac
}

# The audio goes to the recogniser in real time, as from a microphone, so the captions can be
# watched growing; DEMO_FAST=1 sends it as fast as it is recognised instead.
pace="identity sync=true !"
[ "${DEMO_FAST:-0}" = 1 ] && pace=""

outputs=()
for input in "${media[@]}"; do
  if [ ! -r "$input" ]; then
    echo "demo: cannot read $input" >&2
    exit 1
  fi
  dir=$(cd "$(dirname "$input")" && pwd)
  base=$(basename "$input")
  stem=${base%.*}
  # Never write into system data (Debian's test recordings), even as root.
  if [ -w "$dir" ] && [[ "$dir" != /usr/* ]]; then
    out="$dir"
  else
    out="$OUT_DIR"
    mkdir -p "$out"
  fi
  srt="$out/$stem.srt"
  mp4="$out/$stem.captioned.mp4"

  case "$input" in
  *.raw) src="filesrc location=\"$input\" ! rawaudioparse format=pcm pcm-format=s16le sample-rate=16000 num-channels=1" ;;
  *) src="filesrc location=\"$input\" ! decodebin name=d d." ;;
  esac
  overlay="textoverlay name=o valignment=bottom halignment=center font-desc=\"Sans 24\" shaded-background=true ! videoconvert ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location=\"$mp4\""
  bigq="queue max-size-time=0 max-size-bytes=0 max-size-buffers=0"
  if has_video "$input"; then
    video="d. ! video/x-raw ! $bigq ! videoconvert ! $overlay"
    audio="$src ! audio/x-raw"
  else
    raw="$input"
    if [[ "$input" != *.raw ]]; then
      # Decoded once to 16 kHz mono: its size gives the length of the generated background.
      raw="$workdir/$stem.raw"
      gst-launch-1.0 -q filesrc location="$input" ! decodebin ! audioconvert ! audioresample ! \
        audio/x-raw,format=S16LE,rate=16000,channels=1 ! filesink location="$raw"
      src="filesrc location=\"$raw\" ! rawaudioparse format=pcm pcm-format=s16le sample-rate=16000 num-channels=1"
    fi
    frames=$(($(stat -c %s "$raw") * 25 / 32000 + 25))
    video="videotestsrc pattern=smpte num-buffers=$frames ! video/x-raw,width=640,height=360,framerate=25/1 ! $bigq ! $overlay"
    audio="$src"
  fi

  say "Captions of $input"
  # One recognition pass feeds everything: the bus messages (partials and finals, printed as
  # they arrive), the SRT (finals only) and the overlay.
  pipeline="$video $audio ! $pace queue ! audioconvert ! audioresample ! qwenasr language-code=en ${url_args[*]:-} ! tee name=t t. ! queue ! srtenc ! filesink location=\"$srt\" t. ! queue ! o.text_sink"
  set +e
  eval "stdbuf -oL gst-launch-1.0 -m -e $pipeline" 2>&1 | python3 -u "$root/scripts/demo-captions.py"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "demo: the pipeline failed for $input (exit $rc)" >&2
    exit "$rc"
  fi
  outputs+=("$input:" "  subtitles: $srt" "  video:     $mp4")
done

say "Outputs"
printf '%s\n' "${outputs[@]}"
