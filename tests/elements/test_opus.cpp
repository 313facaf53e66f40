/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* audio-format=opus end to end: the element encodes Ogg-Opus, the local service decodes it,
 * and transcripts come back at the same input times as with PCM; a reconnection starts a new
 * Ogg stream; the service refuses bytes that are not Ogg-Opus with an error event. */
#include "testutil.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <set>

using namespace testutil;
using qwenasr::local::FaultOptions;
using qwenasr::local::ServiceOptions;

namespace {

/* 20 ms frames; libopus's look-ahead is 6.5 ms. */
guint64 frame_samples(int rate) {
  return static_cast<guint64>(rate) / 50;
}

struct Run {
  std::vector<GstMessage *> messages;
  std::vector<qwenasr::local::SessionRecord> sessions;
};

Run transcribe(const Audio &audio, const std::string &properties, const FaultOptions &faults = {},
               const std::function<void(GstHarness *)> &push = nullptr) {
  ServiceOptions options;
  options.faults = faults;
  auto service = start_service(options);
  GstHarness *h = sink_harness(service->url(), audio.rate, properties.c_str());
  if (push)
    push(h);
  else
    fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  Run run{drain_bus(h->element), {}};
  teardown_harness(h);
  run.sessions = service->sessions();
  for (GstMessage *m : run.messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *error = nullptr;
      gst_message_parse_error(m, &error, nullptr);
      fail("unexpected error: %s", error->message);
    }
  }
  for (const auto &session : run.sessions) {
    for (const std::string &type : session.server_event_types)
      fail_if(type == "error", "the service answered an error in session %u",
              session.session_number);
  }
  return run;
}

/* One final per utterance at the true times, each with text of its own. */
void assert_finals_at_true_times(const std::vector<GstMessage *> &messages, const Audio &audio) {
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), audio.utterances.size());
  std::set<std::string> texts;
  for (gsize i = 0; i < finals.size(); i++) {
    const char *text = gst_structure_get_string(finals[i], "text");
    fail_unless(text && *text, "empty transcript");
    texts.insert(text);
    assert_time_near(structure_time(finals[i], "start-time"),
                     audio.utterances[i].start_ms * GST_MSECOND, "start-time");
    assert_time_near(structure_time(finals[i], "end-time"),
                     audio.utterances[i].end_ms * GST_MSECOND, "end-time");
  }
  fail_unless_equals_int(texts.size(), finals.size());
}

void check_round_trip(int rate) {
  Audio audio = make_audio(rate, kThreeUtterances);
  Run pcm = transcribe(audio, "");
  Run opus = transcribe(audio, "audio-format=opus");
  assert_finals_at_true_times(pcm.messages, audio);
  assert_finals_at_true_times(opus.messages, audio);

  /* Speech events at the same input times as with PCM. */
  auto speech_times = [](const std::vector<GstMessage *> &messages) {
    std::vector<GstClockTime> times;
    for (GstMessage *m : messages) {
      const GstStructure *s = element_structure(m, "qwenasr/speech-started");
      if (!s)
        s = element_structure(m, "qwenasr/speech-stopped");
      if (s)
        times.push_back(structure_time(s, "time"));
    }
    return times;
  };
  auto pcm_times = speech_times(pcm.messages);
  auto opus_times = speech_times(opus.messages);
  fail_unless_equals_int(opus_times.size(), pcm_times.size());
  for (gsize i = 0; i < pcm_times.size(); i++)
    assert_time_near(opus_times[i], pcm_times[i], "speech event");

  /* The service decoded exactly the samples sent (pre-skip dropped, end padding trimmed), from
   * an Ogg stream, in a fraction of the bytes. */
  fail_unless_equals_int(opus.sessions.size(), 1);
  const auto &session = opus.sessions[0];
  fail_unless(session.ogg_serial.has_value(), "no Ogg stream seen");
  fail_unless_equals_uint64(session.decoded_samples, audio.samples.size());
  fail_unless(session.audio_bytes * 5 < pcm.sessions[0].audio_bytes,
              "Opus %" G_GUINT64_FORMAT " bytes, PCM %" G_GUINT64_FORMAT, session.audio_bytes,
              pcm.sessions[0].audio_bytes);
  fail_unless(session.last_session_update_json.find("\"input_audio_format\":\"opus\"") !=
                  std::string::npos,
              "%s", session.last_session_update_json.c_str());
  free_messages(pcm.messages);
  free_messages(opus.messages);
}

} // namespace

