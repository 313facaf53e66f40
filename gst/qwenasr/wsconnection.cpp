/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client WebSocket connection on GIO: connect, handshake, read loop, and the write path
 * that any thread may use. */
#include "wsconnection.h"

#include <cstring>

namespace qwenasr::ws {

namespace {

constexpr gsize kReadChunk = 16 * 1024;
/* Reads per wake-up before the other sockets get their turn. */
constexpr int kReadsPerWake = 16;

bool host_is_loopback(const char *host) {
  return g_strcmp0(host, "localhost") == 0 || g_strcmp0(host, "::1") == 0 ||
         g_str_has_prefix(host, "127.");
}

/* Closes the connection's socket at once, without TLS close_notify (not required, see
 * on_client_event): closing a TLS stream properly writes, which could block, or leave an
 * asynchronous close behind when the network thread ends. Takes the reference. */
void close_now(GIOStream *stream) {
  if (G_IS_SOCKET_CONNECTION(stream))
    g_socket_close(g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream)), nullptr);
  g_object_unref(stream);
}

/* Masking keys need not be secret from us, only unpredictable to the page the frame could
 * target (RFC 6455 §10.3): GLib's generator is enough and takes no allocation. */
guint32 mask_key() {
  return g_random_int();
}

} // namespace

/* Lock order: write_mutex is the innermost lock of a connection; nothing else is taken or
 * called with it held, except GIO's non-blocking write and source attach/destroy. */
struct Connection::Impl {
  GMainContext *context = nullptr;      /* owned ref; the network thread's */
  GIOStream *stream = nullptr;          /* owned; closed by end_stream() */
  GPollableInputStream *in = nullptr;   /* borrowed from stream */
  GPollableOutputStream *out = nullptr; /* borrowed from stream */
  std::weak_ptr<Connection> self;

  /* network thread only */
  ConnectionListener *listener = nullptr;
  FdWatcher *watcher = nullptr;   /* not owned */
  guint64 watch_token = 0;        /* the socket in `watcher`, while reading */
  GSource *read_source = nullptr; /* without a watcher: the input stream's source */
  GSource *read_again = nullptr;  /* more to read after kReadsPerWake */
  Decoder decoder{16 * 1024 * 1024};
  bool ended = false; /* on_ws_closed was called, or abort() */

  /* any thread, guarded by write_mutex */
  mutable std::mutex write_mutex;
  std::string pending;             /* frame bytes the kernel did not take yet */
  gsize pending_offset = 0;        /* of pending, already written */
  GSource *write_source = nullptr; /* polls for writability while pending */
  bool open = true;                /* no Close sent, no write error, not ended */
  bool stream_closed = false;
  std::string write_error; /* the first write error; the network thread reports it */

  void write_pending_locked();
  void arm_write_source_locked();
  void end(guint16 code, const std::string &reason);
  void end_stream();
  bool read_available();
  bool dispatch();
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() {
  impl_->end_stream();
  g_main_context_unref(impl_->context);
}

/* ---- connecting ---- */

namespace {

struct Attempt {
  GMainContext *context = nullptr;     /* owned ref */
  GCancellable *cancellable = nullptr; /* owned ref, may be null */
  Connection::EventCallback on_event;
  Connection::ConnectCallback done;
  GTlsDatabase *tls_database = nullptr; /* owned ref, may be null */
  gsize max_incoming_payload = 0;
  FdWatcher *watcher = nullptr;
  std::string key;
  std::string request;
  GIOStream *stream = nullptr; /* owned once connected */
  std::string head;            /* the response so far */
  guint8 buffer[4096];

  ~Attempt() {
    g_main_context_unref(context);
    g_clear_object(&cancellable);
    g_clear_object(&tls_database);
    g_clear_object(&stream);
  }

