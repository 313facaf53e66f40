/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr-restream: captions a live RTMP stream and publishes it again, staying on air while
 * the publisher comes and goes.
 *
 * Two pipelines meet through the `inter` elements (gst-plugins-bad):
 *
 *   input  (one per publisher connection, rebuilt when it ends):
 *     rtmp2src ! flvdemux, video through textoverlay (captions burned in) to intervideosink,
 *     audio to interaudiosink and into qwenasr, whose captions go to textoverlay
 *   output (for the whole run, live):
 *     intervideosrc (the last frame, then black: the slate) ! textoverlay (status) ! x264enc
 *     interaudiosrc (silence when there is no input) ! avenc_aac, both ! flvmux ! rtmp2sink
 *
 * rtmp2src is not a live source, so by itself the input pipeline would hold its video at
 * textoverlay while each utterance waits for its transcript and let it go in bursts. The inter
 * sinks instead render at running time + ts-offset (latency plus a margin), so the output gets
 * a constant delay, whatever moment the input started in, and the holds vanish inside it. An
 * input that falls behind its own timestamps for good (its publisher stalled and went on without
 * catching up) would eat that margin: it is attached again, which starts a fresh timeline.
 *
 * Exit status: 0 after SIGINT/SIGTERM; 2 for bad usage; 3 when DASHSCOPE_API_KEY is not set
 * or the service refuses the key or the settings (retrying cannot help); 4 when the output fails
 * (RTMP server refused or lost); 1 for anything else. Progress and health go to stderr. */
#include <gst/gst.h>
#include <gst/video/video.h>

#include <glib-unix.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

enum ExitStatus {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitService = 3,
  kExitOutput = 4
};

/* The time between the input's loss being noticed and its pipeline being rebuilt grows from
 * one second to this. */
const guint kMaxRetryDelayS = 5;
/* The output shows the last input frame this long, then the black slate. */
const GstClockTime kSlateAfter = 500 * GST_MSECOND;
/* Added to `latency` for the output delay: decoding, textoverlay and hand-over. */
const guint kDelayMarginMs = 1500;
/* An input whose data comes this much later against its own timestamps than it did at its
 * best, for this long, is re-attached: its publisher stalled and went on without catching up
 * (a burst that catches up is over within a second or two), and every later frame would eat
 * that much of the margin the output delay leaves for captions. */
const gint64 kMaxBehindUs = 2 * G_USEC_PER_SEC;
const gint64 kBehindForUs = 3 * G_USEC_PER_SEC;

struct Options {
  gchar *language = nullptr;
  gchar *url = nullptr;
  gint latency_ms = 10000;
  gint vad_silence_ms = 0; /* 0: the element's default */
  gchar *size = nullptr;
  gint width = 1280, height = 720;
  gint fps = 30;
  gint video_kbps = 2500;
  gint health_s = 60;
  gint idle_timeout_s = 10;
  gchar *captions = nullptr;    /* "burn-in" (default) or "cea608" */
  gchar *cea608_mode = nullptr; /* qwenasrcea608enc mode, default pop-on */
  bool embedded() const { return captions && g_str_equal(captions, "cea608"); }
};

/* Where the current input is: waiting for a publisher, buffering the caption delay after its
 * first frame, or on air. */
enum class InputState { Waiting, Buffering, OnAir };

