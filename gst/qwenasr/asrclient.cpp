/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One protocol session on the shared network thread (IoThread). Every libsoup object is
 * created, used and destroyed on that thread, whose GMainContext is its thread default
 * (libsoup 3 binds I/O to the context that started it). Other threads only touch the send
 * queue and flags under `mutex`, and wake the session through one persistent source, only
 * when the queue goes from empty to non-empty. Nothing here blocks the thread: every
 * session's network work is asynchronous, so one session's frozen peer delays no other. */
#include "asrclient.h"

#include "iothread.h"
#include "oggopus.h"
#include "sendqueue.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(qwenasr_client_debug);
#define GST_CAT_DEFAULT qwenasr_client_debug

namespace qwenasr {

namespace {

/* Frames above this are refused by libsoup (close 1009); final transcripts are far smaller,
 * and the limit keeps a misbehaving peer from making us buffer without bound. */
constexpr guint64 kMaxIncomingPayload = 16 * 1024 * 1024;
/* How long stop() lets the closing handshake take before dropping the connection. */
constexpr guint kCloseTimeoutMs = 500;
constexpr guint kMaxReconnectDelayMs = 8000;
/* A Retry-After on a refused handshake is honoured up to this long. */
constexpr guint kMaxRetryAfterMs = 30000;
/* With the resend buffer full, new audio waits this long for finals to make room before the
 * oldest unsettled audio is given up (continuous speech may go that long without a final). */
constexpr gint64 kResendFullWaitUs = 2 * G_USEC_PER_SEC;

enum class Phase { Connecting, WaitingCreated, Configuring, Streaming, Finishing, Waiting, Done };

bool host_is_loopback(const std::string &host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::chrono::steady_clock::time_point to_steady(gint64 monotonic_deadline_us) {
  /* Both are CLOCK_MONOTONIC on Linux; converting through "now" keeps it portable. */
  return std::chrono::steady_clock::now() +
         std::chrono::microseconds(monotonic_deadline_us - g_get_monotonic_time());
}

} // namespace

struct AsrClient::Impl {
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

  /* Lock order: `mutex` is the innermost lock. It is never held while calling the listener
   * or libsoup, and the listener is never called with it held. */

  /* shared with the streaming thread, guarded by `mutex` */
  std::mutex mutex;
  std::condition_variable cond;     /* queue space, finished, failed, stopping, flushing */
  std::unique_ptr<SendQueue> sendq; /* created by start() */
  ClientStats stats;                /* bytes_sent, appends, reconnects; the rest from sendq */
  bool pump_scheduled = false;      /* `wake` is ready, or pump() is about to run */
  GSource *wake = nullptr; /* owned; runs pump() when its ready time is set; null once torn down */
  bool flushing = false;   /* waits return Interrupted (set_flushing) */
  bool torn_down = false;  /* every libsoup object and source of this session is gone */
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
  Phase phase = Phase::Connecting;
  bool created = false;
  guint64 event_counter = 0;
  SoupSession *session = nullptr;
  SoupMessage *message = nullptr;
  SoupWebsocketConnection *conn = nullptr;
  GCancellable *cancellable = nullptr;
  GSource *connect_timeout = nullptr; /* until session.created, then until session.updated */
  GSource *writable_source = nullptr;
  GSource *close_timeout = nullptr;
  GSource *reconnect_timer = nullptr;
  GSource *watchdog = nullptr;    /* dead-peer check */
  GSource *resend_wait = nullptr; /* retries the pump while the resend buffer is full */
  gint64 resend_full_since = 0;   /* monotonic µs; 0: not waiting */
  gint64 last_activity = 0;       /* monotonic µs of the last frame or pong received */
  /* How far the current connection attempt got (GSocketClient's network events). */
  GSocketClientEvent network_event = G_SOCKET_CLIENT_RESOLVING;
  guint attempts = 0; /* reconnection attempts since the last configured session */
  /* audio_format "opus": this session's Ogg stream; a new one for every session, since the
   * service decodes each connection's audio as a stream of its own. */
  std::unique_ptr<OggOpusWriter> ogg;

  std::string next_event_id() {
    gchar counter[17];
    g_snprintf(counter, sizeof counter, "%012" G_GINT64_MODIFIER "x", event_counter++);
    return event_prefix + counter;
  }

