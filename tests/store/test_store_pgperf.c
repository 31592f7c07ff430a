/* test_store_pgperf.c — the PostgreSQL backend's hot path does work in proportion to the jobs it
 * handles, not to the table (issue 8's throughput): a claim and a group commit on a database that
 * already holds tens of thousands of finished jobs read no job row by a sequential scan. The
 * server's own counters say so (pg_stat_user_tables.seq_tup_read of jobs, flushed on demand with
 * pg_stat_force_next_flush), so the test does not depend on timing or on statement texts.
 * White-box: it reads postgres/pg_store.h for the handle's connection, on which the flush is
 * forced. Runs on the tests' private server (ctest fixture "pg"). Also: the claim is the only
 * transaction that commits without waiting for its WAL's fsync, and a statement failing inside a
 * group commit's pipeline leaves nothing of the commit written, and retention's batched deletes
 * read no job, log or attempt row by a sequential scan either; and a finished job's second
 * entries in the sort indexes split none of their leaves (schema version 16); and a bounded queue
 * (a limit or a rate) that is idle or full locks nothing a claim of another queue needs, and the
 * queue-by-queue claim skips head rows other sessions hold (issues 8 and 10). */
#include "helpers.h"

#include "pg_store.h"

#include <time.h>

/* Rows of table rel read by sequential scans so far, as the server counts them. The store's own
 * backend flushes its counters first (they are otherwise sent at most once a second). */
static int64_t seq_rows_read_of(aspen_store *s, const char *rel)
{
    PGconn *c = pgs(s)->conn;
    PGresult *r = PQexec(c, "SELECT pg_stat_force_next_flush()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    /* The flush happens when the backend goes idle after that statement, before it answers. */
    r = PQexec(c, "SELECT pg_stat_clear_snapshot()");
    PQclear(r);
    const char *params[1] = {rel};
    r = PQexecParams(c,
                     "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = $1",
                     1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static int64_t seq_rows_read(aspen_store *s) { return seq_rows_read_of(s, "jobs"); }

/* 30,000 finished jobs, written straight into the table (the API would take minutes under the
 * sanitizer), then counted in job_counts as the store keeps them. */
static void seed_finished(struct fixture *f, int n)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs (type, payload, state, run_at, attempts, created_at, finished_at)"
             " SELECT 'echo', '{\"message\":\"old\"}', 'succeeded', %lld, 1, %lld, %lld"
             " FROM generate_series(1, %d); ANALYZE jobs",
             (long long)(T0 - 10000), (long long)(T0 - 10000), (long long)(T0 - 5000), n);
    pg_admin_exec(f->path, sql);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_recount(f->s, &e), 0);
}

/* A batch the size the engine claims and commits (a few hundred) against a table a hundred times
 * bigger: with custom plans the planner took a sequential scan of every job plus a hash join for
 * both the claim's rows and the commit's UPDATE … FROM unnest (O(table) per group). */
static void test_claim_and_commit_scan_no_table(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    enum { OLD = 30000, N = 400 };
    seed_finished(f, OLD);
    aspen_store_job_spec *specs = calloc(N, sizeof *specs);
    int64_t *ids = calloc(N, sizeof *ids);
    assert_non_null(specs);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo", .payload = "{\"message\":\"new\"}"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, N, T0, ids, &e), 0);
    /* Six rounds: a plan cache settles on its choice after five executions. */
    for (int round = 0; round < 6; round++) {
        int64_t before = seq_rows_read(f->s);
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        bool paused = false;
        size_t want = round == 5 ? N - 5 * 5 : 5; /* five small claims, then the rest at once */
        assert_int_equal(aspen_store_claim(f->s, f->engine, want, T0 + 1 + round, &jobs, &n,
                                           &paused, &e),
                         0);
        assert_int_equal(n, want);
        aspen_store_completion *c = calloc(n, sizeof *c);
        int *status = calloc(n, sizeof *status);
        assert_non_null(c);
        assert_non_null(status);
        for (size_t i = 0; i < n; i++)
            c[i] = (aspen_store_completion){.job_id = jobs[i].id,
                                            .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                            .output = "ok", .output_size = 2};
        assert_int_equal(aspen_store_complete(f->s, f->engine, c, n, T0 + 10 + round, status,
                                              NULL, &e),
                         0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(status[i], 0);
        int64_t scanned = seq_rows_read(f->s) - before;
        if (scanned != 0)
            fail_msg("round %d: claiming and committing %zu jobs read %lld job rows by "
                     "sequential scans (the table holds %d)",
                     round, n, (long long)scanned, OLD + N);
        free(c);
        free(status);
        aspen_store_jobs_free(jobs, n);
    }
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], OLD + N);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0);
    free(specs);
    free(ids);
}

