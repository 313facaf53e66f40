/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasrsink against the local service: transcripts, times, errors, caps and state changes. */
#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <cmath>
#include <mutex>

using namespace testutil;

static const std::vector<Stretch> kTwoUtterances = {
    {500, false}, {1000, true}, {1500, false}, {700, true}, {1000, false}};

static gsize index_of_eos(const std::vector<GstMessage *> &messages) {
  for (gsize i = 0; i < messages.size(); i++) {
    if (GST_MESSAGE_TYPE(messages[i]) == GST_MESSAGE_EOS)
      return i;
  }
  fail("no EOS message on the bus");
  return 0;
}

static GstMessage *find_message(const std::vector<GstMessage *> &messages, GstMessageType type) {
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == type)
      return m;
  }
  return nullptr;
}

/* Runs `audio` through a sink and checks one final per utterance with the exact text and the
 * input times, partials before each final, and every final before EOS. */
static void check_vad_transcripts(int rate, guint buffer_ms, GstClockTime first_pts) {
  auto service = start_service();
  Audio audio = make_audio(rate, kTwoUtterances);
  GstHarness *h = sink_harness(service->url(), rate, "language-code=en");
  fail_unless_equals_int(push_audio(h, audio, buffer_ms, first_pts), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  gsize eos = index_of_eos(messages);

  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), audio.utterances.size());
  for (gsize i = 0; i < finals.size(); i++) {
    const Utterance &truth = audio.utterances[i];
    std::string expected = audio.transcript_of(truth);
    fail_unless_equals_string(gst_structure_get_string(finals[i], "text"), expected.c_str());
    fail_unless_equals_string(gst_structure_get_string(finals[i], "language"), "en");
    fail_unless_equals_string(gst_structure_get_string(finals[i], "emotion"), "neutral");
    fail_unless(strlen(gst_structure_get_string(finals[i], "session-id")) > 0, "no session-id");
    assert_time_near(structure_time(finals[i], "start-time"),
                     first_pts + truth.start_ms * GST_MSECOND, "start-time");
    assert_time_near(structure_time(finals[i], "end-time"), first_pts + truth.end_ms * GST_MSECOND,
                     "end-time");
  }

  /* Each item shows partials before its final, all before EOS, and partial previews are
   * prefixes of the final text (the service's stash may still change, its text may not). */
  for (const GstStructure *final : finals) {
    const char *item = gst_structure_get_string(final, "item-id");
    const char *final_text = gst_structure_get_string(final, "text");
    gsize partials = 0, final_index = 0;
    for (gsize i = 0; i < messages.size(); i++) {
      const GstStructure *s = element_structure(messages[i], "qwenasr/transcript");
      if (!s || g_strcmp0(gst_structure_get_string(s, "item-id"), item) != 0)
        continue;
      gboolean is_final;
      gst_structure_get_boolean(s, "final", &is_final);
      if (is_final) {
        final_index = i;
        break;
      }
      partials++;
      const char *stable = gst_structure_get_string(s, "stable-text");
      fail_unless(g_ascii_strncasecmp(final_text, stable, strlen(stable)) == 0,
                  "stable text '%s' is not a prefix of '%s'", stable, final_text);
    }
    fail_unless(partials > 0, "no partial before the final of %s", item);
    fail_unless(final_index < eos, "final of %s after EOS", item);
  }

  /* The session went through connected, configured, finished; speech events carry times. */
  std::vector<std::string> states;
  gsize started = 0;
  for (GstMessage *m : messages) {
    if (const GstStructure *s = element_structure(m, "qwenasr/session"))
      states.push_back(gst_structure_get_string(s, "state"));
    if (const GstStructure *s = element_structure(m, "qwenasr/speech-started")) {
      assert_time_near(structure_time(s, "time"),
                       first_pts + audio.utterances[started].start_ms * GST_MSECOND,
                       "speech-started");
      started++;
    }
  }
  fail_unless_equals_int(started, audio.utterances.size());
  fail_unless(states == std::vector<std::string>({"connected", "configured", "finished"}),
              "unexpected session states");

  /* Every byte reached the service, in one session, with our user agent. */
  auto sessions = service->sessions();
  fail_unless_equals_int(sessions.size(), 1);
  fail_unless_equals_uint64(sessions[0].audio_bytes, audio.samples.size() * 2);
  fail_unless(g_str_has_prefix(sessions[0].user_agent.c_str(), "gst-qwenasr/"), "user agent");
  fail_unless(sessions[0].client_event_types.back() == "session.finish", "no session.finish");
  free_messages(messages);
  teardown_harness(h);
}

