/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CEA-608 caption state machine: what to send in each frame, in each mode. */
#include "cea608encoder.h"

namespace qwenasr {
namespace cea608 {

namespace {

constexpr guint kColumns = 32;
constexpr guint kBottomRow = 15;

/* Centred as far as PAC indents (multiples of 4) allow. */
guint indent_for(const std::string &row) {
  glong length = g_utf8_strlen(row.c_str(), -1);
  guint free_columns = length < static_cast<glong>(kColumns) ? kColumns - length : 0;
  return (free_columns / 2) & ~3u;
}

Command roll_up_command(Mode mode) {
  switch (mode) {
  case Mode::kRollUp3:
    return Command::kRollUp3;
  case Mode::kRollUp4:
    return Command::kRollUp4;
  default:
    return Command::kRollUp2;
  }
}

bool is_roll_up(Mode mode) {
  return mode == Mode::kRollUp2 || mode == Mode::kRollUp3 || mode == Mode::kRollUp4;
}

} // namespace

guint rows_for(Mode mode) {
  switch (mode) {
  case Mode::kRollUp3:
    return 3;
  case Mode::kRollUp4:
    return 4;
  default:
    return 2;
  }
}

Encoder::Encoder(Mode mode, bool field2, guint min_frames)
    : mode_(mode), field2_(field2), min_frames_(min_frames) {}

void Encoder::add(const std::vector<std::string> &rows, guint64 show, guint64 end) {
  queue_.push_back({rows, show, MAX(end, show + 1)});
}

std::vector<Code> Encoder::sequence_for(const Screen &s) const {
  std::vector<Code> codes;
  auto control = [&](Command c) { codes.push_back({command(c, field2_), true}); };
  auto append = [&](const std::vector<Code> &more) {
    codes.insert(codes.end(), more.begin(), more.end());
  };
  if (mode_ == Mode::kPopOn || mode_ == Mode::kPaintOn) {
    if (mode_ == Mode::kPopOn) {
      control(Command::kResumeCaptionLoading);
      control(Command::kEraseNonDisplayedMemory);
    } else {
      /* Erase even an empty display: decoders that report screen changes (ffmpeg) take the
       * new caption's start from the last change. */
      control(Command::kResumeDirectCaptioning);
      control(Command::kEraseDisplayedMemory);
    }
    guint first_row = kBottomRow + 1 - MIN(static_cast<guint>(s.rows.size()), kBottomRow);
    for (gsize i = 0; i < s.rows.size() && i < kBottomRow; i++) {
      codes.push_back({preamble(first_row + i, indent_for(s.rows[i])), true});
      append(encode_row(s.rows[i]));
    }
    return codes;
  }
  /* Roll-up: the window and its base row once per block of text, then a carriage return
   * before each line (it scrolls the window; on an empty window it only marks the time). */
  if (!mode_set_) {
    control(roll_up_command(mode_));
    codes.push_back({preamble(kBottomRow, 0), true});
  }
  for (const std::string &row : s.rows) {
    control(Command::kCarriageReturn);
    append(encode_row(row));
  }
  return codes;
}

guint Encoder::lead_frames(const std::vector<std::string> &rows) const {
  if (mode_ != Mode::kPopOn)
    return 0;
  return frames_for(sequence_for({rows, 0, 0}));
}

void Encoder::start(const Screen &s) {
  std::vector<Code> codes = sequence_for(s);
  sending_.assign(codes.begin(), codes.end());
  current_ = s;
  mode_set_ = true;
  if (mode_ != Mode::kPopOn) {
    /* Text shows as it is sent: this is when the screen starts to appear. */
    stats_.screens++;
    if (frame_ > s.show) {
      stats_.late++;
      stats_.max_late_frames = MAX(stats_.max_late_frames, frame_ - s.show);
    }
    on_screen_ = true;
    erase_at_ = G_MAXUINT64; /* not while it is being written */
  }
}

void Encoder::emit_control(Command c, Pair *out) {
  *out = command(c, field2_);
  repeat_ = *out;
}

Pair Encoder::next() {
  Pair out = kPadding;
  if (repeat_) {
    out = *repeat_;
    repeat_.reset();
  } else if (eoc_pending_ && frame_ >= current_->show) {
    /* Pop-on: the loaded caption replaces whatever is displayed. */
    emit_control(Command::kEndOfCaption, &out);
    stats_.screens++;
    if (frame_ > current_->show) {
      stats_.late++;
      stats_.max_late_frames = MAX(stats_.max_late_frames, frame_ - current_->show);
    }
    on_screen_ = true;
    erase_at_ = MAX(current_->end, frame_ + min_frames_);
    eoc_pending_ = false;
    current_.reset();
  } else if ((on_screen_ && (frame_ >= erase_at_ ||
                             (ending_ && queue_.empty() && sending_.empty() && !current_))) ||
             erase_first_) {
    emit_control(Command::kEraseDisplayedMemory, &out);
    on_screen_ = false;
    erase_first_ = false;
    if (is_roll_up(mode_))
      mode_set_ = false; /* the next block starts afresh */
  } else {
    if (!current_ && sending_.empty()) {
      /* A screen whose end has passed while a newer one waits is skipped. */
      while (queue_.size() > 1 && queue_.front().end <= frame_ + lead_frames(queue_.front().rows)) {
        stats_.dropped++;
        queue_.pop_front();
      }
      if (!queue_.empty()) {
        const Screen &s = queue_.front();
        guint lead = lead_frames(s.rows);
        if (frame_ + lead >= s.show) {
          start(s);
          queue_.pop_front();
        }
      }
    }
    if (!sending_.empty()) {
      Code code = sending_.front();
      if (code.control && code.pair == last_) {
        /* Decoders would take it for the repeat of the previous one: a frame apart. */
        out = kPadding;
      } else {
        sending_.pop_front();
        out = code.pair;
        if (code.control)
          repeat_ = code.pair;
        if (sending_.empty()) {
          if (mode_ == Mode::kPopOn) {
            eoc_pending_ = true;
          } else {
            /* Complete now: it stays at least min_frames from here. */
            erase_at_ = MAX(current_->end, frame_ + min_frames_);
            current_.reset();
          }
        }
      }
    }
  }
  last_ = out;
  frame_++;
  return out;
}

void Encoder::reset(guint64 frame) {
  frame_ = frame;
  queue_.clear();
  sending_.clear();
  current_.reset();
  eoc_pending_ = false;
  repeat_.reset();
  last_ = kPadding;
  mode_set_ = false;
  on_screen_ = false;
  erase_at_ = 0;
  erase_first_ = true;
  ending_ = false;
}

bool Encoder::idle() const {
  return queue_.empty() && sending_.empty() && !current_ && !eoc_pending_ && !repeat_ &&
         !on_screen_ && !erase_first_;
}

} // namespace cea608
} // namespace qwenasr
