/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-qwenasr
 * @title: qwenasr
 *
 * Transcribes S16LE mono 8 or 16 kHz audio with Alibaba Cloud's Qwen3-ASR-Flash-Realtime and
 * outputs the transcripts as timed `text/x-raw` captions for textoverlay, srtenc, webvttenc,
 * matroskamux or mp4mux. The caption timeline (captiontimeline.h) lays each transcript out in
 * lines (max-line-length, max-lines) and screens spread over its utterance; a caption starts
 * where its speech starts and lasts until the utterance ends (at least min-duration, but never
 * into the next utterance). A tag event names the language. GAP events keep the text timeline
 * moving through silence and while results are pending. The bus messages are those of
 * qwenasrsink.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! decodebin ! audioconvert ! audioresample ! \
 *     qwenasr language-code=en ! srtenc ! filesink location=talk.srt
 * ]|
 */
#include "gstqwenasr.h"

#include <gst/audio/audio.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

#include "captionlayout.h"
#include "captiontimeline.h"
#include "capshint.h"
#include "rollup.h"
#include "settings.h"
#include "transcriber.h"

GST_DEBUG_CATEGORY_STATIC(gst_qwen_asr_debug);
#define GST_CAT_DEFAULT gst_qwen_asr_debug

/* How far ahead of a deadline output is pushed, so a caption or GAP computed on time still
 * reaches a synchronising sink before its running time. */
static const GstClockTime kGranularity = 100 * GST_MSECOND;
/* How long a partial preview stays up unless a newer one replaces it. */
static const GstClockTime kPartialDuration = 300 * GST_MSECOND;
/* Non-live input: audio handed to the service this long ago (at least) is assumed heard by its
 * VAD; the estimate starts here and then follows twice the slowest speech_started seen. */
static const GstClockTime kDefaultHearingDelay = GST_SECOND;
/* Not less: audio waits up to an append (chunk-duration) before it is sent, and live input
 * arrives in bursts, so the time a buffer entered is an early estimate of when it was sent. */
static const GstClockTime kMinHearingDelay = 500 * GST_MSECOND;
/* Audio handed over more recently than this is taken as still flowing. */
static const gint64 kAudioFlowingUs = 500 * G_TIME_SPAN_MILLISECOND;

enum {
  PROP_0,
  PROP_LATENCY,
  PROP_LATENCY_LATENESS,
  PROP_MIN_DURATION,
  PROP_PARTIAL_RESULTS,
  PROP_MAX_OBSERVED_DELAY,
  PROP_STATS,
  PROP_MAX_LINE_LENGTH,
  PROP_MAX_LINES,
  PROP_CAPTION_MODE,
  PROP_ROLL_UP_LINES,
  PROP_SHARED_FIRST,
};

#define DEFAULT_LATENCY_MS 8000
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

static GType gst_qwen_asr_caption_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_QWEN_ASR_CAPTION_POP_ON, "Readable blocks from final transcripts", "pop-on"},
      {GST_QWEN_ASR_CAPTION_ROLL_UP,
       "Confirmed words as they come, in a scrolling window of roll-up-lines", "roll-up"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstQwenAsrCaptionMode", values));
  return type;
}

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
  guint latency_ms = DEFAULT_LATENCY_MS;
  guint lateness_ms = DEFAULT_LATENESS_MS;
  guint min_duration_ms = DEFAULT_MIN_DURATION_MS;
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

  /* Whether audio may go to the service: not while PAUSED before the first output of a
   * timeline (see wait_for_playing); written by the state-change thread and flush events,
   * guarded by `play_lock` (a leaf, like `lock`). */
  std::mutex play_lock;
  std::condition_variable play_cond;
  bool playing = false;
  bool play_flushing = false;
  bool task_pushing = false; /* the output task is inside pushes downstream */
  guint64 task_rounds = 0;   /* times the output task took the output queue */

  /* filled on the client thread, emptied under `out_lock`; guarded by `lock` */
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

#define SINK_CAPS                                                                                  \
  "audio/x-raw, format=(string)S16LE, channels=(int)1, rate=(int){ 16000, 8000 }, "                \
  "layout=(string)interleaved"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(SINK_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("text/x-raw, format=(string){ utf8, pango-markup }"));

