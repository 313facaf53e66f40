#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/demo.sh on a short recording (pocketsphinx-testdata's goforward.raw), with the build
# the suite runs in: its SRT must hold the one expected cue, and the video must exist.
# Usage: test_demo.sh SOURCE_ROOT BUILD_ROOT. Exits 77 (meson: SKIP) without PocketSphinx.
set -euo pipefail
src=$1
build=$2
clip=/usr/share/pocketsphinx/test/data/goforward.raw

if ! grep -q "QWENASR_HAVE_POCKETSPHINX 1" "$build/service/engine-config.h"; then
  echo "SKIP: built without PocketSphinx (install libpocketsphinx-dev)"
  exit 77
fi
if [ ! -r "$clip" ] || [ ! -r /usr/share/pocketsphinx/model/en-us/en-us/mdef ]; then
  echo "SKIP: pocketsphinx-testdata or pocketsphinx-en-us not installed"
  exit 77
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Local service (no key), as fast as possible, no install or build: this build is the one.
env -u DASHSCOPE_API_KEY BUILD_DIR="$build" OUT_DIR="$out" DEMO_FAST=1 \
  "$src/scripts/demo.sh" --no-setup "$clip" | tee "$out/log"

srt="$out/goforward.srt"
echo "--- $srt"
cat "$srt"
# Exactly one cue: "1", a time line inside the 2.8 s clip, and the words (case and full stop
# as the engine writes them are not checked).
[ "$(grep -c -- '-->' "$srt")" -eq 1 ] || { echo "FAIL: expected one cue"; exit 1; }
grep -Eq '^00:00:0[0-2],[0-9]{3} --> 00:00:0[0-2],[0-9]{3}$' "$srt" || { echo "FAIL: cue times"; exit 1; }
grep -iq '^go forward ten meters\.\?$' "$srt" || { echo "FAIL: cue text"; exit 1; }
grep -q "subtitles: $srt" "$out/log" || { echo "FAIL: demo did not say where the SRT went"; exit 1; }
[ -s "$out/goforward.captioned.mp4" ] || { echo "FAIL: no captioned video"; exit 1; }
grep -q "final    Go forward ten meters." "$out/log" || { echo "FAIL: no live final caption"; exit 1; }
echo "PASS"
