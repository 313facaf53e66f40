/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The session lifecycle shared by both elements: starting, feeding, draining and ending
 * sessions, and turning what the client reports into bus messages, warnings and errors. */
#include "transcriber.h"

#include "config.h"
#include "messages.h"

GST_DEBUG_CATEGORY_STATIC(qwenasr_transcriber_debug);
#define GST_CAT_DEFAULT qwenasr_transcriber_debug

namespace qwenasr {

namespace {

/* VAD mode with no utterance open: audio sent longer ago than this (wall clock) is not kept
 * for resending. It only has to cover how late the service may report a speech start. */
constexpr guint kSilenceKeepMs = 15000;

bool valid_scheme(const std::string &url) {
  return url.rfind("ws://", 0) == 0 || url.rfind("wss://", 0) == 0;
}

std::string user_agent() {
  guint major, minor, micro, nano;
  gst_version(&major, &minor, &micro, &nano);
  gchar *ua = g_strdup_printf("gst-qwenasr/%s gstreamer/%u.%u.%u", VERSION, major, minor, micro);
  std::string result(ua);
  g_free(ua);
  return result;
}

} // namespace

Transcriber::Transcriber(GstElement *element) : element_(element) {
  static gsize debug_once = 0;
  if (g_once_init_enter(&debug_once)) {
    GST_DEBUG_CATEGORY_INIT(qwenasr_transcriber_debug, "qwenasrtranscriber", 0,
                            "Qwen ASR session handling shared by the elements");
    g_once_init_leave(&debug_once, 1);
  }
  adapter_ = gst_adapter_new();
}

Transcriber::~Transcriber() {
  stop();
  g_object_unref(adapter_);
}

bool Transcriber::start(const Settings &settings) {
  settings_ = settings;
  if (settings_.api_key.empty()) {
    const char *env = g_getenv(kApiKeyEnvironmentVariable);
    settings_.api_key = env ? env : "";
  }
  if (settings_.api_key.empty()) {
    GST_ELEMENT_ERROR(element_, RESOURCE, NOT_AUTHORIZED,
                      ("No API key: set the api-key property or the DASHSCOPE_API_KEY "
                       "environment variable."),
                      (nullptr));
    return false;
  }
  std::string endpoint = settings_.endpoint();
  if (!valid_scheme(endpoint)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS,
                      ("The url \"%s\" must start with ws:// or wss://.", endpoint.c_str()),
                      (nullptr));
    return false;
  }
  GUri *uri = g_uri_parse(endpoint.c_str(), G_URI_FLAGS_NONE, nullptr);
  host_ = uri && g_uri_get_host(uri) ? g_uri_get_host(uri) : "the service";
  if (uri)
    g_uri_unref(uri);
  client_settings_ = ClientSettings();
  client_settings_.url = settings_.connect_url();
  client_settings_.api_key = settings_.api_key;
  client_settings_.workspace = settings_.workspace;
  client_settings_.user_agent = user_agent();
  client_settings_.tls_ca_file = settings_.tls_ca_file;
  client_settings_.use_proxy = settings_.use_proxy;
  client_settings_.connect_timeout_ms = settings_.connect_timeout_ms;
  client_settings_.keepalive_interval_s = settings_.keepalive_interval_s;
  client_settings_.max_reconnects = settings_.max_reconnects;
  client_settings_.opus_bitrate = static_cast<int>(settings_.bitrate);
  flow_ = GST_FLOW_OK;
  error_claimed_ = false;
  flushing_ = false;
  return true;
}

void Transcriber::stop() {
  end_session();
  {
    std::lock_guard<std::mutex> lock(lock_);
    repairs_warned_ = 0;
    bad_frames_warned_ = false;
  }
  rate_ = 0;
  flow_ = GST_FLOW_OK;
  error_claimed_ = false;
}

bool Transcriber::claim_error() {
  bool expected = false;
  return error_claimed_.compare_exchange_strong(expected, true);
}