  void begin();
  void finish();
  void finish_now();
  bool setup_session();
  void connect();
  void drop_connection();
  void teardown();
  void fail(ClientError error);
  void reconnect();
  void send_update_if_ready();
  bool start_stream();
  void pump();
  bool take_settle();
  void apply_settle();
  void send_audio(const std::string &bytes) {
    send_audio(reinterpret_cast<const guint8 *>(bytes.data()), bytes.size());
  }
  void send_audio(const guint8 *data, gsize size);
  void send_text(const std::string &text) {
    soup_websocket_connection_send_text(conn, text.c_str());
  }
  bool output_writable();
  void arm_writable_source();
  void handle_text(const char *data, gsize size);
  void forget_message() {
    if (message)
      g_signal_handlers_disconnect_by_data(message, this);
    g_clear_object(&message);
  }
  void begin_stop();
  void schedule_pump_locked();
  void remove_source(GSource **source) {
    if (*source) {
      g_source_destroy(*source);
      g_source_unref(*source);
      *source = nullptr;
    }
  }
  GSource *add_timeout(guint ms, GSourceFunc func) {
    GSource *source = g_timeout_source_new(ms);
    g_source_set_callback(source, func, this, nullptr);
    g_source_attach(source, context);
    return source;
  }
};

/* A method call on the network thread that keeps the session alive until it ran. */
struct Call {
  std::shared_ptr<AsrClient::Impl> impl;
  void (AsrClient::Impl::*method)();
};

static gboolean call_cb(gpointer data) {
  auto *call = static_cast<Call *>(data);
  (call->impl.get()->*call->method)();
  return G_SOURCE_REMOVE;
}

static void call_free(gpointer data) {
  delete static_cast<Call *>(data);
}

/* Runs at once when called on the network thread (a listener callback), else from an idle
 * source there. */
static void invoke(const std::shared_ptr<AsrClient::Impl> &impl, gint priority,
                   void (AsrClient::Impl::*method)()) {
  g_main_context_invoke_full(impl->context, priority, call_cb, new Call{impl, method}, call_free);
}

void AsrClient::Impl::begin() {
  if (phase == Phase::Done)
    return; /* stop() came first (begin_stop() runs at a higher priority) */
  if (setup_session())
    connect();
}

/* The session is over: its teardown runs from an idle source, after the libsoup signal that
 * ended it has returned. */
void AsrClient::Impl::finish() {
  if (finishing)
    return;
  finishing = true;
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_HIGH);
  g_source_set_callback(source, call_cb, new Call{self, &Impl::finish_now}, call_free);
  g_source_attach(source, context);
  g_source_unref(source);
}

void AsrClient::Impl::finish_now() {
  teardown();
  /* Let go of the network thread before stop() may return: the stopping thread then holds
   * the last reference, and joins the thread if no session is left. */
  io.reset();
  {
    std::lock_guard<std::mutex> lock(mutex);
    torn_down = true;
  }
  cond.notify_all();
  self.reset(); /* the Call that runs us still holds the session */
}

static void on_ws_message(SoupWebsocketConnection *, gint /* type */, GBytes *message,
                          gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  if (impl->is_stopping())
    return; /* the listener may already be gone or serving a new session */
  impl->last_activity = g_get_monotonic_time();
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(message, &size));
  /* Events are documented as text frames, but libsoup closes the connection (1007) on a text
   * frame that is not UTF-8 rather than pass it on; a server that knows this may send such
   * text as binary. Either way the frame is decoded (and repaired) like text: a binary frame
   * that is no event counts as one bad frame, nothing more. */
  impl->handle_text(data ? data : "", size);
  impl->apply_settle();
}

/* Our writable-source polls the connection's socket: it must go before libsoup closes the
 * stream, or GLib polls a closed fd ("Socket check failed"). */
static void on_ws_state(SoupWebsocketConnection *conn, GParamSpec *, gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  if (soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_OPEN)
    impl->remove_source(&impl->writable_source);
}

static void on_ws_pong(SoupWebsocketConnection *, GBytes *, gpointer user_data) {
  static_cast<AsrClient::Impl *>(user_data)->last_activity = g_get_monotonic_time();
}

static gboolean on_watchdog(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  gint64 silent = g_get_monotonic_time() - impl->last_activity;
  gint64 limit = 3 * static_cast<gint64>(impl->settings.keepalive_interval_s) * G_USEC_PER_SEC;
  if (impl->conn && silent > limit) {
    impl->fail(
        ClientError(ClientErrorKind::Closed, impl->host,
                    "no answer to pings for " + std::to_string(silent / G_USEC_PER_SEC) + " s"));
  }
  return G_SOURCE_CONTINUE;
}

