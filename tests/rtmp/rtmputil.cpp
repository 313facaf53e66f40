/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the RTMP tests share: nginx with the RTMP module on a free loopback port, the
 * frame-number bar code, a viewer that decodes a stream and records what arrived when, and
 * the continuity measure. */
#include "rtmputil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace testutil;

std::string substitute(std::string text, const std::map<std::string, std::string> &vars) {
  for (const auto &[name, value] : vars) {
    for (size_t at = text.find(name); at != std::string::npos;
         at = text.find(name, at + value.size()))
      text.replace(at, name.size(), value);
  }
  return text;
}

std::string find_nginx() {
  for (const char *candidate : {"/usr/sbin/nginx", "/usr/bin/nginx"})
    if (g_file_test(candidate, G_FILE_TEST_IS_EXECUTABLE))
      return candidate;
  gchar *path = g_find_program_in_path("nginx");
  std::string result = path ? path : "";
  g_free(path);
  return result;
}

bool have_nginx_rtmp(std::string *why) {
  if (find_nginx().empty()) {
    *why = "nginx is not installed (Debian: nginx)";
    return false;
  }
  if (!g_file_test(kNginxModule, G_FILE_TEST_EXISTS)) {
    *why = std::string(kNginxModule) + " is missing (Debian: libnginx-mod-rtmp)";
    return false;
  }
  return true;
}

static guint16 free_port() {
  GSocket *socket =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  fail_unless(socket != nullptr);
  GInetAddress *loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any = g_inet_socket_address_new(loopback, 0);
  fail_unless(g_socket_bind(socket, any, FALSE, nullptr), "cannot bind 127.0.0.1:0");
  GSocketAddress *bound = g_socket_get_local_address(socket, nullptr);
  guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_object_unref(any);
  g_object_unref(loopback);
  g_socket_close(socket, nullptr);
  g_object_unref(socket);
  return port;
}

static bool port_accepts(guint16 port) {
  GSocketClient *client = g_socket_client_new();
  GSocketConnection *connection =
      g_socket_client_connect_to_host(client, "127.0.0.1", port, nullptr, nullptr);
  bool ok = connection != nullptr;
  if (connection)
    g_object_unref(connection);
  g_object_unref(client);
  return ok;
}

std::string slurp(const std::string &path) {
  gchar *contents = nullptr;
  gsize length = 0;
  if (!g_file_get_contents(path.c_str(), &contents, &length, nullptr))
    return "";
  std::string result(contents, length);
  g_free(contents);
  return result;
}

static void die_with_parent(gpointer) {
  /* A failing check test exits without unwinding: nginx must not outlive it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

Nginx::Nginx() {
  gchar *dir = g_dir_make_tmp("qwenasr-rtmp-XXXXXX", nullptr);
  fail_unless(dir != nullptr);
  dir_ = dir;
  g_free(dir);
  port_ = free_port();
  /* One process (master_process off), in the foreground, everything in the temp dir. */
  std::string conf =
      "load_module " + std::string(kNginxModule) +
      ";\n"
      "daemon off;\nmaster_process off;\n"
      "pid " +
      dir_ + "/nginx.pid;\nerror_log " + dir_ +
      "/error.log info;\n"
      "events { worker_connections 64; }\n"
      "rtmp {\n  access_log " +
      dir_ + "/rtmp-access.log;\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
      ";\n    chunk_size 4096;\n"
      "    application live { live on; record off; wait_key on; wait_video on; }\n"
      "  }\n}\n";
  conf_ = dir_ + "/nginx.conf";
  fail_unless(g_file_set_contents(conf_.c_str(), conf.c_str(), -1, nullptr));
  std::string nginx = find_nginx();
  std::string error_log = dir_ + "/error.log";
  std::string prefix = dir_ + "/";
  const gchar *argv[] = {nginx.c_str(),  "-e", error_log.c_str(), "-p",
                         prefix.c_str(), "-c", conf_.c_str(),     nullptr};
  GError *error = nullptr;
  fail_unless(g_spawn_async(
                  nullptr, const_cast<gchar **>(argv), nullptr,
                  static_cast<GSpawnFlags>(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL),
                  die_with_parent, nullptr, &pid_, &error),
              "cannot run %s: %s", nginx.c_str(), error ? error->message : "");
  for (int i = 0; i < 100 && !port_accepts(port_); i++) {
    int status = 0;
    fail_if(waitpid(pid_, &status, WNOHANG) == pid_, "nginx exited: %s", slurp(error_log).c_str());
    g_usleep(50000);
  }
  fail_unless(port_accepts(port_), "nginx does not listen on %u: %s", port_,
              slurp(error_log).c_str());
}

