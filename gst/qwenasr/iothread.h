/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one network thread of the process: a GMainContext, pushed as thread default, on which
 * every client session does its libsoup work. Reference-counted: started with the first
 * session, stopped with the last. */
#pragma once

#include "fdwatcher.h"
#include "timerset.h"

#include <glib.h>

#include <atomic>
#include <memory>

namespace qwenasr {

class IoThread {
public:
  /* The running thread, or a new one; null (with `error`) if no thread can start. */
  static std::shared_ptr<IoThread> acquire(GError **error);
  /* Stops the loop; joins the thread, unless called on it (it then ends on its own). */
  ~IoThread();
  IoThread(const IoThread &) = delete;
  IoThread &operator=(const IoThread &) = delete;

  GMainContext *context() const { return loop_->context; }
  /* The sockets of every session, polled as one (null: none, use a source per socket). */
  FdWatcher *watcher() const { return watcher_ && watcher_->ok() ? watcher_.get() : nullptr; }
  /* The timers of every session. */
  TimerSet *timers() const { return timers_.get(); }
  bool is_current() const { return g_thread_self() == thread_; }

  /* Shared with the thread, which may outlive its IoThread (see ~IoThread). */
  struct Loop {
    ~Loop();
    GMainContext *context = nullptr; /* owned */
    std::atomic<bool> quit{false};
  };

private:
  IoThread() = default;
  std::shared_ptr<Loop> loop_;
  GThread *thread_ = nullptr; /* joined (or unreffed) by the destructor */
  /* Used on the thread only (timers_: added to from any thread); destroyed after it was joined (or
   * from it, at its last session). */
  std::unique_ptr<FdWatcher> watcher_;
  std::unique_ptr<TimerSet> timers_;
};

} // namespace qwenasr