static void on_ws_closed(SoupWebsocketConnection *conn, gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  if (impl->is_stopping()) {
    impl->finish();
    return;
  }
  if (impl->phase == Phase::Done)
    return;
  ClientError error{ClientErrorKind::Closed, impl->host};
  const char *reason = soup_websocket_connection_get_close_data(conn);
  error.detail = "close code " + std::to_string(soup_websocket_connection_get_close_code(conn)) +
                 (reason && *reason ? std::string(", reason: ") + reason : std::string());
  impl->fail(error);
}

static void on_ws_connected(GObject *source, GAsyncResult *result, gpointer user_data) {
  /* The session is kept alive until its connection attempt answers, even when torn down. */
  std::unique_ptr<std::shared_ptr<AsrClient::Impl>> holder(
      static_cast<std::shared_ptr<AsrClient::Impl> *>(user_data));
  AsrClient::Impl *impl = holder->get();
  GError *gerror = nullptr;
  SoupWebsocketConnection *conn =
      soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &gerror);
  if (impl->finishing) {
    /* Too late: stop() already let go of the session. */
    g_clear_error(&gerror);
    if (conn) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
      g_object_unref(conn);
    }
    return;
  }
  if (!conn) {
    if (g_error_matches(gerror, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      /* stop() or the connect timeout cancelled us; whoever did has reported or quits. */
      g_error_free(gerror);
      return;
    }
    ClientError error{ClientErrorKind::Connect, impl->host};
    guint status = impl->message ? soup_message_get_status(impl->message) : 0;
    error.http_status = status;
    if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
      error.kind = ClientErrorKind::Unauthorized;
    else if (status >= 200 && status != SOUP_STATUS_SWITCHING_PROTOCOLS)
      error.kind = ClientErrorKind::Handshake;
    if (impl->message && error.kind == ClientErrorKind::Handshake) {
      /* Delay-seconds only; an HTTP-date is rare and the backoff then applies. */
      const char *retry_after = soup_message_headers_get_one(
          soup_message_get_response_headers(impl->message), "Retry-After");
      gchar *end = nullptr;
      guint64 seconds = retry_after ? g_ascii_strtoull(retry_after, &end, 10) : 0;
      if (retry_after && end && end != retry_after && *end == '\0')
        error.retry_after_ms = static_cast<guint>(MIN(seconds * 1000, kMaxRetryAfterMs));
    }
    error.tls = gerror->domain == G_TLS_ERROR;
    if (error.tls)
      error.detail = std::string(gerror->message) +
                     " (TLS failed: is the server speaking TLS? a ws:// server needs a ws:// url)";
    else
      error.detail = gerror->message;
    g_error_free(gerror);
    impl->fail(error);
    return;
  }
  impl->conn = conn;
  if (impl->is_stopping()) {
    /* stop() ran while connecting; begin_stop found no connection and quit already. */
    soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    return;
  }
  soup_websocket_connection_set_max_incoming_payload_size(conn, kMaxIncomingPayload);
  soup_websocket_connection_set_keepalive_interval(conn, impl->settings.keepalive_interval_s);
  g_signal_connect(conn, "message", G_CALLBACK(on_ws_message), impl);
  g_signal_connect(conn, "closed", G_CALLBACK(on_ws_closed), impl);
  g_signal_connect(conn, "pong", G_CALLBACK(on_ws_pong), impl);
  g_signal_connect(conn, "notify::state", G_CALLBACK(on_ws_state), impl);
  impl->last_activity = g_get_monotonic_time();
  if (impl->settings.keepalive_interval_s > 0 && !impl->watchdog)
    impl->watchdog = impl->add_timeout(impl->settings.keepalive_interval_s * 1000, on_watchdog);
  impl->phase = Phase::WaitingCreated;
  GST_INFO_OBJECT(impl->owner, "connected to %s", impl->host.c_str());
  impl->listener->on_connected(impl->host);
}

static gboolean on_connect_timeout(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  g_source_unref(impl->connect_timeout);
  impl->connect_timeout = nullptr;
  ClientError error{ClientErrorKind::Timeout, impl->host};
  error.detail = impl->phase == Phase::Connecting       ? "no WebSocket connection"
                 : impl->phase == Phase::WaitingCreated ? "no session.created"
                                                        : "no session.updated";
  if (impl->phase == Phase::Connecting && impl->network_event == G_SOCKET_CLIENT_TLS_HANDSHAKING) {
    /* A plain server waits for an HTTP request and never answers a TLS hello. */
    error.detail += ": the TLS handshake got no answer (TLS failed: is the server speaking TLS? "
                    "a plain server needs a ws:// url)";
    error.tls = true;
  } else if (impl->phase == Phase::Connecting && impl->network_event < G_SOCKET_CLIENT_CONNECTED) {
    error.detail += ": no TCP connection";
  }
  impl->fail(error);
  return G_SOURCE_REMOVE;
}

