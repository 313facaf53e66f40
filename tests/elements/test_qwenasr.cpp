/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr in a harness against the local service: event order, caption times against the
 * truth, a continuous text timeline, latency answers, drain, segment changes and flushes. */
#include "testutil.h"

#include <algorithm>
#include <cmath>

using namespace testutil;

static const std::vector<Stretch> kTwoUtterances = {
    {500, false}, {1000, true}, {1500, false}, {700, true}, {1000, false}};

/* What the harness received on the text side, in order. */
struct Output {
  std::vector<GstEvent *> events; /* serialized events and buffers interleave: see items */
  struct Item {
    bool is_buffer;
    GstClockTime start, duration;
    std::string text;
    GstEventType event_type;
  };
  std::vector<Item> items;
  GstCaps *caps = nullptr;
  ~Output() {
    for (GstEvent *e : events)
      gst_event_unref(e);
    if (caps)
      gst_caps_unref(caps);
  }
  std::vector<Item> captions() const {
    std::vector<Item> result;
    for (const Item &i : items) {
      if (i.is_buffer)
        result.push_back(i);
    }
    return result;
  }
};

/* The harness queues events and buffers separately; GST_EVENT_GAP and buffers both advance
 * the timeline, so sort them by start time (they never overlap, which the test checks).
 * `until_eos`: wait for the output of an EOS pushed in; otherwise take what is there. */
static void collect(GstHarness *h, Output *out, bool until_eos = true) {
  std::vector<GstEvent *> events;
  if (until_eos)
    events = pull_events_until_eos(h);
  while (GstEvent *event = gst_harness_try_pull_event(h))
    events.push_back(event);
  for (GstEvent *event : events) {
    Output::Item item{false, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, {}, GST_EVENT_TYPE(event)};
    if (GST_EVENT_TYPE(event) == GST_EVENT_GAP)
      gst_event_parse_gap(event, &item.start, &item.duration);
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS && !out->caps) {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      out->caps = gst_caps_ref(caps);
    }
    out->items.push_back(item);
    out->events.push_back(event);
  }
  while (GstBuffer *buffer = gst_harness_try_pull(h)) {
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    out->items.push_back({true, GST_BUFFER_PTS(buffer), GST_BUFFER_DURATION(buffer),
                          std::string(reinterpret_cast<const char *>(map.data), map.size),
                          GST_EVENT_UNKNOWN});
    gst_buffer_unmap(buffer, &map);
    gst_buffer_unref(buffer);
  }
}

/* Pushes `audio` (20 ms buffers from PTS 0), then EOS, and collects the text side. */
static void stream_to_eos(GstHarness *h, const Audio &audio, Output *out) {
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  collect(h, out);
}

/* Buffers and GAPs tile the timeline from `from` to `to`: nothing overlaps, nothing is left
 * out, nothing goes back (a GAP of no duration, on which sinks preroll, tiles nothing). */
static void assert_continuous(const Output &out, GstClockTime from, GstClockTime to) {
  std::vector<Output::Item> spans;
  for (const auto &item : out.items) {
    if (item.is_buffer || (item.event_type == GST_EVENT_GAP && item.duration > 0))
      spans.push_back(item);
  }
  std::sort(spans.begin(), spans.end(),
            [](const Output::Item &a, const Output::Item &b) { return a.start < b.start; });
  GstClockTime position = from;
  for (const auto &span : spans) {
    fail_unless(span.start == position,
                "timeline hole or overlap at %" GST_TIME_FORMAT " (next starts %" GST_TIME_FORMAT
                ")",
                GST_TIME_ARGS(position), GST_TIME_ARGS(span.start));
    position = span.start + span.duration;
  }
  fail_unless(position >= to, "timeline ends at %" GST_TIME_FORMAT ", input at %" GST_TIME_FORMAT,
              GST_TIME_ARGS(position), GST_TIME_ARGS(to));
}

