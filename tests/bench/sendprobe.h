/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When, and from which thread, the client's append frames leave its socket (see
 * sendprobe.cpp). */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace sendprobe {

/* Start stamping appends sent to 127.0.0.1:`service_port` (clears earlier stamps). */
void enable(int service_port);
void disable();
/* g_get_monotonic_time() after each append frame's send returned, in send order. */
std::vector<gint64> stamps();
/* Append frames the kernel took only partly in one call (then the stamp is the first part). */
guint64 partial_writes();
/* The name of the thread that sent each stamped append (pthread_getname_np), in send order. */
std::vector<std::string> sender_threads();

} // namespace sendprobe
