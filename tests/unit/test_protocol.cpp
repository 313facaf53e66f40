/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON encode/decode against the event shapes of docs/protocol.md §2 and §3, including the
 * tolerant cases. */
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>

#include "asrprotocol.h"

using namespace qwenasr;

static JsonObject *parse_object(JsonParser *parser, const std::string &text) {
  fail_unless(json_parser_load_from_data(parser, text.c_str(), -1, nullptr), "not JSON: %s",
              text.c_str());
  return json_node_get_object(json_parser_get_root(parser));
}

GST_START_TEST(test_session_update_carries_vad_language_and_corpus) {
  SessionConfig config;
  config.sample_rate = 8000;
  config.language = "en";
  config.corpus_text = "GStreamer \"pads\"";
  config.vad_threshold = 0.5;
  config.vad_silence_ms = 400;
  JsonParser *parser = json_parser_new();
  JsonObject *root = parse_object(parser, encode_session_update(config, "event_1"));
  fail_unless_equals_string(json_object_get_string_member(root, "type"), "session.update");
  fail_unless_equals_string(json_object_get_string_member(root, "event_id"), "event_1");
  JsonObject *session = json_object_get_object_member(root, "session");
  fail_unless_equals_string(json_object_get_string_member(session, "input_audio_format"), "pcm");
  fail_unless_equals_int(json_object_get_int_member(session, "sample_rate"), 8000);
  JsonObject *transcription = json_object_get_object_member(session, "input_audio_transcription");
  fail_unless_equals_string(json_object_get_string_member(transcription, "language"), "en");
  fail_unless_equals_string(
      json_object_get_string_member(json_object_get_object_member(transcription, "corpus"), "text"),
      "GStreamer \"pads\"");
  JsonObject *vad = json_object_get_object_member(session, "turn_detection");
  fail_unless_equals_string(json_object_get_string_member(vad, "type"), "server_vad");
  fail_unless_equals_float(json_object_get_double_member(vad, "threshold"), 0.5);
  fail_unless_equals_int(json_object_get_int_member(vad, "silence_duration_ms"), 400);
  g_object_unref(parser);
}
GST_END_TEST;

GST_START_TEST(test_session_update_manual_mode_sends_null_turn_detection_and_omits_language) {
  SessionConfig config;
  config.turn_detection = TurnDetection::Manual;
  JsonParser *parser = json_parser_new();
  JsonObject *root = parse_object(parser, encode_session_update(config, "e"));
  JsonObject *session = json_object_get_object_member(root, "session");
  fail_unless(json_object_has_member(session, "turn_detection"), "turn_detection missing");
  fail_unless(JSON_NODE_HOLDS_NULL(json_object_get_member(session, "turn_detection")),
              "manual mode must send null");
  fail_if(json_object_has_member(session, "input_audio_transcription"),
          "automatic language must omit the transcription object");
  g_object_unref(parser);
}
GST_END_TEST;

GST_START_TEST(test_append_base64_round_trips_every_length) {
  for (gsize size = 0; size < 10; size++) {
    guint8 audio[10];
    for (gsize i = 0; i < size; i++)
      audio[i] = static_cast<guint8>(0xf0 + i);
    JsonParser *parser = json_parser_new();
    JsonObject *root = parse_object(parser, encode_append(audio, size, "event_x"));
    fail_unless_equals_string(json_object_get_string_member(root, "type"),
                              "input_audio_buffer.append");
    gsize decoded_size = 0;
    guchar *decoded = g_base64_decode(json_object_get_string_member(root, "audio"), &decoded_size);
    fail_unless_equals_int(decoded_size, size);
    fail_unless(size == 0 || memcmp(decoded, audio, size) == 0, "bytes differ at size %zu", size);
    g_free(decoded);
    g_object_unref(parser);
  }
}
GST_END_TEST;

GST_START_TEST(test_commit_and_finish_events) {
  JsonParser *parser = json_parser_new();
  fail_unless_equals_string(
      json_object_get_string_member(parse_object(parser, encode_commit("a")), "type"),
      "input_audio_buffer.commit");
  fail_unless_equals_string(
      json_object_get_string_member(parse_object(parser, encode_finish("b")), "type"),
      "session.finish");
  g_object_unref(parser);
}
GST_END_TEST;

static ServerEvent decode_ok(const char *json) {
  ServerEvent event;
  std::string problem;
  fail_unless(decode_server_event(json, -1, &event, &problem), "rejected %s: %s", json,
              problem.c_str());
  return event;
}

