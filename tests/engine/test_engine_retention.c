/* tests/engine/test_engine_retention.c — the engine's retention pruner (engine/retention.c) on
 * both backends (ctest runs it as engine_test_engine_retention and _pg):
 *
 *   settings   finished jobs past their state's retention go, with their attempts and logs;
 *              younger ones, a state set to off, and unfinished jobs stay
 *   under load many old finished jobs (ASPEN_TEST_RETENTION_JOBS, default 100,000 on SQLite and
 *              20,000 on PostgreSQL; made with one INSERT … SELECT, as a year of history would
 *              be) are pruned while 10,000 jobs are submitted and run; every one of those
 *              succeeds, none of them is pruned, and every old one goes. The queue wait of the
 *              10,000 (started_at − created_at: the claim latency people see) is measured with
 *              the pruner and again with it off on an equally full database, and printed (not
 *              asserted: this machine's load decides timing).
 *   purge      aspen purge's paced loop on a database no engine serves is not paced (batches
 *              above retention_batch); beside a live engine it is; on an engine whose own pruner
 *              is pruning both finish (SQLite: both through its store thread) and it closes
 * KVM is required by the engine (fail, never skip). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_TMP_PREFIX "aspen-retention-test"
#include "test_support.h"

#define H (3600LL * 1000)

static bool on_pg(void) { return g_pg_name[0] != '\0'; }

/* A statement on the test's database behind the store's back (either backend). */
static void raw_exec(const char *sql)
{
    if (on_pg()) {
        PGconn *c = PQconnectdb(g_db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return;
    }
    sqlite3 *db = NULL;
    char *msg = NULL;
    /* the engine under test writes meanwhile: wait for its lock as the store's handles do (with
     * none, a loaded machine failed the test with "database is locked") */
    if (sqlite3_open(g_db, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 30000) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_close(db);
}

static int64_t raw_int(const char *sql)
{
    int64_t v = 0;
    if (on_pg()) {
        PGconn *c = PQconnectdb(g_db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(g_db, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 30000) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* n finished jobs of `state`, finished `age` ms ago, each with an attempt and a log line, in
 * three INSERT … SELECT statements; the store's counts recounted after. */
static void old_jobs(aspen_engine *eng, const char *state, int64_t n, int64_t age)
{
    int64_t t = aspen_store_now_ms() - age;
    char sql[1200];
    if (on_pg())
        snprintf(sql, sizeof sql,
                 "INSERT INTO jobs (type, payload, state, run_at, attempts, created_at, started_at,"
                 " finished_at, log_count) SELECT 'echo', '{\"old\":1}', '%s', %lld, 1, %lld,"
                 " %lld, %lld + g %% 1000, 1 FROM generate_series(1, %lld) g",
                 state, (long long)t, (long long)t, (long long)t, (long long)t, (long long)n);
    else
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %lld)"
                 " INSERT INTO jobs (type, payload, state, run_at, attempts, created_at,"
                 " started_at, finished_at, log_count) SELECT 'echo', '{\"old\":1}', '%s', %lld,"
                 " 1, %lld, %lld, %lld + i %% 1000, 1 FROM c",
                 (long long)n, state, (long long)t, (long long)t, (long long)t, (long long)t);
    raw_exec(sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO attempts (job, number, started_at, finished_at, outcome)"
             " SELECT id, 1, started_at, finished_at, '%s' FROM jobs WHERE payload%s = '{\"old\":1}'"
             " AND state = '%s'",
             strcmp(state, "cancelled") == 0 ? "cancelled"
             : strcmp(state, "failed") == 0  ? "failed"
                                             : "succeeded",
             on_pg() ? "::text" : "", state);
    raw_exec(sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO logs (job, seq, attempt, time_ms, line) SELECT id, 1, 1, finished_at,"
             " 'an old line' FROM jobs WHERE payload%s = '{\"old\":1}' AND state = '%s'",
             on_pg() ? "::text" : "", state);
    raw_exec(sql);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &se), 0);
    assert_int_equal(aspen_store_recount(s, &se), 0);
    aspen_store_close(s);
    (void)eng;
}

static aspen_engine *open_eng(int poll_ms)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 2;
    cfg.guest_dir = GUEST_DIR;
    cfg.retention_poll_ms = poll_ms;
    return open_cfg(&cfg);
}

