/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of WebSocket framing: RFC 6455 examples, masking, lengths, fragments, errors. */
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

#include "wsframe.h"

using namespace qwenasr::ws;

namespace {

std::string bytes(std::initializer_list<guint8> list) {
  return std::string(list.begin(), list.end());
}

/* A server frame (unmasked), written here independently of the encoder. */
std::string server_frame(guint8 first_byte, const std::string &payload) {
  std::string frame(1, static_cast<char>(first_byte));
  gsize n = payload.size();
  if (n < 126) {
    frame += static_cast<char>(n);
  } else if (n <= 0xffff) {
    frame += bytes({126, static_cast<guint8>(n >> 8), static_cast<guint8>(n)});
  } else {
    frame += static_cast<char>(127);
    for (int shift = 56; shift >= 0; shift -= 8)
      frame += static_cast<char>(static_cast<guint64>(n) >> shift);
  }
  return frame + payload;
}

/* The client frame as a server would see it once unmasked: same bytes without MASK and key.
 * Checks the frame is masked and returns the key through `key`. */
std::string unmask_client_frame(const std::string &frame, guint32 *key) {
  const auto *p = reinterpret_cast<const guint8 *>(frame.data());
  fail_unless(p[1] & 0x80, "a client frame is masked");
  gsize head = 2;
  if ((p[1] & 0x7f) == 126)
    head = 4;
  else if ((p[1] & 0x7f) == 127)
    head = 10;
  const guint8 *mask = p + head;
  *key = (guint32(mask[0]) << 24) | (guint32(mask[1]) << 16) | (guint32(mask[2]) << 8) | mask[3];
  std::string plain = frame.substr(0, head) + frame.substr(head + 4);
  plain[1] = static_cast<char>(p[1] & 0x7f);
  for (gsize i = 0; i < plain.size() - head; i++)
    plain[head + i] = static_cast<char>(plain[head + i] ^ mask[i % 4]);
  return plain;
}

std::vector<Message> decode_all(Decoder &decoder) {
  std::vector<Message> messages;
  Message message;
  Decoder::Result result;
  while ((result = decoder.next(&message)) == Decoder::Result::Message)
    messages.push_back(message);
  fail_unless(result == Decoder::Result::NeedMore, "no error: %s", decoder.error_reason().c_str());
  return messages;
}

std::vector<Message> decode(const std::string &stream, gsize max_payload = 1 << 20) {
  Decoder decoder(max_payload);
  decoder.feed(reinterpret_cast<const guint8 *>(stream.data()), stream.size());
  auto messages = decode_all(decoder);
  fail_unless_equals_uint64(decoder.buffered(), 0);
  return messages;
}

/* The decoder's error (code, and that a reason is given) for `stream`. */
guint16 error_for(const std::string &stream, gsize max_payload = 1 << 20) {
  Decoder decoder(max_payload);
  decoder.feed(reinterpret_cast<const guint8 *>(stream.data()), stream.size());
  Message message;
  Decoder::Result result;
  while ((result = decoder.next(&message)) == Decoder::Result::Message)
    ;
  fail_unless(result == Decoder::Result::Error, "an error is reported");
  fail_if(decoder.error_reason().empty(), "with a reason");
  fail_unless(decoder.next(&message) == Decoder::Result::Error, "and the decoder stays in error");
  return decoder.error_code();
}

} // namespace

GST_START_TEST(test_the_rfc_masked_hello_example_is_encoded_byte_for_byte) {
  std::string out = "kept";
  encode_frame(Opcode::Text, "Hello", 5, 0x37fa213d, &out);
  fail_unless(out == "kept" +
                         bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
              "RFC 6455 §5.7 masked text, appended after what was there");
}
GST_END_TEST;

GST_START_TEST(test_the_rfc_unmasked_examples_are_decoded) {
  auto hello = decode(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  fail_unless_equals_int(hello.size(), 1);
  fail_unless(hello[0].opcode == Opcode::Text);
  fail_unless(hello[0].payload == "Hello");

  auto fragmented = decode(bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}));
  fail_unless_equals_int(fragmented.size(), 1);
  fail_unless(fragmented[0].opcode == Opcode::Text);
  fail_unless(fragmented[0].payload == "Hello");

  auto ping = decode(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  fail_unless_equals_int(ping.size(), 1);
  fail_unless(ping[0].opcode == Opcode::Ping);
  fail_unless(ping[0].payload == "Hello");

  std::string payload256(256, 'x');
  auto binary256 = decode(bytes({0x82, 0x7e, 0x01, 0x00}) + payload256);
  fail_unless_equals_int(binary256.size(), 1);
  fail_unless(binary256[0].opcode == Opcode::Binary);
  fail_unless(binary256[0].payload == payload256);

  std::string payload64k(65536, 'y');
  auto binary64k =
      decode(bytes({0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}) + payload64k);
  fail_unless_equals_int(binary64k.size(), 1);
  fail_unless(binary64k[0].payload == payload64k);
}
GST_END_TEST;

