/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The properties shared by qwenasrsink and qwenasr: one definition, installed on both
 * classes, so the two elements cannot drift apart. */
#pragma once

#include <gst/gst.h>

#include <string>

#include "asrprotocol.h"
#include "oggopus.h"

G_BEGIN_DECLS

typedef enum {
  GST_QWEN_ASR_REGION_INTL,
  GST_QWEN_ASR_REGION_CN,
} GstQwenAsrRegion;

typedef enum {
  GST_QWEN_ASR_TURN_DETECTION_SERVER_VAD,
  GST_QWEN_ASR_TURN_DETECTION_MANUAL,
} GstQwenAsrTurnDetection;

typedef enum {
  GST_QWEN_ASR_AUDIO_FORMAT_PCM,
  GST_QWEN_ASR_AUDIO_FORMAT_OPUS,
} GstQwenAsrAudioFormat;

#define GST_TYPE_QWEN_ASR_REGION (gst_qwen_asr_region_get_type())
GType gst_qwen_asr_region_get_type(void);
#define GST_TYPE_QWEN_ASR_TURN_DETECTION (gst_qwen_asr_turn_detection_get_type())
GType gst_qwen_asr_turn_detection_get_type(void);
#define GST_TYPE_QWEN_ASR_AUDIO_FORMAT (gst_qwen_asr_audio_format_get_type())
GType gst_qwen_asr_audio_format_get_type(void);

G_END_DECLS

namespace qwenasr {

constexpr const char *kDefaultModel = "qwen3-asr-flash-realtime";
constexpr const char *kApiKeyEnvironmentVariable = "DASHSCOPE_API_KEY";

/* Property values. Guarded by the owning element's object lock; start() takes a copy. */
struct Settings {
  std::string api_key; /* secret: never logged, never readable back */
  GstQwenAsrRegion region = GST_QWEN_ASR_REGION_INTL;
  std::string url; /* empty: the region's endpoint */
  std::string model = kDefaultModel;
  std::string workspace;
  std::string language_code;
  std::string corpus_text;
  GstQwenAsrTurnDetection turn_detection = GST_QWEN_ASR_TURN_DETECTION_SERVER_VAD;
  double vad_threshold = 0.2;
  guint vad_silence_ms = 800;
  guint commit_interval_ms = 10000;
  guint chunk_duration_ms = 100;
  GstQwenAsrAudioFormat audio_format = GST_QWEN_ASR_AUDIO_FORMAT_PCM;
  guint bitrate = OggOpusWriter::kDefaultBitrate;
  guint finish_timeout_ms = 10000;
  guint connect_timeout_ms = 10000;
  guint max_queue_ms = 10000;
  guint max_resend_ms = 120000;
  guint max_reconnects = 5;
  guint keepalive_interval_s = 20;
  gboolean use_proxy = TRUE;
  std::string tls_ca_file;

  /* The endpoint without query, from `url` or the region. */
  std::string endpoint() const;
  /* The endpoint with ?model=... appended (or &model= when it already has a query). */
  std::string connect_url() const;
  const char *region_name() const;
  SessionConfig session_config(int sample_rate) const;
};

/* The custom downstream event that commits the audio so far (manual turn detection). */
constexpr const char *kCommitEventName = "qwenasr-commit";
bool is_commit_event(GstEvent *event);

/* The read-only `stats` property both elements have (Transcriber::stats()). */
GParamSpec *stats_param_spec();

/* Property ids start at `first_id`; each element keeps its own ids after the shared ones. */
guint settings_install_properties(GObjectClass *klass, guint first_id);
/* Both return FALSE when `prop_id` is not one of the shared properties. */
gboolean settings_set_property(Settings *settings, guint first_id, guint prop_id,
                               const GValue *value);
gboolean settings_get_property(const Settings *settings, guint first_id, guint prop_id,
                               GValue *value);

} // namespace qwenasr
