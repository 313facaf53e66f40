/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caption line layout: text broken into lines of a given number of user-perceived characters,
 * at word boundaries (Latin scripts) or between characters (Chinese, Japanese), and lines
 * grouped into screens. No timing: callers decide when each screen shows. */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace qwenasr {

/* Characters a viewer counts in UTF-8 text: a base character with its combining marks,
 * variation selectors and zero-width-joined followers counts once. Invalid UTF-8 counts 0. */
guint perceived_length(const std::string &utf8);

/* Breaks `utf8` (NFC-normalised, runs of white space collapsed) into lines of at most
 * `columns` perceived characters. Breaks go between words; when a line must break, a break
 * after punctuation in its second half is preferred. Chinese and Japanese break between
 * characters but never put closing punctuation (，。！？、」） …) at the start of a line nor
 * opening punctuation (「（ …) at its end. A word longer than a line is cut. */
std::vector<std::string> break_lines(const std::string &utf8, guint columns);

/* Consecutive lines grouped by `rows` (the last group may be shorter). */
std::vector<std::vector<std::string>> group_lines(const std::vector<std::string> &lines,
                                                  guint rows);

} // namespace qwenasr
