/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CEA-608 at the byte level against the standard's code values, and the caption state
 * machine against a small independent decoder: what a viewer sees, frame by frame. */
#include <map>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

#include "cea608.h"
#include "cea608decoder.h"
#include "cea608encoder.h"

using namespace qwenasr::cea608;

static guint16 hex(const Pair &p) {
  return static_cast<guint16>(p.b1 << 8 | p.b2);
}

GST_START_TEST(test_every_byte_gets_odd_parity) {
  for (guint b = 0; b < 128; b++) {
    guint8 p = with_parity(b);
    fail_unless(parity_ok(p), "0x%02x -> 0x%02x has even parity", b, p);
    fail_unless_equals_int(p & 0x7F, b);
  }
  fail_unless_equals_int(with_parity(0x00), 0x80);
  fail_unless_equals_int(with_parity(0x14), 0x94);
  fail_unless_equals_int(with_parity(0x41), 0xC1);
  fail_unless_equals_int(with_parity(0x43), 0x43);
  fail_unless(!parity_ok(0x14), "0x14 has even parity");
}
GST_END_TEST;

GST_START_TEST(test_control_codes_have_the_standard_values) {
  /* The familiar hex of caption streams (CC1, field 1). */
  fail_unless_equals_int(hex(command(Command::kResumeCaptionLoading, false)), 0x9420);
  fail_unless_equals_int(hex(command(Command::kEraseNonDisplayedMemory, false)), 0x94AE);
  fail_unless_equals_int(hex(command(Command::kEndOfCaption, false)), 0x942F);
  fail_unless_equals_int(hex(command(Command::kEraseDisplayedMemory, false)), 0x942C);
  fail_unless_equals_int(hex(command(Command::kCarriageReturn, false)), 0x94AD);
  fail_unless_equals_int(hex(command(Command::kRollUp2, false)), 0x9425);
  fail_unless_equals_int(hex(command(Command::kRollUp3, false)), 0x9426);
  fail_unless_equals_int(hex(command(Command::kRollUp4, false)), 0x94A7);
  fail_unless_equals_int(hex(command(Command::kResumeDirectCaptioning, false)), 0x9429);
  fail_unless_equals_int(hex(command(Command::kBackspace, false)), 0x94A1);
  /* CC3 on field 2: first byte 0x15. */
  fail_unless_equals_int(hex(command(Command::kEraseDisplayedMemory, true)), 0x152C);
  fail_unless_equals_int(hex(command(Command::kEndOfCaption, true)), 0x152F);
  fail_unless_equals_int(hex(kPadding), 0x8080);
  fail_unless(is_control(command(Command::kEndOfCaption, false)), "EOC is a control code");
  fail_unless(!is_control(kPadding), "padding is not a control code");
}
GST_END_TEST;

GST_START_TEST(test_preamble_address_codes_place_rows_and_indents) {
  fail_unless_equals_int(hex(preamble(1, 0)), 0x9140);
  fail_unless_equals_int(hex(preamble(2, 0)), 0x91E0);
  fail_unless_equals_int(hex(preamble(11, 0)), 0x1040);
  fail_unless_equals_int(hex(preamble(14, 0)), 0x9440);
  fail_unless_equals_int(hex(preamble(15, 0)), 0x94E0);
  fail_unless_equals_int(hex(preamble(15, 4)), 0x94F2);
  fail_unless_equals_int(hex(preamble(15, 8)), 0x94F4);
  fail_unless_equals_int(hex(preamble(14, 28)), 0x945E);
  fail_unless_equals_int(hex(preamble(14, 6)), hex(preamble(14, 4))); /* indents are by 4 */
  fail_unless_equals_int(hex(tab_offset(2)), 0x97A2);
}
GST_END_TEST;

GST_START_TEST(test_basic_characters_pair_up_with_the_608_substitutions) {
  std::vector<Code> codes = encode_row("Año é");
  /* A, ñ (0x7E), o, space, é (0x5C) then a NUL to complete the last pair. */
  fail_unless_equals_int(codes.size(), 3);
  fail_unless_equals_int(hex(codes[0].pair), (with_parity('A') << 8) | with_parity(0x7E));
  fail_unless_equals_int(hex(codes[1].pair), (with_parity('o') << 8) | with_parity(' '));
  fail_unless_equals_int(hex(codes[2].pair), (with_parity(0x5C) << 8) | 0x80);
  for (const Code &c : codes)
    fail_if(c.control, "basic characters are not doubled");
  fail_unless(glyph_of('*').set == Set::kExtended, "* is not in the basic set");
  fail_unless(glyph_of(0x00E1).set == Set::kBasic && glyph_of(0x00E1).code == 0x2A, "á");
}
GST_END_TEST;

