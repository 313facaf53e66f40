/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* WebSocket framing for the client: masked frames out, the server's byte stream decoded into
 * messages in. */
#include "wsframe.h"

#include <cstring>

namespace qwenasr::ws {

namespace {

constexpr gsize kMaxControlPayload = 125;

/* XORs `data` with the 4-byte `key` repeated, 8 bytes at a time. The key phase is 0 at every
 * 8-byte step (8 is a multiple of 4), so one 64-bit word of the key serves throughout. */
void mask_in_place(char *data, gsize size, const guint8 key[4]) {
  const guint8 key8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  guint64 word_key;
  std::memcpy(&word_key, key8, sizeof word_key);
  gsize i = 0;
  for (; i + 8 <= size; i += 8) {
    guint64 word;
    std::memcpy(&word, data + i, sizeof word);
    word ^= word_key;
    std::memcpy(data + i, &word, sizeof word);
  }
  for (; i < size; i++)
    data[i] = static_cast<char>(data[i] ^ key[i % 4]);
}

bool is_control(guint8 opcode) {
  return opcode & 0x8;
}

bool is_known(guint8 opcode) {
  switch (static_cast<Opcode>(opcode)) {
  case Opcode::Continuation:
  case Opcode::Text:
  case Opcode::Binary:
  case Opcode::Close:
  case Opcode::Ping:
  case Opcode::Pong:
    return true;
  }
  return false;
}

} // namespace

void encode_frame(Opcode opcode, const void *payload, gsize size, guint32 mask_key,
                  std::string *out) {
  guint8 head[14];
  gsize head_size = 0;
  head[head_size++] = 0x80 | static_cast<guint8>(opcode);
  if (size < 126) {
    head[head_size++] = 0x80 | static_cast<guint8>(size);
  } else if (size <= 0xffff) {
    head[head_size++] = 0x80 | 126;
    head[head_size++] = static_cast<guint8>(size >> 8);
    head[head_size++] = static_cast<guint8>(size);
  } else {
    head[head_size++] = 0x80 | 127;
    for (int shift = 56; shift >= 0; shift -= 8)
      head[head_size++] = static_cast<guint8>(static_cast<guint64>(size) >> shift);
  }
  guint8 *key = head + head_size;
  for (int shift = 24; shift >= 0; shift -= 8)
    head[head_size++] = static_cast<guint8>(mask_key >> shift);

  gsize start = out->size();
  out->reserve(start + head_size + size);
  out->append(reinterpret_cast<const char *>(head), head_size);
  if (size == 0)
    return;
  out->append(static_cast<const char *>(payload), size);
  mask_in_place(&(*out)[start + head_size], size, key);
}

std::string close_payload(guint16 code, const std::string &reason) {
  std::string payload;
  if (code == 0)
    return payload;
  gsize keep = reason.size();
  if (keep > kMaxControlPayload - 2) {
    keep = kMaxControlPayload - 2;
    /* Back off continuation bytes (10xxxxxx) so no character is split. */
    while (keep > 0 && (static_cast<guint8>(reason[keep]) & 0xc0) == 0x80)
      keep--;
  }
  payload.reserve(2 + keep);
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xff);
  payload.append(reason, 0, keep);
  return payload;
}

bool parse_close(const guint8 *payload, gsize size, guint16 *code, std::string *reason) {
  reason->clear();
  if (size == 0) {
    *code = kCloseNoStatus;
    return true;
  }
  if (size == 1)
    return false;
  *code = static_cast<guint16>((payload[0] << 8) | payload[1]);
  reason->assign(reinterpret_cast<const char *>(payload + 2), size - 2);
  return true;
}

void Decoder::feed(const guint8 *data, gsize size) {
  if (error_code_ != 0 || size == 0)
    return; /* nothing after an error is read */
  /* Drop the consumed prefix when it is most of the buffer: each byte moves O(1) times. */
  if (read_ == buffer_.size()) {
    buffer_.clear();
    read_ = 0;
  } else if (read_ > buffer_.size() / 2) {
    buffer_.erase(0, read_);
    read_ = 0;
  }
  buffer_.append(reinterpret_cast<const char *>(data), size);
}

Decoder::Result Decoder::next(Message *out) {
  auto fail = [this](guint16 code, const char *reason) {
    error_code_ = code;
    error_reason_ = reason;
    buffer_.clear();
    read_ = 0;
    fragments_.clear();
    return Result::Error;
  };
  if (error_code_ != 0)
    return Result::Error;

  for (;;) {
    const auto *p = reinterpret_cast<const guint8 *>(buffer_.data()) + read_;
    gsize available = buffer_.size() - read_;
    if (available < 2)
      return Result::NeedMore;

    bool fin = p[0] & 0x80;
    guint8 opcode = p[0] & 0x0f;
    if (p[0] & 0x70)
      return fail(kCloseProtocolError, "reserved bits set in a frame");
    if (!is_known(opcode))
      return fail(kCloseProtocolError, "unknown opcode");
    if (p[1] & 0x80)
      return fail(kCloseProtocolError, "masked frame from the server");
    if (is_control(opcode) && !fin)
      return fail(kCloseProtocolError, "fragmented control frame");
    if (opcode == 0 && !fragmented_)
      return fail(kCloseProtocolError, "continuation frame with no message begun");
    if (opcode != 0 && !is_control(opcode) && fragmented_)
      return fail(kCloseProtocolError, "new data frame inside a fragmented message");

    guint64 length = p[1] & 0x7f;
    gsize head = 2;
    if (length == 126) {
      head = 4;
      if (available < head)
        return Result::NeedMore;
      length = (static_cast<guint64>(p[2]) << 8) | p[3];
    } else if (length == 127) {
      head = 10;
      if (available < head)
        return Result::NeedMore;
      length = 0;
      for (int i = 2; i < 10; i++)
        length = (length << 8) | p[i];
      if (length >> 63)
        return fail(kCloseProtocolError, "64-bit payload length with the top bit set");
    }
    if (is_control(opcode) && length > kMaxControlPayload)
      return fail(kCloseProtocolError, "control frame longer than 125 bytes");
    if (length > max_payload_)
      return fail(kCloseTooBig, "frame longer than the largest message accepted");
    if (opcode == 0 && fragments_.size() + length > max_payload_)
      return fail(kCloseTooBig, "message longer than the largest message accepted");
    if (available - head < length)
      return Result::NeedMore;

    const char *payload = buffer_.data() + read_ + head;
    read_ += head + length;
    if (opcode == 0) {
      fragments_.append(payload, length);
      if (!fin)
        continue;
      fragmented_ = false;
      out->opcode = fragment_opcode_;
      out->payload.swap(fragments_);
      fragments_.clear();
      return Result::Message;
    }
    if (!fin) {
      fragmented_ = true;
      fragment_opcode_ = static_cast<Opcode>(opcode);
      fragments_.assign(payload, length);
      continue;
    }
    out->opcode = static_cast<Opcode>(opcode);
    out->payload.assign(payload, length);
    return Result::Message;
  }
}

} // namespace qwenasr::ws
