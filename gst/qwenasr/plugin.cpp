/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * plugin-qwenasr:
 *
 * Realtime speech recognition with Alibaba Cloud Qwen3-ASR-Flash-Realtime.
 */
#include "config.h"

#include <gst/gst.h>

#include "gstqwenasr.h"
#include "gstqwenasrcea608enc.h"
#include "gstqwenasrsink.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(qwenasrsink, plugin);
  ok |= GST_ELEMENT_REGISTER(qwenasr, plugin);
  ok |= GST_ELEMENT_REGISTER(qwenasrcea608enc, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, qwenasr,
                  "Realtime speech recognition with Alibaba Cloud Qwen3-ASR-Flash-Realtime",
                  plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
