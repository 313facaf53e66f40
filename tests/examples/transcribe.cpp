// SPDX-License-Identifier: LGPL-2.1-or-later
/* transcribe: transcribes an audio file with qwenasrsink and prints the transcripts.
 *
 *   transcribe [--url URL] [--language CODE] [--realtime] FILE
 *
 * The pipeline is   filesrc ! decodebin ! audioconvert ! audioresample ! qwenasrsink
 * and everything interesting arrives as messages on the pipeline's bus:
 *
 *   qwenasr/transcript  partial (preview) and final transcripts of each utterance
 *   qwenasr/session     connected, configured, finished, reconnecting
 *   ERROR / WARNING     e.g. a rejected API key (with the HTTP status in the details)
 *   EOS                 the file is done and every final transcript has been posted
 *
 * Output: final transcripts on stdout, one line each:
 *
 *   [0:00:01.900 → 0:00:02.400] Hello there. (en, neutral)
 *
 * Partial transcripts go to stdout too: on a terminal they update one line in place; when
 * stdout is a pipe or file each one is a line starting with "… ". Session states, warnings
 * and errors go to stderr. Exit status: 0 at EOS, 1 after an error, 2 for bad arguments,
 * 130 when stopped with a second Ctrl+C.
 *
 * The API key is read by the element itself from the DASHSCOPE_API_KEY environment
 * variable; this program never sees or prints it. Ctrl+C sends EOS, so the element finishes
 * the session and the last finals still arrive before the program exits.
 *
 * Build: g++ -std=c++17 transcribe.cpp $(pkg-config --cflags --libs gstreamer-1.0)
 */
#include <glib-unix.h>
#include <gst/gst.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

struct App {
  GMainLoop *loop = nullptr;
  GstElement *pipeline = nullptr;
  bool tty = false;           // stdout is a terminal: partials update one line in place
  bool partial_shown = false; // the current terminal line holds a partial transcript
  std::string last_partial;   // partials often repeat (only the stable part grew): skip those
  bool interrupted = false;   // Ctrl+C was pressed once (EOS sent)
  int exit_code = 0;
};

// A stream time as H:MM:SS.mmm, or "?" when the service did not report it.
std::string format_time(GstClockTime t) {
  if (!GST_CLOCK_TIME_IS_VALID(t))
    return "?";
  guint64 ms = t / GST_MSECOND;
  char buf[32];
  g_snprintf(buf, sizeof buf, "%u:%02u:%02u.%03u", guint(ms / 3600000), guint(ms / 60000 % 60),
             guint(ms / 1000 % 60), guint(ms % 1000));
  return buf;
}

// Before printing anything else, wipe the partial transcript off the terminal line.
void clear_partial(App &app) {
  if (app.partial_shown) {
    std::fputs("\r\033[K", stdout);
    std::fflush(stdout);
    app.partial_shown = false;
  }
}

// The end of `text` that fits in `columns` terminal cells (CJK characters take two), so
// that a long partial stays on one line and can be overwritten.
const char *tail_that_fits(const char *text, int columns) {
  const char *start = text + std::strlen(text);
  while (start > text) {
    const char *prev = g_utf8_find_prev_char(text, start);
    columns -= g_unichar_iswide(g_utf8_get_char(prev)) ? 2 : 1;
    if (columns < 0)
      break;
    start = prev;
  }
  return start;
}

