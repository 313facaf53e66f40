#!/usr/bin/env python3
"""Prints one closing line, 'N passed, N failed', over the given meson testlog.json files,
counting the individual gst-check cases (libcheck's 'Checks: N, Failures: F, Errors: E')
of each test program, and whole programs for anything else."""
import json
import re
import sys

CHECK_LINE = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")


def count(entry):
    counts = CHECK_LINE.findall(entry.get("stdout") or "")
    if counts:
        checks, failures, errors = (int(x) for x in counts[-1])
        return checks - failures - errors, failures + errors
    if entry.get("result") == "SKIP":
        return 0, 0
    return (1, 0) if entry.get("result") in ("OK", "EXPECTEDFAIL") else (0, 1)


passed = failed = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as log:
        for line in log:
            p, f = count(json.loads(line))
            passed += p
            failed += f
print(f"{passed} passed, {failed} failed")
