/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the element tests: synthetic speech-like audio with known utterance boundaries,
 * a local service per test, and bus message helpers. */
#pragma once

/* Standard headers first: libcheck's fail() macro breaks some of them. */
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "localservice.h"

namespace testutil {

/* A stretch of the test signal: digital silence, or a 440 Hz tone the service's VAD hears. */
struct Stretch {
  guint ms;
  bool speech;
};

struct Utterance {
  guint64 start_ms, end_ms; /* from the start of the audio */
};

struct Audio {
  int rate;
  std::vector<gint16> samples;
  std::vector<Utterance> utterances;
  std::string transcript_of(const Utterance &u) const;
};

Audio make_audio(int rate, const std::vector<Stretch> &stretches);

/* Three utterances over 7.9 s, used by several suites. */
extern const std::vector<Stretch> kThreeUtterances;

/* A service on an ephemeral loopback port; the key it expects is "test-key". */
std::unique_ptr<qwenasr::local::LocalService>
start_service(qwenasr::local::ServiceOptions options = {});

/* A harness around the element `description` (gst-launch syntax), with a bus that records
 * messages from the start. */
GstHarness *harness_with_bus(const std::string &description, const char *src_pad = nullptr);
/* The same without libcheck (for the benchmarks): null, with `problem`, on failure. */
GstHarness *try_harness_with_bus(const std::string &description, const char *src_pad,
                                 std::string *problem);

/* gst_harness_teardown() after dropping what is left on the bus. */
void teardown_harness(GstHarness *h);

/* Sets the harness's input caps: S16LE mono at `rate`. */
void set_audio_caps(GstHarness *h, int rate);

/* A qwenasrsink with sync=false, url and api-key set, wrapped in a harness that feeds caps
 * for `rate` and a bus that records messages. */
GstHarness *sink_harness(const std::string &url, int rate, const char *extra_properties = "");

/* A qwenasr (api-key set) in a harness on its text side, with a bus that records messages.
 * `live`: what the harness answers to the LATENCY query the element sends upstream when caps
 * arrive; like a file by default (the harness itself would say live). */
GstHarness *caption_harness(const std::string &url, int rate, const std::string &properties = "",
                            bool live = false);

/* Pushes the audio in `buffer_ms` buffers with PTS starting at `first_pts`. */
/* Pulls the text side's events until its EOS (blocking; qwenasr pushes from its own task, so
 * its output after EOS was pushed comes a little later). Buffers stay in the harness, all of
 * them before the EOS. */
std::vector<GstEvent *> pull_events_until_eos(GstHarness *h);

GstFlowReturn push_audio(GstHarness *h, const Audio &audio, guint buffer_ms,
                         GstClockTime first_pts);

/* Writes `audio` as a WAV file; returns its path (g_free it, and unlink the file). */
gchar *write_wav(const Audio &audio);

/* A path in the temp dir that does not exist yet, ending in `suffix`. */
std::string temp_path(const char *suffix);

/* A Matroska recording, as a user would have one: `frames` of a 320x240 test picture at `fps`
 * (H.264) and `audio` encoded by `audio_encoder` (e.g. "opusenc", "flacenc"). Its path. */
std::string write_recording(const Audio &audio, int frames, int fps, const char *audio_encoder);

/* Runs a gst-launch style pipeline to EOS (fails the test on an error or after
 * `timeout`); returns every bus message (free_messages). */
std::vector<GstMessage *>
run_pipeline(const std::string &description, GstClockTime timeout,
             const std::function<void(GstElement *pipeline)> &before_start = nullptr);

/* Everything posted on the element's bus so far, in order (the caller unrefs with
 * free_messages). */
std::vector<GstMessage *> drain_bus(GstElement *element);
void free_messages(std::vector<GstMessage *> &messages);

const GstStructure *element_structure(GstMessage *message, const char *name);
std::vector<const GstStructure *> transcripts(const std::vector<GstMessage *> &messages,
                                              bool final);
GstClockTime structure_time(const GstStructure *s, const char *field);

/* Captions and transcripts must land within this of the truth (the issues' bar). */
constexpr GstClockTime kTolerance = 20 * GST_MSECOND;
/* Under valgrind (the `valgrind` test setup sets QWENASR_TEST_WALL_CLOCK_UNRELIABLE) the
 * program runs 20-50 times slower, so what depends on wall-clock budgets (where non-live
 * captions land on the text timeline) is checked by the normal run only; memory is what that
 * run is for. */
bool wall_clock_unreliable();

void assert_time_near(GstClockTime actual, GstClockTime expected, const char *what);

} // namespace testutil
