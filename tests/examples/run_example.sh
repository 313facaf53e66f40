#!/usr/bin/env bash
# Runs an example application (transcribe.cpp or transcribe.py) against the local service
# and checks what it prints. Usage:
#   run_example.sh SCENARIO SERVICE GST_LAUNCH EXAMPLE_COMMAND...
#   run_example.sh agree    SERVICE GST_LAUNCH CPP_EXAMPLE -- PYTHON_EXAMPLE_COMMAND...
# SCENARIO: transcribe  a WAV with four tone bursts gives four finals at the bursts' times
#           errors      wrong key (401, not retried), no key, missing file, bad arguments
#           sigint      Ctrl+C in the middle: the utterance in progress still gets its final
#           agree       both examples print the same transcripts
# A command of "none" (python3-gi or gst-launch-1.0 not found at configure time) skips.
set -euo pipefail
scenario=$1 service=$2 gst_launch=$3
shift 3
for arg in "$service" "$gst_launch" "$@"; do
  [ "$arg" != none ] || { echo "SKIP: a program is missing (python3-gi, gst-launch-1.0?)"; exit 77; }
done
for arg in "$@"; do
  if [[ $(basename -- "$arg") == python3* ]] &&
     ! "$arg" -c "import gi; gi.require_version('Gst', '1.0')" 2>/dev/null; then
    echo "SKIP: $arg cannot load PyGObject's Gst (python3-gi, gir1.2-gstreamer-1.0)"
    exit 77
  fi
done

work=$(mktemp -d)
service_pid=
example_pid=
cleanup() {
  [ -z "$example_pid" ] || kill "$example_pid" 2>/dev/null || true
  [ -z "$service_pid" ] || kill "$service_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
show() { # FILE...: a run's output, for the test log
  for f in "$@"; do echo "--- $(basename "$f")"; cat "$f"; done
  echo "---"
}

# The local service on a free port: it prints its URL once it listens.
"$service" > "$work/url" 2> "$work/service.log" &
service_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/url" ] && break
  sleep 0.05
done
url=$(head -n 1 "$work/url")
[ -n "$url" ] || fail "the local service did not start: $(cat "$work/service.log")"

# Test audio: 0.5 s tone bursts every 2 s (wave=ticks with 100 periods of 200 Hz), stereo
# 44.1 kHz so that the example's audioconvert ! audioresample have work to do. The local
# service's VAD hears each burst as one utterance.
make_wav() { # FILE SECONDS
  "$gst_launch" -q audiotestsrc wave=ticks tick-interval=2000000000 freq=200 \
    sine-periods-per-tick=100 num-buffers=$(($2 * 10)) samplesperbuffer=4410 ! \
    audio/x-raw,format=S16LE,rate=44100,channels=2 ! wavenc ! filesink location="$1"
}

# Checks the final lines "[H:MM:SS.mmm → H:MM:SS.mmm] text (en, neutral)" of FILE: COUNT of
# them, the k-th (from 0) starting near 2k s and ending after it; all but the last of
# them (LAST_OPEN=1: the last one may be cut short by EOS) ending near 2k + 0.5 s.
check_finals() { # FILE COUNT LAST_OPEN
  awk -v want="$2" -v last_open="$3" '
    function secs(t, p) { split(t, p, /[:.]/); return p[1] * 3600 + p[2] * 60 + p[3] + p[4] / 1000 }
    /^\[/ {
      if (!match($0, /^\[[0-9]+:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9] → [0-9]+:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9]\] [^ ].* \(en, [a-z]+\)$/)) {
        print "malformed final line: " $0; bad = 1; next
      }
      split(substr($0, 2, index($0, "]") - 2), t, " → ")
      start = secs(t[1]); end = secs(t[2]); burst = 2 * n
      if (start < burst - 0.25 || start > burst + 0.15 || end <= start + 0.05 || end > burst + 0.75)
        { print "implausible times in: " $0; bad = 1 }
      finals[n++] = end
    }
    END {
      if (n != want) { print "expected " want " final lines, got " n + 0; bad = 1 }
      for (i = 0; i < n - (last_open ? 1 : 0); i++)
        if (finals[i] < 2 * i + 0.25) { print "final " i " ends too early"; bad = 1 }
      exit bad
    }' "$1"
}

