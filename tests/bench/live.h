/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The live benchmark (bench.cpp's `live` subcommand): one paced stream against the
 * reference client, side by side. */
#pragma once

#include <vector>

#include "benchutil.h"

namespace bench {

/* `speech`: the recorded speech to loop (empty: skipped). */
int bench_live(const Args &args, const std::vector<gint16> &speech);

} // namespace bench