  void fail(ConnectFailure failure) {
    if (stream) {
      close_now(stream);
      stream = nullptr;
    }
    done(nullptr, failure);
    delete this;
  }
  void fail(GError *error, const char *what) {
    ConnectFailure failure;
    failure.cancelled = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    /* Only the connect stage does TLS handshaking; a TLS error later (an EOF without
     * close_notify during the upgrade) is a lost connection, worth another try. */
    failure.tls = !what && error->domain == G_TLS_ERROR;
    failure.bad_certificate =
        failure.tls && g_error_matches(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
    /* GIO's connect errors name the host already ("Could not connect to HOST: ..."). */
    failure.message = what ? std::string(what) + ": " + error->message : error->message;
    g_error_free(error);
    fail(failure);
  }
};

void on_client_event(GSocketClient *, GSocketClientEvent event, GSocketConnectable *,
                     GIOStream *connection, gpointer data) {
  auto *attempt = static_cast<Attempt *>(data);
  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && G_IS_TLS_CONNECTION(connection)) {
    /* Servers and load balancers often close without close_notify (libsoup does not require
     * it either); the WebSocket Close handshake is what says a session ended cleanly. */
    g_tls_connection_set_require_close_notify(G_TLS_CONNECTION(connection), FALSE);
    if (attempt->tls_database)
      g_tls_connection_set_database(G_TLS_CONNECTION(connection), attempt->tls_database);
  }
  if (attempt->on_event)
    attempt->on_event(event);
}

void read_head(Attempt *attempt);

void on_head_read(GObject *source, GAsyncResult *result, gpointer data) {
  auto *attempt = static_cast<Attempt *>(data);
  GError *error = nullptr;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  if (n < 0) {
    attempt->fail(error, "reading the handshake answer");
    return;
  }
  if (n == 0) {
    ConnectFailure failure;
    failure.message = "the server closed the connection during the WebSocket handshake";
    attempt->fail(failure);
    return;
  }
  attempt->head.append(reinterpret_cast<const char *>(attempt->buffer), n);
  Response response;
  std::string problem;
  gssize used = parse_response(attempt->head.data(), attempt->head.size(), &response, &problem);
  if (used == 0) {
    read_head(attempt);
    return;
  }
  ConnectFailure failure;
  if (used < 0) {
    failure.message = "the server's handshake answer is not HTTP: " + problem;
    attempt->fail(failure);
    return;
  }
  if (response.status != 101) {
    failure.http_status = response.status;
    failure.message = "the server did not accept the WebSocket handshake (HTTP " +
                      std::to_string(response.status) +
                      (response.reason.empty() ? "" : " " + response.reason) + ")";
    failure.response = std::move(response);
    attempt->fail(failure);
    return;
  }
  if (!verify_response(response, attempt->key, &problem)) {
    failure.message = "the server's WebSocket handshake is invalid: " + problem;
    attempt->fail(failure);
    return;
  }
  auto impl = std::make_unique<Connection::Impl>();
  impl->context = g_main_context_ref(attempt->context);
  impl->stream = attempt->stream;
  attempt->stream = nullptr;
  impl->in = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(impl->stream));
  impl->out = G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(impl->stream));
  impl->decoder = Decoder(attempt->max_incoming_payload);
  impl->watcher = attempt->watcher;
  /* What came after the blank line is already WebSocket. */
  impl->decoder.feed(reinterpret_cast<const guint8 *>(attempt->head.data()) + used,
                     attempt->head.size() - used);
  std::shared_ptr<Connection> connection(new Connection(std::move(impl)));
  connection->impl().self = connection;
  attempt->done(connection, ConnectFailure());
  delete attempt;
}

void read_head(Attempt *attempt) {
  if (attempt->head.size() > kMaxResponseHead) {
    ConnectFailure failure;
    failure.message = "the server's handshake answer is too long";
    attempt->fail(failure);
    return;
  }
  g_input_stream_read_async(g_io_stream_get_input_stream(attempt->stream), attempt->buffer,
                            sizeof attempt->buffer, G_PRIORITY_DEFAULT, attempt->cancellable,
                            on_head_read, attempt);
}

void on_request_written(GObject *source, GAsyncResult *result, gpointer data) {
  auto *attempt = static_cast<Attempt *>(data);
  GError *error = nullptr;
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, nullptr, &error)) {
    attempt->fail(error, "sending the WebSocket handshake");
    return;
  }
  read_head(attempt);
}

void on_connected(GObject *source, GAsyncResult *result, gpointer data) {
  auto *attempt = static_cast<Attempt *>(data);
  GError *error = nullptr;
  GSocketConnection *connection =
      g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error);
  g_signal_handlers_disconnect_by_data(source, attempt);
  g_object_unref(source);
  if (!connection) {
    attempt->fail(error, nullptr);
    return;
  }
  attempt->stream = G_IO_STREAM(connection);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(attempt->stream),
                                  attempt->request.data(), attempt->request.size(),
                                  G_PRIORITY_DEFAULT, attempt->cancellable, on_request_written,
                                  attempt);
}

} // namespace