static void check_captions(int rate, GstClockTime first_pts) {
  auto service = start_service();
  Audio audio = make_audio(rate, kTwoUtterances);
  GstHarness *h = caption_harness(service->url(), rate, "min-duration=0 language-code=en");
  if (first_pts > 0) {
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    segment.start = first_pts;
    segment.time = first_pts;
    gst_harness_push_event(h, gst_event_new_segment(&segment));
  }
  fail_unless_equals_int(push_audio(h, audio, 20, first_pts), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  Output out;
  collect(h, &out);

  /* stream-start, caps, segment before anything that takes time; EOS last. */
  fail_unless(out.items.size() > 4, "too little output");
  fail_unless_equals_int(out.items[0].event_type, GST_EVENT_STREAM_START);
  fail_unless_equals_int(out.items[1].event_type, GST_EVENT_CAPS);
  gsize first_segment = 2;
  while (first_segment < out.items.size() &&
         out.items[first_segment].event_type != GST_EVENT_SEGMENT)
    first_segment++;
  fail_unless(first_segment < out.items.size(), "no segment");
  for (gsize i = 2; i < first_segment; i++)
    fail_if(out.items[i].event_type == GST_EVENT_GAP, "GAP before the segment");
  fail_unless_equals_int(out.items[out.events.size() - 1].event_type, GST_EVENT_EOS);
  const GstStructure *caps = gst_caps_get_structure(out.caps, 0);
  fail_unless(gst_structure_has_name(caps, "text/x-raw"), "caps");
  fail_unless_equals_string(gst_structure_get_string(caps, "format"), "utf8");

  auto captions = out.captions();
  fail_unless_equals_int(captions.size(), audio.utterances.size());
  for (gsize i = 0; i < captions.size(); i++) {
    const Utterance &truth = audio.utterances[i];
    std::string expected = audio.transcript_of(truth);
    fail_unless_equals_string(captions[i].text.c_str(), expected.c_str());
    assert_time_near(captions[i].start, first_pts + truth.start_ms * GST_MSECOND, "caption PTS");
    assert_time_near(captions[i].start + captions[i].duration,
                     first_pts + truth.end_ms * GST_MSECOND, "caption end");
  }
  assert_continuous(out, first_pts,
                    first_pts + gst_util_uint64_scale_int(audio.samples.size(), GST_SECOND, rate));
  teardown_harness(h);
}

GST_START_TEST(test_captions_carry_utterance_times_16k) {
  check_captions(16000, 0);
}
GST_END_TEST;

GST_START_TEST(test_captions_carry_utterance_times_8k) {
  check_captions(8000, 0);
}
GST_END_TEST;

GST_START_TEST(test_captions_follow_a_segment_that_starts_later) {
  check_captions(16000, 30 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_min_duration_gives_way_to_the_next_utterance) {
  auto service = start_service();
  /* Two 300 ms utterances 500 ms apart: the first caption's 1 s minimum would overlap the
   * second, so it is shortened; the second starts with its speech. */
  Audio audio =
      make_audio(16000, {{200, false}, {300, true}, {500, false}, {300, true}, {1000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "vad-silence-ms=400");
  Output out;
  stream_to_eos(h, audio, &out);
  auto captions = out.captions();
  fail_unless_equals_int(captions.size(), 2);
  assert_time_near(captions[0].start, 200 * GST_MSECOND, "first PTS");
  assert_time_near(captions[1].start, 1000 * GST_MSECOND, "second PTS");
  fail_unless_equals_uint64(captions[0].start + captions[0].duration, captions[1].start);
  fail_unless_equals_uint64(captions[1].duration, GST_SECOND);
  assert_continuous(out, 0, 2300 * GST_MSECOND);
  teardown_harness(h);
}
GST_END_TEST;

/* `count` bursts of 300 ms, 800 ms apart (the drift case): every caption within
 * `tolerance` of its burst, none overlapping, the timeline continuous. */
static void check_bursts_do_not_drift(guint count, GstClockTime tolerance) {
  auto service = start_service();
  std::vector<Stretch> stretches;
  for (guint i = 0; i < count; i++) {
    stretches.push_back({300, true});
    stretches.push_back({500, false});
  }
  Audio audio = make_audio(16000, stretches);
  GstHarness *h = caption_harness(service->url(), 16000, "vad-silence-ms=300");
  Output out;
  stream_to_eos(h, audio, &out);
  auto captions = out.captions();
  fail_unless_equals_int(captions.size(), count);
  for (guint i = 0; i < count; i++) {
    GstClockTime truth = audio.utterances[i].start_ms * GST_MSECOND;
    GstClockTime off =
        captions[i].start > truth ? captions[i].start - truth : truth - captions[i].start;
    fail_unless(off <= tolerance || wall_clock_unreliable(),
                "caption %u at %" GST_TIME_FORMAT ", speech at %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(captions[i].start), GST_TIME_ARGS(truth));
  }
  assert_continuous(out, 0, count * 800 * GST_MSECOND);
  teardown_harness(h);
}

GST_START_TEST(test_five_bursts_captions_start_with_their_speech) {
  check_bursts_do_not_drift(5, kTolerance);
}
GST_END_TEST;

GST_START_TEST(test_forty_bursts_never_drift_more_than_150_ms) {
  check_bursts_do_not_drift(40, 150 * GST_MSECOND);
}
GST_END_TEST;

GST_START_TEST(test_gaps_cover_silence_while_audio_flows) {
  auto service = start_service();
  Audio speech = make_audio(16000, {{300, false}, {600, true}, {900, false}});
  /* Latency generous enough for a slow machine (valgrind): the utterance must be held for
   * its caption, not passed over as overdue. */
  GstHarness *h = caption_harness(service->url(), 16000, "latency=2000");
  fail_unless_equals_int(push_audio(h, speech, 20, 0), GST_FLOW_OK);
  /* Keep silence flowing, as a live source would, until the text side has moved past the
   * utterance without EOS: the caption came and GAPs covered the silence around it. */
  Audio silence = make_audio(16000, {{20, false}});
  GstClockTime pts = 1800 * GST_MSECOND;
  Output out;
  gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
  GstClockTime reached = 0;
  while (reached < 1800 * GST_MSECOND) {
    fail_unless(g_get_monotonic_time() < deadline, "text timeline stuck at %" GST_TIME_FORMAT,
                GST_TIME_ARGS(reached));
    fail_unless_equals_int(push_audio(h, silence, 20, pts), GST_FLOW_OK);
    pts += 20 * GST_MSECOND;
    collect(h, &out, false);
    for (const auto &item : out.items) {
      if (item.is_buffer || item.event_type == GST_EVENT_GAP)
        reached = MAX(reached, item.start + item.duration);
    }
    g_usleep(5000); /* pacing of the simulated live source, not a wait for a result */
  }
  auto captions = out.captions();
  /* Slowed down, the timeline passes 1.8 s before the final comes. */
  fail_unless(captions.size() == 1 || wall_clock_unreliable(), "%u captions",
              (guint)captions.size());
  if (!captions.empty())
    assert_time_near(captions[0].start, 300 * GST_MSECOND, "caption PTS");
  assert_continuous(out, 0, 1800 * GST_MSECOND);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_latency_query_adds_latency_and_lateness_for_live_upstream) {
  /* No service at all: the answer must not depend on a connection. */
  GstHarness *h = harness_with_bus(
      "qwenasr api-key=test-key url=ws://127.0.0.1:9/none latency=1500 lateness=500", "src");
  gst_harness_set_live(h, TRUE);
  gst_harness_set_upstream_latency(h, 20 * GST_MSECOND);
  GstQuery *query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(h->sinkpad, query), "latency query failed");
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency(query, &live, &min, &max);
  fail_unless(live, "live");
  fail_unless_equals_uint64(min, 2020 * GST_MSECOND);
  gst_query_unref(query);

  gst_harness_set_live(h, FALSE);
  query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(h->sinkpad, query), "latency query failed");
  gst_query_parse_latency(query, &live, &min, &max);
  fail_if(live, "not live");
  fail_unless_equals_uint64(min, 20 * GST_MSECOND);
  gst_query_unref(query);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_new_segment_drains_and_starts_a_new_session) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {800, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "min-duration=0");
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  segment.start = segment.time = 60 * GST_SECOND;
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  fail_unless_equals_int(push_audio(h, audio, 20, 60 * GST_SECOND), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  Output out;
  collect(h, &out);
  auto captions = out.captions();
  fail_unless_equals_int(captions.size(), 2);
  assert_time_near(captions[0].start, 200 * GST_MSECOND, "first PTS");
  assert_time_near(captions[1].start, 60200 * GST_MSECOND, "second PTS");
  fail_unless_equals_string(captions[0].text.c_str(), captions[1].text.c_str());
  fail_unless_equals_int(service->sessions().size(), 2);
  fail_unless(service->sessions()[0].finished, "first session not finished before the second");
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_flush_drops_the_session_and_starts_clean) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {800, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  /* Flush once the first session has the audio, so there is something to drop. */
  gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
  while (service->sessions().empty() ||
         service->sessions()[0].audio_bytes < audio.samples.size() * 2) {
    fail_unless(g_get_monotonic_time() < deadline, "the audio never reached the service");
    g_usleep(1000);
  }
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  Output out;
  stream_to_eos(h, audio, &out);
  /* Only the second pass is captioned; the first session was dropped, not finished. */
  std::vector<Output::Item> after_flush;
  bool flushed = false;
  for (const auto &item : out.items) {
    if (item.event_type == GST_EVENT_FLUSH_STOP)
      flushed = true;
  }
  fail_unless(flushed, "FLUSH_STOP not forwarded");
  auto sessions = service->sessions();
  fail_unless_equals_int(sessions.size(), 2);
  fail_if(sessions[0].finished, "the flushed session must not be finished");
  fail_unless(sessions[1].finished, "second session not finished");
  auto captions = out.captions();
  fail_unless(captions.size() >= 1, "no caption after the flush");
  assert_time_near(captions.back().start, 200 * GST_MSECOND, "PTS after flush");
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_pango_markup_downstream_gets_markup_caps) {
  auto service = start_service();
  GstHarness *h = harness_with_bus("qwenasr api-key=test-key url=" + service->url(), "src");
  gst_harness_set_sink_caps_str(h, "text/x-raw,format=pango-markup");
  set_audio_caps(h, 16000);
  Audio audio = make_audio(16000, {{100, false}, {500, true}, {900, false}});
  Output out;
  stream_to_eos(h, audio, &out);
  fail_unless_equals_string(gst_structure_get_string(gst_caps_get_structure(out.caps, 0), "format"),
                            "pango-markup");
  fail_unless_equals_int(out.captions().size(), 1);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_partial_results_never_overlap_or_go_back) {
  auto service = start_service();
  Audio audio =
      make_audio(16000, {{200, false}, {1600, true}, {900, false}, {1200, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "partial-results=true");
  Output out;
  stream_to_eos(h, audio, &out);
  auto captions = out.captions();
  fail_unless(captions.size() > 2, "partials expected, got %zu captions", captions.size());
  GstClockTime end = 0;
  for (const auto &c : captions) {
    fail_unless(c.start >= end, "caption at %" GST_TIME_FORMAT " overlaps the previous one",
                GST_TIME_ARGS(c.start));
    end = c.start + c.duration;
  }
  std::string last_final = audio.transcript_of(audio.utterances[1]);
  fail_unless_equals_string(captions.back().text.c_str(), last_final.c_str());
  assert_continuous(out, 0, 4800 * GST_MSECOND);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_bus_messages_are_posted_like_the_sink) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {600, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  fail_unless_equals_int(transcripts(messages, true).size(), 1);
  fail_unless(transcripts(messages, false).size() >= 1, "no partial on the bus");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_late_results_raise_max_observed_delay_and_warn_when_live) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {800, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "latency=0");
  /* A live upstream, as the pipeline's latency query tells the element. */
  gst_harness_set_live(h, TRUE);
  GstQuery *query = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(h->sinkpad, query), "latency query");
  gst_query_unref(query);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  guint max_delay = 0;
  g_object_get(h->element, "max-observed-delay", &max_delay, nullptr);
  /* The final comes after the utterance and its closing silence were sent, so the delay is
   * at least vad-silence-ms (800), which latency 0 cannot cover. */
  fail_unless(max_delay > 0, "no delay observed");
  std::vector<GstMessage *> messages = drain_bus(h->element);
  /* Among the warnings (the caption is also late on the text timeline), the delay one. */
  GstMessage *warning = nullptr;
  GError *gerror = nullptr;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_WARNING || warning)
      continue;
    gst_message_parse_warning(m, &gerror, nullptr);
    if (strstr(gerror->message, "larger latency") != nullptr)
      warning = m;
    else
      g_clear_error(&gerror);
  }
  fail_unless(warning != nullptr, "no warning about late results");
  const GstStructure *details = nullptr;
  gst_message_parse_warning_details(warning, &details);
  guint64 reported = 0;
  fail_unless(details && gst_structure_get_uint64(details, "new-observed-max-delay", &reported),
              "no details");
  fail_unless(reported > 0, "details without the delay");
  g_error_free(gerror);
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

/* Nothing downstream asks for the latency here (as with a sink that does not sync), so the
 * element can only learn from upstream that its input is live: it asks when caps arrive. Live,
 * a final later than latency + lateness draws the warning; not live it would not. */
GST_START_TEST(test_learns_live_upstream_without_a_downstream_latency_query) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{200, false}, {800, true}, {900, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "latency=0", true);
  fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  bool warned = false;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_WARNING)
      continue;
    GError *gerror = nullptr;
    gst_message_parse_warning(m, &gerror, nullptr);
    warned = warned || strstr(gerror->message, "larger latency") != nullptr;
    g_error_free(gerror);
  }
  fail_unless(warned, "the element did not treat its live upstream as live");
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

