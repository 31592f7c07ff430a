/* tests/cli/test_cli_purge.c — `aspen purge` on a database that holds many finished jobs, on
 * SQLite and on PostgreSQL (the tests' private server, ctest fixture "pg"), issue 10:
 *   - it deletes exactly the jobs asked for (the state, the age), with their attempts and logs,
 *     and the store's kept counts still match the rows (none orphaned, none counted twice);
 *   - on a terminal it shows its progress (rewritten in place) and clears it at the end;
 *   - Ctrl-C on the terminal (the tty's SIGINT, as a user gives it) stops it between batches: it
 *     exits 130 saying how many were deleted and that the rest are untouched, the count it gives
 *     is exactly what went, the rest are whole (each with its attempt and log line), the kept
 *     counts match.
 *   - before it asks (and with --dry-run, --json) it says how many of each state it would delete,
 *     counted by the store, and a "no" or a dry run deletes nothing.
 * The jobs are put in with INSERT … SELECT as a year of history would be there already (as
 * bench/retention_bench.c does): a million submits would take the test's whole time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include "aspen_store.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

/* One test database: an SQLite file, or a PostgreSQL database of its own on the tests' server. */
typedef struct db {
    bool pg;
    char name[800];    /* what --db takes */
    char server[512];  /* PostgreSQL: the admin conninfo */
    char pg_db[64];
} db;

static void pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* A statement on the test's database behind the store's back. */
static void raw_exec(const db *d, const char *sql)
{
    if (d->pg) {
        pg_exec(d->name, sql);
        return;
    }
    sqlite3 *s = NULL;
    char *msg = NULL;
    if (sqlite3_open(d->name, &s) != SQLITE_OK || sqlite3_exec(s, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(s));
    sqlite3_close(s);
}

static long long raw_count(const db *d, const char *sql)
{
    long long v = -1;
    if (d->pg) {
        PGconn *c = PQconnectdb(d->name);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(d->name, &s) != SQLITE_OK || sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(s));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(s);
    return v;
}

static void db_open(db *d, bool pg, const char *tag)
{
    static int seq;
    memset(d, 0, sizeof *d);
    d->pg = pg;
    if (!pg) {
        snprintf(d->name, sizeof d->name, "%s/%s-%d.db", g_dir, tag, ++seq);
    } else {
        cli_pg_server(d->server, sizeof d->server);
        snprintf(d->pg_db, sizeof d->pg_db, "aspen_cli_purge_%s_%d_%d", tag, (int)getpid(), ++seq);
        char sql[160];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", d->pg_db);
        pg_exec(d->server, sql);
        snprintf(d->name, sizeof d->name, "%s dbname=%s", d->server, d->pg_db);
    }
    check_cmd(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, d->name);
}

static void db_close(db *d)
{
    if (d->pg) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", d->pg_db);
        pg_exec(d->server, sql);
    }
}

/* n jobs in `state` that finished `age_ms` ago, each with an attempt and a log line; then the
 * store's kept counts made right (aspen_store_recount), as after any bulk load. */
static void fill(const db *d, long long n, const char *state, int64_t age_ms)
{
    long long t = (long long)(aspen_store_now_ms() - age_ms);
    char sql[1200];
    if (d->pg)
        snprintf(sql, sizeof sql,
                 "INSERT INTO jobs (type, payload, state, run_at, attempts, created_at, started_at,"
                 " finished_at, log_count) SELECT 'echo', '{\"old\":1}', '%s', %lld, 1, %lld,"
                 " %lld, %lld + g %% 1000, 1 FROM generate_series(1, %lld) g",
                 state, t, t, t, t, n);
    else
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %lld)"
                 " INSERT INTO jobs (type, payload, state, run_at, attempts, created_at,"
                 " started_at, finished_at, log_count) SELECT 'echo', '{\"old\":1}', '%s', %lld,"
                 " 1, %lld, %lld, %lld + i %% 1000, 1 FROM c",
                 n, state, t, t, t, t);
    raw_exec(d, sql);
    raw_exec(d, "INSERT INTO attempts (job, number, started_at, finished_at, outcome)"
                " SELECT id, 1, started_at, finished_at, 'succeeded' FROM jobs WHERE id NOT IN"
                " (SELECT job FROM attempts)");
    raw_exec(d, "INSERT INTO logs (job, seq, attempt, time_ms, line)"
                " SELECT id, 1, 1, finished_at, 'an old line' FROM jobs WHERE id NOT IN"
                " (SELECT job FROM logs)");
    if (d->pg)
        raw_exec(d, "ANALYZE");
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(d->name, NULL, &s, &se) != 0 || aspen_store_recount(s, &se) != 0)
        fail_msg("recounting after the fill: %s", se.msg);
    aspen_store_close(s);
}

