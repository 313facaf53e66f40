// SPDX-License-Identifier: LGPL-2.1-or-later
/* A local-service session's connection and events (see session.h): the client's events
 * dispatched and answered, every server event written through the outgoing queue, and the fault
 * hook after each append. The audio side is in session_audio.cpp. */
#include "session.h"

#include <cstring>
#include <utility>

namespace qwenasr::local {

namespace {
constexpr size_t kMaxAudioField = 15u * 1024u * 1024u; // documented limit of the Base64 string
} // namespace

Session::Session(SessionOwner &owner, SoupWebsocketConnection *conn, GSocket *socket, size_t record,
                 std::string id, std::string model)
    : owner_(owner), conn_(SOUP_WEBSOCKET_CONNECTION(g_object_ref(conn))),
      socket_(socket ? G_SOCKET(g_object_ref(socket)) : nullptr), record_(record),
      id_(std::move(id)), model_(std::move(model)),
      faults_(owner.options().faults, static_cast<guint>(record + 1)),
      outbox_(owner.context(), *this, faults_.event_delay_ms()) {
  g_signal_connect(conn_, "message", G_CALLBACK(on_message_cb), this);
  g_signal_connect(conn_, "closed", G_CALLBACK(on_closed_cb), this);
  g_signal_connect(conn_, "error", G_CALLBACK(on_error_cb), this);
}

Session::~Session() {
  cancel_close_timer();
  outbox_.clear();
  g_signal_handlers_disconnect_by_data(conn_, this);
  g_object_unref(conn_);
  if (socket_)
    g_object_unref(socket_);
}

void Session::send_created() {
  send("session.created", {{"session", session_object_json(cfg_, id_, model_, false)}});
}

void Session::close_for_shutdown() {
  cancel_close_timer();
  outbox_.clear();
  order_.clear();
  if (soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
    server_closing_ = true;
    soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "service stopping");
  }
}

// ---- GLib callbacks ----

void Session::on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data) {
  auto *self = static_cast<Session *>(data);
  try {
    self->on_message(type, message);
  } catch (const std::exception &e) {
    g_warning("local service: session %s: %s", self->id_.c_str(), e.what());
  } catch (...) {
    g_warning("local service: session %s: unknown exception", self->id_.c_str());
  }
}

void Session::on_closed_cb(SoupWebsocketConnection *, gpointer data) {
  auto *self = static_cast<Session *>(data);
  try {
    self->on_closed(); // may delete self
  } catch (...) {
    g_warning("local service: exception while closing a session");
  }
}

void Session::on_error_cb(SoupWebsocketConnection *, GError *error, gpointer data) {
  auto *self = static_cast<Session *>(data);
  try {
    self->owner_.log(self->id_ + " !! " + (error ? error->message : "unknown error"));
  } catch (...) {
  }
}

