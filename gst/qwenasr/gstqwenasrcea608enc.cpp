/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * SECTION:element-qwenasrcea608enc
 * @title: qwenasrcea608enc
 * @short_description: timed text to CEA-608 closed captions
 *
 * Encodes timed `text/x-raw` (utf8, or pango-markup with the markup stripped) into CEA-608
 * closed captions: one byte pair per video frame at the framerate negotiated downstream
 * (30000/1001 when downstream leaves it open), padding between captions, timestamps counted
 * from a frame index so they never drift. Captions are laid out in 32 columns, broken at
 * words, on the bottom rows, in pop-on (default), roll-up (2, 3 or 4 rows) or paint-on mode,
 * and erased when their duration ends. Pop-on captions are loaded ahead (the output trails
 * the input by 1.5 s, added to the latency) so that each appears at its PTS when the 608
 * bandwidth (about 60 characters a second) allows; otherwise as soon as possible, counted in
 * #GstQwenAsrCea608Enc:stats.
 *
 * Latin scripts only: basic, special and extended Western European characters. Chinese,
 * Japanese, Korean and emoji cannot be carried; each run of them becomes '?' and one warning
 * per stream says so (burn such captions in, or send a subtitle track).
 *
 * The element is driven by text buffers and GAP events and never waits for text: downstream
 * sees a continuous caption stream as far as the input timeline has advanced.
 *
 * ## Example launch line (captions embedded in H.264, as RTMP ingest expects)
 * |[
 * gst-launch-1.0 filesrc location=talk.mp4 ! decodebin name=d \
 *   d. ! queue ! videoconvert ! cccombiner name=c ! x264enc key-int-max=60 ! h264parse ! \
 *     flvmux name=m ! filesink location=captioned.flv \
 *   d. ! queue ! audioconvert ! audioresample ! tee name=t \
 *   t. ! queue ! qwenasr ! qwenasrcea608enc ! ccconverter ! \
 *     closedcaption/x-cea-708,format=cc_data ! c.caption \
 *   t. ! queue ! audioconvert ! avenc_aac ! m.
 * ]|
 */
#include "gstqwenasrcea608enc.h"

#include <memory>
#include <string>

#include "captionlayout.h"
#include "cea608encoder.h"

GST_DEBUG_CATEGORY_STATIC(gst_qwen_asr_cea608_enc_debug);
#define GST_CAT_DEFAULT gst_qwen_asr_cea608_enc_debug

using qwenasr::cea608::Encoder;
using qwenasr::cea608::EncoderStats;
using qwenasr::cea608::Mode;
using qwenasr::cea608::Pair;

/* Pop-on output trails the input by this much, so a caption can be loaded before its PTS. */
static const GstClockTime kPopOnLookahead = 1500 * GST_MSECOND;
/* A caption stays up at least this long once complete. */
static const GstClockTime kMinOnScreen = GST_SECOND;
/* Untimestamped text stays up for its reading time (15 characters/s), at least this long. */
static const GstClockTime kMinUntimedDuration = 2 * GST_SECOND;
/* At EOS, pending captions are sent for at most this long past the input's end. */
static const GstClockTime kMaxDrain = 60 * GST_SECOND;
static const guint kColumns = 32;
/* Padding from the segment start up to the first input is sent only within this much. */
static const GstClockTime kMaxLeadIn = 60 * GST_SECOND;

enum { PROP_0, PROP_MODE, PROP_CHANNEL, PROP_STATS };

#define DEFAULT_MODE Mode::kPopOn
#define DEFAULT_CHANNEL 1

struct GstQwenAsrCea608EncPrivate {
  /* properties, guarded by the object lock */
  Mode mode = DEFAULT_MODE;
  gint channel = DEFAULT_CHANNEL;
  EncoderStats stats;        /* a copy for the stats property, updated by the streaming thread */
  GstClockTime max_late = 0; /* stats.max_late_frames as time */