void on_transcript(App &app, const GstStructure *s) {
  // Strings in these messages are never NULL (empty when unknown).
  const char *text = gst_structure_get_string(s, "text");
  gboolean is_final = FALSE;
  gst_structure_get_boolean(s, "final", &is_final);

  if (!is_final) {
    // A partial: the service's current guess for the utterance in progress. It is replaced
    // by the next partial, and finally by the final transcript.
    if (*text == '\0' || app.last_partial == text)
      return;
    app.last_partial = text;
    if (app.tty) {
      struct winsize ws {};
      int columns = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 4 ? ws.ws_col : 80;
      std::printf("\r\033[K… %s", tail_that_fits(text, columns - 3));
      app.partial_shown = true;
    } else {
      std::printf("… %s\n", text);
    }
    std::fflush(stdout);
    return;
  }

  // A final: where the utterance is in the input (stream time), its text, and what the
  // service says about language and emotion (either may be empty).
  guint64 start = GST_CLOCK_TIME_NONE, end = GST_CLOCK_TIME_NONE;
  gst_structure_get_uint64(s, "start-time", &start);
  gst_structure_get_uint64(s, "end-time", &end);
  std::string about = gst_structure_get_string(s, "language");
  const char *emotion = gst_structure_get_string(s, "emotion");
  if (*emotion)
    about += (about.empty() ? "" : ", ") + std::string(emotion);
  if (!about.empty())
    about = " (" + about + ")";

  clear_partial(app);
  app.last_partial.clear();
  std::printf("[%s → %s] %s%s\n", format_time(start).c_str(), format_time(end).c_str(), text,
              about.c_str());
  std::fflush(stdout);
}

void on_session(App &app, const GstStructure *s) {
  const char *state = gst_structure_get_string(s, "state");
  const char *session_id = gst_structure_get_string(s, "session-id");
  clear_partial(app);
  if (g_strcmp0(state, "reconnecting") == 0) {
    // The connection was lost; the element reconnects by itself and resends the audio
    // that has no final transcript yet, so nothing is lost.
    guint attempt = 0;
    guint64 delay = 0;
    gst_structure_get_uint(s, "attempt", &attempt);
    gst_structure_get_uint64(s, "delay", &delay);
    g_printerr("session: reconnecting in %" G_GUINT64_FORMAT " ms (attempt %u): %s\n",
               delay / GST_MSECOND, attempt, gst_structure_get_string(s, "reason"));
  } else {
    g_printerr("session: %s%s%s\n", state, *session_id ? " " : "", session_id);
  }
}

// Prints an ERROR or WARNING message: the text for users, the HTTP status of a refused
// connection when there is one, and the debug text for bug reports.
void print_problem(GstMessage *msg) {
  GError *err = nullptr;
  gchar *debug = nullptr;
  const GstStructure *details = nullptr;
  const char *kind = "Error";
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    gst_message_parse_error(msg, &err, &debug);
    gst_message_parse_error_details(msg, &details);
  } else {
    kind = "Warning";
    gst_message_parse_warning(msg, &err, &debug);
    gst_message_parse_warning_details(msg, &details);
  }
  g_printerr("%s from %s: %s\n", kind, GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
  guint status = 0;
  if (details && gst_structure_get_uint(details, "http-status-code", &status) && status != 0)
    g_printerr("  HTTP status: %u\n", status);
  if (debug)
    g_printerr("  Debug info: %s\n", debug);
  g_clear_error(&err);
  g_free(debug);
}

gboolean on_bus_message(GstBus *, GstMessage *msg, gpointer data) {
  App &app = *static_cast<App *>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure(msg);
    if (gst_structure_has_name(s, "qwenasr/transcript"))
      on_transcript(app, s);
    else if (gst_structure_has_name(s, "qwenasr/session"))
      on_session(app, s);
    // (qwenasr/speech-started and qwenasr/speech-stopped are not used here.)
    break;
  }
  case GST_MESSAGE_WARNING: // the stream goes on
    clear_partial(app);
    print_problem(msg);
    break;
  case GST_MESSAGE_ERROR: // the stream has stopped
    clear_partial(app);
    print_problem(msg);
    app.exit_code = 1;
    g_main_loop_quit(app.loop);
    break;
  case GST_MESSAGE_EOS: // all finals have been posted before EOS
    clear_partial(app);
    g_main_loop_quit(app.loop);
    break;
  default:
    break;
  }
  return G_SOURCE_CONTINUE;
}