/* All of it is used on the main loop only, except the atomics (streaming threads). */
struct Restream {
  Options opt;
  std::string in, out;
  GMainLoop *loop = nullptr;
  GstElement *output = nullptr;
  GstElement *status = nullptr; /* the output's status textoverlay */
  GstElement *input = nullptr;  /* the current input pipeline */
  /* The previous input after its publisher left: it still airs what it had received (the
   * caption delay's worth) while `input` already waits for the publisher's return. */
  GstElement *draining = nullptr;
  guint drain_source = 0;
  /* of `input`; what probes of older inputs (still airing their tail) report is ignored */
  std::atomic<guint> generation{0};
  InputState state = InputState::Waiting;
  int exit_status = kExitOk;
  bool stopping = false;
  guint retry_source = 0;
  guint retry_delay_s = 1;
  guint attaches = 0;
  std::atomic<guint64> captions{0};
  std::atomic<guint64> frames{0}; /* of the current input, at the output sink */
  /* monotonic µs at which the current input's frames started reaching the output sink (they
   * go on air the output delay later); 0 before */
  std::atomic<gint64> first_frame_us{0};
  /* How late the current input's audio arrives against its timestamps (µs; clock time minus
   * base time minus running time, as decoded): the latest, written by its streaming thread
   * (G_MININT64 before the first); the least seen and since when it has been more than
   * kMaxBehindUs above that, on the main loop. */
  std::atomic<gint64> input_lag_us{G_MININT64};
  gint64 least_lag_us = G_MAXINT64;
  gint64 behind_since = 0;
  guint64 captions_at_health = 0;
  gint64 last_health = 0;

  int delay_ms() const { return opt.latency_ms + (int)kDelayMarginMs; }
};

void say(const char *format, ...) G_GNUC_PRINTF(1, 2);
void say(const char *format, ...) {
  GDateTime *now = g_date_time_new_now_local();
  gchar *stamp = g_date_time_format(now, "%H:%M:%S");
  va_list args;
  va_start(args, format);
  gchar *text = g_strdup_vprintf(format, args);
  va_end(args);
  g_printerr("[%s] qwenasr-restream: %s\n", stamp, text);
  g_free(text);
  g_free(stamp);
  g_date_time_unref(now);
}

std::string quoted(const std::string &value) {
  gchar *escaped = g_strescape(value.c_str(), nullptr);
  std::string result = std::string("\"") + escaped + "\"";
  g_free(escaped);
  return result;
}

std::string video_caps(const Options &o) {
  return "video/x-raw,format=I420,width=" + std::to_string(o.width) +
         ",height=" + std::to_string(o.height) + ",framerate=" + std::to_string(o.fps) +
         "/1,pixel-aspect-ratio=1/1";
}
const char *kAudioCaps = "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved";
const char *kUnbounded = "queue max-size-time=0 max-size-buffers=0 max-size-bytes=0";

std::string output_description(const Restream &r) {
  std::string channel = "qwenasr-restream-" + std::to_string(getpid());
  return "intervideosrc name=vsrc channel=" + channel + " timeout=" + std::to_string(kSlateAfter) +
         " ! " + video_caps(r.opt) +
         " ! textoverlay name=status valignment=center halignment=center "
         "font-desc=\"Sans 20\" text=\"\" ! videoconvert ! video/x-raw,format=I420 ! "
         "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=" +
         std::to_string(2 * r.opt.fps) + " bitrate=" + std::to_string(r.opt.video_kbps) +
         " ! h264parse ! queue ! flvmux name=m streamable=true ! rtmp2sink name=out location=" +
         quoted(r.out) + " interaudiosrc channel=" + channel + " ! " + kAudioCaps +
         " ! audioconvert ! avenc_aac bitrate=128000 ! aacparse ! queue ! m.";
}

