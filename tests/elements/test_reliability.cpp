/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Faults of the service and bad input from the pipeline: each one survived with every
 * utterance transcribed exactly once at the right time, or an error a person can act on. */
#include "testutil.h"

#include <cmath>

using namespace testutil;
using qwenasr::local::FaultOptions;
using qwenasr::local::ServiceOptions;

static std::unique_ptr<qwenasr::local::LocalService> faulty_service(const FaultOptions &faults) {
  ServiceOptions options;
  options.faults = faults;
  return start_service(options);
}

/* Streams `audio` through a sink to EOS and returns the bus. */
static std::vector<GstMessage *> transcribe(const std::string &url, const Audio &audio,
                                            const std::string &properties = "") {
  GstHarness *h = sink_harness(url, audio.rate, ("max-reconnects=5 " + properties).c_str());
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  teardown_harness(h);
  return messages;
}

/* Exactly one final per utterance, in order, with the exact text and times; no error. */
static void assert_nothing_lost(const std::vector<GstMessage *> &messages, const Audio &audio) {
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *error = nullptr;
      gst_message_parse_error(m, &error, nullptr);
      fail("unexpected error: %s", error->message);
    }
  }
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), audio.utterances.size());
  for (gsize i = 0; i < finals.size(); i++) {
    std::string expected = audio.transcript_of(audio.utterances[i]);
    fail_unless_equals_string(gst_structure_get_string(finals[i], "text"), expected.c_str());
    assert_time_near(structure_time(finals[i], "start-time"),
                     audio.utterances[i].start_ms * GST_MSECOND, "start-time");
    assert_time_near(structure_time(finals[i], "end-time"),
                     audio.utterances[i].end_ms * GST_MSECOND, "end-time");
  }
}

static guint count_session_states(const std::vector<GstMessage *> &messages, const char *state) {
  guint n = 0;
  for (GstMessage *m : messages) {
    const GstStructure *s = element_structure(m, "qwenasr/session");
    n += s && g_strcmp0(gst_structure_get_string(s, "state"), state) == 0;
  }
  return n;
}

static void check_survives(const FaultOptions &faults, guint expected_reconnects,
                           const std::string &properties = "") {
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  std::vector<GstMessage *> messages = transcribe(service->url(), audio, properties);
  assert_nothing_lost(messages, audio);
  fail_unless_equals_int(count_session_states(messages, "reconnecting"), expected_reconnects);
  auto sessions = service->sessions();
  fail_unless_equals_int(sessions.size(), expected_reconnects + 1);
  fail_unless(sessions.back().finished, "the last session did not finish");
  free_messages(messages);
}

GST_START_TEST(test_connection_closed_mid_utterance_reconnects_and_loses_nothing) {
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.close_after_appends = 12; /* 1.2 s in: inside the first utterance */
  check_survives(faults, 1);
}
GST_END_TEST;

GST_START_TEST(test_connection_dropped_without_close_frame_reconnects_and_loses_nothing) {
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.close_after_appends = 30; /* between the first two utterances */
  faults.close_abruptly = true;
  check_survives(faults, 1);
}
GST_END_TEST;

GST_START_TEST(test_reconnect_after_a_final_does_not_hear_its_tail_again) {
  /* Utterance ends that fall inside an append: the resend after the drop (3 s in, after the
   * first final) must start where that final ended, not at the start of its append. */
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.close_after_appends = 30;
  auto service = faulty_service(faults);
  /* Multiples of the service's 10 ms VAD frames, but not of the 100 ms appends. */
  Audio audio = make_audio(16000, {{630, false},
                                   {1230, true},
                                   {1510, false},
                                   {870, true},
                                   {1300, false},
                                   {1450, true},
                                   {1000, false}});
  std::vector<GstMessage *> messages = transcribe(service->url(), audio);
  assert_nothing_lost(messages, audio);
  fail_unless_equals_int(count_session_states(messages, "reconnecting"), 1);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_repeated_drops_each_reconnect_and_lose_nothing) {
  FaultOptions faults;
  faults.faulty_sessions = 3;
  faults.close_after_appends = 15;
  check_survives(faults, 3);
}
GST_END_TEST;

GST_START_TEST(test_server_error_reconnects_and_loses_nothing) {
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.server_error_after_appends = 40; /* during the second utterance */
  check_survives(faults, 1);
}
GST_END_TEST;

