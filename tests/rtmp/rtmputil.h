/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the RTMP tests share: nginx on loopback, the frame-number bar code, a recording viewer,
 * bus checks and continuity. Frames are 320x240 at 25 fps throughout. */
#pragma once

#include "testutil.h"

#include <gst/video/video.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

inline const char *kNginxModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

inline const int kWidth = 320, kHeight = 240, kFps = 25;
inline const GstClockTime kFrameDuration = GST_SECOND / kFps;
/* Longest allowed stretch without a new video frame or audio in the output. */
inline const gint64 kMaxFreezeUs = G_USEC_PER_SEC;
/* The caption region: textoverlay valignment=bottom draws there. */
inline const int kRegionTop = 160;
inline const int kRegionBytes = (kHeight - kRegionTop) * kWidth;
/* Top strip: 16 blocks of 20x16 pixels, 12 bits of frame number and a 4-bit check. */
inline const int kMarkerRows = 16, kMarkerBits = 16, kMarkerBlock = kWidth / kMarkerBits;

/* $NAME placeholders of a pipeline description replaced by their values. */
std::string substitute(std::string text, const std::map<std::string, std::string> &vars);

std::string find_nginx();
/* Whether nginx and its RTMP module are installed; if not, *why says what to install. */
bool have_nginx_rtmp(std::string *why);

/* nginx with the RTMP module (application "live"), on a free loopback port, in a temp dir;
 * stopped and removed by the destructor. */
class Nginx {
public:
  Nginx();
  ~Nginx();
  std::string url(const char *stream) const {
    return "rtmp://127.0.0.1:" + std::to_string(port_) + "/live/" + stream;
  }
  std::string error_log() const;

private:
  std::string dir_, conf_;
  guint16 port_ = 0;
  GPid pid_ = 0;
};

/* Starts argv[0] (found in PATH if not a path) with stdout and stderr into `log` (appended);
 * it is killed if the test process dies. */
GPid spawn(const std::vector<std::string> &argv, const std::string &log);
/* Exit status of a spawned child that ended within `timeout_us`, or -1 if it is still
 * running then. */
int wait_child(GPid pid, gint64 timeout_us);
std::string slurp(const std::string &path);

/* Writes frame number n (mod 4096) as a bar code into the top rows of an I420 frame. */
void write_marker(GstVideoFrame *frame, guint n);
/* The frame number, or -1 if the bar code does not read back. */
gint read_marker(const GstVideoFrame *frame);

struct Frame {
  gint number; /* frame number from the bar code */
  GstClockTime pts;
  gint64 wall; /* monotonic µs at arrival */
  std::vector<guint8> region;
};

struct AudioChunk {
  GstClockTime pts, duration;
  gint64 wall;
  gint peak;
};

struct Text {
  GstClockTime pts, duration;
  std::string text;
};

struct Viewer {
  GstElement *pipeline = nullptr;
  std::mutex lock;
  std::vector<Frame> frames;
  std::vector<AudioChunk> audio;
  std::vector<Text> texts;
  guint unreadable = 0;             /* frames whose bar code did not read back */
  std::vector<gint64> arrivals;     /* monotonic µs of every frame, readable or not */
  std::map<gint, GstSample *> kept; /* every 25th frame, whole, for a picture */
  ~Viewer() {
    for (auto &[n, sample] : kept)
      gst_sample_unref(sample);
  }
};

/* Decoding branches for a viewer: H.264 to 320x240 I420 into appsink "video", AAC to mono
 * S16LE into appsink "audio". */
extern const char *kDecodeVideo;
extern const char *kDecodeAudio;

/* Plays `description` (appsinks named video, audio and/or text) into `viewer`. */
void start_viewer(Viewer &viewer, const std::string &description);
void start_rtmp_viewer(Viewer &viewer, const std::string &url);

/* Fails on any ERROR message so far; keeps the rest in `kept`. */
void check_bus(GstElement *pipeline, const char *what, std::vector<GstMessage *> *kept,
               const Nginx &nginx);
/* To NULL, and unreferenced. */
void stop(GstElement *&pipeline);

struct Continuity {
  gint64 video_arrival_gap_us = 0, audio_arrival_gap_us = 0;
  gint video_number_gap = 0;
  GstClockTime audio_pts_hole = 0;
  gint audio_peak = 0;
};
Continuity continuity(const Viewer &viewer, gint64 from_wall);

gint64 median(std::vector<gint64> v);
