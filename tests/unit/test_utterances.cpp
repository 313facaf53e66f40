/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The utterance bookkeeping alone: one final per item, finals in audio order (bounded hold),
 * the settle point, and the utterances that never got a final named at the end. */
#include <gst/check/gstcheck.h>

#include "utterances.h"

using qwenasr::FinalText;
using qwenasr::LostSpan;
using qwenasr::ReleasedFinal;
using qwenasr::Utterances;

static const gint64 kHold = 8 * G_USEC_PER_SEC;

static FinalText final_of(const char *item, const char *text) {
  return FinalText{item, text, "en", "neutral", "sess"};
}

static bool arrive(Utterances &u, const char *item, const char *text, gint64 now,
                   std::optional<guint64> *settle = nullptr) {
  std::optional<guint64> ignored;
  return u.final_arrived(final_of(item, text), now, settle ? settle : &ignored);
}

GST_START_TEST(test_a_repeated_final_is_ignored_and_counted) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_stopped("A", 4800);
  fail_unless(arrive(u, "A", "alpha", 0), "first final refused");
  fail_if(arrive(u, "A", "alpha", 10), "repeat taken");
  fail_if(arrive(u, "A", "alpha again", 20), "repeat with other text taken");
  auto out = u.release(30, kHold, false);
  fail_unless_equals_int(out.size(), 1);
  fail_unless_equals_string(out[0].final.text.c_str(), "alpha");
  fail_unless_equals_uint64(*out[0].start_sample, 0);
  fail_unless_equals_uint64(*out[0].end_sample, 4800);
  fail_unless_equals_uint64(u.repeated_finals(), 2);
  fail_unless(u.release(40, kHold, true).empty(), "a repeat was released later");
}
GST_END_TEST;

GST_START_TEST(test_events_for_an_item_already_final_are_ignored_and_counted) {
  Utterances u;
  u.speech_started("A", 0);
  arrive(u, "A", "alpha", 0);
  fail_if(u.partial("A"), "a partial after the final taken");
  fail_if(u.speech_started("A", 100), "speech_started after the final taken");
  fail_if(u.speech_stopped("A", 200), "speech_stopped after the final taken");
  fail_unless_equals_uint64(u.ignored_events(), 3);
  fail_if(u.any_open(), "an item is open again after its final");
}
GST_END_TEST;

GST_START_TEST(test_a_later_final_waits_for_the_earlier_utterance) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_stopped("A", 4800);
  u.speech_started("B", 8000);
  u.speech_stopped("B", 11200);
  std::optional<guint64> settle;
  arrive(u, "B", "bravo", 100, &settle);
  /* B's audio needs no resend, but A's still does: settled only up to A's start. */
  fail_unless(settle.has_value(), "no settle point");
  fail_unless_equals_uint64(*settle, 0);
  fail_unless(u.release(200, kHold, false).empty(), "B released while A is open");
  fail_unless_equals_uint64(*u.earliest_unreleased(std::nullopt), 0);
  arrive(u, "A", "alpha", 300, &settle);
  fail_unless_equals_uint64(*settle, 11200); /* B is final too */
  auto out = u.release(300, kHold, false);
  fail_unless_equals_int(out.size(), 2);
  fail_unless_equals_string(out[0].final.item_id.c_str(), "A");
  fail_unless_equals_string(out[1].final.item_id.c_str(), "B");
  fail_unless_equals_uint64(u.out_of_order_finals(), 0);
  fail_if(u.earliest_unreleased(std::nullopt).has_value(), "something still open");
}
GST_END_TEST;

GST_START_TEST(test_the_hold_is_bounded) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_started("B", 8000);
  arrive(u, "B", "bravo", 0);
  fail_unless(u.release(kHold - 1, kHold, false).empty(), "released before the hold ran out");
  auto out = u.release(kHold, kHold, false);
  fail_unless_equals_int(out.size(), 1);
  fail_unless_equals_string(out[0].final.item_id.c_str(), "B");
  /* A comes late, after B: released at once, counted as out of order. */
  arrive(u, "A", "alpha", kHold + 1);
  out = u.release(kHold + 1, kHold, false);
  fail_unless_equals_int(out.size(), 1);
  fail_unless_equals_uint64(u.out_of_order_finals(), 1);
}
GST_END_TEST;

GST_START_TEST(test_finals_in_order_go_at_once) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_started("B", 8000);
  arrive(u, "A", "alpha", 0);
  auto out = u.release(0, kHold, false);
  fail_unless_equals_int(out.size(), 1);
  fail_unless_equals_string(out[0].final.item_id.c_str(), "A");
  /* B is open: its start is the earliest unreleased one. */
  fail_unless_equals_uint64(*u.earliest_unreleased(std::nullopt), 8000);
}
GST_END_TEST;

