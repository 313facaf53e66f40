// SPDX-License-Identifier: LGPL-2.1-or-later
/* Recognition engines of the local Qwen-ASR stand-in service. The server hands each utterance's
 * PCM samples to a Recognizer made by an Engine and asks it for partial (text/stash) and final
 * results; it never knows which engine runs. The deterministic engine turns audio bytes into
 * pseudo-words so a test that knows what it sent can predict the exact transcript. The
 * PocketSphinx engine (optional, engine_pocketsphinx.cpp) really recognises English; it is
 * asynchronous (see Recognizer::asynchronous()) because decoding can be slower than the
 * WebSocket thread may block. No GLib main loop use here: asynchronous results are delivered by
 * callbacks on engine threads, and the server moves them to its own thread. */
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qwenasr::local {

enum class EngineKind { Deterministic, PocketSphinx };

/* "deterministic" / "pocketsphinx"; false for an unknown name. */
bool engine_kind_from_name(const std::string &name, EngineKind &kind);

/* Engine-wide settings (not per session). Empty paths take the engine's defaults. */
struct EngineOptions {
  /* PocketSphinx: acoustic model directory, language model and pronunciation dictionary;
   * defaults are Debian's pocketsphinx-en-us files under /usr/share/pocketsphinx/model/en-us. */
  std::string hmm;
  std::string lm;
  std::string dict;
  /* PocketSphinx: at most this many decoders (each holds its own copy of the model, about
   * 100 MB, and decodes one utterance at a time); more concurrent utterances wait. */
  unsigned max_decoders = 2;
};

/* Session settings an engine may use. */
struct EngineConfig {
  int sample_rate = 16000;
  std::string language;    // requested language code, "" = automatic detection
  std::string corpus_text; // context-biasing text, "" = none
};

/* One interim snapshot: text is the confirmed prefix (only grows), stash the provisional rest. */
struct PartialResult {
  std::string text;
  std::string stash;
};

/* Everything the completed event of an utterance needs, for asynchronous recognisers. */
struct FinalResult {
  PartialResult final_partial; // the last interim event (stash empty)
  std::string transcript;
  std::string language; // "" lets the server report the requested language or "en"
  std::string emotion = "neutral";
};

using PartialCallback = std::function<void(PartialResult)>;
using FinalCallback = std::function<void(FinalResult)>;

/* Recognises one utterance. accept() receives exactly the utterance's samples (S16 mono at the
 * session rate), in order, possibly in many pieces.
 *
 * A synchronous recogniser (the default) answers partial(), final_partial() and transcript()
 * at once, and the server calls them on its thread. An asynchronous one returns true from
 * asynchronous(); accept() then only queues audio, and the server asks with request_partial()
 * and finish() instead. Their callbacks run later on an engine thread (never inside the call),
 * in the order they were requested, and must not throw; they are not called once the
 * recogniser is destroyed before they start. The synchronous methods still work but may block
 * (partial() returns the latest running hypothesis, final_partial()/transcript() wait for the
 * decode), which is meant for tools and tests, not for the server thread. */
class Recognizer {
public:
  virtual ~Recognizer() = default;
  virtual void accept(const int16_t *samples, size_t n_samples) = 0;
  virtual size_t samples_accepted() const = 0;
  /* Preview of the audio accepted so far. */
  virtual PartialResult partial() const = 0;
  /* The last interim event of a finished utterance (sent just before the final result). */
  virtual PartialResult final_partial() const = 0;
  /* Final transcript of everything accepted. */
  virtual std::string transcript() const = 0;
  /* Detected language; "" lets the server report the requested language or "en". */
  virtual std::string language() const { return {}; }
  /* One of the documented emotion values. */
  virtual std::string emotion() const { return "neutral"; }

  virtual bool asynchronous() const { return false; }
  /* Partial over all audio accepted before this call. */
  virtual void request_partial(PartialCallback done) { done(partial()); }
  /* Ends the utterance; no accept() may follow. */
  virtual void finish(FinalCallback done) {
    done(FinalResult{final_partial(), transcript(), language(), emotion()});
  }
};

class Engine {
public:
  virtual ~Engine() = default;
  virtual const char *name() const = 0;
  virtual std::unique_ptr<Recognizer> start_utterance(const EngineConfig &config) = 0;
};

/* Returns nullptr if the kind is not available in this build (or its model cannot be loaded;
 * then *why says so when given). */
std::unique_ptr<Engine> make_engine(EngineKind kind, const EngineOptions &options = {},
                                    std::string *why = nullptr);

/* Whether make_engine() can make this kind in this build (not whether its model loads). */
bool engine_compiled_in(EngineKind kind);

/* The deterministic engine (engine.cpp), as make_engine(EngineKind::Deterministic) makes it. */
std::unique_ptr<Engine> make_deterministic_engine();

/* --- The deterministic engine's definition, public so tests can compute expectations. ---
 *
 * A word is made from the 32-bit FNV-1a hash h of the given bytes: three consonant-vowel
 * syllables; syllable i (i = 0, 1, 2) uses consonant "bdfghjklmnprstvz"[(h >> 6i) & 15] and
 * vowel "aeio"[(h >> (6i + 4)) & 3], so 18 bits of the hash show, e.g. "tabeki". */
std::string deterministic_word(const uint8_t *bytes, size_t n);

/* Samples per deterministic block: 200 ms at sample_rate. */
size_t deterministic_block_samples(int sample_rate);

/* Word of a block of samples; the samples are hashed as S16LE bytes whatever the host order. */
std::string deterministic_block_word(const int16_t *samples, size_t n_samples);

/* The utterance is split into consecutive 200 ms blocks from its first sample (the last may be
 * shorter but is non-empty); every block becomes deterministic_block_word(); words are joined by
 * single spaces, the first letter is upper-cased and "." is appended: "Tabeki mosuda rini.".
 * Empty input gives "". */
std::string deterministic_transcript(const int16_t *samples, size_t n_samples, int sample_rate);

/* Partial for an utterance of which n_samples have arrived: text = words of all complete blocks
 * except the last complete one; stash = the last complete block's word, plus " " + the word of
 * the incomplete trailing block if there is one (either part may be absent; no extra spaces). */
PartialResult deterministic_partial(const int16_t *samples, size_t n_samples, int sample_rate);

} // namespace qwenasr::local
