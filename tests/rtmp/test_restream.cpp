/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr-restream over real RTMP on loopback, as a livestream operator runs it:
 *
 *   ffmpeg -re -c copy (the publisher)  -->  nginx live/in  -->  qwenasr-restream  -->
 *   nginx live/out  -->  viewer (decodes every frame and notes when it arrived)
 *
 * The input is made here: recorded sentences of 2-7 s from Debian's pocketsphinx-testdata
 * (1.5 s apart) under a flat grey picture whose top rows carry the frame number as a bar
 * code, so for every output frame the viewer knows which input instant it shows, whether a
 * caption is on it (white text in the bottom third) or whether it is the slate (black). The
 * checks: no output stall over a second after start-up, a constant delay, a caption on every
 * sentence at its start and none off speech; a publisher that leaves for 5 s and comes back
 * is captioned again while the output stays on air; a refused key and a refused output end
 * the program with their exit codes. */
#include "rtmputil.h"

#include "cea608check.h"

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace testutil;

static std::string restream_path; /* argv[1], from meson */
static const std::string kData = "/usr/share/pocketsphinx/test/data";

/* ------------------------------------------------------------------------------------------
 * The input: sentences, their speech spans, and an FLV file with the bar-coded picture.
 * ---------------------------------------------------------------------------------------- */

struct Span {
  GstClockTime start, end; /* input time of the first and last loud 10 ms */
};

struct Input {
  std::string flv;
  std::vector<Span> sentences;
  GstClockTime duration = 0;
};

