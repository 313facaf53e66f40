/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Captions embedded in H.264 (the cookbook's RTMP pipeline, written to FLV, MP4 and Matroska
 * files), checked by independent decoders: Debian's ffmpeg turns them into an SRT of what a
 * viewer's decoder shows, and flvdemux ! avdec_h264 ! ccextractor gives the byte pairs back. */
#include "testutil.h"

#include "cea608check.h"

#include <glib/gstdio.h>

#include <cstdio>
#include <map>

using namespace testutil;
using namespace cea608check;

/* The cookbook's pipeline to a file: video through cccombiner and x264enc (a keyframe every
 * 2 s), AAC audio, and captions from `text` (a branch ending in text/x-raw, fed by the audio
 * tee `t` when it needs the audio) through the encoder under test. Returns the pairs the
 * encoder sent, by frame index. */
static std::map<guint64, guint16> record(const std::string &audio, const std::string &text,
                                         const char *mode, const std::string &muxer,
                                         const std::string &out, guint frames) {
  std::map<guint64, guint16> sent;
  std::string description =
      "videotestsrc num-buffers=" + std::to_string(frames) +
      " ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! cccombiner name=c ! "
      "x264enc speed-preset=ultrafast key-int-max=60 ! h264parse ! " +
      muxer + " name=m ! filesink location=" + out + " " + audio +
      " ! tee name=t t. ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! "
      "audioconvert ! audioresample ! avenc_aac ! aacparse ! m. " +
      text + " ! qwenasrcea608enc name=enc mode=" + mode +
      " ! ccconverter ! closedcaption/x-cea-708,format=cc_data ! c.caption";
  std::vector<GstMessage *> messages =
      run_pipeline(description, 90 * GST_SECOND,
                   [&sent](GstElement *pipeline) { watch_encoder(pipeline, "enc", &sent); });
  free_messages(messages);
  return sent;
}

/* Sentences with accents, from a subtitle file: a fixed-text source. */
static const char *kSrt = "1\n00:00:01,000 --> 00:00:03,000\nCafé crème, s'il vous plaît.\n\n"
                          "2\n00:00:04,500 --> 00:00:06,500\n¿Dónde está el niño? ¡Mañana!\n\n"
                          "3\n00:00:08,000 --> 00:00:10,000\nÜber Straße: Grüße aus Köln.\n\n";
static const std::vector<Sentence> kSentences = {
    {"Café crème, s'il vous plaît.", 1 * GST_SECOND, 3 * GST_SECOND},
    {"¿Dónde está el niño? ¡Mañana!", 4500 * GST_MSECOND, 6500 * GST_MSECOND},
    {"Über Straße: Grüße aus Köln.", 8 * GST_SECOND, 10 * GST_SECOND}};

/* The fixed sentences through H.264 in `muxer`; checks the SRT and, for FLV, the pairs. */
static void check_fixed_text(const char *mode, const char *muxer, const char *suffix) {
  std::string srt = temp_path(".srt");
  fail_unless(g_file_set_contents(srt.c_str(), kSrt, -1, nullptr), "cannot write %s", srt.c_str());
  std::string out = temp_path(suffix);
  const guint frames = 360;
  std::map<guint64, guint16> sent =
      record("audiotestsrc wave=silence num-buffers=600 ! audio/x-raw,rate=48000,channels=2",
             "filesrc location=" + srt + " ! subparse", mode, muxer, out, frames);
  std::vector<Cue> cues = ffmpeg_cues(out);
  fail_unless(!cues.empty(), "no captions decoded");
  if (g_str_equal(mode, "pop-on")) {
    /* One cue per sentence, exactly the sentence. */
    fail_unless_equals_int(cues.size(), kSentences.size());
    for (gsize i = 0; i < cues.size(); i++)
      fail_unless(cues[i].text == kSentences[i].text, "cue %zu: \"%s\"", i, cues[i].text.c_str());
  }
  assert_every_sentence_on_screen_in_time(cues, kSentences,
                                          std::string(mode) + ", fixed text, " + muxer);
  if (g_str_has_prefix(muxer, "flvmux"))
    assert_pairs_survive(sent, extracted_pairs(out), frames);
  g_unlink(srt.c_str());
  g_unlink(out.c_str());
}

/* The cookbook's pipeline ("Closed captions embedded in H.264"), exactly as docs/cookbook.md
 * shows it; $IN, $OUT, $URL and $MODE are substituted. */
static const char *kCookbookPipeline =
    "filesrc location=$IN ! decodebin name=d \\\n"
    "  d. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! \\\n"
    "    videoconvert ! videorate ! video/x-raw,format=I420,framerate=30/1 ! \\\n"
    "    cccombiner name=c ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=60 ! \\\n"
    "    h264parse ! queue ! flvmux name=m streamable=true ! filesink location=$OUT \\\n"
    "  d. ! queue ! tee name=a \\\n"
    "  a. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! \\\n"
    "    avenc_aac ! queue ! m. \\\n"
    "  a. ! queue ! audioconvert ! audioresample ! qwenasr language-code=en url=$URL ! \\\n"
    "    qwenasrcea608enc mode=$MODE ! closedcaption/x-cea-608,framerate=30/1 ! ccconverter ! \\\n"
    "    closedcaption/x-cea-708,format=cc_data ! c.caption";

GST_START_TEST(test_cookbook_shows_the_pipeline_the_suite_runs) {
  assert_cookbook_shows(kCookbookPipeline);
}
GST_END_TEST;

/* Speech from the local service in a recording (picture and lossless sound, so that the
 * service hears the samples the transcripts are predicted from) through
 * the cookbook's pipeline: each utterance's transcript is a sentence. */
