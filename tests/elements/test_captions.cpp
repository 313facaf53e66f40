/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What viewers get from qwenasr's captions against the local service: non-live captions on
 * their speech however slowly the service answers, reading time, roll-up's latency, and a
 * language change tagged before its first caption (textoverlay: test_caption_pipelines.cpp). */
#include "testutil.h"

#include <algorithm>
#include <mutex>

using namespace testutil;

/* Caption buffers and tag events on the element's source pad, in the order they left. */
struct Recorded {
  std::mutex lock;
  std::vector<std::string> items;              /* "tag:<language>" or "text:<caption>" */
  std::vector<GstClockTime> starts, durations; /* of each caption */
  std::vector<std::string> texts;
};

static GstPadProbeReturn record_item(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *recorded = static_cast<Recorded *>(data);
  std::lock_guard<std::mutex> guard(recorded->lock);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    recorded->items.push_back("text:" +
                              std::string(reinterpret_cast<const char *>(map.data), map.size));
    gst_buffer_unmap(buffer, &map);
    recorded->starts.push_back(GST_BUFFER_PTS(buffer));
    recorded->durations.push_back(GST_BUFFER_DURATION(buffer));
    recorded->texts.push_back(recorded->items.back().substr(5));
  } else if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_TAG) {
    GstTagList *tags;
    gst_event_parse_tag(GST_PAD_PROBE_INFO_EVENT(info), &tags);
    gchar *code = nullptr;
    if (gst_tag_list_get_string(tags, GST_TAG_LANGUAGE_CODE, &code))
      recorded->items.push_back(std::string("tag:") + code);
    g_free(code);
  }
  return GST_PAD_PROBE_OK;
}

static void record_output(GstElement *element, Recorded *recorded) {
  GstPad *pad = gst_element_get_static_pad(element, "src");
  gst_pad_add_probe(
      pad,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      record_item, recorded, nullptr);
  gst_object_unref(pad);
}

static void unref_events(std::vector<GstEvent *> &events) {
  for (GstEvent *e : events)
    gst_event_unref(e);
  events.clear();
}

/* `bursts` bursts of 0.3 s, 0.8 s apart, pushed as fast as a file is read, then EOS, with
 * every service event `event_delay_ms` late: each caption starts with its burst. */
static void check_file_captions_on_their_speech(guint event_delay_ms, guint bursts,
                                                const char *properties) {
  qwenasr::local::ServiceOptions options;
  options.faults.event_delay_ms = event_delay_ms;
  auto service = start_service(options);
  std::vector<Stretch> stretches;
  for (guint i = 0; i < bursts; i++) {
    stretches.push_back({300, true});
    stretches.push_back({500, false});
  }
  Audio audio = make_audio(16000, stretches);
  GstHarness *h = caption_harness(service->url(), 16000, properties);
  Recorded recorded;
  record_output(h->element, &recorded);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstEvent *> events = pull_events_until_eos(h);
  unref_events(events);
  fail_unless_equals_int(recorded.starts.size(), bursts);
  for (guint i = 0; i < bursts; i++) {
    GstClockTime truth = audio.utterances[i].start_ms * GST_MSECOND;
    GstClockTimeDiff off = GST_CLOCK_DIFF(truth, recorded.starts[i]);
    fail_unless(std::llabs(off) <= static_cast<GstClockTimeDiff>(kTolerance),
                "caption %u at %" GST_TIME_FORMAT ", speech at %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(recorded.starts[i]), GST_TIME_ARGS(truth));
  }
  teardown_harness(h);
}

/* Every service event 1.5 s late (a slow machine or service): the text side waits for what
 * the service reports, not for a wall-clock budget, also under valgrind. */
GST_START_TEST(test_not_live_captions_land_on_their_speech_however_slowly_the_service_answers) {
  check_file_captions_on_their_speech(1500, 5, "vad-silence-ms=300");
}
GST_END_TEST;

/* The service slower than `latency` (events 2.5 s late, latency 1 s): the file is handed over
 * at once and the element drains at EOS, waiting for the service; nothing waits for the text
 * then, so the overdue budget does not push captions past their speech. */
GST_START_TEST(
    test_not_live_captions_stay_on_their_speech_when_the_service_is_slower_than_latency) {
  check_file_captions_on_their_speech(2500, 3, "vad-silence-ms=300 latency=1000");
}
GST_END_TEST;

GST_START_TEST(test_with_reading_time_a_caption_stays_up_until_it_can_be_read) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {1000, true}, {4000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "reading-time=true");
  Recorded recorded;
  record_output(h->element, &recorded);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstEvent *> events = pull_events_until_eos(h);
  unref_events(events);
  fail_unless_equals_int(recorded.texts.size(), 1);
  /* Its characters (spaces and line breaks aside) at 17 a second, longer than min-duration
   * and than the 1 s of speech. */
  const std::string &text = recorded.texts[0];
  guint chars = text.size() - std::count(text.begin(), text.end(), ' ') -
                std::count(text.begin(), text.end(), '\n');
  GstClockTime reading = static_cast<GstClockTime>(chars / 17.0 * GST_SECOND);
  fail_unless(reading > 1200 * GST_MSECOND, "too short to tell: %s", text.c_str());
  assert_time_near(recorded.durations[0], reading, "caption duration");
  teardown_harness(h);
}
GST_END_TEST;

