/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The protocol client: one WebSocket session with the realtime ASR service.
 *
 * It owns a thread with its own GMainContext, the SoupSession and the
 * SoupWebsocketConnection; nothing else in the plugin touches libsoup. The streaming thread
 * hands it audio through a bounded queue and waits only with a deadline and an interrupt
 * check; the listener is called on the client thread. */
#pragma once

#include <glib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "asrprotocol.h"

namespace qwenasr {

struct ClientSettings {
  std::string url;     /* full URL, including ?model= */
  std::string api_key; /* secret: sent in the Authorization header, never logged */
  std::string workspace;
  std::string user_agent;
  std::string tls_ca_file;
  bool use_proxy = true;
  guint connect_timeout_ms = 10000;
  guint keepalive_interval_s = 20; /* long silences must not look idle to middleboxes */
  gsize max_queued_bytes = 320000;
};

enum class ClientErrorKind {
  Unauthorized, /* handshake answered 401/403 */
  Handshake,    /* handshake answered another HTTP status */
  Connect,      /* DNS, TCP, TLS */
  Timeout,      /* no session within connect-timeout */
  Rejected,     /* the service refused the session configuration */
  Service,      /* server_error event */
  Closed,       /* the connection ended before the session finished */
};

struct ClientError {
  ClientError(ClientErrorKind kind_, std::string host_, std::string detail_ = {})
      : kind(kind_), host(std::move(host_)), detail(std::move(detail_)) {}
  ClientErrorKind kind;
  std::string host;
  guint http_status = 0;
  std::string detail;   /* the underlying GError or close reason; never contains the key */
  ServiceError service; /* for Rejected / Service */
};

/* Called on the client thread. Implementations must not call back into blocking client
 * methods (push_audio, wait_finished, stop). */
class ClientListener {
public:
  virtual ~ClientListener() = default;
  virtual void on_connected(const std::string &host) = 0;
  /* Every decoded server event, including the ones the client acts on itself. Service errors
   * that end the session arrive through on_failure instead. */
  virtual void on_event(const ServerEvent &event) = 0;
  /* Once, when the session cannot go on; the client closes the connection afterwards. */
  virtual void on_failure(const ClientError &error) = 0;
  virtual void on_bad_frame(const std::string &problem) = 0;
};

enum class WaitResult { Done, Interrupted, Timeout, Failed };

class AsrClient {
public:
  AsrClient();
  ~AsrClient(); /* stops */
  AsrClient(const AsrClient &) = delete;
  AsrClient &operator=(const AsrClient &) = delete;

  /* Starts connecting in the background; false only if the thread cannot start. */
  bool start(const ClientSettings &settings, ClientListener *listener, GError **error);
  /* The session configuration, sent once the service has created the session. */
  void configure(const SessionConfig &config);
  /* Queues one append. Blocks while the queue is full until there is room, `deadline`
   * (g_get_monotonic_time base), a failure, or interrupted() returns true after wake(). */
  WaitResult push_audio(const guint8 *data, gsize size, gint64 deadline,
                        const std::function<bool()> &interrupted);
  void commit(); /* queued behind the audio already pushed */
  void finish(); /* session.finish, queued behind everything else */
  /* Waits for session.finished (Done), a failure, the deadline, or an interruption. */
  WaitResult wait_finished(gint64 deadline, const std::function<bool()> &interrupted);
  /* Makes every waiter re-check its interrupted() callback. */
  void wake();
  /* Closes the connection (bounded) and joins the thread. Safe to call twice. */
  void stop();

  bool failed() const;
  gsize queued_bytes() const;

  struct Impl; /* public only for the C callbacks in asrclient.cpp */

private:
  std::shared_ptr<Impl> impl_; /* shared with the client thread, which may outlive stop() */
  GThread *thread_ = nullptr;
};

} // namespace qwenasr