void Connection::connect_async(GMainContext *context, const ConnectOptions &options,
                               GCancellable *cancellable, EventCallback on_event,
                               ConnectCallback done) {
  auto *attempt = new Attempt();
  attempt->context = g_main_context_ref(context);
  attempt->cancellable = cancellable ? G_CANCELLABLE(g_object_ref(cancellable)) : nullptr;
  attempt->on_event = std::move(on_event);
  attempt->done = std::move(done);
  attempt->tls_database =
      options.tls_database ? G_TLS_DATABASE(g_object_ref(options.tls_database)) : nullptr;
  attempt->max_incoming_payload = options.max_incoming_payload;
  attempt->watcher = options.watcher;

  GUri *uri = g_uri_parse(options.url.c_str(), G_URI_FLAGS_ENCODED, nullptr);
  const char *scheme = uri ? g_uri_get_scheme(uri) : nullptr;
  const bool tls = g_strcmp0(scheme, "wss") == 0;
  if (!uri || !(tls || g_strcmp0(scheme, "ws") == 0) || !g_uri_get_host(uri) ||
      !*g_uri_get_host(uri)) {
    if (uri)
      g_uri_unref(uri);
    ConnectFailure failure;
    failure.message = "the URL cannot be parsed as ws:// or wss://";
    attempt->fail(failure);
    return;
  }
  const char *host = g_uri_get_host(uri);
  const guint16 default_port = tls ? 443 : 80;
  const guint16 port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : default_port;
  std::string host_header = strchr(host, ':') ? std::string("[") + host + "]" : host;
  if (port != default_port)
    host_header += ":" + std::to_string(port);
  std::string target = *g_uri_get_path(uri) ? g_uri_get_path(uri) : "/";
  if (g_uri_get_query(uri))
    target += std::string("?") + g_uri_get_query(uri);
  attempt->key = new_key();
  attempt->request = encode_request(host_header, target, attempt->key, options.headers);

  /* The proxy resolver is asked for the http(s):// address, as libsoup and browsers do. */
  gchar *lookup = g_strdup_printf("%s://%s:%u", tls ? "https" : "http", host_header.c_str(),
                                  static_cast<guint>(port));
  if (port == default_port) {
    g_free(lookup);
    lookup = g_strdup_printf("%s://%s", tls ? "https" : "http", host_header.c_str());
  }
  GSocketConnectable *address = g_network_address_parse_uri(lookup, default_port, nullptr);
  g_free(lookup);
  if (!address)
    address = g_network_address_new(host, port);
  GSocketClient *client = g_socket_client_new();
  g_socket_client_set_enable_proxy(client, options.use_proxy && !host_is_loopback(host));
  g_socket_client_set_tls(client, tls);
  g_signal_connect(client, "event", G_CALLBACK(on_client_event), attempt);
  g_uri_unref(uri);
  g_socket_client_connect_async(client, address, attempt->cancellable, on_connected, attempt);
  g_object_unref(address);
}

/* ---- reading (network thread) ---- */

namespace {

gboolean on_readable(GObject *, gpointer data) {
  auto connection = static_cast<std::weak_ptr<Connection> *>(data)->lock();
  if (!connection)
    return G_SOURCE_REMOVE;
  return connection->impl().read_available() ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* The FdWatcher's callback; the watch ends (end_stream()) before the connection does. */
void on_socket_ready(gpointer data) {
  static_cast<Connection::Impl *>(data)->read_available();
}

gboolean on_read_again(gpointer data) {
  auto connection = static_cast<std::weak_ptr<Connection> *>(data)->lock();
  if (!connection)
    return G_SOURCE_REMOVE;
  Connection::Impl &impl = connection->impl();
  g_source_unref(impl.read_again);
  impl.read_again = nullptr;
  impl.read_available();
  return G_SOURCE_REMOVE;
}

void delete_weak(gpointer data) {
  delete static_cast<std::weak_ptr<Connection> *>(data);
}

} // namespace

/* Reads what the socket has and dispatches whole messages; false once the connection ended
 * (it is then no longer watched). Reads until the stream would block (TLS may hold decrypted
 * bytes the socket no longer signals), at most kReadsPerWake times, then goes on from an idle
 * source. */
bool Connection::Impl::read_available() {
  std::shared_ptr<Connection> keep = self.lock(); /* a listener may let go of us */
  guint8 buffer[kReadChunk];
  for (int reads = 0;; reads++) {
    if (reads == kReadsPerWake) {
      if (!read_again) {
        read_again = g_idle_source_new();
        g_source_set_callback(read_again, on_read_again, new std::weak_ptr<Connection>(self),
                              delete_weak);
        g_source_attach(read_again, context);
      }
      return true;
    }
    GError *error = nullptr;
    gssize n = g_pollable_input_stream_read_nonblocking(in, buffer, sizeof buffer, nullptr, &error);
    if (n < 0) {
      if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_error_free(error);
        return true;
      }
      std::string reason = std::string("reading failed: ") + error->message;
      g_error_free(error);
      end(kCloseAbnormal, reason);
      return false;
    }
    if (n == 0) {
      end(kCloseAbnormal, "the connection ended without a Close frame");
      return false;
    }
    decoder.feed(buffer, n);
    if (!dispatch())
      return false;
  }
}

