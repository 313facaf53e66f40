/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the send queue: queue bounds, sample numbering, resend history, settling. */
#include <memory>
#include <string>

#include <gst/check/gstcheck.h>

#include "sendqueue.h"

using namespace qwenasr;

namespace {

std::shared_ptr<const std::string> pcm(gsize samples, char fill = 1) {
  return std::make_shared<const std::string>(samples * 2, fill);
}

} // namespace

GST_START_TEST(test_only_the_first_push_into_an_empty_queue_asks_for_a_wake_up) {
  SendQueue q(1000, 1000);
  fail_unless(q.push_audio(pcm(10), 0), "empty -> non-empty wakes");
  fail_if(q.push_audio(pcm(10), 0), "a second push does not");
  fail_if(q.push_commit(), "nor does a commit behind audio");
  q.take();
  q.take();
  q.take();
  fail_unless(q.empty(), "all taken");
  fail_unless(q.push_finish(), "empty again: wakes again");
}
GST_END_TEST;

GST_START_TEST(test_audio_is_numbered_in_the_order_it_is_first_sent) {
  SendQueue q(1000, 1000);
  q.push_audio(pcm(10), 0);
  q.push_commit();
  q.push_audio(pcm(5), 0);
  Taken a = q.take();
  fail_unless(a.first_send, "first send");
  fail_unless_equals_uint64(a.item.offset, 0);
  Taken c = q.take();
  fail_unless_equals_uint64(c.item.offset, 10); /* a commit is numbered where it stands */
  Taken b = q.take();
  fail_unless_equals_uint64(b.item.offset, 10);
  fail_unless_equals_uint64(q.next_offset(), 15);
  fail_unless_equals_uint64(q.sent_samples(), 15);
  fail_unless_equals_uint64(q.queued_bytes(), 0);
}
GST_END_TEST;

GST_START_TEST(test_sending_shares_the_audio_instead_of_copying_it) {
  SendQueue q(1000, 1000);
  auto audio = pcm(10);
  const std::string *address = audio.get();
  q.push_audio(std::move(audio), 0);
  Taken t = q.take();
  fail_unless(t.item.audio.get() == address, "the queued buffer itself is sent");
  fail_unless(t.item.audio.use_count() == 2, "and kept once in the history");
}
GST_END_TEST;

GST_START_TEST(test_a_full_queue_drops_its_oldest_unsent_audio_only) {
  SendQueue q(100, 1000);
  q.push_audio(pcm(20), 0); /* 40 bytes */
  q.push_commit();
  q.push_audio(pcm(20), 0);
  fail_unless(q.would_overflow(40), "80 + 40 > 100");
  fail_if(q.would_overflow(20), "80 + 20 fits");
  fail_unless_equals_uint64(q.drop_unsent(40), 40);
  fail_if(q.would_overflow(40), "room now");
  fail_unless_equals_uint64(q.dropped_samples(), 20);
  fail_unless(q.front().kind == SendKind::Commit, "the commit stays");
  SendQueue empty(10, 10);
  fail_if(empty.would_overflow(1000), "an empty queue takes any size");
}
GST_END_TEST;

GST_START_TEST(test_settled_audio_leaves_the_history) {
  SendQueue q(1000, 1000);
  q.push_audio(pcm(10), 0);
  q.push_audio(pcm(10), 0);
  q.take();
  q.take();
  fail_unless_equals_uint64(q.history_bytes(), 40);
  fail_if(q.settle(0), "nothing new");
  fail_unless(q.settle(15), "settled to 15");
  fail_unless_equals_uint64(q.history_bytes(), 20); /* 10..20 still needed */
  fail_unless(q.settle(20), "settled to 20");
  fail_unless_equals_uint64(q.history_bytes(), 0);
  fail_if(q.settle(18), "settling never goes back");
}
GST_END_TEST;

