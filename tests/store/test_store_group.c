/* test_store_group.c — a group commit of many jobs writes exactly what committing them one by one
 * writes. The SQLite backend writes a group's attempt rows and job rows GROUP_ROWS (32) jobs per
 * statement (store/sqlite/sqlite_group.c); these tests take groups across those batches:
 *
 *   mixed group    77 completions of every outcome (success with output and a log line, retry
 *                  now, retry later, out of attempts, timeout, cancelled), some of jobs started
 *                  in an earlier commit, some only reserved, plus start marks — one of them for a
 *                  job whose completion is in the same commit: every status, final state, row,
 *                  attempt and log line as expected, and the kept counts equal a recount
 *   refusals       items refused in the middle of a big group (another engine's reservation, a
 *                  job never reserved, a finished job) leave their jobs untouched; the rest commit
 *   reservations   a claim of 77 jobs reserves them in batches (32 + 32 + 8 + 4 + 1 on SQLite):
 *                  each once, in claim order; a second engine's claim gets only the other 23;
 *                  the first engine's completions of all 77 take every reservation
 *   log cap        lines past a job's cap are counted (with the writer's own dropped count) and
 *                  one marker line is written, for jobs spread over two batches
 * SQLite only (white box):
 *   attempt exists an attempt row already there (changed by hand) refuses that job alone: its log
 *                  lines and row are not written, the 39 others are
 *   line exists    a log line already there refuses that job alone (the batched lines are undone
 *                  and written job by job): every other job's lines, in order
 *   statements     64 completions reach SQLite as 2 job-row UPDATEs and 2 attempt INSERTs, not 64
 *                  of each (the point of the batching)
 *   plan           the batched UPDATE finds each job by its rowid (no scan of jobs)
 *   columns        a completion's UPDATE names only what it changes (not run_at, max_attempts,
 *                  cancel_requested, the log counts, or the owner it never had); rounds of 16
 *                  kinds of write (every outcome, with and without a log line, started earlier
 *                  or in the same commit) need more UPDATE shapes than the handle caches
 *                  (SQ_WRITE_SHAPES), and every row is still what it must be */
#include "helpers.h"

#include <sqlite3.h>

#include "sqlite_store.h"

enum { N_MIXED = 77 };

static void check_counts(aspen_store *s)
{
    aspen_store_error e = {0};
    if (aspen_store_check(s, &e) != 0)
        fail_msg("check: %s", e.msg);
}

static void submit_n(aspen_store *s, size_t n, int max_attempts, int64_t *ids)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = submit_job(s, "echo", 0, 0, max_attempts, T0);
}

/* What completion i of the mixed group is, and what it must make of its job. */
static aspen_store_outcome mixed_outcome(size_t i, int64_t *retry_at, aspen_store_state *want)
{
    *retry_at = 0;
    switch (i % 6) {
    case 0: *want = ASPEN_STORE_SUCCEEDED; return ASPEN_STORE_OUTCOME_SUCCESS;
    case 1: *retry_at = T0; *want = ASPEN_STORE_QUEUED; return ASPEN_STORE_OUTCOME_FAILURE;
    case 2: *retry_at = T0 + 60000; *want = ASPEN_STORE_SCHEDULED; return ASPEN_STORE_OUTCOME_FAILURE;
    case 3: *want = ASPEN_STORE_FAILED; return ASPEN_STORE_OUTCOME_FAILURE;
    case 4: *want = ASPEN_STORE_FAILED; return ASPEN_STORE_OUTCOME_TIMEOUT;
    default: *want = ASPEN_STORE_CANCELLED; return ASPEN_STORE_OUTCOME_CANCELLED;
    }
}

