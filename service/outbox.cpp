// SPDX-License-Identifier: LGPL-2.1-or-later
/* The outgoing queue of a local-service session (see outbox.h). */
#include "outbox.h"

#include <algorithm>
#include <utility>

namespace qwenasr::local {

void Outbox::post(Outgoing o) {
  if (closing_ && o.kind != Outgoing::Kind::Close)
    return; // the session is going down by a fault: nothing more leaves
  const gint64 now = g_get_monotonic_time();
  o.due = now + static_cast<gint64>(delay_ms_) * G_TIME_SPAN_MILLISECOND;
  if (queue_.empty() && o.due <= now && now >= hold_until_ && o.kind != Outgoing::Kind::Close) {
    writer_.write(o); // the fault-free path: written at once, as before faults existed
    return;
  }
  if (o.kind == Outgoing::Kind::Close)
    closing_ = true;
  queue_.push_back(std::move(o));
  if (queue_.size() == 1 || !flush_timer_)
    schedule_flush(); // otherwise the pending timer already serves the queue's front
}

void Outbox::hold_until(gint64 t) {
  hold_until_ = std::max(hold_until_, t);
  schedule_flush();
}

void Outbox::clear() {
  cancel_timer();
  queue_.clear();
}

void Outbox::schedule_flush() {
  cancel_timer();
  if (queue_.empty())
    return;
  const gint64 when = std::max(queue_.front().due, hold_until_);
  const gint64 wait = std::max<gint64>(0, when - g_get_monotonic_time());
  flush_timer_ = g_timeout_source_new(static_cast<guint>((wait + 999) / 1000));
  g_source_set_callback(flush_timer_, on_flush_cb, this, nullptr);
  g_source_attach(flush_timer_, ctx_);
}

void Outbox::cancel_timer() {
  if (flush_timer_) {
    g_source_destroy(flush_timer_);
    g_source_unref(flush_timer_);
    flush_timer_ = nullptr;
  }
}

gboolean Outbox::on_flush_cb(gpointer data) {
  auto *self = static_cast<Outbox *>(data);
  try {
    self->flush(); // may destroy self
  } catch (...) {
    g_warning("local service: exception while sending queued events");
  }
  return G_SOURCE_REMOVE;
}

void Outbox::flush() {
  g_source_unref(flush_timer_);
  flush_timer_ = nullptr;
  const gint64 now = g_get_monotonic_time();
  while (!queue_.empty() && queue_.front().due <= now && now >= hold_until_) {
    Outgoing o = std::move(queue_.front());
    queue_.pop_front();
    if (o.kind == Outgoing::Kind::Close) {
      queue_.clear();
      writer_.execute_close(o); // may destroy this
      return;
    }
    writer_.write(o);
  }
  schedule_flush();
}

} // namespace qwenasr::local
