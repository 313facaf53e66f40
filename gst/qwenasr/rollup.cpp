/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Roll-up captions: confirmed words into a scrolling window, never retracted. */
#include "rollup.h"

#include "captionlayout.h"
#include "captiontimeline.h"

#include <memory>

namespace qwenasr {

namespace {

/* Characters written without spaces between words: each is a word of its own. */
bool is_unspaced(gunichar c) {
  GUnicodeScript script = g_unichar_get_script(c);
  return script == G_UNICODE_SCRIPT_HAN || script == G_UNICODE_SCRIPT_HIRAGANA ||
         script == G_UNICODE_SCRIPT_KATAKANA || (c >= 0x3000 && c <= 0x303F) ||
         (c >= 0xFF00 && c <= 0xFFEF);
}

/* What is compared between what was shown and a later text: case and punctuation aside. */
std::string comparable(const std::string &word) {
  std::unique_ptr<gchar, decltype(&g_free)> folded(g_utf8_casefold(word.c_str(), -1), g_free);
  std::string out;
  for (const gchar *p = folded.get(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_isalnum(c))
      out.append(p, g_utf8_next_char(p) - p);
  }
  return out.empty() ? word : out;
}

/* A space between two pieces of text, unless either side is written without spaces. */
std::string joined(const std::string &before, const std::string &after) {
  if (before.empty() || after.empty())
    return before + after;
  const gchar *last = g_utf8_find_prev_char(before.c_str(), before.c_str() + before.size());
  bool unspaced =
      (last && is_unspaced(g_utf8_get_char(last))) || is_unspaced(g_utf8_get_char(after.c_str()));
  return before + (unspaced ? "" : " ") + after;
}

} // namespace

std::vector<RollUp::Token> RollUp::tokens_of(const std::string &utf8) {
  std::vector<Token> tokens;
  if (!g_utf8_validate(utf8.c_str(), utf8.size(), nullptr))
    return tokens;
  bool space = false, open = false;
  for (const gchar *p = utf8.c_str(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    std::string bytes(p, g_utf8_next_char(p) - p);
    if (g_unichar_isspace(c) || c == 0x3000) {
      space = true;
      open = false;
      continue;
    }
    bool alone = is_unspaced(c) && !g_unichar_ismark(c);
    if (!open || alone ||
        (!tokens.empty() && is_unspaced(g_utf8_get_char(tokens.back().text.c_str())))) {
      if (g_unichar_ismark(c) && !tokens.empty()) {
        tokens.back().text += bytes; /* a combining mark stays with its base */
        continue;
      }
      tokens.push_back({bytes, space && !tokens.empty()});
    } else {
      tokens.back().text += bytes;
    }
    open = !alone;
    space = false;
  }
  return tokens;
}

bool RollUp::update(guint64 utterance, const std::string &confirmed, const std::string &language) {
  if (utterance != utterance_) {
    utterance_ = utterance;
    shown_.clear();
  }
  if (!language.empty())
    language_ = language;
  std::vector<Token> tokens = tokens_of(confirmed);
  gsize same = 0;
  while (same < shown_.size() && same < tokens.size() &&
         (shown_[same].wild || comparable(shown_[same].text) == comparable(tokens[same].text))) {
    shown_[same] = tokens[same];
    same++;
  }
  if (same < shown_.size() && same < tokens.size()) {
    /* Shown words the text no longer has: counted once, then they stand for whatever the
     * text has in their place, and the window continues after them. */
    for (gsize i = same; i < shown_.size(); i++) {
      if (!shown_[i].wild)
        contradicted_++;
      shown_[i].wild = true;
    }
  }
  bool changed = false;
  for (gsize i = shown_.size(); i < tokens.size(); i++) {
    bool first = i == 0;
    if (first || tokens[i].space_before)
      text_ = joined(text_, tokens[i].text);
    else
      text_ += tokens[i].text;
    shown_.push_back(tokens[i]);
    shown_.back().wild = false;
    changed = true;
  }
  /* Keep only what the window can still show. */
  std::vector<std::string> all = lines();
  if (all.size() > 2 * lines_) {
    std::string kept;
    for (gsize i = all.size() - lines_; i < all.size(); i++)
      kept = joined(kept, all[i]);
    text_ = kept;
  }
  return changed;
}

std::vector<std::string> RollUp::lines() const {
  return break_lines(text_, line_length_for(text_, language_, columns_));
}

std::string RollUp::window() const {
  std::vector<std::string> all = lines();
  std::string out;
  for (gsize i = all.size() > lines_ ? all.size() - lines_ : 0; i < all.size(); i++)
    out += (out.empty() ? "" : "\n") + all[i];
  return out;
}

void RollUp::reset() {
  utterance_ = G_MAXUINT64;
  shown_.clear();
  text_.clear();
  language_.clear();
}

} // namespace qwenasr
