/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pipelines the docs show, run against the local service: SRT and WebVTT files, a
 * subtitle track muxed and demuxed back, captions burned into a recording, and a live
 * textoverlay pipeline that must never stall. */
#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <cmath>

using namespace testutil;

static std::string read_file(const std::string &path) {
  gchar *contents = nullptr;
  gsize length = 0;
  fail_unless(g_file_get_contents(path.c_str(), &contents, &length, nullptr), "cannot read %s",
              path.c_str());
  std::string result(contents, length);
  g_free(contents);
  return result;
}

struct Cue {
  GstClockTime start, end;
  std::string text;
};

/* Cues of an SRT ("00:00:01,234 --> ...") or WebVTT ("00:00:01.234 --> ...") file. */
static std::vector<Cue> parse_cues(const std::string &text) {
  std::regex timing(
      R"((\d+):(\d\d):(\d\d)[,.](\d\d\d) --> (\d+):(\d\d):(\d\d)[,.](\d\d\d)[^\n]*\n)");
  std::vector<Cue> cues;
  auto to_time = [](const std::smatch &m, int i) {
    return (std::stoull(m[i]) * 3600 + std::stoull(m[i + 1]) * 60 + std::stoull(m[i + 2])) *
               GST_SECOND +
           std::stoull(m[i + 3]) * GST_MSECOND;
  };
  for (auto it = std::sregex_iterator(text.begin(), text.end(), timing);
       it != std::sregex_iterator(); ++it) {
    const std::smatch &m = *it;
    size_t body = m.position(0) + m.length(0);
    size_t stop = text.find("\n\n", body);
    std::string cue_text =
        text.substr(body, stop == std::string::npos ? std::string::npos : stop - body);
    while (!cue_text.empty() && (cue_text.back() == '\n' || cue_text.back() == '\r'))
      cue_text.pop_back();
    cues.push_back({to_time(m, 1), to_time(m, 5), cue_text});
  }
  return cues;
}

static void assert_cues_match(const std::vector<Cue> &cues, const Audio &audio) {
  fail_unless_equals_int(cues.size(), audio.utterances.size());
  for (gsize i = 0; i < cues.size(); i++) {
    std::string expected = audio.transcript_of(audio.utterances[i]);
    /* Laid out in lines of at most 42 characters: the words, in order, across the lines. */
    std::string text = cues[i].text;
    std::replace(text.begin(), text.end(), '\n', ' ');
    fail_unless_equals_string(text.c_str(), expected.c_str());
    fail_unless(text.size() <= 42 || cues[i].text.find('\n') != std::string::npos,
                "a long caption on one line");
    /* Captions stay up for at least min-duration (1 s by default) so they can be read. */
    guint64 start_ms = audio.utterances[i].start_ms;
    guint64 end_ms = MAX(audio.utterances[i].end_ms, start_ms + 1000);
    assert_time_near(cues[i].start, start_ms * GST_MSECOND, "cue start");
    assert_time_near(cues[i].end, end_ms * GST_MSECOND, "cue end");
  }
}

/* A queue long enough for the text side to catch up: a caption exists only once its
 * utterance has ended, so branches that are muxed with it must hold that much. */
static const char *kLongQueue =
    "queue max-size-time=60000000000 max-size-bytes=0 max-size-buffers=0";

/* The caption branch of every pipeline below, as the docs write it. */
static std::string captioner(const std::string &url) {
  return "audioconvert ! audioresample ! qwenasr api-key=test-key language-code=en url=" + url;
}

static GstPadProbeReturn record_format(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    *static_cast<std::string *>(data) =
        gst_structure_get_string(gst_caps_get_structure(caps, 0), "format");
  }
  return GST_PAD_PROBE_OK;
}

/* The text format qwenasr (named asr) negotiates in the pipeline `before_start` is given. */
static std::function<void(GstElement *)> watch_format(std::string *format) {
  return [format](GstElement *pipeline) {
    GstElement *asr = gst_bin_get_by_name(GST_BIN(pipeline), "asr");
    GstPad *pad = gst_element_get_static_pad(asr, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, record_format, format, nullptr);
    gst_object_unref(pad);
    gst_object_unref(asr);
  };
}

