/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Livestream captioning over real RTMP, end to end on loopback:
 *
 *   publisher  --rtmp-->  nginx live/in  --rtmp-->  captioner (the cookbook pipeline:
 *   rtmp2src ! flvdemux, audio into qwenasr, textoverlay on the video, x264enc ! flvmux !
 *   rtmp2sink)  --rtmp-->  nginx live/out  --rtmp-->  viewer (checks)
 *
 * nginx is Debian's (nginx + libnginx-mod-rtmp), started here on a free loopback port with a
 * config of our own and stopped afterwards; without it the program exits 77 (skip).
 *
 * The publisher sends a live H.264 + AAC FLV stream: 75% colour bars with the frame number
 * written as a bar code into the top 16 rows, and 600 ms tone bursts every 2.5 s that the
 * local service's VAD hears as utterances. A second viewer reads live/in, the uncaptioned
 * source, so for every frame number the checker has the frame before and after captioning and
 * the wall-clock time each arrived. It checks that the caption region differs from the source
 * exactly while an utterance's caption should be on screen, that video and audio in live/out
 * never freeze for more than a second, and that the delay the captioner adds is bounded and
 * does not grow (it keeps up in real time). Further tests: the service drops the connection
 * mid-stream (video keeps flowing, captions resume), and the cookbook's recording variant
 * (matroskamux with the captions also as a subtitle track). */
#include "rtmputil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <algorithm>

using namespace testutil;

/* The tone bursts: 264 periods of 440 Hz = 600 ms, one every 2.5 s. */
static const GstClockTime kBurstInterval = 2500 * GST_MSECOND;
/* What a caption lasts on screen: the utterance (600 ms) is shorter than qwenasr's default
 * min-duration, so each caption stays up for exactly min-duration. */
static const GstClockTime kCaptionDuration = 1000 * GST_MSECOND;
/* Allowed caption timing error at either end of a caption (frames are 40 ms apart). */
static const GstClockTime kTimingTolerance = 150 * GST_MSECOND;

/* ------------------------------------------------------------------------------------------
 * The pipelines, exactly as docs/cookbook.md shows them ($IN, $OUT, $URL, $FILE substituted).
 * ---------------------------------------------------------------------------------------- */

/* Audio and video come from live/in; the video waits in an unbounded queue for the caption
 * timeline, the AAC audio is passed through, and rtmp2sink publishes the captioned stream.
 * rtmp2src is not a live source, so qwenasr's latency is not added to the pipeline latency:
 * textoverlay holds each frame until the text timeline has passed it (at most `latency`,
 * default 8 s), and rtmp2sink's ts-offset (9.5 s) sends every frame that much after its
 * running time, so the holds vanish inside a constant delay instead of stopping the output. */
static const char *kCaptionerTemplate =
    "rtmp2src location=$IN ! flvdemux name=d "
    "d.video ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! h264parse ! "
    "avdec_h264 ! videoconvert ! textoverlay name=o valignment=bottom font-desc=\"Sans Bold 24\" ! "
    "videoconvert ! video/x-raw,format=I420 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 ! h264parse ! "
    "flvmux name=m streamable=true ! rtmp2sink location=$OUT ts-offset=9500000000 "
    "d.audio ! aacparse ! tee name=a "
    "a. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! m. "
    "a. ! queue ! avdec_aac ! audioconvert ! audioresample ! "
    "qwenasr language-code=en url=$URL vad-silence-ms=200 ! o.text_sink";

/* The same, recorded to Matroska, with the captions burned in and also as a subtitle track. */
static const char *kRecorderTemplate =
    "rtmp2src location=$IN ! flvdemux name=d "
    "d.video ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! h264parse ! "
    "avdec_h264 ! videoconvert ! textoverlay name=o valignment=bottom font-desc=\"Sans Bold 24\" ! "
    "videoconvert ! video/x-raw,format=I420 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 ! h264parse ! "
    "matroskamux name=m ! filesink location=$FILE "
    "d.audio ! aacparse ! tee name=a "
    "a. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! m. "
    "a. ! queue ! avdec_aac ! audioconvert ! audioresample ! "
    "qwenasr language-code=en url=$URL vad-silence-ms=200 ! tee name=t "
    "t. ! queue ! o.text_sink "
    "t. ! queue ! m.subtitle_0";