GST_START_TEST(test_every_payload_size_survives_encoding_masking_and_decoding) {
  for (gsize size : {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000}) {
    std::string payload(size, '\0');
    for (gsize i = 0; i < size; i++)
      payload[i] = static_cast<char>(i * 7 + 3);
    std::string frame;
    encode_frame(Opcode::Binary, payload.data(), size, 0x01234567 + size, &frame);
    gsize head = size < 126 ? 2 : size <= 0xffff ? 4 : 10;
    fail_unless_equals_uint64(frame.size(), head + 4 + size);
    fail_unless_equals_int(static_cast<guint8>(frame[0]), 0x82);
    guint32 key;
    std::string plain = unmask_client_frame(frame, &key);
    fail_unless_equals_uint64(key, 0x01234567 + size);
    if (size >= 8)
      fail_if(frame.compare(head + 4, size, payload) == 0, "the payload is masked");
    auto messages = decode(plain, 1 << 20);
    fail_unless_equals_int(messages.size(), 1);
    fail_unless(messages[0].opcode == Opcode::Binary);
    fail_unless(messages[0].payload == payload, "size %" G_GSIZE_FORMAT " round trip", size);
  }
}
GST_END_TEST;

GST_START_TEST(test_feeding_byte_by_byte_gives_the_same_messages) {
  std::string stream =
      bytes({0x81, 0x05}) + "Hello" + bytes({0x01, 0x03}) + "Hel" + bytes({0x89, 0x02}) + "pi" +
      bytes({0x80, 0x02}) + "lo" + server_frame(0x82, std::string(300, 'b')) +
      server_frame(0x82, std::string(70000, 'c')) + bytes({0x88, 0x05, 0x03, 0xe8}) + "bye";
  auto whole = decode(stream);
  fail_unless_equals_int(whole.size(), 6);
  fail_unless(whole[1].opcode == Opcode::Ping, "a control frame between fragments comes at once");
  fail_unless(whole[2].opcode == Opcode::Text && whole[2].payload == "Hello");

  Decoder decoder(1 << 20);
  std::vector<Message> one_by_one;
  for (char c : stream) {
    decoder.feed(reinterpret_cast<const guint8 *>(&c), 1);
    for (auto &m : decode_all(decoder))
      one_by_one.push_back(m);
  }
  fail_unless_equals_uint64(decoder.buffered(), 0);
  fail_unless_equals_int(one_by_one.size(), whole.size());
  for (gsize i = 0; i < whole.size(); i++) {
    fail_unless(one_by_one[i].opcode == whole[i].opcode, "message %" G_GSIZE_FORMAT, i);
    fail_unless(one_by_one[i].payload == whole[i].payload, "message %" G_GSIZE_FORMAT, i);
  }
}
GST_END_TEST;

GST_START_TEST(test_a_partial_frame_waits_and_stays_buffered) {
  std::string frame = server_frame(0x81, "partial");
  Decoder decoder(100);
  decoder.feed(reinterpret_cast<const guint8 *>(frame.data()), 4);
  Message message;
  fail_unless(decoder.next(&message) == Decoder::Result::NeedMore);
  fail_unless_equals_uint64(decoder.buffered(), 4);
  decoder.feed(reinterpret_cast<const guint8 *>(frame.data()) + 4, frame.size() - 4);
  fail_unless(decoder.next(&message) == Decoder::Result::Message);
  fail_unless(message.payload == "partial");
  fail_unless(decoder.next(&message) == Decoder::Result::NeedMore);
}
GST_END_TEST;

