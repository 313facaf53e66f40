// SPDX-License-Identifier: LGPL-2.1-or-later
/* The deterministic engine: a pure function of the utterance's bytes that
 * looks like speech recognition output (words, capital letter, full stop). */
#include "engine.h"

#include <algorithm>

namespace qwenasr::local {

namespace {

constexpr uint32_t kFnvOffset = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;

uint32_t fnv1a_samples(const int16_t *samples, size_t n) {
  uint32_t h = kFnvOffset;
  for (size_t i = 0; i < n; i++) {
    // Hash the wire order (S16LE) so the result does not depend on the host's byte order.
    const auto v = static_cast<uint16_t>(samples[i]);
    h = (h ^ static_cast<uint8_t>(v & 0xff)) * kFnvPrime;
    h = (h ^ static_cast<uint8_t>(v >> 8)) * kFnvPrime;
  }
  return h;
}

std::string word_from_hash(uint32_t h) {
  static const char kConsonants[] = "bdfghjklmnprstvz";
  static const char kVowels[] = "aeio";
  std::string w;
  w.reserve(6);
  for (int i = 0; i < 3; i++) {
    w += kConsonants[(h >> (6 * i)) & 15];
    w += kVowels[(h >> (6 * i + 4)) & 3];
  }
  return w;
}

std::string join(const std::vector<std::string> &words, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; i++) {
    if (!out.empty())
      out += ' ';
    out += words[i];
  }
  return out;
}

/* Caches the words of complete blocks so partials stay O(new audio) on long utterances. */
class DeterministicRecognizer final : public Recognizer {
public:
  explicit DeterministicRecognizer(const EngineConfig &config)
      : block_(deterministic_block_samples(config.sample_rate)) {}

  void accept(const int16_t *samples, size_t n_samples) override {
    pending_.insert(pending_.end(), samples, samples + n_samples);
    total_ += n_samples;
    size_t off = 0;
    while (pending_.size() - off >= block_) {
      words_.push_back(deterministic_block_word(pending_.data() + off, block_));
      off += block_;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(off));
  }

  size_t samples_accepted() const override { return total_; }

  PartialResult partial() const override {
    PartialResult p;
    if (!words_.empty()) {
      /* text + stash is the preview (docs/protocol.md §3.8), so the confirmed prefix carries the
       * space that separates it from the stash, as a spaced language needs. */
      p.text = join(words_, 0, words_.size() - 1);
      if (!p.text.empty())
        p.text += ' ';
      p.stash = words_.back();
    }
    if (!pending_.empty()) {
      if (!p.stash.empty())
        p.stash += ' ';
      p.stash += deterministic_block_word(pending_.data(), pending_.size());
    }
    return p;
  }

  PartialResult final_partial() const override {
    // Once the utterance has ended every word is confirmed; the stash is empty.
    std::vector<std::string> all = words_;
    if (!pending_.empty())
      all.push_back(deterministic_block_word(pending_.data(), pending_.size()));
    return {join(all, 0, all.size()), ""};
  }

  std::string transcript() const override {
    PartialResult p = final_partial();
    if (p.text.empty())
      return {};
    p.text[0] = static_cast<char>(p.text[0] - 'a' + 'A');
    return p.text + ".";
  }

private:
  size_t block_;
  size_t total_ = 0;
  std::vector<int16_t> pending_; // samples of the incomplete trailing block
  std::vector<std::string> words_;
};

class DeterministicEngine final : public Engine {
public:
  const char *name() const override { return "deterministic"; }
  std::unique_ptr<Recognizer> start_utterance(const EngineConfig &config) override {
    return std::make_unique<DeterministicRecognizer>(config);
  }
};

} // namespace

std::unique_ptr<Engine> make_deterministic_engine() {
  return std::make_unique<DeterministicEngine>();
}

std::string deterministic_word(const uint8_t *bytes, size_t n) {
  uint32_t h = kFnvOffset;
  for (size_t i = 0; i < n; i++)
    h = (h ^ bytes[i]) * kFnvPrime;
  return word_from_hash(h);
}

size_t deterministic_block_samples(int sample_rate) {
  return static_cast<size_t>(std::max(1, sample_rate / 5));
}

std::string deterministic_block_word(const int16_t *samples, size_t n_samples) {
  return word_from_hash(fnv1a_samples(samples, n_samples));
}

std::string deterministic_transcript(const int16_t *samples, size_t n_samples, int sample_rate) {
  DeterministicRecognizer r(EngineConfig{sample_rate, {}, {}});
  r.accept(samples, n_samples);
  return r.transcript();
}

PartialResult deterministic_partial(const int16_t *samples, size_t n_samples, int sample_rate) {
  DeterministicRecognizer r(EngineConfig{sample_rate, {}, {}});
  r.accept(samples, n_samples);
  return r.partial();
}

} // namespace qwenasr::local