Nginx::~Nginx() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    g_spawn_close_pid(pid_);
  }
  for (const char *name : {"nginx.conf", "nginx.pid", "error.log", "rtmp-access.log"})
    g_unlink((dir_ + "/" + name).c_str());
  /* nginx makes its temp directories in the prefix even without an http block. */
  for (const char *name :
       {"client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp", "logs"})
    g_rmdir((dir_ + "/" + name).c_str());
  g_rmdir(dir_.c_str());
}

static guint marker_check(guint n) {
  return (n * 7 + 3) & 0xf;
}

void write_marker(GstVideoFrame *frame, guint n) {
  guint code = (n & 0xfff) | (marker_check(n & 0xfff) << 12);
  guint8 *y = static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(frame, 0));
  int stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
  for (int row = 0; row < kMarkerRows; row++)
    for (int x = 0; x < kWidth; x++)
      y[row * stride + x] = (code >> (x / kMarkerBlock)) & 1 ? 235 : 16;
  /* Neutral chroma, so the strip is black and white. */
  for (int plane = 1; plane < 3; plane++) {
    guint8 *c = static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(frame, plane));
    int cstride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, plane);
    for (int row = 0; row < kMarkerRows / 2; row++)
      memset(c + row * cstride, 128, kWidth / 2);
  }
}

/* The frame number, or -1 if the bar code does not read back. */
gint read_marker(const GstVideoFrame *frame) {
  const guint8 *y = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(frame, 0));
  int stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
  guint code = 0;
  for (int bit = 0; bit < kMarkerBits; bit++) {
    guint sum = 0;
    for (int row = 4; row < 12; row++)
      for (int x = bit * kMarkerBlock + 6; x < bit * kMarkerBlock + 14; x++)
        sum += y[row * stride + x];
    if (sum / 64 > 128)
      code |= 1u << bit;
  }
  guint n = code & 0xfff;
  return (code >> 12) == marker_check(n) ? static_cast<gint>(n) : -1;
}

static GstFlowReturn on_video(GstElement *sink, gpointer data) {
  auto *viewer = static_cast<Viewer *>(data);
  GstSample *sample = nullptr;
  g_signal_emit_by_name(sink, "pull-sample", &sample);
  if (!sample)
    return GST_FLOW_EOS;
  gint64 wall = g_get_monotonic_time();
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  GstVideoFrame frame;
  fail_unless(gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ));
  Frame f{read_marker(&frame), GST_BUFFER_PTS(buffer), wall, {}};
  const guint8 *y = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
  int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
  f.region.resize(kRegionBytes);
  for (int row = kRegionTop; row < kHeight; row++)
    memcpy(&f.region[(row - kRegionTop) * kWidth], y + row * stride, kWidth);
  gst_video_frame_unmap(&frame);
  std::lock_guard<std::mutex> guard(viewer->lock);
  if (f.number >= 0 && f.number % kFps == 12)
    viewer->kept[f.number] = gst_sample_ref(sample);
  gst_sample_unref(sample);
  viewer->arrivals.push_back(wall);
  if (f.number < 0)
    viewer->unreadable++;
  else
    viewer->frames.push_back(std::move(f));
  return GST_FLOW_OK;
}

/* Calls f(buffer, map) with the next sample's buffer mapped for reading. */
template <typename F> static GstFlowReturn with_next_buffer(GstElement *sink, F &&f) {
  GstSample *sample = nullptr;
  g_signal_emit_by_name(sink, "pull-sample", &sample);
  if (!sample)
    return GST_FLOW_EOS;
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_READ);
  f(buffer, map);
  gst_buffer_unmap(buffer, &map);
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

static GstFlowReturn on_audio(GstElement *sink, gpointer data) {
  auto *viewer = static_cast<Viewer *>(data);
  return with_next_buffer(sink, [viewer](GstBuffer *buffer, const GstMapInfo &map) {
    gint peak = 0;
    for (gsize i = 0; i < map.size / 2; i++)
      peak = MAX(peak, std::abs(reinterpret_cast<const gint16 *>(map.data)[i]));
    AudioChunk chunk{GST_BUFFER_PTS(buffer), GST_BUFFER_DURATION(buffer), g_get_monotonic_time(),
                     peak};
    std::lock_guard<std::mutex> guard(viewer->lock);
    viewer->audio.push_back(chunk);
  });
}

static GstFlowReturn on_text(GstElement *sink, gpointer data) {
  auto *viewer = static_cast<Viewer *>(data);
  return with_next_buffer(sink, [viewer](GstBuffer *buffer, const GstMapInfo &map) {
    std::string text(reinterpret_cast<const char *>(map.data), map.size);
    if (text.empty())
      return;
    std::lock_guard<std::mutex> guard(viewer->lock);
    viewer->texts.push_back({GST_BUFFER_PTS(buffer), GST_BUFFER_DURATION(buffer), text});
  });
}