static void test_mixed_group(void **state)
{
    struct fixture *f = *state;
    int64_t ids[N_MIXED + 3];
    submit_n(f->s, N_MIXED + 3, 3, ids);
    /* the first 10 start in an earlier commit; the rest are only reserved */
    assert_int_equal(claim_ids(f->s, f->engine, 10, T0, NULL), 10);
    assert_int_equal(reserve_ids(f->s, f->engine, 200, T0, NULL), N_MIXED + 3 - 10);

    /* one commit: start marks for the last 3 jobs and for job N_MIXED - 1 (whose completion is
     * in the same commit), then N_MIXED completions */
    aspen_store_start marks[4] = {{ids[N_MIXED], T0 + 1}, {ids[N_MIXED + 1], T0 + 1},
                                  {ids[N_MIXED + 2], T0 + 1}, {ids[N_MIXED - 1], T0 + 1}};
    int mark_status[4] = {-1, -1, -1, -1};
    aspen_store_completion c[N_MIXED];
    aspen_store_log_line lines[N_MIXED];
    char out[N_MIXED][32];
    aspen_store_state want[N_MIXED];
    for (size_t i = 0; i < N_MIXED; i++) {
        int64_t retry_at;
        aspen_store_outcome o = mixed_outcome(i, &retry_at, &want[i]);
        snprintf(out[i], sizeof out[i], "{\"job\":%zu}", i);
        lines[i] = (aspen_store_log_line){.time_ms = T0 + 2, .line = "a line"};
        c[i] = (aspen_store_completion){
            .job_id = ids[i], .outcome = o, .retry_at_ms = retry_at,
            .output = o == ASPEN_STORE_OUTCOME_SUCCESS ? out[i] : NULL,
            .output_size = o == ASPEN_STORE_OUTCOME_SUCCESS ? strlen(out[i]) : 0,
            .error = o == ASPEN_STORE_OUTCOME_FAILURE ? "it broke" : NULL,
            .logs = i % 2 ? &lines[i] : NULL, .n_logs = i % 2,
            .stats = {.started_at_ms = T0 + 1, .finished_at_ms = T0 + 2, .wall_us = 40 + (int64_t)i,
                      .exits = 2, .host_calls = i, .bytes_in = 7, .bytes_out = 9}};
    }
    int status[N_MIXED];
    aspen_store_state final[N_MIXED];
    memset(status, -1, sizeof status);
    aspen_store_error e = {0};
    int rc = aspen_store_commit(f->s, f->engine, marks, 4, mark_status, c, N_MIXED, T0 + 3, status,
                                final, &e);
    assert_int_equal(rc, 0);
    for (size_t m = 0; m < 4; m++)
        assert_int_equal(mark_status[m], 0);
    for (size_t i = 0; i < N_MIXED; i++) {
        if (status[i] != 0)
            fail_msg("completion %zu (job %lld): status %d (%s)", i, (long long)ids[i], status[i],
                     e.msg);
        if (final[i] != want[i])
            fail_msg("completion %zu: final state %s, want %s", i,
                     aspen_store_state_name(final[i]), aspen_store_state_name(want[i]));

        aspen_store_job j;
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        assert_int_equal(j.state, want[i]);
        assert_int_equal(j.attempts, 1);
        assert_int_equal(j.log_count, (int)(i % 2));
        if (want[i] == ASPEN_STORE_SUCCEEDED) {
            assert_int_equal(j.result_size, strlen(out[i]));
            assert_memory_equal(j.result, out[i], j.result_size);
            assert_null(j.error);
        } else if (i % 6 == 1 || i % 6 == 2 || i % 6 == 3) {
            assert_string_equal(j.error, "it broke");
        } else {
            assert_non_null(j.error); /* the store's own words: timed out / cancelled */
        }
        assert_int_equal(j.owner, 0);
        aspen_store_job_clear(&j);

        aspen_store_attempt *a = NULL;
        size_t na = 0;
        assert_int_equal(aspen_store_attempts(f->s, ids[i], &a, &na, &e), 0);
        assert_int_equal(na, 1);
        assert_int_equal(a[0].number, 1);
        assert_int_equal(a[0].engine_id, f->engine);
        assert_int_equal(a[0].wall_us, 40 + (int64_t)i);
        assert_int_equal(a[0].host_calls, i);
        assert_int_equal(a[0].started_at_ms, T0 + 1);
        assert_int_equal(a[0].finished_at_ms, T0 + 2);
        static const char *const names[] = {"succeeded", "failed", "failed",
                                            "failed",    "timeout", "cancelled"};
        assert_string_equal(a[0].outcome, names[i % 6]);
        aspen_store_attempts_free(a, na);

        aspen_store_log *l = NULL;
        size_t nl = 0;
        assert_int_equal(aspen_store_logs(f->s, ids[i], 0, 0, &l, &nl, &e), 0);
        assert_int_equal(nl, i % 2);
        if (nl) {
            assert_string_equal(l[0].line, "a line");
            assert_int_equal(l[0].seq, 1);
            assert_int_equal(l[0].attempt, 1);
        }
        aspen_store_logs_free(l, nl);
    }
    for (size_t i = N_MIXED; i < N_MIXED + 3; i++) {
        aspen_store_job j;
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        assert_int_equal(j.state, ASPEN_STORE_RUNNING);
        assert_int_equal(j.attempts, 1);
        assert_int_equal(j.started_at_ms, T0 + 1);
        assert_int_equal(j.owner, f->engine);
        aspen_store_job_clear(&j);
    }
    check_counts(f->s);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 3);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], (N_MIXED + 5) / 6);
}

