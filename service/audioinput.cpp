// SPDX-License-Identifier: LGPL-2.1-or-later
/* PCM audio input and the strict Base64 decoder used for append payloads. */
#include "audioinput.h"

namespace qwenasr::local {

namespace {

class PcmInput final : public AudioInput {
public:
  bool decode(const uint8_t *data, size_t n, std::vector<int16_t> &out, std::string &) override {
    out.reserve(out.size() + (n + 1) / 2);
    size_t i = 0;
    if (has_carry_ && n > 0) {
      out.push_back(static_cast<int16_t>(carry_ | (data[0] << 8)));
      has_carry_ = false;
      i = 1;
    }
    for (; i + 1 < n; i += 2)
      out.push_back(static_cast<int16_t>(data[i] | (data[i + 1] << 8)));
    if (i < n) {
      carry_ = data[i];
      has_carry_ = true;
    }
    return true;
  }
  size_t pending_bytes() const override { return has_carry_ ? 1 : 0; }

private:
  uint8_t carry_ = 0;
  bool has_carry_ = false;
};

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

} // namespace

std::unique_ptr<AudioInput> make_pcm_input() {
  return std::make_unique<PcmInput>();
}

bool base64_decode_strict(const char *text, size_t len, std::vector<uint8_t> &out) {
  out.clear();
  if (len % 4 != 0)
    return false;
  out.reserve(len / 4 * 3);
  for (size_t i = 0; i < len; i += 4) {
    const bool last = i + 4 == len;
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        pad++;
        v[k] = 0;
        continue;
      }
      if (pad > 0)
        return false; // data after padding
      v[k] = b64_value(c);
      if (v[k] < 0)
        return false;
    }
    const uint32_t bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<uint8_t>(bits >> 16));
    if (pad < 2)
      out.push_back(static_cast<uint8_t>(bits >> 8));
    if (pad < 1)
      out.push_back(static_cast<uint8_t>(bits));
  }
  return true;
}

} // namespace qwenasr::local
