/* tests/cli/test_cli_output.c — hostile job fields through the real `aspen` program (issue 7).
 *
 * Two databases: one where an engine ran in-process handlers that log, return and fail with text
 * full of terminal escapes (OSC title "\x1b]0;pwned\x07", "\x1b[2J", CR, U+202E, C1 CSI as UTF-8
 * and as the raw byte 0x9b, bidi isolates, bytes 0xff 0xfe that are not UTF-8), with a payload and
 * tags carrying bidi overrides; and one written through the store's C API with such a type, guest
 * name and tags that are not UTF-8. Then `aspen jobs`, `aspen show`, `aspen logs` and error
 * messages must show all of it escaped and nothing raw, and --json must be valid, ASCII-only JSON
 * in which no field vanished (U+FFFD for bad bytes, result_base64 exact). `aspen run --json`
 * likewise for a guest whose output is not UTF-8 (test-quiet-echo). $ASPEN_TEST_BIN runs another
 * build's aspen instead (an older one fails every test). With --make-db DIR it only writes the two
 * databases, for the console's tmux test of the same fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_text.h"
#include "cli_support.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char evil[] = "\x1b]0;pwned\x07|\x1b[2J|\r|\xe2\x80\xae|\xc2\x9b|\x9b|\xff\xfe|"
                           "\xe2\x81\xa6|\xd8\x9c";
static const char shown[] = "\\x1b]0;pwned\\x07|\\x1b[2J|\\r|\\u202e|\\u009b|\\x9b|\\xff\\xfe|"
                            "\\u2066|\\u061c";

static char g_dir[256], g_run_db[300], g_raw_db[300];
static const char *g_bin = ASPEN_BIN; /* $ASPEN_TEST_BIN: another build's aspen, e.g. an older one */
static int64_t g_ok_id, g_fail_id, g_raw_id;

/* ---- running aspen ---------------------------------------------------------------------------- */

/* Nothing a terminal acts on: no C0 but newline (and tab when allowed), no DEL, only well-formed
 * UTF-8, no C1 control, no bidi or line control. */
static void assert_terminal_safe(const out *o, bool tabs)
{
    const unsigned char *p = (const unsigned char *)o->buf;
    for (size_t i = 0; i < o->len;) {
        unsigned char c = p[i];
        if (c == '\n' || (tabs && c == '\t')) {
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            fail_msg("raw control byte 0x%02x at %zu in:\n%s", c, i, o->buf);
        uint32_t cp;
        size_t k = aspen_text_utf8_decode(p + i, o->len - i, &cp);
        if (k == 0)
            fail_msg("raw byte 0x%02x that is not UTF-8 at %zu in:\n%s", c, i, o->buf);
        if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
            (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
            fail_msg("raw U+%04X at %zu in:\n%s", (unsigned)cp, i, o->buf);
        i += k;
    }
}

/* ---- the databases ---------------------------------------------------------------------------- */

static int h_hostile(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    aspen_engine_ctx_log(ctx, "%s", evil);
    aspen_engine_ctx_log(ctx, "tab\there");
    return aspen_engine_ctx_set_output(ctx, evil, sizeof evil - 1) == 0
               ? ASPEN_ENGINE_HANDLER_OK
               : aspen_engine_ctx_fail(ctx, true, "out of memory");
}

static int h_hostile_fail(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    aspen_engine_ctx_log(ctx, "about to fail: %s", evil);
    return aspen_engine_ctx_fail(ctx, true, "%s", evil);
}

/* Writes run.db and raw.db into g_dir. */
static int make_dbs(void)
{
    snprintf(g_run_db, sizeof g_run_db, "%s/run.db", g_dir);
    snprintf(g_raw_db, sizeof g_raw_db, "%s/raw.db", g_dir);

    /* jobs an engine ran */
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_run_db;
    cfg.workers = 1;
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0 ||
        aspen_engine_register_handler(eng, "hostile", h_hostile, NULL, &err) != 0 ||
        aspen_engine_register_handler(eng, "hostile_fail", h_hostile_fail, NULL, &err) != 0) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return -1;
    }
    const char *tags[] = {"ok", "\xe2\x80\xae" "rtl", "\xc2\x9b" "c1"};
    aspen_engine_job_spec ok = {.type = "hostile", .payload = "{\"m\": \"\xe2\x80\xae" "abc\"}",
                                .tags = tags, .n_tags = 3};
    aspen_engine_job_spec bad = {.type = "hostile_fail", .payload = "{}", .max_attempts = 1};
    if (aspen_engine_submit(eng, &ok, &g_ok_id, &err) != 0 ||
        aspen_engine_submit(eng, &bad, &g_fail_id, &err) != 0 || aspen_engine_start(eng, &err) != 0 ||
        aspen_engine_wait_idle(eng, 30000, false, &err) != 0) {
        fprintf(stderr, "engine: %s\n", err.msg);
        aspen_engine_close(eng);
        return -1;
    }
    aspen_engine_close(eng);

    /* a job written straight into a store: fields no engine checked */
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(g_raw_db, NULL, &s, &se) != 0) {
        fprintf(stderr, "store: %s\n", se.msg);
        return -1;
    }
    aspen_store_job_spec raw = {.type = evil, .binary_name = evil, .payload = "{}",
                                .tags = "[\"ok\", \"\xff\xfe\", \"\xe2\x80\xae\"]"};
    int rc = aspen_store_submit(s, &raw, aspen_store_now_ms(), &g_raw_id, &se);
    aspen_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "store: %s\n", se.msg);
        return -1;
    }
    return 0;
}