static void test_reservations_in_batches(void **state)
{
    struct fixture *f = *state;
    enum { N = 100, A = 77 };
    int64_t ids[N], a[A], b[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, A, T0, a), A);
    for (size_t i = 0; i < A; i++)
        assert_int_equal(a[i], ids[i]); /* claim order: one priority, so submit order */
    aspen_store_error e = {0};
    int64_t other = 0;
    if (aspen_store_engine_register(f->s, getpid(), "other", 5000, T0, &other, &e) != 0)
        fail_msg("register: %s", e.msg);
    assert_int_equal(reserve_ids(f->s, other, N, T0, b), N - A);
    for (size_t i = 0; i < N - A; i++)
        assert_int_equal(b[i], ids[A + i]);
    aspen_store_completion c[A];
    for (size_t i = 0; i < A; i++)
        c[i] = (aspen_store_completion){.job_id = a[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    int status[A];
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, A, T0 + 1, status, NULL, &e), 0);
    for (size_t i = 0; i < A; i++)
        if (status[i] != 0)
            fail_msg("completion of job %lld: status %d (%s)", (long long)a[i], status[i], e.msg);
    /* the other engine's reservations are untouched: this engine cannot complete those jobs */
    aspen_store_completion theirs = {.job_id = b[0], .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    int st = 0;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &theirs, 1, T0 + 1, &st, NULL, &e), 0);
    assert_int_equal(st, ASPEN_STORE_ELEASE);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], A);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], N - A);
    check_counts(f->s);
}