/* A source that is not live but delivers in real time (rtmp2src): audio keeps coming while the
 * final is later than the budget, so the warning names the budget, not a blocked pipeline. */
GST_START_TEST(test_slow_final_with_audio_flowing_warns_about_latency_not_queues) {
  auto service = start_service();
  /* latency=300: the hold gives up 200 ms after the utterance's start was handed over; the
   * final needs the 600 ms burst and 800 ms of silence. */
  Audio audio = make_audio(16000, {{200, false}, {600, true}, {1600, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "latency=300");
  const gsize per_buffer = 320; /* 20 ms, pushed at real-time pace */
  for (gsize i = 0; i < audio.samples.size(); i += per_buffer) {
    GstBuffer *buffer = gst_buffer_new_memdup(audio.samples.data() + i, per_buffer * 2);
    GST_BUFFER_PTS(buffer) = gst_util_uint64_scale_int(i, GST_SECOND, 16000);
    GST_BUFFER_DURATION(buffer) = 20 * GST_MSECOND;
    fail_unless_equals_int(gst_harness_push(h, buffer), GST_FLOW_OK);
    g_usleep(20000);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstMessage *> messages = drain_bus(h->element);
  std::string warnings;
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_WARNING)
      continue;
    GError *gerror = nullptr;
    gst_message_parse_warning(m, &gerror, nullptr);
    warnings += std::string(gerror->message) + "\n";
    g_error_free(gerror);
  }
  fail_unless(warnings.find("took longer than latency + lateness (300 ms) while audio kept "
                            "arriving") != std::string::npos,
              "warnings: %s", warnings.c_str());
  fail_unless(warnings.find("No audio arrived") == std::string::npos, "%s", warnings.c_str());
  /* One warning for the episode, not another when the late caption comes; counted. */
  fail_unless(warnings.find("\n") == warnings.size() - 1, "more than one warning: %s",
              warnings.c_str());
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 late = 0;
  fail_unless(gst_structure_get_uint64(stats, "captions-late", &late), "no captions-late");
  fail_unless_equals_int(late, 1);
  gst_structure_free(stats);
  free_messages(messages);
  teardown_harness(h);
}
GST_END_TEST;

/* Holds every caption buffer on the output task's thread until released, as textoverlay does
 * while the video has not reached the previous caption's end. */
struct HeldCaptions {
  GMutex lock;
  GCond cond;
  guint arrived = 0;
  bool released = false;
};

static GstPadProbeReturn hold_caption(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *held = static_cast<HeldCaptions *>(data);
  g_mutex_lock(&held->lock);
  held->arrived++;
  g_cond_broadcast(&held->cond);
  while (!held->released)
    g_cond_wait(&held->cond, &held->lock);
  g_mutex_unlock(&held->lock);
  return GST_PAD_PROBE_OK;
}

/* The RTMP freeze: downstream holding a caption must not hold the audio input, since the
 * audio's flow is what lets the video (and so the caption) through. */
GST_START_TEST(test_audio_keeps_flowing_while_downstream_holds_a_caption) {
  auto service = start_service();
  Audio speech = make_audio(16000, kTwoUtterances);
  GstHarness *h = caption_harness(service->url(), 16000, "min-duration=0");
  HeldCaptions held;
  g_mutex_init(&held.lock);
  g_cond_init(&held.cond);
  GstPad *src = gst_element_get_static_pad(h->element, "src");
  gulong probe = gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, hold_caption, &held, nullptr);
  fail_unless_equals_int(push_audio(h, speech, 20, 0), GST_FLOW_OK);
  /* Silence keeps coming, as from a demuxer, until the first caption is held downstream... */
  Audio silence = make_audio(16000, {{20, false}});
  GstClockTime pts = 4700 * GST_MSECOND;
  gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
  for (;;) {
    g_mutex_lock(&held.lock);
    guint arrived = held.arrived;
    g_mutex_unlock(&held.lock);
    if (arrived > 0)
      break;
    fail_unless(g_get_monotonic_time() < deadline, "no caption reached downstream");
    fail_unless_equals_int(push_audio(h, silence, 20, pts), GST_FLOW_OK);
    pts += 20 * GST_MSECOND;
    g_usleep(5000); /* pacing of the simulated source, not a wait for a result */
  }
  /* ...and goes on being taken while it is held: 2 s more audio, every push returning. */
  for (int i = 0; i < 100; i++) {
    fail_unless_equals_int(push_audio(h, silence, 20, pts), GST_FLOW_OK);
    pts += 20 * GST_MSECOND;
  }
  g_mutex_lock(&held.lock);
  fail_unless_equals_int(held.arrived, 1);
  held.released = true;
  g_cond_broadcast(&held.cond);
  g_mutex_unlock(&held.lock);
  gst_harness_push_event(h, gst_event_new_eos());
  Output out;
  collect(h, &out);
  fail_unless_equals_int(out.captions().size(), 2);
  gst_pad_remove_probe(src, probe);
  gst_object_unref(src);
  teardown_harness(h);
  g_cond_clear(&held.cond);
  g_mutex_clear(&held.lock);
}
GST_END_TEST;

