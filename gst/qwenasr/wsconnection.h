/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One client WebSocket connection on GIO: connecting (TCP, proxy, TLS, the opening handshake)
 * and reading on the network thread's GMainContext, writing whole frames from any thread.
 *
 * Why not libsoup's SoupWebsocketConnection: it may only be used from the thread of its
 * context, so every audio append had to wake the network thread (a thread hand-off per
 * 100 ms append per stream, the main cost of a live stream; docs/performance.md). GIO allows
 * one thread to read a GIOStream while another writes it, so here the streaming thread
 * writes its frames itself, and the network thread only reads, and finishes a write the
 * kernel could not take at once. */
#pragma once

#include "fdwatcher.h"
#include "wsframe.h"
#include "wshandshake.h"

#include <gio/gio.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace qwenasr::ws {

struct ConnectOptions {
  std::string url;        /* ws:// or wss://, with path and query */
  Headers headers;        /* added to the upgrade request (Authorization, User-Agent, ...) */
  bool use_proxy = false; /* ask the default GProxyResolver (not for loopback) */
  GTlsDatabase *tls_database = nullptr; /* borrowed; null: the system's */
  gsize max_incoming_payload = 16 * 1024 * 1024;
  /* The network thread's epoll set, to watch the socket in (null: a GSource of its own);
   * must outlive the connection. */
  FdWatcher *watcher = nullptr;
};

/* Why a connection attempt failed. */
struct ConnectFailure {
  bool cancelled = false;
  bool tls = false;             /* the TLS layer failed (certificate, or not a TLS server) */
  bool bad_certificate = false; /* ... because the server's certificate is not trusted */
  guint http_status = 0;        /* the handshake's answer, if one came and was not 101 */
  Response response;            /* its head (Retry-After, ...) */
  std::string message;          /* a sentence; never contains header values we sent */
};

/* Told what happens on an open connection; called on the network thread only, never with a
 * lock of the connection held. */
class ConnectionListener {
public:
  virtual ~ConnectionListener() = default;
  virtual void on_ws_message(Opcode opcode, const std::string &payload) = 0; /* Text, Binary */
  virtual void on_ws_pong() = 0;
  /* Once, when the connection has ended: the peer's Close code and reason, kCloseAbnormal
   * when it ended without one (EOF, a read or write error, a protocol error from the peer). */
  virtual void on_ws_closed(guint16 code, const std::string &reason) = 0;
  /* Output the kernel could not take at once has now all been written. */
  virtual void on_ws_writable() = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
  using ConnectCallback =
      std::function<void(std::shared_ptr<Connection> connection, const ConnectFailure &failure)>;
  using EventCallback = std::function<void(GSocketClientEvent event)>;

  /* Connects on `context` (the network thread's, its thread default); `done` runs there with
   * the open connection, or null and why. `on_event` follows GSocketClient's progress
   * (resolving, connecting, TLS handshaking, ...). Cancelling `cancellable` ends the attempt
   * with failure.cancelled. */
  static void connect_async(GMainContext *context, const ConnectOptions &options,
                            GCancellable *cancellable, EventCallback on_event,
                            ConnectCallback done);

  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  /* Network thread. Starts reading and reporting to `listener` (which must outlive the
   * connection or be cleared with set_listener(nullptr) first). */
  void set_listener(ConnectionListener *listener);

  /* Any thread. Writes one frame, at once if the kernel takes it, else keeps what is left and
   * the network thread writes it when the socket can take it (on_ws_writable()). False once
   * the connection is closing or closed (the frame is not sent). */
  bool send(Opcode opcode, const void *payload, gsize size);
  bool send_text(const std::string &text) { return send(Opcode::Text, text.data(), text.size()); }
  /* Any thread. Whether nothing is waiting to be written: the next frame goes straight to
   * the kernel. A sender that cares about memory sends only then. */
  bool writable() const;
  /* Any thread. Whether frames can still be sent (no Close sent or received, no error). */
  bool is_open() const;

  /* Network thread. Sends Close (code, reason) if the connection is open; the connection ends
   * (on_ws_closed) when the peer answers with its Close, or at once if it cannot be sent. */
  void close(guint16 code, const std::string &reason = {});
  /* Network thread. Ends the connection now, without a Close handshake and without telling
   * the listener. */
  void abort();

  /* The connection's state, defined in wsconnection.cpp, whose callbacks use it; only
   * connect_async() makes one. */
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl);
  Impl &impl() { return *impl_; }

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace qwenasr::ws
