// SPDX-License-Identifier: LGPL-2.1-or-later
/* Energy voice-activity detector of the local Qwen-ASR stand-in service. It reproduces the
 * documented server_vad knobs (threshold in [-1, 1], silence_duration_ms) with a simple, fully
 * predictable rule so tests can compute exactly where utterances start and stop. Pure code: no
 * I/O, no clock; all positions are sample counts since the start of the session's audio.
 *
 * Rule:
 *  - Audio is cut into 10 ms frames aligned on session sample 0; only complete frames count.
 *  - A frame is voiced when its RMS level exceeds  -50 + 20 * threshold  dBFS (0 dBFS = RMS of
 *    32768). threshold 0.2 (default) -> -46 dBFS, 0.0 -> -50 dBFS, -1 -> -70 dBFS,
 *    1 -> -30 dBFS. Digital silence is never voiced.
 *  - The first voiced frame while idle starts speech at that frame's first sample.
 *  - Speech stops when the run of unvoiced frames after the last voiced frame reaches
 *    silence_duration_ms; the stop position is the end of the last voiced frame.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace qwenasr::local {

struct VadEvent {
  enum class Kind { SpeechStarted, SpeechStopped };
  Kind kind;
  uint64_t sample; // started: first sample of the first voiced frame; stopped: end of last voiced
};

class EnergyVad {
public:
  EnergyVad(int sample_rate, double threshold, unsigned silence_duration_ms);

  /* Changes the knobs mid-stream (a later session.update); the position is kept. */
  void configure(double threshold, unsigned silence_duration_ms);

  /* Feeds samples that must not cross a frame boundary (use samples_to_frame_end()); returns
   * the event caused by the frame this piece completes, if any. */
  std::optional<VadEvent> push(const int16_t *samples, size_t n_samples);

  /* Samples missing until the current frame is complete (1..frame_samples()). */
  size_t samples_to_frame_end() const { return frame_ - fill_; }

  /* End of input: ends a speech segment in progress at the end of its last voiced frame. */
  std::optional<VadEvent> finish();

  bool in_speech() const { return in_speech_; }
  uint64_t position() const { return position_; }
  uint64_t last_voiced_end() const { return last_voiced_end_; }
  size_t frame_samples() const { return frame_; }

  /* The voicing threshold in dBFS for a threshold knob value. */
  static double threshold_dbfs(double threshold) { return -50.0 + 20.0 * threshold; }
  /* RMS level of samples in dBFS (-infinity for digital silence or n == 0). */
  static double level_dbfs(const int16_t *samples, size_t n_samples);

private:
  bool frame_voiced() const;

  size_t frame_;
  uint64_t silence_samples_;
  double min_mean_square_; // voiced iff mean square > this
  uint64_t position_ = 0;  // samples consumed
  size_t fill_ = 0;        // samples of the current frame consumed
  double frame_energy_ = 0;
  bool in_speech_ = false;
  uint64_t last_voiced_end_ = 0;
  int sample_rate_;
};

} // namespace qwenasr::local