bool Transcriber::ensure_session() {
  if (client_)
    return true;
  {
    std::lock_guard<std::mutex> lock(lock_);
    map_.reset(rate_);
    session_base_ = 0;
    utterances_.reset();
    sent_marks_.clear();
    session_id_.clear();
    configured_ = false;
    ever_configured_ = false;
    last_connect_problem_.clear();
  }
  bytes_in_ = 0;
  commit_bytes_ = 0;
  dropping_ = false;
  dropped_bytes_ = 0;
  gst_adapter_clear(adapter_);
  adapter_time_ = GST_CLOCK_TIME_NONE;
  /* Sessions start with the rate known (first caps, or the first buffer after a drain). */
  const gsize bytes_per_ms = static_cast<gsize>(rate_) * 2 / 1000;
  client_settings_.max_queued_bytes = bytes_per_ms * settings_.max_queue_ms;
  client_settings_.max_resend_bytes = bytes_per_ms * settings_.max_resend_ms;
  settle_point_ = 0;
  auto client = std::make_unique<AsrClient>();
  GError *error = nullptr;
  if (!client->start(client_settings_, this, GST_OBJECT(element_), &error)) {
    if (claim_error()) {
      GST_ELEMENT_ERROR(element_, RESOURCE, FAILED,
                        ("Could not start the network thread: %s", error->message), (nullptr));
      flow_ = GST_FLOW_ERROR;
    }
    g_error_free(error);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(client_lock_);
    client->set_flushing(flushing_); /* under client_lock_: no set_flushing() in between */
    client_ = std::move(client);
  }
  client_->configure(settings_.session_config(rate_));
  return true;
}

void Transcriber::end_session() {
  std::unique_ptr<AsrClient> client;
  {
    std::lock_guard<std::mutex> lock(client_lock_);
    client = std::move(client_);
  }
  if (client) {
    client->stop(); /* outside the lock: it waits for the session's teardown */
    ClientStats ended = client->stats();
    std::lock_guard<std::mutex> lock(client_lock_);
    past_stats_.bytes_sent += ended.bytes_sent;
    past_stats_.samples_sent += ended.samples_sent;
    past_stats_.appends += ended.appends;
    past_stats_.reconnects += ended.reconnects;
    past_stats_.dropped_samples += ended.dropped_samples;
  }
  gst_adapter_clear(adapter_);
  adapter_time_ = GST_CLOCK_TIME_NONE;
  std::lock_guard<std::mutex> lock(lock_);
  utterances_.reset();
}

void Transcriber::flush() {
  end_session();
  std::lock_guard<std::mutex> lock(lock_);
  repairs_warned_ = 0;
  bad_frames_warned_ = false;
}

void Transcriber::set_flushing(bool flushing) {
  flushing_ = flushing;
  { std::lock_guard<std::mutex> lock(lock_); }
  finals_cond_.notify_all();
  std::lock_guard<std::mutex> lock(client_lock_);
  if (client_)
    client_->set_flushing(flushing);
}

/* GstBaseSink calls unlock() both for flushes and for PLAYING -> PAUSED; only
 * gst_base_sink_wait_preroll() can tell them apart (FLUSHING vs. OK once playing again). */
GstFlowReturn Transcriber::after_interruption(const PauseHandler &on_pause) {
  return on_pause ? on_pause() : GST_FLOW_FLUSHING;
}

guint64 Transcriber::global_sample_locked(gint64 ms) const {
  return session_base_ + gst_util_uint64_scale_int(static_cast<guint64>(std::max<gint64>(ms, 0)),
                                                   map_.sample_rate(), 1000);
}

GstFlowReturn Transcriber::set_sample_rate(int rate, const PauseHandler &on_pause) {
  if (rate == rate_ && client_)
    return GST_FLOW_OK;
  /* The rate is part of the session: audio already sent at the old rate is drained first. */
  if (client_ && rate_ != rate) {
    if (bytes_in_ > 0) {
      GstFlowReturn ret = drain(on_pause);
      if (ret != GST_FLOW_OK)
        return ret;
    } else {
      end_session();
    }
  }
  rate_ = rate;
  /* The first caps open the connection; it overlaps preroll, and audio queues meanwhile. */
  return ensure_session() ? GST_FLOW_OK : GstFlowReturn(flow_);
}

