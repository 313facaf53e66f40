/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Many sockets' readiness through one epoll set and one GSource. */
#include "fdwatcher.h"

#include <glib-unix.h>

#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>
#endif

namespace qwenasr {

FdWatcher::FdWatcher(GMainContext *context) {
#ifdef __linux__
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    return;
  source_ = g_unix_fd_source_new(epoll_fd_, G_IO_IN);
  g_source_set_callback(source_, G_SOURCE_FUNC(dispatch), this, nullptr);
  g_source_attach(source_, context);
#else
  (void)context;
#endif
}

FdWatcher::~FdWatcher() {
  if (source_) {
    g_source_destroy(source_);
    g_source_unref(source_);
  }
#ifdef __linux__
  if (epoll_fd_ >= 0)
    close(epoll_fd_);
#endif
}

guint64 FdWatcher::watch(int fd, ReadyFunc ready, gpointer data) {
#ifdef __linux__
  if (!source_)
    return 0;
  guint64 token = next_token_++;
  struct epoll_event event = {};
  event.events = EPOLLIN; /* level-triggered; hang-ups and errors are always reported */
  event.data.u64 = token;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    return 0;
  watches_[token] = Watch{fd, ready, data};
  return token;
#else
  (void)fd;
  (void)ready;
  (void)data;
  return 0;
#endif
}

void FdWatcher::unwatch(guint64 token) {
#ifdef __linux__
  auto it = watches_.find(token);
  if (it == watches_.end())
    return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  watches_.erase(it);
#else
  (void)token;
#endif
}

/* Every ready socket once per iteration (at most a batch; the rest stay ready for the next).
 * A callback may unwatch any socket, its own included: events are looked up by token, so one
 * for a socket unwatched in this round is skipped. */
gboolean FdWatcher::dispatch(gint, GIOCondition, gpointer data) {
#ifdef __linux__
  auto *self = static_cast<FdWatcher *>(data);
  struct epoll_event events[64];
  int n = epoll_wait(self->epoll_fd_, events, G_N_ELEMENTS(events), 0);
  for (int i = 0; i < n; i++) {
    auto it = self->watches_.find(events[i].data.u64);
    if (it == self->watches_.end())
      continue;
    Watch watch = it->second;
    watch.ready(watch.data);
  }
#else
  (void)data;
#endif
  return G_SOURCE_CONTINUE;
}

} // namespace qwenasr