const char *kDecodeVideo = "queue ! h264parse ! avdec_h264 ! videoconvert ! "
                           "video/x-raw,format=I420,width=320,height=240 ! "
                           "appsink name=video sync=false emit-signals=true";
const char *kDecodeAudio = "queue ! aacparse ! avdec_aac ! audioconvert ! "
                           "audio/x-raw,format=S16LE,channels=1 ! "
                           "appsink name=audio sync=false emit-signals=true";

void start_viewer(Viewer &viewer, const std::string &description) {
  GError *error = nullptr;
  viewer.pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(viewer.pipeline && !error, "viewer %s: %s", description.c_str(),
              error ? error->message : "");
  for (auto [name, callback] : {std::pair{"video", &on_video}, std::pair{"audio", &on_audio},
                                std::pair{"text", &on_text}}) {
    GstElement *sink = gst_bin_get_by_name(GST_BIN(viewer.pipeline), name);
    if (!sink)
      continue;
    g_signal_connect(sink, "new-sample", G_CALLBACK(callback), &viewer);
    gst_object_unref(sink);
  }
  fail_unless(gst_element_set_state(viewer.pipeline, GST_STATE_PLAYING) !=
              GST_STATE_CHANGE_FAILURE);
}

void start_rtmp_viewer(Viewer &viewer, const std::string &url) {
  start_viewer(viewer, "rtmp2src location=" + url + " ! flvdemux name=d d.video ! " + kDecodeVideo +
                           " d.audio ! " + kDecodeAudio);
}

/* Fails on any ERROR message so far; keeps the rest in `kept`. */
void check_bus(GstElement *pipeline, const char *what, std::vector<GstMessage *> *kept,
               const Nginx &nginx) {
  std::vector<GstMessage *> messages = drain_bus(pipeline);
  for (GstMessage *m : messages) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *error = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error(m, &error, &debug);
      fail("%s: error from %s: %s (%s)\nnginx log:\n%s", what, GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
           error->message, debug ? debug : "", nginx.error_log().c_str());
    }
  }
  if (kept)
    kept->insert(kept->end(), messages.begin(), messages.end());
  else
    free_messages(messages);
}

void stop(GstElement *&pipeline) {
  if (!pipeline)
    return;
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_flushing(bus, TRUE);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  pipeline = nullptr;
}

/* The longest stretch without a new frame (by arrival) or with a hole in the frame numbers;
 * the same for audio (arrival, and holes in the timestamps). */

Continuity continuity(const Viewer &viewer, gint64 from_wall) {
  Continuity c;
  const Frame *previous = nullptr;
  for (const Frame &f : viewer.frames) {
    if (f.wall < from_wall)
      continue;
    if (previous) {
      c.video_arrival_gap_us = MAX(c.video_arrival_gap_us, f.wall - previous->wall);
      c.video_number_gap = MAX(c.video_number_gap, f.number - previous->number);
    }
    previous = &f;
  }
  const AudioChunk *last = nullptr;
  for (const AudioChunk &a : viewer.audio) {
    if (a.wall < from_wall)
      continue;
    if (last) {
      c.audio_arrival_gap_us = MAX(c.audio_arrival_gap_us, a.wall - last->wall);
      if (a.pts > last->pts + last->duration)
        c.audio_pts_hole = MAX(c.audio_pts_hole, a.pts - last->pts - last->duration);
    }
    c.audio_peak = MAX(c.audio_peak, a.peak);
    last = &a;
  }
  return c;
}

gint64 median(std::vector<gint64> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
std::string Nginx::error_log() const {
  return slurp(dir_ + "/error.log");
}

GPid spawn(const std::vector<std::string> &argv, const std::string &log) {
  std::vector<const gchar *> args;
  for (const std::string &a : argv)
    args.push_back(a.c_str());
  args.push_back(nullptr);
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  fail_unless(fd >= 0, "cannot write %s", log.c_str());
  GPid pid = 0;
  GError *error = nullptr;
  gboolean ok = g_spawn_async_with_fds(
      nullptr, const_cast<gchar **>(args.data()), nullptr,
      static_cast<GSpawnFlags>(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH), die_with_parent,
      nullptr, &pid, -1, fd, fd, &error);
  close(fd);
  fail_unless(ok, "cannot run %s: %s", argv[0].c_str(), error ? error->message : "");
  return pid;
}

int wait_child(GPid pid, gint64 timeout_us) {
  gint64 until = g_get_monotonic_time() + timeout_us;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      g_spawn_close_pid(pid);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (g_get_monotonic_time() >= until)
      return -1;
    g_usleep(50000);
  }
}
