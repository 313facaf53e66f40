// SPDX-License-Identifier: LGPL-2.1-or-later
/* qwenasr-local-service: runs the local Qwen-ASR-Realtime stand-in as a program, for manual
 * testing of clients (gst-launch, SDK samples). Prints the WebSocket URL on stdout once
 * listening (and with --port-file writes the port to a file a script can wait for) and runs
 * until SIGINT or SIGTERM. */
#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "localservice.h"

namespace {

using qwenasr::local::FaultOptions;
using qwenasr::local::ServiceOptions;

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

/* A count or duration of FaultOptions (0 = off). Parsed into an int, starting at the default,
 * so that a negative value can be rejected. */
struct FaultCount {
  const char *name;
  guint FaultOptions::*field;
  const char *help;
  const char *arg;
};

const FaultCount kFaultCounts[] = {
    {"close-after-appends", &FaultOptions::close_after_appends,
     "Fault: close a session after its Nth append (0 never)", "N"},
    {"server-error-after-appends", &FaultOptions::server_error_after_appends,
     "Fault: after the Nth append send an error event (type server_error, code internal_error) "
     "and close with 1011",
     "N"},
    {"stall-after-appends", &FaultOptions::stall_after_appends,
     "Fault: after the Nth append hold all events of the session for --stall-ms, then send "
     "them at once (audio is still processed, pings still answered)",
     "N"},
    {"stall-ms", &FaultOptions::stall_ms, "Fault: length of the stall", "MS"},
    {"freeze-after-appends", &FaultOptions::freeze_after_appends,
     "Fault: after the Nth append block the whole service for --freeze-ms (no events, no "
     "pongs, no connections)",
     "N"},
    {"freeze-ms", &FaultOptions::freeze_ms, "Fault: length of the freeze", "MS"},
    {"reject-handshakes", &FaultOptions::reject_handshakes,
     "Fault: answer the first N handshakes (of all sessions) with --reject-status", "N"},
    {"event-delay-ms", &FaultOptions::event_delay_ms,
     "Fault: delay every event by N ms (order kept)", "MS"},
    {"max-connections-per-second", &FaultOptions::max_connections_per_second,
     "Fault: answer handshakes beyond N within any 1 s window with HTTP 429 (0 unlimited)", "N"},
};

/* "TEXT (default VALUE)", kept alive for the option table. */
const char *with_default(std::deque<std::string> &texts, const char *text,
                         const std::string &value) {
  texts.push_back(std::string(text) + " (default " + value + ")");
  return texts.back().c_str();
}

} // namespace