static void on_network_event(SoupMessage *, GSocketClientEvent event, GIOStream *,
                             gpointer user_data) {
  static_cast<AsrClient::Impl *>(user_data)->network_event = event;
}

/* The SoupSession lives as long as the client; connections come and go on it. */
bool AsrClient::Impl::setup_session() {
  if (settings.use_proxy && !host_is_loopback(host))
    session = soup_session_new();
  else
    session = soup_session_new_with_options("proxy-resolver", nullptr, nullptr);

  if (!settings.tls_ca_file.empty()) {
    GError *gerror = nullptr;
    GTlsDatabase *database = g_tls_file_database_new(settings.tls_ca_file.c_str(), &gerror);
    if (!database) {
      ClientError error{ClientErrorKind::Rejected, host};
      error.detail = std::string("cannot load tls-ca-file: ") + gerror->message;
      error.service.message = error.detail;
      g_error_free(gerror);
      fail(error);
      return false;
    }
    soup_session_set_tls_database(session, database);
    g_object_unref(database);
  }
  return true;
}

void AsrClient::Impl::connect() {
  g_clear_object(&cancellable);
  cancellable = g_cancellable_new();
  phase = Phase::Connecting;
  created = false;
  /* The new session counts from the first sample it will be sent: the oldest resent one, or
   * the next new one. */
  guint64 base;
  {
    std::lock_guard<std::mutex> lock(mutex);
    base = sendq->session_base();
  }
  listener->on_session_start(base, attempts);

  forget_message();
  message = soup_message_new(SOUP_METHOD_GET, settings.url.c_str());
  if (!message) {
    fail(ClientError(ClientErrorKind::Connect, host, "the URL cannot be parsed"));
    return;
  }
  SoupMessageHeaders *headers = soup_message_get_request_headers(message);
  std::string authorization = "Bearer " + settings.api_key;
  soup_message_headers_replace(headers, "Authorization", authorization.c_str());
  if (!settings.user_agent.empty())
    soup_message_headers_replace(headers, "User-Agent", settings.user_agent.c_str());
  if (!settings.workspace.empty())
    soup_message_headers_replace(headers, "X-DashScope-WorkSpace", settings.workspace.c_str());

  network_event = G_SOCKET_CLIENT_RESOLVING;
  g_signal_connect(message, "network-event", G_CALLBACK(on_network_event), this);
  connect_timeout = add_timeout(settings.connect_timeout_ms, on_connect_timeout);
  GST_INFO_OBJECT(owner, "connecting to %s", host.c_str());
  soup_session_websocket_connect_async(session, message, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                       cancellable, on_ws_connected,
                                       new std::shared_ptr<Impl>(self));
}

/* Forgets the current connection without reporting anything: its callbacks are cut off. */
void AsrClient::Impl::drop_connection() {
  remove_source(&connect_timeout);
  remove_source(&writable_source);
  remove_source(&resend_wait);
  remove_source(&watchdog);
  if (cancellable)
    g_cancellable_cancel(cancellable);
  if (conn) {
    g_signal_handlers_disconnect_by_data(conn, this);
    if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, nullptr);
    g_object_unref(conn);
    conn = nullptr;
  }
}

void AsrClient::Impl::teardown() {
  GSource *wake_source;
  {
    std::lock_guard<std::mutex> lock(mutex);
    wake_source = wake;
    wake = nullptr;
  }
  remove_source(&wake_source);
  drop_connection();
  remove_source(&close_timeout);
  remove_source(&reconnect_timer);
  forget_message();
  if (session) {
    soup_session_abort(session);
    g_clear_object(&session);
  }
  g_clear_object(&cancellable);
}

static gboolean on_reconnect_timer(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  g_source_unref(impl->reconnect_timer);
  impl->reconnect_timer = nullptr;
  impl->reconnect();
  return G_SOURCE_REMOVE;
}

/* Sends everything not settled again, in order, ahead of what still waits. The first append
 * is cut to start at the settled point: the tail of an utterance that already has its final
 * would otherwise be heard again as an utterance of its own. */
void AsrClient::Impl::reconnect() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    sendq->requeue_history();
    stats.reconnects++;
  }
  connect();
}

