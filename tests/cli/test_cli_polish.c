/* tests/cli/test_cli_polish.c — what a new user meets first with the real `aspen` program and
 * scripts/build-guest.sh, run as separate processes: `aspen run` gives a guest's output byte for
 * byte into a file (no newline added, binary bytes kept), and the messages for the usual mistakes
 * say what is wrong and what to do. They need /dev/kvm and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

typedef struct out {
    char *buf;
    size_t len;
    int status; /* exit status, or -1 */
} out;

/* Runs a shell command line; stdout and stderr together unless the command redirects them. */
static out run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static out run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    cmd[0] = '(';
    int n = vsnprintf(cmd + 1, sizeof cmd - 16, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 16);
    strcat(cmd, ") 2>&1");
    out o = {0};
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 0;
    for (;;) {
        if (o.len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            o.buf = realloc(o.buf, cap);
            assert_non_null(o.buf);
        }
        size_t r = fread(o.buf + o.len, 1, 4096, p);
        if (r == 0)
            break;
        o.len += r;
    }
    o.buf[o.len] = '\0';
    int st = pclose(p);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

static bool has(const out *o, const char *needle)
{
    return memmem(o->buf, o->len, needle, strlen(needle)) != NULL;
}

static void expect(const out *o, int status, const char *needle)
{
    if (o->status != status || (needle && !has(o, needle)))
        fail_msg("want exit %d and \"%s\", got exit %d:\n%s", status, needle ? needle : "",
                 o->status, o->buf);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* ---- 1. aspen run: the exact bytes into a file -------------------------------------------------- */

/* test-quiet-echo outputs its input unchanged: what lands in the file must be the input. */
static void run_exact(const void *data, size_t len)
{
    char in[400], res[400];
    snprintf(in, sizeof in, "%s/in.bin", g_dir);
    snprintf(res, sizeof res, "%s/out.bin", g_dir);
    write_file(in, data, len);
    out o = run("%s run test-quiet-echo --input %s > %s", ASPEN_BIN, in, res);
    expect(&o, 0, NULL);
    free(o.buf);
    size_t got_len;
    char *got = read_all(res, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
    /* from stdin into a pipe, too */
    o = run("%s run test-quiet-echo --input - < %s 2>/dev/null | cat > %s", ASPEN_BIN, in, res);
    expect(&o, 0, NULL);
    free(o.buf);
    got = read_all(res, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static void test_run_output_no_newline(void **state)
{
    (void)state;
    run_exact("abc", 3);
}

static void test_run_output_empty(void **state)
{
    (void)state;
    run_exact("", 0);
}

static void test_run_output_binary(void **state)
{
    (void)state;
    unsigned char b[300];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)(i * 167 + 13); /* every byte value, ending on neither \n nor 0 */
    b[sizeof b - 1] = 0xff;
    run_exact(b, sizeof b);
    run_exact("line\n", 5); /* an output that ends on a newline keeps exactly one */
}

/* The echo-worker from the README: "Echo: " and the input, nothing after it. */
static void test_run_echo_worker_exact(void **state)
{
    (void)state;
    char res[400];
    snprintf(res, sizeof res, "%s/echo.out", g_dir);
    out o = run("printf 'abc' | %s run echo-worker --input - 2>/dev/null > %s", ASPEN_BIN, res);
    expect(&o, 0, NULL);
    free(o.buf);
    size_t n;
    char *got = read_all(res, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(got, "Echo: abc", 9);
    free(got);
}

/* ---- 3 and 6. submit, run and jobs: messages that say what is wrong ------------------------------ */

static void test_submit_guest_and_source(void **state)
{
    (void)state;
    out o = run("%s submit echo-worker --source %s --db %s/jobs.db", ASPEN_BIN, g_dir, g_dir);
    expect(&o, 2, "error: give either a guest name/path or --source DIR, not both");
    assert_false(has(&o, "bytes"));
    assert_false(has(&o, "sha256"));
    free(o.buf);
}

static void test_submit_source_is_file(void **state)
{
    (void)state;
    char dir[400], file[420];
    snprintf(dir, sizeof dir, "%s/src", g_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/main.c", dir);
    write_file(file, "int x;\n", 7);
    out o = run("%s submit --source %s --db %s/jobs.db", ASPEN_BIN, file, g_dir);
    expect(&o, 1, "is a file, not a directory");
    assert_true(has(&o, file));
    assert_false(has(&o, "not found"));
    free(o.buf);
    o = run("%s submit --source %s/nowhere --db %s/jobs.db", ASPEN_BIN, g_dir, g_dir);
    expect(&o, 1, "not found");
    free(o.buf);
}

static void test_submit_source_empty(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/empty", g_dir);
    mkdir(dir, 0700);
    out o = run("%s submit --source %s --db %s/empty-src.db", ASPEN_BIN, dir, g_dir);
    expect(&o, 1, "no C sources (*.c or *.S) and no Cargo.toml in");
    free(o.buf);
    /* nothing was stored */
    o = run("%s jobs --json --db %s/empty-src.db", ASPEN_BIN, g_dir);
    expect(&o, 0, "[]");
    free(o.buf);
    /* a directory with a source is accepted (it is built when it runs) */
    char file[420];
    snprintf(file, sizeof file, "%s/main.c", dir);
    write_file(file, "int x;\n", 7);
    o = run("%s submit --source %s --db %s/empty-src.db", ASPEN_BIN, dir, g_dir);
    expect(&o, 0, NULL);
    free(o.buf);
}

static void test_run_payload_and_input(void **state)
{
    (void)state;
    out o = run("%s run echo-worker --payload '{}' --input /dev/null", ASPEN_BIN);
    expect(&o, 2, "error: --payload and --input exclude each other");
    free(o.buf);
}

static void test_run_directory(void **state)
{
    (void)state;
    out o = run("%s run %s", ASPEN_BIN, g_dir);
    expect(&o, 1, "is a directory, not a guest binary");
    assert_true(has(&o, "scripts/build-guest.sh"));
    assert_true(has(&o, "aspen submit --source"));
    assert_false(has(&o, "not found"));
    free(o.buf);
}

static void test_jobs_says_how_many_more(void **state)
{
    (void)state;
    out o = run("%s submit --type echo --count 57 --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, NULL);
    free(o.buf);
    o = run("%s jobs --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, "\xe2\x80\xa6 7 more; use --limit N or --all\n");
    free(o.buf);
    o = run("%s jobs --limit 10 --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, "\xe2\x80\xa6 47 more; use --limit N or --all\n");
    free(o.buf);
    o = run("%s jobs --all --db %s/many.db | grep -c ' echo '", ASPEN_BIN, g_dir);
    expect(&o, 0, "57\n");
    free(o.buf);
    o = run("%s jobs --all --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, NULL);
    assert_false(has(&o, "more;"));
    free(o.buf);
    o = run("%s jobs --limit 57 --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, NULL);
    assert_false(has(&o, "more;"));
    free(o.buf);
    o = run("%s jobs --json --db %s/many.db", ASPEN_BIN, g_dir);
    expect(&o, 0, NULL);
    assert_false(has(&o, "more;"));
    free(o.buf);
    o = run("%s jobs --help", ASPEN_BIN);
    expect(&o, 0, "default 50");
    free(o.buf);
}

int main(void)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "test_cli_polish: /dev/kvm is not usable; these tests need KVM\n");
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/aspen-cli-polish-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_output_no_newline),
        cmocka_unit_test(test_run_output_empty),
        cmocka_unit_test(test_run_output_binary),
        cmocka_unit_test(test_run_echo_worker_exact),
        cmocka_unit_test(test_submit_guest_and_source),
        cmocka_unit_test(test_submit_source_is_file),
        cmocka_unit_test(test_submit_source_empty),
        cmocka_unit_test(test_run_payload_and_input),
        cmocka_unit_test(test_run_directory),
        cmocka_unit_test(test_jobs_says_how_many_more),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return rc;
}
