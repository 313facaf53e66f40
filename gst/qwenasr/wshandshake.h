/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The WebSocket opening handshake of RFC 6455 §4, client side: the HTTP/1.1 upgrade request
 * and the check of the server's answer. A pure unit: no I/O. */
#pragma once

#include <glib.h>

#include <string>
#include <utility>
#include <vector>

namespace qwenasr::ws {

using Headers = std::vector<std::pair<std::string, std::string>>;

/* A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
std::string new_key();

/* base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) (RFC 6455 §4.2.2). */
std::string accept_for_key(const std::string &key);

/* "GET <target> HTTP/1.1" with Host, Upgrade, Connection, Sec-WebSocket-Key and
 * Sec-WebSocket-Version: 13, then `extra` in order, then the blank line. `host` is the Host
 * header's value (host, or host:port when the port is not the scheme's default; IPv6 in
 * brackets); `target` the path and query ("/" if empty). */
std::string encode_request(const std::string &host, const std::string &target,
                           const std::string &key, const Headers &extra);

struct Response {
  guint status = 0;   /* e.g. 101, 401 */
  std::string reason; /* the reason phrase, possibly empty */
  Headers headers;    /* in order received; values trimmed of surrounding spaces/tabs */
  /* The first header of that name, case-insensitively; null if absent. */
  const std::string *header(const char *name) const;
};

/* Parses a response head (status line and headers, CRLF or bare LF line ends) from the start
 * of `data`. Returns the bytes it took including the blank line that ends it (what follows
 * already belongs to the WebSocket stream); 0 if the blank line has not arrived yet; -1 if the
 * head is malformed (not "HTTP/1.x NNN", a header line without ':'), with `problem` saying
 * why. Heads longer than kMaxResponseHead are malformed. */
constexpr gsize kMaxResponseHead = 16 * 1024;
gssize parse_response(const char *data, gsize size, Response *out, std::string *problem);

/* Whether a parsed response completes the handshake for `key`: status 101, "Upgrade:
 * websocket" and "Connection" holding the token "upgrade" (both case-insensitive), and the
 * right Sec-WebSocket-Accept. Otherwise false and a sentence in `problem`. */
bool verify_response(const Response &response, const std::string &key, std::string *problem);

} // namespace qwenasr::ws
