/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Says once, plainly, what the elements take when upstream offers audio they cannot take. */
#include "capshint.h"

#include <atomic>

namespace qwenasr {

namespace {

struct Watch {
  GstElement *element; /* not reffed: the pad, and so the probe, dies with it */
  std::atomic<bool> said{false};
};

/* Caps upstream has settled on (a CAPS event) fail the stream: an ERROR, posted before the
 * upstream element's generic not-negotiated one, so that it is the error an application (and
 * gst-launch-1.0, which prints errors as they are posted and may quit before it has printed
 * an earlier warning) shows first. Caps only asked about may still be changed: a WARNING. */
void say(Watch *watch, GstPad *pad, GstCaps *offered, bool settled) {
  if (watch->said.exchange(true))
    return;
  gchar *caps = gst_caps_to_string(offered);
  if (settled)
    GST_ELEMENT_ERROR(watch->element, CORE, NEGOTIATION,
                      ("%s %s.", GST_ELEMENT_NAME(watch->element), kCapsHint),
                      ("%s:%s was offered %s", GST_DEBUG_PAD_NAME(pad), caps));
  else
    GST_ELEMENT_WARNING(watch->element, STREAM, FORMAT,
                        ("%s %s.", GST_ELEMENT_NAME(watch->element), kCapsHint),
                        ("%s:%s was offered %s", GST_DEBUG_PAD_NAME(pad), caps));
  g_free(caps);
}

/* Caps the pad can never take, whatever else happens: nothing in its template matches. */
bool outside_template(GstPad *pad, GstCaps *caps) {
  GstCaps *templ = gst_pad_get_pad_template_caps(pad);
  const bool outside =
      !gst_caps_is_empty(caps) && !gst_caps_is_any(caps) && !gst_caps_can_intersect(caps, templ);
  gst_caps_unref(templ);
  return outside;
}

GstPadProbeReturn probe(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *watch = static_cast<Watch *>(data);
  if (watch->said)
    return GST_PAD_PROBE_OK;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      GstCaps *caps = nullptr;
      gst_event_parse_caps(event, &caps);
      if (caps && outside_template(pad, caps))
        say(watch, pad, caps, true);
    }
  } else if ((info->type & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) &&
             (info->type & GST_PAD_PROBE_TYPE_PULL)) {
    /* After the query was answered: upstream asked "can you take any of these?" and the
     * answer was nothing (e.g. audioconvert alone in front of a 44.1 kHz source). */
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS) {
      /* "Can you take exactly these?", answered no: what a parser asks before its caps. */
      GstCaps *caps = nullptr;
      gboolean accepted = TRUE;
      gst_query_parse_accept_caps(query, &caps);
      gst_query_parse_accept_caps_result(query, &accepted);
      if (caps && !accepted && outside_template(pad, caps))
        say(watch, pad, caps, false);
    } else if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS) {
      GstCaps *filter = nullptr, *result = nullptr;
      gst_query_parse_caps(query, &filter);
      gst_query_parse_caps_result(query, &result);
      if (filter && result && gst_caps_is_empty(result) && outside_template(pad, filter))
        say(watch, pad, filter, false);
    }
  }
  return GST_PAD_PROBE_OK;
}

} // namespace

void watch_sink_caps(GstElement *element, GstPad *sinkpad) {
  auto *watch = new Watch;
  watch->element = element;
  gst_pad_add_probe(sinkpad,
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                                 GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
                    probe, watch, [](gpointer data) { delete static_cast<Watch *>(data); });
}

} // namespace qwenasr
