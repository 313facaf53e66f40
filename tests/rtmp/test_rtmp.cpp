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
 * (matroskamux with the captions also as a subtitle track).
 *
 * The round trip (nginx, service, publisher, captioner, viewers) is in roundtrip.h, the
 * judgements in captionchecks.h; this file holds the pipelines under test and the tests. */
#include <glib/gstdio.h>

#include <cstdlib>

#include "captionchecks.h"
#include "roundtrip.h"

using namespace testutil;

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

/* Fails unless the pipeline posts EOS (not an error) within `timeout`. */
static void wait_for_eos(GstElement *pipeline, GstClockTime timeout, const std::string &failure) {
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *done = gst_bus_timed_pop_filtered(
      bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  gst_object_unref(bus);
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "%s", failure.c_str());
  gst_message_unref(done);
}

static std::string captioner_for(const RoundTrip &rt) {
  return substitute(
      kCaptionerTemplate,
      {{"$IN", rt.nginx.url("in")}, {"$OUT", rt.nginx.url("out")}, {"$URL", rt.service->url()}});
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
  print_captions("round trip", captions);
  g_print("  caption region differs from the source in %.1f%%- of pixels when captioned, at most "
          "%.2f%% when not\n",
          captions.min_captioned_share * 100, captions.max_plain_share * 100);
  fail_unless(captions.checked > 10 * kFps, "only %u frames could be judged", captions.checked);
  fail_unless(captions.captioned > 3 * kFps, "only %u captioned frames", captions.captioned);
  assert_captions_on_time(captions, 5, true, "round trip");

  /* Every utterance was transcribed once. */
  guint finals = transcripts(rt.captioner_messages, true).size();
  fail_unless(finals + 1 >= rt.pub.onsets.size(), "%u finals for %u bursts", finals,
              (guint)rt.pub.onsets.size());

  /* Continuous A/V after the first two seconds (start-up). */
  check_continuity(rt.out, rt.out.frames.front().wall, "round trip");

  Delay delay = added_delay(rt.in, rt.out, rt.pub.frame_wall);
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
  save_captioned_frame(rt.out, rt.pub.frame_pts, rt.pub.onsets);
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
  print_captions("long utterances", captions);
  assert_captions_on_time(captions, 2, true, "long utterances");
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
  g_print("service drop: %u sessions\n", (guint)sessions.size());
  print_captions("service drop", captions);
  guint after = 0;
  for (GstClockTime onset : rt.pub.onsets)
    if (onset > fault + 2000 * GST_MSECOND &&
        onset + 1300 * GST_MSECOND < rt.pub.frame_pts[rt.out.frames.back().number])
      after++;
  fail_unless(after >= 2, "too few utterances after the reconnection to judge: %u", after);
  /* The captions resumed: at least two utterances after the drop judged, all on time. */
  assert_captions_on_time(captions, 2, true, "service drop");
}
GST_END_TEST;

/* The cookbook's recording variant: the captioned stream to Matroska, with the captions also
 * as a subtitle track. Stopped by EOS like a user's Ctrl-C with gst-launch-1.0 -e. */
GST_START_TEST(test_recording_keeps_captions_burned_in_and_as_a_subtitle_track) {
  RoundTrip rt;
  const std::string file = temp_path(".mkv");
  std::string recorder =
      substitute(kRecorderTemplate,
                 {{"$IN", rt.nginx.url("in")}, {"$URL", rt.service->url()}, {"$FILE", file}});
  rt.start(recorder);
  rt.run_for(12);
  rt.poll();
  gst_element_send_event(rt.captioner, gst_event_new_eos());
  wait_for_eos(rt.captioner, 20 * GST_SECOND, "the recording did not end");
  rt.stop_all();

  Viewer file_viewer;
  start_viewer(file_viewer, std::string("filesrc location=") + file +
                                " ! matroskademux name=d d.video_0 ! " + kDecodeVideo +
                                " d.audio_0 ! " + kDecodeAudio +
                                " d.subtitle_0 ! queue ! text/x-raw ! appsink name=text "
                                "sync=false emit-signals=true");
  wait_for_eos(file_viewer.pipeline, 30 * GST_SECOND, "cannot read " + file + " back");
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
  g_print("recording: %u frames, %u cues; cue start errors (ms): %s\n",
          (guint)file_viewer.frames.size(), (guint)file_viewer.texts.size(),
          ms_list(cue_errors).c_str());
  print_captions("recording", captions);
  /* Burned in: at least two captions, each starting on time. */
  assert_captions_on_time(captions, 2, false, "recording");
  fail_unless(cue_errors.size() + 1 >= rt.pub.onsets.size() && cue_errors.size() >= 3,
              "%u cues for %u utterances", (guint)cue_errors.size(), (guint)rt.pub.onsets.size());
  fail_unless(max_abs(cue_errors) <= GstClockTimeDiff(kTimingTolerance));
  g_unlink(file.c_str());
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
  if (!have_nginx_rtmp(why))
    return false;
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
