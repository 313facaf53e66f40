/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One protocol session: the service's events in (on the shared network thread, IoThread), the
 * audio out, and the public API. The thread that queues audio into an empty queue sends it
 * itself (pump()), so a live stream costs no thread hand-off per append; the network thread
 * reads events, runs timers, and sends what had to wait (a full socket, a session not yet
 * configured, flow control). Nothing here blocks on the network: writes are non-blocking and
 * every session's network work is asynchronous, so one session's frozen peer delays no
 * other. The connection itself is in asrconnection.cpp. */
#include "asrclient-private.h"

#include <chrono>

GST_DEBUG_CATEGORY(qwenasr_client_debug);
#define GST_CAT_DEFAULT qwenasr_client_debug

namespace qwenasr {

namespace {

/* How long stop() lets the closing handshake take before dropping the connection. */
constexpr guint kCloseTimeoutMs = 500;
/* With the resend buffer full, new audio waits this long for finals to make room before the
 * oldest unsettled audio is given up (continuous speech may go that long without a final). */
constexpr gint64 kResendFullWaitUs = 2 * G_USEC_PER_SEC;

std::chrono::steady_clock::time_point to_steady(gint64 monotonic_deadline_us) {
  /* Both are CLOCK_MONOTONIC on Linux; converting through "now" keeps it portable. */
  return std::chrono::steady_clock::now() +
         std::chrono::microseconds(monotonic_deadline_us - g_get_monotonic_time());
}

} // namespace

void AsrClient::Impl::send_update_if_ready() {
  SessionConfig to_send;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!have_config)
      return;
    to_send = config;
  }
  if (phase != Phase::WaitingCreated || !created || !conn || !conn->is_open())
    return;
  std::string text = encode_session_update(to_send, next_event_id());
  GST_DEBUG_OBJECT(owner, "sending session.update: %s", text.c_str());
  conn->send_text(text);
  phase = Phase::Configuring;
  remove_timer(&connect_timeout);
  connect_timeout = add_timer(settings.connect_timeout_ms, on_connect_timeout);
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
      remove_timer(&connect_timeout);
    listener->on_event(event);
    send_update_if_ready();
    return;
  case ServerEventType::SessionUpdated:
    listener->on_event(event);
    if (phase == Phase::Configuring) {
      remove_timer(&connect_timeout);
      std::string problem;
      guint64 dropped = 0;
      bool started;
      {
        std::lock_guard<std::mutex> sending(send_mutex);
        phase = Phase::Streaming;
        send_conn = conn;
        started = start_stream_locked(&problem);
        if (started)
          dropped = pump_locked();
        else
          send_conn.reset();
      }
      report_resend_dropped(dropped);
      if (started)
        return;
      ClientError error{ClientErrorKind::Rejected, host, problem};
      error.service.message = problem;
      fail(error);
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

/* Opus: a fresh encoder and Ogg stream for the new connection (the service decodes each
 * connection's audio as a stream of its own), whose header pages go out before any audio.
 * Caller holds send_mutex, with send_conn set. */
bool AsrClient::Impl::start_stream_locked(std::string *problem) {
  ogg.reset();
  SessionConfig current;
  {
    std::lock_guard<std::mutex> lock(mutex);
    current = config;
  }
  if (current.audio_format != "opus")
    return true;
  ogg = OggOpusWriter::create(current.sample_rate, settings.opus_bitrate, g_random_int(), problem);
  if (!ogg)
    return false;
  send_audio(ogg->header_pages());
  return true;
}

static gboolean on_resend_wait(gpointer user_data);

void AsrClient::Impl::pump() {
  guint64 dropped;
  {
    std::lock_guard<std::mutex> sending(send_mutex);
    dropped = pump_locked();
  }
  report_resend_dropped(dropped);
}

/* Sends everything queued while the kernel takes it at once: a frame it cannot take whole
 * waits in the connection, nothing more is sent until it is written (on_ws_writable()), so
 * memory stays bounded by the queue when the network is slower than the audio. Returns the
 * samples given up from the resend history, for report_resend_dropped() once send_mutex is
 * released (the listener posts a warning for them). */
guint64 AsrClient::Impl::pump_locked() {
  guint64 dropped = 0;
  for (;;) {
    /* A listener callback or a failed write may have ended the connection. */
    if (!send_conn || phase != Phase::Streaming || !send_conn->writable())
      return dropped;
    Taken taken;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (sendq->empty())
        return dropped;
      /* Flow control: new audio does not run further ahead of the finals than can be resent
       * after a reconnection. Faster-than-real-time input then waits here (and upstream in
       * push_audio) instead of losing the ability to resend. */
      if (sendq->resend_full()) {
        gint64 now = g_get_monotonic_time();
        if (resend_full_since == 0)
          resend_full_since = now;
        if (now - resend_full_since < kResendFullWaitUs) {
          if (!resend_wait)
            resend_wait = add_timer(100, on_resend_wait);
          return dropped;
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
      dropped += lost;
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
      send_conn->send_text(encode_commit(next_event_id()));
      break;
    case SendKind::Finish: {
      /* Finishing before the frame leaves: session.finished may come back before this thread
       * runs again. Not if the session ended meanwhile (fail() or stop() set Done). */
      Phase streaming = Phase::Streaming;
      if (!phase.compare_exchange_strong(streaming, Phase::Finishing))
        return dropped;
      if (ogg)
        send_audio(ogg->finish());
      GST_DEBUG_OBJECT(owner, "sending session.finish");
      send_conn->send_text(encode_finish(next_event_id()));
      send_conn.reset(); /* nothing follows session.finish */
      return dropped;
    }
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
  if (!take_settle())
    return;
  guint64 dropped = 0;
  {
    std::lock_guard<std::mutex> sending(send_mutex);
    if (resend_wait) {
      remove_timer(&resend_wait);
      dropped = pump_locked();
    }
  }
  report_resend_dropped(dropped);
}

/* Tells the listener of audio given up by pump_locked(), without send_mutex held. */
void AsrClient::Impl::report_resend_dropped(guint64 samples) {
  if (samples > 0)
    listener->on_resend_dropped(samples);
}

/* One append of encoded bytes (PCM, or Ogg pages); nothing for no bytes. Caller holds
 * send_mutex, with send_conn set. */
void AsrClient::Impl::send_audio(const guint8 *data, gsize size) {
  if (size == 0)
    return;
  encode_append(data, size, next_event_id(), &append_text);
  {
    std::lock_guard<std::mutex> lock(mutex);
    stats.bytes_sent += size;
    stats.appends++;
  }
  send_conn->send_text(append_text);
}

static gboolean on_resend_wait(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  guint64 dropped;
  {
    std::lock_guard<std::mutex> sending(impl->send_mutex);
    impl->resend_wait = 0;
    dropped = impl->pump_locked();
  }
  impl->report_resend_dropped(dropped);
  return G_SOURCE_REMOVE;
}

static gboolean on_close_timeout(gpointer user_data) {
  auto *impl = static_cast<AsrClient::Impl *>(user_data);
  impl->close_timeout = 0;
  impl->finish();
  return G_SOURCE_REMOVE;
}

void AsrClient::Impl::begin_stop() {
  {
    std::lock_guard<std::mutex> sending(send_mutex); /* no pump overwrites Done */
    phase = Phase::Done;
    send_conn.reset();
  }
  if (cancellable)
    g_cancellable_cancel(cancellable);
  remove_timer(&connect_timeout);
  remove_timer(&reconnect_timer);
  remove_timer(&watchdog);
  if (conn && conn->is_open()) {
    conn->close(ws::kCloseNormal);
    /* on_ws_closed finishes; this bounds a peer that never answers the close. */
    if (!close_timeout)
      close_timeout = add_timer(kCloseTimeoutMs, on_close_timeout);
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
  const bool was_empty = impl->sendq->push_audio(std::move(pcm), time);
  lock.unlock();
  /* Otherwise whoever emptied it last is still at it, or the network thread sends it when
   * the socket drains or the session is configured. */
  if (was_empty)
    impl->pump();
  return WaitResult::Done;
}

void AsrClient::commit() {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    was_empty = impl_->sendq->push_commit();
  }
  if (was_empty)
    impl_->pump();
}

void AsrClient::finish() {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    was_empty = impl_->sendq->push_finish();
  }
  if (was_empty)
    impl_->pump();
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
