/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qwenasr element's instance state, shared by its pad and state code (gstqwenasr.cpp) and
 * its caption output (gstqwenasroutput.cpp); not installed, not for applications. */
#pragma once

#include "gstqwenasr.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "captiontimeline.h"
#include "rollup.h"
#include "settings.h"
#include "transcriber.h"

GST_DEBUG_CATEGORY_EXTERN(gst_qwen_asr_debug);

#define DEFAULT_LATENCY_MS 8000
/* caption-mode=roll-up: words are shown from the input time at which they were confirmed,
 * so the budget only covers handing them on, not the service's delay. */
#define DEFAULT_ROLL_UP_LATENCY_MS 1000
#define DEFAULT_LATENESS_MS 0
#define DEFAULT_MIN_DURATION_MS 1000
#define DEFAULT_MAX_LINE_LENGTH 0
#define DEFAULT_MAX_LINES 2
/* Shortest line length that still holds words (below it, 0 means "by script"). */
#define MIN_MAX_LINE_LENGTH 8
#define MAX_MAX_LINE_LENGTH 200
#define MAX_MAX_LINES 4
#define DEFAULT_ROLL_UP_LINES 2

/* How captions are made: readable blocks from finals, or confirmed words as they come. */
enum GstQwenAsrCaptionMode {
  GST_QWEN_ASR_CAPTION_POP_ON,
  GST_QWEN_ASR_CAPTION_ROLL_UP,
};

/* A transcript waiting to be pushed, with when it arrived (monotonic µs). */
struct PendingCaption {
  qwenasr::Transcript transcript;
  gint64 arrival;
};

/* The input time reached by the audio handed to the service at a given moment. */
struct SentMark {
  GstClockTime end; /* input PTS just after the audio */
  gint64 wall;      /* monotonic µs when it was handed over */
};

struct GstQwenAsrPrivate : public qwenasr::TranscriptObserver {
  explicit GstQwenAsrPrivate(GstElement *element) : transcriber(element) {
    transcriber.set_observer(this);
  }

  /* properties, guarded by the object lock */
  qwenasr::Settings settings;
  guint latency_ms = DEFAULT_LATENCY_MS; /* in effect: set, or the caption mode's default */
  gboolean latency_set = FALSE;          /* latency was set: the mode does not change it */
  guint lateness_ms = DEFAULT_LATENESS_MS;
  guint min_duration_ms = DEFAULT_MIN_DURATION_MS;
  gboolean reading_time = FALSE;
  gboolean partial_results = FALSE;
  guint max_line_length = DEFAULT_MAX_LINE_LENGTH;
  guint max_lines = DEFAULT_MAX_LINES;
  GstQwenAsrCaptionMode caption_mode = GST_QWEN_ASR_CAPTION_POP_ON;
  guint roll_up_lines = DEFAULT_ROLL_UP_LINES;
  /* read-only property, written by the streaming thread */
  std::atomic<guint64> max_observed_delay{0};

  /* session logic (see qwenasrsink); used by the streaming and state-change threads */
  qwenasr::Transcriber transcriber;

  /* Output state: computed by the streaming thread and by the output task, each under
   * `out_lock`; neither ever pushes downstream while holding it. Lock order: out_lock, then
   * the transcriber's locks, then `lock` and `task_lock` (leaves). */
  std::mutex out_lock;
  GstSegment in_segment;
  gboolean have_segment = FALSE;
  gboolean caps_pushed = FALSE;                /* text caps queued for output */
  gboolean markup = FALSE;                     /* downstream wants pango-markup */
  GstClockTime position = GST_CLOCK_TIME_NONE; /* output PTS reached */
  std::deque<SentMark> sent;
  int rate = 0;                   /* of the input caps */
  GstClockTime hearing_delay = 0; /* slowest speech_started seen after its audio was sent */
  gboolean eos = FALSE;           /* EOS queued: no more output until a flush */
  gboolean warned_stall = FALSE;  /* the stalled-input warning was posted (once a stream) */
  /* Finals are coming after their speech was passed: warned once when it starts, an INFO
   * when a final is on time again. */
  gboolean late_episode = FALSE;
  /* Layout and times of the captions (its late count: finals shown later than their speech),
   * the language last tagged downstream, and how long after their speech captions were
   * ready for output. */
  qwenasr::CaptionTimeline timeline;
  qwenasr::RollUp rollup; /* caption-mode=roll-up: the window */
  /* What partial results of the utterances still open had confirmed, and by when. */
  std::map<std::string, std::vector<qwenasr::Confirmation>> confirmations;
  std::string language_tagged;
  qwenasr::DelayStats screen_delays;
  std::atomic<bool> upstream_live{false}; /* from the last LATENCY query, ours or downstream's */
  /* Monotonic µs of the last reconnection: audio handed over before then was resent, so its
   * speech_started says nothing about the hearing delay. */
  std::atomic<gint64> reconnected_at{0};
  /* Events and caption buffers in output order, pushed only by the output task, so that a
   * downstream element that holds text back (textoverlay waiting for video) never holds the
   * audio input; guarded by `out_lock`. Consecutive GAPs are merged, so it holds at most the
   * captions not yet taken plus one GAP. */
  std::deque<GstMiniObject *> outq;
  /* The last flow return of a push, for the streaming thread to return upstream. */
  std::atomic<GstFlowReturn> out_flow{GST_FLOW_OK};
  /* Monotonic µs at which the streaming thread entered Transcriber::push (0: not inside it),
   * to tell a service that stopped taking audio from a pipeline that stopped sending it. */
  std::atomic<gint64> push_entered{0};
  /* The streaming thread is draining the session (its input waits for that, not for us). */
  std::atomic<bool> draining{false};

