/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasrcea608enc on its own, in a harness: negotiation, one pair per frame, timing from the
 * frame index, what a decoder shows, and bad input (no framerate, no timestamps, a 10 kB
 * caption, an hour of silence, CJK text). */
#include "testutil.h"

#include "../unit/cea608decoder.h"

using namespace testutil;

static GstHarness *encoder_harness(const char *downstream, const char *properties = "") {
  GstHarness *h = harness_with_bus(std::string("qwenasrcea608enc ") + properties, "src");
  if (downstream)
    gst_harness_set_sink_caps_str(h, downstream);
  gst_harness_set_src_caps_str(h, "text/x-raw, format=(string)utf8");
  return h;
}

static void push_text(GstHarness *h, const std::string &text, GstClockTime pts,
                      GstClockTime duration) {
  GstBuffer *buffer = gst_buffer_new_memdup(text.data(), text.size());
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DURATION(buffer) = duration;
  fail_unless_equals_int(gst_harness_push(h, buffer), GST_FLOW_OK);
}

static void push_gap(GstHarness *h, GstClockTime start, GstClockTime duration) {
  fail_unless(gst_harness_push_event(h, gst_event_new_gap(start, duration)), "GAP refused");
}

/* Every buffer the element has output so far. */
static std::vector<GstBuffer *> pull_all(GstHarness *h) {
  std::vector<GstBuffer *> out;
  while (GstBuffer *b = gst_harness_try_pull(h))
    out.push_back(b);
  return out;
}

static void unref_all(std::vector<GstBuffer *> &buffers) {
  for (GstBuffer *b : buffers)
    gst_buffer_unref(b);
  buffers.clear();
}

/* Feeds raw (2-byte) buffers to a test decoder; returns the screen after each. */
static std::vector<std::string> decode(const std::vector<GstBuffer *> &buffers,
                                       TestDecoder &decoder) {
  std::vector<std::string> shown;
  for (GstBuffer *b : buffers) {
    guint8 pair[2];
    fail_unless_equals_int(gst_buffer_extract(b, 0, pair, 2), 2);
    fail_unless(decoder.feed(pair[0], pair[1]), "parity error");
    shown.push_back(decoder.shown());
  }
  return shown;
}

static std::vector<std::string> element_warnings(GstHarness *h) {
  std::vector<std::string> out;
  std::vector<GstMessage *> messages = drain_bus(h->element);
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING || GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *error = nullptr;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING)
        gst_message_parse_warning(m, &error, nullptr);
      else
        gst_message_parse_error(m, &error, nullptr);
      out.push_back(std::string(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR ? "error: " : "") +
                    error->message);
      g_error_free(error);
    }
  }
  free_messages(messages);
  return out;
}

static guint64 stat(GstHarness *h, const char *field) {
  GstStructure *s = nullptr;
  g_object_get(h->element, "stats", &s, nullptr);
  guint64 value = 0;
  gst_structure_get_uint64(s, field, &value);
  gst_structure_free(s);
  return value;
}

static void check_frame_timing(gint fps_n, gint fps_d) {
  gchar *caps =
      g_strdup_printf("closedcaption/x-cea-608, format=raw, framerate=%d/%d", fps_n, fps_d);
  GstHarness *h = encoder_harness(caps, "mode=roll-up2");
  g_free(caps);
  push_gap(h, 0, 10 * GST_SECOND);
  std::vector<GstBuffer *> out = pull_all(h);
  guint64 expected = gst_util_uint64_scale_ceil(10 * GST_SECOND, fps_n, fps_d * GST_SECOND);
  fail_unless_equals_int(out.size(), expected);
  for (gsize i = 0; i < out.size(); i++) {
    GstClockTime pts = gst_util_uint64_scale(i, fps_d * GST_SECOND, fps_n);
    GstClockTime next = gst_util_uint64_scale(i + 1, fps_d * GST_SECOND, fps_n);
    fail_unless_equals_uint64(GST_BUFFER_PTS(out[i]), pts);
    fail_unless_equals_uint64(GST_BUFFER_DURATION(out[i]), next - pts);
    fail_unless_equals_int(gst_buffer_get_size(out[i]), 2);
  }
  unref_all(out);
  teardown_harness(h);
}

