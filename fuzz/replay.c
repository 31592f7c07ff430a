/* fuzz/replay.c — runs a libFuzzer target's corpus as a cmocka test, without libFuzzer.
 *
 * Linked with one fuzz_TARGET.c into tests/fuzz/replay_TARGET (the gcc ASan+UBSan test build), so
 * `make test` replays every committed seed and every regress-* file (a past finding) through the
 * same checks the fuzzer applies; any finding aborts the test. Arguments: files or directories.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int g_argc;
static char **g_argv;
static size_t g_files;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("cannot read %s", path);
    fclose(f);
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    g_files++;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("%s does not exist", path);
    if (!S_ISDIR(st.st_mode)) {
        replay_file(path);
        return;
    }
    DIR *d = opendir(path);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        assert_non_null(names);
        names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
        assert_non_null(names[n]);
        sprintf(names[n], "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp); /* the same order every run */
    for (size_t i = 0; i < n; i++) {
        replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

static void test_replay(void **state)
{
    (void)state;
    for (int i = 1; i < g_argc; i++)
        replay_path(g_argv[i]);
    assert_true(g_files > 0);
    fprintf(stderr, "replay: %zu inputs, no findings\n", g_files);
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replay)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