#define gst_qwen_asr_parent_class parent_class
G_DEFINE_TYPE(GstQwenAsr, gst_qwen_asr, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(qwenasr, "qwenasr", GST_RANK_NONE, GST_TYPE_QWEN_ASR);

/* ---- output (streaming thread) ---- */

/* How long after handing audio to the service the text timeline may move past it (`gap`),
 * and after how long an utterance still waiting for its final stops holding it (`overdue`).
 * Live: both are the latency budget, the deadline downstream works to. Not live there is no
 * deadline, but other branches of the pipeline (tee, demuxer) only buffer so much while the
 * text side waits, so GAPs follow the service's observed hearing delay; holding for an open
 * utterance ends at the latency budget, so a long utterance cannot stall the pipeline. */
struct Budgets {
  gint64 gap_us, overdue_us;
};

static Budgets budgets(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  GST_OBJECT_LOCK(self);
  GstClockTime total = (priv->latency_ms + priv->lateness_ms) * GST_MSECOND;
  GST_OBJECT_UNLOCK(self);
  GstClockTime live_budget = total > kGranularity ? total - kGranularity : 0;
  GstClockTime gap = live_budget;
  if (!priv->upstream_live) {
    gap = priv->hearing_delay > 0 ? 2 * priv->hearing_delay : kDefaultHearingDelay;
    gap = CLAMP(gap, MIN(kMinHearingDelay, live_budget), live_budget);
  }
  return {static_cast<gint64>(gap / GST_USECOND), static_cast<gint64>(live_budget / GST_USECOND)};
}

/* Transcript times are input stream times; captions carry input PTS. */
static GstClockTime to_pts(GstQwenAsr *self, GstClockTime stream_time) {
  if (!GST_CLOCK_TIME_IS_VALID(stream_time))
    return GST_CLOCK_TIME_NONE;
  guint64 pts =
      gst_segment_position_from_stream_time(&self->priv->in_segment, GST_FORMAT_TIME, stream_time);
  return pts == static_cast<guint64>(-1) ? stream_time : pts;
}

/* Monotonic time at which the audio at `pts` was handed to the service; 0 when that is no
 * longer recorded (it is then older than every deadline). */
static gint64 sent_wall_time(GstQwenAsrPrivate *priv, GstClockTime pts) {
  for (const SentMark &mark : priv->sent) {
    if (mark.end > pts)
      return mark.wall;
  }
  return priv->sent.empty() ? 0 : priv->sent.back().wall;
}

/* Queues an event or a caption buffer for the output task (takes it); under `out_lock`. A GAP
 * that continues a queued GAP extends it instead. */
static void enqueue(GstQwenAsrPrivate *priv, GstMiniObject *item) {
  if (GST_IS_EVENT(item) && GST_EVENT_TYPE(GST_EVENT(item)) == GST_EVENT_GAP &&
      !priv->outq.empty() && GST_IS_EVENT(priv->outq.back()) &&
      GST_EVENT_TYPE(GST_EVENT(priv->outq.back())) == GST_EVENT_GAP) {
    GstClockTime prev_ts, prev_dur, ts, dur;
    gst_event_parse_gap(GST_EVENT(priv->outq.back()), &prev_ts, &prev_dur);
    gst_event_parse_gap(GST_EVENT(item), &ts, &dur);
    if (prev_ts + prev_dur == ts) {
      gst_mini_object_unref(priv->outq.back());
      gst_mini_object_unref(item);
      priv->outq.back() = GST_MINI_OBJECT_CAST(gst_event_new_gap(prev_ts, prev_dur + dur));
      return;
    }
  }
  priv->outq.push_back(item);
}

static void clear_outq(GstQwenAsrPrivate *priv) {
  for (GstMiniObject *item : priv->outq)
    gst_mini_object_unref(item);
  priv->outq.clear();
}

/* Whether the text goes (through queues) to webvttenc, which in 1.22 writes the buffer's
 * text verbatim into the cue: there '<', '&' and "-->" must be escaped, as pango-markup
 * is (srtenc writes verbatim too, but SRT has no escapes: it gets utf8). */
static gboolean downstream_writes_webvtt(GstQwenAsr *self) {
  GstPad *peer = gst_pad_get_peer(self->srcpad);
  gboolean webvtt = FALSE;
  for (int hops = 0; peer && hops < 8; hops++) {
    GstElement *element = gst_pad_get_parent_element(peer);
    gst_object_unref(peer);
    peer = nullptr;
    if (!element)
      break;
    GstElementFactory *factory = gst_element_get_factory(element);
    const gchar *name = factory ? GST_OBJECT_NAME(factory) : "";
    if (g_strcmp0(name, "webvttenc") == 0) {
      webvtt = TRUE;
    } else if (g_strcmp0(name, "queue") == 0 || g_strcmp0(name, "queue2") == 0 ||
               g_strcmp0(name, "capsfilter") == 0 || g_strcmp0(name, "identity") == 0) {
      GstPad *src = gst_element_get_static_pad(element, "src");
      if (src) {
        peer = gst_pad_get_peer(src);
        gst_object_unref(src);
      }
    }
    gst_object_unref(element);
  }
  if (peer)
    gst_object_unref(peer);
  return webvtt;
}

/* Chooses the text format downstream takes and queues its caps, once per stream. */
static void ensure_output_caps(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  if (priv->caps_pushed)
    return;
  GstCaps *utf8 = gst_caps_from_string("text/x-raw, format=(string)utf8");
  GstCaps *peer = gst_pad_peer_query_caps(self->srcpad, nullptr);
  GstCaps *markup = gst_caps_from_string("text/x-raw, format=(string)pango-markup");
  priv->markup = peer && (!gst_caps_can_intersect(peer, utf8) ||
                          (gst_caps_can_intersect(peer, markup) && downstream_writes_webvtt(self)));
  gst_caps_unref(markup);
  gst_caps_unref(utf8);
  if (peer)
    gst_caps_unref(peer);
  GstCaps *caps = gst_caps_new_simple("text/x-raw", "format", G_TYPE_STRING,
                                      priv->markup ? "pango-markup" : "utf8", nullptr);
  enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_caps(caps)));
  gst_caps_unref(caps);
  priv->caps_pushed = TRUE;
}

static void push_gap(GstQwenAsr *self, GstClockTime until) {
  GstQwenAsrPrivate *priv = self->priv;
  if (!GST_CLOCK_TIME_IS_VALID(until))
    return;
  if (!GST_CLOCK_TIME_IS_VALID(priv->position)) {
    /* The text timeline starts where the input's segment starts. */
    priv->position = priv->in_segment.start;
  }
  if (until <= priv->position)
    return;
  GST_LOG_OBJECT(self, "gap %" GST_TIME_FORMAT " - %" GST_TIME_FORMAT,
                 GST_TIME_ARGS(priv->position), GST_TIME_ARGS(until));
  enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_gap(priv->position, until - priv->position)));
  priv->position = until;
}

/* Measures how late a final is against the audio it transcribes: max-observed-delay, and the
 * warning when that is more than the live budget. Under `out_lock`. */
static void observe_delay(GstQwenAsr *self, const PendingCaption &caption) {
  GstQwenAsrPrivate *priv = self->priv;
  const qwenasr::Transcript &t = caption.transcript;
  GstClockTime start = to_pts(self, t.start);
  gint64 sent = GST_CLOCK_TIME_IS_VALID(start) ? sent_wall_time(priv, start) : 0;
  if (sent <= 0 || !t.final)
    return;
  GstClockTime delay = static_cast<guint64>(MAX(caption.arrival - sent, 0)) * GST_USECOND;
  if (delay <= priv->max_observed_delay)
    return;
  priv->max_observed_delay = delay;
  g_object_notify(G_OBJECT(self), "max-observed-delay");
  GST_OBJECT_LOCK(self);
  guint latency_ms = priv->latency_ms + priv->lateness_ms;
  GST_OBJECT_UNLOCK(self);
  if (priv->upstream_live && delay > latency_ms * GST_MSECOND) {
    GST_ELEMENT_WARNING_WITH_DETAILS(
        self, CORE, CLOCK,
        ("Transcripts arrive %" G_GUINT64_FORMAT " ms after their audio, more than latency "
         "+ lateness (%u ms): captions will show late. Consider a larger latency.",
         delay / GST_MSECOND, latency_ms),
        (nullptr), ("new-observed-max-delay", G_TYPE_UINT64, delay, NULL));
  }
}