GST_START_TEST(test_vad_utterances_have_exact_text_and_input_times_16k) {
  check_vad_transcripts(16000, 20, 0);
}
GST_END_TEST;

GST_START_TEST(test_vad_utterances_have_exact_text_and_input_times_8k) {
  check_vad_transcripts(8000, 50, 0);
}
GST_END_TEST;

GST_START_TEST(test_times_are_anchored_on_the_input_timestamps) {
  /* Input that starts at 7 s (odd buffer size too): times follow the PTS, not bytes sent. */
  check_vad_transcripts(16000, 33, 7 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_gap_in_input_timestamps_does_not_shift_later_captions) {
  auto service = start_service();
  int rate = 16000;
  Audio before_gap = make_audio(rate, {{300, false}, {600, true}, {900, false}});
  Audio after_gap = make_audio(rate, {{200, false}, {500, true}, {900, false}});
  GstHarness *h = sink_harness(service->url(), rate);
  fail_unless_equals_int(push_audio(h, before_gap, 20, 0), GST_FLOW_OK);
  /* The input jumps from 1.8 s to 10 s (a DISCONT, as after packet loss on a live source). */
  fail_unless_equals_int(push_audio(h, after_gap, 20, 10 * GST_SECOND), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 2);
  assert_time_near(structure_time(finals[0], "start-time"), 300 * GST_MSECOND, "first start");
  assert_time_near(structure_time(finals[1], "start-time"), 10200 * GST_MSECOND, "second start");
  assert_time_near(structure_time(finals[1], "end-time"), 10700 * GST_MSECOND, "second end");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_manual_mode_commits_on_event_and_at_eos) {
  auto service = start_service();
  int rate = 16000;
  Audio part1 = make_audio(rate, {{100, false}, {900, true}, {100, false}});
  Audio part2 = make_audio(rate, {{1300, true}});
  GstHarness *h = sink_harness(service->url(), rate, "turn-detection=manual commit-interval=60000");
  fail_unless_equals_int(push_audio(h, part1, 20, 0), GST_FLOW_OK);
  /* As an application would: the event sent to the element itself. */
  fail_unless(gst_element_send_event(
                  h->element, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                                   gst_structure_new_empty("qwenasr-commit"))),
              "commit event refused");
  fail_unless_equals_int(push_audio(h, part2, 20, 1100 * GST_MSECOND), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  gsize eos = index_of_eos(messages);
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 2);
  /* Manual items span exactly what was committed: the whole of each part. */
  std::string expected1 =
      qwenasr::local::deterministic_transcript(part1.samples.data(), part1.samples.size(), rate);
  std::string expected2 =
      qwenasr::local::deterministic_transcript(part2.samples.data(), part2.samples.size(), rate);
  fail_unless_equals_string(gst_structure_get_string(finals[0], "text"), expected1.c_str());
  fail_unless_equals_string(gst_structure_get_string(finals[1], "text"), expected2.c_str());
  assert_time_near(structure_time(finals[0], "start-time"), 0, "first start");
  assert_time_near(structure_time(finals[0], "end-time"), 1100 * GST_MSECOND, "first end");
  assert_time_near(structure_time(finals[1], "start-time"), 1100 * GST_MSECOND, "second start");
  assert_time_near(structure_time(finals[1], "end-time"), 2400 * GST_MSECOND, "second end");
  fail_unless(gst_message_get_seqnum(messages[eos]) != 0, "EOS");
  auto sessions = service->sessions();
  fail_unless_equals_int(sessions.size(), 1);
  fail_unless(sessions[0].last_session_update_json.find("\"turn_detection\":null") !=
                  std::string::npos,
              "manual mode must send turn_detection null: %s",
              sessions[0].last_session_update_json.c_str());
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_manual_mode_commits_every_commit_interval) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{3500, true}});
  GstHarness *h = sink_harness(service->url(), 16000, "turn-detection=manual commit-interval=1000");
  fail_unless_equals_int(push_audio(h, audio, 100, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  auto finals = transcripts(messages, true);
  /* 1 s, 1 s, 1 s, then the last 0.5 s at EOS. */
  fail_unless_equals_int(finals.size(), 4);
  assert_time_near(structure_time(finals[3], "start-time"), 3000 * GST_MSECOND, "last start");
  assert_time_near(structure_time(finals[3], "end-time"), 3500 * GST_MSECOND, "last end");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_eos_without_speech_finishes_with_no_transcript) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{2000, false}});
  GstHarness *h = sink_harness(service->url(), 16000);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  index_of_eos(messages);
  fail_unless_equals_int(transcripts(messages, true).size(), 0);
  fail_unless_equals_int(transcripts(messages, false).size(), 0);
  fail_unless(find_message(messages, GST_MESSAGE_ERROR) == nullptr, "unexpected error");
  fail_unless(service->sessions()[0].finished, "session not finished");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