static long long jobs_in(const db *d, const char *state)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE state = '%s'", state);
    return raw_count(d, sql);
}

/* Every job left has its attempt and its log line, no attempt or line lost its job, and the
 * store's kept counts (what aspen jobs and the console show) are the rows' own. */
static void assert_whole(const db *d)
{
    long long jobs = raw_count(d, "SELECT count(*) FROM jobs");
    assert_int_equal(raw_count(d, "SELECT count(*) FROM attempts"), jobs);
    assert_int_equal(raw_count(d, "SELECT count(*) FROM logs"), jobs);
    assert_int_equal(raw_count(d, "SELECT count(*) FROM attempts WHERE job NOT IN (SELECT id FROM"
                                  " jobs)"),
                     0);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    int64_t c[ASPEN_STORE_STATE_COUNT];
    if (aspen_store_open(d->name, NULL, &s, &se) != 0 || aspen_store_counts(s, c, &se) != 0)
        fail_msg("reading the counts: %s", se.msg);
    aspen_store_close(s);
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        assert_int_equal(c[st], jobs_in(d, aspen_store_state_name((aspen_store_state)st)));
}

/* The purge's state and age are kept to exactly: younger jobs and other states stay. */
static void purge_exact(bool pg)
{
    db d;
    db_open(&d, pg, "exact");
    fill(&d, 5000, "succeeded", 3 * 86400000LL);
    fill(&d, 300, "failed", 3 * 86400000LL);
    fill(&d, 200, "succeeded", 3600000LL); /* an hour old: younger than --older-than 1d */
    /* it says how many of each state it would delete, from the store, before it asks: a dry run,
     * the question (answered no), --json; nothing goes */
    check_cmd(0, "would delete 5,300 finished jobs (succeeded 5,000, failed 300, cancelled 0) older "
                 "than 1d; nothing deleted",
              "'%s' purge --older-than 1d --dry-run --db '%s'", ASPEN_BIN, d.name);
    check_cmd(1, "Delete 5,300 finished jobs (succeeded 5,000, failed 300, cancelled 0) older than "
                 "1d, with their attempts and logs? [y/N] nothing deleted",
              "echo n | '%s' purge --older-than 1d --db '%s'", ASPEN_BIN, d.name);
    check_cmd(0, "Delete 5,500 succeeded or failed jobs (succeeded 5,200, failed 300), with their",
              "echo n | '%s' purge --state failed,succeeded --db '%s' 2>&1; test $? = 1",
              ASPEN_BIN, d.name);
    out o = run_plain("'%s' purge --older-than 1d --state succeeded --dry-run --json --db '%s'",
                      ASPEN_BIN, d.name);
    expect_out(&o, 0, "\"total\": 5000");
    json_error_t je;
    json_t *v = json_loads(o.buf, 0, &je);
    assert_non_null(v);
    assert_true(json_is_true(json_object_get(v, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "states"), "succeeded")),
                     5000);
    assert_null(json_object_get(json_object_get(v, "states"), "failed")); /* not asked for */
    assert_int_equal(json_integer_value(json_object_get(v, "older_than_ms")), 86400000);
    assert_int_equal(json_integer_value(json_object_get(v, "deleted")), 0);
    json_decref(v);
    free(o.buf);
    assert_int_equal(jobs_in(&d, "succeeded"), 5200);
    assert_int_equal(jobs_in(&d, "failed"), 300);
    /* the count with separators, as the question's and every other count (trial 10) */
    check_cmd(0, "purged 5,000 succeeded jobs older than 1d",
              "'%s' purge --state succeeded --older-than 1d --yes --db '%s'", ASPEN_BIN, d.name);
    assert_int_equal(jobs_in(&d, "succeeded"), 200);
    assert_int_equal(jobs_in(&d, "failed"), 300);
    assert_whole(&d);
    /* every final state, every age */
    o = run_plain("'%s' purge --state succeeded,failed --yes --json --db '%s'", ASPEN_BIN, d.name);
    expect_out(&o, 0, "\"deleted\": 500");
    expect_out(&o, 0, "\"total\": 500");
    free(o.buf);
    assert_int_equal(raw_count(&d, "SELECT count(*) FROM jobs"), 0);
    assert_whole(&d);
    /* nothing left: says so, asks nothing and exits 3, nothing to do (trial 23) */
    check_cmd(3, "nothing to purge: no finished job older than 1d",
              "'%s' purge --older-than 1d --db '%s' </dev/null", ASPEN_BIN, d.name);
    db_close(&d);
}