GST_START_TEST(test_opus_transcripts_have_the_pcm_times_16k) {
  check_round_trip(16000);
}
GST_END_TEST;

GST_START_TEST(test_opus_transcripts_have_the_pcm_times_8k) {
  check_round_trip(8000);
}
GST_END_TEST;

GST_START_TEST(test_opus_manual_commit_ends_the_item_at_the_commit) {
  int rate = 16000;
  /* Neither part is a whole number of 20 ms frames. */
  Audio part1 = make_audio(rate, {{105, false}, {900, true}, {108, false}});
  Audio part2 = make_audio(rate, {{1297, true}});
  Run run = transcribe(part1, "turn-detection=manual commit-interval=60000 audio-format=opus", {},
                       [&](GstHarness *h) {
                         fail_unless_equals_int(push_audio(h, part1, 20, 0), GST_FLOW_OK);
                         fail_unless(gst_harness_push_event(
                             h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                                     gst_structure_new_empty("qwenasr-commit"))));
                         fail_unless_equals_int(push_audio(h, part2, 20, 1113 * GST_MSECOND),
                                                GST_FLOW_OK);
                       });
  auto finals = transcripts(run.messages, true);
  fail_unless_equals_int(finals.size(), 2);
  assert_time_near(structure_time(finals[0], "start-time"), 0, "first start");
  assert_time_near(structure_time(finals[0], "end-time"), 1113 * GST_MSECOND, "first end");
  assert_time_near(structure_time(finals[1], "start-time"), 1113 * GST_MSECOND, "second start");
  assert_time_near(structure_time(finals[1], "end-time"), 2410 * GST_MSECOND, "second end");
  /* The commit flushed the encoder with less than a frame plus the look-ahead of silence, and
   * the service decoded all of it. */
  guint64 sent = part1.samples.size() + part2.samples.size();
  guint64 decoded = run.sessions[0].decoded_samples;
  fail_unless(decoded > sent && decoded < sent + 2 * frame_samples(rate),
              "decoded %" G_GUINT64_FORMAT " for %" G_GUINT64_FORMAT " sent", decoded, sent);
  free_messages(run.messages);
}
GST_END_TEST;

GST_START_TEST(test_opus_reconnect_starts_a_new_ogg_stream_and_loses_nothing) {
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.close_after_audio_ms = 1500; /* inside the first utterance */
  faults.close_abruptly = true;
  Audio audio = make_audio(16000, kThreeUtterances);
  Run run = transcribe(audio, "audio-format=opus max-reconnects=3", faults);
  assert_finals_at_true_times(run.messages, audio);
  fail_unless_equals_int(run.sessions.size(), 2);
  for (const auto &session : run.sessions)
    fail_unless(session.ogg_serial.has_value(), "session %u saw no Ogg stream",
                session.session_number);
  fail_unless(*run.sessions[0].ogg_serial != *run.sessions[1].ogg_serial,
              "the second session continued the first Ogg stream");
  /* The resent audio began a stream of its own: decoded, not refused. */
  fail_unless(run.sessions[1].decoded_samples > 0);
  fail_unless(run.sessions[1].finished, "the second session did not finish");
  free_messages(run.messages);
}
GST_END_TEST;

GST_START_TEST(test_opus_captions_have_the_utterance_times) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  GstHarness *h = caption_harness(service->url(), 16000, "min-duration=0 audio-format=opus");
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  for (GstEvent *event : pull_events_until_eos(h))
    gst_event_unref(event);
  std::vector<GstBuffer *> captions;
  while (GstBuffer *buffer = gst_harness_try_pull(h))
    captions.push_back(buffer);
  fail_unless_equals_int(captions.size(), audio.utterances.size());
  for (gsize i = 0; i < captions.size(); i++) {
    const Utterance &truth = audio.utterances[i];
    assert_time_near(GST_BUFFER_PTS(captions[i]), truth.start_ms * GST_MSECOND, "caption PTS");
    assert_time_near(GST_BUFFER_PTS(captions[i]) + GST_BUFFER_DURATION(captions[i]),
                     truth.end_ms * GST_MSECOND, "caption end");
    gst_buffer_unref(captions[i]);
  }
  teardown_harness(h);
}
GST_END_TEST;

namespace {

/* A bare WebSocket client of the local service, to send what the element never would. */
struct RawClient {
  GMainContext *context = g_main_context_new();
  SoupSession *session = nullptr;
  SoupWebsocketConnection *conn = nullptr;
  std::vector<std::string> received;

