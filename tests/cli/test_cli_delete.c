/* tests/cli/test_cli_delete.c — removing jobs with the real `aspen` program, run as separate
 * processes: `aspen delete ID...` and `--filter F` ask first (a "no" or end of input deletes
 * nothing; --yes skips the question), take finished jobs only (a running or queued one is refused
 * with a message saying to cancel it; unfinished filter matches are kept and counted) and take the
 * attempts and logs with the job; `aspen purge --older-than D` deletes finished jobs by age and
 * says how many, `--state S` only those final states (a queued one refused);
 * `aspen jobs --jsonl` exports every matching job, past the 50-row default, one object a line.
 * They run in-process handlers (no guest), through the same engine and store as every command.
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
#include <time.h>
#include <unistd.h>

static char g_dir[256];
static int g_n;

/* A fresh database for one test. */
static void new_db(char *db, size_t cap)
{
    snprintf(db, cap, "%s/d%d.db", g_dir, ++g_n);
    check_cmd(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, db);
}

/* The ids in the database, as `aspen jobs --all --json` lists them. */
static size_t ids_of(const char *db, long long *ids, size_t max)
{
    out o = run("'%s' jobs --all --json --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    json_error_t je;
    json_t *v = json_loadb(o.buf, o.len, 0, &je);
    if (!v)
        fail_msg("not JSON (%s):\n%s", je.text, o.buf);
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n && i < max; i++)
        ids[i] = (long long)json_integer_value(json_object_get(json_array_get(v, i), "id"));
    json_decref(v);
    free(o.buf);
    return n;
}

