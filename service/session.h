// SPDX-License-Identifier: LGPL-2.1-or-later
/* One WebSocket connection of the local service = one recognition session (one session per
 * socket, docs/protocol.md §2.4): the client's events in, the server's events out, in the
 * documented order (docs/protocol.md §7). The session talks to its owner (the server) only through
 * SessionOwner. Service thread only. Its methods live in two files: session.cpp (the connection,
 * the events and the fault hook) and session_audio.cpp (audio -> utterances -> transcription
 * events). */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audioinput.h"
#include "engine.h"
#include "eventorder.h"
#include "faults.h"
#include "json.h"
#include "localservice.h"
#include "outbox.h"
#include "sessionupdate.h"
#include "vad.h"

namespace qwenasr::local {

class Session;

/* What a session needs from the server that owns it. */
class SessionOwner {
public:
  virtual const ServiceOptions &options() const = 0;
  virtual GMainContext *context() const = 0; // the service thread's
  virtual Engine &engine() = 0;
  virtual void log(const std::string &line) = 0;
  /* Changes the session's SessionRecord (record = its index) under the records' lock. */
  virtual void update_record(size_t record, const std::function<void(SessionRecord &)> &f) = 0;
  /* The connection is gone; the owner may destroy the session inside this call. */
  virtual void session_closed(Session *s) = 0;

protected:
  ~SessionOwner() = default;
};

class Session final : private OutboxWriter {
public:
  Session(SessionOwner &owner, SoupWebsocketConnection *conn, GSocket *socket, size_t record,
          std::string id, std::string model);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void send_created();
  bool closed() const { return closed_; }
  /* Service shutdown: say goodbye; the socket is dropped right after. */
  void close_for_shutdown();

private:
  using MemberList = std::vector<std::pair<std::string, std::string>>;

  // ---- session.cpp: the connection, the events, the fault hook ----
  // GLib callbacks: nothing may throw out of them.
  static void on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data);
  static void on_closed_cb(SoupWebsocketConnection *, gpointer data);
  static void on_error_cb(SoupWebsocketConnection *, GError *error, gpointer data);
  static gboolean on_close_timeout_cb(gpointer data);
  void cancel_close_timer();
  void on_closed(); // may delete this

  /* Every event goes through here; `transcript` is set for completed events. Events keep the
   * order they were produced in (order_). */
  void send(const char *type, Members body, const std::string *transcript = nullptr);
  void send_now(const char *type, const MemberList &body, const std::string *transcript);
  void send_error(const ClientError &e, const std::optional<std::string> &client_event_id);
  void write(const Outgoing &o) override;
  void execute_close(const Outgoing &o) override; // may delete this

  void note_fault(const char *name);
  void after_append(); // the fault hook after each counted append

  void on_message(gint type, GBytes *message);
  void dispatch(JsonObject *root, const char *data, gsize len);
  void handle_update(JsonObject *root, const std::optional<std::string> &evid);
  bool handle_append(JsonObject *root, const std::optional<std::string> &evid);
  void handle_commit(const std::optional<std::string> &evid);
  void handle_finish();

  // ---- session_audio.cpp: audio -> utterances -> transcription events ----
  void process_audio(const int16_t *s, size_t n);
  gint64 to_ms(guint64 sample) const;
  std::unique_ptr<Recognizer> new_recognizer();
  void trim_buffer(guint64 keep_from);
  void process_vad(const int16_t *s, size_t n);
  void start_utterance(guint64 start, guint64 interval);
  void feed_recognizer();
  void end_utterance(guint64 end);
  void process_manual(const int16_t *s, size_t n);
  std::string language() const;
  void send_text(const PartialResult &p);
  void send_text_now(const std::string &item, const std::string &lang, const std::string &emotion,
                     const PartialResult &p);
  void send_partial();
  void request_partial_async();
  void complete_item(bool vad);
  void complete_item_async();
  void send_completed(const std::string &item, const std::string &language,
                      const std::string &emotion, const std::string &transcript);
  void flush_swapped();
  std::function<void(std::function<void()>)> service_thread_poster();

  SessionOwner &owner_;
  SoupWebsocketConnection *conn_;
  GSocket *socket_; /* the connection's socket, for abrupt drops; may be null */
  size_t record_;
  std::string id_;
  std::string model_;
  SessionConfig cfg_;
  GSource *close_timer_ = nullptr;
  bool closed_ = false;
  bool server_closing_ = false;
  bool finish_received_ = false;

  SessionFaults faults_;
  Outbox outbox_;               // after faults_: its delay comes from there
  EventOrder order_;            // events waiting behind asynchronous results
  guint appends_ = 0;           // counted appends, as SessionRecord::appends
  guint64 audio_bytes_ = 0;     // as SessionRecord::audio_bytes
  guint64 decoded_samples_ = 0; // as SessionRecord::decoded_samples

  std::unique_ptr<AudioInput> input_; // created by the first append
  std::unique_ptr<EnergyVad> vad_;    // VAD mode only
  guint64 position_ = 0;              // samples received in this session
  std::vector<int16_t> buf_;          // VAD: samples [buf_origin_, position_)
  guint64 buf_origin_ = 0;
  guint64 fed_until_ = 0;
  guint64 next_partial_ = 0;
  std::unique_ptr<Recognizer> rec_; // utterance in progress
  std::optional<PartialResult> last_partial_;
  // Asynchronous engines: partial requests of the utterance in progress (shared with their
  // result callbacks, which may arrive after the next utterance started).
  struct AsyncPartials {
    bool in_flight = false;            // a request is being computed
    bool wanted = false;               // another was due meanwhile
    std::optional<PartialResult> last; // last one sent, to skip unchanged snapshots
  };
  std::shared_ptr<AsyncPartials> async_partials_ = std::make_shared<AsyncPartials>();
  std::list<std::unique_ptr<Recognizer>> finishing_;           // finished, final not yet delivered
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // expires with the session
  std::string item_id_;
  std::optional<std::string> prev_item_id_;
  guint finals_produced_ = 0;                         // utterances whose final was produced
  std::function<void()> swapped_;                     // reverse_finals: waits for the next final
  std::vector<std::function<void()>> after_finished_; // finals_after_finished_from
};

} // namespace qwenasr::local
