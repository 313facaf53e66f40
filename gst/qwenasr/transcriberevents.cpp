/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the client reports on the network thread, turned by the Transcriber into timing, the
 * utterance bookkeeping, bus messages, warnings and errors (ClientListener). */
#include "transcriber.h"

#include "messages.h"

GST_DEBUG_CATEGORY_EXTERN(qwenasr_transcriber_debug);
#define GST_CAT_DEFAULT qwenasr_transcriber_debug

namespace qwenasr {

namespace {

/* VAD mode with no utterance open: audio sent longer ago than this (wall clock) is not kept
 * for resending. It only has to cover how late the service may report a speech start. */
constexpr guint kSilenceKeepMs = 15000;

} // namespace

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
