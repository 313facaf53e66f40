/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Readiness of many sockets through one source on a GMainContext: a GLib main loop polls every
 * file descriptor and checks every source on each iteration, so with hundreds of connections on
 * one network thread each received event cost time in proportion to the number of sessions.
 * Here the sockets are in one epoll set; the context polls that set's descriptor only, and an
 * iteration costs the same however many sockets are watched. Network thread only. */
#pragma once

#include <glib.h>

#include <unordered_map>

namespace qwenasr {

class FdWatcher {
public:
  using ReadyFunc = void (*)(gpointer data);

  /* Attached to `context`; `ok()` false if the system has no epoll (callers then use a
   * GSource per socket). */
  explicit FdWatcher(GMainContext *context);
  ~FdWatcher();
  FdWatcher(const FdWatcher &) = delete;
  FdWatcher &operator=(const FdWatcher &) = delete;

  bool ok() const { return source_ != nullptr; }
  /* Calls ready(data) on the context's thread while `fd` is readable (or hung up, or in
   * error), until unwatch(). Returns a token for unwatch(); 0 if it cannot watch `fd`. */
  guint64 watch(int fd, ReadyFunc ready, gpointer data);
  void unwatch(guint64 token);

private:
  struct Watch {
    int fd;
    ReadyFunc ready;
    gpointer data;
  };
  static gboolean dispatch(gint fd, GIOCondition condition, gpointer self);

  int epoll_fd_ = -1;
  GSource *source_ = nullptr;
  guint64 next_token_ = 1;
  std::unordered_map<guint64, Watch> watches_;
};

} // namespace qwenasr