  /* streaming state, used under the sink pad's stream lock */
  std::unique_ptr<Encoder> encoder; /* created when caps are negotiated */
  Mode active_mode = DEFAULT_MODE;
  bool field2 = false;
  bool s334 = false;                 /* format=s334-1a, else raw */
  qwenasr::cea608::FrameClock clock; /* the negotiated framerate */
  bool markup = false;
  GstSegment segment;
  bool started = false; /* the encoder is placed on the timeline */
  guint64 known = 0;    /* input settled (text or GAP) up to this frame */
  guint64 lookahead = 0;
  bool warned_unsupported = false, warned_untimed = false, warned_dropped = false;
  bool negotiation_failed = false; /* reported once: re-sent caps fail quietly */
};

struct _GstQwenAsrCea608Enc {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstQwenAsrCea608EncPrivate *priv;
};

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("text/x-raw, format=(string){ utf8, pango-markup }"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("closedcaption/x-cea-608, format=(string){ raw, s334-1a }, "
                    "framerate=(fraction)[ 1/2147483647, 2147483647/1 ]"));

#define GST_TYPE_QWEN_ASR_CEA608_MODE (gst_qwen_asr_cea608_mode_get_type())
static GType gst_qwen_asr_cea608_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(Mode::kPopOn), "Pop-on: each caption appears whole", "pop-on"},
      {static_cast<gint>(Mode::kRollUp2), "Roll-up, 2 rows", "roll-up2"},
      {static_cast<gint>(Mode::kRollUp3), "Roll-up, 3 rows", "roll-up3"},
      {static_cast<gint>(Mode::kRollUp4), "Roll-up, 4 rows", "roll-up4"},
      {static_cast<gint>(Mode::kPaintOn), "Paint-on: characters appear as sent", "paint-on"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstQwenAsrCea608Mode", values));
  return type;
}

#define GST_TYPE_QWEN_ASR_CEA608_CHANNEL (gst_qwen_asr_cea608_channel_get_type())
static GType gst_qwen_asr_cea608_channel_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {{1, "CC1: field 1, the one players show by default", "cc1"},
                                      {3, "CC3: field 2 (needs format=s334-1a)", "cc3"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstQwenAsrCea608Channel", values));
  return type;
}

#define gst_qwen_asr_cea608_enc_parent_class parent_class
G_DEFINE_TYPE(GstQwenAsrCea608Enc, gst_qwen_asr_cea608_enc, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE(qwenasrcea608enc, "qwenasrcea608enc", GST_RANK_NONE,
                            GST_TYPE_QWEN_ASR_CEA608_ENC);

/* ---- time and frames ---- */

static guint64 frame_of(GstQwenAsrCea608EncPrivate *priv, GstClockTime t) {
  return priv->clock.frame_at(t);
}

static GstClockTime time_of(GstQwenAsrCea608EncPrivate *priv, guint64 frame) {
  return priv->clock.time_of(frame);
}

/* ---- output ---- */

static gboolean negotiate(GstQwenAsrCea608Enc *self) {
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  if (priv->negotiation_failed)
    return FALSE;
  GST_OBJECT_LOCK(self);
  Mode mode = priv->mode;
  gboolean field2 = priv->channel == 3;
  GST_OBJECT_UNLOCK(self);

  GstCaps *templ = gst_pad_get_pad_template_caps(self->srcpad);
  GstCaps *peer = gst_pad_peer_query_caps(self->srcpad, templ);
  gst_caps_unref(templ);
  /* Raw carries field 1 only; CC3 (field 2) needs s334-1a. Raw is preferred for CC1. */
  GstCaps *wanted = gst_caps_from_string(field2 ? "closedcaption/x-cea-608, format=s334-1a"
                                                : "closedcaption/x-cea-608, format=raw");
  GstCaps *caps = gst_caps_intersect(peer, wanted);
  gst_caps_unref(wanted);
  if (gst_caps_is_empty(caps) && !field2) {
    gst_caps_unref(caps);
    caps = gst_caps_ref(peer);
  }
  gst_caps_unref(peer);
  if (gst_caps_is_empty(caps)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Nothing downstream of qwenasrcea608enc takes closedcaption/x-cea-608 "
                       "with %s: link it to ccconverter, cccombiner or a capsfilter that does.",
                       field2 ? "format=s334-1a (channel cc3 needs it)" : "a framerate"),
                      (nullptr));
    gst_caps_unref(caps);
    priv->negotiation_failed = true;
    return FALSE;
  }
  caps = gst_caps_truncate(caps);
  caps = gst_caps_make_writable(caps);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  gst_structure_fixate_field_nearest_fraction(s, "framerate", 30000, 1001);
  caps = gst_caps_fixate(caps);
  s = gst_caps_get_structure(caps, 0);
  gint fps_n = 0, fps_d = 1;
  if (!gst_structure_get_fraction(s, "framerate", &fps_n, &fps_d) || fps_n <= 0 || fps_d <= 0) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("qwenasrcea608enc needs the video framerate downstream (one byte pair "
                       "per frame): add a capsfilter such as "
                       "closedcaption/x-cea-608,framerate=30000/1001 after it."),
                      ("negotiated %" GST_PTR_FORMAT, caps));
    gst_caps_unref(caps);
    priv->negotiation_failed = true;
    return FALSE;
  }
  priv->clock = {fps_n, fps_d};
  priv->s334 = g_strcmp0(gst_structure_get_string(s, "format"), "s334-1a") == 0;
  priv->field2 = field2;
  priv->active_mode = mode;
  priv->lookahead = mode == Mode::kPopOn ? frame_of(priv, kPopOnLookahead) : 0;
  priv->encoder = std::make_unique<Encoder>(mode, field2, frame_of(priv, kMinOnScreen));
  priv->started = false;
  GST_INFO_OBJECT(self, "output %" GST_PTR_FORMAT, caps);
  gboolean ok = gst_pad_push_event(self->srcpad, gst_event_new_caps(caps));
  gst_caps_unref(caps);
  return ok;
}