/* The input time the audio handed to the service had reached at monotonic time `arrival`
 * (at least `start`): what a result arriving then can have heard. */
static GstClockTime heard_pts(GstQwenAsrPrivate *priv, gint64 arrival, GstClockTime start) {
  GstClockTime pts = start;
  for (const SentMark &mark : priv->sent) {
    if (mark.wall > arrival)
      break;
    pts = MAX(pts, mark.end);
  }
  return pts;
}

/* Hands a transcript to the caption timeline (which lays it out and decides its times). */
static void add_to_timeline(GstQwenAsr *self, const PendingCaption &caption, Budgets wait,
                            gboolean rollup) {
  GstQwenAsrPrivate *priv = self->priv;
  const qwenasr::Transcript &t = caption.transcript;
  GstClockTime start = to_pts(self, t.start);
  if (!GST_CLOCK_TIME_IS_VALID(start))
    start = GST_CLOCK_TIME_IS_VALID(priv->position) ? priv->position : priv->in_segment.start;
  if (rollup) {
    /* Confirmed words only (never the provisional stash), shown from the input time the
     * service had been given when they came: they were spoken by then. */
    const std::string &confirmed = t.final ? t.text : t.stable_text;
    if (!priv->rollup.update(std::hash<std::string>()(t.item_id), confirmed, t.language))
      return;
    GstClockTime pts = heard_pts(priv, caption.arrival, start);
    GstClockTime end = to_pts(self, t.end);
    if (t.final && GST_CLOCK_TIME_IS_VALID(end) && end >= start)
      pts = MIN(pts, end);
    priv->timeline.add_window(pts, start, priv->rollup.window(), t.language);
    return;
  }
  if (!t.final) {
    priv->timeline.add_partial(start, t.text, t.language);
    return;
  }
  /* Held for the next speech start at most as long as an open utterance would hold the
   * output: the latency budget after its audio was handed over. */
  gint64 deadline = sent_wall_time(priv, start) + wait.overdue_us;
  auto confirmed = priv->confirmations.find(t.item_id);
  priv->timeline.add_final(start, to_pts(self, t.end), t.text, t.language, deadline,
                           confirmed != priv->confirmations.end()
                               ? confirmed->second
                               : std::vector<qwenasr::Confirmation>());
}

/* Queues a cue the timeline released: a tag event when its language is new, the GAP before
 * it, and its buffer. */
static void push_cue(GstQwenAsr *self, const qwenasr::Cue &cue) {
  GstQwenAsrPrivate *priv = self->priv;
  if (cue.late) {
    GST_OBJECT_LOCK(self);
    guint latency_ms = priv->latency_ms + priv->lateness_ms;
    GST_OBJECT_UNLOCK(self);
    /* Live, the delay warning has said it already. */
    if (!priv->late_episode && !priv->upstream_live) {
      GST_ELEMENT_WARNING(self, STREAM, FAILED,
                          ("A final transcript came after its speech had already been passed "
                           "in the output (latency + lateness is %u ms): its caption is "
                           "shortened. Raise latency above the longest utterance plus "
                           "vad-silence-ms plus the service's response time.",
                           latency_ms),
                          ("caption moved from %" GST_TIME_FORMAT " to %" GST_TIME_FORMAT,
                           GST_TIME_ARGS(cue.speech_start), GST_TIME_ARGS(cue.pts)));
    }
    priv->late_episode = TRUE;
  } else if (cue.final && priv->late_episode) {
    priv->late_episode = FALSE;
    GST_ELEMENT_INFO(self, STREAM, FAILED,
                     ("Captions are on time again (%" G_GUINT64_FORMAT " came late so far).",
                      priv->timeline.stats().captions_late),
                     (nullptr));
  }
  push_gap(self, cue.pts);
  if (!cue.language.empty() && cue.language != priv->language_tagged) {
    GstTagList *tags = gst_tag_list_new(GST_TAG_LANGUAGE_CODE, cue.language.c_str(), nullptr);
    gst_tag_list_set_scope(tags, GST_TAG_SCOPE_STREAM);
    enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_tag(tags)));
    priv->language_tagged = cue.language;
  }
  if (cue.first_of_utterance) {
    gint64 sent = sent_wall_time(priv, cue.speech_start);
    if (sent > 0)
      priv->screen_delays.add((g_get_monotonic_time() - sent) / 1000);
  }

  std::string escaped = priv->markup ? qwenasr::escape_markup(cue.text) : cue.text;
  gchar *text = g_strdup(escaped.c_str());
  gsize size = strlen(text);
  GstBuffer *buffer = gst_buffer_new_wrapped(text, size);
  GST_BUFFER_PTS(buffer) = cue.pts;
  GST_BUFFER_DURATION(buffer) = cue.duration;
  priv->position = cue.pts + cue.duration;
  GST_DEBUG_OBJECT(self, "%s caption %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT ": %s",
                   cue.final ? "final" : "partial", GST_TIME_ARGS(cue.pts),
                   GST_TIME_ARGS(cue.duration), cue.text.c_str());
  enqueue(priv, GST_MINI_OBJECT_CAST(buffer));
}

/* Queues the captions that have arrived, then a GAP up to the point before which no caption
 * can come any more: audio handed to the service longer ago than latency + lateness, and not
 * inside an utterance still waiting for its final (unless that one is overdue: then its
 * caption will be shifted later rather than stall a live pipeline). `drained`: the session is
 * over, so everything up to the end of the input is settled. Under `out_lock`. */