static GstClockTime reported_latency(GstHarness *h) {
  GstQuery *query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(h->sinkpad, query), "latency query failed");
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency(query, &live, &min, &max);
  gst_query_unref(query);
  return min;
}

GST_START_TEST(test_roll_up_reports_a_latency_sized_for_confirmed_words) {
  GstHarness *h = harness_with_bus(
      "qwenasr api-key=test-key url=ws://127.0.0.1:9/none caption-mode=roll-up", "src");
  gst_harness_set_live(h, TRUE);
  gst_harness_set_upstream_latency(h, 20 * GST_MSECOND);
  guint latency = 0;
  g_object_get(h->element, "latency", &latency, nullptr);
  fail_unless_equals_int(latency, 1000);
  fail_unless_equals_uint64(reported_latency(h), 1020 * GST_MSECOND);
  /* Back to pop-on: whole utterances need the 8 s default again. */
  g_object_set(h->element, "caption-mode", 0, nullptr);
  fail_unless_equals_uint64(reported_latency(h), 8020 * GST_MSECOND);
  /* A latency that was set stays whatever the mode. */
  g_object_set(h->element, "latency", 3000, "caption-mode", 1, nullptr);
  fail_unless_equals_uint64(reported_latency(h), 3020 * GST_MSECOND);
  g_object_set(h->element, "caption-mode", 0, nullptr);
  fail_unless_equals_uint64(reported_latency(h), 3020 * GST_MSECOND);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_a_language_change_is_tagged_before_its_first_caption) {
  /* The first session's finals say Chinese (the service writes a language member after the
   * transcript, which the parser takes as the last word), the second's English. A new
   * segment ends the first session; the output stream goes on. */
  qwenasr::local::ServiceOptions options;
  options.faults.faulty_sessions = 1;
  options.faults.transcript_raw_suffix = "\",\"language\":\"zh\",\"x\":\"";
  auto service = start_service(options);
  Audio audio = make_audio(16000, {{200, false}, {800, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "language-code=en");
  Recorded recorded;
  record_output(h->element, &recorded);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  segment.start = segment.time = 10 * GST_SECOND;
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  fail_unless_equals_int(push_audio(h, audio, 20, 10 * GST_SECOND), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  std::vector<GstEvent *> events = pull_events_until_eos(h);
  unref_events(events);
  std::vector<std::string> kinds;
  for (const std::string &item : recorded.items)
    kinds.push_back(item.substr(0, 5) == "text:" ? "text" : item);
  std::vector<std::string> expected = {"tag:zh", "text", "tag:en", "text"};
  fail_unless(kinds == expected, "got %zu items, first %s", kinds.size(),
              kinds.empty() ? "-" : kinds[0].c_str());
  teardown_harness(h);
}
GST_END_TEST;

static Suite *captions_suite(void) {
  Suite *s = suite_create("captions");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc,
                 test_not_live_captions_land_on_their_speech_however_slowly_the_service_answers);
  tcase_add_test(
      tc, test_not_live_captions_stay_on_their_speech_when_the_service_is_slower_than_latency);
  tcase_add_test(tc, test_with_reading_time_a_caption_stays_up_until_it_can_be_read);
  tcase_add_test(tc, test_roll_up_reports_a_latency_sized_for_confirmed_words);
  tcase_add_test(tc, test_a_language_change_is_tagged_before_its_first_caption);
  return s;
}

GST_CHECK_MAIN(captions);