/* Places the encoder on the timeline when the first text or GAP (at `t`) arrives: at the start
 * of the segment, so that the caption stream covers the video from its first frame (cccombiner
 * then never waits for captions before they begin), unless that is long before `t`; then
 * early enough to load a pop-on caption that starts at `t`. */
static void ensure_started(GstQwenAsrCea608Enc *self, GstClockTime t) {
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  if (priv->started)
    return;
  guint64 first = frame_of(priv, t);
  first = first > priv->lookahead ? first - priv->lookahead : 0;
  guint64 segment_start = frame_of(priv, priv->segment.start);
  if (t < priv->segment.start + kMaxLeadIn)
    first = segment_start;
  priv->encoder->reset(MAX(first, segment_start));
  priv->known = priv->encoder->frame();
  priv->started = true;
}

static GstBuffer *buffer_for(GstQwenAsrCea608EncPrivate *priv, const Pair &pair, guint64 frame) {
  guint8 data[6];
  gsize size = 0;
  if (!priv->s334) {
    data[size++] = pair.b1;
    data[size++] = pair.b2;
  } else {
    if (priv->field2) {
      /* Field 1 has nothing to say; field 2 carries CC3. */
      data[size++] = 0x80;
      data[size++] = qwenasr::cea608::kPadding.b1;
      data[size++] = qwenasr::cea608::kPadding.b2;
    }
    data[size++] = priv->field2 ? 0x00 : 0x80;
    data[size++] = pair.b1;
    data[size++] = pair.b2;
  }
  GstBuffer *buffer = gst_buffer_new_memdup(data, size);
  GST_BUFFER_PTS(buffer) = time_of(priv, frame);
  GST_BUFFER_DURATION(buffer) = time_of(priv, frame + 1) - GST_BUFFER_PTS(buffer);
  return buffer;
}

/* Sends the pairs of every frame before `target`. */
static GstFlowReturn push_until(GstQwenAsrCea608Enc *self, guint64 target) {
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  GstFlowReturn ret = GST_FLOW_OK;
  while (ret == GST_FLOW_OK && priv->encoder->frame() < target) {
    guint64 frame = priv->encoder->frame();
    Pair pair = priv->encoder->next();
    ret = gst_pad_push(self->srcpad, buffer_for(priv, pair, frame));
  }
  EncoderStats stats = priv->encoder->stats();
  GST_OBJECT_LOCK(self);
  guint64 dropped_before = priv->stats.dropped;
  priv->stats = stats;
  priv->max_late = time_of(priv, stats.max_late_frames);
  GST_OBJECT_UNLOCK(self);
  if (stats.dropped > dropped_before && !priv->warned_dropped) {
    priv->warned_dropped = true;
    GST_ELEMENT_WARNING(self, STREAM, ENCODE,
                        ("Captions come faster than CEA-608 can send them (about 60 characters "
                         "a second): some were skipped. Shorter captions or a roll-up mode "
                         "keep up better."),
                        ("%" G_GUINT64_FORMAT " screens skipped so far", stats.dropped));
  }
  if (priv->encoder->idle())
    priv->warned_dropped = false; /* caught up: a new episode may warn again */
  return ret;
}

