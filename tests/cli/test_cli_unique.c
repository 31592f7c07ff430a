/* tests/cli/test_cli_unique.c — unique jobs with the real `aspen` program (issue 10): `aspen submit
 * --unique`, `--unique-key`, `--unique-fields`, `--unique-for` and `--unique-states` as a user types
 * them; a duplicate prints the existing job's id on stdout and one note on stderr with exit
 * status 0, and `--json` says "duplicate": true; bad rules are usage errors (exit 2) that say what
 * to write; a finished job no longer blocks a new one unless its state counts. In-process
 * handlers, no guest. */
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
#include <unistd.h>

static char g_dir[256];
static int g_n;

static void expect(const out *o, int status, const char *needle)
{
    if (o->status != status || (needle && !has(o, needle)))
        fail_msg("want exit %d and \"%s\", got exit %d:\n%s", status, needle ? needle : "",
                 o->status, o->buf);
}

static void check(int status, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int status, const char *needle, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    out o = run("%s", cmd);
    expect(&o, status, needle);
    free(o.buf);
}

/* A fresh database for one test. */
static void new_db(char *db, size_t cap)
{
    snprintf(db, cap, "%s/d%d.db", g_dir, ++g_n);
    check(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, db);
}

/* stdout only, trimmed */
static long long id_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long id_of(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 20, fmt, ap);
    va_end(ap);
    assert_true(n > 0);
    strcat(cmd, " 2>/dev/null");
    out o = run_shell(cmd);
    if (o.status != 0)
        fail_msg("exit %d: %s\n%s", o.status, cmd, o.buf);
    long long id = strtoll(o.buf, NULL, 10);
    free(o.buf);
    return id;
}

static void test_submit_unique(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    long long a = id_of("'%s' submit --type echo --payload '{\"a\":1,\"b\":2}' --unique --db '%s'",
                        ASPEN_BIN, db);
    assert_int_equal(a, 1);
    /* the same payload written otherwise: the same job, said on stderr, exit 0 */
    check(0, "job 1 already exists for unique key sha256:",
          "'%s' submit --type echo --payload '{ \"b\": 2, \"a\": 1 }' --unique --db '%s'",
          ASPEN_BIN, db);
    /* "just now" or "N s ago": how long the first submit took to be seen depends on the load */
    check(0, "(queued, submitted ",
          "'%s' submit --type echo --payload '{\"b\":2,\"a\":1}' --unique --db '%s'", ASPEN_BIN,
          db);
    check(0, "); not submitting another",
          "'%s' submit --type echo --payload '{\"b\":2,\"a\":1}' --unique --db '%s'", ASPEN_BIN,
          db);
    assert_int_equal(id_of("'%s' submit --type echo --payload '{\"b\":2,\"a\":1}' --unique "
                           "--db '%s'",
                           ASPEN_BIN, db),
                     1);
    /* --json: one object, duplicate true, the key and the message */
    out o = run("'%s' submit --type echo --payload '{\"a\":1,\"b\":2}' --unique --json --db '%s'"
                " 2>/dev/null",
                ASPEN_BIN, db);
    expect(&o, 0, NULL);
    json_error_t je;
    json_t *v = json_loadb(o.buf, o.len, 0, &je);
    if (!v)
        fail_msg("not JSON (%s):\n%s", je.text, o.buf);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), 1);
    assert_true(json_is_true(json_object_get(v, "duplicate")));
    assert_string_equal(json_string_value(json_object_get(v, "state")), "queued");
    assert_non_null(strstr(json_string_value(json_object_get(v, "unique_key")), "sha256:"));
    json_decref(v);
    free(o.buf);
    o = run("'%s' submit --type echo --payload '{\"a\":2}' --unique --json --db '%s'", ASPEN_BIN,
            db);
    expect(&o, 0, "\"duplicate\":false");
    free(o.buf);
    /* a given key, across payloads; fields */
    long long k = id_of("'%s' submit --type echo --payload '{\"n\":1}' --unique-key nightly --db '%s'",
                        ASPEN_BIN, db);
    check(0, "job 3 already exists for unique key nightly (queued",
          "'%s' submit --type echo --payload '{\"n\":2}' --unique-key nightly --db '%s'",
          ASPEN_BIN, db);
    assert_int_equal(k, 3);
    long long f1 = id_of("'%s' submit --type echo --payload '{\"user\":\"al\",\"at\":1}' "
                         "--unique-fields user --db '%s'",
                         ASPEN_BIN, db);
    long long f2 = id_of("'%s' submit --type echo --payload '{\"at\":2,\"user\":\"al\"}' "
                         "--unique-fields user --db '%s'",
                         ASPEN_BIN, db);
    assert_int_equal(f1, f2);
    /* --count N with a rule: one job, the others duplicates of it */
    o = run("'%s' submit --type echo --payload '{\"c\":1}' --unique --count 3 --db '%s'"
            " 2>/dev/null",
            ASPEN_BIN, db);
    expect(&o, 0, NULL);
    long long c0 = 0, c1 = 0, c2 = 0;
    assert_int_equal(sscanf(o.buf, "%lld %lld %lld", &c0, &c1, &c2), 3);
    assert_int_equal(c0, c1);
    assert_int_equal(c0, c2);
    free(o.buf);
}

static void test_finished_and_states(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    assert_int_equal(id_of("'%s' submit --type echo --unique-key r --db '%s'", ASPEN_BIN, db), 1);
    check(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    /* job 1 succeeded: by default it does not count */
    assert_int_equal(id_of("'%s' submit --type echo --unique-key r --db '%s'", ASPEN_BIN, db), 2);
    check(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    /* with succeeded counting within an hour, it does */
    check(0, "job 2 already exists for unique key r (succeeded",
          "'%s' submit --type echo --unique-key r --unique-states succeeded --unique-for 1h "
          "--db '%s'",
          ASPEN_BIN, db);
    /* within 1 s: job 2 finished long enough ago for a 1 ms window */
    usleep(20000);
    assert_int_equal(id_of("'%s' submit --type echo --unique-key r --unique-states succeeded "
                           "--unique-for 10ms --db '%s'",
                           ASPEN_BIN, db),
                     3);
}

static void test_bad_rules(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    check(2, "--unique-for: '10x' is not a duration: write one such as 500ms, 90s, 10m",
          "'%s' submit --type echo --unique-for 10x --db '%s'", ASPEN_BIN, db);
    check(2, "--unique-states: 'queud' is not a state (did you mean queued?)",
          "'%s' submit --type echo --unique-states queud --db '%s'", ASPEN_BIN, db);
    check(2, "give the unique key one way",
          "'%s' submit --type echo --unique-key k --unique-fields a --db '%s'", ASPEN_BIN, db);
    check(2, "--unique-key wants a key", "'%s' submit --type echo --unique-key '' --db '%s'",
          ASPEN_BIN, db);
    check(1, "unique field 'a..b' is not a payload path",
          "'%s' submit --type echo --unique-fields a..b --db '%s'", ASPEN_BIN, db);
    out o = run("'%s' jobs --all --json --db '%s'", ASPEN_BIN, db);
    expect(&o, 0, "[]");
    free(o.buf);
}

int main(void)
{
    if (cli_scratch_dir(g_dir, sizeof g_dir, "unique") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_unique),
        cmocka_unit_test(test_finished_and_states),
        cmocka_unit_test(test_bad_rules),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (cli_remove_tree(g_dir) != 0)
        return 1;
    return rc;
}