GST_START_TEST(test_protocol_violations_are_errors_1002) {
  fail_unless_equals_int(error_for(bytes({0x81, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'})),
                         kCloseProtocolError);                                 /* masked */
  fail_unless_equals_int(error_for(bytes({0xc1, 0x00})), kCloseProtocolError); /* RSV1 */
  fail_unless_equals_int(error_for(bytes({0x91, 0x00})), kCloseProtocolError); /* RSV3 */
  fail_unless_equals_int(error_for(bytes({0x83, 0x00})), kCloseProtocolError); /* opcode 3 */
  fail_unless_equals_int(error_for(bytes({0x8b, 0x00})), kCloseProtocolError); /* opcode B */
  fail_unless_equals_int(error_for(server_frame(0x89, std::string(126, 'p'))),
                         kCloseProtocolError); /* control frame > 125 */
  fail_unless_equals_int(error_for(bytes({0x09, 0x00})), kCloseProtocolError); /* no FIN */
  fail_unless_equals_int(error_for(bytes({0x80, 0x01, 'x'})),
                         kCloseProtocolError); /* continuation, no message */
  fail_unless_equals_int(error_for(bytes({0x01, 0x01, 'a', 0x81, 0x01, 'b'})),
                         kCloseProtocolError); /* new data frame inside fragments */
  fail_unless_equals_int(error_for(bytes({0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1})),
                         kCloseProtocolError); /* 64-bit length, top bit set */
}
GST_END_TEST;

GST_START_TEST(test_a_frame_beyond_max_payload_is_an_error_1009_before_its_payload_arrives) {
  /* Only the head of a 11-byte frame: refused at once, nothing buffered waiting for it. */
  fail_unless_equals_int(error_for(bytes({0x82, 0x0b}), 10), kCloseTooBig);
  fail_unless_equals_int(error_for(bytes({0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0}), 1 << 20),
                         kCloseTooBig);
  auto exact = decode(server_frame(0x82, std::string(10, 'x')), 10);
  fail_unless_equals_int(exact.size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_a_fragmented_message_beyond_max_payload_is_an_error_1009) {
  std::string stream = server_frame(0x02, std::string(6, 'a')) + server_frame(0x80, "bcdef");
  fail_unless_equals_int(error_for(stream, 10), kCloseTooBig);
  auto exact = decode(server_frame(0x02, std::string(6, 'a')) + server_frame(0x80, "bcde"), 10);
  fail_unless_equals_int(exact.size(), 1);
  fail_unless_equals_int(exact[0].payload.size(), 10);
}
GST_END_TEST;

GST_START_TEST(test_bytes_after_an_error_are_not_decoded_nor_kept) {
  Decoder decoder(100);
  std::string bad = bytes({0xc1, 0x00});
  decoder.feed(reinterpret_cast<const guint8 *>(bad.data()), bad.size());
  Message message;
  fail_unless(decoder.next(&message) == Decoder::Result::Error);
  fail_unless_equals_int(decoder.error_code(), kCloseProtocolError);
  std::string good = server_frame(0x81, "ok");
  decoder.feed(reinterpret_cast<const guint8 *>(good.data()), good.size());
  fail_unless(decoder.next(&message) == Decoder::Result::Error);
  fail_unless_equals_uint64(decoder.buffered(), 0);
}
GST_END_TEST;

GST_START_TEST(test_close_payloads_round_trip) {
  std::string payload = close_payload(kCloseGoingAway, "bye");
  fail_unless(payload == bytes({0x03, 0xe9}) + "bye");
  guint16 code = 0;
  std::string reason = "stale";
  fail_unless(parse_close(reinterpret_cast<const guint8 *>(payload.data()), payload.size(), &code,
                          &reason));
  fail_unless_equals_int(code, kCloseGoingAway);
  fail_unless(reason == "bye");

  fail_unless(close_payload(0, "ignored").empty(), "code 0: empty payload");
  fail_unless(parse_close(nullptr, 0, &code, &reason));
  fail_unless_equals_int(code, kCloseNoStatus);
  fail_unless(reason.empty());
  const guint8 one = 0x03;
  fail_if(parse_close(&one, 1, &code, &reason), "a one-byte Close payload is malformed");
}
GST_END_TEST;

GST_START_TEST(test_a_long_close_reason_is_cut_at_a_utf8_boundary) {
  std::string ascii = close_payload(kCloseNormal, std::string(200, 'a'));
  fail_unless_equals_int(ascii.size(), 125);
  /* "é" (2 bytes) would straddle byte 123 of the reason: it goes whole. */
  std::string accented = close_payload(kCloseNormal, std::string(122, 'a') + "\xc3\xa9");
  fail_unless_equals_int(accented.size(), 2 + 122);
  fail_unless(accented.substr(2) == std::string(122, 'a'));
  /* "€" (3 bytes) from byte 121: also dropped whole. */
  std::string euro = close_payload(kCloseNormal, std::string(121, 'a') + "\xe2\x82\xac" + "zz");
  fail_unless_equals_int(euro.size(), 2 + 121);
  /* Exactly 123 bytes: kept whole. */
  std::string fits = close_payload(kCloseNormal, std::string(121, 'a') + "\xc3\xa9");
  fail_unless_equals_int(fits.size(), 125);
}
GST_END_TEST;

static Suite *wsframe_suite() {
  Suite *s = suite_create("wsframe");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_the_rfc_masked_hello_example_is_encoded_byte_for_byte);
  tcase_add_test(tc, test_the_rfc_unmasked_examples_are_decoded);
  tcase_add_test(tc, test_every_payload_size_survives_encoding_masking_and_decoding);
  tcase_add_test(tc, test_feeding_byte_by_byte_gives_the_same_messages);
  tcase_add_test(tc, test_a_partial_frame_waits_and_stays_buffered);
  tcase_add_test(tc, test_protocol_violations_are_errors_1002);
  tcase_add_test(tc, test_a_frame_beyond_max_payload_is_an_error_1009_before_its_payload_arrives);
  tcase_add_test(tc, test_a_fragmented_message_beyond_max_payload_is_an_error_1009);
  tcase_add_test(tc, test_bytes_after_an_error_are_not_decoded_nor_kept);
  tcase_add_test(tc, test_close_payloads_round_trip);
  tcase_add_test(tc, test_a_long_close_reason_is_cut_at_a_utf8_boundary);
  return s;
}

GST_CHECK_MAIN(wsframe);
