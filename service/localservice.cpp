// SPDX-License-Identifier: LGPL-2.1-or-later
/* Server side of the local Qwen-ASR stand-in: a SoupServer on a private thread and main context,
 * the handshake checks, and one Session object per WebSocket connection that implements the
 * event protocol (protocol.md §2, §3, §7, §8.2). Recognition is delegated to engine.h, voice
 * activity to vad.h, payload decoding to audioinput.h and fault decisions to faults.h, so this
 * file only knows the protocol; faults act through one hook after each append (after_append) and
 * one outgoing queue (post/flush) that decides "write now / hold / drop". */
#include "localservice.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "audioinput.h"
#include "faults.h"
#include "vad.h"

namespace qwenasr::local {

namespace {

constexpr const char kPath[] = "/api-ws/v1/realtime";
constexpr size_t kMaxAudioField = 15u * 1024u * 1024u; // documented limit of the Base64 string

const char *const kLanguages[] = {"zh", "yue", "en",  "ja", "de", "ko", "ru", "fr", "pt",
                                  "ar", "it",  "es",  "hi", "id", "th", "tr", "uk", "vi",
                                  "cs", "da",  "fil", "fi", "is", "ms", "no", "pl", "sv"};

std::string random_id(const char *prefix) {
  static const char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = prefix;
  for (int i = 0; i < 21; i++)
    id += kAlnum[g_random_int_range(0, 62)];
  return id;
}

/* --- Tiny JSON writer: fixed key order and short numbers (json-glib prints 0.2 as
 * 0.20000000000000001, which is legal but unlike the real service). --- */

std::string jstr(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      o += "\\\"";
      break;
    case '\\':
      o += "\\\\";
      break;
    case '\n':
      o += "\\n";
      break;
    case '\r':
      o += "\\r";
      break;
    case '\t':
      o += "\\t";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        g_snprintf(buf, sizeof buf, "\\u%04x", c);
        o += buf;
      } else {
        o += static_cast<char>(c);
      }
    }
  }
  return o + "\"";
}

std::string jint(gint64 v) {
  return std::to_string(v);
}

std::string jdbl(double d) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int prec = 1; prec <= 17; prec++) {
    char fmt[8];
    g_snprintf(fmt, sizeof fmt, "%%.%dg", prec);
    g_ascii_formatd(buf, sizeof buf, fmt, d);
    if (g_ascii_strtod(buf, nullptr) == d)
      break;
  }
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos)
    s += ".0"; // keep it visibly a float, like the documented examples
  return s;
}

std::string jopt(const std::optional<std::string> &s) {
  return s ? jstr(*s) : "null";
}

using Members = std::initializer_list<std::pair<const char *, std::string>>;

std::string jobj(Members members) {
  std::string o = "{";
  bool first = true;
  for (const auto &m : members) {
    if (!first)
      o += ',';
    first = false;
    o += jstr(m.first);
    o += ':';
    o += m.second;
  }
  return o + "}";
}

/* Client errors: reported with an error event, the connection stays open (protocol.md §6). */
struct ClientError {
  std::string code;
  std::string message;
  std::optional<std::string> param;
};

std::string node_text(JsonNode *node) {
  if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
    return json_node_get_string(node);
  char *t = json_to_string(node, FALSE);
  std::string s = t ? t : "";
  g_free(t);
  return s;
}

const char *node_kind(JsonNode *node) {
  if (JSON_NODE_HOLDS_OBJECT(node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY(node))
    return "an array";
  if (JSON_NODE_HOLDS_NULL(node))
    return "null";
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_STRING)
    return "a string";
  if (t == G_TYPE_BOOLEAN)
    return "a boolean";
  return "a number";
}

ClientError type_error(const std::string &param, const char *expected, JsonNode *node) {
  return {"invalid_type",
          "Invalid type for '" + param + "': expected " + expected + ", but got " +
              node_kind(node) + ".",
          param};
}

bool is_number(JsonNode *node) {
  if (!JSON_NODE_HOLDS_VALUE(node))
    return false;
  GType t = json_node_get_value_type(node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

/* Integers may arrive as 800 or 800.0 depending on the client's JSON library. */
bool as_integer(JsonNode *node, gint64 &out) {
  if (!JSON_NODE_HOLDS_VALUE(node))
    return false;
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_INT64) {
    out = json_node_get_int(node);
    return true;
  }
  if (t == G_TYPE_DOUBLE) {
    double d = json_node_get_double(node);
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
      out = static_cast<gint64>(d);
      return true;
    }
  }
  return false;
}

/* A member that is absent or JSON null counts as not given: the docs' SDKs send nulls. */
JsonNode *member(JsonObject *obj, const char *name) {
  JsonNode *n = json_object_get_member(obj, name);
  return (n && !JSON_NODE_HOLDS_NULL(n)) ? n : nullptr;
}

struct SessionConfig {
  std::string input_audio_format = "pcm";
  int sample_rate = 16000;
  bool vad = true;
  double threshold = 0.2;
  gint64 silence_duration_ms = 800;
  bool transcription = false; // input_audio_transcription is an object (not null)
  std::optional<std::string> language;
  std::optional<std::string> corpus_text;
};

} // namespace

class Session;

struct LocalService::Impl {
  explicit Impl(ServiceOptions o) : opts(std::move(o)), handshake_faults(opts.faults) {}

  ServiceOptions opts;
  HandshakeFaults handshake_faults; // service thread only

  // Set by start() before the thread runs, read-only afterwards.
  std::thread thread;
  GMainContext *ctx = nullptr;
  std::atomic<guint16> port{0};
  std::atomic<guint> rejected{0};

  // Start handshake between start() and the service thread.
  std::mutex start_mu;
  std::condition_variable start_cv;
  bool start_done = false;
  GError *start_error = nullptr;

  // Service thread only.
  GMainLoop *loop = nullptr;
  SoupServer *server = nullptr;
  std::unique_ptr<Engine> engine;
  std::list<std::unique_ptr<Session>> live;
  bool shutting_down = false;

  mutable std::mutex rec_mu;
  std::vector<SessionRecord> records;

  template <typename F> void update_record(size_t index, F &&f) {
    std::lock_guard<std::mutex> lock(rec_mu);
    if (index < records.size())
      f(records[index]);
  }

  void log(const std::string &line) {
    if (!opts.event_log)
      return;
    try {
      opts.event_log(line);
    } catch (...) {
      // A logging hook must not take the service down.
    }
  }

  void remove_session(Session *s);
  void thread_main();
  void shutdown_on_thread();
  void reject(SoupServerMessage *msg, guint status, const char *code, const char *message,
              guint retry_after_s = 0);
};

/* One WebSocket connection = one recognition session (one session per socket, protocol §2.4). */
class Session {
public:
  Session(LocalService::Impl *impl, SoupWebsocketConnection *conn, GSocket *socket, size_t record,
          std::string id, std::string model)
      : impl_(impl), conn_(SOUP_WEBSOCKET_CONNECTION(g_object_ref(conn))),
        socket_(socket ? G_SOCKET(g_object_ref(socket)) : nullptr), record_(record),
        id_(std::move(id)), model_(std::move(model)),
        faults_(impl->opts.faults, static_cast<guint>(record + 1)) {
    g_signal_connect(conn_, "message", G_CALLBACK(on_message_cb), this);
    g_signal_connect(conn_, "closed", G_CALLBACK(on_closed_cb), this);
    g_signal_connect(conn_, "error", G_CALLBACK(on_error_cb), this);
  }