/* Retention's batches (aspen_store_prune_timed, aspen_store_delete_jobs) on a table a hundred times
 * bigger than a batch: no job, log or attempt row read by a sequential scan, however the plan
 * cache settles. The prune's statement joined its victims to jobs: the generic plan PostgreSQL keeps
 * after five runs cannot see LIMIT $3, guessed a tenth of the table, and hashed the whole jobs
 * table for every batch (42 of 48 ms for 100 jobs at 100,000 rows), which held batches at the 16-job
 * floor (docs/BENCHMARKS.md, issue 10). */
static void test_prune_scans_no_table(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    enum { OLD = 30000, BATCH = 100, ROUNDS = 8 };
    seed_finished(f, OLD);
    /* on the store's own connection, so its scans are counted (flushed) before `before` */
    PGresult *fill = PQexec(pgs(f->s)->conn,
                            "INSERT INTO attempts (job, number, started_at, finished_at, outcome)"
                            " SELECT id, 1, finished_at, finished_at, 'succeeded' FROM jobs;"
                            " INSERT INTO logs (job, seq, attempt, time_ms, line)"
                            " SELECT id, 1, 1, finished_at, 'old' FROM jobs; ANALYZE");
    assert_int_equal(PQresultStatus(fill), PGRES_COMMAND_OK);
    PQclear(fill);
    static const char *const tables[] = {"jobs", "logs", "attempts"};
    int64_t before[3];
    /* the seeding admin connection's counters reach the server as it exits, which PQfinish does
     * not wait for: read until they stand still */
    int64_t last = -1;
    for (int tries = 0; tries < 50; tries++) {
        int64_t now = seq_rows_read_of(f->s, "jobs");
        if (now == last)
            break;
        last = now;
        struct timespec t = {0, 100 * 1000000L};
        nanosleep(&t, NULL);
    }
    for (int t = 0; t < 3; t++)
        before[t] = seq_rows_read_of(f->s, tables[t]);
    int64_t gone = 0;
    /* both plan-cache regimes: custom plans for five runs, then the generic one */
    for (int round = 0; round < ROUNDS; round++) {
        aspen_store_prune_result r = {0};
        assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0, BATCH, 25000,
                                                 &r, &e),
                         0);
        assert_int_equal(r.deleted, BATCH);
        assert_true(r.more);
        gone += r.deleted;
    }
    /* the console's and aspen delete's batches: the oldest ids, ROUNDS times */
    for (int round = 0; round < ROUNDS; round++) {
        int64_t ids[BATCH];
        for (int i = 0; i < BATCH; i++)
            ids[i] = OLD - (int64_t)round * BATCH - i; /* the newest: the prune took the oldest */
        int64_t k = 0;
        assert_int_equal(aspen_store_delete_jobs(f->s, ids, BATCH, &k, &e), 0);
        assert_int_equal(k, BATCH);
        gone += k;
    }
    for (int t = 0; t < 3; t++) {
        int64_t scanned = seq_rows_read_of(f->s, tables[t]) - before[t];
        if (scanned != 0)
            fail_msg("pruning %lld jobs in batches of %d read %lld %s rows by sequential scans "
                     "(the table held %d)",
                     (long long)gone, BATCH, (long long)scanned, tables[t], OLD);
    }
    /* and each went with its rows, nothing else did */
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], OLD - gone);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM logs"), OLD - gone);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempts"), OLD - gone);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), OLD - gone);
}

/* A claim commits asynchronously (its transaction runs with synchronous_commit off: it does not
 * wait for an fsync), and nothing else does: the completion that follows on the same handle, and
 * the handle's session afterwards, keep the server's synchronous commit, so a result reported as
 * stored is on disk. Triggers on the table only a claim writes (claims) and the one only a
 * completion writes (attempts) record the setting the writing transaction runs with (the
 * server's own view, not the statement text). */