static int setup_all(void **state)
{
    (void)state;
    const char *bin = getenv("ASPEN_TEST_BIN");
    if (bin && *bin)
        g_bin = bin;
    snprintf(g_dir, sizeof g_dir, "/tmp/aspen-cli-test-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    return make_dbs();
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- text output -------------------------------------------------------------------------------- */

/* Every cell cut with "..." in o is a prefix of shown (the escaped hostile text) that ends at a
 * whole escape (\xNN, \uNNNN, \r), never inside one. */
static void assert_cuts_whole(const out *o)
{
    size_t found = 0;
    for (const char *p = o->buf; (p = strstr(p, "...")) != NULL; p += 3) {
        const char *start = p;
        while (start > o->buf && start[-1] != ' ' && start[-1] != '\n')
            start--;
        size_t n = (size_t)(p - start);
        if (n == 0 || strncmp(start, shown, n) != 0)
            continue; /* another cell (a result, a message) */
        found++;
        const char *bs = NULL;
        for (const char *q = start; q < p; q++)
            if (*q == '\\')
                bs = q;
        if (bs) {
            size_t need = bs[1] == 'x' ? 4 : bs[1] == 'u' ? 6 : 2;
            if ((size_t)(p - bs) < need)
                fail_msg("a cell cut inside an escape: %.*s...\n%s", (int)n, start, o->buf);
        }
    }
    assert_true(found > 0);
}

static void test_jobs_table(void **st)
{
    (void)st;
    out o = run_plain("'%s' jobs --db '%s'", g_bin, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    if (!has(&o, "\\x1b]0;pwned") || !has(&o, "hostile_fail")) /* the error, cut to fit 80 */
        fail_msg("no error or type in:\n%s", o.buf);
    free(o.buf);
    o = run_plain("'%s' jobs --wide --db '%s'", g_bin, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    assert_true(has(&o, "\\x1b]0;pwned\\x07|\\x1b[2J|\\r|\\u202e")); /* the error whole */
    free(o.buf);

    /* the type and guest, cut at whole escapes at any width */
    static const char *const widths[] = {"80", "60", "100", "133"};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        o = run_plain("COLUMNS=%s '%s' jobs --db '%s' 2>/dev/null", widths[i], g_bin, g_raw_db);
        assert_int_equal(o.status, 0);
        assert_terminal_safe(&o, false);
        assert_cuts_whole(&o);
        free(o.buf);
    }
    o = run_plain("'%s' jobs --wide --db '%s'", g_bin, g_raw_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    assert_true(has(&o, shown)); /* --wide: whole */
    free(o.buf);
}

static void test_show(void **st)
{
    (void)st;
    out o = run_plain("'%s' show %lld --db '%s'", g_bin, (long long)g_ok_id, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    assert_true(has(&o, "  result      ")); /* the result, whole and escaped */
    char line[512];
    snprintf(line, sizeof line, "  result      %s\n", shown);
    assert_true(has(&o, line));
    assert_true(has(&o, "  payload     {\"m\": \"\\u202eabc\"}"));
    assert_true(has(&o, "\\u202ertl"));
    assert_true(has(&o, "\\u009bc1"));
    free(o.buf);

    o = run_plain("'%s' show %lld --db '%s'", g_bin, (long long)g_fail_id, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    snprintf(line, sizeof line, "  error       %s\n", shown);
    assert_true(has(&o, line));
    free(o.buf);

    o = run_plain("'%s' show %lld --db '%s'", g_bin, (long long)g_raw_id, g_raw_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    snprintf(line, sizeof line, "  type        %s", shown);
    assert_true(has(&o, line));
    snprintf(line, sizeof line, "  guest       %s", shown);
    assert_true(has(&o, line));
    assert_true(has(&o, "[\"ok\", \"\\xff\\xfe\", \"\\u202e\"]"));
    free(o.buf);
}

static void test_logs(void **st)
{
    (void)st;
    out o = run_plain("'%s' logs %lld --db '%s'", g_bin, (long long)g_ok_id, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, true); /* a tab may end a line as it is */
    assert_true(has(&o, shown));
    assert_true(has(&o, "tab\there"));
    free(o.buf);
    o = run_plain("'%s' logs %lld --db '%s'", g_bin, (long long)g_fail_id, g_run_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, true);
    char line[512];
    snprintf(line, sizeof line, "about to fail: %s", shown);
    assert_true(has(&o, line));
    free(o.buf);
}

static void test_errors(void **st)
{
    (void)st;
    /* a guest name and a job id that carry escapes come back in error messages, escaped */
    out o = run_plain("'%s' submit \"$(printf '\\033]0;pwned\\007\\033[2Jnope')\" --db '%s/e.db' "
                "--create 2>&1",
                g_bin, g_dir);
    assert_int_equal(o.status, 1);
    assert_terminal_safe(&o, false);
    assert_true(has(&o, "\\x1b]0;pwned\\x07\\x1b[2Jnope"));
    free(o.buf);
    o = run_plain("'%s' show \"$(printf '12\\r\\342\\200\\256')\" --db '%s/e.db' 2>&1", g_bin, g_dir);
    assert_int_equal(o.status, 2);
    assert_terminal_safe(&o, false);
    assert_true(has(&o, "'12\\r\\u202e' is not a job id"));
    free(o.buf);
}

/* ---- --json ----------------------------------------------------------------------------------- */

static json_t *parse_json(const out *o)
{
    for (size_t i = 0; i < o->len; i++)
        if ((unsigned char)o->buf[i] >= 0x80)
            fail_msg("--json output has a non-ASCII byte 0x%02x at %zu", (unsigned char)o->buf[i], i);
    json_error_t je;
    json_t *v = json_loadb(o->buf, o->len, 0, &je);
    if (!v)
        fail_msg("--json output is not JSON: %s at line %d:\n%s", je.text, je.line, o->buf);
    return v;
}

static void assert_json_str(json_t *v, const char *raw, size_t len)
{
    assert_true(json_is_string(v));
    size_t n;
    char *want = aspen_text_utf8_repair(raw, len, &n);
    assert_non_null(want);
    assert_int_equal(json_string_length(v), n);
    assert_memory_equal(json_string_value(v), want, n);
    free(want);
}

static size_t unbase64(const char *s, unsigned char *outb)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(b64, *s);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            outb[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void test_show_json(void **st)
{
    (void)st;
    out o = run_plain("'%s' show %lld --json --db '%s'", g_bin, (long long)g_ok_id, g_run_db);
    assert_int_equal(o.status, 0);
    json_t *j = parse_json(&o);
    /* the result is not UTF-8: text with U+FFFD, and the exact bytes in result_base64 */
    assert_json_str(json_object_get(j, "result"), evil, sizeof evil - 1);
    json_t *b = json_object_get(j, "result_base64");
    assert_true(json_is_string(b));
    unsigned char bytes[256];
    size_t n = unbase64(json_string_value(b), bytes);
    assert_int_equal(n, sizeof evil - 1);
    assert_memory_equal(bytes, evil, n);
    json_t *tags = json_object_get(j, "tags");
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "\xe2\x80\xae" "rtl");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "payload"), "m")),
                        "\xe2\x80\xae" "abc");
    json_decref(j);
    free(o.buf);

    o = run_plain("'%s' show %lld --json --db '%s'", g_bin, (long long)g_fail_id, g_run_db);
    assert_int_equal(o.status, 0);
    j = parse_json(&o);
    assert_json_str(json_object_get(j, "error"), evil, sizeof evil - 1);
    json_t *att = json_array_get(json_object_get(j, "attempt_list"), 0);
    assert_json_str(json_object_get(att, "error"), evil, sizeof evil - 1);
    json_decref(j);
    free(o.buf);

    /* a type, a guest name and a tag that are not UTF-8 are there, not dropped */
    o = run_plain("'%s' show %lld --json --db '%s'", g_bin, (long long)g_raw_id, g_raw_db);
    assert_int_equal(o.status, 0);
    j = parse_json(&o);
    assert_json_str(json_object_get(j, "type"), evil, sizeof evil - 1);
    assert_json_str(json_object_get(j, "binary"), evil, sizeof evil - 1);
    tags = json_object_get(j, "tags");
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_array_get(tags, 2)), "\xe2\x80\xae");
    json_decref(j);
    free(o.buf);
}

/* logs --json is exact as results are: a line that is not UTF-8 is text with U+FFFD and, beside
 * it, its exact bytes in line_base64 (the trial found \xff\xfe turned into two U+FFFD and nothing
 * else); a UTF-8 line has no line_base64. The job's error likewise gets error_base64. */
static void test_logs_json_exact(void **st)
{
    (void)st;
    out o = run_plain("'%s' logs %lld --json --db '%s'", g_bin, (long long)g_fail_id, g_run_db);
    assert_int_equal(o.status, 0);
    char want[512];
    int wn = snprintf(want, sizeof want, "about to fail: %s", evil);
    bool found = false;
    for (char *line = o.buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        out one = {line, nl ? (size_t)(nl - line) : strlen(line), 0};
        json_t *j = parse_json(&one);
        const char *text = json_string_value(json_object_get(j, "line"));
        json_t *b = json_object_get(j, "line_base64");
        assert_non_null(text);
        if (strncmp(text, "about to fail: ", 15) == 0) {
            found = true;
            assert_json_str(json_object_get(j, "line"), want, (size_t)wn);
            assert_true(json_is_string(b));
            unsigned char bytes[512];
            size_t n = unbase64(json_string_value(b), bytes);
            assert_int_equal(n, (size_t)wn);
            assert_memory_equal(bytes, want, n);
        } else if (aspen_text_utf8_valid(text, strlen(text))) {
            assert_null(b);
        }
        json_decref(j);
    }
    assert_true(found);
    free(o.buf);
    o = run_plain("'%s' show %lld --json --db '%s'", g_bin, (long long)g_fail_id, g_run_db);
    assert_int_equal(o.status, 0);
    json_t *j = parse_json(&o);
    json_t *b = json_object_get(j, "error_base64");
    assert_true(json_is_string(b));
    unsigned char bytes[512];
    size_t n = unbase64(json_string_value(b), bytes);
    assert_int_equal(n, sizeof evil - 1);
    assert_memory_equal(bytes, evil, n);
    json_decref(j);
    free(o.buf);
}

static void test_jobs_json(void **st)
{
    (void)st;
    const char *dbs[] = {g_run_db, g_raw_db};
    for (int d = 0; d < 2; d++) {
        out o = run_plain("'%s' jobs --json --db '%s'", g_bin, dbs[d]);
        assert_int_equal(o.status, 0);
        json_t *arr = parse_json(&o);
        assert_int_equal(json_array_size(arr), d == 0 ? 2 : 1);
        size_t i;
        json_t *job;
        json_array_foreach(arr, i, job) {
            static const char *keys[] = {"type", "binary", "payload", "tags", "result", "error"};
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                if (!json_object_get(job, keys[k]))
                    fail_msg("job %lld has no \"%s\" in aspen jobs --json",
                             (long long)json_integer_value(json_object_get(job, "id")), keys[k]);
        }
        json_decref(arr);
        free(o.buf);
    }
}

static void test_run_output(void **st)
{
    (void)st;
    char input[300];
    snprintf(input, sizeof input, "%s/in.bin", g_dir);
    FILE *f = fopen(input, "wb");
    assert_non_null(f);
    fwrite(evil, 1, sizeof evil - 1, f);
    fclose(f);
    /* --json: the output as text (U+FFFD) and exactly (output_base64) */
    out o = run_plain("'%s' run '%s/test-quiet-echo' --input '%s' --json 2>/dev/null", g_bin,
                GUEST_DIR, input);
    assert_int_equal(o.status, 0);
    json_t *j = parse_json(&o);
    assert_string_equal(json_string_value(json_object_get(j, "outcome")), "success");
    assert_json_str(json_object_get(j, "output"), evil, sizeof evil - 1);
    unsigned char bytes[256];
    size_t n = unbase64(json_string_value(json_object_get(j, "output_base64")), bytes);
    assert_int_equal(n, sizeof evil - 1);
    assert_memory_equal(bytes, evil, n);
    json_decref(j);
    free(o.buf);
    /* into a pipe the output is the guest's bytes, unchanged (escaped only on a terminal) */
    o = run_plain("'%s' run '%s/test-quiet-echo' --input '%s' 2>/dev/null", g_bin, GUEST_DIR, input);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.len, sizeof evil - 1); /* nothing added: no newline into a pipe */
    assert_memory_equal(o.buf, evil, sizeof evil - 1);
    free(o.buf);
}

