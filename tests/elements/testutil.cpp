/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "testutil.h"

#include <glib/gstdio.h>

#include <cmath>
#include <unistd.h>

namespace testutil {

std::string Audio::transcript_of(const Utterance &u) const {
  size_t start = u.start_ms * rate / 1000;
  size_t end = u.end_ms * rate / 1000;
  return qwenasr::local::deterministic_transcript(samples.data() + start, end - start, rate);
}

const std::vector<Stretch> kThreeUtterances = {{600, false}, {1200, true},  {1400, false},
                                               {900, true},  {1300, false}, {1500, true},
                                               {1000, false}};

Audio make_audio(int rate, const std::vector<Stretch> &stretches) {
  Audio audio{rate, {}, {}};
  guint64 ms = 0;
  /* A tone alone repeats every 200 ms, so every deterministic word would be the same: the
   * pseudo-random noise on top makes each block's bytes, and so its word, distinct. */
  guint32 noise = 12345;
  for (const Stretch &s : stretches) {
    size_t n = static_cast<size_t>(s.ms) * rate / 1000;
    for (size_t i = 0; i < n; i++) {
      double t = static_cast<double>(audio.samples.size()) / rate;
      noise = noise * 1664525u + 1013904223u;
      gint16 value = 0;
      if (s.speech)
        value = static_cast<gint16>(8000 * std::sin(2 * M_PI * 440 * t) +
                                    static_cast<gint32>(noise >> 20) - 2048);
      audio.samples.push_back(value);
    }
    if (s.speech)
      audio.utterances.push_back({ms, ms + s.ms});
    ms += s.ms;
  }
  return audio;
}

std::unique_ptr<qwenasr::local::LocalService>
start_service(qwenasr::local::ServiceOptions options) {
  auto service = std::make_unique<qwenasr::local::LocalService>(options);
  GError *error = nullptr;
  fail_unless(service->start(&error), "local service did not start: %s",
              error ? error->message : "?");
  return service;
}

GstHarness *harness_with_bus(const std::string &description, const char *src_pad) {
  std::string problem;
  GstHarness *h = try_harness_with_bus(description, src_pad, &problem);
  fail_unless(h != nullptr, "cannot make %s: %s", description.c_str(), problem.c_str());
  return h;
}

GstHarness *try_harness_with_bus(const std::string &description, const char *src_pad,
                                 std::string *problem) {
  GError *error = nullptr;
  GstElement *element = gst_parse_launch(description.c_str(), &error);
  if (!element || error) {
    *problem = error ? error->message : "no element";
    g_clear_error(&error);
    if (element)
      gst_object_unref(element);
    return nullptr;
  }
  /* The bus goes on before the harness starts the element: errors found while connecting
   * may be posted at once. */
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(element, bus);
  gst_object_unref(bus);
  GstHarness *h = gst_harness_new_with_element(element, "sink", src_pad);
  gst_object_unref(element);
  return h;
}

void teardown_harness(GstHarness *h) {
  /* Messages left on the bus hold the element that holds the bus: flushing breaks the cycle. */
  GstBus *bus = gst_element_get_bus(h->element);
  if (bus) {
    gst_bus_set_flushing(bus, TRUE);
    gst_object_unref(bus);
  }
  gst_harness_teardown(h);
}

GstHarness *sink_harness(const std::string &url, int rate, const char *extra_properties) {
  std::string description = "qwenasrsink sync=false api-key=test-key url=" + url + " " +
                            (extra_properties ? extra_properties : "");
  GstHarness *h = harness_with_bus(description);
  /* Like a file: the harness reports a live upstream by default, and a live sink drops
   * audio rather than wait when the network falls behind. */
  gst_harness_set_live(h, FALSE);
  set_audio_caps(h, rate);
  return h;
}

void set_audio_caps(GstHarness *h, int rate) {
  gchar *caps =
      g_strdup_printf("audio/x-raw,format=S16LE,channels=1,rate=%d,layout=interleaved", rate);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
}

GstHarness *caption_harness(const std::string &url, int rate, const std::string &properties,
                            bool live) {
  GstHarness *h = harness_with_bus("qwenasr api-key=test-key url=" + url + " " + properties, "src");
  gst_harness_set_live(h, live);
  set_audio_caps(h, rate);
  return h;
}

std::vector<GstEvent *> pull_events_until_eos(GstHarness *h) {
  std::vector<GstEvent *> events;
  while (GstEvent *event = gst_harness_pull_event(h)) {
    events.push_back(event);
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS)
      return events;
  }
  fail("no EOS on the text side");
  return events;
}