GST_START_TEST(test_a_reconnection_resends_the_unsettled_audio_cut_at_the_settled_point) {
  SendQueue q(1000, 1000);
  q.push_audio(pcm(10, 'a'), 0);
  q.push_audio(pcm(10, 'b'), 0);
  q.take();
  q.take();
  q.push_audio(pcm(4, 'c'), 0); /* never sent */
  q.settle(6);
  q.requeue_history();
  fail_unless_equals_uint64(q.session_base(), 6);
  fail_unless_equals_uint64(q.history_bytes(), 0);
  fail_unless_equals_uint64(q.queued_bytes(), (4 + 10 + 4) * 2);
  Taken resent = q.take();
  fail_if(resent.first_send, "a resend");
  fail_unless_equals_uint64(resent.item.offset, 6);
  fail_unless_equals_uint64(resent.item.samples(), 4);
  fail_unless_equals_int(resent.item.audio->at(0), 'a');
  Taken second = q.take();
  fail_unless_equals_uint64(second.item.offset, 10);
  Taken fresh = q.take();
  fail_unless(fresh.first_send, "new audio");
  fail_unless_equals_uint64(fresh.item.offset, 20); /* numbering goes on */
  fail_unless_equals_uint64(q.sent_samples(), 24);  /* a resend counts once */
}
GST_END_TEST;

GST_START_TEST(test_the_resend_history_is_bounded_and_reports_what_it_gives_up) {
  SendQueue q(1000, 40); /* 20 samples */
  q.push_audio(pcm(15), 0);
  q.push_audio(pcm(15), 0);
  q.take();
  fail_unless(q.resend_full(), "15 + 15 samples would overrun 20");
  Taken t = q.take(); /* sent anyway (flow control gave up waiting) */
  fail_unless_equals_int(t.given_up.size(), 1);
  fail_unless_equals_uint64(t.given_up[0], 15);
  fail_unless_equals_uint64(q.dropped_samples(), 15);
  fail_unless_equals_uint64(q.history_bytes(), 30);
}
GST_END_TEST;

GST_START_TEST(test_a_commit_sent_first_gets_numbered_padding_at_its_point) {
  SendQueue q(1000, 1000);
  q.push_audio(pcm(10), 0);
  q.push_commit();
  q.take();
  Taken c = q.take(5);
  fail_unless(c.padding.audio != nullptr, "padding kept");
  fail_unless(c.padding.padding, "marked as padding");
  fail_unless_equals_uint64(c.item.offset, 10); /* the commit ends the audio before it */
  fail_unless_equals_uint64(c.padding.offset, 10);
  fail_unless_equals_uint64(c.padding.samples(), 5);
  fail_unless_equals_uint64(q.next_offset(), 15);
  /* Resent after a reconnection: the padding goes again as audio, the commit needs none. */
  q.requeue_history();
  q.take();
  Taken pad = q.take();
  fail_unless(pad.item.padding, "the padding is resent");
  Taken again = q.take(5);
  fail_if(again.first_send, "a resend");
  fail_if(again.padding.audio != nullptr, "no new padding");
}
GST_END_TEST;

static Suite *sendqueue_suite() {
  Suite *s = suite_create("sendqueue");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_only_the_first_push_into_an_empty_queue_asks_for_a_wake_up);
  tcase_add_test(tc, test_audio_is_numbered_in_the_order_it_is_first_sent);
  tcase_add_test(tc, test_sending_shares_the_audio_instead_of_copying_it);
  tcase_add_test(tc, test_a_full_queue_drops_its_oldest_unsent_audio_only);
  tcase_add_test(tc, test_settled_audio_leaves_the_history);
  tcase_add_test(tc, test_a_reconnection_resends_the_unsettled_audio_cut_at_the_settled_point);
  tcase_add_test(tc, test_the_resend_history_is_bounded_and_reports_what_it_gives_up);
  tcase_add_test(tc, test_a_commit_sent_first_gets_numbered_padding_at_its_point);
  return s;
}

GST_CHECK_MAIN(sendqueue);
