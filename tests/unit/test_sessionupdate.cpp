/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local service's session.update parser and session object (service/sessionupdate.h):
 * what it accepts, what it rejects with which error, and that it applies all or nothing. */
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>

#include <string>

#include "sessionupdate.h"

using namespace qwenasr::local;

namespace {

/* Applies the event text to cfg; the parser's error, if any. */
std::optional<ClientError> apply(const char *event, SessionConfig &cfg) {
  JsonParser *parser = json_parser_new();
  fail_unless(json_parser_load_from_data(parser, event, -1, nullptr), "not JSON: %s", event);
  auto e = apply_session_update(json_node_get_object(json_parser_get_root(parser)), cfg);
  g_object_unref(parser);
  return e;
}

/* The update must be rejected with this code and param, and leave cfg as it was. */
ClientError expect_error(const char *event, const char *code, const char *param) {
  SessionConfig cfg;
  cfg.sample_rate = 8000;
  cfg.language = "de";
  auto e = apply(event, cfg);
  fail_unless(e.has_value(), "accepted: %s", event);
  fail_unless_equals_string(e->code.c_str(), code);
  fail_unless(e->param.has_value(), "no param for %s", event);
  fail_unless_equals_string(e->param->c_str(), param);
  fail_unless_equals_int(cfg.sample_rate, 8000);
  fail_unless_equals_string(cfg.language->c_str(), "de");
  fail_unless(cfg.vad);
  return *e;
}

} // namespace

GST_START_TEST(test_a_full_update_sets_every_field) {
  SessionConfig cfg;
  auto e = apply(R"({"type":"session.update","session":{"input_audio_format":"opus",
      "sample_rate":8000,"turn_detection":{"type":"server_vad","threshold":0.5,
      "silence_duration_ms":400},"input_audio_transcription":{"language":"en",
      "corpus":{"text":"GStreamer"}}}})",
                 cfg);
  fail_unless(!e.has_value());
  fail_unless_equals_string(cfg.input_audio_format.c_str(), "opus");
  fail_unless_equals_int(cfg.sample_rate, 8000);
  fail_unless(cfg.vad);
  fail_unless_equals_float(cfg.threshold, 0.5);
  fail_unless_equals_int(cfg.silence_duration_ms, 400);
  fail_unless(cfg.transcription);
  fail_unless_equals_string(cfg.language->c_str(), "en");
  fail_unless_equals_string(cfg.corpus_text->c_str(), "GStreamer");
}
GST_END_TEST;

GST_START_TEST(test_an_empty_session_keeps_the_defaults) {
  SessionConfig cfg;
  fail_unless(!apply(R"({"type":"session.update","session":{}})", cfg).has_value());
  fail_unless_equals_string(cfg.input_audio_format.c_str(), "pcm");
  fail_unless_equals_int(cfg.sample_rate, 16000);
  fail_unless(cfg.vad);
  fail_unless_equals_float(cfg.threshold, kDefaultVadThreshold);
  fail_unless_equals_int(cfg.silence_duration_ms, kDefaultSilenceDurationMs);
  fail_unless(!cfg.transcription);
}
GST_END_TEST;

GST_START_TEST(test_unknown_and_null_fields_are_tolerated) {
  SessionConfig cfg;
  cfg.sample_rate = 8000;
  auto e = apply(R"({"type":"session.update","event_id":"e1","extra":[1],"session":{
      "modalities":["text"],"sample_rate":null,"input_audio_format":null,"future":{"x":1},
      "turn_detection":{"type":"server_vad","prefix_padding_ms":300,"threshold":null},
      "input_audio_transcription":{"language":null,"corpus":{"text":"t","weight":2},"x":true}}})",
                 cfg);
  fail_unless(!e.has_value(), "rejected: %s", e ? e->message.c_str() : "");
  fail_unless_equals_int(cfg.sample_rate, 8000);
  fail_unless_equals_string(cfg.input_audio_format.c_str(), "pcm");
  fail_unless_equals_float(cfg.threshold, kDefaultVadThreshold);
  fail_unless(!cfg.language.has_value());
  fail_unless_equals_string(cfg.corpus_text->c_str(), "t");
}
GST_END_TEST;

