/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the local service's Ogg-Opus input: whatever a client appends, decoding
 * returns samples or an error with a reason, never crashes. The first byte chooses where the
 * input is split into two appends (pages may straddle appends). Built with libFuzzer by
 * scripts/fuzz.sh; replayed over corpus-ogg in the ordinary test suite. */
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "audioinput.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const size_t split = data[0] * (size - 1) / 255;
  const uint8_t *stream = data + 1;
  auto input = qwenasr::local::make_ogg_opus_input(16000);
  std::vector<int16_t> samples;
  std::string error;
  for (auto [from, n] : {std::pair<size_t, size_t>{0, split}, {split, size - 1 - split}}) {
    if (!input->decode(stream + from, n, samples, error)) {
      if (error.empty())
        __builtin_trap(); /* a rejection must say why */
      break;
    }
  }
  return 0;
}
