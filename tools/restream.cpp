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
 * a constant delay, whatever moment the input started in, and the holds vanish inside it.
 *
 * Exit status: 0 after SIGINT/SIGTERM; 2 for bad usage; 3 when the service refuses the key or
 * the settings (retrying cannot help); 4 when the output fails (RTMP server refused or lost);
 * 1 for anything else. Progress and health go to stderr. */
#include <gst/gst.h>

#include <glib-unix.h>

#include <atomic>
#include <cstdio>
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
};

struct Restream {
  Options opt;
  std::string in, out;
  GMainLoop *loop = nullptr;
  GstElement *output = nullptr;
  GstElement *input = nullptr;
  GstElement *status = nullptr; /* the output's status textoverlay */
  int exit_status = kExitOk;
  bool stopping = false;
  guint retry_source = 0;
  guint retry_delay_s = 1;
  guint attaches = 0;
  /* counted on streaming threads, read on the main loop */
  std::atomic<guint64> frames{0}, captions{0};
  guint64 frames_seen = 0, captions_at_health = 0;
  bool input_up = false;
  gint64 last_health = 0;
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
  return "intervideosrc channel=" + channel + " timeout=" + std::to_string(kSlateAfter) + " ! " +
         video_caps(r.opt) +
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
  return "rtmp2src location=" + quoted(r.in) +
         " idle-timeout=" + std::to_string(r.opt.idle_timeout_s) + " ! flvdemux name=d d.video ! " +
         kUnbounded + " ! h264parse ! avdec_h264 ! videoconvert ! videoscale ! videorate ! " +
         video_caps(r.opt) + " ! textoverlay name=o valignment=bottom font-desc=\"Sans Bold " +
         std::to_string(MAX(12, r.opt.height / 24)) +
         "\" ! intervideosink name=vsink max-lateness=-1 channel=" + channel +
         " ts-offset=" + offset + " d.audio ! " + kUnbounded +
         " ! aacparse ! avdec_aac ! audioconvert ! audioresample ! tee name=a a. ! " + kUnbounded +
         " ! audioconvert ! audioresample ! " + kAudioCaps +
         " ! interaudiosink channel=" + channel + " ts-offset=" + offset + " a. ! " + kUnbounded +
         " ! audioconvert ! audioresample ! " + asr + " ! o.text_sink";
}

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer counter) {
  static_cast<std::atomic<guint64> *>(counter)->fetch_add(1);
  return GST_PAD_PROBE_OK;
}

void probe(GstElement *bin, const char *element, const char *pad, std::atomic<guint64> *counter) {
  GstElement *e = gst_bin_get_by_name(GST_BIN(bin), element);
  GstPad *p = gst_element_get_static_pad(e, pad);
  gst_pad_add_probe(p, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, counter, nullptr);
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

gboolean on_input_message(GstBus *, GstMessage *message, gpointer data);
gboolean attach_input(gpointer data);

void detach_input(Restream &r) {
  if (!r.input)
    return;
  GstElement *input = r.input;
  r.input = nullptr;
  gst_bus_remove_watch(GST_ELEMENT_BUS(input));
  gst_element_set_state(input, GST_STATE_NULL);
  gst_object_unref(input);
}

/* The input ended or failed: slate on air, and try again after a growing delay. */
void input_lost(Restream &r, const char *why) {
  detach_input(r);
  if (r.input_up)
    say("input down (%s): slate on air, captions paused", why);
  else
    say("input not available (%s); retrying in %u s", why, r.retry_delay_s);
  r.input_up = false;
  set_status(r, "Captions paused: waiting for the source");
  if (!r.stopping && r.retry_source == 0) {
    r.retry_source = g_timeout_add_seconds(r.retry_delay_s, attach_input, &r);
    r.retry_delay_s = MIN(r.retry_delay_s * 2, kMaxRetryDelayS);
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
  probe(r.input, "vsink", "sink", &r.frames);
  probe(r.input, "asr", "src", &r.captions);
  GstBus *bus = gst_element_get_bus(r.input);
  gst_bus_add_watch(bus, on_input_message, &r);
  gst_object_unref(bus);
  r.attaches++;
  if (gst_element_set_state(r.input, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    input_lost(r, "could not start");
  return G_SOURCE_REMOVE;
}

gboolean on_input_message(GstBus *, GstMessage *message, gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  switch (GST_MESSAGE_TYPE(message)) {
  case GST_MESSAGE_EOS:
    input_lost(r, "the publisher ended the stream");
    return G_SOURCE_REMOVE;
  case GST_MESSAGE_ERROR: {
    GError *error = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(message, &error, &debug);
    bool from_asr = g_str_equal(GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), "asr");
    bool fatal = from_asr && error->domain == GST_RESOURCE_ERROR &&
                 (error->code == GST_RESOURCE_ERROR_NOT_AUTHORIZED ||
                  error->code == GST_RESOURCE_ERROR_SETTINGS);
    std::string text =
        std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + error->message;
    g_clear_error(&error);
    g_free(debug);
    if (fatal) {
      say("speech service: %s", text.c_str());
      detach_input(r);
      quit(r, kExitService);
      return G_SOURCE_REMOVE;
    }
    input_lost(r, text.c_str());
    return G_SOURCE_REMOVE;
  }
  case GST_MESSAGE_WARNING: {
    GError *error = nullptr;
    gst_message_parse_warning(message, &error, nullptr);
    say("warning from %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), error->message);
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

/* Once a second: input up/down from frames reaching the output, and the health line. */
gboolean tick(gpointer data) {
  Restream &r = *static_cast<Restream *>(data);
  guint64 frames = r.frames;
  if (r.input && frames > r.frames_seen && !r.input_up) {
    r.input_up = true;
    r.retry_delay_s = 1;
    say("input up: captioning (attach %u)", r.attaches);
    set_status(r, "");
  }
  r.frames_seen = frames;
  gint64 now = g_get_monotonic_time();
  if (now - r.last_health >= r.opt.health_s * G_USEC_PER_SEC) {
    guint delay_ms = 0;
    if (r.input) {
      GstElement *asr = gst_bin_get_by_name(GST_BIN(r.input), "asr");
      g_object_get(asr, "max-observed-delay", &delay_ms, nullptr);
      gst_object_unref(asr);
    }
    guint64 captions = r.captions;
    say("health: input %s, %" G_GUINT64_FORMAT " captions in the last %d s, longest "
        "transcript delay %u ms, output delay %d ms",
        r.input_up ? "up" : "down", captions - r.captions_at_health, r.opt.health_s, delay_ms,
        r.opt.latency_ms + (int)kDelayMarginMs);
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
  detach_input(r);
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
    g_printerr("%s", help);
    g_free(help);
    ok = false;
  } else {
    r.in = argv[1];
    r.out = argv[2];
  }
  g_option_context_free(context);
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
  detach_input(r);
  gst_bus_remove_watch(GST_ELEMENT_BUS(r.output));
  gst_element_set_state(r.output, GST_STATE_NULL);
  gst_object_unref(r.status);
  gst_object_unref(r.output);
  g_main_loop_unref(r.loop);
  say("exit %d", r.exit_status);
  return r.exit_status;
}
