// SPDX-License-Identifier: LGPL-2.1-or-later
/* Keeps a local-service session's events in the order they were produced while an asynchronous
 * engine's results are still being computed. Service thread only.
 *
 * An asynchronous result reserves a place (a Slot) when it is requested and fills it (ready,
 * emit) when it arrives; everything produced in between waits behind it, so clients see
 * speech_stopped, committed, the final and the next utterance's events in the same order as with
 * a synchronous engine. */
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <utility>

namespace qwenasr::local {

class EventOrder {
public:
  struct Slot {
    bool ready = false;
    std::function<void()> emit; // may be empty: nothing to send (e.g. an unchanged partial)
  };

  /* Runs f now if nothing waits (or a slot is being emitted: what a slot sends takes the
   * slot's place), else queues it behind the waiting slots. */
  void in_order(std::function<void()> f) {
    if (pending_.empty() || emitting_) {
      f();
      return;
    }
    auto slot = std::make_shared<Slot>();
    slot->ready = true;
    slot->emit = std::move(f);
    pending_.push_back(std::move(slot));
  }

  /* A place for a result still to come; fill it, then call drain(). */
  std::shared_ptr<Slot> reserve() {
    pending_.push_back(std::make_shared<Slot>());
    return pending_.back();
  }

  /* Emits the ready slots at the front, in order. */
  void drain() {
    while (!pending_.empty() && pending_.front()->ready) {
      std::shared_ptr<Slot> slot = std::move(pending_.front());
      pending_.pop_front();
      if (slot->emit) {
        emitting_ = true;
        try {
          slot->emit();
        } catch (...) {
          emitting_ = false;
          throw;
        }
        emitting_ = false;
      }
    }
  }

  void clear() { pending_.clear(); }

private:
  std::deque<std::shared_ptr<Slot>> pending_;
  bool emitting_ = false; // drain() is running a slot
};

} // namespace qwenasr::local
