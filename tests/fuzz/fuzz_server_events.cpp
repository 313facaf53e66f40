/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the server-event parser: whatever the network sends, decoding returns an
 * event or a reason, never crashes, never asserts. Built with libFuzzer by scripts/fuzz.sh;
 * replay_corpus.cpp runs the same function over the corpus in the ordinary test suite. */
#include <cstddef>
#include <cstdint>
#include <string>

#include "asrprotocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qwenasr::ServerEvent event;
  std::string problem;
  if (qwenasr::decode_server_event(reinterpret_cast<const char *>(data), static_cast<gssize>(size),
                                   &event, &problem)) {
    /* Touch what the element reads, so sanitizers see every field. */
    volatile size_t total = event.type_name.size() + event.item_id.size() + event.text.size() +
                            event.stash.size() + event.transcript.size() +
                            event.error.message.size() + event.session_id.size();
    (void)total;
    (void)qwenasr::server_event_type_name(event.type);
  } else if (problem.empty()) {
    __builtin_trap(); /* a rejection must say why */
  }
  return 0;
}
