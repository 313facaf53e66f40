/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus messages and errors (see messages.h). */
#include "messages.h"

#include <cstring>

namespace qwenasr {

/* "h:mm:ss.mmm" of an input time, for messages people read. */
std::string time_text(GstClockTime time) {
  if (!GST_CLOCK_TIME_IS_VALID(time))
    return "?";
  gchar *text = g_strdup_printf("%" GST_TIME_FORMAT, GST_TIME_ARGS(time));
  std::string result(text, strlen(text) - 6); /* drop the sub-millisecond digits */
  g_free(text);
  return result;
}

static void post_element_message(GstElement *element, GstStructure *s) {
  gst_element_post_message(element, gst_message_new_element(GST_OBJECT(element), s));
}

void post_session_message(GstElement *element, const char *state, const std::string &session_id) {
  post_element_message(element,
                       gst_structure_new("qwenasr/session", "state", G_TYPE_STRING, state,
                                         "session-id", G_TYPE_STRING, session_id.c_str(), nullptr));
}

void post_reconnecting_message(GstElement *element, const std::string &session_id,
                               const ClientError &error, guint attempt, guint delay_ms) {
  post_element_message(element,
                       gst_structure_new("qwenasr/session", "state", G_TYPE_STRING, "reconnecting",
                                         "session-id", G_TYPE_STRING, session_id.c_str(), "attempt",
                                         G_TYPE_UINT, attempt, "delay", G_TYPE_UINT64,
                                         static_cast<guint64>(delay_ms) * GST_MSECOND, "reason",
                                         G_TYPE_STRING, error.detail.c_str(), nullptr));
}

void post_speech_message(GstElement *element, const char *name, const std::string &item_id,
                         GstClockTime time) {
  post_element_message(element, gst_structure_new(name, "item-id", G_TYPE_STRING, item_id.c_str(),
                                                  "time", G_TYPE_UINT64, time, nullptr));
}

void post_transcript_message(GstElement *element, const Transcript &t) {
  post_element_message(
      element,
      gst_structure_new("qwenasr/transcript", "text", G_TYPE_STRING, t.text.c_str(), "stable-text",
                        G_TYPE_STRING, t.stable_text.c_str(), "final", G_TYPE_BOOLEAN, t.final,
                        "item-id", G_TYPE_STRING, t.item_id.c_str(), "language", G_TYPE_STRING,
                        t.language.c_str(), "emotion", G_TYPE_STRING, t.emotion.c_str(),
                        "start-time", G_TYPE_UINT64, t.start, "end-time", G_TYPE_UINT64, t.end,
                        "session-id", G_TYPE_STRING, t.session_id.c_str(), nullptr));
}

void post_client_error(GstElement *element, const ClientError &error, const Settings &settings) {
  const char *host = error.host.c_str();
/* The HTTP status rides along as a details field for applications that branch on it. */
#define DETAILS ("http-status-code", G_TYPE_UINT, error.http_status, NULL)
  switch (error.kind) {
  case ClientErrorKind::Unauthorized:
    GST_ELEMENT_ERROR_WITH_DETAILS(
        element, RESOURCE, NOT_AUTHORIZED,
        ("The service at %s (%s) rejected the API key (HTTP %u). Check the api-key "
         "property or DASHSCOPE_API_KEY: keys only work in the region that issued them.",
         host, settings.region_name(), error.http_status),
        ("%s: %s", host, error.detail.c_str()), DETAILS);
    break;
  case ClientErrorKind::Handshake:
    GST_ELEMENT_ERROR_WITH_DETAILS(
        element, RESOURCE, OPEN_READ_WRITE,
        ("The service at %s refused the connection with HTTP %u.", host, error.http_status),
        ("%s", error.detail.c_str()), DETAILS);
    break;
  case ClientErrorKind::Connect:
    /* GIO's messages usually name the host already ("Could not connect to HOST: ..."). */
    if (error.detail.find(error.host) != std::string::npos)
      GST_ELEMENT_ERROR_WITH_DETAILS(element, RESOURCE, OPEN_READ_WRITE,
                                     ("%s.", error.detail.c_str()), (nullptr), DETAILS);
    else
      GST_ELEMENT_ERROR_WITH_DETAILS(element, RESOURCE, OPEN_READ_WRITE,
                                     ("Could not connect to %s: %s.", host, error.detail.c_str()),
                                     (nullptr), DETAILS);
    break;
  case ClientErrorKind::Timeout:
    GST_ELEMENT_ERROR_WITH_DETAILS(element, RESOURCE, OPEN_READ_WRITE,
                                   ("No session with %s within connect-timeout (%u ms): %s.", host,
                                    settings.connect_timeout_ms, error.detail.c_str()),
                                   (nullptr), DETAILS);
    break;
  case ClientErrorKind::Rejected:
    GST_ELEMENT_ERROR_WITH_DETAILS(
        element, RESOURCE, SETTINGS,
        ("The service rejected the session configuration: %s%s%s", error.service.message.c_str(),
         error.service.param.empty() ? "" : " (parameter ",
         error.service.param.empty() ? "" : (error.service.param + ")").c_str()),
        ("type %s, code %s", error.service.type.c_str(), error.service.code.c_str()), DETAILS);
    break;
  case ClientErrorKind::Service:
    GST_ELEMENT_ERROR_WITH_DETAILS(
        element, RESOURCE, FAILED,
        ("The service reported an internal error: %s", error.service.message.c_str()),
        ("code %s", error.service.code.c_str()), DETAILS);
    break;
  case ClientErrorKind::Closed:
    GST_ELEMENT_ERROR_WITH_DETAILS(
        element, RESOURCE, WRITE,
        ("The service at %s closed the connection before the session finished (%s).", host,
         error.detail.c_str()),
        (nullptr), DETAILS);
    break;
  }
#undef DETAILS
}

void post_never_established(GstElement *element, const std::string &host, const std::string &cause,
                            const Settings &settings) {
  std::string why = cause.empty() ? "no answer to the WebSocket handshake" : cause;
  if (!why.empty() && why.back() == '.')
    why.pop_back(); /* GIO's messages end with one; ours follows */
  GST_ELEMENT_ERROR(element, RESOURCE, OPEN_READ_WRITE,
                    ("No session with the service at %s was ever established, so no audio was "
                     "transcribed: %s.%s",
                     host.c_str(), why.c_str(),
                     settings.endpoint().rfind("wss://", 0) == 0
                         ? " Check that the server speaks TLS (wss://), the proxy and the host."
                         : " Check the url, the proxy and the host."),
                    ("within finish-timeout + connect-timeout (%u + %u ms)",
                     settings.finish_timeout_ms, settings.connect_timeout_ms));
}

void post_lost_utterances(GstElement *element,
                          const std::vector<std::pair<GstClockTime, GstClockTime>> &spans) {
  if (spans.empty())
    return;
  std::string text;
  for (const auto &span : spans)
    text += (text.empty() ? "" : ", ") + time_text(span.first) + " - " + time_text(span.second);
  GST_ELEMENT_WARNING(element, STREAM, DECODE,
                      ("The service sent no transcript for %" G_GSIZE_FORMAT
                       " utterance(s) before the session ended: %s. That audio is "
                       "untranscribed.",
                       spans.size(), text.c_str()),
                      ("utterances started or committed without a final"));
}

} // namespace qwenasr
