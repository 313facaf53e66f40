// SPDX-License-Identifier: LGPL-2.1-or-later
/* Fault injection of the local Qwen-ASR stand-in service (FaultOptions in localservice.h): the
 * decisions only, no I/O. HandshakeFaults decides per HTTP upgrade request whether to reject it;
 * SessionFaults decides, per WebSocket session, what happens after an append, how long events
 * are delayed and which junk frames precede an event. The server carries the decisions out in
 * one hook on append and one outgoing queue. */
#pragma once

#include <glib.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "localservice.h"

namespace qwenasr::local {

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
