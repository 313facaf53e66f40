/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Independent checks of captions embedded in H.264, shared by the pipeline and RTMP tests. */
/* Standard headers first: libcheck's fail() macro breaks some of them. */
#include <algorithm>
#include <cstdio>
#include <regex>

#include "cea608check.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <unistd.h>

namespace cea608check {

using testutil::temp_path;

std::string replace_all(std::string s, const std::string &from, const std::string &to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

/* What ffmpeg's closed caption decoder made of the file, as SRT cues. */
std::vector<Cue> ffmpeg_cues(const std::string &file) {
  std::string srt = temp_path(".srt");
  std::string graph = "movie=" + file + "[out0+subcc]";
  const gchar *argv[] = {"ffmpeg", "-nostdin",  "-loglevel", "error",       "-y",
                         "-f",     "lavfi",     "-i",        graph.c_str(), "-map",
                         "0:s",    srt.c_str(), nullptr};
  gint status = 0;
  gchar *err = nullptr;
  GError *error = nullptr;
  fail_unless(g_spawn_sync(nullptr, const_cast<gchar **>(argv), nullptr, G_SPAWN_SEARCH_PATH,
                           nullptr, nullptr, nullptr, &err, &status, &error),
              "cannot run ffmpeg (scripts/install-deps.sh installs it): %s",
              error ? error->message : "");
  fail_unless(g_spawn_check_wait_status(status, nullptr), "ffmpeg failed: %s", err);
  g_free(err);
  gchar *contents = nullptr;
  fail_unless(g_file_get_contents(srt.c_str(), &contents, nullptr, nullptr), "no SRT");
  std::string text(contents);
  g_free(contents);
  g_unlink(srt.c_str());
  std::printf("ffmpeg-decoded SRT of %s:\n%s\n", file.c_str(), text.c_str());
  std::fflush(stdout);

  std::regex timing(R"((\d+):(\d\d):(\d\d),(\d\d\d) --> (\d+):(\d\d):(\d\d),(\d\d\d)\n)");
  auto to_time = [](const std::smatch &m, int i) {
    return (std::stoull(m[i]) * 3600 + std::stoull(m[i + 1]) * 60 + std::stoull(m[i + 2])) *
               GST_SECOND +
           std::stoull(m[i + 3]) * GST_MSECOND;
  };
  std::vector<Cue> cues;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), timing);
       it != std::sregex_iterator(); ++it) {
    size_t body = it->position(0) + it->length(0);
    size_t stop = text.find("\n\n", body);
    std::string raw =
        text.substr(body, stop == std::string::npos ? std::string::npos : stop - body);
    /* Tags (<font>, {\an7}), hard spaces, line breaks and typographic apostrophes go. */
    raw = std::regex_replace(raw, std::regex(R"(<[^>]*>|\{[^}]*\})"), "");
    for (const char *space : {"\\h", "\xC2\xA0", "\r", "\n"})
      raw = replace_all(raw, space, " ");
    raw = replace_all(raw, "\xE2\x80\x99", "'");
    raw = std::regex_replace(raw, std::regex(" +"), " ");
    raw = std::regex_replace(raw, std::regex("^ | $"), "");
    cues.push_back({to_time(*it, 1), to_time(*it, 5), raw});
  }
  return cues;
}

/* Frame index at 30 fps of a PTS (FLV keeps milliseconds only). */
guint64 frame_index(GstClockTime pts) {
  return gst_util_uint64_scale_round(pts, 30, GST_SECOND);
}

/* The byte pairs carried by the video frames of an FLV file, by frame index, through
 * GStreamer's decoders (frames whose captions are padding only carry none). */
std::map<guint64, guint16> extracted_pairs(const std::string &flv) {
  std::string description =
      "filesrc location=" + flv +
      " ! flvdemux name=d d.video ! queue ! h264parse ! avdec_h264 ! ccextractor name=x "
      "x.src ! fakesink sync=false async=false x.caption ! queue ! ccconverter ! "
      "closedcaption/x-cea-608,format=raw ! appsink name=out sync=false async=false";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(description.c_str(), &error);
  fail_unless(pipeline && !error, "%s", error ? error->message : "");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::map<guint64, guint16> pairs;
  for (;;) {
    GstSample *sample = nullptr;
    g_signal_emit_by_name(sink, "try-pull-sample", 20 * GST_SECOND, &sample);
    if (!sample)
      break;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    guint8 data[2];
    if (gst_buffer_extract(buffer, 0, data, 2) == 2)
      pairs[frame_index(GST_BUFFER_PTS(buffer))] = static_cast<guint16>(data[0] << 8 | data[1]);
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return pairs;
}

static GstPadProbeReturn record_pair(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto pairs = static_cast<std::map<guint64, guint16> *>(data);
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  guint8 bytes[2];
  if (gst_buffer_extract(buffer, 0, bytes, 2) == 2)
    (*pairs)[frame_index(GST_BUFFER_PTS(buffer))] = static_cast<guint16>(bytes[0] << 8 | bytes[1]);
  return GST_PAD_PROBE_OK;
}

/* Records in `sent` the pairs the encoder `name` of `pipeline` sends, by frame index. */
void watch_encoder(GstElement *pipeline, const char *name, std::map<guint64, guint16> *sent) {
  GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline), name);
  GstPad *src = gst_element_get_static_pad(enc, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, record_pair, sent, nullptr);
  gst_object_unref(src);
  gst_object_unref(enc);
}

/* Each sentence is on screen (in the first cue that holds all of it) no earlier than 0.1 s
 * before it is spoken and no later than 2.5 s after it ends. Prints the delays. */
