// SPDX-License-Identifier: LGPL-2.1-or-later
/* qwenasr-local-service: runs the local Qwen-ASR-Realtime stand-in as a program, for manual
 * testing of clients (gst-launch, SDK samples). Prints the WebSocket URL on stdout once
 * listening (and with --port-file writes the port to a file a script can wait for) and runs
 * until SIGINT or SIGTERM. */
#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "localservice.h"

namespace {

gboolean on_signal(gpointer data) {
  g_main_loop_quit(static_cast<GMainLoop *>(data));
  return G_SOURCE_CONTINUE;
}

/* Writes "PORT\n" to `path` under a temporary name first, so that a reader waiting for the file
 * never sees it half written. */
bool write_port_file(const char *path, guint port, GError **error) {
  gchar *text = g_strdup_printf("%u\n", port);
  const gboolean ok = g_file_set_contents(path, text, -1, error);
  g_free(text);
  return ok;
}

} // namespace

int main(int argc, char **argv) {
  char *host = nullptr;
  char *api_key = nullptr;
  gboolean any_key = FALSE;
  gboolean verbose = FALSE;
  int port = 0;
  int partial_interval_ms = 200;
  int handshake_status = 0;
  char *engine_name = nullptr;
  char *ps_hmm = nullptr;
  char *ps_lm = nullptr;
  char *ps_dict = nullptr;
  int ps_decoders = 2;
  char *port_file = nullptr;

  // Faults (FaultOptions); ints so that negative values can be rejected.
  int faulty_sessions = -1; // -1 = all
  gint64 close_after_audio_ms = -1;
  int close_after_appends = 0;
  gboolean close_abruptly = FALSE;
  int server_error_after_appends = 0;
  int stall_after_appends = 0;
  int stall_ms = 0;
  int freeze_after_appends = 0;
  int freeze_ms = 0;
  int reject_handshakes = 0;
  int reject_status = 503;
  gboolean malformed_frames = FALSE;
  int event_delay_ms = 0;
  int max_connections_per_second = 0;

  GOptionEntry entries[] = {
      {"host", 0, 0, G_OPTION_ARG_STRING, &host, "Address to listen on (default 127.0.0.1)",
       "ADDR"},
      {"port", 0, 0, G_OPTION_ARG_INT, &port, "Port to listen on (default 0 = pick a free one)",
       "PORT"},
      {"port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file,
       "Once listening, write the port number to FILE (atomically; removed again on exit), for "
       "scripts: URL=ws://127.0.0.1:$(cat FILE)/api-ws/v1/realtime",
       "FILE"},
      {"api-key", 0, 0, G_OPTION_ARG_STRING, &api_key,
       "Key expected in 'Authorization: Bearer KEY' (default \"test-key\"). The key is only "
       "compared, never printed or logged",
       "KEY"},
      {"any-key", 0, 0, G_OPTION_ARG_NONE, &any_key,
       "Accept any Bearer key (a missing header is still rejected with 401)", nullptr},
      {"partial-interval-ms", 0, 0, G_OPTION_ARG_INT, &partial_interval_ms,
       "Audio milliseconds between partial results while speaking (default 200, 0 = none)", "N"},
      {"handshake-status", 0, 0, G_OPTION_ARG_INT, &handshake_status,
       "Answer every handshake with this HTTP status (e.g. 401, 403, 429, 500)", "N"},
      {"engine", 0, 0, G_OPTION_ARG_STRING, &engine_name,
       "Recogniser: \"deterministic\" (default; made-up words from a hash of the audio, exact "
       "for tests) or \"pocketsphinx\" (real English recognition with CMU PocketSphinx, if "
       "built with it)",
       "NAME"},
      {"pocketsphinx-hmm", 0, 0, G_OPTION_ARG_FILENAME, &ps_hmm,
       "PocketSphinx acoustic model directory (default: Debian's pocketsphinx-en-us)", "DIR"},
      {"pocketsphinx-lm", 0, 0, G_OPTION_ARG_FILENAME, &ps_lm,
       "PocketSphinx language model (default: en-us.lm.bin of pocketsphinx-en-us)", "FILE"},
      {"pocketsphinx-dict", 0, 0, G_OPTION_ARG_FILENAME, &ps_dict,
       "PocketSphinx pronunciation dictionary (default: cmudict-en-us.dict)", "FILE"},
      {"pocketsphinx-decoders", 0, 0, G_OPTION_ARG_INT, &ps_decoders,
       "At most N PocketSphinx decoders (utterances decoded at once; ~100 MB each; default 2)",
       "N"},
      {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log one line per session event to stderr",
       nullptr},
      {"faulty-sessions", 0, 0, G_OPTION_ARG_INT, &faulty_sessions,
       "Fault: only sessions 1..N (in accept order) get the per-session faults below (default: "
       "all), so that a reconnection can succeed",
       "N"},
      {"close-after-audio-ms", 0, 0, G_OPTION_ARG_INT64, &close_after_audio_ms,
       "Fault: close a session once N ms of audio were received (-1 never)", "N"},
      {"close-after-appends", 0, 0, G_OPTION_ARG_INT, &close_after_appends,
       "Fault: close a session after its Nth append (0 never)", "N"},
      {"close-abruptly", 0, 0, G_OPTION_ARG_NONE, &close_abruptly,
       "Fault: the two closes above drop the TCP connection without a close frame instead of "
       "closing with 1011",
       nullptr},
      {"server-error-after-appends", 0, 0, G_OPTION_ARG_INT, &server_error_after_appends,
       "Fault: after the Nth append send an error event (type server_error, code internal_error) "
       "and close with 1011",
       "N"},
      {"stall-after-appends", 0, 0, G_OPTION_ARG_INT, &stall_after_appends,
       "Fault: after the Nth append hold all events of the session for --stall-ms, then send "
       "them at once (audio is still processed, pings still answered)",
       "N"},
      {"stall-ms", 0, 0, G_OPTION_ARG_INT, &stall_ms, "Fault: length of the stall", "MS"},
      {"freeze-after-appends", 0, 0, G_OPTION_ARG_INT, &freeze_after_appends,
       "Fault: after the Nth append block the whole service for --freeze-ms (no events, no "
       "pongs, no connections)",
       "N"},
      {"freeze-ms", 0, 0, G_OPTION_ARG_INT, &freeze_ms, "Fault: length of the freeze", "MS"},
      {"reject-handshakes", 0, 0, G_OPTION_ARG_INT, &reject_handshakes,
       "Fault: answer the first N handshakes (of all sessions) with --reject-status", "N"},
      {"reject-status", 0, 0, G_OPTION_ARG_INT, &reject_status,
       "Fault: HTTP status for --reject-handshakes (default 503; e.g. 401, 403, 429, 500)", "N"},
      {"malformed-frames", 0, 0, G_OPTION_ARG_NONE, &malformed_frames,
       "Fault: send junk before every event after session.created (invalid JSON, arrays, objects "
       "without type, unknown types, wrongly typed fields, binary frames, one 1 MiB frame)",
       nullptr},
      {"event-delay-ms", 0, 0, G_OPTION_ARG_INT, &event_delay_ms,
       "Fault: delay every event by N ms (order kept)", "MS"},
      {"max-connections-per-second", 0, 0, G_OPTION_ARG_INT, &max_connections_per_second,
       "Fault: answer handshakes beyond N within any 1 s window with HTTP 429 (0 unlimited)", "N"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};

  GOptionContext *octx = g_option_context_new("- local Qwen3-ASR-Flash-Realtime stand-in");
  g_option_context_set_summary(
      octx, "Serves ws://HOST:PORT/api-ws/v1/realtime?model=... with the Qwen-ASR-Realtime event\n"
            "protocol and a deterministic (default) or PocketSphinx recogniser. Prints the URL\n"
            "on stdout once listening and runs until SIGINT or SIGTERM. Handshake: wrong key -> "
            "401, a key starting with\n"
            "\"forbidden-\" -> 403, missing ?model= -> 400.");
  g_option_context_add_main_entries(octx, entries, nullptr);
  GError *error = nullptr;
  if (!g_option_context_parse(octx, &argc, &argv, &error)) {
    g_printerr("%s\nTry --help.\n", error->message);
    g_clear_error(&error);
    g_option_context_free(octx);
    return 2;
  }
  g_option_context_free(octx);

  int rc = 0;
  qwenasr::local::EngineKind engine_kind = qwenasr::local::EngineKind::Deterministic;
  if (engine_name && !qwenasr::local::engine_kind_from_name(engine_name, engine_kind)) {
    g_printerr("Unknown engine '%s' (deterministic, pocketsphinx).\n", engine_name);
    rc = 2;
  } else if (!qwenasr::local::engine_compiled_in(engine_kind)) {
    g_printerr("Engine '%s' is not in this build (configure with libpocketsphinx-dev "
               "installed).\n",
               engine_name);
    rc = 2;
  }
  if (ps_decoders < 1 || ps_decoders > 64) {
    g_printerr("--pocketsphinx-decoders must be 1..64.\n");
    rc = 2;
  }
  if (port < 0 || port > 65535 || partial_interval_ms < 0 ||
      (handshake_status != 0 && (handshake_status < 200 || handshake_status > 599)) ||
      (any_key && api_key)) {
    g_printerr("Invalid arguments: port must be 0..65535, partial interval >= 0, handshake "
               "status 200..599, and --api-key and --any-key exclude each other.\n");
    rc = 2;
  }
  if (faulty_sessions < -1 || close_after_audio_ms < -1 || close_after_appends < 0 ||
      server_error_after_appends < 0 || stall_after_appends < 0 || stall_ms < 0 ||
      freeze_after_appends < 0 || freeze_ms < 0 || reject_handshakes < 0 || reject_status < 200 ||
      reject_status > 599 || event_delay_ms < 0 || max_connections_per_second < 0) {
    g_printerr("Invalid fault arguments: counts and durations must be >= 0 (--faulty-sessions "
               "and --close-after-audio-ms may be -1), --reject-status 200..599.\n");
    rc = 2;
  }

  if (rc == 0) {
    try {
      qwenasr::local::ServiceOptions opts;
      if (host)
        opts.host = host;
      opts.port = static_cast<guint16>(port);
      if (any_key)
        opts.api_key.clear();
      else if (api_key)
        opts.api_key = api_key;
      opts.partial_interval_ms = static_cast<guint>(partial_interval_ms);
      opts.forced_handshake_status = handshake_status;
      opts.engine = engine_kind;
      if (ps_hmm)
        opts.engine_options.hmm = ps_hmm;
      if (ps_lm)
        opts.engine_options.lm = ps_lm;
      if (ps_dict)
        opts.engine_options.dict = ps_dict;
      opts.engine_options.max_decoders = static_cast<unsigned>(ps_decoders);
      qwenasr::local::FaultOptions &f = opts.faults;
      f.faulty_sessions = faulty_sessions < 0 ? G_MAXUINT : static_cast<guint>(faulty_sessions);
      f.close_after_audio_ms = close_after_audio_ms;
      f.close_after_appends = static_cast<guint>(close_after_appends);
      f.close_abruptly = close_abruptly;
      f.server_error_after_appends = static_cast<guint>(server_error_after_appends);
      f.stall_after_appends = static_cast<guint>(stall_after_appends);
      f.stall_ms = static_cast<guint>(stall_ms);
      f.freeze_after_appends = static_cast<guint>(freeze_after_appends);
      f.freeze_ms = static_cast<guint>(freeze_ms);
      f.reject_handshakes = static_cast<guint>(reject_handshakes);
      f.reject_status = reject_status;
      f.malformed_frames = malformed_frames;
      f.event_delay_ms = static_cast<guint>(event_delay_ms);
      f.max_connections_per_second = static_cast<guint>(max_connections_per_second);
      if (verbose)
        opts.event_log = [](const std::string &line) {
          // Cut huge lines (e.g. corpus text) so the log stays one line per event.
          std::string l = line.size() > 2000 ? line.substr(0, 2000) + "..." : line;
          g_printerr("%s\n", l.c_str());
        };

      qwenasr::local::LocalService service(std::move(opts));
      if (!service.start(&error)) {
        g_printerr("Cannot start the service: %s\n", error->message);
        g_clear_error(&error);
        rc = 1;
      } else {
        std::printf("%s\n", service.url().c_str());
        std::fflush(stdout);
        if (port_file && !write_port_file(port_file, service.port(), &error)) {
          g_printerr("Cannot write the port file: %s\n", error->message);
          g_clear_error(&error);
          service.stop();
          rc = 1;
        }
      }
      if (rc == 0) {
        GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
        guint s1 = g_unix_signal_add(SIGINT, on_signal, loop);
        guint s2 = g_unix_signal_add(SIGTERM, on_signal, loop);
        g_main_loop_run(loop);
        g_source_remove(s1);
        g_source_remove(s2);
        g_main_loop_unref(loop);
        service.stop();
        if (port_file)
          g_unlink(port_file);
      }
    } catch (const std::exception &e) {
      g_printerr("Fatal: %s\n", e.what());
      rc = 1;
    }
  }
  g_free(host);
  g_free(api_key);
  g_free(engine_name);
  g_free(ps_hmm);
  g_free(ps_lm);
  g_free(ps_dict);
  g_free(port_file);
  return rc;
}
