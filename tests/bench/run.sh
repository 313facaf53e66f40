#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds and runs the performance benchmarks (docs/performance.md), then writes
# BUILD_DIR/bench-summary.json. Not part of the test suite: nothing here passes or fails on
# a figure; the exit status is non-zero only if a benchmark could not run.
#
#   tests/bench/run.sh [BUILD_DIR]          # default BUILD_DIR: build
#
# Environment: BENCH_SCALE=0.1 shortens every run (a few minutes in all instead of ~20);
# BENCH_STREAMS=1,10,100 chooses the concurrent stream counts (default 1,10,100,300,400,500,1000);
# BENCH_ONLY="cpu_per_audio_hour wire_bytes" runs only those (earlier results are kept).
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac

if [ -f "$build/build.ninja" ]; then
  meson configure "$build" -Dtests=enabled >/dev/null
else
  meson setup "$build" "$src" -Dtests=enabled >/dev/null
fi
ninja -C "$build" >/dev/null

results=$build/tests/bench/results
all="cpu_per_audio_hour cpu_components cpu_per_audio_hour_paced wire_bytes added_latency added_latency_100_streams memory_reconnects live_100ms live_20ms concurrent_streams restream_soak"
only=${BENCH_ONLY:-}
if [ -z "$only" ]; then
  rm -rf "$results"
fi
mkdir -p "$results"

# Live streams open two threads and one socket each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs," \
  "$(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
# shellcheck disable=SC2086 # $only is a list of names
meson test -C "$build" --benchmark --suite bench --verbose --no-rebuild \
  --logbase bench $only 2>&1 | grep --line-buffered -E '^[a-z_0-9]+: ' || true
# meson test --verbose prints each benchmark's stdout; the result lines are "name: ...".
for name in ${only:-$all}; do
  if [ ! -s "$results/$name.json" ]; then
    echo "$name: no result (see $build/meson-logs/bench.txt)" >&2
    status=1
  fi
done

summary=$build/bench-summary.json
{
  printf '{"generated":"%s","source":"%s","build":"%s",' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$build"
  printf '"machine":{"cpu_model":"%s","cpus":%s,"kernel":"%s","memory_kib":%s,"loadavg_end":"%s"},' \
    "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" "$(nproc)" "$(uname -r)" \
    "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '"results":{'
  first=1
  for f in "$results"/*.json; do
    [ -e "$f" ] || continue
    [ $first = 1 ] || printf ','
    first=0
    printf '"%s":' "$(basename "$f" .json)"
    cat "$f" | tr -d '\n'
  done
  printf '}}\n'
} >"$summary"
echo "summary: $summary"
exit $status