std::string input_description(const Restream &r) {
  std::string channel = "qwenasr-restream-" + std::to_string(getpid());
  std::string offset = std::to_string((r.opt.latency_ms + kDelayMarginMs) * GST_MSECOND);
  std::string asr = "qwenasr name=asr latency=" + std::to_string(r.opt.latency_ms);
  if (r.opt.language)
    asr += " language-code=" + quoted(r.opt.language);
  if (r.opt.url)
    asr += " url=" + quoted(r.opt.url);
  if (r.opt.vad_silence_ms > 0)
    asr += " vad-silence-ms=" + std::to_string(r.opt.vad_silence_ms);
  /* Burned in: textoverlay, the text a twenty-second of the picture height. Embedded:
   * CEA-608 (CC1) as CEA-708 cc_data on each frame, which x264enc writes as SEI. */
  std::string captions, text_sink;
  if (r.opt.embedded()) {
    captions = "cccombiner name=o";
    text_sink =
        "qwenasrcea608enc mode=" + std::string(r.opt.cea608_mode ? r.opt.cea608_mode : "pop-on") +
        " ! closedcaption/x-cea-608,framerate=" + std::to_string(r.opt.fps) +
        "/1 ! ccconverter ! closedcaption/x-cea-708,format=cc_data ! o.caption";
  } else {
    captions = "textoverlay name=o valignment=bottom wrap-mode=word auto-resize=false "
               "font-desc=\"Sans Bold " +
               std::to_string(MAX(12, r.opt.height / 22)) + "px\"";
    text_sink = "o.text_sink";
  }
  return "rtmp2src name=source location=" + quoted(r.in) +
         " idle-timeout=" + std::to_string(r.opt.idle_timeout_s) + " ! flvdemux name=d d.video ! " +
         kUnbounded + " ! h264parse ! avdec_h264 ! videoconvert ! videoscale ! videorate ! " +
         video_caps(r.opt) + " ! " + captions +
         " ! intervideosink name=vsink max-lateness=-1 show-preroll-frame=false channel=" +
         channel + " ts-offset=" + offset + " d.audio ! " + kUnbounded +
         " ! aacparse ! avdec_aac ! audioconvert ! audioresample ! tee name=a a. ! " + kUnbounded +
         " ! audioconvert ! audioresample ! " + kAudioCaps +
         " ! interaudiosink channel=" + channel + " ts-offset=" + offset + " a. ! " + kUnbounded +
         " ! audioconvert ! audioresample ! " + asr + " ! " + text_sink;
}

/* intervideosrc repeats the last frame when the next is not there yet: a repeat must not
 * carry its CEA-608 pairs again, or a decoder prints its characters twice. A repeat shares the
 * frame's memory. */