GST_START_TEST(test_rejected_handshakes_are_retried) {
  FaultOptions faults;
  faults.reject_handshakes = 2;
  faults.reject_status = 503;
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  std::vector<GstMessage *> messages = transcribe(service->url(), audio);
  assert_nothing_lost(messages, audio);
  fail_unless_equals_int(count_session_states(messages, "reconnecting"), 2);
  fail_unless_equals_int(service->handshakes_rejected(), 2);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_rate_limited_handshakes_are_retried) {
  FaultOptions faults;
  faults.reject_handshakes = 1;
  faults.reject_status = 429;
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  std::vector<GstMessage *> messages = transcribe(service->url(), audio);
  assert_nothing_lost(messages, audio);
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_stalled_service_delivers_everything_before_eos) {
  FaultOptions faults;
  faults.stall_after_appends = 10;
  faults.stall_ms = 2000;
  check_survives(faults, 0);
}
GST_END_TEST;

GST_START_TEST(test_slow_events_are_all_waited_for_at_eos) {
  FaultOptions faults;
  faults.event_delay_ms = 150;
  check_survives(faults, 0);
}
GST_END_TEST;

GST_START_TEST(test_dead_peer_is_detected_by_keepalive_and_replaced) {
  /* The service thread freezes: no events, no pongs. Three silent keepalive intervals later
   * the element gives the connection up and reconnects once the service is back. */
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.freeze_after_appends = 20;
  faults.freeze_ms = 4000;
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  std::vector<GstMessage *> messages =
      transcribe(service->url(), audio, "keepalive-interval=1 finish-timeout=30000");
  assert_nothing_lost(messages, audio);
  fail_unless(count_session_states(messages, "reconnecting") >= 1, "no reconnection");
  free_messages(messages);
}
GST_END_TEST;

GST_START_TEST(test_malformed_frames_are_survived) {
  FaultOptions faults;
  faults.malformed_frames = true;
  check_survives(faults, 0);
}
GST_END_TEST;