gboolean Session::on_close_timeout_cb(gpointer data) {
  auto *self = static_cast<Session *>(data);
  g_source_unref(self->close_timer_);
  self->close_timer_ = nullptr;
  if (soup_websocket_connection_get_state(self->conn_) == SOUP_WEBSOCKET_STATE_OPEN) {
    self->server_closing_ = true;
    soup_websocket_connection_close(self->conn_, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
  }
  return G_SOURCE_REMOVE;
}

void Session::cancel_close_timer() {
  if (close_timer_) {
    g_source_destroy(close_timer_);
    g_source_unref(close_timer_);
    close_timer_ = nullptr;
  }
}

void Session::on_closed() {
  closed_ = true;
  cancel_close_timer();
  outbox_.clear();
  order_.clear();
  // Closing without session.finish drops the utterance in progress silently (docs/protocol.md
  // §2.4).
  rec_.reset();
  finishing_.clear(); // cancels decodes nobody will read
  const bool by_client = !server_closing_;
  owner_.update_record(record_, [&](SessionRecord &r) {
    r.closed = true;
    r.closed_by_client = by_client;
  });
  owner_.log(id_ + " closed (" + (by_client ? "by client" : "by service") + ", code " +
             std::to_string(soup_websocket_connection_get_close_code(conn_)) + ")");
  owner_.session_closed(this); // deletes this unless shutting down
}

// ---- Sending ----

void Session::send(const char *type, Members body, const std::string *transcript) {
  // Members is an initializer_list (its array dies with this call), so it is copied.
  std::optional<std::string> t;
  if (transcript)
    t = *transcript;
  order_.in_order([this, type = std::string(type), members = MemberList(body.begin(), body.end()),
                   t] { send_now(type.c_str(), members, t ? &*t : nullptr); });
}

void Session::send_now(const char *type, const MemberList &body, const std::string *transcript) {
  std::string json = "{\"event_id\":" + jstr(random_id("event_")) + ",\"type\":" + jstr(type);
  for (const auto &m : body)
    json += "," + jstr(m.first) + ":" + m.second;
  json += "}";
  if (std::strcmp(type, "session.created") != 0) {
    for (auto &j : faults_.junk_before_event()) {
      Outgoing o;
      o.kind = j.binary ? Outgoing::Kind::Binary : Outgoing::Kind::Text;
      o.data = std::move(j.data);
      o.junk = j.what;
      outbox_.post(std::move(o));
    }
  }
  Outgoing o;
  o.data = std::move(json);
  o.type = type;
  if (transcript) {
    o.transcript = *transcript;
    if (faults_.finals_binary())
      o.kind = Outgoing::Kind::Binary; // libsoup sends no text that is not UTF-8
  }
  outbox_.post(std::move(o));
}

void Session::send_error(const ClientError &e, const std::optional<std::string> &client_event_id) {
  send("error", {{"error", jobj({{"type", jstr("invalid_request_error")},
                                 {"code", jstr(e.code)},
                                 {"message", jstr(e.message)},
                                 {"param", jopt(e.param)},
                                 {"event_id", jopt(client_event_id)}})}});
}

void Session::write(const Outgoing &o) {
  if (soup_websocket_connection_get_state(conn_) != SOUP_WEBSOCKET_STATE_OPEN) {
    owner_.log(id_ + " -x " + (o.junk ? o.junk : o.type) + " dropped (connection not open)");
    return;
  }
  if (o.junk) {
    owner_.log(id_ + " -> junk: " + o.junk + " (" + std::to_string(o.data.size()) + " bytes)");
    owner_.update_record(record_, [](SessionRecord &r) { r.junk_frames++; });
  } else {
    owner_.update_record(record_, [&](SessionRecord &r) {
      r.server_event_types.push_back(o.type);
      if (o.transcript)
        r.transcripts.push_back(*o.transcript);
      if (o.type == "session.finished")
        r.finished = true;
    });
    owner_.log(id_ + " -> " + o.data);
  }
  if (o.kind == Outgoing::Kind::Binary)
    soup_websocket_connection_send_binary(conn_, o.data.data(), o.data.size());
  else
    soup_websocket_connection_send_text(conn_, o.data.c_str());
}

// ---- Faults: the hook after each append and the closes it may decide ----

void Session::note_fault(const char *name) {
  owner_.update_record(record_, [&](SessionRecord &r) { r.injected_faults.emplace_back(name); });
}

void Session::after_append() {
  const AppendFaults f = faults_.after_append(appends_, decoded_samples_, cfg_.sample_rate);
  if (f.freeze_ms > 0) {
    note_fault("freeze");
    owner_.log(id_ + " !! fault: freezing the service thread for " + std::to_string(f.freeze_ms) +
               " ms");
    g_usleep(static_cast<gulong>(f.freeze_ms) * 1000);
  }
  if (f.stall_ms > 0) {
    note_fault("stall");
    owner_.log(id_ + " !! fault: holding events for " + std::to_string(f.stall_ms) + " ms");
    outbox_.hold_until(g_get_monotonic_time() +
                       static_cast<gint64>(f.stall_ms) * G_TIME_SPAN_MILLISECOND);
  }
  if (f.close == FaultClose::None)
    return;
  owner_.log(id_ + " !! fault: " + f.reason);
  if (f.close == FaultClose::ServerError) {
    send("error", {{"error", jobj({{"type", jstr("server_error")},
                                   {"code", jstr("internal_error")},
                                   {"message", jstr("Injected server error")},
                                   {"param", "null"},
                                   {"event_id", "null"}})}});
  }
  Outgoing o;
  o.kind = Outgoing::Kind::Close;
  o.close = f.close;
  o.data = f.close == FaultClose::ServerError ? "Injected server error" : "Injected fault";
  outbox_.post(std::move(o)); // from now on the client's events are ignored
}

void Session::execute_close(const Outgoing &o) {
  if (soup_websocket_connection_get_state(conn_) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  server_closing_ = true;
  cancel_close_timer();
  const bool abrupt = o.close == FaultClose::Abrupt;
  note_fault(o.close == FaultClose::ServerError ? "server_error"
             : abrupt                           ? "close_abrupt"
                                                : "close_1011");
  owner_.update_record(record_, [](SessionRecord &r) { r.fault_closed = true; });
  if (!abrupt) {
    owner_.log(id_ + " !! fault: closing with 1011");
    soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, o.data.c_str());
    return;
  }
  owner_.log(id_ + " !! fault: dropping the TCP connection");
  /* shutdown(2), not close: the fd stays valid for the sources libsoup still polls (closing
   * it under them makes GLib warn "Socket check failed"), and the peer sees the TCP
   * connection end without a close frame either way. */
  GError *err = nullptr;
  GIOStream *io = soup_websocket_connection_get_io_stream(conn_);
  GSocket *socket = G_IS_SOCKET_CONNECTION(io)
                        ? g_socket_connection_get_socket(G_SOCKET_CONNECTION(io))
                        : socket_;
  bool done =
      socket ? g_socket_shutdown(socket, TRUE, TRUE, &err) : g_io_stream_close(io, nullptr, &err);
  if (!done) {
    owner_.log(id_ + " !! dropping the connection failed: " + (err ? err->message : "?"));
    g_clear_error(&err);
  }
}

// ---- Receiving ----

void Session::on_message(gint type, GBytes *message) {
  gsize len = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(message, &len));
  if (outbox_.closing()) {
    owner_.log(id_ + " <- ignored (" + std::to_string(len) + " bytes): closing by a fault");
    return;
  }
  if (type != SOUP_WEBSOCKET_DATA_TEXT) {
    owner_.log(id_ + " <- binary frame (" + std::to_string(len) + " bytes)");
    send_error({"invalid_event",
                "Binary WebSocket frames are not supported; send JSON events as text frames.",
                std::nullopt},
               std::nullopt);
    return;
  }

  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  if (!json_parser_load_from_data(parser, data ? data : "", static_cast<gssize>(len), &err) ||
      !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    std::string why = err ? err->message : "the message is not a JSON object";
    g_clear_error(&err);
    g_object_unref(parser);
    owner_.log(id_ + " <- invalid JSON (" + std::to_string(len) + " bytes)");
    send_error(
        {"invalid_json", "The message could not be parsed as a JSON object: " + why, std::nullopt},
        std::nullopt);
    return;
  }
  JsonObject *root = json_node_get_object(json_parser_get_root(parser));
  try {
    dispatch(root, data, len);
  } catch (...) {
    g_object_unref(parser);
    throw;
  }
  g_object_unref(parser);
}

