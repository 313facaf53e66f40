/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "benchutil.h"

#include <glib/gstdio.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/tcp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

Args::Args(int argc, char **argv, int first) {
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0)
      continue;
    a = a.substr(2);
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      values_[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[a] = argv[++i];
    } else {
      values_[a] = "1";
    }
  }
}

std::string Args::get(const std::string &name, const std::string &fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

double Args::number(const std::string &name, double fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : g_ascii_strtod(it->second.c_str(), nullptr);
}

double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime (ticks) of a /proc/.../stat line; the comm may contain spaces and ')'. */
static bool parse_stat(const std::string &line, std::string *comm, double *seconds) {
  size_t open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos)
    return false;
  if (comm)
    *comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  /* fields after comm: state(3) ... utime(14) stime(15) */
  for (int n = 3; n <= 15 && rest >> field; n++) {
    if (n == 14)
      utime = std::stoul(field);
    if (n == 15)
      stime = std::stoul(field);
  }
  *seconds = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  return true;
}

void cpu_split(double *user, double *system) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  *system = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

guint64 context_switches() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

std::map<std::string, double> thread_cpu_by_name() {
  std::map<std::string, double> result;
  DIR *dir = opendir("/proc/self/task");
  if (!dir)
    return result;
  while (struct dirent *entry = readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    std::ifstream f(std::string("/proc/self/task/") + entry->d_name + "/stat");
    std::string line, comm;
    double seconds = 0;
    if (std::getline(f, line) && parse_stat(line, &comm, &seconds))
      result[comm] += seconds;
  }
  closedir(dir);
  return result;
}

double monotonic_seconds() {
  return g_get_monotonic_time() / 1e6;
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return 0;
}

double heap_mib() {
  struct mallinfo2 mi = mallinfo2();
  return (mi.uordblks + mi.hblkhd) / (1024.0 * 1024.0);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double load1() {
  double l[3] = {0, 0, 0};
  getloadavg(l, 3);
  return l[0];
}

int online_cpus() {
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

IoCounters io_counters() {
  IoCounters c;
  std::ifstream f("/proc/self/io");
  std::string name;
  guint64 value;
  while (f >> name >> value) {
    if (name == "rchar:")
      c.rchar = value;
    else if (name == "wchar:")
      c.wchar = value;
    else if (name == "syscr:")
      c.syscr = value;
    else if (name == "syscw:")
      c.syscw = value;
  }
  return c;
}

TcpCounters tcp_counters(int peer_port) {
  TcpCounters total;
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return total;
  while (struct dirent *entry = readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    int fd = atoi(entry->d_name);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
      continue;
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<struct sockaddr *>(&peer), &len) != 0)
      continue;
    int port = -1;
    if (peer.ss_family == AF_INET)
      port = ntohs(reinterpret_cast<struct sockaddr_in *>(&peer)->sin_port);
    else if (peer.ss_family == AF_INET6)
      port = ntohs(reinterpret_cast<struct sockaddr_in6 *>(&peer)->sin6_port);
    if (port != peer_port)
      continue;
    struct tcp_info info;
    memset(&info, 0, sizeof info);
    socklen_t info_len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) != 0)
      continue;
    total.bytes_acked += info.tcpi_bytes_acked;
    total.bytes_received += info.tcpi_bytes_received;
    total.segs_out += info.tcpi_segs_out;
    total.segs_in += info.tcpi_segs_in;
    total.sockets++;
  }
  closedir(dir);
  return total;
}

ServiceProcess::~ServiceProcess() {
  stop();
}

bool ServiceProcess::start(const std::string &exe, const std::vector<std::string> &args) {
  std::vector<gchar *> argv;
  argv.push_back(g_strdup(exe.c_str()));
  argv.push_back(g_strdup("--port"));
  argv.push_back(g_strdup("0"));
  for (const std::string &a : args)
    argv.push_back(g_strdup(a.c_str()));
  argv.push_back(nullptr);
  gint out_fd = -1;
  GError *error = nullptr;
  gboolean ok =
      g_spawn_async_with_pipes(nullptr, argv.data(), nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr,
                               nullptr, &pid_, nullptr, &out_fd, nullptr, &error);
  for (gchar *a : argv)
    g_free(a);
  if (!ok) {
    g_printerr("cannot start %s: %s\n", exe.c_str(), error->message);
    g_error_free(error);
    pid_ = 0;
    return false;
  }
  FILE *out = fdopen(out_fd, "r");
  char line[512] = "";
  if (!out || !fgets(line, sizeof line, out)) {
    g_printerr("the local service printed no URL\n");
    if (out)
      fclose(out);
    stop();
    return false;
  }
  fclose(out); /* it prints nothing else to stdout */
  url_ = g_strstrip(line);
  return true;
}

