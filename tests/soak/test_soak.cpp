/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An hour of speech-like audio (and 20 minutes as Opus) at full speed through qwenasrsink while the
 * service drops the connection every minute of audio: every utterance is transcribed exactly once
 * at its time, and the process's memory stays flat. Bounded: it runs as fast as the machine allows.
 */
#include "testutil.h"

#include <cmath>
#include <fstream>

using namespace testutil;

static const guint kCycleMs = 3000; /* 1.5 s of speech, 1.5 s of silence */
static const guint kSpeechMs = 1500;
static const int kRate = 16000;

static gsize resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoul(line.substr(6));
  }
  return 0;
}

struct Counter {
  guint finals = 0;
  guint out_of_place = 0;
  GstClockTime last_start = 0;
};

/* Counts finals as they are posted, so an hour of results does not pile up on the bus. */
static GstBusSyncReply count_finals(GstBus *, GstMessage *message, gpointer data) {
  auto *counter = static_cast<Counter *>(data);
  const GstStructure *s = element_structure(message, "qwenasr/transcript");
  gboolean final = FALSE;
  if (s && gst_structure_get_boolean(s, "final", &final) && final) {
    guint64 start = GST_CLOCK_TIME_NONE;
    gst_structure_get_uint64(s, "start-time", &start);
    /* The n-th final must start at the n-th utterance. */
    GstClockTime expected = static_cast<GstClockTime>(counter->finals) * kCycleMs * GST_MSECOND;
    if (start + 20 * GST_MSECOND < expected || start > expected + 20 * GST_MSECOND)
      counter->out_of_place++;
    counter->finals++;
  }
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR)
    counter->out_of_place += 1000;
  gst_message_unref(message);
  return GST_BUS_DROP;
}

static void soak(guint audio_seconds, const char *properties) {
  qwenasr::local::ServiceOptions options;
  options.faults.close_after_audio_ms = 60000; /* every session */
  options.partial_interval_ms = 500;
  auto service = start_service(options);
  GstHarness *h =
      sink_harness(service->url(), kRate, (std::string("max-reconnects=3 ") + properties).c_str());
  Counter counter;
  GstBus *bus = gst_element_get_bus(h->element);
  gst_bus_set_sync_handler(bus, count_finals, &counter, nullptr);

  Audio cycle = make_audio(kRate, {{kSpeechMs, true}, {kCycleMs - kSpeechMs, false}});
  const gsize per_buffer = kRate / 10; /* 100 ms */
  gsize rss_after_warmup = 0, rss_peak = 0;
  guint64 sample = 0;
  const guint64 total = static_cast<guint64>(audio_seconds) * kRate;
  while (sample < total) {
    gsize in_cycle = sample % cycle.samples.size();
    gsize n = std::min(per_buffer, cycle.samples.size() - in_cycle);
    GstBuffer *buffer = gst_buffer_new_memdup(cycle.samples.data() + in_cycle, n * 2);
    GST_BUFFER_PTS(buffer) = gst_util_uint64_scale_int(sample, GST_SECOND, kRate);
    fail_unless_equals_int(gst_harness_push(h, buffer), GST_FLOW_OK);
    sample += n;
    if (sample == total / 6)
      rss_after_warmup = resident_kib();
    if (sample % (kRate * 60) == 0)
      rss_peak = std::max(rss_peak, resident_kib());
  }
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()), "EOS refused");
  gsize rss_end = resident_kib();

  GstStructure *stats = nullptr;
  g_object_get(h->element, "stats", &stats, nullptr);
  guint64 reconnects = 0;
  gst_structure_get_uint64(stats, "reconnects", &reconnects);
  gchar *stats_text = gst_structure_to_string(stats);
  g_print("soak: %s\n", stats_text);
  g_free(stats_text);
  gst_structure_free(stats);
  g_print("soak (%s): %u s of audio, %u finals, %" G_GUINT64_FORMAT " reconnects, RSS %zu KiB "
          "after a sixth, peak %zu KiB, %zu KiB at the end\n",
          properties, audio_seconds, counter.finals, reconnects, rss_after_warmup, rss_peak,
          rss_end);

  for (const auto &session : service->sessions())
    g_print("session %u: %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " samples decoded, "
            "%zu transcripts, finished %d, fault %d\n",
            session.session_number, session.audio_bytes, session.decoded_samples,
            session.transcripts.size(), session.finished, session.fault_closed);
  fail_unless_equals_int(counter.out_of_place, 0);
  fail_unless_equals_int(counter.finals, audio_seconds * 1000 / kCycleMs);
  fail_unless(reconnects >= audio_seconds / 60 - 1, "the service did not drop as asked");
  /* Flat: what the first sixth needed is all the rest may add, within 16 MiB (the in-process
   * service keeps a record of every session it served). */
  fail_unless(rss_peak < rss_after_warmup + 16 * 1024, "memory grew from %zu to %zu KiB",
              rss_after_warmup, rss_peak);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  teardown_harness(h);
}

GST_START_TEST(test_an_hour_through_reconnects_loses_nothing_and_memory_stays_flat) {
  soak(3600, "");
}
GST_END_TEST;

/* Every reconnection starts a new Ogg stream with the resent audio (encoding is the cost:
 * 20 minutes keep it short). */
GST_START_TEST(test_twenty_minutes_of_opus_through_reconnects_lose_nothing) {
  soak(1200, "audio-format=opus");
}
GST_END_TEST;

static Suite *soak_suite(void) {
  Suite *s = suite_create("soak");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, test_an_hour_through_reconnects_loses_nothing_and_memory_stays_flat);
  tcase_add_test(tc, test_twenty_minutes_of_opus_through_reconnects_lose_nothing);
  return s;
}

GST_CHECK_MAIN(soak);