GST_START_TEST(test_srt_file_holds_one_cue_per_utterance_at_the_right_times) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string srt = temp_path(".srt");
  std::string format;
  std::vector<GstMessage *> messages =
      run_pipeline(std::string("filesrc location=") + wav + " ! decodebin ! " +
                       captioner(service->url()) + " name=asr ! srtenc ! filesink location=" + srt,
                   30 * GST_SECOND, watch_format(&format));
  free_messages(messages);
  /* SRT has no escapes: the transcript goes in as it is. */
  fail_unless_equals_string(format.c_str(), "utf8");
  std::string text = read_file(srt);
  std::vector<Cue> cues = parse_cues(text);
  assert_cues_match(cues, audio);
  fail_unless(text.rfind("1\n", 0) == 0, "SRT must start with cue number 1:\n%s", text.c_str());
  g_unlink(srt.c_str());
  g_unlink(wav);
  g_free(wav);
}
GST_END_TEST;

GST_START_TEST(test_webvtt_file_holds_one_cue_per_utterance_at_the_right_times) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string vtt = temp_path(".vtt");
  std::string format;
  std::vector<GstMessage *> messages = run_pipeline(
      std::string("filesrc location=") + wav + " ! decodebin ! " + captioner(service->url()) +
          " name=asr ! queue ! webvttenc ! filesink location=" + vtt,
      30 * GST_SECOND, watch_format(&format));
  free_messages(messages);
  /* webvttenc (1.22) writes the text verbatim into the cue: it gets escaped markup, so '<',
   * '&' and "-->" in a transcript stay text. */
  fail_unless_equals_string(format.c_str(), "pango-markup");
  std::string text = read_file(vtt);
  fail_unless(text.rfind("WEBVTT", 0) == 0, "no WEBVTT header");
  assert_cues_match(parse_cues(text), audio);
  g_unlink(vtt.c_str());
  g_unlink(wav);
  g_free(wav);
}
GST_END_TEST;

/* Reads the subtitle track of a file back through decodebin-free demuxing. */
static std::vector<Cue> demux_subtitles(const std::string &path, const char *demuxer) {
  std::string description =
      "filesrc location=" + path + " ! " + demuxer + " ! text/x-raw ! appsink name=out sync=false";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline && !error, "%s", error ? error->message : "");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::vector<Cue> cues;
  for (;;) {
    GstSample *sample = nullptr;
    g_signal_emit_by_name(sink, "try-pull-sample", 10 * GST_SECOND, &sample);
    if (!sample)
      break;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    std::string text(reinterpret_cast<const char *>(map.data), map.size);
    gst_buffer_unmap(buffer, &map);
    /* qtdemux (tx3g) keeps a length prefix out of the text; strip trailing NULs. */
    while (!text.empty() && text.back() == '\0')
      text.pop_back();
    /* Stream time, not PTS: qtdemux expresses a leading empty edit through the segment. */
    const GstSegment *segment = gst_sample_get_segment(sample);
    GstClockTime start =
        gst_segment_to_stream_time(segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
    if (!text.empty())
      cues.push_back({start, start + GST_BUFFER_DURATION(buffer), text});
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return cues;
}

static void check_muxed_round_trip(const char *muxer, const char *demuxer, const char *suffix) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string out = temp_path(suffix);
  /* Audio and captions in one file, as a recording would keep them. */
  std::vector<GstMessage *> messages =
      run_pipeline(std::string("filesrc location=") + wav + " ! decodebin ! tee name=t " + muxer +
                       " name=m ! filesink location=" + out + " t. ! " + kLongQueue +
                       " ! audioconvert ! opusenc ! m. " + "t. ! queue ! " +
                       captioner(service->url()) + " ! m.subtitle_0",
                   60 * GST_SECOND);
  free_messages(messages);
  std::vector<Cue> cues = demux_subtitles(out, demuxer);
  assert_cues_match(cues, audio);
  g_unlink(out.c_str());
  g_unlink(wav);
  g_free(wav);
}

GST_START_TEST(test_matroska_subtitle_track_demuxes_back_to_the_captions) {
  check_muxed_round_trip("matroskamux", "matroskademux", ".mkv");
}
GST_END_TEST;

GST_START_TEST(test_mp4_subtitle_track_demuxes_back_to_the_captions) {
  check_muxed_round_trip("mp4mux", "qtdemux", ".mp4");
}
GST_END_TEST;

GST_START_TEST(test_captions_burned_into_a_recording) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  /* A recording with picture and sound, as a user would have it. */
  std::string talk = write_recording(audio, 200, 25, "opusenc");
  std::string captioned = temp_path(".mp4");
  std::vector<GstMessage *> messages =
      run_pipeline("filesrc location=" + talk +
                       " ! decodebin name=d "
                       "d. ! " +
                       std::string(kLongQueue) +
                       " ! videoconvert ! textoverlay name=o ! videoconvert ! "
                       "x264enc speed-preset=ultrafast ! mp4mux name=m ! filesink location=" +
                       captioned + " d. ! queue ! " + captioner(service->url()) + " ! o.text_sink",
                   60 * GST_SECOND);
  fail_unless_equals_int(transcripts(messages, true).size(), audio.utterances.size());
  free_messages(messages);
  GStatBuf st;
  fail_unless(g_stat(captioned.c_str(), &st) == 0 && st.st_size > 10000, "no captioned video");
  g_unlink(captioned.c_str());
  g_unlink(talk.c_str());
}
GST_END_TEST;

