#!/usr/bin/env bash
# The whole suite on a fresh Debian 12 machine: installs what is missing, configures, builds
# and runs every test: unit, element, reliability (faults), pipeline and secrets tests; the
# unit and element tests again under valgrind and under AddressSanitizer; the soak test; and
# the event-parser fuzzer for a bounded time. Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
asan_dir=${build_dir}-asan
fuzz_seconds=${FUZZ_SECONDS:-60}

./scripts/install-deps.sh

setup() { # DIR [OPTIONS...]
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" -Dtests=enabled "$@"
  else
    meson setup "$dir" -Dtests=enabled "$@"
  fi
  ninja -C "$dir"
}

status=0
logs=()
run() { # NAME DIR [MESON TEST OPTIONS...]
  local name=$1 dir=$2
  shift 2
  echo "=== $name"
  meson test -C "$dir" --print-errorlogs --num-processes 2 --logbase "$name" "$@" || status=1
  # With --setup, meson names the log NAME-SETUP.json.
  local log
  log=$(ls "$dir/meson-logs/$name".json "$dir/meson-logs/$name"-*.json 2>/dev/null | head -n 1 || true)
  logs+=("${log:-$dir/meson-logs/$name.json}")
}

setup "$build_dir"
run tests "$build_dir" --no-suite soak
run valgrind "$build_dir" --setup valgrind --suite unit --suite elements
run soak "$build_dir" --suite soak

setup "$asan_dir" -Db_sanitize=address -Dbuildtype=debug
run asan "$asan_dir" --suite unit --suite elements

echo "=== fuzz"
fuzz_result=passed
scripts/fuzz.sh "$fuzz_seconds" || { fuzz_result=failed; status=1; }

python3 scripts/summarize-tests.py --extra "fuzz:$fuzz_result" "${logs[@]}"
exit $status