static GstMessage *wait_for_error(GstElement *element) {
  GstBus *bus = gst_element_get_bus(element);
  GstMessage *error = gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND, GST_MESSAGE_ERROR);
  gst_object_unref(bus);
  fail_unless(error != nullptr, "no ERROR message");
  return error;
}

GST_START_TEST(test_rejected_key_is_a_not_authorized_error_that_hides_the_key) {
  auto service = start_service();
  GstHarness *h =
      harness_with_bus("qwenasrsink sync=false api-key=sk-wrong-secret-123 url=" + service->url());
  /* The connection opens with the first caps. */
  set_audio_caps(h, 16000);
  GstMessage *error = wait_for_error(h->element);
  GError *gerror = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error(error, &gerror, &debug);
  fail_unless(g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED),
              "wrong error %s", gerror->message);
  fail_unless(strstr(gerror->message, "rejected the API key (HTTP 401)") != nullptr, "%s",
              gerror->message);
  fail_unless(strstr(gerror->message, "api-key") && strstr(gerror->message, "DASHSCOPE_API_KEY"),
              "the message must say what to change: %s", gerror->message);
  fail_if(strstr(gerror->message, "sk-wrong-secret") || (debug && strstr(debug, "sk-wrong-secret")),
          "the key leaked into the error");
  const GstStructure *details = nullptr;
  gst_message_parse_error_details(error, &details);
  guint status = 0;
  fail_unless(details && gst_structure_get_uint(details, "http-status-code", &status), "details");
  fail_unless_equals_int(status, 401);
  /* The sticky error reaches the streaming thread (it is set just after the message). */
  Audio audio = make_audio(16000, {{100, false}});
  gint64 deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
  while (push_audio(h, audio, 100, 0) != GST_FLOW_ERROR)
    fail_unless(g_get_monotonic_time() < deadline, "the error never reached the streaming thread");
  g_error_free(gerror);
  g_free(debug);
  gst_message_unref(error);
  fail_unless_equals_int(service->handshakes_rejected(), 1);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_forbidden_key_reports_403) {
  auto service = start_service();
  GstHarness *h =
      harness_with_bus("qwenasrsink sync=false api-key=forbidden-key url=" + service->url());
  set_audio_caps(h, 16000);
  GstMessage *error = wait_for_error(h->element);
  GError *gerror = nullptr;
  gst_message_parse_error(error, &gerror, nullptr);
  fail_unless(strstr(gerror->message, "HTTP 403") != nullptr, "%s", gerror->message);
  g_error_free(gerror);
  gst_message_unref(error);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_missing_key_fails_start_naming_property_and_variable) {
  g_unsetenv("DASHSCOPE_API_KEY");
  GstElement *sink = gst_element_factory_make("qwenasrsink", nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(sink, bus);
  fail_unless_equals_int(gst_element_set_state(sink, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *error = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(error != nullptr, "no error");
  GError *gerror = nullptr;
  gst_message_parse_error(error, &gerror, nullptr);
  fail_unless(strstr(gerror->message, "api-key") && strstr(gerror->message, "DASHSCOPE_API_KEY"),
              "%s", gerror->message);
  g_error_free(gerror);
  gst_message_unref(error);
  gst_bus_set_flushing(bus, TRUE);
  gst_element_set_state(sink, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(sink);
}
GST_END_TEST;

GST_START_TEST(test_key_from_environment_is_used) {
  auto service = start_service();
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  GstHarness *h = harness_with_bus("qwenasrsink sync=false url=" + service->url());
  g_unsetenv("DASHSCOPE_API_KEY");
  set_audio_caps(h, 16000);
  Audio audio = make_audio(16000, {{300, false}});
  fail_unless_equals_int(push_audio(h, audio, 100, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  fail_unless_equals_int(service->sessions().size(), 1);
  fail_unless(service->sessions()[0].finished, "session not finished");
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_bad_configuration_error_names_the_parameter) {
  auto service = start_service();
  GstHarness *h = sink_harness(service->url(), 16000, "language-code=xx");
  Audio audio = make_audio(16000, {{200, false}});
  push_audio(h, audio, 100, 0);
  GstMessage *error = wait_for_error(h->element);
  GError *gerror = nullptr;
  gst_message_parse_error(error, &gerror, nullptr);
  fail_unless(g_error_matches(gerror, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS), "%s",
              gerror->message);
  fail_unless(strstr(gerror->message, "session configuration") &&
                  strstr(gerror->message, "session.input_audio_transcription.language"),
              "%s", gerror->message);
  g_error_free(gerror);
  gst_message_unref(error);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_unreachable_service_is_a_connect_error_naming_the_host) {
  /* A port bound but not listening refuses connections, and nobody else can take it. */
  GSocket *socket =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  GInetAddress *loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any_port = g_inet_socket_address_new(loopback, 0);
  fail_unless(g_socket_bind(socket, any_port, FALSE, nullptr), "bind");
  GSocketAddress *bound = g_socket_get_local_address(socket, nullptr);
  guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_object_unref(any_port);
  g_object_unref(loopback);
  gchar *url = g_strdup_printf("ws://127.0.0.1:%u/api-ws/v1/realtime", port);
  GstHarness *h = harness_with_bus(
      std::string("qwenasrsink sync=false max-reconnects=0 api-key=test-key url=") + url);
  set_audio_caps(h, 16000);
  GstMessage *error = wait_for_error(h->element);
  GError *gerror = nullptr;
  gst_message_parse_error(error, &gerror, nullptr);
  fail_unless(strstr(gerror->message, "Could not connect to 127.0.0.1") != nullptr, "%s",
              gerror->message);
  g_error_free(gerror);
  gst_message_unref(error);
  g_free(url);
  teardown_harness(h);
  g_object_unref(socket);
}
GST_END_TEST;

GST_START_TEST(test_caps_other_than_s16le_mono_8k_16k_are_refused) {
  const char *refused[] = {
      "audio/x-raw,format=S16LE,channels=1,rate=44100,layout=interleaved",
      "audio/x-raw,format=S16LE,channels=2,rate=16000,layout=interleaved",
      "audio/x-raw,format=F32LE,channels=1,rate=16000,layout=interleaved",
      "audio/x-raw,format=S16BE,channels=1,rate=16000,layout=interleaved",
  };
  auto service = start_service();
  for (const char *caps : refused) {
    GstHarness *h = gst_harness_new_parse(
        ("qwenasrsink sync=false api-key=test-key url=" + service->url()).c_str());
    gst_harness_set_src_caps_str(h, caps);
    GstBuffer *buffer = gst_buffer_new_allocate(nullptr, 640, nullptr);
    gst_buffer_memset(buffer, 0, 0, 640);
    fail_unless_equals_int(gst_harness_push(h, buffer), GST_FLOW_NOT_NEGOTIATED);
    teardown_harness(h);
  }
  GstElement *sink = gst_element_factory_make("qwenasrsink", nullptr);
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  GstCaps *ok =
      gst_caps_from_string("audio/x-raw,format=S16LE,channels=1,rate=8000,layout=interleaved");
  fail_unless(gst_pad_query_accept_caps(pad, ok), "8 kHz must be accepted");
  gst_caps_unref(ok);
  gst_object_unref(pad);
  gst_object_unref(sink);
}
GST_END_TEST;

GST_START_TEST(test_repeated_state_changes_neither_hang_nor_leak_sessions) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{100, false}});
  for (int i = 0; i < 20; i++) {
    /* Stopped at every phase: before caps, connecting, streaming, and after EOS. */
    gsize sessions_before = service->sessions().size();
    GstHarness *h = sink_harness(service->url(), 16000);
    if (i % 4 >= 1)
      fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
    if (i % 4 >= 2) {
      gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
      while (service->sessions().size() == sessions_before)
        fail_unless(g_get_monotonic_time() < deadline, "no connection");
    }
    if (i % 4 == 3)
      fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
    teardown_harness(h);
  }
  /* Every connection the sink opened was closed again. */
  gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
  for (;;) {
    gsize open = 0;
    for (const auto &session : service->sessions())
      open += !session.closed;
    if (open == 0)
      break;
    fail_unless(g_get_monotonic_time() < deadline, "%zu sessions left open", open);
    g_usleep(1000);
  }
}
GST_END_TEST;

GST_START_TEST(test_readme_pipeline_decodebin_wav_to_sink) {
  auto service = start_service();
  Audio audio = make_audio(16000, kTwoUtterances);
  gchar *path = write_wav(audio);
  std::vector<GstMessage *> messages =
      run_pipeline(std::string("filesrc location=") + path +
                       " ! decodebin ! audioconvert ! audioresample ! qwenasrsink sync=false "
                       "api-key=test-key language-code=en url=" +
                       service->url(),
                   30 * GST_SECOND);
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 2);
  for (gsize i = 0; i < 2; i++) {
    std::string expected = audio.transcript_of(audio.utterances[i]);
    fail_unless_equals_string(gst_structure_get_string(finals[i], "text"), expected.c_str());
    assert_time_near(structure_time(finals[i], "start-time"),
                     audio.utterances[i].start_ms * GST_MSECOND, "start-time");
  }
  free_messages(messages);
  g_unlink(path);
  g_free(path);
}
GST_END_TEST;

static std::mutex log_mutex;

static void collect_log(GstDebugCategory *, GstDebugLevel, const gchar *, const gchar *, gint,
                        GObject *, GstDebugMessage *message, gpointer data) {
  /* Formatting may log again (printing objects): do it before taking the lock. */
  const gchar *text = gst_debug_message_get(message);
  if (!text)
    return;
  std::lock_guard<std::mutex> lock(log_mutex);
  auto *log = static_cast<std::string *>(data);
  log->append(text);
  log->push_back('\n');
}

static void stream_with_key(const std::string &url, const char *key) {
  /* Set from code, as an application does: gst-launch itself logs its command line. */
  GstElement *sink = gst_element_factory_make("qwenasrsink", nullptr);
  g_object_set(sink, "sync", FALSE, "api-key", key, "url", url.c_str(), "max-reconnects", 0,
               nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(sink, bus);
  gst_object_unref(bus);
  GstHarness *h = gst_harness_new_with_element(sink, "sink", nullptr);
  gst_object_unref(sink);
  set_audio_caps(h, 16000);
  push_audio(h, make_audio(16000, {{200, false}, {600, true}, {900, false}}), 20, 0);
  gst_harness_push_event(h, gst_event_new_eos());
  teardown_harness(h);
}

GST_START_TEST(test_api_key_is_never_logged_at_any_debug_level) {
  qwenasr::local::ServiceOptions options;
  options.api_key = "sk-in-process-secret-1f2e3d4c5b6a";
  auto service = start_service(options);
  std::string log;
  gst_debug_set_active(TRUE);
  gst_debug_add_log_function(collect_log, &log, nullptr);
  /* Every level of the plugin's own categories; the rest of GStreamer up to INFO (all of it
   * at MEMDUMP would print for minutes, and core never sees a key set from code). */
  gst_debug_set_default_threshold(GST_LEVEL_INFO);
  gst_debug_set_threshold_for_name("qwenasr*", GST_LEVEL_MEMDUMP);
  stream_with_key(service->url(), options.api_key.c_str());           /* accepted */
  stream_with_key(service->url(), "sk-rejected-secret-9a8b7c6d5e4f"); /* 401 */
  gst_debug_set_default_threshold(GST_LEVEL_NONE);
  gst_debug_unset_threshold_for_name("qwenasr*");
  gst_debug_remove_log_function(collect_log);
  std::lock_guard<std::mutex> lock(log_mutex);
  fail_unless(log.find("qwenasr/transcript") != std::string::npos ||
                  log.find("final transcript") != std::string::npos,
              "the accepted run logged no transcript (%zu bytes of log)", log.size());
  fail_unless(log.find("rejected the API key") != std::string::npos, "no rejection logged");
  fail_unless(log.find("sk-in-process-secret") == std::string::npos, "the accepted key leaked");
  fail_unless(log.find("sk-rejected-secret") == std::string::npos, "the rejected key leaked");
}
GST_END_TEST;

static Suite *qwenasrsink_suite(void) {
  Suite *s = suite_create("qwenasrsink");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_vad_utterances_have_exact_text_and_input_times_16k);
  tcase_add_test(tc, test_vad_utterances_have_exact_text_and_input_times_8k);
  tcase_add_test(tc, test_times_are_anchored_on_the_input_timestamps);
  tcase_add_test(tc, test_gap_in_input_timestamps_does_not_shift_later_captions);
  tcase_add_test(tc, test_manual_mode_commits_on_event_and_at_eos);
  tcase_add_test(tc, test_manual_mode_commits_every_commit_interval);
  tcase_add_test(tc, test_eos_without_speech_finishes_with_no_transcript);
  tcase_add_test(tc, test_rejected_key_is_a_not_authorized_error_that_hides_the_key);
  tcase_add_test(tc, test_forbidden_key_reports_403);
  tcase_add_test(tc, test_missing_key_fails_start_naming_property_and_variable);
  tcase_add_test(tc, test_key_from_environment_is_used);
  tcase_add_test(tc, test_bad_configuration_error_names_the_parameter);
  tcase_add_test(tc, test_unreachable_service_is_a_connect_error_naming_the_host);
  tcase_add_test(tc, test_caps_other_than_s16le_mono_8k_16k_are_refused);
  tcase_add_test(tc, test_repeated_state_changes_neither_hang_nor_leak_sessions);
  tcase_add_test(tc, test_readme_pipeline_decodebin_wav_to_sink);
  tcase_add_test(tc, test_api_key_is_never_logged_at_any_debug_level);
  return s;
}

GST_CHECK_MAIN(qwenasrsink);