  explicit RawClient(const std::string &url) {
    g_main_context_push_thread_default(context);
    session = soup_session_new_with_options("proxy-resolver", nullptr, nullptr);
    SoupMessage *msg = soup_message_new("GET", (url + "?model=qwen3-asr-flash-realtime").c_str());
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                 "Bearer test-key");
    soup_session_websocket_connect_async(
        session, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
        [](GObject *source, GAsyncResult *result, gpointer data) {
          auto *self = static_cast<RawClient *>(data);
          self->conn = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, nullptr);
          if (self->conn)
            g_signal_connect(
                self->conn, "message",
                G_CALLBACK(+[](SoupWebsocketConnection *, gint, GBytes *message, gpointer data) {
                  gsize size;
                  const char *text = static_cast<const char *>(g_bytes_get_data(message, &size));
                  static_cast<RawClient *>(data)->received.emplace_back(text, size);
                }),
                self);
        },
        this);
    g_object_unref(msg);
    fail_unless(iterate_until([this] { return conn != nullptr; }), "no WebSocket connection");
  }
  ~RawClient() {
    if (conn)
      g_object_unref(conn);
    g_object_unref(session);
    g_main_context_pop_thread_default(context);
    g_main_context_unref(context);
  }

  bool iterate_until(const std::function<bool()> &done) {
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!done() && g_get_monotonic_time() < deadline)
      g_main_context_iteration(context, FALSE) || (g_usleep(1000), true);
    return done();
  }

  /* The first event of `type` received from now on, parsed. */
  JsonObject *wait_for(const char *type, JsonParser *parser) {
    gsize from = received.size();
    JsonObject *found = nullptr;
    iterate_until([&] {
      for (; from < received.size(); from++) {
        if (json_parser_load_from_data(parser, received[from].c_str(), -1, nullptr) &&
            g_strcmp0(json_object_get_string_member_with_default(
                          json_node_get_object(json_parser_get_root(parser)), "type", ""),
                      type) == 0) {
          found = json_node_get_object(json_parser_get_root(parser));
          return true;
        }
      }
      return false;
    });
    return found;
  }

  void send(const std::string &text) { soup_websocket_connection_send_text(conn, text.c_str()); }
};

} // namespace

GST_START_TEST(test_service_refuses_bytes_that_are_not_ogg_opus) {
  auto service = start_service();
  RawClient client(service->url());
  JsonParser *parser = json_parser_new();
  fail_unless(client.wait_for("session.created", parser) != nullptr, "no session.created");
  client.send("{\"type\":\"session.update\",\"event_id\":\"e1\",\"session\":{"
              "\"input_audio_format\":\"opus\",\"sample_rate\":16000}}");
  fail_unless(client.wait_for("session.updated", parser) != nullptr, "no session.updated");
  /* Raw PCM where an Ogg stream should be. */
  std::vector<guint8> pcm(3200, 0x11);
  gchar *audio = g_base64_encode(pcm.data(), pcm.size());
  client.send(
      std::string("{\"type\":\"input_audio_buffer.append\",\"event_id\":\"e2\",\"audio\":\"") +
      audio + "\"}");
  g_free(audio);
  JsonObject *event = client.wait_for("error", parser);
  fail_unless(event != nullptr, "no error event");
  JsonObject *error = json_object_get_object_member(event, "error");
  fail_unless_equals_string(json_object_get_string_member(error, "type"), "invalid_request_error");
  fail_unless_equals_string(json_object_get_string_member(error, "code"), "invalid_value");
  fail_unless_equals_string(json_object_get_string_member(error, "param"), "audio");
  fail_unless_equals_string(json_object_get_string_member(error, "event_id"), "e2");
  const char *message = json_object_get_string_member(error, "message");
  fail_unless(strstr(message, "not a valid Ogg-Opus stream") != nullptr, "message: %s", message);
  g_object_unref(parser);
}
GST_END_TEST;

static Suite *opus_suite(void) {
  Suite *s = suite_create("opus");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_opus_transcripts_have_the_pcm_times_16k);
  tcase_add_test(tc, test_opus_transcripts_have_the_pcm_times_8k);
  tcase_add_test(tc, test_opus_manual_commit_ends_the_item_at_the_commit);
  tcase_add_test(tc, test_opus_reconnect_starts_a_new_ogg_stream_and_loses_nothing);
  tcase_add_test(tc, test_opus_captions_have_the_utterance_times);
  tcase_add_test(tc, test_service_refuses_bytes_that_are_not_ogg_opus);
  return s;
}

GST_CHECK_MAIN(opus);
