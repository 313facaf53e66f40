#!/usr/bin/env bash
# The whole suite on a fresh Debian 12 machine: installs what is missing, configures,
# builds and runs every test. Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

./scripts/install-deps.sh

if [ -f "$build_dir/build.ninja" ]; then
  meson setup --reconfigure "$build_dir" -Dtests=enabled
else
  meson setup "$build_dir" -Dtests=enabled
fi
ninja -C "$build_dir"
status=0
meson test -C "$build_dir" --print-errorlogs --num-processes 2 || status=$?
# The unit and element tests again under valgrind memcheck: leaks and memory errors fail them.
meson test -C "$build_dir" --setup valgrind --suite unit --suite elements --print-errorlogs \
  --num-processes 2 || status=$?
python3 scripts/summarize-tests.py "$build_dir/meson-logs/testlog.json" \
  "$build_dir/meson-logs/testlog-valgrind.json"
exit $status
