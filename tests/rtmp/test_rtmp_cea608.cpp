/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Closed captions over real RTMP, end to end on loopback:
 *
 *   publisher --rtmp--> nginx live/in --rtmp--> captioner (the cookbook's restream pipeline:
 *   qwenasr ! qwenasrcea608enc ! ccconverter ! cccombiner, x264enc ! flvmux ! rtmp2sink)
 *   --rtmp--> nginx live/out --rtmp--> viewer (writes what it receives to a file)
 *
 * The viewer's file is then decoded by Debian's ffmpeg (the SRT a viewer's decoder shows) and
 * by flvdemux ! avdec_h264 ! ccextractor (the byte pairs). nginx is Debian's nginx with
 * libnginx-mod-rtmp, started on a free loopback port; without it the program exits 77. */
#include "rtmputil.h"

#include "cea608check.h"

#include <glib/gstdio.h>

using namespace testutil;
using namespace cea608check;

/* The cookbook's restream pipeline, exactly as docs/cookbook.md shows it ($IN, $OUT, $URL and
 * $MODE substituted). */
static const char *kRestreamPipeline =
    "rtmp2src location=$IN ! flvdemux name=d \\\n"
    "  d.video ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! h264parse ! \\\n"
    "    avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! cccombiner name=c ! \\\n"
    "    x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=800 ! \\\n"
    "    h264parse ! queue ! flvmux name=m streamable=true ! rtmp2sink location=$OUT \\\n"
    "  d.audio ! aacparse ! tee name=a \\\n"
    "  a. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! m. \\\n"
    "  a. ! queue ! avdec_aac ! audioconvert ! audioresample ! \\\n"
    "    qwenasr language-code=en url=$URL latency=2000 vad-silence-ms=200 ! \\\n"
    "    qwenasrcea608enc mode=$MODE ! closedcaption/x-cea-608,framerate=30/1 ! ccconverter ! \\\n"
    "    closedcaption/x-cea-708,format=cc_data ! c.caption";

static GstElement *launch(const std::string &description) {
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline && !error, "%s: %s", description.c_str(), error ? error->message : "");
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
              "cannot start %s", description.c_str());
  return pipeline;
}

/* Waits for EOS (failing on an error) up to `timeout`; then sends one if none came, so that
 * muxers finish, and waits for it again. */
static void finish(GstElement *pipeline, GstClockTime timeout, const char *what) {
  GstBus *bus = gst_element_get_bus(pipeline);
  for (int round = 0; round < 2; round++) {
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *error = nullptr;
      gst_message_parse_error(m, &error, nullptr);
      fail("%s: error from %s: %s", what, GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), error->message);
    }
    if (m) {
      gst_message_unref(m);
      break;
    }
    std::printf("%s: no EOS within %" GST_TIME_FORMAT ", sending one\n", what,
                GST_TIME_ARGS(timeout));
    gst_element_send_event(pipeline, gst_event_new_eos());
  }
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

static void check_round_trip(const char *mode) {
  Nginx nginx;
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string received = temp_path(".flv");
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);

  /* The viewer first (nginx holds it until the stream is published), then the captioner. */
  GstElement *viewer =
      launch("rtmp2src location=" + nginx.url("out") + " ! filesink location=" + received);
  std::map<guint64, guint16> sent;
  GstElement *captioner =
      launch(cea608check::substitute(kRestreamPipeline, {{"$IN", nginx.url("in")},
                                                         {"$OUT", nginx.url("out")},
                                                         {"$URL", service->url()},
                                                         {"$MODE", mode}}));
  watch_encoder(captioner, "qwenasrcea608enc0", &sent);
  /* A live publisher: 10 s of video at 30 fps, the speech as AAC. */
  GstElement *publisher =
      launch("videotestsrc is-live=true num-buffers=300 ! "
             "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
             "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! h264parse ! "
             "flvmux name=m streamable=true ! rtmp2sink location=" +
             nginx.url("in") + " filesrc location=" + wav +
             " ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! "
             "avenc_aac ! aacparse ! m.");
  finish(publisher, 30 * GST_SECOND, "publisher");
  finish(captioner, 10 * GST_SECOND, "captioner");
  finish(viewer, 5 * GST_SECOND, "viewer");
  g_setenv("DASHSCOPE_API_KEY", "", TRUE);

  /* AAC is lossy: the words are those the service heard, in order, one per utterance. */
  std::vector<std::string> heard;
  for (const auto &session : service->sessions())
    heard.insert(heard.end(), session.transcripts.begin(), session.transcripts.end());
  fail_unless_equals_int(heard.size(), audio.utterances.size());
  std::vector<Sentence> sentences;
  for (gsize i = 0; i < heard.size(); i++) {
    const Utterance &u = audio.utterances[i];
    sentences.push_back({heard[i], u.start_ms * GST_MSECOND, u.end_ms * GST_MSECOND});
  }
  std::vector<Cue> cues = ffmpeg_cues(received);
  assert_every_sentence_on_screen_in_time(cues, sentences,
                                          std::string(mode) + ", RTMP round trip (live/out)");
  /* The live publisher's frame times jitter by a millisecond or so, which can move a pair to
   * the neighbouring frame index: compare the sequence. */
  assert_caption_sequence_survives(sent, extracted_pairs(received));
  g_unlink(received.c_str());
  g_unlink(wav);
  g_free(wav);
}

GST_START_TEST(test_cookbook_shows_the_restream_pipeline_the_suite_runs) {
  assert_cookbook_shows(kRestreamPipeline);
}
GST_END_TEST;

GST_START_TEST(test_embedded_captions_survive_an_rtmp_round_trip_in_pop_on) {
  check_round_trip("pop-on");
}
GST_END_TEST;

GST_START_TEST(test_embedded_captions_survive_an_rtmp_round_trip_in_roll_up) {
  check_round_trip("roll-up2");
}
GST_END_TEST;

static Suite *rtmp_cea608_suite(void) {
  Suite *s = suite_create("rtmp cea608");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_cookbook_shows_the_restream_pipeline_the_suite_runs);
  tcase_add_test(tc, test_embedded_captions_survive_an_rtmp_round_trip_in_pop_on);
  tcase_add_test(tc, test_embedded_captions_survive_an_rtmp_round_trip_in_roll_up);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  std::string why;
  if (!have_nginx_rtmp(&why)) {
    g_print("SKIP: %s\n", why.c_str());
    return 77;
  }
  return gst_check_run_suite(rtmp_cea608_suite(), "rtmp_cea608", __FILE__);
}