  ~Session() {
    cancel_close_timer();
    cancel_flush_timer();
    g_signal_handlers_disconnect_by_data(conn_, this);
    g_object_unref(conn_);
    if (socket_)
      g_object_unref(socket_);
  }

  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void send_created() { send("session.created", {{"session", session_json(false)}}); }

  bool closed() const { return closed_; }

  /* Service shutdown: say goodbye; the socket is dropped right after. */
  void close_for_shutdown() {
    cancel_close_timer();
    cancel_flush_timer();
    outbox_.clear();
    pending_.clear();
    if (soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
      server_closing_ = true;
      soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "service stopping");
    }
  }

private:
  // ---- GLib callbacks: nothing may throw out of them. ----

  static void on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data) {
    auto *self = static_cast<Session *>(data);
    try {
      self->on_message(type, message);
    } catch (const std::exception &e) {
      g_warning("local service: session %s: %s", self->id_.c_str(), e.what());
    } catch (...) {
      g_warning("local service: session %s: unknown exception", self->id_.c_str());
    }
  }

  static void on_closed_cb(SoupWebsocketConnection *, gpointer data) {
    auto *self = static_cast<Session *>(data);
    try {
      self->on_closed(); // may delete self
    } catch (...) {
      g_warning("local service: exception while closing a session");
    }
  }

  static void on_error_cb(SoupWebsocketConnection *, GError *error, gpointer data) {
    auto *self = static_cast<Session *>(data);
    try {
      self->impl_->log(self->id_ + " !! " + (error ? error->message : "unknown error"));
    } catch (...) {
    }
  }

  static gboolean on_close_timeout_cb(gpointer data) {
    auto *self = static_cast<Session *>(data);
    g_source_unref(self->close_timer_);
    self->close_timer_ = nullptr;
    if (soup_websocket_connection_get_state(self->conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
      self->server_closing_ = true;
      soup_websocket_connection_close(self->conn_, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    }
    return G_SOURCE_REMOVE;
  }

  void cancel_close_timer() {
    if (close_timer_) {
      g_source_destroy(close_timer_);
      g_source_unref(close_timer_);
      close_timer_ = nullptr;
    }
  }

  void on_closed() {
    closed_ = true;
    cancel_close_timer();
    cancel_flush_timer();
    outbox_.clear();
    pending_.clear();
    // Closing without session.finish drops the utterance in progress silently (protocol §2.4).
    rec_.reset();
    finishing_.clear(); // cancels decodes nobody will read
    const bool by_client = !server_closing_;
    impl_->update_record(record_, [&](SessionRecord &r) {
      r.closed = true;
      r.closed_by_client = by_client;
    });
    impl_->log(id_ + " closed (" + (by_client ? "by client" : "by service") + ", code " +
               std::to_string(soup_websocket_connection_get_close_code(conn_)) + ")");
    impl_->remove_session(this); // deletes this unless shutting down
  }

  // ---- Sending ----

  using MemberList = std::vector<std::pair<std::string, std::string>>;

  /* Every event goes through here; `transcript` is set for completed events. Events keep the
   * order they were produced in even when an asynchronous engine's result is still being
   * computed: then they wait behind it (see in_order()). */
  void send(const char *type, Members body, const std::string *transcript = nullptr) {
    // Members is an initializer_list (its array dies with this call), so it is copied.
    MemberList members(body.begin(), body.end());
    if (pending_.empty() || emitting_) {
      send_now(type, members, transcript);
      return;
    }
    std::optional<std::string> t;
    if (transcript)
      t = *transcript;
    in_order([this, type = std::string(type), members = std::move(members), t] {
      send_now(type.c_str(), members, t ? &*t : nullptr);
    });
  }

  void send_now(const char *type, const MemberList &body, const std::string *transcript = nullptr) {
    std::string json = "{\"event_id\":" + jstr(random_id("event_")) + ",\"type\":" + jstr(type);
    for (const auto &m : body)
      json += "," + jstr(m.first) + ":" + m.second;
    json += "}";
    if (std::strcmp(type, "session.created") != 0) {
      for (auto &j : faults_.junk_before_event()) {
        Outgoing o;
        o.kind = j.binary ? Outgoing::Kind::Binary : Outgoing::Kind::Text;
        o.data = std::move(j.data);
        o.junk = j.what;
        post(std::move(o));
      }
    }
    Outgoing o;
    o.data = std::move(json);
    o.type = type;
    if (transcript) {
      o.transcript = *transcript;
      if (faults_.finals_binary())
        o.kind = Outgoing::Kind::Binary; // libsoup sends no text that is not UTF-8
    }
    post(std::move(o));
  }

  // ---- Ordering behind asynchronous engine results. ----

  /* A place in the session's event order. An asynchronous result reserves one when it is
   * requested and fills it (ready, emit) when it arrives on the service thread; everything
   * produced in between waits behind it, so clients see speech_stopped, committed, the final
   * and the next utterance's events in the same order as with a synchronous engine. */
  struct Slot {
    bool ready = false;
    std::function<void()> emit; // may be empty: nothing to send (e.g. an unchanged partial)
  };

  void in_order(std::function<void()> f) {
    if (pending_.empty() || emitting_) {
      f();
      return;
    }
    auto slot = std::make_shared<Slot>();
    slot->ready = true;
    slot->emit = std::move(f);
    pending_.push_back(std::move(slot));
  }

  std::shared_ptr<Slot> reserve_slot() {
    pending_.push_back(std::make_shared<Slot>());
    return pending_.back();
  }

  void drain_slots() {
    while (!pending_.empty() && pending_.front()->ready) {
      std::shared_ptr<Slot> slot = std::move(pending_.front());
      pending_.pop_front();
      if (slot->emit) {
        // What a slot sends takes the slot's place, not a place behind later slots.
        emitting_ = true;
        try {
          slot->emit();
        } catch (...) {
          emitting_ = false;
          throw;
        }
        emitting_ = false;
      }
    }
  }

  /* Runs f on the service thread, called from an engine thread. f is dropped if the session
   * is gone by then (alive_ expired: both checked and destroyed on the service thread). */
  std::function<void(std::function<void()>)> service_thread_poster() {
    std::weak_ptr<bool> alive = alive_;
    GMainContext *ctx = impl_->ctx;
    return [alive, ctx](std::function<void()> f) {
      auto *job = new std::function<void()>([alive, f = std::move(f)] {
        if (!alive.expired())
          f();
      });
      g_main_context_invoke_full(
          ctx, G_PRIORITY_DEFAULT,
          [](gpointer data) -> gboolean {
            try {
              (*static_cast<std::function<void()> *>(data))();
            } catch (const std::exception &e) {
              g_warning("local service: engine result: %s", e.what());
            } catch (...) {
              g_warning("local service: engine result: unknown exception");
            }
            return G_SOURCE_REMOVE;
          },
          job, [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
    };
  }

  // ---- The outgoing queue: the one place that decides "write now / hold / drop". ----

  struct Outgoing {
    enum class Kind { Text, Binary, Close } kind = Kind::Text;
    std::string data;                      // frame payload, or close reason
    std::string type;                      // event type; "" for junk and closes
    const char *junk = nullptr;            // junk description, for the log
    std::optional<std::string> transcript; // completed events
    FaultClose close = FaultClose::None;
    gint64 due = 0; // monotonic time (us) before which it must not leave
  };

  void post(Outgoing o) {
    if (fault_closing_ && o.kind != Outgoing::Kind::Close)
      return; // the session is going down by a fault: nothing more leaves
    const gint64 now = g_get_monotonic_time();
    o.due = now + static_cast<gint64>(faults_.event_delay_ms()) * G_TIME_SPAN_MILLISECOND;
    if (outbox_.empty() && o.due <= now && now >= hold_until_ && o.kind != Outgoing::Kind::Close) {
      write(o); // the fault-free path: written at once, as before faults existed
      return;
    }
    outbox_.push_back(std::move(o));
    if (outbox_.size() == 1 || !flush_timer_)
      schedule_flush(); // otherwise the pending timer already serves the queue's front
  }

  void schedule_flush() {
    cancel_flush_timer();
    if (outbox_.empty())
      return;
    const gint64 when = std::max(outbox_.front().due, hold_until_);
    const gint64 wait = std::max<gint64>(0, when - g_get_monotonic_time());
    flush_timer_ = g_timeout_source_new(static_cast<guint>((wait + 999) / 1000));
    g_source_set_callback(flush_timer_, on_flush_cb, this, nullptr);
    g_source_attach(flush_timer_, impl_->ctx);
  }

  void cancel_flush_timer() {
    if (flush_timer_) {
      g_source_destroy(flush_timer_);
      g_source_unref(flush_timer_);
      flush_timer_ = nullptr;
    }
  }

  static gboolean on_flush_cb(gpointer data) {
    auto *self = static_cast<Session *>(data);
    try {
      self->flush(); // may delete self
    } catch (...) {
      g_warning("local service: exception while sending queued events");
    }
    return G_SOURCE_REMOVE;
  }

  void flush() {
    g_source_unref(flush_timer_);
    flush_timer_ = nullptr;
    const gint64 now = g_get_monotonic_time();
    while (!outbox_.empty() && outbox_.front().due <= now && now >= hold_until_) {
      Outgoing o = std::move(outbox_.front());
      outbox_.pop_front();
      if (o.kind == Outgoing::Kind::Close) {
        outbox_.clear();
        execute_close(o); // may delete this
        return;
      }
      write(o);
    }
    schedule_flush();
  }

  void write(const Outgoing &o) {
    if (soup_websocket_connection_get_state(conn_) != SOUP_WEBSOCKET_STATE_OPEN) {
      impl_->log(id_ + " -x " + (o.junk ? o.junk : o.type) + " dropped (connection not open)");
      return;
    }
    if (o.junk) {
      impl_->log(id_ + " -> junk: " + o.junk + " (" + std::to_string(o.data.size()) + " bytes)");
      impl_->update_record(record_, [](SessionRecord &r) { r.junk_frames++; });
      if (o.kind == Outgoing::Kind::Binary)
        soup_websocket_connection_send_binary(conn_, o.data.data(), o.data.size());
      else
        soup_websocket_connection_send_text(conn_, o.data.c_str());
      return;
    }
    impl_->update_record(record_, [&](SessionRecord &r) {
      r.server_event_types.push_back(o.type);
      if (o.transcript)
        r.transcripts.push_back(*o.transcript);
      if (o.type == "session.finished")
        r.finished = true;
    });
    impl_->log(id_ + " -> " + o.data);
    if (o.kind == Outgoing::Kind::Binary)
      soup_websocket_connection_send_binary(conn_, o.data.data(), o.data.size());
    else
      soup_websocket_connection_send_text(conn_, o.data.c_str());
  }

  // ---- Faults: the hook after each append and the closes it may decide. ----

  void note_fault(const char *name) {
    impl_->update_record(record_, [&](SessionRecord &r) { r.injected_faults.emplace_back(name); });
  }

  void after_append() {
    const AppendFaults f = faults_.after_append(appends_, decoded_samples_, cfg_.sample_rate);
    if (f.freeze_ms > 0) {
      note_fault("freeze");
      impl_->log(id_ + " !! fault: freezing the service thread for " + std::to_string(f.freeze_ms) +
                 " ms");
      g_usleep(static_cast<gulong>(f.freeze_ms) * 1000);
    }
    if (f.stall_ms > 0) {
      note_fault("stall");
      impl_->log(id_ + " !! fault: holding events for " + std::to_string(f.stall_ms) + " ms");
      hold_until_ = std::max(hold_until_, g_get_monotonic_time() + static_cast<gint64>(f.stall_ms) *
                                                                       G_TIME_SPAN_MILLISECOND);
      schedule_flush();
    }
    if (f.close == FaultClose::None)
      return;
    impl_->log(id_ + " !! fault: " + f.reason);
    if (f.close == FaultClose::ServerError) {
      send("error", {{"error", jobj({{"type", jstr("server_error")},
                                     {"code", jstr("internal_error")},
                                     {"message", jstr("Injected server error")},
                                     {"param", "null"},
                                     {"event_id", "null"}})}});
    }
    Outgoing o;
    o.kind = Outgoing::Kind::Close;
    o.close = f.close;
    o.data = f.close == FaultClose::ServerError ? "Injected server error" : "Injected fault";
    post(std::move(o));
    fault_closing_ = true; // from now on the client's events are ignored
  }

  void execute_close(const Outgoing &o) {
    if (soup_websocket_connection_get_state(conn_) != SOUP_WEBSOCKET_STATE_OPEN)
      return;
    server_closing_ = true;
    cancel_close_timer();
    const bool abrupt = o.close == FaultClose::Abrupt;
    note_fault(o.close == FaultClose::ServerError ? "server_error"
               : abrupt                           ? "close_abrupt"
                                                  : "close_1011");
    impl_->update_record(record_, [](SessionRecord &r) { r.fault_closed = true; });
    if (!abrupt) {
      impl_->log(id_ + " !! fault: closing with 1011");
      soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, o.data.c_str());
      return;
    }
    impl_->log(id_ + " !! fault: dropping the TCP connection");
    /* shutdown(2), not close: the fd stays valid for the sources libsoup still polls (closing
     * it under them makes GLib warn "Socket check failed"), and the peer sees the TCP
     * connection end without a close frame either way. */
    GError *err = nullptr;
    GIOStream *io = soup_websocket_connection_get_io_stream(conn_);
    GSocket *socket = G_IS_SOCKET_CONNECTION(io)
                          ? g_socket_connection_get_socket(G_SOCKET_CONNECTION(io))
                          : socket_;
    bool done =
        socket ? g_socket_shutdown(socket, TRUE, TRUE, &err) : g_io_stream_close(io, nullptr, &err);
    if (!done) {
      impl_->log(id_ + " !! dropping the connection failed: " + (err ? err->message : "?"));
      g_clear_error(&err);
    }
  }

  void send_error(const ClientError &e, const std::optional<std::string> &client_event_id) {
    send("error", {{"error", jobj({{"type", jstr("invalid_request_error")},
                                   {"code", jstr(e.code)},
                                   {"message", jstr(e.message)},
                                   {"param", jopt(e.param)},
                                   {"event_id", jopt(client_event_id)}})}});
  }

  std::string session_json(bool with_rate) const {
    std::string transcription = "null";
    if (cfg_.transcription) {
      std::string inner;
      if (cfg_.language)
        inner += "\"language\":" + jstr(*cfg_.language);
      if (cfg_.corpus_text)
        inner += std::string(inner.empty() ? "" : ",") +
                 "\"corpus\":" + jobj({{"text", jstr(*cfg_.corpus_text)}});
      transcription = "{" + inner + "}";
    }
    std::string turn = "null";
    if (cfg_.vad)
      turn = jobj({{"type", jstr("server_vad")},
                   {"threshold", jdbl(cfg_.threshold)},
                   {"silence_duration_ms", jint(cfg_.silence_duration_ms)}});
    std::string s = jobj({{"id", jstr(id_)},
                          {"object", jstr("realtime.session")},
                          {"model", jstr(model_)},
                          {"modalities", "[\"text\"]"},
                          {"input_audio_format", jstr(cfg_.input_audio_format)},
                          {"input_audio_transcription", transcription},
                          {"turn_detection", turn}});
    if (with_rate) // [UNK] whether the real service echoes it; handy for clients to verify.
      s.insert(s.size() - 1, ",\"sample_rate\":" + jint(cfg_.sample_rate));
    return s;
  }

  // ---- Receiving ----

  void on_message(gint type, GBytes *message) {
    gsize len = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(message, &len));
    if (fault_closing_) {
      impl_->log(id_ + " <- ignored (" + std::to_string(len) + " bytes): closing by a fault");
      return;
    }
    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
      impl_->log(id_ + " <- binary frame (" + std::to_string(len) + " bytes)");
      send_error({"invalid_event",
                  "Binary WebSocket frames are not supported; send JSON events as text frames.",
                  std::nullopt},
                 std::nullopt);
      return;
    }

    JsonParser *parser = json_parser_new();
    GError *err = nullptr;
    if (!json_parser_load_from_data(parser, data ? data : "", static_cast<gssize>(len), &err) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
      std::string why = err ? err->message : "the message is not a JSON object";
      g_clear_error(&err);
      g_object_unref(parser);
      impl_->log(id_ + " <- invalid JSON (" + std::to_string(len) + " bytes)");
      send_error({"invalid_json", "The message could not be parsed as a JSON object: " + why,
                  std::nullopt},
                 std::nullopt);
      return;
    }
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    try {
      dispatch(root, data, len);
    } catch (...) {
      g_object_unref(parser);
      throw;
    }
    g_object_unref(parser);
  }

  void dispatch(JsonObject *root, const char *data, gsize len) {
    std::optional<std::string> evid;
    if (JsonNode *n = member(root, "event_id"))
      evid = node_text(n);
    JsonNode *tn = member(root, "type");
    if (!tn || !JSON_NODE_HOLDS_VALUE(tn) || json_node_get_value_type(tn) != G_TYPE_STRING) {
      impl_->log(id_ + " <- event without a string type");
      send_error({"invalid_event", "The event has no string 'type' field.", "type"}, evid);
      return;
    }
    const std::string type = json_node_get_string(tn);
    impl_->update_record(record_, [&](SessionRecord &r) { r.client_event_types.push_back(type); });
    if (type == "input_audio_buffer.append")
      impl_->log(id_ + " <- input_audio_buffer.append (" + std::to_string(len) + " bytes)");
    else
      impl_->log(id_ + " <- " + std::string(data, len));

    if (finish_received_) {
      // [UNK] real behaviour; one session per socket, so nothing after finish can take effect.
      send_error(
          {"invalid_event", "The session is finished; no further events are accepted.", "type"},
          evid);
      return;
    }
    if (type == "session.update") {
      impl_->update_record(record_,
                           [&](SessionRecord &r) { r.last_session_update_json.assign(data, len); });
      handle_update(root, evid);
    } else if (type == "input_audio_buffer.append") {
      if (handle_append(root, evid))
        after_append();
    } else if (type == "input_audio_buffer.commit") {
      handle_commit(evid);
    } else if (type == "session.finish") {
      handle_finish();
    } else {
      send_error({"invalid_event",
                  "Invalid value: '" + type +
                      "'. Supported values are: 'session.update', 'input_audio_buffer.append', "
                      "'input_audio_buffer.commit', 'session.finish'.",
                  "type"},
                 evid);
    }
  }

  // ---- session.update ----

  std::optional<ClientError> parse_update(JsonObject *root, SessionConfig &cfg) const {
    JsonNode *sn = member(root, "session");
    if (!sn)
      return ClientError{"missing_required_parameter", "Missing required parameter: 'session'.",
                         "session"};
    if (!JSON_NODE_HOLDS_OBJECT(sn))
      return type_error("session", "an object", sn);
    JsonObject *s = json_node_get_object(sn);

    if (JsonNode *n = member(s, "input_audio_format")) {
      const std::string p = "session.input_audio_format";
      if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return type_error(p, "a string", n);
      const std::string v = json_node_get_string(n);
      if (v != "pcm" && v != "opus")
        return ClientError{"invalid_value",
                           "Invalid value: '" + v + "'. Supported values are: 'pcm', 'opus'.", p};
      cfg.input_audio_format = v;
    }

    if (JsonNode *n = member(s, "sample_rate")) {
      const std::string p = "session.sample_rate";
      gint64 v = 0;
      if (!is_number(n))
        return type_error(p, "an integer", n);
      if (!as_integer(n, v) || (v != 16000 && v != 8000))
        return ClientError{
            "invalid_value",
            "Invalid value: '" + node_text(n) + "'. Supported values are: 16000, 8000.", p};
      cfg.sample_rate = static_cast<int>(v);
    }

    if (JsonNode *n = json_object_get_member(s, "turn_detection")) {
      if (JSON_NODE_HOLDS_NULL(n)) {
        cfg.vad = false; // explicit null selects Manual mode (protocol §2.1)
      } else if (!JSON_NODE_HOLDS_OBJECT(n)) {
        return type_error("session.turn_detection", "an object or null", n);
      } else {
        JsonObject *td = json_node_get_object(n);
        JsonNode *t = member(td, "type");
        const std::string pt = "session.turn_detection.type";
        if (!t)
          return ClientError{"missing_required_parameter",
                             "Missing required parameter: '" + pt + "'.", pt};
        if (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_STRING)
          return type_error(pt, "a string", t);
        if (std::string(json_node_get_string(t)) != "server_vad")
          return ClientError{
              "invalid_value",
              "Invalid value: '" + node_text(t) + "'. Supported values are: 'server_vad'.", pt};
        // The object replaces the VAD settings; omitted knobs take the documented defaults.
        double threshold = 0.2;
        gint64 silence = 800;
        if (JsonNode *th = member(td, "threshold")) {
          const std::string p = "session.turn_detection.threshold";
          if (!is_number(th))
            return type_error(p, "a number", th);
          threshold = json_node_get_double(th);
          if (!(threshold >= -1.0 && threshold <= 1.0))
            return ClientError{"invalid_value",
                               "Invalid value: '" + node_text(th) +
                                   "'. Expected a number between -1.0 and 1.0.",
                               p};
        }
        if (JsonNode *sd = member(td, "silence_duration_ms")) {
          const std::string p = "session.turn_detection.silence_duration_ms";
          if (!is_number(sd))
            return type_error(p, "an integer", sd);
          if (!as_integer(sd, silence) || silence < 200 || silence > 6000)
            return ClientError{"invalid_value",
                               "Invalid value: '" + node_text(sd) +
                                   "'. Expected an integer between 200 and 6000.",
                               p};
        }
        cfg.vad = true;
        cfg.threshold = threshold;
        cfg.silence_duration_ms = silence;
      }
    }

    if (JsonNode *n = json_object_get_member(s, "input_audio_transcription")) {
      if (JSON_NODE_HOLDS_NULL(n)) {
        cfg.transcription = false;
        cfg.language.reset();
        cfg.corpus_text.reset();
      } else if (!JSON_NODE_HOLDS_OBJECT(n)) {
        return type_error("session.input_audio_transcription", "an object or null", n);
      } else {
        JsonObject *tr = json_node_get_object(n);
        std::optional<std::string> language, corpus;
        if (JsonNode *l = member(tr, "language")) {
          const std::string p = "session.input_audio_transcription.language";
          if (!JSON_NODE_HOLDS_VALUE(l) || json_node_get_value_type(l) != G_TYPE_STRING)
            return type_error(p, "a string", l);
          const std::string v = json_node_get_string(l);
          if (std::find(std::begin(kLanguages), std::end(kLanguages), v) == std::end(kLanguages)) {
            std::string list;
            for (const char *code : kLanguages)
              list += std::string(list.empty() ? "'" : ", '") + code + "'";
            return ClientError{"invalid_value",
                               "Invalid value: '" + v + "'. Supported values are: " + list + ".",
                               p};
          }
          language = v;
        }
        if (JsonNode *c = member(tr, "corpus")) {
          if (!JSON_NODE_HOLDS_OBJECT(c))
            return type_error("session.input_audio_transcription.corpus", "an object", c);
          if (JsonNode *t = member(json_node_get_object(c), "text")) {
            const std::string p = "session.input_audio_transcription.corpus.text";
            if (!JSON_NODE_HOLDS_VALUE(t) || json_node_get_value_type(t) != G_TYPE_STRING)
              return type_error(p, "a string", t);
            corpus = json_node_get_string(t);
          }
        }
        // Like the SDKs' dicts, the object replaces the previous transcription settings.
        cfg.transcription = true;
        cfg.language = language;
        cfg.corpus_text = corpus;
      }
    }
    return std::nullopt;
  }

  void handle_update(JsonObject *root, const std::optional<std::string> &evid) {
    SessionConfig cfg = cfg_;
    if (auto e = parse_update(root, cfg)) {
      send_error(*e, evid); // nothing is applied: an update is all or nothing
      return;
    }
    if (input_) {
      // [UNK] what the real service does; the stream's timebase and decoder would be ambiguous.
      const char *param = nullptr;
      std::string value;
      if (cfg.sample_rate != cfg_.sample_rate) {
        param = "session.sample_rate";
        value = std::to_string(cfg.sample_rate);
      } else if (cfg.input_audio_format != cfg_.input_audio_format) {
        param = "session.input_audio_format";
        value = cfg.input_audio_format;
      } else if (cfg.vad != cfg_.vad) {
        param = "session.turn_detection";
        value = cfg.vad ? "server_vad" : "null";
      }
      if (param) {
        send_error({"invalid_value",
                    "Invalid value: '" + value + "'. '" + param +
                        "' cannot be changed after audio has been appended (local service "
                        "restriction).",
                    std::string(param)},
                   evid);
        return;
      }
    }
    cfg_ = cfg;
    if (vad_)
      vad_->configure(cfg_.threshold, static_cast<unsigned>(cfg_.silence_duration_ms));
    send("session.updated", {{"session", session_json(true)}});
  }

  // ---- Audio ----

  /* Returns whether the append counted (valid Base64 within the limit). */
  bool handle_append(JsonObject *root, const std::optional<std::string> &evid) {
    JsonNode *an = member(root, "audio");
    if (!an) {
      send_error({"missing_required_parameter", "Missing required parameter: 'audio'.", "audio"},
                 evid);
      return false;
    }
    if (!JSON_NODE_HOLDS_VALUE(an) || json_node_get_value_type(an) != G_TYPE_STRING) {
      send_error(type_error("audio", "a Base64 string", an), evid);
      return false;
    }
    const char *b64 = json_node_get_string(an);
    const size_t b64_len = strlen(b64);
    if (b64_len > kMaxAudioField) {
      send_error({"invalid_value",
                  "The 'audio' field is " + std::to_string(b64_len) +
                      " characters long; at most 15 MiB (15728640) are allowed per event.",
                  "audio"},
                 evid);
      return false;
    }
    std::vector<uint8_t> bytes;
    if (!base64_decode_strict(b64, b64_len, bytes)) {
      send_error({"invalid_value", "The 'audio' field is not valid Base64.", "audio"}, evid);
      return false;
    }
    appends_++;
    audio_bytes_ += bytes.size();
    impl_->update_record(record_, [&](SessionRecord &r) {
      r.appends++;
      r.audio_bytes += bytes.size();
    });
    if (!input_) {
      // The format, rate and mode are fixed by the first audio (defaults if no update came).
      input_ = cfg_.input_audio_format == "opus" ? make_ogg_opus_input(cfg_.sample_rate)
                                                 : make_pcm_input();
      if (cfg_.vad)
        vad_ = std::make_unique<EnergyVad>(cfg_.sample_rate, cfg_.threshold,
                                           static_cast<unsigned>(cfg_.silence_duration_ms));
    }
    std::vector<int16_t> samples;
    std::string why;
    const bool decoded = input_->decode(bytes.data(), bytes.size(), samples, why);
    decoded_samples_ += samples.size();
    impl_->update_record(record_, [&](SessionRecord &r) {
      r.decoded_samples = decoded_samples_;
      r.ogg_serial = input_->stream_serial();
    });
    if (!decoded) {
      send_error({"invalid_value", "The audio could not be decoded: " + why, "audio"}, evid);
      return true;
    }
    if (samples.empty())
      return true;
    if (vad_)
      process_vad(samples.data(), samples.size());
    else
      process_manual(samples.data(), samples.size());
    return true;
  }

  gint64 to_ms(guint64 sample) const {
    return static_cast<gint64>(sample * 1000 / static_cast<guint64>(cfg_.sample_rate));
  }

  EngineConfig engine_config() const {
    return EngineConfig{cfg_.sample_rate, cfg_.language.value_or(""),
                        cfg_.corpus_text.value_or("")};
  }

  std::unique_ptr<Recognizer> new_recognizer() {
    auto r = impl_->engine->start_utterance(engine_config());
    if (!r)
      throw std::runtime_error("engine returned no recognizer");
    return r;
  }

  void trim_buffer(guint64 keep_from) {
    if (keep_from <= buf_origin_)
      return;
    const guint64 drop = std::min<guint64>(keep_from - buf_origin_, buf_.size());
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(drop));
    buf_origin_ += drop;
  }

  void process_vad(const int16_t *s, size_t n) {
    const guint64 interval =
        static_cast<guint64>(impl_->opts.partial_interval_ms) * cfg_.sample_rate / 1000;
    size_t i = 0;
    while (i < n) {
      // Feed frame by frame so events, partials and utterance boundaries stay in audio order
      // even when one append holds several utterances.
      const size_t take = std::min(n - i, vad_->samples_to_frame_end());
      buf_.insert(buf_.end(), s + i, s + i + take);
      const auto ev = vad_->push(s + i, take);
      i += take;
      position_ += take;
      if (ev && ev->kind == VadEvent::Kind::SpeechStarted)
        start_utterance(ev->sample, interval);
      else if (ev)
        end_utterance(ev->sample);

      if (vad_->in_speech()) {
        feed_recognizer();
        if (interval > 0 && position_ >= next_partial_) {
          send_partial();
          while (next_partial_ <= position_)
            next_partial_ += interval;
        }
      } else {
        // Idle: keep only the current, incomplete frame (a speech start may begin there).
        trim_buffer(position_ - (vad_->frame_samples() - vad_->samples_to_frame_end()));
      }
    }
  }

  void start_utterance(guint64 start, guint64 interval) {
    trim_buffer(start);
    item_id_ = random_id("item_");
    rec_ = new_recognizer();
    last_partial_.reset();
    async_partials_ = std::make_shared<AsyncPartials>();
    fed_until_ = start;
    next_partial_ = start + (interval > 0 ? interval : 0);
    send("input_audio_buffer.speech_started",
         {{"audio_start_ms", jint(to_ms(start))}, {"item_id", jstr(item_id_)}});
  }

  /* The utterance is [start, last voiced end): trailing silence is never recognised. */
  void feed_recognizer() {
    const guint64 until = vad_->last_voiced_end();
    if (until <= fed_until_)
      return;
    rec_->accept(buf_.data() + (fed_until_ - buf_origin_), until - fed_until_);
    fed_until_ = until;
  }

  void end_utterance(guint64 end) {
    feed_recognizer();
    send("input_audio_buffer.speech_stopped",
         {{"audio_end_ms", jint(to_ms(end))}, {"item_id", jstr(item_id_)}});
    complete_item(true);
  }

  void process_manual(const int16_t *s, size_t n) {
    if (!rec_)
      rec_ = new_recognizer();
    rec_->accept(s, n);
    position_ += n;
  }

  std::string language() const {
    std::string l = rec_ ? rec_->language() : "";
    if (l.empty())
      l = cfg_.language.value_or("en"); // automatic detection reports English here
    return l;
  }

  void send_text(const PartialResult &p) {
    send_text_now(item_id_, language(), rec_->emotion(), p);
  }

  void send_text_now(const std::string &item, const std::string &lang, const std::string &emotion,
                     const PartialResult &p) {
    send("conversation.item.input_audio_transcription.text", {{"item_id", jstr(item)},
                                                              {"content_index", "0"},
                                                              {"language", jstr(lang)},
                                                              {"emotion", jstr(emotion)},
                                                              {"text", jstr(p.text)},
                                                              {"stash", jstr(p.stash)}});
  }

  /* Asynchronous engine: at most one partial per utterance is being computed. A request while
   * one is under way is remembered and made when the answer arrives (then covering all audio up
   * to that moment), so a burst of audio or a slow decoder gives fewer, fresher partials instead
   * of a backlog. */
  void request_partial_async() {
    std::shared_ptr<AsyncPartials> state = async_partials_;
    if (state->in_flight) {
      state->wanted = true;
      return;
    }
    state->in_flight = true;
    state->wanted = false;
    auto slot = reserve_slot();
    const std::string item = item_id_;
    const std::string lang = language();
    const std::string emotion = rec_->emotion();
    auto post = service_thread_poster();
    rec_->request_partial([=](PartialResult p) {
      post([=] {
        state->in_flight = false;
        // Nothing recognised yet, or no news: the slot stays empty (see send_partial()).
        const bool skip =
            (p.text.empty() && p.stash.empty()) ||
            (state->last && state->last->text == p.text && state->last->stash == p.stash);
        if (!skip) {
          state->last = p;
          slot->emit = [this, item, lang, emotion, p] { send_text_now(item, lang, emotion, p); };
        }
        slot->ready = true;
        drain_slots();
        // Only while the same utterance is still being spoken (it owns this state).
        if (state->wanted && rec_ && async_partials_ == state)
          request_partial_async();
      });
    });
  }

  /* Asynchronous engine: the final text and completed events wait for the decode; the
   * recogniser is kept (finishing_) until then, as destroying it cancels the decode. */
  void complete_item_async() {
    auto slot = reserve_slot();
    const std::string item = item_id_;
    const std::string lang = cfg_.language.value_or("en");
    Recognizer *key = rec_.get();
    auto post = service_thread_poster();
    rec_->finish([=](FinalResult r) {
      post([=] {
        finishing_.remove_if(
            [key](const std::unique_ptr<Recognizer> &p) { return p.get() == key; });
        slot->emit = [this, item, lang, r] {
          const std::string language = r.language.empty() ? lang : r.language;
          send_text_now(item, language, r.emotion, r.final_partial);
          send_completed(item, language, r.emotion, r.transcript);
        };
        slot->ready = true;
        drain_slots();
      });
    });
    finishing_.push_back(std::move(rec_));
  }

  /* Skips a snapshot identical to the previous one of this item (e.g. during trailing
   * silence), so partials carry news, like the real service's high-frequency updates. */
  void send_partial() {
    if (!rec_ || rec_->samples_accepted() == 0)
      return;
    if (rec_->asynchronous()) {
      request_partial_async();
      return;
    }
    PartialResult p = rec_->partial();
    if (last_partial_ && last_partial_->text == p.text && last_partial_->stash == p.stash)
      return;
    send_text(p);
    last_partial_ = p;
  }

  /* committed -> (VAD: conversation.item.created) -> final .text -> completed. */
  void complete_item(bool vad) {
    send("input_audio_buffer.committed",
         {{"previous_item_id", jopt(prev_item_id_)}, {"item_id", jstr(item_id_)}});
    if (vad) {
      // Not listed for Manual mode in the docs (protocol §7.2), so only sent in VAD mode.
      send("conversation.item.created",
           {{"previous_item_id", jopt(prev_item_id_)},
            {"item",
             jobj({{"id", jstr(item_id_)},
                   {"object", jstr("realtime.item")},
                   {"type", jstr("message")},
                   {"status", jstr("completed")},
                   {"role", jstr("user")},
                   {"content",
                    "[" + jobj({{"type", jstr("input_audio")}, {"transcript", "null"}}) + "]"}})}});
    }
    if (rec_->asynchronous()) {
      complete_item_async();
      prev_item_id_ = item_id_;
      return;
    }
    send_text(rec_->final_partial());
    send_completed(item_id_, language(), rec_->emotion(), rec_->transcript());
    prev_item_id_ = item_id_;
    rec_.reset();
  }

  /* The completed event of one utterance, as the scripted faults want it: sent, repeated,
   * dropped, swapped with the next one's, or kept until after session.finished. */
  void send_completed(const std::string &item, const std::string &language,
                      const std::string &emotion, const std::string &transcript) {
    auto emit = [this, item, language, emotion, transcript] {
      send("conversation.item.input_audio_transcription.completed",
           {{"item_id", jstr(item)},
            {"content_index", "0"},
            {"language", jstr(language)},
            {"emotion", jstr(emotion)},
            {"transcript", faults_.transcript_json(jstr(transcript))}},
           &transcript);
    };
    const guint utterance = ++finals_produced_;
    switch (faults_.final_fate(utterance)) {
    case SessionFaults::FinalFate::Drop:
      note_fault("drop_final");
      impl_->log(id_ + " !! fault: the final of utterance " + std::to_string(utterance) +
                 " is not sent");
      return;
    case SessionFaults::FinalFate::Repeat:
      note_fault("repeat_final");
      emit();
      emit();
      return;
    case SessionFaults::FinalFate::AfterFinished:
      note_fault("final_after_finished");
      after_finished_.push_back(emit);
      return;
    case SessionFaults::FinalFate::SwapWithNext:
      if (!swapped_) {
        swapped_ = emit;
        return;
      }
      note_fault("reverse_finals");
      emit();
      flush_swapped();
      return;
    case SessionFaults::FinalFate::Send:
      emit();
      return;
    }
  }

  void flush_swapped() {
    if (!swapped_)
      return;
    std::function<void()> held = std::move(swapped_);
    swapped_ = nullptr;
    held();
  }

  void handle_commit(const std::optional<std::string> &evid) {
    if (cfg_.vad) {
      send_error({"invalid_event",
                  "Error committing input audio buffer: input_audio_buffer.commit is only "
                  "allowed in Manual mode (turn_detection: null).",
                  std::nullopt},
                 evid);
      return;
    }
    if (!rec_ || rec_->samples_accepted() == 0) {
      send_error({"input_audio_buffer_commit_empty",
                  "Error committing input audio buffer: the buffer is empty.", std::nullopt},
                 evid);
      return;
    }
    item_id_ = random_id("item_");
    complete_item(false);
  }

  void handle_finish() {
    finish_received_ = true;
    if (vad_) {
      if (auto ev = vad_->finish())
        end_utterance(ev->sample);
    }
    // Manual mode: uncommitted audio is dropped, not auto-committed ([UNK] in the docs; being
    // strict makes a client that forgets its final commit fail visibly in tests).
    rec_.reset();
    // After any final still being decoded; the close timeout counts from when it is sent.
    in_order([this] {
      flush_swapped();                  // an odd last final of reverse_finals
      send_now("session.finished", {}); // SessionRecord::finished is set when it is written
      for (auto &emit : after_finished_)
        emit();
      after_finished_.clear();
      // The client should close now (protocol §2.4); close ourselves if it does not.
      close_timer_ = g_timeout_source_new(impl_->opts.finish_close_timeout_ms);
      g_source_set_callback(close_timer_, on_close_timeout_cb, this, nullptr);
      g_source_attach(close_timer_, impl_->ctx);
    });
  }

  LocalService::Impl *impl_;
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
  std::deque<Outgoing> outbox_;
  gint64 hold_until_ = 0; // stall: nothing leaves before this monotonic time
  GSource *flush_timer_ = nullptr;
  bool fault_closing_ = false;  // a closing fault was decided
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
  std::list<std::unique_ptr<Recognizer>> finishing_; // finished, final not yet delivered
  std::deque<std::shared_ptr<Slot>> pending_;        // events waiting behind async results
  bool emitting_ = false;                            // drain_slots() is running a slot
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // expires with the session
  std::string item_id_;
  std::optional<std::string> prev_item_id_;
  guint finals_produced_ = 0;                         // utterances whose final was produced
  std::function<void()> swapped_;                     // reverse_finals: waits for the next final
  std::vector<std::function<void()>> after_finished_; // finals_after_finished_from
};

