/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr-bench: performance benchmarks of qwenasrsink against the local service.
 *
 *   qwenasr-bench cpu      --service EXE --json FILE [--audio-s 3600]
 *   qwenasr-bench streams  --service EXE --json FILE [--streams 1,10,100,500,1000] [--seconds 30]
 *   qwenasr-bench latency  --json FILE [--audio-s 60] [--background N --service EXE]
 *   qwenasr-bench wire     --service EXE --json FILE [--audio-s 600]
 *   qwenasr-bench memory   --service EXE --json FILE [--audio-s 3600]
 *   qwenasr-bench live     --service EXE --json FILE [--audio-s 120] [--buffer-ms 100]
 *
 * Each prints one result line per figure (name: value ...) and writes a JSON object with
 * the figures, the parameters, the machine and the load average. They are registered as
 * meson benchmark()s (suite "bench"), never as tests; tests/bench/run.sh runs them all. See
 * docs/performance.md for what each measures. */
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <sys/resource.h>

#include "benchutil.h"
#include "live.h"
#include "localservice.h"
#include "sendprobe.h"

using namespace bench;

namespace {

constexpr int kRate = 16000;
constexpr double kPcmBytesPerSecond = kRate * 2.0;

/* ---- bus counting ---- */

struct BusCounts {
  std::atomic<guint64> finals{0}, partials{0}, errors{0}, warnings{0}, configured{0},
      reconnecting{0};
  std::mutex mutex;
  std::string first_error;
};

GstBusSyncReply count_and_drop(GstBus *, GstMessage *message, gpointer data) {
  auto *c = static_cast<BusCounts *>(data);
  switch (GST_MESSAGE_TYPE(message)) {
  case GST_MESSAGE_ERROR: {
    GError *error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    {
      std::lock_guard<std::mutex> lock(c->mutex);
      if (c->first_error.empty())
        c->first_error = error->message;
    }
    g_error_free(error);
    c->errors++;
    break;
  }
  case GST_MESSAGE_WARNING:
    c->warnings++;
    break;
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure(message);
    if (gst_structure_has_name(s, "qwenasr/transcript")) {
      gboolean final = FALSE;
      gst_structure_get_boolean(s, "final", &final);
      (final ? c->finals : c->partials)++;
    } else if (gst_structure_has_name(s, "qwenasr/session")) {
      const gchar *state = gst_structure_get_string(s, "state");
      if (g_strcmp0(state, "configured") == 0)
        c->configured++;
      else if (g_strcmp0(state, "reconnecting") == 0)
        c->reconnecting++;
    }
    break;
  }
  default:
    break;
  }
  gst_message_unref(message);
  return GST_BUS_DROP;
}

/* N live pipelines (`audiotestsrc is-live=true` into `sink`, named "s"), their bus messages
 * counted and dropped; set to NULL and freed on destruction. */
struct LiveStreams {
  BusCounts counts;
  std::vector<GstElement *> pipelines;
  std::string failure; /* empty: every pipeline started (and configured, if waited for) */

  LiveStreams(int n, const std::string &sink, guint buffer_samples) {
    std::string desc =
        "audiotestsrc is-live=true wave=ticks samplesperbuffer=" + std::to_string(buffer_samples) +
        " ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! " + sink;
    for (int i = 0; i < n; i++) {
      GError *error = nullptr;
      GstElement *p = gst_parse_launch(desc.c_str(), &error);
      if (!p || error) {
        failure =
            std::string("pipeline ") + std::to_string(i) + ": " + (error ? error->message : "?");
        g_clear_error(&error);
        break;
      }
      GstBus *bus = gst_element_get_bus(p);
      gst_bus_set_sync_handler(bus, count_and_drop, &counts, nullptr);
      gst_object_unref(bus);
      pipelines.push_back(p);
      if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        failure = "pipeline " + std::to_string(i) + " did not start: " + counts.first_error;
        break;
      }
    }
  }
  /* Until every qwenasrsink session is configured (or an error, or `timeout_s`). */
  bool wait_configured(double timeout_s) {
    if (!failure.empty())
      return false;
    gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout_s * G_USEC_PER_SEC);
    while (counts.configured < pipelines.size() && counts.errors == 0 &&
           g_get_monotonic_time() < deadline)
      g_usleep(10000);
    if (counts.configured < pipelines.size())
      failure = std::to_string(counts.configured.load()) + " of " +
                std::to_string(pipelines.size()) + " sessions configured; " + counts.first_error;
    return failure.empty();
  }
  ~LiveStreams() {
    for (GstElement *p : pipelines) {
      gst_element_set_state(p, GST_STATE_NULL);
      GstBus *bus = gst_element_get_bus(p);
      gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
      gst_object_unref(bus);
      gst_object_unref(p);
    }
  }
};

/* ---- one pass of audio through an element in a harness, as fast as it takes it ---- */

struct Sample {
  double audio_s, wall_s, cpu_s, rss_mib, heap_mib;
  guint64 reconnects;
};

struct PassResult {
  bool ok = false;
  std::string failure;
  double cpu_s = 0, wall_s = 0, user_s = 0, sys_s = 0;
  guint64 switches = 0;                  /* context switches */
  IoCounters io;                         /* deltas over the pass */
  TcpCounters tcp;                       /* before EOS */
  std::map<std::string, double> threads; /* CPU s per thread name, before EOS */
  guint64 finals = 0, partials = 0, warnings = 0;
  guint64 bytes_sent = 0, appends = 0, reconnects = 0, dropped_ns = 0;
  std::vector<Sample> samples;
};

struct PassOptions {
  std::string description; /* one element, gst-launch syntax */
  double audio_s = 60;
  bool qwen = true;          /* a qwenasrsink: wait for the audio to be sent, read stats */
  int service_port = -1;     /* for TCP counters */
  double sample_every_s = 0; /* memory samples every this much audio */
  guint speech_ms = 1500, cycle_ms = 3000;
  bool fail_on_drop = true;
  double speed = 0; /* 0: as fast as the element takes it; else this many times real time */
  std::vector<gint16> audio; /* looped instead of the synthetic cycle when not empty */
};

/* Debian's recorded speech (pocketsphinx-testdata: five LibriVox clips, 24.7 s at 16 kHz),
 * each followed by 1 s of silence; empty when not installed. */
std::vector<gint16> recorded_speech() {
  std::vector<gint16> all;
  GDir *dir = g_dir_open("/usr/share/pocketsphinx/test/data/librivox", 0, nullptr);
  if (!dir)
    return all;
  std::vector<std::string> names;
  while (const char *name = g_dir_read_name(dir)) {
    if (g_str_has_suffix(name, ".wav"))
      names.push_back(name);
  }
  g_dir_close(dir);
  std::sort(names.begin(), names.end());
  for (const std::string &name : names) {
    gchar *data = nullptr;
    gsize size = 0;
    std::string path = "/usr/share/pocketsphinx/test/data/librivox/" + name;
    if (!g_file_get_contents(path.c_str(), &data, &size, nullptr))
      continue;
    /* RIFF chunks after the 12-byte header: find "data" (16 kHz mono S16 files). */
    for (gsize at = 12; at + 8 <= size;) {
      guint32 length = GST_READ_UINT32_LE(data + at + 4);
      if (memcmp(data + at, "data", 4) == 0) {
        const gint16 *s = reinterpret_cast<const gint16 *>(data + at + 8);
        all.insert(all.end(), s, s + MIN(length, size - at - 8) / 2);
        all.insert(all.end(), kRate, 0); /* a pause, so that utterances end between clips */
        break;
      }
      at += 8 + length + (length & 1);
    }
    g_free(data);
  }
  return all;
}

