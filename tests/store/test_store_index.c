/* test_store_index.c — finished jobs stay out of the hot path. With 200,000 finished jobs in the
 * table, the claim and the promotion still read only their partial indexes (EXPLAIN QUERY PLAN:
 * jobs_queue / jobs_due, no table scan, no sort), and the claim does the same amount of work as on
 * an empty table (SQLite's own VM step counter, which is deterministic, unlike a timer). */
#include "helpers.h"

#include <sqlite3.h>

#include "sqlite_store.h"

static char *plan_of(sqlite3 *db, const char *sql)
{
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        fail_msg("plan of %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(q);
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    while (sqlite3_step(st) == SQLITE_ROW)
        len += (size_t)snprintf(out + len, cap - len, "%s\n", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return out;
}

/* Every step of the plan that reads jobs must go through `index` (or the rowid), with no sort. */
static void expect_plan(sqlite3 *db, enum stmt_id id, const char *index)
{
    char *plan = plan_of(db, store_stmt_sql(id));
    bool used = false, ok = !strstr(plan, "TEMP B-TREE");
    for (char *line = strtok(plan, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, " jobs"))
            continue;
        if (strstr(line, "INTEGER PRIMARY KEY"))
            continue;
        const char *u = strstr(line, "INDEX ");
        if (u && strncmp(u + 6, index, strlen(index)) == 0)
            used = true;
        else
            ok = false;
    }
    free(plan);
    if (!ok || !used) {
        plan = plan_of(db, store_stmt_sql(id));
        fail_msg("statement %d does not read jobs through %s alone:\n%s", (int)id, index, plan);
    }
}

static void add_finished(aspen_store *s, int n)
{
    char *sql = sqlite3_mprintf(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d)"
        " INSERT INTO jobs (type, payload, state, priority, run_at, attempts, created_at,"
        "  started_at, finished_at, result)"
        " SELECT 'old', '{\"n\":' || x || '}', CASE WHEN x %% 10 = 0 THEN 'failed' ELSE 'succeeded' END,"
        "  x %% 7, %lld - x, 1, %lld - x, %lld - x, %lld - x, 'output'"
        " FROM c",
        n, (long long)T0, (long long)T0, (long long)T0, (long long)T0);
    char *msg = NULL;
    if (sqlite3_exec(sq(s)->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("filling: %s", msg);
    sqlite3_free(sql);
}

/* VM steps, full-scan steps and sorts of one claim of 10 jobs. */
static void claim_cost(struct fixture *f, int64_t now, int *steps, int *fullscan, int *sorts)
{
    assert_int_equal(claim_ids(f->s, f->engine, 10, now, NULL), 10);
    sqlite3_stmt *st = sq(f->s)->st[ST_CLAIM];
    assert_non_null(st);
    *steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
    *fullscan = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1);
    *sorts = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_SORT, 1);
}

static void test_partial_index(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 200; i++)
        submit_job(f->s, "live", i % 5, i % 3 ? 0 : T0 + 1000 + i, 3, T0);
    int steps0, full0, sorts0, steps1, full1, sorts1;
    claim_cost(f, T0, &steps0, &full0, &sorts0);

    add_finished(f->s, 200000);
    assert_int_equal(sqlite3_exec(sq(f->s)->db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
    claim_cost(f, T0, &steps1, &full1, &sorts1);
    /* The only "full scan" is over the ten claimed ids themselves (the IN list), never the table. */
    assert_true(full0 <= 10);
    assert_int_equal(full1, full0);
    assert_int_equal(sorts0, 0);
    assert_int_equal(sorts1, 0);
    if (steps1 > steps0 + steps0 / 4)
        fail_msg("claim did %d VM steps with 200k finished jobs, %d without", steps1, steps0);

    expect_plan(sq(f->s)->db, ST_CLAIM, "jobs_queue");
    expect_plan(sq(f->s)->db, ST_PROMOTE_DUE, "jobs_due");
    expect_plan(sq(f->s)->db, ST_OLDEST_QUEUED, "jobs_queue");
    expect_plan(sq(f->s)->db, ST_OLDEST_DUE, "jobs_due");
    expect_plan(sq(f->s)->db, ST_ORPHANS, "jobs_running");
    expect_plan(sq(f->s)->db, ST_CANCEL_REQUESTS, "jobs_running");

    /* Scheduled jobs come due among the finished ones and are still found by their index. */
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, T0 + 5000, &e), 0);
    size_t total = 0, n;
    while ((n = claim_ids(f->s, f->engine, 64, T0 + 5000, NULL)) > 0)
        total += n;
    assert_int_equal(total, 180); /* 200 live jobs, 20 claimed above */
    int64_t age = 0;
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0 + 5000, &age, &e), 0);
    assert_int_equal(age, 0);
}

