#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What a new user sees from gst-inspect-1.0 and gst-launch-1.0 in the first minutes:
#   inspect  gst-inspect-1.0 of both elements shows no raw 18446744073709551615 (2^64-1) except
#            in GStreamer's own "Range:" lines
#   caps     44.1 kHz stereo straight into either element: the element's error says, once, what
#            it takes and what to put in front; with audioconvert ! audioresample it says nothing
# The local service is started with --port-file, as the README's quick start does.
# Usage: test_first_pipelines.sh BUILD_ROOT inspect|caps
set -euo pipefail
build=$1
mode=$2
fail() {
  echo "FAIL: $*"
  exit 1
}
hint='takes S16LE mono audio at 8 or 16 kHz; put `audioconvert ! audioresample` in front of it.'

case "$mode" in
inspect)
  for element in qwenasrsink qwenasr; do
    text=$(gst-inspect-1.0 "$element")
    raw=$(grep 18446744073709551615 <<<"$text" | grep -v 'Range:' || true)
    [ -z "$raw" ] || fail "$element: raw 2^64-1 in gst-inspect-1.0: $raw"
    grep -A3 '^  stats ' <<<"$text"
  done
  ;;
caps)
  work=$(mktemp -d)
  "$build/service/qwenasr-local-service" --port-file "$work/port" >/dev/null &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do
    [ -s "$work/port" ] && break
    sleep 0.1
  done
  [ -s "$work/port" ] || fail "the service wrote no port file"
  url="ws://127.0.0.1:$(cat "$work/port")/api-ws/v1/realtime"
  gst-launch-1.0 -q audiotestsrc num-buffers=20 ! audio/x-raw,rate=44100,channels=2 ! \
    wavenc ! filesink location="$work/stereo44k.wav"
  wav="filesrc location=$work/stereo44k.wav ! wavparse"
  for sink in "qwenasrsink" "qwenasr ! fakesink"; do
    name=${sink%% *}
    set -- $sink
    shift
    # No `! audioconvert ! audioresample`: our error with the hint, then GStreamer's generic
    # not-negotiated one. (As a warning, the hint went missing in about one run in ten:
    # gst-launch-1.0 prints errors as they are posted and may quit before printing a warning.)
    log=$(timeout 60 gst-launch-1.0 $wav ! $name api-key=test-key url="$url" "$@" 2>&1 || true)
    echo "$log" | grep -E 'WARNING|ERROR|takes'
    [ "$(grep -c -F "$hint" <<<"$log")" -eq 1 ] || fail "$name: the hint is not there once"
    grep -q -F "${name}0 $hint" <<<"$log" || fail "$name: the hint does not name the element"
    log=$(timeout 60 gst-launch-1.0 $wav ! audioconvert ! audioresample ! \
      $name api-key=test-key url="$url" "$@" 2>&1) || fail "$name: converted pipeline failed: $log"
    ! grep -q -F "$hint" <<<"$log" || fail "$name: hint on a pipeline that negotiates"
  done
  ;;
*) fail "mode must be inspect or caps" ;;
esac
echo "PASS"
