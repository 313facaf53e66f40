/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-qwenasr
 * @title: qwenasr
 *
 * Transcribes S16LE mono 8 or 16 kHz audio with Alibaba Cloud's Qwen3-ASR-Flash-Realtime and
 * outputs the transcripts as timed `text/x-raw` captions for textoverlay, srtenc, webvttenc,
 * matroskamux or mp4mux. The caption timeline (captiontimeline.h) lays each transcript out in
 * lines (max-line-length, max-lines) and screens spread over its utterance; a caption starts
 * where its speech starts and lasts until the utterance ends (at least min-duration, and with
 * reading-time its reading time, but never into the next utterance). caption-mode=roll-up shows
 * confirmed words as they come instead, with a latency of 1000 ms by default. A tag event names the
 * language. GAP events keep the text timeline moving through silence and while results are pending.
 * The bus messages are those of qwenasrsink.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! decodebin ! audioconvert ! audioresample ! \
 *     qwenasr language-code=en ! srtenc ! filesink location=talk.srt
 * ]|
 */
#include "gstqwenasr-private.h"

#include <gst/audio/audio.h>

#include "capshint.h"
#include "transcribeelement.h"

GST_DEBUG_CATEGORY(gst_qwen_asr_debug);
#define GST_CAT_DEFAULT gst_qwen_asr_debug

enum {
  PROP_0,
  PROP_LATENCY,
  PROP_LATENCY_LATENESS,
  PROP_MIN_DURATION,
  PROP_READING_TIME,
  PROP_PARTIAL_RESULTS,
  PROP_MAX_OBSERVED_DELAY,
  PROP_STATS,
  PROP_MAX_LINE_LENGTH,
  PROP_MAX_LINES,
  PROP_CAPTION_MODE,
  PROP_ROLL_UP_LINES,
  PROP_SHARED_FIRST,
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

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("text/x-raw, format=(string){ utf8, pango-markup }"));

