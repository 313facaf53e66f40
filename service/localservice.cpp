// SPDX-License-Identifier: LGPL-2.1-or-later
/* Server side of the local Qwen-ASR stand-in: a SoupServer on a private thread and main context,
 * the handshake checks (docs/protocol.md §1), and the sessions it owns (session.h, one per
 * WebSocket connection), which reach it only through SessionOwner. */
#include "localservice.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "faults.h"
#include "json.h"
#include "session.h"

namespace qwenasr::local {

namespace {
constexpr const char kPath[] = "/api-ws/v1/realtime";
} // namespace

struct LocalService::Impl final : SessionOwner {
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
  std::unique_ptr<Engine> engine_;
  std::list<std::unique_ptr<Session>> live;
  bool shutting_down = false;

  mutable std::mutex rec_mu;
  std::vector<SessionRecord> records;

  // SessionOwner (service thread).
  const ServiceOptions &options() const override { return opts; }
  GMainContext *context() const override { return ctx; }
  Engine &engine() override { return *engine_; }
  void update_record(size_t index, const std::function<void(SessionRecord &)> &f) override {
    std::lock_guard<std::mutex> lock(rec_mu);
    if (index < records.size())
      f(records[index]);
  }
  void log(const std::string &line) override {
    if (!opts.event_log)
      return;
    try {
      opts.event_log(line);
    } catch (...) {
      // A logging hook must not take the service down.
    }
  }
  void session_closed(Session *s) override {
    if (shutting_down)
      return; // shutdown_on_thread() owns the list then
    live.remove_if([s](const std::unique_ptr<Session> &p) { return p.get() == s; });
  }

  void thread_main();
  void shutdown_on_thread();
  void reject(SoupServerMessage *msg, guint status, const char *code, const char *message,
              guint retry_after_s = 0);
};

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
 * status set here stops the upgrade, so the client sees the HTTP status (docs/protocol.md §1.4). */
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
    impl->live.push_back(std::make_unique<Session>(*impl, conn, soup_server_message_get_socket(msg),
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
  engine_.reset();
  while (g_main_context_iteration(ctx, FALSE)) {
  }
}

void LocalService::Impl::thread_main() {
  g_main_context_push_thread_default(ctx);
  GError *error = nullptr;
  bool ok = false;
  try {
    std::string why;
    engine_ = make_engine(opts.engine, opts.engine_options, &why);
    if (!engine_) {
      g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                  "The requested engine is not available: %s",
                  why.empty() ? "not in this build" : why.c_str());
    } else {
      // Created after pushing ctx: libsoup attaches the listening sources to the thread-default
      // context when listening starts.
      GTlsCertificate *certificate = nullptr;
      if (!opts.tls_certificate_file.empty())
        certificate = g_tls_certificate_new_from_files(opts.tls_certificate_file.c_str(),
                                                       opts.tls_key_file.c_str(), &error);
      server = SOUP_SERVER(g_object_new(SOUP_TYPE_SERVER, "server-header", "qwenasr-local-service",
                                        "tls-certificate", certificate, nullptr));
      if (certificate)
        g_object_unref(certificate);
      soup_server_add_handler(server, kPath, http_handler, this, nullptr);
      soup_server_add_websocket_handler(server, kPath, nullptr, nullptr, websocket_handler, this,
                                        nullptr);
      const bool tls = !opts.tls_certificate_file.empty();
      if (error) {
        /* the certificate could not be loaded */
      } else if (opts.host == "127.0.0.1" || opts.host == "localhost") {
        ok = soup_server_listen_local(server, opts.port,
                                      SoupServerListenOptions(SOUP_SERVER_LISTEN_IPV4_ONLY |
                                                              (tls ? SOUP_SERVER_LISTEN_HTTPS : 0)),
                                      &error);
      } else {
        GInetAddress *addr = g_inet_address_new_from_string(opts.host.c_str());
        if (!addr) {
          g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                      "Invalid listen address '%s' (an IP address is required)", opts.host.c_str());
        } else {
          GSocketAddress *sa = g_inet_socket_address_new(addr, opts.port);
          ok = soup_server_listen(
              server, sa, static_cast<SoupServerListenOptions>(tls ? SOUP_SERVER_LISTEN_HTTPS : 0),
              &error);
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
  return (impl_->opts.tls_certificate_file.empty() ? "ws://" : "wss://") + impl_->opts.host + ":" +
         std::to_string(port()) + kPath;
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
