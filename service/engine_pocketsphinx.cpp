// SPDX-License-Identifier: LGPL-2.1-or-later
/* PocketSphinx engine: a pool of decoder threads that each decode one utterance at a time, fed
 * through per-utterance job queues (see engine_pocketsphinx.h for the threading model). Partial
 * results come from the decoder's running hypothesis (ps_get_hyp); the confirmed "text" is the
 * part that two consecutive hypotheses agree on, minus the word still being spoken, so it only
 * grows while the "stash" may still change. */
#include "engine_pocketsphinx.h"

#include "engine-config.h"

#if QWENASR_HAVE_POCKETSPHINX

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace qwenasr::local {

namespace {

constexpr int kDecoderRate = 16000; // the rate the en-us acoustic model was trained at
constexpr double kPi = 3.14159265358979323846;

std::string model_path(const std::string &given, const char *relative) {
  return given.empty() ? std::string(QWENASR_POCKETSPHINX_MODELDIR) + "/" + relative : given;
}

/* ps_init() and model loading touch sphinxbase's process-wide state (logging, logmath caches),
 * so decoders are created one at a time even though they then run in parallel. */
std::mutex g_load_mu;

ps_decoder_t *load_decoder(const EngineOptions &o, std::string &why) {
  std::lock_guard<std::mutex> lock(g_load_mu);
  // PocketSphinx logs every configuration value and per-utterance statistics to stderr;
  // the service has its own log (--verbose), so sphinxbase's is switched off.
  err_set_logfp(nullptr);
  const std::string hmm = model_path(o.hmm, "en-us/en-us");
  const std::string lm = model_path(o.lm, "en-us/en-us.lm.bin");
  const std::string dict = model_path(o.dict, "en-us/cmudict-en-us.dict");
  // ps_init() on a missing file only says so in the log switched off above: check first.
  for (const std::string &file : {hmm + "/mdef", lm, dict}) {
    FILE *f = std::fopen(file.c_str(), "rb");
    if (!f) {
      why = "PocketSphinx model file missing: " + file + " (Debian package pocketsphinx-en-us)";
      return nullptr;
    }
    std::fclose(f);
  }
  cmd_ln_t *config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-lm", lm.c_str(),
                                 "-dict", dict.c_str(), "-samprate", "16000", nullptr);
  if (!config) {
    why = "PocketSphinx rejected its configuration";
    return nullptr;
  }
  ps_decoder_t *ps = ps_init(config);
  cmd_ln_free_r(config); // the decoder holds its own reference
  if (!ps)
    why = "PocketSphinx could not load the model from " + hmm;
  return ps;
}

std::vector<std::string> split_words(const char *hyp) {
  std::vector<std::string> words;
  if (!hyp)
    return words;
  std::string w;
  auto flush = [&] {
    if (w.empty())
      return;
    // Fillers (<sil>, [noise]) are not words, and "(2)" marks an alternative pronunciation.
    if (w[0] != '<' && w[0] != '[') {
      const size_t paren = w.find('(');
      words.push_back(paren == std::string::npos || paren == 0 ? w : w.substr(0, paren));
    }
    w.clear();
  };
  for (const char *c = hyp; *c; c++) {
    if (*c == ' ' || *c == '\t' || *c == '\n')
      flush();
    else
      w += *c;
  }
  flush();
  return words;
}

std::string join(const std::vector<std::string> &words, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < words.size(); i++) {
    if (!out.empty())
      out += ' ';
    out += words[i];
  }
  return out;
}

/* Resamples S16 mono to 16 kHz. 8 kHz (the service's other rate) goes through a 2x windowed-sinc
 * interpolator, so no mirror image of the speech band lands in the 4-8 kHz range the acoustic
 * model listens to; any other rate is linearly interpolated. */
class Resampler {
public:
  explicit Resampler(int rate) : rate_(rate > 0 ? rate : kDecoderRate) {
    if (rate_ == kDecoderRate / 2) {
      hist_.assign(2 * kHalf, 0.0f);
      for (int j = 0; j < 2 * kHalf; j++) {
        const double x = j - (kHalf - 0.5); // distance of tap j from the midpoint
        const double sinc = std::sin(kPi * x) / (kPi * x);
        const double window = 0.5 + 0.5 * std::cos(kPi * x / kHalf);
        taps_[j] = static_cast<float>(sinc * window);
      }
    }
  }

