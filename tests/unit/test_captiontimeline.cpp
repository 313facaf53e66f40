/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption timeline with synthetic utterances: no drift, holding, stalls, long utterances
 * split into readable screens, language codes. */
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

#include "captionlayout.h"
#include "captiontimeline.h"

using qwenasr::CaptionTimeline;
using qwenasr::Cue;

static const GstClockTime kMs = GST_MSECOND;

/* What a caller does: takes the cues and moves its position past them. */
struct Output {
  GstClockTime position = 0;
  std::vector<Cue> cues;
  void take(CaptionTimeline &timeline, GstClockTime settled, gint64 now, bool all = false) {
    for (const Cue &cue : timeline.take(position, settled, now, all)) {
      fail_unless(cue.pts >= position, "cue goes back in time");
      position = cue.pts + cue.duration;
      cues.push_back(cue);
    }
  }
};

/* Bursts of `length` every `period`, each final arriving `delay` after its burst ends (a
 * service answering after its VAD silence), and the next speech start known from then on. */
static Output bursts(guint count, GstClockTime length, GstClockTime period, GstClockTime delay) {
  CaptionTimeline timeline;
  Output out;
  for (guint i = 0; i < count; i++) {
    GstClockTime start = i * period;
    GstClockTime arrival = start + length + delay;
    /* Speech that started before the final arrived is known. */
    for (guint j = i + 1; j < count && j * period <= arrival; j++)
      timeline.speech_started(j * period);
    timeline.add_final(start, start + length, "burst " + std::to_string(i), "en", G_MAXINT64);
    out.take(timeline, arrival - delay, static_cast<gint64>(arrival / GST_USECOND));
  }
  out.take(timeline, GST_CLOCK_TIME_NONE, G_MAXINT64, true);
  return out;
}

GST_START_TEST(test_min_duration_is_shortened_rather_than_delaying_the_next_caption) {
  /* Five 0.3 s bursts 0.8 s apart (the case): cues at 0, 0.8, 1.6, 2.4, 3.2 s. */
  Output out = bursts(5, 300 * kMs, 800 * kMs, 900 * kMs);
  fail_unless_equals_int(out.cues.size(), 5);
  for (guint i = 0; i < 5; i++) {
    fail_unless_equals_uint64(out.cues[i].pts, i * 800 * kMs);
    fail_unless(!out.cues[i].late);
  }
  for (guint i = 0; i < 4; i++)
    fail_unless_equals_uint64(out.cues[i].duration, 800 * kMs);
  fail_unless_equals_uint64(out.cues[4].duration, GST_SECOND); /* min-duration, nothing next */
}
GST_END_TEST;

GST_START_TEST(test_forty_bursts_stay_within_150_ms_of_their_speech) {
  Output out = bursts(40, 300 * kMs, 800 * kMs, 700 * kMs);
  fail_unless_equals_int(out.cues.size(), 40);
  for (guint i = 0; i < 40; i++) {
    GstClockTime truth = i * 800 * kMs;
    GstClockTime off = out.cues[i].pts > truth ? out.cues[i].pts - truth : truth - out.cues[i].pts;
    fail_unless(off <= 150 * kMs, "cue %u off by %" GST_TIME_FORMAT, i, GST_TIME_ARGS(off));
  }
}
GST_END_TEST;