GstPadProbeReturn drop_repeated_captions(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstMemory **last = static_cast<GstMemory **>(data);
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  GstMemory *memory = gst_buffer_n_memory(buffer) > 0 ? gst_buffer_peek_memory(buffer, 0) : nullptr;
  if (memory && memory == *last && gst_buffer_get_video_caption_meta(buffer)) {
    buffer = gst_buffer_make_writable(buffer);
    GST_PAD_PROBE_INFO_DATA(info) = buffer;
    while (GstVideoCaptionMeta *meta = gst_buffer_get_video_caption_meta(buffer))
      gst_buffer_remove_meta(buffer, &meta->meta);
  }
  *last = memory; /* compared, never dereferenced */
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn count_caption(GstPad *, GstPadProbeInfo *, gpointer data) {
  static_cast<Restream *>(data)->captions.fetch_add(1);
  return GST_PAD_PROBE_OK;
}

/* A publisher counts as connected after this many frames (a player attached between two
 * publishers may get a stray frame or two first). */
const guint64 kFramesForConnected = 10;

/* What a probe of one input pipeline reports to. */
struct InputProbe {
  Restream *r;
  guint generation;
};

/* Decoded audio reaching the tee, which never waits (unbounded queues follow): how late it
 * comes against the running time its timestamp gives it. */
GstPadProbeReturn measure_lag(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *probe = static_cast<InputProbe *>(data);
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  GstElement *element = GST_PAD_PARENT(pad);
  GstEvent *event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
  GstClock *clock = gst_element_get_clock(element);
  if (event && clock && probe->generation == probe->r->generation &&
      GST_BUFFER_PTS_IS_VALID(buffer)) {
    const GstSegment *segment;
    gst_event_parse_segment(event, &segment);
    GstClockTime running =
        gst_segment_to_running_time(segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
    if (GST_CLOCK_TIME_IS_VALID(running)) {
      GstClockTimeDiff lag =
          GST_CLOCK_DIFF(gst_element_get_base_time(element) + running, gst_clock_get_time(clock));
      probe->r->input_lag_us = lag / 1000;
    }
  }
  if (clock)
    gst_object_unref(clock);
  if (event)
    gst_event_unref(event);
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn note_first_frame(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *probe = static_cast<InputProbe *>(data);
  Restream *r = probe->r;
  if (probe->generation == r->generation && r->frames.fetch_add(1) + 1 == kFramesForConnected)
    r->first_frame_us = g_get_monotonic_time();
  return GST_PAD_PROBE_OK;
}

gboolean publisher_left(gpointer data);

/* EOS leaving rtmp2src: the publisher is gone, now, not once the delayed tail has aired. */
GstPadProbeReturn watch_source(GstPad *, GstPadProbeInfo *info, gpointer data) {
  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
    g_idle_add(publisher_left, new InputProbe(*static_cast<InputProbe *>(data)));
  return GST_PAD_PROBE_OK;
}

void add_probe(GstElement *bin, const char *element, const char *pad, GstPadProbeType type,
               GstPadProbeCallback callback, gpointer data, GDestroyNotify destroy = nullptr) {
  GstElement *e = gst_bin_get_by_name(GST_BIN(bin), element);
  GstPad *p = gst_element_get_static_pad(e, pad);
  gst_pad_add_probe(p, type, callback, data, destroy);
  gst_object_unref(p);
  gst_object_unref(e);
}

void set_status(Restream &r, const char *text) {
  g_object_set(r.status, "text", text, nullptr);
}

void quit(Restream &r, int status) {
  if (r.exit_status == kExitOk)
    r.exit_status = status;
  g_main_loop_quit(r.loop);
}

gboolean on_input_message(GstBus *bus, GstMessage *message, gpointer data);
gboolean attach_input(gpointer data);

void destroy_pipeline(GstElement *&pipeline) {
  if (!pipeline)
    return;
  gst_bus_remove_watch(GST_ELEMENT_BUS(pipeline));
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  pipeline = nullptr;
}

gboolean end_drain(gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  r.drain_source = 0;
  destroy_pipeline(r.draining);
  if (r.state != InputState::OnAir) {
    say("slate on air, captions paused: waiting for the publisher");
    set_status(r, "Captions paused: waiting for the source");
  }
  return G_SOURCE_REMOVE;
}

void schedule_attach(Restream &r, guint delay_s) {
  if (!r.stopping && r.retry_source == 0)
    r.retry_source = g_timeout_add_seconds(delay_s, attach_input, &r);
}

/* The input failed: what it had received is lost; slate on air, and try again after a
 * growing delay. */
void input_lost(Restream &r, const char *why) {
  destroy_pipeline(r.input);
  if (r.state == InputState::OnAir)
    say("input lost (%s): slate on air, captions paused", why);
  else
    say("input not available (%s); retrying in %u s", why, r.retry_delay_s);
  r.state = InputState::Waiting;
  set_status(r, "Captions paused: waiting for the source");
  schedule_attach(r, r.retry_delay_s);
  r.retry_delay_s = MIN(r.retry_delay_s * 2, kMaxRetryDelayS);
}

/* The current input goes on airing what it has received for `drain_ms` while a new one is
 * attached after `attach_s`. */
void retire_input(Restream &r, guint drain_ms, guint attach_s) {
  if (r.drain_source)
    g_source_remove(r.drain_source);
  destroy_pipeline(r.draining);
  r.draining = r.input;
  r.input = nullptr;
  r.drain_source = g_timeout_add(drain_ms, end_drain, &r);
  r.state = InputState::Waiting;
  r.retry_delay_s = 1;
  schedule_attach(r, attach_s);
}

gboolean publisher_left(gpointer data) {
  InputProbe *note = static_cast<InputProbe *>(data);
  Restream &r = *note->r;
  bool current = note->generation == r.generation && r.input;
  delete note;
  if (!current || r.stopping)
    return G_SOURCE_REMOVE;
  say("publisher left: airing the last %d s received, then the slate; waiting for it to return",
      r.delay_ms() / 1000);
  /* nginx keeps a new player waiting for the next publisher, once it has finished with the
   * last one (a player attached at once may get its tail) */
  retire_input(r, r.delay_ms() + 500, 1);
  return G_SOURCE_REMOVE;
}

/* Once a second, on air: an input that has fallen behind its own timestamps for good is
 * attached again, which starts its timeline afresh with the whole margin. The old one airs
 * until the new one's first frames are due. */
void check_input_lag(Restream &r, gint64 now) {
  gint64 lag = r.input_lag_us;
  if (!r.input || lag == G_MININT64)
    return;
  r.least_lag_us = MIN(r.least_lag_us, lag);
  gint64 behind = lag - r.least_lag_us;
  if (behind <= kMaxBehindUs || r.state != InputState::OnAir) {
    r.behind_since = 0;
    return;
  }
  if (r.behind_since == 0)
    r.behind_since = now;
  if (now - r.behind_since < kBehindForUs)
    return;
  say("input is %.1f s behind its timestamps (the publisher stalled and went on without "
      "catching up): attaching again to get back on time",
      behind / 1e6);
  retire_input(r, r.delay_ms(), 0);
}

/* An ERROR from the current input: fatal (exit 3) when the service refused the key or the
 * settings, otherwise the input is re-attached. */
void input_error(Restream &r, GstMessage *message) {
  GError *error = nullptr;
  gst_message_parse_error(message, &error, nullptr);
  bool from_asr = g_str_equal(GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), "asr");
  bool fatal = from_asr && error->domain == GST_RESOURCE_ERROR &&
               (error->code == GST_RESOURCE_ERROR_NOT_AUTHORIZED ||
                error->code == GST_RESOURCE_ERROR_SETTINGS);
  std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + error->message;
  g_clear_error(&error);
  if (fatal) {
    say("speech service: %s", text.c_str());
    destroy_pipeline(r.input);
    quit(r, kExitService);
  } else {
    input_lost(r, text.c_str());
  }
}

gboolean attach_input(gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  r.retry_source = 0;
  GError *error = nullptr;
  std::string description = input_description(r);
  r.input = gst_parse_launch(description.c_str(), &error);
  if (!r.input || error) {
    say("cannot build the input pipeline: %s (is the qwenasr plugin installed, or "
        "GST_PLUGIN_PATH set?)",
        error ? error->message : "unknown error");
    g_clear_error(&error);
    if (r.input)
      gst_object_unref(r.input);
    r.input = nullptr;
    quit(r, kExitFailure);
    return G_SOURCE_REMOVE;
  }
  r.generation++;
  r.frames = 0;
  r.first_frame_us = 0;
  r.input_lag_us = G_MININT64;
  r.least_lag_us = G_MAXINT64;
  r.behind_since = 0;
  auto delete_probe = [](gpointer probe) { delete static_cast<InputProbe *>(probe); };
  add_probe(r.input, "vsink", "sink", GST_PAD_PROBE_TYPE_BUFFER, note_first_frame,
            new InputProbe{&r, r.generation}, delete_probe);
  add_probe(r.input, "asr", "src", GST_PAD_PROBE_TYPE_BUFFER, count_caption, &r);
  add_probe(r.input, "a", "sink", GST_PAD_PROBE_TYPE_BUFFER, measure_lag,
            new InputProbe{&r, r.generation}, delete_probe);
  add_probe(r.input, "source", "src", GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, watch_source,
            new InputProbe{&r, r.generation}, delete_probe);
  GstBus *bus = gst_element_get_bus(r.input);
  gst_bus_add_watch(bus, on_input_message, &r);
  r.attaches++;
  if (gst_element_set_state(r.input, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* The reason is on the bus (e.g. no API key): judge it as any other error. */
    GstMessage *message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (message) {
      input_error(r, message);
      gst_message_unref(message);
    } else {
      input_lost(r, "could not start");
    }
  }
  gst_object_unref(bus);
  return G_SOURCE_REMOVE;
}

/* Warnings that name an element property get the program's option beside it. */
const char *hint_for(const char *message) {
  if (strstr(message, "latency"))
    return " [qwenasr-restream: raise --latency]";
  return "";
}

gboolean on_input_message(GstBus *bus, GstMessage *message, gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  if (!r.input || bus != GST_ELEMENT_BUS(r.input))
    return G_SOURCE_CONTINUE; /* the draining input: its end is timed, its warnings moot */
  switch (GST_MESSAGE_TYPE(message)) {
  case GST_MESSAGE_EOS:
    input_lost(r, "the input ended");
    return G_SOURCE_REMOVE;
  case GST_MESSAGE_ERROR:
    input_error(r, message);
    return G_SOURCE_REMOVE;
  case GST_MESSAGE_WARNING: {
    GError *error = nullptr;
    gst_message_parse_warning(message, &error, nullptr);
    say("warning from %s: %s%s", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), error->message,
        hint_for(error->message));
    g_clear_error(&error);
    break;
  }
  default:
    break;
  }
  return G_SOURCE_CONTINUE;
}

gboolean on_output_message(GstBus *, GstMessage *message, gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  switch (GST_MESSAGE_TYPE(message)) {
  case GST_MESSAGE_ERROR: {
    GError *error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    say("output failed (%s: %s): exiting", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)),
        error->message);
    g_clear_error(&error);
    quit(r, kExitOutput);
    break;
  }
  case GST_MESSAGE_EOS:
    if (!r.stopping) {
      say("output ended unexpectedly: exiting");
      quit(r, kExitOutput);
    } else {
      g_main_loop_quit(r.loop);
    }
    break;
  default:
    break;
  }
  return G_SOURCE_CONTINUE;
}