GstFlowReturn Transcriber::send_chunk(const guint8 *data, gsize size, GstClockTime time, bool live,
                                      const PauseHandler &on_pause) {
  for (;;) {
    GstFlowReturn flow = flow_;
    if (flow != GST_FLOW_OK)
      return flow;
    /* The wait is bounded: a service that takes no audio for connect-timeout is dead. */
    gint64 deadline =
        g_get_monotonic_time() + settings_.connect_timeout_ms * G_TIME_SPAN_MILLISECOND;
    gsize dropped = 0;
    WaitResult result = client_->push_audio(data, size, time, deadline, live, &dropped);
    if (dropped > 0) {
      if (!dropping_)
        GST_ELEMENT_WARNING(element_, RESOURCE, WRITE,
                            ("The service is not keeping up with the live audio: dropping the "
                             "oldest unsent audio (max-queue-time %u ms).",
                             settings_.max_queue_ms),
                            ("%" G_GSIZE_FORMAT " bytes dropped", dropped));
      dropping_ = true;
      dropped_bytes_ += dropped;
    }
    switch (result) {
    case WaitResult::Done:
      return GST_FLOW_OK;
    case WaitResult::Failed:
      return flow_ != GST_FLOW_OK ? GstFlowReturn(flow_) : GST_FLOW_FLUSHING;
    case WaitResult::Timeout:
      if (claim_error()) {
        GST_ELEMENT_ERROR(element_, RESOURCE, WRITE,
                          ("The service at %s accepted no audio for %u ms.", host_.c_str(),
                           settings_.connect_timeout_ms),
                          (nullptr));
        flow_ = GST_FLOW_ERROR;
      }
      return GST_FLOW_ERROR;
    case WaitResult::Interrupted:
      GstFlowReturn ret = after_interruption(on_pause);
      if (ret != GST_FLOW_OK)
        return ret;
      break;
    }
  }
}

GstFlowReturn Transcriber::send_pending(bool all, bool live, const PauseHandler &on_pause) {
  const gsize chunk_bytes =
      std::max<gsize>(2, static_cast<gsize>(rate_) * settings_.chunk_duration_ms / 1000 * 2);
  for (;;) {
    gsize available = gst_adapter_available(adapter_);
    gsize size = available >= chunk_bytes ? chunk_bytes : (all ? available & ~gsize(1) : 0);
    if (size == 0)
      break;
    const guint8 *data = static_cast<const guint8 *>(gst_adapter_map(adapter_, size));
    GstFlowReturn ret = send_chunk(data, size, adapter_time_, live, on_pause);
    gst_adapter_unmap(adapter_);
    gst_adapter_flush(adapter_, size);
    if (GST_CLOCK_TIME_IS_VALID(adapter_time_))
      adapter_time_ += gst_util_uint64_scale_int(size / 2, GST_SECOND, rate_);
    if (ret != GST_FLOW_OK)
      return ret;
  }
  if (all)
    gst_adapter_clear(adapter_); /* a lone odd byte cannot be a sample */
  return GST_FLOW_OK;
}

GstFlowReturn Transcriber::push(GstBuffer *buffer, GstClockTime stream_time, bool live,
                                const PauseHandler &on_pause) {
  GstFlowReturn flow = flow_;
  if (flow != GST_FLOW_OK)
    return flow;
  if (rate_ <= 0)
    return GST_FLOW_NOT_NEGOTIATED;
  if (!ensure_session())
    return GST_FLOW_ERROR;
  gsize size = gst_buffer_get_size(buffer);
  if (size == 0)
    return GST_FLOW_OK;
  /* Every append is contiguous audio with one start time: a buffer that does not continue
   * the adapter's audio (a gap or jump in the input) sends what came before on its own. */
  gsize available = gst_adapter_available(adapter_);
  if (available > 0 && GST_CLOCK_TIME_IS_VALID(stream_time) &&
      GST_CLOCK_TIME_IS_VALID(adapter_time_)) {
    GstClockTime expected =
        adapter_time_ + gst_util_uint64_scale_int(available / 2, GST_SECOND, rate_);
    if (GST_CLOCK_DIFF(expected, stream_time) > (GstClockTimeDiff)TimingMap::kContiguityTolerance ||
        GST_CLOCK_DIFF(stream_time, expected) > (GstClockTimeDiff)TimingMap::kContiguityTolerance) {
      GstFlowReturn ret = send_pending(true, live, on_pause);
      if (ret != GST_FLOW_OK)
        return ret;
    }
  }
  if (gst_adapter_available(adapter_) == 0)
    adapter_time_ = stream_time;
  bytes_in_ += size;
  gst_adapter_push(adapter_, gst_buffer_ref(buffer));
  release_finals(false); /* a held final whose hold ran out while no event came */
  GstFlowReturn ret = send_pending(false, live, on_pause);
  if (ret != GST_FLOW_OK)
    return ret;
  if (settings_.turn_detection == GST_QWEN_ASR_TURN_DETECTION_MANUAL &&
      (bytes_in_ - commit_bytes_) / 2 >=
          gst_util_uint64_scale_int(settings_.commit_interval_ms, rate_, 1000))
    return commit(on_pause);
  return GST_FLOW_OK;
}