PassResult run_pass(const PassOptions &o) {
  PassResult r;
  std::vector<gint16> cycle =
      o.audio.empty() ? speech_cycle(kRate, o.speech_ms, o.cycle_ms) : o.audio;
  const gsize per_buffer = kRate / 10; /* 100 ms = one append with the default chunk */
  const guint64 total = static_cast<guint64>(o.audio_s * kRate) / per_buffer * per_buffer;
  GstHarness *h = element_harness(o.description, kRate, false);
  BusCounts counts;
  GstBus *bus = gst_element_get_bus(h->element);
  gst_bus_set_sync_handler(bus, count_and_drop, &counts, nullptr);

  std::map<std::string, double> threads0 = thread_cpu_by_name();
  IoCounters io0 = io_counters();
  double user0, sys0;
  cpu_split(&user0, &sys0);
  const guint64 switches0 = context_switches();
  double cpu0 = cpu_seconds(), wall0 = monotonic_seconds();
  const guint64 sample_every =
      o.sample_every_s > 0 ? static_cast<guint64>(o.sample_every_s * kRate) : 0;
  guint64 sample = 0;
  GstFlowReturn flow = GST_FLOW_OK;
  const gint64 start_us = g_get_monotonic_time();
  while (sample < total) {
    if (o.speed > 0) {
      gint64 due = start_us + static_cast<gint64>(sample / (kRate * o.speed) * G_USEC_PER_SEC);
      gint64 wait = due - g_get_monotonic_time();
      if (wait > 0)
        g_usleep(wait);
    }
    gsize in_cycle = sample % cycle.size();
    gsize n = std::min<gsize>(per_buffer, cycle.size() - in_cycle);
    GstBuffer *buffer = wrap_samples(cycle, in_cycle, n,
                                     gst_util_uint64_scale_int(sample, GST_SECOND, kRate), kRate);
    flow = gst_harness_push(h, buffer);
    if (flow != GST_FLOW_OK)
      break;
    sample += n;
    if (sample_every && sample % sample_every == 0) {
      r.samples.push_back({sample / double(kRate), monotonic_seconds() - wall0,
                           cpu_seconds() - cpu0, rss_kib() / 1024.0, heap_mib(),
                           o.qwen ? sink_stat(h->element, "reconnects") : 0});
    }
  }
  if (flow != GST_FLOW_OK) {
    r.failure = std::string("push returned ") + gst_flow_get_name(flow) + ": " + counts.first_error;
  } else {
    if (o.qwen) {
      /* Everything on the socket before the per-thread and TCP snapshot (EOS ends the thread). */
      const guint64 audio_ns = gst_util_uint64_scale_int(total, GST_SECOND, kRate);
      gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
      while (sink_stat(h->element, "audio-sent") < audio_ns && g_get_monotonic_time() < deadline)
        g_usleep(2000);
      r.threads = thread_cpu_by_name();
      for (auto &t : r.threads)
        t.second -= threads0.count(t.first) ? threads0[t.first] : 0;
      if (o.service_port > 0) {
        /* "Sent" means handed to libsoup, which may still hold the tail: wait until the
         * peer has acknowledged everything (no change for 300 ms). */
        r.tcp = tcp_counters(o.service_port);
        gint64 stable_since = g_get_monotonic_time(), give_up = stable_since + 10 * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < give_up && g_get_monotonic_time() - stable_since < 300000) {
          g_usleep(20000);
          TcpCounters now = tcp_counters(o.service_port);
          if (now.bytes_acked != r.tcp.bytes_acked || now.bytes_received != r.tcp.bytes_received)
            stable_since = g_get_monotonic_time();
          r.tcp = now;
        }
      }
    }
    if (!gst_harness_push_event(h, gst_event_new_eos()))
      r.failure = "EOS refused";
  }
  r.cpu_s = cpu_seconds() - cpu0;
  r.wall_s = monotonic_seconds() - wall0;
  double user1, sys1;
  cpu_split(&user1, &sys1);
  r.switches = context_switches() - switches0;
  r.user_s = user1 - user0;
  r.sys_s = sys1 - sys0;
  IoCounters io1 = io_counters();
  r.io.rchar = io1.rchar - io0.rchar;
  r.io.wchar = io1.wchar - io0.wchar;
  r.io.syscr = io1.syscr - io0.syscr;
  r.io.syscw = io1.syscw - io0.syscw;
  if (o.qwen) {
    r.bytes_sent = sink_stat(h->element, "bytes-sent");
    r.appends = sink_stat(h->element, "appends");
    r.reconnects = sink_stat(h->element, "reconnects");
    r.dropped_ns = sink_stat(h->element, "dropped-audio");
  }
  r.finals = counts.finals;
  r.partials = counts.partials;
  r.warnings = counts.warnings;
  if (counts.errors > 0 && r.failure.empty())
    r.failure = "error: " + counts.first_error;
  if (o.fail_on_drop && r.dropped_ns > 0 && r.failure.empty())
    r.failure = "audio was dropped";
  r.ok = r.failure.empty();
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  teardown_harness(h);
  return r;
}

std::string sink_description(const std::string &url, const std::string &extra = "") {
  return "qwenasrsink sync=false api-key=test-key url=" + url + " " + extra;
}

std::string threads_json(const std::map<std::string, double> &threads, double hours) {
  Json j;
  for (const auto &t : threads) {
    if (t.second >= 0.005)
      j.num(t.first, t.second / hours);
  }
  return j.text();
}

std::string top_threads(const std::map<std::string, double> &threads, double hours) {
  std::vector<std::pair<double, std::string>> v;
  for (const auto &t : threads)
    v.push_back({t.second / hours, t.first});
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (size_t i = 0; i < v.size() && i < 3; i++) {
    if (v[i].first < 0.01)
      break;
    char buf[128];
    g_snprintf(buf, sizeof buf, "%s%s %.2f s", out.empty() ? "" : ", ", v[i].second.c_str(),
               v[i].first);
    out += buf;
  }
  return out;
}

/* ---- the physical floor: base64 + WebSocket masking of the PCM ---- */

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A plain table encoder, 3 bytes -> 4 characters (what a simple hand-written one costs). */
gsize simple_base64(const guint8 *in, gsize n, char *out) {
  char *o = out;
  gsize i = 0;
  for (; i + 3 <= n; i += 3) {
    guint32 v = (guint32(in[i]) << 16) | (guint32(in[i + 1]) << 8) | in[i + 2];
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = kB64[(v >> 6) & 63];
    o[3] = kB64[v & 63];
    o += 4;
  }
  if (i < n) {
    guint32 v = guint32(in[i]) << 16;
    if (i + 1 < n)
      v |= guint32(in[i + 1]) << 8;
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    o[3] = '=';
    o += 4;
  }
  return o - out;
}

