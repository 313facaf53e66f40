// SPDX-License-Identifier: LGPL-2.1-or-later
/* Turns the payload of input_audio_buffer.append events into PCM samples for the local Qwen-ASR
 * stand-in service. One AudioInput per session, chosen from session.input_audio_format, so that a
 * different input format (Opus) can be added without touching the server. Pure code. */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qwenasr::local {

class AudioInput {
public:
  virtual ~AudioInput() = default;
  /* Appends the samples decodable so far to out. Returns false and sets error if the bytes can
   * never be valid; bytes that only lack a continuation are kept for the next call. */
  virtual bool decode(const uint8_t *data, size_t n, std::vector<int16_t> &out,
                      std::string &error) = 0;
  /* Bytes held back waiting for the next append (e.g. half a PCM sample). */
  virtual size_t pending_bytes() const = 0;
  /* Ogg inputs: the serial number of the logical stream, once its first page arrived. */
  virtual std::optional<uint32_t> stream_serial() const { return std::nullopt; }
};

/* Raw S16LE mono. An odd trailing byte is kept and joined with the next append, because the
 * stream is one continuous PCM byte stream and the docs do not require whole samples per event. */
std::unique_ptr<AudioInput> make_pcm_input();

/* An Ogg-Opus byte stream (RFC 7845), the evidence's reading of input_audio_format "opus":
 * one logical stream, OpusHead then OpusTags, then Opus packets, pages split or merged across
 * appends as the client likes. Decoded with libopus at the session rate; the pre-skip is
 * dropped and an end-of-stream page's granule position trims the end, so sample k of the
 * output is sample k the client encoded. Anything else (bytes that are not Ogg pages, a bad
 * CRC, missing pages, a second stream, headers that are not Opus, mono only) is an error, and
 * the stream stays broken: every later append is refused too. */
std::unique_ptr<AudioInput> make_ogg_opus_input(int sample_rate);

/* Strict standard Base64 (RFC 4648 alphabet, '=' padding only at the end, length multiple of 4,
 * no whitespace). Returns false on any violation. */
bool base64_decode_strict(const char *text, size_t len, std::vector<uint8_t> &out);

} // namespace qwenasr::local