GST_START_TEST(test_utterances_without_a_final_are_named_at_the_end) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_stopped("A", 4800);
  u.speech_started("B", 8000);
  u.speech_stopped("B", 11200);
  u.speech_started("C", 12000);
  arrive(u, "B", "bravo", 0);
  fail_unless(u.any_open(), "A and C are open");
  fail_unless_equals_int(u.release(0, kHold, true).size(), 1);
  std::vector<LostSpan> lost = u.take_lost();
  fail_unless_equals_int(lost.size(), 2);
  fail_unless_equals_string(lost[0].item_id.c_str(), "A");
  fail_unless_equals_uint64(lost[0].start_sample, 0);
  fail_unless_equals_uint64(*lost[0].end_sample, 4800);
  fail_unless_equals_string(lost[1].item_id.c_str(), "C");
  fail_unless_equals_uint64(lost[1].start_sample, 12000);
  fail_if(lost[1].end_sample.has_value(), "C never stopped");
  fail_unless_equals_uint64(u.lost_utterances(), 2);
  fail_if(u.any_open(), "still open after take_lost");
}
GST_END_TEST;

GST_START_TEST(test_manual_commits_are_ordered_and_a_commit_never_answered_is_lost) {
  Utterances u;
  u.commit_sent(16000);
  u.commit_sent(32000);
  u.commit_sent(40000);
  fail_unless_equals_uint64(u.last_commit_sample(), 40000);
  u.committed("A");
  u.committed("B");
  /* B's final first: held behind A's commit. */
  std::optional<guint64> settle;
  arrive(u, "B", "bravo", 0, &settle);
  fail_unless_equals_uint64(*settle, 0);
  fail_unless(u.release(0, kHold, false).empty(), "B released while A is open");
  arrive(u, "A", "alpha", 1, &settle);
  fail_unless_equals_uint64(*settle, 32000);
  auto out = u.release(1, kHold, false);
  fail_unless_equals_int(out.size(), 2);
  fail_unless_equals_uint64(*out[0].start_sample, 0);
  fail_unless_equals_uint64(*out[1].start_sample, 16000);
  /* The third commit was never answered. */
  std::vector<LostSpan> lost = u.take_lost();
  fail_unless_equals_int(lost.size(), 1);
  fail_unless_equals_uint64(lost[0].start_sample, 32000);
  fail_unless_equals_uint64(*lost[0].end_sample, 40000);
}
GST_END_TEST;

GST_START_TEST(test_a_failed_item_is_not_waited_for_nor_lost) {
  Utterances u;
  u.speech_started("A", 0);
  u.speech_started("B", 8000);
  arrive(u, "B", "bravo", 0);
  fail_unless(u.release(0, kHold, false).empty(), "B released while A is open");
  u.failed("A");
  fail_unless_equals_int(u.release(1, kHold, false).size(), 1);
  fail_unless(u.take_lost().empty(), "a failed item counted as lost");
  fail_if(arrive(u, "A", "alpha", 2), "a final after failed taken");
}
GST_END_TEST;

GST_START_TEST(test_a_lost_session_keeps_its_utterance_open_until_settled) {
  Utterances u;
  u.speech_started("A", 1600);
  u.session_restarted();
  fail_unless_equals_uint64(*u.earliest_unreleased(std::nullopt), 1600);
  /* The resent audio comes back under a new id. */
  u.speech_started("A2", 1600);
  u.speech_stopped("A2", 6400);
  std::optional<guint64> settle;
  arrive(u, "A2", "alpha", 0, &settle);
  /* Final past the lost session's start: that utterance is done too. */
  fail_unless_equals_uint64(*settle, 6400);
  fail_if(u.any_open(), "the lost session's utterance is still open");
  fail_unless_equals_int(u.release(0, kHold, false).size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_a_final_without_timing_goes_first) {
  Utterances u;
  u.speech_started("A", 0);
  arrive(u, "X", "unplaced", 0);
  auto out = u.release(0, kHold, false);
  fail_unless_equals_int(out.size(), 1);
  fail_if(out[0].start_sample.has_value(), "a start was invented");
}
GST_END_TEST;

GST_START_TEST(test_remembered_finals_are_bounded) {
  Utterances u;
  for (gsize i = 0; i < Utterances::kRememberedFinals + 10; i++)
    arrive(u, ("item" + std::to_string(i)).c_str(), "x", 0);
  /* The oldest are forgotten; the newest still count as repeats. */
  fail_unless(arrive(u, "item0", "x", 0), "the oldest id is still remembered");
  fail_if(arrive(u, "item100", "x", 0), "a recent id was forgotten");
}
GST_END_TEST;

static Suite *utterances_suite(void) {
  Suite *s = suite_create("utterances");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_a_repeated_final_is_ignored_and_counted);
  tcase_add_test(tc, test_events_for_an_item_already_final_are_ignored_and_counted);
  tcase_add_test(tc, test_a_later_final_waits_for_the_earlier_utterance);
  tcase_add_test(tc, test_the_hold_is_bounded);
  tcase_add_test(tc, test_finals_in_order_go_at_once);
  tcase_add_test(tc, test_utterances_without_a_final_are_named_at_the_end);
  tcase_add_test(tc, test_manual_commits_are_ordered_and_a_commit_never_answered_is_lost);
  tcase_add_test(tc, test_a_failed_item_is_not_waited_for_nor_lost);
  tcase_add_test(tc, test_a_lost_session_keeps_its_utterance_open_until_settled);
  tcase_add_test(tc, test_a_final_without_timing_goes_first);
  tcase_add_test(tc, test_remembered_finals_are_bounded);
  return s;
}

GST_CHECK_MAIN(utterances);