static void test_claim_async_completion_sync(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    fx_raw_exec(f, "CREATE TABLE sc_seen (what text NOT NULL, setting text NOT NULL);"
                   " CREATE FUNCTION sc_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                   " INSERT INTO sc_seen VALUES (TG_TABLE_NAME,"
                   " current_setting('synchronous_commit')); RETURN NULL; END $$;"
                   " CREATE TRIGGER sc_claims AFTER INSERT ON claims FOR EACH STATEMENT"
                   " EXECUTE FUNCTION sc_note();"
                   " CREATE TRIGGER sc_attempts AFTER INSERT ON attempts FOR EACH STATEMENT"
                   " EXECUTE FUNCTION sc_note()");
    int64_t ids[3];
    aspen_store_job_spec specs[3];
    for (int i = 0; i < 3; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo", .payload = "{}"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 3, T0, ids, &e), 0);
    for (int round = 0; round < 3; round++) { /* prepared statements keep doing it */
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        bool paused = false;
        assert_int_equal(aspen_store_claim(f->s, f->engine, 1, T0 + 1, &jobs, &n, &paused, &e), 0);
        assert_int_equal(n, 1);
        aspen_store_completion c = {.job_id = jobs[0].id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                    .output = "ok", .output_size = 2};
        int status = -1;
        assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, T0 + 2, &status, NULL, &e),
                         0);
        assert_int_equal(status, 0);
        aspen_store_jobs_free(jobs, n);
    }
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sc_seen WHERE what = 'claims'"), 3);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sc_seen WHERE what = 'claims'"
                                   " AND setting = 'off'"),
                     3);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sc_seen WHERE what = 'attempts'"), 3);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM sc_seen WHERE what = 'attempts'"
                                   " AND setting = 'on'"),
                     3);
    /* The handle's session outside any transaction: still synchronous. */
    PGresult *r = PQexec(pgs(f->s)->conn, "SHOW synchronous_commit");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "on");
    PQclear(r);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 3);
}

/* A group commit is sent as a few pipelines (several statements per round trip). A statement
 * that fails in the middle of one — here the attempt rows' INSERT, refused by a trigger for one
 * job — must leave nothing of the commit behind (no job finished, no reservation taken, the
 * counts unchanged), and the handle must go on working: the next commit on it, once the cause is
 * gone, records everything once. */
static void test_commit_pipeline_failure_writes_nothing(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec specs[4];
    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo", .payload = "{}"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 4, T0, ids, &e), 0);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    bool paused = false;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 4, T0 + 1, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 4);
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION no_attempt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF NEW.job = %lld THEN RAISE EXCEPTION 'refused by the test'; END IF;"
             " RETURN NEW; END $$; CREATE TRIGGER no_attempt BEFORE INSERT ON attempts"
             " FOR EACH ROW EXECUTE FUNCTION no_attempt()",
             (long long)jobs[2].id);
    fx_raw_exec(f, sql);
    aspen_store_completion c[4];
    int status[4];
    for (size_t i = 0; i < 4; i++)
        c[i] = (aspen_store_completion){.job_id = jobs[i].id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                        .output = "ok", .output_size = 2};
    int rc = aspen_store_complete(f->s, f->engine, c, 4, T0 + 2, status, NULL, &e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "refused by the test"));
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE state <> 'queued'"), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempts"), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM claims"), 4);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 4);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 0);

    fx_raw_exec(f, "DROP TRIGGER no_attempt ON attempts");
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 4, T0 + 3, status, NULL, &e), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(status[i], 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"), 4);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempts"), 4);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM claims"), 0);
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 4);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0);
    /* A second delivery of the same results is refused item by item, never recorded twice. */
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 4, T0 + 4, status, NULL, &e), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(status[i], ASPEN_STORE_ESTATE);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempts"), 4);
    aspen_store_jobs_free(jobs, n);
}

/* Pages of relation rel (pg_relation_size), as the server has them now. */
static int64_t pages_of(struct fixture *f, const char *rel)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_relation_size('%s') / current_setting('block_size')::int",
             rel);
    return fx_raw_int(f, sql);
}

/* Schema version 16 (pg_migrate_v16): the guest, priority and created sort indexes keep half of
 * each leaf free, so the second entry a finished job's new row version puts into each of them
 * (no HOT update: version 14) lands beside its first without splitting the leaf inside the group
 * commit. Jobs submitted, then all claimed and completed in group commits as the engine does:
 * the three indexes end with no more pages than the submit left (B-tree's default, 90 % full
 * leaves, grew them ~1.8 times), while the duration index, left at the default, does grow. */
