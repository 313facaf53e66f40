/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Several qwenasrsink sessions in one process: one shared network thread, sessions that do
 * not wait for one another, and audio that leaves from the thread that brought it. */
#include "sendprobe.h"
#include "testutil.h"

#include <pthread.h>

#include <gio/gio.h>

using namespace testutil;

/* Threads of this process named `name`. */
static int threads_named(const char *name) {
  int n = 0;
  GDir *dir = g_dir_open("/proc/self/task", 0, nullptr);
  fail_unless(dir != nullptr, "no /proc/self/task");
  while (const char *task = g_dir_read_name(dir)) {
    gchar *path = g_strdup_printf("/proc/self/task/%s/comm", task);
    gchar *comm = nullptr;
    if (g_file_get_contents(path, &comm, nullptr, nullptr) &&
        g_strcmp0(g_strstrip(comm), name) == 0)
      n++;
    g_free(comm);
    g_free(path);
  }
  g_dir_close(dir);
  return n;
}

/* Whether the process comes to have `n` threads named `name` (a new thread names itself once
 * it runs, so this waits up to 10 s for that). */
static bool reaches_threads_named(const char *name, int n) {
  gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
  while (threads_named(name) != n) {
    if (g_get_monotonic_time() > deadline)
      return false;
    g_usleep(1000);
  }
  return true;
}

/* A loopback port that accepts TCP connections (the kernel's backlog) and never answers. */
static GSocket *silent_listener(guint16 *port) {
  GSocket *socket =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  GInetAddress *loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new(loopback, 0);
  fail_unless(g_socket_bind(socket, address, FALSE, nullptr), "bind");
  fail_unless(g_socket_listen(socket, nullptr), "listen");
  GSocketAddress *bound = g_socket_get_local_address(socket, nullptr);
  *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_object_unref(address);
  g_object_unref(loopback);
  return socket;
}

GST_START_TEST(test_sessions_share_one_network_thread_and_a_silent_peer_delays_no_other) {
  auto service = start_service();
  guint16 port = 0;
  GSocket *silent = silent_listener(&port);
  gchar *silent_url = g_strdup_printf("ws://127.0.0.1:%u/api-ws/v1/realtime", port);

  /* Session A: its peer takes the connection and never answers the handshake. */
  GstHarness *a = sink_harness(silent_url, 16000, "connect-timeout=60000");
  Audio short_audio = make_audio(16000, {{500, false}});
  fail_unless_equals_int(push_audio(a, short_audio, 20, 0), GST_FLOW_OK);

  /* Session B, meanwhile, streams, gets every final and finishes. */
  Audio audio = make_audio(16000, kThreeUtterances);
  GstHarness *b = sink_harness(service->url(), 16000);
  fail_unless_equals_int(push_audio(b, audio, 20, 0), GST_FLOW_OK);
  fail_unless(reaches_threads_named("qwenasr-io", 1), "not one network thread");
  fail_unless_equals_int(threads_named("qwenasr-client"), 0);
  fail_unless(gst_harness_push_event(b, gst_event_new_eos()), "EOS refused");
  std::vector<GstMessage *> messages = drain_bus(b->element);
  fail_unless_equals_int(transcripts(messages, true).size(), audio.utterances.size());
  free_messages(messages);

  /* A is still waiting for its peer: nothing configured, no error. */
  messages = drain_bus(a->element);
  for (GstMessage *m : messages) {
    fail_if(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR, "session A failed");
    const GstStructure *s = element_structure(m, "qwenasr/session");
    fail_if(s && g_strcmp0(gst_structure_get_string(s, "state"), "configured") == 0,
            "session A cannot be configured");
  }
  free_messages(messages);
  teardown_harness(b);
  teardown_harness(a);
  g_free(silent_url);
  g_object_unref(silent);
}
GST_END_TEST;

GST_START_TEST(test_the_network_thread_ends_with_the_last_session) {
  auto service = start_service();
  Audio audio = make_audio(16000, {{300, false}});
  for (int i = 0; i < 3; i++) {
    GstHarness *h = sink_harness(service->url(), 16000);
    fail_unless_equals_int(push_audio(h, audio, 20, 0), GST_FLOW_OK);
    fail_unless(reaches_threads_named("qwenasr-io", 1), "no network thread");
    teardown_harness(h);
    /* The thread is joined when the last session stops on another thread; its /proc entry
     * may outlive the join for a moment (the kernel wakes the joiner before it reaps the
     * task), hence a bounded wait rather than one look. */
    fail_unless(reaches_threads_named("qwenasr-io", 0), "the network thread outlived its sessions");
  }
}
GST_END_TEST;

/* Waits (up to 30 s) until `n` appends have left the socket (sendprobe). */
static bool wait_sent(gsize n) {
  gint64 deadline = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;
  while (sendprobe::sender_threads().size() < n) {
    if (g_get_monotonic_time() > deadline)
      return false;
    g_usleep(1000);
  }
  return true;
}

/* The live case's cost is the hand-off per append: on a configured session the append is on
 * the socket when push returns, written by the pushing thread, not the network thread. */
GST_START_TEST(test_an_append_leaves_from_the_thread_that_pushed_it) {
  auto service = start_service();
  GstHarness *h = sink_harness(service->url(), 16000);
  Audio audio = make_audio(16000, {{1000, true}});
  const gsize chunk = 1600; /* 100 ms: one append each (chunk-duration) */
  auto chunk_buffer = [&](gsize i) {
    GstBuffer *buffer =
        gst_buffer_new_wrapped(g_memdup2(audio.samples.data() + i * chunk, chunk * 2), chunk * 2);
    GST_BUFFER_PTS(buffer) = i * 100 * GST_MSECOND;
    return buffer;
  };
  char self[16] = "";
  pthread_getname_np(pthread_self(), self, sizeof self);
  sendprobe::enable(service->port());
  /* Queued before the session was configured: the network thread sends it. */
  fail_unless_equals_int(gst_harness_push(h, chunk_buffer(0)), GST_FLOW_OK);
  fail_unless(wait_sent(1), "the session sent nothing");
  for (gsize i = 1; i < audio.samples.size() / chunk; i++) {
    fail_unless_equals_int(gst_harness_push(h, chunk_buffer(i)), GST_FLOW_OK);
    std::vector<std::string> senders = sendprobe::sender_threads();
    fail_unless_equals_int(senders.size(), i + 1);
    fail_unless_equals_string(senders.back().c_str(), self);
  }
  sendprobe::disable();
  teardown_harness(h);
}
GST_END_TEST;

static Suite *iothread_suite() {
  Suite *s = suite_create("iothread");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_sessions_share_one_network_thread_and_a_silent_peer_delays_no_other);
  tcase_add_test(tc, test_the_network_thread_ends_with_the_last_session);
  tcase_add_test(tc, test_an_append_leaves_from_the_thread_that_pushed_it);
  return s;
}

GST_CHECK_MAIN(iothread);