static bool has_id(const char *db, long long id)
{
    long long ids[256];
    size_t n = ids_of(db, ids, 256);
    for (size_t i = 0; i < n && i < 256; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* n echo jobs run to success (in-process handler, a worker that stops when idle). */
static void finished_jobs(const char *db, int n)
{
    check_cmd(0, NULL, "'%s' submit --type echo --count %d --db '%s'", ASPEN_BIN, n, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
}

static void test_delete_ids_asks_first(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    finished_jobs(db, 3);
    /* no answer (end of input), and "n": nothing deleted, exit 1 */
    check_cmd(1, "nothing deleted", "'%s' delete 1 --db '%s' </dev/null", ASPEN_BIN, db);
    /* and says why, with what to do (a script saw only "[y/N] nothing deleted") */
    check_cmd(1, "standard input is not a terminal and gave no line; add --yes",
              "'%s' delete 1 --db '%s' </dev/null", ASPEN_BIN, db);
    check_cmd(1, "Delete job 1? [y/N]", "echo n | '%s' delete 1 --db '%s'", ASPEN_BIN, db);
    assert_true(has_id(db, 1));
    /* "y" deletes; the job, its attempts and logs are gone */
    check_cmd(0, "deleted 1 job", "echo y | '%s' delete 1 --db '%s'", ASPEN_BIN, db);
    assert_false(has_id(db, 1));
    check_cmd(1, "no job 1 in", "'%s' show 1 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "deleted 2 jobs", "'%s' delete 2 3 --yes --db '%s'", ASPEN_BIN, db);
    long long ids[8];
    assert_int_equal(ids_of(db, ids, 8), 0);
    /* a job that is not there, a bad id, both ids and a filter, neither */
    check_cmd(1, "999", "'%s' delete 999 --yes --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "is not a job id", "'%s' delete abc --yes --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "not both", "'%s' delete 1 --filter failed --yes --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "give their ids or --filter", "'%s' delete --yes --db '%s'", ASPEN_BIN, db);
}

static void test_delete_refuses_unfinished(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    /* job 1 succeeded, job 2 queued (no worker yet), job 3 a 20 s sleep; all tagged t */
    check_cmd(0, NULL, "'%s' submit --type echo --tag t --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "2", "'%s' submit --type echo --tag t --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "job 2 is queued: only finished jobs can be deleted; cancel it first",
          "'%s' delete 2 --yes --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "3", "'%s' submit --type sleep --tag t --payload '{\"ms\":20000}' --db '%s'",
          ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' cancel 2 --db '%s'", ASPEN_BIN, db); /* only job 3 left to run */
    char pidfile[400];
    snprintf(pidfile, sizeof pidfile, "%s/worker%d.pid", g_dir, g_n);
    /* --until-idle: once job 3 is cancelled the worker ends by itself, even if a check below
     * fails before the kill at the end */
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s' >/dev/null 2>&1 & echo $! > '%s'",
          ASPEN_BIN, db, pidfile);
    bool running = false;
    for (int i = 0; i < 400 && !running; i++) {
        out o = run("'%s' jobs --filter 'state:running' --db '%s'", ASPEN_BIN, db);
        running = o.status == 0 && has(&o, "\n3 ");
        free(o.buf);
        if (!running)
            usleep(50 * 1000);
    }
    assert_true(running);
    check_cmd(1, "job 3 is running: only finished jobs can be deleted; cancel it first",
          "'%s' delete 3 --yes --db '%s'", ASPEN_BIN, db);
    /* a filter matching all three deletes the finished two, keeps the running one and says so */
    check_cmd(0, "deleted 2 jobs, 1 matching job not finished (kept)",
          "'%s' delete --filter 'tag:t' --yes --db '%s'", ASPEN_BIN, db);
    /* nothing deleted: exit 3, nothing to do, as cancel --filter and retry --failed (trial 23) */
    check_cmd(3, "no finished job matches 'tag:t' (the matching jobs are queued, scheduled or "
             "running: cancel them first)",
          "'%s' delete --filter 'tag:t' --yes --db '%s'", ASPEN_BIN, db);
    assert_true(has_id(db, 3));
    assert_false(has_id(db, 1));
    assert_false(has_id(db, 2));
    check_cmd(0, NULL, "'%s' cancel 3 --db '%s'", ASPEN_BIN, db);
    /* the worker stops the job and, idle, exits: wait for it (at most 30 s: a worker under ASan
     * on a loaded machine takes seconds to notice, stop and exit) */
    check_cmd(0, NULL, "for i in $(seq 600); do kill -0 $(cat '%s') 2>/dev/null || exit 0; sleep 0.05; "
                   "done; kill $(cat '%s'); exit 1",
          pidfile, pidfile);
    check_cmd(0, "cancelled", "'%s' jobs --filter 'id:3' --db '%s'", ASPEN_BIN, db);
}

static void test_delete_filter(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    finished_jobs(db, 120); /* more than the CLI's 50-row default and than one page */
    check_cmd(0, NULL, "'%s' submit --type echo --tag keep --count 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "Delete 122 finished jobs matching 'type:echo'? [y/N]",
          "echo no | '%s' delete --filter 'type:echo' --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "nosuchkey", "'%s' delete --filter 'nosuchkey:x' --yes --db '%s'", ASPEN_BIN, db);
    long long ids[256];
    assert_int_equal(ids_of(db, ids, 256), 122);
    check_cmd(0, "deleted 2 jobs", "echo yes | '%s' delete --filter 'tag:keep' --db '%s'", ASPEN_BIN,
          db);
    assert_int_equal(ids_of(db, ids, 256), 120);
    check_cmd(0, "deleted 120 jobs", "'%s' delete --filter 'succeeded' --yes --db '%s'", ASPEN_BIN,
          db);
    assert_int_equal(ids_of(db, ids, 256), 0);
}

static void test_purge(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    finished_jobs(db, 5);
    check_cmd(0, "6", "'%s' submit --type echo --db '%s'", ASPEN_BIN, db); /* queued: never purged */
    check_cmd(2, "needs --older-than DURATION or --state S", "'%s' purge --yes --db '%s'", ASPEN_BIN,
          db);
    check_cmd(2, "'3x' is not a duration", "'%s' purge --older-than 3x --yes --db '%s'", ASPEN_BIN, db);
    /* --state (issue 10): only final states; none of these failed, so nothing goes */
    check_cmd(2, "--state queued: only finished jobs are purged",
          "'%s' purge --state queued --yes --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "'faild' is not a state (did you mean failed?)",
          "'%s' purge --state faild --yes --db '%s'", ASPEN_BIN, db);
    /* the help reads in sentences: no line of it is one word that a wrap left behind (trial 10:
     * "without" alone, and "each:" ending a line mid-parenthesis) */
    out h = run("'%s' purge --help", ASPEN_BIN);
    expect_out(&h, 0, "usage: aspen purge");
    for (char *line = h.buf, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        const char *t = line + strspn(line, " ");
        if (*t && !strchr(t, ' '))
            fail_msg("aspen purge --help has a line of one word: '%s'", line);
        assert_true(strlen(line) <= 80);
    }
    free(h.buf);
    /* nothing matched: said so with the states and age asked, not "purged 0" (trial 10) */
    check_cmd(3, "nothing to purge: no failed job older than 1d matched; nothing deleted",
          "'%s' purge --older-than 1d --state failed --yes --db '%s'", ASPEN_BIN, db);
    out o = run("'%s' purge --older-than 1d --state failed --yes --db '%s'", ASPEN_BIN, db);
    assert_false(has(&o, "purged 0"));
    free(o.buf);
    check_cmd(1, "nothing deleted", "'%s' purge --older-than 0s --db '%s' </dev/null", ASPEN_BIN, db);
    /* just finished: none is older than an hour */
    check_cmd(3, "nothing to purge: no finished job older than 1h matched; nothing deleted",
          "'%s' purge --older-than 1h --yes --db '%s'", ASPEN_BIN, db);
    long long ids[16];
    assert_int_equal(ids_of(db, ids, 16), 6);
    usleep(20 * 1000);
    check_cmd(0, "purged 5 finished jobs older than 10ms",
          "echo y | '%s' purge --older-than 10ms --db '%s'", ASPEN_BIN, db);
    assert_int_equal(ids_of(db, ids, 16), 1);
    assert_int_equal(ids[0], 6);
}

/* Every line one JSON object; returns how many, and checks each has an id and the wanted state. */
static size_t jsonl_lines(const out *o, const char *state)
{
    size_t n = 0;
    const char *p = o->buf, *end = o->buf + o->len;
    long long prev = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            fail_msg("a line without its newline at the end:\n%s", p);
        json_error_t je;
        json_t *v = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!v || !json_is_object(v))
            fail_msg("line %zu is not a JSON object (%s): %.*s", n + 1, v ? "" : je.text,
                     (int)(nl - p), p);
        long long id = (long long)json_integer_value(json_object_get(v, "id"));
        assert_true(id > 0);
        if (prev)
            assert_true(id < prev); /* newest first, no row twice across pages */
        prev = id;
        if (state)
            assert_string_equal(json_string_value(json_object_get(v, "state")), state);
        json_decref(v);
        n++;
        p = nl + 1;
    }
    return n;
}

static void test_export_jsonl(void **st)
{
    (void)st;
    char db[300];
    new_db(db, sizeof db);
    finished_jobs(db, 1203); /* past the 50-row default and past one 1000-row page */
    check_cmd(0, NULL, "'%s' submit --type echo --count 4 --db '%s'", ASPEN_BIN, db); /* queued */
    out o = run("'%s' jobs --jsonl --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_int_equal(jsonl_lines(&o, NULL), 1207);
    free(o.buf);
    o = run("'%s' jobs --filter succeeded --jsonl --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_int_equal(jsonl_lines(&o, "succeeded"), 1203);
    free(o.buf);
    o = run("'%s' jobs --state queued --jsonl --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_int_equal(jsonl_lines(&o, "queued"), 4);
    free(o.buf);
    o = run("'%s' jobs --jsonl --limit 1001 --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_int_equal(jsonl_lines(&o, NULL), 1001);
    free(o.buf);
    check_cmd(2, "not both", "'%s' jobs --json --jsonl --db '%s'", ASPEN_BIN, db);
}

int main(void)
{
    setenv("ASPEN_GUEST_DIR", GUEST_DIR, 1);
    if (cli_scratch_dir(g_dir, sizeof g_dir, "delete") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete_ids_asks_first),
        cmocka_unit_test(test_delete_refuses_unfinished),
        cmocka_unit_test(test_delete_filter),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_export_jsonl),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (cli_remove_tree(g_dir) != 0)
        return 1;
    return rc;
}