/* XOR with a 4-byte key, 8 bytes at a time (what masking needs, and compilers vectorise). */
void mask(char *data, gsize n, guint32 key) {
  guint64 k = (guint64(key) << 32) | key;
  gsize i = 0;
  for (; i + 8 <= n; i += 8) {
    guint64 v;
    memcpy(&v, data + i, 8);
    v ^= k;
    memcpy(data + i, &v, 8);
  }
  const auto *kb = reinterpret_cast<const unsigned char *>(&key);
  for (; i < n; i++)
    data[i] ^= kb[i & 3];
}

struct Floor {
  double glib_s, simple_s, mask_only_s;
};

/* CPU seconds to base64 (3200-byte chunks) and mask `bytes` of PCM. */
Floor measure_floor(const std::vector<gint16> &cycle, guint64 bytes) {
  const gsize chunk = 3200;
  const auto *pcm = reinterpret_cast<const guint8 *>(cycle.data());
  const gsize cycle_bytes = cycle.size() * 2 / chunk * chunk;
  std::vector<char> out(chunk / 3 * 4 + 16);
  volatile guint64 sink = 0;
  Floor f{};
  double t0 = cpu_seconds();
  for (guint64 done = 0, pos = 0; done < bytes; done += chunk, pos = (pos + chunk) % cycle_bytes) {
    gint state = 0, save = 0;
    gsize n = g_base64_encode_step(pcm + pos, chunk, FALSE, out.data(), &state, &save);
    n += g_base64_encode_close(FALSE, out.data() + n, &state, &save);
    mask(out.data(), n, 0x5a3c9e17u + done);
    sink = sink + out[n / 2];
  }
  double t1 = cpu_seconds();
  for (guint64 done = 0, pos = 0; done < bytes; done += chunk, pos = (pos + chunk) % cycle_bytes) {
    gsize n = simple_base64(pcm + pos, chunk, out.data());
    mask(out.data(), n, 0x5a3c9e17u + done);
    sink = sink + out[n / 2];
  }
  double t2 = cpu_seconds();
  for (guint64 done = 0; done < bytes; done += chunk) {
    mask(out.data(), chunk / 3 * 4, 0x5a3c9e17u + done);
    sink = sink + out[done % 64];
  }
  double t3 = cpu_seconds();
  f.glib_s = t1 - t0;
  f.simple_s = t2 - t1;
  f.mask_only_s = t3 - t2;
  return f;
}

/* ---- 1. CPU per audio hour ---- */

int bench_cpu(const Args &args) {
  const double audio_s = args.number("audio-s", 3600);
  const double hours = audio_s / 3600.0;
  const std::string exe = args.get("service");
  Json out;
  out.num("audio_seconds", audio_s).str("load_before", loadavg());

  /* --profile: only the element pass (for callgrind; no floor, no baseline). */
  const bool profile = args.has("profile");
  std::vector<gint16> cycle = speech_cycle(kRate, 1500, 3000);
  Floor floor{NAN, NAN, NAN};
  if (!profile) {
    floor = measure_floor(cycle, static_cast<guint64>(3600 * kPcmBytesPerSecond));
    result_line("floor_base64_mask_per_audio_hour: %.3f s (GLib base64 + mask; simple table "
                "base64 + mask %.3f s; mask alone %.3f s; 115.2 MB PCM)",
                floor.glib_s, floor.simple_s, floor.mask_only_s);
  }
  out.num("floor_glib_base64_mask_s_per_audio_hour", floor.glib_s)
      .num("floor_simple_base64_mask_s_per_audio_hour", floor.simple_s)
      .num("floor_mask_only_s_per_audio_hour", floor.mask_only_s);

  /* What feeding the harness costs by itself: the same buffers into a fakesink. */
  PassResult baseline;
  if (!profile) {
    PassOptions base;
    base.description = "fakesink sync=false";
    base.audio_s = audio_s;
    base.qwen = false;
    base.speed = args.number("speed", 0);
    baseline = run_pass(base);
  }

  /* --url: use a service started elsewhere (e.g. to strace this process alone). */
  ServiceProcess service;
  std::string url = args.get("url");
  int port = -1;
  if (url.empty()) {
    if (!service.start(exe))
      return 1;
    url = service.url();
    port = service.port();
  } else {
    port = atoi(url.c_str() + url.rfind(':') + 1);
  }
  PassOptions o;
  o.description = sink_description(url);
  o.audio_s = audio_s;
  o.service_port = port;
  /* --speed N: push at N times real time instead of as fast as the element takes it (each
   * append then wakes the network thread on its own, as with a live source). */
  o.speed = args.number("speed", 0);
  double load_during = load1();
  PassResult r = run_pass(o);
  load_during = (load_during + load1()) / 2;
  double service_cpu = service.stop();
  if (!r.ok) {
    result_line("cpu_per_audio_hour_pcm: FAILED (%s)", r.failure.c_str());
    out.str("failure", r.failure);
    write_json(args.get("json"), out.raw("machine", machine_info().text()));
    return 1;
  }
  const double gross = r.cpu_s / hours;
  const double net = (r.cpu_s - baseline.cpu_s) / hours;
  const double rtf = gross / 3600.0;
  const double wall_rtf = r.wall_s / audio_s;
  const std::string tag = o.speed > 0 ? "_paced" : "";
  result_line("cpu_per_audio_hour_pcm%s: %.2f s (RTF %.5f; net of the feeding harness %.2f s = "
              "%.1fx the GLib floor; wall %.1f s per audio hour, wall RTF %.4f%s; load %.1f)",
              tag.c_str(), gross, rtf, net, net / floor.glib_s, r.wall_s / hours, wall_rtf,
              o.speed > 0 ? (", paced at " + std::to_string(int(o.speed)) + "x real time").c_str()
                          : "",
              load_during);
  result_line("cpu_per_audio_hour_pcm%s_split: user %.2f s, system %.2f s; by thread: %s "
              "(feeding harness alone %.2f s/h; service process %.2f s/h)",
              tag.c_str(), r.user_s / hours, r.sys_s / hours, top_threads(r.threads, hours).c_str(),
              baseline.cpu_s / hours, service_cpu / hours);
  /* The same audio with audio-format=opus: encoding costs, fewer bytes to base64 and mask
   * save. The encoder alone is in the cpu_components benchmark. */
  double opus_gross = NAN;
  if (!profile && args.get("url").empty()) {
    ServiceProcess opus_service;
    if (opus_service.start(exe)) {
      PassOptions opus = o;
      opus.description = sink_description(opus_service.url(), "audio-format=opus");
      opus.service_port = opus_service.port();
      PassResult ro = run_pass(opus);
      opus_service.stop();
      if (ro.ok) {
        opus_gross = ro.cpu_s / hours;
        result_line("cpu_per_audio_hour_opus%s: %.2f s (PCM %.2f s: %+.2f s for Ogg-Opus at the "
                    "default 24 kbit/s; by thread: %s)",
                    tag.c_str(), opus_gross, gross, opus_gross - gross,
                    top_threads(ro.threads, hours).c_str());
      } else {
        result_line("cpu_per_audio_hour_opus%s: FAILED (%s)", tag.c_str(), ro.failure.c_str());
      }
    }
  }
  out.num("speed", o.speed)
      .num("cpu_s_per_audio_hour", gross)
      .num("rtf_cpu", rtf)
      .num("cpu_s_per_audio_hour_net_of_harness", net)
      .num("harness_only_cpu_s_per_audio_hour", baseline.cpu_s / hours)
      .num("ratio_net_to_glib_floor", net / floor.glib_s)
      .num("wall_s_per_audio_hour", r.wall_s / hours)
      .num("rtf_wall", wall_rtf)
      .num("service_process_cpu_s_per_audio_hour", service_cpu / hours)
      .num("user_s_per_audio_hour", r.user_s / hours)
      .num("system_s_per_audio_hour", r.sys_s / hours)
      .raw("thread_cpu_s_per_audio_hour", threads_json(r.threads, hours))
      .integer("finals", r.finals)
      .integer("partials", r.partials)
      .integer("appends", r.appends)
      .num("context_switches_per_append", double(r.switches) / r.appends)
      .num("opus_cpu_s_per_audio_hour", opus_gross)
      .num("load1_during", load_during)
      .str("load_after", loadavg())
      .raw("machine", machine_info().text());
  return write_json(args.get("json"), out) ? 0 : 1;
}

