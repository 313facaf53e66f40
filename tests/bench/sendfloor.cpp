/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr-bench-sendfloor: what the kernel alone charges a sender for appends on this machine,
 * the floor under qwenasrsink's cost. Live: N loopback TCP connections to a reading peer
 * process, each sent one 4375-byte append (100 ms of 16 kHz PCM as JSON) every 100 ms from one
 * thread sleeping to a schedule; the sender's CPU with the sends, minus the same schedule
 * without them. Full speed: one audio hour of appends (157.5 MB) sent as fast as the peer
 * reads. Nothing of the plugin is in it. */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

double cpu_seconds() {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* The peer: accepts n connections and reads until all are closed. */
[[noreturn]] void peer(int listener, int n) {
  std::vector<struct pollfd> fds(n);
  for (int i = 0; i < n; i++)
    fds[i] = {accept(listener, nullptr, nullptr), POLLIN, 0};
  static char buffer[65536];
  for (int open = n; open > 0;) {
    poll(fds.data(), n, -1);
    for (struct pollfd &p : fds) {
      if (p.fd >= 0 && p.revents && read(p.fd, buffer, sizeof buffer) <= 0) {
        close(p.fd);
        p.fd = -1;
        open--;
      }
    }
  }
  _exit(0);
}

/* A loopback listener and a peer process that reads `n` connections; the connected sockets. */
std::vector<int> connect_peer(int n, pid_t *child) {
  std::vector<int> sockets;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, reinterpret_cast<sockaddr *>(&address), length) != 0 ||
      listen(listener, 1024) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr *>(&address), &length) != 0)
    return sockets;
  *child = fork();
  if (*child == 0)
    peer(listener, n);
  for (int i = 0; i < n; i++) {
    sockets.push_back(socket(AF_INET, SOCK_STREAM, 0));
    if (connect(sockets.back(), reinterpret_cast<sockaddr *>(&address), length) != 0) {
      sockets.clear();
      break;
    }
  }
  close(listener);
  return sockets;
}

/* CPU seconds of `sends` sends (or only the sleeps) spread evenly over `seconds`. */
double schedule(const std::vector<int> &sockets, double seconds, bool send_them) {
  static const std::string append(4375, 'x');
  const long total = static_cast<long>(sockets.size() * 10 * seconds);
  const long step_ns = static_cast<long>(1e9 / (sockets.size() * 10));
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  const double cpu0 = cpu_seconds();
  for (long k = 0; k < total; k++) {
    t.tv_nsec += step_ns;
    while (t.tv_nsec >= 1000000000L) {
      t.tv_nsec -= 1000000000L;
      t.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr);
    if (send_them)
      send(sockets[k % sockets.size()], append.data(), append.size(), MSG_NOSIGNAL);
  }
  return cpu_seconds() - cpu0;
}

} // namespace

int main(int argc, char **argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 10;
  for (int n : {1, 100}) {
    pid_t child = 0;
    std::vector<int> sockets = connect_peer(n, &child);
    if (sockets.empty())
      return 1;
    const double with = schedule(sockets, seconds, true);
    const double without = schedule(sockets, seconds, false);
    for (int s : sockets)
      close(s);
    waitpid(child, nullptr, 0);
    const double sends = n * 10 * seconds;
    printf("send_floor_%d_streams: %.1f us of sender CPU per 4375-byte loopback send (%.2f%% of "
           "one core for %d appends/s; the schedule's sleeps alone %.2f%%); per stream-hour "
           "%.2f s\n",
           n, (with - without) / sends * 1e6, (with - without) / seconds * 100, n * 10,
           without / seconds * 100, (with - without) / sends * 36000);
  }
  pid_t child = 0;
  std::vector<int> sockets = connect_peer(1, &child);
  if (sockets.empty())
    return 1;
  static const std::string append(4375, 'x');
  const double cpu0 = cpu_seconds();
  for (int i = 0; i < 36000; i++) {
    for (size_t sent = 0; sent < append.size();) {
      ssize_t n = send(sockets[0], append.data() + sent, append.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return 1;
      sent += n;
    }
  }
  const double bulk = cpu_seconds() - cpu0;
  close(sockets[0]);
  waitpid(child, nullptr, 0);
  printf("send_floor_full_speed: %.3f s of sender CPU for one audio hour of appends (36000 x "
         "4375 bytes) sent over loopback as fast as the peer reads\n",
         bulk);
  return 0;
}
