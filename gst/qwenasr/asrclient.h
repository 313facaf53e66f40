/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The protocol client: one WebSocket session with the realtime ASR service.
 *
 * Its connection (wsconnection.h) reads and runs its timers on the network thread that all
 * sessions of the process share (IoThread). The streaming thread hands it audio through a
 * bounded queue, waits only with a deadline, interrupted by set_flushing(), and writes what it
 * queued into an empty queue itself (never blocking: the socket is non-blocking). The
 * listener is called on the network thread, except on_audio_sent(), on_commit_sent() and
 * on_resend_dropped(), which come from whichever thread sends: the network thread, or the
 * thread in push_audio(), commit() or finish(). */
#pragma once

#include <gst/gst.h>

#include <memory>
#include <mutex>
#include <string>

#include "asrprotocol.h"
#include "oggopus.h"

namespace qwenasr {

class IoThread;

/* What the client needs of the element's settings. The Transcriber fills every field that is
 * a property from Settings (settings.h), where the defaults are written, once. */
struct ClientSettings {
  std::string url;     /* full URL, including ?model= */
  std::string api_key; /* secret: sent in the Authorization header, never logged */
  std::string workspace;
  std::string user_agent;
  std::string tls_ca_file;
  bool use_proxy = false;
  guint connect_timeout_ms = 0;
  /* WebSocket pings keep long silences from looking idle; a peer that sends nothing, not
   * even a pong, for three intervals is taken for dead. 0 disables both. */
  guint keepalive_interval_s = 0;
  gsize max_queued_bytes = 0; /* audio waiting to be sent */
  /* After a connection is lost: attempts (0: fail at once), and the first backoff, which
   * doubles per attempt up to 8 s (not a property). */
  guint max_reconnects = 0;
  guint reconnect_delay_ms = 250;
  /* Audio kept after sending until its transcript is final, to be sent again on a new
   * connection; past this the oldest is given up. */
  gsize max_resend_bytes = 0;
  /* For SessionConfig::audio_format "opus": the encoder's target, bits per second. */
  int opus_bitrate = 0;
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

/* Counters since start(); read with AsrClient::stats(). */
struct ClientStats {
  guint64 bytes_sent = 0;   /* audio bytes in appends (PCM, or Ogg-Opus), resends included */
  guint64 samples_sent = 0; /* distinct samples sent (a resend counts once) */
  guint64 appends = 0;
  guint64 reconnects = 0;
  guint64 dropped_samples = 0; /* queue overflow (live) and resend-buffer overflow */
};

struct ClientError {
  ClientError(ClientErrorKind kind_, std::string host_, std::string detail_ = {})
      : kind(kind_), host(std::move(host_)), detail(std::move(detail_)) {}
  ClientErrorKind kind;
  std::string host;
  guint http_status = 0;
  std::string detail;       /* the underlying GError or close reason; never contains the key */
  guint retry_after_ms = 0; /* HTTP Retry-After of a refused handshake; 0 if none */
  bool tls = false;         /* a TLS failure: retrying the same host cannot help */
  ServiceError service;     /* for Rejected / Service */

  /* Whether a new connection may fix it: not for a rejected key or configuration. */
  bool retryable() const;
};

/* Called on the network thread, with no client lock held — except on_audio_sent() and
 * on_commit_sent(), which come from the thread that sends (see above), one at a time and in
 * order, with the client's send lock held: they must only take locks of their own, never
 * post messages or wait; and on_resend_dropped(), from the sending thread too but with no
 * client lock held. Implementations must not call back into the client: what the client needs
 * from them it asks (settle_point()). */
class ClientListener {
public:
  virtual ~ClientListener() = default;
  virtual void on_connected(const std::string &host) = 0;
  /* A session begins (the first, or one after a reconnection): the service counts
   * audio_*_ms from zero at global sample `base_sample` (samples are numbered in the order
   * they were first sent, over all sessions of this client). */
  virtual void on_session_start(guint64 base_sample, guint reconnect_attempt) = 0;
  /* Audio or a commit reaches the service for the first time (a resend is not reported), at
   * global sample `offset`; `time` is the input time given to push_audio(). Called before
   * the frame is sent, so it precedes every event about it. */
  virtual void on_audio_sent(guint64 offset, guint64 samples, GstClockTime time) = 0;
  virtual void on_commit_sent(guint64 offset) = 0;
  /* The connection was lost; a new one is tried in `delay_ms`. */
  virtual void on_reconnecting(const ClientError &error, guint attempt, guint delay_ms) = 0;
  /* Audio that will not be resent after a reconnection: the resend buffer overflowed. */
  virtual void on_resend_dropped(guint64 samples) = 0;
  /* Every decoded server event, including the ones the client acts on itself. Service errors
   * that end the session arrive through on_failure instead. */
  virtual void on_event(const ServerEvent &event) = 0;
  /* Once, when the session cannot go on (reconnecting failed or cannot help); the client
   * closes the connection afterwards. */
  virtual void on_failure(const ClientError &error) = 0;
  virtual void on_bad_frame(const std::string &problem) = 0;
  /* A frame was repaired before decoding (a FrameRepair set); its event follows. */
  virtual void on_frame_repaired(unsigned repairs) { (void)repairs; }
  /* Audio before this global sample has its final transcripts: it needs no resend. Asked
   * after the callbacks above; must not block (an atomic read). */
  virtual guint64 settle_point() const { return 0; }
};

enum class WaitResult { Done, Interrupted, Timeout, Failed };

class AsrClient {
public:
  AsrClient();
  ~AsrClient(); /* stops */
  AsrClient(const AsrClient &) = delete;
  AsrClient &operator=(const AsrClient &) = delete;

  /* Starts connecting in the background; false only if the thread cannot start. `owner`
   * (not referenced; may be null) is what the client's log lines are about. */
  bool start(const ClientSettings &settings, ClientListener *listener, GstObject *owner,
             GError **error);
  /* The session configuration, sent once the service has created the session. */
  void configure(const SessionConfig &config);
  /* Queues one append of S16 samples whose first has input time `time` (NONE: right after
   * the previous). When the queue is full it blocks until there is room, `deadline`
   * (g_get_monotonic_time base), a failure, or set_flushing(true) -- unless `drop_oldest`:
   * then the oldest unsent audio makes room (live input must not fall behind) and
   * *dropped_bytes says how much. */
  WaitResult push_audio(const guint8 *data, gsize size, GstClockTime time, gint64 deadline,
                        bool drop_oldest, gsize *dropped_bytes);
  void commit(); /* queued behind the audio already pushed */
  void finish(); /* session.finish, queued behind everything else */
  /* Waits for session.finished (Done), a failure, the deadline, or flushing (Interrupted). */
  WaitResult wait_finished(gint64 deadline);
  /* Any thread: while set, every wait returns Interrupted at once. */
  void set_flushing(bool flushing);
  ClientStats stats() const;
  /* Closes the connection (bounded) and waits until the network thread let go of the
   * session (not when called on that thread). Safe to call twice. */
  void stop();

  struct Impl; /* public only for the C callbacks in asrclient.cpp */

private:
  std::shared_ptr<Impl> impl_; /* shared with the network thread, which may outlive stop() */
  bool stopped_ = false;
  std::shared_ptr<IoThread> io_; /* from start() to stop() */
};

} // namespace qwenasr