GST_START_TEST(test_decode_documented_server_events) {
  ServerEvent e = decode_ok(
      "{\"event_id\":\"event_1\",\"type\":\"session.created\",\"session\":{\"id\":\"sess_001\","
      "\"object\":\"realtime.session\",\"input_audio_transcription\":null}}");
  fail_unless(e.type == ServerEventType::SessionCreated, "type");
  fail_unless_equals_string(e.session_id.c_str(), "sess_001");

  e = decode_ok("{\"type\":\"input_audio_buffer.speech_started\",\"audio_start_ms\":64,"
                "\"item_id\":\"item_A\"}");
  fail_unless(e.type == ServerEventType::SpeechStarted, "type");
  fail_unless(e.audio_start_ms && *e.audio_start_ms == 64, "audio_start_ms");
  fail_unless_equals_string(e.item_id.c_str(), "item_A");

  e = decode_ok("{\"type\":\"input_audio_buffer.speech_stopped\",\"audio_end_ms\":28128,"
                "\"item_id\":\"item_A\"}");
  fail_unless(e.audio_end_ms && *e.audio_end_ms == 28128, "audio_end_ms");

  e = decode_ok("{\"type\":\"conversation.item.input_audio_transcription.text\",\"item_id\":"
                "\"item_A\",\"content_index\":0,\"language\":\"zh\",\"emotion\":\"neutral\","
                "\"text\":\"今天\",\"stash\":\"天气不错\"}");
  fail_unless(e.type == ServerEventType::TranscriptionText, "type");
  fail_unless_equals_string(e.text.c_str(), "今天");
  fail_unless_equals_string(e.stash.c_str(), "天气不错");
  fail_unless_equals_string(e.language.c_str(), "zh");

  e = decode_ok("{\"type\":\"conversation.item.input_audio_transcription.completed\","
                "\"item_id\":\"item_A\",\"language\":\"en\",\"emotion\":\"happy\","
                "\"transcript\":\"Hello.\"}");
  fail_unless(e.type == ServerEventType::TranscriptionCompleted, "type");
  fail_unless_equals_string(e.transcript.c_str(), "Hello.");
  fail_unless_equals_string(e.emotion.c_str(), "happy");

  e = decode_ok("{\"type\":\"conversation.item.created\",\"previous_item_id\":\"item_0\","
                "\"item\":{\"id\":\"item_B\",\"content\":[{\"transcript\":null}]}}");
  fail_unless_equals_string(e.item_id.c_str(), "item_B");
  fail_unless_equals_string(e.previous_item_id.c_str(), "item_0");

  e = decode_ok("{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
                "\"invalid_value\",\"message\":\"Invalid value: 'pcm16'.\",\"param\":"
                "\"session.input_audio_format\",\"event_id\":\"event_123\"}}");
  fail_unless(e.type == ServerEventType::Error, "type");
  fail_unless_equals_string(e.error.param.c_str(), "session.input_audio_format");
  fail_unless_equals_string(e.error.event_id.c_str(), "event_123");

  e = decode_ok("{\"type\":\"conversation.item.input_audio_transcription.failed\",\"item_id\":"
                "\"item_C\",\"error\":{\"code\":\"audio_unintelligible\",\"message\":\"no\","
                "\"param\":null}}");
  fail_unless(e.type == ServerEventType::TranscriptionFailed, "type");
  fail_unless_equals_string(e.error.code.c_str(), "audio_unintelligible");
  fail_unless(e.error.param.empty(), "null param must read as empty");
}
GST_END_TEST;

GST_START_TEST(test_decode_tolerates_wrong_types_and_unknown_events) {
  ServerEvent e = decode_ok("{\"type\":\"input_audio_buffer.speech_started\",\"audio_start_ms\":"
                            "64,\"item_id\":7}");
  fail_unless(e.item_id.empty(), "a numeric item_id must be ignored");
  e = decode_ok("{\"type\":\"conversation.item.input_audio_transcription.text\",\"text\":"
                "\"a\",\"stash\":[1],\"language\":null}");
  fail_unless(e.stash.empty() && e.language.empty(), "wrongly typed optional fields read as empty");
  e = decode_ok("{\"type\":\"input_audio_buffer.speech_stopped\",\"audio_end_ms\":1200.0}");
  fail_unless(e.audio_end_ms && *e.audio_end_ms == 1200, "a float offset is accepted");
  e = decode_ok("{\"type\":\"response.brand_new\",\"x\":[1,2]}");
  fail_unless(e.type == ServerEventType::Unknown, "unknown type");
  fail_unless_equals_string(e.type_name.c_str(), "response.brand_new");
  e = decode_ok("{\"type\":\"error\",\"error\":\"flat string\"}");
  fail_unless(e.error.message.empty(), "non-object error tolerated");
}
GST_END_TEST;

