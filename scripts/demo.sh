#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Captions MEDIA (or, without it, the recorded speech Debian ships in pocketsphinx-testdata)
# and writes, per input, an .srt and an MP4 with the captions burned in and the original sound.
#
#   scripts/demo.sh [--no-setup] [MEDIA...]
#
# Setup (skipped with --no-setup, which the test suite uses on its own build): installs what
# is missing (scripts/install-deps.sh demo), builds the plugin and the local service into
# $BUILD_DIR (default build-demo), a few progress lines on screen, everything else in
# $BUILD_DIR/demo-setup.log.
# Then, per MEDIA: prints each final caption once, with its times; writes MEDIA.srt and
# MEDIA.captioned.mp4 (H.264 4:2:0 8-bit + AAC; the input's picture at its own size, less a
# column or row where that is odd, or a test pattern when it has none) next to the input, or
# into $OUT_DIR when that directory is not
# writable or is system data (default $BUILD_DIR/demo-output); and ends with a summary.
# With DASHSCOPE_API_KEY set the cloud service recognises, sent at the media's own pace;
# otherwise the local service with the PocketSphinx engine on a free loopback port, as fast as
# it recognises (DEMO_PACE=realtime to watch it at the media's pace), stopped on exit.
# *.raw is taken as headerless S16LE 16 kHz mono. Nothing is downloaded but Debian packages.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build-demo}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/demo-output}
testdata=/usr/share/pocketsphinx/test/data
started=$(date +%s)

setup=1
if [ "${1:-}" = "--no-setup" ]; then
  setup=0
  shift
fi
media=("$@")
[ ${#media[@]} -gt 0 ] || media=("$testdata/goforward.raw" "$testdata/numbers.raw")

elapsed() { # SINCE -> "1m 05s" or "12s"
  local s=$(($(date +%s) - $1))
  if [ "$s" -ge 60 ]; then printf '%dm %02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

if [ "$setup" = 1 ]; then
  mkdir -p "$BUILD_DIR"
  log="$BUILD_DIR/demo-setup.log"
  : >"$log"
  # STEP TITLE COMMAND...: one line on screen, the command's output in the log.
  step() {
    local title=$1 t0
    shift
    t0=$(date +%s)
    printf 'demo: %s ... ' "$title"
    if ! { echo "=== $title"; "$@"; } >>"$log" 2>&1; then
      echo "failed; the end of $log:"
      tail -n 25 "$log" | sed 's/^/  /'
      exit 1
    fi
    echo "done ($(elapsed "$t0"))"
  }
  configure() {
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
      meson setup "$BUILD_DIR" "$root" -Dtests=disabled
    elif ! grep -q "QWENASR_HAVE_POCKETSPHINX 1" "$BUILD_DIR/service/engine-config.h" 2>/dev/null; then
      # Configured before libpocketsphinx-dev was installed: look for it again.
      meson setup --reconfigure "$BUILD_DIR" "$root" -Dtests=disabled
    fi
  }
  echo "demo: setup output goes to $log"
  step "installing missing Debian packages" "$root/scripts/install-deps.sh" demo
  step "configuring $BUILD_DIR" configure
  # Only the plugin and the service, whatever else the build directory was configured with.
  step "building the plugin and the local service" \
    ninja -C "$BUILD_DIR" gst/qwenasr/libgstqwenasr.so service/qwenasr-local-service
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
  echo "demo: service: Alibaba Cloud (DASHSCOPE_API_KEY is set)"
  pace=${DEMO_PACE:-realtime}
else
  mkdir -p "$OUT_DIR"
  service_log="$OUT_DIR/local-service.log"
  "$service" --engine pocketsphinx --port-file "$workdir/port" >/dev/null 2>"$service_log" &
  service_pid=$!
  # The port file appears once it listens; the model takes about a second to load.
  for _ in $(seq 1 300); do
    [ -s "$workdir/port" ] && break
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$workdir/port" ]; then
    echo "demo: the local service did not start:" >&2
    cat "$service_log" >&2
    exit 1
  fi
  url="ws://127.0.0.1:$(cat "$workdir/port")/api-ws/v1/realtime"
  echo "demo: service: local, PocketSphinx engine, $url"
  export DASHSCOPE_API_KEY=test-key
  # PocketSphinx decodes an utterance still open at the end of the media only then, which on a
  # busy machine can take longer than the default 10 s finish-timeout.
  url_args=("url=$url" "finish-timeout=60000")
  pace=${DEMO_PACE:-fast}
fi
# realtime: the audio goes to the recogniser at the media's pace, as from a microphone.
case "$pace" in
realtime) pace_element="identity sync=true !" ;;
fast) pace_element="" ;;
*)
  echo "demo: DEMO_PACE must be fast or realtime" >&2
  exit 2
  ;;
