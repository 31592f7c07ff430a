/* tests/cli/test_cli_jobs.c — the job commands of the real `aspen` program, run as separate
 * processes the way a user types them: the one filter language (the console's shorthands work in
 * `aspen jobs --filter`, errors name the term and suggest the key). They need /dev/kvm (a worker
 * runs guests) and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256], g_db[300];

/* A shell command line; stdout and stderr together unless the command redirects them. */
static out run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static out run(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    cmd[0] = '(';
    int n = vsnprintf(cmd + 1, sizeof cmd - 16, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 16);
    strcat(cmd, ") 2>&1");
    return run_shell(cmd);
}

static void expect(const out *o, int status, const char *needle)
{
    if (o->status != status || (needle && !has(o, needle)))
        fail_msg("want exit %d and \"%s\", got exit %d:\n%s", status, needle ? needle : "",
                 o->status, o->buf);
}

/* Runs and checks in one go, freeing the output. */
static void check(int status, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int status, const char *needle, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    out o = run("%s", cmd);
    expect(&o, status, needle);
    free(o.buf);
}

static json_t *json_of(const out *o)
{
    json_error_t je;
    json_t *v = json_loadb(o->buf, o->len, 0, &je);
    if (!v)
        fail_msg("not JSON (%s):\n%s", je.text, o->buf);
    return v;
}

/* ---- the one filter language -------------------------------------------------------------------- */

static void test_filter_shorthands(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/filter.db", g_dir);
    /* two failed test-fail jobs, one succeeded echo-worker job */
    check(0, NULL, "'%s' submit test-fail --max-attempts 1 --count 2 --db '%s'", ASPEN_BIN,
          db);
    check(0, NULL, "'%s' submit echo-worker --payload '{\"a\":1}' --db '%s'", ASPEN_BIN, db);
    check(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);

    const char *same[] = {"guest:test-fail failed", "binary:test-fail state:failed",
                          "test-fail failed", "failed guest:test-fail"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        out o = run("'%s' jobs --filter '%s' --json --db '%s' 2>/dev/null", ASPEN_BIN, same[i], db);
        expect(&o, 0, NULL);
        json_t *arr = json_of(&o);
        if (json_array_size(arr) != 2)
            fail_msg("--filter '%s': %zu jobs, want 2:\n%s", same[i], json_array_size(arr), o.buf);
        json_decref(arr);
        free(o.buf);
    }
    check(0, "succeeded", "'%s' jobs --filter 'echo-worker' --db '%s'", ASPEN_BIN, db);
    check(0, "(no jobs match)", "'%s' jobs --filter 'guest:echo-worker failed' --db '%s'",
          ASPEN_BIN, db);
    /* the console's #N */
    check(0, "echo-worker", "'%s' jobs --filter '#3' --db '%s'", ASPEN_BIN, db);
    /* errors: the term, the valid keys, the near miss; exit 2 (usage) */
    check(2, "did you mean 'state:'?", "'%s' jobs --filter 'stat:failed' --db '%s'", ASPEN_BIN, db);
    check(2, "Valid keys: state: type: guest:", "'%s' jobs --filter 'colour:red' --db '%s'",
          ASPEN_BIN, db);
    check(2, "did you mean 'failed'?", "'%s' jobs --state faild --db '%s'", ASPEN_BIN, db);
    check(2, "did you mean 'guest:'?", "'%s' retry --failed --filter 'gest:x' --db '%s'",
          ASPEN_BIN, db);
    /* retry --failed speaks the same language */
    check(0, "2 failed jobs queued again", "'%s' retry --failed --filter 'guest:test-fail' --db '%s'",
          ASPEN_BIN, db);
}

static int setup_all(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/aspen-cli-jobs-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_db, sizeof g_db, "%s/jobs.db", g_dir);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    setenv("ASPEN_GUEST_DIR", GUEST_DIR, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_shorthands),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