GstFlowReturn Transcriber::commit(const PauseHandler &on_pause) {
  if (!client_ || settings_.turn_detection != GST_QWEN_ASR_TURN_DETECTION_MANUAL)
    return flow_;
  GstFlowReturn ret = send_pending(true, false, on_pause);
  if (ret != GST_FLOW_OK)
    return ret;
  if (bytes_in_ / 2 == commit_bytes_ / 2)
    return GST_FLOW_OK; /* the service answers an empty commit with an error */
  commit_bytes_ = bytes_in_;
  client_->commit(); /* its range is known when it is sent: on_commit_sent() */
  return GST_FLOW_OK;
}

GstFlowReturn Transcriber::drain(const PauseHandler &on_pause) {
  if (!client_)
    return flow_;
  if (bytes_in_ == 0) {
    end_session(); /* nothing was said to the service: nothing to wait for */
    return flow_;
  }
  GstFlowReturn ret = send_pending(true, false, on_pause);
  if (ret == GST_FLOW_OK)
    ret = commit(on_pause);
  if (ret != GST_FLOW_OK)
    return ret;
  bool configured;
  {
    std::lock_guard<std::mutex> lock(lock_);
    configured = configured_;
  }
  client_->finish();
  /* A short input can end before the session is even configured: then connecting may use
   * its own budget on top of finish-timeout. */
  gint64 deadline = g_get_monotonic_time() + (settings_.finish_timeout_ms +
                                              (configured ? 0 : settings_.connect_timeout_ms)) *
                                                 G_TIME_SPAN_MILLISECOND;
  for (;;) {
    WaitResult result = client_->wait_finished(deadline);
    if (result == WaitResult::Done) {
      wait_open_finals(std::min(deadline, g_get_monotonic_time() +
                                              kFinishGraceMs * gint64(G_TIME_SPAN_MILLISECOND)));
      break;
    }
    if (result == WaitResult::Failed) {
      ret = flow_ != GST_FLOW_OK ? GstFlowReturn(flow_) : GST_FLOW_FLUSHING;
      break;
    }
    if (result == WaitResult::Timeout) {
      bool never_started;
      std::string cause;
      {
        std::lock_guard<std::mutex> lock(lock_);
        never_started = !ever_configured_;
        cause = last_connect_problem_;
      }
      if (never_started) {
        /* No audio ever reached a service: that is a failure, not a slow finish. */
        post_connect_failure(cause);
        ret = GST_FLOW_ERROR;
        break;
      }
      GST_ELEMENT_WARNING(element_, RESOURCE, READ,
                          ("The service did not finish the session within %u ms; the last "
                           "transcripts may be missing. Consider a larger finish-timeout.",
                           settings_.finish_timeout_ms),
                          (nullptr));
      break;
    }
    ret = after_interruption(on_pause);
    if (ret != GST_FLOW_OK)
      return ret;
  }
  release_finals(true);
  if (ret == GST_FLOW_OK)
    report_lost();
  if (dropping_)
    /* The episode's summary: the warning at its start said only that it began. */
    GST_ELEMENT_WARNING(element_, RESOURCE, WRITE,
                        ("In all %" G_GUINT64_FORMAT " ms of live audio were dropped in this "
                         "session because the service did not keep up.",
                         gst_util_uint64_scale_int(dropped_bytes_ / 2, 1000, std::max(rate_, 1))),
                        (nullptr));
  end_session();
  return ret;
}

void Transcriber::wait_open_finals(gint64 deadline) {
  std::unique_lock<std::mutex> lock(lock_);
  auto until = std::chrono::steady_clock::now() +
               std::chrono::microseconds(std::max<gint64>(0, deadline - g_get_monotonic_time()));
  finals_cond_.wait_until(lock, until, [&] { return !utterances_.any_open() || flushing_; });
}