static void test_exact(void **st) { (void)st, purge_exact(false); }
static void test_exact_pg(void **st) { (void)st, purge_exact(true); }

/* Reads what the pty has (up to 200 ms) onto buf. */
static void pty_read(int fd, char *buf, size_t cap, size_t *len)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 200) > 0 && *len < cap - 1) {
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n > 0)
            *len += (size_t)n;
    }
    buf[*len] = '\0';
}

/* The purge on a terminal, Ctrl-C typed once it has deleted some: it stops between batches. */
static void purge_interrupted(bool pg)
{
    db d;
    db_open(&d, pg, "ctrlc");
    /* Still at it when the signal comes, however fast the machine: a batch is at most 500 jobs
     * (the engine's retention_batch) and is followed by a pause of at least 5 ms, so 50,000 jobs
     * take 100 batches and half a second at the very least, while the Ctrl-C is typed within a
     * few ms of the first progress line. (On this loaded host a purge goes ~500 jobs/s.) */
    long long total = 50000;
    fill(&d, total, "succeeded", 3 * 86400000LL);
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(ASPEN_BIN, ASPEN_BIN, "purge", "--older-than", "1d", "--yes", "--db", d.name,
              (char *)NULL);
        _exit(127);
    }
    static char buf[1 << 20];
    size_t len = 0;
    buf[0] = '\0'; /* the last test's output is not this one's */
    /* the progress line says jobs went (on the terminal, before the end) */
    for (time_t end = time(NULL) + 120; !strstr(buf, "Ctrl-C stops safely") && time(NULL) < end;)
        pty_read(fd, buf, sizeof buf, &len);
    if (!strstr(buf, "purging succeeded jobs: ") || !strstr(buf, "Ctrl-C stops safely"))
        fail_msg("no progress line within 120 s:\n%s", buf);
    assert_int_equal(write(fd, "\x03", 1), 1); /* Ctrl-C, through the terminal */
    /* bounded by the clock, not by reads: once the child closes the terminal a read returns at
     * once, and a count of reads would run out before it has exited */
    int status = 0;
    bool exited = false;
    for (time_t end = time(NULL) + 120; !exited && time(NULL) < end;) {
        pty_read(fd, buf, sizeof buf, &len);
        exited = waitpid(pid, &status, WNOHANG) == pid;
        if (!exited)
            usleep(10 * 1000);
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the purge had not exited 120 s after Ctrl-C:\n%s", buf);
    }
    pty_read(fd, buf, sizeof buf, &len);
    close(fd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 130 ||
        !strstr(buf, "before it was interrupted; the rest are untouched (run the same command "
                     "again to go on)"))
        fail_msg("want exit 130 and the interrupted count, got %d:\n%s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1000 - WTERMSIG(status), buf);
    const char *p = strstr(buf, "purged ");
    assert_non_null(p);
    long long said = 0; /* "purged 12,345 ...": the separators skipped */
    for (p += 7; (*p >= '0' && *p <= '9') || *p == ','; p++)
        if (*p != ',')
            said = said * 10 + (*p - '0');
    long long left = jobs_in(&d, "succeeded");
    assert_true(said > 0);
    assert_true(left > 0);
    assert_int_equal(said + left, total); /* the count it gave is exactly what went */
    assert_whole(&d);
    /* the progress line was cleared before the last line: the terminal shows the result alone */
    assert_non_null(strstr(buf, "\r\033[Kpurged "));
    db_close(&d);
}

static void test_interrupted(void **st) { (void)st, purge_interrupted(false); }
static void test_interrupted_pg(void **st) { (void)st, purge_interrupted(true); }

int main(void)
{
    if (cli_scratch_dir(g_dir, sizeof g_dir, "purge") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),       cmocka_unit_test(test_exact_pg),
        cmocka_unit_test(test_interrupted), cmocka_unit_test(test_interrupted_pg),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (cli_remove_tree(g_dir) != 0)
        return 1;
    return rc;
}
