#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turns `gst-launch-1.0 -m` output into readable captions, each printed once.

Reads gst-launch's message dump on stdin and prints one line per final transcript
(qwenasr/transcript with final=true) as soon as it arrives, with its times in the input:

    [00:00.02 → 00:04.30] Thirty three four or six ninety two.

On a terminal the partial transcript of the utterance being spoken is shown meanwhile on a
line of its own that the final replaces. With --srt FILE the finals are also written as SubRip
cues. Error and warning lines from gst-launch go to stderr; everything else is dropped.

    gst-launch-1.0 -m ... qwenasrsink ... | scripts/demo-captions.py [--srt FILE]
"""
import argparse
import re
import sys

NONE = 18446744073709551615  # GST_CLOCK_TIME_NONE
FIELD = r'(?<![\w-]){}=\((?:string|boolean|guint64)\)("(?:[^"\\]|\\.)*"|[^,;]*)'


def field(line, name):
    m = re.search(FIELD.format(re.escape(name)), line)
    if not m:
        return None
    v = m.group(1)
    if v.startswith('"'):
        v = v[1:-1]
    # GstStructure serialisation escapes spaces and specials with a backslash.
    return re.sub(r"\\(.)", r"\1", v)


def nanoseconds(value):
    if value is None or not value.isdigit() or int(value) == NONE:
        return None
    return int(value)


def clock(ns):
    """00:01.20, or 1:02:03.40 past an hour; … when unknown."""
    if ns is None:
        return "…"
    cs = ns // 10_000_000
    h, m, s, c = cs // 360_000, cs // 6000 % 60, cs // 100 % 60, cs % 100
    return ("%d:%02d:%02d.%02d" % (h, m, s, c)) if h else ("%02d:%02d.%02d" % (m, s, c))


def srt_clock(ns):
    ms = (ns or 0) // 1_000_000
    return "%02d:%02d:%02d,%03d" % (ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--srt", help="also write the finals to this SubRip file")
    args = parser.parse_args()
    live = sys.stdout.isatty()
    srt = open(args.srt, "w", encoding="utf-8") if args.srt else None
    cues = 0
    partial_shown = ""
    for line in sys.stdin:
        if "qwenasr/transcript" in line:
            text = (field(line, "text") or "").strip()
            start = nanoseconds(field(line, "start-time"))
            end = nanoseconds(field(line, "end-time"))
            if field(line, "final") != "true":
                shown = "[%s → …] %s" % (clock(start), text)
                if live and text and shown != partial_shown:
                    sys.stdout.write("\r\033[K" + shown)
                    sys.stdout.flush()
                    partial_shown = shown
                continue
            if partial_shown:
                sys.stdout.write("\r\033[K")
                partial_shown = ""
            if not text:
                continue
            cues += 1
            print("[%s → %s] %s" % (clock(start), clock(end), text), flush=True)
            if srt:
                srt.write("%d\n%s --> %s\n%s\n\n" % (cues, srt_clock(start), srt_clock(end), text))
                srt.flush()
        elif re.search(r"\b(ERROR|WARNING)\b", line):
            if partial_shown:
                sys.stdout.write("\r\033[K")
                partial_shown = ""
            print(line.rstrip("\n"), file=sys.stderr, flush=True)
    if partial_shown:
        sys.stdout.write("\r\033[K")
    if srt:
        srt.close()


if __name__ == "__main__":
    main()