static void test_completions_split_no_sort_leaf(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    enum { N = 3000, CLAIM = 256 };
    static const char *const roomy[] = {"jobs_sort_guest", "jobs_sort_priority",
                                        "jobs_sort_created"};
    for (size_t i = 0; i < 3; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_class WHERE relname = '%s' AND"
                 " reloptions @> ARRAY['fillfactor=50']", roomy[i]);
        if (fx_raw_int(f, sql) != 1)
            fail_msg("%s has no fillfactor=50 on a new database", roomy[i]);
    }
    aspen_store_job_spec *specs = calloc(N, sizeof *specs);
    int64_t *ids = calloc(N, sizeof *ids);
    aspen_store_completion *c = calloc(CLAIM, sizeof *c);
    int *status = calloc(CLAIM, sizeof *status);
    assert_true(specs && ids && c && status);
    for (int i = 0; i < N; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo",
                                          .payload = "{\"message\":\"new\"}"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, N, T0, ids, &e), 0);
    int64_t before[3], duration_before = pages_of(f, "jobs_sort_duration");
    for (size_t i = 0; i < 3; i++)
        before[i] = pages_of(f, roomy[i]);
    size_t done = 0;
    for (int round = 0; done < N; round++) {
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        bool paused = false;
        assert_int_equal(aspen_store_claim(f->s, f->engine, CLAIM, T0 + 1 + round, &jobs, &n,
                                           &paused, &e),
                         0);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++)
            c[i] = (aspen_store_completion){.job_id = jobs[i].id,
                                            .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                            .output = "ok", .output_size = 2};
        assert_int_equal(aspen_store_complete(f->s, f->engine, c, n, T0 + 2 + round, status, NULL,
                                              &e),
                         0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(status[i], 0);
        done += n;
        aspen_store_jobs_free(jobs, n);
    }
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], N);
    /* A page or so of slack: the submit's own splits leave some leaves a little over half full. */
    for (size_t i = 0; i < 3; i++) {
        int64_t after = pages_of(f, roomy[i]);
        if (after > before[i] + before[i] / 8 + 1)
            fail_msg("%s grew from %lld to %lld pages while %d jobs finished: its leaves split",
                     roomy[i], (long long)before[i], (long long)after, N);
    }
    /* The measure is not blind: an index without the room does split (its finished entries go
     * to other keys, so it also shows the completions were written). */
    assert_true(pages_of(f, "jobs_sort_duration") > duration_before);
    free(specs);
    free(ids);
    free(c);
    free(status);
}

/* A version-15 database (sort indexes at the default fill) gets the room when opened. */
static void test_v15_upgrade_leaves_room(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    f->s = NULL;
    fx_raw_exec(f, "ALTER INDEX jobs_sort_guest RESET (fillfactor);"
                   "ALTER INDEX jobs_sort_priority RESET (fillfactor);"
                   "ALTER INDEX jobs_sort_created RESET (fillfactor);"
                   "UPDATE aspen_schema SET version = 15");
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_class WHERE reloptions IS NOT NULL"
                                   " AND relname LIKE 'jobs_sort_%'"),
                     0);
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(fx_raw_int(f, "SELECT max(version) FROM aspen_schema"),
                     ASPEN_STORE_SCHEMA_VERSION);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_class WHERE relname IN"
                                   " ('jobs_sort_guest', 'jobs_sort_priority', 'jobs_sort_created')"
                                   " AND reloptions @> ARRAY['fillfactor=50']"),
                     3);
    /* nothing else changed: the duration index and the primary key keep the default */
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM pg_class WHERE relname IN"
                                   " ('jobs_sort_duration', 'jobs_pkey') AND reloptions IS NOT NULL"),
                     0);
}

/* ---- a bounded queue costs the other queues' claims nothing (issues 8 and 10) -------------------- */

static int64_t submit_in(struct fixture *f, const char *queue, int priority)
{
    aspen_store_job_spec spec = {.type = "echo", .priority = priority, .queue = queue};
    int64_t id = 0;
    aspen_store_error e = {0};
    if (aspen_store_submit(f->s, &spec, T0, &id, &e) != 0)
        fail_msg("submit to %s: %s", queue ? queue : "(default)", e.msg);
    return id;
}

/* A second session that holds row locks until it is closed: `sql` runs inside an open BEGIN. */
static PGconn *hold_locks(struct fixture *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->path);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return c;
}

/* Ends hold_locks' transaction and waits for its answer: a bare PQfinish leaves the server to
 * notice the closed connection later, and the locks might still be held by the next claim. */
