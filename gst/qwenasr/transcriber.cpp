/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The session lifecycle shared by both elements, on the streaming and state-change threads:
 * starting, feeding, committing, draining and ending sessions (what the client reports on the
 * network thread is in transcriberevents.cpp). */
#include "transcriber.h"

#include "config.h"
#include "messages.h"

GST_DEBUG_CATEGORY(qwenasr_transcriber_debug);
#define GST_CAT_DEFAULT qwenasr_transcriber_debug

namespace qwenasr {

namespace {

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

} // namespace qwenasr