void AsrClient::Impl::fail(ClientError error) {
  if (phase == Phase::Done || phase == Phase::Waiting)
    return;
  if (!is_stopping() && error.retryable() && attempts < settings.max_reconnects) {
    attempts++;
    guint delay = settings.reconnect_delay_ms << MIN(attempts - 1, 16u);
    delay = MIN(delay, kMaxReconnectDelayMs);
    delay = MAX(delay, error.retry_after_ms); /* the service said when (bounded) */
    GST_WARNING_OBJECT(owner, "connection to %s lost (%s): reconnecting in %u ms, attempt %u",
                       host.c_str(), error.detail.c_str(), delay, attempts);
    drop_connection();
    phase = Phase::Waiting;
    listener->on_reconnecting(error, attempts, delay);
    reconnect_timer = add_timeout(delay, on_reconnect_timer);
    return;
  }
  phase = Phase::Done;
  remove_source(&connect_timeout);
  remove_source(&watchdog);
  if (attempts > 0)
    error.detail += ", after " + std::to_string(attempts) + " reconnection attempts";
  GST_WARNING_OBJECT(owner, "session with %s failed: %s", host.c_str(), error.detail.c_str());
  /* The listener records its sticky error before waiters wake up and look for it; nothing is
   * reported once stop() has begun: that is a deliberate end, not a failure. */
  if (!is_stopping())
    listener->on_failure(error);
  {
    std::lock_guard<std::mutex> lock(mutex);
    failed = true;
  }
  cond.notify_all();
  g_cancellable_cancel(cancellable);
  if (conn && soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
}

void AsrClient::Impl::send_update_if_ready() {
  SessionConfig to_send;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!have_config)
      return;
    to_send = config;
  }
  if (phase != Phase::WaitingCreated || !created || !conn ||
      soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  std::string text = encode_session_update(to_send, next_event_id());
  GST_DEBUG_OBJECT(owner, "sending session.update: %s", text.c_str());
  send_text(text);
  phase = Phase::Configuring;
  remove_source(&connect_timeout);
  connect_timeout = add_timeout(settings.connect_timeout_ms, on_connect_timeout);
}

void AsrClient::Impl::handle_text(const char *data, gsize size) {
  ServerEvent event;
  std::string problem;
  unsigned repairs = kRepairNone;
  bool decoded = decode_server_event(data, static_cast<gssize>(size), &event, &problem, &repairs);
  if (decoded && repairs != kRepairNone)
    listener->on_frame_repaired(repairs);
  if (!decoded) {
    listener->on_bad_frame(problem);
    return;
  }
  GST_LOG_OBJECT(owner, "event %s", event.type_name.c_str());
  switch (event.type) {
  case ServerEventType::SessionCreated:
    created = true;
    /* Connected: the configuration may wait for caps as long as the pipeline likes. */
    if (phase == Phase::WaitingCreated)
      remove_source(&connect_timeout);
    listener->on_event(event);
    send_update_if_ready();
    return;
  case ServerEventType::SessionUpdated:
    listener->on_event(event);
    if (phase == Phase::Configuring) {
      phase = Phase::Streaming;
      remove_source(&connect_timeout);
      if (start_stream())
        pump();
    }
    return;
  case ServerEventType::Error:
    /* Client errors keep the connection open (the sibling Qwen-Audio-Realtime rule), except
     * while configuring: without session.updated the session cannot start. */
    if (event.error.type == "server_error" || phase == Phase::Configuring ||
        phase == Phase::WaitingCreated) {
      ClientError error{event.error.type == "server_error" ? ClientErrorKind::Service
                                                           : ClientErrorKind::Rejected,
                        host};
      error.service = event.error;
      error.detail = event.error.message;
      fail(error);
      return;
    }
    listener->on_event(event);
    return;
  case ServerEventType::SessionFinished:
    if (phase != Phase::Finishing) {
      fail(ClientError(ClientErrorKind::Closed, host, "the service ended the session unasked"));
      return;
    }
    listener->on_event(event);
    phase = Phase::Done;
    {
      std::lock_guard<std::mutex> lock(mutex);
      finished = true;
    }
    cond.notify_all();
    /* The connection stays open: finals the service sends after session.finished are still
     * taken; stop() closes it once the listener stops waiting for them (bounded). */
    return;
  case ServerEventType::TranscriptionCompleted:
    /* Real progress: the next outage gets the full reconnection budget again. A session
     * that dies before producing anything keeps counting, so the attempts stay bounded. */
    attempts = 0;
    listener->on_event(event);
    return;
  default:
    listener->on_event(event);
    return;
  }
}

/* Opus: a fresh encoder and Ogg stream, whose header pages go out before any audio. */
bool AsrClient::Impl::start_stream() {
  ogg.reset();
  SessionConfig current;
  {
    std::lock_guard<std::mutex> lock(mutex);
    current = config;
  }
  if (current.audio_format != "opus")
    return true;
  std::string problem;
  ogg = OggOpusWriter::create(current.sample_rate, settings.opus_bitrate, g_random_int(), &problem);
  if (!ogg) {
    ClientError error{ClientErrorKind::Rejected, host, problem};
    error.service.message = problem;
    fail(error);
    return false;
  }
  send_audio(ogg->header_pages());
  return true;
}