/* ---- 4. bytes on the wire per audio minute ---- */

/* Sends `audio` (recorded speech, looped) through one sink and returns the TCP payload bytes
 * up and down per audio minute; false (with `why`) if the pass failed. */
bool wire_pass(const Args &args, const std::string &properties, const std::vector<gint16> &audio,
               double audio_s, PassResult *r, std::string *why) {
  ServiceProcess service;
  if (!service.start(args.get("service"))) {
    *why = "the service did not start";
    return false;
  }
  PassOptions o;
  o.description = sink_description(service.url(), properties);
  o.audio_s = audio_s;
  o.service_port = service.port();
  o.audio = audio;
  *r = run_pass(o);
  service.stop();
  if (!r->ok || r->tcp.sockets != 1) {
    *why = r->ok ? "expected one socket, found " + std::to_string(r->tcp.sockets) : r->failure;
    return false;
  }
  return true;
}

int bench_wire(const Args &args) {
  const double audio_s = args.number("audio-s", 600);
  const double minutes = audio_s / 60.0;
  /* Real speech where Debian has it: Opus spends its bits on what the signal holds. */
  std::vector<gint16> speech = recorded_speech();
  const std::string source = speech.empty() ? "synthetic 440 Hz + noise, 1.5 s on / 1.5 s off"
                                            : "LibriVox speech from pocketsphinx-testdata, looped";
  Json out;
  out.num("audio_seconds", audio_s).str("audio", source);
  const double pcm = kPcmBytesPerSecond * 60;
  double load = load1();
  struct Variant {
    const char *name, *properties;
    double up; /* bytes up per audio minute, once measured */
  };
  Variant variants[] = {{"pcm", "", 0},
                        {"opus", "audio-format=opus", 0},
                        {"opus_16kbit", "audio-format=opus bitrate=16000", 0}};
  for (Variant &v : variants) {
    PassResult r;
    std::string why;
    if (!wire_pass(args, v.properties, speech, audio_s, &r, &why)) {
      result_line("wire_bytes_per_audio_minute_%s: FAILED (%s)", v.name, why.c_str());
      write_json(args.get("json"), out.str("failure", why));
      return 1;
    }
    const double up = r.tcp.bytes_acked / minutes;
    const double down = r.tcp.bytes_received / minutes;
    /* Ethernet estimate: MSS 1448 (1500 MTU, TCP timestamps), 52 bytes of IPv4 + TCP headers
     * and 38 of Ethernet framing (header, FCS, preamble, gap) per segment. */
    const double eth_up = up + std::ceil(up / 1448.0) * (52 + 38);
    result_line("wire_bytes_per_audio_minute_%s: %.0f bytes up (%.3fx the PCM, %.1f kbit/s; "
                "audio payload %.0f bytes), %.0f bytes down (TCP payload, ws://); with IPv4/TCP/"
                "Ethernet headers ~%.0f bytes up",
                v.name, up, up / pcm, up * 8 / 60 / 1000, r.bytes_sent / minutes, down, eth_up);
    std::string prefix = std::string(v.name) + "_";
    out.num(prefix + "up_bytes_per_audio_minute", up)
        .num(prefix + "down_bytes_per_audio_minute", down)
        .num(prefix + "audio_payload_bytes_per_audio_minute", r.bytes_sent / minutes)
        .num(prefix + "up_to_pcm_ratio", up / pcm)
        .num(prefix + "up_kbit_per_s", up * 8 / 60 / 1000)
        .num(prefix + "up_bytes_per_audio_minute_ethernet_estimate", eth_up)
        .integer(prefix + "appends", r.appends)
        .integer(prefix + "tcp_segments_out", r.tcp.segs_out);
    v.up = up;
  }
  const double pcm_up = variants[0].up, opus_up = variants[1].up;
  out.num("pcm_bytes_per_audio_minute", pcm)
      .num("opus_saving_factor", pcm_up / opus_up)
      .num("load1", load)
      .raw("machine", machine_info().text());
  /* The point of audio-format=opus: at the default bitrate, at least five times fewer bytes up
   * than PCM (measured: about 8x on speech). */
  bool ok = opus_up * 5 < pcm_up;
  result_line("wire_opus_saving: %.1fx fewer bytes up than PCM (asserted: > 5x): %s",
              pcm_up / opus_up, ok ? "ok" : "FAILED");
  return write_json(args.get("json"), out) && ok ? 0 : 1;
}

/* ---- 5. memory over a long run with reconnects ---- */

/* Least-squares slope of y over x. */
double slope(const std::vector<double> &x, const std::vector<double> &y) {
  double n = x.size(), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); i++) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  double d = n * sxx - sx * sx;
  return d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

