/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared properties: their GParamSpecs, setters and getters, and the endpoint. */
#include "settings.h"

#include "oggopus.h"

namespace qwenasr {

namespace {

enum SharedProperty {
  PROP_API_KEY,
  PROP_REGION,
  PROP_URL,
  PROP_MODEL,
  PROP_WORKSPACE,
  PROP_LANGUAGE_CODE,
  PROP_CORPUS_TEXT,
  PROP_TURN_DETECTION,
  PROP_VAD_THRESHOLD,
  PROP_VAD_SILENCE_MS,
  PROP_COMMIT_INTERVAL,
  PROP_CHUNK_DURATION,
  PROP_AUDIO_FORMAT,
  PROP_BITRATE,
  PROP_FINISH_TIMEOUT,
  PROP_CONNECT_TIMEOUT,
  PROP_MAX_QUEUE_TIME,
  PROP_MAX_RESEND_TIME,
  PROP_MAX_RECONNECTS,
  PROP_KEEPALIVE_INTERVAL,
  PROP_USE_PROXY,
  PROP_TLS_CA_FILE,
  N_SHARED_PROPERTIES
};

constexpr GParamFlags kReadyFlags =
    static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

std::string string_or_empty(const GValue *value) {
  const char *s = g_value_get_string(value);
  return s ? s : "";
}

void set_string_or_null(GValue *value, const std::string &s) {
  g_value_set_string(value, s.empty() ? nullptr : s.c_str());
}

} // namespace

std::string Settings::endpoint() const {
  if (!url.empty())
    return url;
  return region == GST_QWEN_ASR_REGION_CN ? "wss://dashscope.aliyuncs.com/api-ws/v1/realtime"
                                          : "wss://dashscope-intl.aliyuncs.com/api-ws/v1/realtime";
}

std::string Settings::connect_url() const {
  std::string base = endpoint();
  gchar *escaped = g_uri_escape_string(model.c_str(), nullptr, FALSE);
  std::string result =
      base + (base.find('?') == std::string::npos ? "?model=" : "&model=") + escaped;
  g_free(escaped);
  return result;
}

const char *Settings::region_name() const {
  if (!url.empty())
    return "url property";
  return region == GST_QWEN_ASR_REGION_CN ? "cn (Beijing)" : "intl (Singapore)";
}

SessionConfig Settings::session_config(int sample_rate) const {
  SessionConfig config;
  config.sample_rate = sample_rate;
  config.audio_format = audio_format == GST_QWEN_ASR_AUDIO_FORMAT_OPUS ? "opus" : "pcm";
  config.language = language_code;
  config.corpus_text = corpus_text;
  config.turn_detection = turn_detection == GST_QWEN_ASR_TURN_DETECTION_MANUAL
                              ? TurnDetection::Manual
                              : TurnDetection::ServerVad;
  config.vad_threshold = vad_threshold;
  config.vad_silence_ms = static_cast<int>(vad_silence_ms);
  return config;
}

bool is_commit_event(GstEvent *event) {
  return GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_DOWNSTREAM &&
         gst_event_has_name(event, kCommitEventName);
}

GParamSpec *stats_param_spec() {
  return g_param_spec_boxed(
      "stats", "Statistics",
      "Counters since the element started, a qwenasr/stats structure of guint64: bytes-sent, "
      "audio-sent, appends, reconnects, dropped-audio, partials, finals, last-delay, max-delay "
      "(times in ns; the delays are 0 until the first final)",
      GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

guint settings_install_properties(GObjectClass *klass, guint first_id) {
  const Settings d; /* the defaults: each is written once, in Settings */
  auto install = [&](SharedProperty id, GParamSpec *spec) {
    g_object_class_install_property(klass, first_id + id, spec);
  };
  /* Write-only on purpose: the key must never be readable back, not even by gst-inspect. */
  install(
      PROP_API_KEY,
      g_param_spec_string("api-key", "API key",
                          "DashScope API key (secret, write-only). Default: the DASHSCOPE_API_KEY "
                          "environment variable, read when the element starts",
                          nullptr,
                          static_cast<GParamFlags>(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY)));
  install(PROP_REGION, g_param_spec_enum("region", "Region",
                                         "Service region; selects the endpoint when url is not set",
                                         GST_TYPE_QWEN_ASR_REGION, d.region, kReadyFlags));
  install(PROP_URL, g_param_spec_string("url", "URL",
                                        "WebSocket endpoint (ws:// or wss://) overriding the "
                                        "region's; ?model= is appended",
                                        nullptr, kReadyFlags));
  install(PROP_MODEL, g_param_spec_string("model", "Model",
                                          "Model id, e.g. qwen3-asr-flash-realtime or a dated "
                                          "snapshot such as qwen3-asr-flash-realtime-2026-02-10",
                                          d.model.c_str(), kReadyFlags));
  install(PROP_WORKSPACE,
          g_param_spec_string("workspace", "Workspace",
                              "Model Studio workspace id, sent as X-DashScope-WorkSpace", nullptr,
                              kReadyFlags));
  install(PROP_LANGUAGE_CODE,
          g_param_spec_string("language-code", "Language code",
                              "Language of the speech (zh, yue, en, ja, de, ko, ru, fr, pt, ar, "
                              "it, es, hi, id, th, tr, uk, vi, cs, da, fil, fi, is, ms, no, pl, "
                              "sv); empty: automatic identification",
                              nullptr, kReadyFlags));
  install(PROP_CORPUS_TEXT,
          g_param_spec_string("corpus-text", "Corpus text",
                              "Context text that biases recognition: names, terms, background "
                              "(at most about 10000 tokens)",
                              nullptr, kReadyFlags));
  install(PROP_TURN_DETECTION,
          g_param_spec_enum("turn-detection", "Turn detection",
                            "Who ends an utterance: the service's voice activity detection, or "
                            "the element's commits (manual)",
                            GST_TYPE_QWEN_ASR_TURN_DETECTION, d.turn_detection, kReadyFlags));
  install(PROP_VAD_THRESHOLD,
          g_param_spec_double("vad-threshold", "VAD threshold",
                              "Server VAD sensitivity: lower detects quieter speech (and noise)",
                              -1.0, 1.0, d.vad_threshold, kReadyFlags));
  install(PROP_VAD_SILENCE_MS,
          g_param_spec_uint("vad-silence-ms", "VAD silence",
                            "Silence (ms) that ends an utterance in server-vad mode", 200, 6000,
                            d.vad_silence_ms, kReadyFlags));
  install(PROP_COMMIT_INTERVAL,
          g_param_spec_uint("commit-interval", "Commit interval",
                            "Manual mode: commit at least this often (ms of audio), and at EOS",
                            1000, 60000, d.commit_interval_ms, kReadyFlags));
  install(PROP_CHUNK_DURATION, g_param_spec_uint("chunk-duration", "Chunk duration",
                                                 "Milliseconds of audio per append event", 10, 1000,
                                                 d.chunk_duration_ms, kReadyFlags));
  install(
      PROP_AUDIO_FORMAT,
      g_param_spec_enum("audio-format", "Audio format",
                        "How audio travels to the service. opus: Ogg-Opus, about 9x fewer bytes "
                        "on speech; EXPERIMENTAL: the byte format follows public evidence, "
                        "not verified against the real service",
                        GST_TYPE_QWEN_ASR_AUDIO_FORMAT, d.audio_format, kReadyFlags));
  install(PROP_BITRATE,
          g_param_spec_uint(
              "bitrate", "Bitrate", "audio-format=opus: the encoder's target in bits per second",
              OggOpusWriter::kMinBitrate, OggOpusWriter::kMaxBitrate, d.bitrate, kReadyFlags));
  install(PROP_FINISH_TIMEOUT,
          g_param_spec_uint("finish-timeout", "Finish timeout",
                            "At EOS, how long (ms) to wait for the service to deliver the last "
                            "transcripts before letting EOS through",
                            0, 600000, d.finish_timeout_ms, kReadyFlags));
  install(PROP_CONNECT_TIMEOUT,
          g_param_spec_uint("connect-timeout", "Connect timeout",
                            "How long (ms) connecting and configuring the session may take", 100,
                            600000, d.connect_timeout_ms, kReadyFlags));
  install(PROP_MAX_QUEUE_TIME,
          g_param_spec_uint("max-queue-time", "Max queue time",
                            "Audio (ms) that may wait for the network before the streaming "
                            "thread blocks",
                            100, 600000, d.max_queue_ms, kReadyFlags));
  install(PROP_MAX_RESEND_TIME,
          g_param_spec_uint("max-resend-time", "Max resend time",
                            "Audio (ms) kept after sending until its transcript is final, to "
                            "resend it on a new connection so no speech is lost",
                            0, 3600000, d.max_resend_ms, kReadyFlags));
  install(PROP_MAX_RECONNECTS,
          g_param_spec_uint("max-reconnects", "Max reconnects",
                            "Attempts to reconnect after the connection is lost (backoff from "
                            "250 ms, doubling to 8 s) before the error; 0: fail at once",
                            0, 1000, d.max_reconnects, kReadyFlags));
  install(PROP_KEEPALIVE_INTERVAL,
          g_param_spec_uint("keepalive-interval", "Keepalive interval",
                            "Seconds between WebSocket pings; a service silent for three "
                            "intervals is taken for dead and reconnected. 0: no pings",
                            0, 3600, d.keepalive_interval_s, kReadyFlags));
  install(PROP_USE_PROXY,
          g_param_spec_boolean("use-proxy", "Use proxy",
                               "Honour the system proxy settings (never for loopback hosts)",
                               d.use_proxy, kReadyFlags));
  install(PROP_TLS_CA_FILE,
          g_param_spec_string(
              "tls-ca-file", "TLS CA file",
              "PEM file of the certificate authorities trusted for wss:// instead of the system's",
              nullptr, kReadyFlags));
  return first_id + N_SHARED_PROPERTIES;
}

gboolean settings_set_property(Settings *s, guint first_id, guint prop_id, const GValue *value) {
  if (prop_id < first_id || prop_id >= first_id + N_SHARED_PROPERTIES)
    return FALSE;
  switch (static_cast<SharedProperty>(prop_id - first_id)) {
  case PROP_API_KEY:
    s->api_key = string_or_empty(value);
    break;
  case PROP_REGION:
    s->region = static_cast<GstQwenAsrRegion>(g_value_get_enum(value));
    break;
  case PROP_URL:
    s->url = string_or_empty(value);
    break;
  case PROP_MODEL:
    s->model = string_or_empty(value);
    if (s->model.empty())
      s->model = kDefaultModel;
    break;
  case PROP_WORKSPACE:
    s->workspace = string_or_empty(value);
    break;
  case PROP_LANGUAGE_CODE:
    s->language_code = string_or_empty(value);
    break;
  case PROP_CORPUS_TEXT:
    s->corpus_text = string_or_empty(value);
    break;
  case PROP_TURN_DETECTION:
    s->turn_detection = static_cast<GstQwenAsrTurnDetection>(g_value_get_enum(value));
    break;
  case PROP_VAD_THRESHOLD:
    s->vad_threshold = g_value_get_double(value);
    break;
  case PROP_VAD_SILENCE_MS:
    s->vad_silence_ms = g_value_get_uint(value);
    break;
  case PROP_COMMIT_INTERVAL:
    s->commit_interval_ms = g_value_get_uint(value);
    break;
  case PROP_CHUNK_DURATION:
    s->chunk_duration_ms = g_value_get_uint(value);
    break;
  case PROP_AUDIO_FORMAT:
    s->audio_format = static_cast<GstQwenAsrAudioFormat>(g_value_get_enum(value));
    break;
  case PROP_BITRATE:
    s->bitrate = g_value_get_uint(value);
    break;
  case PROP_FINISH_TIMEOUT:
    s->finish_timeout_ms = g_value_get_uint(value);
    break;
  case PROP_CONNECT_TIMEOUT:
    s->connect_timeout_ms = g_value_get_uint(value);
    break;
  case PROP_MAX_QUEUE_TIME:
    s->max_queue_ms = g_value_get_uint(value);
    break;
  case PROP_MAX_RESEND_TIME:
    s->max_resend_ms = g_value_get_uint(value);
    break;
  case PROP_MAX_RECONNECTS:
    s->max_reconnects = g_value_get_uint(value);
    break;
  case PROP_KEEPALIVE_INTERVAL:
    s->keepalive_interval_s = g_value_get_uint(value);
    break;
  case PROP_USE_PROXY:
    s->use_proxy = g_value_get_boolean(value);
    break;
  case PROP_TLS_CA_FILE:
    s->tls_ca_file = string_or_empty(value);
    break;
  case N_SHARED_PROPERTIES:
    return FALSE;
  }
  return TRUE;
}

gboolean settings_get_property(const Settings *s, guint first_id, guint prop_id, GValue *value) {
  if (prop_id < first_id || prop_id >= first_id + N_SHARED_PROPERTIES)
    return FALSE;
  switch (static_cast<SharedProperty>(prop_id - first_id)) {
  case PROP_API_KEY: /* write-only; GObject never asks */
    break;
  case PROP_REGION:
    g_value_set_enum(value, s->region);
    break;
  case PROP_URL:
    set_string_or_null(value, s->url);
    break;
  case PROP_MODEL:
    g_value_set_string(value, s->model.c_str());
    break;
  case PROP_WORKSPACE:
    set_string_or_null(value, s->workspace);
    break;
  case PROP_LANGUAGE_CODE:
    set_string_or_null(value, s->language_code);
    break;
  case PROP_CORPUS_TEXT:
    set_string_or_null(value, s->corpus_text);
    break;
  case PROP_TURN_DETECTION:
    g_value_set_enum(value, s->turn_detection);
    break;
  case PROP_VAD_THRESHOLD:
    g_value_set_double(value, s->vad_threshold);
    break;
  case PROP_VAD_SILENCE_MS:
    g_value_set_uint(value, s->vad_silence_ms);
    break;
  case PROP_COMMIT_INTERVAL:
    g_value_set_uint(value, s->commit_interval_ms);
    break;
  case PROP_CHUNK_DURATION:
    g_value_set_uint(value, s->chunk_duration_ms);
    break;
  case PROP_AUDIO_FORMAT:
    g_value_set_enum(value, s->audio_format);
    break;
  case PROP_BITRATE:
    g_value_set_uint(value, s->bitrate);
    break;
  case PROP_FINISH_TIMEOUT:
    g_value_set_uint(value, s->finish_timeout_ms);
    break;
  case PROP_CONNECT_TIMEOUT:
    g_value_set_uint(value, s->connect_timeout_ms);
    break;
  case PROP_MAX_QUEUE_TIME:
    g_value_set_uint(value, s->max_queue_ms);
    break;
  case PROP_MAX_RESEND_TIME:
    g_value_set_uint(value, s->max_resend_ms);
    break;
  case PROP_MAX_RECONNECTS:
    g_value_set_uint(value, s->max_reconnects);
    break;
  case PROP_KEEPALIVE_INTERVAL:
    g_value_set_uint(value, s->keepalive_interval_s);
    break;
  case PROP_USE_PROXY:
    g_value_set_boolean(value, s->use_proxy);
    break;
  case PROP_TLS_CA_FILE:
    set_string_or_null(value, s->tls_ca_file);
    break;
  case N_SHARED_PROPERTIES:
    return FALSE;
  }
  return TRUE;
}

} // namespace qwenasr

GType gst_qwen_asr_region_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_QWEN_ASR_REGION_INTL, "International (Singapore): dashscope-intl.aliyuncs.com", "intl"},
      {GST_QWEN_ASR_REGION_CN, "Mainland China (Beijing): dashscope.aliyuncs.com", "cn"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstQwenAsrRegion", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_qwen_asr_turn_detection_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_QWEN_ASR_TURN_DETECTION_SERVER_VAD,
       "The service's voice activity detection ends each utterance", "server-vad"},
      {GST_QWEN_ASR_TURN_DETECTION_MANUAL,
       "The element commits: every commit-interval, on a qwenasr-commit event, and at EOS",
       "manual"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstQwenAsrTurnDetection", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_qwen_asr_audio_format_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_QWEN_ASR_AUDIO_FORMAT_PCM, "Raw S16LE PCM (the service's documented default)", "pcm"},
      {GST_QWEN_ASR_AUDIO_FORMAT_OPUS,
       "Ogg-Opus encoded in the element (experimental: follows public evidence)", "opus"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstQwenAsrAudioFormat", values);
    g_once_init_leave(&type, t);
  }
  return type;
}