void LocalService::Impl::remove_session(Session *s) {
  if (shutting_down)
    return; // shutdown_on_thread() owns the list then
  live.remove_if([s](const std::unique_ptr<Session> &p) { return p.get() == s; });
}

void LocalService::Impl::reject(SoupServerMessage *msg, guint status, const char *code,
                                const char *message, guint retry_after_s) {
  // [UNK] body of the real rejection; mirrors the general Model Studio HTTP error shape.
  std::string body = jobj(
      {{"code", jstr(code)}, {"message", jstr(message)}, {"request_id", jstr(random_id("req_"))}});
  soup_server_message_set_status(msg, status, nullptr);
  if (retry_after_s > 0)
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After",
                                 std::to_string(retry_after_s).c_str());
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(),
                                   body.size());
  rejected++;
  log(std::string("handshake rejected with HTTP ") + std::to_string(status) + " (" + code + ")");
}

namespace {

/* Plain handler of the same path: runs before libsoup processes the WebSocket upgrade, and any
 * status set here stops the upgrade, so the client sees the HTTP status (protocol §1.4). */
void http_handler(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query,
                  gpointer data) {
  auto *impl = static_cast<LocalService::Impl *>(data);
  try {
    if (impl->opts.forced_handshake_status != 0) {
      impl->reject(msg, static_cast<guint>(impl->opts.forced_handshake_status), "Forced",
                   "Handshake status forced by the local service configuration.");
      return;
    }
    if (auto r = impl->handshake_faults.check(g_get_monotonic_time())) {
      impl->reject(msg, r->status, r->code, r->message, r->retry_after_s);
      return;
    }
    if (g_strcmp0(path, kPath) != 0) {
      impl->reject(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "Unknown path.");
      return;
    }
    const char *model =
        query ? static_cast<const char *>(g_hash_table_lookup(query, "model")) : nullptr;
    if (!model || !*model) {
      impl->reject(msg, SOUP_STATUS_BAD_REQUEST, "InvalidParameter",
                   "Missing required query parameter 'model'.");
      return;
    }
    const char *auth =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    // One doc version writes lowercase "bearer", so the scheme is matched case-insensitively.
    if (!auth || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0) {
      impl->reject(msg, SOUP_STATUS_UNAUTHORIZED, "InvalidApiKey",
                   "No API-key provided (expected 'Authorization: Bearer <key>').");
      return;
    }
    std::string key = auth + 7;
    key.erase(0, key.find_first_not_of(' '));
    if (g_str_has_prefix(key.c_str(), "forbidden-")) {
      impl->reject(msg, SOUP_STATUS_FORBIDDEN, "AccessDenied",
                   "The API-key has no access to this model.");
      return;
    }
    if (key.empty() || (!impl->opts.api_key.empty() && key != impl->opts.api_key)) {
      impl->reject(msg, SOUP_STATUS_UNAUTHORIZED, "InvalidApiKey", "Invalid API-key provided.");
      return;
    }
    // Status left unset: libsoup continues with the WebSocket handshake.
  } catch (...) {
    soup_server_message_set_status(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, nullptr);
  }
}

void websocket_handler(SoupServer *, SoupServerMessage *msg, const char *,
                       SoupWebsocketConnection *conn, gpointer data) {
  auto *impl = static_cast<LocalService::Impl *>(data);
  try {
    // Large appends (up to 15 MiB of Base64) must not hit libsoup's 128 KiB default (1009).
    g_object_set(conn, "max-incoming-payload-size", static_cast<guint64>(0), nullptr);
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(conn), "max-total-message-size"))
      g_object_set(conn, "max-total-message-size", static_cast<guint64>(0), nullptr);

    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    const char *ua = soup_message_headers_get_one(h, "User-Agent");
    const char *ws = soup_message_headers_get_one(h, "X-DashScope-WorkSpace");
    std::string model;
    if (const char *q = g_uri_get_query(soup_server_message_get_uri(msg))) {
      GHashTable *params = soup_form_decode(q);
      if (const char *m = static_cast<const char *>(g_hash_table_lookup(params, "model")))
        model = m;
      g_hash_table_unref(params);
    }