GST_START_TEST(test_a_final_is_held_until_the_next_start_its_settling_or_its_deadline) {
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(GST_SECOND, 1300 * kMs, "hello", "en", 5000);
  out.take(timeline, 1500 * kMs, 1000);
  fail_unless_equals_int(out.cues.size(), 0);
  fail_unless_equals_uint64(timeline.hold_point(), GST_SECOND);
  /* The next utterance starts 0.5 s later: the caption ends there. */
  timeline.speech_started(1500 * kMs);
  out.take(timeline, 1500 * kMs, 1000);
  fail_unless_equals_int(out.cues.size(), 1);
  fail_unless_equals_uint64(out.cues[0].duration, 500 * kMs);
  fail_unless(!GST_CLOCK_TIME_IS_VALID(timeline.hold_point()));

  /* Nothing can start before its end any more: full min-duration. */
  timeline.add_final(3 * GST_SECOND, 3200 * kMs, "settled", "en", 5000);
  out.take(timeline, 4 * GST_SECOND, 1000);
  fail_unless_equals_int(out.cues.size(), 2);
  fail_unless_equals_uint64(out.cues[1].duration, GST_SECOND);

  /* The deadline passes first: released as it is. */
  timeline.add_final(6 * GST_SECOND, 6200 * kMs, "deadline", "en", 5000);
  out.take(timeline, 6100 * kMs, 4999);
  fail_unless_equals_int(out.cues.size(), 2);
  out.take(timeline, 6100 * kMs, 5000);
  fail_unless_equals_int(out.cues.size(), 3);
  fail_unless_equals_uint64(out.cues[2].pts, 6 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[2].duration, GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_after_a_stall_timing_is_back_on_the_speech_within_one_utterance) {
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(0, 500 * kMs, "one", "en", G_MAXINT64);
  timeline.speech_started(2 * GST_SECOND);
  out.take(timeline, 0, 0);
  /* A stall: the output had to move on past the second utterance (its deadline passed). */
  out.position = 4 * GST_SECOND;
  timeline.add_final(2 * GST_SECOND, 3 * GST_SECOND, "two", "en", G_MAXINT64);
  timeline.speech_started(6 * GST_SECOND);
  out.take(timeline, 0, 0);
  timeline.add_final(6 * GST_SECOND, 7 * GST_SECOND, "three", "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(out.cues.size(), 3);
  fail_unless(out.cues[1].late);
  fail_unless_equals_uint64(out.cues[1].pts, 4 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[1].duration, GST_SECOND);
  fail_unless(!out.cues[2].late);
  fail_unless_equals_uint64(out.cues[2].pts, 6 * GST_SECOND);
  fail_unless_equals_int(timeline.stats().captions_late, 1);
}
GST_END_TEST;

/* The words of all cues, in order, against the words of `text`. */
static void assert_every_word_once_in_order(const std::vector<Cue> &cues, const std::string &text) {
  std::string joined;
  for (const Cue &c : cues)
    joined += (joined.empty() ? "" : " ") + c.text;
  gchar **want = g_strsplit_set(text.c_str(), " \n", -1);
  gchar **got = g_strsplit_set(joined.c_str(), " \n", -1);
  gchar *w = g_strjoinv("", want), *g = g_strjoinv("", got);
  fail_unless_equals_string(g, w);
  g_free(w), g_free(g), g_strfreev(want), g_strfreev(got);
}

static void assert_screens_within(const std::vector<Cue> &cues, guint columns, guint rows,
                                  GstClockTime start, GstClockTime end) {
  GstClockTime prev = 0;
  for (const Cue &c : cues) {
    gchar **lines = g_strsplit(c.text.c_str(), "\n", -1);
    fail_unless(g_strv_length(lines) <= rows, "too many lines: %s", c.text.c_str());
    for (gchar **l = lines; *l; l++)
      fail_unless(qwenasr::perceived_length(*l) <= columns, "line too long: %s", *l);
    g_strfreev(lines);
    fail_unless(c.pts >= start && c.pts <= end + 1500 * kMs, "cue outside its utterance");
    fail_unless(c.pts >= prev, "cues out of order");
    fail_unless(c.duration > 0 && c.duration <= 7 * GST_SECOND, "duration");
    prev = c.pts;
  }
}

GST_START_TEST(test_a_long_latin_utterance_splits_into_two_line_screens_of_42) {
  std::string text;
  for (int i = 0; i < 60; i++)
    text += (i ? " " : "") + std::string(i % 3 ? "word" : "longer") + std::to_string(i);
  text += ".";
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(10 * GST_SECOND, 30 * GST_SECOND, text, "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless(out.cues.size() >= 5, "only %zu cues", out.cues.size());
  assert_screens_within(out.cues, 42, 2, 10 * GST_SECOND, 30 * GST_SECOND);
  assert_every_word_once_in_order(out.cues, text);
  fail_unless_equals_uint64(out.cues[0].pts, 10 * GST_SECOND);
  fail_unless_equals_int(timeline.stats().captions_split, 1);
}
GST_END_TEST;

GST_START_TEST(test_a_long_chinese_utterance_splits_into_lines_of_16) {
  std::string text;
  const char *sentence = "今天天气很好，我们一起去公园散步吧。";
  for (int i = 0; i < 4; i++)
    text += sentence;
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(0, 8 * GST_SECOND, text, "zh", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless(out.cues.size() >= 3, "only %zu cues", out.cues.size());
  assert_screens_within(out.cues, 16, 2, 0, 8 * GST_SECOND);
  std::string joined;
  for (const Cue &c : out.cues) {
    fail_unless_equals_string(c.language.c_str(), "zh");
    for (char ch : c.text) {
      if (ch != '\n')
        joined += ch;
    }
    fail_unless(c.text.rfind("，", 0) != 0 && c.text.rfind("。", 0) != 0,
                "closing punctuation starts a screen");
  }
  fail_unless_equals_string(joined.c_str(), text.c_str());
}
GST_END_TEST;

GST_START_TEST(test_a_10_kB_transcript_splits_cleanly) {
  std::string text;
  while (text.size() < 10000)
    text += "lorem ipsum dolor sit amet, ";
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(0, 600 * GST_SECOND, text, "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  assert_screens_within(out.cues, 42, 2, 0, 600 * GST_SECOND);
  assert_every_word_once_in_order(out.cues, text);
}
GST_END_TEST;

GST_START_TEST(test_an_empty_transcript_adds_nothing) {
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(0, GST_SECOND, "", "en", 0);
  timeline.add_final(0, GST_SECOND, "  \n ", "en", 0);
  timeline.add_partial(0, "", "en");
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(out.cues.size(), 0);
}
GST_END_TEST;

/* A timeline that keeps captions up for their reading time (the element's reading-time=true). */
static void read_captions(CaptionTimeline &timeline, guint max_line_length = 0) {
  qwenasr::TimelineConfig config;
  config.reading_time = true;
  config.max_line_length = max_line_length;
  timeline.set_config(config);
}

/* Time to read `chars` characters at `cps` characters a second. */
static GstClockTime reading_time(guint chars, double cps) {
  return static_cast<GstClockTime>(chars / cps * GST_SECOND);
}

GST_START_TEST(test_a_screen_stays_up_for_its_reading_time_when_the_next_speech_allows) {
  CaptionTimeline timeline;
  read_captions(timeline);
  Output out;
  /* 79 characters (spaces aside) take 4.65 s to read at 17/s; the speech lasts 2 s. */
  std::string text(39, 'a');
  text += " " + std::string(40, 'b');
  timeline.add_final(0, 2 * GST_SECOND, text, "en", G_MAXINT64);
  timeline.speech_started(10 * GST_SECOND);
  out.take(timeline, 0, 0);
  fail_unless_equals_int(out.cues.size(), 1);
  fail_unless_equals_uint64(out.cues[0].duration, reading_time(79, 17));
  /* Held until that much is settled when the next speech is not known yet. */
  timeline.add_final(20 * GST_SECOND, 22 * GST_SECOND, text, "en", G_MAXINT64);
  out.take(timeline, 24 * GST_SECOND, 0);
  fail_unless_equals_int(out.cues.size(), 1);
  out.take(timeline, 20 * GST_SECOND + reading_time(79, 17), 0);
  fail_unless_equals_int(out.cues.size(), 2);
  fail_unless_equals_uint64(out.cues[1].duration, reading_time(79, 17));
  /* Chinese is read at 9 characters a second: 18 of them stay up 2 s after 1 s of speech. */
  timeline.add_final(30 * GST_SECOND, 31 * GST_SECOND, "今天天气很好，我们一起去公园散步吧。", "zh",
                     G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[2].duration, 2 * GST_SECOND);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 0);
  /* Never more than max-duration (7 s): 150 characters on lines of 100 would take 8.8 s. */
  CaptionTimeline wide;
  read_captions(wide, 100);
  Output o2;
  wide.add_final(0, GST_SECOND, std::string(75, 'c') + " " + std::string(75, 'd'), "en",
                 G_MAXINT64);
  o2.take(wide, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(o2.cues[0].duration, 7 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_without_reading_time_a_short_screen_is_only_counted) {
  CaptionTimeline timeline;
  Output out;
  std::string text(39, 'a');
  text += " " + std::string(40, 'b');
  timeline.add_final(0, 2 * GST_SECOND, text, "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[0].duration, 2 * GST_SECOND);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 1);
}
GST_END_TEST;

GST_START_TEST(test_reading_time_never_delays_the_next_utterance) {
  CaptionTimeline timeline;
  read_captions(timeline);
  Output out;
  /* The next speech comes after 3 s: the caption ends there, short of its 4.65 s, and that
   * is counted. */
  std::string text(39, 'a');
  text += " " + std::string(40, 'b');
  timeline.add_final(0, 2 * GST_SECOND, text, "en", G_MAXINT64);
  timeline.speech_started(3 * GST_SECOND);
  out.take(timeline, 0, 0);
  fail_unless_equals_uint64(out.cues[0].duration, 3 * GST_SECOND);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 1);
  /* A fast speaker: two full screens in 2 s. The second waits for the first to be read, but
   * not past its utterance's end, so the next utterance (2.3 s) is still on its speech. */
  std::string screen = std::string(40, 'x') + " " + std::string(40, 'y');
  timeline.add_final(10 * GST_SECOND, 12 * GST_SECOND, screen + " " + screen, "en", G_MAXINT64);
  timeline.speech_started(12300 * kMs);
  timeline.add_final(12300 * kMs, 13 * GST_SECOND, "next", "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(out.cues.size(), 4);
  fail_unless_equals_uint64(out.cues[1].pts, 10 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[2].pts, 12 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[2].duration, 300 * kMs);
  fail_unless_equals_uint64(out.cues[3].pts, 12300 * kMs);
  fail_unless(!out.cues[3].late);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 3);
  /* A short one read in time is not counted. */
  timeline.add_final(20 * GST_SECOND, 21 * GST_SECOND, "Yes.", "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 3);
}
GST_END_TEST;

GST_START_TEST(test_a_screen_waits_for_the_one_before_to_be_read_at_most_1_5_s) {
  /* Two 80-character screens over 10 s; a partial had confirmed the second by 2 s. The
   * first needs 4.71 s to read: the second comes then, not at 2 s... */
  std::string screen = std::string(40, 'a') + " " + std::string(40, 'b');
  CaptionTimeline timeline;
  read_captions(timeline);
  Output out;
  timeline.add_final(0, 10 * GST_SECOND, screen + " " + screen, "en", G_MAXINT64,
                     {{160, 4 * GST_SECOND}});
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[1].pts, reading_time(80, 17));
  /* ...unless that is more than 1.5 s after its words (BBC): then 1.5 s after them. */
  timeline.add_final(20 * GST_SECOND, 30 * GST_SECOND, screen + " " + screen, "en", G_MAXINT64,
                     {{160, 21 * GST_SECOND}});
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[3].pts, 22500 * kMs);
  fail_unless_equals_int(timeline.stats().reading_speed_hits, 1);
}
GST_END_TEST;

GST_START_TEST(test_min_duration_zero_keeps_exact_speech_times) {
  CaptionTimeline timeline;
  qwenasr::TimelineConfig config;
  config.min_duration = 0;
  timeline.set_config(config);
  Output out;
  timeline.add_final(GST_SECOND, 1300 * kMs, "a rather long sentence for the time", "en", 0);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[0].duration, 300 * kMs);
}
GST_END_TEST;

GST_START_TEST(test_a_final_after_its_own_previews_is_not_late) {
  CaptionTimeline timeline;
  Output out;
  timeline.add_partial(0, "hel", "en");
  timeline.add_partial(0, "hello wor", "en");
  out.take(timeline, 0, 0);
  timeline.add_final(0, GST_SECOND, "hello world", "en", 0);
  timeline.speech_started(3 * GST_SECOND);
  out.take(timeline, 0, 0);
  fail_unless_equals_int(out.cues.size(), 3);
  fail_unless_equals_uint64(out.cues[2].pts, 600 * kMs);
  fail_unless(!out.cues[2].late);
  fail_unless_equals_int(timeline.stats().captions_late, 0);
}
GST_END_TEST;

GST_START_TEST(test_languages_become_iso_639_codes) {
  /* Named: the check macro keeps the pointer past a temporary's life. */
  const std::pair<const char *, const char *> cases[] = {
      {"zh", "zh"}, {"Chinese", "zh"}, {"en-US", "en"}, {"", ""}, {"x1", ""}};
  for (const auto &[given, code] : cases) {
    std::string result = qwenasr::iso639_language(given);
    fail_unless_equals_string(result.c_str(), code);
  }
  fail_unless(qwenasr::is_cjk("你好世界", ""));
  fail_unless(!qwenasr::is_cjk("hello", ""));
  fail_unless_equals_int(qwenasr::line_length_for("你好", "", 0), 16);
  fail_unless_equals_int(qwenasr::line_length_for("hello", "", 0), 42);
  fail_unless_equals_int(qwenasr::line_length_for("hello", "", 32), 32);
}
GST_END_TEST;

GST_START_TEST(test_markup_escaping_keeps_the_transcript_literal) {
  const std::string text = "if a < b && c > d then --> <b>bold</b> don't \"quote\"";
  std::string escaped = qwenasr::escape_markup(text);
  fail_unless_equals_string(
      escaped.c_str(),
      "if a &lt; b &amp;&amp; c &gt; d then --&gt; &lt;b&gt;bold&lt;/b&gt; don't \"quote\"");
  /* Nothing left that pango-markup or a WebVTT cue would read as a tag or a timing line. */
  fail_unless(escaped.find('<') == std::string::npos && escaped.find("-->") == std::string::npos);
  /* And a markup parser gives the transcript back. */
  GError *error = nullptr;
  gchar *wrapped = g_strdup_printf("<t>%s</t>", escaped.c_str());
  std::string parsed;
  GMarkupParser parser = {};
  parser.text = [](GMarkupParseContext *, const gchar *t, gsize n, gpointer data, GError **) {
    static_cast<std::string *>(data)->append(t, n);
  };
  GMarkupParseContext *context =
      g_markup_parse_context_new(&parser, G_MARKUP_DEFAULT_FLAGS, &parsed, nullptr);
  fail_unless(g_markup_parse_context_parse(context, wrapped, -1, &error), "%s",
              error ? error->message : "");
  g_markup_parse_context_free(context);
  g_free(wrapped);
  fail_unless_equals_string(parsed.c_str(), text.c_str());
}
GST_END_TEST;

GST_START_TEST(test_screens_start_no_later_than_their_words_were_confirmed) {
  /* Two screens over a 10 s utterance: by characters the second would start at 5 s, but a
   * partial result had confirmed all its characters by 3 s. */
  std::string first(40, 'a'), second(40, 'b');
  std::string text = first + " " + first + " " + second + " " + second;
  CaptionTimeline timeline;
  Output out;
  timeline.add_final(GST_SECOND, 11 * GST_SECOND, text, "en", G_MAXINT64,
                     {{10, 500 * kMs}, {160, 3 * GST_SECOND}});
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(out.cues.size(), 2);
  /* Never before the utterance start, whatever a confirmation says. */
  fail_unless_equals_uint64(out.cues[0].pts, GST_SECOND);
  fail_unless_equals_uint64(out.cues[1].pts, 3 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[0].duration, 2 * GST_SECOND);
  /* Without confirmations: spread by characters. */
  timeline.add_final(20 * GST_SECOND, 30 * GST_SECOND, text, "en", G_MAXINT64);
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_uint64(out.cues[3].pts, 25 * GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_a_caption_moved_later_still_ends_where_the_next_utterance_starts) {
  CaptionTimeline timeline;
  Output out;
  /* Previews of the first utterance took the output to 2.3 s; the next speech is at 3 s. */
  for (int i = 0; i < 6; i++)
    timeline.add_partial(500 * kMs, "preview " + std::to_string(i), "en");
  timeline.add_final(500 * kMs, 1500 * kMs, "final", "en", G_MAXINT64);
  timeline.speech_started(3 * GST_SECOND);
  timeline.add_partial(3 * GST_SECOND, "next", "en");
  out.take(timeline, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_int(out.cues.size(), 8);
  fail_unless_equals_string(out.cues[6].text.c_str(), "final");
  fail_unless_equals_uint64(out.cues[6].pts + out.cues[6].duration, 3 * GST_SECOND);
  fail_unless_equals_uint64(out.cues[7].pts, 3 * GST_SECOND);
  /* A preview the next utterance has overtaken is dropped rather than pushing it later. */
  CaptionTimeline t2;
  Output o2;
  for (int i = 0; i < 12; i++)
    t2.add_partial(0, "p" + std::to_string(i), "en");
  t2.add_partial(GST_SECOND, "next", "en");
  o2.take(t2, GST_CLOCK_TIME_NONE, 0, true);
  fail_unless_equals_string(o2.cues.back().text.c_str(), "next");
  fail_unless_equals_uint64(o2.cues.back().pts, GST_SECOND);
}
GST_END_TEST;

GST_START_TEST(test_what_the_service_has_heard_only_moves_forward) {
  CaptionTimeline timeline;
  fail_if(GST_CLOCK_TIME_IS_VALID(timeline.heard()));
  timeline.speech_started(2 * GST_SECOND);
  fail_unless_equals_uint64(timeline.heard(), 2 * GST_SECOND);
  timeline.heard_until(3 * GST_SECOND); /* its end */
  timeline.speech_started(GST_SECOND);  /* an older report */
  timeline.heard_until(GST_CLOCK_TIME_NONE);
  fail_unless_equals_uint64(timeline.heard(), 3 * GST_SECOND);
  timeline.reset();
  fail_if(GST_CLOCK_TIME_IS_VALID(timeline.heard()));
}
GST_END_TEST;

GST_START_TEST(test_a_final_after_its_previews_waits_for_the_next_speech_past_its_end) {
  /* Previews took the output to 1.8 s; the final (0.5-1.5 s) would end 1 s after that. That
   * the service has heard up to its end (1.5 s) does not release it: the next speech (2.2 s)
   * must end it. */
  CaptionTimeline timeline;
  Output out;
  for (int i = 0; i < 4; i++)
    timeline.add_partial(500 * kMs, "preview " + std::to_string(i), "en");
  timeline.add_final(500 * kMs, 1500 * kMs, "final", "en", G_MAXINT64);
  timeline.heard_until(1500 * kMs);
  out.take(timeline, timeline.heard(), 0);
  fail_unless_equals_int(out.cues.size(), 4);
  timeline.speech_started(2200 * kMs);
  out.take(timeline, timeline.heard(), 0);
  fail_unless_equals_int(out.cues.size(), 5);
  fail_unless_equals_uint64(out.cues[4].pts + out.cues[4].duration, 2200 * kMs);
}
GST_END_TEST;

static Suite *captiontimeline_suite(void) {
  Suite *s = suite_create("captiontimeline");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_min_duration_is_shortened_rather_than_delaying_the_next_caption);
  tcase_add_test(tc, test_forty_bursts_stay_within_150_ms_of_their_speech);
  tcase_add_test(tc, test_a_final_is_held_until_the_next_start_its_settling_or_its_deadline);
  tcase_add_test(tc, test_after_a_stall_timing_is_back_on_the_speech_within_one_utterance);
  tcase_add_test(tc, test_a_long_latin_utterance_splits_into_two_line_screens_of_42);
  tcase_add_test(tc, test_a_long_chinese_utterance_splits_into_lines_of_16);
  tcase_add_test(tc, test_a_10_kB_transcript_splits_cleanly);
  tcase_add_test(tc, test_an_empty_transcript_adds_nothing);
  tcase_add_test(tc, test_a_screen_stays_up_for_its_reading_time_when_the_next_speech_allows);
  tcase_add_test(tc, test_reading_time_never_delays_the_next_utterance);
  tcase_add_test(tc, test_without_reading_time_a_short_screen_is_only_counted);
  tcase_add_test(tc, test_a_screen_waits_for_the_one_before_to_be_read_at_most_1_5_s);
  tcase_add_test(tc, test_min_duration_zero_keeps_exact_speech_times);
  tcase_add_test(tc, test_a_final_after_its_own_previews_is_not_late);
  tcase_add_test(tc, test_languages_become_iso_639_codes);
  tcase_add_test(tc, test_markup_escaping_keeps_the_transcript_literal);
  tcase_add_test(tc, test_screens_start_no_later_than_their_words_were_confirmed);
  tcase_add_test(tc, test_a_caption_moved_later_still_ends_where_the_next_utterance_starts);
  tcase_add_test(tc, test_what_the_service_has_heard_only_moves_forward);
  tcase_add_test(tc, test_a_final_after_its_previews_waits_for_the_next_speech_past_its_end);
  return s;
}

GST_CHECK_MAIN(captiontimeline);
