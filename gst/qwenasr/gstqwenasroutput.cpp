/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr's caption output: turns transcripts into caption buffers, tag events and GAPs through
 * the caption timeline, and runs the task that alone pushes them on the source pad. */
#include "gstqwenasr-private.h"

#include <functional>

#include "captionlayout.h"

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

/* ---- output (streaming thread) ---- */

/* How long after handing audio to the service the text timeline may move past it (`gap`),
 * and after how long an utterance still waiting for its final stops holding it (`overdue`).
 * Live: both are the latency budget, the deadline downstream works to. Not live there is no
 * deadline: GAPs follow what the service has reported on, bounded by the latency budget; but
 * other branches of the pipeline (tee, demuxer) only buffer so much while the text side waits,
 * so once the input stops coming they follow the service's observed hearing delay (`gap`);
 * holding for an open utterance ends at the latency budget, so a long utterance cannot stall
 * the pipeline. */
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
void gst_qwen_asr_output_enqueue(GstQwenAsrPrivate *priv, GstMiniObject *item) {
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
void gst_qwen_asr_output_ensure_caps(GstQwenAsr *self) {
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
  gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_caps(caps)));
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
  gst_qwen_asr_output_enqueue(
      priv, GST_MINI_OBJECT_CAST(gst_event_new_gap(priv->position, until - priv->position)));
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
  /* Roll-up captions come from partial results: a final's delay does not make them late. */
  gboolean rollup = priv->caption_mode == GST_QWEN_ASR_CAPTION_ROLL_UP;
  GST_OBJECT_UNLOCK(self);
  if (priv->upstream_live && !rollup && delay > latency_ms * GST_MSECOND) {
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
    gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(gst_event_new_tag(tags)));
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
  gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(buffer));
}

/* Queues the captions that have arrived, then a GAP up to the point before which no caption
 * can come any more: audio handed to the service longer ago than latency + lateness, and not
 * inside an utterance still waiting for its final (unless that one is overdue: then its
 * caption will be shifted later rather than stall a live pipeline). `drained`: the session is
 * over, so everything up to the end of the input is settled. Under `out_lock`. */
void gst_qwen_asr_output_update(GstQwenAsr *self, gboolean drained) {
  GstQwenAsrPrivate *priv = self->priv;
  gst_qwen_asr_output_ensure_caps(self);
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
  config.reading_time = priv->reading_time;
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
    if (t.final)
      priv->timeline.heard_until(to_pts(self, t.end));
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
  /* The next speech start ends the caption held before it (and, like an utterance's end,
   * tells how far the service has heard). */
  for (const auto &start : starts)
    priv->timeline.speech_started(to_pts(self, start.first));
  if (GST_CLOCK_TIME_IS_VALID(open_now))
    priv->timeline.speech_started(open_now);

  GstClockTime safe = GST_CLOCK_TIME_NONE;
  gint64 now = g_get_monotonic_time();
  /* Not live and draining (EOS, a new segment): the input waits for the service, bounded by
   * finish-timeout, and nothing upstream can wait for our text: only what the service reports
   * moves the text side then, and the drain's end settles the rest. */
  const gboolean hold = !drained && !priv->upstream_live && priv->draining;
  if (drained) {
    safe = to_pts(self, priv->transcriber.input_end_time());
    if (!priv->sent.empty())
      safe =
          GST_CLOCK_TIME_IS_VALID(safe) ? MAX(safe, priv->sent.back().end) : priv->sent.back().end;
  } else {
    /* Live: audio handed over longer ago than the budget. Not live, where captions land must
     * not depend on how fast this machine or the service runs: what the service has reported
     * on (speech starts, utterance ends), and audio handed over longer ago than the budget
     * only as a bound; the observed hearing delay only once the input has stopped coming
     * (something upstream waits for our text). */
    gint64 wall_gap = wait.gap_us;
    if (!priv->upstream_live) {
      safe = priv->timeline.heard();
      /* (Not while the streaming thread is inside this element, handing audio over or
       * draining: the input waits for the service then, not for text.) */
      gboolean input_waits = !priv->draining && priv->push_entered == 0 && !priv->sent.empty() &&
                             now - priv->sent.back().wall > wait.gap_us;
      if (!input_waits)
        wall_gap = wait.overdue_us;
    }
    for (const SentMark &mark : priv->sent) {
      if (hold || mark.wall + wall_gap > now)
        break;
      safe = GST_CLOCK_TIME_IS_VALID(safe) ? MAX(safe, mark.end) : mark.end;
    }
    /* open_now may be the utterance whose final was just taken. Roll-up captions show words
     * from when they were confirmed, never from the utterance start: nothing to hold for. */
    GstClockTime open = rollup ? GST_CLOCK_TIME_NONE : open_now;
    if (GST_CLOCK_TIME_IS_VALID(final_start) && GST_CLOCK_TIME_IS_VALID(open) &&
        open <= final_start)
      open = GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID(open) && GST_CLOCK_TIME_IS_VALID(safe) && open < safe) {
      if (sent_wall_time(priv, open) + wait.overdue_us > now || hold) {
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
  /* (While holding for a drain, a final held for the next speech start has no deadline.) */
  for (const qwenasr::Cue &cue : priv->timeline.take(priv->position, safe, hold ? 0 : now, drained))
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
GstFlowReturn gst_qwen_asr_output_drain(GstQwenAsr *self) {
  GstQwenAsrPrivate *priv = self->priv;
  /* Not live, the input's pause while the session drains does not move the text side on. */
  priv->draining = true;
  GstFlowReturn ret = priv->transcriber.drain(nullptr);
  priv->draining = false;
  if (ret != GST_FLOW_OK)
    return ret;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    gst_qwen_asr_output_update(self, TRUE);
  }
  priv->wake_task();
  return GST_FLOW_OK;
}

/* Forgets all output state; under `out_lock`. */
void gst_qwen_asr_output_reset(GstQwenAsr *self) {
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
void gst_qwen_asr_output_queue_event(GstQwenAsr *self, GstEvent *event) {
  GstQwenAsrPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard(priv->out_lock);
    gst_qwen_asr_output_enqueue(priv, GST_MINI_OBJECT_CAST(event));
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
      gst_qwen_asr_output_update(self, FALSE);
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

gboolean gst_qwen_asr_output_start_task(GstQwenAsr *self) {
  return gst_pad_start_task(self->srcpad, reinterpret_cast<GstTaskFunction>(output_task), self,
                            nullptr);
}

gboolean gst_qwen_asr_src_activate_mode(GstPad *pad, GstObject *parent, GstPadMode mode,
                                        gboolean active) {
  GstQwenAsr *self = GST_QWEN_ASR(parent);
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active)
    return gst_qwen_asr_output_start_task(self);
  self->priv->wake_task();
  gst_pad_pause_task(pad);
  return gst_pad_stop_task(pad);
}