void Session::dispatch(JsonObject *root, const char *data, gsize len) {
  std::optional<std::string> evid;
  if (JsonNode *n = member(root, "event_id"))
    evid = node_text(n);
  JsonNode *tn = member(root, "type");
  if (!tn || !is_string(tn)) {
    owner_.log(id_ + " <- event without a string type");
    send_error({"invalid_event", "The event has no string 'type' field.", "type"}, evid);
    return;
  }
  const std::string type = json_node_get_string(tn);
  owner_.update_record(record_, [&](SessionRecord &r) { r.client_event_types.push_back(type); });
  if (type == "input_audio_buffer.append")
    owner_.log(id_ + " <- input_audio_buffer.append (" + std::to_string(len) + " bytes)");
  else
    owner_.log(id_ + " <- " + std::string(data, len));

  if (finish_received_) {
    // [UNK] real behaviour; one session per socket, so nothing after finish can take effect.
    send_error(
        {"invalid_event", "The session is finished; no further events are accepted.", "type"},
        evid);
    return;
  }
  if (type == "session.update") {
    owner_.update_record(record_,
                         [&](SessionRecord &r) { r.last_session_update_json.assign(data, len); });
    handle_update(root, evid);
  } else if (type == "input_audio_buffer.append") {
    if (handle_append(root, evid))
      after_append();
  } else if (type == "input_audio_buffer.commit") {
    handle_commit(evid);
  } else if (type == "session.finish") {
    handle_finish();
  } else {
    send_error({"invalid_event",
                "Invalid value: '" + type +
                    "'. Supported values are: 'session.update', 'input_audio_buffer.append', "
                    "'input_audio_buffer.commit', 'session.finish'.",
                "type"},
               evid);
  }
}