static int64_t count_where(const char *where)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE %s", where);
    return raw_int(sql);
}

static bool wait_for(const char *where, int64_t want, int timeout_ms)
{
    int64_t t0 = now_ms();
    while (now_ms() - t0 < timeout_ms) {
        if (count_where(where) == want)
            return true;
        sleep_ms(100);
    }
    return count_where(where) == want;
}

static void test_settings(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(100);
    old_jobs(eng, "succeeded", 50, 2 * 24 * H);  /* past 24 h: go */
    old_jobs(eng, "cancelled", 40, 2 * H);       /* retention 1 h below: go */
    old_jobs(eng, "failed", 30, 30 * 24 * H);    /* off below: stay */
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_retention_set(eng, ASPEN_STORE_CANCELLED, H, &err), 0);
    assert_int_equal(aspen_engine_retention_set(eng, ASPEN_STORE_FAILED, 0, &err), 0);
    aspen_engine_job_spec q = {.type = "echo", .run_at_ms = aspen_store_now_ms() + 3600 * 1000};
    int64_t later = submit(eng, &q); /* scheduled: never pruned */
    aspen_engine_job_spec e = {.type = "echo"};
    int64_t fresh = submit(eng, &e); /* finishes now: far from its 24 h */
    start(eng);
    assert_true(wait_for("state = 'succeeded'", 1, 30000));
    assert_true(wait_for("state = 'cancelled'", 0, 30000));
    assert_int_equal(count_where("state = 'failed'"), 30);
    char where[64];
    snprintf(where, sizeof where, "id = %lld", (long long)fresh);
    assert_int_equal(count_where(where), 1);
    snprintf(where, sizeof where, "id = %lld AND state = 'scheduled'", (long long)later);
    assert_int_equal(count_where(where), 1);
    /* the old jobs' attempts and logs went with them, the failed ones' stayed */
    assert_int_equal(raw_int("SELECT count(*) FROM attempts"), 31);
    assert_int_equal(raw_int("SELECT count(*) FROM logs WHERE line = 'an old line'"), 30);
    aspen_engine_retention_stats st;
    aspen_engine_retention_stats_get(eng, &st);
    assert_int_equal(st.pruned, 90);
    assert_true(st.last_run_ms > 0);
    aspen_engine_close(eng);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &se), 0);
    assert_int_equal(aspen_store_check(s, &se), 0); /* the kept counts match */
    aspen_store_close(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define LOAD 10000

/* Submits LOAD echo jobs in batches of 100 about every 10 ms while the engine runs, waits for all
 * of them, and prints their queue wait (started_at − created_at) percentiles. */
static void run_load(aspen_engine *eng, const char *label, int64_t n_old)
{
    aspen_engine_job_spec specs[100];
    for (int i = 0; i < 100; i++)
        specs[i] = (aspen_engine_job_spec){.type = "echo", .payload = "{\"new\":1}"};
    int64_t t0 = now_ms();
    for (int b = 0; b < LOAD / 100; b++) {
        aspen_engine_error err = {0};
        if (aspen_engine_submit_batch(eng, specs, 100, NULL, &err) != 0)
            fail_msg("submit: %s", err.msg);
        sleep_ms(10);
    }
    const char *done = on_pg() ? "state = 'succeeded' AND payload::text = '{\"new\":1}'"
                               : "state = 'succeeded' AND payload = '{\"new\":1}'";
    if (!wait_for(done, LOAD, 600000))
        fail_msg("%s: only %lld of %d jobs succeeded", label, (long long)count_where(done), LOAD);
    int64_t took = now_ms() - t0;
    /* the waits, read back whole */
    int64_t *w = calloc(LOAD, sizeof *w);
    size_t n = 0;
    const char *q = on_pg() ? "SELECT started_at - created_at FROM jobs WHERE payload::text ="
                              " '{\"new\":1}'"
                            : "SELECT started_at - created_at FROM jobs WHERE payload ="
                              " '{\"new\":1}'";
    if (on_pg()) {
        PGconn *c = PQconnectdb(g_db);
        PGresult *r = PQexec(c, q);
        for (int i = 0; i < PQntuples(r) && n < LOAD; i++)
            w[n++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW && n < LOAD)
            w[n++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    assert_int_equal(n, LOAD);
    qsort(w, n, sizeof *w, cmp_i64);
    aspen_engine_retention_stats rs;
    aspen_engine_retention_stats_get(eng, &rs);
    printf("RETENTION %s (%s, %lld old finished jobs): %d jobs in %.1f s; queue wait p50 %lld ms,"
           " p99 %lld ms, max %lld ms; pruned %lld in %lld batches (longest %.1f ms)\n",
           label, on_pg() ? "postgresql" : "sqlite", (long long)n_old, LOAD, took / 1000.0,
           (long long)w[n / 2], (long long)w[n * 99 / 100], (long long)w[n - 1],
           (long long)rs.pruned, (long long)rs.batches, rs.max_batch_ms);
    fflush(stdout);
    free(w);
}

static int64_t n_old_jobs(void)
{
    const char *e = getenv("ASPEN_TEST_RETENTION_JOBS");
    if (e && atoll(e) > 0)
        return atoll(e);
    return on_pg() ? 20000 : 100000;
}

static void test_pruned_under_load(void **state)
{
    (void)state;
    int64_t n = n_old_jobs();
    aspen_engine *eng = open_eng(200);
    old_jobs(eng, "succeeded", n, 3 * 24 * H);
    start(eng);
    run_load(eng, "with the pruner", n);
    /* every old one goes (the pruner may still be at it), none of the new ones */
    assert_true(wait_for(on_pg() ? "payload::text = '{\"old\":1}'" : "payload = '{\"old\":1}'", 0,
                         600000));
    assert_int_equal(raw_int("SELECT count(*) FROM attempts WHERE outcome = 'succeeded'"), LOAD);
    assert_int_equal(raw_int("SELECT count(*) FROM logs WHERE line = 'an old line'"), 0);
    assert_int_equal(count_where("state = 'succeeded'"), LOAD);
    aspen_engine_close(eng);
}

/* The same load on an equally full database with the pruner off: the baseline to compare. */
static void test_baseline_without_pruner(void **state)
{
    (void)state;
    int64_t n = n_old_jobs();
    aspen_engine *eng = open_eng(-1);
    old_jobs(eng, "succeeded", n, 3 * 24 * H);
    start(eng);
    run_load(eng, "without the pruner", n);
    aspen_engine_retention_stats rs;
    aspen_engine_retention_stats_get(eng, &rs);
    assert_int_equal(rs.pruned, 0);
    assert_int_equal(count_where("state = 'succeeded'"), LOAD + n);
    aspen_engine_close(eng);
}

/* aspen purge's loop (aspen_engine_prune_paced) on a database no engine serves: nothing waits for
 * the lock, so it is not paced — batches grow past retention_batch — and everything goes; with an
 * engine live on the database it is paced again: no batch above retention_batch. */
typedef struct purge_seen {
    int64_t largest, calls;
} purge_seen;

static bool purge_seen_after(void *ctx, const aspen_engine_prune_progress *p, int pause_ms)
{
    purge_seen *seen = ctx;
    seen->calls++;
    if (p->batch_deleted > seen->largest)
        seen->largest = p->batch_deleted;
    (void)pause_ms; /* no sleep: the test looks at the sizes, not at the pace */
    return true;
}

static void test_purge_alone_then_paced(void **state)
{
    (void)state;
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 0; /* as `aspen purge` opens it */
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *purger = open_cfg(&cfg);
    const int64_t cap = cfg.retention_batch;
    assert_true(cap > 0);
    old_jobs(purger, "succeeded", 30 * cap, 3 * 24 * H);

    aspen_engine_prune_progress p = {0};
    purge_seen seen = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_prune_paced(purger, ASPEN_STORE_SUCCEEDED, aspen_store_now_ms(),
                                              purge_seen_after, &seen, &p, &err),
                     0);
    assert_true(p.alone);
    assert_int_equal(p.deleted, 30 * cap);
    assert_true(seen.largest > cap);
    assert_int_equal(count_where("state = 'succeeded'"), 0);

    /* an engine with workers comes up on the database: the next purge is paced */
    aspen_engine *busy = open_eng(-1);
    start(busy);
    old_jobs(purger, "failed", 10 * cap, 3 * 24 * H);
    aspen_engine_prune_progress q = {0};
    purge_seen paced = {0};
    assert_int_equal(aspen_engine_prune_paced(purger, ASPEN_STORE_FAILED, aspen_store_now_ms(),
                                              purge_seen_after, &paced, &q, &err),
                     0);
    assert_false(q.alone);
    assert_int_equal(q.deleted, 10 * cap);
    assert_true(paced.largest <= cap);
    aspen_engine_close(busy);
    aspen_engine_close(purger);
}

/* A purge on an engine whose own pruner is pruning: on SQLite both hand their batches to the
 * engine's store thread (one slot, so one waits for the other), jobs run meanwhile, and both
 * finish with everything of theirs deleted; closing the engine right after does not wait for a
 * batch nobody will take. On PostgreSQL the same calls run on their own connections. */
static void test_purge_beside_own_pruner(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(50);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_retention_set(eng, ASPEN_STORE_FAILED, 0, &err), 0);
    old_jobs(eng, "succeeded", 20000, 3 * 24 * H); /* the pruner's */
    old_jobs(eng, "failed", 5000, 3 * 24 * H);     /* off: only the purge takes them */
    start(eng);
    aspen_engine_job_spec specs[50];
    for (int i = 0; i < 50; i++)
        specs[i] = (aspen_engine_job_spec){.type = "echo", .payload = "{\"new\":1}"};
    assert_int_equal(aspen_engine_submit_batch(eng, specs, 50, NULL, &err), 0);
    aspen_engine_prune_progress p = {0};
    purge_seen seen = {0};
    assert_int_equal(aspen_engine_prune_paced(eng, ASPEN_STORE_FAILED, aspen_store_now_ms(),
                                              purge_seen_after, &seen, &p, &err),
                     0);
    assert_false(p.alone); /* this engine serves the queue */
    assert_false(p.stopped);
    assert_int_equal(p.deleted, 5000);
    assert_int_equal(count_where("state = 'failed'"), 0);
    assert_true(wait_for("state = 'succeeded'", 50, 120000)); /* the old ones went, the new ran */
    assert_int_equal(aspen_engine_submit_batch(eng, specs, 50, NULL, &err), 0);
    assert_true(wait_for("state = 'succeeded'", 100, 60000));
    /* more to prune, and the engine closed at once: the pruner's waiting batch is withdrawn */
    old_jobs(eng, "succeeded", 20000, 3 * 24 * H);
    sleep_ms(200);
    aspen_engine_close(eng);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &se), 0);
    assert_int_equal(aspen_store_check(s, &se), 0); /* the kept counts match what is there */
    aspen_store_close(s);
    assert_int_equal(raw_int("SELECT count(*) FROM attempts WHERE outcome = 'failed'"), 0);
}

int main(void)
{
    setenv("ASPEN_GUEST_DIR", GUEST_DIR, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_alone_then_paced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_beside_own_pruner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baseline_without_pruner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pruned_under_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
