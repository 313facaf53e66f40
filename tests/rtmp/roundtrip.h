/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The RTMP round trip of test_rtmp: nginx, the local service, a live publisher of numbered
 * frames and tone bursts into live/in, a captioner between live/in and live/out, and a viewer
 * of each, started, polled for errors and stopped together. */
#pragma once

#include "rtmputil.h"

#include <memory>
#include <string>
#include <vector>

/* The tone bursts: 264 periods of 440 Hz = 600 ms, one every 2.5 s. */
inline const GstClockTime kBurstInterval = 2500 * GST_MSECOND;

/* Live bars (frame number as bar code) + tone bursts, H.264 + AAC in FLV, to live/in; records
 * when each frame left and where each burst began. */
struct Publisher {
  /* The tone bursts: `tone_periods` of 440 Hz every `tone_interval`. */
  guint tone_periods = 264;
  GstClockTime tone_interval = kBurstInterval;
  GstElement *pipeline = nullptr;
  std::mutex lock;
  std::vector<GstClockTime> frame_pts; /* by frame number */
  std::vector<gint64> frame_wall;      /* monotonic µs when the frame left videotestsrc */
  std::vector<GstClockTime> onsets;    /* burst starts, same timeline as frame_pts */
  guint64 silent_samples = G_MAXUINT32;
  GstVideoInfo info;
  bool have_info = false;
};

struct RoundTrip {
  Nginx nginx;
  std::unique_ptr<qwenasr::local::LocalService> service;
  Publisher pub;
  Viewer in, out;
  GstElement *captioner = nullptr;
  std::vector<GstMessage *> captioner_messages;
  gint64 started = 0;

  explicit RoundTrip(qwenasr::local::ServiceOptions options = {});
  ~RoundTrip();
  /* Viewers first (nginx keeps them waiting for the publisher), then the captioner, then the
   * publisher, so every stream is seen from its first key frame. */
  void start(const std::string &captioner_description);
  /* Runs for `seconds` of wall time, failing early on any pipeline error. */
  void run_for(double seconds);
  /* Fails on any pipeline error so far. */
  void poll();
  /* Viewers first: what they saw is final before anything upstream goes away. */
  void stop_all();
};
