/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON encode/decode for the realtime ASR events. Encoding uses json-glib for the rare
 * session.update and plain string building for the per-chunk append, which is the hot path. */
#include "asrprotocol.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace qwenasr {

namespace {

struct GObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
template <typename T> using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

std::string builder_to_string(JsonBuilder *builder) {
  JsonNode *root = json_builder_get_root(builder);
  gchar *text = json_to_string(root, FALSE);
  std::string result(text);
  g_free(text);
  json_node_unref(root);
  return result;
}

/* Client event ids are our own ASCII, but escape anyway so no caller can break the JSON. */
std::string simple_event(const char *type, const std::string &event_id) {
  GObjectPtr<JsonBuilder> builder(json_builder_new());
  json_builder_begin_object(builder.get());
  json_builder_set_member_name(builder.get(), "event_id");
  json_builder_add_string_value(builder.get(), event_id.c_str());
  json_builder_set_member_name(builder.get(), "type");
  json_builder_add_string_value(builder.get(), type);
  json_builder_end_object(builder.get());
  return builder_to_string(builder.get());
}

std::string member_string(JsonObject *object, const char *name) {
  if (!object || !json_object_has_member(object, name))
    return {};
  JsonNode *node = json_object_get_member(object, name);
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
    return {};
  return json_node_get_string(node);
}

std::optional<gint64> member_int(JsonObject *object, const char *name) {
  if (!object || !json_object_has_member(object, name))
    return std::nullopt;
  JsonNode *node = json_object_get_member(object, name);
  if (!JSON_NODE_HOLDS_VALUE(node))
    return std::nullopt;
  GType type = json_node_get_value_type(node);
  if (type == G_TYPE_INT64)
    return json_node_get_int(node);
  if (type == G_TYPE_DOUBLE) { /* tolerate 1200.0, but not values no offset can have */
    double value = json_node_get_double(node);
    if (!(value >= -1e15 && value <= 1e15))
      return std::nullopt;
    return static_cast<gint64>(value);
  }
  return std::nullopt;
}

bool has_string(JsonObject *object, const char *name) {
  if (!object || !json_object_has_member(object, name))
    return false;
  JsonNode *node = json_object_get_member(object, name);
  return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

JsonObject *member_object(JsonObject *object, const char *name) {
  if (!object || !json_object_has_member(object, name))
    return nullptr;
  JsonNode *node = json_object_get_member(object, name);
  return JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : nullptr;
}

struct TypeName {
  const char *name;
  ServerEventType type;
};

constexpr TypeName kTypeNames[] = {
    {"error", ServerEventType::Error},
    {"session.created", ServerEventType::SessionCreated},
    {"session.updated", ServerEventType::SessionUpdated},
    {"session.finished", ServerEventType::SessionFinished},
    {"input_audio_buffer.speech_started", ServerEventType::SpeechStarted},
    {"input_audio_buffer.speech_stopped", ServerEventType::SpeechStopped},
    {"input_audio_buffer.committed", ServerEventType::Committed},
    {"conversation.item.created", ServerEventType::ItemCreated},
    {"conversation.item.input_audio_transcription.text", ServerEventType::TranscriptionText},
    {"conversation.item.input_audio_transcription.completed",
     ServerEventType::TranscriptionCompleted},
    {"conversation.item.input_audio_transcription.failed", ServerEventType::TranscriptionFailed},
};

ServiceError parse_error(JsonObject *object) {
  ServiceError error;
  error.type = member_string(object, "type");
  error.code = member_string(object, "code");
  error.message = member_string(object, "message");
  error.param = member_string(object, "param");
  error.event_id = member_string(object, "event_id");
  return error;
}

} // namespace

const char *server_event_type_name(ServerEventType type) {
  for (const auto &entry : kTypeNames) {
    if (entry.type == type)
      return entry.name;
  }
  return "unknown";
}

std::string encode_session_update(const SessionConfig &config, const std::string &event_id) {
  GObjectPtr<JsonBuilder> builder(json_builder_new());
  JsonBuilder *b = builder.get();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "event_id");
  json_builder_add_string_value(b, event_id.c_str());
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "session.update");
  json_builder_set_member_name(b, "session");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "modalities");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, "text");
  json_builder_end_array(b);
  json_builder_set_member_name(b, "input_audio_format");
  json_builder_add_string_value(b, config.audio_format.c_str());
  json_builder_set_member_name(b, "sample_rate");
  json_builder_add_int_value(b, config.sample_rate);
  if (!config.language.empty() || !config.corpus_text.empty()) {
    json_builder_set_member_name(b, "input_audio_transcription");
    json_builder_begin_object(b);
    if (!config.language.empty()) {
      json_builder_set_member_name(b, "language");
      json_builder_add_string_value(b, config.language.c_str());
    }
    if (!config.corpus_text.empty()) {
      json_builder_set_member_name(b, "corpus");
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "text");
      json_builder_add_string_value(b, config.corpus_text.c_str());
      json_builder_end_object(b);
    }
    json_builder_end_object(b);
  }
  json_builder_set_member_name(b, "turn_detection");
  if (config.turn_detection == TurnDetection::Manual) {
    json_builder_add_null_value(b);
  } else {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "server_vad");
    json_builder_set_member_name(b, "threshold");
    json_builder_add_double_value(b, config.vad_threshold);
    json_builder_set_member_name(b, "silence_duration_ms");
    json_builder_add_int_value(b, config.vad_silence_ms);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  return builder_to_string(b);
}