    SessionRecord rec;
    rec.session_id = random_id("sess_");
    rec.model = model;
    rec.user_agent = ua ? ua : "";
    rec.workspace_header = ws ? ws : "";
    size_t index;
    {
      std::lock_guard<std::mutex> lock(impl->rec_mu);
      index = impl->records.size();
      rec.session_number = static_cast<guint>(index + 1);
      impl->records.push_back(rec);
    }
    impl->log(rec.session_id + " connected (model " + model + ")");
    impl->live.push_back(std::make_unique<Session>(impl, conn, soup_server_message_get_socket(msg),
                                                   index, rec.session_id, model));
    impl->live.back()->send_created();
  } catch (const std::exception &e) {
    g_warning("local service: cannot accept a connection: %s", e.what());
  } catch (...) {
    g_warning("local service: cannot accept a connection");
  }
}

gboolean quit_cb(gpointer data) {
  g_main_loop_quit(static_cast<GMainLoop *>(data));
  return G_SOURCE_REMOVE;
}

} // namespace

void LocalService::Impl::shutdown_on_thread() {
  shutting_down = true;
  for (auto &s : live)
    s->close_for_shutdown();
  // Give the close frames a moment to go out and clients a chance to answer; clients that do
  // not (e.g. blocked in the thread calling stop()) are dropped after the deadline.
  const gint64 deadline = g_get_monotonic_time() + 300 * G_TIME_SPAN_MILLISECOND;
  auto all_closed = [this] {
    return std::all_of(live.begin(), live.end(), [](auto &s) { return s->closed(); });
  };
  while (!all_closed() && g_get_monotonic_time() < deadline) {
    if (!g_main_context_iteration(ctx, FALSE))
      g_usleep(1000);
  }
  live.clear();
  if (server) {
    soup_server_disconnect(server);
    g_object_unref(server);
    server = nullptr;
  }
  engine.reset();
  while (g_main_context_iteration(ctx, FALSE)) {
  }
}