static void check_local_service(const char *mode) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  std::string talk = write_recording(audio, 270, 30, "flacenc");
  std::string out = temp_path(".flv");
  std::map<guint64, guint16> sent;
  std::string description = substitute(
      kCookbookPipeline, {{"$IN", talk}, {"$OUT", out}, {"$URL", service->url()}, {"$MODE", mode}});
  /* As the cookbook: the key comes from the environment. */
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  std::vector<GstMessage *> messages =
      run_pipeline(description, 90 * GST_SECOND, [&sent](GstElement *pipeline) {
        watch_encoder(pipeline, "qwenasrcea608enc0", &sent);
      });
  free_messages(messages);
  g_setenv("DASHSCOPE_API_KEY", "", TRUE);
  std::vector<Sentence> sentences;
  for (const Utterance &u : audio.utterances)
    sentences.push_back({audio.transcript_of(u), u.start_ms * GST_MSECOND, u.end_ms * GST_MSECOND});
  std::vector<Cue> cues = ffmpeg_cues(out);
  assert_every_sentence_on_screen_in_time(cues, sentences,
                                          std::string(mode) + ", cookbook pipeline, local service");
  assert_pairs_survive(sent, extracted_pairs(out), 270);
  g_unlink(out.c_str());
  g_unlink(talk.c_str());
}

static void count_frame(GstElement *, GstBuffer *buffer, GstPad *, gpointer data) {
  auto counts = static_cast<std::pair<guint, guint> *>(data);
  counts->first++;
  GType caption_meta = g_type_from_name("GstVideoCaptionMetaAPI");
  if (caption_meta && gst_buffer_get_meta(buffer, caption_meta))
    counts->second++;
}

GST_START_TEST(test_live_video_never_waits_for_captions) {
  auto service = start_service();
  /* Live sources; ticks are short beeps every second that the VAD hears as utterances. Every
   * frame must reach the sink at its time, with or without captions. */
  std::pair<guint, guint> counts{0, 0};
  gint64 started = g_get_monotonic_time();
  std::vector<GstMessage *> messages = run_pipeline(
      "videotestsrc is-live=true num-buffers=150 ! video/x-raw,width=320,height=240,"
      "framerate=30/1 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! "
      "cccombiner name=c ! fakesink name=video sync=true signal-handoffs=true "
      "audiotestsrc is-live=true wave=ticks samplesperbuffer=320 num-buffers=250 ! "
      "audio/x-raw,rate=16000,channels=1 ! qwenasr api-key=test-key language-code=en url=" +
          service->url() +
          " vad-silence-ms=200 latency=1000 ! qwenasrcea608enc ! ccconverter ! "
          "closedcaption/x-cea-708,format=cc_data ! c.caption",
      30 * GST_SECOND, [&counts](GstElement *pipeline) {
        GstElement *video = gst_bin_get_by_name(GST_BIN(pipeline), "video");
        g_signal_connect(video, "handoff", G_CALLBACK(count_frame), &counts);
        gst_object_unref(video);
      });
  free_messages(messages);
  gint64 took_ms = (g_get_monotonic_time() - started) / 1000;
  std::printf("live: %u frames, %u with captions, %" G_GINT64_FORMAT " ms for 5 s of video\n",
              counts.first, counts.second, took_ms);
  std::fflush(stdout);
  fail_unless_equals_int(counts.first, 150);
  fail_unless(counts.second > 30, "only %u frames carried caption data", counts.second);
  /* 5 s of video, plus the pipeline latency (1 s + 1.5 s of pop-on lookahead), plus slack. */
  fail_unless(took_ms < 10000, "took %" G_GINT64_FORMAT " ms", took_ms);
}
GST_END_TEST;

GST_START_TEST(test_accented_sentences_survive_h264_in_flv_pop_on) {
  check_fixed_text("pop-on", "flvmux", ".flv");
}
GST_END_TEST;

GST_START_TEST(test_accented_sentences_survive_h264_in_flv_roll_up) {
  check_fixed_text("roll-up2", "flvmux", ".flv");
}
GST_END_TEST;

GST_START_TEST(test_accented_sentences_survive_h264_in_mp4) {
  check_fixed_text("pop-on", "mp4mux", ".mp4");
}
GST_END_TEST;

GST_START_TEST(test_accented_sentences_survive_h264_in_matroska) {
  check_fixed_text("pop-on", "matroskamux", ".mkv");
}
GST_END_TEST;

GST_START_TEST(test_cookbook_pipeline_carries_the_transcripts_in_pop_on) {
  check_local_service("pop-on");
}
GST_END_TEST;

GST_START_TEST(test_cookbook_pipeline_carries_the_transcripts_in_roll_up) {
  check_local_service("roll-up2");
}
GST_END_TEST;

static Suite *cea608_pipelines_suite(void) {
  Suite *s = suite_create("cea608 pipelines");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_accented_sentences_survive_h264_in_flv_pop_on);
  tcase_add_test(tc, test_accented_sentences_survive_h264_in_flv_roll_up);
  tcase_add_test(tc, test_accented_sentences_survive_h264_in_mp4);
  tcase_add_test(tc, test_accented_sentences_survive_h264_in_matroska);
  tcase_add_test(tc, test_cookbook_shows_the_pipeline_the_suite_runs);
  tcase_add_test(tc, test_cookbook_pipeline_carries_the_transcripts_in_pop_on);
  tcase_add_test(tc, test_cookbook_pipeline_carries_the_transcripts_in_roll_up);
  tcase_add_test(tc, test_live_video_never_waits_for_captions);
  return s;
}

GST_CHECK_MAIN(cea608_pipelines);
