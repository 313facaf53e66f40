// SPDX-License-Identifier: LGPL-2.1-or-later
/* The JSON writer and readers of the local service (see json.h). */
#include "json.h"

#include <cmath>

namespace qwenasr::local {

std::string random_id(const char *prefix) {
  static const char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = prefix;
  for (int i = 0; i < 21; i++)
    id += kAlnum[g_random_int_range(0, 62)];
  return id;
}

std::string jstr(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      o += "\\\"";
      break;
    case '\\':
      o += "\\\\";
      break;
    case '\n':
      o += "\\n";
      break;
    case '\r':
      o += "\\r";
      break;
    case '\t':
      o += "\\t";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        g_snprintf(buf, sizeof buf, "\\u%04x", c);
        o += buf;
      } else {
        o += static_cast<char>(c);
      }
    }
  }
  return o + "\"";
}

std::string jint(gint64 v) {
  return std::to_string(v);
}

std::string jdbl(double d) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int prec = 1; prec <= 17; prec++) {
    char fmt[8];
    g_snprintf(fmt, sizeof fmt, "%%.%dg", prec);
    g_ascii_formatd(buf, sizeof buf, fmt, d);
    if (g_ascii_strtod(buf, nullptr) == d)
      break;
  }
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos)
    s += ".0"; // keep it visibly a float, like the documented examples
  return s;
}

std::string jopt(const std::optional<std::string> &s) {
  return s ? jstr(*s) : "null";
}

std::string jobj(Members members) {
  std::string o = "{";
  bool first = true;
  for (const auto &m : members) {
    if (!first)
      o += ',';
    first = false;
    o += jstr(m.first);
    o += ':';
    o += m.second;
  }
  return o + "}";
}

std::string node_text(JsonNode *node) {
  if (is_string(node))
    return json_node_get_string(node);
  char *t = json_to_string(node, FALSE);
  std::string s = t ? t : "";
  g_free(t);
  return s;
}

const char *node_kind(JsonNode *node) {
  if (JSON_NODE_HOLDS_OBJECT(node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY(node))
    return "an array";
  if (JSON_NODE_HOLDS_NULL(node))
    return "null";
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_STRING)
    return "a string";
  if (t == G_TYPE_BOOLEAN)
    return "a boolean";
  return "a number";
}

bool is_string(JsonNode *node) {
  return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

bool is_number(JsonNode *node) {
  if (!JSON_NODE_HOLDS_VALUE(node))
    return false;
  GType t = json_node_get_value_type(node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

bool as_integer(JsonNode *node, gint64 &out) {
  if (!JSON_NODE_HOLDS_VALUE(node))
    return false;
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_INT64) {
    out = json_node_get_int(node);
    return true;
  }
  if (t == G_TYPE_DOUBLE) {
    double d = json_node_get_double(node);
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
      out = static_cast<gint64>(d);
      return true;
    }
  }
  return false;
}

JsonNode *member(JsonObject *obj, const char *name) {
  JsonNode *n = json_object_get_member(obj, name);
  return (n && !JSON_NODE_HOLDS_NULL(n)) ? n : nullptr;
}

} // namespace qwenasr::local