/* Hands every complete message to the listener; false once the connection ended. */
bool Connection::Impl::dispatch() {
  Message message;
  while (!ended) {
    switch (decoder.next(&message)) {
    case Decoder::Result::NeedMore:
      return true;
    case Decoder::Result::Error: {
      /* Tell the peer why, then end without waiting for its answer. */
      std::string payload = close_payload(decoder.error_code(), decoder.error_reason());
      Connection *connection = self.lock().get();
      if (connection)
        connection->send(Opcode::Close, payload.data(), payload.size());
      end(decoder.error_code(),
          "the server broke the WebSocket protocol: " + decoder.error_reason());
      return false;
    }
    case Decoder::Result::Message:
      break;
    }
    switch (message.opcode) {
    case Opcode::Text:
    case Opcode::Binary:
      if (listener)
        listener->on_ws_message(message.opcode, message.payload);
      break;
    case Opcode::Ping:
      if (auto connection = self.lock())
        connection->send(Opcode::Pong, message.payload.data(), message.payload.size());
      break;
    case Opcode::Pong:
      if (listener)
        listener->on_ws_pong();
      break;
    case Opcode::Close: {
      guint16 code = kCloseNoStatus;
      std::string reason;
      if (!parse_close(reinterpret_cast<const guint8 *>(message.payload.data()),
                       message.payload.size(), &code, &reason))
        code = kCloseProtocolError;
      /* Answered with the same code (RFC 6455 §5.5.1); a code no endpoint may send
       * (§7.4.1: 1005, 1006, 1015, unassigned ranges) is answered with 1002. */
      const bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                            (code >= 3000 && code <= 4999);
      std::string payload = close_payload(code == kCloseNoStatus ? 0
                                          : sendable             ? code
                                                                 : kCloseProtocolError,
                                          {});
      if (auto connection = self.lock())
        connection->send(Opcode::Close, payload.data(), payload.size());
      end(code, reason);
      return false;
    }
    default:
      break;
    }
  }
  return false;
}

void Connection::set_listener(ConnectionListener *listener) {
  Impl &impl = *impl_;
  impl.listener = listener;
  if (!listener || impl.read_source || impl.watch_token || impl.ended)
    return;
  if (impl.watcher && G_IS_SOCKET_CONNECTION(impl.stream)) {
    GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(impl.stream));
    impl.watch_token = impl.watcher->watch(g_socket_get_fd(socket), on_socket_ready, &impl);
  }
  if (!impl.watch_token) {
    impl.read_source = g_pollable_input_stream_create_source(impl.in, nullptr);
    g_source_set_callback(impl.read_source, G_SOURCE_FUNC(on_readable),
                          new std::weak_ptr<Connection>(impl.self), delete_weak);
    g_source_attach(impl.read_source, impl.context);
  }
  /* What came with the handshake answer (the listener may let go of us meanwhile). */
  std::shared_ptr<Connection> keep = shared_from_this();
  impl_->dispatch();
}

/* The connection has ended: reported once, unless abort() came first. */
void Connection::Impl::end(guint16 code, const std::string &reason) {
  if (ended)
    return;
  ended = true;
  end_stream();
  if (listener)
    listener->on_ws_closed(code, reason);
}

void Connection::Impl::end_stream() {
  if (watch_token) {
    watcher->unwatch(watch_token);
    watch_token = 0;
  }
  for (GSource **source : {&read_source, &read_again}) {
    if (*source) {
      g_source_destroy(*source);
      g_source_unref(*source);
      *source = nullptr;
    }
  }
  std::lock_guard<std::mutex> lock(write_mutex);
  open = false;
  if (write_source) {
    g_source_destroy(write_source);
    g_source_unref(write_source);
    write_source = nullptr;
  }
  pending.clear();
  pending_offset = 0;
  if (stream && !stream_closed) {
    stream_closed = true;
    close_now(stream);
    stream = nullptr;
  }
}

