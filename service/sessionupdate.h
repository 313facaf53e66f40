// SPDX-License-Identifier: LGPL-2.1-or-later
/* The session configuration of the local service as JSON, with no I/O: a client's
 * session.update checked and applied to it (docs/protocol.md §2.1), and the session object that
 * session.created and session.updated carry back (docs/protocol.md §3.2, §3.3). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <optional>
#include <string>

namespace qwenasr::local {

/* The documented server VAD defaults, which an omitted knob takes. */
constexpr double kDefaultVadThreshold = 0.2;
constexpr gint64 kDefaultSilenceDurationMs = 800;

struct SessionConfig {
  std::string input_audio_format = "pcm"; // "pcm" or "opus"
  int sample_rate = 16000;                // 16000 or 8000
  bool vad = true;                        // server VAD; false = Manual mode (turn_detection null)
  double threshold = kDefaultVadThreshold;
  gint64 silence_duration_ms = kDefaultSilenceDurationMs;
  bool transcription = false; // input_audio_transcription is an object (not null)
  std::optional<std::string> language;
  std::optional<std::string> corpus_text;
};

/* A client error, reported with an `error` event of type invalid_request_error; the connection
 * stays open (docs/protocol.md §6). */
struct ClientError {
  std::string code;
  std::string message;
  std::optional<std::string> param; // the offending field, e.g. "session.sample_rate"
};

/* "invalid_type" error for `param`, naming the expected and the received JSON kind. */
ClientError type_error(const std::string &param, const char *expected, JsonNode *node);

/* Applies the session.update event `root` to `cfg`, all or nothing: on an error `cfg` is left as
 * it was. Absent or null members leave a setting alone, except that an explicit null
 * turn_detection selects Manual mode and an explicit null input_audio_transcription clears it;
 * a turn_detection or input_audio_transcription object replaces the previous one whole (omitted
 * VAD knobs take the defaults above). Unknown members are ignored. Values out of the documented
 * ranges are errors: input_audio_format pcm/opus, sample_rate 16000/8000 (800.0 counts as an
 * integer), threshold -1..1, silence_duration_ms 200..6000, one of the 27 language codes. */
std::optional<ClientError> apply_session_update(JsonObject *root, SessionConfig &cfg);

/* The session object of session.created (with_rate false) and session.updated (with_rate true:
 * then "sample_rate" is added, which the real service may not echo; handy for clients). */
std::string session_object_json(const SessionConfig &cfg, const std::string &id,
                                const std::string &model, bool with_rate);

} // namespace qwenasr::local
