/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The timing map: service offsets back to input times across gaps, DISCONTs and rates. */
#include <gst/check/gstcheck.h>

#include "timingmap.h"

using qwenasr::TimingMap;

GST_START_TEST(test_contiguous_input_maps_linearly_with_one_run) {
  TimingMap map(16000);
  GstClockTime t = 5 * GST_SECOND;
  for (int i = 0; i < 1000; i++) {
    map.append(160, t); /* 10 ms buffers */
    t += 10 * GST_MSECOND;
  }
  fail_unless_equals_int(map.runs(), 1);
  fail_unless_equals_uint64(map.time_at_ms(0), 5 * GST_SECOND);
  fail_unless_equals_uint64(map.time_at_ms(1234), 5 * GST_SECOND + 1234 * GST_MSECOND);
  fail_unless_equals_uint64(map.end_time(), 15 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_gap_in_input_shifts_later_offsets) {
  TimingMap map(16000);
  map.append(16000, 0);              /* 0..1 s */
  map.append(16000, 3 * GST_SECOND); /* gap of 2 s, then 3..4 s */
  fail_unless_equals_int(map.runs(), 2);
  fail_unless_equals_uint64(map.time_at_ms(500), 500 * GST_MSECOND);
  fail_unless_equals_uint64(map.time_at_ms(1000), 3 * GST_SECOND);
  fail_unless_equals_uint64(map.time_at_ms(1500), 3500 * GST_MSECOND);
}
GST_END_TEST;

GST_START_TEST(test_audio_ending_at_a_gap_ends_before_the_gap) {
  TimingMap map(16000);
  map.append(16000, 0);
  map.append(16000, 5 * GST_SECOND);
  /* Sample 16000 starts the second run at 5 s, but audio ending there ends at 1 s. */
  fail_unless_equals_uint64(map.time_at_sample(16000), 5 * GST_SECOND);
  fail_unless_equals_uint64(map.end_time_at_sample(16000), GST_SECOND);
  fail_unless_equals_uint64(map.end_time(), 6 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_timestamp_jitter_below_tolerance_is_absorbed) {
  TimingMap map(8000);
  map.append(80, 0);
  map.append(80, 10 * GST_MSECOND + 300 * GST_USECOND);
  fail_unless_equals_int(map.runs(), 1);
  map.append(80, 40 * GST_MSECOND); /* 20 ms early/late is a real jump */
  fail_unless_equals_int(map.runs(), 2);
}
GST_END_TEST;

GST_START_TEST(test_backwards_timestamps_start_a_new_run) {
  TimingMap map(16000);
  map.append(16000, 10 * GST_SECOND);
  map.append(16000, 2 * GST_SECOND); /* new segment restarting the timeline */
  fail_unless_equals_uint64(map.time_at_ms(1250), 2250 * GST_MSECOND);
}
GST_END_TEST;

GST_START_TEST(test_untimestamped_buffers_continue_the_timeline) {
  TimingMap map(16000);
  map.append(1600, GST_CLOCK_TIME_NONE);
  map.append(1600, GST_CLOCK_TIME_NONE);
  fail_unless_equals_uint64(map.time_at_ms(150), 150 * GST_MSECOND);
  TimingMap later(16000);
  later.append(1600, 7 * GST_SECOND);
  later.append(1600, GST_CLOCK_TIME_NONE);
  fail_unless_equals_uint64(later.time_at_ms(150), 7150 * GST_MSECOND);
}
GST_END_TEST;

GST_START_TEST(test_eight_khz_offsets_use_the_session_rate) {
  TimingMap map(8000);
  map.append(8000 * 3, GST_SECOND);
  fail_unless_equals_uint64(map.time_at_ms(2500), 3500 * GST_MSECOND);
  map.reset(16000);
  fail_unless_equals_uint64(map.time_at_ms(0), GST_CLOCK_TIME_NONE);
  map.append(16000, 0);
  fail_unless_equals_uint64(map.time_at_sample(8000), 500 * GST_MSECOND);
}
GST_END_TEST;

GST_START_TEST(test_forgetting_old_runs_keeps_later_offsets_exact) {
  TimingMap map(16000);
  for (int i = 0; i < 100; i++)
    map.append(16000, i * 2 * GST_SECOND); /* 1 s of audio every 2 s: a run each */
  fail_unless_equals_int(map.runs(), 100);
  map.forget_before_sample(50 * 16000);
  fail_unless_equals_int(map.runs(), 50);
  fail_unless_equals_uint64(map.time_at_ms(60500), 120500 * GST_MSECOND);
  /* Offsets before what is kept extrapolate backwards rather than failing. */
  fail_unless_equals_uint64(map.time_at_ms(49000), 99 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_offsets_beyond_what_was_sent_extrapolate) {
  TimingMap map(16000);
  map.append(16000, GST_SECOND);
  fail_unless_equals_uint64(map.time_at_ms(1200), 2200 * GST_MSECOND);
  fail_unless_equals_uint64(map.time_at_ms(-5), GST_SECOND);
}
GST_END_TEST;

static Suite *timingmap_suite(void) {
  Suite *s = suite_create("timingmap");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_contiguous_input_maps_linearly_with_one_run);
  tcase_add_test(tc, test_gap_in_input_shifts_later_offsets);
  tcase_add_test(tc, test_audio_ending_at_a_gap_ends_before_the_gap);
  tcase_add_test(tc, test_timestamp_jitter_below_tolerance_is_absorbed);
  tcase_add_test(tc, test_backwards_timestamps_start_a_new_run);
  tcase_add_test(tc, test_untimestamped_buffers_continue_the_timeline);
  tcase_add_test(tc, test_eight_khz_offsets_use_the_session_rate);
  tcase_add_test(tc, test_forgetting_old_runs_keeps_later_offsets_exact);
  tcase_add_test(tc, test_offsets_beyond_what_was_sent_extrapolate);
  return s;
}

GST_CHECK_MAIN(timingmap);
