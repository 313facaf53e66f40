// SPDX-License-Identifier: LGPL-2.1-or-later
/* A local-service session's audio side (see session.h): decoded samples cut into utterances
 * (server VAD, or Manual commits), fed to the engine's recognisers, and their partial and final
 * results sent as transcription events, in order even when the engine is asynchronous, with the
 * scripted faults on finals. */
#include "session.h"

#include <algorithm>
#include <stdexcept>

namespace qwenasr::local {

void Session::process_audio(const int16_t *s, size_t n) {
  if (n == 0)
    return;
  if (vad_)
    process_vad(s, n);
  else
    process_manual(s, n);
}

gint64 Session::to_ms(guint64 sample) const {
  return static_cast<gint64>(sample * 1000 / static_cast<guint64>(cfg_.sample_rate));
}

std::unique_ptr<Recognizer> Session::new_recognizer() {
  auto r = owner_.engine().start_utterance(
      EngineConfig{cfg_.sample_rate, cfg_.language.value_or(""), cfg_.corpus_text.value_or("")});
  if (!r)
    throw std::runtime_error("engine returned no recognizer");
  return r;
}

void Session::trim_buffer(guint64 keep_from) {
  if (keep_from <= buf_origin_)
    return;
  const guint64 drop = std::min<guint64>(keep_from - buf_origin_, buf_.size());
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(drop));
  buf_origin_ += drop;
}

void Session::process_vad(const int16_t *s, size_t n) {
  const guint64 interval =
      static_cast<guint64>(owner_.options().partial_interval_ms) * cfg_.sample_rate / 1000;
  size_t i = 0;
  while (i < n) {
    // Feed frame by frame so events, partials and utterance boundaries stay in audio order
    // even when one append holds several utterances.
    const size_t take = std::min(n - i, vad_->samples_to_frame_end());
    buf_.insert(buf_.end(), s + i, s + i + take);
    const auto ev = vad_->push(s + i, take);
    i += take;
    position_ += take;
    if (ev && ev->kind == VadEvent::Kind::SpeechStarted)
      start_utterance(ev->sample, interval);
    else if (ev)
      end_utterance(ev->sample);

    if (vad_->in_speech()) {
      feed_recognizer();
      if (interval > 0 && position_ >= next_partial_) {
        send_partial();
        while (next_partial_ <= position_)
          next_partial_ += interval;
      }
    } else {
      // Idle: keep only the current, incomplete frame (a speech start may begin there).
      trim_buffer(position_ - (vad_->frame_samples() - vad_->samples_to_frame_end()));
    }
  }
}

void Session::start_utterance(guint64 start, guint64 interval) {
  trim_buffer(start);
  item_id_ = random_id("item_");
  rec_ = new_recognizer();
  last_partial_.reset();
  async_partials_ = std::make_shared<AsyncPartials>();
  fed_until_ = start;
  next_partial_ = start + (interval > 0 ? interval : 0);
  send("input_audio_buffer.speech_started",
       {{"audio_start_ms", jint(to_ms(start))}, {"item_id", jstr(item_id_)}});
}

/* The utterance is [start, last voiced end): trailing silence is never recognised. */
void Session::feed_recognizer() {
  const guint64 until = vad_->last_voiced_end();
  if (until <= fed_until_)
    return;
  rec_->accept(buf_.data() + (fed_until_ - buf_origin_), until - fed_until_);
  fed_until_ = until;
}

void Session::end_utterance(guint64 end) {
  feed_recognizer();
  send("input_audio_buffer.speech_stopped",
       {{"audio_end_ms", jint(to_ms(end))}, {"item_id", jstr(item_id_)}});
  complete_item(true);
}

void Session::process_manual(const int16_t *s, size_t n) {
  if (!rec_)
    rec_ = new_recognizer();
  rec_->accept(s, n);
  position_ += n;
}

std::string Session::language() const {
  std::string l = rec_ ? rec_->language() : "";
  if (l.empty())
    l = cfg_.language.value_or("en"); // automatic detection reports English here
  return l;
}

void Session::send_text(const PartialResult &p) {
  send_text_now(item_id_, language(), rec_->emotion(), p);
}

void Session::send_text_now(const std::string &item, const std::string &lang,
                            const std::string &emotion, const PartialResult &p) {
  send("conversation.item.input_audio_transcription.text", {{"item_id", jstr(item)},
                                                            {"content_index", "0"},
                                                            {"language", jstr(lang)},
                                                            {"emotion", jstr(emotion)},
                                                            {"text", jstr(p.text)},
                                                            {"stash", jstr(p.stash)}});
}

/* Skips a snapshot identical to the previous one of this item (e.g. during trailing
 * silence), so partials carry news, like the real service's high-frequency updates. */
void Session::send_partial() {
  if (!rec_ || rec_->samples_accepted() == 0)
    return;
  if (rec_->asynchronous()) {
    request_partial_async();
    return;
  }
  PartialResult p = rec_->partial();
  if (last_partial_ && last_partial_->text == p.text && last_partial_->stash == p.stash)
    return;
  send_text(p);
  last_partial_ = p;
}

/* Asynchronous engine: at most one partial per utterance is being computed. A request while
 * one is under way is remembered and made when the answer arrives (then covering all audio up
 * to that moment), so a burst of audio or a slow decoder gives fewer, fresher partials instead
 * of a backlog. */