GST_START_TEST(test_special_characters_are_two_byte_codes) {
  std::vector<Code> codes = encode_row("♪ ½ ¿ ® à");
  std::vector<guint16> specials;
  for (const Code &c : codes) {
    if (c.control)
      specials.push_back(hex(c.pair));
  }
  /* 0x11 0x37 ♪, 0x32 ½, 0x33 ¿, 0x30 ®, 0x38 à (parity applied). */
  std::vector<guint16> expected = {0x9137, 0x9132, 0x91B3, 0x91B0, 0x9138};
  fail_unless(specials == expected, "special character codes differ");
}
GST_END_TEST;

GST_START_TEST(test_extended_characters_follow_their_basic_fallback) {
  std::vector<Code> codes = encode_row("É");
  fail_unless_equals_int(codes.size(), 2);
  fail_unless_equals_int(hex(codes[0].pair), (with_parity('E') << 8) | 0x80);
  fail_if(codes[0].control, "the fallback is a basic character");
  fail_unless_equals_int(hex(codes[1].pair), 0x92A1); /* 0x12 0x21 */
  fail_unless(codes[1].control, "extended characters are sent twice");
  /* German and Portuguese live behind 0x13. */
  fail_unless_equals_int(glyph_of(0x00DF).first, 0x13); /* ß */
  fail_unless_equals_int(glyph_of(0x00DF).code, 0x34);
  fail_unless_equals_int(glyph_of(0x00E3).first, 0x13); /* ã */
  fail_unless_equals_int(glyph_of(0x00E3).code, 0x21);
  fail_unless_equals_int(glyph_of(0x00FC).first, 0x12); /* ü */
  fail_unless_equals_int(glyph_of(0x00FC).code, 0x25);
}
GST_END_TEST;

GST_START_TEST(test_unsupported_characters_become_one_question_mark_per_run) {
  guint replaced = 0;
  std::string out = to_repertoire("Hello 你好世界 and 😀!", &replaced);
  fail_unless_equals_string(out.c_str(), "Hello ? and ?!");
  fail_unless_equals_int(replaced, 5);
  out = to_repertoire("Łódź – ā…", &replaced);
  fail_unless_equals_string(out.c_str(), "Lódz - a..."); /* ó is a basic character */
  out = to_repertoire("Æsir œuvre ı", &replaced);
  fail_unless_equals_string(out.c_str(), "AEsir oeuvre i");
  out = to_repertoire("Æsir œuvre ı", &replaced);
  fail_unless_equals_string(out.c_str(), "AEsir oeuvre i");
  fail_unless_equals_int(replaced, 0);
  /* Decomposed accents are composed first, then kept. */
  out = to_repertoire("Cafe\xCC\x81", &replaced);
  fail_unless_equals_string(out.c_str(), "Café");
}
GST_END_TEST;

/* Runs the encoder for `frames` frames through the test decoder; returns what was on screen
 * at each frame. */
struct Run {
  std::vector<std::string> shown;
  std::vector<Pair> pairs;
};
static Run run(Encoder &enc, guint frames, TestDecoder &dec) {
  Run r;
  for (guint i = 0; i < frames; i++) {
    Pair p = enc.next();
    fail_unless(dec.feed(p.b1, p.b2), "parity error at frame %u", i);
    r.pairs.push_back(p);
    r.shown.push_back(dec.shown());
  }
  return r;
}

static gint first_frame_showing(const Run &r, const std::string &text) {
  for (gsize i = 0; i < r.shown.size(); i++) {
    if (r.shown[i].find(text) != std::string::npos)
      return i;
  }
  return -1;
}