/* A clip decoded to 16 kHz mono S16LE. */
static std::vector<gint16> load_clip(const std::string &source) {
  std::string description = source + " ! audioconvert ! audioresample ! "
                                     "audio/x-raw,format=S16LE,rate=16000,channels=1 ! "
                                     "appsink name=sink sync=false";
  GstElement *pipeline = gst_parse_launch(description.c_str(), nullptr);
  fail_unless(pipeline != nullptr, "%s", description.c_str());
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::vector<gint16> samples;
  while (GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstMapInfo map;
    gst_buffer_map(gst_sample_get_buffer(sample), &map, GST_MAP_READ);
    const gint16 *s = reinterpret_cast<const gint16 *>(map.data);
    samples.insert(samples.end(), s, s + map.size / 2);
    gst_buffer_unmap(gst_sample_get_buffer(sample), &map);
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  fail_unless(samples.size() > 16000, "%s decoded to %u samples", source.c_str(),
              (guint)samples.size());
  return samples;
}

/* First and last 10 ms window whose RMS is over 500 (speech, not room noise). */
static Span loud_span(const std::vector<gint16> &s, GstClockTime offset) {
  const size_t window = 160;
  gint64 first = -1, last = -1;
  for (size_t i = 0; i + window <= s.size(); i += window) {
    double energy = 0;
    for (size_t j = i; j < i + window; j++)
      energy += double(s[j]) * s[j];
    if (std::sqrt(energy / window) > 500) {
      if (first < 0)
        first = i;
      last = i + window;
    }
  }
  fail_unless(first >= 0, "a clip without speech");
  return {offset + gst_util_uint64_scale_int(first, GST_SECOND, 16000),
          offset + gst_util_uint64_scale_int(last, GST_SECOND, 16000)};
}

static GstPadProbeReturn mark_frames(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  GstVideoInfo vinfo;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  fail_unless(caps && gst_video_info_from_caps(&vinfo, caps));
  gst_caps_unref(caps);
  GstBuffer *buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  GstVideoFrame frame;
  fail_unless(gst_video_frame_map(&frame, &vinfo, buffer, GST_MAP_READWRITE));
  write_marker(&frame, GST_BUFFER_PTS(buffer) / kFrameDuration);
  gst_video_frame_unmap(&frame);
  return GST_PAD_PROBE_OK;
}

/* `clips` (GStreamer source descriptions) `rounds` times, 1.5 s apart after a 1 s lead-in,
 * into an FLV file (H.264 with a 2 s GOP, AAC) as an encoder would send it. */
static Input make_input(const std::vector<std::string> &clips, int rounds, const char *name) {
  const size_t pause = 24000; /* 1.5 s */
  std::vector<gint16> audio(16000, 0);
  Input input;
  std::vector<std::vector<gint16>> loaded;
  for (const std::string &clip : clips)
    loaded.push_back(load_clip(clip));
  for (int r = 0; r < rounds; r++) {
    for (const auto &samples : loaded) {
      input.sentences.push_back(
          loud_span(samples, gst_util_uint64_scale_int(audio.size(), GST_SECOND, 16000)));
      audio.insert(audio.end(), samples.begin(), samples.end());
      audio.insert(audio.end(), pause, 0);
    }
  }
  input.duration = gst_util_uint64_scale_int(audio.size(), GST_SECOND, 16000);
  Audio wav{16000, audio, {}};
  gchar *wav_path = write_wav(wav);
  gchar *flv = g_build_filename(g_get_tmp_dir(), name, nullptr);
  input.flv = flv;
  g_free(flv);
  guint frames = input.duration / kFrameDuration;
  std::string description =
      "videotestsrc num-buffers=" + std::to_string(frames) +
      " pattern=solid-color foreground-color=0xff505050 ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! identity name=mark ! "
      "x264enc speed-preset=ultrafast key-int-max=50 bitrate=600 ! h264parse ! "
      "flvmux name=m ! filesink location=" +
      input.flv + " filesrc location=" + wav_path +
      " ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=44100,channels=2 ! "
      "avenc_aac bitrate=96000 ! aacparse ! m.";
  GError *error = nullptr;
  GstElement *writer = gst_parse_launch(description.c_str(), &error);
  fail_unless(writer && !error, "%s", error ? error->message : "");
  GstElement *mark = gst_bin_get_by_name(GST_BIN(writer), "mark");
  GstPad *pad = gst_element_get_static_pad(mark, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, mark_frames, nullptr, nullptr);
  gst_object_unref(pad);
  gst_object_unref(mark);
  gst_element_set_state(writer, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(writer);
  GstMessage *done = gst_bus_timed_pop_filtered(
      bus, 120 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(done && GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS, "writing %s failed",
              input.flv.c_str());
  gst_message_unref(done);
  gst_object_unref(bus);
  gst_element_set_state(writer, GST_STATE_NULL);
  gst_object_unref(writer);
  g_unlink(wav_path);
  g_free(wav_path);
  return input;
}

/* ------------------------------------------------------------------------------------------
 * Running the publisher and the program.
 * ---------------------------------------------------------------------------------------- */

struct Run {
  Nginx nginx;
  std::unique_ptr<qwenasr::local::LocalService> service;
  Viewer out;
  std::string log; /* the program's stderr */
  GPid restream = 0;

  explicit Run(qwenasr::local::ServiceOptions options = {}) {
    service = start_service(std::move(options));
    gchar *path = g_build_filename(g_get_tmp_dir(), "qwenasr-restream-test.log", nullptr);
    log = path;
    g_free(path);
    g_unlink(log.c_str());
  }
  ~Run() {
    if (restream > 0) {
      kill(restream, SIGKILL);
      wait_child(restream, 5 * G_USEC_PER_SEC);
    }
    stop(out.pipeline);
  }
  void start_restream(const std::vector<std::string> &extra, const std::string &out_url = "") {
    std::vector<std::string> argv = {
        restream_path,       "--size", "320x240", "--fps",       "25", "--video-bitrate", "800",
        "--health-interval", "10",     "--url",   service->url()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(nginx.url("in"));
    argv.push_back(out_url.empty() ? nginx.url("out") : out_url);
    restream = spawn(argv, log);
  }
  GPid publish(const std::string &flv) {
    return spawn({"ffmpeg", "-nostdin", "-v", "error", "-re", "-i", flv, "-c", "copy", "-f", "flv",
                  nginx.url("in")},
                 log + ".ffmpeg");
  }
  /* The program's resident memory (kB) and CPU time (s), sampled by keep_running(). */
  struct Sample {
    gint64 wall;
    guint64 rss_kb;
    double cpu_s;
  };
  std::vector<Sample> samples;
  void sample() {
    std::string status = slurp("/proc/" + std::to_string(restream) + "/status");
    std::string stat = slurp("/proc/" + std::to_string(restream) + "/stat");
    size_t at = status.find("VmRSS:");
    size_t close = stat.rfind(')');
    if (at == std::string::npos || close == std::string::npos)
      return;
    gchar **fields = g_strsplit(stat.c_str() + close + 2, " ", -1);
    /* utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name. */
    double cpu = (g_ascii_strtod(fields[11], nullptr) + g_ascii_strtod(fields[12], nullptr)) /
                 sysconf(_SC_CLK_TCK);
    g_strfreev(fields);
    samples.push_back(
        {g_get_monotonic_time(), g_ascii_strtoull(status.c_str() + at + 6, nullptr, 10), cpu});
  }
  /* Waits `seconds` of the scenario while the program must stay up. */
  void keep_running(double seconds) {
    gint64 until = g_get_monotonic_time() + gint64(seconds * G_USEC_PER_SEC);
    for (gint64 now = g_get_monotonic_time(); now < until; now = g_get_monotonic_time()) {
      fail_unless(wait_child(restream, MIN(until - now, G_USEC_PER_SEC)) == -1,
                  "qwenasr-restream exited:\n%s", slurp(log).c_str());
      sample();
    }
    if (out.pipeline)
      check_bus(out.pipeline, "viewer of live/out", nullptr, nginx);
  }
  /* SIGTERM ends it cleanly: exit 0. */
  void terminate() {
    kill(restream, SIGTERM);
    int status = wait_child(restream, 10 * G_USEC_PER_SEC);
    restream = 0;
    g_print("qwenasr-restream log:\n%s", slurp(log).c_str());
    fail_unless_equals_int(status, 0);
  }
};

/* ------------------------------------------------------------------------------------------
 * What the viewer saw.
 * ---------------------------------------------------------------------------------------- */

/* White caption text in the bottom third (the picture there is grey, the slate black). */
static bool captioned(const Frame &f) {
  guint bright = 0;
  for (guint8 y : f.region)
    bright += y > 200;
  return bright > 100;
}

/* The longest time between two output frames (any, slate included) from `from` on. */
static gint64 longest_stall(const Viewer &v, gint64 from) {
  gint64 longest = 0;
  for (size_t i = 1; i < v.arrivals.size(); i++)
    if (v.arrivals[i - 1] >= from)
      longest = MAX(longest, v.arrivals[i] - v.arrivals[i - 1]);
  return longest;
}

/* The service's VAD hears a sentence's first, quiet sounds up to ~0.35 s before the loudness
 * threshold above: a caption may start that much before the span. */
static const GstClockTime kEarly = 500 * GST_MSECOND;

struct CaptionCheck {
  std::vector<gint64> start_errors_ms; /* first captioned frame - sentence start */
  guint missing = 0, off_speech = 0, captioned_frames = 0;
};

/* Frames of one publishing session (frame numbers from 0) against its sentences. */
static CaptionCheck check_captions(const std::vector<const Frame *> &frames,
                                   const std::vector<Span> &sentences) {
  CaptionCheck c;
  std::vector<GstClockTime> captioned_at;
  for (const Frame *f : frames) {
    if (!captioned(*f))
      continue;
    GstClockTime t = f->number * kFrameDuration;
    captioned_at.push_back(t);
    c.captioned_frames++;
    bool on_speech = false;
    for (const Span &s : sentences)
      on_speech |= t + kEarly >= s.start && t <= s.end + 1500 * GST_MSECOND;
    c.off_speech += !on_speech;
  }
  std::string intervals, spans;
  for (size_t i = 0; i < captioned_at.size(); i++) {
    if (i == 0 || captioned_at[i] > captioned_at[i - 1] + 2 * kFrameDuration)
      intervals += (i ? "] [" : "[") + std::to_string(captioned_at[i] / GST_MSECOND) + "-";
    if (i + 1 == captioned_at.size() || captioned_at[i + 1] > captioned_at[i] + 2 * kFrameDuration)
      intervals += std::to_string(captioned_at[i] / GST_MSECOND);
  }
  for (const Span &s : sentences)
    spans += "[" + std::to_string(s.start / GST_MSECOND) + "-" +
             std::to_string(s.end / GST_MSECOND) + "] ";
  g_print("  sentences (ms): %s\n  captioned (ms): %s]\n", spans.c_str(), intervals.c_str());
  GstClockTime last_frame = frames.empty() ? 0 : frames.back()->number * kFrameDuration;
  for (const Span &s : sentences) {
    if (s.end + GST_SECOND > last_frame)
      break; /* not shown yet when the run ended */
    auto it = std::find_if(captioned_at.begin(), captioned_at.end(),
                           [&](GstClockTime t) { return t + kEarly >= s.start && t <= s.end; });
    if (it == captioned_at.end())
      c.missing++;
    else
      c.start_errors_ms.push_back((GstClockTimeDiff(*it) - GstClockTimeDiff(s.start)) /
                                  GST_MSECOND);
  }
  return c;
}

static std::string list(const std::vector<gint64> &v) {
  std::string s;
  for (gint64 x : v)
    s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

/* Output delay of each readable frame: its arrival minus when the publisher sent it. */
static std::vector<gint64> delays(const std::vector<const Frame *> &frames, gint64 published) {
  std::vector<gint64> d;
  for (const Frame *f : frames)
    d.push_back(f->wall - published - gint64(f->number) * (G_USEC_PER_SEC / kFps));
  return d;
}

static std::vector<const Frame *> readable(const Viewer &v, gint64 from, gint64 to) {
  std::vector<const Frame *> frames;
  for (const Frame &f : v.frames)
    if (f.wall >= from && f.wall < to)
      frames.push_back(&f);
  return frames;
}

/* One publishing of `input` through the program with `options`, watched to its end. */
struct Outcome {
  guint frames = 0;     /* readable output frames */
  gint64 stall_us = 0;  /* longest time between two output frames after the first */
  gint64 delay_us = 0;  /* median, publisher to viewer */
  gint64 spread_us = 0; /* of that delay, 1st to 99th percentile */
  CaptionCheck captions;
};

static Outcome stream_through(Run &run, const Input &input, const std::vector<std::string> &options,
                              double tail_s) {
  start_rtmp_viewer(run.out, run.nginx.url("out"));
  run.start_restream(options);
  gint64 published = g_get_monotonic_time();
  GPid publisher = run.publish(input.flv);
  run.keep_running(input.duration / 1e9 + tail_s);
  fail_unless_equals_int(wait_child(publisher, 5 * G_USEC_PER_SEC), 0);
  run.terminate();
  stop(run.out.pipeline);

  std::lock_guard<std::mutex> guard(run.out.lock);
  /* The bar code counts frames modulo 4096 (164 s): count on across the wraps. */
  gint wraps = 0, previous = -1;
  for (Frame &f : run.out.frames) {
    if (previous >= 0 && f.number + wraps < previous - 2048)
      wraps += 4096;
    f.number += wraps;
    previous = f.number;
  }
  auto frames = readable(run.out, 0, G_MAXINT64);
  fail_unless(frames.size() > 100, "only %u frames came through", (guint)frames.size());
  Outcome o;
  o.frames = frames.size();
  o.stall_us = longest_stall(run.out, frames.front()->wall);
  std::vector<gint64> d = delays(frames, published);
  o.delay_us = median(d);
  std::sort(d.begin(), d.end());
  o.spread_us = d[d.size() * 99 / 100] - d[d.size() / 100];
  o.captions = check_captions(frames, input.sentences);
  return o;
}

/* ------------------------------------------------------------------------------------------
 * Tests.
 * ---------------------------------------------------------------------------------------- */

static std::vector<std::string> sentences() {
  std::vector<std::string> clips;
  for (const char *id : {"0870", "0880", "0890"})
    clips.push_back("filesrc location=" + kData +
                    "/librivox/sense_and_sensibility_01_austen_64kb-" + id + ".wav ! wavparse");
  clips.push_back("filesrc location=" + kData +
                  "/goforward.raw ! rawaudioparse format=pcm "
                  "pcm-format=s16le sample-rate=16000 num-channels=1");
  for (const char *id : {"0920", "0930"})
    clips.push_back("filesrc location=" + kData +
                    "/librivox/sense_and_sensibility_01_austen_64kb-" + id + ".wav ! wavparse");
  return clips;
}

GST_START_TEST(test_real_speech_is_captioned_on_its_sentences_at_a_constant_delay) {
  qwenasr::local::ServiceOptions options;
  options.engine = qwenasr::local::EngineKind::PocketSphinx;
  Run run(std::move(options));
  Input input = make_input(sentences(), 3, "qwenasr-restream-speech.flv");
  g_print("input: %.1f s, %u sentences\n", input.duration / 1e9, (guint)input.sentences.size());
  /* The local recogniser, PocketSphinx, needs up to ~3 s after a sentence ends on two cores
   * busy with the rest of the run (the cloud service answers within about a second): a
   * latency above the longest sentence (6.5 s) with that margin. The run: the whole input,
   * then the output delay (latency 12 s + 1.5 s) and a little more. */
  Outcome o = stream_through(run, input, {"--language", "en", "--latency", "12000"}, 16);
  const CaptionCheck &c = o.captions;
  g_print("real speech: %u frames, longest stall %" G_GINT64_FORMAT " ms; delay publisher -> "
          "viewer median %" G_GINT64_FORMAT " ms, p1-p99 spread %" G_GINT64_FORMAT " ms\n"
          "  %u sentences, %u without a caption, %u captioned frames, %u off speech; caption "
          "start errors (ms): %s\n",
          o.frames, o.stall_us / 1000, o.delay_us / 1000, o.spread_us / 1000,
          (guint)input.sentences.size(), c.missing, c.captioned_frames, c.off_speech,
          list(c.start_errors_ms).c_str());
  fail_unless(o.frames > input.duration / kFrameDuration * 9 / 10, "%u of %u frames came through",
              o.frames, (guint)(input.duration / kFrameDuration));
  fail_unless(o.stall_us <= kMaxFreezeUs, "the output stalled for %" G_GINT64_FORMAT " ms",
              o.stall_us / 1000);
  fail_unless(o.spread_us <= 500 * 1000, "the delay varies by %" G_GINT64_FORMAT " ms",
              o.spread_us / 1000);
  fail_unless(c.start_errors_ms.size() >= input.sentences.size() - 1, "only %u sentences judged",
              (guint)c.start_errors_ms.size());
  fail_unless_equals_int(c.missing, 0);
  fail_unless_equals_int(c.off_speech, 0);
  for (gint64 e : c.start_errors_ms)
    fail_unless(e >= -GstClockTimeDiff(kEarly / GST_MSECOND) && e <= 500,
                "a caption starts %" G_GINT64_FORMAT " ms off its sentence", e);
  std::string log = slurp(run.log);
  fail_unless(log.find("came after its speech") == std::string::npos &&
                  log.find("took longer than latency") == std::string::npos,
              "late captions with the default latency:\n%s", log.c_str());
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

GST_START_TEST(test_a_publisher_that_leaves_and_returns_is_captioned_again_with_a_slate_between) {
  Run run;
  std::vector<std::string> clips = sentences();
  Input input = make_input({clips[1], clips[3], clips[5]}, 1, "qwenasr-restream-short.flv");
  start_rtmp_viewer(run.out, run.nginx.url("out"));
  run.start_restream({"--latency", "6000"});
  gint64 first_published = g_get_monotonic_time();
  GPid publisher = run.publish(input.flv);
  run.keep_running(input.duration / 1e9);
  fail_unless_equals_int(wait_child(publisher, 5 * G_USEC_PER_SEC), 0);
  gint64 left = g_get_monotonic_time();
  run.keep_running(5); /* the encoder is away for 5 s (the scenario, not a wait for a result) */
  gint64 republished = g_get_monotonic_time();
  publisher = run.publish(input.flv);
  run.keep_running(input.duration / 1e9 + 8);
  fail_unless_equals_int(wait_child(publisher, 5 * G_USEC_PER_SEC), 0);
  run.terminate();
  stop(run.out.pipeline);

  std::lock_guard<std::mutex> guard(run.out.lock);
  /* The second session's frame numbers start again from 0. */
  size_t second = 1;
  while (second < run.out.frames.size() &&
         run.out.frames[second].number >= run.out.frames[second - 1].number)
    second++;
  fail_unless(second < run.out.frames.size(), "the republished stream never came through");
  const gint64 second_from = run.out.frames[second].wall;
  auto first_frames = readable(run.out, 0, second_from);
  auto second_frames = readable(run.out, second_from, G_MAXINT64);
  gint64 stall = longest_stall(run.out, first_frames.front()->wall);
  gint64 off_air = second_from - first_frames.back()->wall;
  CaptionCheck c1 = check_captions(first_frames, input.sentences);
  CaptionCheck c2 = check_captions(second_frames, input.sentences);
  gint64 back = G_MAXINT64;
  for (const Frame *f : second_frames)
    if (captioned(*f)) {
      back = f->wall - republished;
      break;
    }
  g_print("reconnect: publisher away %.1f s; input frames shown until %.1f s after it left, "
          "again %.1f s after it returned; %.1f s of slate between; longest stall over the whole "
          "run %" G_GINT64_FORMAT " ms (%u slate frames); first caption %.1f s after the "
          "republish; captions: first session %u/%u sentences, second %u/%u, off speech %u+%u; "
          "delay before %" G_GINT64_FORMAT " ms\n",
          (republished - left) / 1e6, (first_frames.back()->wall - left) / 1e6,
          (second_from - republished) / 1e6, off_air / 1e6, stall / 1000, run.out.unreadable,
          back / 1e6, (guint)c1.start_errors_ms.size(), (guint)input.sentences.size(),
          (guint)c2.start_errors_ms.size(), (guint)input.sentences.size(), c1.off_speech,
          c2.off_speech, median(delays(first_frames, first_published)) / 1000);
  fail_unless(stall <= kMaxFreezeUs, "the output stalled for %" G_GINT64_FORMAT " ms",
              stall / 1000);
  fail_unless(run.out.unreadable >= 25, "no slate while the publisher was away");
  fail_unless_equals_int(c1.missing, 0);
  /* nginx starts a re-attached player at a key frame: the first second or two of the
   * republished stream may not reach the captioner, so its first sentence may go uncaptioned;
   * every later one must be. */
  fail_unless(c2.missing <= 1 && c2.start_errors_ms.size() >= input.sentences.size() - 1,
              "second session: %u sentences without a caption", c2.missing);
  fail_unless_equals_int(c1.off_speech + c2.off_speech, 0);
  /* Re-attached within a couple of seconds, then the output delay (6 s + 1.5 s). */
  fail_unless(back <= 15 * G_USEC_PER_SEC, "captions came back %.1f s after the republish",
              back / 1e6);
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

/* A publisher whose stream stops and then goes on where it stopped, without catching up (an
 * encoder that stalled; `ffmpeg -re` would catch up): the same FLV, paced by the clock in an
 * in-process pipeline that is paused and resumed. */
static GstElement *start_pausable_publisher(const std::string &flv, const std::string &url) {
  std::string description = "filesrc location=" + flv +
                            " ! flvdemux name=d d.video ! queue ! h264parse ! clocksync ! m. "
                            "flvmux name=m streamable=true ! rtmp2sink location=" +
                            url + " d.audio ! queue ! aacparse ! clocksync ! m.";
  GError *error = nullptr;
  GstElement *publisher = gst_parse_launch(description.c_str(), &error);
  fail_unless(publisher && !error, "%s", error ? error->message : "");
  gst_element_set_state(publisher, GST_STATE_PLAYING);
  return publisher;
}

GST_START_TEST(test_a_publisher_that_stalls_without_catching_up_is_attached_again_on_time) {
  qwenasr::local::ServiceOptions options;
  options.engine = qwenasr::local::EngineKind::PocketSphinx;
  Run run(std::move(options));
  Input input = make_input(sentences(), 2, "qwenasr-restream-stall.flv");
  start_rtmp_viewer(run.out, run.nginx.url("out"));
  run.start_restream({"--language", "en", "--latency", "12000"});
  gint64 published = g_get_monotonic_time();
  GstElement *publisher = start_pausable_publisher(input.flv, run.nginx.url("in"));
  run.keep_running(22); /* on air from ~14 s */
  /* The scenario: the encoder stalls for 8 s and then sends on from where it was. */
  gint64 paused = g_get_monotonic_time();
  gst_element_set_state(publisher, GST_STATE_PAUSED);
  run.keep_running(8);
  gst_element_set_state(publisher, GST_STATE_PLAYING);
  const gint64 stalled = g_get_monotonic_time() - paused;
  GstBus *bus = gst_element_get_bus(publisher);
  GstMessage *end =
      gst_bus_timed_pop_filtered(bus, (input.duration / GST_SECOND + 30) * GST_SECOND,
                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(end && GST_MESSAGE_TYPE(end) == GST_MESSAGE_EOS, "the publisher failed");
  gst_message_unref(end);
  gst_object_unref(bus);
  gst_element_set_state(publisher, GST_STATE_NULL);
  gst_object_unref(publisher);
  run.keep_running(16); /* the output delay (12 s + 1.5 s) and a little more */
  run.terminate();
  stop(run.out.pipeline);

  std::lock_guard<std::mutex> guard(run.out.lock);
  /* Before the stall frames leave a constant delay after the publisher sent them; the frames
   * it sent after the stall went out `stalled` later. */
  auto before = readable(run.out, 0, paused + 12 * G_USEC_PER_SEC);
  gint64 end_wall = run.out.frames.back().wall;
  auto last = readable(run.out, end_wall - 10 * G_USEC_PER_SEC, G_MAXINT64);
  fail_unless(before.size() > 100 && last.size() > 100, "%u frames before, %u at the end",
              (guint)before.size(), (guint)last.size());
  gint64 delay_before = median(delays(before, published));
  gint64 delay_after = median(delays(last, published + stalled));
  /* Captions of the sentences that the re-attached input airs whole. */
  auto after =
      readable(run.out, paused + stalled + 3 * G_USEC_PER_SEC + 14 * G_USEC_PER_SEC, G_MAXINT64);
  std::vector<Span> later;
  for (const Span &span : input.sentences)
    if (!after.empty() && span.start >= after.front()->number * kFrameDuration + GST_SECOND)
      later.push_back(span);
  CaptionCheck c = check_captions(after, later);
  /* Off speech is judged against every sentence: the first frames may end an earlier one. */
  c.off_speech = check_captions(after, input.sentences).off_speech;
  gint64 stall = longest_stall(run.out, before.front()->wall);
  g_print("publisher stall: %.1f s without catching up; delay publisher -> viewer %" G_GINT64_FORMAT
          " ms before, %" G_GINT64_FORMAT " ms at the end; longest output stall %" G_GINT64_FORMAT
          " ms; after re-attaching %u/%u sentences captioned, %u captioned frames off speech\n",
          stalled / 1e6, delay_before / 1000, delay_after / 1000, stall / 1000,
          (guint)c.start_errors_ms.size(), (guint)later.size(), c.off_speech);
  fail_unless(std::llabs(delay_after - delay_before) <= G_USEC_PER_SEC,
              "the delay after the stall is %" G_GINT64_FORMAT " ms, %" G_GINT64_FORMAT
              " ms before it",
              delay_after / 1000, delay_before / 1000);
  std::string log = slurp(run.log);
  fail_unless(log.find("attaching again to get back on time") != std::string::npos,
              "the stalled input was not attached again:\n%s", log.c_str());
  fail_unless(stall <= kMaxFreezeUs, "the output stalled for %" G_GINT64_FORMAT " ms",
              stall / 1000);
  fail_unless(later.size() >= 3, "only %u sentences after re-attaching", (guint)later.size());
  fail_unless_equals_int(c.missing, 0);
  fail_unless_equals_int(c.off_speech, 0);
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

GST_START_TEST(test_a_refused_key_or_output_ends_the_program_with_its_exit_code) {
  Run run;
  std::vector<std::string> clips = sentences();
  Input input = make_input({clips[1]}, 1, "qwenasr-restream-key.flv");
  /* Nothing listens on the output's port: rtmp2sink cannot connect. */
  run.start_restream({}, "rtmp://127.0.0.1:9/live/out");
  int status = wait_child(run.restream, 30 * G_USEC_PER_SEC);
  run.restream = 0;
  g_print("output refused: exit %d\n%s", status, slurp(run.log).c_str());
  fail_unless_equals_int(status, 4);

  /* A key the service refuses: known once the audio arrives and the session is attempted. */
  g_setenv("DASHSCOPE_API_KEY", "wrong-key", TRUE);
  run.start_restream({});
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  GPid publisher = run.publish(input.flv);
  status = wait_child(run.restream, 30 * G_USEC_PER_SEC);
  run.restream = 0;
  kill(publisher, SIGTERM);
  wait_child(publisher, 5 * G_USEC_PER_SEC);
  g_print("key refused: exit %d\n%s", status, slurp(run.log).c_str());
  fail_unless_equals_int(status, 3);
  fail_unless(slurp(run.log).find("rejected the API key") != std::string::npos);
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

/* --captions cea608: the captions travel as CEA-608 inside the H.264 of the output, which a
 * viewer's decoder (ffmpeg's) reads back: every sentence, each character once. */
GST_START_TEST(test_embedded_cea608_captions_reach_a_viewers_decoder) {
  Run run;
  std::vector<std::string> clips = sentences();
  Input input = make_input({clips[1], clips[3], clips[5]}, 1, "qwenasr-restream-cc.flv");
  std::string recording = temp_path(".flv");
  GPid recorder = spawn({"ffmpeg", "-nostdin", "-v", "error", "-y", "-rw_timeout", "5000000", "-i",
                         run.nginx.url("out"), "-c", "copy", "-t", "60", recording},
                        run.log + ".recorder");
  run.start_restream({"--captions", "cea608", "--latency", "6000"});
  GPid publisher = run.publish(input.flv);
  run.keep_running(input.duration / 1e9 + 9);
  fail_unless_equals_int(wait_child(publisher, 5 * G_USEC_PER_SEC), 0);
  run.terminate();
  /* ffmpeg does not notice a played RTMP stream ending; -rw_timeout ends it 5 s after the last
   * data (FLV is written as it goes, so the file is complete either way). */
  if (wait_child(recorder, 20 * G_USEC_PER_SEC) == -1) {
    kill(recorder, SIGKILL);
    wait_child(recorder, 5 * G_USEC_PER_SEC);
  }
  std::vector<cea608check::Cue> cues = cea608check::ffmpeg_cues(recording);
  std::string all;
  for (const auto &cue : cues)
    all += cue.text + " ";
  /* Three sentences, at least one cue each; the made-up words alternate consonants and vowels,
   * so a character shown twice (a repeated frame's pairs) would show as a double letter. */
  fail_unless(cues.size() >= input.sentences.size(), "%u cues for %u sentences", (guint)cues.size(),
              (guint)input.sentences.size());
  for (size_t i = 1; i < all.size(); i++)
    fail_if(g_ascii_isalpha(all[i]) && g_ascii_tolower(all[i]) == g_ascii_tolower(all[i - 1]),
            "a doubled character in the decoded captions: %s", all.c_str());
  g_unlink(recording.c_str());
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

/* Not a test of the suite: the benchmark `restream_soak` (tests/bench/run.sh) runs this for
 * QWENASR_RESTREAM_SOAK_S seconds of input (default 1200) and writes its figures as JSON to
 * QWENASR_RESTREAM_SOAK_JSON: memory flat, delay constant, no stall, CPU per stream. */
GST_START_TEST(test_restream_soak) {
  const char *seconds_env = g_getenv("QWENASR_RESTREAM_SOAK_S");
  double seconds = seconds_env ? g_ascii_strtod(seconds_env, nullptr) : 1200;
  Run run;
  std::vector<std::string> clips = sentences();
  Input input = make_input(clips, MAX(1, int(seconds / 37)), "qwenasr-restream-soak.flv");
  Outcome o = stream_through(run, input, {"--health-interval", "60"}, 14);
  const CaptionCheck &c = o.captions;
  /* Memory after two minutes (warmed up) against the end. */
  guint64 rss_warm = 0, rss_end = run.samples.back().rss_kb, rss_max = 0;
  for (const auto &s : run.samples) {
    if (s.wall - run.samples.front().wall <= 120 * G_USEC_PER_SEC)
      rss_warm = s.rss_kb;
    rss_max = MAX(rss_max, s.rss_kb);
  }
  double cpu = run.samples.back().cpu_s;
  double audio_h = input.duration / 1e9 / 3600;
  gchar *json = g_strdup_printf(
      "{\"input_s\":%.1f,\"sentences\":%u,\"captions_missing\":%u,\"captions_off_speech\":%u,"
      "\"longest_stall_ms\":%" G_GINT64_FORMAT ",\"delay_median_ms\":%" G_GINT64_FORMAT
      ",\"delay_spread_ms\":%" G_GINT64_FORMAT ",\"rss_kb_at_2min\":%" G_GUINT64_FORMAT
      ",\"rss_kb_end\":%" G_GUINT64_FORMAT ",\"rss_kb_max\":%" G_GUINT64_FORMAT
      ",\"cpu_s\":%.1f,\"cpu_s_per_stream_hour\":%.0f}",
      input.duration / 1e9, (guint)input.sentences.size(), c.missing, c.off_speech,
      o.stall_us / 1000, o.delay_us / 1000, o.spread_us / 1000, rss_warm, rss_end, rss_max, cpu,
      cpu / audio_h);
  g_print("restream_soak: %s\n", json);
  if (const char *path = g_getenv("QWENASR_RESTREAM_SOAK_JSON")) {
    gchar *dir = g_path_get_dirname(path);
    g_mkdir_with_parents(dir, 0755); /* run alone, not by tests/bench/run.sh */
    g_free(dir);
    fail_unless(g_file_set_contents(path, json, -1, nullptr), "cannot write %s", path);
  }
  g_free(json);
  fail_unless(o.stall_us <= kMaxFreezeUs, "stall of %" G_GINT64_FORMAT " ms", o.stall_us / 1000);
  fail_unless(o.spread_us <= 500 * 1000, "the delay varies by %" G_GINT64_FORMAT " ms",
              o.spread_us / 1000);
  fail_unless(rss_end <= rss_warm + 10 * 1024,
              "memory grew from %" G_GUINT64_FORMAT " kB to %" G_GUINT64_FORMAT " kB", rss_warm,
              rss_end);
  g_unlink(input.flv.c_str());
}
GST_END_TEST;

static Suite *restream_suite(void) {
  Suite *s = suite_create("restream");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 300);
  if (g_getenv("QWENASR_RESTREAM_SOAK_S")) {
    tcase_set_timeout(tc, 7200);
    tcase_add_test(tc, test_restream_soak);
    return s;
  }
  tcase_add_test(tc, test_a_refused_key_or_output_ends_the_program_with_its_exit_code);
  tcase_add_test(tc, test_embedded_cea608_captions_reach_a_viewers_decoder);
  tcase_add_test(tc,
                 test_a_publisher_that_leaves_and_returns_is_captioned_again_with_a_slate_between);
  tcase_add_test(tc, test_real_speech_is_captioned_on_its_sentences_at_a_constant_delay);
  tcase_add_test(tc, test_a_publisher_that_stalls_without_catching_up_is_attached_again_on_time);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  if (argc != 2) {
    g_printerr("usage: test_restream PATH-TO-qwenasr-restream\n");
    return 2;
  }
  restream_path = argv[1];
  g_setenv("DASHSCOPE_API_KEY", "test-key", TRUE);
  std::string why;
  if (!have_nginx_rtmp(&why)) {
    g_print("SKIP: %s\n", why.c_str());
    return 77;
  }
  gchar *ffmpeg = g_find_program_in_path("ffmpeg");
  bool have_data = g_file_test((kData + "/goforward.raw").c_str(), G_FILE_TEST_EXISTS);
  if (!ffmpeg || !have_data) {
    g_print("SKIP: ffmpeg or pocketsphinx-testdata is not installed\n");
    g_free(ffmpeg);
    return 77;
  }
  g_free(ffmpeg);
  return gst_check_run_suite(restream_suite(), "restream", __FILE__);
}
