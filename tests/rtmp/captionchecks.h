/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the RTMP caption tests judge in what the viewers recorded: captions on exactly the
 * frames whose utterance is due, audio and video that never freeze, and the delay the captioner
 * adds. */
#pragma once

#include "rtmputil.h"

#include <string>
#include <vector>

/* What a caption lasts on screen: the utterance (600 ms) is shorter than qwenasr's default
 * min-duration, so each caption stays up for exactly min-duration. */
inline const GstClockTime kCaptionDuration = 1000 * GST_MSECOND;
/* Allowed caption timing error at either end of a caption (frames are 40 ms apart). */
inline const GstClockTime kTimingTolerance = 150 * GST_MSECOND;

struct CaptionReport {
  guint checked = 0, captioned = 0, mismatches = 0;
  std::string mismatch_list;
  std::vector<GstClockTimeDiff> start_errors, end_errors; /* per utterance */
  double max_plain_share = 0, min_captioned_share = 1;
  gint example_frame = -1; /* a captioned frame in the middle of a caption */
};

/* Compares frames (output) with the source frames (by frame number) and the expected caption
 * windows [onset, onset + caption_duration) on the publisher's timeline. Frames within
 * kTimingTolerance of a window edge are not judged, nor frames whose publisher time lies in
 * `skip_from`..`skip_to`; each utterance wholly inside the frames seen (and outside the skipped
 * span) contributes its start and end error. */
CaptionReport check_captions(const std::vector<Frame> &out, const std::vector<Frame> &source,
                             const std::vector<GstClockTime> &frame_pts,
                             const std::vector<GstClockTime> &onsets,
                             GstClockTime skip_from = GST_CLOCK_TIME_NONE,
                             GstClockTime skip_to = GST_CLOCK_TIME_NONE,
                             GstClockTime caption_duration = kCaptionDuration);

/* Prints the report's counts, mismatches and caption start and end errors. */
void print_captions(const char *what, const CaptionReport &report);

/* No frame captioned wrongly, at least `min_utterances` utterances judged, every caption
 * starting (and, with `judge_ends`, ending) within kTimingTolerance. */
void assert_captions_on_time(const CaptionReport &report, guint min_utterances, bool judge_ends,
                             const char *what);

GstClockTimeDiff max_abs(const std::vector<GstClockTimeDiff> &v);
/* "12 -40 8 " (milliseconds). */
std::string ms_list(const std::vector<GstClockTimeDiff> &v);

/* Video and audio of `out` from `from_wall` on: no freeze over kMaxFreezeUs, no run of missing
 * frames over a second, no audio hole over 200 ms, and the tone bursts present. */
void check_continuity(const Viewer &out, gint64 from_wall, const char *what);

/* Added delay: arrival of each frame in live/out minus its arrival in live/in (µs). */
struct Delay {
  std::vector<gint64> added; /* in frame-number order */
  gint64 median = 0, max = 0, first_second = 0, last_second = 0, total_median = 0;
};
/* frame_wall: when each frame left the publisher (monotonic µs), by frame number. */
Delay added_delay(const Viewer &in, const Viewer &out, const std::vector<gint64> &frame_wall);

/* Saves a kept output frame inside a caption as a PNG in the temp dir, for people to look
 * at; returns its path (or "" if no kept frame was captioned). */
std::string save_captioned_frame(const Viewer &out, const std::vector<GstClockTime> &frame_pts,
                                 const std::vector<GstClockTime> &onsets);
