/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bookkeeping of one stream's utterances, pure (no I/O, no locking, no clock of its own):
 * which items exist and where their audio lies, which commits wait for an answer, which items
 * are final, and the order finals are released in, so that each utterance is delivered at
 * most once, in audio order, and every one that never got a final is named at the end.
 *
 * Positions are global samples (numbered in the order first sent, over all sessions; see
 * ClientListener::on_session_start); times for the hold are monotonic microseconds given by
 * the caller. The Transcriber owns one and calls it under its lock. */
#pragma once

#include <glib.h>

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qwenasr {

/* A final transcript as the service sent it; released later, in audio order. */
struct FinalText {
  std::string item_id;
  std::string text;
  std::string language;
  std::string emotion;
  std::string session_id;
};

/* A final leaving the bookkeeping, with its utterance's span where known. */
struct ReleasedFinal {
  FinalText final;
  std::optional<guint64> start_sample;
  std::optional<guint64> end_sample;
};

/* Audio sent that got no final: an utterance started or committed and never finalized. */
struct LostSpan {
  std::string item_id; /* empty for a commit never acknowledged or a lost session's utterance */
  guint64 start_sample;
  std::optional<guint64> end_sample;
};

class Utterances {
public:
  /* A new stream (or flush): forgets everything but the counters. */
  void reset();
  /* A new session after a lost connection: the old session's items will never complete; their
   * audio is resent and comes back under new ids, so the earliest of them stays open until
   * audio past it is settled. Unfinished commits are resent and acknowledged again in order.
   * Finals already received but held stay held. */
  void session_restarted();

  /* Each returns false when the event concerns an item already final: it is then ignored and
   * counted in ignored_events(). */
  bool speech_started(const std::string &item_id, guint64 sample);
  bool speech_stopped(const std::string &item_id, guint64 sample);
  bool partial(const std::string &item_id);
  /* Where an item's audio lies, as far as known (nothing once it is final). */
  void span(const std::string &item_id, std::optional<guint64> *start,
            std::optional<guint64> *end) const;
  /* Manual mode: a commit of the audio from the previous one to `end` was sent; `committed`
   * answers them in order. */
  void commit_sent(guint64 end);
  bool committed(const std::string &item_id);
  /* The service gave up on an item (transcription.failed): no final will come. */
  bool failed(const std::string &item_id);

  /* A final arrived at `now_us`. Returns false for a repeat (ignored, counted in
   * repeated_finals()); otherwise the final is held until release() lets it go. Sets
   * *settle to how far the audio is now settled (needs no resend): the furthest end of an
   * utterance with its final, but never past the start of one still without it. */
  bool final_arrived(const FinalText &final, gint64 now_us, std::optional<guint64> *settle);

  /* The held finals that may go now, in audio order: those with no earlier utterance still
   * open, and everything up to one held longer than `hold_us`; with `all`, every one. */
  std::vector<ReleasedFinal> release(gint64 now_us, gint64 hold_us, bool all);

  /* The earliest start of audio whose final is still to be released: an open utterance, a
   * held final, an unanswered commit, a lost session's utterance. `uncommitted`: manual
   * mode's audio since the last commit, if any. */
  std::optional<guint64> earliest_unreleased(std::optional<guint64> uncommitted) const;
  /* Audio before this is settled by finals (see final_arrived); the lost session's utterance
   * is dropped once it is settled past. */
  void settled(guint64 sample);

  /* At the end of a session (after its grace for late finals): every utterance started or
   * committed that got no final, oldest first, and forgets them. Held finals should be
   * released first. */
  std::vector<LostSpan> take_lost();
  /* Whether any utterance still waits for its final (for the grace after session.finished). */
  bool any_open() const;

  guint64 repeated_finals() const { return counters_.repeated_finals; }
  guint64 ignored_events() const { return counters_.ignored_events; }
  guint64 lost_utterances() const { return counters_.lost_utterances; }
  /* Finals released before an earlier utterance had its final (the hold ran out). */
  guint64 out_of_order_finals() const { return counters_.out_of_order; }
  /* Position of the last commit sent (manual mode). */
  guint64 last_commit_sample() const { return last_commit_sample_; }

  /* How many final item ids are remembered for spotting repeats. */
  static constexpr gsize kRememberedFinals = 4096;

private:
  struct Item {
    std::optional<guint64> start_sample;
    std::optional<guint64> end_sample;
    guint64 order = 0; /* arrival order, for items without a start */
  };
  struct Range {
    guint64 start_sample, end_sample;
  };
  struct Held {
    ReleasedFinal released;
    gint64 arrival_us;
    guint64 order;
  };

  bool is_final(const std::string &item_id) const;
  /* Counts an event about an item already final; true if it is one. */
  bool ignore_if_final(const std::string &item_id);
  void remember_final(const std::string &item_id);
  Item &item(const std::string &item_id);
  /* The earliest start among utterances without a final (not held ones). */
  std::optional<guint64> earliest_open() const;

  std::map<std::string, Item> items_;    /* started or committed, no final yet */
  std::deque<Range> unfinished_commits_; /* sent, no final yet */
  std::deque<Range> pending_commits_;    /* sent, not yet answered by committed */
  std::optional<guint64> lost_open_start_;
  guint64 last_commit_sample_ = 0;
  std::vector<Held> held_; /* finals received, not yet released */
  std::set<std::string> finals_;
  std::deque<std::string> finals_order_; /* to forget the oldest of finals_ */
  guint64 next_order_ = 0;
  guint64 settled_end_ = 0; /* the furthest end of an utterance with its final */
  guint64 last_released_start_ = 0;
  bool released_any_ = false;
  /* Counted over the object's life: reset() keeps them. */
  struct Counters {
    guint64 repeated_finals = 0;
    guint64 ignored_events = 0;
    guint64 lost_utterances = 0;
    guint64 out_of_order = 0;
  } counters_;
};

} // namespace qwenasr
