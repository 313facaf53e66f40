/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Server behaviours seen in the wild (issue 13), scripted in the local service: repeated and
 * reordered finals, mangled text, finals that never come or come after session.finished, a
 * session that never starts, rate limits. Each utterance comes out exactly once and in
 * order, or is reported. */
#include "testutil.h"

using namespace testutil;
using qwenasr::local::FaultOptions;
using qwenasr::local::ServiceOptions;

/* Item A 200-500 ms, item B 1200-1500 ms, 2.5 s in all (VAD silence 400 ms). */
static const std::vector<Stretch> kTwoShort = {
    {200, false}, {300, true}, {700, false}, {300, true}, {1000, false}};
static const char kVad[] = "vad-silence-ms=400 ";

static std::unique_ptr<qwenasr::local::LocalService> scripted(const FaultOptions &faults) {
  ServiceOptions options;
  options.faults = faults;
  return start_service(options);
}

static std::vector<GstMessage *> sink_run(const std::string &url, const Audio &audio,
                                          GstStructure **stats,
                                          const std::string &properties = "") {
  GstHarness *h = sink_harness(url, audio.rate, (kVad + properties).c_str());
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  g_object_get(h->element, "stats", stats, nullptr);
  teardown_harness(h);
  return messages;
}

struct Caption {
  GstClockTime pts;
  std::string text;
};

static std::vector<Caption> caption_run(const std::string &url, const Audio &audio,
                                        std::vector<GstMessage *> *messages) {
  GstHarness *h = caption_harness(url, audio.rate, std::string(kVad) + "min-duration=0");
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  /* The output task pushes: every caption is out once its EOS is. */
  for (GstEvent *event : pull_events_until_eos(h))
    gst_event_unref(event);
  std::vector<Caption> captions;
  while (GstBuffer *buffer = gst_harness_try_pull(h)) {
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    captions.push_back(
        {GST_BUFFER_PTS(buffer), std::string(reinterpret_cast<const char *>(map.data), map.size)});
    gst_buffer_unmap(buffer, &map);
    gst_buffer_unref(buffer);
  }
  *messages = drain_bus(h->element);
  teardown_harness(h);
  return captions;
}

static guint64 stat(const GstStructure *stats, const char *name) {
  guint64 value = G_MAXUINT64;
  fail_unless(gst_structure_get_uint64(stats, name, &value), "no %s in stats", name);
  g_print("  stats %s = %" G_GUINT64_FORMAT "\n", name, value);
  return value;
}

/* The texts of warnings (or errors) posted, in order. */
static std::vector<std::string> texts_of(const std::vector<GstMessage *> &messages,
                                         GstMessageType type) {
  std::vector<std::string> texts;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) != type)
      continue;
    GError *error = nullptr;
    if (type == GST_MESSAGE_ERROR)
      gst_message_parse_error(m, &error, nullptr);
    else
      gst_message_parse_warning(m, &error, nullptr);
    texts.push_back(error->message);
    g_error_free(error);
  }
  return texts;
}

/* Exactly one warning was posted, and it contains each of `parts`. */
static void assert_one_warning(const std::vector<GstMessage *> &messages,
                               std::initializer_list<const char *> parts) {
  std::vector<std::string> warnings = texts_of(messages, GST_MESSAGE_WARNING);
  fail_unless_equals_int(warnings.size(), 1);
  g_print("  warning: %s\n", warnings[0].c_str());
  for (const char *part : parts)
    fail_unless(warnings[0].find(part) != std::string::npos, "no \"%s\" in: %s", part,
                warnings[0].c_str());
}

/* Both finals, once each, in audio order, with their text and times. */
static void assert_finals_in_order(const std::vector<GstMessage *> &messages, const Audio &audio,
                                   const std::string &suffix = "") {
  fail_unless(texts_of(messages, GST_MESSAGE_ERROR).empty(), "unexpected error");
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), audio.utterances.size());
  for (gsize i = 0; i < finals.size(); i++) {
    g_print("  final %" G_GSIZE_FORMAT ": \"%s\" %" GST_TIME_FORMAT " - %" GST_TIME_FORMAT "\n", i,
            gst_structure_get_string(finals[i], "text"),
            GST_TIME_ARGS(structure_time(finals[i], "start-time")),
            GST_TIME_ARGS(structure_time(finals[i], "end-time")));
    std::string expected = audio.transcript_of(audio.utterances[i]) + suffix;
    fail_unless_equals_string(gst_structure_get_string(finals[i], "text"), expected.c_str());
    assert_time_near(structure_time(finals[i], "start-time"),
                     audio.utterances[i].start_ms * GST_MSECOND, "start-time");
    assert_time_near(structure_time(finals[i], "end-time"),
                     audio.utterances[i].end_ms * GST_MSECOND, "end-time");
  }
}

