/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state of one protocol session (AsrClient::Impl), shared by its connection side
 * (asrconnection.cpp) and its event and send side with the public API (asrclient.cpp); not
 * for other files. */
#pragma once

#include "asrclient.h"

#include "iothread.h"
#include "oggopus.h"
#include "sendqueue.h"
#include "wsconnection.h"

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

GST_DEBUG_CATEGORY_EXTERN(qwenasr_client_debug);

namespace qwenasr {

enum class Phase { Connecting, WaitingCreated, Configuring, Streaming, Finishing, Waiting, Done };

struct AsrClient::Impl : public ws::ConnectionListener {
  /* immutable after start() */
  ClientSettings settings;
  ClientListener *listener = nullptr;
  std::string host;
  std::shared_ptr<IoThread> io;    /* the network thread; let go by finish_now() */
  GMainContext *context = nullptr; /* io's context (not owned) */
  std::string event_prefix;
  /* The element, for log lines; not a reference (the element owns the client, which stops
   * before it goes); cleared when stop() leaves the thread to finish alone. */
  GstObject *owner = nullptr;

  /* Lock order: `send_mutex`, then the listener's locks (its callbacks from pump()), then
   * `mutex`, then the connection's own. The TimerSet's lock is a leaf: taken under any of
   * these, never held while a timer runs. `mutex` is never held while calling the listener or
   * the connection; the network thread takes `send_mutex` only where no other lock is held. */

  /* Sending: pump() runs on whichever thread has `send_mutex` — the streaming thread right
   * after it queued audio into an empty queue (no thread hand-off), or the network thread
   * when the session is configured, the socket drains or finals make room. */
  std::mutex send_mutex;
  std::shared_ptr<ws::Connection> send_conn; /* the configured connection; null when not
                                              * Streaming. Guarded by send_mutex */
  std::unique_ptr<OggOpusWriter> ogg; /* audio_format "opus": this session's Ogg stream (a new
                                       * one per connection). Guarded by send_mutex */
  guint64 resend_wait = 0;            /* timer: retries the pump while the resend buffer is full;
                                       * guarded by send_mutex */
  gint64 resend_full_since = 0;       /* monotonic µs; 0: not waiting; guarded by send_mutex */
  std::string append_text; /* the append being sent, reused for its capacity; send_mutex */

  /* shared with the streaming thread, guarded by `mutex` */
  std::mutex mutex;
  std::condition_variable cond;     /* queue space, finished, failed, stopping, flushing */
  std::unique_ptr<SendQueue> sendq; /* created by start() */
  ClientStats stats;                /* bytes_sent, appends, reconnects; the rest from sendq */
  bool flushing = false;            /* waits return Interrupted (set_flushing) */
  bool torn_down = false;           /* every libsoup object and source of this session is gone */
  bool have_config = false;
  SessionConfig config;
  bool finished = false;
  bool failed = false;
  bool stopping = false;

  bool is_stopping() {
    std::lock_guard<std::mutex> lock(mutex);
    return stopping;
  }

  /* network thread only */
  /* This session, from start() until it is torn down: pending callbacks keep it alive. */
  std::shared_ptr<Impl> self;
  bool finishing = false; /* the teardown is scheduled */
  /* Written on the network thread, except Streaming -> Finishing by pump() (under
   * send_mutex); read anywhere. */
  std::atomic<Phase> phase{Phase::Connecting};
  bool created = false;
  std::atomic<guint64> event_counter{0}; /* any sending thread */
  GTlsDatabase *tls_database = nullptr;  /* tls-ca-file's, owned; null: the system's */
  std::shared_ptr<ws::Connection> conn;  /* the current connection, once open */
  GCancellable *cancellable = nullptr;
  /* Timers (io's TimerSet tokens; 0: none) */
  guint64 connect_timeout = 0; /* until session.created, then until session.updated */
  guint64 close_timeout = 0;
  guint64 reconnect_timer = 0;
  guint64 watchdog = 0;     /* sends pings and checks that the peer still answers */
  gint64 last_activity = 0; /* monotonic µs of the last frame or pong received */
  gint64 last_ping = 0;     /* monotonic µs of the last ping sent */
  /* How far the current connection attempt got (GSocketClient's network events). */
  GSocketClientEvent network_event = G_SOCKET_CLIENT_RESOLVING;
  guint attempts = 0; /* reconnection attempts since the last configured session */
  /* event_prefix and a 12-digit hex counter (no printf: this runs once per append). */
  std::string next_event_id() {
    static const char kHex[] = "0123456789abcdef";
    guint64 n = event_counter++;
    std::string id = event_prefix;
    id.append(12, '0');
    for (gsize i = id.size(); n && i > event_prefix.size(); n >>= 4)
      id[--i] = kHex[n & 0xf];
    return id;
  }

  void begin();
  void finish();
  void finish_now();
  bool load_tls_database();
  void connect();
  void on_connected(std::shared_ptr<ws::Connection> connection, const ws::ConnectFailure &failure);
  void drop_connection();
  void teardown();
  void fail(ClientError error);
  void reconnect();
  void send_update_if_ready();
  bool start_stream_locked(std::string *problem);
  void pump();
  guint64 pump_locked();
  void report_resend_dropped(guint64 samples);
  bool take_settle();
  void apply_settle();
  void send_audio(const std::string &bytes) {
    send_audio(reinterpret_cast<const guint8 *>(bytes.data()), bytes.size());
  }
  void send_audio(const guint8 *data, gsize size);
  void handle_text(const char *data, gsize size);
  void begin_stop();

  /* ws::ConnectionListener (network thread) */
  void on_ws_message(ws::Opcode opcode, const std::string &payload) override;
  void on_ws_pong() override { last_activity = g_get_monotonic_time(); }
  void on_ws_closed(guint16 code, const std::string &reason) override;
  void on_ws_writable() override { pump(); }
  void remove_timer(guint64 *timer) {
    if (*timer && io)
      io->timers()->remove(*timer);
    *timer = 0;
  }
  guint64 add_timer(guint ms, TimerSet::Func func) { return io->timers()->add(ms, func, this); }
};

/* Runs `method` at once when called on the network thread (a listener callback), else from an
 * idle source there; the session stays alive until it ran. */
void invoke(const std::shared_ptr<AsrClient::Impl> &impl, gint priority,
            void (AsrClient::Impl::*method)());

/* The connect-timeout source's callback: the session was not configured in time
 * (asrconnection.cpp; armed again when the session.update goes out). */
gboolean on_connect_timeout(gpointer user_data);

} // namespace qwenasr