#define gst_qwen_asr_parent_class parent_class
G_DEFINE_TYPE(GstQwenAsr, gst_qwen_asr, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(qwenasr, "qwenasr", GST_RANK_NONE, GST_TYPE_QWEN_ASR);

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

/* A new timeline first queues a GAP at its start, which sinks preroll on: a live pipeline
 * reaches PLAYING at once instead of after the latency budget, when the first real output
 * would come. Not PLAYING, audio goes to the (paid) service only as long as downstream takes
 * output, i.e. until it has prerolled; then it waits for PLAYING, so that nothing is sent that
 * a seek while paused would throw away. Downstream that needs more to preroll (a muxer)
 * returns from its pushes, and audio keeps flowing until it does not. Returns FLUSHING when a
 * flush or shutdown ends the wait. */
static GstFlowReturn wait_for_playing(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  guint64 rounds;
  bool playing;
  {
    std::lock_guard<std::mutex> guard(priv->play_lock);
    playing = priv->playing;
    rounds = priv->task_rounds;
  }
  bool queued = false;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    if (!GST_CLOCK_TIME_IS_VALID(priv->position) && priv->caps_pushed) {
      priv->position = priv->in_segment.start;
      gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_gap(priv->position, 0)));
      queued = true;
    }
  }
  if (queued)
    priv->wake_task();
  if (playing)
    return GST_FLOW_OK;
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
    gst_qwen_asr_output_update(self, FALSE);
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
      gst_qwen_asr_output_update(self, drained);
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
      gst_qwen_asr_output_drain(self);
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
      gst_qwen_asr_output_ensure_caps(self);
      gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(out_event));
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
      gst_qwen_asr_output_update(self, FALSE);
    }
    gst_event_unref(event);
    priv->wake_task();
    return TRUE;
  }
  case GST_EVENT_EOS:
    gst_qwen_asr_output_drain(self);
    {
      std::lock_guard<std::mutex> guard(priv->out_lock);
      priv->eos = TRUE;
    }
    gst_qwen_asr_output_queue_event(self, event);
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
      gst_qwen_asr_output_reset(self);
    }
    priv->transcriber.set_flushing(false);
    set_play_flushing(priv, false);
    gboolean ok = gst_pad_push_event(self->srcpad, event);
    if (GST_PAD_MODE(self->srcpad) == GST_PAD_MODE_PUSH)
      gst_qwen_asr_output_start_task(self);
    return ok;
  }
  case GST_EVENT_CUSTOM_DOWNSTREAM:
    if (qwenasr::transcribe_element_take_commit(priv->transcriber, event, nullptr))
      return TRUE;
    break;
  default:
    break;
  }
  /* Everything else in order with the captions; non-serialized events go straight on. */
  if (GST_EVENT_IS_SERIALIZED(event) && GST_EVENT_IS_DOWNSTREAM(event)) {
    gst_qwen_asr_output_queue_event(self, event);
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

static gboolean gst_qwen_asr_send_event(GstElement *element, GstEvent *event) {
  return qwenasr::transcribe_element_send_event(element, GST_QWEN_ASR(element)->sinkpad, event,
                                                GST_ELEMENT_CLASS(parent_class));
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
    self->priv->latency_set = TRUE;
    post_latency = TRUE;
    break;
  case PROP_LATENCY_LATENESS:
    self->priv->lateness_ms = g_value_get_uint(value);
    post_latency = TRUE;
    break;
  case PROP_MIN_DURATION:
    self->priv->min_duration_ms = g_value_get_uint(value);
    break;
  case PROP_READING_TIME:
    self->priv->reading_time = g_value_get_boolean(value);
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
    if (!self->priv->latency_set) {
      /* Roll-up shows words as they are confirmed: its default latency is sized for that. */
      guint latency = self->priv->caption_mode == GST_QWEN_ASR_CAPTION_ROLL_UP
                          ? DEFAULT_ROLL_UP_LATENCY_MS
                          : DEFAULT_LATENCY_MS;
      post_latency = latency != self->priv->latency_ms;
      self->priv->latency_ms = latency;
    }
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
  case PROP_READING_TIME:
    g_value_set_boolean(value, self->priv->reading_time);
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
      gst_qwen_asr_output_reset(self);
    }
    priv->transcriber.set_order_hold(order_hold);
    set_play_gate(priv, false, false);
    if (!qwenasr::transcribe_element_start(priv->transcriber, settings))
      return GST_STATE_CHANGE_FAILURE;
    break;
  }
  case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
    set_play_gate(priv, true, false);
    break;
  case GST_STATE_CHANGE_PLAYING_TO_PAUSED: {
    set_play_gate(priv, false, false);
    /* A sink that loses its preroll here prerolls again on a GAP where the text is: a live
     * source sends nothing while paused, and the next caption or GAP may be a whole latency
     * budget away, too late for the change back to PLAYING. */
    std::lock_guard<std::mutex> guard(priv->out_lock);
    if (GST_CLOCK_TIME_IS_VALID(priv->position) && !priv->eos) {
      gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_gap(priv->position, 0)));
      priv->wake_task();
    }
    break;
  }
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
    gst_qwen_asr_output_reset(self);
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
  self->sinkpad = gst_pad_new_from_template(
      gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), "sink"), "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_event));
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
                        "latency when upstream is live. Unless set, 8000 for caption-mode=pop-on "
                        "(whole utterances) and 1000 for roll-up (confirmed words)",
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
      gobject_class, PROP_READING_TIME,
      g_param_spec_boolean("reading-time", "Reading time",
                           "Keep each final caption up for its reading time (17 characters/s, 9 "
                           "for CJK) where the next speech allows; a later caption of the same "
                           "utterance waits for it, at most 1.5 s",
                           FALSE, playing));
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
  gst_type_mark_as_plugin_api(gst_qwen_asr_caption_mode_get_type(),
                              static_cast<GstPluginAPIFlags>(0));
  qwenasr::transcribe_element_class_init(gobject_class, element_class, PROP_STATS,
                                         PROP_SHARED_FIRST);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Qwen realtime speech recognition captions", "Audio/Text/Filter",
      "Transcribes audio with Alibaba Cloud Qwen3-ASR-Flash-Realtime into timed text captions",
      "qwenasr developers");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_qwen_asr_change_state);
  element_class->send_event = GST_DEBUG_FUNCPTR(gst_qwen_asr_send_event);
}