static void test_refusals_in_a_group(void **state)
{
    struct fixture *f = *state;
    enum { N = 70 };
    int64_t ids[N], other = 0, unreserved, done;
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_register(f->s, getpid(), "other", 5000, T0, &other, &e), 0);
    int64_t theirs = submit_job(f->s, "echo", 0, 0, 3, T0);
    assert_int_equal(reserve_ids(f->s, other, 1, T0, NULL), 1);
    unreserved = submit_job(f->s, "echo", 0, 0, 3, T0);
    done = ids[5]; /* completed first, then again in the big group */
    assert_int_equal(complete_one(f->s, f->engine, done, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0), 0);

    aspen_store_completion c[N + 2];
    size_t k = 0;
    for (size_t i = 0; i < N; i++) {
        c[k++] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
        if (i == 33)
            c[k++] = (aspen_store_completion){.job_id = theirs, .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
        if (i == 40)
            c[k++] = (aspen_store_completion){.job_id = unreserved,
                                              .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    }
    int status[N + 2];
    aspen_store_state final[N + 2];
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, k, T0 + 1, status, final, &e), 0);
    for (size_t i = 0; i < k; i++) {
        if (c[i].job_id == theirs)
            assert_int_equal(status[i], ASPEN_STORE_ELEASE);
        else if (c[i].job_id == unreserved || c[i].job_id == done)
            assert_int_equal(status[i], ASPEN_STORE_ESTATE);
        else
            assert_int_equal(status[i], 0);
        assert_int_equal(final[i], state_of(f->s, c[i].job_id));
    }
    assert_int_equal(state_of(f->s, theirs), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, unreserved), ASPEN_STORE_QUEUED);
    int charged = -1;
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, done, &j, &e), 0);
    charged = j.attempts;
    aspen_store_job_clear(&j);
    assert_int_equal(charged, 1); /* completed once only */
    check_counts(f->s);
}

/* ---- SQLite only ---------------------------------------------------------------------------- */

static void test_existing_attempt_refuses_one(void **state)
{
    struct fixture *f = *state;
    enum { N = 40 };
    int64_t ids[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    int64_t bad = ids[17];
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO attempts (job, number, outcome) VALUES (%lld, 1, 'failed')",
             (long long)bad);
    fx_raw_exec(f, sql);

    aspen_store_completion c[N];
    aspen_store_log_line line = {.time_ms = T0, .line = "hello"};
    for (size_t i = 0; i < N; i++)
        c[i] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                        .logs = &line, .n_logs = 1};
    int status[N];
    aspen_store_state final[N];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, N, T0 + 1, status, final, &e), 0);
    for (size_t i = 0; i < N; i++) {
        if (ids[i] == bad) {
            assert_int_equal(status[i], ASPEN_STORE_EINVAL);
            assert_int_equal(final[i], ASPEN_STORE_QUEUED);
            assert_int_equal(state_of(f->s, bad), ASPEN_STORE_QUEUED);
        } else {
            assert_int_equal(status[i], 0);
            assert_int_equal(final[i], ASPEN_STORE_SUCCEEDED);
        }
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM logs WHERE job = %lld", (long long)bad);
    assert_int_equal(fx_raw_int(f, sql), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM logs"), N - 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempts"), N);
    check_counts(f->s);
}

static void test_existing_log_line_refuses_one(void **state)
{
    struct fixture *f = *state;
    enum { N = 40 };
    int64_t ids[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    int64_t bad = ids[3];
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO logs (job, seq, attempt, time_ms, line) VALUES (%lld, 2, 1, 0, 'x')",
             (long long)bad);
    fx_raw_exec(f, sql);

    aspen_store_completion c[N];
    aspen_store_log_line lines[2] = {{.time_ms = T0, .line = "one"}, {.time_ms = T0, .line = "two"}};
    for (size_t i = 0; i < N; i++)
        c[i] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                        .logs = lines, .n_logs = 2};
    int status[N];
    aspen_store_state final[N];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, N, T0 + 1, status, final, &e), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(status[i], ids[i] == bad ? ASPEN_STORE_EINVAL : 0);
        assert_int_equal(final[i], ids[i] == bad ? ASPEN_STORE_QUEUED : ASPEN_STORE_SUCCEEDED);
    }
    /* the others' lines all there, in order; the refused job has the hand-made row and, as when
     * every job's lines were written one by one, the line before the one refused */
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM logs"), 2 * (N - 1) + 2);
    aspen_store_log *l = NULL;
    size_t nl = 0;
    assert_int_equal(aspen_store_logs(f->s, ids[4], 0, 0, &l, &nl, &e), 0);
    assert_int_equal(nl, 2);
    assert_string_equal(l[0].line, "one");
    assert_string_equal(l[1].line, "two");
    assert_int_equal(l[1].seq, 2);
    aspen_store_logs_free(l, nl);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, ids[4], &j, &e), 0);
    assert_int_equal(j.log_count, 2);
    aspen_store_job_clear(&j);
    check_counts(f->s);
}

