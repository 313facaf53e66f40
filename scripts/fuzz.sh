#!/usr/bin/env bash
# Fuzzes the server-event parser with libFuzzer (clang, Debian's libclang-rt) for a bounded
# time, starting from tests/fuzz/corpus. Usage: scripts/fuzz.sh [SECONDS] (default 60).
# New inputs go to a scratch directory; a crash leaves its reproducer in the work directory
# and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I gst/qwenasr gst/qwenasr/asrprotocol.cpp tests/fuzz/fuzz_server_events.cpp \
  $(pkg-config --cflags --libs json-glib-1.0 glib-2.0 gobject-2.0) -o "$work/fuzz_server_events"

mkdir -p "$work/corpus"
cp tests/fuzz/corpus/* "$work/corpus/"
cd "$work"
# Leaks inside json-glib/GLib type registration are not the parser's; crashes and UB are.
ASAN_OPTIONS=detect_leaks=0 ./fuzz_server_events -max_total_time="$seconds" -max_len=8192 \
  -print_final_stats=1 corpus 2>&1 | tail -n 12
echo "fuzz: no crash in ${seconds} s"