export DASHSCOPE_API_KEY=test-key
audio="$work/bursts.wav"

case $scenario in
transcribe)
  make_wav "$audio" 7
  status=0
  "$@" --url "$url" "$audio" > "$work/stdout" 2> "$work/stderr" || status=$?
  show "$work/stdout" "$work/stderr"
  [ "$status" -eq 0 ] || fail "exit status $status, expected 0"
  check_finals "$work/stdout" 4 0 || fail "the final transcripts are not as expected"
  grep -q '^… [^ ]' "$work/stdout" || fail "no partial transcripts printed"
  grep -q '^session: configured sess_' "$work/stderr" || fail "no 'session: configured'"
  grep -q '^session: finished sess_' "$work/stderr" || fail "no 'session: finished'"
  ! grep -qE '^(Error|Warning)' "$work/stderr" || fail "errors or warnings printed"
  ;;

errors)
  make_wav "$audio" 3
  run() { # NAME EXPECTED_STATUS EXPECTED_STDERR KEY ARGS...
    local name=$1 want=$2 text=$3 key=$4 status=0
    shift 4
    DASHSCOPE_API_KEY=$key "$@" > "$work/stdout" 2> "$work/stderr" || status=$?
    echo "=== $name"
    show "$work/stdout" "$work/stderr"
    [ "$status" -eq "$want" ] || fail "$name: exit status $status, expected $want"
    grep -qF -- "$text" "$work/stderr" || fail "$name: no '$text' on stderr"
    ! grep -q '^\[' "$work/stdout" || fail "$name: transcripts printed"
    if [ -n "$key" ] && grep -qF -- "$key" "$work/stdout" "$work/stderr"; then
      fail "$name: the API key was printed"
    fi
  }
  # 401 is not retried (max-reconnects does not apply), so this fails at once.
  run "wrong key" 1 "rejected the API key (HTTP 401)" sk-wrong-example-key \
    "$@" --url "$url" "$audio"
  grep -qF "HTTP status: 401" "$work/stderr" || fail "wrong key: no 'HTTP status: 401'"
  [ "$(grep -c '^Error' "$work/stderr")" -eq 1 ] || fail "wrong key: not exactly one error"
  run "no key" 1 "No API key" "" "$@" --url "$url" "$audio"
  run "missing file" 1 "Error from src:" test-key "$@" --url "$url" "$work/no-such-file.wav"
  run "no file argument" 2 "sage:" test-key "$@" --url "$url"
  ;;

sigint)
  # Real-time speed (10 s of audio), Ctrl+C once the first final and a partial of the
  # second burst (at 2 s) are out: EOS ends the session, the service completes the open
  # utterance, and the example exits 0 after two finals, long before the fourth burst.
  make_wav "$audio" 10
  "$@" --realtime --url "$url" "$audio" > "$work/stdout" 2> "$work/stderr" &
  example_pid=$!
  for _ in $(seq 1 200); do
    awk '/^\[/ { f = 1 } f && /^… / { found = 1 } END { exit !found }' "$work/stdout" && break
    sleep 0.05
  done
  kill -INT "$example_pid"
  status=0
  wait "$example_pid" || status=$?
  example_pid=
  show "$work/stdout" "$work/stderr"
  [ "$status" -eq 0 ] || fail "exit status $status, expected 0"
  grep -q '^Interrupted' "$work/stderr" || fail "the interruption was not reported"
  grep -q '^session: finished sess_' "$work/stderr" || fail "no 'session: finished'"
  check_finals "$work/stdout" 2 1 || fail "not the two finals expected"
  ;;

agree)
  make_wav "$audio" 7
  cpp=$1
  shift 2 # CPP_EXAMPLE --
  "$cpp" --url "$url" "$audio" > "$work/cpp.out" 2> "$work/cpp.err"
  "$@" --url "$url" "$audio" > "$work/py.out" 2> "$work/py.err"
  show "$work/cpp.out" "$work/py.out"
  check_finals "$work/cpp.out" 4 0 || fail "unexpected finals"
  diff -u "$work/cpp.out" "$work/py.out" || fail "the examples print different transcripts"
  ;;

*)
  fail "unknown scenario $scenario"
  ;;
esac
echo "ok: $scenario"