void encode_append(const guint8 *audio, gsize size, const std::string &event_id, std::string *out) {
  static const char kHead[] = "{\"event_id\":\"";
  static const char kMiddle[] = "\",\"type\":\"input_audio_buffer.append\",\"audio\":\"";
  static const char kTail[] = "\"}";
  /* Base64 straight into the final string, whose capacity the caller may keep for the next
   * append: no allocation per append. */
  const gsize encoded_max = (size / 3 + 1) * 4 + 4;
  out->clear();
  out->reserve(sizeof(kHead) + event_id.size() + sizeof(kMiddle) + encoded_max + sizeof(kTail));
  out->append(kHead);
  out->append(event_id);
  out->append(kMiddle);
  const gsize prefix = out->size();
  out->resize(prefix + encoded_max);
  gint state = 0, save = 0;
  gchar *dest = &(*out)[prefix];
  gsize written = g_base64_encode_step(audio, size, FALSE, dest, &state, &save);
  written += g_base64_encode_close(FALSE, dest + written, &state, &save);
  out->resize(prefix + written);
  out->append(kTail);
}

std::string encode_append(const guint8 *audio, gsize size, const std::string &event_id) {
  std::string out;
  encode_append(audio, size, event_id, &out);
  return out;
}

std::string encode_commit(const std::string &event_id) {
  return simple_event("input_audio_buffer.commit", event_id);
}

std::string encode_finish(const std::string &event_id) {
  return simple_event("session.finish", event_id);
}

const char *frame_repair_name(FrameRepair repair) {
  switch (repair) {
  case kRepairInvalidUtf8:
    return "invalid UTF-8";
  case kRepairLoneSurrogate:
    return "an escape of half a UTF-16 surrogate pair";
  default:
    return "nothing";
  }
}

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD"; /* U+FFFD in UTF-8 */

int hex_value(char c) {
  return g_ascii_xdigit_value(c);
}

/* The code unit of a \uXXXX escape at `p` (which points at the backslash), or -1. */
long escape_unit(const char *p, const char *end) {
  if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
    return -1;
  long unit = 0;
  for (int i = 2; i < 6; i++) {
    int v = hex_value(p[i]);
    if (v < 0)
      return -1;
    unit = unit * 16 + v;
  }
  return unit;
}

bool is_high_surrogate(long unit) {
  return unit >= 0xD800 && unit <= 0xDBFF;
}

bool is_low_surrogate(long unit) {
  return unit >= 0xDC00 && unit <= 0xDFFF;
}

/* Replaces lone surrogate escapes; other escapes and bytes are copied. */
unsigned repair_escapes(const std::string &in, std::string *out) {
  unsigned repairs = kRepairNone;
  const char *p = in.data(), *end = in.data() + in.size();
  out->clear();
  out->reserve(in.size());
  while (p < end) {
    if (*p != '\\') {
      out->push_back(*p++);
      continue;
    }
    long unit = escape_unit(p, end);
    if (unit < 0 || !(is_high_surrogate(unit) || is_low_surrogate(unit))) {
      /* Any other escape: copy it whole, so an escaped backslash is not read as a start. */
      gsize n = std::min<gsize>(unit < 0 ? 2 : 6, end - p);
      out->append(p, n);
      p += n;
      continue;
    }
    if (is_high_surrogate(unit) && is_low_surrogate(escape_unit(p + 6, end))) {
      out->append(p, 12);
      p += 12;
      continue;
    }
    out->append("\\ufffd");
    p += 6;
    repairs |= kRepairLoneSurrogate;
  }
  return repairs;
}