/* The log cap across a batch: lines past it are counted, one marker line is written. */
static void test_log_cap_in_a_group(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    aspen_store_options o = {.log_cap = 3};
    f->s = open_or_fail(f->path, &o);
    enum { N = 35 };
    int64_t ids[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    aspen_store_log_line lines[6];
    for (int i = 0; i < 6; i++)
        lines[i] = (aspen_store_log_line){.time_ms = T0, .line = "line"};
    lines[5].dropped = 10; /* the writer dropped 10 more */
    lines[5].line = NULL;
    aspen_store_completion c[N];
    for (size_t i = 0; i < N; i++)
        c[i] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                        .logs = lines, .n_logs = i % 2 ? 6 : 2};
    int status[N];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, N, T0 + 1, status, NULL, &e), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(status[i], 0);
        aspen_store_job j;
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        if (i % 2) { /* 5 lines + 10 dropped: 3 kept, the marker, 1 + 10 counted */
            assert_int_equal(j.log_count, 4);
            assert_int_equal(j.log_dropped, 12);
        } else {
            assert_int_equal(j.log_count, 2);
            assert_int_equal(j.log_dropped, 0);
        }
        aspen_store_job_clear(&j);
        aspen_store_log *l = NULL;
        size_t nl = 0;
        assert_int_equal(aspen_store_logs(f->s, ids[i], 0, 0, &l, &nl, &e), 0);
        assert_int_equal(nl, i % 2 ? 4 : 2);
        if (i % 2) {
            assert_true(l[3].marker);
            assert_int_equal(l[3].attempt, 0);
            assert_non_null(strstr(l[3].line, "more than 3 lines"));
        }
        aspen_store_logs_free(l, nl);
    }
    check_counts(f->s);
}

static int count_stmt(unsigned type, void *ctx, void *p, void *x)
{
    (void)type;
    (void)x;
    int *n = ctx;
    const char *sql = sqlite3_sql((sqlite3_stmt *)p);
    if (sql && strncmp(sql, "UPDATE jobs SET state", 21) == 0)
        n[0]++;
    if (sql && strncmp(sql, "INSERT INTO attempts", 20) == 0)
        n[1]++;
    return 0;
}

static void test_group_statements(void **state)
{
    struct fixture *f = *state;
    enum { N = 64 };
    int64_t ids[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    aspen_store_completion c[N];
    for (size_t i = 0; i < N; i++)
        c[i] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    int n[2] = {0, 0}, status[N];
    sqlite3_trace_v2(sq(f->s)->db, SQLITE_TRACE_STMT, count_stmt, n);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, N, T0 + 1, status, NULL, &e), 0);
    sqlite3_trace_v2(sq(f->s)->db, 0, NULL, NULL);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(status[i], 0);
    if (n[0] != N / GROUP_ROWS || n[1] != N / GROUP_ROWS)
        fail_msg("%d job-row UPDATEs and %d attempt INSERTs for %d completions; want %d of each",
                 n[0], n[1], N, N / GROUP_ROWS);
    check_counts(f->s);
}

static void test_group_plan(void **state)
{
    struct fixture *f = *state;
    char *sql = group_sql(GROUP_WRITE, GROUP_ROWS);
    assert_non_null(sql);
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    free(sql);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sq(f->s)->db, q, -1, &st, NULL) != SQLITE_OK)
        fail_msg("plan: %s", sqlite3_errmsg(sq(f->s)->db));
    sqlite3_free(q);
    bool by_rowid = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        if (strstr(d, "jobs") && strstr(d, "SCAN"))
            fail_msg("the batched UPDATE scans jobs: %s", d);
        if (strstr(d, "SEARCH jobs USING INTEGER PRIMARY KEY"))
            by_rowid = true;
    }
    sqlite3_finalize(st);
    assert_true(by_rowid);
}