void assert_every_sentence_on_screen_in_time(const std::vector<Cue> &cues,
                                             const std::vector<Sentence> &sentences,
                                             const std::string &what) {
  for (const Sentence &s : sentences) {
    const Cue *cue = nullptr;
    for (const Cue &c : cues) {
      if (c.text.find(s.text) != std::string::npos) {
        cue = &c;
        break;
      }
    }
    fail_unless(cue != nullptr, "%s: \"%s\" is in no cue", what.c_str(), s.text.c_str());
    gint64 delay_ms = (static_cast<gint64>(cue->start) - static_cast<gint64>(s.start)) / 1000000;
    std::printf("%s: \"%s\" spoken %.3f-%.3f s, on screen at %.3f s (%+" G_GINT64_FORMAT
                " ms after its start)\n",
                what.c_str(), s.text.c_str(), s.start / 1e9, s.end / 1e9, cue->start / 1e9,
                delay_ms);
    fail_unless(cue->start + 100 * GST_MSECOND >= s.start, "%s: \"%s\" shows too early",
                what.c_str(), s.text.c_str());
    fail_unless(cue->start <= s.end + 2500 * GST_MSECOND, "%s: \"%s\" shows too late", what.c_str(),
                s.text.c_str());
  }
  std::fflush(stdout);
}

/* The decoders give back exactly the pairs sent: every pair a frame carries is the one sent
 * for that frame, and every caption pair sent while the video ran is carried. */
void assert_pairs_survive(const std::map<guint64, guint16> &sent,
                          const std::map<guint64, guint16> &extracted, guint64 frames) {
  fail_unless(extracted.size() > 20, "only %zu pairs extracted", extracted.size());
  /* A stream relayed over RTMP may start its timestamps elsewhere: the first caption pair
   * sent and the first carried are the same frame. */
  auto first_caption = [](const std::map<guint64, guint16> &pairs) {
    for (const auto &[frame, pair] : pairs) {
      if (pair != 0x8080)
        return static_cast<gint64>(frame);
    }
    return static_cast<gint64>(-1);
  };
  gint64 shift = first_caption(sent) - first_caption(extracted);
  for (const auto &[frame, pair] : extracted) {
    auto it = sent.find(frame + shift);
    fail_unless(it != sent.end(), "frame %" G_GUINT64_FORMAT " carries a pair never sent", frame);
    fail_unless(it->second == pair, "frame %" G_GUINT64_FORMAT ": sent %04x, got back %04x", frame,
                it->second, pair);
  }
  guint captions = 0;
  for (const auto &[frame, pair] : sent) {
    gint64 carried_at = static_cast<gint64>(frame) - shift;
    if (carried_at < 0 || carried_at >= static_cast<gint64>(frames) || pair == 0x8080)
      continue;
    captions++;
    fail_unless(extracted.count(carried_at), "frame %" G_GINT64_FORMAT ": %04x sent, not carried",
                carried_at, pair);
  }
  std::printf("%u caption pairs sent, all carried back exactly (%zu frames with caption data; "
              "timestamps shifted by %" G_GINT64_FORMAT " frames)\n",
              captions, extracted.size(), shift);
  std::fflush(stdout);
}

std::string substitute(std::string text, const std::map<std::string, std::string> &vars) {
  for (const auto &[name, value] : vars)
    text = replace_all(text, name, value);
  return replace_all(text, "\\\n", " ");
}

void assert_cookbook_shows(const char *pipeline) {
  /* This file is in tests/elements: the cookbook is ../../docs/cookbook.md from here. */
  gchar *dir = g_path_get_dirname(__FILE__);
  gchar *path = g_build_filename(dir, "..", "..", "docs", "cookbook.md", nullptr);
  gchar *contents = nullptr;
  fail_unless(g_file_get_contents(path, &contents, nullptr, nullptr), "cannot read %s", path);
  std::string shown = std::string("gst-launch-1.0 ") + pipeline;
  fail_unless(std::string(contents).find(shown) != std::string::npos,
              "docs/cookbook.md lacks the pipeline the suite runs:\n%s", shown.c_str());
  g_free(contents);
  g_free(path);
  g_free(dir);
}

void assert_caption_sequence_survives(const std::map<guint64, guint16> &sent,
                                      const std::map<guint64, guint16> &extracted) {
  std::vector<guint16> s, e;
  for (const auto &entry : sent) {
    if (entry.second != 0x8080)
      s.push_back(entry.second);
  }
  for (const auto &entry : extracted) {
    if (entry.second != 0x8080)
      e.push_back(entry.second);
  }
  fail_unless(e.size() > 20, "only %zu caption pairs carried", e.size());
  /* Everything but the opening erase, if the video starts after it, and the last pairs, if the
   * relayed video ends before them: at most two at the start and four at the end. */
  gsize skip = 0;
  while (skip < 2 && skip < s.size() && !e.empty() &&
         !std::equal(e.begin(), e.begin() + std::min(e.size(), s.size() - skip), s.begin() + skip))
    skip++;
  fail_unless(e.size() + skip <= s.size() && e.size() + skip + 4 >= s.size(),
              "%zu caption pairs sent, %zu carried (from the %zu-th)", s.size(), e.size(), skip);
  for (gsize i = skip + e.size(); i < s.size(); i++)
    std::printf("caption pair %zu (%04x) sent after the relayed video ended\n", i, s[i]);
  for (gsize i = 0; i < e.size(); i++)
    fail_unless(e[i] == s[skip + i], "caption pair %zu: sent %04x, got back %04x", skip + i,
                s[skip + i], e[i]);
  std::printf("%zu caption pairs sent, %zu carried back in order and unchanged\n", s.size(),
              e.size());
  std::fflush(stdout);
}

} // namespace cea608check
