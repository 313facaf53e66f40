/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Says once, plainly, what the elements take when upstream offers audio they cannot take. */
#pragma once

#include <gst/gst.h>

namespace qwenasr {

/* The sentence both elements post (once per element) before GStreamer's own generic
 * not-negotiated error: an ERROR when upstream sent caps the element cannot take, a WARNING
 * when upstream only asked. */
constexpr const char *kCapsHint = "takes S16LE mono audio at 8 or 16 kHz; put "
                                  "`audioconvert ! audioresample` in front of it";

/* Watches `sinkpad` of `element`: a CAPS event it cannot take (an ERROR), or an ACCEPT_CAPS or
 * CAPS query that nothing of its template matches (a WARNING), posts the hint with the offered
 * caps as debug text. */
void watch_sink_caps(GstElement *element, GstPad *sinkpad);

} // namespace qwenasr