void LocalService::Impl::thread_main() {
  g_main_context_push_thread_default(ctx);
  GError *error = nullptr;
  bool ok = false;
  try {
    std::string why;
    engine = make_engine(opts.engine, opts.engine_options, &why);
    if (!engine) {
      g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                  "The requested engine is not available: %s",
                  why.empty() ? "not in this build" : why.c_str());
    } else {
      // Created after pushing ctx: the listening sources attach at listen time (notes P5).
      server = SOUP_SERVER(
          g_object_new(SOUP_TYPE_SERVER, "server-header", "qwenasr-local-service", nullptr));
      soup_server_add_handler(server, kPath, http_handler, this, nullptr);
      soup_server_add_websocket_handler(server, kPath, nullptr, nullptr, websocket_handler, this,
                                        nullptr);
      if (opts.host == "127.0.0.1" || opts.host == "localhost") {
        ok = soup_server_listen_local(server, opts.port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
      } else {
        GInetAddress *addr = g_inet_address_new_from_string(opts.host.c_str());
        if (!addr) {
          g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                      "Invalid listen address '%s' (an IP address is required)", opts.host.c_str());
        } else {
          GSocketAddress *sa = g_inet_socket_address_new(addr, opts.port);
          ok = soup_server_listen(server, sa, static_cast<SoupServerListenOptions>(0), &error);
          g_object_unref(sa);
          g_object_unref(addr);
        }
      }
      if (ok) {
        GSList *uris = soup_server_get_uris(server);
        if (uris)
          port = static_cast<guint16>(g_uri_get_port(static_cast<GUri *>(uris->data)));
        g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
      }
    }
  } catch (const std::exception &e) {
    g_clear_error(&error);
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED, "Service start failed: %s", e.what());
    ok = false;
  }

  if (ok)
    loop = g_main_loop_new(ctx, FALSE);
  {
    std::lock_guard<std::mutex> lock(start_mu);
    start_error = error;
    start_done = true;
  }
  start_cv.notify_all();

  if (ok) {
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
    loop = nullptr;
  }
  try {
    shutdown_on_thread();
  } catch (...) {
    g_warning("local service: exception during shutdown");
  }
  g_main_context_pop_thread_default(ctx);
}

