#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scripts/demo.sh with the build the suite runs in, on pocketsphinx-testdata's goforward.raw:
#   audio  the recording itself: one SRT cue, the caption printed once in the readable form,
#          a summary, and an MP4 that plays everywhere (H.264 4:2:0 8-bit + AAC)
#   video  the recording inside a 322x242 Matroska video: the MP4 keeps that picture size
#          and has the sound
#   odd    the same at 321x241: the MP4 is 320x240 (H.264 4:2:0 needs even sizes)
# The MP4s are checked with gst-discoverer-1.0 (gstreamer1.0-plugins-base-apps), a tool a
# user has. Usage: test_demo.sh SOURCE_ROOT BUILD_ROOT audio|video|odd. Exits 77 (meson: SKIP)
# without PocketSphinx.
set -euo pipefail
src=$1
build=$2
mode=$3
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
fail() {
  echo "FAIL: $*"
  exit 1
}

# The MP4's streams as gst-discoverer-1.0 sees them: every line must be found.
check_mp4() { # FILE WIDTH HEIGHT
  local info
  info=$(gst-discoverer-1.0 -v "$1") || fail "gst-discoverer-1.0 cannot read $1"
  echo "--- gst-discoverer-1.0 -v $1 (streams)"
  grep -E '^ *(video|audio) #' <<<"$info"
  grep -q 'video/x-h264.*chroma-format=(string)4:2:0' <<<"$info" || fail "video is not H.264 4:2:0"
  grep -q 'video/x-h264.*bit-depth-luma=(uint)8' <<<"$info" || fail "video is not 8-bit"
  grep -q "video/x-h264.*width=(int)$2, height=(int)$3" <<<"$info" || fail "picture is not $2x$3"
  grep -q 'audio/mpeg, mpegversion=(int)4' <<<"$info" || fail "no AAC sound track"
}

case "$mode" in
audio) input=$clip ;;
video | odd)
  # 3.2 s of test picture with the recording as its sound.
  size="width=322,height=242"
  [ "$mode" = odd ] && size="width=321,height=241"
  input="$out/in/talk.mkv"
  mkdir -p "$out/in"
  gst-launch-1.0 -q videotestsrc pattern=ball num-buffers=80 ! \
    video/x-raw,$size,framerate=25/1 ! x264enc speed-preset=ultrafast ! \
    matroskamux name=m ! filesink location="$input" \
    filesrc location="$clip" ! rawaudioparse format=pcm pcm-format=s16le sample-rate=16000 \
    num-channels=1 ! audioconvert ! m.
  ;;
*) fail "mode must be audio, video or odd" ;;
esac

# Local service (no key), at its default pace, no install or build: this build is the one.
env -u DASHSCOPE_API_KEY -u DEMO_PACE BUILD_DIR="$build" OUT_DIR="$out" \
  "$src/scripts/demo.sh" --no-setup "$input" | tee "$out/log"

stem=$(basename "${input%.*}")
srt="$(dirname "$input")/$stem.srt"
[ "$mode" = audio ] && srt="$out/$stem.srt"
mp4="${srt%.srt}.captioned.mp4"
echo "--- $srt"
cat "$srt"
# Exactly one cue: "1", a time line inside the 2.8 s clip, and the words (case and full stop
# as the engine writes them are not checked).
[ "$(grep -c -- '-->' "$srt")" -eq 1 ] || fail "expected one cue"
grep -Eq '^00:00:0[0-2],[0-9]{3} --> 00:00:0[0-2],[0-9]{3}$' "$srt" || fail "cue times"
grep -iq '^go forward ten meters\.\?$' "$srt" || fail "cue text"
# Printed once, readable: [00:00.50 → 00:02.38] Go forward ten meters.
[ "$(grep -c 'Go forward ten meters' "$out/log")" -eq 1 ] || fail "the caption is not printed once"
grep -Eq '^\[00:0[0-2]\.[0-9]{2} → 00:0[0-2]\.[0-9]{2}\] Go forward ten meters\.$' "$out/log" ||
  fail "no readable caption line"
grep -q "subtitles: $srt" "$out/log" || fail "the summary does not say where the SRT went"
grep -q "video: *$mp4" "$out/log" || fail "the summary does not say where the MP4 went"
grep -Eq "^$input: [0-9]+\.[0-9] s of audio, 1 caption\(s\), [0-9]+s$" "$out/log" ||
  fail "no summary line for the input"
grep -Eq '^1 input\(s\), [0-9]+\.[0-9] s of audio, 1 caption\(s\), [0-9]+s in all$' "$out/log" ||
  fail "no closing summary line"
case "$mode" in
audio) check_mp4 "$mp4" 640 360 ;;
video) check_mp4 "$mp4" 322 242 ;;
odd) check_mp4 "$mp4" 320 240 ;;
esac
echo "PASS"
