/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Ogg-Opus writer (element side) against the local service's Ogg-Opus decoder and against
 * GStreamer's own oggdemux ! opusdec: headers, sample-exact timing, flushing, splitting, and
 * the rejection of malformed streams. */
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <ogg/ogg.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "audioinput.h"
#include "oggopus.h"

using qwenasr::OggOpusWriter;
using qwenasr::local::make_ogg_opus_input;

namespace {

constexpr guint32 kSerial = 0x5eed1234;

/* Silence, a 200 Hz -> 3 kHz chirp (a unique cross-correlation peak), silence. */
std::vector<gint16> chirp_signal(int rate, int silence_ms, int chirp_ms) {
  std::vector<gint16> samples(static_cast<gsize>(rate) * (2 * silence_ms + chirp_ms) / 1000, 0);
  gsize start = static_cast<gsize>(rate) * silence_ms / 1000;
  gsize n = static_cast<gsize>(rate) * chirp_ms / 1000;
  double duration = chirp_ms / 1000.0;
  for (gsize i = 0; i < n; i++) {
    double t = static_cast<double>(i) / rate;
    double phase = 2 * G_PI * (200 * t + (3000 - 200) * t * t / (2 * duration));
    samples[start + i] = static_cast<gint16>(12000 * std::sin(phase));
  }
  return samples;
}

std::unique_ptr<OggOpusWriter> new_writer(int rate, guint32 serial = kSerial) {
  std::string problem;
  auto writer = OggOpusWriter::create(rate, OggOpusWriter::kDefaultBitrate, serial, &problem);
  fail_unless(writer != nullptr, "writer: %s", problem.c_str());
  return writer;
}

/* The whole stream for `samples`, written in uneven chunks, then finished. */
std::string encode_stream(int rate, const std::vector<gint16> &samples, guint32 serial = kSerial) {
  auto writer = new_writer(rate, serial);
  std::string stream = writer->header_pages();
  gsize chunk = 1234;
  for (gsize i = 0; i < samples.size(); i += chunk)
    stream += writer->write(samples.data() + i, MIN(chunk, samples.size() - i));
  stream += writer->finish();
  return stream;
}

/* Decodes with the local service's input; fails the test on an error. */
std::vector<gint16> decode_stream(int rate, const std::string &stream) {
  auto input = make_ogg_opus_input(rate);
  std::vector<gint16> out;
  std::string error;
  fail_unless(
      input->decode(reinterpret_cast<const guint8 *>(stream.data()), stream.size(), out, error),
      "decode: %s", error.c_str());
  return out;
}

/* The lag (decoded relative to original) that best matches them, within ±max_lag. */
int best_lag(const std::vector<gint16> &original, const std::vector<gint16> &decoded, int max_lag) {
  double best = -1;
  int best_lag = 0;
  for (int lag = -max_lag; lag <= max_lag; lag++) {
    double sum = 0;
    for (gsize i = 0; i < original.size(); i++) {
      gint64 j = static_cast<gint64>(i) + lag;
      if (j >= 0 && j < static_cast<gint64>(decoded.size()))
        sum += static_cast<double>(original[i]) * decoded[j];
    }
    if (sum > best) {
      best = sum;
      best_lag = lag;
    }
  }
  return best_lag;
}

/* Splits an Ogg byte stream into its pages. */
std::vector<std::string> pages_of(const std::string &stream) {
  ogg_sync_state sync;
  ogg_sync_init(&sync);
  char *buffer = ogg_sync_buffer(&sync, static_cast<long>(stream.size()));
  memcpy(buffer, stream.data(), stream.size());
  ogg_sync_wrote(&sync, static_cast<long>(stream.size()));
  std::vector<std::string> pages;
  ogg_page page;
  while (ogg_sync_pageout(&sync, &page) == 1)
    pages.push_back(std::string(reinterpret_cast<char *>(page.header), page.header_len) +
                    std::string(reinterpret_cast<char *>(page.body), page.body_len));
  ogg_sync_clear(&sync);
  return pages;
}

/* Rewrites one byte of a page's body and gives it a valid CRC again. */
std::string patch_page(const std::string &page, gsize body_offset, char value) {
  std::string patched = page;
  ogg_page og;
  og.header = reinterpret_cast<unsigned char *>(&patched[0]);
  og.header_len = 27 + static_cast<unsigned char>(patched[26]);
  og.body = og.header + og.header_len;
  og.body_len = static_cast<long>(patched.size()) - og.header_len;
  og.body[body_offset] = static_cast<unsigned char>(value);
  ogg_page_checksum_set(&og);
  return patched;
}

void check_rejected(const std::string &stream, const char *expected_problem) {
  auto input = make_ogg_opus_input(16000);
  std::vector<gint16> out;
  std::string error;
  fail_if(input->decode(reinterpret_cast<const guint8 *>(stream.data()), stream.size(), out, error),
          "accepted a stream with %s", expected_problem);
  fail_unless(error.find(expected_problem) != std::string::npos, "error '%s' lacks '%s'",
              error.c_str(), expected_problem);
  /* The stream stays broken: a valid continuation does not revive it. */
  std::string valid = encode_stream(16000, chirp_signal(16000, 10, 50));
  fail_if(input->decode(reinterpret_cast<const guint8 *>(valid.data()), valid.size(), out, error),
          "a broken stream accepted more data");
}

} // namespace