/* ------------------------------------------------------------------------------------------
 * nginx with the RTMP module, on a free loopback port.
 * ---------------------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------------
 * Frame-number bar code.
 * ---------------------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------------
 * Publisher: live bars + tone bursts, H.264 + AAC in FLV, to live/in.
 * ---------------------------------------------------------------------------------------- */

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

static GstPadProbeReturn mark_frame(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *pub = static_cast<Publisher *>(data);
  if (!pub->have_info) {
    GstCaps *caps = gst_pad_get_current_caps(pad);
    fail_unless(caps && gst_video_info_from_caps(&pub->info, caps));
    gst_caps_unref(caps);
    pub->have_info = true;
  }
  GstBuffer *buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  std::lock_guard<std::mutex> guard(pub->lock);
  guint n = pub->frame_pts.size();
  GstVideoFrame frame;
  fail_unless(gst_video_frame_map(&frame, &pub->info, buffer, GST_MAP_READWRITE));
  write_marker(&frame, n);
  gst_video_frame_unmap(&frame);
  pub->frame_pts.push_back(GST_BUFFER_PTS(buffer));
  pub->frame_wall.push_back(g_get_monotonic_time());
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn find_onsets(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *pub = static_cast<Publisher *>(data);
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_READ);
  const gint16 *samples = reinterpret_cast<const gint16 *>(map.data);
  std::lock_guard<std::mutex> guard(pub->lock);
  for (gsize i = 0; i < map.size / 2; i++) {
    if (std::abs(samples[i]) > 2000) {
      if (pub->silent_samples > 44100 / 10)
        pub->onsets.push_back(GST_BUFFER_PTS(buffer) +
                              gst_util_uint64_scale_int(i, GST_SECOND, 44100));
      pub->silent_samples = 0;
    } else {
      pub->silent_samples++;
    }
  }
  gst_buffer_unmap(buffer, &map);
  return GST_PAD_PROBE_OK;
}

