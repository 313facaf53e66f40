/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Captions embedded in H.264 (the cookbook's RTMP pipeline, written to FLV, MP4 and Matroska
 * files), checked by independent decoders: Debian's ffmpeg turns them into an SRT of what a
 * viewer's decoder shows, and flvdemux ! avdec_h264 ! ccextractor gives the byte pairs back. */
#include "testutil.h"

#include <glib/gstdio.h>

#include <cstdio>
#include <map>

using namespace testutil;

static std::string temp_path(const char *suffix) {
  gchar *name = g_strdup_printf("qwenasr-cc-%d-%u%s", getpid(), g_random_int(), suffix);
  gchar *path = g_build_filename(g_get_tmp_dir(), name, nullptr);
  std::string result(path);
  g_free(name);
  g_free(path);
  return result;
}

static std::string replace_all(std::string s, const std::string &from, const std::string &to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

struct Cue {
  GstClockTime start, end;
  std::string text; /* lines joined by one space, markup and positioning removed */
};

/* What ffmpeg's closed caption decoder made of the file, as SRT cues. */
static std::vector<Cue> ffmpeg_cues(const std::string &file) {
  std::string srt = temp_path(".srt");
  std::string graph = "movie=" + file + "[out0+subcc]";
  const gchar *argv[] = {"ffmpeg", "-nostdin",  "-loglevel", "error",       "-y",
                         "-f",     "lavfi",     "-i",        graph.c_str(), "-map",
                         "0:s",    srt.c_str(), nullptr};
  gint status = 0;
  gchar *err = nullptr;
  GError *error = nullptr;
  fail_unless(g_spawn_sync(nullptr, const_cast<gchar **>(argv), nullptr, G_SPAWN_SEARCH_PATH,
                           nullptr, nullptr, nullptr, &err, &status, &error),
              "cannot run ffmpeg (scripts/install-deps.sh installs it): %s",
              error ? error->message : "");
  fail_unless(g_spawn_check_wait_status(status, nullptr), "ffmpeg failed: %s", err);
  g_free(err);
  gchar *contents = nullptr;
  fail_unless(g_file_get_contents(srt.c_str(), &contents, nullptr, nullptr), "no SRT");
  std::string text(contents);
  g_free(contents);
  g_unlink(srt.c_str());
  std::printf("ffmpeg-decoded SRT of %s:\n%s\n", file.c_str(), text.c_str());
  std::fflush(stdout);

  std::regex timing(R"((\d+):(\d\d):(\d\d),(\d\d\d) --> (\d+):(\d\d):(\d\d),(\d\d\d)\n)");
  auto to_time = [](const std::smatch &m, int i) {
    return (std::stoull(m[i]) * 3600 + std::stoull(m[i + 1]) * 60 + std::stoull(m[i + 2])) *
               GST_SECOND +
           std::stoull(m[i + 3]) * GST_MSECOND;
  };
  std::vector<Cue> cues;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), timing);
       it != std::sregex_iterator(); ++it) {
    size_t body = it->position(0) + it->length(0);
    size_t stop = text.find("\n\n", body);
    std::string raw =
        text.substr(body, stop == std::string::npos ? std::string::npos : stop - body);
    /* Tags (<font>, {\an7}), hard spaces, line breaks and typographic apostrophes go. */
    raw = std::regex_replace(raw, std::regex(R"(<[^>]*>|\{[^}]*\})"), "");
    for (const char *space : {"\\h", "\xC2\xA0", "\r", "\n"})
      raw = replace_all(raw, space, " ");
    raw = replace_all(raw, "\xE2\x80\x99", "'");
    raw = std::regex_replace(raw, std::regex(" +"), " ");
    raw = std::regex_replace(raw, std::regex("^ | $"), "");
    cues.push_back({to_time(*it, 1), to_time(*it, 5), raw});
  }
  return cues;
}

/* Frame index at 30 fps of a PTS (FLV keeps milliseconds only). */
static guint64 frame_index(GstClockTime pts) {
  return gst_util_uint64_scale_round(pts, 30, GST_SECOND);
}

/* The byte pairs carried by the video frames of an FLV file, by frame index, through
 * GStreamer's decoders (frames whose captions are padding only carry none). */
static std::map<guint64, guint16> extracted_pairs(const std::string &flv) {
  std::string description =
      "filesrc location=" + flv +
      " ! flvdemux name=d d.video ! queue ! h264parse ! avdec_h264 ! ccextractor name=x "
      "x.src ! fakesink sync=false async=false x.caption ! queue ! ccconverter ! "
      "closedcaption/x-cea-608,format=raw ! appsink name=out sync=false async=false";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline && !error, "%s", error ? error->message : "");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::map<guint64, guint16> pairs;
  for (;;) {
    GstSample *sample = nullptr;
    g_signal_emit_by_name(sink, "try-pull-sample", 20 * GST_SECOND, &sample);
    if (!sample)
      break;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    guint8 data[2];
    if (gst_buffer_extract(buffer, 0, data, 2) == 2)
      pairs[frame_index(GST_BUFFER_PTS(buffer))] = static_cast<guint16>(data[0] << 8 | data[1]);
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return pairs;
}

