/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared network thread and its main loop. */
#include "iothread.h"

#include <mutex>
#include <utility>

namespace qwenasr {

namespace {

std::mutex instance_lock;         /* guards `instance` */
std::weak_ptr<IoThread> instance; /* the running thread, while anyone holds it */

/* Iterates until told to quit (a flag, not g_main_loop_quit(): that is lost if it comes
 * before the loop runs). */
gpointer io_thread_main(gpointer data) {
  std::unique_ptr<std::shared_ptr<IoThread::Loop>> holder(
      static_cast<std::shared_ptr<IoThread::Loop> *>(data));
  IoThread::Loop &loop = **holder;
  g_main_context_push_thread_default(loop.context);
  while (!loop.quit)
    g_main_context_iteration(loop.context, TRUE);
  /* What the last sessions left (libsoup finishing closes) runs before the context goes. */
  while (g_main_context_iteration(loop.context, FALSE)) {
  }
  g_main_context_pop_thread_default(loop.context);
  return nullptr;
}

} // namespace

IoThread::Loop::~Loop() {
  g_main_context_unref(context);
}

std::shared_ptr<IoThread> IoThread::acquire(GError **error) {
  std::lock_guard<std::mutex> lock(instance_lock);
  if (auto running = instance.lock())
    return running;
  std::shared_ptr<IoThread> io(new IoThread());
  io->loop_ = std::make_shared<Loop>();
  io->loop_->context = g_main_context_new();
  io->watcher_ = std::make_unique<FdWatcher>(io->loop_->context);
  io->timers_ = std::make_unique<TimerSet>(io->loop_->context);
  auto *data = new std::shared_ptr<Loop>(io->loop_);
  io->thread_ = g_thread_try_new("qwenasr-io", io_thread_main, data, error);
  if (!io->thread_) {
    delete data;
    return nullptr;
  }
  instance = io;
  return io;
}

IoThread::~IoThread() {
  if (!thread_)
    return;
  loop_->quit = true;
  g_main_context_wakeup(loop_->context);
  if (is_current())
    g_thread_unref(thread_); /* the last session ended from a callback on this thread */
  else
    g_thread_join(thread_);
}

} // namespace qwenasr
