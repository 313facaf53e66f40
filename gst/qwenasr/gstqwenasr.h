/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qwenasr element (audio in, timed text/x-raw captions out); see gstqwenasr.cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QWEN_ASR (gst_qwen_asr_get_type())
G_DECLARE_FINAL_TYPE(GstQwenAsr, gst_qwen_asr, GST, QWEN_ASR, GstElement)

GST_ELEMENT_REGISTER_DECLARE(qwenasr);

G_END_DECLS