static void push_output(GstQwenAsr *self, gboolean drained) {
  GstQwenAsrPrivate *priv = self->priv;
  ensure_output_caps(self);
  /* Open utterances before the results: the transcriber hands a final over before its
   * utterance stops being open, so one whose final arrives in between is then either still
   * open here or among the results. */
  GstClockTime open_now = to_pts(self, priv->transcriber.earliest_open_start());
  std::deque<PendingCaption> ready;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    ready.swap(priv->pending);
  }
  qwenasr::TimelineConfig config;
  GST_OBJECT_LOCK(self);
  gboolean partials = priv->partial_results;
  gboolean rollup = priv->caption_mode == GST_QWEN_ASR_CAPTION_ROLL_UP;
  priv->rollup.set_layout(priv->max_line_length, priv->roll_up_lines);
  config.min_duration = priv->min_duration_ms * GST_MSECOND;
  config.max_line_length = priv->max_line_length;
  config.max_lines = priv->max_lines;
  GST_OBJECT_UNLOCK(self);
  config.partial_duration = kPartialDuration;
  priv->timeline.set_config(config);
  Budgets wait = budgets(self);
  GstClockTime final_start = GST_CLOCK_TIME_NONE; /* latest start of a final taken here */
  for (const PendingCaption &caption : ready) {
    GstClockTime start = to_pts(self, caption.transcript.start);
    if (caption.transcript.final && GST_CLOCK_TIME_IS_VALID(start) &&
        (!GST_CLOCK_TIME_IS_VALID(final_start) || start > final_start))
      final_start = start;
    observe_delay(self, caption);
    const qwenasr::Transcript &t = caption.transcript;
    if (!t.final && !rollup) {
      /* When its words were confirmed: the final's captions are timed by it. */
      guint chars = qwenasr::perceived_length(t.stable_text);
      auto &confirmed = priv->confirmations[t.item_id];
      if (chars > 0 && (confirmed.empty() || chars > confirmed.back().chars))
        confirmed.push_back({chars, heard_pts(priv, caption.arrival, start)});
    }
    if (!caption.transcript.final && !partials && !rollup)
      continue;
    if (caption.transcript.text.empty())
      continue;
    add_to_timeline(self, caption, wait, rollup);
    if (t.final)
      priv->confirmations.erase(t.item_id);
  }
  /* Utterances whose final never comes (a lost session) must not pile up. */
  while (priv->confirmations.size() > 16)
    priv->confirmations.erase(priv->confirmations.begin());

  std::deque<std::pair<GstClockTime, gint64>> starts;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    starts.swap(priv->speech_starts);
  }
  for (const auto &start : starts) {
    gint64 sent = sent_wall_time(priv, to_pts(self, start.first));
    if (sent <= 0 || start.second <= sent || sent < priv->reconnected_at)
      continue;
    GstClockTime heard = static_cast<GstClockTime>(start.second - sent) * GST_USECOND;
    GST_LOG_OBJECT(self, "speech at %" GST_TIME_FORMAT " heard after %" GST_TIME_FORMAT,
                   GST_TIME_ARGS(start.first), GST_TIME_ARGS(heard));
    priv->hearing_delay = MAX(priv->hearing_delay, heard);
  }
  /* The next speech start ends the caption held before it. */
  for (const auto &start : starts)
    priv->timeline.speech_started(to_pts(self, start.first));
  if (GST_CLOCK_TIME_IS_VALID(open_now))
    priv->timeline.speech_started(open_now);

  GstClockTime safe = GST_CLOCK_TIME_NONE;
  gint64 now = g_get_monotonic_time();
  if (drained) {
    safe = to_pts(self, priv->transcriber.input_end_time());
    if (!priv->sent.empty())
      safe =
          GST_CLOCK_TIME_IS_VALID(safe) ? MAX(safe, priv->sent.back().end) : priv->sent.back().end;
  } else {
    for (const SentMark &mark : priv->sent) {
      if (mark.wall + wait.gap_us > now)
        break;
      safe = mark.end;
    }
    /* open_now may be the utterance whose final was just taken. Roll-up captions show words
     * from when they were confirmed, never from the utterance start: nothing to hold for. */
    GstClockTime open = rollup ? GST_CLOCK_TIME_NONE : open_now;
    if (GST_CLOCK_TIME_IS_VALID(final_start) && GST_CLOCK_TIME_IS_VALID(open) &&
        open <= final_start)
      open = GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID(open) && GST_CLOCK_TIME_IS_VALID(safe) && open < safe) {
      if (sent_wall_time(priv, open) + wait.overdue_us > now) {
        safe = open;
      } else if (!priv->upstream_live) {
        gboolean flowing = !priv->sent.empty() && now - priv->sent.back().wall < kAudioFlowingUs;
        if (flowing && !priv->late_episode) {
          /* Audio keeps coming in real time (a source such as rtmp2src that is not live):
           * the service is simply slower than the budget. One warning for the episode of
           * late captions this starts (see push_cue). */
          priv->late_episode = TRUE;
          GST_ELEMENT_WARNING(self, STREAM, FAILED,
                              ("A final transcript took longer than latency + lateness (%u ms) "
                               "while audio kept arriving: the caption will be late. Raise "
                               "latency above the longest utterance plus vad-silence-ms plus "
                               "the service's response time.",
                               priv->latency_ms + priv->lateness_ms),
                              ("utterance open since %" GST_TIME_FORMAT, GST_TIME_ARGS(open)));
        } else if (flowing || priv->warned_stall) {
          /* said already */
        } else if (priv->push_entered != 0 && now - priv->push_entered > kAudioFlowingUs) {
          priv->warned_stall = TRUE;
          /* Audio stopped coming because the service stopped taking it. */
          GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                              ("The service has stopped taking audio (a network or service "
                               "stall) for %" G_GINT64_FORMAT " ms while an utterance waits for "
                               "its transcript: captions will be late until it recovers.",
                               (now - priv->push_entered) / 1000),
                              ("utterance open since %" GST_TIME_FORMAT, GST_TIME_ARGS(open)));
        } else {
          /* Not live, the utterance could only stay open this long because its audio stopped
           * coming: something upstream waits for our text. */
          priv->warned_stall = TRUE;
          GST_ELEMENT_WARNING(self, STREAM, FAILED,
                              ("No audio arrived for an unfinished utterance: the pipeline "
                               "seems to wait for its caption. The caption will be late; give "
                               "the other branches (after tee or demuxer) queues longer than the "
                               "longest utterance plus vad-silence-ms."),
                              ("utterance open since %" GST_TIME_FORMAT, GST_TIME_ARGS(open)));
        }
      }
    }
  }
  /* The captions the timeline can release now (all of them once drained), then the GAP up
   * to the safe point, but not past a caption it still holds. */
  for (const qwenasr::Cue &cue : priv->timeline.take(priv->position, safe, now, drained))
    push_cue(self, cue);
  GstClockTime held = priv->timeline.hold_point();
  push_gap(self,
           GST_CLOCK_TIME_IS_VALID(held) && GST_CLOCK_TIME_IS_VALID(safe) ? MIN(held, safe) : safe);

  /* Marks before the position are only needed for delay lookups of captions still open. */
  GstClockTime keep_from = priv->position;
  GstClockTime open = to_pts(self, priv->transcriber.earliest_open_start());
  if (GST_CLOCK_TIME_IS_VALID(open) && GST_CLOCK_TIME_IS_VALID(keep_from))
    keep_from = MIN(keep_from, open);
  while (priv->sent.size() > 1 && GST_CLOCK_TIME_IS_VALID(keep_from) &&
         priv->sent.front().end <= keep_from)
    priv->sent.pop_front();
}