static void release_locks(PGconn *c)
{
    PGresult *r = PQexec(c, "ROLLBACK");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

/* The store's own session gives up on a row lock after 5 s instead of waiting for ever: a claim
 * that waits for a lock it should not take fails the test rather than hanging it. */
static void lock_timeout(struct fixture *f)
{
    PGresult *r = PQexec(pgs(f->s)->conn, "SET lock_timeout = '5s'");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
}

/* Claims of the default queue while a limited queue is idle (no job), another is full (its limit
 * reached) and a rate-limited one is idle: none of their queue rows is locked by the claim. Every
 * claim used to lock the row of every limited queue FOR UPDATE, so all claimers (every process of
 * every host) ran one after another: 20,000 echo jobs took 92 s instead of 3 s with three worker
 * processes (docs/BENCHMARKS.md). Here another session holds those rows locked; a claim that
 * still wanted them would wait (and fail on lock_timeout), this one claims straight away. */
static void test_bounded_queues_lock_nothing_for_others(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(f->s, "idle", ASPEN_STORE_QUEUE_SET_LIMIT, 3, 0, 0, T0, &e), 0);
    assert_int_equal(aspen_store_queue_set(f->s, "full", ASPEN_STORE_QUEUE_SET_LIMIT, 1, 0, 0, T0, &e), 0);
    assert_int_equal(aspen_store_queue_set(f->s, "slow", ASPEN_STORE_QUEUE_SET_RATE, 0, 5, 1000, T0, &e), 0);
    int64_t first = submit_in(f, "full", 5);
    submit_in(f, "full", 5);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    bool paused = false;
    /* the full queue's one job taken: it has a job waiting, and no room */
    assert_int_equal(aspen_store_claim(f->s, f->engine, 1, T0 + 1, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, first);
    aspen_store_jobs_free(jobs, n);
    int64_t dflt[6];
    for (int i = 0; i < 6; i++)
        dflt[i] = submit_in(f, NULL, 0);
    PGconn *other = hold_locks(f, "SELECT 1 FROM queues WHERE name IN ('idle', 'full', 'slow')"
                                  " FOR UPDATE");
    lock_timeout(f);
    for (int round = 0; round < 3; round++) { /* the plan cache settles after five claims */
        jobs = NULL;
        n = 0;
        int code = aspen_store_claim(f->s, f->engine, 2, T0 + 2 + round, &jobs, &n, &paused, &e);
        if (code)
            fail_msg("claim %d of the default queue waited for a bounded queue's row: %s", round,
                     e.msg);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(jobs[i].id, dflt[2 * round + (int)i]);
        aspen_store_jobs_free(jobs, n);
    }
    release_locks(other);
    /* the limit still holds: the full queue's second job waits for the first */
    jobs = NULL;
    n = 0;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 5, T0 + 9, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 0);
}

/* With a limited queue that has work (so the claim goes queue by queue under its lock), a head row
 * another session holds is skipped, and the claim still comes back full: the heads are read
 * FOR UPDATE SKIP LOCKED. They were read without, so every claimer chose the same rows, lost
 * them to the one that locked them first and went round again (up to 8 times), coming back short. */
static void test_queue_claim_skips_locked_heads(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(f->s, "pgq", ASPEN_STORE_QUEUE_SET_LIMIT, 3, 0, 0, T0, &e), 0);
    int64_t dflt[6];
    for (int i = 0; i < 6; i++)
        dflt[i] = submit_in(f, NULL, 0);
    int64_t low = submit_in(f, "pgq", -1); /* behind every default job */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM jobs WHERE id = %lld FOR UPDATE", (long long)dflt[0]);
    PGconn *other = hold_locks(f, sql);
    lock_timeout(f);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    bool paused = false;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 4, T0 + 1, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jobs[i].id, dflt[1 + i]);
    aspen_store_jobs_free(jobs, n);
    release_locks(other);
    /* the held row and the limited queue's job are claimable once the lock is gone */
    jobs = NULL;
    n = 0;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 4, T0 + 2, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(jobs[0].id, dflt[0]);
    assert_int_equal(jobs[1].id, dflt[5]);
    assert_int_equal(jobs[2].id, low);
    aspen_store_jobs_free(jobs, n);
}

int main(void)
{
    if (!test_on_pg()) {
        fprintf(stderr, "test_store_pgperf runs on PostgreSQL only (ASPEN_TEST_BACKEND=postgres)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_and_commit_scan_no_table, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_claim_async_completion_sync, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune_scans_no_table, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_commit_pipeline_failure_writes_nothing, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_completions_split_no_sort_leaf, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_v15_upgrade_leaves_room, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_queues_lock_nothing_for_others, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_queue_claim_skips_locked_heads, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