/* Collects the distinct job-row UPDATE texts SQLite runs. */
struct updates {
    char *sql[64];
    size_t n, runs;
};

static int collect_updates(unsigned type, void *ctx, void *p, void *x)
{
    (void)type;
    (void)x;
    struct updates *u = ctx;
    const char *sql = sqlite3_sql((sqlite3_stmt *)p);
    if (!sql || strncmp(sql, "UPDATE jobs SET ", 16) != 0 || !strstr(sql, "FROM (VALUES"))
        return 0;
    u->runs++;
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->sql[i], sql) == 0)
            return 0;
    if (u->n < 64)
        u->sql[u->n++] = strdup(sql);
    return 0;
}

/* The SET list of an UPDATE text (up to FROM), for strstr. */
static void set_list(const char *sql, char *out, size_t cap)
{
    const char *from = strstr(sql, " FROM (VALUES");
    size_t len = from ? (size_t)(from - sql) : strlen(sql);
    snprintf(out, cap, "%.*s", (int)len, sql);
}

static void test_write_columns(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    struct updates u = {0};

    /* a plain success, started in the same commit */
    enum { N = GROUP_ROWS };
    int64_t ids[N];
    submit_n(f->s, N, 3, ids);
    assert_int_equal(reserve_ids(f->s, f->engine, N, T0, NULL), N);
    aspen_store_completion c[N];
    for (size_t i = 0; i < N; i++)
        c[i] = (aspen_store_completion){.job_id = ids[i], .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                        .output = "{}", .output_size = 2};
    int status[N];
    sqlite3_trace_v2(sq(f->s)->db, SQLITE_TRACE_STMT, collect_updates, &u);
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, N, T0 + 1, status, NULL, &e), 0);
    sqlite3_trace_v2(sq(f->s)->db, 0, NULL, NULL);
    assert_int_equal(u.n, 1);
    char set[512];
    set_list(u.sql[0], set, sizeof set);
    /* error is set (to NULL: a success clears an earlier attempt's); owner stays NULL, as the
     * job starts and ends in this one write */
    static const char *const changed[] = {"state =",       "attempts =", "started_at =",
                                          "finished_at =", "error =",    "result ="};
    static const char *const unchanged[] = {"run_at", "max_attempts", "cancel_requested",
                                            "log_count", "log_dropped", "owner"};
    for (size_t k = 0; k < sizeof changed / sizeof *changed; k++)
        if (!strstr(set, changed[k]))
            fail_msg("a success's UPDATE does not set %s: %s", changed[k], set);
    for (size_t k = 0; k < sizeof unchanged / sizeof *unchanged; k++)
        if (strstr(set, unchanged[k]))
            fail_msg("a success's UPDATE names %s, which it does not change: %s", unchanged[k],
                     set);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(status[i], 0);
        aspen_store_job j;
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        assert_int_equal(j.attempts, 1);
        assert_int_equal(j.run_at_ms, T0);
        assert_int_equal(j.max_attempts, 3);
        assert_int_equal(j.result_size, 2);
        aspen_store_job_clear(&j);
    }

    /* rounds of 16 kinds of write: 4 outcomes x a log line or not x started earlier or not */
    enum { K = 16, ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        int64_t r[K];
        submit_n(f->s, K, 3, r);
        assert_int_equal(reserve_ids(f->s, f->engine, K, T0, NULL), K);
        aspen_store_start marks[K / 2];
        int mark_status[K / 2];
        for (size_t i = 0; i < K / 2; i++)
            marks[i] = (aspen_store_start){r[i], T0 + 1};
        assert_int_equal(aspen_store_commit(f->s, f->engine, marks, K / 2, mark_status, NULL, 0,
                                            T0 + 1, NULL, NULL, &e),
                         0);
        aspen_store_completion k[K];
        aspen_store_log_line line = {.time_ms = T0 + 2, .line = "a line"};
        static const aspen_store_outcome outcomes[4] = {
            ASPEN_STORE_OUTCOME_SUCCESS, ASPEN_STORE_OUTCOME_FAILURE, ASPEN_STORE_OUTCOME_TIMEOUT,
            ASPEN_STORE_OUTCOME_CANCELLED};
        static const aspen_store_state want[4] = {ASPEN_STORE_SUCCEEDED, ASPEN_STORE_SCHEDULED,
                                                  ASPEN_STORE_FAILED, ASPEN_STORE_CANCELLED};
        for (size_t i = 0; i < K; i++) {
            aspen_store_outcome o = outcomes[i % 4];
            k[i] = (aspen_store_completion){
                .job_id = r[i], .outcome = o,
                .retry_at_ms = o == ASPEN_STORE_OUTCOME_FAILURE ? T0 + 60000 : 0,
                .output = o == ASPEN_STORE_OUTCOME_SUCCESS ? "{\"ok\":1}" : NULL,
                .output_size = o == ASPEN_STORE_OUTCOME_SUCCESS ? 8 : 0,
                .error = o == ASPEN_STORE_OUTCOME_FAILURE ? "it broke" : NULL,
                .logs = (i / 4) % 2 ? &line : NULL, .n_logs = (i / 4) % 2,
                .stats = {.started_at_ms = T0 + 1, .finished_at_ms = T0 + 2}};
            /* timeout never retries here: out of attempts is not what this tests */
            if (o == ASPEN_STORE_OUTCOME_TIMEOUT)
                k[i].retry_at_ms = 0;
        }
        int st[K];
        aspen_store_state final[K];
        sqlite3_trace_v2(sq(f->s)->db, SQLITE_TRACE_STMT, collect_updates, &u);
        assert_int_equal(aspen_store_commit(f->s, f->engine, NULL, 0, NULL, k, K, T0 + 3, st,
                                            final, &e),
                         0);
        sqlite3_trace_v2(sq(f->s)->db, 0, NULL, NULL);
        for (size_t i = 0; i < K; i++) {
            if (st[i] != 0)
                fail_msg("round %d, write %zu: status %d (%s)", round, i, st[i], e.msg);
            aspen_store_job j;
            assert_int_equal(aspen_store_get(f->s, r[i], &j, &e), 0);
            assert_int_equal(j.state, final[i]);
            if (i % 4 != 2) /* a timeout may retry or fail by the store's rule; both are fine */
                assert_int_equal(j.state, want[i % 4]);
            assert_int_equal(j.attempts, 1);
            assert_int_equal(j.max_attempts, 3);
            assert_int_equal(j.log_count, (int)((i / 4) % 2));
            assert_int_equal(j.started_at_ms, T0 + 1);
            if (i % 4 == 0) {
                assert_int_equal(j.result_size, 8);
                assert_memory_equal(j.result, "{\"ok\":1}", 8);
                assert_int_equal(j.owner, 0);
            }
            if (i % 4 == 1) {
                assert_string_equal(j.error, "it broke");
                assert_int_equal(j.run_at_ms, T0 + 60000);
            }
            aspen_store_job_clear(&j);
        }
        check_counts(f->s);
    }
    if (u.n <= SQ_WRITE_SHAPES)
        fail_msg("only %zu UPDATE shapes were used: the cache's reuse (%d slots) was not tested",
                 u.n, SQ_WRITE_SHAPES);
    for (size_t i = 0; i < u.n; i++)
        free(u.sql[i]);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_mixed_group, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reservations_in_batches, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals_in_a_group, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_log_cap_in_a_group, fx_setup, fx_teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_existing_attempt_refuses_one, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_existing_log_line_refuses_one, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_statements, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_plan, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_columns, fx_setup, fx_teardown),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
