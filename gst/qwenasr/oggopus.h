/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ogg-Opus encoding for `input_audio_format: "opus"`: one logical Ogg stream per service
 * session (OpusHead and OpusTags pages first, then pages of 20 ms Opus packets), as the
 * public evidence in docs/protocol.md §4 suggests the service expects. No I/O, no locking: the
 * protocol client owns one writer per session, on its thread.
 *
 * Timing: the writer numbers nothing itself. Every sample given to write() is decoded by a
 * conforming decoder (one that drops OpusHead's pre-skip) at the same position in the
 * stream, so the service's audio_*_ms count the samples written, as with PCM. Samples wait
 * for a whole frame before they are encoded, and the encoder's look-ahead holds the last few
 * milliseconds back; flush_padding() says how much silence pushes all of it out. */
#pragma once

#include <glib.h>

#include <memory>
#include <string>

namespace qwenasr {

class OggOpusWriter {
public:
  static constexpr int kFrameMs = 20;
  static constexpr int kDefaultBitrate = 24000;
  static constexpr int kMinBitrate = 6000;
  static constexpr int kMaxBitrate = 128000;

  /* sample_rate: 8000 or 16000 (the session's); bitrate in bits/s. nullptr, with `problem`
   * set, when libopus refuses the settings. */
  static std::unique_ptr<OggOpusWriter> create(int sample_rate, int bitrate, guint32 serial,
                                               std::string *problem);
  ~OggOpusWriter();
  OggOpusWriter(const OggOpusWriter &) = delete;
  OggOpusWriter &operator=(const OggOpusWriter &) = delete;

  /* The OpusHead and OpusTags pages, each a page of its own, in stream order. */
  std::string header_pages();
  /* Encodes every whole frame now available and returns them as one Ogg page (empty when no
   * frame is complete yet). `n_samples` S16 samples. Padding (silence the caller inserts to
   * flush, see flush_padding()) is written the same way but marks the stream as flushed. */
  std::string write(const gint16 *samples, gsize n_samples, bool is_padding = false);
  /* Silence to write (as padding) so that every sample written so far has left the encoder
   * and the stream ends on a frame boundary: 0 when nothing was written since the last
   * padding. */
  gsize flush_padding() const;
  /* The end of the stream: pads internally, and the last page (flagged end-of-stream) has a
   * granule position that trims the padding off again. */
  std::string finish();

  int frame_samples() const { return frame_samples_; }
  /* The encoder's delay in samples at the session rate (OpusHead's pre-skip). */
  int lookahead() const { return lookahead_; }
  guint64 samples_written() const { return samples_written_; }

private:
  OggOpusWriter() = default;
  std::string encode_frames(bool end_of_stream, gint64 end_granule);

  struct Codec; /* libopus and libogg state */
  std::unique_ptr<Codec> codec_;
  int rate_ = 16000;
  int frame_samples_ = 320;
  int lookahead_ = 0;
  std::basic_string<gint16> pending_; /* samples waiting for a whole frame */
  guint64 samples_written_ = 0;       /* given to write(), padding included */
  guint64 samples_encoded_ = 0;       /* in whole frames */
  gsize since_padding_ = 0;           /* samples written since the last padding */
  bool finished_ = false;
};

} // namespace qwenasr