int main(int argc, char **argv) {
  // Every default comes from ServiceOptions (localservice.h) and FaultOptions (faults.h).
  const ServiceOptions defaults;
  const FaultOptions &fd = defaults.faults;
  std::deque<std::string> help; // texts the option table points into

  char *host = nullptr;
  char *api_key = nullptr;
  gboolean any_key = FALSE;
  gboolean verbose = FALSE;
  int port = defaults.port;
  int partial_interval_ms = static_cast<int>(defaults.partial_interval_ms);
  int handshake_status = defaults.forced_handshake_status;
  char *engine_name = nullptr;
  char *ps_hmm = nullptr;
  char *ps_lm = nullptr;
  char *ps_dict = nullptr;
  int ps_decoders = static_cast<int>(defaults.engine_options.max_decoders);
  char *port_file = nullptr;

  // Faults; ints so that negative values can be rejected.
  int faulty_sessions = fd.faulty_sessions == G_MAXUINT ? -1 : static_cast<int>(fd.faulty_sessions);
  gint64 close_after_audio_ms = fd.close_after_audio_ms;
  gboolean close_abruptly = fd.close_abruptly;
  int reject_status = fd.reject_status;
  gboolean malformed_frames = fd.malformed_frames;
  std::vector<int> counts;
  for (const FaultCount &c : kFaultCounts)
    counts.push_back(static_cast<int>(fd.*c.field));

  std::vector<GOptionEntry> entries = {
      {"host", 0, 0, G_OPTION_ARG_STRING, &host,
       with_default(help, "Address to listen on", defaults.host), "ADDR"},
      {"port", 0, 0, G_OPTION_ARG_INT, &port,
       with_default(help, "Port to listen on; 0 picks a free one", std::to_string(port)), "PORT"},
      {"port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file,
       "Once listening, write the port number to FILE (atomically; removed again on exit), for "
       "scripts: URL=ws://127.0.0.1:$(cat FILE)/api-ws/v1/realtime",
       "FILE"},
      {"api-key", 0, 0, G_OPTION_ARG_STRING, &api_key,
       with_default(help,
                    "Key expected in 'Authorization: Bearer KEY'. The key is only compared, never "
                    "printed or logged",
                    "\"" + defaults.api_key + "\""),
       "KEY"},
      {"any-key", 0, 0, G_OPTION_ARG_NONE, &any_key,
       "Accept any Bearer key (a missing header is still rejected with 401)", nullptr},
      {"partial-interval-ms", 0, 0, G_OPTION_ARG_INT, &partial_interval_ms,
       with_default(help, "Audio milliseconds between partial results while speaking; 0 = none",
                    std::to_string(partial_interval_ms)),
       "N"},
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
       with_default(help,
                    "At most N PocketSphinx decoders (utterances decoded at once; ~100 MB "
                    "each)",
                    std::to_string(ps_decoders)),
       "N"},
      {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log one line per session event to stderr",
       nullptr},
      {"faulty-sessions", 0, 0, G_OPTION_ARG_INT, &faulty_sessions,
       "Fault: only sessions 1..N (in accept order) get the per-session faults below (default: "
       "all), so that a reconnection can succeed",
       "N"},
      {"close-after-audio-ms", 0, 0, G_OPTION_ARG_INT64, &close_after_audio_ms,
       "Fault: close a session once N ms of audio were received (-1 never)", "N"},
      {"close-abruptly", 0, 0, G_OPTION_ARG_NONE, &close_abruptly,
       "Fault: --close-after-appends and --close-after-audio-ms drop the TCP connection without "
       "a close frame instead of closing with 1011",
       nullptr},
      {"reject-status", 0, 0, G_OPTION_ARG_INT, &reject_status,
       with_default(help, "Fault: HTTP status for --reject-handshakes (e.g. 401, 403, 429, 500)",
                    std::to_string(reject_status)),
       "N"},
      {"malformed-frames", 0, 0, G_OPTION_ARG_NONE, &malformed_frames,
       "Fault: send junk before every event after session.created (invalid JSON, arrays, objects "
       "without type, unknown types, wrongly typed fields, binary frames, one 1 MiB frame)",
       nullptr},
  };
  for (size_t i = 0; i < counts.size(); i++)
    entries.push_back({kFaultCounts[i].name, 0, 0, G_OPTION_ARG_INT, &counts[i],
                       kFaultCounts[i].help, kFaultCounts[i].arg});
  entries.push_back({nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr});

  GOptionContext *octx = g_option_context_new("- local Qwen3-ASR-Flash-Realtime stand-in");
  g_option_context_set_summary(
      octx, "Serves ws://HOST:PORT/api-ws/v1/realtime?model=... with the Qwen-ASR-Realtime event\n"
            "protocol and a deterministic (default) or PocketSphinx recogniser. Prints the URL\n"
            "on stdout once listening and runs until SIGINT or SIGTERM. Handshake: wrong key -> "
            "401, a key starting with\n"
            "\"forbidden-\" -> 403, missing ?model= -> 400.");
  g_option_context_add_main_entries(octx, entries.data(), nullptr);
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
  if (faulty_sessions < -1 || close_after_audio_ms < -1 || reject_status < 200 ||
      reject_status > 599 ||
      std::any_of(counts.begin(), counts.end(), [](int c) { return c < 0; })) {
    g_printerr("Invalid fault arguments: counts and durations must be >= 0 (--faulty-sessions "
               "and --close-after-audio-ms may be -1), --reject-status 200..599.\n");
    rc = 2;
  }

  if (rc == 0) {
    try {
      ServiceOptions opts;
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
      FaultOptions &f = opts.faults;
      f.faulty_sessions = faulty_sessions < 0 ? G_MAXUINT : static_cast<guint>(faulty_sessions);
      f.close_after_audio_ms = close_after_audio_ms;
      f.close_abruptly = close_abruptly;
      f.reject_status = reject_status;
      f.malformed_frames = malformed_frames;
      for (size_t i = 0; i < counts.size(); i++)
        f.*kFaultCounts[i].field = static_cast<guint>(counts[i]);
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
