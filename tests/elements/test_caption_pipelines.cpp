/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Captions as textoverlay draws them: transcript characters that are markup elsewhere are
 * drawn as themselves. A pipeline suite (pango and fontconfig keep allocations valgrind
 * reports). */
#include "testutil.h"

#include <glib/gstdio.h>

using namespace testutil;

/* A frame of the video that reached the sink named "v", at `pts`. */
struct Frame {
  GstClockTime pts;
  std::vector<guint8> pixels;
};

static void keep_frame(GstElement *, GstBuffer *buffer, GstPad *, gpointer data) {
  auto *frame = static_cast<Frame *>(data);
  if (GST_BUFFER_PTS(buffer) != frame->pts)
    return;
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_READ);
  frame->pixels.assign(map.data, map.data + map.size);
  gst_buffer_unmap(buffer, &map);
}

static std::function<void(GstElement *)> keep(Frame *frame,
                                              std::function<void(GstElement *)> also = nullptr) {
  return [frame, also](GstElement *pipeline) {
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "v");
    g_signal_connect(sink, "handoff", G_CALLBACK(keep_frame), frame);
    gst_object_unref(sink);
    if (also)
      also(pipeline);
  };
}

static const char *kVideo = "videotestsrc pattern=black num-buffers=20 ! "
                            "video/x-raw,format=BGRx,width=800,height=120,framerate=10/1 ! ";
static const char *kOverlay = "textoverlay name=o font-desc=\"Sans 14\" valignment=top "
                              "halignment=left wrap-mode=none ! fakesink name=v "
                              "signal-handoffs=true sync=false";

GST_START_TEST(test_markup_characters_are_drawn_literally_by_textoverlay) {
  /* The service appends the string to its transcript. */
  const std::string markup = " if a < b && c > d then --> <b>bold</b>";
  qwenasr::local::ServiceOptions options;
  options.faults.transcript_raw_suffix = markup;
  auto service = start_service(options);
  Audio audio = make_audio(16000, {{200, false}, {400, true}, {1400, false}});
  gchar *wav = write_wav(audio);
  Frame drawn{GST_SECOND, {}};
  std::string format;
  std::vector<GstMessage *> messages =
      run_pipeline(std::string(kVideo) + kOverlay + " filesrc location=" + wav +
                       " ! wavparse ! qwenasr name=asr api-key=test-key max-line-length=200 url=" +
                       service->url() + " ! o.text_sink",
                   60 * GST_SECOND, keep(&drawn));
  auto finals = transcripts(messages, true);
  fail_unless_equals_int(finals.size(), 1);
  std::string transcript = gst_structure_get_string(finals[0], "text");
  free_messages(messages);
  fail_unless(transcript.size() > markup.size() &&
                  transcript.compare(transcript.size() - markup.size(), markup.size(), markup) == 0,
              "transcript %s", transcript.c_str());
  fail_unless_equals_int(drawn.pixels.size(), 800 * 120 * 4);

  /* The same line drawn from plain text: textoverlay's own text, escaped for its markup
   * parser, is the transcript as characters. */
  Frame literal{GST_SECOND, {}};
  gchar *escaped = g_markup_escape_text(transcript.c_str(), -1);
  messages = run_pipeline(std::string(kVideo) + kOverlay, 30 * GST_SECOND,
                          keep(&literal, [escaped](GstElement *pipeline) {
                            GstElement *o = gst_bin_get_by_name(GST_BIN(pipeline), "o");
                            g_object_set(o, "text", escaped, nullptr);
                            gst_object_unref(o);
                          }));
  free_messages(messages);
  g_free(escaped);
  /* And the transcript read as markup (what a verbatim writer would cause): different. */
  Frame as_markup{GST_SECOND, {}};
  std::string wrong = transcript.substr(0, transcript.size() - markup.size()) + " <b>bold</b>";
  messages = run_pipeline(std::string(kVideo) + kOverlay, 30 * GST_SECOND,
                          keep(&as_markup, [&wrong](GstElement *pipeline) {
                            GstElement *o = gst_bin_get_by_name(GST_BIN(pipeline), "o");
                            g_object_set(o, "text", wrong.c_str(), nullptr);
                            gst_object_unref(o);
                          }));
  free_messages(messages);

  guint lit = 0;
  for (guint8 p : drawn.pixels)
    lit += p != 0;
  fail_unless(lit > 1000, "nothing drawn (%u pixels lit)", lit);
  fail_unless(drawn.pixels == literal.pixels, "the caption is not drawn as its characters");
  fail_unless(drawn.pixels != as_markup.pixels, "the check cannot tell markup from text");
  g_unlink(wav);
  g_free(wav);
}
GST_END_TEST;

static Suite *caption_pipelines_suite(void) {
  Suite *s = suite_create("caption_pipelines");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_markup_characters_are_drawn_literally_by_textoverlay);
  return s;
}

GST_CHECK_MAIN(caption_pipelines);