void Transcriber::report_lost() {
  std::vector<std::pair<GstClockTime, GstClockTime>> spans;
  {
    std::lock_guard<std::mutex> lock(lock_);
    for (const LostSpan &span : utterances_.take_lost())
      spans.emplace_back(map_.time_at_sample(span.start_sample),
                         span.end_sample ? map_.end_time_at_sample(*span.end_sample)
                                         : map_.end_time());
  }
  post_lost_utterances(element_, spans);
}

void Transcriber::post_connect_failure(const std::string &cause) {
  if (!claim_error())
    return;
  post_never_established(element_, host_, cause, settings_);
  flow_ = GST_FLOW_ERROR;
}

GstClockTime Transcriber::input_end_time() const {
  std::lock_guard<std::mutex> lock(lock_);
  return map_.end_time();
}

GstClockTime Transcriber::earliest_open_start() {
  std::lock_guard<std::mutex> post(post_lock_);
  std::vector<Transcript> released;
  GstClockTime earliest;
  {
    std::lock_guard<std::mutex> lock(lock_);
    released = release_locked(false);
    std::optional<guint64> uncommitted;
    if (client_ && settings_.turn_detection == GST_QWEN_ASR_TURN_DETECTION_MANUAL &&
        map_.samples() > utterances_.last_commit_sample())
      uncommitted = utterances_.last_commit_sample();
    earliest = time_at_sample_locked(utterances_.earliest_unreleased(uncommitted));
  }
  for (const Transcript &t : released)
    post_transcript(t);
  return earliest;
}

Transcript Transcriber::transcript_locked(const ReleasedFinal &released) const {
  Transcript t;
  t.final = true;
  t.item_id = released.final.item_id;
  t.text = released.final.text;
  t.stable_text = released.final.text;
  t.language = released.final.language;
  t.emotion = released.final.emotion;
  t.session_id = released.final.session_id;
  t.start = time_at_sample_locked(released.start_sample);
  if (released.end_sample)
    t.end = map_.end_time_at_sample(*released.end_sample);
  return t;
}

std::vector<Transcript> Transcriber::release_locked(bool all) {
  std::vector<Transcript> out;
  for (const ReleasedFinal &released :
       utterances_.release(g_get_monotonic_time(), order_hold_ / GST_USECOND, all)) {
    out.push_back(transcript_locked(released));
    if (observer_)
      observer_->on_transcript(out.back());
  }
  return out;
}

void Transcriber::release_finals(bool all) {
  std::lock_guard<std::mutex> post(post_lock_);
  std::vector<Transcript> released;
  {
    std::lock_guard<std::mutex> lock(lock_);
    released = release_locked(all);
  }
  for (const Transcript &t : released)
    post_transcript(t);
}

/* ---- network thread ---- */

void Transcriber::post_session_state(const char *state) {
  std::string session_id;
  {
    std::lock_guard<std::mutex> lock(lock_);
    session_id = session_id_;
  }
  post_session_message(element_, state, session_id);
}

void Transcriber::post_transcript(const Transcript &t) {
  GST_DEBUG_OBJECT(element_, "%s transcript %s [%" GST_TIME_FORMAT " - %" GST_TIME_FORMAT "]: %s",
                   t.final ? "final" : "partial", t.item_id.c_str(), GST_TIME_ARGS(t.start),
                   GST_TIME_ARGS(t.end), t.text.c_str());
  post_transcript_message(element_, t);
}

GstClockTime Transcriber::time_at_sample_locked(const std::optional<guint64> &sample) const {
  return sample ? map_.time_at_sample(*sample) : GST_CLOCK_TIME_NONE;
}

void Transcriber::on_connected(const std::string &host) {
  GST_INFO_OBJECT(element_, "connected to %s", host.c_str());
  post_session_state("connected");
  if (reconnecting_ && observer_)
    observer_->on_reconnected();
  reconnecting_ = false;
}

