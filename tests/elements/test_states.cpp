/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* State changes of both transcribing elements, whatever the service does: NULL -> PLAYING ->
 * NULL many times with the service up, down and slow, and PAUSED <-> PLAYING while audio
 * flows; every change completes, nothing hangs or crashes, and the session still works. */
#include <atomic>

#include "testutil.h"

namespace {

using namespace testutil;

/* The two elements, each ending a pipeline fed by `source` (gst-launch syntax). qwenasr's
 * latency is longer than kStateTimeout: a live pipeline must reach PLAYING without waiting for
 * the first caption or GAP its budget allows. */
struct Element {
  const char *name;
  const char *tail; /* its own properties and, for qwenasr, the text's sink */
};
const Element kElements[] = {{"qwenasrsink", " sync=false"},
                             {"qwenasr", " latency=30000 ! fakesink"}};

constexpr const char *kLiveSource = "audiotestsrc is-live=true wave=sine samplesperbuffer=1600 ! "
                                    "audio/x-raw,format=S16LE,channels=1,rate=16000";
constexpr const char *kFileSource =
    "audiotestsrc wave=sine samplesperbuffer=1600 num-buffers=100 ! "
    "audio/x-raw,format=S16LE,channels=1,rate=16000";

/* A state change, or the wait for one, longer than this is a hang. */
constexpr GstClockTime kStateTimeout = 20 * GST_SECOND;

/* Counts the audio buffers reaching the element, so a test can wait for audio to flow. */
struct Flow {
  std::atomic<guint> buffers{0};
  GMutex lock;
  GCond cond;
  Flow() {
    g_mutex_init(&lock);
    g_cond_init(&cond);
  }
  ~Flow() {
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
  }
  /* Waits until `n` more buffers than `from` arrived; false after `timeout`. */
  bool wait_for(guint from, guint n, GstClockTime timeout) {
    gint64 end = g_get_monotonic_time() + timeout / GST_USECOND;
    g_mutex_lock(&lock);
    bool ok = true;
    while (buffers < from + n && ok)
      ok = g_cond_wait_until(&cond, &lock, end);
    g_mutex_unlock(&lock);
    return buffers >= from + n;
  }
};

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer data) {
  Flow *flow = static_cast<Flow *>(data);
  g_mutex_lock(&flow->lock);
  flow->buffers++;
  g_cond_broadcast(&flow->cond);
  g_mutex_unlock(&flow->lock);
  return GST_PAD_PROBE_OK;
}

GstElement *make_pipeline(const Element &element, const char *source, const std::string &url,
                          Flow *flow, const char *extra = "") {
  std::string description = std::string(source) + " ! " + element.name +
                            " name=asr api-key=test-key max-reconnects=0 url=" + url + " " + extra +
                            element.tail;
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline != nullptr, "%s: %s", description.c_str(), error ? error->message : "");
  GstElement *asr = gst_bin_get_by_name(GST_BIN(pipeline), "asr");
  GstPad *pad = gst_element_get_static_pad(asr, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, flow, nullptr);
  gst_object_unref(pad);
  gst_object_unref(asr);
  return pipeline;
}

/* Sets `state` and waits for it; fails the test when it neither succeeds nor fails in time
 * (a failure is allowed only where `may_fail`). */
void change_state(GstElement *pipeline, GstState state, bool may_fail, const char *what) {
  GstStateChangeReturn ret = gst_element_set_state(pipeline, state);
  if (ret == GST_STATE_CHANGE_ASYNC)
    ret = gst_element_get_state(pipeline, nullptr, nullptr, kStateTimeout);
  fail_if(ret == GST_STATE_CHANGE_ASYNC, "%s: the change to %s hung", what,
          gst_element_state_get_name(state));
  fail_unless(may_fail || ret != GST_STATE_CHANGE_FAILURE, "%s: the change to %s failed", what,
              gst_element_state_get_name(state));
}

/* The port of a service that was started and stopped: nothing listens there. */
std::string closed_url() {
  auto service = start_service();
  std::string url = service->url();
  service->stop();
  return url;
}

/* NULL -> PLAYING (until audio flows, or the element gave up) -> NULL, `cycles` times. */
void cycle(const Element &element, const std::string &url, int cycles, bool service_up) {
  Flow flow;
  GstElement *pipeline = make_pipeline(element, kLiveSource, url, &flow);
  for (int i = 0; i < cycles; i++) {
    std::string what = std::string(element.name) + " cycle " + std::to_string(i);
    change_state(pipeline, GST_STATE_PLAYING, !service_up, what.c_str());
    if (service_up)
      fail_unless(flow.wait_for(flow.buffers, 3, kStateTimeout), "%s: no audio flowed",
                  what.c_str());
    gint64 before = g_get_monotonic_time();
    change_state(pipeline, GST_STATE_NULL, false, what.c_str());
    /* Stopping interrupts every wait on the service (connect-timeout is 10 s). */
    if (!wall_clock_unreliable())
      fail_unless(g_get_monotonic_time() - before < 5 * G_TIME_SPAN_SECOND,
                  "%s: stopping took %" G_GINT64_FORMAT " ms", what.c_str(),
                  (g_get_monotonic_time() - before) / 1000);
  }
  if (!service_up) {
    /* Each start that got that far said why in one error; none is about anything else. */
    for (GstMessage *m : drain_bus(pipeline)) {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError *error = nullptr;
        gst_message_parse_error(m, &error, nullptr);
        fail_unless(error->domain == GST_RESOURCE_ERROR, "unexpected error: %s", error->message);
        g_error_free(error);
      }
      gst_message_unref(m);
    }
  }
  gst_object_unref(pipeline);
}