  void process(const int16_t *in, size_t n, std::vector<int16_t> &out) {
    if (rate_ == kDecoderRate) {
      out.insert(out.end(), in, in + n);
    } else if (rate_ == kDecoderRate / 2) {
      for (size_t i = 0; i < n; i++) {
        std::move(hist_.begin() + 1, hist_.end(), hist_.begin());
        hist_.back() = in[i];
        float mid = 0;
        for (int j = 0; j < 2 * kHalf; j++)
          mid += taps_[j] * hist_[j];
        out.push_back(static_cast<int16_t>(hist_[kHalf - 1]));
        out.push_back(clamp(mid));
      }
    } else {
      const double step = static_cast<double>(rate_) / kDecoderRate;
      for (size_t i = 0; i < n; i++) {
        const double cur = in[i];
        while (pos_ <= 1.0) {
          out.push_back(clamp(static_cast<float>(prev_ + (cur - prev_) * pos_)));
          pos_ += step;
        }
        pos_ -= 1.0;
        prev_ = cur;
      }
    }
  }

  /* The interpolator delays by kHalf input samples; push them out at the end. */
  void flush(std::vector<int16_t> &out) {
    if (rate_ == kDecoderRate / 2) {
      const std::vector<int16_t> zeros(kHalf, 0);
      process(zeros.data(), zeros.size(), out);
    }
  }

private:
  static int16_t clamp(float v) {
    return static_cast<int16_t>(std::lround(std::clamp(v, -32768.0f, 32767.0f)));
  }

  static constexpr int kHalf = 8; // taps on each side of the interpolated point
  int rate_;
  std::vector<float> hist_; // the last 2 * kHalf input samples, oldest first
  float taps_[2 * kHalf] = {};
  double pos_ = 0.0; // linear: position of the next output between prev_ and the next input
  double prev_ = 0.0;
};

struct Job {
  enum class Kind { Audio, Partial, Final } kind = Kind::Audio;
  std::vector<int16_t> audio; // 16 kHz
  PartialCallback partial_done;
  FinalCallback final_done;
};

/* One utterance's queue; all fields are guarded by Pool::mu. */
struct Utterance {
  std::deque<Job> jobs;
  bool cancelled = false; // the recogniser is gone: stop, deliver nothing
  bool queued = false;    // waiting in Pool::waiting for a worker
  PartialResult latest;   // the latest partial the worker computed
  std::optional<FinalResult> result;
};

/* Shared by the engine, its recognisers and its workers, so a recogniser destroyed after the
 * engine (or a worker finishing late) never touches freed memory. */
struct Pool {
  explicit Pool(EngineOptions o) : options(std::move(o)) {}

  EngineOptions options;
  std::mutex mu;
  std::condition_variable cv; // any change of the fields below or of an Utterance
  std::deque<std::shared_ptr<Utterance>> waiting;
  unsigned idle = 0; // workers waiting for an utterance
  bool stopping = false;
  std::vector<std::thread> workers;
  ps_decoder_t *first_decoder = nullptr; // loaded by the engine, taken by worker 0
  /* The model's initial cepstral means (-cmninit), restored before every utterance: live CMN
   * otherwise carries each utterance's channel estimate into the next one on that decoder,
   * i.e. into another session's speech, and a band-limited or noisy utterance spoils the
   * next (measured: goforward.raw after an 8 kHz clip became "still sort and resists"). It
   * also makes a result independent of which decoder and what came before. */
  std::vector<mfcc_t> initial_cmn; // written before any worker runs

  void push(const std::shared_ptr<Utterance> &u, Job job) {
    {
      std::lock_guard<std::mutex> lock(mu);
      u->jobs.push_back(std::move(job));
    }
    cv.notify_all();
  }

  /* Called with mu held: one more worker if every worker is busy and the limit allows. */
  void ensure_worker_locked() {
    if (waiting.size() > idle && workers.size() < std::max(1u, options.max_decoders))
      workers.emplace_back([this] { worker_main(); });
  }