GstFlowReturn push_audio(GstHarness *h, const Audio &audio, guint buffer_ms,
                         GstClockTime first_pts) {
  size_t per_buffer = static_cast<size_t>(audio.rate) * buffer_ms / 1000;
  for (size_t offset = 0; offset < audio.samples.size(); offset += per_buffer) {
    size_t n = std::min(per_buffer, audio.samples.size() - offset);
    GstBuffer *buffer = gst_buffer_new_memdup(audio.samples.data() + offset, n * 2);
    GST_BUFFER_PTS(buffer) = first_pts + gst_util_uint64_scale_int(offset, GST_SECOND, audio.rate);
    GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale_int(n, GST_SECOND, audio.rate);
    GstFlowReturn ret = gst_harness_push(h, buffer);
    if (ret != GST_FLOW_OK)
      return ret;
  }
  return GST_FLOW_OK;
}

std::string temp_path(const char *suffix) {
  gchar *name = g_strdup_printf("qwenasr-test-%d-%u%s", getpid(), g_random_int(), suffix);
  gchar *path = g_build_filename(g_get_tmp_dir(), name, nullptr);
  std::string result(path);
  g_free(name);
  g_free(path);
  return result;
}

std::string write_recording(const Audio &audio, int frames, int fps, const char *audio_encoder) {
  gchar *wav = write_wav(audio);
  std::string path = temp_path(".mkv");
  std::vector<GstMessage *> made = run_pipeline(
      "videotestsrc num-buffers=" + std::to_string(frames) +
          " ! video/x-raw,width=320,height=240,framerate=" + std::to_string(fps) +
          "/1 ! x264enc speed-preset=ultrafast ! matroskamux name=m ! filesink location=" + path +
          " filesrc location=" + wav + " ! wavparse ! audioconvert ! " + audio_encoder + " ! m.",
      60 * GST_SECOND);
  free_messages(made);
  g_unlink(wav);
  g_free(wav);
  return path;
}

