/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption line layout: perceived-character counting, line breaking and screen grouping. */
#include "captionlayout.h"

#include <memory>

namespace qwenasr {

namespace {

/* A user-perceived character: its UTF-8 bytes and how it may break around it. */
struct Cluster {
  std::string bytes;
  gunichar base = 0;
  bool space_before = false; /* white space preceded it in the input */
};

bool is_extender(gunichar c) {
  return g_unichar_ismark(c) || c == 0x200D /* ZWJ */ || (c >= 0xFE00 && c <= 0xFE0F) ||
         (c >= 0xE0100 && c <= 0xE01EF) || (c >= 0x1F3FB && c <= 0x1F3FF) /* skin tones */;
}

/* Characters between which a line may break without a space (clreq, jlreq). */
bool breaks_between_characters(gunichar c) {
  GUnicodeScript script = g_unichar_get_script(c);
  return script == G_UNICODE_SCRIPT_HAN || script == G_UNICODE_SCRIPT_HIRAGANA ||
         script == G_UNICODE_SCRIPT_KATAKANA || (c >= 0x3000 && c <= 0x303F) ||
         (c >= 0xFF00 && c <= 0xFFEF);
}

/* Closing punctuation: never at the start of a line. */
bool no_line_start(gunichar c) {
  static const gunichar kClosing[] = {0xFF0C, 0x3002, 0xFF01, 0xFF1F, 0x3001, 0xFF1B, 0xFF1A,
                                      0x300D, 0x300F, 0xFF09, 0x3011, 0x300B, 0x3009, 0x3015,
                                      0xFF0E, 0x30FC, 0x2026, 0x3005, 0x309D, 0x309E, 0x30FD,
                                      0x30FE, 0xFF5D, 0xFF3D, 0x201D, 0x2019, 0x3063, 0x3083,
                                      0x3085, 0x3087, 0x30C3, 0x30E3, 0x30E5, 0x30E7};
  for (gunichar k : kClosing) {
    if (c == k)
      return true;
  }
  return c == ',' || c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == ')';
}

/* Opening punctuation: never at the end of a line. */
bool no_line_end(gunichar c) {
  static const gunichar kOpening[] = {0x300C, 0x300E, 0xFF08, 0x3010, 0x300A, 0x3008,
                                      0x3014, 0xFF5B, 0xFF3B, 0x201C, 0x2018};
  for (gunichar k : kOpening) {
    if (c == k)
      return true;
  }
  return c == '(';
}

bool is_break_punctuation(gunichar c) {
  return c == ',' || c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == 0xFF0C ||
         c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0x3001 || c == 0xFF1B || c == 0xFF1A;
}

std::vector<Cluster> clusters_of(const std::string &utf8) {
  std::vector<Cluster> clusters;
  if (!g_utf8_validate(utf8.c_str(), utf8.size(), nullptr))
    return clusters;
  std::unique_ptr<gchar, decltype(&g_free)> nfc(
      g_utf8_normalize(utf8.c_str(), utf8.size(), G_NORMALIZE_NFC), g_free);
  bool pending_space = false, joined = false;
  for (const gchar *p = nfc.get(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    std::string bytes(p, g_utf8_next_char(p) - p);
    if (g_unichar_isspace(c) || c == 0x3000) {
      pending_space = !clusters.empty();
      joined = false;
      continue;
    }
    if (!clusters.empty() && !pending_space && (joined || is_extender(c))) {
      clusters.back().bytes += bytes;
      joined = c == 0x200D;
      continue;
    }
    clusters.push_back({bytes, c, pending_space});
    pending_space = joined = false;
  }
  return clusters;
}

/* A run of clusters that no line break may split. */
struct Word {
  std::string text;
  guint length = 0;
  bool space_before = false;
  bool ends_in_punctuation = false;
};

std::vector<Word> words_of(const std::vector<Cluster> &clusters) {
  std::vector<Word> words;
  for (gsize i = 0; i < clusters.size(); i++) {
    const Cluster &c = clusters[i];
    bool opportunity = i == 0 || c.space_before;
    if (!opportunity) {
      gunichar prev = clusters[i - 1].base;
      opportunity = (breaks_between_characters(prev) || breaks_between_characters(c.base)) &&
                    !no_line_start(c.base) && !no_line_end(prev);
    }
    if (opportunity)
      words.push_back({"", 0, c.space_before, false});
    words.back().text += c.bytes;
    words.back().length++;
    words.back().ends_in_punctuation = is_break_punctuation(c.base);
  }
  return words;
}

/* A word longer than a line, cut into line-sized pieces. */
std::vector<Word> cut(const Word &word, guint columns) {
  std::vector<Word> pieces;
  std::vector<Cluster> clusters = clusters_of(word.text);
  for (gsize i = 0; i < clusters.size(); i++) {
    if (i % columns == 0)
      pieces.push_back({"", 0, i == 0 && word.space_before, false});
    pieces.back().text += clusters[i].bytes;
    pieces.back().length++;
  }
  pieces.back().ends_in_punctuation = word.ends_in_punctuation;
  return pieces;
}

struct Line {
  std::vector<Word> words;
  guint length = 0;

  guint length_with(const Word &w) const {
    return length + (words.empty() ? 0 : (w.space_before ? 1 : 0)) + w.length;
  }
  void add(const Word &w) {
    length = length_with(w);
    words.push_back(w);
  }
  std::string text() const {
    std::string s;
    for (gsize i = 0; i < words.size(); i++)
      s += (i > 0 && words[i].space_before ? " " : "") + words[i].text;
    return s;
  }
};

} // namespace

guint perceived_length(const std::string &utf8) {
  return clusters_of(utf8).size();
}

std::vector<std::string> break_lines(const std::string &utf8, guint columns) {
  std::vector<std::string> out;
  if (columns == 0)
    return out;
  std::vector<Word> words;
  for (const Word &w : words_of(clusters_of(utf8))) {
    if (w.length <= columns) {
      words.push_back(w);
      continue;
    }
    for (const Word &piece : cut(w, columns))
      words.push_back(piece);
  }
  Line line;
  for (const Word &w : words) {
    if (line.words.empty() || line.length_with(w) <= columns) {
      line.add(w);
      continue;
    }
    /* The line is full: break after its last punctuation if that keeps at least half of it,
     * carrying the words after it over. */
    Line kept, carried;
    gsize split = line.words.size();
    for (gsize i = line.words.size() - 1; i > 0; i--) {
      Line head;
      for (gsize j = 0; j < i; j++)
        head.add(line.words[j]);
      if (line.words[i - 1].ends_in_punctuation && head.length * 2 >= columns) {
        split = i;
        break;
      }
    }
    for (gsize j = 0; j < line.words.size(); j++)
      (j < split ? kept : carried).add(line.words[j]);
    if (carried.length_with(w) > columns) {
      /* The carried words and the new one do not fit together: keep the greedy break. */
      kept = line;
      carried = Line();
    }
    out.push_back(kept.text());
    line = carried;
    line.add(w);
  }
  if (!line.words.empty())
    out.push_back(line.text());
  return out;
}

std::vector<std::vector<std::string>> group_lines(const std::vector<std::string> &lines,
                                                  guint rows) {
  std::vector<std::vector<std::string>> screens;
  for (gsize i = 0; i < lines.size(); i++) {
    if (rows == 0 || i % rows == 0)
      screens.emplace_back();
    screens.back().push_back(lines[i]);
  }
  return screens;
}

} // namespace qwenasr
