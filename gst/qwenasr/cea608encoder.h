/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CEA-608 caption state machine: screens of text with show and end frames in, one byte
 * pair per video frame out, in pop-on, roll-up or paint-on mode. Frames are counted by index
 * only; converting times to frames is the caller's. */
#pragma once

#include <gst/gst.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "cea608.h"

namespace qwenasr {
namespace cea608 {

/* Frame index <-> time at a framerate. Times come from the index, so they never drift. */
struct FrameClock {
  gint fps_n = 30000, fps_d = 1001;
  /* The first frame starting at or after `t`. */
  guint64 frame_at(GstClockTime t) const {
    return gst_util_uint64_scale_ceil(t, fps_n, static_cast<guint64>(fps_d) * GST_SECOND);
  }
  GstClockTime time_of(guint64 frame) const {
    return gst_util_uint64_scale(frame, static_cast<guint64>(fps_d) * GST_SECOND, fps_n);
  }
};

enum class Mode { kPopOn, kRollUp2, kRollUp3, kRollUp4, kPaintOn };

/* Rows a screen of `mode` holds: 2 for pop-on and paint-on (the bottom rows 14 and 15), the
 * window size for roll-up. */
guint rows_for(Mode mode);

struct EncoderStats {
  guint64 screens = 0; /* shown */
  guint64 late = 0;    /* shown after their show frame */
  guint64 dropped = 0; /* never shown: their end had passed while newer ones waited */
  guint64 max_late_frames = 0;
};

class Encoder {
public:
  /* `min_frames`: a screen stays up at least this long once it is complete. */
  Encoder(Mode mode, bool field2, guint min_frames);

  /* Queues a screen (rows of repertoire text, at most 32 characters each) to show at frame
   * `show` until frame `end`. Screens must come in show order. */
  void add(const std::vector<std::string> &rows, guint64 show, guint64 end);

  /* Frames before its show frame at which a screen must start to be sent for it to be
   * complete on time (pop-on: EOC at `show`). */
  guint lead_frames(const std::vector<std::string> &rows) const;

  /* The pair for frame `frame()`, then moves to the next frame. */
  Pair next();
  guint64 frame() const { return frame_; }

  /* Starts over at `frame` with an empty screen (the stream jumped). The first pairs re-send
   * the mode and erase the display. */
  void reset(guint64 frame);

  /* The stream ends: what is on screen is erased as soon as nothing is left to send. */
  void end_soon() { ending_ = true; }

  /* Nothing left to send, nothing on screen to erase later. */
  bool idle() const;

  const EncoderStats &stats() const { return stats_; }

private:
  struct Screen {
    std::vector<std::string> rows;
    guint64 show, end;
  };

  void start(const Screen &s);
  void emit_control(Command c, Pair *out);
  std::vector<Code> sequence_for(const Screen &s) const;

  Mode mode_;
  bool field2_;
  guint min_frames_;
  guint64 frame_ = 0;
  std::deque<Screen> queue_;      /* not started yet */
  std::deque<Code> sending_;      /* codes of the screen being sent */
  std::optional<Screen> current_; /* the screen being sent (pop-on: until its EOC) */
  bool eoc_pending_ = false;      /* pop-on: loaded, waiting for its show frame */
  std::optional<Pair> repeat_;    /* the second half of a doubled control code */
  Pair last_ = kPadding;          /* the pair sent last */
  bool mode_set_ = false;         /* RCL/RUx/RDC sent since the last reset */
  bool on_screen_ = false;        /* displayed memory holds text */
  bool row_used_ = false;         /* roll-up: the base row holds text */
  guint64 erase_at_ = 0;          /* when on_screen_, the frame to erase it */
  bool erase_first_ = true;       /* after a reset: erase whatever a decoder shows */
  bool ending_ = false;           /* end_soon() was called */
  EncoderStats stats_;
};

} // namespace cea608
} // namespace qwenasr