static GstPadProbeReturn record_pair(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto pairs = static_cast<std::map<guint64, guint16> *>(data);
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  guint8 bytes[2];
  if (gst_buffer_extract(buffer, 0, bytes, 2) == 2)
    (*pairs)[frame_index(GST_BUFFER_PTS(buffer))] = static_cast<guint16>(bytes[0] << 8 | bytes[1]);
  return GST_PAD_PROBE_OK;
}

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
      run_pipeline(description, 90 * GST_SECOND, [&sent](GstElement *pipeline) {
        GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline), "enc");
        GstPad *src = gst_element_get_static_pad(enc, "src");
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, record_pair, &sent, nullptr);
        gst_object_unref(src);
        gst_object_unref(enc);
      });
  free_messages(messages);
  return sent;
}

struct Sentence {
  std::string text;
  GstClockTime start, end; /* when it is spoken */
};

/* Each sentence is on screen (in the first cue that holds all of it) no earlier than 0.1 s
 * before it is spoken and no later than 2.5 s after it ends. Prints the delays. */
static void assert_every_sentence_on_screen_in_time(const std::vector<Cue> &cues,
                                                    const std::vector<Sentence> &sentences,
                                                    const std::string &what) {
  for (const Sentence &s : sentences) {
    const Cue *cue = nullptr;
    for (const Cue &c : cues) {
      if (c.text.find(s.text) != std::string::npos) {
        cue = &c;
        break;
      }
    }
    fail_unless(cue != nullptr, "%s: \"%s\" is in no cue", what.c_str(), s.text.c_str());
    gint64 delay_ms = (static_cast<gint64>(cue->start) - static_cast<gint64>(s.start)) / 1000000;
    std::printf("%s: \"%s\" spoken %.3f-%.3f s, on screen at %.3f s (%+" G_GINT64_FORMAT
                " ms after its start)\n",
                what.c_str(), s.text.c_str(), s.start / 1e9, s.end / 1e9, cue->start / 1e9,
                delay_ms);
    fail_unless(cue->start + 100 * GST_MSECOND >= s.start, "%s: \"%s\" shows too early",
                what.c_str(), s.text.c_str());
    fail_unless(cue->start <= s.end + 2500 * GST_MSECOND, "%s: \"%s\" shows too late", what.c_str(),
                s.text.c_str());
  }
  std::fflush(stdout);
}

/* The decoders give back exactly the pairs sent: every pair a frame carries is the one sent
 * for that frame, and every caption pair sent while the video ran is carried. */
static void assert_pairs_survive(const std::map<guint64, guint16> &sent,
                                 const std::map<guint64, guint16> &extracted, guint64 frames) {
  fail_unless(extracted.size() > 20, "only %zu pairs extracted", extracted.size());
  for (const auto &[frame, pair] : extracted) {
    auto it = sent.find(frame);
    fail_unless(it != sent.end(), "frame %" G_GUINT64_FORMAT " carries a pair never sent", frame);
    fail_unless(it->second == pair, "frame %" G_GUINT64_FORMAT ": sent %04x, got back %04x", frame,
                it->second, pair);
  }
  guint captions = 0;
  for (const auto &[frame, pair] : sent) {
    if (frame >= frames || pair == 0x8080)
      continue;
    captions++;
    fail_unless(extracted.count(frame), "frame %" G_GUINT64_FORMAT ": %04x sent, not carried",
                frame, pair);
  }
  std::printf("%u caption pairs sent, all carried back exactly (%zu frames with caption data)\n",
              captions, extracted.size());
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

static std::string substitute(std::string text, const std::map<std::string, std::string> &vars) {
  for (const auto &[name, value] : vars)
    text = replace_all(text, name, value);
  return replace_all(text, "\\\n", " ");
}

GST_START_TEST(test_cookbook_shows_the_pipeline_the_suite_runs) {
  /* Next to this file: ../../docs/cookbook.md. */
  gchar *dir = g_path_get_dirname(__FILE__);
  gchar *path = g_build_filename(dir, "..", "..", "docs", "cookbook.md", nullptr);
  gchar *contents = nullptr;
  fail_unless(g_file_get_contents(path, &contents, nullptr, nullptr), "cannot read %s", path);
  std::string cookbook(contents);
  std::string shown = std::string("gst-launch-1.0 ") + kCookbookPipeline;
  fail_unless(cookbook.find(shown) != std::string::npos,
              "docs/cookbook.md lacks the pipeline the suite runs:\n%s", shown.c_str());
  g_free(contents);
  g_free(path);
  g_free(dir);
}
GST_END_TEST;

/* Speech from the local service in a recording (picture and lossless sound, so that the
 * service hears the samples the transcripts are predicted from) through
 * the cookbook's pipeline: each utterance's transcript is a sentence. */
static void check_local_service(const char *mode) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string talk = temp_path(".mkv");
  std::vector<GstMessage *> made = run_pipeline(
      "videotestsrc num-buffers=270 ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc speed-preset=ultrafast ! matroskamux name=m ! filesink location=" +
          talk + " filesrc location=" + wav + " ! wavparse ! audioconvert ! flacenc ! m.",
      60 * GST_SECOND);
  free_messages(made);
  std::string out = temp_path(".flv");
  std::map<guint64, guint16> sent;
  std::string description = substitute(
      kCookbookPipeline, {{"$IN", talk}, {"$OUT", out}, {"$URL", service->url()}, {"$MODE", mode}});
  /* As the cookbook: the key comes from the environment. */
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  std::vector<GstMessage *> messages =
      run_pipeline(description, 90 * GST_SECOND, [&sent](GstElement *pipeline) {
        GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline), "qwenasrcea608enc0");
        GstPad *src = gst_element_get_static_pad(enc, "src");
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, record_pair, &sent, nullptr);
        gst_object_unref(src);
        gst_object_unref(enc);
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
  g_unlink(wav);
  g_free(wav);
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
