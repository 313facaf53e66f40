// SPDX-License-Identifier: LGPL-2.1-or-later
/* Fault injection of the local Qwen-ASR stand-in service: the options (FaultOptions) and the
 * decisions, no I/O. HandshakeFaults decides per HTTP upgrade request whether to reject it;
 * SessionFaults decides, per WebSocket session, what happens after an append, how long events
 * are delayed and which junk frames precede an event. The server carries the decisions out in
 * one hook on append and one outgoing queue. */
#pragma once

#include <glib.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

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

class HandshakeFaults {
public:
  explicit HandshakeFaults(const FaultOptions &options) : opts_(options) {}

  struct Rejection {
    guint status;
    const char *code;
    const char *message;
    guint retry_after_s; // add "Retry-After: N" when nonzero
  };

  /* Called once per handshake, in arrival order, on the service thread. */
  std::optional<Rejection> check(gint64 now_us);

private:
  FaultOptions opts_;
  guint seen_ = 0;
  std::deque<gint64> admitted_; // times of the handshakes let through in the last second
};

enum class FaultClose { None, Close1011, Abrupt, ServerError };

/* What the session must do after an append (in this order: freeze, stall, close). */
struct AppendFaults {
  guint freeze_ms = 0;
  guint stall_ms = 0;
  FaultClose close = FaultClose::None;
  std::string reason; // for the log and the close frame
};

struct JunkFrame {
  bool binary = false;
  std::string data;
  const char *what = ""; // for the log
};

class SessionFaults {
public:
  SessionFaults(const FaultOptions &options, guint session_number);

  bool active() const { return active_; }
  guint event_delay_ms() const { return active_ ? opts_.event_delay_ms : 0; }

  /* After a counted append: `appends` and `audio_samples` are the session's totals so far. */
  /* audio_samples: decoded so far (PCM, or Opus decoded), at sample_rate. */
  AppendFaults after_append(guint appends, guint64 audio_samples, int sample_rate);

  /* Junk to send before the next real (non session.created) event. */
  std::vector<JunkFrame> junk_before_event();

  /* What happens to the final of the session's `utterance`th utterance (from 1). */
  enum class FinalFate { Send, Repeat, Drop, SwapWithNext, AfterFinished };
  FinalFate final_fate(guint utterance) const;
  /* The completed event's JSON string member as written, from the escaped one ("\"...\""). */
  std::string transcript_json(const std::string &escaped) const;
  /* Whether completed events must leave as binary frames (their text is not UTF-8). */
  bool finals_binary() const;

private:
  FaultOptions opts_;
  bool active_;
  bool closing_ = false;
  bool first_junk_ = true;
  size_t junk_rotation_ = 0;
};

} // namespace qwenasr::local
