/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What qwenasrsink and qwenasr share as elements that transcribe their audio input: the sink
 * pad template, the class setup, the commit event's routing and starting the transcriber. */
#pragma once

#include <gst/gst.h>

#include "settings.h"
#include "transcriber.h"

namespace qwenasr {

/* Installs on the class the shared properties (ids from `first_shared_id`), the read-only
 * `stats` property (`stats_id`), the "sink" pad template (S16LE mono at 8 or 16 kHz, what the
 * service takes) and the shared enum types as plugin API. */
void transcribe_element_class_init(GObjectClass *gobject_class, GstElementClass *element_class,
                                   guint stats_id, guint first_shared_id);

/* Starts a session with `settings` (a copy taken under the object lock) at READY -> PAUSED;
 * on failure it has posted its error and is stopped again, so a retry starts clean. */
bool transcribe_element_start(Transcriber &transcriber, const Settings &settings);

/* On the sink pad: when `event` is the commit event, commits the audio so far (waits handled
 * by `on_pause`, may be null) and takes the event. Returns whether it was the commit event. */
bool transcribe_element_take_commit(Transcriber &transcriber, GstEvent *event,
                                    const Transcriber::PauseHandler &on_pause);

/* GstElement::send_event: applications naturally send the commit event to the element itself,
 * so it goes to `sinkpad`; every other event to the parent class's send_event. */
gboolean transcribe_element_send_event(GstElement *element, GstPad *sinkpad, GstEvent *event,
                                       GstElementClass *parent_class);

} // namespace qwenasr
