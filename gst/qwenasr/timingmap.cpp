/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The service's audio offsets mapped back to input times (see timingmap.h). */
#include "timingmap.h"

#include <algorithm>

namespace qwenasr {

void TimingMap::reset(int sample_rate) {
  rate_ = sample_rate;
  total_samples_ = 0;
  runs_.clear();
}

GstClockTime TimingMap::end_time() const {
  return runs_.empty() ? GST_CLOCK_TIME_NONE : end_time_at_sample(total_samples_);
}

void TimingMap::append(guint64 n_samples, GstClockTime time) {
  if (n_samples == 0)
    return;
  if (!GST_CLOCK_TIME_IS_VALID(time)) {
    if (runs_.empty())
      runs_.push_back({total_samples_, 0});
  } else if (runs_.empty()) {
    runs_.push_back({total_samples_, time});
  } else {
    GstClockTime expected = end_time();
    GstClockTime diff = time > expected ? time - expected : expected - time;
    if (diff > kContiguityTolerance)
      runs_.push_back({total_samples_, time});
  }
  total_samples_ += n_samples;
}

GstClockTime TimingMap::time_at_sample(guint64 sample) const {
  if (runs_.empty())
    return GST_CLOCK_TIME_NONE;
  /* The last run that starts at or before `sample`; earlier offsets (already forgotten)
   * extrapolate backwards from the first run kept. */
  auto it = std::upper_bound(runs_.begin(), runs_.end(), sample,
                             [](guint64 s, const Run &run) { return s < run.offset; });
  const Run &run = it == runs_.begin() ? runs_.front() : *(it - 1);
  if (sample >= run.offset)
    return run.time + gst_util_uint64_scale_int(sample - run.offset, GST_SECOND, rate_);
  GstClockTime back = gst_util_uint64_scale_int(run.offset - sample, GST_SECOND, rate_);
  return run.time > back ? run.time - back : 0;
}

GstClockTime TimingMap::end_time_at_sample(guint64 sample) const {
  if (sample == 0)
    return time_at_sample(0);
  GstClockTime last = time_at_sample(sample - 1);
  return GST_CLOCK_TIME_IS_VALID(last) ? last + gst_util_uint64_scale_int(1, GST_SECOND, rate_)
                                       : GST_CLOCK_TIME_NONE;
}

GstClockTime TimingMap::time_at_ms(gint64 ms) const {
  if (ms < 0)
    ms = 0;
  return time_at_sample(gst_util_uint64_scale_int(static_cast<guint64>(ms), rate_, 1000));
}

void TimingMap::forget_before_sample(guint64 sample) {
  while (runs_.size() > 1 && runs_[1].offset <= sample)
    runs_.pop_front();
}

} // namespace qwenasr
