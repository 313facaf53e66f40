/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* WebSocket framing (RFC 6455 §5) for the client side: frames we send are encoded whole and
 * masked, frames the server sends are decoded from a byte stream into messages. A pure unit:
 * no I/O, no locking. */
#pragma once

#include <glib.h>

#include <string>

namespace qwenasr::ws {

enum class Opcode : guint8 {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xA,
};

/* Close status codes (RFC 6455 §7.4.1). 1005 and 1006 are never sent: they stand for "no code
 * in the Close frame" and "the connection ended without a Close frame". */
constexpr guint16 kCloseNormal = 1000;
constexpr guint16 kCloseGoingAway = 1001;
constexpr guint16 kCloseProtocolError = 1002;
constexpr guint16 kCloseNoStatus = 1005;
constexpr guint16 kCloseAbnormal = 1006;
constexpr guint16 kCloseTooBig = 1009;

/* Appends one complete frame (FIN set, no extensions) carrying `payload`, masked with
 * `mask_key` as a client must (RFC 6455 §5.3), to `out`. */
void encode_frame(Opcode opcode, const void *payload, gsize size, guint32 mask_key,
                  std::string *out);

/* The payload of a Close frame: the code (big-endian) and the reason, cut to the 123 bytes a
 * control frame leaves (at a UTF-8 character boundary). Code 0: an empty payload. */
std::string close_payload(guint16 code, const std::string &reason);

/* Splits a received Close payload: an empty one gives kCloseNoStatus and no reason. False for
 * a one-byte payload (malformed). The reason is passed on as sent (not validated). */
bool parse_close(const guint8 *payload, gsize size, guint16 *code, std::string *reason);

/* A complete message from the server: a data message (Text or Binary; fragments joined) or a
 * control frame (Close, Ping, Pong). */
struct Message {
  Opcode opcode = Opcode::Text;
  std::string payload;
};

/* Decodes the server's byte stream. Text payloads are passed on as bytes, not checked for
 * UTF-8: the event decoder repairs what it can (asrprotocol.h). */
class Decoder {
public:
  /* Messages (and frames) longer than `max_payload` bytes are an error (1009). */
  explicit Decoder(gsize max_payload) : max_payload_(max_payload) {}

  /* Takes bytes as they arrive from the socket (any split). */
  void feed(const guint8 *data, gsize size);

  enum class Result { Message, NeedMore, Error };
  /* The next complete message, if the bytes fed so far hold one. Error on a protocol
   * violation: a masked server frame, reserved bits set, an unknown opcode, a control frame
   * longer than 125 bytes or fragmented, a continuation with no message begun, a new data
   * frame inside a fragmented message (all 1002), or a frame or message beyond max_payload
   * (1009); the decoder then stays in error and error_code()/error_reason() say why. */
  Result next(Message *out);

  guint16 error_code() const { return error_code_; }
  const std::string &error_reason() const { return error_reason_; }
  /* Bytes fed and not yet consumed by a message (for tests and bounds). */
  gsize buffered() const { return buffer_.size() - read_; }

private:
  gsize max_payload_;
  std::string buffer_; /* fed bytes; consumed up to read_, compacted now and then */
  gsize read_ = 0;
  bool fragmented_ = false; /* a Text/Binary message without FIN is being joined */
  Opcode fragment_opcode_ = Opcode::Text;
  std::string fragments_;
  guint16 error_code_ = 0;
  std::string error_reason_;
};

} // namespace qwenasr::ws
