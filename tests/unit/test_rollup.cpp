/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Roll-up window: confirmed words appended, the window scrolls, nothing is taken back, and
 * disagreements of the final are counted. */
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

#include "captionlayout.h"
#include "captiontimeline.h"
#include "rollup.h"

using qwenasr::RollUp;

/* The window's text (kept alive for the comparison). */
static void assert_window(const RollUp &r, const char *expected) {
  std::string window = r.window();
  fail_unless_equals_string(window.c_str(), expected);
}

GST_START_TEST(test_confirmed_words_join_the_window_as_they_come) {
  RollUp r;
  r.set_layout(0, 2);
  fail_unless(!r.update(1, "", "en"));
  fail_unless(r.update(1, "the quick ", "en"));
  assert_window(r, "the quick");
  fail_unless(!r.update(1, "the quick ", "en")); /* nothing new */
  fail_unless(r.update(1, "the quick brown fox", "en"));
  assert_window(r, "the quick brown fox");
  /* The final adds a capital and a full stop: the same words, not a contradiction. */
  fail_unless(r.update(1, "The quick brown fox jumps.", "en"));
  assert_window(r, "the quick brown fox jumps.");
  fail_unless_equals_int(r.contradicted(), 0);
  /* The next utterance continues the window. */
  fail_unless(r.update(2, "over", "en"));
  assert_window(r, "the quick brown fox jumps. over");
}
GST_END_TEST;

GST_START_TEST(test_the_window_scrolls_and_keeps_its_lines) {
  RollUp r;
  r.set_layout(16, 2);
  std::string text;
  for (int i = 0; i < 30; i++) {
    text += (i ? " " : "") + std::string("word") + std::to_string(i);
    r.update(7, text, "en");
    std::string window = r.window();
    gchar **lines = g_strsplit(window.c_str(), "\n", -1);
    fail_unless(g_strv_length(lines) <= 2, "window: %s", window.c_str());
    for (gchar **l = lines; *l; l++)
      fail_unless(qwenasr::perceived_length(*l) <= 16, "line: %s", *l);
    g_strfreev(lines);
    /* The newest word is always on screen, last. */
    std::string last = "word" + std::to_string(i);
    fail_unless(window.size() >= last.size() &&
                    window.compare(window.size() - last.size(), last.size(), last) == 0,
                "window %s lacks %s", window.c_str(), last.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_words_shown_are_never_taken_back_and_contradictions_count) {
  RollUp r;
  r.set_layout(0, 2);
  r.update(1, "I scream", "en");
  /* The final disagrees ("I see cream"): "scream" stays, the window goes on after the
   * two words shown. */
  fail_unless(r.update(1, "I see cream today", "en"));
  assert_window(r, "I scream cream today");
  fail_unless_equals_int(r.contradicted(), 1);
  /* Counted once. */
  r.update(1, "I see cream today", "en");
  fail_unless_equals_int(r.contradicted(), 1);
}
GST_END_TEST;

GST_START_TEST(test_chinese_words_join_without_spaces) {
  RollUp r;
  r.set_layout(0, 2);
  r.update(1, "今天", "zh");
  r.update(1, "今天天气很好", "zh");
  assert_window(r, "今天天气很好");
  r.update(2, "我们", "zh");
  assert_window(r, "今天天气很好我们");
}
GST_END_TEST;

GST_START_TEST(test_windows_are_timed_until_the_next_and_never_go_back) {
  qwenasr::CaptionTimeline timeline;
  timeline.add_window(GST_SECOND, GST_SECOND, "a", "en");
  timeline.add_window(1500 * GST_MSECOND, GST_SECOND, "a b", "en");
  /* A speech start does not end a window: roll-up text stays up. */
  timeline.speech_started(1200 * GST_MSECOND);
  std::vector<qwenasr::Cue> cues = timeline.take(0, 0, 0, false);
  fail_unless_equals_int(cues.size(), 1);
  fail_unless_equals_uint64(cues[0].duration, 500 * GST_MSECOND);
  fail_unless_equals_uint64(timeline.hold_point(), 1500 * GST_MSECOND);
  /* A newer window not later than the held one replaces its text. */
  timeline.add_window(1400 * GST_MSECOND, GST_SECOND, "a b c", "en");
  cues = timeline.take(1500 * GST_MSECOND, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(cues.size(), 1);
  fail_unless_equals_string(cues[0].text.c_str(), "a b c");
  fail_unless_equals_uint64(cues[0].duration, 7 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_a_window_stays_up_in_pieces_until_the_next_is_known) {
  qwenasr::CaptionTimeline timeline;
  timeline.add_window(GST_SECOND, GST_SECOND, "a", "en");
  /* Settled up to 1.4 s, nothing newer: 1.0-1.4 s goes out, the rest is held. */
  std::vector<qwenasr::Cue> cues = timeline.take(GST_SECOND, 1400 * GST_MSECOND, 0, false);
  fail_unless_equals_int(cues.size(), 1);
  fail_unless_equals_uint64(cues[0].pts, GST_SECOND);
  fail_unless_equals_uint64(cues[0].duration, 400 * GST_MSECOND);
  fail_unless(cues[0].first_of_utterance);
  fail_unless_equals_uint64(timeline.hold_point(), 1400 * GST_MSECOND);
  /* However long no window comes (no deadline ends it), nothing more before it settles. */
  fail_unless_equals_int(
      timeline.take(1400 * GST_MSECOND, 1400 * GST_MSECOND, G_MAXINT64, false).size(), 0);
  /* The next window at 2 s ends it there: the same text, continuous, then the new one. */
  timeline.add_window(2 * GST_SECOND, GST_SECOND, "a b", "en");
  cues = timeline.take(1400 * GST_MSECOND, 1500 * GST_MSECOND, 0, false);
  fail_unless_equals_int(cues.size(), 1);
  fail_unless_equals_string(cues[0].text.c_str(), "a");
  fail_unless_equals_uint64(cues[0].pts, 1400 * GST_MSECOND);
  fail_unless_equals_uint64(cues[0].duration, 600 * GST_MSECOND);
  fail_unless(!cues[0].first_of_utterance);
  /* A window of the next utterance is that utterance's first screen. */
  timeline.add_window(3 * GST_SECOND, 2500 * GST_MSECOND, "a b c", "en");
  cues = timeline.take(2 * GST_SECOND, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(cues.size(), 2);
  fail_unless(!cues[0].first_of_utterance);
  fail_unless_equals_uint64(cues[0].duration, GST_SECOND);
  fail_unless(cues[1].first_of_utterance);
}
GST_END_TEST;

static Suite *rollup_suite(void) {
  Suite *s = suite_create("rollup");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_confirmed_words_join_the_window_as_they_come);
  tcase_add_test(tc, test_the_window_scrolls_and_keeps_its_lines);
  tcase_add_test(tc, test_words_shown_are_never_taken_back_and_contradictions_count);
  tcase_add_test(tc, test_chinese_words_join_without_spaces);
  tcase_add_test(tc, test_windows_are_timed_until_the_next_and_never_go_back);
  tcase_add_test(tc, test_a_window_stays_up_in_pieces_until_the_next_is_known);
  return s;
}

GST_CHECK_MAIN(rollup);
