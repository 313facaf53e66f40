/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption timeline: turns utterances (input times, transcripts, languages) into the caption
 * cues to push, laid out into readable screens, with times that never drift behind the
 * speech because of an earlier caption. Pure: no pads, no GStreamer objects. */
#pragma once

#include <gst/gst.h>

#include <deque>
#include <string>
#include <vector>

namespace qwenasr {

struct TimelineConfig {
  GstClockTime min_duration = GST_SECOND; /* shortest time a final caption stays up */
  /* A final caption also stays up its reading time (17 characters a second, 9 for CJK)
   * where the next speech allows, and a later screen of its utterance waits for it. */
  bool reading_time = false;
  GstClockTime max_duration = 7 * GST_SECOND;        /* longest time a screen stays up */
  GstClockTime partial_duration = 300 * GST_MSECOND; /* a preview, unless replaced */
  /* Shortest time a late caption (whose speech the output already passed) stays up. */
  GstClockTime late_duration = GST_SECOND;
  guint max_line_length = 0; /* perceived characters; 0 = by script (42, or 16 for CJK) */
  guint max_lines = 2;       /* lines on one screen */
};

/* One caption buffer to push. */
struct Cue {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = 0;
  std::string text;     /* lines joined by '\n' */
  std::string language; /* ISO 639 code of its utterance, "" when unknown */
  GstClockTime speech_start = GST_CLOCK_TIME_NONE; /* where its utterance starts */
  bool final = true;
  /* Its utterance's first screen of final text, or first roll-up window (not a preview). */
  bool first_of_utterance = true;
  bool late = false; /* the output had passed its time: moved later */
};

/* A partial result had confirmed the first `chars` perceived characters of an utterance by
 * input time `by` (the audio handed to the service when it arrived): they were spoken by
 * then. */
struct Confirmation {
  guint chars;
  GstClockTime by;
};

/* Counters for the element's stats. */
struct TimelineStats {
  guint64 captions_split = 0;     /* finals laid out on more than one screen */
  guint64 reading_speed_hits = 0; /* screens up shorter than their reading time */
  guint64 captions_late = 0;      /* final cues moved later than their speech */
};

/* Percentiles of the last `capacity` delays (ms) added. */
class DelayStats {
public:
  void add(gint64 ms);
  gint64 percentile(guint p) const; /* 0..100; 0 when empty */
  gint64 max() const { return max_; }
  void clear() { values_.clear(), next_ = 0, max_ = 0; }

private:
  static const gsize capacity = 1000;
  std::vector<gint64> values_;
  gsize next_ = 0;
  gint64 max_ = 0;
};

/* Text for pango-markup and for WebVTT cue text alike: '&', '<' and '>' as entities, nothing
 * else (quotes stay as they are, valid in both). */
std::string escape_markup(const std::string &text);

/* ISO 639 code of a service language name or tag ("zh", "Chinese", "en-US" → "en"); "" when
 * it is none. */
std::string iso639_language(const std::string &language);

/* True when the text (or its language) is Chinese, Japanese or Korean. */
bool is_cjk(const std::string &text, const std::string &language);

/* Line length and reading speed (characters per second) for an utterance, from
 * captions.md: 42 and 17 for spaced scripts, 16 and 9 for CJK. */
guint line_length_for(const std::string &text, const std::string &language, guint configured);
double reading_speed_for(const std::string &text, const std::string &language);

class CaptionTimeline {
public:
  void set_config(const TimelineConfig &config) { config_ = config; }
  const TimelineConfig &config() const { return config_; }

  /* A final transcript of the utterance [start, end): laid out into screens spread over the
   * utterance by characters, or from `confirmed` (in order) where that says earlier. The last
   * screen is held until the next speech start is known (to shorten it rather than overlap),
   * its whole duration is settled, or `deadline` (a monotonic time of the caller's choosing)
   * has passed. Empty text adds nothing. */
  void add_final(GstClockTime start, GstClockTime end, const std::string &text,
                 const std::string &language, gint64 deadline,
                 const std::vector<Confirmation> &confirmed = {});

  /* A preview of an utterance starting at `start`: shown at once, for partial_duration. */
  void add_partial(GstClockTime start, const std::string &text, const std::string &language);

  /* A roll-up window (the whole text on screen) from `pts`, in the utterance that started at
   * `speech_start` (its first window is the utterance's first screen): up until the next
   * window, at most max-duration. While the next window is not known, the part of it before
   * `settled` (see take()) goes out and the rest follows, so it is never cut short nor
   * overlapped. A window not yet taken is replaced by a newer one at the same or an earlier
   * time. */
  void add_window(GstClockTime pts, GstClockTime speech_start, const std::string &text,
                  const std::string &language);

  /* Speech is known to have started at `start` (an utterance still open); the service has
   * heard the input up to there. */
  void speech_started(GstClockTime start);
  /* The service has heard the input up to `time` (an utterance's end). */
  void heard_until(GstClockTime time);
  /* How far the service has reported on the input: no speech it has not reported yet can
   * start before this (GST_CLOCK_TIME_NONE: nothing reported). */
  GstClockTime heard() const { return heard_; }

  /* The cues that can be pushed now, in order, none starting before `position` (the output
   * reached so far; moved later and marked late if it would). `settled`: no speech can start
   * before it any more (GST_CLOCK_TIME_NONE: unknown). `now`: the caller's monotonic time,
   * against the deadlines. `all`: the stream ends, take everything. */
  std::vector<Cue> take(GstClockTime position, GstClockTime settled, gint64 now, bool all);

  /* Where the output must stop before the held cues (GST_CLOCK_TIME_NONE: nothing held). */
  GstClockTime hold_point() const;

  const TimelineStats &stats() const { return stats_; }
  void reset() {
    pending_.clear();
    next_speech_ = last_speech_start_ = last_window_speech_ = heard_ = GST_CLOCK_TIME_NONE;
    last_final_ = true;
  }
  void reset_stats() { stats_ = TimelineStats(); }

private:
  struct Pending {
    Cue cue;
    GstClockTime wanted;  /* duration it would like */
    GstClockTime reading; /* time needed to read it */
    gint64 deadline;
    bool last_of_utterance;
    bool window = false; /* a roll-up window */
  };
  TimelineConfig config_;
  TimelineStats stats_;
  std::deque<Pending> pending_;
  GstClockTime next_speech_ = GST_CLOCK_TIME_NONE; /* latest speech start reported */
  GstClockTime heard_ = GST_CLOCK_TIME_NONE;       /* latest speech start or end reported */
  /* The last cue taken: final or preview, and its utterance's start. */
  bool last_final_ = true;
  GstClockTime last_speech_start_ = GST_CLOCK_TIME_NONE;
  GstClockTime last_window_speech_ = GST_CLOCK_TIME_NONE; /* of the last window added */
};

} // namespace qwenasr