static GstPadProbeReturn record_order(GstPad *, GstPadProbeInfo *info, gpointer data) {
  std::string *order = static_cast<std::string *>(data);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    *order += 'B';
  } else if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_TAG) {
    GstTagList *tags;
    gchar *code = nullptr;
    gst_event_parse_tag(GST_PAD_PROBE_INFO_EVENT(info), &tags);
    if (gst_tag_list_get_string(tags, GST_TAG_LANGUAGE_CODE, &code))
      *order += std::string("[") + code + "]";
    g_free(code);
  }
  return GST_PAD_PROBE_OK;
}

GST_START_TEST(test_a_language_tag_precedes_the_first_caption) {
  auto service = start_service();
  GstHarness *h = caption_harness(service->url(), 16000, "language-code=zh");
  GstPad *src = gst_element_get_static_pad(h->element, "src");
  std::string order;
  gst_pad_add_probe(
      src,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      record_order, &order, nullptr);
  Output out;
  stream_to_eos(h, make_audio(16000, kTwoUtterances), &out);
  /* One tag, before the first caption; the language does not change after it. */
  fail_unless(order.rfind("[zh]B", 0) == 0, "order: %s", order.c_str());
  fail_unless(order.find('[', 1) == std::string::npos, "tagged again: %s", order.c_str());
  gst_object_unref(src);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_a_long_utterance_becomes_consecutive_two_line_captions) {
  auto service = start_service();
  /* 12 s of speech: 60 words of the local engine, one long transcript. */
  Audio audio = make_audio(16000, {{500, false}, {12000, true}, {1000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "latency=30000");
  Output out;
  stream_to_eos(h, audio, &out);
  auto captions = out.captions();
  fail_unless(captions.size() >= 4, "only %zu captions", captions.size());
  std::string words;
  GstClockTime previous = 0;
  for (const auto &c : captions) {
    gchar **lines = g_strsplit(c.text.c_str(), "\n", -1);
    fail_unless(g_strv_length(lines) <= 2, "more than two lines: %s", c.text.c_str());
    for (gchar **l = lines; *l; l++) {
      fail_unless(g_utf8_strlen(*l, -1) <= 42, "line longer than 42: %s", *l);
      words += (words.empty() ? "" : " ") + std::string(*l);
    }
    g_strfreev(lines);
    fail_unless((c.start >= 500 * GST_MSECOND && c.start < 12500 * GST_MSECOND) ||
                    wall_clock_unreliable(),
                "caption outside its utterance");
    fail_unless(c.start >= previous, "captions out of order");
    fail_unless(c.duration <= 7 * GST_SECOND, "caption up longer than 7 s");
    previous = c.start;
  }
  /* Every word exactly once, in order. */
  std::string expected = audio.transcript_of(audio.utterances[0]);
  fail_unless_equals_string(words.c_str(), expected.c_str());
  assert_time_near(captions[0].start, 500 * GST_MSECOND, "first caption");
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 split = 0;
  fail_unless(gst_structure_get_uint64(stats, "captions-split", &split));
  fail_unless_equals_uint64(split, 1);
  gst_structure_free(stats);
  teardown_harness(h);
}
GST_END_TEST;

static void record_warning(const gchar *, GLogLevelFlags, const gchar *message, gpointer data) {
  *static_cast<std::string *>(data) = message;
}

GST_START_TEST(test_nonsensical_layout_values_are_refused_when_set) {
  GstElement *asr = gst_element_factory_make("qwenasr", nullptr);
  guint length = 99, lines = 99;
  g_object_set(asr, "max-line-length", 32, "max-lines", 3, nullptr);
  /* Too short for words: the element says so (GLib says so for values out of range). */
  std::string warning;
  guint handler = g_log_set_handler("qwenasr", G_LOG_LEVEL_WARNING, record_warning, &warning);
  g_object_set(asr, "max-line-length", 3, nullptr);
  g_log_remove_handler("qwenasr", handler);
  fail_unless(warning.find("max-line-length 3 refused") != std::string::npos, "warning: %s",
              warning.c_str());
  ASSERT_WARNING(g_object_set(asr, "max-lines", 0, nullptr));
  ASSERT_WARNING(g_object_set(asr, "max-line-length", 100000, nullptr));
  g_object_get(asr, "max-line-length", &length, "max-lines", &lines, nullptr);
  fail_unless_equals_int(length, 32);
  fail_unless_equals_int(lines, 3);
  g_object_set(asr, "max-line-length", 0, nullptr); /* by script */
  g_object_get(asr, "max-line-length", &length, nullptr);
  fail_unless_equals_int(length, 0);
  gst_object_unref(asr);
}
GST_END_TEST;

static std::vector<std::string> words_of(const std::string &text) {
  std::vector<std::string> words;
  gchar **parts = g_strsplit_set(text.c_str(), " \n", -1);
  for (gchar **p = parts; *p; p++) {
    if (**p)
      words.push_back(*p);
  }
  g_strfreev(parts);
  return words;
}

GST_START_TEST(test_roll_up_shows_confirmed_words_before_the_utterance_ends) {
  auto service = start_service();
  /* 3 s of speech, fed in real time as a live source would: the service confirms words
   * every 200 ms of audio. */
  Audio audio = make_audio(16000, {{200, false}, {3000, true}, {1000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "caption-mode=roll-up");
  Audio chunk{16000, {}, {}};
  for (gsize i = 0; i < audio.samples.size(); i += 320) {
    chunk.samples.assign(audio.samples.begin() + i,
                         audio.samples.begin() + MIN(i + 320, audio.samples.size()));
    fail_unless_equals_int(push_audio(h, chunk, 20, i * GST_SECOND / 16000), GST_FLOW_OK);
    g_usleep(20000); /* real-time pacing of the simulated live source */
  }
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  Output out;
  collect(h, &out);
  auto captions = out.captions();
  fail_unless(captions.size() >= 3, "only %zu roll-up windows", captions.size());
  /* The first words were on screen while the utterance was still being spoken. */
  fail_unless(captions[0].start < 3200 * GST_MSECOND,
              "first words at %" GST_TIME_FORMAT ", after the utterance ended",
              GST_TIME_ARGS(captions[0].start));
  /* Never retracting: each window is the previous one, maybe scrolled, plus new words; the
   * new words, in order, are the utterance's words (case and punctuation aside). */
  auto plain = [](const std::string &w) {
    std::string p;
    for (char c : w) {
      if (g_ascii_isalnum(c))
        p += g_ascii_tolower(c);
    }
    return p;
  };
  std::vector<std::string> stream;
  for (const std::string &w : words_of(captions[0].text))
    stream.push_back(plain(w));
  for (gsize i = 1; i < captions.size(); i++) {
    std::vector<std::string> a = words_of(captions[i - 1].text), b = words_of(captions[i].text);
    gsize kept = G_MAXSIZE;
    for (gsize k = 0; k <= a.size() && kept == G_MAXSIZE; k++) {
      if (a.size() - k <= b.size() && std::equal(a.begin() + k, a.end(), b.begin()))
        kept = a.size() - k;
    }
    fail_unless(kept != G_MAXSIZE, "\"%s\" took back words of \"%s\"", captions[i].text.c_str(),
                captions[i - 1].text.c_str());
    for (gsize j = kept; j < b.size(); j++)
      stream.push_back(plain(b[j]));
  }
  std::vector<std::string> truth;
  for (const std::string &w : words_of(audio.transcript_of(audio.utterances[0])))
    truth.push_back(plain(w));
  fail_unless(stream == truth, "words shown differ from the utterance's");
  assert_continuous(out, 0, 4200 * GST_MSECOND);
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 contradicted = 99;
  fail_unless(gst_structure_get_uint64(stats, "words-contradicted", &contradicted));
  fail_unless_equals_uint64(contradicted, 0);
  gst_structure_free(stats);
  teardown_harness(h);
}
GST_END_TEST;

/* Pushes `audio` in 20 ms buffers at about the pace a live source would. */
static void push_in_real_time(GstHarness *h, const Audio &audio) {
  Audio chunk{audio.rate, {}, {}};
  gsize step = audio.rate / 50;
  for (gsize i = 0; i < audio.samples.size(); i += step) {
    chunk.samples.assign(audio.samples.begin() + i,
                         audio.samples.begin() + MIN(i + step, audio.samples.size()));
    fail_unless_equals_int(push_audio(h, chunk, 20, i * GST_SECOND / audio.rate), GST_FLOW_OK);
    g_usleep(20000); /* real-time pacing of the simulated live source */
  }
}

GST_START_TEST(test_after_a_service_stall_captions_are_back_on_the_speech_next_utterance) {
  /* The service sends nothing for 4 s from 2 s of audio on, longer than latency: the second
   * utterance's caption comes after the text timeline had to pass its speech; the ones after
   * are on time. */
  qwenasr::local::ServiceOptions options;
  options.faults.stall_after_appends = 20;
  options.faults.stall_ms = 4000;
  auto service = start_service(options);
  Audio audio = make_audio(16000, {{500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "latency=2000 vad-silence-ms=300");
  push_in_real_time(h, audio);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  Output out;
  collect(h, &out);
  auto captions = out.captions();
  fail_unless_equals_int(captions.size(), 4);
  assert_time_near(captions[0].start, 500 * GST_MSECOND, "before the stall");
  fail_unless(captions[1].start > 3100 * GST_MSECOND, "the stalled caption was not late");
  for (gsize i = 2; i < 4; i++) {
    GstClockTime truth = audio.utterances[i].start_ms * GST_MSECOND;
    GstClockTime off =
        captions[i].start > truth ? captions[i].start - truth : truth - captions[i].start;
    fail_unless(off <= 150 * GST_MSECOND, "caption %zu still late by %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(off));
  }
  assert_continuous(out, 0, 9000 * GST_MSECOND);
  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 late = 0;
  fail_unless(gst_structure_get_uint64(stats, "captions-late", &late));
  fail_unless_equals_uint64(late, 1);
  gst_structure_free(stats);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_partial_results_do_not_make_later_utterances_drift) {
  auto service = start_service();
  /* 1 s utterances 2.5 s apart, previews on: each utterance's first caption at its start. */
  Audio audio = make_audio(16000, {{500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1500, false},
                                   {1000, true},
                                   {1000, false}});
  GstHarness *h = caption_harness(service->url(), 16000, "partial-results=true");
  Output out;
  stream_to_eos(h, audio, &out);
  auto captions = out.captions();
  for (const Utterance &u : audio.utterances) {
    GstClockTime truth = u.start_ms * GST_MSECOND;
    bool found = false;
    for (const auto &c : captions)
      found |= c.start + kTolerance >= truth && c.start <= truth + kTolerance;
    fail_unless(found || wall_clock_unreliable(),
                "no caption starts with the utterance at %" GST_TIME_FORMAT, GST_TIME_ARGS(truth));
  }
  assert_continuous(out, 0, 9000 * GST_MSECOND);
  teardown_harness(h);
}
GST_END_TEST;

static Suite *qwenasr_suite(void) {
  Suite *s = suite_create("qwenasr");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_captions_carry_utterance_times_16k);
  tcase_add_test(tc, test_captions_carry_utterance_times_8k);
  tcase_add_test(tc, test_captions_follow_a_segment_that_starts_later);
  tcase_add_test(tc, test_min_duration_gives_way_to_the_next_utterance);
  tcase_add_test(tc, test_five_bursts_captions_start_with_their_speech);
  tcase_add_test(tc, test_forty_bursts_never_drift_more_than_150_ms);
  tcase_add_test(tc, test_a_language_tag_precedes_the_first_caption);
  tcase_add_test(tc, test_a_long_utterance_becomes_consecutive_two_line_captions);
  tcase_add_test(tc, test_nonsensical_layout_values_are_refused_when_set);
  tcase_add_test(tc, test_roll_up_shows_confirmed_words_before_the_utterance_ends);
  tcase_add_test(tc, test_after_a_service_stall_captions_are_back_on_the_speech_next_utterance);
  tcase_add_test(tc, test_partial_results_do_not_make_later_utterances_drift);
  tcase_add_test(tc, test_gaps_cover_silence_while_audio_flows);
  tcase_add_test(tc, test_latency_query_adds_latency_and_lateness_for_live_upstream);
  tcase_add_test(tc, test_new_segment_drains_and_starts_a_new_session);
  tcase_add_test(tc, test_flush_drops_the_session_and_starts_clean);
  tcase_add_test(tc, test_pango_markup_downstream_gets_markup_caps);
  tcase_add_test(tc, test_partial_results_never_overlap_or_go_back);
  tcase_add_test(tc, test_bus_messages_are_posted_like_the_sink);
  tcase_add_test(tc, test_slow_final_with_audio_flowing_warns_about_latency_not_queues);
  tcase_add_test(tc, test_audio_keeps_flowing_while_downstream_holds_a_caption);
  tcase_add_test(tc, test_late_results_raise_max_observed_delay_and_warn_when_live);
  tcase_add_test(tc, test_learns_live_upstream_without_a_downstream_latency_query);
  return s;
}

GST_CHECK_MAIN(qwenasr);