GST_START_TEST(test_exhausted_reconnects_end_in_an_error_that_says_so) {
  FaultOptions faults;
  faults.close_after_appends = 3; /* every session */
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  GstHarness *h = sink_harness(service->url(), 16000, "max-reconnects=2");
  push_audio(h, audio, 20, 0);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  GstMessage *error = nullptr;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      fail_unless(error == nullptr, "more than one error for one failure");
      error = m;
    }
  }
  fail_unless(error != nullptr, "no error once the attempts ran out");
  GError *gerror = nullptr;
  gst_message_parse_error(error, &gerror, nullptr);
  fail_unless(strstr(gerror->message, "after 2 reconnection attempts") != nullptr, "%s",
              gerror->message);
  fail_unless_equals_int(count_session_states(messages, "reconnecting"), 2);
  g_error_free(gerror);
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_stats_count_audio_reconnects_and_results) {
  FaultOptions faults;
  faults.faulty_sessions = 1;
  faults.close_after_appends = 12;
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  GstHarness *h = sink_harness(service->url(), 16000);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  fail_unless(stats != nullptr, "no stats");
  guint64 reconnects = 0, finals = 0, audio_sent = 0, bytes_sent = 0, appends = 0;
  gst_structure_get_uint64(stats, "reconnects", &reconnects);
  gst_structure_get_uint64(stats, "finals", &finals);
  gst_structure_get_uint64(stats, "audio-sent", &audio_sent);
  gst_structure_get_uint64(stats, "bytes-sent", &bytes_sent);
  gst_structure_get_uint64(stats, "appends", &appends);
  fail_unless_equals_uint64(reconnects, 1);
  fail_unless_equals_uint64(finals, 3);
  /* Every sample counted once in audio-sent; the resent ones again in bytes-sent (which also
   * counts what was written before the dropped connection was noticed). */
  fail_unless_equals_uint64(audio_sent, 7900 * GST_MSECOND);
  fail_unless(bytes_sent > audio.samples.size() * 2, "resent audio not in bytes-sent");
  guint64 received = 0;
  for (const auto &session : service->sessions())
    received += session.audio_bytes;
  fail_unless(bytes_sent >= received, "more received than sent");
  fail_unless(appends >= 79, "appends %" G_GUINT64_FORMAT, appends);
  gst_structure_free(stats);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_live_input_drops_oldest_audio_with_a_warning_instead_of_blocking) {
  /* The service refuses connections for a while; a live source cannot wait, so the queue
   * (max-queue-time 3 s) keeps the newest audio and says what it dropped. */
  FaultOptions faults;
  faults.reject_handshakes = 3;
  auto service = faulty_service(faults);
  Audio audio = make_audio(16000, kThreeUtterances);
  GstHarness *h = sink_harness(service->url(), 16000, "max-queue-time=3000 max-reconnects=10");
  gst_harness_set_live(h, TRUE);
  gint64 started = g_get_monotonic_time();
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(g_get_monotonic_time() - started < 2 * G_TIME_SPAN_SECOND,
              "the streaming thread blocked on a live source");
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  /* One warning when the dropping starts, one summary at the end: not one per chunk. */
  guint warned = 0, summed_up = 0;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
      GError *gerror = nullptr;
      gst_message_parse_warning(m, &gerror, nullptr);
      warned += strstr(gerror->message, "dropping the oldest") != nullptr;
      summed_up += strstr(gerror->message, "ms of live audio were dropped") != nullptr;
      g_error_free(gerror);
    }
    fail_if(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR, "unexpected error");
  }
  fail_unless_equals_int(warned, 1);
  fail_unless_equals_int(summed_up, 1);
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 dropped = 0;
  gst_structure_get_uint64(stats, "dropped-audio", &dropped);
  fail_unless(dropped > 0, "dropped audio not counted");
  gst_structure_free(stats);
  /* What was kept reached the service: the newest audio, whose last utterance is whole. */
  auto finals = transcripts(messages, true);
  fail_unless(!finals.empty(), "nothing transcribed after the outage");
  std::string last = audio.transcript_of(audio.utterances.back());
  fail_unless_equals_string(gst_structure_get_string(finals.back(), "text"), last.c_str());
  assert_time_near(structure_time(finals.back(), "start-time"),
                   audio.utterances.back().start_ms * GST_MSECOND, "start of the kept one");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_untimestamped_empty_and_odd_sized_buffers_are_survived) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{300, false}, {800, true}, {900, false}});
  GstHarness *h = sink_harness(service->url(), 16000);
  /* Odd sizes split samples across buffers; no timestamps anywhere; empty buffers between. */
  const guint8 *bytes = reinterpret_cast<const guint8 *>(audio.samples.data());
  gsize total = audio.samples.size() * 2, offset = 0, step = 333;
  while (offset < total) {
    gsize n = std::min(step, total - offset);
    fail_unless_equals_int(gst_harness_push(h, gst_buffer_new_memdup(bytes + offset, n)),
                           GST_FLOW_OK);
    fail_unless_equals_int(gst_harness_push(h, gst_buffer_new()), GST_FLOW_OK);
    offset += n;
  }
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  assert_nothing_lost(messages, audio);
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

static Suite *reliability_suite(void) {
  Suite *s = suite_create("reliability");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_connection_closed_mid_utterance_reconnects_and_loses_nothing);
  tcase_add_test(tc, test_connection_dropped_without_close_frame_reconnects_and_loses_nothing);
  tcase_add_test(tc, test_reconnect_after_a_final_does_not_hear_its_tail_again);
  tcase_add_test(tc, test_repeated_drops_each_reconnect_and_lose_nothing);
  tcase_add_test(tc, test_server_error_reconnects_and_loses_nothing);
  tcase_add_test(tc, test_rejected_handshakes_are_retried);
  tcase_add_test(tc, test_rate_limited_handshakes_are_retried);
  tcase_add_test(tc, test_stalled_service_delivers_everything_before_eos);
  tcase_add_test(tc, test_slow_events_are_all_waited_for_at_eos);
  tcase_add_test(tc, test_dead_peer_is_detected_by_keepalive_and_replaced);
  tcase_add_test(tc, test_malformed_frames_are_survived);
  tcase_add_test(tc, test_exhausted_reconnects_end_in_an_error_that_says_so);
  tcase_add_test(tc, test_stats_count_audio_reconnects_and_results);
  tcase_add_test(tc, test_live_input_drops_oldest_audio_with_a_warning_instead_of_blocking);
  tcase_add_test(tc, test_untimestamped_empty_and_odd_sized_buffers_are_survived);
  return s;
}

GST_CHECK_MAIN(reliability);