GST_START_TEST(test_header_pages_describe_a_mono_stream_with_the_encoders_preskip) {
  auto writer = new_writer(16000);
  auto pages = pages_of(writer->header_pages());
  fail_unless_equals_int(pages.size(), 2);
  const std::string &head = pages[0];
  fail_unless(head.compare(0, 4, "OggS") == 0, "capture pattern");
  fail_unless_equals_int(head[5], 0x02); /* beginning of stream */
  guint32 serial = GST_READ_UINT32_LE(head.data() + 14);
  fail_unless_equals_uint64(serial, kSerial);
  const char *packet = head.data() + 27 + static_cast<unsigned char>(head[26]);
  fail_unless(memcmp(packet, "OpusHead", 8) == 0, "OpusHead");
  fail_unless_equals_int(packet[9], 1); /* channels */
  fail_unless(writer->lookahead() > 0, "libopus reports no look-ahead");
  fail_unless_equals_int(GST_READ_UINT16_LE(packet + 10), writer->lookahead() * 3);
  fail_unless_equals_int(GST_READ_UINT32_LE(packet + 12), 16000);
  const std::string &tags = pages[1];
  fail_unless(memcmp(tags.data() + 27 + static_cast<unsigned char>(tags[26]), "OpusTags", 8) == 0,
              "OpusTags");
  fail_unless_equals_int(writer->frame_samples(), 320);
}
GST_END_TEST;

static void check_sample_exact(int rate) {
  std::vector<gint16> original = chirp_signal(rate, 300, 700);
  std::vector<gint16> decoded = decode_stream(rate, encode_stream(rate, original));
  /* Pre-skip dropped at the start and the padding trimmed at the end: same length... */
  fail_unless_equals_int(decoded.size(), original.size());
  /* ...and the same timeline: the chirp comes back where it was, to the sample. */
  fail_unless_equals_int(best_lag(original, decoded, rate / 50), 0);
}

GST_START_TEST(test_decoded_audio_is_sample_exact_with_the_input_16k) {
  check_sample_exact(16000);
}
GST_END_TEST;

GST_START_TEST(test_decoded_audio_is_sample_exact_with_the_input_8k) {
  check_sample_exact(8000);
}
GST_END_TEST;

GST_START_TEST(test_flush_padding_pushes_out_every_sample_written) {
  auto writer = new_writer(16000);
  std::vector<gint16> original = chirp_signal(16000, 100, 333); /* not whole frames */
  std::string stream = writer->header_pages();
  stream += writer->write(original.data(), original.size());
  gsize padding = writer->flush_padding();
  fail_unless(padding >= static_cast<gsize>(writer->lookahead()), "padding below look-ahead");
  fail_unless(padding < static_cast<gsize>(writer->frame_samples() + writer->lookahead()),
              "more padding than needed: %" G_GSIZE_FORMAT, padding);
  std::vector<gint16> silence(padding, 0);
  stream += writer->write(silence.data(), silence.size(), true);
  fail_unless_equals_int(writer->flush_padding(), 0);
  fail_unless_equals_int((original.size() + padding) % writer->frame_samples(), 0);
  /* Without finish(): what a service has decoded when a commit follows. */
  std::vector<gint16> decoded = decode_stream(16000, stream);
  fail_unless(decoded.size() >= original.size(), "only %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT,
              decoded.size(), original.size());
  gsize flushed = decoded.size();
  decoded.resize(original.size());
  fail_unless_equals_int(best_lag(original, decoded, 320), 0);
  /* Finishing a flushed stream adds nothing the decoder keeps: exactly what was written. */
  std::string end = writer->finish();
  fail_unless(!end.empty(), "no end-of-stream page");
  fail_unless_equals_int(decode_stream(16000, stream + end).size(), original.size() + padding);
  fail_unless(flushed <= original.size() + padding);
}
GST_END_TEST;

