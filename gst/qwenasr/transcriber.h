/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What qwenasrsink and qwenasr share: the session lifecycle with the service over an
 * AsrClient, chunking, manual commits and the timing map; utterances.h keeps the books of
 * the results and messages.h builds what is posted. The elements are glue around this: they
 * feed it buffers and events and tell it when to stop waiting. */
#pragma once

#include <gst/base/gstadapter.h>
#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "asrclient.h"
#include "messages.h"
#include "settings.h"
#include "timingmap.h"
#include "utterances.h"

namespace qwenasr {

/* Receives results for elements that output them: partials as they arrive, finals once each
 * and in audio order (see Utterances). on_transcript() is called with the Transcriber's lock
 * held (on the network thread, or on whichever thread's call released a held final), so an
 * observer must not call back into the Transcriber. */
class TranscriptObserver {
public:
  virtual ~TranscriptObserver() = default;
  virtual void on_transcript(const Transcript &transcript) = 0;
  /* The service heard speech start at this input stream time. */
  virtual void on_speech_started(GstClockTime start) = 0;
  /* Connected again after a lost connection; audio handed over before now is resent. */
  virtual void on_reconnected() {}
};

class Transcriber : public ClientListener {
public:
  /* Called on the streaming thread (PREROLL_LOCK held for sinks) when a wait was interrupted
   * because the element is pausing; returns OK to resume waiting. */
  using PauseHandler = std::function<GstFlowReturn()>;

  explicit Transcriber(GstElement *element);
  ~Transcriber() override;

  /* State-change thread. Posts an error and returns false when the settings cannot work. The
   * connection opens with the first caps, so an idle element holds none. */
  bool start(const Settings &settings);
  /* Ends any session and forgets the sticky error, ready for start() again. */
  void stop();

  /* Streaming thread. */
  GstFlowReturn set_sample_rate(int rate, const PauseHandler &on_pause);
  /* `live`: the input cannot wait, so when the network falls behind the oldest unsent audio
   * is dropped (with a warning) instead of blocking. */
  GstFlowReturn push(GstBuffer *buffer, GstClockTime stream_time, bool live,
                     const PauseHandler &on_pause);
  GstFlowReturn commit(const PauseHandler &on_pause);
  /* Sends what is left, ends the session and waits (bounded) for its last transcripts. The
   * next push starts a new session. */
  GstFlowReturn drain(const PauseHandler &on_pause);
  /* Drops the session and everything pending (FLUSH_STOP). */
  void flush();

  /* Before start(): who else gets the transcripts (not owned; may be null). */
  void set_observer(TranscriptObserver *observer) { observer_ = observer; }
  /* Before start(): how long a final may wait for an earlier utterance's final before it is
   * released out of order (qwenasr: its latency). */
  void set_order_hold(GstClockTime hold) { order_hold_ = hold; }
  /* Any thread: releases the finals whose turn has come (or whose hold ran out), then says
   * the earliest input time at which a transcript may still start: the start of an utterance
   * whose final is not released yet, or in manual mode of the audio not committed. NONE when
   * nothing is open. The two are one snapshot: a final is handed to the observer in the same
   * critical section in which it stops counting as open. */
  GstClockTime earliest_open_start();
  /* Input time just after the last sample given to the current session; NONE if none. */
  GstClockTime input_end_time() const;
  /* Streaming thread: whether a session is running (false after drain or flush). */
  bool has_session() const { return client_ != nullptr; }
  /* Streaming thread: whether the current session was given any audio. */
  bool has_audio() const { return client_ != nullptr && bytes_in_ > 0; }
  /* Any thread: the counters of the `stats` property. */
  GstStructure *stats() const;

  /* Any thread (GstBaseSink::unlock, FLUSH_START, state changes): interrupt every wait. An
   * interrupted wait calls the PauseHandler if there is one (it tells a pause from a flush),
   * else it returns GST_FLOW_FLUSHING. */
  void set_flushing(bool flushing);

  /* ClientListener (network thread). */
  void on_connected(const std::string &host) override;
  void on_session_start(guint64 base_sample, guint reconnect_attempt) override;
  void on_audio_sent(guint64 offset, guint64 samples, GstClockTime time) override;
  void on_commit_sent(guint64 offset) override;
  void on_reconnecting(const ClientError &error, guint attempt, guint delay_ms) override;
  void on_resend_dropped(guint64 samples) override;
  void on_event(const ServerEvent &event) override;
  void on_failure(const ClientError &error) override;
  void on_bad_frame(const std::string &problem) override;
  void on_frame_repaired(unsigned repairs) override;
  guint64 settle_point() const override { return settle_point_; }

  /* How long, after session.finished, finals still owed are waited for (the connection stays
   * open meanwhile), within finish-timeout. */
  static constexpr guint kFinishGraceMs = 1500;

private:
  struct SentMark {
    guint64 end_sample;
    gint64 wall; /* monotonic µs when it was first sent */
  };

