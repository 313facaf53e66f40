// SPDX-License-Identifier: LGPL-2.1-or-later
/* Parsing session.update into a SessionConfig and writing the session object (see
 * sessionupdate.h). */
#include "sessionupdate.h"

#include <algorithm>
#include <iterator>

#include "json.h"

namespace qwenasr::local {

namespace {

const char *const kLanguages[] = {"zh", "yue", "en",  "ja", "de", "ko", "ru", "fr", "pt",
                                  "ar", "it",  "es",  "hi", "id", "th", "tr", "uk", "vi",
                                  "cs", "da",  "fil", "fi", "is", "ms", "no", "pl", "sv"};

ClientError invalid_value(const std::string &value, const std::string &expected,
                          const std::string &param) {
  return {"invalid_value", "Invalid value: '" + value + "'. " + expected + ".", param};
}

ClientError missing(const std::string &param) {
  return {"missing_required_parameter", "Missing required parameter: '" + param + "'.", param};
}

std::optional<ClientError> apply_turn_detection(JsonNode *n, SessionConfig &cfg) {
  if (JSON_NODE_HOLDS_NULL(n)) {
    cfg.vad = false; // explicit null selects Manual mode (docs/protocol.md §2.1)
    return std::nullopt;
  }
  if (!JSON_NODE_HOLDS_OBJECT(n))
    return type_error("session.turn_detection", "an object or null", n);
  JsonObject *td = json_node_get_object(n);
  JsonNode *t = member(td, "type");
  const std::string pt = "session.turn_detection.type";
  if (!t)
    return missing(pt);
  if (!is_string(t))
    return type_error(pt, "a string", t);
  if (std::string(json_node_get_string(t)) != "server_vad")
    return invalid_value(node_text(t), "Supported values are: 'server_vad'", pt);
  // The object replaces the VAD settings; omitted knobs take the documented defaults.
  double threshold = kDefaultVadThreshold;
  gint64 silence = kDefaultSilenceDurationMs;
  if (JsonNode *th = member(td, "threshold")) {
    const std::string p = "session.turn_detection.threshold";
    if (!is_number(th))
      return type_error(p, "a number", th);
    threshold = json_node_get_double(th);
    if (!(threshold >= -1.0 && threshold <= 1.0))
      return invalid_value(node_text(th), "Expected a number between -1.0 and 1.0", p);
  }
  if (JsonNode *sd = member(td, "silence_duration_ms")) {
    const std::string p = "session.turn_detection.silence_duration_ms";
    if (!is_number(sd))
      return type_error(p, "an integer", sd);
    if (!as_integer(sd, silence) || silence < 200 || silence > 6000)
      return invalid_value(node_text(sd), "Expected an integer between 200 and 6000", p);
  }
  cfg.vad = true;
  cfg.threshold = threshold;
  cfg.silence_duration_ms = silence;
  return std::nullopt;
}

std::optional<ClientError> apply_transcription(JsonNode *n, SessionConfig &cfg) {
  if (JSON_NODE_HOLDS_NULL(n)) {
    cfg.transcription = false;
    cfg.language.reset();
    cfg.corpus_text.reset();
    return std::nullopt;
  }
  if (!JSON_NODE_HOLDS_OBJECT(n))
    return type_error("session.input_audio_transcription", "an object or null", n);
  JsonObject *tr = json_node_get_object(n);
  std::optional<std::string> language, corpus;
  if (JsonNode *l = member(tr, "language")) {
    const std::string p = "session.input_audio_transcription.language";
    if (!is_string(l))
      return type_error(p, "a string", l);
    const std::string v = json_node_get_string(l);
    if (std::find(std::begin(kLanguages), std::end(kLanguages), v) == std::end(kLanguages)) {
      std::string list;
      for (const char *code : kLanguages)
        list += std::string(list.empty() ? "'" : ", '") + code + "'";
      return invalid_value(v, "Supported values are: " + list, p);
    }
    language = v;
  }
  if (JsonNode *c = member(tr, "corpus")) {
    if (!JSON_NODE_HOLDS_OBJECT(c))
      return type_error("session.input_audio_transcription.corpus", "an object", c);
    if (JsonNode *t = member(json_node_get_object(c), "text")) {
      const std::string p = "session.input_audio_transcription.corpus.text";
      if (!is_string(t))
        return type_error(p, "a string", t);
      corpus = json_node_get_string(t);
    }
  }
  // Like the SDKs' dicts, the object replaces the previous transcription settings.
  cfg.transcription = true;
  cfg.language = language;
  cfg.corpus_text = corpus;
  return std::nullopt;
}

std::optional<ClientError> apply_to(JsonObject *root, SessionConfig &cfg) {
  JsonNode *sn = member(root, "session");
  if (!sn)
    return missing("session");
  if (!JSON_NODE_HOLDS_OBJECT(sn))
    return type_error("session", "an object", sn);
  JsonObject *s = json_node_get_object(sn);

  if (JsonNode *n = member(s, "input_audio_format")) {
    const std::string p = "session.input_audio_format";
    if (!is_string(n))
      return type_error(p, "a string", n);
    const std::string v = json_node_get_string(n);
    if (v != "pcm" && v != "opus")
      return invalid_value(v, "Supported values are: 'pcm', 'opus'", p);
    cfg.input_audio_format = v;
  }

  if (JsonNode *n = member(s, "sample_rate")) {
    const std::string p = "session.sample_rate";
    gint64 v = 0;
    if (!is_number(n))
      return type_error(p, "an integer", n);
    if (!as_integer(n, v) || (v != 16000 && v != 8000))
      return invalid_value(node_text(n), "Supported values are: 16000, 8000", p);
    cfg.sample_rate = static_cast<int>(v);
  }

  // Not member(): an explicit null means something here.
  if (JsonNode *n = json_object_get_member(s, "turn_detection"))
    if (auto e = apply_turn_detection(n, cfg))
      return e;
  if (JsonNode *n = json_object_get_member(s, "input_audio_transcription"))
    if (auto e = apply_transcription(n, cfg))
      return e;
  return std::nullopt;
}

} // namespace

ClientError type_error(const std::string &param, const char *expected, JsonNode *node) {
  return {"invalid_type",
          "Invalid type for '" + param + "': expected " + expected + ", but got " +
              node_kind(node) + ".",
          param};
}

std::optional<ClientError> apply_session_update(JsonObject *root, SessionConfig &cfg) {
  SessionConfig updated = cfg;
  if (auto e = apply_to(root, updated))
    return e;
  cfg = updated;
  return std::nullopt;
}

std::string session_object_json(const SessionConfig &cfg, const std::string &id,
                                const std::string &model, bool with_rate) {
  std::string transcription = "null";
  if (cfg.transcription) {
    std::string inner;
    if (cfg.language)
      inner += "\"language\":" + jstr(*cfg.language);
    if (cfg.corpus_text)
      inner += std::string(inner.empty() ? "" : ",") +
               "\"corpus\":" + jobj({{"text", jstr(*cfg.corpus_text)}});
    transcription = "{" + inner + "}";
  }
  std::string turn = "null";
  if (cfg.vad)
    turn = jobj({{"type", jstr("server_vad")},
                 {"threshold", jdbl(cfg.threshold)},
                 {"silence_duration_ms", jint(cfg.silence_duration_ms)}});
  std::string s = jobj({{"id", jstr(id)},
                        {"object", jstr("realtime.session")},
                        {"model", jstr(model)},
                        {"modalities", "[\"text\"]"},
                        {"input_audio_format", jstr(cfg.input_audio_format)},
                        {"input_audio_transcription", transcription},
                        {"turn_detection", turn}});
  if (with_rate) // [UNK] whether the real service echoes it; handy for clients to verify.
    s.insert(s.size() - 1, ",\"sample_rate\":" + jint(cfg.sample_rate));
  return s;
}

} // namespace qwenasr::local
