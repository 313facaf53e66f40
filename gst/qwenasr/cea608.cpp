/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CEA-608 byte level: parity, control codes, PACs and the three Western character sets. */
#include "cea608.h"

#include <memory>

namespace qwenasr {
namespace cea608 {

namespace {

/* Basic characters that differ from ASCII (47 CFR 15.119 (k), "Character set table"). */
struct BasicOverride {
  gunichar c;
  guint8 code;
};
/* clang-format off */
const BasicOverride kBasicOverrides[] = {
    {0x00E1, 0x2A} /* á */, {0x00E9, 0x5C} /* é */, {0x00ED, 0x5E} /* í */,
    {0x00F3, 0x5F} /* ó */, {0x00FA, 0x60} /* ú */, {0x00E7, 0x7B} /* ç */,
    {0x00F7, 0x7C} /* ÷ */, {0x00D1, 0x7D} /* Ñ */, {0x00F1, 0x7E} /* ñ */,
    {0x25A0, 0x7F} /* ■ solid block */,
};
/* clang-format on */
/* ASCII characters whose codes the basic set gives to the letters above. */
bool ascii_replaced(gunichar c) {
  return c == '*' || c == '\\' || c == '^' || c == '_' || c == '`' || c == '{' || c == '|' ||
         c == '}' || c == '~';
}

/* Special characters, second byte 0x30 + index after 0x11. Index 9 is the transparent space. */
const gunichar kSpecial[16] = {0x00AE, 0x00B0, 0x00BD, 0x00BF, 0x2122, 0x00A2, 0x00A3, 0x266A,
                               0x00E0, 0,      0x00E8, 0x00E2, 0x00EA, 0x00EE, 0x00F4, 0x00FB};

/* Extended characters, second byte 0x20 + index after 0x12 (Spanish, French, misc.) or 0x13
 * (Portuguese, German, Danish), each with the basic character sent before it. */
struct Extended {
  gunichar c;
  gunichar fallback;
};
const Extended kExtended12[32] = {
    {0x00C1, 'A'},  {0x00C9, 'E'}, {0x00D3, 'O'}, {0x00DA, 'U'},  {0x00DC, 'U'}, {0x00FC, 'u'},
    {0x2018, '\''}, {0x00A1, '!'}, {'*', '\''},   {0x2019, '\''}, {0x2014, '-'}, {0x00A9, 'c'},
    {0x2120, ' '},  {0x2022, '.'}, {0x201C, '"'}, {0x201D, '"'},  {0x00C0, 'A'}, {0x00C2, 'A'},
    {0x00C7, 'C'},  {0x00C8, 'E'}, {0x00CA, 'E'}, {0x00CB, 'E'},  {0x00EB, 'e'}, {0x00CE, 'I'},
    {0x00CF, 'I'},  {0x00EF, 'i'}, {0x00D4, 'O'}, {0x00D9, 'U'},  {0x00F9, 'u'}, {0x00DB, 'U'},
    {0x00AB, '"'},  {0x00BB, '"'},
};
const Extended kExtended13[32] = {
    {0x00C3, 'A'}, {0x00E3, 'a'}, {0x00CD, 'I'}, {0x00CC, 'I'}, {0x00EC, 'i'}, {0x00D2, 'O'},
    {0x00F2, 'o'}, {0x00D5, 'O'}, {0x00F5, 'o'}, {'{', '('},    {'}', ')'},    {'\\', '/'},
    {'^', '\''},   {'_', '-'},    {'|', '!'},    {'~', '-'},    {0x00C4, 'A'}, {0x00E4, 'a'},
    {0x00D6, 'O'}, {0x00F6, 'o'}, {0x00DF, 's'}, {0x00A5, 'Y'}, {0x00A4, 'o'}, {0x00A6, '!'},
    {0x00C5, 'A'}, {0x00E5, 'a'}, {0x00D8, 'O'}, {0x00F8, 'o'}, {0x250C, '+'}, {0x2510, '+'},
    {0x2514, '+'}, {0x2518, '+'},
};

/* Look-alikes 608 lacks, written with what it has. */
struct LookAlike {
  gunichar c;
  const char *as;
};
/* clang-format off */
const LookAlike kLookAlikes[] = {
    {0x2013, "-"}, {0x2010, "-"}, {0x2212, "-"},     /* dashes and minus */
    {0x2026, "..."},                                  /* ellipsis */
    {0x00A0, " "}, {0x202F, " "}, {0x2009, " "},     /* narrow and no-break spaces */
    {0x2019, "'"},  /* ’: the basic apostrophe costs half as much */
    {0x00B4, "'"}, {0x201E, "\""}, {0x2032, "'"}, {0x2033, "\""}, {'`', "'"},
    {0x00D7, "x"},                                    /* × */
    /* Latin letters without a decomposition */
    {0x0141, "L"}, {0x0142, "l"}, {0x0110, "D"}, {0x0111, "d"}, {0x00C6, "AE"},
    {0x00E6, "ae"}, {0x0152, "OE"}, {0x0153, "oe"}, {0x0131, "i"}, {0x00D0, "D"},
    {0x00F0, "d"}, {0x00DE, "Th"}, {0x00FE, "th"}, {0x0127, "h"},
};
/* clang-format on */

} // namespace

guint8 with_parity(guint8 seven_bits) {
  guint8 b = seven_bits & 0x7F;
  guint ones = 0;
  for (guint8 v = b; v; v >>= 1)
    ones += v & 1;
  return ones % 2 ? b : b | 0x80;
}

bool parity_ok(guint8 byte) {
  guint ones = 0;
  for (guint8 v = byte; v; v >>= 1)
    ones += v & 1;
  return ones % 2 == 1;
}

Pair command(Command c, bool field2) {
  return {with_parity(field2 ? 0x15 : 0x14), with_parity(static_cast<guint8>(c))};
}

Pair preamble(guint row, guint indent) {
  /* First byte and the high half (0x40 or 0x60) of the second, rows 1..15. */
  static const guint8 kFirst[15] = {0x11, 0x11, 0x12, 0x12, 0x15, 0x15, 0x16, 0x16,
                                    0x17, 0x17, 0x10, 0x13, 0x13, 0x14, 0x14};
  static const guint8 kSecond[15] = {0x40, 0x60, 0x40, 0x60, 0x40, 0x60, 0x40, 0x60,
                                     0x40, 0x60, 0x40, 0x40, 0x60, 0x40, 0x60};
  row = CLAMP(row, 1u, 15u);
  guint8 low = indent >= 4 ? 0x10 | ((MIN(indent, 28u) / 4) << 1) : 0x00;
  return {with_parity(kFirst[row - 1]), with_parity(kSecond[row - 1] | low)};
}

Pair tab_offset(guint columns) {
  return {with_parity(0x17), with_parity(0x20 + CLAMP(columns, 1u, 3u))};
}

bool is_control(const Pair &p) {
  guint8 b = p.b1 & 0x7F;
  return b >= 0x10 && b <= 0x1F;
}

Glyph glyph_of(gunichar c) {
  Glyph g;
  for (const BasicOverride &o : kBasicOverrides) {
    if (o.c == c) {
      g.set = Set::kBasic;
      g.code = o.code;
      return g;
    }
  }
  if (c >= 0x20 && c < 0x7F && !ascii_replaced(c)) {
    g.set = Set::kBasic;
    g.code = static_cast<guint8>(c);
    return g;
  }
  for (guint i = 0; i < 16; i++) {
    if (kSpecial[i] && kSpecial[i] == c) {
      g.set = Set::kSpecial;
      g.first = 0x11;
      g.code = 0x30 + i;
      return g;
    }
  }
  for (guint i = 0; i < 32; i++) {
    const Extended *e = kExtended12[i].c == c   ? &kExtended12[i]
                        : kExtended13[i].c == c ? &kExtended13[i]
                                                : nullptr;
    if (e) {
      g.set = Set::kExtended;
      g.first = e == &kExtended12[i] ? 0x12 : 0x13;
      g.code = 0x20 + i;
      g.fallback = e->fallback;
      return g;
    }
  }
  return g;
}

std::string to_repertoire(const std::string &utf8, guint *replaced) {
  guint count = 0;
  std::string out;
  if (!g_utf8_validate(utf8.c_str(), utf8.size(), nullptr)) {
    if (replaced)
      *replaced = utf8.empty() ? 0 : 1;
    return utf8.empty() ? "" : "?";
  }
  std::unique_ptr<gchar, decltype(&g_free)> nfc(
      g_utf8_normalize(utf8.c_str(), utf8.size(), G_NORMALIZE_NFC), g_free);
  bool in_unknown_run = false;
  for (const gchar *p = nfc.get(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    const char *look_alike = nullptr;
    for (const LookAlike &l : kLookAlikes) {
      if (l.c == c)
        look_alike = l.as;
    }
    if (look_alike) {
      out += look_alike;
      in_unknown_run = false;
      continue;
    }
    if (g_unichar_isspace(c) || glyph_of(c).set != Set::kNone) {
      out.append(p, g_utf8_next_char(p) - p);
      in_unknown_run = false;
      continue;
    }
    /* A Latin letter with an accent 608 lacks: its base letter. */
    gunichar decomposed[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
    gsize n = g_unichar_fully_decompose(c, FALSE, decomposed, G_N_ELEMENTS(decomposed));
    if (g_unichar_get_script(c) == G_UNICODE_SCRIPT_LATIN && n > 1 &&
        glyph_of(decomposed[0]).set == Set::kBasic) {
      gchar base[6];
      out.append(base, g_unichar_to_utf8(decomposed[0], base));
      in_unknown_run = false;
      continue;
    }
    if (g_unichar_ismark(c) || g_unichar_iscntrl(c) || c == 0x200D || (c >= 0xFE00 && c <= 0xFE0F))
      continue; /* belongs to the character before it */
    count++;
    if (!in_unknown_run)
      out += '?';
    in_unknown_run = true;
  }
  if (replaced)
    *replaced = count;
  return out;
}

std::vector<Code> encode_row(const std::string &utf8) {
  std::vector<Code> codes;
  int pending = -1; /* a basic byte waiting for its partner */
  auto basic = [&](guint8 b) {
    if (pending < 0) {
      pending = b;
      return;
    }
    codes.push_back({{with_parity(pending), with_parity(b)}, false});
    pending = -1;
  };
  auto flush = [&]() {
    if (pending >= 0)
      codes.push_back({{with_parity(pending), with_parity(0)}, false});
    pending = -1;
  };
  if (!g_utf8_validate(utf8.c_str(), utf8.size(), nullptr))
    return codes;
  for (const gchar *p = utf8.c_str(); *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    Glyph g = glyph_of(g_unichar_isspace(c) ? ' ' : c);
    switch (g.set) {
    case Set::kBasic:
      basic(g.code);
      break;
    case Set::kSpecial:
      flush();
      codes.push_back({{with_parity(g.first), with_parity(g.code)}, true});
      break;
    case Set::kExtended:
      basic(static_cast<guint8>(glyph_of(g.fallback).code));
      flush();
      codes.push_back({{with_parity(g.first), with_parity(g.code)}, true});
      break;
    case Set::kNone:
      break;
    }
  }
  flush();
  return codes;
}

guint frames_for(const std::vector<Code> &codes) {
  guint frames = 0;
  for (const Code &c : codes)
    frames += c.control ? 2 : 1;
  return frames;
}

} // namespace cea608
} // namespace qwenasr