GST_START_TEST(test_integers_may_arrive_as_whole_floats) {
  SessionConfig cfg;
  fail_unless(!apply(R"({"session":{"sample_rate":8000.0,"turn_detection":{"type":"server_vad",
      "silence_duration_ms":1200.0}}})",
                     cfg)
                   .has_value());
  fail_unless_equals_int(cfg.sample_rate, 8000);
  fail_unless_equals_int(cfg.silence_duration_ms, 1200);
  expect_error(R"({"session":{"sample_rate":8000.5}})", "invalid_value", "session.sample_rate");
}
GST_END_TEST;

GST_START_TEST(test_a_missing_session_or_vad_type_is_a_missing_parameter) {
  ClientError e =
      expect_error(R"({"type":"session.update"})", "missing_required_parameter", "session");
  fail_unless_equals_string(e.message.c_str(), "Missing required parameter: 'session'.");
  expect_error(R"({"session":null})", "missing_required_parameter", "session");
  expect_error(R"({"session":{"turn_detection":{"threshold":0.1}}})", "missing_required_parameter",
               "session.turn_detection.type");
}
GST_END_TEST;

GST_START_TEST(test_wrong_types_name_the_field_and_both_kinds) {
  ClientError e =
      expect_error(R"({"session":{"sample_rate":"16000"}})", "invalid_type", "session.sample_rate");
  fail_unless_equals_string(
      e.message.c_str(),
      "Invalid type for 'session.sample_rate': expected an integer, but got a string.");
  expect_error(R"({"session":[]})", "invalid_type", "session");
  expect_error(R"({"session":{"input_audio_format":1}})", "invalid_type",
               "session.input_audio_format");
  expect_error(R"({"session":{"turn_detection":"server_vad"}})", "invalid_type",
               "session.turn_detection");
  expect_error(R"({"session":{"turn_detection":{"type":true}}})", "invalid_type",
               "session.turn_detection.type");
  expect_error(R"({"session":{"turn_detection":{"type":"server_vad","threshold":"0.1"}}})",
               "invalid_type", "session.turn_detection.threshold");
  expect_error(R"({"session":{"turn_detection":{"type":"server_vad","silence_duration_ms":[]}}})",
               "invalid_type", "session.turn_detection.silence_duration_ms");
  expect_error(R"({"session":{"input_audio_transcription":"en"}})", "invalid_type",
               "session.input_audio_transcription");
  expect_error(R"({"session":{"input_audio_transcription":{"language":7}}})", "invalid_type",
               "session.input_audio_transcription.language");
  expect_error(R"({"session":{"input_audio_transcription":{"corpus":"text"}}})", "invalid_type",
               "session.input_audio_transcription.corpus");
  expect_error(R"({"session":{"input_audio_transcription":{"corpus":{"text":{}}}}})",
               "invalid_type", "session.input_audio_transcription.corpus.text");
}
GST_END_TEST;

GST_START_TEST(test_values_outside_the_documented_ranges_are_invalid) {
  ClientError e =
      expect_error(R"({"session":{"sample_rate":44100}})", "invalid_value", "session.sample_rate");
  fail_unless_equals_string(e.message.c_str(),
                            "Invalid value: '44100'. Supported values are: 16000, 8000.");
  expect_error(R"({"session":{"input_audio_format":"wav"}})", "invalid_value",
               "session.input_audio_format");
  expect_error(R"({"session":{"turn_detection":{"type":"semantic_vad"}}})", "invalid_value",
               "session.turn_detection.type");
  expect_error(R"({"session":{"turn_detection":{"type":"server_vad","threshold":1.5}}})",
               "invalid_value", "session.turn_detection.threshold");
  expect_error(R"({"session":{"turn_detection":{"type":"server_vad","silence_duration_ms":100}}})",
               "invalid_value", "session.turn_detection.silence_duration_ms");
  expect_error(R"({"session":{"turn_detection":{"type":"server_vad","silence_duration_ms":6001}}})",
               "invalid_value", "session.turn_detection.silence_duration_ms");
  e = expect_error(R"({"session":{"input_audio_transcription":{"language":"xx"}}})",
                   "invalid_value", "session.input_audio_transcription.language");
  fail_unless(e.message.find("'zh', 'yue', 'en'") != std::string::npos, "%s", e.message.c_str());
}
GST_END_TEST;