static void start_publisher(Publisher &pub, const std::string &url) {
  std::string description =
      "videotestsrc name=v is-live=true pattern=smpte75 ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 ! h264parse ! "
      "flvmux name=m streamable=true ! rtmp2sink location=" +
      url + " audiotestsrc name=a is-live=true wave=ticks freq=440 sine-periods-per-tick=" +
      std::to_string(pub.tone_periods) + " tick-interval=" + std::to_string(pub.tone_interval) +
      " volume=0.5 ! audio/x-raw,format=S16LE,rate=44100,channels=1 ! "
      "audioconvert ! avenc_aac bitrate=64000 ! aacparse ! m.";
  GError *error = nullptr;
  pub.pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pub.pipeline && !error, "publisher: %s", error ? error->message : "");
  for (auto [name, probe] : {std::pair{"v", &mark_frame}, std::pair{"a", &find_onsets}}) {
    GstElement *src = gst_bin_get_by_name(GST_BIN(pub.pipeline), name);
    GstPad *pad = gst_element_get_static_pad(src, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, probe, &pub, nullptr);
    gst_object_unref(pad);
    gst_object_unref(src);
  }
  fail_unless(gst_element_set_state(pub.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
}

/* ------------------------------------------------------------------------------------------
 * Viewer: reads an RTMP stream (or a file) back, decodes it and keeps what the checks need.
 * ---------------------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------------
 * Running and stopping.
 * ---------------------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------------
 * Checks.
 * ---------------------------------------------------------------------------------------- */

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
static CaptionReport check_captions(const std::vector<Frame> &out, const std::vector<Frame> &source,
                                    const std::vector<GstClockTime> &frame_pts,
                                    const std::vector<GstClockTime> &onsets,
                                    GstClockTime skip_from = GST_CLOCK_TIME_NONE,
                                    GstClockTime skip_to = GST_CLOCK_TIME_NONE,
                                    GstClockTime caption_duration = kCaptionDuration) {
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

static GstClockTimeDiff max_abs(const std::vector<GstClockTimeDiff> &v) {
  GstClockTimeDiff m = 0;
  for (GstClockTimeDiff d : v)
    m = MAX(m, std::llabs(d));
  return m;
}

static std::string ms_list(const std::vector<GstClockTimeDiff> &v) {
  std::string s;
  for (GstClockTimeDiff d : v)
    s += std::to_string(d / GST_MSECOND) + " ";
  return s;
}

static void check_continuity(const Viewer &out, gint64 from_wall, const char *what) {
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

/* Added delay: arrival of each frame in live/out minus its arrival in live/in (µs). */
struct Delay {
  std::vector<gint64> added; /* in frame-number order */
  gint64 median = 0, max = 0, first_second = 0, last_second = 0, total_median = 0;
};

static Delay added_delay(const Viewer &in, const Viewer &out, const Publisher &pub) {
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
    total.push_back(f.wall - pub.frame_wall[f.number]);
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

/* ------------------------------------------------------------------------------------------
 * The round trip.
 * ---------------------------------------------------------------------------------------- */

struct RoundTrip {
  Nginx nginx;
  std::unique_ptr<qwenasr::local::LocalService> service;
  Publisher pub;
  Viewer in, out;
  GstElement *captioner = nullptr;
  std::vector<GstMessage *> captioner_messages;
  gint64 started = 0;

  explicit RoundTrip(qwenasr::local::ServiceOptions options = {}) {
    service = start_service(std::move(options));
    /* As the cookbook: the key from the environment, the local service by url=. */
    g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  }
  ~RoundTrip() {
    stop_all();
    free_messages(captioner_messages);
  }
  void start(const std::string &captioner_description) {
    started = g_get_monotonic_time();
    /* Viewers first (nginx keeps them waiting for the publisher), then the captioner, then
     * the publisher, so every stream is seen from its first key frame. */
    start_rtmp_viewer(in, nginx.url("in"));
    start_rtmp_viewer(out, nginx.url("out"));
    GError *error = nullptr;
    captioner = gst_parse_launch(captioner_description.c_str(), &error);
    fail_unless(captioner && !error, "captioner %s: %s", captioner_description.c_str(),
                error ? error->message : "");
    fail_unless(gst_element_set_state(captioner, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    start_publisher(pub, nginx.url("in"));
  }
  /* Runs for `seconds` of wall time, failing early on any pipeline error. */
  void run_for(double seconds) {
    gint64 until = g_get_monotonic_time() + gint64(seconds * G_USEC_PER_SEC);
    while (g_get_monotonic_time() < until) {
      g_usleep(200000);
      poll();
    }
  }
  void poll() {
    check_bus(pub.pipeline, "publisher", nullptr, nginx);
    check_bus(in.pipeline, "viewer of live/in", nullptr, nginx);
    if (out.pipeline)
      check_bus(out.pipeline, "viewer of live/out", nullptr, nginx);
    check_bus(captioner, "captioner", &captioner_messages, nginx);
  }
  void stop_all() {
    /* Viewers first: what they saw is final before anything upstream goes away. */
    stop(out.pipeline);
    stop(in.pipeline);
    stop(captioner);
    stop(pub.pipeline);
  }
};

static std::string captioner_for(const RoundTrip &rt) {
  return substitute(
      kCaptionerTemplate,
      {{"$IN", rt.nginx.url("in")}, {"$OUT", rt.nginx.url("out")}, {"$URL", rt.service->url()}});
}

/* Saves a kept output frame inside a caption as a PNG in the temp dir, for people to look
 * at; returns its path (or "" if no kept frame was captioned). */
static std::string save_captioned_frame(const Viewer &out, const CaptionReport &report,
                                        const std::vector<GstClockTime> &frame_pts,
                                        const std::vector<GstClockTime> &onsets) {
  for (const auto &[n, sample] : out.kept) {
    GstClockTime t = frame_pts[n];
    GstClockTime began = GST_CLOCK_TIME_NONE;
    for (GstClockTime onset : onsets)
      if (t >= onset + 300 * GST_MSECOND && t + 300 * GST_MSECOND < onset + kCaptionDuration)
        began = onset;
    if (!GST_CLOCK_TIME_IS_VALID(began))
      continue;
    (void)report;
    gchar *path = g_build_filename(g_get_tmp_dir(), "qwenasr-rtmp-captioned-frame.png", nullptr);
    std::string result = path;
    g_free(path);
    GstElement *writer = gst_parse_launch(
        ("appsrc name=src format=time ! videoconvert ! pngenc ! filesink location=" + result)
            .c_str(),
        nullptr);
    GstElement *src = gst_bin_get_by_name(GST_BIN(writer), "src");
    g_object_set(src, "caps", gst_sample_get_caps(sample), nullptr);
    gst_element_set_state(writer, GST_STATE_PLAYING);
    GstFlowReturn flow;
    GstBuffer *buffer = gst_buffer_copy(gst_sample_get_buffer(sample));
    GST_BUFFER_PTS(buffer) = 0;
    g_signal_emit_by_name(src, "push-buffer", buffer, &flow);
    gst_buffer_unref(buffer);
    g_signal_emit_by_name(src, "end-of-stream", &flow);
    GstBus *bus = gst_element_get_bus(writer);
    GstMessage *done = gst_bus_timed_pop_filtered(
        bus, 10 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (done)
      gst_message_unref(done);
    gst_element_set_state(writer, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(src);
    gst_object_unref(writer);
    g_print("captioned frame %d (%.3f s, %.3f s after its utterance began) saved as %s\n", n,
            t / 1e9, (t - began) / 1e9, result.c_str());
    return result;
  }
  return "";
}

GST_START_TEST(test_live_captions_round_trip_over_rtmp) {
  RoundTrip rt;
  rt.start(captioner_for(rt));
  rt.run_for(30); /* 20 s of output after the 9.5 s ts-offset */
  rt.poll();
  {
    GstQuery *q = gst_query_new_latency();
    gboolean live = FALSE;
    GstClockTime min = 0, max = 0;
    if (gst_element_query(rt.captioner, q))
      gst_query_parse_latency(q, &live, &min, &max);
    g_print("captioner: live %d, latency %" GST_TIME_FORMAT "\n", live, GST_TIME_ARGS(min));
    gst_query_unref(q);
    Continuity c = continuity(rt.in, 0);
    g_print("live/in: longest frame gap %" G_GINT64_FORMAT " ms\n", c.video_arrival_gap_us / 1000);
  }
  gint64 stopped = g_get_monotonic_time();
  rt.stop_all();

  std::lock_guard<std::mutex> g1(rt.pub.lock), g2(rt.in.lock), g3(rt.out.lock);
  g_print("round trip: %u frames published, %u seen in live/in, %u in live/out "
          "(%u unreadable), %u tone bursts, run %.1f s\n",
          (guint)rt.pub.frame_pts.size(), (guint)rt.in.frames.size(), (guint)rt.out.frames.size(),
          rt.out.unreadable, (guint)rt.pub.onsets.size(), (stopped - rt.started) / 1e6);
  fail_unless(rt.out.frames.size() > 15 * kFps, "only %u frames came back through live/out",
              (guint)rt.out.frames.size());
  fail_unless(rt.out.unreadable <= rt.out.frames.size() / 50, "%u frames without a frame number",
              rt.out.unreadable);

  /* Captions on screen exactly while an utterance's caption is due. */
  CaptionReport captions =
      check_captions(rt.out.frames, rt.in.frames, rt.pub.frame_pts, rt.pub.onsets);
  g_print("round trip: %u frames judged, %u captioned, %u wrong;%s\n"
          "  caption region differs from the source in %.1f%%-%s of pixels when captioned, "
          "at most %.2f%% when not\n"
          "  caption start errors (ms): %s\n  caption end errors (ms): %s\n",
          captions.checked, captions.captioned, captions.mismatches, captions.mismatch_list.c_str(),
          captions.min_captioned_share * 100, "", captions.max_plain_share * 100,
          ms_list(captions.start_errors).c_str(), ms_list(captions.end_errors).c_str());
  fail_unless(captions.checked > 10 * kFps, "only %u frames could be judged", captions.checked);
  fail_unless(captions.captioned > 3 * kFps, "only %u captioned frames", captions.captioned);
  fail_unless_equals_int(captions.mismatches, 0);
  fail_unless(captions.start_errors.size() >= 5, "only %u utterances judged",
              (guint)captions.start_errors.size());
  fail_unless(max_abs(captions.start_errors) <= GstClockTimeDiff(kTimingTolerance));
  fail_unless(max_abs(captions.end_errors) <= GstClockTimeDiff(kTimingTolerance));

  /* Every utterance was transcribed once. */
  guint finals = transcripts(rt.captioner_messages, true).size();
  fail_unless(finals + 1 >= rt.pub.onsets.size(), "%u finals for %u bursts", finals,
              (guint)rt.pub.onsets.size());

  /* Continuous A/V after the first two seconds (start-up). */
  check_continuity(rt.out, rt.out.frames.front().wall, "round trip");

  Delay delay = added_delay(rt.in, rt.out, rt.pub);
  g_print("round trip: added delay (live/out arrival - live/in arrival) median %" G_GINT64_FORMAT
          " ms, max %" G_GINT64_FORMAT " ms, 2nd second %" G_GINT64_FORMAT
          " ms, last second %" G_GINT64_FORMAT
          " ms; publisher to viewer of live/out %" G_GINT64_FORMAT " ms\n",
          delay.median / 1000, delay.max / 1000, delay.first_second / 1000,
          delay.last_second / 1000, delay.total_median / 1000);
  /* rtmp2sink's ts-offset (9.5 s) plus the start-up (the first frame waits for the text
   * timeline) plus decode, encode and the hop; the same at the start and at the end. */
  fail_unless(delay.median <= 12000 * 1000, "median added delay %" G_GINT64_FORMAT " ms",
              delay.median / 1000);
  fail_unless(delay.last_second <= delay.first_second + 500 * 1000 &&
                  delay.first_second <= delay.last_second + 500 * 1000,
              "the delay is not constant: %" G_GINT64_FORMAT " ms at the start, %" G_GINT64_FORMAT
              " ms at the end",
              delay.first_second / 1000, delay.last_second / 1000);
  save_captioned_frame(rt.out, captions, rt.pub.frame_pts, rt.pub.onsets);
}
GST_END_TEST;

/* The RTMP freeze: 7 s utterances, each caption lasting its utterance, the next one arriving
 * while textoverlay still holds the previous. The output must flow on at a constant delay with
 * each caption on its utterance. */
GST_START_TEST(test_long_utterances_keep_the_restream_flowing) {
  RoundTrip rt;
  rt.pub.tone_periods = 3080; /* 7 s of 440 Hz */
  rt.pub.tone_interval = 10 * GST_SECOND;
  rt.start(captioner_for(rt));
  rt.run_for(42); /* three utterances through the 9.5 s ts-offset */
  rt.poll();
  rt.stop_all();

  std::lock_guard<std::mutex> g1(rt.pub.lock), g2(rt.in.lock), g3(rt.out.lock);
  fail_unless(rt.out.frames.size() > 25 * kFps, "only %u frames came back through live/out",
              (guint)rt.out.frames.size());
  check_continuity(rt.out, rt.out.frames.front().wall, "long utterances");
  CaptionReport captions =
      check_captions(rt.out.frames, rt.in.frames, rt.pub.frame_pts, rt.pub.onsets,
                     GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, 7 * GST_SECOND);
  g_print("long utterances: %u frames judged, %u captioned, %u wrong;%s\n"
          "  caption start errors (ms): %s\n  caption end errors (ms): %s\n",
          captions.checked, captions.captioned, captions.mismatches, captions.mismatch_list.c_str(),
          ms_list(captions.start_errors).c_str(), ms_list(captions.end_errors).c_str());
  fail_unless(captions.start_errors.size() >= 2, "only %u utterances judged",
              (guint)captions.start_errors.size());
  fail_unless_equals_int(captions.mismatches, 0);
  fail_unless(max_abs(captions.start_errors) <= GstClockTimeDiff(kTimingTolerance));
  fail_unless(max_abs(captions.end_errors) <= GstClockTimeDiff(kTimingTolerance));
}
GST_END_TEST;

/* The service drops the connection (no close frame) after 5.6 s of audio, in the middle of
 * the third utterance. The video must keep flowing and the captions come back. */
GST_START_TEST(test_video_keeps_flowing_and_captions_resume_when_the_service_drops) {
  qwenasr::local::ServiceOptions options;
  options.faults.faulty_sessions = 1;
  options.faults.close_after_appends = 56;
  options.faults.close_abruptly = true;
  RoundTrip rt(options);
  rt.start(captioner_for(rt));
  rt.run_for(26); /* 16 s of output after the 9.5 s ts-offset */
  rt.poll();
  rt.stop_all();

  std::vector<qwenasr::local::SessionRecord> sessions = rt.service->sessions();
  fail_unless(sessions.size() >= 2, "no reconnection: %u sessions", (guint)sessions.size());
  fail_unless(sessions[0].fault_closed, "the fault did not fire");
  std::lock_guard<std::mutex> g1(rt.pub.lock), g2(rt.in.lock), g3(rt.out.lock);
  fail_unless(rt.pub.onsets.size() >= 5);
  /* The fault hits 5.6 s into the captioner's audio, which starts with the first burst. */
  GstClockTime fault = rt.pub.onsets[0] + 5600 * GST_MSECOND;
  check_continuity(rt.out, rt.out.frames.front().wall, "service drop");
  /* From 2 s after the fault on, captions are exact again. Before that they may come late
   * (seen: up to 0.7 s late for the utterances before the drop), so only continuity counts. */
  CaptionReport captions = check_captions(rt.out.frames, rt.in.frames, rt.pub.frame_pts,
                                          rt.pub.onsets, 0, fault + 2000 * GST_MSECOND);
  g_print("service drop: %u sessions; %u frames judged, %u captioned, %u wrong;%s\n"
          "  caption start errors (ms): %s\n  caption end errors (ms): %s\n",
          (guint)sessions.size(), captions.checked, captions.captioned, captions.mismatches,
          captions.mismatch_list.c_str(), ms_list(captions.start_errors).c_str(),
          ms_list(captions.end_errors).c_str());
  fail_unless_equals_int(captions.mismatches, 0);
  guint after = 0;
  for (GstClockTime onset : rt.pub.onsets)
    if (onset > fault + 2000 * GST_MSECOND &&
        onset + 1300 * GST_MSECOND < rt.pub.frame_pts[rt.out.frames.back().number])
      after++;
  fail_unless(after >= 2, "too few utterances after the reconnection to judge: %u", after);
  fail_unless(captions.start_errors.size() >= 2, "captions did not resume");
  fail_unless(max_abs(captions.start_errors) <= GstClockTimeDiff(kTimingTolerance));
  fail_unless(max_abs(captions.end_errors) <= GstClockTimeDiff(kTimingTolerance));
}
GST_END_TEST;

/* The cookbook's recording variant: the captioned stream to Matroska, with the captions also
 * as a subtitle track. Stopped by EOS like a user's Ctrl-C with gst-launch-1.0 -e. */
GST_START_TEST(test_recording_keeps_captions_burned_in_and_as_a_subtitle_track) {
  RoundTrip rt;
  gchar *name = g_strdup_printf("qwenasr-rtmp-%d.mkv", getpid());
  gchar *file = g_build_filename(g_get_tmp_dir(), name, nullptr);
  g_free(name);
  std::string recorder =
      substitute(kRecorderTemplate,
                 {{"$IN", rt.nginx.url("in")}, {"$URL", rt.service->url()}, {"$FILE", file}});
  rt.start(recorder);
  rt.run_for(12);
  rt.poll();
  gst_element_send_event(rt.captioner, gst_event_new_eos());
  GstBus *bus = gst_element_get_bus(rt.captioner);
  GstMessage *done = gst_bus_timed_pop_filtered(
      bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "the recording did not end");
  gst_message_unref(done);
  gst_object_unref(bus);
  rt.stop_all();

  Viewer file_viewer;
  start_viewer(file_viewer, std::string("filesrc location=") + file +
                                " ! matroskademux name=d d.video_0 ! " + kDecodeVideo +
                                " d.audio_0 ! " + kDecodeAudio +
                                " d.subtitle_0 ! queue ! text/x-raw ! appsink name=text "
                                "sync=false emit-signals=true");
  bus = gst_element_get_bus(file_viewer.pipeline);
  done = gst_bus_timed_pop_filtered(
      bus, 30 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "cannot read %s back", file);
  gst_message_unref(done);
  gst_object_unref(bus);
  stop(file_viewer.pipeline);

  std::lock_guard<std::mutex> g1(rt.pub.lock), g2(rt.in.lock), g3(file_viewer.lock);
  fail_unless(file_viewer.frames.size() > 8 * kFps, "only %u frames recorded",
              (guint)file_viewer.frames.size());
  CaptionReport captions =
      check_captions(file_viewer.frames, rt.in.frames, rt.pub.frame_pts, rt.pub.onsets);
  /* Each subtitle cue starts on the frame where its utterance began. */
  std::vector<GstClockTimeDiff> cue_errors;
  for (const Text &cue : file_viewer.texts) {
    const Frame *at = nullptr;
    for (const Frame &f : file_viewer.frames)
      if (f.pts + kFrameDuration / 2 >= cue.pts) {
        at = &f;
        break;
      }
    if (!at)
      continue;
    /* On the publisher's timeline, by the PTS distance to that frame: a cue may also start
     * before the first recorded frame (the recording starts at a key frame), and mapping it
     * onto that frame instead would count the wait for the key frame as cue error. */
    GstClockTime t = rt.pub.frame_pts[at->number] + GST_CLOCK_DIFF(at->pts, cue.pts);
    GstClockTimeDiff best = G_MAXINT64;
    for (GstClockTime onset : rt.pub.onsets)
      if (std::llabs(GST_CLOCK_DIFF(onset, t)) < std::llabs(best))
        best = GST_CLOCK_DIFF(onset, t);
    cue_errors.push_back(best);
  }
  g_print("recording: %u frames, %u cues; %u frames judged, %u captioned, %u wrong;%s\n"
          "  caption start errors (ms): %s\n  cue start errors (ms): %s\n",
          (guint)file_viewer.frames.size(), (guint)file_viewer.texts.size(), captions.checked,
          captions.captioned, captions.mismatches, captions.mismatch_list.c_str(),
          ms_list(captions.start_errors).c_str(), ms_list(cue_errors).c_str());
  fail_unless_equals_int(captions.mismatches, 0);
  fail_unless(captions.start_errors.size() >= 2, "too few captions burned in");
  fail_unless(max_abs(captions.start_errors) <= GstClockTimeDiff(kTimingTolerance));
  fail_unless(cue_errors.size() + 1 >= rt.pub.onsets.size() && cue_errors.size() >= 3,
              "%u cues for %u utterances", (guint)cue_errors.size(), (guint)rt.pub.onsets.size());
  fail_unless(max_abs(cue_errors) <= GstClockTimeDiff(kTimingTolerance));
  g_unlink(file);
  g_free(file);
}
GST_END_TEST;

static Suite *rtmp_suite(void) {
  Suite *s = suite_create("rtmp");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_live_captions_round_trip_over_rtmp);
  tcase_add_test(tc, test_long_utterances_keep_the_restream_flowing);
  tcase_add_test(tc, test_video_keeps_flowing_and_captions_resume_when_the_service_drops);
  tcase_add_test(tc, test_recording_keeps_captions_burned_in_and_as_a_subtitle_track);
  return s;
}

/* Exit code 77 (meson: SKIP) without nginx, its RTMP module or one of the elements. */
static bool can_run(std::string *why) {
  if (find_nginx().empty()) {
    *why = "nginx is not installed (Debian: nginx)";
    return false;
  }
  if (!g_file_test(kNginxModule, G_FILE_TEST_EXISTS)) {
    *why = std::string(kNginxModule) + " is missing (Debian: libnginx-mod-rtmp)";
    return false;
  }
  for (const char *element : {"rtmp2src", "rtmp2sink", "flvmux", "flvdemux", "x264enc", "avenc_aac",
                              "avdec_aac", "avdec_h264", "h264parse", "aacparse", "textoverlay",
                              "matroskamux", "matroskademux", "qwenasr"}) {
    GstElementFactory *factory = gst_element_factory_find(element);
    if (!factory) {
      *why = std::string("no GStreamer element ") + element;
      return false;
    }
    gst_object_unref(factory);
  }
  return true;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  std::string why;
  if (!can_run(&why)) {
    g_print("SKIP: %s\n", why.c_str());
    return 77;
  }
  return gst_check_run_suite(rtmp_suite(), "rtmp", __FILE__);
}