static void assert_captions_in_order(const std::vector<Caption> &captions, const Audio &audio) {
  fail_unless_equals_int(captions.size(), audio.utterances.size());
  for (gsize i = 0; i < captions.size(); i++) {
    g_print("  caption %" G_GSIZE_FORMAT " at %" GST_TIME_FORMAT ": \"%s\"\n", i,
            GST_TIME_ARGS(captions[i].pts), captions[i].text.c_str());
    std::string expected = audio.transcript_of(audio.utterances[i]);
    fail_unless_equals_string(captions[i].text.c_str(), expected.c_str());
    assert_time_near(captions[i].pts, audio.utterances[i].start_ms * GST_MSECOND, "caption pts");
  }
}

/* Both finals posted once each, in audio order, and `counter` in stats at `expected`. */
static void check_finals(const FaultOptions &faults, const char *counter, guint64 expected) {
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  fail_unless_equals_int(service->sessions().at(0).injected_faults.size(),
                         faults.repeat_finals ? 2 : 1);
  assert_finals_in_order(messages, audio);
  fail_unless_equals_uint64(stat(stats, counter), expected);
  fail_unless_equals_uint64(stat(stats, "finals"), 2);
  gst_structure_free(stats);
  free_messages(messages);
}

/* Both captions once each, in audio order, at their utterances' starts. */
static void check_captions(const FaultOptions &faults) {
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  std::vector<GstMessage *> messages;
  std::vector<Caption> captions = caption_run(service->url(), audio, &messages);
  assert_captions_in_order(captions, audio);
  free_messages(messages);
}

static FaultOptions repeating() {
  FaultOptions faults;
  faults.repeat_finals = true;
  return faults;
}

static FaultOptions reversing() {
  FaultOptions faults;
  faults.reverse_finals = true;
  return faults;
}

/* Case 1. */
GST_START_TEST(test_a_final_delivered_twice_is_posted_once_and_counted) {
  g_print("%s\n", "test_a_final_delivered_twice_is_posted_once_and_counted");
  check_finals(repeating(), "repeated-finals", 2);
}
GST_END_TEST;

GST_START_TEST(test_a_final_delivered_twice_is_captioned_once) {
  g_print("%s\n", "test_a_final_delivered_twice_is_captioned_once");
  check_captions(repeating());
}
GST_END_TEST;

/* Case 2. */
GST_START_TEST(test_finals_in_reverse_order_are_posted_in_audio_order) {
  g_print("%s\n", "test_finals_in_reverse_order_are_posted_in_audio_order");
  check_finals(reversing(), "out-of-order-finals", 0);
}
GST_END_TEST;

GST_START_TEST(test_finals_in_reverse_order_are_captioned_in_audio_order_at_their_times) {
  g_print("%s\n", "test_finals_in_reverse_order_are_captioned_in_audio_order_at_their_times");
  check_captions(reversing());
}
GST_END_TEST;

/* Case 3, and the tolerant decoding of both kinds of bad text. */
static void check_repaired(const char *raw_suffix, const char *warning_names) {
  FaultOptions faults;
  faults.transcript_raw_suffix = raw_suffix;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  assert_finals_in_order(messages, audio, " \xEF\xBF\xBD");
  /* One warning for the kind, not one per frame; every repaired frame counted. */
  assert_one_warning(messages, {warning_names});
  fail_unless_equals_uint64(stat(stats, "repaired-frames"), 2);
  gst_structure_free(stats);
  free_messages(messages);
}

GST_START_TEST(test_a_lone_surrogate_escape_is_repaired_not_dropped) {
  g_print("%s\n", "test_a_lone_surrogate_escape_is_repaired_not_dropped");
  check_repaired(" \\ud83d", "half a UTF-16 surrogate pair");
}
GST_END_TEST;

GST_START_TEST(test_invalid_utf8_is_repaired_not_dropped) {
  g_print("%s\n", "test_invalid_utf8_is_repaired_not_dropped");
  check_repaired(" \xff", "invalid UTF-8");
}
GST_END_TEST;