int bench_memory(const Args &args) {
  const double audio_s = args.number("audio-s", 3600);
  const double every_s = args.number("sample-every-s", 60);
  const double close_after_s = args.number("close-after-s", 60);
  /* Paced: at full speed megabytes of audio sit in the loopback socket buffers when the
   * service drops the connection, which is not what a reconnect looks like in real use (and
   * loses audio, see docs/performance.md). 20x real time keeps an hour to three minutes. */
  const double speed = args.number("speed", 20);
  ServiceProcess service;
  if (!service.start(args.get("service"),
                     {"--close-after-audio-ms", std::to_string(gint64(close_after_s * 1000))}))
    return 1;
  PassOptions o;
  o.description = sink_description(service.url(), "max-reconnects=3");
  o.audio_s = audio_s;
  o.sample_every_s = every_s;
  o.fail_on_drop = false;
  o.speed = speed;
  double load = load1();
  double rss_start = rss_kib() / 1024.0;
  PassResult r = run_pass(o);
  service.stop();
  Json out;
  const guint64 expected_finals = static_cast<guint64>(audio_s) / 3;
  out.num("audio_seconds", audio_s).num("close_after_audio_s", close_after_s).num("speed", speed);
  if (!r.ok || r.samples.size() < 3) {
    std::string why = r.ok ? "too few samples" : r.failure;
    result_line("memory_over_time_reconnects: FAILED (%s)", why.c_str());
    write_json(args.get("json"), out.str("failure", why));
    return 1;
  }
  /* Warm-up: the first sixth of the run (the first 10 minutes of an hour). */
  size_t warm = std::max<size_t>(1, r.samples.size() / 6);
  std::vector<double> x, rss, heap;
  double rss_peak = 0;
  std::string series = "[";
  for (size_t i = 0; i < r.samples.size(); i++) {
    const Sample &s = r.samples[i];
    char row[256];
    g_snprintf(row, sizeof row,
               "%s{\"audio_s\":%.0f,\"wall_s\":%.2f,\"cpu_s\":%.3f,\"rss_mib\":%.2f,"
               "\"heap_mib\":%.3f,\"reconnects\":%" G_GUINT64_FORMAT "}",
               i ? "," : "", s.audio_s, s.wall_s, s.cpu_s, s.rss_mib, s.heap_mib, s.reconnects);
    series += row;
    if (i >= warm - 1) {
      x.push_back(s.audio_s / 3600.0);
      rss.push_back(s.rss_mib);
      heap.push_back(s.heap_mib);
      rss_peak = std::max(rss_peak, s.rss_mib);
    }
  }
  series += "]";
  const Sample &w = r.samples[warm - 1], &last = r.samples.back();
  double rss_slope = slope(x, rss), heap_slope = slope(x, heap);
  result_line("memory_over_time_reconnects: RSS %.1f MiB after %.0f s of audio, %.1f MiB at "
              "%.0f s, peak %.1f MiB, trend %+.2f MiB per audio hour; heap %.2f -> %.2f MiB "
              "(trend %+.3f MiB/h); %" G_GUINT64_FORMAT " reconnects, %" G_GUINT64_FORMAT
              " of %" G_GUINT64_FORMAT " finals, %.0fx real time (load %.1f)",
              w.rss_mib, w.audio_s, last.rss_mib, last.audio_s, rss_peak, rss_slope, w.heap_mib,
              last.heap_mib, heap_slope, r.reconnects, r.finals, expected_finals, speed, load);
  out.num("rss_mib_before", rss_start)
      .num("rss_mib_after_warmup", w.rss_mib)
      .num("rss_mib_end", last.rss_mib)
      .num("rss_mib_peak_after_warmup", rss_peak)
      .num("rss_trend_mib_per_audio_hour", rss_slope)
      .num("heap_mib_after_warmup", w.heap_mib)
      .num("heap_mib_end", last.heap_mib)
      .num("heap_trend_mib_per_audio_hour", heap_slope)
      .integer("reconnects", r.reconnects)
      .num("dropped_audio_s", r.dropped_ns / 1e9)
      .integer("warnings", r.warnings)
      .integer("finals", r.finals)
      .integer("finals_expected", expected_finals)
      .num("cpu_s_per_audio_hour_with_reconnects", r.cpu_s / (audio_s / 3600))
      .num("wall_s", r.wall_s)
      .raw("samples", series)
      .num("load1", load)
      .str("load_after", loadavg())
      .raw("machine", machine_info().text());
  return write_json(args.get("json"), out) ? 0 : 1;
}

/* ---- 3. added latency ---- */

struct LatencyLog {
  std::mutex mutex;
  std::vector<gint64> append_received;                  /* service: append parsed */
  std::map<std::string, gint64> completed_sent;         /* item -> service about to send */
  std::map<std::string, std::vector<gint64>> text_sent; /* item -> partials, in order */
  std::map<std::string, gint64> completed_posted;       /* item -> bus sync handler */
  std::map<std::string, gint64> completed_delivered;    /* item -> app main loop */
  std::map<std::string, std::vector<gint64>> text_posted;
  std::atomic<bool> configured{false};
  std::atomic<guint64> errors{0};
};

std::string field(const std::string &json, const char *name) {
  std::string key = std::string("\"") + name + "\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos)
    return {};
  at += key.size();
  size_t end = json.find('"', at);
  return end == std::string::npos ? std::string() : json.substr(at, end - at);
}

GstBusSyncReply latency_sync(GstBus *, GstMessage *message, gpointer data) {
  gint64 now = g_get_monotonic_time();
  auto *log = static_cast<LatencyLog *>(data);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR)
    log->errors++;
  const GstStructure *s = GST_MESSAGE_TYPE(message) == GST_MESSAGE_ELEMENT
                              ? gst_message_get_structure(message)
                              : nullptr;
  if (s && gst_structure_has_name(s, "qwenasr/session") &&
      g_strcmp0(gst_structure_get_string(s, "state"), "configured") == 0)
    log->configured = true;
  if (s && gst_structure_has_name(s, "qwenasr/transcript")) {
    gboolean final = FALSE;
    gst_structure_get_boolean(s, "final", &final);
    std::string item = gst_structure_get_string(s, "item-id");
    std::lock_guard<std::mutex> lock(log->mutex);
    if (final)
      log->completed_posted[item] = now;
    else
      log->text_posted[item].push_back(now);
    return GST_BUS_PASS; /* on to the application's main loop */
  }
  gst_message_unref(message);
  return GST_BUS_DROP;
}

gboolean latency_watch(GstBus *, GstMessage *message, gpointer data) {
  gint64 now = g_get_monotonic_time();
  auto *log = static_cast<LatencyLog *>(data);
  const GstStructure *s = gst_message_get_structure(message);
  gboolean final = FALSE;
  if (s && gst_structure_get_boolean(s, "final", &final) && final) {
    std::lock_guard<std::mutex> lock(log->mutex);
    log->completed_delivered[gst_structure_get_string(s, "item-id")] = now;
  }
  return G_SOURCE_CONTINUE;
}

struct Dist {
  size_t n = 0;
  double p50 = NAN, p99 = NAN, max = NAN, mean = NAN;
};

Dist dist_ms(const std::vector<double> &us) {
  Dist d;
  d.n = us.size();
  if (us.empty())
    return d;
  d.p50 = percentile(us, 50) / 1000;
  d.p99 = percentile(us, 99) / 1000;
  d.max = *std::max_element(us.begin(), us.end()) / 1000;
  double sum = 0;
  for (double v : us)
    sum += v;
  d.mean = sum / us.size() / 1000;
  return d;
}

