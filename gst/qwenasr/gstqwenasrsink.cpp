/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-qwenasrsink
 * @title: qwenasrsink
 *
 * Streams S16LE mono 8 or 16 kHz audio to Alibaba Cloud's Qwen3-ASR-Flash-Realtime service
 * and posts partial and final transcripts as `qwenasr/transcript` element messages, plus
 * `qwenasr/speech-started`, `qwenasr/speech-stopped` and `qwenasr/session`. At EOS it ends
 * the session and waits for the last transcripts, so every final is on the bus before EOS.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=talk.wav ! decodebin ! audioconvert ! audioresample ! \
 *     qwenasrsink language-code=en
 * ]|
 */
#include "gstqwenasrsink.h"

#include <gst/audio/audio.h>

#include <mutex>

#include "capshint.h"
#include "transcribeelement.h"

GST_DEBUG_CATEGORY_STATIC(gst_qwen_asr_sink_debug);
#define GST_CAT_DEFAULT gst_qwen_asr_sink_debug

enum { PROP_0, PROP_STATS, PROP_SHARED_FIRST };

struct GstQwenAsrSinkPrivate {
  /* properties, guarded by the object lock; start() hands a copy to the transcriber */
  qwenasr::Settings settings;
  /* session logic; created in init, used by the streaming and state-change threads, which
   * GstBaseSink serialises (start/stop vs. render/event), plus its own locking */
  qwenasr::Transcriber transcriber;
  /* streaming thread: whether upstream is live, asked once per caps (-1: not yet) */
  int upstream_live = -1;

  explicit GstQwenAsrSinkPrivate(GstElement *element) : transcriber(element) {}
};

struct _GstQwenAsrSink {
  GstBaseSink parent;
  GstQwenAsrSinkPrivate *priv;
};

#define gst_qwen_asr_sink_parent_class parent_class
G_DEFINE_TYPE(GstQwenAsrSink, gst_qwen_asr_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(qwenasrsink, "qwenasrsink", GST_RANK_NONE, GST_TYPE_QWEN_ASR_SINK);

/* A wait interrupted by unlock() may be a flush or PLAYING -> PAUSED; a sink then waits for
 * preroll, which returns FLUSHING for the former and OK once playing again. */
static qwenasr::Transcriber::PauseHandler pause_handler(GstQwenAsrSink *self) {
  return [self]() { return gst_base_sink_wait_preroll(GST_BASE_SINK(self)); };
}

static void gst_qwen_asr_sink_set_property(GObject *object, guint prop_id, const GValue *value,
                                           GParamSpec *pspec) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(object);
  GST_OBJECT_LOCK(self);
  gboolean handled =
      qwenasr::settings_set_property(&self->priv->settings, PROP_SHARED_FIRST, prop_id, value);
  GST_OBJECT_UNLOCK(self);
  if (!handled)
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void gst_qwen_asr_sink_get_property(GObject *object, guint prop_id, GValue *value,
                                           GParamSpec *pspec) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(object);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, self->priv->transcriber.stats());
    return;
  }
  GST_OBJECT_LOCK(self);
  gboolean handled =
      qwenasr::settings_get_property(&self->priv->settings, PROP_SHARED_FIRST, prop_id, value);
  GST_OBJECT_UNLOCK(self);
  if (!handled)
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

/* The settings are taken at READY -> PAUSED, like the other elements' (GstBaseSink's start()
 * runs at NULL -> READY, and properties are documented as changeable in READY). */
static gboolean start_session(GstQwenAsrSink *self) {
  GST_OBJECT_LOCK(self);
  qwenasr::Settings settings = self->priv->settings;
  GST_OBJECT_UNLOCK(self);
  return qwenasr::transcribe_element_start(self->priv->transcriber, settings);
}

static gboolean gst_qwen_asr_sink_stop(GstBaseSink *sink) {
  GST_QWEN_ASR_SINK(sink)->priv->transcriber.stop();
  return TRUE;
}

