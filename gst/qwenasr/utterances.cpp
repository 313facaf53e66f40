/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Utterance bookkeeping (see utterances.h): exactly once, in audio order, losses named. */
#include "utterances.h"

#include <algorithm>

namespace qwenasr {

namespace {

void consider(std::optional<guint64> *earliest, guint64 sample) {
  if (!*earliest || sample < **earliest)
    *earliest = sample;
}

} // namespace

void Utterances::reset() {
  Counters counters = counters_;
  *this = Utterances();
  counters_ = counters;
}

void Utterances::session_restarted() {
  for (const auto &entry : items_) {
    if (entry.second.start_sample)
      consider(&lost_open_start_, *entry.second.start_sample);
  }
  items_.clear();
  pending_commits_ = unfinished_commits_;
}

bool Utterances::is_final(const std::string &item_id) const {
  return !item_id.empty() && finals_.count(item_id) > 0;
}

bool Utterances::ignore_if_final(const std::string &item_id) {
  if (!is_final(item_id))
    return false;
  counters_.ignored_events++;
  return true;
}

void Utterances::remember_final(const std::string &item_id) {
  if (item_id.empty() || !finals_.insert(item_id).second)
    return;
  finals_order_.push_back(item_id);
  if (finals_order_.size() > kRememberedFinals) {
    finals_.erase(finals_order_.front());
    finals_order_.pop_front();
  }
}

Utterances::Item &Utterances::item(const std::string &item_id) {
  auto inserted = items_.emplace(item_id, Item());
  if (inserted.second)
    inserted.first->second.order = next_order_++;
  return inserted.first->second;
}

bool Utterances::speech_started(const std::string &item_id, guint64 sample) {
  if (ignore_if_final(item_id))
    return false;
  item(item_id).start_sample = sample;
  return true;
}

bool Utterances::speech_stopped(const std::string &item_id, guint64 sample) {
  if (ignore_if_final(item_id))
    return false;
  item(item_id).end_sample = sample;
  return true;
}

bool Utterances::partial(const std::string &item_id) {
  return !ignore_if_final(item_id);
}

void Utterances::span(const std::string &item_id, std::optional<guint64> *start,
                      std::optional<guint64> *end) const {
  auto it = items_.find(item_id);
  *start = it != items_.end() ? it->second.start_sample : std::nullopt;
  *end = it != items_.end() ? it->second.end_sample : std::nullopt;
}

void Utterances::commit_sent(guint64 end) {
  Range range{last_commit_sample_, end};
  last_commit_sample_ = end;
  unfinished_commits_.push_back(range);
  pending_commits_.push_back(range);
}

bool Utterances::committed(const std::string &item_id) {
  if (ignore_if_final(item_id))
    return false;
  /* Manual commits are answered in order; VAD commits carry no new timing. */
  if (!pending_commits_.empty()) {
    Item &entry = item(item_id);
    entry.start_sample = pending_commits_.front().start_sample;
    entry.end_sample = pending_commits_.front().end_sample;
    pending_commits_.pop_front();
  }
  return true;
}

bool Utterances::failed(const std::string &item_id) {
  if (ignore_if_final(item_id))
    return false;
  auto it = items_.find(item_id);
  if (it != items_.end()) {
    const Item &entry = it->second;
    if (entry.start_sample && entry.end_sample) {
      auto &commits = unfinished_commits_;
      commits.erase(std::remove_if(commits.begin(), commits.end(),
                                   [&](const Range &r) {
                                     return r.start_sample >= *entry.start_sample &&
                                            r.end_sample <= *entry.end_sample;
                                   }),
                    commits.end());
    }
    items_.erase(it);
  }
  remember_final(item_id); /* nothing more is expected of it */
  return true;
}

std::optional<guint64> Utterances::earliest_open() const {
  std::optional<guint64> earliest;
  for (const auto &entry : items_) {
    if (entry.second.start_sample)
      consider(&earliest, *entry.second.start_sample);
  }
  for (const Range &range : unfinished_commits_)
    consider(&earliest, range.start_sample);
  if (lost_open_start_)
    consider(&earliest, *lost_open_start_);
  return earliest;
}

bool Utterances::final_arrived(const FinalText &final, gint64 now_us,
                               std::optional<guint64> *settle) {
  settle->reset();
  if (is_final(final.item_id)) {
    counters_.repeated_finals++;
    return false;
  }
  remember_final(final.item_id);
  Held held{{final, std::nullopt, std::nullopt}, now_us, next_order_++};
  auto it = items_.find(final.item_id);
  if (it != items_.end()) {
    held.order = it->second.order;
    held.released.start_sample = it->second.start_sample;
    held.released.end_sample = it->second.end_sample;
    items_.erase(it);
  }
  const std::optional<guint64> &start = held.released.start_sample;
  const std::optional<guint64> &end = held.released.end_sample;
  if (end) {
    /* Its audio needs no resend; commits it covers are done. */
    auto &commits = unfinished_commits_;
    commits.erase(std::remove_if(commits.begin(), commits.end(),
                                 [&](const Range &r) {
                                   return r.end_sample <= *end &&
                                          (!start || r.start_sample >= *start);
                                 }),
                  commits.end());
    /* A lost session's utterance came back final past its start. */
    if (lost_open_start_ && *lost_open_start_ < *end)
      lost_open_start_.reset();
    settled_end_ = std::max(settled_end_, *end);
    std::optional<guint64> open = earliest_open();
    *settle = open && *open < settled_end_ ? *open : settled_end_;
  }
  held_.push_back(std::move(held));
  return true;
}

std::vector<ReleasedFinal> Utterances::release(gint64 now_us, gint64 hold_us, bool all) {
  std::vector<ReleasedFinal> out;
  if (held_.empty())
    return out;
  /* Finals without a known start cannot be placed: they go first, in arrival order. */
  std::stable_sort(held_.begin(), held_.end(), [](const Held &a, const Held &b) {
    guint64 ka = a.released.start_sample.value_or(0), kb = b.released.start_sample.value_or(0);
    return ka != kb ? ka < kb : a.order < b.order;
  });
  const std::optional<guint64> open = earliest_open();
  gsize count = 0;
  for (gsize i = 0; i < held_.size(); i++) {
    const Held &held = held_[i];
    bool blocked = open && held.released.start_sample && *open < *held.released.start_sample;
    if (all || !blocked || now_us - held.arrival_us >= hold_us)
      count = i + 1;
  }
  for (gsize i = 0; i < count; i++) {
    const ReleasedFinal &released = held_[i].released;
    if (released.start_sample) {
      if (released_any_ && *released.start_sample < last_released_start_)
        counters_.out_of_order++;
      last_released_start_ = std::max(last_released_start_, *released.start_sample);
      released_any_ = true;
    }
    out.push_back(released);
  }
  held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(count));
  return out;
}

