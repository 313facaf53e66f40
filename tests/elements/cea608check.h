/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Independent checks of captions embedded in H.264: Debian's ffmpeg decodes them into an SRT
 * of what a viewer's decoder shows, and flvdemux ! avdec_h264 ! ccextractor gives the byte
 * pairs back; shared by the pipeline and RTMP tests. */
#pragma once

#include <map>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

namespace cea608check {

std::string replace_all(std::string s, const std::string &from, const std::string &to);

/* A pipeline as the cookbook writes it (lines continued with " \\"), with `vars` substituted,
 * ready for gst_parse_launch. */
std::string substitute(std::string text, const std::map<std::string, std::string> &vars);

/* docs/cookbook.md shows "gst-launch-1.0 " + `pipeline` verbatim. */
void assert_cookbook_shows(const char *pipeline);

struct Cue {
  GstClockTime start, end;
  std::string text; /* lines joined by one space, markup and positioning removed */
};

/* What ffmpeg's closed caption decoder makes of the file, as SRT cues (also printed). */
std::vector<Cue> ffmpeg_cues(const std::string &file);

/* Frame index at 30 fps of a PTS (FLV keeps milliseconds only). */
guint64 frame_index(GstClockTime pts);

/* The byte pairs carried by the video frames of an FLV file, by frame index, through
 * GStreamer's decoders (frames whose captions are padding only carry none). */
std::map<guint64, guint16> extracted_pairs(const std::string &flv);

/* Records in `sent` the pairs the encoder `name` of `pipeline` sends, by frame index. */
void watch_encoder(GstElement *pipeline, const char *name, std::map<guint64, guint16> *sent);

struct Sentence {
  std::string text;
  GstClockTime start, end; /* when it is spoken */
};

/* Each sentence is on screen (in the first cue that holds all of it) no earlier than 0.1 s
 * before it is spoken and no later than 2.5 s after it ends. Prints the delays. */
void assert_every_sentence_on_screen_in_time(const std::vector<Cue> &cues,
                                             const std::vector<Sentence> &sentences,
                                             const std::string &what);

/* The decoders give back exactly the pairs sent: every pair a frame carries is the one sent
 * for that frame, and every caption pair sent for the first `frames` frames is carried. */
void assert_pairs_survive(const std::map<guint64, guint16> &sent,
                          const std::map<guint64, guint16> &extracted, guint64 frames);

/* The same where frame timestamps jitter (a live stream relayed over RTMP): the caption pairs
 * carried are the ones sent, in the same order, none missing but at the edges (the opening
 * erase, and up to four pairs after the relayed video ended). */
void assert_caption_sequence_survives(const std::map<guint64, guint16> &sent,
                                      const std::map<guint64, guint16> &extracted);

} // namespace cea608check