void Transcriber::on_session_start(guint64 base_sample, guint reconnect_attempt) {
  std::lock_guard<std::mutex> lock(lock_);
  session_base_ = base_sample;
  /* Items of a lost session will never complete; their audio is being resent and comes back
   * under new ids, but the utterance is still open meanwhile (see Utterances). */
  utterances_.session_restarted();
  configured_ = false;
  GST_DEBUG_OBJECT(element_, "session starts at sample %" G_GUINT64_FORMAT " (attempt %u)",
                   base_sample, reconnect_attempt);
}

void Transcriber::on_audio_sent(guint64 offset, guint64 samples, GstClockTime time) {
  std::lock_guard<std::mutex> lock(lock_);
  if (offset != map_.samples())
    GST_WARNING_OBJECT(element_,
                       "audio sent at sample %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT,
                       offset, map_.samples());
  map_.append(samples, time);
  sent_marks_.push_back({offset + samples, g_get_monotonic_time()});
  /* Long silences must not fill the resend buffer: with no utterance open, audio sent more
   * than kSilenceKeepMs ago (wall clock: the service hears audio as it arrives) would have
   * had its speech start reported by now. Fast, non-live input is not settled this way; it
   * is held back by the resend buffer's flow control until finals come. */
  if (settings_.turn_detection == GST_QWEN_ASR_TURN_DETECTION_SERVER_VAD) {
    gint64 heard_before = g_get_monotonic_time() - kSilenceKeepMs * G_TIME_SPAN_MILLISECOND;
    std::optional<guint64> target;
    for (const SentMark &mark : sent_marks_) {
      if (mark.wall > heard_before)
        break;
      target = mark.end_sample;
    }
    std::optional<guint64> open = utterances_.earliest_unreleased(std::nullopt);
    if (target && open)
      target = std::min(*target, *open);
    if (target)
      settle_locked(*target);
  }
}

void Transcriber::on_commit_sent(guint64 offset) {
  std::lock_guard<std::mutex> lock(lock_);
  utterances_.commit_sent(offset);
}

void Transcriber::on_reconnecting(const ClientError &error, guint attempt, guint delay_ms) {
  GST_INFO_OBJECT(element_, "reconnecting (attempt %u in %u ms): %s", attempt, delay_ms,
                  error.detail.c_str());
  reconnecting_ = true;
  std::string session_id;
  {
    std::lock_guard<std::mutex> lock(lock_);
    session_id = session_id_;
    last_connect_problem_ = error.http_status > 0
                                ? "HTTP " + std::to_string(error.http_status) + ": " + error.detail
                                : error.detail;
  }
  post_reconnecting_message(element_, session_id, error, attempt, delay_ms);
}

/* One warning when audio starts being given up, one summary when finals make room again:
 * per episode, not per append. */
void Transcriber::on_resend_dropped(guint64 samples) {
  bool first;
  int rate;
  {
    std::lock_guard<std::mutex> lock(lock_);
    first = !resend_dropping_;
    resend_dropping_ = true;
    resend_dropped_samples_ += samples;
    rate = std::max(map_.sample_rate(), 1);
  }
  if (!first)
    return;
  guint64 ms = gst_util_uint64_scale_int(samples, 1000, rate);
  GST_ELEMENT_WARNING(element_, RESOURCE, WRITE,
                      ("%" G_GUINT64_FORMAT " ms of audio waiting for its transcript could not "
                       "be kept for a reconnection (max-resend-time %u ms); it may go "
                       "untranscribed if the connection drops. More may follow until a "
                       "transcript makes room; a summary is posted then.",
                       ms, settings_.max_resend_ms),
                      (nullptr));
}

/* Caller holds lock_. The client reads the point after the callback (settle_point()). */
void Transcriber::settle_locked(guint64 sample) {
  utterances_.settled(sample);
  while (!sent_marks_.empty() && sent_marks_.front().end_sample <= sample)
    sent_marks_.pop_front();
  if (sample > settle_point_)
    settle_point_ = sample;
}