static int count_ops(void *p)
{
    (*(long *)p)++;
    return 0;
}

/* SQLite VM operations (in hundreds) spent listing the 50 newest jobs matching `text`. */
static long list_cost(aspen_store *s, const char *text)
{
    aspen_store_filter f;
    char buf[256];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_filter_parse(text, &f, buf, sizeof buf, &e), 0);
    f.limit = 50;
    long ops = 0;
    sqlite3_progress_handler(sq(s)->db, 100, count_ops, &ops);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(s, &f, &jobs, &n, &e), 0);
    sqlite3_progress_handler(sq(s)->db, 0, NULL, NULL);
    assert_int_equal(n, 50);
    aspen_store_jobs_free(jobs, n);
    return ops;
}

/* The console lists jobs by state, newest first. With a long queue of newer jobs in front, finding
 * the newest succeeded or failed ones must go through their partial indexes — not walk past every
 * queued job (it did: `state IN ('x')` is not matched to a partial index, `state = 'x'` is). */
static void test_state_filter_skips_the_queue(void **state)
{
    struct fixture *f = *state;
    add_finished(f->s, 5000); /* 4500 succeeded, 500 failed */
    long s0 = list_cost(f->s, "state:succeeded"), f0 = list_cost(f->s, "state:failed");
    char *sql = sqlite3_mprintf(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)"
        " INSERT INTO jobs (type, payload, state, priority, run_at, attempts, created_at)"
        " SELECT 'new', '{}', 'queued', 0, %lld, 0, %lld FROM c",
        (long long)T0, (long long)T0);
    assert_int_equal(sqlite3_exec(sq(f->s)->db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    long s1 = list_cost(f->s, "state:succeeded"), f1 = list_cost(f->s, "state:failed");
    if (s1 > 2 * s0 + 10 || f1 > 2 * f0 + 10)
        fail_msg("listing by state grew with the queue: succeeded %ld -> %ld, failed %ld -> %ld "
                 "(hundreds of VM ops)",
                 s0, s1, f0, f1);
}

/* The statements one list makes, caught as SQLite runs them. */
struct caught {
    char *sql[16];
    int n;
};

static int catch_stmt(unsigned type, void *ctx, void *p, void *x)
{
    (void)type;
    (void)x;
    struct caught *c = ctx;
    const char *sql = sqlite3_sql((sqlite3_stmt *)p);
    if (sql && c->n < 16 && strstr(sql, "FROM jobs"))
        c->sql[c->n++] = strdup(sql);
    return 0;
}

/* Lists `f` and checks the plan of every statement that read jobs: each step on jobs goes through
 * an index (or the rowid), never a scan of the table or a sort of the matches. */
static void expect_indexed_list(aspen_store *s, const aspen_store_filter *f, size_t want_n)
{
    sqlite3 *db = sq(s)->db;
    struct caught c = {0};
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, catch_stmt, &c);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_list(s, f, &jobs, &n, &e);
    sqlite3_trace_v2(db, 0, NULL, NULL);
    if (rc != 0)
        fail_msg("list: %d %s", rc, e.msg);
    aspen_store_jobs_free(jobs, n);
    if (want_n != SIZE_MAX) /* SIZE_MAX: however many (test_store_sort checks the order) */
        assert_int_equal(n, want_n);
    assert_true(c.n > 0);
    for (int i = 0; i < c.n; i++) {
        char *plan = plan_of(db, c.sql[i]);
        bool ok = !strstr(plan, "TEMP B-TREE");
        for (char *line = strtok(plan, "\n"); line && ok; line = strtok(NULL, "\n"))
            if (strstr(line, " jobs") && !strstr(line, "INDEX ") &&
                !strstr(line, "INTEGER PRIMARY KEY"))
                ok = false;
        free(plan);
        if (!ok) {
            plan = plan_of(db, c.sql[i]);
            fail_msg("%s\nreads jobs without an index or sorts:\n%s", c.sql[i], plan);
        }
        free(c.sql[i]);
    }
}

