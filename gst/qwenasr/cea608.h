/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CEA-608 at the byte level (47 CFR 15.119, CEA-608-E): odd parity, control codes, preamble
 * address codes, and text in the basic, special and extended Western European character sets,
 * for data channel 1 (CC1 on field 1, CC3 on field 2). */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace qwenasr {
namespace cea608 {

/* One byte pair as transmitted, parity bits included. */
struct Pair {
  guint8 b1, b2;
  bool operator==(const Pair &o) const { return b1 == o.b1 && b2 == o.b2; }
  bool operator!=(const Pair &o) const { return !(*this == o); }
};

/* Sets bit 7 so that the byte has an odd number of ones. */
guint8 with_parity(guint8 seven_bits);
bool parity_ok(guint8 byte);

/* Nothing to say this frame: 0x80 0x80 (two NULs with parity). */
constexpr Pair kPadding = {0x80, 0x80};

/* Miscellaneous control codes (second byte; the first is 0x14 on field 1, 0x15 on field 2). */
enum class Command : guint8 {
  kResumeCaptionLoading = 0x20, /* RCL: pop-on */
  kBackspace = 0x21,
  kDeleteToEndOfRow = 0x24,
  kRollUp2 = 0x25,
  kRollUp3 = 0x26,
  kRollUp4 = 0x27,
  kResumeDirectCaptioning = 0x29,  /* RDC: paint-on */
  kEraseDisplayedMemory = 0x2C,    /* EDM */
  kCarriageReturn = 0x2D,          /* CR */
  kEraseNonDisplayedMemory = 0x2E, /* ENM */
  kEndOfCaption = 0x2F,            /* EOC: swap memories */
};

Pair command(Command c, bool field2);

/* Preamble address code: `row` 1..15, `indent` 0..28 (rounded down to a multiple of 4), white. */
Pair preamble(guint row, guint indent);

/* Tab offset by 1..3 columns. */
Pair tab_offset(guint columns);

/* True for pairs whose first byte (without parity) is 0x10..0x1F: control codes, PACs,
 * special and extended characters. Decoders drop the second of two identical ones in a row,
 * so encoders send them twice. */
bool is_control(const Pair &p);

/* A unit of text on the wire: a pair of basic characters, or a control-like pair (special or
 * extended character) to be sent twice. */
struct Code {
  Pair pair;
  bool control;
};

/* How a character is written. */
enum class Set { kBasic, kSpecial, kExtended, kNone };
struct Glyph {
  Set set = Set::kNone;
  guint8 code = 0;       /* basic: the byte; special/extended: the second byte */
  guint8 first = 0;      /* special/extended: 0x11, 0x12 or 0x13 */
  gunichar fallback = 0; /* extended: the basic character sent first, shown by older decoders */
};
Glyph glyph_of(gunichar c);

/* Reduces UTF-8 text to characters 608 can show: typographic look-alikes are mapped (– to -,
 * … to ..., non-breaking space to space), other accented Latin letters lose the accents 608
 * lacks (ā → a), and each run of anything else (Chinese, Japanese, Korean, emoji, …) becomes
 * one '?'. `replaced` counts the characters that had no 608 form at all. */
std::string to_repertoire(const std::string &utf8, guint *replaced);

/* One row of text (repertoire characters only; others are skipped) as codes. */
std::vector<Code> encode_row(const std::string &utf8);

/* Wire cost of `codes` in frames (control codes are sent twice). */
guint frames_for(const std::vector<Code> &codes);

} // namespace cea608
} // namespace qwenasr