  /* Whether audio may go to the service: not while PAUSED before the first output of a
   * timeline (see wait_for_playing); written by the state-change thread and flush events,
   * guarded by `play_lock` (a leaf, like `lock`). */
  std::mutex play_lock;
  std::condition_variable play_cond;
  bool playing = false;
  bool play_flushing = false;
  bool task_pushing = false; /* the output task is inside pushes downstream */
  guint64 task_rounds = 0;   /* times the output task took the output queue */

  /* filled on the network thread, emptied under `out_lock`; guarded by `lock` */
  std::mutex lock;
  std::deque<PendingCaption> pending;
  std::deque<std::pair<GstClockTime, gint64>> speech_starts; /* stream time, arrival */

  /* wakes the output task early (results arrived, or stopping); guarded by `task_lock` */
  std::mutex task_lock;
  std::condition_variable task_cond;
  bool task_wake = false;

  void wake_task() {
    {
      std::lock_guard<std::mutex> guard(task_lock);
      task_wake = true;
    }
    task_cond.notify_all();
  }

  void on_transcript(const qwenasr::Transcript &transcript) override {
    {
      std::lock_guard<std::mutex> guard(lock);
      pending.push_back({transcript, g_get_monotonic_time()});
    }
    wake_task();
  }

  void on_speech_started(GstClockTime start) override {
    std::lock_guard<std::mutex> guard(lock);
    speech_starts.emplace_back(start, g_get_monotonic_time());
  }

  void on_reconnected() override { reconnected_at = g_get_monotonic_time(); }
};

struct _GstQwenAsr {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstQwenAsrPrivate *priv;
};

/* ---- the caption output (gstqwenasroutput.cpp) ---- */

/* Queues the captions that have arrived and the GAP up to the settled point; `drained`: the
 * session is over. Under `out_lock`. */
void gst_qwen_asr_output_update(GstQwenAsr *self, gboolean drained);
/* Ends the session (bounded; streaming thread, no lock held) and queues its last captions. */
GstFlowReturn gst_qwen_asr_output_drain(GstQwenAsr *self);
/* Forgets all output state; under `out_lock`. */
void gst_qwen_asr_output_reset(GstQwenAsr *self);
/* Queues an event or a caption buffer for the output task (takes it); under `out_lock`. */
void gst_qwen_asr_output_enqueue(GstQwenAsrPrivate *priv, GstMiniObject *item);
/* Queues a serialized event behind what is queued already and wakes the task (takes it). */
void gst_qwen_asr_output_queue_event(GstQwenAsr *self, GstEvent *event);
/* Chooses the text format downstream takes and queues its caps, once per stream; under
 * `out_lock`. */
void gst_qwen_asr_output_ensure_caps(GstQwenAsr *self);
/* Starts the output task (the only thread that pushes on the source pad). */
gboolean gst_qwen_asr_output_start_task(GstQwenAsr *self);
/* The source pad's activate-mode function: starts and stops the output task. */
gboolean gst_qwen_asr_src_activate_mode(GstPad *pad, GstObject *parent, GstPadMode mode,
                                        gboolean active);
