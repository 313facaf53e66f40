// SPDX-License-Identifier: LGPL-2.1-or-later
/* The PocketSphinx engine end to end: the local service runs in-process with --engine
 * pocketsphinx, qwenasrsink streams real recorded speech from Debian's pocketsphinx-testdata to
 * it, and the final transcripts are scored by word error rate (WER) against what was said.
 *
 *   test_pocketsphinx goforward MAX_WER   goforward.raw must be "go forward ten meters"
 *   test_pocketsphinx librivox MAX_WER    the five LibriVox clips against their transcription
 *   test_pocketsphinx rate8k MAX_WER      goforward.raw resampled to an 8 kHz session
 *
 * Exits 77 (meson: SKIP) when the build has no PocketSphinx or the model or recordings are not
 * installed, 1 when the WER is above MAX_WER or a pipeline fails. */
#include <gst/gst.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "localservice.h"

namespace {

constexpr int kSkip = 77;
const std::string kData = "/usr/share/pocketsphinx/test/data";

/* Lower case, letters, digits and apostrophes only: the engine's capital and full stop (and
 * the reference's sentence markers) are not recognition errors. */
std::vector<std::string> normalise(const std::string &text) {
  std::vector<std::string> words;
  std::string w;
  for (char c : text + " ") {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '\'') {
      w += static_cast<char>(std::tolower(u));
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  return words;
}

/* Word-level edit distance: substitutions + deletions + insertions. */
size_t word_errors(const std::vector<std::string> &ref, const std::vector<std::string> &hyp) {
  std::vector<size_t> row(hyp.size() + 1);
  for (size_t j = 0; j <= hyp.size(); j++)
    row[j] = j;
  for (size_t i = 1; i <= ref.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= hyp.size(); j++) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (ref[i - 1] == hyp[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[hyp.size()];
}

bool readable(const std::string &path) {
  std::ifstream f(path);
  return f.good();
}

/* Runs `source` into qwenasrsink (as fast as the service takes it) and returns the final
 * transcripts joined by spaces; false if the pipeline fails. */
bool transcribe(const std::string &url, const std::string &source, const std::string &properties,
                std::string &out) {
  const std::string description = source +
                                  " ! audioconvert ! audioresample ! qwenasrsink sync=false "
                                  "language-code=en api-key=test-key url=" +
                                  url + " " + properties;
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  if (!pipeline) {
    std::fprintf(stderr, "cannot build '%s': %s\n", description.c_str(),
                 error ? error->message : "?");
    g_clear_error(&error);
    return false;
  }
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  bool ok = false;
  out.clear();
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop(bus, 120 * GST_SECOND);
    if (!msg) {
      std::fprintf(stderr, "timeout: %s\n", description.c_str());
      break;
    }
    const GstStructure *s = gst_message_get_structure(msg);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT && s &&
        gst_structure_has_name(s, "qwenasr/transcript")) {
      gboolean final = FALSE;
      gst_structure_get_boolean(s, "final", &final);
      if (final) {
        const char *text = gst_structure_get_string(s, "text");
        if (text && *text)
          out += (out.empty() ? "" : " ") + std::string(text);
      }
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError *e = nullptr;
      gst_message_parse_error(msg, &e, nullptr);
      std::fprintf(stderr, "error: %s\n", e ? e->message : "?");
      g_clear_error(&e);
      gst_message_unref(msg);
      break;
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
      ok = true;
      gst_message_unref(msg);
      break;
    }
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return ok;
}

struct Clip {
  std::string source; // gst-launch description of the audio
  std::string reference;
  std::string name;
};

std::string raw16k(const std::string &path) {
  return "filesrc location=" + path +
         " ! rawaudioparse format=pcm pcm-format=s16le sample-rate=16000 num-channels=1";
}

/* librivox/transcription lines: "<s> words </s> (fileid)". */
std::vector<Clip> librivox_clips() {
  std::vector<Clip> clips;
  std::ifstream f(kData + "/librivox/transcription");
  std::string line;
  while (std::getline(f, line)) {
    const size_t open = line.rfind('(');
    const size_t close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open)
      continue;
    const std::string id = line.substr(open + 1, close - open - 1);
    std::string ref = line.substr(0, open);
    for (const char *marker : {"<s>", "</s>"}) {
      const size_t at = ref.find(marker);
      if (at != std::string::npos)
        ref.erase(at, std::string(marker).size());
    }
    clips.push_back({"filesrc location=" + kData + "/librivox/" + id + ".wav ! wavparse", ref, id});
  }
  return clips;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s goforward|librivox|rate8k MAX_WER [SINK_PROPERTIES]\n",
                 argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const double max_wer = std::atof(argv[2]);
  const std::string properties = argc == 4 ? argv[3] : "";
  if (!qwenasr::local::engine_compiled_in(qwenasr::local::EngineKind::PocketSphinx)) {
    std::printf("SKIP: built without PocketSphinx (install libpocketsphinx-dev)\n");
    return kSkip;
  }
  std::vector<Clip> clips;
  if (mode == "goforward" || mode == "rate8k") {
    std::string src = raw16k(kData + "/goforward.raw");
    if (mode == "rate8k")
      src += " ! audioresample ! audio/x-raw,rate=8000";
    clips.push_back({src, "go forward ten meters", "goforward.raw"});
    if (!readable(kData + "/goforward.raw")) {
      std::printf("SKIP: %s/goforward.raw missing (install pocketsphinx-testdata)\n",
                  kData.c_str());
      return kSkip;
    }
  } else if (mode == "librivox") {
    clips = librivox_clips();
    if (clips.empty()) {
      std::printf("SKIP: %s/librivox missing (install pocketsphinx-testdata)\n", kData.c_str());
      return kSkip;
    }
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }

  gst_init(&argc, &argv);
  qwenasr::local::ServiceOptions options;
  options.engine = qwenasr::local::EngineKind::PocketSphinx;
  qwenasr::local::LocalService service(options);
  GError *error = nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  if (!service.start(&error)) {
    // Compiled in but the model is not there: the model package is what is missing.
    std::printf("SKIP: %s (install pocketsphinx-en-us)\n", error ? error->message : "?");
    g_clear_error(&error);
    return kSkip;
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("service with PocketSphinx started in %.2f s: %s\n", load_s, service.url().c_str());

  size_t errors = 0, ref_words = 0;
  int rc = 0;
  for (const Clip &clip : clips) {
    std::string hyp;
    const auto c0 = std::chrono::steady_clock::now();
    if (!transcribe(service.url(), clip.source, properties, hyp)) {
      std::printf("FAIL: %s: pipeline failed\n", clip.name.c_str());
      rc = 1;
      continue;
    }
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    const auto ref = normalise(clip.reference);
    const size_t e = word_errors(ref, normalise(hyp));
    errors += e;
    ref_words += ref.size();
    std::printf("%s (%.2f s)\n  ref: %s\n  hyp: %s\n  errors %zu / %zu words\n", clip.name.c_str(),
                took, clip.reference.c_str(), hyp.c_str(), e, ref.size());
  }
  const double wer = ref_words ? static_cast<double>(errors) / ref_words : 1.0;
  std::printf("WER %s %s: %.3f (%zu errors / %zu words), bound %.3f\n", mode.c_str(),
              properties.c_str(), wer, errors, ref_words, max_wer);
  if (wer > max_wer) {
    std::printf("FAIL: WER above the bound\n");
    rc = 1;
  }
  service.stop();
  return rc;
}
