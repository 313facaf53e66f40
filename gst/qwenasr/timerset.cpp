/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Many timers behind one GSource, kept in deadline order. */
#include "timerset.h"

#include <vector>

namespace qwenasr {

namespace {

/* A source with no poll of its own: it is ready at its ready time (g_source_set_ready_time()),
 * which GLib compares with the clock once per iteration. */
GSourceFuncs kFuncs = {
    nullptr,
    nullptr,
    [](GSource *, GSourceFunc callback, gpointer data) -> gboolean { return callback(data); },
    nullptr,
    nullptr,
    nullptr,
};

} // namespace

TimerSet::TimerSet(GMainContext *context) {
  source_ = g_source_new(&kFuncs, sizeof(GSource));
  g_source_set_callback(source_, dispatch, this, nullptr);
  g_source_set_ready_time(source_, -1);
  g_source_attach(source_, context);
}

TimerSet::~TimerSet() {
  g_source_destroy(source_);
  g_source_unref(source_);
}

guint64 TimerSet::add(guint interval_ms, Func func, gpointer data) {
  const gint64 interval_us = static_cast<gint64>(interval_ms) * 1000;
  std::lock_guard<std::mutex> lock(mutex_);
  const guint64 token = next_token_++;
  const gint64 deadline = g_get_monotonic_time() + interval_us;
  due_.emplace(Key{deadline, token}, Timer{interval_us, func, data});
  deadlines_.emplace(token, deadline);
  update_ready_time_locked();
  return token;
}

void TimerSet::remove(guint64 token) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = deadlines_.find(token);
  if (it == deadlines_.end())
    return;
  due_.erase(Key{it->second, token});
  deadlines_.erase(it);
  update_ready_time_locked();
}

gsize TimerSet::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return deadlines_.size();
}

/* Wakes the context if the earliest deadline moved (g_source_set_ready_time() does, from any
 * thread). */
void TimerSet::update_ready_time_locked() {
  const gint64 ready = due_.empty() ? -1 : due_.begin()->first.first;
  if (g_source_get_ready_time(source_) != ready)
    g_source_set_ready_time(source_, ready);
}

/* Runs every timer due now, earliest first. The lock is released around each callback, which
 * may add or remove timers (its own included); one removed meanwhile is not run. */
gboolean TimerSet::dispatch(gpointer data) {
  auto *self = static_cast<TimerSet *>(data);
  const gint64 now = g_get_monotonic_time();
  std::unique_lock<std::mutex> lock(self->mutex_);
  std::vector<Key> ready;
  for (auto it = self->due_.begin(); it != self->due_.end() && it->first.first <= now; ++it)
    ready.push_back(it->first);
  for (const Key &key : ready) {
    auto it = self->due_.find(key);
    if (it == self->due_.end())
      continue; /* removed by an earlier callback of this round */
    Timer timer = it->second;
    self->due_.erase(it);
    lock.unlock();
    const gboolean again = timer.func(timer.data);
    lock.lock();
    auto deadline = self->deadlines_.find(key.second);
    if (deadline == self->deadlines_.end())
      continue; /* the callback removed its own timer */
    if (again) {
      deadline->second = g_get_monotonic_time() + timer.interval_us;
      self->due_.emplace(Key{deadline->second, key.second}, timer);
    } else {
      self->deadlines_.erase(deadline);
    }
  }
  self->update_ready_time_locked();
  return G_SOURCE_CONTINUE;
}

} // namespace qwenasr
