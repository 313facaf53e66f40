// SPDX-License-Identifier: LGPL-2.1-or-later
/* In-process stand-in for Alibaba Cloud's Qwen3-ASR-Flash-Realtime WebSocket service
 * (wss://.../api-ws/v1/realtime?model=...), for testing clients offline. It speaks the documented
 * protocol (docs/protocol.md): handshake checks (path, ?model=, Bearer key),
 * session.created/updated, appends with server VAD or manual commits, partial and final
 * transcription events, session.finish; optionally with injected faults (FaultOptions) for
 * robustness and reconnection tests. The service runs on its own thread with its own
 * GMainContext; all methods may be called from any thread except that thread. */
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine.h"
#include "faults.h"

namespace qwenasr::local {

struct ServiceOptions {
  std::string host = "127.0.0.1";
  guint16 port = 0; // 0 = pick a free port
  /* Expected "Authorization: Bearer <key>". Empty = accept any key, but a missing or
   * non-Bearer header still gets 401. A wrong key gets 401, or 403 if it starts with
   * "forbidden-" (lets tests produce 403). The key is compared, never logged. */
  std::string api_key = "test-key";
  /* Nonzero: answer every handshake with this HTTP status (checked before faults). */
  int forced_handshake_status = 0;
  EngineKind engine = EngineKind::Deterministic;
  EngineOptions engine_options; // model files etc. of engines that have any
  /* VAD mode: a partial (.text) event each time this much audio has arrived since the speech
   * start, while speaking (covering the audio up to the last voiced frame); a snapshot equal
   * to the previous one is skipped. 0 = no partials before the final one. */
  guint partial_interval_ms = 200;
  /* After session.finished, close with 1000 if the client has not closed within this time. */
  guint finish_close_timeout_ms = 5000;
  FaultOptions faults;
  /* Both set: serve wss:// with this certificate and private key (PEM files), e.g. the test
   * certificate for localhost in tests/data. */
  std::string tls_certificate_file, tls_key_file;
  /* If set, called on the service thread with one line per session event (received/sent). */
  std::function<void(const std::string &line)> event_log;
};

/* One per accepted WebSocket connection, in accept order. */
struct SessionRecord {
  guint session_number = 0; // 1-based, in accept order (as FaultOptions::faulty_sessions)
  std::string session_id;
  std::string model;
  std::string user_agent;               // User-Agent as received, "" if absent
  std::string workspace_header;         // X-DashScope-WorkSpace as received, "" if absent
  std::string last_session_update_json; // raw text of the last session.update received
  guint appends = 0;
  guint64 audio_bytes = 0;           // Base64-decoded bytes received in appends on this session
  guint64 decoded_samples = 0;       // audio samples the appends decoded to (PCM or Opus)
  std::optional<guint32> ogg_serial; // input_audio_format "opus": the Ogg stream's serial
  std::vector<std::string> client_event_types; // "type" of every client event, in order
  /* "type" of every event written to the socket, in order (a queued event counts when it
   * leaves; one dropped by a fault close never does). */
  std::vector<std::string> server_event_types;
  /* completed.transcript of every completed event written to the socket, in order. */
  std::vector<std::string> transcripts;
  guint junk_frames = 0; // malformed_frames junk sent
  /* Faults that fired on this session, in order: "stall", "freeze", "server_error",
   * "close_1011", "close_abrupt", and per final scripted: "repeat_final", "reverse_finals"
   * (per swapped pair), "drop_final", "final_after_finished". */
  std::vector<std::string> injected_faults;
  bool fault_closed = false;     // the service closed this session by a fault
  bool finished = false;         // session.finished sent
  bool closed_by_client = false; // the client closed (or dropped) the connection first
  bool closed = false;           // the connection is gone
};

class LocalService {
public:
  explicit LocalService(ServiceOptions options = {});
  ~LocalService(); // calls stop()
  LocalService(const LocalService &) = delete;
  LocalService &operator=(const LocalService &) = delete;

  /* Starts the service thread and listens; returns once the port is known (or on failure). */
  bool start(GError **error);
  /* Closes all connections, stops listening and joins the thread. Idempotent. Must not be
   * called from the service thread (e.g. from event_log). */
  void stop();

  /* "ws://HOST:PORT/api-ws/v1/realtime", wss:// with TLS (no query; clients add ?model=). */
  std::string url() const;
  guint16 port() const;
  std::vector<SessionRecord> sessions() const; // thread-safe snapshot
  guint handshakes_rejected() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace qwenasr::local