std::string dist_json(const Dist &d) {
  return Json()
      .integer("n", d.n)
      .num("p50_ms", d.p50)
      .num("p99_ms", d.p99)
      .num("max_ms", d.max)
      .num("mean_ms", d.mean)
      .text();
}

/* CPU time of parsing one append like the service does (json-glib), in µs. */
double service_parse_us() {
  std::vector<guint8> pcm(3200, 7);
  gchar *b64 = g_base64_encode(pcm.data(), pcm.size());
  std::string json = std::string("{\"event_id\":\"event_0123456789abcdef0123000000000001\","
                                 "\"type\":\"input_audio_buffer.append\",\"audio\":\"") +
                     b64 + "\"}";
  g_free(b64);
  const int n = 2000;
  double t0 = cpu_seconds();
  for (int i = 0; i < n; i++) {
    JsonParser *parser = json_parser_new();
    json_parser_load_from_data(parser, json.data(), json.size(), nullptr);
    g_object_unref(parser);
  }
  return (cpu_seconds() - t0) / n * 1e6;
}

int bench_latency(const Args &args) {
  const double audio_s = args.number("audio-s", 60);
  /* Other live streams in the same process (their own service process), so the figures hold
   * for one stream among many: 100 ms buffers, like the measured one. */
  const int background = static_cast<int>(args.number("background", 0));
  ServiceProcess background_service;
  std::unique_ptr<LiveStreams> others;
  if (background > 0) {
    if (!background_service.start(args.get("service"))) {
      g_printerr("latency: no service for the background streams (--service EXE)\n");
      return 1;
    }
    setpriority(PRIO_PROCESS, background_service.pid(), -10); /* as concurrent_streams */
    others = std::make_unique<LiveStreams>(
        background,
        "qwenasrsink name=s api-key=test-key connect-timeout=60000 url=" + background_service.url(),
        kRate / 10);
    if (!others->wait_configured(120)) {
      result_line("latency: FAILED (background streams: %s)", others->failure.c_str());
      return 1;
    }
  }
  const guint cycle_ms = 1000, speech_ms = 500; /* one utterance per second */
  LatencyLog log;
  qwenasr::local::ServiceOptions options;
  options.event_log = [&log](const std::string &line) {
    gint64 now = g_get_monotonic_time();
    size_t arrow = line.find(" -> {");
    if (line.find(" <- input_audio_buffer.append") != std::string::npos) {
      std::lock_guard<std::mutex> lock(log.mutex);
      log.append_received.push_back(now);
    } else if (arrow != std::string::npos) {
      std::string type = field(line, "type");
      if (type == "conversation.item.input_audio_transcription.completed") {
        std::lock_guard<std::mutex> lock(log.mutex);
        log.completed_sent[field(line, "item_id")] = now;
      } else if (type == "conversation.item.input_audio_transcription.text") {
        std::lock_guard<std::mutex> lock(log.mutex);
        log.text_sent[field(line, "item_id")].push_back(now);
      }
    }
  };
  qwenasr::local::LocalService service(options);
  GError *error = nullptr;
  if (!service.start(&error)) {
    g_printerr("service: %s\n", error->message);
    return 1;
  }
  sendprobe::enable(service.port());

  /* The application: a main loop on its own thread with a bus watch. */
  GMainContext *app_context = g_main_context_new();
  GMainLoop *app_loop = g_main_loop_new(app_context, FALSE);
  GstHarness *h =
      element_harness(sink_description(service.url(), "vad-silence-ms=200"), kRate, true);
  GstBus *bus = gst_element_get_bus(h->element);
  gst_bus_set_sync_handler(bus, latency_sync, &log, nullptr);
  GSource *watch = gst_bus_create_watch(bus);
  g_source_set_callback(watch, G_SOURCE_FUNC(latency_watch), &log, nullptr);
  g_source_attach(watch, app_context);
  std::thread app([app_loop] { g_main_loop_run(app_loop); });

  std::vector<gint16> cycle = speech_cycle(kRate, speech_ms, cycle_ms);
  const gsize per_buffer = kRate / 10;
  const guint64 total = static_cast<guint64>(audio_s * kRate) / per_buffer * per_buffer;
  std::vector<gint64> pushed;
  /* The caps opened the connection; start once the session is configured, so every
   * append leaves at once. */
  gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (!log.configured && g_get_monotonic_time() < deadline)
    g_usleep(1000);
  bool ok = log.configured;
  double load = load1();
  const gint64 start = g_get_monotonic_time();
  GstFlowReturn flow = GST_FLOW_OK;
  for (guint64 sample = 0; ok && sample < total; sample += per_buffer) {
    gint64 due = start + static_cast<gint64>(sample) * G_USEC_PER_SEC / kRate;
    gint64 wait = due - g_get_monotonic_time();
    if (wait > 0)
      g_usleep(wait);
    GstBuffer *buffer = wrap_samples(cycle, sample % cycle.size(), per_buffer,
                                     gst_util_uint64_scale_int(sample, GST_SECOND, kRate), kRate);
    pushed.push_back(g_get_monotonic_time());
    flow = gst_harness_push(h, buffer);
    if (flow != GST_FLOW_OK)
      ok = false;
  }
  if (ok)
    ok = gst_harness_push_event(h, gst_event_new_eos());
  g_usleep(200000); /* the last deliveries */
  sendprobe::disable();
  g_main_loop_quit(app_loop);
  app.join();
  g_source_destroy(watch);
  g_source_unref(watch);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  guint64 reconnects = sink_stat(h->element, "reconnects");
  teardown_harness(h);
  const guint64 background_errors = others ? others->counts.errors.load() : 0;
  others.reset();
  service.stop();
  g_main_loop_unref(app_loop);
  g_main_context_unref(app_context);
  double parse_us = service_parse_us();

  Json out;
  out.num("audio_seconds", audio_s).integer("background_streams", background);
  std::vector<gint64> sent = sendprobe::stamps();
  std::lock_guard<std::mutex> lock(log.mutex);
  if (!ok || log.errors > 0 || reconnects > 0 || sent.size() != pushed.size() ||
      log.append_received.size() != pushed.size() || background_errors > 0) {
    std::string why = std::to_string(background_errors) + " background errors, flow " +
                      std::string(gst_flow_get_name(flow)) + ", " + std::to_string(pushed.size()) +
                      " buffers, " + std::to_string(sent.size()) + " appends seen leaving, " +
                      std::to_string(log.append_received.size()) + " received, " +
                      std::to_string(reconnects) + " reconnects";
    result_line("latency: FAILED (%s)", why.c_str());
    write_json(args.get("json"), out.str("failure", why));
    return 1;
  }
  std::vector<double> in_out, out_recv, in_recv, done_posted, done_delivered, text_posted;
  for (size_t i = 0; i < pushed.size(); i++) {
    in_out.push_back(sent[i] - pushed[i]);
    out_recv.push_back(log.append_received[i] - sent[i]);
    in_recv.push_back(log.append_received[i] - pushed[i]);
  }
  for (const auto &c : log.completed_sent) {
    auto p = log.completed_posted.find(c.first);
    if (p != log.completed_posted.end())
      done_posted.push_back(p->second - c.second);
    auto d = log.completed_delivered.find(c.first);
    if (d != log.completed_delivered.end())
      done_delivered.push_back(d->second - c.second);
  }
  for (const auto &t : log.text_sent) {
    auto p = log.text_posted.find(t.first);
    if (p == log.text_posted.end())
      continue;
    for (size_t i = 0; i < t.second.size() && i < p->second.size(); i++)
      text_posted.push_back(p->second[i] - t.second[i]);
  }
  Dist a = dist_ms(in_out), b = dist_ms(out_recv), c = dist_ms(in_recv);
  Dist d = dist_ms(done_posted), e = dist_ms(done_delivered), f = dist_ms(text_posted);
  result_line("latency_buffer_to_append_sent: p50 %.3f ms, p99 %.3f ms, max %.3f ms (n=%zu; "
              "buffer pushed into the sink -> append frame's send() returned; %d other live "
              "streams; load %.1f)",
              a.p50, a.p99, a.max, a.n, background, load);
  result_line("latency_buffer_to_service_parsed: p50 %.3f ms, p99 %.3f ms, max %.3f ms "
              "(+ loopback, libsoup read and the service's JSON parse, ~%.0f us of it parsing; "
              "send() returned -> parsed alone: p50 %.3f ms, can be < 0 as loopback delivers "
              "inside send())",
              c.p50, c.p99, c.max, parse_us, b.p50);
  result_line("latency_completed_to_bus_posted: p50 %.3f ms, p99 %.3f ms, max %.3f ms (n=%zu; "
              "service about to send -> bus sync handler)",
              d.p50, d.p99, d.max, d.n);
  result_line("latency_completed_to_app_delivered: p50 %.3f ms, p99 %.3f ms, max %.3f ms "
              "(n=%zu; -> bus watch callback in the application's main loop thread)",
              e.p50, e.p99, e.max, e.n);
  result_line("latency_partial_to_bus_posted: p50 %.3f ms, p99 %.3f ms, max %.3f ms (n=%zu)", f.p50,
              f.p99, f.max, f.n);
  out.raw("buffer_in_to_append_sent", dist_json(a))
      .raw("append_sent_to_service_parsed", dist_json(b))
      .raw("buffer_in_to_service_parsed", dist_json(c))
      .raw("completed_sent_to_bus_posted", dist_json(d))
      .raw("completed_sent_to_app_delivered", dist_json(e))
      .raw("partial_sent_to_bus_posted", dist_json(f))
      .num("service_append_parse_us", parse_us)
      .integer("partial_sends", sendprobe::partial_writes())
      .num("load1", load)
      .str("load_after", loadavg())
      .raw("machine", machine_info().text());
  return write_json(args.get("json"), out) ? 0 : 1;
}

