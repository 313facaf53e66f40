#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turns `gst-launch-1.0 -m` output into readable live captions.

Reads gst-launch's message dump on stdin and prints one line per qwenasr/transcript message as
soon as it arrives:

    [00:00:00.020 → …           ] partial  thirty three four
    [00:00:00.020 → 00:00:04.300] final    Thirty three four or six ninety two.

Error and warning lines from gst-launch are passed through; everything else is dropped.
"""
import re
import sys

NONE = 18446744073709551615  # GST_CLOCK_TIME_NONE
FIELD = r'{}=\((?:string|boolean|guint64)\)("(?:[^"\\]|\\.)*"|[^,;]*)'


def field(line, name):
    m = re.search(FIELD.format(re.escape(name)), line)
    if not m:
        return None
    v = m.group(1)
    if v.startswith('"'):
        v = v[1:-1]
    # GstStructure serialisation escapes spaces and specials with a backslash.
    return re.sub(r"\\(.)", r"\1", v)


def clock(ns):
    if ns is None or int(ns) == NONE:
        return "…".ljust(12)
    ms = int(ns) // 1_000_000
    return "%02d:%02d:%02d.%03d" % (ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000)


def main():
    finals = 0
    for line in sys.stdin:
        if "qwenasr/transcript" in line:
            text = field(line, "text") or ""
            final = field(line, "final") == "true"
            finals += final
            print("[%s → %s] %-8s %s" % (clock(field(line, "start-time")),
                                         clock(field(line, "end-time")),
                                         "final" if final else "partial", text), flush=True)
        elif re.search(r"\b(ERROR|WARNING)\b", line):
            print(line.rstrip("\n"), file=sys.stderr, flush=True)
    print("(%d final caption%s)" % (finals, "" if finals == 1 else "s"), flush=True)


if __name__ == "__main__":
    main()
