/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Roll-up captions: the words the service has confirmed, appended to a window of a few lines
 * that scrolls up, never taking a word back. Pure: no timing (the caption timeline times the
 * windows). */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace qwenasr {

class RollUp {
public:
  /* `columns` 0 = by script (see line_length_for); `lines` of the window, at least 1. */
  void set_layout(guint columns, guint lines) {
    columns_ = columns;
    lines_ = MAX(lines, 1);
  }

  /* The confirmed text of utterance `utterance` (any key that differs between utterances) is
   * now `confirmed` (a partial's confirmed part, or the final transcript). Words beyond those
   * shown join the window. Where it disagrees with what was shown, nothing is taken back: the
   * disagreeing words shown count as contradicted and the window continues after them.
   * Returns true when the window changed. */
  bool update(guint64 utterance, const std::string &confirmed, const std::string &language);

  /* The window: its last `lines` lines, joined by '\n'. */
  std::string window() const;

  guint64 contradicted() const { return contradicted_; }
  void reset(); /* an empty window; the count stays */
  void reset_stats() { contradicted_ = 0; }

private:
  struct Token {
    std::string text;
    bool space_before;
    bool wild = false; /* shown, then contradicted: stands for whatever comes in its place */
  };
  static std::vector<Token> tokens_of(const std::string &utf8);
  std::vector<std::string> lines() const;

  guint columns_ = 0, lines_ = 2;
  guint64 utterance_ = G_MAXUINT64;
  std::vector<Token> shown_; /* of the current utterance */
  std::string text_;         /* the window's text from the start of its first line */
  std::string language_;
  guint64 contradicted_ = 0;
};

} // namespace qwenasr