GST_START_TEST(test_pages_split_across_appends_decode_the_same) {
  std::string stream = encode_stream(16000, chirp_signal(16000, 50, 400));
  std::vector<gint16> whole = decode_stream(16000, stream);
  auto input = make_ogg_opus_input(16000);
  std::vector<gint16> pieces;
  std::string error;
  gsize step = 1;
  for (gsize i = 0; i < stream.size(); i += step, step = step % 97 + 7) {
    gsize n = MIN(step, stream.size() - i);
    fail_unless(
        input->decode(reinterpret_cast<const guint8 *>(stream.data() + i), n, pieces, error),
        "decode: %s", error.c_str());
  }
  fail_unless(pieces == whole, "split appends decoded differently");
  fail_unless_equals_int(input->pending_bytes(), 0);
  fail_unless_equals_uint64(*input->stream_serial(), kSerial);
}
GST_END_TEST;

GST_START_TEST(test_malformed_ogg_is_rejected) {
  std::string valid = encode_stream(16000, chirp_signal(16000, 50, 300));
  auto pages = pages_of(valid);
  fail_unless(pages.size() >= 4, "too few pages");

  check_rejected("this is not an Ogg stream at all, just text", "not an Ogg page");
  std::string bad_crc = valid;
  bad_crc[pages[0].size() + pages[1].size() + 40] ^= 0x55; /* inside the first audio page */
  check_rejected(bad_crc, "not an Ogg page");
  check_rejected(pages[0] + pages[1] + pages[3], "pages missing");
  check_rejected(pages[1] + pages[0], "does not begin a stream");
  check_rejected(patch_page(pages[0], 9, 2) + pages[1], "only mono");
  check_rejected(patch_page(pages[0], 0, 'X') + pages[1], "not OpusHead");
  check_rejected(pages[0] + patch_page(pages[1], 0, 'X'), "not OpusTags");
  check_rejected(pages[0] + pages[1] + pages_of(encode_stream(16000, {}, kSerial + 1))[0],
                 "a second logical stream");
}
GST_END_TEST;

GST_START_TEST(test_gstreamer_oggdemux_and_opusdec_read_our_stream) {
  /* An independent reader: GStreamer's Ogg demuxer and Opus decoder. */
  std::vector<gint16> original = chirp_signal(16000, 200, 600);
  std::string stream = encode_stream(16000, original);
  gchar *path = nullptr;
  gint fd = g_file_open_tmp("qwenasr-oggopus-XXXXXX.opus", &path, nullptr);
  fail_unless(fd >= 0);
  close(fd);
  fail_unless(
      g_file_set_contents(path, stream.data(), static_cast<gssize>(stream.size()), nullptr));
  gchar *description = g_strdup_printf(
      "filesrc location=%s ! oggdemux ! opusdec ! audioconvert ! "
      "audio/x-raw,format=S16LE,rate=16000,channels=1 ! appsink name=out sync=false",
      path);
  GstElement *pipeline = gst_parse_launch(description, nullptr);
  fail_unless(pipeline != nullptr);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  fail_unless_equals_int(gst_element_set_state(pipeline, GST_STATE_PLAYING),
                         GST_STATE_CHANGE_ASYNC);
  std::vector<gint16> decoded;
  while (GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstMapInfo map;
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    gst_buffer_map(buffer, &map, GST_MAP_READ);
    const gint16 *s = reinterpret_cast<const gint16 *>(map.data);
    decoded.insert(decoded.end(), s, s + map.size / 2);
    gst_buffer_unmap(buffer, &map);
    gst_sample_unref(sample);
  }
  fail_unless(gst_app_sink_is_eos(GST_APP_SINK(sink)), "no EOS: the stream did not parse");
  /* It reads our granule positions the same way: pre-skip dropped, padding trimmed. */
  fail_unless_equals_int(decoded.size(), original.size());
  fail_unless_equals_int(best_lag(original, decoded, 320), 0);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_free(description);
  g_unlink(path);
  g_free(path);
}
GST_END_TEST;

static Suite *oggopus_suite(void) {
  Suite *s = suite_create("oggopus");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_header_pages_describe_a_mono_stream_with_the_encoders_preskip);
  tcase_add_test(tc, test_decoded_audio_is_sample_exact_with_the_input_16k);
  tcase_add_test(tc, test_decoded_audio_is_sample_exact_with_the_input_8k);
  tcase_add_test(tc, test_flush_padding_pushes_out_every_sample_written);
  tcase_add_test(tc, test_pages_split_across_appends_decode_the_same);
  tcase_add_test(tc, test_malformed_ogg_is_rejected);
  tcase_add_test(tc, test_gstreamer_oggdemux_and_opusdec_read_our_stream);
  return s;
}

GST_CHECK_MAIN(oggopus);