GST_START_TEST(test_decode_rejects_non_events) {
  const char *bad[] = {
      "", "nul", "[1,2]", "{\"type\":5}", "{\"no_type\":1}", "{\"type\":\"x\"", "\"string\"",
      /* known events without what makes them usable */
      "{\"type\":\"conversation.item.input_audio_transcription.completed\",\"item_id\":5,"
      "\"transcript\":{\"text\":\"x\"}}",
      "{\"type\":\"conversation.item.input_audio_transcription.text\",\"text\":7,\"stash\":[\"x\"]"
      "}",
      "{\"type\":\"input_audio_buffer.speech_started\",\"audio_start_ms\":\"x\",\"item_id\":5}",
      "{\"type\":\"input_audio_buffer.speech_stopped\",\"item_id\":\"a\"}"};
  for (const char *json : bad) {
    ServerEvent event;
    std::string problem;
    fail_if(decode_server_event(json, -1, &event, &problem), "accepted %s", json);
    fail_if(problem.empty(), "no reason for %s", json);
  }
}
GST_END_TEST;

/* Decodes `json` and says what was repaired. */
static ServerEvent decode_repaired(const std::string &json, unsigned *repairs) {
  ServerEvent event;
  std::string problem;
  fail_unless(decode_server_event(json.data(), json.size(), &event, &problem, repairs),
              "rejected %s: %s", json.c_str(), problem.c_str());
  return event;
}

static const char kCompletedHead[] =
    "{\"type\":\"conversation.item.input_audio_transcription.completed\",\"item_id\":\"A\","
    "\"transcript\":\"";

GST_START_TEST(test_decode_repairs_a_lone_surrogate_escape) {
  unsigned repairs = 0;
  ServerEvent e = decode_repaired(std::string(kCompletedHead) + "alpha \\ud83d\"}", &repairs);
  fail_unless(e.type == ServerEventType::TranscriptionCompleted, "type");
  fail_unless_equals_string(e.transcript.c_str(), "alpha \xEF\xBF\xBD");
  fail_unless_equals_int(repairs, qwenasr::kRepairLoneSurrogate);
  /* A lone low half, and a high half followed by something else. */
  e = decode_repaired(std::string(kCompletedHead) + "\\udc00x\\ud83dy\\u0041\"}", &repairs);
  fail_unless_equals_string(e.transcript.c_str(), "\xEF\xBF\xBDx\xEF\xBF\xBDyA");
  /* A whole pair stays, and an escaped backslash before "ud83d" is no escape. */
  e = decode_repaired(std::string(kCompletedHead) + "\\ud83d\\ude00 \\\\ud83d\"}", &repairs);
  fail_unless_equals_string(e.transcript.c_str(), "\xF0\x9F\x98\x80 \\ud83d");
  fail_unless_equals_int(repairs, qwenasr::kRepairNone);
}
GST_END_TEST;

GST_START_TEST(test_decode_repairs_invalid_utf8) {
  unsigned repairs = 0;
  ServerEvent e =
      decode_repaired(std::string(kCompletedHead) + "caf\xE9 \xC3\xA9t\xE9\xFF\"}", &repairs);
  fail_unless_equals_string(e.transcript.c_str(),
                            "caf\xEF\xBF\xBD \xC3\xA9t\xEF\xBF\xBD\xEF\xBF\xBD");
  fail_unless_equals_int(repairs, qwenasr::kRepairInvalidUtf8);
  /* Both kinds in one frame. */
  e = decode_repaired(std::string(kCompletedHead) + "\xFE\\ud800\"}", &repairs);
  fail_unless_equals_string(e.transcript.c_str(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  fail_unless_equals_int(repairs, qwenasr::kRepairInvalidUtf8 | qwenasr::kRepairLoneSurrogate);
}
GST_END_TEST;

GST_START_TEST(test_valid_frames_are_not_copied_for_repair) {
  std::string out = "untouched";
  const char json[] = "{\"type\":\"x\",\"t\":\"\\u00e9 \\\\ \xC3\xA9\"}";
  fail_unless_equals_int(qwenasr::repair_json_text(json, sizeof json - 1, &out), 0);
  fail_unless_equals_string(out.c_str(), "untouched");
}
GST_END_TEST;

static Suite *protocol_suite(void) {
  Suite *s = suite_create("asrprotocol");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_session_update_carries_vad_language_and_corpus);
  tcase_add_test(tc, test_session_update_manual_mode_sends_null_turn_detection_and_omits_language);
  tcase_add_test(tc, test_append_base64_round_trips_every_length);
  tcase_add_test(tc, test_commit_and_finish_events);
  tcase_add_test(tc, test_decode_documented_server_events);
  tcase_add_test(tc, test_decode_tolerates_wrong_types_and_unknown_events);
  tcase_add_test(tc, test_decode_rejects_non_events);
  tcase_add_test(tc, test_decode_repairs_a_lone_surrogate_escape);
  tcase_add_test(tc, test_decode_repairs_invalid_utf8);
  tcase_add_test(tc, test_valid_frames_are_not_copied_for_repair);
  return s;
}

GST_CHECK_MAIN(protocol);
