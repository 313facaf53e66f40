// SPDX-License-Identifier: LGPL-2.1-or-later
/* The PocketSphinx engine of the local Qwen-ASR stand-in service: real English recognition with
 * CMU PocketSphinx 5prealpha as Debian ships it (libpocketsphinx-dev, model pocketsphinx-en-us).
 * Only compiled when meson found pocketsphinx (QWENASR_HAVE_POCKETSPHINX in engine-config.h).
 *
 * Threading: decoders live on engine worker threads, one decoder per thread, created lazily up
 * to EngineOptions::max_decoders (the first one while the engine is made, so a missing model
 * fails early). Each utterance is bound to one worker from its first sample to its end, because
 * a PocketSphinx decoder holds one utterance's search state; a recogniser's accept(),
 * request_partial() and finish() only queue work for that worker and return at once. Results
 * come back through the callbacks of engine.h on the worker thread. Audio at a session rate
 * other than 16 kHz is resampled to 16 kHz, the rate of the en-us acoustic model. */
#pragma once

#include <memory>
#include <string>

#include "engine.h"

namespace qwenasr::local {

/* nullptr (and *why, when given) if the model cannot be loaded. */
std::unique_ptr<Engine> make_pocketsphinx_engine(const EngineOptions &options, std::string *why);

} // namespace qwenasr::local