/* Ends the session (bounded; streaming thread, no lock held) and queues its last captions. */
static GstFlowReturn drain(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  GstFlowReturn ret = priv->transcriber.drain(nullptr);
  if (ret != GST_FLOW_OK)
    return ret;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    push_output(self, TRUE);
  }
  priv->wake_task();
  return GST_FLOW_OK;
}

/* Forgets all output state; under `out_lock`. */
static void reset_output(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    priv->pending.clear();
    priv->speech_starts.clear();
  }
  clear_outq(priv);
  priv->sent.clear();
  priv->position = GST_CLOCK_TIME_NONE;
  priv->timeline.reset();
  priv->rollup.reset();
  priv->confirmations.clear();
  priv->language_tagged.clear();
  priv->eos = FALSE;
  priv->warned_stall = FALSE;
  priv->late_episode = FALSE;
  priv->out_flow = GST_FLOW_OK;
}

/* Queues a serialized event for output behind what is queued already, and wakes the task. */
static void queue_event(GstQwenAsr *self, GstEvent *event) {
  GstQwenAsrPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    enqueue(priv, GST_MINI_OBJECT_CAST(event));
  }
  priv->wake_task();
}

/* The output task, the only thread that pushes on the source pad. Results arrive and
 * deadlines pass while no input flows (a demuxer or tee upstream may be blocked on the very
 * text this element owes), so output cannot wait for the next chain call; and a push may block
 * for long (textoverlay holds a caption until the video has passed it), so it must not hold up
 * the audio input, which is what would let the video through. */
/* The output task tells a chain waiting in PAUSED (wait_for_playing) whether it is inside
 * pushes, and that it took the queue (`took`). */
static void note_task_pushing(GstQwenAsrPrivate *priv, bool pushing, bool took) {
  {
    std::lock_guard<std::mutex> guard(priv->play_lock);
    priv->task_pushing = pushing;
    priv->task_rounds += took ? 1 : 0;
  }
  priv->play_cond.notify_all();
}

static void output_task(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  {
    std::unique_lock<std::mutex> guard(priv->task_lock);
    priv->task_cond.wait_for(guard, std::chrono::nanoseconds(kGranularity),
                             [priv] { return priv->task_wake; });
    priv->task_wake = false;
  }
  std::deque<GstMiniObject *> items;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    if (priv->have_segment && priv->caps_pushed && !priv->eos)
      push_output(self, FALSE);
    items.swap(priv->outq);
  }
  note_task_pushing(priv, !items.empty(), true);
  for (GstMiniObject *item : items) {
    if (GST_IS_EVENT(item)) {
      gst_pad_push_event(self->srcpad, GST_EVENT_CAST(item));
      continue;
    }
    GstFlowReturn ret = priv->out_flow;
    if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED) {
      gst_mini_object_unref(item); /* downstream is flushing, at EOS or failed */
      continue;
    }
    ret = gst_pad_push(self->srcpad, GST_BUFFER_CAST(item));
    if (ret != GST_FLOW_OK)
      GST_DEBUG_OBJECT(self, "caption push: %s", gst_flow_get_name(ret));
    priv->out_flow = ret;
  }
  note_task_pushing(priv, false, false);
}

static gboolean gst_qwen_asr_src_activate_mode(GstPad *pad, GstObject *parent, GstPadMode mode,
                                               gboolean active) {
  GstQwenAsr *self = GST_QWEN_ASR(parent);
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active)
    return gst_pad_start_task(pad, reinterpret_cast<GstTaskFunction>(output_task), self, nullptr);
  self->priv->wake_task();
  gst_pad_pause_task(pad);
  return gst_pad_stop_task(pad);
}

/* ---- pads ---- */

/* Asks upstream whether it is live. Downstream's LATENCY queries tell too, but they may come
 * only once the pipeline is playing (after the first audio) or never (a sink that does not
 * sync), and the budgets and the transcriber's drop-or-wait choice need it from the start. */
static void learn_liveness(GstQwenAsr *self) {
  GstQuery *query = gst_query_new_latency();
  if (gst_pad_peer_query(self->sinkpad, query)) {
    gboolean live;
    gst_query_parse_latency(query, &live, nullptr, nullptr);
    self->priv->upstream_live = live;
    GST_DEBUG_OBJECT(self, "upstream is %slive", live ? "" : "not ");
  }
  gst_query_unref(query);
}

static void set_play_gate(GstQwenAsrPrivate *priv, bool playing, bool flushing) {
  {
    std::lock_guard<std::mutex> guard(priv->play_lock);
    priv->playing = playing;
    priv->play_flushing = flushing;
  }
  priv->play_cond.notify_all();
}

static void set_play_flushing(GstQwenAsrPrivate *priv, bool flushing) {
  {
    std::lock_guard<std::mutex> guard(priv->play_lock);
    priv->play_flushing = flushing;
  }
  priv->play_cond.notify_all();
}

