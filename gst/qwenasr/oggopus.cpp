/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ogg framing comes from Debian's libogg rather than our own code: page lacing, continued
 * packets and the page CRC are easy to get subtly wrong, libogg is what every Ogg tool
 * (opusenc, GStreamer's oggmux) is built on, and it is a 20 KiB library. */
#include "oggopus.h"

#include <ogg/ogg.h>
#include <opus.h>

#include <cstring>

namespace qwenasr {

namespace {

constexpr int kGranuleRate = 48000; /* Ogg-Opus granule positions count 48 kHz samples */
constexpr int kMaxPacketBytes = 1500;

void put_le16(std::string *out, guint16 v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void put_le32(std::string *out, guint32 v) {
  for (int i = 0; i < 4; i++)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

} // namespace

struct OggOpusWriter::Codec {
  OpusEncoder *encoder = nullptr;
  ogg_stream_state stream;
  bool stream_ready = false;
  ogg_int64_t packet_number = 0;
  int granule_scale = 3; /* 48 kHz granules per session sample */
  ogg_int64_t pre_skip = 0;

  ~Codec() {
    if (encoder)
      opus_encoder_destroy(encoder);
    if (stream_ready)
      ogg_stream_clear(&stream);
  }

  void add_packet(const unsigned char *data, long size, ogg_int64_t granule, bool bos, bool eos) {
    ogg_packet packet{};
    packet.packet = const_cast<unsigned char *>(data);
    packet.bytes = size;
    packet.b_o_s = bos;
    packet.e_o_s = eos;
    packet.granulepos = granule;
    packet.packetno = packet_number++;
    ogg_stream_packetin(&stream, &packet);
  }

  /* Everything added so far, as whole pages (normally one). */
  std::string flush_pages() {
    std::string out;
    ogg_page page;
    while (ogg_stream_flush(&stream, &page) != 0) {
      out.append(reinterpret_cast<const char *>(page.header), page.header_len);
      out.append(reinterpret_cast<const char *>(page.body), page.body_len);
    }
    return out;
  }
};

std::unique_ptr<OggOpusWriter> OggOpusWriter::create(int sample_rate, int bitrate, guint32 serial,
                                                     std::string *problem) {
  if (sample_rate != 8000 && sample_rate != 16000) {
    *problem = "Opus input needs 8000 or 16000 Hz, not " + std::to_string(sample_rate);
    return nullptr;
  }
  std::unique_ptr<OggOpusWriter> writer(new OggOpusWriter());
  writer->codec_ = std::make_unique<Codec>();
  Codec &codec = *writer->codec_;
  int status = OPUS_OK;
  /* VOIP: the encoder favours intelligibility of speech over fidelity. */
  codec.encoder = opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, &status);
  if (status != OPUS_OK || !codec.encoder) {
    *problem = std::string("cannot create the Opus encoder: ") + opus_strerror(status);
    return nullptr;
  }
  status = opus_encoder_ctl(codec.encoder, OPUS_SET_BITRATE(bitrate));
  if (status == OPUS_OK)
    status = opus_encoder_ctl(codec.encoder, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  opus_int32 lookahead = 0;
  if (status == OPUS_OK)
    status = opus_encoder_ctl(codec.encoder, OPUS_GET_LOOKAHEAD(&lookahead));
  if (status != OPUS_OK) {
    *problem = std::string("the Opus encoder refused its settings: ") + opus_strerror(status);
    return nullptr;
  }
  ogg_stream_init(&codec.stream, static_cast<int>(serial));
  codec.stream_ready = true;
  codec.granule_scale = kGranuleRate / sample_rate;
  codec.pre_skip = static_cast<ogg_int64_t>(lookahead) * codec.granule_scale;
  writer->rate_ = sample_rate;
  writer->frame_samples_ = sample_rate * kFrameMs / 1000;
  writer->lookahead_ = lookahead;
  return writer;
}

OggOpusWriter::~OggOpusWriter() = default;

std::string OggOpusWriter::header_pages() {
  /* RFC 7845 §5.1: OpusHead, version 1, mono, mapping family 0. */
  std::string head = "OpusHead";
  head.push_back(1);
  head.push_back(1);
  put_le16(&head, static_cast<guint16>(codec_->pre_skip));
  put_le32(&head, static_cast<guint32>(rate_));
  put_le16(&head, 0); /* output gain */
  head.push_back(0);  /* channel mapping family */
  codec_->add_packet(reinterpret_cast<const unsigned char *>(head.data()),
                     static_cast<long>(head.size()), 0, true, false);
  std::string pages = codec_->flush_pages(); /* OpusHead alone on the first page (RFC 7845 §3) */

  std::string tags = "OpusTags";
  const char *vendor = opus_get_version_string();
  put_le32(&tags, static_cast<guint32>(strlen(vendor)));
  tags += vendor;
  put_le32(&tags, 0); /* no user comments */
  codec_->add_packet(reinterpret_cast<const unsigned char *>(tags.data()),
                     static_cast<long>(tags.size()), 0, false, false);
  pages += codec_->flush_pages(); /* audio starts on a fresh page */
  return pages;
}

/* Granule positions count every sample the decoder outputs, the pre-skip included (RFC 7845
 * §4): after k frames, k * frame. Only the end-of-stream page says less, to trim. */
std::string OggOpusWriter::encode_frames(bool end_of_stream, gint64 end_granule) {
  const gsize frames = pending_.size() / frame_samples_;
  unsigned char packet[kMaxPacketBytes];
  for (gsize i = 0; i < frames; i++) {
    opus_int32 size = opus_encode(codec_->encoder, pending_.data() + i * frame_samples_,
                                  frame_samples_, packet, sizeof packet);
    if (size < 0)
      size = 0; /* cannot happen with a valid frame size; an empty packet is a lost frame */
    samples_encoded_ += frame_samples_;
    bool last = end_of_stream && i + 1 == frames;
    ogg_int64_t granule = static_cast<ogg_int64_t>(samples_encoded_) * codec_->granule_scale;
    codec_->add_packet(packet, size, last ? end_granule : granule, false, last);
  }
  pending_.erase(0, frames * frame_samples_);
  return frames > 0 ? codec_->flush_pages() : std::string();
}

std::string OggOpusWriter::write(const gint16 *samples, gsize n_samples, bool is_padding) {
  if (finished_)
    return {};
  pending_.append(samples, n_samples);
  samples_written_ += n_samples;
  since_padding_ = is_padding ? 0 : since_padding_ + n_samples;
  return encode_frames(false, 0);
}

gsize OggOpusWriter::flush_padding() const {
  if (since_padding_ == 0)
    return 0;
  /* Enough to complete the current frame and cover the look-ahead, ending on a boundary. */
  gsize with_lookahead = pending_.size() + lookahead_;
  return (frame_samples_ - with_lookahead % frame_samples_) % frame_samples_ + lookahead_;
}

std::string OggOpusWriter::finish() {
  if (finished_)
    return {};
  finished_ = true;
  /* The end-of-stream flag needs a packet to ride on: a stream already flushed gets a frame of
   * silence, trimmed off again like any padding. */
  gsize padding = flush_padding();
  pending_.append(padding > 0 ? padding : frame_samples_, 0);
  guint64 decoded = lookahead_ + samples_written_; /* the pre-skip, then what was written */
  return encode_frames(true, static_cast<gint64>(decoded) * codec_->granule_scale);
}

} // namespace qwenasr