/* Once a second: the input's state from its first frame, and the health line. */
gboolean tick(gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  gint64 now = g_get_monotonic_time();
  gint64 first = r.first_frame_us;
  if (r.input && first != 0 && r.state == InputState::Waiting) {
    r.state = InputState::Buffering;
    say("publisher connected (attach %u): on air in %d s", r.attaches, r.delay_ms() / 1000);
  }
  if (r.input && r.state == InputState::Buffering && now - first >= r.delay_ms() * 1000ll) {
    r.state = InputState::OnAir;
    r.retry_delay_s = 1;
    say("input on air, captioning");
    set_status(r, "");
  }
  check_input_lag(r, now);
  if (now - r.last_health >= r.opt.health_s * G_USEC_PER_SEC) {
    guint delay_ms = 0;
    guint64 late = 0;
    if (r.input) {
      GstElement *asr = gst_bin_get_by_name(GST_BIN(r.input), "asr");
      GstStructure *stats = nullptr;
      g_object_get(asr, "max-observed-delay", &delay_ms, "stats", &stats, nullptr);
      gst_structure_get_uint64(stats, "captions-late", &late);
      gst_structure_free(stats);
      gst_object_unref(asr);
    }
    guint64 captions = r.captions;
    gint64 lag = r.input_lag_us;
    gint64 behind = r.input && lag != G_MININT64 && r.least_lag_us != G_MAXINT64
                        ? (lag - r.least_lag_us) / 1000
                        : 0;
    static const char *names[] = {"waiting for the publisher", "starting", "on air"};
    say("health: input %s, %" G_GINT64_FORMAT " ms behind its best; captions: %" G_GUINT64_FORMAT
        " in the last %d s, %" G_GUINT64_FORMAT " late so far; longest transcript delay %u ms "
        "(--latency %d ms)",
        names[static_cast<int>(r.state)], behind, captions - r.captions_at_health, r.opt.health_s,
        late, delay_ms, r.opt.latency_ms);
    r.captions_at_health = captions;
    r.last_health = now;
  }
  return G_SOURCE_CONTINUE;
}

