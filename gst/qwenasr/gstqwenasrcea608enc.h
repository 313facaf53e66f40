/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qwenasrcea608enc element (captions in, CEA-608 on video out); see its .cpp. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QWEN_ASR_CEA608_ENC (gst_qwen_asr_cea608_enc_get_type())
G_DECLARE_FINAL_TYPE(GstQwenAsrCea608Enc, gst_qwen_asr_cea608_enc, GST, QWEN_ASR_CEA608_ENC,
                     GstElement)

GST_ELEMENT_REGISTER_DECLARE(qwenasrcea608enc);

G_END_DECLS