/* Plays `source` into the element with the service up, toggling PLAYING <-> PAUSED (live:
 * while audio flows; a file may be through already), then sends EOS: the pipeline ends
 * without an error and the service heard it. */
void pause_and_resume(const Element &element, const char *source, bool live) {
  auto service = start_service();
  Flow flow;
  GstElement *pipeline = make_pipeline(element, source, service->url(), &flow);
  for (int i = 0; i < 4; i++) {
    std::string what = std::string(element.name) + " round " + std::to_string(i);
    change_state(pipeline, GST_STATE_PLAYING, false, what.c_str());
    fail_unless(!live || flow.wait_for(flow.buffers, 2, kStateTimeout), "%s: no audio flowed",
                what.c_str());
    change_state(pipeline, GST_STATE_PAUSED, false, what.c_str());
  }
  change_state(pipeline, GST_STATE_PLAYING, false, element.name);
  gst_element_send_event(pipeline, gst_event_new_eos());
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *end = gst_bus_timed_pop_filtered(
      bus, 30 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(end != nullptr, "%s: no EOS", element.name);
  if (GST_MESSAGE_TYPE(end) == GST_MESSAGE_ERROR) {
    GError *error = nullptr;
    gst_message_parse_error(end, &error, nullptr);
    fail("%s: %s", element.name, error->message);
  }
  gst_message_unref(end);
  gst_object_unref(bus);
  change_state(pipeline, GST_STATE_NULL, false, element.name);
  gst_object_unref(pipeline);
  fail_unless(!service->sessions().empty() && service->sessions().front().appends > 0,
              "%s: the service got no audio", element.name);
}

} // namespace

GST_START_TEST(test_start_stop_cycles_with_the_service_up) {
  auto service = start_service();
  for (const Element &element : kElements)
    cycle(element, service->url(), 5, true);
  /* A start that is stopped before its connection is accepted makes no session: under
   * valgrind that can happen. */
  guint sessions = service->sessions().size();
  fail_unless(sessions >= (wall_clock_unreliable() ? 1u : 10u), "only %u sessions", sessions);
}
GST_END_TEST;

GST_START_TEST(test_start_stop_cycles_with_the_service_down) {
  std::string url = closed_url();
  for (const Element &element : kElements)
    cycle(element, url, 5, false);
}
GST_END_TEST;

/* Every event (session.created first) comes 4 s late: stopping never waits for it. */
GST_START_TEST(test_start_stop_cycles_with_a_slow_service) {
  qwenasr::local::ServiceOptions options;
  options.faults.event_delay_ms = 4000;
  auto service = start_service(options);
  for (const Element &element : kElements) {
    Flow flow;
    GstElement *pipeline = make_pipeline(element, kLiveSource, service->url(), &flow);
    for (int i = 0; i < 3; i++) {
      std::string what = std::string(element.name) + " slow cycle " + std::to_string(i);
      change_state(pipeline, GST_STATE_PLAYING, false, what.c_str());
      fail_unless(flow.wait_for(flow.buffers, 1, kStateTimeout), "%s: no audio came", what.c_str());
      gint64 before = g_get_monotonic_time();
      change_state(pipeline, GST_STATE_NULL, false, what.c_str());
      if (!wall_clock_unreliable())
        fail_unless(g_get_monotonic_time() - before < 3 * G_TIME_SPAN_SECOND,
                    "%s: stopping waited %" G_GINT64_FORMAT " ms for the slow service",
                    what.c_str(), (g_get_monotonic_time() - before) / 1000);
    }
    gst_object_unref(pipeline);
  }
}
GST_END_TEST;

GST_START_TEST(test_pause_and_resume_live_input) {
  for (const Element &element : kElements)
    pause_and_resume(element, kLiveSource, true);
}
GST_END_TEST;

GST_START_TEST(test_pause_and_resume_file_input) {
  for (const Element &element : kElements)
    pause_and_resume(element, kFileSource, false);
}
GST_END_TEST;

static Suite *states_suite() {
  Suite *s = suite_create("states");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 240);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_start_stop_cycles_with_the_service_up);
  tcase_add_test(tc, test_start_stop_cycles_with_the_service_down);
  tcase_add_test(tc, test_start_stop_cycles_with_a_slow_service);
  tcase_add_test(tc, test_pause_and_resume_live_input);
  tcase_add_test(tc, test_pause_and_resume_file_input);
  return s;
}

GST_CHECK_MAIN(states);