GST_START_TEST(test_malformed_frames_are_warned_about_once_and_counted) {
  g_print("%s\n", "test_malformed_frames_are_warned_about_once_and_counted");
  FaultOptions faults;
  faults.malformed_frames = true;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  assert_finals_in_order(messages, audio);
  assert_one_warning(messages, {"not a usable event"});
  fail_unless(stat(stats, "bad-frames") > 5, "bad frames not counted");
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

/* Case 4. */
GST_START_TEST(test_an_utterance_never_finalized_is_warned_about_with_its_span) {
  g_print("%s\n", "test_an_utterance_never_finalized_is_warned_about_with_its_span");
  FaultOptions faults;
  faults.drop_final_of = 1;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  fail_unless(texts_of(messages, GST_MESSAGE_ERROR).empty(), "unexpected error");
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 1);
  std::string expected = audio.transcript_of(audio.utterances[1]);
  fail_unless_equals_string(gst_structure_get_string(finals[0], "text"), expected.c_str());
  assert_one_warning(messages, {"no transcript for 1 utterance(s)", "0:00:00.200 - 0:00:00.500"});
  fail_unless_equals_uint64(stat(stats, "lost-utterances"), 1);
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_a_manual_commit_never_finalized_is_warned_about_with_its_span) {
  g_print("%s\n", "test_a_manual_commit_never_finalized_is_warned_about_with_its_span");
  /* Commits every second of 2.5 s: [0, 1), [1, 2), then [2, 2.5) at EOS; the first gets no
   * final, the later ones are posted without waiting for it past the end. */
  FaultOptions faults;
  faults.drop_final_of = 1;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages =
      sink_run(service->url(), audio, &stats, "turn-detection=manual commit-interval=1000");
  fail_unless(texts_of(messages, GST_MESSAGE_ERROR).empty(), "unexpected error");
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 2);
  assert_time_near(structure_time(finals[0], "start-time"), GST_SECOND, "second commit");
  assert_time_near(structure_time(finals[1], "start-time"), 2 * GST_SECOND, "third commit");
  assert_one_warning(messages, {"0:00:00.000 - 0:00:01.000"});
  fail_unless_equals_uint64(stat(stats, "lost-utterances"), 1);
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_finals_after_session_finished_are_still_taken) {
  g_print("%s\n", "test_finals_after_session_finished_are_still_taken");
  FaultOptions faults;
  faults.finals_after_finished_from = 1; /* both */
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  assert_finals_in_order(messages, audio);
  fail_unless(texts_of(messages, GST_MESSAGE_WARNING).empty(), "unexpected warning");
  fail_unless_equals_uint64(stat(stats, "lost-utterances"), 0);
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

/* The TLS tests: not under AddressSanitizer (see faults_suite()). */
#ifndef __SANITIZE_ADDRESS__
/* Case 5. */
GST_START_TEST(test_wss_to_a_plain_server_is_an_error_naming_tls_and_host) {
  g_print("%s\n", "test_wss_to_a_plain_server_is_an_error_naming_tls_and_host");
  auto service = start_service();
  std::string url = "wss://" + service->url().substr(strlen("ws://"));
  Audio audio = make_audio(16000, {{300, false}, {300, true}, {400, false}});
  gint64 started = g_get_monotonic_time();
  GstStructure *stats = nullptr;
  /* A plain server never answers the TLS hello: the connect timeout ends it, once. */
  std::vector<GstMessage *> messages = sink_run(url, audio, &stats, "connect-timeout=1000");
  std::vector<std::string> errors = texts_of(messages, GST_MESSAGE_ERROR);
  fail_unless_equals_int(errors.size(), 1);
  g_print("  error: %s\n", errors[0].c_str());
  fail_unless(errors[0].find("127.0.0.1") != std::string::npos, "%s", errors[0].c_str());
  fail_unless(errors[0].find("TLS handshake got no answer") != std::string::npos, "%s",
              errors[0].c_str());
  for (const std::string &warning : texts_of(messages, GST_MESSAGE_WARNING))
    fail_if(warning.find("finish-timeout") != std::string::npos, "%s", warning.c_str());
  /* Said at once, not after the connect and finish timeouts. */
  fail_unless(g_get_monotonic_time() - started < 5 * G_TIME_SPAN_SECOND, "too slow");
  fail_unless(service->sessions().empty(), "a session was established");
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

/* A wss:// service with the test certificate for localhost (tests/data). */
static std::unique_ptr<qwenasr::local::LocalService> start_tls_service() {
  qwenasr::local::ServiceOptions options;
  options.tls_certificate_file = TEST_DATA_DIR "/localhost-cert.pem";
  options.tls_key_file = TEST_DATA_DIR "/localhost-key.pem";
  return start_service(options);
}

/* A wss:// service whose certificate tls-ca-file vouches for: the audio goes out from the
 * streaming thread through TLS while the network thread reads the events. */
GST_START_TEST(test_wss_with_tls_ca_file_transcribes_every_utterance) {
  g_print("%s\n", "test_wss_with_tls_ca_file_transcribes_every_utterance");
  auto service = start_tls_service();
  fail_unless(g_str_has_prefix(service->url().c_str(), "wss://"), "%s", service->url().c_str());
  Audio audio = make_audio(16000, kThreeUtterances);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages =
      sink_run(service->url(), audio, &stats, " tls-ca-file=" TEST_DATA_DIR "/localhost-cert.pem");
  fail_unless_equals_int(texts_of(messages, GST_MESSAGE_ERROR).size(), 0);
  std::vector<const GstStructure *> finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), audio.utterances.size());
  for (size_t i = 0; i < finals.size(); i++) {
    const std::string expected = audio.transcript_of(audio.utterances[i]);
    fail_unless_equals_string(gst_structure_get_string(finals[i], "text"), expected.c_str());
  }
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

/* Without tls-ca-file the same server's certificate is unknown: one error, at once, that
 * names TLS, the host and the cure (not retried: a new connection cannot fix it). */
GST_START_TEST(test_wss_with_an_unknown_certificate_is_an_error_naming_tls_and_host) {
  g_print("%s\n", "test_wss_with_an_unknown_certificate_is_an_error_naming_tls_and_host");
  auto service = start_tls_service();
  Audio audio = make_audio(16000, {{300, false}, {300, true}, {400, false}});
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  std::vector<std::string> errors = texts_of(messages, GST_MESSAGE_ERROR);
  fail_unless_equals_int(errors.size(), 1);
  g_print("  error: %s\n", errors[0].c_str());
  fail_unless(errors[0].find("127.0.0.1") != std::string::npos, "%s", errors[0].c_str());
  fail_unless(errors[0].find("TLS") != std::string::npos, "%s", errors[0].c_str());
  fail_unless(errors[0].find("tls-ca-file") != std::string::npos, "%s", errors[0].c_str());
  fail_unless(service->sessions().empty(), "a session was established");
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;
#endif

GST_START_TEST(test_a_session_never_established_at_eos_is_an_error_naming_the_cause) {
  g_print("%s\n", "test_a_session_never_established_at_eos_is_an_error_naming_the_cause");
  /* Every handshake refused with 503 (retried): EOS comes before the attempts run out. */
  FaultOptions faults;
  faults.reject_handshakes = G_MAXUINT;
  faults.reject_status = 503;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, {{300, false}, {300, true}, {400, false}});
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(
      service->url(), audio, &stats, "max-reconnects=100 connect-timeout=1000 finish-timeout=500");
  std::vector<std::string> errors = texts_of(messages, GST_MESSAGE_ERROR);
  fail_unless_equals_int(errors.size(), 1);
  g_print("  error: %s\n", errors[0].c_str());
  fail_unless(errors[0].find("No session with the service at 127.0.0.1 was ever established") !=
                  std::string::npos,
              "%s", errors[0].c_str());
  fail_unless(errors[0].find("503") != std::string::npos, "%s", errors[0].c_str());
  for (const std::string &warning : texts_of(messages, GST_MESSAGE_WARNING))
    fail_if(warning.find("finish-timeout") != std::string::npos, "%s", warning.c_str());
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_a_rate_limited_handshake_waits_as_told_by_retry_after) {
  g_print("%s\n", "test_a_rate_limited_handshake_waits_as_told_by_retry_after");
  FaultOptions faults;
  faults.reject_handshakes = 1;
  faults.reject_status = 429;
  faults.retry_after_s = 2;
  auto service = scripted(faults);
  Audio audio = make_audio(16000, kTwoShort);
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages = sink_run(service->url(), audio, &stats);
  assert_finals_in_order(messages, audio);
  guint reconnecting = 0;
  for (GstMessage *m : messages) {
    const GstStructure *s = element_structure(m, "qwenasr/session");
    if (s && g_strcmp0(gst_structure_get_string(s, "state"), "reconnecting") == 0) {
      reconnecting++;
      g_print("  reconnecting after %" GST_TIME_FORMAT "\n",
              GST_TIME_ARGS(structure_time(s, "delay")));
      fail_unless_equals_uint64(structure_time(s, "delay"), 2 * GST_SECOND);
    }
  }
  fail_unless_equals_int(reconnecting, 1);
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_a_resend_buffer_overflow_warns_once_and_sums_up_once) {
  g_print("%s\n", "test_a_resend_buffer_overflow_warns_once_and_sums_up_once");
  /* One 4 s utterance sent as fast as possible with room for 0.5 s of resend audio: the
   * oldest is given up append after append, but said once, and summed up at the final. */
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {4000, true}, {800, false}});
  GstStructure *stats = nullptr;
  std::vector<GstMessage *> messages =
      sink_run(service->url(), audio, &stats, "max-resend-time=500");
  std::vector<std::string> warnings = texts_of(messages, GST_MESSAGE_WARNING);
  fail_unless_equals_int(warnings.size(), 2);
  fail_unless(warnings[0].find("could not be kept for a reconnection") != std::string::npos, "%s",
              warnings[0].c_str());
  fail_unless(warnings[1].find("In all") != std::string::npos, "%s", warnings[1].c_str());
  fail_unless_equals_int(transcripts(messages, true).size(), 1);
  gst_structure_free(stats);
  free_messages(messages);
}
GST_END_TEST;

static GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer data) {
  g_atomic_int_inc(static_cast<gint *>(data));
  return GST_PAD_PROBE_OK;
}

GST_START_TEST(test_no_audio_is_sent_while_paused) {
  g_print("%s\n", "test_no_audio_is_sent_while_paused");
  /* As `qwenasr ! srtenc ! filesink` prerolling a file: nothing reaches the paid service
   * before PLAYING; then all of it. */
  auto service = start_service();
  GError *error = nullptr;
  std::string description =
      "audiotestsrc num-buffers=50 samplesperbuffer=1600 ! "
      "audio/x-raw,format=S16LE,rate=16000,channels=1 ! qwenasr name=asr api-key=test-key url=" +
      service->url() + " ! srtenc ! fakesink";
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(error == nullptr, "%s", error ? error->message : "");
  GstElement *asr = gst_bin_get_by_name(GST_BIN(pipeline), "asr");
  GstPad *pad = gst_element_get_static_pad(asr, "sink");
  gint buffers = 0;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &buffers, nullptr);
  gst_object_unref(pad);
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  fail_unless_equals_int(gst_element_get_state(pipeline, nullptr, nullptr, 10 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  GstStructure *stats = nullptr;
  g_object_get(asr, "stats", &stats, nullptr);
  fail_unless_equals_uint64(stat(stats, "audio-sent"), 0);
  gst_structure_free(stats);
  fail_unless(g_atomic_int_get(&buffers) <= 1, "%d buffers taken while paused", buffers);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *done = gst_bus_timed_pop_filtered(
      bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "no EOS");
  gst_message_unref(done);
  g_object_get(asr, "stats", &stats, nullptr);
  fail_unless_equals_uint64(stat(stats, "audio-sent"), 5 * GST_SECOND);
  gst_structure_free(stats);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(asr);
  gst_object_unref(pipeline);
}
GST_END_TEST;

static Suite *faults_suite(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_a_final_delivered_twice_is_posted_once_and_counted);
  tcase_add_test(tc, test_a_final_delivered_twice_is_captioned_once);
  tcase_add_test(tc, test_finals_in_reverse_order_are_posted_in_audio_order);
  tcase_add_test(tc, test_finals_in_reverse_order_are_captioned_in_audio_order_at_their_times);
  tcase_add_test(tc, test_a_lone_surrogate_escape_is_repaired_not_dropped);
  tcase_add_test(tc, test_invalid_utf8_is_repaired_not_dropped);
  tcase_add_test(tc, test_malformed_frames_are_warned_about_once_and_counted);
  tcase_add_test(tc, test_an_utterance_never_finalized_is_warned_about_with_its_span);
  tcase_add_test(tc, test_a_manual_commit_never_finalized_is_warned_about_with_its_span);
  tcase_add_test(tc, test_finals_after_session_finished_are_still_taken);
#ifndef __SANITIZE_ADDRESS__
  /* Under AddressSanitizer, LeakSanitizer's tracer crashes at exit after a TLS handshake
   * ("Tracer caught signal 11", with GnuTLS threads about): the normal and valgrind runs
   * cover these. */
  tcase_add_test(tc, test_wss_to_a_plain_server_is_an_error_naming_tls_and_host);
  tcase_add_test(tc, test_wss_with_tls_ca_file_transcribes_every_utterance);
  tcase_add_test(tc, test_wss_with_an_unknown_certificate_is_an_error_naming_tls_and_host);
#endif
  tcase_add_test(tc, test_a_session_never_established_at_eos_is_an_error_naming_the_cause);
  tcase_add_test(tc, test_a_rate_limited_handshake_waits_as_told_by_retry_after);
  tcase_add_test(tc, test_no_audio_is_sent_while_paused);
  tcase_add_test(tc, test_a_resend_buffer_overflow_warns_once_and_sums_up_once);
  return s;
}

GST_CHECK_MAIN(faults);