gchar *write_wav(const Audio &audio) {
  gchar *path = g_build_filename(g_get_tmp_dir(), "qwenasr-test-XXXXXX.wav", nullptr);
  gint fd = g_mkstemp(path);
  fail_unless(fd >= 0, "mkstemp");
  close(fd);
  gchar *description = g_strdup_printf(
      "appsrc name=src format=time caps=audio/x-raw,format=S16LE,channels=1,rate=%d,"
      "layout=interleaved ! wavenc ! filesink location=%s",
      audio.rate, path);
  GstElement *writer = gst_parse_launch(description, nullptr);
  g_free(description);
  GstElement *src = gst_bin_get_by_name(GST_BIN(writer), "src");
  gst_element_set_state(writer, GST_STATE_PLAYING);
  GstBuffer *buffer = gst_buffer_new_memdup(audio.samples.data(), audio.samples.size() * 2);
  GST_BUFFER_PTS(buffer) = 0;
  GstFlowReturn flow = GST_FLOW_OK;
  g_signal_emit_by_name(src, "push-buffer", buffer, &flow);
  gst_buffer_unref(buffer);
  g_signal_emit_by_name(src, "end-of-stream", &flow);
  GstBus *bus = gst_element_get_bus(writer);
  GstMessage *done = gst_bus_timed_pop_filtered(
      bus, 10 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "writing the WAV failed");
  gst_message_unref(done);
  gst_element_set_state(writer, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(writer);
  return path;
}

std::vector<GstMessage *> run_pipeline(const std::string &description, GstClockTime timeout,
                                       const std::function<void(GstElement *)> &before_start) {
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline && !error, "pipeline %s: %s", description.c_str(),
              error ? error->message : "");
  if (before_start)
    before_start(pipeline);
  GstBus *bus = gst_element_get_bus(pipeline);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
              "cannot start %s", description.c_str());
  std::vector<GstMessage *> messages;
  gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout / GST_USECOND);
  for (;;) {
    gint64 left = deadline - g_get_monotonic_time();
    GstMessage *m = left > 0 ? gst_bus_timed_pop(bus, left * GST_USECOND) : nullptr;
    fail_unless(m != nullptr, "no EOS within %" GST_TIME_FORMAT ": %s", GST_TIME_ARGS(timeout),
                description.c_str());
    messages.push_back(m);
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *gerror = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error(m, &gerror, &debug);
      fail("pipeline error from %s: %s (%s)", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), gerror->message,
           debug ? debug : "");
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS)
      break;
  }
  gst_bus_set_flushing(bus, TRUE);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return messages;
}

std::vector<GstMessage *> drain_bus(GstElement *element) {
  std::vector<GstMessage *> messages;
  GstBus *bus = gst_element_get_bus(element);
  while (GstMessage *message = gst_bus_pop(bus))
    messages.push_back(message);
  gst_object_unref(bus);
  return messages;
}

void free_messages(std::vector<GstMessage *> &messages) {
  for (GstMessage *m : messages)
    gst_message_unref(m);
  messages.clear();
}

const GstStructure *element_structure(GstMessage *message, const char *name) {
  if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ELEMENT)
    return nullptr;
  const GstStructure *s = gst_message_get_structure(message);
  return gst_structure_has_name(s, name) ? s : nullptr;
}

std::vector<const GstStructure *> transcripts(const std::vector<GstMessage *> &messages,
                                              bool final) {
  std::vector<const GstStructure *> result;
  for (GstMessage *m : messages) {
    const GstStructure *s = element_structure(m, "qwenasr/transcript");
    gboolean is_final = FALSE;
    if (s && gst_structure_get_boolean(s, "final", &is_final) && bool(is_final) == final)
      result.push_back(s);
  }
  return result;
}

bool wall_clock_unreliable() {
  return g_getenv("QWENASR_TEST_WALL_CLOCK_UNRELIABLE") != nullptr;
}

void assert_time_near(GstClockTime actual, GstClockTime expected, const char *what) {
  fail_unless(GST_CLOCK_TIME_IS_VALID(actual), "%s: no time", what);
  GstClockTimeDiff diff = GST_CLOCK_DIFF(expected, actual);
  if (wall_clock_unreliable() && std::llabs(diff) > static_cast<GstClockTimeDiff>(kTolerance)) {
    g_print("%s: %" GST_TIME_FORMAT " instead of %" GST_TIME_FORMAT
            " (not judged: the wall clock is unreliable here)\n",
            what, GST_TIME_ARGS(actual), GST_TIME_ARGS(expected));
    return;
  }
  fail_unless(std::llabs(diff) <= static_cast<GstClockTimeDiff>(kTolerance),
              "%s: %" GST_TIME_FORMAT " but expected %" GST_TIME_FORMAT, what,
              GST_TIME_ARGS(actual), GST_TIME_ARGS(expected));
}

GstClockTime structure_time(const GstStructure *s, const char *field) {
  guint64 value = GST_CLOCK_TIME_NONE;
  fail_unless(gst_structure_get_uint64(s, field, &value), "no %s in %" GST_PTR_FORMAT, field, s);
  return value;
}

} // namespace testutil