static guint64 settled_output(GstQwenAsrCea608EncPrivate *priv) {
  return priv->known > priv->lookahead ? priv->known - priv->lookahead : 0;
}

/* ---- input ---- */

/* Text of a pango-markup buffer: tags dropped, entities decoded. */
static std::string strip_markup(const std::string &in) {
  static const struct {
    const char *name;
    const char *text;
  } kEntities[] = {{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}};
  std::string out;
  for (gsize i = 0; i < in.size(); i++) {
    if (in[i] == '<') {
      gsize close = in.find('>', i);
      if (close == std::string::npos)
        break;
      i = close;
      continue;
    }
    gsize semi = in[i] == '&' ? in.find(';', i) : std::string::npos;
    if (semi != std::string::npos && semi - i <= 10) {
      std::string name = in.substr(i + 1, semi - i - 1);
      const char *text = nullptr;
      for (const auto &e : kEntities) {
        if (name == e.name)
          text = e.text;
      }
      gchar utf8[6];
      if (!text && name.size() > 1 && name[0] == '#') {
        gunichar c = name[1] == 'x' ? g_ascii_strtoull(name.c_str() + 2, nullptr, 16)
                                    : g_ascii_strtoull(name.c_str() + 1, nullptr, 10);
        if (g_unichar_validate(c)) {
          out.append(utf8, g_unichar_to_utf8(c, utf8));
          i = semi;
          continue;
        }
      }
      if (text) {
        out += text;
        i = semi;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

static GstFlowReturn gst_qwen_asr_cea608_enc_chain(GstPad *, GstObject *parent, GstBuffer *buffer) {
  auto self = GST_QWEN_ASR_CEA608_ENC(parent);
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  if (!priv->encoder) {
    gst_buffer_unref(buffer);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref(buffer);
    return GST_FLOW_ERROR;
  }
  std::string text(reinterpret_cast<const char *>(map.data), map.size);
  gst_buffer_unmap(buffer, &map);
  GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstClockTime duration = GST_BUFFER_DURATION(buffer);
  gst_buffer_unref(buffer);
  while (!text.empty() && text.back() == '\0')
    text.pop_back();
  if (priv->markup)
    text = strip_markup(text);

  if (!GST_CLOCK_TIME_IS_VALID(pts)) {
    if (!priv->warned_untimed) {
      priv->warned_untimed = true;
      GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                          ("Text without timestamps reached qwenasrcea608enc: it is shown as "
                           "soon as possible, not in sync with the video."),
                          (nullptr));
    }
    ensure_started(self, priv->segment.start);
    pts = time_of(priv, MAX(priv->known, priv->encoder->frame()));
  }
  ensure_started(self, pts);

  guint replaced = 0;
  std::string shown = qwenasr::cea608::to_repertoire(text, &replaced);
  if (replaced > 0 && !priv->warned_unsupported) {
    priv->warned_unsupported = true;
    GST_ELEMENT_WARNING(self, STREAM, ENCODE,
                        ("CEA-608 carries Latin scripts only: characters such as Chinese, "
                         "Japanese, Korean or emoji are shown as '?'. For such captions burn "
                         "them in (textoverlay) or send them as a subtitle track (srtenc, "
                         "webvttenc, mp4mux, matroskamux)."),
                        ("%u characters replaced in \"%s\"", replaced, text.c_str()));
  }
  std::vector<std::string> lines = qwenasr::break_lines(shown, kColumns);
  guint total = 0;
  for (const std::string &line : lines)
    total += qwenasr::perceived_length(line);
  if (!GST_CLOCK_TIME_IS_VALID(duration))
    duration = MAX(kMinUntimedDuration, gst_util_uint64_scale(total, GST_SECOND, 15));

  /* A caption longer than one screen: screens share its time by their length. */
  guint before = 0;
  for (const auto &rows :
       qwenasr::group_lines(lines, qwenasr::cea608::rows_for(priv->active_mode))) {
    guint length = 0;
    for (const std::string &row : rows)
      length += qwenasr::perceived_length(row);
    GstClockTime start = pts + gst_util_uint64_scale(duration, before, MAX(total, 1u));
    GstClockTime end = pts + gst_util_uint64_scale(duration, before + length, MAX(total, 1u));
    before += length;
    GST_DEBUG_OBJECT(self, "screen %" GST_TIME_FORMAT " - %" GST_TIME_FORMAT ": %s",
                     GST_TIME_ARGS(start), GST_TIME_ARGS(end), rows[0].c_str());
    priv->encoder->add(rows, frame_of(priv, start), frame_of(priv, end));
  }
  priv->known = MAX(priv->known, frame_of(priv, pts));
  return push_until(self, settled_output(priv));
}

/* Sends what is still pending: the input's end, then the queued captions, erased as soon as
 * they are complete (a caption stream that outlasts the video makes cccombiner 1.22 output
 * empty GAP frames, which x264enc refuses). */
static GstFlowReturn drain(GstQwenAsrCea608Enc *self) {
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  if (!priv->encoder || !priv->started)
    return GST_FLOW_OK;
  GstFlowReturn ret = push_until(self, priv->known);
  priv->encoder->end_soon();
  guint64 limit = priv->encoder->frame() + frame_of(priv, kMaxDrain);
  while (ret == GST_FLOW_OK && !priv->encoder->idle() && priv->encoder->frame() < limit)
    ret = push_until(self, priv->encoder->frame() + 1);
  return ret;
}

static gboolean gst_qwen_asr_cea608_enc_sink_event(GstPad *pad, GstObject *parent,
                                                   GstEvent *event) {
  auto self = GST_QWEN_ASR_CEA608_ENC(parent);
  GstQwenAsrCea608EncPrivate *priv = self->priv;
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_STREAM_START:
    priv->warned_unsupported = priv->warned_untimed = priv->warned_dropped = false;
    break;
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    const gchar *format = gst_structure_get_string(gst_caps_get_structure(caps, 0), "format");
    priv->markup = g_strcmp0(format, "pango-markup") == 0;
    gst_event_unref(event);
    return priv->encoder ? TRUE : negotiate(self);
  }
  case GST_EVENT_SEGMENT: {
    const GstSegment *segment;
    gst_event_parse_segment(event, &segment);
    if (segment->format != GST_FORMAT_TIME) {
      GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                        ("qwenasrcea608enc needs timed text (a TIME segment)."),
                        ("got a %s segment", gst_format_get_name(segment->format)));
      gst_event_unref(event);
      return FALSE;
    }
    gst_segment_copy_into(segment, &priv->segment);
    break;
  }
  case GST_EVENT_GAP: {
    GstClockTime timestamp, duration;
    gst_event_parse_gap(event, &timestamp, &duration);
    gst_event_unref(event);
    if (!priv->encoder || !GST_CLOCK_TIME_IS_VALID(timestamp))
      return TRUE;
    ensure_started(self, timestamp);
    GstClockTime end = timestamp + (GST_CLOCK_TIME_IS_VALID(duration) ? duration : 0);
    priv->known = MAX(priv->known, frame_of(priv, end));
    return push_until(self, settled_output(priv)) == GST_FLOW_OK;
  }
  case GST_EVENT_EOS:
    drain(self);
    break;
  case GST_EVENT_FLUSH_STOP:
    priv->started = false;
    priv->known = 0;
    break;
  default:
    break;
  }
  return gst_pad_event_default(pad, parent, event);
}

