/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The live benchmark: one speech file paced in real time into qwenasrsink, side by side in
 * one run with the same pipeline into fakesink and with the service documentation's Python
 * client (../shared/reference-client/reference_client.py) on the same audio and service. */
#include "live.h"

#include <glib/gstdio.h>
#include <gst/gst.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>

namespace bench {

namespace {

constexpr int kRate = 16000;

struct LivePass {
  bool ok = false;
  std::string failure;
  double cpu_s = 0, wall_s = 0;
  guint64 switches = 0, appends = 0, syscalls = 0, threads = 0;
};

GstBusSyncReply drop_message(GstBus *, GstMessage *, gpointer) {
  return GST_BUS_DROP;
}

/* filesrc ! rawaudioparse ! audiobuffersplit ! identity sync=true ! SINK, to EOS. */
LivePass run_live_pipeline(const std::string &raw, guint buffer_ms, const std::string &sink) {
  LivePass r;
  gchar *desc = g_strdup_printf(
      "filesrc location=\"%s\" ! rawaudioparse format=pcm pcm-format=s16le sample-rate=%d "
      "num-channels=1 ! audiobuffersplit output-buffer-duration=%u/1000 ! identity sync=true ! %s",
      raw.c_str(), kRate, buffer_ms, sink.c_str());
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(desc, &error);
  g_free(desc);
  if (!pipeline || error) {
    r.failure = error ? error->message : "cannot build the pipeline";
    g_clear_error(&error);
    if (pipeline)
      gst_object_unref(pipeline);
    return r;
  }
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  gst_element_get_state(pipeline, nullptr, nullptr, 30 * GST_SECOND);
  const double cpu0 = cpu_seconds(), wall0 = monotonic_seconds();
  const guint64 switches0 = context_switches();
  const IoCounters io0 = io_counters();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  r.cpu_s = cpu_seconds() - cpu0;
  r.wall_s = monotonic_seconds() - wall0;
  r.switches = context_switches() - switches0;
  const IoCounters io1 = io_counters();
  r.syscalls = (io1.syscr - io0.syscr) + (io1.syscw - io0.syscw);
  r.threads = thread_count();
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    r.failure = err->message;
    g_error_free(err);
  } else {
    r.ok = true;
  }
  gst_message_unref(msg);
  GstElement *s = gst_bin_get_by_name(GST_BIN(pipeline), "s");
  if (s) {
    r.appends = sink_stat(s, "appends");
    gst_object_unref(s);
  }
  gst_bus_set_sync_handler(bus, drop_message, nullptr, nullptr);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  return r;
}

struct Peer {
  GPid pid = 0;
};

/* Starts the reference client on `raw` against `url`; pid 0 if it cannot run. */
Peer start_peer(const std::string &script, const std::string &raw, const std::string &url,
                const std::string &dir) {
  Peer p;
  std::vector<std::string> args = {"/usr/bin/python3",
                                   script,
                                   raw,
                                   "--url",
                                   url,
                                   "--key",
                                   "test-key",
                                   "--quiet",
                                   "--log-file",
                                   dir + "/reference-client.log"};
  std::vector<gchar *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  GError *error = nullptr;
  if (!g_spawn_async(dir.c_str(), argv.data(), nullptr,
                     GSpawnFlags(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                                 G_SPAWN_STDERR_TO_DEV_NULL),
                     nullptr, nullptr, &p.pid, &error)) {
    g_printerr("reference client: %s\n", error->message);
    g_error_free(error);
    p.pid = 0;
  }
  return p;
}

/* Waits for the peer; its whole-process CPU seconds (wait4), or NAN if it failed. */
double wait_peer(Peer &p, double *wall_s, guint64 *switches) {
  int status = 0;
  struct rusage ru {};
  double t0 = monotonic_seconds();
  wait4(p.pid, &status, 0, &ru);
  *wall_s = monotonic_seconds() - t0;
  g_spawn_close_pid(p.pid);
  *switches = ru.ru_nvcsw + ru.ru_nivcsw;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return NAN;
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

} // namespace

int bench_live(const Args &args, const std::vector<gint16> &speech) {
  const double audio_s = args.number("audio-s", 120);
  const guint buffer_ms = static_cast<guint>(args.number("buffer-ms", 100));
  const std::string script =
      args.get("reference-client", SOURCE_ROOT "/../shared/reference-client/reference_client.py");
  Json out;
  out.num("audio_seconds", audio_s).integer("buffer_ms", buffer_ms).str("load_before", loadavg());
  if (speech.empty()) {
    result_line("live_cpu_per_audio_hour: skipped (no recorded speech: pocketsphinx-testdata)");
    return write_json(args.get("json"), out.str("failure", "no recorded speech")) ? 0 : 1;
  }
  /* The recorded speech looped to audio_s, as a raw file both clients read. */
  gchar *dir = g_dir_make_tmp("qwenasr-live-XXXXXX", nullptr);
  const std::string raw = std::string(dir) + "/speech.raw";
  {
    const gsize total = static_cast<gsize>(audio_s * kRate);
    std::vector<gint16> audio;
    audio.reserve(total);
    while (audio.size() < total)
      audio.insert(audio.end(), speech.begin(),
                   speech.begin() + std::min(speech.size(), total - audio.size()));
    g_file_set_contents(raw.c_str(), reinterpret_cast<const gchar *>(audio.data()),
                        audio.size() * 2, nullptr);
  }
  const double hours = audio_s / 3600.0;
  const bool have_peer = g_file_test(script.c_str(), G_FILE_TEST_EXISTS) &&
                         g_file_test("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE);
  if (!have_peer)
    result_line("live_reference_client: not run (%s not found)", script.c_str());

  ServiceProcess service;
  if (!service.start(args.get("service"), {"--any-key"}))
    return 1;
  /* The peer runs alongside (its own process, its own rusage): same audio, same service. */
  Peer peer;
  if (have_peer)
    peer = start_peer(script, raw, service.url(), dir);
  LivePass q =
      run_live_pipeline(raw, buffer_ms, "qwenasrsink name=s api-key=test-key url=" + service.url());
  double peer_cpu = NAN, peer_wall = 0;
  guint64 peer_switches = 0;
  if (peer.pid)
    peer_cpu = wait_peer(peer, &peer_wall, &peer_switches);
  service.stop();
  LivePass f = run_live_pipeline(raw, buffer_ms, "fakesink sync=false");
  remove(raw.c_str());
  remove((std::string(dir) + "/reference-client.log").c_str());
  g_rmdir(dir);
  g_free(dir);
  if (!q.ok || !f.ok) {
    result_line("live_cpu_per_audio_hour: FAILED (%s)", (q.ok ? f : q).failure.c_str());
    return write_json(args.get("json"), out.str("failure", (q.ok ? f : q).failure)) ? 0 : 1;
  }
  const double qh = q.cpu_s / hours, fh = f.cpu_s / hours, ph = peer_cpu / hours;
  const double per_append_switches =
      q.appends ? double(q.switches - std::min(q.switches, f.switches)) / q.appends : NAN;
  result_line("live_cpu_per_audio_hour_%ums: qwenasr %.2f s (same pipeline into fakesink %.2f s; "
              "net %.2f s); reference client %.2f s; ratio qwenasr/reference %.3f (target <= "
              "0.2); wall %.0f s for %.0f s audio",
              buffer_ms, qh, fh, qh - fh, ph, qh / ph, q.wall_s, audio_s);
  result_line("live_context_switches_per_append_%ums: %.2f net of fakesink (%.2f gross; "
              "reference client %.2f per append); read/write-type syscalls per append %.2f; "
              "%" G_GUINT64_FORMAT " appends, %" G_GUINT64_FORMAT " threads",
              buffer_ms, per_append_switches, q.appends ? double(q.switches) / q.appends : NAN,
              double(peer_switches) / (audio_s * 1000 / 100), /* the peer appends every 100 ms */
              q.appends ? double(q.syscalls - std::min(q.syscalls, f.syscalls)) / q.appends : NAN,
              q.appends, q.threads);
  out.num("qwenasr_cpu_s_per_audio_hour", qh)
      .num("fakesink_cpu_s_per_audio_hour", fh)
      .num("qwenasr_net_cpu_s_per_audio_hour", qh - fh)
      .num("reference_client_cpu_s_per_audio_hour", ph)
      .boolean("reference_client_run", have_peer)
      .num("ratio_to_reference_client", qh / ph)
      .num("context_switches_per_append_net", per_append_switches)
      .num("reference_client_context_switches_per_append", double(peer_switches) / (audio_s * 10))
      .integer("appends", q.appends)
      .integer("threads", q.threads)
      .num("wall_s", q.wall_s)
      .str("load_after", loadavg())
      .raw("machine", machine_info().text());
  return write_json(args.get("json"), out) ? 0 : 1;
}

} // namespace bench
