// SPDX-License-Identifier: LGPL-2.1-or-later
/* In-process stand-in for Alibaba Cloud's Qwen3-ASR-Flash-Realtime WebSocket service
 * (wss://.../api-ws/v1/realtime?model=...), for testing clients offline. It speaks the documented
 * protocol (see /work/shared/protocol.md): handshake checks (path, ?model=, Bearer key),
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

namespace qwenasr::local {

/* Injected faults, so a client's reconnection and robustness can be tested. All default to off.
 * Handshake-level faults (reject_handshakes, max_connections_per_second) apply to every HTTP
 * upgrade request before any other check. All other faults are per session and only affect
 * sessions whose session_number <= faulty_sessions. "Append" means a valid
 * input_audio_buffer.append (one counted in SessionRecord::appends). Once a session decided on
 * a closing fault it ignores everything the client sends. Events, junk frames and closes leave
 * in order through one outgoing queue, which event_delay_ms and stalls hold back. */
struct FaultOptions {
  /* Only sessions (connections, counted from 1 in accept order) with number <= this are
   * affected by the per-session faults below, so that a client's reconnection can succeed. */
  guint faulty_sessions = G_MAXUINT;
  /* Close once this much audio (decoded ms at the session rate) was received; -1 never. */
  gint64 close_after_audio_ms = -1;
  guint close_after_appends = 0; // close after the Nth append; 0 never
  /* For the two above: drop the TCP connection without a close frame (the WebSocket's
   * GIOStream is closed) instead of closing with 1011 ("Injected fault"). */
  bool close_abruptly = false;
  /* After the Nth append: an `error` event with error.type "server_error" (code
   * "internal_error", message "Injected server error"), then a 1011 close. 0 never. */
  guint server_error_after_appends = 0;
  /* After the Nth append, no event leaves this session for stall_ms; audio is still read and
   * processed, events are queued and all sent when the stall ends. Pongs still go out. */
  guint stall_after_appends = 0;
  guint stall_ms = 0;
  /* After the Nth append, the WHOLE service thread sleeps freeze_ms (g_usleep): no events, no
   * pongs, no new connections -- a dead peer. stop() waits for the freeze to end. */
  guint freeze_after_appends = 0;
  guint freeze_ms = 0;
  /* Answer the first N handshakes (all sessions) with reject_status instead of 101.
   * G_MAXUINT = all of them. */
  guint reject_handshakes = 0;
  int reject_status = 503; // e.g. 401, 403, 429, 500, 503
  /* After session.created and before every later event, junk the client must survive. Before
   * the first event after session.created: one of each kind (invalid JSON, a JSON array, an
   * object without "type", an unknown event type, events of known types with wrongly typed
   * fields, a binary frame, and a 1 MiB text frame of valid JSON with an unknown type); then
   * one small kind per event, in rotation. Junk is not listed in server_event_types. */
  bool malformed_frames = false;
  guint event_delay_ms = 0; // delay every event (and junk frame and fault close) by N ms
  /* 0 unlimited; a handshake that would be the (N+1)th admitted one within the last 1 s gets
   * HTTP 429 (with Retry-After: 1). Handshakes answered 429 by this limit are not counted. */
  guint max_connections_per_second = 0;
  /* Seconds in the Retry-After header of handshakes rejected with 429. */
  guint retry_after_s = 1;

  /* Scripted results, as seen from real servers (utterances counted from 1 per session, in the
   * order their finals are produced). Each completed event is sent twice: */
  bool repeat_finals = false;
  /* Finals of consecutive utterances swapped in pairs (2 before 1, 4 before 3, ...); an odd
   * last one is sent before session.finished. */
  bool reverse_finals = false;
  /* Raw JSON text put at the end of every transcript string as it is written, unescaped: e.g.
   * "\\ud83d" (half a surrogate pair) or "\xff" (invalid UTF-8; then the event goes out as
   * a binary frame, since libsoup refuses to send such text). SessionRecord::transcripts keeps
   * the clean text. */
  std::string transcript_raw_suffix;
  /* The final (.text and completed) of this utterance is never sent; 0 none. */
  guint drop_final_of = 0;
  /* Finals of utterances numbered >= this are sent only after session.finished (before the
   * close); 0 never. */
  guint finals_after_finished_from = 0;
};

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

  /* "ws://HOST:PORT/api-ws/v1/realtime" (no query; clients add ?model=). */
  std::string url() const;
  guint16 port() const;
  std::vector<SessionRecord> sessions() const; // thread-safe snapshot
  guint handshakes_rejected() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace qwenasr::local