/* test_cli_output --make-db DIR: only writes DIR/run.db and DIR/raw.db (for the console's tmux
 * test of the same fields, tests/tui/console_hostile_test.sh) and prints the three job ids. */
/* Last: it runs the raw job. A worker prints each finished job's type and error, escaped. */
static void test_worker_output(void **st)
{
    (void)st;
    out o = run_plain("'%s' worker --until-idle --workers 1 --db '%s' 2>&1", g_bin, g_raw_db);
    assert_int_equal(o.status, 0);
    assert_terminal_safe(&o, false);
    char line[512];
    /* the event's copy of the type may be cut short (even inside a character: then \xNN) */
    snprintf(line, sizeof line, "job %lld failed (attempt 1, \\x1b]0;pwned\\x07|\\x1b[2J|\\r|",
             (long long)g_raw_id);
    if (!has(&o, line) || !has(&o, shown)) /* the error quotes the whole type */
        fail_msg("no \"%s\" or no \"%s\" in:\n%s", line, shown, o.buf);
    free(o.buf);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--make-db") == 0) {
        snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
        if (make_dbs() != 0)
            return 1;
        printf("%lld %lld %lld\n", (long long)g_ok_id, (long long)g_fail_id, (long long)g_raw_id);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_table), cmocka_unit_test(test_show),
        cmocka_unit_test(test_logs),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_show_json),  cmocka_unit_test(test_jobs_json),
        cmocka_unit_test(test_run_output), cmocka_unit_test(test_worker_output),
        cmocka_unit_test(test_logs_json_exact),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