LocalService::LocalService(ServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

LocalService::~LocalService() {
  stop();
}

bool LocalService::start(GError **error) {
  if (impl_->thread.joinable())
    return true; // already running
  impl_->ctx = g_main_context_new();
  impl_->start_done = false;
  impl_->start_error = nullptr;
  impl_->shutting_down = false;
  try {
    impl_->thread = std::thread([this] { impl_->thread_main(); });
  } catch (const std::system_error &e) {
    g_main_context_unref(impl_->ctx);
    impl_->ctx = nullptr;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Cannot start the service thread: %s",
                e.what());
    return false;
  }
  GError *start_error;
  {
    std::unique_lock<std::mutex> lock(impl_->start_mu);
    impl_->start_cv.wait(lock, [this] { return impl_->start_done; });
    start_error = impl_->start_error;
    impl_->start_error = nullptr;
  }
  if (start_error) {
    impl_->thread.join(); // the thread already cleaned up
    g_main_context_unref(impl_->ctx);
    impl_->ctx = nullptr;
    g_propagate_error(error, start_error);
    return false;
  }
  return true;
}

void LocalService::stop() {
  if (!impl_->thread.joinable())
    return;
  if (impl_->thread.get_id() == std::this_thread::get_id()) {
    g_critical("LocalService::stop() called from the service thread; ignored");
    return;
  }
  g_main_context_invoke_full(impl_->ctx, G_PRIORITY_DEFAULT, quit_cb, g_main_loop_ref(impl_->loop),
                             reinterpret_cast<GDestroyNotify>(g_main_loop_unref));
  impl_->thread.join();
  g_main_context_unref(impl_->ctx);
  impl_->ctx = nullptr;
}

std::string LocalService::url() const {
  return "ws://" + impl_->opts.host + ":" + std::to_string(port()) + kPath;
}

guint16 LocalService::port() const {
  return impl_->port;
}

std::vector<SessionRecord> LocalService::sessions() const {
  std::lock_guard<std::mutex> lock(impl_->rec_mu);
  return impl_->records;
}

guint LocalService::handshakes_rejected() const {
  return impl_->rejected;
}

} // namespace qwenasr::local
