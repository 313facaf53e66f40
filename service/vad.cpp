// SPDX-License-Identifier: LGPL-2.1-or-later
/* Energy VAD implementation; see vad.h for the exact rule. */
#include "vad.h"

#include <cmath>
#include <limits>

namespace qwenasr::local {

EnergyVad::EnergyVad(int sample_rate, double threshold, unsigned silence_duration_ms)
    : frame_(static_cast<size_t>(sample_rate > 100 ? sample_rate / 100 : 1)),
      sample_rate_(sample_rate) {
  configure(threshold, silence_duration_ms);
}

void EnergyVad::configure(double threshold, unsigned silence_duration_ms) {
  // Compare mean squares instead of dB per frame: no log in the hot path, same decision.
  const double full_scale = 32768.0;
  min_mean_square_ = full_scale * full_scale * std::pow(10.0, threshold_dbfs(threshold) / 10.0);
  silence_samples_ = static_cast<uint64_t>(silence_duration_ms) * sample_rate_ / 1000;
}

double EnergyVad::level_dbfs(const int16_t *samples, size_t n_samples) {
  double e = 0;
  for (size_t i = 0; i < n_samples; i++)
    e += static_cast<double>(samples[i]) * samples[i];
  if (n_samples == 0 || e == 0)
    return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(e / n_samples / (32768.0 * 32768.0));
}

bool EnergyVad::frame_voiced() const {
  return frame_energy_ / static_cast<double>(frame_) > min_mean_square_;
}

std::optional<VadEvent> EnergyVad::push(const int16_t *samples, size_t n_samples) {
  if (n_samples > samples_to_frame_end())
    n_samples = samples_to_frame_end(); // caller contract; never read past the frame
  for (size_t i = 0; i < n_samples; i++)
    frame_energy_ += static_cast<double>(samples[i]) * samples[i];
  fill_ += n_samples;
  position_ += n_samples;
  if (fill_ < frame_)
    return std::nullopt;

  const bool voiced = frame_voiced();
  fill_ = 0;
  frame_energy_ = 0;
  if (voiced) {
    last_voiced_end_ = position_;
    if (!in_speech_) {
      in_speech_ = true;
      return VadEvent{VadEvent::Kind::SpeechStarted, position_ - frame_};
    }
    return std::nullopt;
  }
  if (in_speech_ && position_ - last_voiced_end_ >= silence_samples_) {
    in_speech_ = false;
    return VadEvent{VadEvent::Kind::SpeechStopped, last_voiced_end_};
  }
  return std::nullopt;
}

std::optional<VadEvent> EnergyVad::finish() {
  if (!in_speech_)
    return std::nullopt;
  in_speech_ = false;
  return VadEvent{VadEvent::Kind::SpeechStopped, last_voiced_end_};
}

} // namespace qwenasr::local
