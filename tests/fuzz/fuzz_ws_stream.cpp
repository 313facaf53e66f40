/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for what the client reads from the server before the JSON: the handshake answer
 * and the WebSocket frames. Whatever arrives, in whatever pieces, parsing returns messages, a
 * need for more, or an error with a code and a reason; it never crashes or buffers past its
 * bound. Built with libFuzzer by scripts/fuzz.sh; replay_corpus.cpp runs it over the corpus in
 * the ordinary test suite. */
#include <cstddef>
#include <cstdint>
#include <string>

#include "wsframe.h"
#include "wshandshake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace qwenasr::ws;
  if (size == 0)
    return 0;
  Response response;
  std::string problem;
  gssize head = parse_response(reinterpret_cast<const char *>(data), size, &response, &problem);
  if (head < 0 && problem.empty())
    __builtin_trap(); /* a rejection must say why */
  if (head > 0)
    (void)verify_response(response, "dGhlIHNhbXBsZSBub25jZQ==", &problem);

  /* The first byte picks where the stream is split, as the socket may split it. */
  const size_t split = 1 + data[0] % size;
  constexpr gsize kMax = 4096;
  Decoder decoder(kMax);
  Message message;
  for (size_t part = 0; part < 2; part++) {
    if (part == 0)
      decoder.feed(data + 1, split - 1);
    else
      decoder.feed(data + split, size - split);
    for (;;) {
      Decoder::Result result = decoder.next(&message);
      if (result == Decoder::Result::NeedMore)
        break;
      if (result == Decoder::Result::Error) {
        if (decoder.error_code() == 0 || decoder.error_reason().empty())
          __builtin_trap();
        return 0;
      }
      if (message.payload.size() > kMax)
        __builtin_trap();
      if (message.opcode == Opcode::Close) {
        guint16 code = 0;
        std::string reason;
        (void)parse_close(reinterpret_cast<const guint8 *>(message.payload.data()),
                          message.payload.size(), &code, &reason);
      }
    }
  }
  return 0;
}
