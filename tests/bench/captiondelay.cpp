/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Speech-to-screen delay of qwenasr's captions, pop-on against roll-up: Debian's recorded
 * speech (the LibriVox clips of pocketsphinx-testdata) fed in real time from a live source to
 * the local service's PocketSphinx engine; prints the element's caption-delay percentiles per
 * mode and writes a two-line frame of each as a PNG (textoverlay), with its text. */
#include <gst/gst.h>

#include "localservice.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

const int kRate = 16000;
const char *kClips = "/usr/share/pocketsphinx/test/data/librivox";

/* The samples of a 16 kHz mono WAV file, decoded by GStreamer. */
std::vector<gint16> read_wav(const std::string &path) {
  std::vector<gint16> samples;
  gchar *description =
      g_strdup_printf("filesrc location=\"%s\" ! wavparse ! audioconvert ! audioresample ! "
                      "audio/x-raw,format=S16LE,rate=%d,channels=1 ! appsink name=out sync=false",
                      path.c_str(), kRate);
  GstElement *pipeline = gst_parse_launch(description, nullptr);
  g_free(description);
  if (!pipeline)
    return samples;
  GstElement *out = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstSample *sample;
  while (g_signal_emit_by_name(out, "pull-sample", &sample), sample) {
    GstMapInfo map;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    const gint16 *s = reinterpret_cast<const gint16 *>(map.data);
    samples.insert(samples.end(), s, s + map.size / 2);
    gst_buffer_unmap(buffer, &map);
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(out);
  gst_object_unref(pipeline);
  return samples;
}

/* The clips in name order, each followed by 1.5 s of silence, `loops` times. */
std::vector<gint16> recording(int loops) {
  std::vector<std::string> names;
  if (GDir *dir = g_dir_open(kClips, 0, nullptr)) {
    while (const char *name = g_dir_read_name(dir)) {
      if (g_str_has_suffix(name, ".wav"))
        names.push_back(name);
    }
    g_dir_close(dir);
  }
  std::sort(names.begin(), names.end());
  std::vector<gint16> once;
  for (const std::string &name : names) {
    std::vector<gint16> clip = read_wav(std::string(kClips) + "/" + name);
    once.insert(once.end(), clip.begin(), clip.end());
    once.insert(once.end(), kRate * 3 / 2, 0);
  }
  std::vector<gint16> all;
  for (int i = 0; i < loops && !once.empty(); i++)
    all.insert(all.end(), once.begin(), once.end());
  return all;
}

struct Result {
  gint64 p50 = 0, p95 = 0, max = 0;
  guint captions = 0;
  std::string two_lines; /* the last caption of two lines */
  GstClockTime two_lines_pts = GST_CLOCK_TIME_NONE;
};

/* Feeds `audio` in 20 ms buffers at real-time pace from a live appsrc into qwenasr in `mode`
 * and collects its captions and stats. */
Result run(const std::string &url, const char *mode, const std::vector<gint16> &audio) {
  Result r;
  gchar *description = g_strdup_printf(
      "appsrc name=src is-live=true format=time "
      "caps=audio/x-raw,format=S16LE,rate=%d,channels=1,layout=interleaved ! "
      "qwenasr name=asr api-key=bench url=%s caption-mode=%s ! appsink name=text sync=false",
      kRate, url.c_str(), mode);
  GstElement *pipeline = gst_parse_launch(description, nullptr);
  g_free(description);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstElement *text = gst_bin_get_by_name(GST_BIN(pipeline), "text");
  GstElement *asr = gst_bin_get_by_name(GST_BIN(pipeline), "asr");
  g_object_set(text, "emit-signals", FALSE, "max-buffers", 0, nullptr);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const gsize step = kRate / 50;
  gint64 start = g_get_monotonic_time();
  for (gsize i = 0; i < audio.size(); i += step) {
    gsize n = MIN(step, audio.size() - i);
    GstBuffer *buffer = gst_buffer_new_memdup(audio.data() + i, n * 2);
    GST_BUFFER_PTS(buffer) = gst_util_uint64_scale(i, GST_SECOND, kRate);
    GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(n, GST_SECOND, kRate);
    GstFlowReturn flow;
    g_signal_emit_by_name(src, "push-buffer", buffer, &flow);
    gst_buffer_unref(buffer);
    gint64 due = start + static_cast<gint64>(gst_util_uint64_scale(i + n, G_USEC_PER_SEC, kRate));
    gint64 now = g_get_monotonic_time();
    if (due > now)
      g_usleep(due - now); /* real-time pacing of the simulated live source */
  }
  GstFlowReturn flow;
  g_signal_emit_by_name(src, "end-of-stream", &flow);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *m = gst_bus_timed_pop_filtered(
      bus, 120 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (m)
    gst_message_unref(m);
  gst_object_unref(bus);
  GstSample *sample;
  while (g_signal_emit_by_name(text, "try-pull-sample", 0, &sample), sample) {
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    GstMapInfo map;
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    std::string caption(reinterpret_cast<const char *>(map.data), map.size);
    gst_buffer_unmap(buffer, &map);
    r.captions++;
    if (caption.find('\n') != std::string::npos) {
      r.two_lines = caption;
      r.two_lines_pts = GST_BUFFER_PTS(buffer);
    }
    gst_sample_unref(sample);
  }
  GstStructure *stats = nullptr;
  g_object_get(asr, "stats", &stats, nullptr);
  if (stats) {
    gst_structure_get_int64(stats, "caption-delay-p50-ms", &r.p50);
    gst_structure_get_int64(stats, "caption-delay-p95-ms", &r.p95);
    gst_structure_get_int64(stats, "caption-delay-max-ms", &r.max);
    gst_structure_free(stats);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(asr);
  gst_object_unref(text);
  gst_object_unref(src);
  gst_object_unref(pipeline);
  return r;
}

/* `caption` drawn by textoverlay (as burned in: centred, or left-aligned as roll-up is) on a
 * 640x360 test picture, saved as PNG. */
bool render(const std::string &caption, const char *align, const std::string &path) {
  gchar *description = g_strdup_printf(
      "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=640,height=360 ! "
      "textoverlay name=o valignment=bottom halignment=%s line-alignment=%s "
      "font-desc=\"Sans Bold 18\" ! videoconvert ! pngenc ! filesink location=\"%s\"",
      align, align, path.c_str());
  GstElement *pipeline = gst_parse_launch(description, nullptr);
  g_free(description);
  if (!pipeline)
    return false;
  GstElement *o = gst_bin_get_by_name(GST_BIN(pipeline), "o");
  gchar *escaped = g_markup_escape_text(caption.c_str(), -1); /* the property is markup */
  g_object_set(o, "text", escaped, nullptr);
  g_free(escaped);
  gst_object_unref(o);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *m = gst_bus_timed_pop_filtered(
      bus, 30 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (m)
    gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return ok;
}

} // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  setvbuf(stdout, nullptr, _IOLBF, 0); /* each figure as soon as it is known */
  std::string out_dir = argc > 1 ? argv[1] : g_get_tmp_dir();
  int loops = argc > 2 ? atoi(argv[2]) : 2;
  std::vector<gint16> audio = recording(loops);
  if (audio.empty()) {
    g_printerr("caption delay: no recorded speech (install pocketsphinx-testdata)\n");
    return 77; /* skipped */
  }
  qwenasr::local::ServiceOptions options;
  options.api_key = "";
  options.engine = qwenasr::local::EngineKind::PocketSphinx;
  qwenasr::local::LocalService service(options);
  GError *error = nullptr;
  if (!service.start(&error)) {
    g_printerr("caption delay: no local service: %s\n", error ? error->message : "?");
    g_clear_error(&error);
    return 1;
  }
  g_mkdir_with_parents(out_dir.c_str(), 0755);
  printf("recorded speech: %.1f s (%d loops of the LibriVox clips), live, real time, "
         "PocketSphinx engine\n",
         audio.size() / static_cast<double>(kRate), loops);
  for (const char *mode : {"pop-on", "roll-up"}) {
    Result r = run(service.url(), mode, audio);
    printf("%-8s speech-to-screen delay p50 %" G_GINT64_FORMAT " ms, p95 %" G_GINT64_FORMAT
           " ms, max %" G_GINT64_FORMAT " ms (%u caption buffers)\n",
           mode, r.p50, r.p95, r.max, r.captions);
    if (r.two_lines.empty())
      continue;
    std::string png = out_dir + "/caption-" + mode + ".png";
    std::string shown = r.two_lines;
    std::replace(shown.begin(), shown.end(), '\n', '|');
    printf("%-8s a two-line frame at %" GST_TIME_FORMAT ": \"%s\" -> %s%s\n", mode,
           GST_TIME_ARGS(r.two_lines_pts), shown.c_str(), png.c_str(),
           render(r.two_lines, strcmp(mode, "roll-up") == 0 ? "left" : "center", png)
               ? ""
               : " (not rendered)");
  }
  service.stop();
  return 0;
}
