#!/bin/sh
# GStreamer's plugin scanner is not built with AddressSanitizer, so it cannot dlopen an ASan
# plugin ("ASan runtime does not come first"); preloading the runtime lets it. Leaks of the
# scanner itself are not ours to report.
scanner=$(pkg-config --variable=pluginscannerdir gstreamer-1.0)/gst-plugin-scanner
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 exec "$scanner" "$@"
