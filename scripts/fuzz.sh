#!/usr/bin/env bash
# Fuzzes the server-event parser, the client's WebSocket layer and the local service's Ogg-Opus
# input with libFuzzer (clang, Debian's libclang-rt) for a bounded time, starting from
# tests/fuzz/corpus*. Usage: scripts/fuzz.sh [SECONDS] (default 60).
# New inputs go to a scratch directory; a crash leaves its reproducer in the work directory
# and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fuzz TARGET SECONDS CORPUS_DIR [MAX_LEN]: runs one libFuzzer binary built into $work.
fuzz() {
  local target=$1 time=$2 corpus=$3 max_len=$4
  mkdir -p "$work/$target-corpus"
  cp "$corpus"/* "$work/$target-corpus/"
  # Leaks inside json-glib/GLib type registration are not the parser's; crashes and UB are.
  (cd "$work" && ASAN_OPTIONS=detect_leaks=0 "./$target" -max_total_time="$time" \
    -max_len="$max_len" -print_final_stats=1 "$target-corpus" 2>&1 | tail -n 12)
  echo "fuzz: $target: no crash in ${time} s"
}

flags=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
clang++ "${flags[@]}" -I gst/qwenasr gst/qwenasr/asrprotocol.cpp tests/fuzz/fuzz_server_events.cpp \
  $(pkg-config --cflags --libs json-glib-1.0 glib-2.0 gobject-2.0) -o "$work/fuzz_server_events"
# The client's WebSocket layer (handshake answer, frames) gets a third of the time.
clang++ "${flags[@]}" -I gst/qwenasr gst/qwenasr/wsframe.cpp gst/qwenasr/wshandshake.cpp \
  tests/fuzz/fuzz_ws_stream.cpp $(pkg-config --cflags --libs glib-2.0) -o "$work/fuzz_ws_stream"
# The service's Ogg-Opus input gets a third of the time: libogg does most of the parsing.
clang++ "${flags[@]}" -I service service/audioinput.cpp tests/fuzz/fuzz_ogg_opus_input.cpp \
  $(pkg-config --cflags --libs opus ogg) -o "$work/fuzz_ogg_opus_input"

fuzz fuzz_server_events "$seconds" tests/fuzz/corpus 8192
fuzz fuzz_ws_stream $((seconds / 3 + 1)) tests/fuzz/corpus-ws 70000
fuzz fuzz_ogg_opus_input $((seconds / 3 + 1)) tests/fuzz/corpus-ogg 4096