esac

# Whether the media has a video stream: linking decodebin to a video-only branch fails without.
has_video() {
  case "$1" in
  *.raw) return 1 ;;
  *) timeout 60 gst-launch-1.0 -q filesrc location="$1" ! decodebin ! video/x-raw ! \
    fakesink num-buffers=1 >/dev/null 2>&1 ;;
  esac
}

# Seconds that FILE lasts, from gst-discoverer-1.0 (empty when it is not installed).
duration_of() {
  command -v gst-discoverer-1.0 >/dev/null || return 0
  gst-discoverer-1.0 "$1" 2>/dev/null | sed -n 's/^ *Duration: \([0-9]*\):\([0-9]*\):\([0-9.]*\).*/\1 \2 \3/p' |
    awk '{ printf "%.1f", $1 * 3600 + $2 * 60 + $3 }'
}

# "videocrop right=1 bottom=1 !" as far as the picture of FILE has an odd width or height (H.264
# 4:2:0 needs even ones), from gst-discoverer-1.0; nothing when both are even or it is missing.
crop_to_even() {
  command -v gst-discoverer-1.0 >/dev/null || return 0
  gst-discoverer-1.0 "$1" 2>/dev/null | awk '
    /^ *Width: / && !w { w = $2 }
    /^ *Height: / && !h { h = $2 }
    END { if (w % 2 || h % 2) printf "videocrop right=%d bottom=%d !", w % 2, h % 2 }'
}

summary=()
total_cues=0
total_audio=0
for input in "${media[@]}"; do
  if [ ! -r "$input" ]; then
    echo "demo: cannot read $input" >&2
    exit 1
  fi
  t0=$(date +%s)
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

  bigq="queue max-size-time=0 max-size-bytes=0 max-size-buffers=0"
  # 4:2:0 8-bit before the overlay: what players, browsers and phones decode, and what
  # textoverlay draws its shaded background on.
  overlay="videoconvert ! video/x-raw,format=I420 ! textoverlay name=o valignment=bottom halignment=center font-desc=\"Sans 24\" shaded-background=true ! x264enc speed-preset=ultrafast ! $bigq ! mp4mux name=mux faststart=true ! filesink location=\"$mp4\""
  aac="$bigq ! audioconvert ! audioresample ! avenc_aac ! $bigq ! mux."
  seconds=""
  if has_video "$input"; then
    seconds=$(duration_of "$input")
    video="filesrc location=\"$input\" ! decodebin name=d d. ! video/x-raw ! $bigq ! $(crop_to_even "$input") $overlay"
    audio="d. ! audio/x-raw"
  else
    raw="$input"
    if [[ "$input" != *.raw ]]; then
      # Decoded once to 16 kHz mono: its size gives the length of the generated picture.
      raw="$workdir/$stem.raw"
      gst-launch-1.0 -q filesrc location="$input" ! decodebin ! audioconvert ! audioresample ! \
        audio/x-raw,format=S16LE,rate=16000,channels=1 ! filesink location="$raw"
    fi
    bytes=$(stat -c %s "$raw")
    seconds=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 32000 }')
    frames=$((bytes * 25 / 32000 + 1))
    video="videotestsrc pattern=smpte num-buffers=$frames ! video/x-raw,width=640,height=360,framerate=25/1 ! $bigq ! $overlay"
    audio="filesrc location=\"$raw\" ! rawaudioparse format=pcm pcm-format=s16le sample-rate=16000 num-channels=1"
  fi

  echo
  echo "== $input"
  # One recognition pass feeds the bus messages (the printed captions and the SRT) and the
  # overlay; the sound goes into the MP4 as well.
  pipeline="$video $audio ! tee name=a a. ! $pace_element queue ! audioconvert ! audioresample ! qwenasr language-code=en ${url_args[*]:-} ! o.text_sink a. ! $aac"
  set +e
  eval "stdbuf -oL gst-launch-1.0 -m -e $pipeline" 2>&1 | python3 -u "$root/scripts/demo-captions.py" --srt "$srt"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "demo: the pipeline failed for $input (exit $rc)" >&2
    exit "$rc"
  fi
  cues=$(grep -c -- ' --> ' "$srt" || true)
  total_cues=$((total_cues + cues))
  total_audio=$(awk -v a="$total_audio" -v b="${seconds:-0}" 'BEGIN { printf "%.1f", a + b }')
  summary+=("$input: ${seconds:-?} s of audio, $cues caption(s), $(elapsed "$t0")"
    "  subtitles: $srt"
    "  video:     $mp4 (H.264 4:2:0 + AAC sound)")
done

echo
echo "== Summary"
printf '%s\n' "${summary[@]}"
echo "${#media[@]} input(s), $total_audio s of audio, $total_cues caption(s), $(elapsed "$started") in all"
