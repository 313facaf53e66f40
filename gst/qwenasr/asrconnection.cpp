/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection side of a protocol session on the network thread: connecting (proxy, TLS,
 * handshake, timeouts), the WebSocket's signals and keepalive watchdog, reconnecting with
 * backoff, failing and tearing down. */
#include "asrclient-private.h"

#define GST_CAT_DEFAULT qwenasr_client_debug

namespace qwenasr {

namespace {

/* Frames above this are refused (close 1009); final transcripts are far smaller, and the
 * limit keeps a misbehaving peer from making us buffer without bound. */
constexpr guint64 kMaxIncomingPayload = 16 * 1024 * 1024;
constexpr guint kMaxReconnectDelayMs = 8000;
/* A Retry-After on a refused handshake is honoured up to this long. */
constexpr guint kMaxRetryAfterMs = 30000;

} // namespace

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

void invoke(const std::shared_ptr<AsrClient::Impl> &impl, gint priority,
            void (AsrClient::Impl::*method)()) {
  g_main_context_invoke_full(impl->context, priority, call_cb, new Call{impl, method}, call_free);
}

void AsrClient::Impl::begin() {
  if (phase == Phase::Done)
    return; /* stop() came first (begin_stop() runs at a higher priority) */
  if (load_tls_database())
    connect();
}

/* The session is over: its teardown runs from an idle source, after the connection callback
 * that ended it has returned. */
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

void AsrClient::Impl::on_ws_message(ws::Opcode, const std::string &payload) {
  if (is_stopping())
    return; /* the listener may already be gone or serving a new session */
  last_activity = g_get_monotonic_time();
  /* Events are documented as text frames; a binary frame is decoded (and repaired) like
   * text: one that is no event counts as one bad frame, nothing more. Text is not checked
   * for UTF-8 on the way in: the event decoder repairs it. */
  handle_text(payload.data(), payload.size());
  apply_settle();
}

/* Checks four times per keepalive interval that the peer said anything in the last three
 * intervals (so a dead peer is found within 3¼ intervals of its last word, whatever the phase
 * of the timer), and sends a ping once per interval. */
static gboolean on_watchdog(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  if (!impl->conn)
    return G_SOURCE_CONTINUE;
  const gint64 now = g_get_monotonic_time();
  const gint64 interval = static_cast<gint64>(impl->settings.keepalive_interval_s) * G_USEC_PER_SEC;
  gint64 silent = now - impl->last_activity;
  gint64 limit = 3 * interval;
  if (silent > limit) {
    impl->fail(
        ClientError(ClientErrorKind::Closed, impl->host,
                    "no answer to pings for " + std::to_string(silent / G_USEC_PER_SEC) + " s"));
    return G_SOURCE_CONTINUE;
  }
  if (now - impl->last_ping >= interval) {
    impl->conn->send(ws::Opcode::Ping, nullptr, 0);
    impl->last_ping = now;
  }
  return G_SOURCE_CONTINUE;
}

void AsrClient::Impl::on_ws_closed(guint16 code, const std::string &reason) {
  if (is_stopping()) {
    finish();
    return;
  }
  if (phase == Phase::Done)
    return;
  ClientError error{ClientErrorKind::Closed, host};
  error.detail =
      "close code " + std::to_string(code) + (reason.empty() ? "" : ", reason: " + reason);
  fail(error);
}

void AsrClient::Impl::on_connected(std::shared_ptr<ws::Connection> connection,
                                   const ws::ConnectFailure &failure) {
  if (finishing) {
    /* Too late: stop() already let go of the session. */
    if (connection) {
      connection->close(ws::kCloseNormal);
      connection->abort();
    }
    return;
  }
  if (!connection) {
    if (failure.cancelled)
      return; /* stop() or the connect timeout cancelled us; whoever did has reported or quits */
    ClientError error{ClientErrorKind::Connect, host};
    guint status = failure.http_status;
    error.http_status = status;
    if (status == 401 || status == 403)
      error.kind = ClientErrorKind::Unauthorized;
    else if (status >= 200)
      error.kind = ClientErrorKind::Handshake;
    if (error.kind == ClientErrorKind::Handshake) {
      /* Delay-seconds only; an HTTP-date is rare and the backoff then applies. */
      const std::string *retry_after = failure.response.header("Retry-After");
      gchar *end = nullptr;
      guint64 seconds = retry_after ? g_ascii_strtoull(retry_after->c_str(), &end, 10) : 0;
      if (retry_after && end && end != retry_after->c_str() && *end == '\0')
        error.retry_after_ms = static_cast<guint>(MIN(seconds * 1000, kMaxRetryAfterMs));
    }
    error.tls = failure.tls;
    error.detail = failure.message;
    if (failure.bad_certificate)
      error.detail += " (the server's certificate is not trusted here: for a private CA, set "
                      "tls-ca-file to its certificate)";
    else if (error.tls)
      error.detail += " (TLS failed: is the server speaking TLS? a ws:// server needs a ws:// url)";
    fail(error);
    return;
  }
  conn = std::move(connection);
  if (is_stopping()) {
    /* stop() ran while connecting; begin_stop found no connection and quit already. */
    conn->close(ws::kCloseNormal);
    return;
  }
  last_activity = last_ping = g_get_monotonic_time();
  if (settings.keepalive_interval_s > 0 && !watchdog)
    watchdog = add_timer(settings.keepalive_interval_s * 1000 / 4, on_watchdog);
  phase = Phase::WaitingCreated;
  GST_INFO_OBJECT(owner, "connected to %s", host.c_str());
  listener->on_connected(host);
  conn->set_listener(this); /* starts reading: events may follow at once */
}

gboolean on_connect_timeout(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  impl->connect_timeout = 0;
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

/* tls-ca-file: the one database every connection of this client checks certificates with. */
bool AsrClient::Impl::load_tls_database() {
  if (settings.tls_ca_file.empty())
    return true;
  GError *gerror = nullptr;
  tls_database = g_tls_file_database_new(settings.tls_ca_file.c_str(), &gerror);
  if (!tls_database) {
    ClientError error{ClientErrorKind::Rejected, host};
    error.detail = std::string("cannot load tls-ca-file: ") + gerror->message;
    error.service.message = error.detail;
    g_error_free(gerror);
    fail(error);
    return false;
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

  ws::ConnectOptions options;
  options.url = settings.url;
  options.headers.emplace_back("Authorization", "Bearer " + settings.api_key);
  if (!settings.user_agent.empty())
    options.headers.emplace_back("User-Agent", settings.user_agent);
  if (!settings.workspace.empty())
    options.headers.emplace_back("X-DashScope-WorkSpace", settings.workspace);
  options.use_proxy = settings.use_proxy;
  options.tls_database = tls_database;
  options.max_incoming_payload = kMaxIncomingPayload;
  options.watcher = io->watcher();

  network_event = G_SOCKET_CLIENT_RESOLVING;
  connect_timeout = add_timer(settings.connect_timeout_ms, on_connect_timeout);
  GST_INFO_OBJECT(owner, "connecting to %s", host.c_str());
  /* The session is kept alive until its connection attempt answers, even when torn down. */
  std::shared_ptr<Impl> keep = self;
  ws::Connection::connect_async(
      context, options, cancellable,
      [keep](GSocketClientEvent event) { keep->network_event = event; },
      [keep](std::shared_ptr<ws::Connection> connection, const ws::ConnectFailure &failure) {
        keep->on_connected(std::move(connection), failure);
      });
}

/* Forgets the current connection without reporting anything: its callbacks are cut off. */
void AsrClient::Impl::drop_connection() {
  remove_timer(&connect_timeout);
  remove_timer(&watchdog);
  {
    std::lock_guard<std::mutex> sending(send_mutex);
    remove_timer(&resend_wait);
    send_conn.reset();
  }
  if (cancellable)
    g_cancellable_cancel(cancellable);
  if (conn) {
    conn->set_listener(nullptr);
    conn->close(ws::kCloseGoingAway);
    conn->abort();
    conn.reset();
  }
}

void AsrClient::Impl::teardown() {
  drop_connection();
  remove_timer(&close_timeout);
  remove_timer(&reconnect_timer);
  g_clear_object(&tls_database);
  g_clear_object(&cancellable);
}

static gboolean on_reconnect_timer(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  impl->reconnect_timer = 0;
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
    reconnect_timer = add_timer(delay, on_reconnect_timer);
    return;
  }
  {
    std::lock_guard<std::mutex> sending(send_mutex); /* no pump overwrites Done */
    phase = Phase::Done;
    send_conn.reset();
  }
  remove_timer(&connect_timeout);
  remove_timer(&watchdog);
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
  if (conn && conn->is_open())
    conn->close(ws::kCloseNormal);
}

} // namespace qwenasr