std::optional<guint64> Utterances::earliest_unreleased(std::optional<guint64> uncommitted) const {
  std::optional<guint64> earliest = earliest_open();
  for (const Held &held : held_) {
    if (held.released.start_sample)
      consider(&earliest, *held.released.start_sample);
  }
  if (uncommitted)
    consider(&earliest, *uncommitted);
  return earliest;
}

void Utterances::settled(guint64 sample) {
  if (lost_open_start_ && *lost_open_start_ < sample)
    lost_open_start_.reset();
}

bool Utterances::any_open() const {
  for (const auto &entry : items_) {
    if (entry.second.start_sample || entry.second.end_sample)
      return true;
  }
  return !unfinished_commits_.empty() || lost_open_start_.has_value();
}

std::vector<LostSpan> Utterances::take_lost() {
  std::vector<LostSpan> lost;
  for (const auto &entry : items_) {
    const Item &item = entry.second;
    if (item.start_sample || item.end_sample)
      lost.push_back({entry.first, item.start_sample.value_or(*item.end_sample), item.end_sample});
  }
  for (const Range &range : unfinished_commits_) {
    bool named = std::any_of(lost.begin(), lost.end(), [&](const LostSpan &span) {
      return span.start_sample == range.start_sample && span.end_sample == range.end_sample;
    });
    if (!named)
      lost.push_back({std::string(), range.start_sample, range.end_sample});
  }
  if (lost_open_start_ && std::none_of(lost.begin(), lost.end(), [&](const LostSpan &span) {
        return span.start_sample == *lost_open_start_;
      }))
    lost.push_back({std::string(), *lost_open_start_, std::nullopt});
  std::sort(lost.begin(), lost.end(),
            [](const LostSpan &a, const LostSpan &b) { return a.start_sample < b.start_sample; });
  counters_.lost_utterances += lost.size();
  items_.clear();
  unfinished_commits_.clear();
  pending_commits_.clear();
  lost_open_start_.reset();
  return lost;
}

} // namespace qwenasr