  bool ensure_session();
  void end_session();
  GstFlowReturn send_chunk(const guint8 *data, gsize size, GstClockTime time, bool live,
                           const PauseHandler &on_pause);
  GstFlowReturn send_pending(bool all, bool live, const PauseHandler &on_pause);
  void settle_locked(guint64 sample);
  /* Takes the finals whose turn has come from utterances_ (all of them with `all`), hands
   * them to the observer and posts them, in order. Takes post_lock_, then lock_. */
  void release_finals(bool all);
  std::vector<Transcript> release_locked(bool all);
  Transcript transcript_locked(const ReleasedFinal &released) const;
  /* End of a session: one warning naming the utterances that got no final. */
  void report_lost();
  /* Waits (bounded) for finals still owed after session.finished. */
  void wait_open_finals(gint64 deadline);
  void post_connect_failure(const std::string &cause);
  /* True for the one caller who should post the error (and then set `flow_`). */
  bool claim_error();
  GstFlowReturn after_interruption(const PauseHandler &on_pause);
  void post_session_state(const char *state);
  void post_transcript(const Transcript &transcript);
  GstClockTime time_at_sample_locked(const std::optional<guint64> &sample) const;
  /* A service offset of the current session as a global sample. */
  guint64 global_sample_locked(gint64 ms) const;

  /* Lock order: post_lock_, then lock_; client_lock_ is never held with either; the
   * client's own mutex is innermost (taken under client_lock_ by set_flushing() and stats(),
   * never held while the client calls us). */

  GstElement *element_;                      /* not owned: the element owns us */
  TranscriptObserver *observer_ = nullptr;   /* not owned; set before start() */
  GstClockTime order_hold_ = 8 * GST_SECOND; /* set before start(); read-only after */
  bool reconnecting_ = false;                /* network thread only: a connection was lost */

  /* settings snapshot: written by start() on the state-change thread, read-only after */
  Settings settings_;
  ClientSettings client_settings_;
  std::string host_; /* for messages: never the whole URL, which could hold credentials */

  /* created and destroyed by the streaming thread; the pointer itself is guarded by
   * client_lock_ so that set_flushing() can wake it from any thread */
  mutable std::mutex client_lock_;
  std::unique_ptr<AsrClient> client_;
  ClientStats past_stats_; /* of the clients already ended; guarded by client_lock_ */

  /* streaming thread only */
  GstAdapter *adapter_ = nullptr;                   /* owned; audio not yet cut into appends */
  GstClockTime adapter_time_ = GST_CLOCK_TIME_NONE; /* input time of its first byte */
  int rate_ = 0;
  guint64 bytes_in_ = 0;      /* bytes given to the current session, including odd bytes */
  guint64 commit_bytes_ = 0;  /* bytes_in_ at the last commit */
  bool dropping_ = false;     /* live audio was dropped: warned once per session */
  guint64 dropped_bytes_ = 0; /* live audio dropped this session, for the summary at drain */

  /* held while finals are released and posted, so bus order is release order */
  std::mutex post_lock_;

  std::atomic<bool> flushing_{false};
  /* Audio before this global sample needs no resend: written under lock_ on the network
   * thread (settle_locked), read by the client after each callback; reset per session. */
  std::atomic<guint64> settle_point_{0};
  std::atomic<GstFlowReturn> flow_{GST_FLOW_OK}; /* sticky error from the network thread */
  std::atomic<bool> error_claimed_{false};       /* an error message is (being) posted */

  /* shared between the streaming and network threads, guarded by lock_ */
  mutable std::mutex lock_;
  TimingMap map_;
  std::condition_variable finals_cond_; /* a final arrived, or set_flushing() */
  guint64 session_base_ = 0;            /* global sample at the current session's audio_*_ms == 0 */
  Utterances utterances_;               /* items, commits, finals seen and held, their order */
  std::deque<SentMark> sent_marks_;     /* for the service delay, pruned as finals arrive */
  std::string last_connect_problem_;    /* why the last connection attempt failed */
  unsigned repairs_warned_ = 0;         /* FrameRepair kinds warned about this stream */
  bool bad_frames_warned_ = false;      /* a dropped frame was warned about this stream */
  bool resend_dropping_ = false;        /* a resend-buffer overflow episode is going on */
  guint64 resend_dropped_samples_ = 0;  /* in the current episode */
  guint64 repaired_frames_ = 0, bad_frames_ = 0;
  std::string session_id_;
  bool configured_ = false;      /* the current connection's session */
  bool ever_configured_ = false; /* any session since the last ensure_session() */
  guint64 partials_ = 0, finals_ = 0;
  GstClockTime last_delay_ = 0, max_delay_ = 0; /* 0 until the first final */
};

} // namespace qwenasr