GST_START_TEST(test_every_control_code_is_sent_twice_in_consecutive_frames) {
  Encoder enc(Mode::kPopOn, false, 30);
  enc.add({"One ♪", "Two É"}, 60, 120);
  TestDecoder dec;
  Run r = run(enc, 200, dec);
  for (gsize i = 0; i < r.pairs.size();) {
    if (is_control(r.pairs[i])) {
      fail_unless(i + 1 < r.pairs.size() && r.pairs[i + 1] == r.pairs[i],
                  "control code at frame %zu not repeated", i);
      i += 2;
    } else {
      i++;
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_pop_on_caption_appears_whole_at_its_show_frame) {
  Encoder enc(Mode::kPopOn, false, 30);
  fail_unless(enc.lead_frames({"Bonjour à tous"}) > 0, "pop-on loads ahead");
  enc.add({"Bonjour à tous", "et bienvenue."}, 100, 160);
  TestDecoder dec;
  Run r = run(enc, 240, dec);
  fail_unless_equals_int(first_frame_showing(r, "Bonjour"), 100);
  fail_unless_equals_string(r.shown[100].c_str(), "Bonjour à tous\net bienvenue.");
  fail_unless_equals_int(hex(r.pairs[100]), 0x942F); /* EOC */
  fail_unless_equals_int(enc.stats().late, 0);
  /* Erased when its duration ends (EDM at frame 160). */
  fail_unless_equals_string(r.shown[159].c_str(), "Bonjour à tous\net bienvenue.");
  fail_unless_equals_string(r.shown[160].c_str(), "");
  fail_unless_equals_int(hex(r.pairs[160]), 0x942C);
  fail_unless(enc.idle(), "nothing left after the erase");
}
GST_END_TEST;

GST_START_TEST(test_pop_on_caption_that_cannot_load_in_time_shows_late_and_is_counted) {
  Encoder enc(Mode::kPopOn, false, 30);
  enc.reset(100);
  std::string row(32, 'x');
  enc.add({row, row}, 105, 300);
  TestDecoder dec;
  Run r = run(enc, 200, dec);
  gint shown = first_frame_showing(r, row);
  guint lead = enc.lead_frames({row, row});
  /* The decoder frames start at 100; the EOC comes as soon as loading allows. */
  fail_unless_equals_int(shown, 2 + lead); /* after the initial erase */
  fail_unless_equals_int(enc.stats().late, 1);
  fail_unless(enc.stats().max_late_frames > 0, "lateness measured");
}
GST_END_TEST;

GST_START_TEST(test_padding_fills_every_frame_without_captions) {
  Encoder enc(Mode::kPopOn, false, 30);
  TestDecoder dec;
  Run r = run(enc, 100, dec);
  /* One erase at the start (whatever a decoder shows is stale), then padding. */
  fail_unless_equals_int(hex(r.pairs[0]), 0x942C);
  fail_unless_equals_int(hex(r.pairs[1]), 0x942C);
  for (gsize i = 2; i < r.pairs.size(); i++)
    fail_unless_equals_int(hex(r.pairs[i]), 0x8080);
  fail_unless(enc.idle(), "idle without captions");
}
GST_END_TEST;

GST_START_TEST(test_roll_up_scrolls_with_carriage_returns) {
  Encoder enc(Mode::kRollUp2, false, 30);
  enc.add({"first line"}, 10, 200);
  enc.add({"second line"}, 60, 200);
  enc.add({"third line"}, 110, 200);
  TestDecoder dec;
  Run r = run(enc, 300, dec);
  fail_unless_equals_int(dec.mode(), TestDecoder::kRollUp);
  gint first = first_frame_showing(r, "first line");
  fail_unless(first >= 10 && first < 30, "first line at %d", first);
  fail_unless_equals_string(r.shown[100].c_str(), "first line\nsecond line");
  /* Two rows: the first scrolled off. */
  fail_unless_equals_string(r.shown[180].c_str(), "second line\nthird line");
  gint crs = 0;
  for (const Pair &p : r.pairs)
    crs += hex(p) == 0x94AD;
  fail_unless_equals_int(crs, 6); /* one CR per line, each sent twice */
  fail_unless_equals_string(r.shown[299].c_str(), "");
}
GST_END_TEST;

GST_START_TEST(test_paint_on_text_appears_from_its_show_frame) {
  Encoder enc(Mode::kPaintOn, false, 30);
  enc.add({"painted"}, 50, 150);
  TestDecoder dec;
  Run r = run(enc, 200, dec);
  fail_unless_equals_int(dec.mode(), TestDecoder::kPaintOn);
  gint first = first_frame_showing(r, "p");
  fail_unless(first >= 50 && first < 60, "paint-on text at %d", first);
  fail_unless_equals_string(r.shown[149].c_str(), "painted");
  fail_unless_equals_string(r.shown[150].c_str(), "");
}
GST_END_TEST;

GST_START_TEST(test_identical_special_characters_in_a_row_are_kept_apart) {
  Encoder enc(Mode::kPaintOn, false, 30);
  enc.add({"♪♪"}, 10, 100);
  TestDecoder dec;
  Run r = run(enc, 120, dec);
  fail_unless_equals_string(r.shown[90].c_str(), "♪♪");
}
GST_END_TEST;

GST_START_TEST(test_accented_captions_decode_back_to_the_same_text) {
  const std::vector<std::string> rows = {"¿Dónde está el niño? ¡Mañana!",
                                         "Grüße aus Köln, ça va? Ø å ß"};
  Encoder enc(Mode::kPopOn, false, 30);
  enc.add(rows, 80, 200);
  TestDecoder dec;
  Run r = run(enc, 150, dec);
  std::string expected = rows[0] + "\n" + rows[1];
  fail_unless(r.shown[100] == expected, "shown \"%s\"", r.shown[100].c_str());
}
GST_END_TEST;

GST_START_TEST(test_screen_whose_end_passed_while_a_newer_one_waits_is_dropped) {
  Encoder enc(Mode::kPopOn, false, 10);
  enc.reset(1000);
  enc.add({"stale"}, 10, 20);
  enc.add({"fresh"}, 1030, 1100);
  TestDecoder dec;
  Run r = run(enc, 100, dec);
  fail_unless_equals_int(enc.stats().dropped, 1);
  fail_unless(first_frame_showing(r, "stale") < 0, "the stale screen was shown");
  fail_unless_equals_int(first_frame_showing(r, "fresh"), 30);
}
GST_END_TEST;

GST_START_TEST(test_field_two_uses_the_cc3_control_codes) {
  Encoder enc(Mode::kPopOn, true, 30);
  enc.add({"Field two"}, 40, 100);
  TestDecoder dec;
  Run r = run(enc, 60, dec);
  fail_unless_equals_int(hex(r.pairs[40]), 0x152F);
  fail_unless_equals_string(r.shown[41].c_str(), "Field two");
}
GST_END_TEST;

GST_START_TEST(test_frame_times_come_from_the_index_without_drift) {
  const std::map<std::pair<gint, gint>, GstClockTime> one_hour_frames = {{{25, 1}, 90000},
                                                                         {{30000, 1001}, 107893},
                                                                         {{30, 1}, 108000},
                                                                         {{50, 1}, 180000},
                                                                         {{60000, 1001}, 215785}};
  for (const auto &[rate, frames] : one_hour_frames) {
    FrameClock clock{rate.first, rate.second};
    /* Every frame time maps back to its own index. */
    for (guint64 f = 0; f < 2000; f++)
      fail_unless_equals_uint64(clock.frame_at(clock.time_of(f)), f);
    fail_unless_equals_uint64(clock.frame_at(3600 * GST_SECOND), frames);
    /* The first frame of the next hour starts at most one frame after it. */
    GstClockTime frame = clock.time_of(1) - clock.time_of(0);
    fail_unless(clock.time_of(frames) >= 3600 * GST_SECOND, "frame before the hour");
    fail_unless(clock.time_of(frames) < 3600 * GST_SECOND + frame, "more than a frame after");
    /* A time between frames belongs to the next frame (nothing shows early). */
    fail_unless_equals_uint64(clock.frame_at(clock.time_of(100) + 1), 101);
  }
  FrameClock ntsc{30000, 1001};
  fail_unless_equals_uint64(ntsc.time_of(1), 33366666);
  fail_unless_equals_uint64(ntsc.time_of(30000), 1001 * GST_SECOND);
}
GST_END_TEST;

static Suite *cea608_suite(void) {
  Suite *s = suite_create("cea608");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_every_byte_gets_odd_parity);
  tcase_add_test(tc, test_control_codes_have_the_standard_values);
  tcase_add_test(tc, test_preamble_address_codes_place_rows_and_indents);
  tcase_add_test(tc, test_basic_characters_pair_up_with_the_608_substitutions);
  tcase_add_test(tc, test_special_characters_are_two_byte_codes);
  tcase_add_test(tc, test_extended_characters_follow_their_basic_fallback);
  tcase_add_test(tc, test_unsupported_characters_become_one_question_mark_per_run);
  tcase_add_test(tc, test_every_control_code_is_sent_twice_in_consecutive_frames);
  tcase_add_test(tc, test_pop_on_caption_appears_whole_at_its_show_frame);
  tcase_add_test(tc, test_pop_on_caption_that_cannot_load_in_time_shows_late_and_is_counted);
  tcase_add_test(tc, test_padding_fills_every_frame_without_captions);
  tcase_add_test(tc, test_roll_up_scrolls_with_carriage_returns);
  tcase_add_test(tc, test_paint_on_text_appears_from_its_show_frame);
  tcase_add_test(tc, test_identical_special_characters_in_a_row_are_kept_apart);
  tcase_add_test(tc, test_accented_captions_decode_back_to_the_same_text);
  tcase_add_test(tc, test_screen_whose_end_passed_while_a_newer_one_waits_is_dropped);
  tcase_add_test(tc, test_field_two_uses_the_cc3_control_codes);
  tcase_add_test(tc, test_frame_times_come_from_the_index_without_drift);
  return s;
}

GST_CHECK_MAIN(cea608);
