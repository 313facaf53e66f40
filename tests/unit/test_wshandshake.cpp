/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the WebSocket opening handshake: key, accept, request bytes, response checks. */
#include <string>

#include <gst/check/gstcheck.h>

#include "wshandshake.h"

using namespace qwenasr::ws;

namespace {

constexpr char kRfcKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr char kRfcAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

gssize parse(const std::string &head, Response *response, std::string *problem) {
  return parse_response(head.data(), head.size(), response, problem);
}

Response parsed(const std::string &head) {
  Response response;
  std::string problem;
  gssize used = parse(head, &response, &problem);
  fail_unless(used > 0, "parsed: %s", problem.c_str());
  return response;
}

std::string switching(const std::string &headers) {
  return "HTTP/1.1 101 Switching Protocols\r\n" + headers + "\r\n";
}

const std::string kGoodHeaders = std::string("Upgrade: websocket\r\nConnection: Upgrade\r\n") +
                                 "Sec-WebSocket-Accept: " + kRfcAccept + "\r\n";

} // namespace

GST_START_TEST(test_the_accept_value_is_the_rfc_example) {
  fail_unless(accept_for_key(kRfcKey) == kRfcAccept);
}
GST_END_TEST;

GST_START_TEST(test_a_new_key_is_16_random_bytes_in_base64) {
  std::string a = new_key();
  std::string b = new_key();
  fail_unless_equals_int(a.size(), 24);
  gsize size = 0;
  guchar *decoded = g_base64_decode(a.c_str(), &size);
  g_free(decoded);
  fail_unless_equals_uint64(size, 16);
  fail_if(a == b, "two keys differ");
}
GST_END_TEST;

GST_START_TEST(test_the_request_is_exactly_the_upgrade_with_extra_headers_in_order) {
  std::string request =
      encode_request("example.com:8080", "/api/ws?model=x", kRfcKey,
                     {{"Authorization", "Bearer token"}, {"OpenAI-Beta", "realtime=v1"}});
  std::string expected = std::string("GET /api/ws?model=x HTTP/1.1\r\n") +
                         "Host: example.com:8080\r\n" + "Upgrade: websocket\r\n" +
                         "Connection: Upgrade\r\n" + "Sec-WebSocket-Key: " + kRfcKey + "\r\n" +
                         "Sec-WebSocket-Version: 13\r\n" + "Authorization: Bearer token\r\n" +
                         "OpenAI-Beta: realtime=v1\r\n" + "\r\n";
  fail_unless(request == expected, "request:\n%s", request.c_str());
}
GST_END_TEST;

GST_START_TEST(test_an_empty_target_requests_the_root) {
  std::string request = encode_request("h", "", kRfcKey, {});
  fail_unless(g_str_has_prefix(request.c_str(), "GET / HTTP/1.1\r\nHost: h\r\n"));
}
GST_END_TEST;

GST_START_TEST(test_a_line_break_in_a_header_value_never_reaches_the_request) {
  std::string request = encode_request(
      "h", "/", kRfcKey, {{"Authorization", "Bearer token\n"}, {"X-Evil", "a\r\nInjected: yes"}});
  fail_unless(request.find("Authorization: Bearer token\r\n") != std::string::npos,
              "cut at the line break");
  fail_unless(request.find("X-Evil: a\r\n") != std::string::npos, "cut at the line break");
  fail_unless(request.find("Injected") == std::string::npos, "no header smuggled in");
  /* Only CRLF pairs, and the head ends once. */
  for (gsize i = 0; i < request.size(); i++)
    if (request[i] == '\n')
      fail_unless(i > 0 && request[i - 1] == '\r', "bare LF at %" G_GSIZE_FORMAT, i);
  fail_unless_equals_uint64(request.find("\r\n\r\n"), request.size() - 4);
}
GST_END_TEST;

GST_START_TEST(test_a_101_head_is_parsed_and_the_bytes_after_it_are_left) {
  std::string head = switching("upgrade:  websocket \r\nConnection:keep-alive, Upgrade\r\n");
  std::string data = head + "\x81\x02hi";
  Response response;
  std::string problem;
  gssize used = parse(data, &response, &problem);
  fail_unless_equals_int(used, head.size());
  fail_unless_equals_int(response.status, 101);
  fail_unless(response.reason == "Switching Protocols");
  fail_unless_equals_int(response.headers.size(), 2);
  fail_unless(response.headers[0].first == "upgrade");
  const std::string *upgrade = response.header("UPGRADE");
  fail_unless(upgrade && *upgrade == "websocket", "found case-insensitively, trimmed");
  fail_unless(response.header("Sec-WebSocket-Accept") == nullptr);
}
GST_END_TEST;

GST_START_TEST(test_bare_lf_line_ends_are_accepted) {
  std::string head = "HTTP/1.0 401\nWWW-Authenticate: Bearer\n\n";
  Response response;
  std::string problem;
  fail_unless_equals_int(parse(head + "body", &response, &problem), head.size());
  fail_unless_equals_int(response.status, 401);
  fail_unless(response.reason.empty());
}
GST_END_TEST;