static gboolean gst_qwen_asr_cea608_enc_src_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  auto self = GST_QWEN_ASR_CEA608_ENC(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    if (!gst_pad_peer_query(self->sinkpad, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(query, &live, &min, &max);
    GST_OBJECT_LOCK(self);
    GstClockTime ours = self->priv->mode == Mode::kPopOn ? kPopOnLookahead : 0;
    GST_OBJECT_UNLOCK(self);
    gst_query_set_latency(query, live, min + ours,
                          GST_CLOCK_TIME_IS_VALID(max) ? max + ours : GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

/* ---- GObject ---- */

static void gst_qwen_asr_cea608_enc_set_property(GObject *object, guint prop_id,
                                                 const GValue *value, GParamSpec *pspec) {
  auto self = GST_QWEN_ASR_CEA608_ENC(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_MODE:
    self->priv->mode = static_cast<Mode>(g_value_get_enum(value));
    break;
  case PROP_CHANNEL:
    self->priv->channel = g_value_get_enum(value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_qwen_asr_cea608_enc_get_property(GObject *object, guint prop_id, GValue *value,
                                                 GParamSpec *pspec) {
  auto self = GST_QWEN_ASR_CEA608_ENC(object);
  auto priv = self->priv;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_MODE:
    g_value_set_enum(value, static_cast<gint>(priv->mode));
    break;
  case PROP_CHANNEL:
    g_value_set_enum(value, priv->channel);
    break;
  case PROP_STATS: {
    g_value_take_boxed(value, gst_structure_new("qwenasrcea608enc/stats", "captions", G_TYPE_UINT64,
                                                priv->stats.screens, "late", G_TYPE_UINT64,
                                                priv->stats.late, "dropped", G_TYPE_UINT64,
                                                priv->stats.dropped, "max-late", G_TYPE_UINT64,
                                                priv->max_late, nullptr));
    break;
  }
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_qwen_asr_cea608_enc_change_state(GstElement *element,
                                                                 GstStateChange transition) {
  auto self = GST_QWEN_ASR_CEA608_ENC(element);
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    /* Pads are deactivated: no streaming thread is left. */
    auto priv = self->priv;
    priv->encoder.reset();
    priv->negotiation_failed = false;
    priv->started = false;
    priv->known = 0;
    gst_segment_init(&priv->segment, GST_FORMAT_TIME);
    GST_OBJECT_LOCK(self);
    priv->stats = EncoderStats();
    priv->max_late = 0;
    GST_OBJECT_UNLOCK(self);
  }
  return ret;
}

static void gst_qwen_asr_cea608_enc_finalize(GObject *object) {
  delete GST_QWEN_ASR_CEA608_ENC(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_qwen_asr_cea608_enc_init(GstQwenAsrCea608Enc *self) {
  self->priv = new GstQwenAsrCea608EncPrivate();
  gst_segment_init(&self->priv->segment, GST_FORMAT_TIME);
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_cea608_enc_chain));
  gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_cea608_enc_sink_event));
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_qwen_asr_cea608_enc_src_query));
  gst_pad_use_fixed_caps(self->srcpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

static void gst_qwen_asr_cea608_enc_class_init(GstQwenAsrCea608EncClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_qwen_asr_cea608_enc_debug, "qwenasrcea608enc", 0,
                          "Timed text to CEA-608 closed captions");

  gobject_class->set_property = gst_qwen_asr_cea608_enc_set_property;
  gobject_class->get_property = gst_qwen_asr_cea608_enc_get_property;
  gobject_class->finalize = gst_qwen_asr_cea608_enc_finalize;

  const GParamFlags ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                     GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
                        "How captions appear: whole (pop-on), line by line scrolling up "
                        "(roll-up), or character by character (paint-on)",
                        GST_TYPE_QWEN_ASR_CEA608_MODE, static_cast<gint>(DEFAULT_MODE), ready));
  g_object_class_install_property(gobject_class, PROP_CHANNEL,
                                  g_param_spec_enum("channel", "Channel", "Caption channel",
                                                    GST_TYPE_QWEN_ASR_CEA608_CHANNEL,
                                                    DEFAULT_CHANNEL, ready));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "captions shown, late (after their PTS: the text did not fit the 608 "
                         "bandwidth in time), dropped (skipped to keep up), max-late (ns)",
                         GST_TYPE_STRUCTURE,
                         static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Text to CEA-608 closed captions", "Codec/Encoder/ClosedCaption/Subtitle",
      "Encodes timed text into CEA-608 (line 21) closed captions, one byte pair per video frame "
      "(pop-on, roll-up or paint-on), for captions embedded in H.264 with ccconverter, "
      "cccombiner and x264enc",
      "qwenasr developers");
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_qwen_asr_cea608_enc_change_state);
  gst_type_mark_as_plugin_api(GST_TYPE_QWEN_ASR_CEA608_MODE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_QWEN_ASR_CEA608_CHANNEL, static_cast<GstPluginAPIFlags>(0));
}
