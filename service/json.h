// SPDX-License-Identifier: LGPL-2.1-or-later
/* JSON helpers of the local Qwen-ASR stand-in service: a tiny writer with fixed key order and
 * short numbers (json-glib prints 0.2 as 0.20000000000000001, which is legal but unlike the real
 * service), readers of json-glib nodes that tolerate what clients send, and event/item ids. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

namespace qwenasr::local {

/* prefix + 21 random letters and digits, like the real service's ids ("event_", "item_"). */
std::string random_id(const char *prefix);

/* --- Writing --- */

std::string jstr(const std::string &s); // a JSON string literal, escaped
std::string jint(gint64 v);
std::string jdbl(double d); // shortest form that reads back equal, always with "." or exponent
std::string jopt(const std::optional<std::string> &s); // jstr or null

using Members = std::initializer_list<std::pair<const char *, std::string>>;
/* {"key":value,...} in the given order; values are JSON text already. */
std::string jobj(Members members);

/* --- Reading --- */

/* A string's value, or any other node as JSON text. */
std::string node_text(JsonNode *node);
/* "an object", "an array", "null", "a string", "a boolean" or "a number", for error messages. */
const char *node_kind(JsonNode *node);
bool is_string(JsonNode *node);
bool is_number(JsonNode *node);
/* Integers may arrive as 800 or 800.0 depending on the client's JSON library. */
bool as_integer(JsonNode *node, gint64 &out);
/* A member that is absent or JSON null counts as not given: the docs' SDKs send nulls. */
JsonNode *member(JsonObject *obj, const char *name);

} // namespace qwenasr::local
