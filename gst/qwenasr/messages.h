/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus messages, warnings and errors both elements post, built from plain values: the
 * element messages' structures, and the mapping of client failures to one actionable error. */
#pragma once

#include <gst/gst.h>

#include <string>
#include <utility>
#include <vector>

#include "asrclient.h"
#include "settings.h"

namespace qwenasr {

/* One transcript result, with times on the input's stream-time timeline. */
struct Transcript {
  std::string item_id;
  std::string text;        /* final transcript, or the preview text + stash */
  std::string stable_text; /* the part the service will not change any more */
  std::string language;
  std::string emotion;
  std::string session_id;
  bool final = false;
  GstClockTime start = GST_CLOCK_TIME_NONE;
  GstClockTime end = GST_CLOCK_TIME_NONE;
};

/* "h:mm:ss.mmm" of an input time ("?" for NONE), for messages people read. */
std::string time_text(GstClockTime time);

/* Element messages (see docs/qwenasrsink.md, Bus messages). */
void post_session_message(GstElement *element, const char *state, const std::string &session_id);
void post_reconnecting_message(GstElement *element, const std::string &session_id,
                               const ClientError &error, guint attempt, guint delay_ms);
void post_speech_message(GstElement *element, const char *name, const std::string &item_id,
                         GstClockTime time);
void post_transcript_message(GstElement *element, const Transcript &transcript);

/* The one ERROR for a session that cannot go on: cause, host and what to do. */
void post_client_error(GstElement *element, const ClientError &error, const Settings &settings);
/* The ERROR for a stream that ended before any session was established. */
void post_never_established(GstElement *element, const std::string &host, const std::string &cause,
                            const Settings &settings);
/* One WARNING naming the spans (input stream time) of utterances that got no final. */
void post_lost_utterances(GstElement *element,
                          const std::vector<std::pair<GstClockTime, GstClockTime>> &spans);

} // namespace qwenasr
