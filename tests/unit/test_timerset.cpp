/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the timer set: deadline order, repeating, removal during a round, and adds
 * from another thread waking the context. */
#include <thread>
#include <vector>

#include <gst/check/gstcheck.h>

#include "timerset.h"

using namespace qwenasr;

namespace {

struct Log {
  std::vector<int> ran;
  TimerSet *timers = nullptr;
  guint64 victim = 0;   /* removed by the first callback to run */
  int repeats_left = 0; /* a repeating timer's remaining runs */
};

struct Probe {
  Log *log;
  int id;
};

gboolean record(gpointer data) {
  auto *p = static_cast<Probe *>(data);
  p->log->ran.push_back(p->id);
  if (p->log->victim) {
    p->log->timers->remove(p->log->victim);
    p->log->victim = 0;
  }
  return G_SOURCE_REMOVE;
}

gboolean repeat(gpointer data) {
  auto *p = static_cast<Probe *>(data);
  p->log->ran.push_back(p->id);
  return --p->log->repeats_left > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Iterates `context` until `done()` or 5 s have passed; false on the latter. */
template <typename Done> bool iterate_until(GMainContext *context, Done done) {
  gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (!done()) {
    if (g_get_monotonic_time() > deadline)
      return false;
    g_main_context_iteration(context, FALSE);
    g_usleep(1000);
  }
  return true;
}

} // namespace

GST_START_TEST(test_timers_run_in_deadline_order_not_in_order_added) {
  GMainContext *context = g_main_context_new();
  {
    TimerSet timers(context);
    Log log;
    Probe late{&log, 1}, early{&log, 2};
    timers.add(60, record, &late);
    timers.add(5, record, &early);
    fail_unless(iterate_until(context, [&] { return log.ran.size() == 2; }), "both ran");
    fail_unless_equals_int(log.ran[0], 2);
    fail_unless_equals_int(log.ran[1], 1);
    fail_unless_equals_int(timers.size(), 0);
  }
  g_main_context_unref(context);
}
GST_END_TEST;

GST_START_TEST(test_a_timer_repeats_while_its_callback_asks_to) {
  GMainContext *context = g_main_context_new();
  {
    TimerSet timers(context);
    Log log;
    log.repeats_left = 3;
    Probe p{&log, 7};
    timers.add(1, repeat, &p);
    fail_unless(iterate_until(context, [&] { return timers.size() == 0; }), "ended");
    fail_unless_equals_int(log.ran.size(), 3);
  }
  g_main_context_unref(context);
}
GST_END_TEST;

GST_START_TEST(test_a_timer_removed_by_an_earlier_callback_of_the_same_round_does_not_run) {
  GMainContext *context = g_main_context_new();
  {
    TimerSet timers(context);
    Log log;
    log.timers = &timers;
    Probe first{&log, 1}, second{&log, 2}, third{&log, 3};
    timers.add(1, record, &first);
    log.victim = timers.add(2, record, &second);
    timers.add(3, record, &third);
    g_usleep(10000); /* all three due in one round */
    fail_unless(iterate_until(context, [&] { return timers.size() == 0; }), "round over");
    fail_unless_equals_int(log.ran.size(), 2);
    fail_unless_equals_int(log.ran[0], 1);
    fail_unless_equals_int(log.ran[1], 3);
  }
  g_main_context_unref(context);
}
GST_END_TEST;

struct SelfRemover {
  TimerSet *timers;
  guint64 token = 0;
  int runs = 0;
};

gboolean remove_self_but_ask_again(gpointer data) {
  auto *s = static_cast<SelfRemover *>(data);
  s->runs++;
  s->timers->remove(s->token);
  return G_SOURCE_CONTINUE;
}

GST_START_TEST(test_a_timer_that_removes_itself_does_not_run_again) {
  GMainContext *context = g_main_context_new();
  {
    TimerSet timers(context);
    SelfRemover s{&timers};
    s.token = timers.add(1, remove_self_but_ask_again, &s);
    fail_unless(iterate_until(context, [&] { return s.runs > 0; }), "ran");
    fail_unless_equals_int(timers.size(), 0);
    g_usleep(5000);
    g_main_context_iteration(context, FALSE);
    fail_unless_equals_int(s.runs, 1);
  }
  g_main_context_unref(context);
}
GST_END_TEST;

/* The network thread sleeps in poll() with no deadline; a timer added from a streaming thread
 * must wake it (g_source_set_ready_time() from another thread). */
GST_START_TEST(test_a_timer_added_from_another_thread_wakes_the_sleeping_context) {
  GMainContext *context = g_main_context_new();
  {
    TimerSet timers(context);
    Log log;
    Probe p{&log, 9};
    GSource *guard = g_timeout_source_new_seconds(5); /* a bound, not the expected path */
    bool timed_out = false;
    g_source_set_callback(
        guard,
        [](gpointer data) -> gboolean {
          *static_cast<bool *>(data) = true;
          return G_SOURCE_REMOVE;
        },
        &timed_out, nullptr);
    g_source_attach(guard, context);
    std::thread loop([&] {
      while (log.ran.empty() && !timed_out)
        g_main_context_iteration(context, TRUE);
    });
    g_usleep(20000); /* the loop is asleep by now, or soon will be: either way it must wake */
    timers.add(0, record, &p);
    loop.join();
    fail_if(timed_out, "woken by the add, not by the 5 s guard");
    fail_unless_equals_int(log.ran.size(), 1);
    g_source_destroy(guard);
    g_source_unref(guard);
  }
  g_main_context_unref(context);
}
GST_END_TEST;

static Suite *timerset_suite() {
  Suite *s = suite_create("timerset");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_timers_run_in_deadline_order_not_in_order_added);
  tcase_add_test(tc, test_a_timer_repeats_while_its_callback_asks_to);
  tcase_add_test(tc, test_a_timer_removed_by_an_earlier_callback_of_the_same_round_does_not_run);
  tcase_add_test(tc, test_a_timer_that_removes_itself_does_not_run_again);
  tcase_add_test(tc, test_a_timer_added_from_another_thread_wakes_the_sleeping_context);
  return s;
}

GST_CHECK_MAIN(timerset);
