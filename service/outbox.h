// SPDX-License-Identifier: LGPL-2.1-or-later
/* The outgoing queue of one local-service session: the one place that decides whether a frame
 * is written now, held (event delay, stall) or dropped (after a fault close was decided).
 * Events, junk frames and fault closes leave in the order they were posted. Service thread only;
 * the writing itself is the OutboxWriter's. */
#pragma once

#include <glib.h>

#include <deque>
#include <optional>
#include <string>

#include "faults.h"

namespace qwenasr::local {

/* One frame, or a fault close, waiting to leave. */
struct Outgoing {
  enum class Kind { Text, Binary, Close } kind = Kind::Text;
  std::string data;                      // frame payload, or close reason
  std::string type;                      // event type; "" for junk and closes
  const char *junk = nullptr;            // junk description, for the log
  std::optional<std::string> transcript; // completed events
  FaultClose close = FaultClose::None;
  gint64 due = 0; // monotonic time (us) before which it must not leave
};

class OutboxWriter {
public:
  virtual void write(const Outgoing &o) = 0;
  /* A Close reached the front of the queue; may destroy the Outbox (and its owner). */
  virtual void execute_close(const Outgoing &o) = 0;

protected:
  ~OutboxWriter() = default;
};

class Outbox {
public:
  /* Every frame is held delay_ms after it is posted; timers are attached to ctx. */
  Outbox(GMainContext *ctx, OutboxWriter &writer, guint delay_ms)
      : ctx_(ctx), writer_(writer), delay_ms_(delay_ms) {}
  ~Outbox() { cancel_timer(); }
  Outbox(const Outbox &) = delete;
  Outbox &operator=(const Outbox &) = delete;

  /* Written at once when nothing is queued, held or delayed (the fault-free path); else queued.
   * Once a Close was posted, nothing but it leaves any more. */
  void post(Outgoing o);
  /* Stall: nothing leaves before monotonic time t (us). */
  void hold_until(gint64 t);
  /* Drops everything queued (the connection is going away). */
  void clear();
  /* A Close was posted (a closing fault was decided). */
  bool closing() const { return closing_; }

private:
  static gboolean on_flush_cb(gpointer data);
  void schedule_flush();
  void cancel_timer();
  void flush(); // may destroy this

  GMainContext *ctx_;
  OutboxWriter &writer_;
  const guint delay_ms_;
  std::deque<Outgoing> queue_;
  gint64 hold_until_ = 0; // stall: nothing leaves before this monotonic time
  GSource *flush_timer_ = nullptr;
  bool closing_ = false;
};

} // namespace qwenasr::local
