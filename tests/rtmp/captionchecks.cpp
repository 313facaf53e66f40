/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The RTMP caption tests' judgements (see captionchecks.h). */
#include "captionchecks.h"

#include <algorithm>
#include <cstdlib>

/* Share of caption-region pixels whose luma differs by more than 48 from the source. */
static double region_difference(const std::vector<guint8> &a, const std::vector<guint8> &b) {
  guint differing = 0;
  for (int i = 0; i < kRegionBytes; i++)
    if (std::abs(int(a[i]) - int(b[i])) > 48)
      differing++;
  return double(differing) / kRegionBytes;
}
/* Captions cover several percent of the region; re-encoding bars differs in ~0%. */
static const double kCaptionedShare = 0.005;

CaptionReport check_captions(const std::vector<Frame> &out, const std::vector<Frame> &source,
                             const std::vector<GstClockTime> &frame_pts,
                             const std::vector<GstClockTime> &onsets, GstClockTime skip_from,
                             GstClockTime skip_to, GstClockTime caption_duration) {
  CaptionReport report;
  std::map<gint, const Frame *> by_number;
  for (const Frame &f : source)
    by_number[f.number] = &f;
  auto skipped = [&](GstClockTime t) {
    return GST_CLOCK_TIME_IS_VALID(skip_from) && t + kTimingTolerance >= skip_from &&
           t <= skip_to + kTimingTolerance;
  };
  /* Captioned or not, by publisher time. */
  std::map<GstClockTime, std::pair<bool, gint>> seen;
  for (const Frame &f : out) {
    auto it = by_number.find(f.number);
    if (it == by_number.end() || f.number >= static_cast<gint>(frame_pts.size()))
      continue;
    GstClockTime t = frame_pts[f.number];
    double share = region_difference(f.region, it->second->region);
    bool captioned = share > kCaptionedShare;
    seen[t] = {captioned, f.number};
    /* Expected: inside a window, outside, or too close to an edge to say. */
    int expected = 0;
    for (GstClockTime onset : onsets) {
      GstClockTime end = onset + caption_duration;
      if (t + kTimingTolerance >= onset && t < onset + kTimingTolerance)
        expected = -1;
      else if (t + kTimingTolerance >= end && t < end + kTimingTolerance)
        expected = -1;
      else if (t >= onset && t < end && expected == 0)
        expected = 1;
      if (expected == -1)
        break;
    }
    if (expected < 0 || skipped(t))
      continue;
    report.checked++;
    if (captioned)
      report.captioned++;
    if (expected == 1)
      report.min_captioned_share = MIN(report.min_captioned_share, share);
    else
      report.max_plain_share = MAX(report.max_plain_share, share);
    if (captioned != (expected == 1)) {
      report.mismatches++;
      if (report.mismatches <= 10) {
        gchar *line = g_strdup_printf(" frame %d at %.3f s: %s (%.2f%% differ);", f.number, t / 1e9,
                                      captioned ? "captioned" : "plain", share * 100);
        report.mismatch_list += line;
        g_free(line);
      }
    }
  }
  if (seen.empty())
    return report;
  GstClockTime first = seen.begin()->first, last = seen.rbegin()->first;
  for (GstClockTime onset : onsets) {
    GstClockTime end = onset + caption_duration;
    if (onset < first + 300 * GST_MSECOND || end + 300 * GST_MSECOND > last || skipped(onset) ||
        skipped(end))
      continue;
    /* The captioned frames between half a second before and after the window. */
    GstClockTime on = GST_CLOCK_TIME_NONE, off = GST_CLOCK_TIME_NONE;
    for (auto it = seen.lower_bound(onset - 500 * GST_MSECOND);
         it != seen.end() && it->first < end + 500 * GST_MSECOND; ++it) {
      if (!it->second.first)
        continue;
      if (!GST_CLOCK_TIME_IS_VALID(on))
        on = it->first;
      off = it->first + kFrameDuration;
      if (report.example_frame < 0 && it->first >= onset + caption_duration / 2)
        report.example_frame = it->second.second;
    }
    fail_unless(GST_CLOCK_TIME_IS_VALID(on), "no caption for the utterance at %.3f s", onset / 1e9);
    report.start_errors.push_back(GST_CLOCK_DIFF(onset, on));
    report.end_errors.push_back(GST_CLOCK_DIFF(end, off));
  }
  return report;
}

void print_captions(const char *what, const CaptionReport &report) {
  g_print("%s: %u frames judged, %u captioned, %u wrong;%s\n"
          "  caption start errors (ms): %s\n  caption end errors (ms): %s\n",
          what, report.checked, report.captioned, report.mismatches, report.mismatch_list.c_str(),
          ms_list(report.start_errors).c_str(), ms_list(report.end_errors).c_str());
}

void assert_captions_on_time(const CaptionReport &report, guint min_utterances, bool judge_ends,
                             const char *what) {
  fail_unless(report.mismatches == 0, "%s: %u frames captioned wrongly:%s", what, report.mismatches,
              report.mismatch_list.c_str());
  fail_unless(report.start_errors.size() >= min_utterances, "%s: only %u utterances judged", what,
              (guint)report.start_errors.size());
  fail_unless(max_abs(report.start_errors) <= GstClockTimeDiff(kTimingTolerance),
              "%s: caption start errors (ms) %s", what, ms_list(report.start_errors).c_str());
  if (judge_ends)
    fail_unless(max_abs(report.end_errors) <= GstClockTimeDiff(kTimingTolerance),
                "%s: caption end errors (ms) %s", what, ms_list(report.end_errors).c_str());
}

