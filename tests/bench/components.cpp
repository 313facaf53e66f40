/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qwenasr-bench-components: what each step of the element's send and receive path costs per
 * audio hour, measured on the real code outside the element (the protocol encoder and decoder
 * of gst/qwenasr, its WebSocket framing, and writing the frames to /dev/null), to explain the
 * cpu_per_audio_hour figure. CPU seconds (getrusage) per audio hour of 16 kHz PCM: 36000
 * appends of 3200 bytes and the server events one hour of the benchmark's audio brings. */
#include <cstdio>

#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

#include "asrprotocol.h"
#include "oggopus.h"
#include "wsframe.h"
#include "benchutil.h"

using namespace bench;

namespace {
/* CPU seconds of the calling thread only (the drain thread is not the client's cost). */
double thread_cpu() {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}
} // namespace

int main(int argc, char **argv) {
  Args args(argc, argv, 1);
  const int appends = 36000; /* one hour at 100 ms per append */
  const int events = 16800;  /* per hour in the cpu benchmark: 1200 utterances x 14 events */
  std::vector<gint16> pcm = speech_cycle(16000, 1500, 3000);
  const auto *bytes = reinterpret_cast<const guint8 *>(pcm.data());
  const size_t cycle_chunks = pcm.size() * 2 / 3200;
  Json out;

  /* 1. encode_append: base64 + JSON envelope, one std::string per append */
  std::vector<std::string> texts;
  double t0 = thread_cpu();
  size_t total = 0;
  for (int i = 0; i < appends; i++) {
    std::string t = qwenasr::encode_append(bytes + (i % cycle_chunks) * 3200, 3200,
                                           "event_0123456789abcdef0123000000000001");
    total += t.size();
    if (i < 600)
      texts.push_back(std::move(t));
  }
  double encode_s = thread_cpu() - t0;

  /* 2. WebSocket framing: ws::encode_frame (header, mask) into a string, as the client does
   * for every append before the one write() */
  t0 = thread_cpu();
  size_t framed = 0;
  for (int i = 0; i < appends; i++) {
    const std::string &t = texts[i % texts.size()];
    std::string frame;
    frame.reserve(t.size() + 14);
    qwenasr::ws::encode_frame(qwenasr::ws::Opcode::Text, t.data(), t.size(), 0x37fa213d + i,
                              &frame);
    framed += frame.size();
  }
  double frame_s = thread_cpu() - t0;

  /* 3. the same bytes through write() alone (what the frames cost the kernel here) */
  int fd2 = open("/dev/null", O_WRONLY);
  t0 = thread_cpu();
  for (int i = 0; i < appends; i++) {
    const std::string &t = texts[i % texts.size()];
    if (write(fd2, t.data(), t.size()) < 0)
      break;
  }
  double write_s = thread_cpu() - t0;
  close(fd2);

  /* 4. decode_server_event on the events an hour brings (json-glib) */
  const char *samples[] = {
      "{\"event_id\":\"event_Ab3dE5fG7hI9jK1lM3nO5\",\"type\":\"conversation.item.input_audio_"
      "transcription.text\",\"item_id\":\"item_Q2w3E4r5T6y7U8i9O0p1A\",\"content_index\":0,"
      "\"language\":\"en\",\"emotion\":\"neutral\",\"text\":\"Hiloha mekato\",\"stash\":\"Ravu\"}",
      "{\"event_id\":\"event_Ab3dE5fG7hI9jK1lM3nO6\",\"type\":\"input_audio_buffer.speech_"
      "started\",\"audio_start_ms\":123000,\"item_id\":\"item_Q2w3E4r5T6y7U8i9O0p1A\"}",
      "{\"event_id\":\"event_Ab3dE5fG7hI9jK1lM3nO7\",\"type\":\"conversation.item.input_audio_"
      "transcription.completed\",\"item_id\":\"item_Q2w3E4r5T6y7U8i9O0p1A\",\"content_index\":0,"
      "\"language\":\"en\",\"emotion\":\"neutral\",\"transcript\":\"Hiloha mekato ravu.\"}",
  };
  t0 = thread_cpu();
  for (int i = 0; i < events; i++) {
    const char *s = samples[i % 3];
    qwenasr::ServerEvent event;
    std::string problem;
    qwenasr::decode_server_event(s, -1, &event, &problem);
  }
  double decode_s = thread_cpu() - t0;

  /* 5. Ogg-Opus encoding (audio-format=opus): OggOpusWriter over one hour in 100 ms writes,
   * at the default and at 16 kbit/s, then the JSON envelope of the much smaller appends. */
  double opus_s[2];
  size_t opus_bytes[2];
  const int bitrates[2] = {qwenasr::OggOpusWriter::kDefaultBitrate, 16000};
  for (int b = 0; b < 2; b++) {
    std::string problem;
    auto writer = qwenasr::OggOpusWriter::create(16000, bitrates[b], 1, &problem);
    if (!writer) {
      g_printerr("%s\n", problem.c_str());
      return 1;
    }
    opus_bytes[b] = 0;
    t0 = thread_cpu();
    for (int i = 0; i < appends; i++) {
      std::string page = writer->write(pcm.data() + (i % cycle_chunks) * 1600, 1600);
      opus_bytes[b] += page.size();
    }
    opus_s[b] = thread_cpu() - t0;
  }

  result_line("components_per_audio_hour_opus: Ogg-Opus encoding (libopus VOIP, complexity 10, "
              "20 ms frames, one page per 100 ms) %.3f s at %d kbit/s (%.2f MB), %.3f s at "
              "16 kbit/s (%.2f MB), against encode_append of PCM %.3f s",
              opus_s[0], bitrates[0] / 1000, opus_bytes[0] / 1e6, opus_s[1], opus_bytes[1] / 1e6,
              encode_s);
  result_line("components_per_audio_hour: encode_append (GLib base64 + JSON) %.3f s; "
              "ws::encode_frame (header + mask, %.1f MB) %.3f s; write() of the same bytes to "
              "/dev/null alone %.3f s; decode_server_event (json-glib, %d events) %.3f s; %.1f "
              "MB of append text",
              encode_s, framed / 1e6, frame_s, write_s, events, decode_s, total / 1e6);
  out.num("encode_append_s", encode_s)
      .num("encode_frame_s", frame_s)
      .num("write_dev_null_s", write_s)
      .num("decode_server_event_s", decode_s)
      .num("opus_encode_s", opus_s[0])
      .num("opus_encode_16kbit_s", opus_s[1])
      .num("opus_mb", opus_bytes[0] / 1e6)
      .integer("events", events)
      .num("append_text_mb", total / 1e6)
      .raw("machine", machine_info().text());
  return args.has("json") && !write_json(args.get("json"), out) ? 1 : 0;
}
