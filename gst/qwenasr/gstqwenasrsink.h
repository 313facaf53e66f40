/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qwenasrsink element (audio in, transcripts on the bus); see gstqwenasrsink.cpp. */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_QWEN_ASR_SINK (gst_qwen_asr_sink_get_type())
G_DECLARE_FINAL_TYPE(GstQwenAsrSink, gst_qwen_asr_sink, GST, QWEN_ASR_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(qwenasrsink);

G_END_DECLS
