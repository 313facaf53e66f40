/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption line layout: perceived characters, word breaks, punctuation, CJK rules, screens. */
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

#include "captionlayout.h"

using qwenasr::break_lines;
using qwenasr::group_lines;
using qwenasr::perceived_length;

/* Lines joined by '|', compared with `expected`. */
static void assert_lines(const std::vector<std::string> &lines, const char *expected) {
  std::string s;
  for (const std::string &l : lines)
    s += (s.empty() ? "" : "|") + l;
  fail_unless(s == expected, "got \"%s\", expected \"%s\"", s.c_str(), expected);
}

GST_START_TEST(test_perceived_length_counts_what_a_viewer_sees) {
  fail_unless_equals_int(perceived_length("abc"), 3);
  fail_unless_equals_int(perceived_length("Café"), 4);
  fail_unless_equals_int(perceived_length("Cafe\xCC\x81"), 4); /* e + combining acute */
  fail_unless_equals_int(perceived_length("你好"), 2);
  fail_unless_equals_int(perceived_length("👍🏽"), 1);        /* skin tone */
  fail_unless_equals_int(perceived_length("👨\u200D👩\u200D👧"), 1); /* ZWJ family */
  fail_unless_equals_int(perceived_length("\xff\xfe"), 0);        /* invalid */
}
GST_END_TEST;

GST_START_TEST(test_lines_break_between_words_within_the_width) {
  std::vector<std::string> lines = break_lines("the quick brown fox jumps over the lazy dog", 16);
  assert_lines(lines, "the quick brown|fox jumps over|the lazy dog");
  for (const std::string &l : lines)
    fail_unless(perceived_length(l) <= 16, "line too long: %s", l.c_str());
  assert_lines(break_lines("  spaced \n  out  ", 32), "spaced out");
}
GST_END_TEST;

GST_START_TEST(test_a_break_after_punctuation_is_preferred) {
  /* Greedy would give "Yes, I know. But the|weather..."; the sentence end is kept instead. */
  std::vector<std::string> lines = break_lines("Yes, I know. But the weather is bad", 20);
  assert_lines(lines, "Yes, I know.|But the weather is|bad");
  /* Not when it would leave less than half a line. */
  lines = break_lines("No. This sentence goes on and on", 20);
  assert_lines(lines, "No. This sentence|goes on and on");
}
GST_END_TEST;

GST_START_TEST(test_accented_text_counts_characters_not_bytes) {
  std::vector<std::string> lines = break_lines("éééé éééé éééé", 9);
  assert_lines(lines, "éééé éééé|éééé");
}
GST_END_TEST;

GST_START_TEST(test_a_word_longer_than_a_line_is_cut) {
  std::vector<std::string> lines = break_lines("a Donaudampfschifffahrt b", 10);
  assert_lines(lines, "a|Donaudampf|schifffahr|t b");
}
GST_END_TEST;

GST_START_TEST(test_chinese_breaks_between_characters_but_not_before_closing_punctuation) {
  /* 16 columns: the break may not put "，" at the start of the second line. */
  std::vector<std::string> lines = break_lines("今天天气很好我们一起去公园散步吧，好不好？", 16);
  fail_unless_equals_int(lines.size(), 2);
  fail_unless_equals_string(lines[0].c_str(), "今天天气很好我们一起去公园散步");
  fail_unless_equals_string(lines[1].c_str(), "吧，好不好？");
  for (const std::string &l : lines)
    fail_unless(l.rfind("，", 0) != 0 && l.rfind("？", 0) != 0, "closing punctuation first");
}
GST_END_TEST;

GST_START_TEST(test_opening_punctuation_never_ends_a_line) {
  /* "「" would fit at the end of line 1 but must move down with the quoted word. */
  std::vector<std::string> lines = break_lines("他说了一句话「你好」", 7);
  fail_unless_equals_string(lines[0].c_str(), "他说了一句话");
  fail_unless_equals_string(lines[1].c_str(), "「你好」");
}
GST_END_TEST;

GST_START_TEST(test_japanese_small_kana_stay_with_the_character_before) {
  std::vector<std::string> lines = break_lines("ちょっと待って", 3);
  for (const std::string &l : lines) {
    fail_unless(l.rfind("ょ", 0) != 0 && l.rfind("っ", 0) != 0, "small kana starts %s", l.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_mixed_latin_and_cjk_break_at_both) {
  std::vector<std::string> lines = break_lines("GStreamer 是一个多媒体框架", 12);
  assert_lines(lines, "GStreamer 是一|个多媒体框架");
}
GST_END_TEST;

GST_START_TEST(test_lines_group_into_screens_of_n_rows) {
  std::vector<std::vector<std::string>> screens = group_lines({"a", "b", "c", "d", "e"}, 2);
  fail_unless_equals_int(screens.size(), 3);
  fail_unless_equals_int(screens[2].size(), 1);
  fail_unless_equals_string(screens[2][0].c_str(), "e");
  fail_unless(group_lines({}, 2).empty(), "no lines, no screens");
}
GST_END_TEST;

GST_START_TEST(test_empty_and_blank_text_give_no_lines) {
  fail_unless(break_lines("", 32).empty(), "empty text");
  fail_unless(break_lines(" \n\t ", 32).empty(), "blank text");
  fail_unless(break_lines("abc", 0).empty(), "zero columns");
}
GST_END_TEST;

static Suite *layout_suite(void) {
  Suite *s = suite_create("captionlayout");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_perceived_length_counts_what_a_viewer_sees);
  tcase_add_test(tc, test_lines_break_between_words_within_the_width);
  tcase_add_test(tc, test_a_break_after_punctuation_is_preferred);
  tcase_add_test(tc, test_accented_text_counts_characters_not_bytes);
  tcase_add_test(tc, test_a_word_longer_than_a_line_is_cut);
  tcase_add_test(tc, test_chinese_breaks_between_characters_but_not_before_closing_punctuation);
  tcase_add_test(tc, test_opening_punctuation_never_ends_a_line);
  tcase_add_test(tc, test_japanese_small_kana_stay_with_the_character_before);
  tcase_add_test(tc, test_mixed_latin_and_cjk_break_at_both);
  tcase_add_test(tc, test_lines_group_into_screens_of_n_rows);
  tcase_add_test(tc, test_empty_and_blank_text_give_no_lines);
  return s;
}

GST_CHECK_MAIN(layout);