GstClockTimeDiff max_abs(const std::vector<GstClockTimeDiff> &v) {
  GstClockTimeDiff m = 0;
  for (GstClockTimeDiff d : v)
    m = MAX(m, std::llabs(d));
  return m;
}

std::string ms_list(const std::vector<GstClockTimeDiff> &v) {
  std::string s;
  for (GstClockTimeDiff d : v)
    s += std::to_string(d / GST_MSECOND) + " ";
  return s;
}

void check_continuity(const Viewer &out, gint64 from_wall, const char *what) {
  Continuity c = continuity(out, from_wall);
  GST_INFO("%s: longest video arrival gap %" G_GINT64_FORMAT " ms, frame-number gap %d, "
           "audio arrival gap %" G_GINT64_FORMAT " ms, audio hole %" GST_TIME_FORMAT,
           what, c.video_arrival_gap_us / 1000, c.video_number_gap, c.audio_arrival_gap_us / 1000,
           GST_TIME_ARGS(c.audio_pts_hole));
  g_print("%s: continuity: longest gap between output frames %" G_GINT64_FORMAT
          " ms (frame numbers step at most %d), between audio buffers %" G_GINT64_FORMAT
          " ms, audio timestamp hole %" G_GUINT64_FORMAT " ms\n",
          what, c.video_arrival_gap_us / 1000, c.video_number_gap, c.audio_arrival_gap_us / 1000,
          c.audio_pts_hole / GST_MSECOND);
  fail_unless(c.video_arrival_gap_us <= kMaxFreezeUs,
              "%s: the video froze for %" G_GINT64_FORMAT " ms", what,
              c.video_arrival_gap_us / 1000);
  fail_unless(c.video_number_gap <= kFps, "%s: %d frames missing in a row", what,
              c.video_number_gap - 1);
  fail_unless(c.audio_arrival_gap_us <= kMaxFreezeUs,
              "%s: the audio stopped for %" G_GINT64_FORMAT " ms", what,
              c.audio_arrival_gap_us / 1000);
  fail_unless(c.audio_pts_hole <= 200 * GST_MSECOND, "%s: a %" GST_TIME_FORMAT " hole in the audio",
              what, GST_TIME_ARGS(c.audio_pts_hole));
  fail_unless(c.audio_peak > 4000, "%s: the tone bursts are missing from the output audio", what);
}

Delay added_delay(const Viewer &in, const Viewer &out, const std::vector<gint64> &frame_wall) {
  std::map<gint, gint64> in_wall;
  for (const Frame &f : in.frames)
    in_wall[f.number] = f.wall;
  Delay d;
  std::vector<gint64> total;
  for (const Frame &f : out.frames) {
    auto it = in_wall.find(f.number);
    if (it == in_wall.end())
      continue;
    d.added.push_back(f.wall - it->second);
    total.push_back(f.wall - frame_wall[f.number]);
  }
  fail_unless(d.added.size() > 50, "too few frames in both live/in and live/out: %u",
              (guint)d.added.size());
  d.median = median(d.added);
  d.max = *std::max_element(d.added.begin(), d.added.end());
  /* Keeping up: the delay over the last second of frames is not much more than over the
   * first second after the start-up (skipping the first 2 s). */
  size_t s = MIN(d.added.size() / 3, size_t(2 * kFps));
  d.first_second = median({d.added.begin() + s, d.added.begin() + s + kFps});
  d.last_second = median({d.added.end() - kFps, d.added.end()});
  d.total_median = median(total);
  return d;
}

std::string save_captioned_frame(const Viewer &out, const std::vector<GstClockTime> &frame_pts,
                                 const std::vector<GstClockTime> &onsets) {
  for (const auto &[n, sample] : out.kept) {
    GstClockTime t = frame_pts[n];
    GstClockTime began = GST_CLOCK_TIME_NONE;
    for (GstClockTime onset : onsets)
      if (t >= onset + 300 * GST_MSECOND && t + 300 * GST_MSECOND < onset + kCaptionDuration)
        began = onset;
    if (!GST_CLOCK_TIME_IS_VALID(began))
      continue;
    gchar *path = g_build_filename(g_get_tmp_dir(), "qwenasr-rtmp-captioned-frame.png", nullptr);
    std::string result = path;
    g_free(path);
    GstCaps *png = gst_caps_new_empty_simple("image/png");
    GstSample *converted = gst_video_convert_sample(sample, png, 10 * GST_SECOND, nullptr);
    gst_caps_unref(png);
    if (!converted)
      return "";
    GstMapInfo map;
    GstBuffer *buffer = gst_sample_get_buffer(converted);
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    const bool saved = g_file_set_contents(result.c_str(), reinterpret_cast<const char *>(map.data),
                                           static_cast<gssize>(map.size), nullptr);
    gst_buffer_unmap(buffer, &map);
    gst_sample_unref(converted);
    if (!saved)
      return "";
    g_print("captioned frame %d (%.3f s, %.3f s after its utterance began) saved as %s\n", n,
            t / 1e9, (t - began) / 1e9, result.c_str());
    return result;
  }
  return "";
}
