/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The timers of every session through one source on a GMainContext: a GLib main loop looks at
 * every attached source on each iteration, so one timeout source per session (watchdog,
 * connect timeout) made each received event cost time in proportion to the number of
 * sessions. Here the timers are kept in deadline order behind one source whose ready time is
 * the earliest deadline: an iteration costs the same however many timers there are. */
#pragma once

#include <glib.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace qwenasr {

class TimerSet {
public:
  /* Returns G_SOURCE_CONTINUE to run again `interval` later, G_SOURCE_REMOVE to end. */
  using Func = gboolean (*)(gpointer data);

  /* Attached to `context`; callbacks run on the thread that iterates it. */
  explicit TimerSet(GMainContext *context);
  ~TimerSet();
  TimerSet(const TimerSet &) = delete;
  TimerSet &operator=(const TimerSet &) = delete;

  /* Calls func(data) `interval_ms` from now (monotonic clock), then every `interval_ms` while
   * it returns G_SOURCE_CONTINUE. Any thread. Returns a token for remove(), never 0. */
  guint64 add(guint interval_ms, Func func, gpointer data);
  /* The timer will not run again: on the context's thread, not even in the round being
   * dispatched; from another thread, a call already under way may finish. Any thread; an
   * unknown or 0 token is ignored. */
  void remove(guint64 token);
  /* Timers waiting (for tests). */
  gsize size() const;

private:
  struct Timer {
    gint64 interval_us;
    Func func;
    gpointer data;
  };
  using Key = std::pair<gint64, guint64>; /* deadline (monotonic µs), token */
  static gboolean dispatch(gpointer self);
  void update_ready_time_locked();

  GSource *source_ = nullptr;
  mutable std::mutex mutex_; /* guards what follows; never held while a callback runs */
  guint64 next_token_ = 1;
  std::map<Key, Timer> due_;                      /* in deadline order */
  std::unordered_map<guint64, gint64> deadlines_; /* token -> its key's deadline */
};

} // namespace qwenasr
