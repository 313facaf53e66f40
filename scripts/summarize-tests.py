#!/usr/bin/env python3
"""Prints one closing line, 'N passed, N failed', over the given meson test logs (JSON lines),
counting the individual gst-check cases (libcheck's 'Checks: N, Failures: F, Errors: E') of
each test program and whole programs otherwise. --extra NAME:passed|failed adds a result
that did not run under meson (the fuzzer)."""
import argparse
import json
import os
import re

CHECK_LINE = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")


def count(entry):
    counts = CHECK_LINE.findall(entry.get("stdout") or "")
    if counts:
        checks, failures, errors = (int(x) for x in counts[-1])
        return checks - failures - errors, failures + errors
    if entry.get("result") == "SKIP":
        return 0, 0
    return (1, 0) if entry.get("result") in ("OK", "EXPECTEDFAIL") else (0, 1)


parser = argparse.ArgumentParser()
parser.add_argument("--extra", action="append", default=[])
parser.add_argument("logs", nargs="*")
args = parser.parse_args()
passed = failed = 0
for path in args.logs:
    if not os.path.exists(path):
        failed += 1  # a run that wrote no log did not pass
        continue
    with open(path, encoding="utf-8") as log:
        for line in log:
            p, f = count(json.loads(line))
            passed += p
            failed += f
for extra in args.extra:
    _, result = extra.rsplit(":", 1)
    passed += result == "passed"
    failed += result != "passed"
print(f"{passed} passed, {failed} failed")