GST_START_TEST(test_an_update_is_all_or_nothing) {
  /* The format and rate are valid, the threshold is not: nothing is applied. */
  SessionConfig cfg;
  auto e = apply(R"({"session":{"input_audio_format":"opus","sample_rate":8000,
      "turn_detection":null,"input_audio_transcription":{"language":"en"},
      "future":1}})",
                 cfg);
  fail_unless(!e.has_value());
  SessionConfig before = cfg;
  e = apply(R"({"session":{"input_audio_format":"pcm","sample_rate":16000,
      "turn_detection":{"type":"server_vad","threshold":2}}})",
            cfg);
  fail_unless(e.has_value());
  fail_unless_equals_string(cfg.input_audio_format.c_str(), before.input_audio_format.c_str());
  fail_unless_equals_int(cfg.sample_rate, 8000);
  fail_unless(!cfg.vad);
  fail_unless_equals_string(cfg.language->c_str(), "en");
}
GST_END_TEST;

GST_START_TEST(test_null_selects_manual_mode_and_clears_transcription) {
  SessionConfig cfg;
  cfg.transcription = true;
  cfg.language = "en";
  cfg.corpus_text = "c";
  fail_unless(!apply(R"({"session":{"turn_detection":null,"input_audio_transcription":null}})", cfg)
                   .has_value());
  fail_unless(!cfg.vad);
  fail_unless(!cfg.transcription);
  fail_unless(!cfg.language.has_value());
  fail_unless(!cfg.corpus_text.has_value());
}
GST_END_TEST;

GST_START_TEST(test_an_object_replaces_the_previous_settings_whole) {
  SessionConfig cfg;
  fail_unless(!apply(R"({"session":{"turn_detection":{"type":"server_vad","threshold":0.7,
      "silence_duration_ms":300},"input_audio_transcription":{"language":"en"}}})",
                     cfg)
                   .has_value());
  fail_unless(!apply(R"({"session":{"turn_detection":{"type":"server_vad"},
      "input_audio_transcription":{"corpus":{"text":"names"}}}})",
                     cfg)
                   .has_value());
  fail_unless_equals_float(cfg.threshold, kDefaultVadThreshold);
  fail_unless_equals_int(cfg.silence_duration_ms, kDefaultSilenceDurationMs);
  fail_unless(!cfg.language.has_value());
  fail_unless_equals_string(cfg.corpus_text->c_str(), "names");
}
GST_END_TEST;

GST_START_TEST(test_the_session_object_echoes_the_configuration) {
  SessionConfig cfg;
  const std::string created = session_object_json(cfg, "sess_1", "m", false);
  fail_unless_equals_string(
      created.c_str(),
      "{\"id\":\"sess_1\",\"object\":\"realtime.session\",\"model\":\"m\",\"modalities\":"
      "[\"text\"],\"input_audio_format\":\"pcm\",\"input_audio_transcription\":null,"
      "\"turn_detection\":{\"type\":\"server_vad\",\"threshold\":0.2,\"silence_duration_ms\":800}"
      "}");
  cfg.vad = false;
  cfg.sample_rate = 8000;
  cfg.transcription = true;
  cfg.language = "en";
  cfg.corpus_text = "a \"b\"";
  const std::string updated = session_object_json(cfg, "s", "m", true);
  fail_unless_equals_string(
      updated.c_str(),
      "{\"id\":\"s\",\"object\":\"realtime.session\",\"model\":\"m\",\"modalities\":[\"text\"],"
      "\"input_audio_format\":\"pcm\",\"input_audio_transcription\":{\"language\":\"en\","
      "\"corpus\":{\"text\":\"a \\\"b\\\"\"}},\"turn_detection\":null,\"sample_rate\":8000}");
}
GST_END_TEST;

static Suite *sessionupdate_suite(void) {
  Suite *s = suite_create("sessionupdate");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_a_full_update_sets_every_field);
  tcase_add_test(tc, test_an_empty_session_keeps_the_defaults);
  tcase_add_test(tc, test_unknown_and_null_fields_are_tolerated);
  tcase_add_test(tc, test_integers_may_arrive_as_whole_floats);
  tcase_add_test(tc, test_a_missing_session_or_vad_type_is_a_missing_parameter);
  tcase_add_test(tc, test_wrong_types_name_the_field_and_both_kinds);
  tcase_add_test(tc, test_values_outside_the_documented_ranges_are_invalid);
  tcase_add_test(tc, test_an_update_is_all_or_nothing);
  tcase_add_test(tc, test_null_selects_manual_mode_and_clears_transcription);
  tcase_add_test(tc, test_an_object_replaces_the_previous_settings_whole);
  tcase_add_test(tc, test_the_session_object_echoes_the_configuration);
  return s;
}

GST_CHECK_MAIN(sessionupdate);