  void worker_main() {
    ps_decoder_t *ps = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu);
      std::swap(ps, first_decoder);
    }
    if (!ps) {
      std::string why;
      ps = load_decoder(options, why);
      if (!ps) {
        std::fprintf(stderr, "qwenasr-local-service: extra PocketSphinx decoder: %s\n",
                     why.c_str());
        return; // the other workers keep serving the queue
      }
    }
    for (;;) {
      std::shared_ptr<Utterance> u;
      {
        std::unique_lock<std::mutex> lock(mu);
        idle++;
        cv.wait(lock, [this] { return stopping || !waiting.empty(); });
        idle--;
        if (stopping)
          break;
        u = waiting.front();
        waiting.pop_front();
        u->queued = false;
      }
      decode(ps, *u);
    }
    ps_free(ps);
  }

  /* Runs one utterance on this worker's decoder until its final job or its cancellation. */
  void decode(ps_decoder_t *ps, Utterance &u) {
    cmn_t *cmn = ps_get_feat(ps)->cmn_struct;
    if (cmn && initial_cmn.size() == static_cast<size_t>(cmn->veclen))
      cmn_live_set(cmn, initial_cmn.data());
    ps_start_utt(ps);
    std::vector<std::string> prev_words, confirmed;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || u.cancelled || !u.jobs.empty(); });
        if (stopping || u.cancelled) {
          lock.unlock();
          ps_end_utt(ps); // leaves the decoder ready for the next utterance
          return;
        }
        job = std::move(u.jobs.front());
        u.jobs.pop_front();
      }
      switch (job.kind) {
      case Job::Kind::Audio:
        if (!job.audio.empty())
          ps_process_raw(ps, job.audio.data(), job.audio.size(), FALSE, FALSE);
        break;
      case Job::Kind::Partial: {
        const std::vector<std::string> words = split_words(ps_get_hyp(ps, nullptr));
        /* Confirm what two running hypotheses in a row agree on, except the last word, which
         * the speaker may still be in; confirmed words stay even if the decoder later changes
         * its mind (the final then corrects them), as the protocol's text only grows. */
        if (std::equal(confirmed.begin(), confirmed.end(), words.begin(),
                       words.begin() + std::min(words.size(), confirmed.size())) &&
            words.size() >= confirmed.size()) {
          size_t common = 0;
          while (common < prev_words.size() && common < words.size() &&
                 prev_words[common] == words[common])
            common++;
          const size_t stable = std::min(common, words.empty() ? 0 : words.size() - 1);
          if (stable > confirmed.size())
            confirmed.assign(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(stable));
        }
        prev_words = words;
        PartialResult p;
        p.text = join(confirmed, 0, confirmed.size());
        p.stash = join(words, confirmed.size(), words.size());
        if (!p.text.empty() && !p.stash.empty())
          p.text += ' '; // text + stash is the preview (docs/protocol.md §3.8)
        deliver(
            u, [&] { u.latest = p; }, [&] { job.partial_done(p); });
        break;
      }
      case Job::Kind::Final: {
        ps_end_utt(ps);
        const std::vector<std::string> words = split_words(ps_get_hyp(ps, nullptr));
        FinalResult r;
        r.final_partial.text = join(words, 0, words.size());
        r.transcript = r.final_partial.text;
        if (!r.transcript.empty()) {
          // Like the service: a sentence, capitalised and with a full stop.
          r.transcript[0] =
              static_cast<char>(std::toupper(static_cast<unsigned char>(r.transcript[0])));
          r.transcript += '.';
        }
        r.language = "en"; // the only model this engine loads
        deliver(
            u, [&] { u.result = r; }, [&] { job.final_done(r); });
        return;
      }
      }
    }
  }

  /* Stores a result (under mu) and calls the job's callback unless the recogniser is gone. */
  template <typename Store, typename Call> void deliver(Utterance &u, Store store, Call call) {
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu);
      store();
      cancelled = u.cancelled;
    }
    cv.notify_all(); // blocking final_partial()/transcript() wait for u.result
    if (cancelled)
      return;
    try {
      call();
    } catch (...) {
      // An exception must not end the worker thread (std::terminate); the contract says the
      // callbacks do not throw, so this only protects against a broken caller.
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    for (std::thread &t : workers)
      t.join();
    workers.clear();
    if (first_decoder) {
      ps_free(first_decoder);
      first_decoder = nullptr;
    }
  }
};

class PocketSphinxRecognizer final : public Recognizer {
public:
  PocketSphinxRecognizer(std::shared_ptr<Pool> pool, const EngineConfig &config)
      : pool_(std::move(pool)), u_(std::make_shared<Utterance>()), resampler_(config.sample_rate) {
    {
      std::lock_guard<std::mutex> lock(pool_->mu);
      // Bound to a worker right away, so decoding keeps pace with the audio as it arrives.
      u_->queued = true;
      pool_->waiting.push_back(u_);
      pool_->ensure_worker_locked();
    }
    pool_->cv.notify_all();
  }

