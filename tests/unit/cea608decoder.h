/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small CEA-608 decoder for tests (data channel 1, field 1 or 2): what a viewer's screen
 * shows after each byte pair, written from 47 CFR 15.119 independently of the encoder. */
#pragma once

#include <glib.h>

#include <array>
#include <string>

class TestDecoder {
public:
  /* Feeds one pair as transmitted; returns false when a byte fails the parity check. */
  bool feed(guint8 b1, guint8 b2) {
    if (!odd(b1) || !odd(b2))
      return false;
    b1 &= 0x7F;
    b2 &= 0x7F;
    if (b1 >= 0x10 && b1 <= 0x1F) {
      bool repeat = b1 == last1_ && b2 == last2_;
      last1_ = b1;
      last2_ = b2;
      if (!repeat)
        control(b1, b2);
      else
        last1_ = last2_ = 0; /* a third one would count again */
      return true;
    }
    last1_ = last2_ = 0;
    if (b1 == 0)
      return true; /* padding */
    write(basic(b1));
    if (b2)
      write(basic(b2));
    return true;
  }

  /* The displayed memory, rows top to bottom joined by '\n', each stripped of spaces. */
  std::string shown() const { return render(displayed_); }
  int mode() const { return mode_; }
  guint commands = 0; /* control codes executed (repeats not counted) */

  enum { kPopOn, kRollUp, kPaintOn };

private:
  using Memory = std::array<std::array<gunichar, 32>, 15>;

  static bool odd(guint8 b) {
    int ones = 0;
    for (; b; b >>= 1)
      ones += b & 1;
    return ones % 2 == 1;
  }

  static gunichar basic(guint8 c) {
    switch (c) {
    case 0x2A:
      return 0xE1; /* á */
    case 0x5C:
      return 0xE9; /* é */
    case 0x5E:
      return 0xED; /* í */
    case 0x5F:
      return 0xF3; /* ó */
    case 0x60:
      return 0xFA; /* ú */
    case 0x7B:
      return 0xE7; /* ç */
    case 0x7C:
      return 0xF7; /* ÷ */
    case 0x7D:
      return 0xD1; /* Ñ */
    case 0x7E:
      return 0xF1; /* ñ */
    case 0x7F:
      return 0x25A0;
    default:
      return c;
    }
  }

  Memory &target() { return mode_ == kPopOn ? nondisplayed_ : displayed_; }

  void write(gunichar c) {
    if (col_ < 32)
      target()[row_][col_++] = c;
  }

  void control(guint8 b1, guint8 b2) {
    commands++;
    static const char *kSpecial = "®°½¿™¢£♪à èâêîôû";
    static const char *kExt12 = "ÁÉÓÚÜü‘¡*’—©℠•“”ÀÂÇÈÊËëÎÏïÔÙùÛ«»";
    static const char *kExt13 = "ÃãÍÌìÒòÕõ{}\\^_|~ÄäÖöß¥¤¦ÅåØø┌┐└┘";
    if ((b1 == 0x14 || b1 == 0x15) && b2 >= 0x20 && b2 <= 0x2F) {
      command(b2);
    } else if (b1 == 0x11 && b2 >= 0x30 && b2 <= 0x3F) {
      write(g_utf8_get_char(g_utf8_offset_to_pointer(kSpecial, b2 - 0x30)));
    } else if ((b1 == 0x12 || b1 == 0x13) && b2 >= 0x20 && b2 <= 0x3F) {
      if (col_ > 0)
        col_--;
      write(g_utf8_get_char(g_utf8_offset_to_pointer(b1 == 0x12 ? kExt12 : kExt13, b2 - 0x20)));
    } else if (b1 == 0x17 && b2 >= 0x21 && b2 <= 0x23) {
      col_ = MIN(col_ + (b2 - 0x20), 31);
    } else if (b2 >= 0x40) {
      static const int kRows[16] = {11, -1, 1, 2, 3, 4, 12, 13, 14, 15, 5, 6, 7, 8, 9, 10};
      int row = kRows[((b1 & 0x07) << 1) | ((b2 >> 5) & 1)];
      if (row > 0) {
        row_ = row - 1;
        col_ = (b2 & 0x10) ? ((b2 & 0x0E) >> 1) * 4 : 0;
      }
    }
  }

  void command(guint8 c) {
    switch (c) {
    case 0x20:
      mode_ = kPopOn;
      break;
    case 0x25:
    case 0x26:
    case 0x27:
      if (mode_ != kRollUp)
        displayed_ = Memory{};
      mode_ = kRollUp;
      window_ = c - 0x23;
      break;
    case 0x29:
      mode_ = kPaintOn;
      break;
    case 0x2C:
      displayed_ = Memory{};
      break;
    case 0x2E:
      nondisplayed_ = Memory{};
      break;
    case 0x2F:
      std::swap(displayed_, nondisplayed_);
      break;
    case 0x2D:
      if (mode_ == kRollUp) {
        for (int r = row_ - window_ + 1; r < row_; r++) {
          if (r >= 0)
            displayed_[r] = displayed_[r + 1];
        }
        if (row_ - window_ + 1 > 0)
          displayed_[row_ - window_] = {};
        displayed_[row_] = {};
      }
      col_ = 0;
      break;
    default:
      break;
    }
  }

  static std::string render(const Memory &m) {
    std::string out;
    for (const auto &row : m) {
      std::string line;
      for (gunichar c : row) {
        gchar buf[6];
        line.append(buf, c ? g_unichar_to_utf8(c, buf) : (buf[0] = ' ', 1));
      }
      gsize a = line.find_first_not_of(' '), b = line.find_last_not_of(' ');
      if (a == std::string::npos)
        continue;
      out += (out.empty() ? "" : "\n") + line.substr(a, b - a + 1);
    }
    return out;
  }

  Memory displayed_{}, nondisplayed_{};
  int mode_ = kPopOn;
  int row_ = 14, col_ = 0, window_ = 2;
  guint8 last1_ = 0, last2_ = 0;
};
