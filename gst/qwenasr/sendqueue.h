/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's send queue: audio, commits and the finish waiting to be sent, the resend
 * history of what was sent but is not settled yet, and the global sample numbering. A pure
 * unit (no locking, no I/O): AsrClient holds it under its mutex. */
#pragma once

#include <glib.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace qwenasr {

enum class SendKind { Audio, Commit, Finish };

struct SendItem {
  static constexpr guint64 kUnassigned = G_MAXUINT64;
  SendKind kind = SendKind::Audio;
  /* S16 PCM for Audio (null otherwise); shared, so that sending and the resend history
   * never copy it. */
  std::shared_ptr<const std::string> audio;
  guint64 time = G_MAXUINT64;   /* input time of the first sample (GST_CLOCK_TIME_NONE) */
  guint64 offset = kUnassigned; /* global sample, assigned when first sent */
  bool padding = false;         /* Opus flush silence, inserted before a commit */
  gsize bytes() const { return audio ? audio->size() : 0; }
  guint64 samples() const { return bytes() / 2; }
};

/* What take() moved from the queue to the history. */
struct Taken {
  SendItem item;
  bool first_send = false;       /* not a resend: the listener hears of it */
  SendItem padding;              /* silence numbered from a first-sent commit on, if any */
  std::vector<guint64> given_up; /* history audio (samples) dropped past the resend cap */
};

class SendQueue {
public:
  SendQueue(gsize max_queued_bytes, gsize max_resend_bytes)
      : max_queued_(max_queued_bytes), max_resend_(max_resend_bytes) {}

  /* Whether `size` more bytes of audio would overrun the queue (an empty queue takes any). */
  bool would_overflow(gsize size) const {
    return queued_bytes_ > 0 && queued_bytes_ + size > max_queued_;
  }
  /* Drops the oldest unsent, unnumbered audio until `size` more bytes fit; bytes dropped. */
  gsize drop_unsent(gsize size);
  /* Each returns whether the queue was empty before: the sender needs waking only then. */
  bool push_audio(std::shared_ptr<const std::string> pcm, guint64 time);
  bool push_commit() { return push_kind(SendKind::Commit); }
  bool push_finish() { return push_kind(SendKind::Finish); }

  bool empty() const { return pending_.empty(); }
  const SendItem &front() const { return pending_.front(); }
  /* The front is new audio that would overrun the resend history: flow control holds it. */
  bool resend_full() const;
  /* Moves the front to the history, numbering it if it is sent for the first time;
   * `commit_padding` samples of silence are numbered and kept from a first-sent commit on. */
  Taken take(gsize commit_padding = 0);

  /* Audio before `sample` needs no resend; false if that changed nothing. */
  bool settle(guint64 sample);
  /* After a lost connection: the history goes back in front of the queue, its first item
   * cut at the settled point, to be sent again in order. */
  void requeue_history();
  /* Where a new service session starts counting: the oldest numbered audio waiting, else
   * the next new sample. */
  guint64 session_base() const;

  gsize queued_bytes() const { return queued_bytes_; }
  gsize history_bytes() const { return history_bytes_; }
  guint64 next_offset() const { return next_offset_; }
  guint64 settled() const { return settled_; }
  guint64 sent_samples() const { return sent_samples_; }       /* numbered for the first time */
  guint64 dropped_samples() const { return dropped_samples_; } /* unsent and given-up audio */

private:
  bool push(SendItem item);
  bool push_kind(SendKind kind) {
    SendItem item;
    item.kind = kind;
    return push(std::move(item));
  }
  void trim(std::vector<guint64> *given_up);

  gsize max_queued_, max_resend_;
  std::deque<SendItem> pending_;
  gsize queued_bytes_ = 0;
  std::deque<SendItem> history_; /* sent, not settled: resent on a new connection */
  gsize history_bytes_ = 0;
  guint64 next_offset_ = 0; /* global sample number of the next audio sent for the first time */
  guint64 settled_ = 0;     /* history before this sample is no longer needed */
  guint64 sent_samples_ = 0, dropped_samples_ = 0;
};

} // namespace qwenasr