  ~PocketSphinxRecognizer() override {
    {
      std::lock_guard<std::mutex> lock(pool_->mu);
      u_->cancelled = true;
      u_->jobs.clear();
      if (u_->queued) {
        auto &w = pool_->waiting;
        w.erase(std::remove(w.begin(), w.end(), u_), w.end());
      }
    }
    pool_->cv.notify_all();
  }

  PocketSphinxRecognizer(const PocketSphinxRecognizer &) = delete;
  PocketSphinxRecognizer &operator=(const PocketSphinxRecognizer &) = delete;

  bool asynchronous() const override { return true; }

  void accept(const int16_t *samples, size_t n_samples) override {
    if (finished_ || n_samples == 0)
      return;
    Job job;
    resampler_.process(samples, n_samples, job.audio);
    accepted_ += n_samples;
    pool_->push(u_, std::move(job));
  }

  size_t samples_accepted() const override { return accepted_; }

  void request_partial(PartialCallback done) override {
    Job job;
    job.kind = Job::Kind::Partial;
    job.partial_done = std::move(done);
    pool_->push(u_, std::move(job));
  }

  void finish(FinalCallback done) override {
    if (finished_)
      return;
    finished_ = true;
    Job audio;
    resampler_.flush(audio.audio);
    pool_->push(u_, std::move(audio));
    Job job;
    job.kind = Job::Kind::Final;
    job.final_done = std::move(done);
    pool_->push(u_, std::move(job));
  }

  PartialResult partial() const override {
    std::lock_guard<std::mutex> lock(pool_->mu);
    return u_->latest;
  }

  PartialResult final_partial() const override { return wait_final().final_partial; }
  std::string transcript() const override { return wait_final().transcript; }
  std::string language() const override { return "en"; }

private:
  FinalResult wait_final() const {
    if (!finished_)
      const_cast<PocketSphinxRecognizer *>(this)->finish([](FinalResult) {});
    std::unique_lock<std::mutex> lock(pool_->mu);
    pool_->cv.wait(lock, [this] { return u_->result.has_value() || pool_->stopping; });
    return u_->result ? *u_->result : FinalResult{};
  }

  std::shared_ptr<Pool> pool_;
  std::shared_ptr<Utterance> u_;
  Resampler resampler_;
  size_t accepted_ = 0;
  bool finished_ = false;
};

class PocketSphinxEngine final : public Engine {
public:
  explicit PocketSphinxEngine(std::shared_ptr<Pool> pool) : pool_(std::move(pool)) {}
  ~PocketSphinxEngine() override { pool_->stop(); }
  PocketSphinxEngine(const PocketSphinxEngine &) = delete;
  PocketSphinxEngine &operator=(const PocketSphinxEngine &) = delete;

  const char *name() const override { return "pocketsphinx"; }
  std::unique_ptr<Recognizer> start_utterance(const EngineConfig &config) override {
    return std::make_unique<PocketSphinxRecognizer>(pool_, config);
  }

private:
  std::shared_ptr<Pool> pool_;
};

} // namespace

std::unique_ptr<Engine> make_pocketsphinx_engine(const EngineOptions &options, std::string *why) {
  auto pool = std::make_shared<Pool>(options);
  std::string reason;
  // Loaded here, not lazily, so a missing model is reported when the service starts.
  pool->first_decoder = load_decoder(options, reason);
  if (!pool->first_decoder) {
    if (why)
      *why = reason;
    return nullptr;
  }
  if (cmn_t *cmn = ps_get_feat(pool->first_decoder)->cmn_struct)
    pool->initial_cmn.assign(cmn->cmn_mean, cmn->cmn_mean + cmn->veclen);
  return std::make_unique<PocketSphinxEngine>(std::move(pool));
}

} // namespace qwenasr::local

#else // !QWENASR_HAVE_POCKETSPHINX

namespace qwenasr::local {

std::unique_ptr<Engine> make_pocketsphinx_engine(const EngineOptions &, std::string *why) {
  if (why)
    *why = "this build has no PocketSphinx";
  return nullptr;
}

} // namespace qwenasr::local

#endif