/* Not PLAYING: audio goes to the (paid) service only as long as downstream takes output, i.e.
 * until it has prerolled; then it waits for PLAYING, so that nothing is sent that a seek while
 * paused would throw away. A new timeline first queues a GAP at its start, which a sink
 * prerolls on. Downstream that needs more to preroll (a muxer) returns from its pushes, and
 * audio keeps flowing until it does not. Returns FLUSHING when a flush or shutdown ends it. */
static GstFlowReturn wait_for_playing(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  guint64 rounds;
  {
    std::lock_guard<std::mutex> guard(priv->play_lock);
    if (priv->playing)
      return GST_FLOW_OK;
    rounds = priv->task_rounds;
  }
  bool queued = false;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    if (!GST_CLOCK_TIME_IS_VALID(priv->position) && priv->caps_pushed) {
      priv->position = priv->in_segment.start;
      enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_gap(priv->position, 0)));
      queued = true;
    }
  }
  if (queued)
    priv->wake_task();
  std::unique_lock<std::mutex> guard(priv->play_lock);
  priv->play_cond.wait(guard, [&] {
    return priv->playing || priv->play_flushing ||
           ((!queued || priv->task_rounds > rounds) && !priv->task_pushing);
  });
  return priv->play_flushing && !priv->playing ? GST_FLOW_FLUSHING : GST_FLOW_OK;
}

static GstFlowReturn gst_qwen_asr_chain(GstPad *, GstObject *parent, GstBuffer *buffer) {
  GstQwenAsr *self = GST_QWEN_ASR(parent);
  GstQwenAsrPrivate *priv = self->priv;
  GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstClockTime stream_time = gst_segment_to_stream_time(&priv->in_segment, GST_FORMAT_TIME, pts);
  /* Where this audio ends, for the deadlines: it is handed to the service now. */
  GstClockTime end = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID(pts) && priv->rate > 0)
    end = pts + gst_util_uint64_scale_int(gst_buffer_get_size(buffer) / 2, GST_SECOND, priv->rate);
  if (wait_for_playing(self) != GST_FLOW_OK) {
    gst_buffer_unref(buffer);
    return GST_FLOW_FLUSHING;
  }
  priv->push_entered = g_get_monotonic_time();
  GstFlowReturn ret = priv->transcriber.push(buffer, stream_time, priv->upstream_live, nullptr);
  priv->push_entered = 0;
  gst_buffer_unref(buffer);
  if (ret != GST_FLOW_OK)
    return ret;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    if (GST_CLOCK_TIME_IS_VALID(end))
      priv->sent.push_back({end, g_get_monotonic_time()});
    push_output(self, FALSE);
  }
  priv->wake_task();
  /* Text downstream that is not linked does not stop the audio. */
  ret = priv->out_flow;
  return ret == GST_FLOW_NOT_LINKED ? GST_FLOW_OK : ret;
}

static gboolean gst_qwen_asr_sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  GstQwenAsr *self = GST_QWEN_ASR(parent);
  GstQwenAsrPrivate *priv = self->priv;
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    GstAudioInfo info;
    gst_event_parse_caps(event, &caps);
    learn_liveness(self);
    gboolean ok =
        gst_audio_info_from_caps(&info, caps) &&
        priv->transcriber.set_sample_rate(GST_AUDIO_INFO_RATE(&info), nullptr) == GST_FLOW_OK;
    gst_event_unref(event);
    if (!ok)
      return FALSE;
    /* Audio caps stay here; the src pad gets text caps. */
    gboolean drained = !priv->transcriber.has_session();
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      priv->rate = GST_AUDIO_INFO_RATE(&info);
      push_output(self, drained);
    }
    priv->wake_task();
    return TRUE;
  }
  case GST_EVENT_SEGMENT: {
    const GstSegment *segment;
    gst_event_parse_segment(event, &segment);
    if (segment->format != GST_FORMAT_TIME) {
      GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("qwenasr needs a TIME segment."),
                        ("got %s", gst_format_get_name(segment->format)));
      gst_event_unref(event);
      return FALSE;
    }
    /* A new timeline: finish the captions of the old one first. */
    if (priv->have_segment && priv->transcriber.has_audio())
      drain(self);
    GstSegment out;
    gst_segment_copy_into(segment, &out);
    GST_OBJECT_LOCK(self);
    out.base += priv->lateness_ms * GST_MSECOND;
    GST_OBJECT_UNLOCK(self);
    GstEvent *out_event = gst_event_new_segment(&out);
    gst_event_set_seqnum(out_event, gst_event_get_seqnum(event));
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      gst_segment_copy_into(segment, &priv->in_segment);
      priv->have_segment = TRUE;
      ensure_output_caps(self);
      enqueue(priv, GST_MINI_OBJECT_CAST(out_event));
    }
    gst_event_unref(event);
    priv->wake_task();
    return TRUE;
  }
  case GST_EVENT_GAP: {
    GstClockTime timestamp, duration;
    gst_event_parse_gap(event, &timestamp, &duration);
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      if (GST_CLOCK_TIME_IS_VALID(timestamp)) {
        GstClockTime end = timestamp + (GST_CLOCK_TIME_IS_VALID(duration) ? duration : 0);
        priv->sent.push_back({end, g_get_monotonic_time()});
      }
      push_output(self, FALSE);
    }
    gst_event_unref(event);
    priv->wake_task();
    return TRUE;
  }
  case GST_EVENT_EOS:
    drain(self);
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      priv->eos = TRUE;
    }
    queue_event(self, event);
    return TRUE;
  case GST_EVENT_FLUSH_START:
    priv->transcriber.set_flushing(true);
    set_play_flushing(priv, true);
    gst_pad_push_event(self->srcpad, event);
    /* Waits for the output task, which flush-start released from any push. */
    priv->wake_task();
    gst_pad_pause_task(self->srcpad);
    return TRUE;
  case GST_EVENT_FLUSH_STOP: {
    priv->transcriber.flush();
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      reset_output(self);
    }
    priv->transcriber.set_flushing(false);
    set_play_flushing(priv, false);
    gboolean ok = gst_pad_push_event(self->srcpad, event);
    if (GST_PAD_MODE(self->srcpad) == GST_PAD_MODE_PUSH)
      gst_pad_start_task(self->srcpad, reinterpret_cast<GstTaskFunction>(output_task), self,
                         nullptr);
    return ok;
  }
  case GST_EVENT_CUSTOM_DOWNSTREAM:
    if (qwenasr::is_commit_event(event)) {
      priv->transcriber.commit(nullptr);
      gst_event_unref(event);
      return TRUE;
    }
    break;
  default:
    break;
  }
  /* Everything else in order with the captions; non-serialized events go straight on. */
  if (GST_EVENT_IS_SERIALIZED(event) && GST_EVENT_IS_DOWNSTREAM(event)) {
    queue_event(self, event);
    return TRUE;
  }
  return gst_pad_event_default(pad, parent, event);
}