bool AsrClient::Impl::output_writable() {
  GOutputStream *out = g_io_stream_get_output_stream(soup_websocket_connection_get_io_stream(conn));
  if (G_IS_POLLABLE_OUTPUT_STREAM(out) &&
      g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(out)))
    return g_pollable_output_stream_is_writable(G_POLLABLE_OUTPUT_STREAM(out));
  return true;
}

static gboolean on_output_writable(GObject *, gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  g_source_unref(impl->writable_source);
  impl->writable_source = nullptr;
  impl->pump();
  return G_SOURCE_REMOVE;
}

void AsrClient::Impl::arm_writable_source() {
  if (writable_source)
    return;
  GIOStream *io = soup_websocket_connection_get_io_stream(conn);
  GOutputStream *out = g_io_stream_get_output_stream(io);
  /* A peer that vanished can leave the stream closed while the connection still reads OPEN;
   * "closed" follows, and polling a closed socket would only make GLib complain. */
  if (g_io_stream_is_closed(io) || g_output_stream_is_closed(out))
    return;
  writable_source = g_pollable_output_stream_create_source(G_POLLABLE_OUTPUT_STREAM(out), nullptr);
  g_source_set_callback(writable_source, G_SOURCE_FUNC(on_output_writable), this, nullptr);
  g_source_attach(writable_source, context);
}

static gboolean on_resend_wait(gpointer user_data);

/* Sends everything queued, one batch per wake-up, while the kernel accepts data: libsoup has
 * no buffered-amount API, so this is what keeps its own outgoing queue (and our memory) small
 * when the network is slower than the audio. */
void AsrClient::Impl::pump() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    pump_scheduled = false;
  }
  if (phase != Phase::Streaming || !conn ||
      soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  for (;;) {
    /* A listener callback or a failed write may have ended the connection. */
    if (phase != Phase::Streaming ||
        soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_OPEN)
      return;
    /* libsoup takes every frame whether or not the kernel does: the socket is asked before
     * each one (a poll). Asking only every 64 KiB let a full-speed Opus stream run a minute
     * ahead of a slow service and failed the Opus soak under load; kept per frame. */
    if (!output_writable()) {
      arm_writable_source();
      return;
    }
    Taken taken;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (sendq->empty())
        return;
      /* Flow control: new audio does not run further ahead of the finals than can be resent
       * after a reconnection. Faster-than-real-time input then waits here (and upstream in
       * push_audio) instead of losing the ability to resend. */
      if (sendq->resend_full()) {
        gint64 now = g_get_monotonic_time();
        if (resend_full_since == 0)
          resend_full_since = now;
        if (now - resend_full_since < kResendFullWaitUs) {
          if (!resend_wait)
            resend_wait = add_timeout(100, on_resend_wait);
          return;
        }
      } else {
        resend_full_since = 0;
      }
      /* A commit must find all the audio before it decoded: the encoder's partial frame and
       * look-ahead are pushed out with silence first (a resent commit needs none). */
      const SendItem &front = sendq->front();
      gsize padding = front.kind == SendKind::Commit && front.offset == SendItem::kUnassigned && ogg
                          ? ogg->flush_padding()
                          : 0;
      taken = sendq->take(padding);
    }
    cond.notify_all(); /* room in the queue */
    const SendItem &item = taken.item;
    for (guint64 lost : taken.given_up)
      listener->on_resend_dropped(lost);
    if (taken.first_send && item.kind == SendKind::Audio)
      listener->on_audio_sent(item.offset, item.samples(), item.time);
    if (taken.padding.audio) {
      listener->on_audio_sent(taken.padding.offset, taken.padding.samples(), GST_CLOCK_TIME_NONE);
      send_audio(ogg->write(reinterpret_cast<const gint16 *>(taken.padding.audio->data()),
                            taken.padding.samples(), true));
    }
    if (taken.first_send && item.kind == SendKind::Commit)
      listener->on_commit_sent(item.offset);
    take_settle();
    switch (item.kind) {
    case SendKind::Audio:
      if (ogg) {
        send_audio(ogg->write(reinterpret_cast<const gint16 *>(item.audio->data()), item.samples(),
                              item.padding));
      } else {
        send_audio(reinterpret_cast<const guint8 *>(item.audio->data()), item.bytes());
      }
      break;
    case SendKind::Commit:
      GST_DEBUG_OBJECT(owner, "sending input_audio_buffer.commit");
      send_text(encode_commit(next_event_id()));
      break;
    case SendKind::Finish:
      if (ogg)
        send_audio(ogg->finish());
      GST_DEBUG_OBJECT(owner, "sending session.finish");
      send_text(encode_finish(next_event_id()));
      phase = Phase::Finishing;
      break;
    }
  }
}

