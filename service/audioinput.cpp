// SPDX-License-Identifier: LGPL-2.1-or-later
/* PCM audio input and the strict Base64 decoder used for append payloads. */
#include "audioinput.h"

#include <ogg/ogg.h>
#include <opus.h>

#include <algorithm>
#include <cstring>

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

class OggOpusInput final : public AudioInput {
public:
  explicit OggOpusInput(int sample_rate) : rate_(sample_rate) { ogg_sync_init(&sync_); }
  ~OggOpusInput() override {
    ogg_sync_clear(&sync_);
    if (have_stream_)
      ogg_stream_clear(&stream_);
    if (decoder_)
      opus_decoder_destroy(decoder_);
  }
  OggOpusInput(const OggOpusInput &) = delete;
  OggOpusInput &operator=(const OggOpusInput &) = delete;

  bool decode(const uint8_t *data, size_t n, std::vector<int16_t> &out,
              std::string &error) override {
    if (!broken_.empty()) {
      error = broken_;
      return false;
    }
    if (n == 0)
      return true;
    char *buffer = ogg_sync_buffer(&sync_, static_cast<long>(n));
    memcpy(buffer, data, n);
    ogg_sync_wrote(&sync_, static_cast<long>(n));
    ogg_page page;
    for (;;) {
      int status = ogg_sync_pageout(&sync_, &page);
      if (status == 0)
        return true;
      if (status < 0)
        return fail("bytes that are not an Ogg page (bad capture pattern or CRC)", error);
      if (!read_page(&page, out, error))
        return false;
    }
  }

  size_t pending_bytes() const override { return static_cast<size_t>(sync_.fill - sync_.returned); }
  std::optional<uint32_t> stream_serial() const override {
    if (!have_stream_)
      return std::nullopt;
    return static_cast<uint32_t>(stream_.serialno);
  }

private:
  bool fail(const std::string &why, std::string &error) {
    broken_ = "not a valid Ogg-Opus stream: " + why;
    error = broken_;
    return false;
  }

  bool read_page(ogg_page *page, std::vector<int16_t> &out, std::string &error) {
    if (!have_stream_) {
      if (!ogg_page_bos(page))
        return fail("the first page does not begin a stream", error);
      ogg_stream_init(&stream_, ogg_page_serialno(page));
      have_stream_ = true;
    } else if (ogg_page_serialno(page) != stream_.serialno) {
      return fail("a second logical stream (one per session is expected)", error);
    }
    if (ogg_stream_pagein(&stream_, page) != 0)
      return fail("a page out of place", error);
    ogg_packet packet;
    for (;;) {
      int status = ogg_stream_packetout(&stream_, &packet);
      if (status == 0)
        break;
      if (status < 0)
        return fail("pages missing (sequence gap)", error);
      if (!read_packet(packet, out, error))
        return false;
    }
    if (ogg_page_eos(page) && decoder_)
      trim_end(ogg_page_granulepos(page), out);
    return true;
  }

  bool read_packet(const ogg_packet &packet, std::vector<int16_t> &out, std::string &error) {
    if (packets_ == 0) {
      /* RFC 7845 §5.1: magic, version 0x01 (major 0), channels, pre-skip, rate, gain, family */
      if (packet.bytes < 19 || memcmp(packet.packet, "OpusHead", 8) != 0)
        return fail("the first packet is not OpusHead", error);
      if ((packet.packet[8] & 0xf0) != 0)
        return fail("unsupported OpusHead version", error);
      if (packet.packet[9] != 1)
        return fail("only mono is accepted (OpusHead has " + std::to_string(packet.packet[9]) +
                        " channels)",
                    error);
      pre_skip_ = packet.packet[10] | (packet.packet[11] << 8);
      int status = OPUS_OK;
      decoder_ = opus_decoder_create(rate_, 1, &status);
      if (status != OPUS_OK)
        return fail(std::string("no Opus decoder: ") + opus_strerror(status), error);
      to_skip_ = static_cast<uint64_t>(pre_skip_) * rate_ / 48000;
    } else if (packets_ == 1) {
      if (packet.bytes < 8 || memcmp(packet.packet, "OpusTags", 8) != 0)
        return fail("the second packet is not OpusTags", error);
    } else {
      int16_t pcm[5760]; /* 120 ms at 48 kHz, the longest Opus packet */
      int samples =
          opus_decode(decoder_, packet.packet, static_cast<opus_int32>(packet.bytes), pcm, 5760, 0);
      if (samples < 0)
        return fail("Opus packet " + std::to_string(packets_) +
                        " cannot be decoded: " + opus_strerror(samples),
                    error);
      int skip = static_cast<int>(std::min<uint64_t>(to_skip_, static_cast<uint64_t>(samples)));
      to_skip_ -= static_cast<uint64_t>(skip);
      out.insert(out.end(), pcm + skip, pcm + samples);
      decoded_ += static_cast<uint64_t>(samples - skip);
    }
    packets_++;
    return true;
  }

  /* The granule position of the last page counts the samples the stream really holds; what
   * the last packets decode beyond that is padding (RFC 7845 §4.5). */
  void trim_end(int64_t granule, std::vector<int16_t> &out) {
    if (granule < pre_skip_)
      return;
    uint64_t total = static_cast<uint64_t>(granule - pre_skip_) * rate_ / 48000;
    if (decoded_ <= total)
      return;
    uint64_t excess = std::min<uint64_t>(decoded_ - total, out.size());
    out.resize(out.size() - excess);
    decoded_ -= excess;
  }

  const int rate_;
  ogg_sync_state sync_;
  ogg_stream_state stream_;
  bool have_stream_ = false;
  OpusDecoder *decoder_ = nullptr;
  uint64_t packets_ = 0;
  int pre_skip_ = 0;     /* 48 kHz samples, from OpusHead */
  uint64_t to_skip_ = 0; /* of the pre-skip, at the session rate, still to drop */
  uint64_t decoded_ = 0; /* samples output so far */
  std::string broken_;   /* set once: the stream cannot be resynchronised */
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

std::unique_ptr<AudioInput> make_ogg_opus_input(int sample_rate) {
  return std::make_unique<OggOpusInput>(sample_rate);
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