/* Version 14's indexes serve their readers with 20,000 finished jobs and 2,000 queued: a state's
 * newest jobs through jobs_final, the duration sort in both directions, after an anchor in each of
 * its blocks (below -1, the -1 block of finished and unfinished jobs, above) and at an offset —
 * every step an index range, no sort. */
static void test_final_and_duration_indexes(void **state)
{
    struct fixture *f = *state;
    add_finished(f->s, 20000); /* 18,000 succeeded, 2,000 failed, durations 0 */
    char *sql = sqlite3_mprintf(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)"
        " INSERT INTO jobs (type, payload, state, priority, run_at, attempts, created_at)"
        " SELECT 'new', '{}', 'queued', 0, %lld, 0, %lld FROM c;"
        /* a few cancelled before they ran (-1), a few whose clock ran backwards (below -1) */
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30)"
        " INSERT INTO jobs (type, payload, state, priority, run_at, attempts, created_at,"
        "  finished_at) SELECT 'never', '{}', 'cancelled', 0, %lld, 0, %lld, %lld FROM c;"
        "UPDATE jobs SET started_at = finished_at + 50 WHERE id %% 1000 = 9 AND finished_at IS NOT NULL;"
        "UPDATE jobs SET finished_at = finished_at + id %% 13 WHERE finished_at IS NOT NULL;"
        "ANALYZE;",
        (long long)T0, (long long)T0, (long long)T0, (long long)T0, (long long)T0);
    char *msg = NULL;
    if (sqlite3_exec(sq(f->s)->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("filling: %s", msg);
    sqlite3_free(sql);
    aspen_store_filter one = {.states = 1u << ASPEN_STORE_SUCCEEDED, .limit = 50};
    expect_indexed_list(f->s, &one, 50);
    aspen_store_filter failed = {.states = 1u << ASPEN_STORE_FAILED, .limit = 50};
    expect_indexed_list(f->s, &failed, 50);
    aspen_store_filter never = {.states = 1u << ASPEN_STORE_CANCELLED, .limit = 50};
    expect_indexed_list(f->s, &never, 30);
    int64_t cancelled = fx_raw_int(f, "SELECT count(*) FROM jobs WHERE state = 'cancelled'");
    int64_t below = fx_raw_int(f, "SELECT count(*) FROM jobs WHERE finished_at < started_at");
    assert_true(cancelled > 0 && below > 0);
    /* anchors: a job below -1, one that never ran, a queued one, one above -1 */
    int64_t anchors[] = {
        fx_raw_int(f, "SELECT min(id) FROM jobs WHERE finished_at < started_at"),
        fx_raw_int(f, "SELECT min(id) FROM jobs WHERE state = 'cancelled'"),
        fx_raw_int(f, "SELECT min(id) FROM jobs WHERE state = 'queued'"),
        fx_raw_int(f, "SELECT min(id) FROM jobs WHERE finished_at > started_at"),
    };
    for (int d = 0; d < 2; d++) {
        aspen_store_filter top = {.sort = ASPEN_STORE_SORT_DURATION, .sort_desc = d, .limit = 500};
        expect_indexed_list(f->s, &top, 500);
        for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++) {
            aspen_store_filter at = top;
            at.after_id = anchors[i];
            at.after_inclusive = true;
            at.limit = 100;
            expect_indexed_list(f->s, &at, SIZE_MAX);
        }
        aspen_store_filter off = top;
        off.offset = 21000; /* past the first block(s) whichever the direction */
        off.limit = 10;
        expect_indexed_list(f->s, &off, 10);
        aspen_store_filter queued = top;
        queued.states = 1u << ASPEN_STORE_QUEUED;
        queued.limit = 10;
        expect_indexed_list(f->s, &queued, 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partial_index, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_state_filter_skips_the_queue, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_final_and_duration_indexes, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