GST_START_TEST(test_an_incomplete_head_needs_more) {
  std::string head = switching(kGoodHeaders);
  Response response;
  std::string problem;
  for (gsize n = 0; n < head.size(); n++)
    fail_unless_equals_int(parse_response(head.data(), n, &response, &problem), 0);
  fail_unless_equals_int(parse(head, &response, &problem), head.size());
}
GST_END_TEST;

GST_START_TEST(test_a_malformed_head_is_refused_with_a_problem) {
  for (const char *head :
       {"HTTP/2 101 Switching Protocols\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 1O1 x\r\n\r\n", "HTTP/1.1 101x\r\n\r\n",
        "HTTP/1.1 101 OK\r\nno colon here\r\n\r\n", "HTTP/1.1 101 OK\r\n: no name\r\n\r\n"}) {
    Response response;
    std::string problem;
    fail_unless_equals_int(parse(head, &response, &problem), -1);
    fail_if(problem.empty(), "a problem for %s", head);
  }
}
GST_END_TEST;

GST_START_TEST(test_a_head_longer_than_the_limit_is_refused) {
  std::string head = "HTTP/1.1 101 OK\r\n";
  while (head.size() < kMaxResponseHead)
    head += "X-Filler: 0123456789012345678901234567890123456789\r\n";
  Response response;
  std::string problem;
  fail_unless_equals_int(parse(head, &response, &problem), -1); /* no blank line within it */
  fail_if(problem.empty());
  fail_unless_equals_int(parse(head + "\r\n", &response, &problem), -1);
}
GST_END_TEST;

GST_START_TEST(test_a_proper_101_completes_the_handshake) {
  std::string problem;
  fail_unless(verify_response(parsed(switching(kGoodHeaders)), kRfcKey, &problem), "%s",
              problem.c_str());
  std::string listed = std::string("Upgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n") +
                       "Sec-WebSocket-Accept: " + kRfcAccept + "\r\n";
  fail_unless(verify_response(parsed(switching(listed)), kRfcKey, &problem), "%s", problem.c_str());
}
GST_END_TEST;

GST_START_TEST(test_a_wrong_accept_fails_the_handshake) {
  std::string headers = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
  std::string problem;
  fail_if(verify_response(parsed(switching(headers)), kRfcKey, &problem));
  fail_unless(problem.find("Sec-WebSocket-Accept") != std::string::npos, "%s", problem.c_str());
  problem.clear();
  fail_if(verify_response(parsed(switching(kGoodHeaders)), "b3RoZXIga2V5IDEyMzQ1Ng==", &problem),
          "the accept belongs to another key");
  fail_if(problem.empty());
}
GST_END_TEST;

GST_START_TEST(test_a_missing_upgrade_fails_the_handshake) {
  std::string headers =
      std::string("Connection: Upgrade\r\nSec-WebSocket-Accept: ") + kRfcAccept + "\r\n";
  std::string problem;
  fail_if(verify_response(parsed(switching(headers)), kRfcKey, &problem));
  fail_unless(problem.find("Upgrade") != std::string::npos, "%s", problem.c_str());
  std::string no_token = std::string("Upgrade: websocket\r\nConnection: keep-alive\r\n") +
                         "Sec-WebSocket-Accept: " + kRfcAccept + "\r\n";
  problem.clear();
  fail_if(verify_response(parsed(switching(no_token)), kRfcKey, &problem),
          "Connection without the upgrade token");
  fail_if(problem.empty());
}
GST_END_TEST;

GST_START_TEST(test_a_401_fails_the_handshake_naming_the_status) {
  std::string problem;
  fail_if(verify_response(parsed("HTTP/1.1 401 Unauthorized\r\n" + kGoodHeaders + "\r\n"), kRfcKey,
                          &problem));
  fail_unless(problem.find("401") != std::string::npos, "%s", problem.c_str());
}
GST_END_TEST;

static Suite *wshandshake_suite() {
  Suite *s = suite_create("wshandshake");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_the_accept_value_is_the_rfc_example);
  tcase_add_test(tc, test_a_new_key_is_16_random_bytes_in_base64);
  tcase_add_test(tc, test_the_request_is_exactly_the_upgrade_with_extra_headers_in_order);
  tcase_add_test(tc, test_an_empty_target_requests_the_root);
  tcase_add_test(tc, test_a_line_break_in_a_header_value_never_reaches_the_request);
  tcase_add_test(tc, test_a_101_head_is_parsed_and_the_bytes_after_it_are_left);
  tcase_add_test(tc, test_bare_lf_line_ends_are_accepted);
  tcase_add_test(tc, test_an_incomplete_head_needs_more);
  tcase_add_test(tc, test_a_malformed_head_is_refused_with_a_problem);
  tcase_add_test(tc, test_a_head_longer_than_the_limit_is_refused);
  tcase_add_test(tc, test_a_proper_101_completes_the_handshake);
  tcase_add_test(tc, test_a_wrong_accept_fails_the_handshake);
  tcase_add_test(tc, test_a_missing_upgrade_fails_the_handshake);
  tcase_add_test(tc, test_a_401_fails_the_handshake_naming_the_status);
  return s;
}

GST_CHECK_MAIN(wshandshake);
