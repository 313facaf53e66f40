// SPDX-License-Identifier: LGPL-2.1-or-later
/* The fault decisions of the local service (see faults.h): which handshakes to refuse, what a
 * session does after an append, which junk precedes an event, and what becomes of a final. */
#include "faults.h"

namespace qwenasr::local {

namespace {

const char *code_for_status(guint status) {
  switch (status) {
  case 400:
    return "InvalidParameter";
  case 401:
    return "InvalidApiKey";
  case 403:
    return "AccessDenied";
  case 404:
    return "NotFound";
  case 429:
    return "Throttling.RateQuota";
  case 500:
    return "InternalError";
  case 502:
    return "BadGateway";
  case 503:
    return "ServiceUnavailable";
  default:
    return "InjectedFault";
  }
}

const char kBinaryJunk[] = "\x00\xff{\"type\":\"session.finished\"}\x80";

/* The small junk kinds, sent one per event in rotation after the first full set. */
std::vector<JunkFrame> small_junk() {
  return {
      {false, R"({"type":"conversation.item.input_audio_transcription.completed","transcript":"Ju)",
       "invalid JSON"},
      {false,
       R"([{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_junk","transcript":"Junk."}])",
       "JSON array"},
      {false, R"({"event_id":"event_junk_notype","item_id":"item_junk","transcript":"Junk."})",
       "object without type"},
      {false,
       R"({"event_id":"event_junk_unknown","type":"local.fault.unknown_event","item_id":"item_junk","transcript":"Junk."})",
       "unknown event type"},
      {false,
       R"({"event_id":"event_junk_types1","type":"input_audio_buffer.speech_started","audio_start_ms":"x","item_id":5})",
       "wrongly typed speech_started"},
      {false,
       R"({"event_id":"event_junk_types2","type":"conversation.item.input_audio_transcription.text","item_id":5,"content_index":"0","text":7,"stash":["x"],"language":null})",
       "wrongly typed text"},
      {false,
       R"({"event_id":"event_junk_types3","type":"conversation.item.input_audio_transcription.completed","item_id":5,"transcript":{"text":"Junk."},"language":[]})",
       "wrongly typed completed"},
      {false,
       R"({"event_id":"event_junk_types4","type":"input_audio_buffer.speech_stopped","audio_end_ms":"x","item_id":null})",
       "wrongly typed speech_stopped"},
      {true, std::string(kBinaryJunk, sizeof kBinaryJunk - 1), "binary frame"},
  };
}

JunkFrame big_junk() {
  const size_t target = 1024 * 1024;
  std::string head = R"({"event_id":"event_junk_big","type":"local.fault.padding","padding":")";
  std::string tail = "\"}";
  std::string data = head;
  data.append(target - head.size() - tail.size(), 'x');
  data += tail;
  return {false, std::move(data), "1 MiB unknown event"};
}

} // namespace

std::optional<HandshakeFaults::Rejection> HandshakeFaults::check(gint64 now_us) {
  if (opts_.reject_handshakes > 0 &&
      (opts_.reject_handshakes == G_MAXUINT || seen_ < opts_.reject_handshakes)) {
    if (seen_ < G_MAXUINT)
      seen_++;
    const guint status = opts_.reject_status > 0 ? static_cast<guint>(opts_.reject_status) : 503;
    return Rejection{status, code_for_status(status), "Handshake rejected by an injected fault.",
                     status == 429 ? opts_.retry_after_s : 0};
  }
  if (opts_.max_connections_per_second > 0) {
    while (!admitted_.empty() && admitted_.front() <= now_us - G_USEC_PER_SEC)
      admitted_.pop_front();
    if (admitted_.size() >= opts_.max_connections_per_second)
      return Rejection{429, "Throttling.RateQuota",
                       "Requests rate limit exceeded, please try again later.",
                       opts_.retry_after_s};
    admitted_.push_back(now_us);
  }
  return std::nullopt;
}

SessionFaults::SessionFaults(const FaultOptions &options, guint session_number)
    : opts_(options), active_(session_number <= options.faulty_sessions) {}

AppendFaults SessionFaults::after_append(guint appends, guint64 audio_samples, int sample_rate) {
  AppendFaults f;
  if (!active_ || closing_)
    return f;
  if (opts_.freeze_after_appends > 0 && appends == opts_.freeze_after_appends)
    f.freeze_ms = opts_.freeze_ms;
  if (opts_.stall_after_appends > 0 && appends == opts_.stall_after_appends)
    f.stall_ms = opts_.stall_ms;
  const guint64 audio_ms =
      sample_rate > 0 ? audio_samples * 1000 / static_cast<guint64>(sample_rate) : 0;
  if (opts_.server_error_after_appends > 0 && appends >= opts_.server_error_after_appends) {
    f.close = FaultClose::ServerError;
    f.reason = "server error after " + std::to_string(appends) + " appends";
  } else if (opts_.close_after_appends > 0 && appends >= opts_.close_after_appends) {
    f.close = opts_.close_abruptly ? FaultClose::Abrupt : FaultClose::Close1011;
    f.reason = "close after " + std::to_string(appends) + " appends";
  } else if (opts_.close_after_audio_ms >= 0 &&
             audio_ms >= static_cast<guint64>(opts_.close_after_audio_ms)) {
    f.close = opts_.close_abruptly ? FaultClose::Abrupt : FaultClose::Close1011;
    f.reason = "close after " + std::to_string(audio_ms) + " ms of audio";
  }
  if (f.close != FaultClose::None)
    closing_ = true;
  return f;
}

std::vector<JunkFrame> SessionFaults::junk_before_event() {
  if (!active_ || !opts_.malformed_frames)
    return {};
  std::vector<JunkFrame> all = small_junk();
  if (first_junk_) {
    first_junk_ = false;
    all.push_back(big_junk());
    return all;
  }
  JunkFrame one = all[junk_rotation_ % all.size()];
  junk_rotation_++;
  return {one};
}

SessionFaults::FinalFate SessionFaults::final_fate(guint utterance) const {
  if (!active_)
    return FinalFate::Send;
  if (opts_.drop_final_of > 0 && utterance == opts_.drop_final_of)
    return FinalFate::Drop;
  if (opts_.finals_after_finished_from > 0 && utterance >= opts_.finals_after_finished_from)
    return FinalFate::AfterFinished;
  if (opts_.reverse_finals)
    return FinalFate::SwapWithNext;
  if (opts_.repeat_finals)
    return FinalFate::Repeat;
  return FinalFate::Send;
}

std::string SessionFaults::transcript_json(const std::string &escaped) const {
  if (!active_ || opts_.transcript_raw_suffix.empty() || escaped.size() < 2)
    return escaped;
  return escaped.substr(0, escaped.size() - 1) + opts_.transcript_raw_suffix + "\"";
}

bool SessionFaults::finals_binary() const {
  return active_ &&
         !g_utf8_validate(opts_.transcript_raw_suffix.data(),
                          static_cast<gssize>(opts_.transcript_raw_suffix.size()), nullptr);
}

} // namespace qwenasr::local