static gboolean gst_qwen_asr_src_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  GstQwenAsr *self = GST_QWEN_ASR(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    /* Answered from upstream and our properties alone: no connection needed. */
    if (!gst_pad_peer_query(self->sinkpad, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(query, &live, &min, &max);
    self->priv->upstream_live = live;
    if (live) {
      GST_OBJECT_LOCK(self);
      GstClockTime ours = (self->priv->latency_ms + self->priv->lateness_ms) * GST_MSECOND;
      GST_OBJECT_UNLOCK(self);
      min += ours;
      if (GST_CLOCK_TIME_IS_VALID(max))
        max += ours;
      gst_query_set_latency(query, live, min, max);
    }
    GST_DEBUG_OBJECT(self, "latency: live %d, min %" GST_TIME_FORMAT, live, GST_TIME_ARGS(min));
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

/* Applications naturally send the commit event to the element itself: route it in. */
static gboolean gst_qwen_asr_send_event(GstElement *element, GstEvent *event) {
  if (qwenasr::is_commit_event(event))
    return gst_pad_send_event(GST_QWEN_ASR(element)->sinkpad, event);
  return GST_ELEMENT_CLASS(parent_class)->send_event(element, event);
}

/* ---- GObject / GstElement ---- */

static void gst_qwen_asr_set_property(GObject *object, guint prop_id, const GValue *value,
                                      GParamSpec *pspec) {
  GstQwenAsr *self = GST_QWEN_ASR(object);
  gboolean post_latency = FALSE;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_LATENCY:
    self->priv->latency_ms = g_value_get_uint(value);
    post_latency = TRUE;
    break;
  case PROP_LATENCY_LATENESS:
    self->priv->lateness_ms = g_value_get_uint(value);
    post_latency = TRUE;
    break;
  case PROP_MIN_DURATION:
    self->priv->min_duration_ms = g_value_get_uint(value);
    break;
  case PROP_PARTIAL_RESULTS:
    self->priv->partial_results = g_value_get_boolean(value);
    break;
  case PROP_MAX_LINE_LENGTH: {
    guint length = g_value_get_uint(value);
    if (length > 0 && length < MIN_MAX_LINE_LENGTH) {
      g_warning("qwenasr: max-line-length %u refused: a line must hold at least %u characters "
                "(or 0: 42, or 16 for Chinese, Japanese and Korean); keeping %u",
                length, MIN_MAX_LINE_LENGTH, self->priv->max_line_length);
      break;
    }
    self->priv->max_line_length = length;
    break;
  }
  case PROP_MAX_LINES:
    self->priv->max_lines = g_value_get_uint(value);
    break;
  case PROP_CAPTION_MODE:
    self->priv->caption_mode = static_cast<GstQwenAsrCaptionMode>(g_value_get_enum(value));
    break;
  case PROP_ROLL_UP_LINES:
    self->priv->roll_up_lines = g_value_get_uint(value);
    break;
  default:
    if (!qwenasr::settings_set_property(&self->priv->settings, PROP_SHARED_FIRST, prop_id, value))
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
  if (post_latency)
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
}

static void gst_qwen_asr_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec) {
  GstQwenAsr *self = GST_QWEN_ASR(object);
  if (prop_id == PROP_STATS) {
    GstStructure *stats = self->priv->transcriber.stats();
    {
      std::lock_guard<std::mutex> guard(self->priv->out_lock);
      const qwenasr::TimelineStats &t = self->priv->timeline.stats();
      const qwenasr::DelayStats &d = self->priv->screen_delays;
      gst_structure_set(stats, "captions-late", G_TYPE_UINT64, t.captions_late, "captions-split",
                        G_TYPE_UINT64, t.captions_split, "reading-speed-hits", G_TYPE_UINT64,
                        t.reading_speed_hits, "caption-delay-p50-ms", G_TYPE_INT64,
                        d.percentile(50), "caption-delay-p95-ms", G_TYPE_INT64, d.percentile(95),
                        "caption-delay-max-ms", G_TYPE_INT64, d.max(), "words-contradicted",
                        G_TYPE_UINT64, self->priv->rollup.contradicted(), nullptr);
    }
    g_value_take_boxed(value, stats);
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_LATENCY:
    g_value_set_uint(value, self->priv->latency_ms);
    break;
  case PROP_LATENCY_LATENESS:
    g_value_set_uint(value, self->priv->lateness_ms);
    break;
  case PROP_MIN_DURATION:
    g_value_set_uint(value, self->priv->min_duration_ms);
    break;
  case PROP_PARTIAL_RESULTS:
    g_value_set_boolean(value, self->priv->partial_results);
    break;
  case PROP_MAX_LINE_LENGTH:
    g_value_set_uint(value, self->priv->max_line_length);
    break;
  case PROP_MAX_LINES:
    g_value_set_uint(value, self->priv->max_lines);
    break;
  case PROP_CAPTION_MODE:
    g_value_set_enum(value, self->priv->caption_mode);
    break;
  case PROP_ROLL_UP_LINES:
    g_value_set_uint(value, self->priv->roll_up_lines);
    break;
  case PROP_MAX_OBSERVED_DELAY:
    g_value_set_uint(value, static_cast<guint>(self->priv->max_observed_delay / GST_MSECOND));
    break;
  default:
    if (!qwenasr::settings_get_property(&self->priv->settings, PROP_SHARED_FIRST, prop_id, value))
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_qwen_asr_change_state(GstElement *element,
                                                      GstStateChange transition) {
  GstQwenAsr *self = GST_QWEN_ASR(element);
  GstQwenAsrPrivate *priv = self->priv;
  switch (transition) {
  case GST_STATE_CHANGE_READY_TO_PAUSED: {
    GST_OBJECT_LOCK(self);
    qwenasr::Settings settings = priv->settings;
    /* Finals wait for earlier utterances at most as long as captions may be late. */
    GstClockTime order_hold = (priv->latency_ms + priv->lateness_ms) * GST_MSECOND;
    GST_OBJECT_UNLOCK(self);
    gst_segment_init(&priv->in_segment, GST_FORMAT_TIME);
    priv->have_segment = FALSE;
    priv->caps_pushed = FALSE;
    priv->max_observed_delay = 0;
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      priv->timeline.reset_stats();
      priv->rollup.reset_stats();
      priv->screen_delays.clear();
      reset_output(self);
    }
    priv->transcriber.set_order_hold(order_hold);
    set_play_gate(priv, false, false);
    if (!priv->transcriber.start(settings)) {
      priv->transcriber.stop();
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  }
  case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
    set_play_gate(priv, true, false);
    break;
  case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    set_play_gate(priv, false, false);
    break;
  case GST_STATE_CHANGE_PAUSED_TO_READY:
    /* Pad deactivation takes the stream lock: release a chain function waiting on us. */
    priv->transcriber.set_flushing(true);
    set_play_gate(priv, false, true);
    break;
  default:
    break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    priv->transcriber.stop();
    std::lock_guard<std::mutex> guard(priv->out_lock);
    reset_output(self);
  }
  return ret;
}

static void gst_qwen_asr_finalize(GObject *object) {
  delete GST_QWEN_ASR(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_qwen_asr_init(GstQwenAsr *self) {
  self->priv = new GstQwenAsrPrivate(GST_ELEMENT(self));
  gst_segment_init(&self->priv->in_segment, GST_FORMAT_TIME);
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_event));
  GST_PAD_SET_PROXY_ALLOCATION(self->sinkpad);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
  qwenasr::watch_sink_caps(GST_ELEMENT(self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_src_query));
  gst_pad_set_activatemode_function(self->srcpad,
                                    GST_DEBUG_FUNCPTR(gst_qwen_asr_src_activate_mode));
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

static void gst_qwen_asr_class_init(GstQwenAsrClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_qwen_asr_debug, "qwenasr", 0, "Qwen3-ASR-Flash-Realtime captions");

  gobject_class->set_property = gst_qwen_asr_set_property;
  gobject_class->get_property = gst_qwen_asr_get_property;
  gobject_class->finalize = gst_qwen_asr_finalize;

  const GParamFlags playing = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                       GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Time (ms) a transcript may take after its audio; added to the pipeline "
                        "latency when upstream is live",
                        0, G_MAXUINT / 2, DEFAULT_LATENCY_MS, playing));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY_LATENESS,
      g_param_spec_uint("lateness", "Lateness",
                        "Shift (ms) of the output running times: trades synchronisation for "
                        "latency",
                        0, G_MAXUINT / 2, DEFAULT_LATENESS_MS, playing));
  g_object_class_install_property(
      gobject_class, PROP_MIN_DURATION,
      g_param_spec_uint("min-duration", "Minimum duration",
                        "Shortest time (ms) a final caption stays up, so it can be read", 0, 60000,
                        DEFAULT_MIN_DURATION_MS, playing));
  g_object_class_install_property(
      gobject_class, PROP_PARTIAL_RESULTS,
      g_param_spec_boolean("partial-results", "Partial results",
                           "Also output the running preview of each utterance (never "
                           "overlapping, never going back in time)",
                           FALSE, playing));
  g_object_class_install_property(
      gobject_class, PROP_MAX_LINE_LENGTH,
      g_param_spec_uint("max-line-length", "Maximum line length",
                        "Characters (as a viewer counts them) on a caption line; 0 = by script: "
                        "42 for spaced scripts, 16 for Chinese, Japanese and Korean (Netflix "
                        "style guides). 1 to 7 are refused",
                        0, MAX_MAX_LINE_LENGTH, DEFAULT_MAX_LINE_LENGTH, playing));
  g_object_class_install_property(
      gobject_class, PROP_MAX_LINES,
      g_param_spec_uint("max-lines", "Maximum lines",
                        "Lines on one caption; longer transcripts become consecutive captions", 1,
                        MAX_MAX_LINES, DEFAULT_MAX_LINES, playing));
  g_object_class_install_property(
      gobject_class, PROP_CAPTION_MODE,
      g_param_spec_enum("caption-mode", "Caption mode",
                        "pop-on: readable blocks from final transcripts; roll-up: the words the "
                        "service has confirmed, as they come, in a scrolling window (lower "
                        "delay; each buffer is the whole window)",
                        gst_qwen_asr_caption_mode_get_type(), GST_QWEN_ASR_CAPTION_POP_ON,
                        playing));
  g_object_class_install_property(
      gobject_class, PROP_ROLL_UP_LINES,
      g_param_spec_uint("roll-up-lines", "Roll-up lines",
                        "Lines of the roll-up window (CEA-608 roll-up: 2 to 4)", 1, MAX_MAX_LINES,
                        DEFAULT_ROLL_UP_LINES, playing));
  g_object_class_install_property(
      gobject_class, PROP_MAX_OBSERVED_DELAY,
      g_param_spec_uint("max-observed-delay", "Maximum observed delay",
                        "Largest delay (ms) seen between audio and its final transcript", 0,
                        G_MAXUINT, 0,
                        static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_STATS, qwenasr::stats_param_spec());
  gst_type_mark_as_plugin_api(gst_qwen_asr_caption_mode_get_type(),
                              static_cast<GstPluginAPIFlags>(0));
  qwenasr::settings_install_properties(gobject_class, PROP_SHARED_FIRST);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Qwen realtime speech recognition captions", "Audio/Text/Filter",
      "Transcribes audio with Alibaba Cloud Qwen3-ASR-Flash-Realtime into timed text captions",
      "qwenasr developers");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_qwen_asr_change_state);
  element_class->send_event = GST_DEBUG_FUNCPTR(gst_qwen_asr_send_event);
}
