/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What both transcribing elements share (see transcribeelement.h). */
#include "transcribeelement.h"

namespace qwenasr {

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)S16LE, channels=(int)1, "
                    "rate=(int){ 16000, 8000 }, layout=(string)interleaved"));

void transcribe_element_class_init(GObjectClass *gobject_class, GstElementClass *element_class,
                                   guint stats_id, guint first_shared_id) {
  g_object_class_install_property(gobject_class, stats_id, stats_param_spec());
  settings_install_properties(gobject_class, first_shared_id);
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  const auto api = static_cast<GstPluginAPIFlags>(0);
  gst_type_mark_as_plugin_api(GST_TYPE_QWEN_ASR_REGION, api);
  gst_type_mark_as_plugin_api(GST_TYPE_QWEN_ASR_TURN_DETECTION, api);
  gst_type_mark_as_plugin_api(GST_TYPE_QWEN_ASR_AUDIO_FORMAT, api);
}

bool transcribe_element_start(Transcriber &transcriber, const Settings &settings) {
  if (transcriber.start(settings))
    return true;
  transcriber.stop();
  return false;
}

bool transcribe_element_take_commit(Transcriber &transcriber, GstEvent *event,
                                    const Transcriber::PauseHandler &on_pause) {
  if (GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_DOWNSTREAM || !is_commit_event(event))
    return false;
  transcriber.commit(on_pause);
  gst_event_unref(event);
  return true;
}

gboolean transcribe_element_send_event(GstElement *element, GstPad *sinkpad, GstEvent *event,
                                       GstElementClass *parent_class) {
  if (is_commit_event(event))
    return gst_pad_send_event(sinkpad, event);
  return parent_class->send_event(element, event);
}

} // namespace qwenasr