// Ctrl+C: the first one sends EOS into the pipeline, so the element ends the session and
// waits for the last transcripts (they arrive, then EOS); a second one stops at once.
gboolean on_sigint(gpointer data) {
  App &app = *static_cast<App *>(data);
  clear_partial(app);
  if (!app.interrupted) {
    app.interrupted = true;
    g_printerr("Interrupted: finishing the transcripts (Ctrl+C again to quit at once)\n");
    gst_element_send_event(app.pipeline, gst_event_new_eos());
    return G_SOURCE_CONTINUE;
  }
  app.exit_code = 130;
  g_main_loop_quit(app.loop);
  return G_SOURCE_CONTINUE;
}

} // namespace

int main(int argc, char **argv) {
  gchar *url = nullptr;
  gchar *language = nullptr;
  gboolean realtime = FALSE;
  GOptionEntry entries[] = {
      {"url", 0, 0, G_OPTION_ARG_STRING, &url,
       "Service endpoint, e.g. the local service's ws://127.0.0.1:PORT/api-ws/v1/realtime "
       "(default: the international cloud endpoint)",
       "URL"},
      {"language", 0, 0, G_OPTION_ARG_STRING, &language,
       "Language of the speech, e.g. en or zh (default: automatic)", "CODE"},
      {"realtime", 0, 0, G_OPTION_ARG_NONE, &realtime,
       "Send the audio at its real speed (sync=true) instead of as fast as possible", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new("FILE - transcribe an audio file with qwenasrsink");
  g_option_context_set_description(ctx, "The API key is read from DASHSCOPE_API_KEY.");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group()); // also calls gst_init()
  GError *error = nullptr;
  bool args_ok = g_option_context_parse(ctx, &argc, &argv, &error) && argc == 2;
  if (!args_ok) {
    g_printerr("%s\nUsage: %s [--url URL] [--language CODE] [--realtime] FILE (see --help)\n",
               error ? error->message : "Give one audio file.", g_get_prgname());
    g_clear_error(&error);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);

  App app;
  app.tty = isatty(STDOUT_FILENO);

  // decodebin's pads appear only once it knows the file's format; gst_parse_launch links
  // them to audioconvert when they do. audioconvert ! audioresample turn any audio into
  // what the service takes: 16 kHz mono S16LE.
  app.pipeline = gst_parse_launch("filesrc name=src ! decodebin ! audioconvert ! audioresample ! "
                                  "qwenasrsink name=asr",
                                  &error);
  if (!app.pipeline) {
    g_printerr("Cannot create the pipeline: %s\n(Is the qwenasr plugin installed, or "
               "GST_PLUGIN_PATH set to its build directory?)\n",
               error->message);
    g_clear_error(&error);
    return 1;
  }

  // Set properties while the pipeline is in NULL: the element copies them (and reads
  // DASHSCOPE_API_KEY) when it starts.
  GstElement *src = gst_bin_get_by_name(GST_BIN(app.pipeline), "src");
  GstElement *asr = gst_bin_get_by_name(GST_BIN(app.pipeline), "asr");
  g_object_set(src, "location", argv[1], nullptr);
  if (url)
    g_object_set(asr, "url", url, nullptr);
  if (language)
    g_object_set(asr, "language-code", language, nullptr);
  // sync=false sends a file as fast as the service takes it; the real service's behaviour
  // with faster than real-time input is not documented, so --realtime offers sync=true.
  g_object_set(asr, "sync", realtime, nullptr);
  gst_object_unref(src);
  gst_object_unref(asr);

  app.loop = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_element_get_bus(app.pipeline);
  guint bus_watch = gst_bus_add_watch(bus, on_bus_message, &app);
  guint sigint_watch = g_unix_signal_add(SIGINT, on_sigint, &app);

  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // E.g. no API key, a bad url, or a missing file: the reason is an ERROR on the bus.
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
      print_problem(msg);
      gst_message_unref(msg);
    } else {
      g_printerr("Error: the pipeline could not start.\n");
    }
    app.exit_code = 1;
  } else {
    g_main_loop_run(app.loop);
  }

  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  g_source_remove(sigint_watch);
  g_source_remove(bus_watch);
  gst_object_unref(bus);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  g_free(url);
  g_free(language);
  return app.exit_code;
}
