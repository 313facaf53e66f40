/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stamps the moment an input_audio_buffer.append frame leaves the client's socket, without
 * touching the element: this executable defines send(), sendmsg(), write() and writev(),
 * which the dynamic linker binds GIO's calls to (symbol interposition; the executable is
 * linked with export_dynamic), and forwards them to libc. When enabled, every call on a TCP
 * socket whose PEER port is the service's (the client side; the in-process service's own
 * sockets have that port as their LOCAL port) is inspected: a masked WebSocket text frame
 * whose unmasked start names input_audio_buffer.append is stamped with g_get_monotonic_time()
 * after the kernel accepted it. */
#include "sendprobe.h"

#include <glib.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

std::atomic<int> probe_port{-1};
std::mutex probe_mutex;
std::vector<gint64> probe_stamps;
std::vector<std::string> probe_threads; /* guarded by probe_mutex, like probe_stamps */
std::atomic<guint64> probe_partial{0};

int peer_port(int fd) {
  struct sockaddr_storage peer;
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<struct sockaddr *>(&peer), &len) != 0)
    return -1;
  if (peer.ss_family == AF_INET)
    return ntohs(reinterpret_cast<struct sockaddr_in *>(&peer)->sin_port);
  if (peer.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<struct sockaddr_in6 *>(&peer)->sin6_port);
  return -1;
}

/* `data` is what the kernel took (n bytes). Frames start at the start of a write unless the
 * previous one was partial; a false start cannot unmask to the expected text. */
void inspect(int fd, const void *data, size_t n) {
  int port = probe_port.load(std::memory_order_relaxed);
  if (port < 0 || n < 8)
    return;
  const auto *p = static_cast<const unsigned char *>(data);
  /* FIN + text, masked, 16-bit length (appends are 126..65535 bytes) */
  if (p[0] != 0x81 || p[1] != (0x80 | 126))
    return;
  if (peer_port(fd) != port)
    return;
  size_t payload = (size_t(p[2]) << 8) | p[3];
  const unsigned char *mask = p + 4;
  char head[96];
  size_t m = std::min<size_t>(sizeof head - 1, std::min(payload, n - 8));
  for (size_t i = 0; i < m; i++)
    head[i] = static_cast<char>(p[8 + i] ^ mask[i & 3]);
  head[m] = '\0';
  if (!strstr(head, "\"type\":\"input_audio_buffer.append\""))
    return;
  gint64 now = g_get_monotonic_time();
  if (n < payload + 8)
    probe_partial++;
  char thread[16] = "";
  pthread_getname_np(pthread_self(), thread, sizeof thread);
  std::lock_guard<std::mutex> lock(probe_mutex);
  probe_stamps.push_back(now);
  probe_threads.push_back(thread);
}

template <typename F> F real(const char *name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

} // namespace

extern "C" {

ssize_t send(int fd, const void *buf, size_t len, int flags) {
  static auto fn = real<ssize_t (*)(int, const void *, size_t, int)>("send");
  ssize_t r = fn(fd, buf, len, flags);
  if (r > 0)
    inspect(fd, buf, static_cast<size_t>(r));
  return r;
}

ssize_t write(int fd, const void *buf, size_t len) {
  static auto fn = real<ssize_t (*)(int, const void *, size_t)>("write");
  ssize_t r = fn(fd, buf, len);
  if (r > 0)
    inspect(fd, buf, static_cast<size_t>(r));
  return r;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  static auto fn = real<ssize_t (*)(int, const struct msghdr *, int)>("sendmsg");
  ssize_t r = fn(fd, msg, flags);
  if (r > 0 && msg->msg_iovlen > 0)
    inspect(fd, msg->msg_iov[0].iov_base,
            std::min<size_t>(static_cast<size_t>(r), msg->msg_iov[0].iov_len));
  return r;
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
  static auto fn = real<ssize_t (*)(int, const struct iovec *, int)>("writev");
  ssize_t r = fn(fd, iov, count);
  if (r > 0 && count > 0)
    inspect(fd, iov[0].iov_base, std::min<size_t>(static_cast<size_t>(r), iov[0].iov_len));
  return r;
}

} // extern "C"

namespace sendprobe {

void enable(int service_port) {
  std::lock_guard<std::mutex> lock(probe_mutex);
  probe_stamps.clear();
  probe_threads.clear();
  probe_port = service_port;
}

void disable() {
  probe_port = -1;
}

std::vector<gint64> stamps() {
  std::lock_guard<std::mutex> lock(probe_mutex);
  return probe_stamps;
}

guint64 partial_writes() {
  return probe_partial.load();
}

std::vector<std::string> sender_threads() {
  std::lock_guard<std::mutex> lock(probe_mutex);
  return probe_threads;
}

} // namespace sendprobe
