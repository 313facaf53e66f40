/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure JSON encode/decode of the Qwen3-ASR-Flash-Realtime events (see docs/protocol.md).
 * No I/O and no GStreamer state: every function here is testable on strings alone. */
#pragma once

#include <glib.h>

#include <cstdint>
#include <optional>
#include <string>

namespace qwenasr {

enum class TurnDetection { ServerVad, Manual };

/* What session.update configures; the element fills it from its properties and caps. */
struct SessionConfig {
  std::string audio_format = "pcm";
  int sample_rate = 16000;
  std::string language;    /* empty: automatic language identification (field omitted) */
  std::string corpus_text; /* empty: no context biasing (field omitted) */
  TurnDetection turn_detection = TurnDetection::ServerVad;
  double vad_threshold = 0.2;
  int vad_silence_ms = 800;
};

std::string encode_session_update(const SessionConfig &config, const std::string &event_id);
/* input_audio_buffer.append of `size` bytes of encoded audio, into `out` (replaced; its
 * capacity is kept, so a buffer reused per session allocates nothing per append). */
void encode_append(const guint8 *audio, gsize size, const std::string &event_id, std::string *out);
std::string encode_append(const guint8 *audio, gsize size, const std::string &event_id);
std::string encode_commit(const std::string &event_id);
std::string encode_finish(const std::string &event_id);

enum class ServerEventType {
  Unknown,
  Error,
  SessionCreated,
  SessionUpdated,
  SessionFinished,
  SpeechStarted,
  SpeechStopped,
  Committed,
  ItemCreated,
  TranscriptionText,
  TranscriptionCompleted,
  TranscriptionFailed,
};

const char *server_event_type_name(ServerEventType type);

struct ServiceError {
  std::string type; /* e.g. invalid_request_error, server_error */
  std::string code; /* e.g. invalid_value */
  std::string message;
  std::string param;    /* e.g. session.sample_rate */
  std::string event_id; /* the client event that caused it */
};

/* One server event. Fields the event does not carry stay empty; missing or wrongly typed
 * fields are tolerated because the service's exact payloads are partly undocumented. */
struct ServerEvent {
  ServerEventType type = ServerEventType::Unknown;
  std::string type_name; /* as received, for logs and unknown events */
  std::string event_id;
  std::string session_id; /* session.created / session.updated */
  std::string item_id;    /* speech_*, committed, item.created (item.id), transcription.* */
  std::string previous_item_id;
  std::optional<gint64> audio_start_ms;
  std::optional<gint64> audio_end_ms;
  std::string text;       /* transcription.text: confirmed prefix */
  std::string stash;      /* transcription.text: provisional suffix */
  std::string transcript; /* transcription.completed */
  std::string language;
  std::string emotion;
  ServiceError error; /* error, transcription.failed */
};

/* What decode_server_event() had to repair in a frame before parsing it (a bit set). */
enum FrameRepair : unsigned {
  kRepairNone = 0,
  kRepairInvalidUtf8 = 1u << 0,   /* bytes that are not UTF-8, each replaced by U+FFFD */
  kRepairLoneSurrogate = 1u << 1, /* a \uD800-\uDFFF escape not part of a pair: \ufffd */
};
const char *frame_repair_name(FrameRepair repair);

/* Repairs `length` bytes of JSON text so a strict parser takes it: invalid UTF-8 and escapes
 * of half a UTF-16 surrogate pair become U+FFFD (the service's text is then shown with a
 * replacement character instead of the whole event being lost). Returns the repairs made (a
 * FrameRepair set); *out is only written when something was repaired. */
unsigned repair_json_text(const char *json, gsize length, std::string *out);

/* Parses one text frame, repairing it first (see repair_json_text; *repairs, if given, gets
 * the set). Returns false (with a reason in *problem) for anything that is not a JSON object
 * with a string "type", and for known events that lack what makes them usable (a transcript
 * without text, a speech event without its offset); unknown types parse as
 * ServerEventType::Unknown, and optional fields of the wrong type read as absent. */
bool decode_server_event(const char *json, gssize length, ServerEvent *event, std::string *problem,
                         unsigned *repairs = nullptr);

} // namespace qwenasr
