/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption timeline: utterances into laid-out, non-drifting caption cues. */
#include "captiontimeline.h"

#include "captionlayout.h"

#include <algorithm>
#include <memory>

namespace qwenasr {

namespace {

/* captions.md §1: Netflix and BBC figures. */
const guint kLatinColumns = 42;
const guint kCjkColumns = 16;
const double kLatinCharsPerSecond = 17.0;
const double kCjkCharsPerSecond = 9.0;
/* BBC: a caption never more than 1.5 s after its speech. */
const GstClockTime kMaxSyncShift = 1500 * GST_MSECOND;

bool is_cjk_char(gunichar c) {
  GUnicodeScript script = g_unichar_get_script(c);
  return script == G_UNICODE_SCRIPT_HAN || script == G_UNICODE_SCRIPT_HIRAGANA ||
         script == G_UNICODE_SCRIPT_KATAKANA || script == G_UNICODE_SCRIPT_HANGUL;
}

std::string join_lines(const std::vector<std::string> &lines) {
  std::string text;
  for (const std::string &line : lines)
    text += (text.empty() ? "" : "\n") + line;
  return text;
}

} // namespace

void DelayStats::add(gint64 ms) {
  max_ = MAX(max_, ms);
  if (values_.size() < capacity)
    values_.push_back(ms);
  else
    values_[next_] = ms;
  next_ = (next_ + 1) % capacity;
}

gint64 DelayStats::percentile(guint p) const {
  if (values_.empty())
    return 0;
  std::vector<gint64> sorted = values_;
  std::sort(sorted.begin(), sorted.end());
  gsize rank = (sorted.size() * MIN(p, 100u) + 99) / 100; /* nearest rank */
  return sorted[rank > 0 ? rank - 1 : 0];
}

std::string escape_markup(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string iso639_language(const std::string &language) {
  std::string code;
  for (char c : language) {
    if (c == '-' || c == '_')
      break;
    if (!g_ascii_isalpha(c))
      return "";
    code += g_ascii_tolower(c);
  }
  static const struct {
    const char *name, *code;
  } kNames[] = {{"chinese", "zh"},  {"mandarin", "zh"}, {"cantonese", "yue"}, {"english", "en"},
                {"japanese", "ja"}, {"korean", "ko"},   {"french", "fr"},     {"german", "de"},
                {"spanish", "es"},  {"italian", "it"},  {"russian", "ru"},    {"portuguese", "pt"},
                {"arabic", "ar"}};
  for (const auto &n : kNames) {
    if (code == n.name)
      return n.code;
  }
  return code.size() == 2 || code.size() == 3 ? code : "";
}

bool is_cjk(const std::string &text, const std::string &language) {
  std::string code = iso639_language(language);
  if (code == "zh" || code == "ja" || code == "ko" || code == "yue")
    return true;
  if (!code.empty() || !g_utf8_validate(text.c_str(), text.size(), nullptr))
    return false;
  guint cjk = 0, letters = 0;
  for (const gchar *p = text.c_str(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (is_cjk_char(c))
      cjk++;
    else if (g_unichar_isalnum(c))
      letters++;
  }
  return cjk > 0 && cjk >= letters;
}

guint line_length_for(const std::string &text, const std::string &language, guint configured) {
  if (configured > 0)
    return configured;
  return is_cjk(text, language) ? kCjkColumns : kLatinColumns;
}

double reading_speed_for(const std::string &text, const std::string &language) {
  return is_cjk(text, language) ? kCjkCharsPerSecond : kLatinCharsPerSecond;
}

void CaptionTimeline::add_final(GstClockTime start, GstClockTime end, const std::string &text,
                                const std::string &language, gint64 deadline,
                                const std::vector<Confirmation> &confirmed) {
  if (!GST_CLOCK_TIME_IS_VALID(start))
    return;
  guint columns = line_length_for(text, language, config_.max_line_length);
  auto screens = group_lines(break_lines(text, columns), MAX(config_.max_lines, 1));
  if (screens.empty())
    return;
  if (screens.size() > 1)
    stats_.captions_split++;
  std::vector<guint> lengths;
  guint64 total = 0;
  for (const auto &screen : screens) {
    guint length = 0;
    for (const std::string &line : screen)
      length += perceived_length(line);
    lengths.push_back(MAX(length, 1));
    total += lengths.back();
  }
  GstClockTime span = GST_CLOCK_TIME_IS_VALID(end) && end > start ? end - start : 0;
  double cps = reading_speed_for(text, language);
  std::string code = iso639_language(language);
  /* Screens spread over the utterance by characters: each starts where its first character
   * falls, or earlier if a partial result had confirmed that character by then (it was
   * spoken no later). */
  bool readable = config_.reading_time;
  std::vector<GstClockTime> starts, reading;
  guint64 before = 0;
  for (gsize i = 0; i < screens.size(); i++) {
    GstClockTime pts = start + gst_util_uint64_scale(span, before, total);
    for (const Confirmation &c : confirmed) {
      if (c.chars > before && GST_CLOCK_TIME_IS_VALID(c.by)) {
        pts = MAX(start, MIN(pts, c.by));
        break;
      }
    }
    reading.push_back(static_cast<GstClockTime>(lengths[i] / cps * GST_SECOND));
    if (i > 0 && readable) {
      /* Reading speed: a screen of the same utterance waits until the one before has been
       * up for its reading time, but at most kMaxSyncShift after its own words and never
       * past the utterance's end, so that only its own utterance's screens move (the next
       * utterance never does: no drift). */
      GstClockTime latest = span > 0 ? MIN(pts + kMaxSyncShift, start + span) : pts;
      pts = MAX(pts, MIN(starts.back() + reading[i - 1], latest));
    }
    starts.push_back(i > 0 ? MAX(pts, starts.back()) : start);
    before += lengths[i];
  }
  for (gsize i = 0; i < screens.size(); i++) {
    GstClockTime pts = starts[i];
    GstClockTime share = (i + 1 < screens.size() ? starts[i + 1] : start + span) - pts;
    /* Up for its share of the speech, at least min-duration and its reading time (a later
     * screen or the next utterance's start ends it sooner: see take()), at most
     * max-duration. */
    GstClockTime wanted = MAX(MAX(share, config_.min_duration), readable ? reading[i] : 0);
    wanted = MIN(wanted, MAX(config_.max_duration, config_.min_duration));
    Cue cue;
    cue.pts = pts;
    cue.text = join_lines(screens[i]);
    cue.language = code;
    cue.speech_start = start;
    cue.final = true;
    cue.first_of_utterance = i == 0;
    pending_.push_back({cue, wanted, reading[i], deadline, i + 1 == screens.size()});
  }
}

void CaptionTimeline::add_partial(GstClockTime start, const std::string &text,
                                  const std::string &language) {
  if (!GST_CLOCK_TIME_IS_VALID(start) || perceived_length(text) == 0)
    return;
  guint columns = line_length_for(text, language, config_.max_line_length);
  std::vector<std::string> lines = break_lines(text, columns);
  /* A preview shows the newest words: the last screenful. */
  guint rows = MAX(config_.max_lines, 1);
  if (lines.size() > rows)
    lines.erase(lines.begin(), lines.end() - rows);
  Cue cue;
  cue.pts = start;
  cue.text = join_lines(lines);
  cue.language = iso639_language(language);
  cue.speech_start = start;
  cue.final = false;
  cue.first_of_utterance = false;
  pending_.push_back({cue, config_.partial_duration, 0, 0, false});
}

void CaptionTimeline::add_window(GstClockTime pts, GstClockTime speech_start,
                                 const std::string &text, const std::string &language) {
  if (!GST_CLOCK_TIME_IS_VALID(pts) || text.empty())
    return;
  bool first = speech_start != last_window_speech_;
  last_window_speech_ = speech_start;
  if (!pending_.empty() && pending_.back().window && pending_.back().cue.pts >= pts) {
    pending_.back().cue.text = text;
    pending_.back().cue.first_of_utterance |= first;
    return;
  }
  Cue cue;
  cue.pts = pts;
  cue.text = text;
  cue.language = iso639_language(language);
  cue.speech_start = speech_start;
  cue.final = false;
  cue.first_of_utterance = first;
  Pending p{cue, config_.max_duration, 0, G_MAXINT64, true};
  p.window = true;
  pending_.push_back(p);
}

void CaptionTimeline::speech_started(GstClockTime start) {
  if (GST_CLOCK_TIME_IS_VALID(start) &&
      (!GST_CLOCK_TIME_IS_VALID(next_speech_) || start > next_speech_))
    next_speech_ = start;
  heard_until(start);
}

void CaptionTimeline::heard_until(GstClockTime time) {
  if (GST_CLOCK_TIME_IS_VALID(time) && (!GST_CLOCK_TIME_IS_VALID(heard_) || time > heard_))
    heard_ = time;
}

GstClockTime CaptionTimeline::hold_point() const {
  return pending_.empty() ? GST_CLOCK_TIME_NONE : pending_.front().cue.pts;
}

std::vector<Cue> CaptionTimeline::take(GstClockTime position, GstClockTime settled, gint64 now,
                                       bool all) {
  std::vector<Cue> out;
  while (!pending_.empty()) {
    const Pending &p = pending_.front();
    /* Where the next caption's speech starts, if known: this one ends there at the latest. */
    GstClockTime next = GST_CLOCK_TIME_NONE;
    for (gsize k = 1; k < pending_.size() && !GST_CLOCK_TIME_IS_VALID(next); k++) {
      /* (Previews of the same utterance follow this one; they do not end it.) */
      if (pending_[k].cue.pts > p.cue.pts)
        next = pending_[k].cue.pts;
    }
    if (!GST_CLOCK_TIME_IS_VALID(next) && !p.window && GST_CLOCK_TIME_IS_VALID(next_speech_) &&
        next_speech_ > p.cue.pts)
      next = next_speech_;
    /* Settled past its end: where it would end, counted from where it will start (a cue the
     * output has passed starts later, and ends at most `wanted` after that). */
    GstClockTime from = GST_CLOCK_TIME_IS_VALID(position) ? MAX(p.cue.pts, position) : p.cue.pts;
    bool release = all || GST_CLOCK_TIME_IS_VALID(next) || !p.last_of_utterance ||
                   (now >= p.deadline && !p.window) ||
                   (GST_CLOCK_TIME_IS_VALID(settled) && settled >= from + p.wanted);
    if (!release && p.window && GST_CLOCK_TIME_IS_VALID(settled) && settled > p.cue.pts &&
        (!GST_CLOCK_TIME_IS_VALID(position) || settled > position)) {
      /* A roll-up window whose successor is not known yet stays up: what is settled of it
       * goes out now, the rest (same text) follows, so it never has to be cut short or made
       * to overlap the next window. */
      Pending rest = p;
      Cue piece = p.cue;
      piece.pts = MAX(piece.pts, GST_CLOCK_TIME_IS_VALID(position) ? position : piece.pts);
      piece.duration = settled - piece.pts;
      rest.cue.pts = settled;
      rest.cue.first_of_utterance = false;
      rest.wanted = p.cue.pts + p.wanted - settled;
      position = settled;
      last_final_ = false;
      last_speech_start_ = piece.speech_start;
      out.push_back(piece);
      pending_.front() = rest;
      break;
    }
    if (!release)
      break;
    Cue cue = p.cue;
    GstClockTime end = cue.pts + p.wanted;
    if (GST_CLOCK_TIME_IS_VALID(next) && next < end)
      end = next;
    if (GST_CLOCK_TIME_IS_VALID(position) && cue.pts < position) {
      /* The output has passed its speech (a final later than the budget, or a caption after
       * a preview): show what is left of it, at least briefly, rather than hold every later
       * caption back by its whole length. */
      GstClockTime shortest = cue.final ? MIN(config_.min_duration, config_.late_duration)
                                        : MIN(config_.partial_duration, p.wanted);
      if (cue.final && shortest == 0)
        shortest = MIN(config_.late_duration, p.wanted);
      if (!cue.final && !p.window && GST_CLOCK_TIME_IS_VALID(next) && next <= position) {
        pending_.pop_front(); /* a preview overtaken by the next utterance: stale */
        continue;
      }
      cue.pts = position;
      end = MAX(end, position + shortest);
      /* Still never into the next utterance when that starts later. */
      if (GST_CLOCK_TIME_IS_VALID(next) && next > position)
        end = MIN(end, next);
      /* After a preview of its own utterance a final is where it belongs. */
      bool after_own_preview = !last_final_ && last_speech_start_ == cue.speech_start;
      if (cue.final && !after_own_preview) {
        cue.late = true;
        stats_.captions_late++;
      }
    }
    cue.duration = end - cue.pts;
    if (cue.final && cue.duration < p.reading)
      stats_.reading_speed_hits++;
    position = end;
    last_final_ = cue.final;
    last_speech_start_ = cue.speech_start;
    out.push_back(cue);
    pending_.pop_front();
  }
  return out;
}

} // namespace qwenasr