/* ---- 2. concurrent live streams ---- */

struct StreamsRun {
  bool ok = false;
  std::string failure;
  double setup_s = 0, cpu_percent = 0, rss_mib = 0, rss_per_stream_kib = 0;
  double heap_per_stream_kib = 0;
  double service_cpu_percent = 0, appends_ratio = 0, load = 0;
  guint64 dropped_ns = 0, errors = 0, warnings = 0, finals = 0, threads = 0;
  guint64 setup_dropped_ns = 0, setup_warnings = 0; /* before the measuring window */
};

StreamsRun run_streams(int n, const std::string &sink, double seconds, ServiceProcess *service,
                       guint buffer_samples) {
  StreamsRun r;
  const long rss0 = rss_kib();
  const double heap0 = heap_mib();
  const double t0 = monotonic_seconds();
  LiveStreams live(n, sink, buffer_samples);
  BusCounts &counts = live.counts;
  const std::vector<GstElement *> &pipelines = live.pipelines;
  r.failure = live.failure;
  const bool qwen = sink.rfind("qwenasrsink", 0) == 0;
  if (r.failure.empty() && qwen && !live.wait_configured(120))
    r.failure = live.failure;
  r.setup_s = monotonic_seconds() - t0;
  if (r.failure.empty()) {
    g_usleep(3 * G_USEC_PER_SEC); /* past the start-up burst (queued audio) */
    guint64 appends0 = 0;
    std::vector<GstElement *> sinks;
    for (GstElement *p : pipelines) {
      GstElement *s = gst_bin_get_by_name(GST_BIN(p), "s");
      sinks.push_back(s);
      if (qwen) {
        appends0 += sink_stat(s, "appends");
        r.setup_dropped_ns += sink_stat(s, "dropped-audio");
      }
    }
    r.setup_warnings = counts.warnings;
    guint64 finals0 = counts.finals;
    r.load = load1();
    double c0 = cpu_seconds(), w0 = monotonic_seconds();
    double s0 = service ? service->cpu_seconds_now() : 0;
    g_usleep(static_cast<gulong>(seconds * G_USEC_PER_SEC));
    double c1 = cpu_seconds(), w1 = monotonic_seconds();
    double s1 = service ? service->cpu_seconds_now() : 0;
    r.load = (r.load + load1()) / 2;
    r.cpu_percent = (c1 - c0) / (w1 - w0) * 100;
    r.service_cpu_percent = (s1 - s0) / (w1 - w0) * 100;
    long rss1 = rss_kib();
    r.rss_mib = rss1 / 1024.0;
    r.rss_per_stream_kib = double(rss1 - rss0) / n;
    r.heap_per_stream_kib = (heap_mib() - heap0) * 1024 / n;
    r.threads = thread_count();
    r.finals = counts.finals - finals0;
    guint64 appends1 = 0;
    for (GstElement *s : sinks) {
      if (qwen) {
        appends1 += sink_stat(s, "appends");
        r.dropped_ns += sink_stat(s, "dropped-audio");
      }
      gst_object_unref(s);
    }
    r.dropped_ns -= std::min(r.dropped_ns, r.setup_dropped_ns);
    /* one append per 100 ms of audio per stream when keeping up */
    if (qwen)
      r.appends_ratio = double(appends1 - appends0) / (n * (w1 - w0) * 10);
    r.ok = counts.errors == 0;
    if (!r.ok)
      r.failure = counts.first_error;
  }
  r.errors = counts.errors;
  r.warnings = counts.warnings;
  return r;
}