static gboolean gst_qwen_asr_sink_set_caps(GstBaseSink *sink, GstCaps *caps) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(sink);
  GstAudioInfo info;
  if (!gst_audio_info_from_caps(&info, caps)) {
    GST_WARNING_OBJECT(self, "unusable caps %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, caps);
  self->priv->upstream_live = -1;
  return self->priv->transcriber.set_sample_rate(GST_AUDIO_INFO_RATE(&info), pause_handler(self)) ==
         GST_FLOW_OK;
}

static GstFlowReturn gst_qwen_asr_sink_render(GstBaseSink *sink, GstBuffer *buffer) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(sink);
  GstClockTime stream_time =
      gst_segment_to_stream_time(&sink->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
  if (self->priv->upstream_live < 0) {
    gboolean live = FALSE, upstream_live = FALSE;
    gst_base_sink_query_latency(sink, &live, &upstream_live, nullptr, nullptr);
    self->priv->upstream_live = upstream_live;
  }
  return self->priv->transcriber.push(buffer, stream_time, self->priv->upstream_live > 0,
                                      pause_handler(self));
}

static gboolean gst_qwen_asr_sink_event(GstBaseSink *sink, GstEvent *event) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(sink);
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_EOS:
    /* Hold EOS until the service has delivered the last finals (bounded by finish-timeout);
     * a flush or state change interrupts the wait. */
    if (self->priv->transcriber.drain(pause_handler(self)) == GST_FLOW_FLUSHING) {
      gst_event_unref(event);
      return FALSE;
    }
    break;
  case GST_EVENT_FLUSH_STOP:
    self->priv->transcriber.flush();
    break;
  case GST_EVENT_CUSTOM_DOWNSTREAM:
    if (qwenasr::transcribe_element_take_commit(self->priv->transcriber, event,
                                                pause_handler(self)))
      return TRUE;
    break;
  default:
    break;
  }
  return GST_BASE_SINK_CLASS(parent_class)->event(sink, event);
}

static gboolean gst_qwen_asr_sink_send_event(GstElement *element, GstEvent *event) {
  return qwenasr::transcribe_element_send_event(element, GST_BASE_SINK_PAD(element), event,
                                                GST_ELEMENT_CLASS(parent_class));
}

static gboolean gst_qwen_asr_sink_unlock(GstBaseSink *sink) {
  GST_QWEN_ASR_SINK(sink)->priv->transcriber.set_flushing(true);
  return TRUE;
}

static gboolean gst_qwen_asr_sink_unlock_stop(GstBaseSink *sink) {
  GST_QWEN_ASR_SINK(sink)->priv->transcriber.set_flushing(false);
  return TRUE;
}

static GstStateChangeReturn gst_qwen_asr_sink_change_state(GstElement *element,
                                                           GstStateChange transition) {
  GstQwenAsrSink *self = GST_QWEN_ASR_SINK(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start_session(self))
    return GST_STATE_CHANGE_FAILURE;
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  /* GstBaseSink only stops at READY -> NULL; a retry through READY must start clean too. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
      (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    self->priv->transcriber.stop();
  return ret;
}

static void gst_qwen_asr_sink_finalize(GObject *object) {
  delete GST_QWEN_ASR_SINK(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_qwen_asr_sink_init(GstQwenAsrSink *self) {
  self->priv = new GstQwenAsrSinkPrivate(GST_ELEMENT(self));
  qwenasr::watch_sink_caps(GST_ELEMENT(self), GST_BASE_SINK_PAD(self));
}

static void gst_qwen_asr_sink_class_init(GstQwenAsrSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *base_sink_class = GST_BASE_SINK_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_qwen_asr_sink_debug, "qwenasrsink", 0,
                          "Qwen3-ASR-Flash-Realtime transcription sink");

  gobject_class->set_property = gst_qwen_asr_sink_set_property;
  gobject_class->get_property = gst_qwen_asr_sink_get_property;
  gobject_class->finalize = gst_qwen_asr_sink_finalize;
  qwenasr::transcribe_element_class_init(gobject_class, element_class, PROP_STATS,
                                         PROP_SHARED_FIRST);
  gst_element_class_set_static_metadata(
      element_class, "Qwen realtime speech recognition sink", "Sink/Audio/Analyzer",
      "Streams audio to Alibaba Cloud Qwen3-ASR-Flash-Realtime and posts transcripts as "
      "element messages",
      "qwenasr developers");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_change_state);
  element_class->send_event = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_send_event);

  base_sink_class->stop = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_stop);
  base_sink_class->set_caps = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_set_caps);
  base_sink_class->render = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_render);
  base_sink_class->event = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_event);
  base_sink_class->unlock = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_unlock);
  base_sink_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_qwen_asr_sink_unlock_stop);
}
