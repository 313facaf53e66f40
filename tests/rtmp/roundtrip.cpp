/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The RTMP round trip of test_rtmp (see roundtrip.h). */
#include "roundtrip.h"

#include <cstdlib>

using namespace testutil;

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

RoundTrip::RoundTrip(qwenasr::local::ServiceOptions options) {
  service = start_service(std::move(options));
  /* As the cookbook: the key from the environment, the local service by url=. */
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
}

RoundTrip::~RoundTrip() {
  stop_all();
  free_messages(captioner_messages);
}

void RoundTrip::start(const std::string &captioner_description) {
  started = g_get_monotonic_time();
  start_rtmp_viewer(in, nginx.url("in"));
  start_rtmp_viewer(out, nginx.url("out"));
  GError *error = nullptr;
  captioner = gst_parse_launch(captioner_description.c_str(), &error);
  fail_unless(captioner && !error, "captioner %s: %s", captioner_description.c_str(),
              error ? error->message : "");
  fail_unless(gst_element_set_state(captioner, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  start_publisher(pub, nginx.url("in"));
}

void RoundTrip::run_for(double seconds) {
  gint64 until = g_get_monotonic_time() + gint64(seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time() < until) {
    g_usleep(200000);
    poll();
  }
}

void RoundTrip::poll() {
  check_bus(pub.pipeline, "publisher", nullptr, nginx);
  check_bus(in.pipeline, "viewer of live/in", nullptr, nginx);
  if (out.pipeline)
    check_bus(out.pipeline, "viewer of live/out", nullptr, nginx);
  check_bus(captioner, "captioner", &captioner_messages, nginx);
}

void RoundTrip::stop_all() {
  stop(out.pipeline);
  stop(in.pipeline);
  stop(captioner);
  stop(pub.pipeline);
}