int bench_streams(const Args &args) {
  std::vector<int> ns;
  {
    gchar **parts = g_strsplit(args.get("streams", "1,10,100,300,400,500,1000").c_str(), ",", -1);
    for (gchar **p = parts; *p; p++)
      ns.push_back(atoi(*p));
    g_strfreev(parts);
  }
  const double seconds = args.number("seconds", 30);
  const double base_seconds = args.number("baseline-seconds", 10);
  const guint buffer_samples = static_cast<guint>(args.number("buffer-samples", 320));
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  Json out;
  out.num("seconds", seconds)
      .integer("buffer_samples", buffer_samples)
      .integer("rlimit_nofile", static_cast<gint64>(nofile.rlim_cur));
  std::string rows = "[";
  int largest_under_one_core = 0, largest_ok = 0;
  /* RSS per stream as the slope from the first run: a run's own growth undercounts once
   * earlier runs left freed memory in malloc's arenas. */
  int first_n = 0;
  double first_rss = 0;
  double per_stream_percent = NAN;
  for (int n : ns) {
    if (static_cast<rlim_t>(n) * 2 + 64 > nofile.rlim_cur) {
      result_line("concurrent_streams_%d: skipped (RLIMIT_NOFILE %lu too low)", n,
                  static_cast<unsigned long>(nofile.rlim_cur));
      break;
    }
    ServiceProcess service;
    if (!service.start(args.get("service")))
      return 1;
    /* The service stands for a remote one: with hundreds of runnable client threads on two
     * cores its single thread would otherwise get a tiny share of the CPU and stall the
     * handshakes. Needs CAP_SYS_NICE; without it the service runs at nice 0. */
    errno = 0;
    const bool reniced = setpriority(PRIO_PROCESS, service.pid(), -10) == 0;
    StreamsRun q = run_streams(
        n, "qwenasrsink name=s api-key=test-key connect-timeout=60000 url=" + service.url(),
        seconds, &service, buffer_samples);
    service.stop();
    StreamsRun b;
    if (q.ok)
      b = run_streams(n, "fakesink name=s sync=true", base_seconds, nullptr, buffer_samples);
    std::string row = Json()
                          .integer("n", n)
                          .boolean("ok", q.ok)
                          .str("failure", q.failure)
                          .num("setup_s", q.setup_s)
                          .num("cpu_percent_of_one_core", q.cpu_percent)
                          .num("cpu_percent_net_of_source", q.cpu_percent - b.cpu_percent)
                          .num("baseline_fakesink_cpu_percent", b.cpu_percent)
                          .num("rss_mib", q.rss_mib)
                          .num("rss_kib_per_stream", q.rss_per_stream_kib)
                          .num("baseline_rss_kib_per_stream", b.rss_per_stream_kib)
                          .num("heap_kib_per_stream", q.heap_per_stream_kib)
                          .integer("threads", q.threads)
                          .num("service_cpu_percent", q.service_cpu_percent)
                          .num("appends_ratio", q.appends_ratio)
                          .integer("dropped_audio_ns", q.dropped_ns)
                          .integer("warnings", q.warnings)
                          .integer("finals_in_window", q.finals)
                          .num("setup_dropped_audio_s", q.setup_dropped_ns / 1e9)
                          .integer("setup_warnings", q.setup_warnings)
                          .boolean("service_reniced", reniced)
                          .num("load1", q.load)
                          .text();
    rows += (rows.size() > 1 ? "," : "") + row;
    if (!q.ok) {
      result_line("concurrent_streams_%d: FAILED after %.1f s of setup (%s; load %.1f)", n,
                  q.setup_s, q.failure.c_str(), load1());
      break;
    }
    double rss_slope_kib = first_n && n > first_n ? (q.rss_mib - first_rss) * 1024 / (n - first_n)
                                                  : q.rss_per_stream_kib;
    if (!first_n) {
      first_n = n;
      first_rss = q.rss_mib;
    }
    rows.insert(rows.size() - 1, ",\"rss_kib_per_stream_slope\":" + Json::number(rss_slope_kib));
    result_line("concurrent_streams_%d: %.1f%% of one core (%.1f%% net of the live sources), "
                "%.0f KiB RSS per stream, %.0f%% of appends on time, %.1f s audio dropped in "
                "the window, service %.0f%%; setup %.1f s, %.0f s audio dropped during setup "
                "(load %.1f)",
                n, q.cpu_percent, q.cpu_percent - b.cpu_percent, rss_slope_kib,
                q.appends_ratio * 100, q.dropped_ns / 1e9, q.service_cpu_percent, q.setup_s,
                q.setup_dropped_ns / 1e9, q.load);
    largest_ok = n;
    if (q.cpu_percent < 100 && q.appends_ratio > 0.95)
      largest_under_one_core = n;
    per_stream_percent = q.cpu_percent / n;
    /* Stop when the process or the machine is saturated: the next step could not keep up. */
    if (q.cpu_percent > 90.0 * online_cpus() || q.appends_ratio < 0.9) {
      result_line("concurrent_streams: stopping at N=%d (saturated: %.0f%% CPU, %.0f%% of "
                  "appends on time)",
                  n, q.cpu_percent, q.appends_ratio * 100);
      break;
    }
  }
  rows += "]";
  double projected = per_stream_percent > 0 ? 100.0 / per_stream_percent : NAN;
  result_line("concurrent_streams_max_under_one_core: %d (largest measured N below 100%% of one "
              "core; ~%.0f by the last per-stream cost; largest N run: %d)",
              largest_under_one_core, projected, largest_ok);
  out.raw("runs", rows)
      .integer("largest_n_under_one_core", largest_under_one_core)
      .num("projected_n_at_one_core", projected)
      .integer("largest_n_run", largest_ok)
      .raw("machine", machine_info().text());
  return write_json(args.get("json"), out) ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc < 2) {
    g_printerr("usage: %s cpu|streams|latency|wire|memory|live [--json FILE] [--service EXE] ...\n",
               argv[0]);
    return 2;
  }
  std::string what = argv[1];
  Args args(argc, argv, 2);
  /* BENCH_SCALE (0 < s < 1, e.g. 0.1) shortens every run for a quick look (the figures are
   * per audio hour / minute anyway); BENCH_STREAMS overrides the stream counts. */
  std::vector<std::string> extra;
  const char *scale = g_getenv("BENCH_SCALE");
  double s = scale ? g_ascii_strtod(scale, nullptr) : 1;
  if (s > 0 && s < 1) {
    double base = what == "cpu" || what == "memory" ? 3600 : what == "wire" ? 600 : 60;
    if (what == "streams" && !args.has("seconds"))
      extra.push_back("--seconds=" + std::to_string(int(std::max(5.0, 30 * s))));
    else if (!args.has("audio-s"))
      extra.push_back("--audio-s=" + std::to_string(int(std::max(30.0, base * s))));
  }
  if (g_getenv("BENCH_STREAMS") && !args.has("streams"))
    extra.push_back(std::string("--streams=") + g_getenv("BENCH_STREAMS"));
  if (!extra.empty()) {
    std::vector<char *> v(argv, argv + argc);
    for (std::string &e : extra)
      v.push_back(e.data());
    args = Args(static_cast<int>(v.size()), v.data(), 2);
  }
  if (!args.has("json")) {
    g_printerr("--json FILE is required\n");
    return 2;
  }
  int rc = 2;
  if (what == "cpu")
    rc = bench_cpu(args);
  else if (what == "streams")
    rc = bench_streams(args);
  else if (what == "latency")
    rc = bench_latency(args);
  else if (what == "wire")
    rc = bench_wire(args);
  else if (what == "memory")
    rc = bench_memory(args);
  else if (what == "live")
    rc = bench_live(args, recorded_speech());
  else
    g_printerr("unknown benchmark %s\n", what.c_str());
  return rc;
}
