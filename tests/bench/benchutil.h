/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the benchmarks (tests/bench/): process and thread CPU, memory, socket
 * byte counters, the local service as a separate process, synthetic speech-like audio, a
 * qwenasrsink wrapped in a GstHarness (the tests' own harness helpers, tests/elements/testutil),
 * and a small JSON writer. The benchmarks are plain programs that print result lines and write
 * a JSON file; nothing they measure is judged by libcheck. */
#pragma once

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <map>
#include <string>
#include <vector>

#include "testutil.h"

namespace bench {

/* --name=value / --name value / --flag arguments, after the subcommand. */
class Args {
public:
  Args(int argc, char **argv, int first);
  std::string get(const std::string &name, const std::string &fallback = "") const;
  double number(const std::string &name, double fallback) const;
  bool has(const std::string &name) const { return values_.count(name) > 0; }

private:
  std::map<std::string, std::string> values_;
};

/* User + system CPU seconds of this process (getrusage RUSAGE_SELF; all threads). */
double cpu_seconds();
/* The same, split: user and system seconds. */
void cpu_split(double *user, double *system);
/* Voluntary + involuntary context switches of this process so far. */
guint64 context_switches();
/* CPU seconds per thread name (comm) of this process's live threads, summed per name. */
std::map<std::string, double> thread_cpu_by_name();
double monotonic_seconds();
/* Threads of this process now (/proc/self/task). */
guint64 thread_count();
/* VmRSS of this process, KiB. */
long rss_kib();
/* malloc'ed bytes in use (mallinfo2: arena + mmapped). */
double heap_mib();
std::string loadavg(); /* "/proc/loadavg" first three fields */
double load1();
int online_cpus();
std::string cpu_model();

/* /proc/self/io: bytes this process passed to write()/send() and read()/recv(), and the
 * number of those calls. */
struct IoCounters {
  guint64 rchar = 0, wchar = 0, syscr = 0, syscw = 0;
};
IoCounters io_counters();

/* TCP_INFO summed over this process's TCP sockets whose peer port is `peer_port`: payload
 * bytes acked by / received from the peer and the segments each way. */
struct TcpCounters {
  guint64 bytes_acked = 0, bytes_received = 0, segs_out = 0, segs_in = 0;
  int sockets = 0;
};
TcpCounters tcp_counters(int peer_port);

/* qwenasr-local-service in a child process (so this process's rusage is the client only). */
class ServiceProcess {
public:
  ~ServiceProcess();
  /* Starts `exe --port 0 ARGS...` and waits for the URL it prints. */
  bool start(const std::string &exe, const std::vector<std::string> &args = {});
  /* SIGTERM and reap; returns the child's user+system CPU seconds (wait4's rusage). */
  double stop();
  /* CPU seconds used so far (/proc/PID/stat), while it runs. */
  double cpu_seconds_now() const;
  const std::string &url() const { return url_; }
  int port() const;
  GPid pid() const { return pid_; }

private:
  GPid pid_ = 0;
  std::string url_;
};

/* Speech-like mono S16 audio: `speech_ms` of a 440 Hz tone with pseudo-random noise (the
 * local service's VAD hears it, and every 200 ms block hashes to a different word), then
 * digital silence up to `cycle_ms`. One cycle; callers loop over it. */
std::vector<gint16> speech_cycle(int rate, guint speech_ms, guint cycle_ms);

/* A buffer of `samples` samples at `offset` into `cycle` (which must outlive the buffer and
 * hold them contiguously), wrapping it read-only without a copy, with PTS/DURATION. */
GstBuffer *wrap_samples(const std::vector<gint16> &cycle, gsize offset, gsize samples,
                        GstClockTime pts, int rate);

/* `description` (gst-launch syntax, one element) in a harness that feeds S16LE mono caps at
 * `rate`, with a bus on the element. The caller sets a sync handler on the bus if needed.
 * `live`: how the harness answers the latency query (GstHarness says live by default; a
 * live upstream makes qwenasrsink drop the oldest audio instead of blocking when its queue
 * is full, which is right for a real-time source and wrong for a file read at full speed). */
GstHarness *element_harness(const std::string &description, int rate, bool live);
/* Drops what is left on the bus and tears the harness down. */
using testutil::teardown_harness;

/* Reads a guint64 field of the element's `stats` structure (0 if missing). */
guint64 sink_stat(GstElement *sink, const char *field);

double percentile(std::vector<double> values, double p); /* p in [0, 100] */

/* A flat JSON object, written member by member. */
class Json {
public:
  Json &num(const std::string &key, double value);
  Json &integer(const std::string &key, gint64 value);
  Json &str(const std::string &key, const std::string &value);
  Json &boolean(const std::string &key, bool value);
  Json &null(const std::string &key);
  Json &raw(const std::string &key, const std::string &json); /* an object or array */
  std::string text() const { return "{" + body_ + "}"; }
  static std::string quote(const std::string &s);
  static std::string number(double value);

private:
  void key(const std::string &k);
  std::string body_;
};

/* Writes `json` to `path` (creating its directory); false on failure. */
bool write_json(const std::string &path, const Json &json);

/* The machine and load, for every result file. */
Json machine_info();

/* Prints one result line and flushes. */
void result_line(const char *format, ...) G_GNUC_PRINTF(1, 2);

} // namespace bench