static GstPadProbeReturn record_language(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_TAG) {
    GstTagList *tags;
    gst_event_parse_tag(event, &tags);
    gchar *code = nullptr;
    if (gst_tag_list_get_string(tags, GST_TAG_LANGUAGE_CODE, &code))
      *static_cast<std::string *>(data) = code;
    g_free(code);
  }
  return GST_PAD_PROBE_OK;
}

GST_START_TEST(test_matroska_subtitle_track_is_labelled_zh_for_chinese) {
  auto service = start_service();
  Audio audio = make_audio(16000, kThreeUtterances);
  gchar *wav = write_wav(audio);
  std::string out = temp_path(".mkv");
  std::vector<GstMessage *> messages =
      run_pipeline(std::string("filesrc location=") + wav +
                       " ! decodebin ! audioconvert ! audioresample ! qwenasr api-key=test-key "
                       "language-code=zh url=" +
                       service->url() + " ! matroskamux ! filesink location=" + out,
                   60 * GST_SECOND);
  free_messages(messages);
  /* The demuxer reads the track's language (ISO 639-2 in the file) back as a tag. */
  std::string language;
  messages = run_pipeline("filesrc location=" + out +
                              " ! matroskademux ! text/x-raw ! fakesink name=out sync=false",
                          30 * GST_SECOND, [&language](GstElement *pipeline) {
                            GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
                            GstPad *pad = gst_element_get_static_pad(sink, "sink");
                            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                                              record_language, &language, nullptr);
                            gst_object_unref(pad);
                            gst_object_unref(sink);
                          });
  free_messages(messages);
  fail_unless_equals_string(language.c_str(), "zh");
  g_unlink(out.c_str());
  g_unlink(wav);
  g_free(wav);
}
GST_END_TEST;

static void count_frame(GstElement *, GstBuffer *, GstPad *, gpointer data) {
  (*static_cast<guint *>(data))++;
}

GST_START_TEST(test_live_textoverlay_pipeline_runs_to_the_end_without_stalling) {
  auto service = start_service();
  /* Live sources; ticks are short beeps every second, which the VAD hears as utterances. The
   * video must flow at its rate the whole time even though captions come later. */
  guint frames = 0;
  std::vector<GstMessage *> messages =
      run_pipeline("videotestsrc is-live=true num-buffers=75 ! video/x-raw,width=320,height=240,"
                   "framerate=25/1 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! "
                   "textoverlay name=o ! fakesink name=video sync=true signal-handoffs=true "
                   "audiotestsrc is-live=true wave=ticks samplesperbuffer=320 num-buffers=150 ! "
                   "audio/x-raw,rate=16000,channels=1 ! " +
                       captioner(service->url()) + " vad-silence-ms=200 latency=1000 ! o.text_sink",
                   30 * GST_SECOND, [&frames](GstElement *pipeline) {
                     GstElement *video = gst_bin_get_by_name(GST_BIN(pipeline), "video");
                     g_signal_connect(video, "handoff", G_CALLBACK(count_frame), &frames);
                     gst_object_unref(video);
                   });
  fail_unless(transcripts(messages, true).size() >= 2, "too few captions from the ticks");
  /* Every frame reached the sink: textoverlay never held the video back for text. */
  fail_unless_equals_int(frames, 75);
  free_messages(messages);
}
GST_END_TEST;

static Suite *pipelines_suite(void) {
  Suite *s = suite_create("pipelines");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_srt_file_holds_one_cue_per_utterance_at_the_right_times);
  tcase_add_test(tc, test_webvtt_file_holds_one_cue_per_utterance_at_the_right_times);
  tcase_add_test(tc, test_matroska_subtitle_track_demuxes_back_to_the_captions);
  tcase_add_test(tc, test_mp4_subtitle_track_demuxes_back_to_the_captions);
  tcase_add_test(tc, test_matroska_subtitle_track_is_labelled_zh_for_chinese);
  tcase_add_test(tc, test_captions_burned_into_a_recording);
  tcase_add_test(tc, test_live_textoverlay_pipeline_runs_to_the_end_without_stalling);
  return s;
}

GST_CHECK_MAIN(pipelines);
