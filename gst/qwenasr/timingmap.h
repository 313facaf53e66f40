/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Maps the service's audio offsets (audio_start_ms / audio_end_ms, counted from the first sample
 * sent in a session) back to the input timeline. Pure: no I/O, no locking.
 *
 * Every run of samples handed to the service is recorded with the input time of its first
 * sample; contiguous runs are merged, so a gap-free stream costs one entry however long it is,
 * and a gap, DISCONT or timestamp jump starts a new entry. An offset then maps to
 * entry.time + (offset - entry.offset) / rate, which keeps captions on the input's clock
 * instead of drifting with the amount of audio sent. */
#pragma once

#include <gst/gst.h>

#include <deque>

namespace qwenasr {

class TimingMap {
public:
  /* Runs whose start is within this of where the previous run ended are treated as
   * contiguous; it absorbs timestamp rounding without hiding real gaps. */
  static constexpr GstClockTime kContiguityTolerance = GST_MSECOND;

  explicit TimingMap(int sample_rate = 16000) : rate_(sample_rate) {}

  /* Starts a new session at this rate: offsets count from zero again. */
  void reset(int sample_rate);

  /* Records that the next n_samples sent start at input time `time`.
   * GST_CLOCK_TIME_NONE continues from where the previous run ended (or from 0). */
  void append(guint64 n_samples, GstClockTime time);

  /* Input time of the sample at `ms` milliseconds of audio sent; NONE when nothing was sent.
   * Offsets beyond what was sent extrapolate from the last run. */
  GstClockTime time_at_ms(gint64 ms) const;
  GstClockTime time_at_sample(guint64 sample) const;
  /* Input time just after the sample before `sample`: where audio ending there ends. Unlike
   * time_at_sample() it stays on the earlier run when `sample` starts a new run after a gap. */
  GstClockTime end_time_at_sample(guint64 sample) const;

  /* Bounded memory: drops runs that end at or before this offset (but always keeps one). */
  void forget_before_sample(guint64 sample);

  guint64 samples() const { return total_samples_; }
  int sample_rate() const { return rate_; }
  gsize runs() const { return runs_.size(); }
  /* Input time just after the last sample sent; NONE when nothing was sent. */
  GstClockTime end_time() const;

private:
  struct Run {
    guint64 offset; /* first sample of the run, counted from the session start */
    GstClockTime time;
  };
  int rate_;
  guint64 total_samples_ = 0;
  std::deque<Run> runs_;
};

} // namespace qwenasr
