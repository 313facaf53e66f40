// SPDX-License-Identifier: LGPL-2.1-or-later
/* The local service's engine factory: names to kinds, and which engines this build has (the
 * only file that knows every engine). */
#include <memory>
#include <string>

#include "engine-config.h"
#include "engine.h"
#include "engine_pocketsphinx.h"

namespace qwenasr::local {

bool engine_kind_from_name(const std::string &name, EngineKind &kind) {
  if (name == "deterministic")
    kind = EngineKind::Deterministic;
  else if (name == "pocketsphinx")
    kind = EngineKind::PocketSphinx;
  else
    return false;
  return true;
}

bool engine_compiled_in(EngineKind kind) {
  switch (kind) {
  case EngineKind::Deterministic:
    return true;
  case EngineKind::PocketSphinx:
    return QWENASR_HAVE_POCKETSPHINX != 0;
  }
  return false;
}

std::unique_ptr<Engine> make_engine(EngineKind kind, const EngineOptions &options,
                                    std::string *why) {
  switch (kind) {
  case EngineKind::Deterministic:
    return make_deterministic_engine();
  case EngineKind::PocketSphinx:
#if QWENASR_HAVE_POCKETSPHINX
    return make_pocketsphinx_engine(options, why);
#else
    (void)options;
    if (why)
      *why = "this build has no PocketSphinx (libpocketsphinx-dev was missing at configure time)";
    return nullptr;
#endif
  }
  return nullptr;
}

} // namespace qwenasr::local
