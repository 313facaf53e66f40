/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's WebSocket opening handshake: the upgrade request written, the answer checked. */
#include "wshandshake.h"

#include <cstring>

namespace qwenasr::ws {

namespace {

constexpr char kAcceptGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Request fields are cut at their first CR or LF (not dropped): nothing the caller passes can
 * end a line or add one, and a value with a stray trailing newline still works. */
std::string one_line(const std::string &value) {
  return value.substr(0, value.find_first_of("\r\n"));
}

std::string trimmed(const char *begin, const char *end) {
  while (begin < end && (*begin == ' ' || *begin == '\t'))
    begin++;
  while (end > begin && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  return std::string(begin, end);
}

bool parse_status_line(const char *line, const char *end, Response *out) {
  /* "HTTP/1.x NNN[ reason]" */
  if (end - line < 12 || std::strncmp(line, "HTTP/1.", 7) != 0 || !g_ascii_isdigit(line[7]) ||
      line[8] != ' ')
    return false;
  guint status = 0;
  for (int i = 9; i < 12; i++) {
    if (!g_ascii_isdigit(line[i]))
      return false;
    status = status * 10 + (line[i] - '0');
  }
  if (end - line > 12 && line[12] != ' ')
    return false;
  out->status = status;
  out->reason = end - line > 12 ? trimmed(line + 13, end) : std::string();
  return true;
}

/* Whether the comma-separated `list` holds `token`, case-insensitively. */
bool has_token(const std::string &list, const char *token) {
  const char *p = list.c_str();
  const char *list_end = p + list.size();
  while (p < list_end) {
    const char *comma = static_cast<const char *>(std::memchr(p, ',', list_end - p));
    const char *item_end = comma ? comma : list_end;
    if (g_ascii_strcasecmp(trimmed(p, item_end).c_str(), token) == 0)
      return true;
    p = item_end + 1;
  }
  return false;
}

} // namespace

std::string new_key() {
  guint8 bytes[16];
  for (int i = 0; i < 4; i++) {
    guint32 r = g_random_int();
    for (int j = 0; j < 4; j++)
      bytes[i * 4 + j] = static_cast<guint8>(r >> (24 - 8 * j));
  }
  gchar *encoded = g_base64_encode(bytes, sizeof bytes);
  std::string key(encoded);
  g_free(encoded);
  return key;
}

std::string accept_for_key(const std::string &key) {
  GChecksum *sha1 = g_checksum_new(G_CHECKSUM_SHA1);
  g_checksum_update(sha1, reinterpret_cast<const guchar *>(key.data()), key.size());
  g_checksum_update(sha1, reinterpret_cast<const guchar *>(kAcceptGuid), sizeof kAcceptGuid - 1);
  guint8 digest[20];
  gsize digest_size = sizeof digest;
  g_checksum_get_digest(sha1, digest, &digest_size);
  g_checksum_free(sha1);
  gchar *encoded = g_base64_encode(digest, digest_size);
  std::string accept(encoded);
  g_free(encoded);
  return accept;
}

std::string encode_request(const std::string &host, const std::string &target,
                           const std::string &key, const Headers &extra) {
  std::string path = one_line(target);
  std::string request = "GET " + (path.empty() ? std::string("/") : path) + " HTTP/1.1\r\n";
  request += "Host: " + one_line(host) + "\r\n";
  request += "Upgrade: websocket\r\n";
  request += "Connection: Upgrade\r\n";
  request += "Sec-WebSocket-Key: " + one_line(key) + "\r\n";
  request += "Sec-WebSocket-Version: 13\r\n";
  for (const auto &[name, value] : extra)
    request += one_line(name) + ": " + one_line(value) + "\r\n";
  request += "\r\n";
  return request;
}

const std::string *Response::header(const char *name) const {
  for (const auto &[key, value] : headers)
    if (g_ascii_strcasecmp(key.c_str(), name) == 0)
      return &value;
  return nullptr;
}

gssize parse_response(const char *data, gsize size, Response *out, std::string *problem) {
  *out = Response();
  const char *end = data + MIN(size, kMaxResponseHead);
  bool first = true;
  for (const char *line = data; line < end;) {
    const char *newline = static_cast<const char *>(std::memchr(line, '\n', end - line));
    if (!newline)
      break;
    const char *line_end = newline > line && newline[-1] == '\r' ? newline - 1 : newline;
    if (first) {
      if (!parse_status_line(line, line_end, out)) {
        *problem = "the server's answer does not begin with an HTTP/1.x status line";
        return -1;
      }
      first = false;
    } else if (line_end == line) {
      return newline + 1 - data;
    } else {
      const char *colon = static_cast<const char *>(std::memchr(line, ':', line_end - line));
      if (!colon || colon == line) {
        *problem = "the server's answer has a header line without a name and ':'";
        return -1;
      }
      out->headers.emplace_back(std::string(line, colon), trimmed(colon + 1, line_end));
    }
    line = newline + 1;
  }
  if (size >= kMaxResponseHead) {
    *problem = "the server's answer has a head longer than 16 KiB";
    return -1;
  }
  return 0;
}

bool verify_response(const Response &response, const std::string &key, std::string *problem) {
  if (response.status != 101) {
    *problem = "the server answered HTTP " + std::to_string(response.status) +
               (response.reason.empty() ? "" : " " + response.reason) +
               " instead of switching to WebSocket (101)";
    return false;
  }
  const std::string *upgrade = response.header("Upgrade");
  if (!upgrade || g_ascii_strcasecmp(upgrade->c_str(), "websocket") != 0) {
    *problem = "the server's 101 answer lacks \"Upgrade: websocket\"";
    return false;
  }
  const std::string *connection = response.header("Connection");
  if (!connection || !has_token(*connection, "upgrade")) {
    *problem = "the server's 101 answer lacks \"Connection: Upgrade\"";
    return false;
  }
  const std::string *accept = response.header("Sec-WebSocket-Accept");
  if (!accept || *accept != accept_for_key(key)) {
    *problem = "the server's Sec-WebSocket-Accept does not match the key sent";
    return false;
  }
  return true;
}

} // namespace qwenasr::ws