double ServiceProcess::stop() {
  if (pid_ <= 0)
    return 0;
  kill(pid_, SIGTERM);
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  wait4(pid_, &status, 0, &ru);
  g_spawn_close_pid(pid_);
  pid_ = 0;
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

double ServiceProcess::cpu_seconds_now() const {
  if (pid_ <= 0)
    return 0;
  std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
  std::string line;
  double seconds = 0;
  if (std::getline(f, line))
    parse_stat(line, nullptr, &seconds);
  return seconds;
}

int ServiceProcess::port() const {
  /* ws://127.0.0.1:PORT/api-ws/v1/realtime */
  size_t colon = url_.rfind(':');
  return colon == std::string::npos ? -1 : atoi(url_.c_str() + colon + 1);
}

std::vector<gint16> speech_cycle(int rate, guint speech_ms, guint cycle_ms) {
  std::vector<gint16> samples(static_cast<size_t>(cycle_ms) * rate / 1000);
  size_t speech = static_cast<size_t>(speech_ms) * rate / 1000;
  guint32 noise = 12345;
  for (size_t i = 0; i < speech && i < samples.size(); i++) {
    double t = static_cast<double>(i) / rate;
    noise = noise * 1664525u + 1013904223u;
    samples[i] = static_cast<gint16>(8000 * std::sin(2 * M_PI * 440 * t) +
                                     static_cast<gint32>(noise >> 20) - 2048);
  }
  return samples;
}

GstBuffer *wrap_samples(const std::vector<gint16> &cycle, gsize offset, gsize samples,
                        GstClockTime pts, int rate) {
  GstBuffer *buffer = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY,
                                                  const_cast<gint16 *>(cycle.data() + offset),
                                                  samples * 2, 0, samples * 2, nullptr, nullptr);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale_int(samples, GST_SECOND, rate);
  return buffer;
}

GstHarness *element_harness(const std::string &description, int rate, bool live) {
  std::string problem;
  GstHarness *h = testutil::try_harness_with_bus(description, nullptr, &problem);
  if (!h) {
    g_printerr("cannot make %s: %s\n", description.c_str(), problem.c_str());
    exit(1);
  }
  gst_harness_set_live(h, live);
  testutil::set_audio_caps(h, rate);
  return h;
}

guint64 sink_stat(GstElement *sink, const char *field) {
  GstStructure *stats = nullptr;
  g_object_get(sink, "stats", &stats, nullptr);
  guint64 value = 0;
  if (stats) {
    gst_structure_get_uint64(stats, field, &value);
    gst_structure_free(stats);
  }
  return value;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty())
    return NAN;
  std::sort(values.begin(), values.end());
  /* nearest rank */
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * values.size()));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

void Json::key(const std::string &k) {
  if (!body_.empty())
    body_ += ",";
  body_ += quote(k) + ":";
}

std::string Json::quote(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char esc[8];
      g_snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Json::number(double value) {
  if (!std::isfinite(value))
    return "null";
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(buf, sizeof buf, "%.6g", value);
  return buf;
}

Json &Json::num(const std::string &k, double value) {
  key(k);
  body_ += number(value);
  return *this;
}

Json &Json::integer(const std::string &k, gint64 value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

Json &Json::str(const std::string &k, const std::string &value) {
  key(k);
  body_ += quote(value);
  return *this;
}

Json &Json::boolean(const std::string &k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

Json &Json::null(const std::string &k) {
  key(k);
  body_ += "null";
  return *this;
}

Json &Json::raw(const std::string &k, const std::string &json) {
  key(k);
  body_ += json;
  return *this;
}

bool write_json(const std::string &path, const Json &json) {
  gchar *dir = g_path_get_dirname(path.c_str());
  g_mkdir_with_parents(dir, 0755);
  g_free(dir);
  std::string text = json.text() + "\n";
  GError *error = nullptr;
  if (!g_file_set_contents(path.c_str(), text.c_str(), text.size(), &error)) {
    g_printerr("cannot write %s: %s\n", path.c_str(), error->message);
    g_error_free(error);
    return false;
  }
  return true;
}

Json machine_info() {
  Json j;
  gchar *kernel = nullptr;
  g_file_get_contents("/proc/sys/kernel/osrelease", &kernel, nullptr, nullptr);
  j.str("cpu_model", cpu_model())
      .integer("online_cpus", online_cpus())
      .str("kernel", kernel ? g_strstrip(kernel) : "")
      .str("loadavg", loadavg());
  gchar *version = gst_version_string();
  j.str("gstreamer", version);
  g_free(version);
  g_free(kernel);
  return j;
}

void result_line(const char *format, ...) {
  va_list args;
  va_start(args, format);
  gchar *text = g_strdup_vprintf(format, args);
  va_end(args);
  g_print("%s\n", text);
  g_free(text);
  fflush(stdout);
}

guint64 thread_count() {
  guint64 n = 0;
  GDir *dir = g_dir_open("/proc/self/task", 0, nullptr);
  if (!dir)
    return 0;
  while (g_dir_read_name(dir))
    n++;
  g_dir_close(dir);
  return n;
}

} // namespace bench
