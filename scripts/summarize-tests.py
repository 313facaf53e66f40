#!/usr/bin/env python3
"""Prints one closing line, 'N passed, N failed', counting the individual gst-check cases
(from libcheck's 'Checks: N, Failures: F, Errors: E' lines) of every meson test run."""
import json
import re
import sys

log = sys.argv[1]
passed = failed = 0
check_line = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
with open(log, encoding="utf-8") as f:
    for line in f:
        entry = json.loads(line)
        counts = check_line.findall(entry.get("stdout", "") or "")
        if counts:
            checks, failures, errors = (int(x) for x in counts[-1])
            passed += checks - failures - errors
            failed += failures + errors
        elif entry.get("result") in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif entry.get("result") != "SKIP":
            failed += 1
print(f"{passed} passed, {failed} failed")