void Transcriber::on_event(const ServerEvent &event) {
  switch (event.type) {
  case ServerEventType::SessionCreated: {
    std::lock_guard<std::mutex> lock(lock_);
    session_id_ = event.session_id;
    break;
  }
  case ServerEventType::SessionUpdated: {
    {
      std::lock_guard<std::mutex> lock(lock_);
      if (!event.session_id.empty())
        session_id_ = event.session_id;
      configured_ = true;
      ever_configured_ = true;
    }
    post_session_state("configured");
    break;
  }
  case ServerEventType::SessionFinished:
    post_session_state("finished");
    break;
  case ServerEventType::SpeechStarted:
  case ServerEventType::SpeechStopped: {
    bool started = event.type == ServerEventType::SpeechStarted;
    const auto &ms = started ? event.audio_start_ms : event.audio_end_ms;
    GstClockTime time = GST_CLOCK_TIME_NONE;
    {
      std::lock_guard<std::mutex> lock(lock_);
      if (ms) {
        guint64 sample = global_sample_locked(*ms);
        if (!(started ? utterances_.speech_started(event.item_id, sample)
                      : utterances_.speech_stopped(event.item_id, sample)))
          break; /* about an item already final: ignored, counted */
        time = started ? map_.time_at_sample(sample) : map_.end_time_at_sample(sample);
      }
    }
    post_speech_message(element_, started ? "qwenasr/speech-started" : "qwenasr/speech-stopped",
                        event.item_id, time);
    if (started && observer_ && GST_CLOCK_TIME_IS_VALID(time))
      observer_->on_speech_started(time);
    break;
  }
  case ServerEventType::Committed: {
    std::lock_guard<std::mutex> lock(lock_);
    if (settings_.turn_detection == GST_QWEN_ASR_TURN_DETECTION_MANUAL)
      utterances_.committed(event.item_id);
    break;
  }
  case ServerEventType::TranscriptionText: {
    Transcript t;
    t.item_id = event.item_id;
    t.text = event.text + event.stash;
    t.stable_text = event.text;
    t.language = event.language;
    t.emotion = event.emotion;
    {
      std::lock_guard<std::mutex> lock(lock_);
      if (!utterances_.partial(event.item_id))
        break; /* a preview of an item already final */
      t.session_id = session_id_;
      partials_++;
      /* Times as far as known: a preview is not held for order. */
      std::optional<guint64> start, end;
      utterances_.span(event.item_id, &start, &end);
      t.start = time_at_sample_locked(start);
      if (end)
        t.end = map_.end_time_at_sample(*end);
      if (observer_)
        observer_->on_transcript(t);
    }
    post_transcript(t);
    break;
  }
  case ServerEventType::TranscriptionCompleted: {
    bool resend_summary = false;
    guint64 resend_dropped = 0;
    int rate = 1;
    {
      std::lock_guard<std::mutex> lock(lock_);
      FinalText final{event.item_id, event.transcript, event.language, event.emotion, session_id_};
      std::optional<guint64> settle;
      if (!utterances_.final_arrived(final, g_get_monotonic_time(), &settle)) {
        GST_DEBUG_OBJECT(element_, "ignoring a repeated final of item %s", event.item_id.c_str());
        break;
      }
      finals_++;
      if (settle) {
        /* The service delay: from sending the utterance's last audio to its final. */
        for (const SentMark &mark : sent_marks_) {
          if (mark.end_sample >= *settle) {
            last_delay_ = (g_get_monotonic_time() - mark.wall) * GST_USECOND;
            max_delay_ = std::max(max_delay_, last_delay_);
            break;
          }
        }
        /* Its audio needs no resend (up to the first utterance still open). */
        map_.forget_before_sample(*settle);
        settle_locked(*settle);
      }
      if (resend_dropping_) {
        resend_summary = true;
        resend_dropped = resend_dropped_samples_;
        rate = std::max(map_.sample_rate(), 1);
        resend_dropping_ = false;
        resend_dropped_samples_ = 0;
      }
    }
    finals_cond_.notify_all();
    if (resend_summary)
      GST_ELEMENT_WARNING(element_, RESOURCE, WRITE,
                          ("In all %" G_GUINT64_FORMAT " ms of audio could not be kept for a "
                           "reconnection (max-resend-time %u ms) before transcripts made room.",
                           gst_util_uint64_scale_int(resend_dropped, 1000, rate),
                           settings_.max_resend_ms),
                          (nullptr));
    break;
  }
  case ServerEventType::TranscriptionFailed: {
    {
      std::lock_guard<std::mutex> lock(lock_);
      if (!utterances_.failed(event.item_id))
        break;
    }
    finals_cond_.notify_all();
    GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                        ("The service could not transcribe an utterance (%s): %s",
                         event.error.code.c_str(), event.error.message.c_str()),
                        ("item %s", event.item_id.c_str()));
    break;
  }
  case ServerEventType::Error:
    GST_ELEMENT_WARNING(element_, RESOURCE, SETTINGS,
                        ("The service rejected a request: %s%s%s", event.error.message.c_str(),
                         event.error.param.empty() ? "" : " (parameter ",
                         event.error.param.empty() ? "" : (event.error.param + ")").c_str()),
                        ("type %s, code %s", event.error.type.c_str(), event.error.code.c_str()));
    break;
  default:
    GST_DEBUG_OBJECT(element_, "ignoring event %s", event.type_name.c_str());
    break;
  }
  /* Every event is a chance for held finals whose turn came (or whose hold ran out). */
  release_finals(false);
}