void Connection::close(guint16 code, const std::string &reason) {
  std::string payload = close_payload(code, reason);
  if (!send(Opcode::Close, payload.data(), payload.size()) && !impl_->ended) {
    std::string error;
    {
      std::lock_guard<std::mutex> lock(impl_->write_mutex);
      error = impl_->write_error;
    }
    if (!error.empty())
      impl_->end(kCloseAbnormal, error);
  }
}

void Connection::abort() {
  impl_->listener = nullptr;
  impl_->ended = true;
  impl_->end_stream();
}

/* ---- writing (any thread) ---- */

namespace {

gboolean on_writable(GObject *, gpointer data) {
  auto connection = static_cast<std::weak_ptr<Connection> *>(data)->lock();
  if (!connection)
    return G_SOURCE_REMOVE;
  Connection::Impl &impl = connection->impl();
  bool drained = false, failed = false;
  {
    std::lock_guard<std::mutex> lock(impl.write_mutex);
    if (!impl.write_source)
      return G_SOURCE_REMOVE;
    impl.write_pending_locked();
    failed = !impl.write_error.empty();
    drained = impl.pending_offset == impl.pending.size();
    if (drained || failed) {
      g_source_unref(impl.write_source);
      impl.write_source = nullptr;
    }
  }
  if (failed) {
    std::string error;
    {
      std::lock_guard<std::mutex> lock(impl.write_mutex);
      error = impl.write_error;
    }
    impl.end(kCloseAbnormal, error);
    return G_SOURCE_REMOVE;
  }
  if (!drained)
    return G_SOURCE_CONTINUE;
  if (impl.listener && !impl.ended)
    impl.listener->on_ws_writable();
  return G_SOURCE_REMOVE;
}

gboolean on_write_failed(gpointer data) {
  auto connection = static_cast<std::weak_ptr<Connection> *>(data)->lock();
  if (!connection)
    return G_SOURCE_REMOVE;
  Connection::Impl &impl = connection->impl();
  std::string error;
  {
    std::lock_guard<std::mutex> lock(impl.write_mutex);
    error = impl.write_error;
  }
  impl.end(kCloseAbnormal, error);
  return G_SOURCE_REMOVE;
}

} // namespace

/* Writes what is pending while the kernel takes it; a failure is kept in write_error and
 * reported on the network thread. */
void Connection::Impl::write_pending_locked() {
  while (pending_offset < pending.size() && write_error.empty()) {
    GError *error = nullptr;
    gssize n = g_pollable_output_stream_write_nonblocking(
        out, pending.data() + pending_offset, pending.size() - pending_offset, nullptr, &error);
    if (n >= 0) {
      pending_offset += n;
      continue;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
      g_error_free(error);
      return;
    }
    write_error = std::string("writing failed: ") + error->message;
    g_error_free(error);
    open = false;
    GSource *idle = g_idle_source_new();
    g_source_set_priority(idle, G_PRIORITY_HIGH);
    g_source_set_callback(idle, on_write_failed, new std::weak_ptr<Connection>(self), delete_weak);
    g_source_attach(idle, context);
    g_source_unref(idle);
  }
  if (pending_offset == pending.size()) {
    pending.clear();
    pending_offset = 0;
  }
}

void Connection::Impl::arm_write_source_locked() {
  if (write_source || stream_closed || pending_offset == pending.size())
    return;
  write_source = g_pollable_output_stream_create_source(out, nullptr);
  g_source_set_callback(write_source, G_SOURCE_FUNC(on_writable),
                        new std::weak_ptr<Connection>(self), delete_weak);
  g_source_attach(write_source, context);
}

bool Connection::send(Opcode opcode, const void *payload, gsize size) {
  const guint32 key = mask_key();
  std::lock_guard<std::mutex> lock(impl_->write_mutex);
  Impl &impl = *impl_;
  if (!impl.open || impl.stream_closed)
    return false;
  if (opcode == Opcode::Close)
    impl.open = false; /* nothing may follow a Close */
  /* Framed and masked straight into the pending buffer, which keeps its capacity once
   * written: in the common case (nothing pending) no allocation and no copy per frame. */
  encode_frame(opcode, payload, size, key, &impl.pending);
  impl.write_pending_locked();
  impl.arm_write_source_locked();
  return true;
}

bool Connection::writable() const {
  std::lock_guard<std::mutex> lock(impl_->write_mutex);
  return impl_->open && impl_->pending.empty();
}

bool Connection::is_open() const {
  std::lock_guard<std::mutex> lock(impl_->write_mutex);
  return impl_->open;
}

} // namespace qwenasr::ws