void Session::request_partial_async() {
  std::shared_ptr<AsyncPartials> state = async_partials_;
  if (state->in_flight) {
    state->wanted = true;
    return;
  }
  state->in_flight = true;
  state->wanted = false;
  auto slot = order_.reserve();
  const std::string item = item_id_;
  const std::string lang = language();
  const std::string emotion = rec_->emotion();
  auto post = service_thread_poster();
  rec_->request_partial([=](PartialResult p) {
    post([=] {
      state->in_flight = false;
      // Nothing recognised yet, or no news: the slot stays empty (see send_partial()).
      const bool skip =
          (p.text.empty() && p.stash.empty()) ||
          (state->last && state->last->text == p.text && state->last->stash == p.stash);
      if (!skip) {
        state->last = p;
        slot->emit = [this, item, lang, emotion, p] { send_text_now(item, lang, emotion, p); };
      }
      slot->ready = true;
      order_.drain();
      // Only while the same utterance is still being spoken (it owns this state).
      if (state->wanted && rec_ && async_partials_ == state)
        request_partial_async();
    });
  });
}

/* committed -> (VAD: conversation.item.created) -> final .text -> completed. */
void Session::complete_item(bool vad) {
  send("input_audio_buffer.committed",
       {{"previous_item_id", jopt(prev_item_id_)}, {"item_id", jstr(item_id_)}});
  if (vad) {
    // Not listed for Manual mode in the docs (docs/protocol.md §7.2), so only sent in VAD mode.
    send("conversation.item.created",
         {{"previous_item_id", jopt(prev_item_id_)},
          {"item",
           jobj({{"id", jstr(item_id_)},
                 {"object", jstr("realtime.item")},
                 {"type", jstr("message")},
                 {"status", jstr("completed")},
                 {"role", jstr("user")},
                 {"content",
                  "[" + jobj({{"type", jstr("input_audio")}, {"transcript", "null"}}) + "]"}})}});
  }
  if (rec_->asynchronous()) {
    complete_item_async();
    prev_item_id_ = item_id_;
    return;
  }
  send_text(rec_->final_partial());
  send_completed(item_id_, language(), rec_->emotion(), rec_->transcript());
  prev_item_id_ = item_id_;
  rec_.reset();
}

/* Asynchronous engine: the final text and completed events wait for the decode; the
 * recogniser is kept (finishing_) until then, as destroying it cancels the decode. */
void Session::complete_item_async() {
  auto slot = order_.reserve();
  const std::string item = item_id_;
  const std::string lang = cfg_.language.value_or("en");
  Recognizer *key = rec_.get();
  auto post = service_thread_poster();
  rec_->finish([=](FinalResult r) {
    post([=] {
      finishing_.remove_if([key](const std::unique_ptr<Recognizer> &p) { return p.get() == key; });
      slot->emit = [this, item, lang, r] {
        const std::string language = r.language.empty() ? lang : r.language;
        send_text_now(item, language, r.emotion, r.final_partial);
        send_completed(item, language, r.emotion, r.transcript);
      };
      slot->ready = true;
      order_.drain();
    });
  });
  finishing_.push_back(std::move(rec_));
}

/* The completed event of one utterance, as the scripted faults want it: sent, repeated,
 * dropped, swapped with the next one's, or kept until after session.finished. */
void Session::send_completed(const std::string &item, const std::string &language,
                             const std::string &emotion, const std::string &transcript) {
  auto emit = [this, item, language, emotion, transcript] {
    send("conversation.item.input_audio_transcription.completed",
         {{"item_id", jstr(item)},
          {"content_index", "0"},
          {"language", jstr(language)},
          {"emotion", jstr(emotion)},
          {"transcript", faults_.transcript_json(jstr(transcript))}},
         &transcript);
  };
  const guint utterance = ++finals_produced_;
  switch (faults_.final_fate(utterance)) {
  case SessionFaults::FinalFate::Drop:
    note_fault("drop_final");
    owner_.log(id_ + " !! fault: the final of utterance " + std::to_string(utterance) +
               " is not sent");
    return;
  case SessionFaults::FinalFate::Repeat:
    note_fault("repeat_final");
    emit();
    emit();
    return;
  case SessionFaults::FinalFate::AfterFinished:
    note_fault("final_after_finished");
    after_finished_.push_back(emit);
    return;
  case SessionFaults::FinalFate::SwapWithNext:
    if (!swapped_) {
      swapped_ = emit;
      return;
    }
    note_fault("reverse_finals");
    emit();
    flush_swapped();
    return;
  case SessionFaults::FinalFate::Send:
    emit();
    return;
  }
}

void Session::flush_swapped() {
  if (!swapped_)
    return;
  std::function<void()> held = std::move(swapped_);
  swapped_ = nullptr;
  held();
}

/* Runs f on the service thread, called from an engine thread. f is dropped if the session
 * is gone by then (alive_ expired: both checked and destroyed on the service thread). */
std::function<void(std::function<void()>)> Session::service_thread_poster() {
  std::weak_ptr<bool> alive = alive_;
  GMainContext *ctx = owner_.context();
  return [alive, ctx](std::function<void()> f) {
    auto *job = new std::function<void()>([alive, f = std::move(f)] {
      if (!alive.expired())
        f();
    });
    g_main_context_invoke_full(
        ctx, G_PRIORITY_DEFAULT,
        [](gpointer data) -> gboolean {
          try {
            (*static_cast<std::function<void()> *>(data))();
          } catch (const std::exception &e) {
            g_warning("local service: engine result: %s", e.what());
          } catch (...) {
            g_warning("local service: engine result: unknown exception");
          }
          return G_SOURCE_REMOVE;
        },
        job, [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
  };
}

} // namespace qwenasr::local