GstStructure *Transcriber::stats() const {
  ClientStats client;
  {
    std::lock_guard<std::mutex> lock(client_lock_);
    client = past_stats_;
    if (client_) {
      ClientStats current = client_->stats();
      client.bytes_sent += current.bytes_sent;
      client.samples_sent += current.samples_sent;
      client.appends += current.appends;
      client.reconnects += current.reconnects;
      client.dropped_samples += current.dropped_samples;
    }
  }
  std::lock_guard<std::mutex> lock(lock_);
  int rate = std::max(map_.sample_rate(), 1);
  return gst_structure_new(
      "qwenasr/stats", "bytes-sent", G_TYPE_UINT64, client.bytes_sent, "audio-sent", G_TYPE_UINT64,
      gst_util_uint64_scale_int(client.samples_sent, GST_SECOND, rate), "appends", G_TYPE_UINT64,
      client.appends, "reconnects", G_TYPE_UINT64, client.reconnects, "dropped-audio",
      G_TYPE_UINT64, gst_util_uint64_scale_int(client.dropped_samples, GST_SECOND, rate),
      "partials", G_TYPE_UINT64, partials_, "finals", G_TYPE_UINT64, finals_, "last-delay",
      G_TYPE_UINT64, last_delay_, "max-delay", G_TYPE_UINT64, max_delay_, "repeated-finals",
      G_TYPE_UINT64, utterances_.repeated_finals(), "ignored-events", G_TYPE_UINT64,
      utterances_.ignored_events(), "lost-utterances", G_TYPE_UINT64, utterances_.lost_utterances(),
      "out-of-order-finals", G_TYPE_UINT64, utterances_.out_of_order_finals(), "repaired-frames",
      G_TYPE_UINT64, repaired_frames_, "bad-frames", G_TYPE_UINT64, bad_frames_, nullptr);
}

void Transcriber::on_failure(const ClientError &error) {
  /* One message per failure however many paths notice it; the flow turns to ERROR only
   * after it is posted, so that ours is the first error upstream elements can follow. */
  if (!claim_error())
    return;
  post_client_error(element_, error, settings_);
  flow_ = GST_FLOW_ERROR;
}

/* A frame that could not be used: counted, and warned about once per stream (the service
 * may send many; each costs only itself). */
void Transcriber::on_bad_frame(const std::string &problem) {
  GST_WARNING_OBJECT(element_, "ignoring a frame from the service: %s", problem.c_str());
  bool first;
  {
    std::lock_guard<std::mutex> lock(lock_);
    bad_frames_++;
    first = !bad_frames_warned_;
    bad_frames_warned_ = true;
  }
  if (first)
    GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                        ("Ignoring a frame from the service that is not a usable event; further "
                         "ones are only counted (stats bad-frames)."),
                        ("%s", problem.c_str()));
}

void Transcriber::on_frame_repaired(unsigned repairs) {
  unsigned fresh;
  {
    std::lock_guard<std::mutex> lock(lock_);
    repaired_frames_++;
    fresh = repairs & ~repairs_warned_;
    repairs_warned_ |= repairs;
  }
  for (unsigned kind : {kRepairInvalidUtf8, kRepairLoneSurrogate}) {
    if (fresh & kind)
      GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                          ("The service sent text with %s; it was replaced by U+FFFD and the "
                           "event kept. Further such frames are only counted (stats "
                           "repaired-frames).",
                           frame_repair_name(static_cast<FrameRepair>(kind))),
                          (nullptr));
  }
}

} // namespace qwenasr