gboolean on_signal(gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  if (r.stopping) {
    g_main_loop_quit(r.loop);
    return G_SOURCE_CONTINUE;
  }
  say("stopping");
  r.stopping = true;
  if (r.retry_source)
    g_source_remove(r.retry_source);
  r.retry_source = 0;
  destroy_pipeline(r.input);
  destroy_pipeline(r.draining);
  /* Ends the published stream properly; the EOS (or a 3 s timeout) ends the loop. */
  gst_element_send_event(r.output, gst_event_new_eos());
  g_timeout_add_seconds(
      3,
      [](gpointer loop) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(loop));
        return G_SOURCE_REMOVE;
      },
      r.loop);
  return G_SOURCE_CONTINUE;
}

/* rtmp:// or rtmps://, a host and an application/stream path. */
bool is_rtmp(const char *url) {
  const char *rest = g_str_has_prefix(url, "rtmp://")    ? url + 7
                     : g_str_has_prefix(url, "rtmps://") ? url + 8
                                                         : nullptr;
  const char *slash = rest ? strchr(rest, '/') : nullptr;
  return slash && slash > rest && strchr(slash + 1, '/') != nullptr;
}

bool parse_options(int argc, char **argv, Restream &r) {
  Options &o = r.opt;
  GOptionEntry entries[] = {
      {"language", 'l', 0, G_OPTION_ARG_STRING, &o.language,
       "Language of the speech (qwenasr language-code, e.g. en, zh); default: detected", "CODE"},
      {"latency", 0, 0, G_OPTION_ARG_INT, &o.latency_ms,
       "Time a transcript may take after its speech starts (ms; default 10000: sentences up to ~9 "
       "s). The output is "
       "delayed by this plus 1500 ms",
       "MS"},
      {"vad-silence-ms", 0, 0, G_OPTION_ARG_INT, &o.vad_silence_ms,
       "Silence that ends an utterance (ms; default: the element's)", "MS"},
      {"url", 0, 0, G_OPTION_ARG_STRING, &o.url,
       "Speech service WebSocket URL (default: the element's, the international region)", "URL"},
      {"size", 0, 0, G_OPTION_ARG_STRING, &o.size, "Output picture size (default 1280x720)", "WxH"},
      {"fps", 0, 0, G_OPTION_ARG_INT, &o.fps, "Output frame rate (default 30)", "N"},
      {"video-bitrate", 0, 0, G_OPTION_ARG_INT, &o.video_kbps,
       "Output H.264 bitrate (kbit/s; default 2500)", "KBPS"},
      {"health-interval", 0, 0, G_OPTION_ARG_INT, &o.health_s,
       "Seconds between health lines on stderr (default 60)", "S"},
      {"captions", 0, 0, G_OPTION_ARG_STRING, &o.captions,
       "burn-in (default: drawn into the picture) or cea608 (closed captions, CC1, inside the "
       "H.264 stream, for platforms that take embedded 608/708)",
       "KIND"},
      {"cea608-mode", 0, 0, G_OPTION_ARG_STRING, &o.cea608_mode,
       "With --captions cea608: pop-on (default), roll-up2, roll-up3, roll-up4 or paint-on",
       "MODE"},
      {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &o.idle_timeout_s,
       "Seconds without input data before the input is re-attached (default 10)", "S"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context =
      g_option_context_new("IN OUT - caption a live RTMP stream with qwenasr and publish it again");
  g_option_context_set_description(
      context,
      "IN and OUT are rtmp:// URLs. The API key comes from DASHSCOPE_API_KEY. Captions are "
      "burned into the picture; the audio is re-encoded as AAC. When IN goes away the output "
      "stays on air with a black slate and silence until IN returns.\n\nExit status: 0 after "
      "SIGINT or SIGTERM, 2 bad usage, 3 the service refused the key or settings, 4 the output "
      "failed, 1 other errors.");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError *error = nullptr;
  bool ok = g_option_context_parse(context, &argc, &argv, &error);
  if (!ok) {
    g_printerr("qwenasr-restream: %s\n", error->message);
    g_clear_error(&error);
  } else if (argc != 3) {
    gchar *help = g_option_context_get_help(context, TRUE, nullptr);
    g_printerr("%s\nqwenasr-restream: give the input and the output URL (%d given)\n", help,
               argc - 1);
    g_free(help);
    ok = false;
  } else if (!is_rtmp(argv[1]) || !is_rtmp(argv[2])) {
    g_printerr("qwenasr-restream: IN and OUT are RTMP URLs: rtmp://HOST[:PORT]/APP/STREAM\n");
    ok = false;
  } else {
    r.in = argv[1];
    r.out = argv[2];
  }
  g_option_context_free(context);
  if (ok && o.captions && !o.embedded() && !g_str_equal(o.captions, "burn-in")) {
    g_printerr("qwenasr-restream: --captions takes burn-in or cea608\n");
    ok = false;
  }
  if (ok && o.cea608_mode && !o.embedded()) {
    g_printerr("qwenasr-restream: --cea608-mode goes with --captions cea608\n");
    ok = false;
  }
  if (ok && o.size && sscanf(o.size, "%dx%d", &o.width, &o.height) != 2) {
    g_printerr("qwenasr-restream: --size takes WIDTHxHEIGHT, e.g. 1280x720\n");
    ok = false;
  }
  if (ok &&
      (o.width < 16 || o.height < 16 || o.width % 2 || o.height % 2 || o.fps < 1 || o.fps > 120 ||
       o.latency_ms < 0 || o.video_kbps < 64 || o.health_s < 1 || o.idle_timeout_s < 1)) {
    g_printerr("qwenasr-restream: a size, frame rate, latency, bitrate or interval is out of "
               "range (even sizes from 16, 1-120 fps, latency >= 0, bitrate >= 64 kbit/s)\n");
    ok = false;
  }
  return ok;
}

} // namespace

int main(int argc, char **argv) {
  Restream r;
  if (!parse_options(argc, argv, r))
    return kExitUsage;
  const char *key = g_getenv("DASHSCOPE_API_KEY");
  if (!key || !*key) {
    g_printerr("qwenasr-restream: DASHSCOPE_API_KEY is not set: the speech service needs your "
               "API key (for the local service: test-key)\n");
    return kExitService;
  }
  gst_init(nullptr, nullptr);
  GstElementFactory *factory = gst_element_factory_find("qwenasr");
  if (factory)
    gst_object_unref(factory);
  else {
    g_printerr("qwenasr-restream: the qwenasr GStreamer plugin is not installed (or set "
               "GST_PLUGIN_PATH to its build directory)\n");
    return kExitFailure;
  }
  r.loop = g_main_loop_new(nullptr, FALSE);
  GError *error = nullptr;
  std::string description = output_description(r);
  r.output = gst_parse_launch(description.c_str(), &error);
  if (!r.output || error) {
    g_printerr("qwenasr-restream: cannot build the output pipeline: %s\n",
               error ? error->message : "unknown error");
    return kExitFailure;
  }
  r.status = gst_bin_get_by_name(GST_BIN(r.output), "status");
  static GstMemory *last_frame_memory = nullptr;
  add_probe(r.output, "vsrc", "src", GST_PAD_PROBE_TYPE_BUFFER, drop_repeated_captions,
            &last_frame_memory);
  set_status(r, "Captions paused: waiting for the source");
  GstBus *bus = gst_element_get_bus(r.output);
  gst_bus_add_watch(bus, on_output_message, &r);
  gst_object_unref(bus);
  say("publishing to %s with a %d ms delay; reading %s", r.out.c_str(),
      r.opt.latency_ms + (int)kDelayMarginMs, r.in.c_str());
  if (gst_element_set_state(r.output, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    say("the output could not start");
    return kExitOutput;
  }
  r.last_health = g_get_monotonic_time();
  attach_input(&r);
  g_timeout_add_seconds(1, tick, &r);
  g_unix_signal_add(SIGINT, on_signal, &r);
  g_unix_signal_add(SIGTERM, on_signal, &r);
  if (r.exit_status == kExitOk)
    g_main_loop_run(r.loop);

  if (r.retry_source)
    g_source_remove(r.retry_source);
  if (r.drain_source)
    g_source_remove(r.drain_source);
  destroy_pipeline(r.input);
  destroy_pipeline(r.draining);
  gst_bus_remove_watch(GST_ELEMENT_BUS(r.output));
  gst_element_set_state(r.output, GST_STATE_NULL);
  gst_object_unref(r.status);
  gst_object_unref(r.output);
  g_main_loop_unref(r.loop);
  say("exit %d", r.exit_status);
  return r.exit_status;
}