GST_START_TEST(test_one_pair_per_frame_timed_from_the_index_at_common_rates) {
  check_frame_timing(25, 1);
  check_frame_timing(30000, 1001);
  check_frame_timing(30, 1);
  check_frame_timing(50, 1);
  check_frame_timing(60000, 1001);
}
GST_END_TEST;

GST_START_TEST(test_framerate_defaults_to_29_97_when_downstream_leaves_it_open) {
  GstHarness *h = encoder_harness(nullptr);
  push_gap(h, 0, GST_SECOND);
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps, "no caps");
  GstCaps *expected =
      gst_caps_from_string("closedcaption/x-cea-608, format=raw, framerate=30000/1001");
  fail_unless(gst_caps_is_equal(caps, expected), "caps %" GST_PTR_FORMAT, caps);
  gst_caps_unref(expected);
  gst_caps_unref(caps);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_downstream_without_a_usable_framerate_is_a_clear_error) {
  GstHarness *h = harness_with_bus("qwenasrcea608enc", "src");
  gst_harness_set_sink_caps_str(h, "closedcaption/x-cea-608, format=raw, framerate=0/1");
  gst_harness_set_src_caps_str(h, "text/x-raw, format=(string)utf8");
  std::vector<std::string> errors = element_warnings(h);
  fail_unless(errors.size() == 1, "%zu messages, first: %s", errors.size(),
              errors.empty() ? "" : errors.back().c_str());
  fail_unless(errors[0].find("error: ") == 0 && errors[0].find("framerate") != std::string::npos,
              "unclear error: %s", errors[0].c_str());
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_pop_on_caption_shows_at_its_pts_and_is_erased_at_its_end) {
  GstHarness *h = encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30/1");
  push_text(h, "Café crème, s'il vous plaît.", 3 * GST_SECOND, 2 * GST_SECOND);
  push_gap(h, 3 * GST_SECOND, 7 * GST_SECOND);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstBuffer *> out = pull_all(h);
  /* The stream starts early enough to load the caption before its PTS. */
  fail_unless(GST_BUFFER_PTS(out[0]) <= 2 * GST_SECOND, "starts at %" GST_TIME_FORMAT,
              GST_TIME_ARGS(GST_BUFFER_PTS(out[0])));
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  gint shown_at = -1, last_shown = -1;
  for (gsize i = 0; i < shown.size(); i++) {
    if (shown[i] == "Café crème, s'il vous plaît.") {
      if (shown_at < 0)
        shown_at = i;
      last_shown = i;
    }
  }
  fail_unless(shown_at >= 0, "caption never shown");
  fail_unless_equals_uint64(GST_BUFFER_PTS(out[shown_at]), 3 * GST_SECOND);
  fail_unless_equals_uint64(GST_BUFFER_PTS(out[last_shown + 1]), 5 * GST_SECOND);
  fail_unless_equals_uint64(stat(h, "late"), 0);
  fail_unless_equals_uint64(stat(h, "captions"), 1);
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_pango_markup_is_stripped) {
  GstHarness *h = harness_with_bus("qwenasrcea608enc mode=paint-on", "src");
  gst_harness_set_sink_caps_str(h, "closedcaption/x-cea-608, format=raw, framerate=30/1");
  gst_harness_set_src_caps_str(h, "text/x-raw, format=(string)pango-markup");
  push_text(h, "<i>Tom &amp; Jerry</i> &#191;s&#xED;?", 0, 2 * GST_SECOND);
  push_gap(h, 0, 3 * GST_SECOND);
  std::vector<GstBuffer *> out = pull_all(h);
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  fail_unless_equals_string(shown[50].c_str(), "Tom & Jerry ¿sí?");
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_untimestamped_text_shows_at_once_with_one_warning) {
  GstHarness *h =
      encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30/1", "mode=roll-up2");
  push_gap(h, 0, GST_SECOND);
  push_text(h, "no time", GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);
  push_text(h, "nor here", GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstBuffer *> out = pull_all(h);
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  gint shown_at = -1;
  for (gsize i = 0; i < shown.size() && shown_at < 0; i++) {
    if (shown[i].find("no time") != std::string::npos)
      shown_at = i;
  }
  fail_unless(shown_at >= 30 && shown_at < 45, "shown at frame %d", shown_at);
  std::vector<std::string> warnings = element_warnings(h);
  fail_unless_equals_int(warnings.size(), 1);
  fail_unless(warnings[0].find("timestamps") != std::string::npos, "%s", warnings[0].c_str());
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_ten_kilobyte_caption_neither_stalls_nor_piles_up) {
  GstHarness *h = encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30/1");
  std::string text;
  while (text.size() < 10240)
    text += "All work and no play makes a dull caption. ";
  gint64 started = g_get_monotonic_time();
  push_text(h, text, GST_SECOND, 5 * GST_SECOND);
  push_gap(h, GST_SECOND, 29 * GST_SECOND);
  push_text(h, "After the flood.", 30 * GST_SECOND, 2 * GST_SECOND);
  push_gap(h, 30 * GST_SECOND, 5 * GST_SECOND);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstBuffer *> out = pull_all(h);
  fail_unless(g_get_monotonic_time() - started < 5 * G_USEC_PER_SEC, "too slow");
  /* The output ends with the input (plus the erase), not minutes later. */
  GstClockTime end = GST_BUFFER_PTS(out.back());
  fail_unless(end < 36 * GST_SECOND, "output runs to %" GST_TIME_FORMAT, GST_TIME_ARGS(end));
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  gint after = -1;
  for (gsize i = 0; i < shown.size() && after < 0; i++) {
    if (shown[i] == "After the flood.")
      after = i;
  }
  fail_unless(after >= 0, "the caption after the long one was never shown");
  fail_unless(GST_BUFFER_PTS(out[after]) <= 30 * GST_SECOND + GST_SECOND / 2, "shown late");
  fail_unless(stat(h, "dropped") > 0, "nothing counted as dropped");
  std::vector<std::string> warnings = element_warnings(h);
  fail_unless_equals_int(warnings.size(), 1);
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_an_hour_of_silence_is_continuous_padding) {
  GstHarness *h = encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30000/1001");
  guint64 frames = 0, padding = 0;
  GstClockTime expected_pts = GST_CLOCK_TIME_NONE;
  for (guint s = 0; s < 3600; s++) {
    push_gap(h, s * GST_SECOND, GST_SECOND);
    while (GstBuffer *b = gst_harness_try_pull(h)) {
      if (!GST_CLOCK_TIME_IS_VALID(expected_pts))
        expected_pts = GST_BUFFER_PTS(b);
      fail_unless_equals_uint64(GST_BUFFER_PTS(b), expected_pts);
      expected_pts += GST_BUFFER_DURATION(b);
      guint8 pair[2];
      gst_buffer_extract(b, 0, pair, 2);
      padding += pair[0] == 0x80 && pair[1] == 0x80;
      frames++;
      gst_buffer_unref(b);
    }
  }
  push_text(h, "Finally.", 3600 * GST_SECOND, 2 * GST_SECOND);
  push_gap(h, 3600 * GST_SECOND, 5 * GST_SECOND);
  gst_harness_push_event(h, gst_event_new_eos());
  std::vector<GstBuffer *> out = pull_all(h);
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  gint shown_at = -1;
  for (gsize i = 0; i < shown.size() && shown_at < 0; i++) {
    if (shown[i] == "Finally.")
      shown_at = i;
  }
  fail_unless(shown_at >= 0, "caption after an hour never shown");
  /* On time to the frame after an hour: 3600 s is frame 107892.1, so frame 107893. */
  fail_unless_equals_uint64(GST_BUFFER_PTS(out[shown_at]),
                            gst_util_uint64_scale(107893, 1001 * GST_SECOND, 30000));
  /* All of the hour was padding but the initial erase (EDM, twice). */
  fail_unless_equals_uint64(padding, frames - 2);
  fail_unless(frames > 107800, "only %" G_GUINT64_FORMAT " frames", frames);
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_cjk_text_warns_once_per_stream_and_keeps_the_latin_parts) {
  GstHarness *h =
      encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30/1", "mode=paint-on");
  push_text(h, "GStreamer 是一个多媒体框架", 0, 2 * GST_SECOND);
  push_text(h, "日本語のテキスト", 2 * GST_SECOND, 2 * GST_SECOND);
  push_gap(h, 2 * GST_SECOND, 3 * GST_SECOND);
  std::vector<GstBuffer *> out = pull_all(h);
  TestDecoder decoder;
  std::vector<std::string> shown = decode(out, decoder);
  fail_unless_equals_string(shown[40].c_str(), "GStreamer ?");
  std::vector<std::string> warnings = element_warnings(h);
  fail_unless_equals_int(warnings.size(), 1);
  fail_unless(warnings[0].find("Latin") != std::string::npos &&
                  warnings[0].find("subtitle track") != std::string::npos,
              "%s", warnings[0].c_str());
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_cc3_goes_on_field_two_in_s334_1a) {
  GstHarness *h = encoder_harness("closedcaption/x-cea-608, format=s334-1a, framerate=30/1",
                                  "channel=cc3 mode=roll-up2");
  push_gap(h, 0, GST_SECOND);
  std::vector<GstBuffer *> out = pull_all(h);
  fail_unless(!out.empty(), "no output");
  guint8 data[6];
  fail_unless_equals_int(gst_buffer_extract(out[0], 0, data, 6), 6);
  fail_unless_equals_int(data[0], 0x80); /* field 1: padding */
  fail_unless_equals_int(data[3], 0x00); /* field 2 */
  fail_unless_equals_int(data[4], 0x15); /* EDM on CC3 */
  fail_unless_equals_int(data[5], 0x2C);
  unref_all(out);
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_cc3_with_raw_only_downstream_is_a_clear_error) {
  GstHarness *h = harness_with_bus("qwenasrcea608enc channel=cc3", "src");
  gst_harness_set_sink_caps_str(h, "closedcaption/x-cea-608, format=raw, framerate=30/1");
  gst_harness_set_src_caps_str(h, "text/x-raw, format=(string)utf8");
  std::vector<std::string> errors = element_warnings(h);
  fail_unless(errors.size() == 1, "%zu messages, first: %s", errors.size(),
              errors.empty() ? "" : errors.back().c_str());
  fail_unless(errors[0].find("s334-1a") != std::string::npos, "%s", errors[0].c_str());
  teardown_harness(h);
}
GST_END_TEST;

GST_START_TEST(test_latency_adds_the_pop_on_lookahead_only) {
  for (const char *mode : {"pop-on", "roll-up2"}) {
    std::string props = std::string("mode=") + mode;
    GstHarness *h =
        encoder_harness("closedcaption/x-cea-608, format=raw, framerate=30/1", props.c_str());
    gst_harness_set_upstream_latency(h, 100 * GST_MSECOND);
    GstPad *src = gst_element_get_static_pad(h->element, "src");
    GstQuery *query = gst_query_new_latency();
    fail_unless(gst_pad_query(src, query), "latency query failed");
    GstClockTime min;
    gst_query_parse_latency(query, nullptr, &min, nullptr);
    fail_unless_equals_uint64(min,
                              g_str_equal(mode, "pop-on") ? 1600 * GST_MSECOND : 100 * GST_MSECOND);
    gst_query_unref(query);
    gst_object_unref(src);
    teardown_harness(h);
  }
}
GST_END_TEST;

static Suite *cea608enc_suite(void) {
  Suite *s = suite_create("qwenasrcea608enc");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_one_pair_per_frame_timed_from_the_index_at_common_rates);
  tcase_add_test(tc, test_framerate_defaults_to_29_97_when_downstream_leaves_it_open);
  tcase_add_test(tc, test_downstream_without_a_usable_framerate_is_a_clear_error);
  tcase_add_test(tc, test_pop_on_caption_shows_at_its_pts_and_is_erased_at_its_end);
  tcase_add_test(tc, test_pango_markup_is_stripped);
  tcase_add_test(tc, test_untimestamped_text_shows_at_once_with_one_warning);
  tcase_add_test(tc, test_ten_kilobyte_caption_neither_stalls_nor_piles_up);
  tcase_add_test(tc, test_an_hour_of_silence_is_continuous_padding);
  tcase_add_test(tc, test_cjk_text_warns_once_per_stream_and_keeps_the_latin_parts);
  tcase_add_test(tc, test_cc3_goes_on_field_two_in_s334_1a);
  tcase_add_test(tc, test_cc3_with_raw_only_downstream_is_a_clear_error);
  tcase_add_test(tc, test_latency_adds_the_pop_on_lookahead_only);
  return s;
}

GST_CHECK_MAIN(cea608enc);
