/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs the fuzz target over every file of the corpus: the regressions the fuzzer found
 * stay fixed in the ordinary build, without clang or libFuzzer. */
#include <glib.h>

#include <cstdint>
#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  if (argc != 2) {
    g_printerr("usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  GDir *dir = g_dir_open(argv[1], 0, nullptr);
  if (!dir) {
    g_printerr("cannot open %s\n", argv[1]);
    return 1;
  }
  int files = 0;
  while (const char *name = g_dir_read_name(dir)) {
    gchar *path = g_build_filename(argv[1], name, nullptr);
    gchar *contents = nullptr;
    gsize length = 0;
    if (g_file_get_contents(path, &contents, &length, nullptr)) {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(contents), length);
      files++;
    }
    g_free(contents);
    g_free(path);
  }
  g_dir_close(dir);
  std::printf("replayed %d corpus files\n", files);
  return files > 0 ? 0 : 1;
}
