/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The send queue: what waits to be sent, what may have to be sent again, and its numbering. */
#include "sendqueue.h"

#include <algorithm>

namespace qwenasr {

bool SendQueue::push(SendItem item) {
  bool was_empty = pending_.empty();
  queued_bytes_ += item.bytes();
  pending_.push_back(std::move(item));
  return was_empty;
}

bool SendQueue::push_audio(std::shared_ptr<const std::string> pcm, guint64 time) {
  SendItem item;
  item.audio = std::move(pcm);
  item.time = time;
  return push(std::move(item));
}

gsize SendQueue::drop_unsent(gsize size) {
  gsize dropped = 0;
  /* Unsent audio never got a sample number, so dropping it shifts nothing already sent. */
  for (auto it = pending_.begin(); it != pending_.end() && would_overflow(size);) {
    if (it->kind == SendKind::Audio && it->offset == SendItem::kUnassigned) {
      dropped += it->bytes();
      queued_bytes_ -= it->bytes();
      dropped_samples_ += it->samples();
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

bool SendQueue::resend_full() const {
  if (pending_.empty())
    return false;
  const SendItem &item = pending_.front();
  return item.kind == SendKind::Audio && item.offset == SendItem::kUnassigned &&
         history_bytes_ + item.bytes() > max_resend_;
}

Taken SendQueue::take(gsize commit_padding) {
  Taken t;
  SendItem &item = pending_.front();
  t.first_send = item.offset == SendItem::kUnassigned;
  queued_bytes_ -= item.bytes();
  if (t.first_send && item.kind != SendKind::Finish) {
    item.offset = next_offset_;
    next_offset_ += item.samples();
    sent_samples_ += item.samples();
  }
  if (t.first_send && item.kind == SendKind::Commit && commit_padding > 0) {
    /* The commit ends the audio before it; the silence the service hears after that point
     * is numbered, and kept and resent like audio. */
    t.padding.audio = std::make_shared<const std::string>(commit_padding * 2, '\0');
    t.padding.padding = true;
    t.padding.offset = next_offset_;
    next_offset_ += commit_padding;
    history_bytes_ += t.padding.bytes();
    history_.push_back(t.padding);
  }
  history_bytes_ += item.bytes();
  history_.push_back(item);
  t.item = std::move(item);
  pending_.pop_front();
  trim(&t.given_up);
  return t;
}

/* The history is bounded: past its cap the oldest audio is given up. */
void SendQueue::trim(std::vector<guint64> *given_up) {
  while (!history_.empty()) {
    const SendItem &front = history_.front();
    bool settled_item =
        front.kind != SendKind::Finish && front.offset + front.samples() <= settled_;
    bool over_cap = history_bytes_ > max_resend_ && front.kind == SendKind::Audio;
    if (!settled_item && !over_cap)
      break;
    if (!settled_item) {
      given_up->push_back(front.samples());
      dropped_samples_ += front.samples();
    }
    history_bytes_ -= front.bytes();
    history_.pop_front();
  }
}

bool SendQueue::settle(guint64 sample) {
  if (sample <= settled_)
    return false;
  settled_ = sample;
  std::vector<guint64> none; /* settling frees room; nothing is over the cap */
  trim(&none);
  return true;
}

void SendQueue::requeue_history() {
  if (!history_.empty() && history_.front().kind == SendKind::Audio &&
      history_.front().offset < settled_) {
    /* The tail of an utterance that already has its final would otherwise be heard again as
     * an utterance of its own. */
    SendItem &first = history_.front();
    guint64 cut = std::min<guint64>(settled_ - first.offset, first.samples());
    history_bytes_ -= cut * 2;
    first.audio = std::make_shared<const std::string>(*first.audio, cut * 2);
    first.offset += cut;
  }
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
    queued_bytes_ += it->bytes();
    pending_.push_front(std::move(*it));
  }
  history_.clear();
  history_bytes_ = 0;
}

guint64 SendQueue::session_base() const {
  for (const SendItem &item : pending_) {
    if (item.kind == SendKind::Audio && item.offset != SendItem::kUnassigned)
      return item.offset;
  }
  return next_offset_;
}

} // namespace qwenasr
