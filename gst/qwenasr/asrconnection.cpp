/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection side of a protocol session on the network thread: connecting (proxy, TLS,
 * handshake, timeouts), the WebSocket's signals and keepalive watchdog, reconnecting with
 * backoff, failing and tearing down. */
#include "asrclient-private.h"

#define GST_CAT_DEFAULT qwenasr_client_debug

namespace qwenasr {

namespace {

/* Frames above this are refused by libsoup (close 1009); final transcripts are far smaller,
 * and the limit keeps a misbehaving peer from making us buffer without bound. */
constexpr guint64 kMaxIncomingPayload = 16 * 1024 * 1024;
constexpr guint kMaxReconnectDelayMs = 8000;
/* A Retry-After on a refused handshake is honoured up to this long. */
constexpr guint kMaxRetryAfterMs = 30000;

bool host_is_loopback(const std::string &host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

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

gboolean on_connect_timeout(gpointer user_data) {
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

} // namespace qwenasr