void Session::handle_update(JsonObject *root, const std::optional<std::string> &evid) {
  SessionConfig cfg = cfg_;
  if (auto e = apply_session_update(root, cfg)) {
    send_error(*e, evid); // nothing is applied: an update is all or nothing
    return;
  }
  if (input_) {
    // [UNK] what the real service does; the stream's timebase and decoder would be ambiguous.
    const char *param = nullptr;
    std::string value;
    if (cfg.sample_rate != cfg_.sample_rate) {
      param = "session.sample_rate";
      value = std::to_string(cfg.sample_rate);
    } else if (cfg.input_audio_format != cfg_.input_audio_format) {
      param = "session.input_audio_format";
      value = cfg.input_audio_format;
    } else if (cfg.vad != cfg_.vad) {
      param = "session.turn_detection";
      value = cfg.vad ? "server_vad" : "null";
    }
    if (param) {
      send_error({"invalid_value",
                  "Invalid value: '" + value + "'. '" + param +
                      "' cannot be changed after audio has been appended (local service "
                      "restriction).",
                  std::string(param)},
                 evid);
      return;
    }
  }
  cfg_ = cfg;
  if (vad_)
    vad_->configure(cfg_.threshold, static_cast<unsigned>(cfg_.silence_duration_ms));
  send("session.updated", {{"session", session_object_json(cfg_, id_, model_, true)}});
}

/* Returns whether the append counted (valid Base64 within the limit). */
bool Session::handle_append(JsonObject *root, const std::optional<std::string> &evid) {
  JsonNode *an = member(root, "audio");
  if (!an) {
    send_error({"missing_required_parameter", "Missing required parameter: 'audio'.", "audio"},
               evid);
    return false;
  }
  if (!is_string(an)) {
    send_error(type_error("audio", "a Base64 string", an), evid);
    return false;
  }
  const char *b64 = json_node_get_string(an);
  const size_t b64_len = strlen(b64);
  if (b64_len > kMaxAudioField) {
    send_error({"invalid_value",
                "The 'audio' field is " + std::to_string(b64_len) +
                    " characters long; at most 15 MiB (15728640) are allowed per event.",
                "audio"},
               evid);
    return false;
  }
  std::vector<uint8_t> bytes;
  if (!base64_decode_strict(b64, b64_len, bytes)) {
    send_error({"invalid_value", "The 'audio' field is not valid Base64.", "audio"}, evid);
    return false;
  }
  appends_++;
  audio_bytes_ += bytes.size();
  owner_.update_record(record_, [&](SessionRecord &r) {
    r.appends++;
    r.audio_bytes += bytes.size();
  });
  if (!input_) {
    // The format, rate and mode are fixed by the first audio (defaults if no update came).
    input_ = cfg_.input_audio_format == "opus" ? make_ogg_opus_input(cfg_.sample_rate)
                                               : make_pcm_input();
    if (cfg_.vad)
      vad_ = std::make_unique<EnergyVad>(cfg_.sample_rate, cfg_.threshold,
                                         static_cast<unsigned>(cfg_.silence_duration_ms));
  }
  std::vector<int16_t> samples;
  std::string why;
  const bool decoded = input_->decode(bytes.data(), bytes.size(), samples, why);
  decoded_samples_ += samples.size();
  owner_.update_record(record_, [&](SessionRecord &r) {
    r.decoded_samples = decoded_samples_;
    r.ogg_serial = input_->stream_serial();
  });
  if (!decoded) {
    send_error({"invalid_value", "The audio could not be decoded: " + why, "audio"}, evid);
    return true;
  }
  process_audio(samples.data(), samples.size());
  return true;
}

void Session::handle_commit(const std::optional<std::string> &evid) {
  if (cfg_.vad) {
    send_error({"invalid_event",
                "Error committing input audio buffer: input_audio_buffer.commit is only "
                "allowed in Manual mode (turn_detection: null).",
                std::nullopt},
               evid);
    return;
  }
  if (!rec_ || rec_->samples_accepted() == 0) {
    send_error({"input_audio_buffer_commit_empty",
                "Error committing input audio buffer: the buffer is empty.", std::nullopt},
               evid);
    return;
  }
  item_id_ = random_id("item_");
  complete_item(false);
}

void Session::handle_finish() {
  finish_received_ = true;
  if (vad_) {
    if (auto ev = vad_->finish())
      end_utterance(ev->sample);
  }
  // Manual mode: uncommitted audio is dropped, not auto-committed ([UNK] in the docs; being
  // strict makes a client that forgets its final commit fail visibly in tests).
  rec_.reset();
  // After any final still being decoded; the close timeout counts from when it is sent.
  order_.in_order([this] {
    flush_swapped();                           // an odd last final of reverse_finals
    send_now("session.finished", {}, nullptr); // SessionRecord::finished is set when written
    for (auto &emit : after_finished_)
      emit();
    after_finished_.clear();
    // The client should close now (docs/protocol.md §2.4); close ourselves if it does not.
    close_timer_ = g_timeout_source_new(owner_.options().finish_close_timeout_ms);
    g_source_set_callback(close_timer_, on_close_timeout_cb, this, nullptr);
    g_source_attach(close_timer_, owner_.context());
  });
}

} // namespace qwenasr::local