bool has_surrogate_escape(const char *json, gsize length) {
  const char *p = json, *end = json + length;
  while (p < end) {
    p = static_cast<const char *>(memchr(p, '\\', end - p));
    if (!p)
      return false;
    long unit = escape_unit(p, end);
    if (is_high_surrogate(unit) || is_low_surrogate(unit))
      return true;
    p += unit < 0 ? 2 : 6;
  }
  return false;
}

} // namespace

unsigned repair_json_text(const char *json, gsize length, std::string *out) {
  unsigned repairs = kRepairNone;
  std::string text;
  const char *valid_end = nullptr;
  if (!g_utf8_validate_len(json, length, &valid_end)) {
    /* Each byte that does not start a valid sequence (NUL included) becomes U+FFFD. */
    const char *p = json, *end = json + length;
    while (p < end) {
      if (g_utf8_validate_len(p, end - p, &valid_end)) {
        text.append(p, end - p);
        break;
      }
      text.append(p, valid_end - p);
      text.append(kReplacement);
      p = valid_end + 1;
    }
    repairs |= kRepairInvalidUtf8;
  } else if (has_surrogate_escape(json, length)) {
    text.assign(json, length);
  } else {
    return kRepairNone; /* the common case: nothing copied */
  }
  std::string escaped;
  repairs |= repair_escapes(text, &escaped);
  *out = std::move(escaped);
  return repairs;
}

bool decode_server_event(const char *json, gssize length, ServerEvent *event, std::string *problem,
                         unsigned *repairs) {
  gsize size = length < 0 ? strlen(json) : static_cast<gsize>(length);
  std::string repaired;
  unsigned made = repair_json_text(json, size, &repaired);
  if (repairs)
    *repairs = made;
  if (made != kRepairNone) {
    json = repaired.data();
    size = repaired.size();
  }
  GObjectPtr<JsonParser> parser(json_parser_new());
  GError *error = nullptr;
  if (!json_parser_load_from_data(parser.get(), json, static_cast<gssize>(size), &error)) {
    *problem = std::string("invalid JSON: ") + error->message;
    g_error_free(error);
    return false;
  }
  JsonNode *root = json_parser_get_root(parser.get());
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    *problem = "not a JSON object";
    return false;
  }
  JsonObject *object = json_node_get_object(root);
  *event = ServerEvent();
  event->type_name = member_string(object, "type");
  if (event->type_name.empty()) {
    *problem = "no string \"type\" member";
    return false;
  }
  for (const auto &entry : kTypeNames) {
    if (event->type_name == entry.name) {
      event->type = entry.type;
      break;
    }
  }
  event->event_id = member_string(object, "event_id");
  event->item_id = member_string(object, "item_id");
  event->previous_item_id = member_string(object, "previous_item_id");
  event->audio_start_ms = member_int(object, "audio_start_ms");
  event->audio_end_ms = member_int(object, "audio_end_ms");
  event->language = member_string(object, "language");
  event->emotion = member_string(object, "emotion");

  switch (event->type) {
  case ServerEventType::SessionCreated:
  case ServerEventType::SessionUpdated:
    event->session_id = member_string(member_object(object, "session"), "id");
    break;
  case ServerEventType::ItemCreated:
    if (JsonObject *item = member_object(object, "item"))
      event->item_id = member_string(item, "id");
    break;
  case ServerEventType::TranscriptionText:
    if (!has_string(object, "text") && !has_string(object, "stash")) {
      *problem = event->type_name + " without a string text or stash";
      return false;
    }
    event->text = member_string(object, "text");
    event->stash = member_string(object, "stash");
    break;
  case ServerEventType::TranscriptionCompleted:
    if (!has_string(object, "transcript")) {
      *problem = event->type_name + " without a string transcript";
      return false;
    }
    event->transcript = member_string(object, "transcript");
    break;
  case ServerEventType::SpeechStarted:
  case ServerEventType::SpeechStopped:
    /* Without its offset the event says nothing usable; item ids stay optional. */
    if (!(event->type == ServerEventType::SpeechStarted ? event->audio_start_ms
                                                        : event->audio_end_ms)) {
      *problem = event->type_name + " without a numeric audio offset";
      return false;
    }
    break;
  case ServerEventType::Error:
  case ServerEventType::TranscriptionFailed:
    event->error = parse_error(member_object(object, "error"));
    break;
  default:
    break;
  }
  return true;
}

} // namespace qwenasr