/* Audio before the listener's settle point needs no resend; room in the history lets audio
 * held by flow control go at once. Client thread, after listener callbacks. */
bool AsrClient::Impl::take_settle() {
  guint64 point = listener->settle_point();
  std::lock_guard<std::mutex> lock(mutex);
  return sendq->settle(point);
}

void AsrClient::Impl::apply_settle() {
  if (take_settle() && resend_wait) {
    remove_source(&resend_wait);
    pump();
  }
}

/* One append of encoded bytes (PCM, or Ogg pages); nothing for no bytes. */
void AsrClient::Impl::send_audio(const guint8 *data, gsize size) {
  if (size == 0)
    return;
  std::string text = encode_append(data, size, next_event_id());
  {
    std::lock_guard<std::mutex> lock(mutex);
    stats.bytes_sent += size;
    stats.appends++;
  }
  send_text(text);
}

static gboolean on_resend_wait(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  g_source_unref(impl->resend_wait);
  impl->resend_wait = nullptr;
  impl->pump();
  return G_SOURCE_REMOVE;
}

static gboolean pump_cb(gpointer user_data) {
  static_cast<AsrClient::Impl *>(user_data)->pump();
  return G_SOURCE_CONTINUE;
}

/* The wake source: ready when its ready time is set (from any thread, without allocating). */
static gboolean wake_dispatch(GSource *source, GSourceFunc callback, gpointer data) {
  g_source_set_ready_time(source, -1);
  return callback(data);
}

static GSourceFuncs wake_funcs = {nullptr, nullptr, wake_dispatch, nullptr, nullptr, nullptr};

/* Caller holds `mutex`. Never a direct call: on the network thread pump() takes `mutex`. */
void AsrClient::Impl::schedule_pump_locked() {
  if (pump_scheduled || !wake)
    return;
  pump_scheduled = true;
  g_source_set_ready_time(wake, 0);
}

static gboolean on_close_timeout(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  g_source_unref(impl->close_timeout);
  impl->close_timeout = nullptr;
  impl->finish();
  return G_SOURCE_REMOVE;
}

void AsrClient::Impl::begin_stop() {
  phase = Phase::Done;
  if (cancellable)
    g_cancellable_cancel(cancellable);
  remove_source(&connect_timeout);
  remove_source(&reconnect_timer);
  remove_source(&watchdog);
  if (conn && soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_CLOSED) {
    if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    /* on_ws_closed quits the loop; this bounds a peer that never answers the close. */
    if (!close_timeout)
      close_timeout = add_timeout(kCloseTimeoutMs, on_close_timeout);
    return;
  }
  finish();
}

/* ---- public API (streaming / application threads) ---- */

AsrClient::AsrClient() {}

AsrClient::~AsrClient() {
  stop();
}

static std::string host_of(const std::string &url) {
  GUri *uri = g_uri_parse(url.c_str(), G_URI_FLAGS_NONE, nullptr);
  if (!uri)
    return "the service"; /* never echo a URL: it could hold credentials */
  std::string host = g_uri_get_host(uri) ? g_uri_get_host(uri) : "";
  g_uri_unref(uri);
  return host;
}

bool AsrClient::start(const ClientSettings &settings, ClientListener *listener, GstObject *owner,
                      GError **error) {
  static gsize debug_once = 0;
  if (g_once_init_enter(&debug_once)) {
    GST_DEBUG_CATEGORY_INIT(qwenasr_client_debug, "qwenasrclient", 0,
                            "Qwen ASR WebSocket protocol client");
    g_once_init_leave(&debug_once, 1);
  }
  auto impl = std::make_shared<Impl>();
  impl->settings = settings;
  impl->listener = listener;
  impl->owner = owner;
  impl->host = host_of(settings.url);
  impl->sendq = std::make_unique<SendQueue>(settings.max_queued_bytes, settings.max_resend_bytes);
  impl->io = IoThread::acquire(error);
  if (!impl->io)
    return false;
  impl->context = impl->io->context();
  impl->wake = g_source_new(&wake_funcs, sizeof(GSource));
  g_source_set_callback(impl->wake, pump_cb, impl.get(), nullptr);
  g_source_attach(impl->wake, impl->context);
  gchar *uuid = g_uuid_string_random();
  std::string hex;
  for (const char *p = uuid; *p && hex.size() < 20; p++) {
    if (*p != '-')
      hex += *p;
  }
  g_free(uuid);
  impl->event_prefix = "event_" + hex;

  impl->self = impl;
  io_ = impl->io;
  impl_ = impl;
  invoke(impl, G_PRIORITY_DEFAULT, &Impl::begin);
  return true;
}

void AsrClient::configure(const SessionConfig &config) {
  if (!impl_)
    return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->config = config;
    impl_->have_config = true;
  }
  invoke(impl_, G_PRIORITY_DEFAULT, &Impl::send_update_if_ready);
}

WaitResult AsrClient::push_audio(const guint8 *data, gsize size, GstClockTime time, gint64 deadline,
                                 bool drop_oldest, gsize *dropped_bytes) {
  Impl *impl = impl_.get();
  /* The one copy of the audio: the queue, the history and the encoder share it. */
  auto pcm = std::make_shared<const std::string>(reinterpret_cast<const char *>(data), size);
  std::unique_lock<std::mutex> lock(impl->mutex);
  auto until = to_steady(deadline);
  *dropped_bytes = 0;
  for (;;) {
    if (impl->failed || impl->stopping)
      return WaitResult::Failed;
    if (!impl->sendq->would_overflow(size))
      break;
    if (drop_oldest) {
      /* The timing map sees a gap where the dropped audio was. */
      *dropped_bytes = impl->sendq->drop_unsent(size);
      break;
    }
    if (impl->flushing)
      return WaitResult::Interrupted;
    if (impl->cond.wait_until(lock, until) == std::cv_status::timeout &&
        impl->sendq->would_overflow(size))
      return WaitResult::Timeout;
  }
  if (impl->sendq->push_audio(std::move(pcm), time))
    impl->schedule_pump_locked();
  return WaitResult::Done;
}

void AsrClient::commit() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->sendq->push_commit())
    impl_->schedule_pump_locked();
}

void AsrClient::finish() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->sendq->push_finish())
    impl_->schedule_pump_locked();
}

WaitResult AsrClient::wait_finished(gint64 deadline) {
  Impl *impl = impl_.get();
  std::unique_lock<std::mutex> lock(impl->mutex);
  auto until = to_steady(deadline);
  for (;;) {
    if (impl->finished)
      return WaitResult::Done;
    if (impl->failed || impl->stopping)
      return WaitResult::Failed;
    if (impl->flushing)
      return WaitResult::Interrupted;
    if (impl->cond.wait_until(lock, until) == std::cv_status::timeout)
      return impl->finished ? WaitResult::Done : WaitResult::Timeout;
  }
}

ClientStats AsrClient::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  ClientStats stats = impl_->stats;
  stats.samples_sent = impl_->sendq->sent_samples();
  stats.dropped_samples = impl_->sendq->dropped_samples();
  return stats;
}

bool ClientError::retryable() const {
  switch (kind) {
  case ClientErrorKind::Unauthorized:
  case ClientErrorKind::Rejected:
    return false;
  case ClientErrorKind::Handshake:
    /* Rate limits and server trouble pass; other refusals (bad path, model) will not. */
    return http_status == 408 || http_status == 429 || http_status >= 500;
  case ClientErrorKind::Connect:
  case ClientErrorKind::Timeout:
    return !tls; /* e.g. wss:// to a plain server, a certificate refused */
  default:
    return true;
  }
}

void AsrClient::set_flushing(bool flushing) {
  if (!impl_)
    return;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->flushing = flushing;
  }
  impl_->cond.notify_all();
}

void AsrClient::stop() {
  if (!impl_ || stopped_)
    return;
  stopped_ = true; /* impl_ stays for stats() and for calls that now answer "stopping" */
  const std::shared_ptr<Impl> &impl = impl_;
  {
    std::lock_guard<std::mutex> lock(impl->mutex);
    impl->stopping = true;
  }
  impl->cond.notify_all();
  invoke(impl, G_PRIORITY_HIGH, &Impl::begin_stop);
  if (io_->is_current()) {
    /* Called from a listener callback (e.g. a sync bus handler): waiting here would stall
     * the thread that does the teardown. It finishes on its own; the element may be gone
     * by then. */
    impl->owner = nullptr;
  } else {
    /* Bounded: begin_stop() gives the closing handshake kCloseTimeoutMs. */
    std::unique_lock<std::mutex> lock(impl->mutex);
    impl->cond.wait(lock, [&] { return impl->torn_down; });
  }
  io_.reset(); /* joins the network thread if this was its last session */
}

} // namespace qwenasr
