/* test_store_retention.c — retention and bulk deletes on both backends (issues 9 and 10): the
 * settings (River's defaults, set, off, back to the default, refused for unfinished states), the
 * prune (oldest first, only its state, only what finished before the cut-off, at most a batch, the
 * attempts, logs, payload and unique key with the job, the kept counts right), the time-bounded
 * prune (SQLite stops a batch at its bound but always deletes one job; *more says whether to go
 * on; PostgreSQL ignores the bound), and delete_jobs
 * (finished ones only, missing ids ignored, one transaction: a failure in the middle of a batch
 * deletes none of it), and the count of what prunes would delete (aspen purge's question).
 * SQLite only: a time-bounded batch commits early when another connection of the process
 * waits for the write lock (a claim), but not for its own wait (sqlite_busy.c). */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <time.h>

#define H (3600LL * 1000)

static void test_settings(void **state)
{
    struct fixture *f = *state;
    aspen_store_retention r;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_retention_get(f->s, &r, &e), 0);
    assert_int_equal(r.keep_ms[ASPEN_STORE_SUCCEEDED], 24 * H);
    assert_int_equal(r.keep_ms[ASPEN_STORE_CANCELLED], 24 * H);
    assert_int_equal(r.keep_ms[ASPEN_STORE_FAILED], 7 * 24 * H);
    assert_true(r.is_default[ASPEN_STORE_FAILED]);
    assert_int_equal(r.keep_ms[ASPEN_STORE_QUEUED], 0);

    assert_int_equal(aspen_store_retention_set(f->s, ASPEN_STORE_FAILED, 30 * 24 * H, &e), 0);
    assert_int_equal(aspen_store_retention_set(f->s, ASPEN_STORE_SUCCEEDED, 0, &e), 0);
    assert_int_equal(aspen_store_retention_get(f->s, &r, &e), 0);
    assert_int_equal(r.keep_ms[ASPEN_STORE_FAILED], 30 * 24 * H);
    assert_false(r.is_default[ASPEN_STORE_FAILED]);
    assert_int_equal(r.keep_ms[ASPEN_STORE_SUCCEEDED], 0); /* off */
    assert_false(r.is_default[ASPEN_STORE_SUCCEEDED]);
    /* another handle (another process) sees the same */
    aspen_store *other = open_or_fail(f->path, NULL);
    assert_int_equal(aspen_store_retention_get(other, &r, &e), 0);
    assert_int_equal(r.keep_ms[ASPEN_STORE_FAILED], 30 * 24 * H);
    aspen_store_close(other);
    assert_int_equal(aspen_store_retention_set(f->s, ASPEN_STORE_FAILED, -1, &e), 0);
    assert_int_equal(aspen_store_retention_get(f->s, &r, &e), 0);
    assert_int_equal(r.keep_ms[ASPEN_STORE_FAILED], 7 * 24 * H);
    assert_true(r.is_default[ASPEN_STORE_FAILED]);

    assert_int_equal(aspen_store_retention_set(f->s, ASPEN_STORE_RUNNING, H, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "running is not a final state"));
    /* a value put there by hand that is not ours reads as the default, never as "delete all" */
    assert_int_equal(aspen_store_setting_set(f->s, "retention.cancelled", "-5", &e), 0);
    assert_int_equal(aspen_store_retention_get(f->s, &r, &e), 0);
    assert_int_equal(r.keep_ms[ASPEN_STORE_CANCELLED], 24 * H);
}

/* n jobs of type t finished with outcome o at `at` (each with an attempt and a log line). */
static void finished(struct fixture *f, int n, aspen_store_outcome o, int64_t at, int64_t *ids)
{
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, at - 10, NULL), 0);
    for (int i = 0; i < n; i++) {
        int64_t id = submit_job(f->s, "echo", 0, 0, 1, at - 10);
        assert_int_equal(claim_ids(f->s, f->engine, 1, at - 5, NULL), 1);
        aspen_store_log_line line = {.time_ms = at, .line = "a line"};
        aspen_store_completion c = {.job_id = id, .outcome = o, .logs = &line, .n_logs = 1};
        int status = -1;
        assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, at, &status, NULL, NULL), 0);
        assert_int_equal(status, 0);
        if (ids)
            ids[i] = id;
    }
}

static int64_t rows_of(struct fixture *f, const char *table, const char *col, int64_t id)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = %lld", table, col, (long long)id);
    return fx_raw_int(f, sql);
}

static void test_prune(void **state)
{
    struct fixture *f = *state;
    int64_t old[3], young[2], failed[2];
    finished(f, 3, ASPEN_STORE_OUTCOME_SUCCESS, T0, old);
    finished(f, 2, ASPEN_STORE_OUTCOME_SUCCESS, T0 + 10 * H, young);
    finished(f, 2, ASPEN_STORE_OUTCOME_FAILURE, T0, failed);
    int64_t queued = submit_job(f->s, "echo", 0, 0, 1, T0);
    /* a big payload (its own table on SQLite) and a unique key go with their job too */
    aspen_store_unique u = {.key = "pruned-key", .states = 1u << ASPEN_STORE_SUCCEEDED};
    char big[600];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"s\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}", 3);
    aspen_store_job_spec spec = {.type = "echo", .payload = big, .unique = &u};
    int64_t keyed = 0;
    assert_int_equal(aspen_store_submit(f->s, &spec, T0 - 20, &keyed, NULL), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 - 15, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, keyed, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 - 1),
                     0);
    assert_int_equal(rows_of(f, "attempts", "job", old[0]), 1);
    assert_int_equal(rows_of(f, "logs", "job", old[0]), 1);

    aspen_store_error e = {0};
    int64_t n = -1;
    /* at most max, oldest first: the keyed job finished first */
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 2, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows_of(f, "jobs", "id", keyed), 0);
    assert_int_equal(rows_of(f, "job_unique", "job", keyed), 0);
    assert_int_equal(rows_of(f, "jobs", "id", old[0]), 0);
    assert_int_equal(rows_of(f, "attempts", "job", old[0]), 0);
    assert_int_equal(rows_of(f, "logs", "job", old[0]), 0);
    assert_int_equal(rows_of(f, "jobs", "id", old[1]), 1);
    if (!test_on_pg())
        assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM job_payloads"), 0);
    /* the rest of the old ones; the young ones, the failed and the queued stay */
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, &n, &e), 0);
    assert_int_equal(n, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rows_of(f, "jobs", "id", young[i]), 1);
        assert_int_equal(rows_of(f, "jobs", "id", failed[i]), 1);
    }
    assert_int_equal(state_of(f->s, queued), ASPEN_STORE_QUEUED);
    /* the cut-off is strict: finished exactly at it stays */
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_FAILED, T0, 500, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_FAILED, T0 + 1, 500, &n, &e), 0);
    assert_int_equal(n, 2);
    int64_t c[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, c, &e), 0);
    assert_int_equal(c[ASPEN_STORE_SUCCEEDED], 2);
    assert_int_equal(c[ASPEN_STORE_FAILED], 0);
    assert_int_equal(c[ASPEN_STORE_QUEUED], 1);
    assert_int_equal(aspen_store_check(f->s, &e), 0); /* kept counts = a recount */

    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_QUEUED, T0 + H, 500, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "queued is not a final state"));
    assert_int_equal(state_of(f->s, queued), ASPEN_STORE_QUEUED);
}

static void test_prune_timed(void **state)
{
    struct fixture *f = *state;
    int64_t old[5];
    finished(f, 5, ASPEN_STORE_OUTCOME_SUCCESS, T0, old);
    aspen_store_error e = {0};
    aspen_store_prune_result r = {0};
    /* a bound of 1 us is past after any job's delete: SQLite commits that one and says there may
     * be more; PostgreSQL's one statement takes the whole batch and, being short, says none */
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, 1, &r, &e),
                     0);
    int64_t total = r.deleted;
    assert_true(r.held_us > 0);
    if (test_on_pg()) {
        assert_int_equal(r.deleted, 5);
        assert_false(r.more);
    } else {
        assert_int_equal(r.deleted, 1);
        assert_true(r.more);
        assert_int_equal(rows_of(f, "jobs", "id", old[0]), 0); /* oldest first */
        assert_int_equal(rows_of(f, "attempts", "job", old[0]), 0);
        assert_int_equal(rows_of(f, "jobs", "id", old[1]), 1);
        /* no bound: a full batch says more (there may be), a short one says none left */
        assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 2, 0, &r, &e),
                         0);
        assert_int_equal(r.deleted, 2);
        assert_true(r.more);
        total += r.deleted;
        assert_int_equal(
            aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, 0, &r, &e), 0);
        assert_int_equal(r.deleted, 2);
        assert_false(r.more);
        total += r.deleted;
    }
    assert_int_equal(total, 5);
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, 1, &r, &e),
                     0);
    assert_int_equal(r.deleted, 0);
    assert_false(r.more);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM logs"), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0); /* the kept counts follow a cut batch */
    /* a negative bound is a caller's mistake, said as such; nothing deleted, the result zeroed */
    finished(f, 1, ASPEN_STORE_OUTCOME_SUCCESS, T0, NULL);
    r = (aspen_store_prune_result){.deleted = 7, .more = true};
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, -1, &r, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "negative"));
    assert_false(r.more);
    assert_int_equal(r.deleted, 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 1);
    /* out may be NULL */
    assert_int_equal(
        aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, 0, NULL, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 0);
}

static void test_delete_jobs(void **state)
{
    struct fixture *f = *state;
    int64_t done[3];
    finished(f, 3, ASPEN_STORE_OUTCOME_SUCCESS, T0, done);
    int64_t queued = submit_job(f->s, "echo", 0, 0, 1, T0);
    int64_t ids[] = {done[0], queued, 999999, done[2]};
    int64_t n = -1;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_delete_jobs(f->s, ids, 4, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows_of(f, "jobs", "id", done[0]), 0);
    assert_int_equal(rows_of(f, "attempts", "job", done[0]), 0);
    assert_int_equal(rows_of(f, "jobs", "id", done[1]), 1);
    assert_int_equal(rows_of(f, "jobs", "id", done[2]), 0);
    assert_int_equal(state_of(f->s, queued), ASPEN_STORE_QUEUED);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
    /* again: nothing left to do, not an error */
    assert_int_equal(aspen_store_delete_jobs(f->s, ids, 4, &n, &e), 0);
    assert_int_equal(n, 0);
    int64_t *many = calloc(ASPEN_STORE_PRUNE_MAX + 1, sizeof *many);
    assert_int_equal(aspen_store_delete_jobs(f->s, many, ASPEN_STORE_PRUNE_MAX + 1, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "delete in batches"));
    free(many);
}

/* A batch fails in its middle (a trigger refuses deleting one job's logs): none of it is deleted,
 * on either backend, and the counts are untouched. */
static void test_batch_is_atomic(void **state)
{
    struct fixture *f = *state;
    int64_t done[3];
    finished(f, 3, ASPEN_STORE_OUTCOME_SUCCESS, T0, done);
    char sql[600];
    if (test_on_pg())
        snprintf(sql, sizeof sql,
                 "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF OLD.job ="
                 " %lld THEN RAISE EXCEPTION 'boom'; END IF; RETURN OLD; END $$;"
                 " CREATE TRIGGER boom BEFORE DELETE ON logs FOR EACH ROW EXECUTE FUNCTION boom()",
                 (long long)done[1]);
    else
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER boom BEFORE DELETE ON logs WHEN OLD.job = %lld"
                 " BEGIN SELECT RAISE(ABORT, 'boom'); END",
                 (long long)done[1]);
    fx_raw_exec(f, sql);
    int64_t n = -1;
    aspen_store_error e = {0};
    assert_int_not_equal(aspen_store_delete_jobs(f->s, done, 3, &n, &e), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rows_of(f, "jobs", "id", done[i]), 1);
        assert_int_equal(rows_of(f, "logs", "job", done[i]), 1);
    }
    assert_int_not_equal(aspen_store_prune(f->s, ASPEN_STORE_SUCCEEDED, T0 + 1, 500, &n, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 3);
    int64_t c[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, c, &e), 0);
    assert_int_equal(c[ASPEN_STORE_SUCCEEDED], 3);
}

/* aspen_store_prune_count: what the prunes with that cut-off would delete — only the state, only
 * before the cut-off, every job of the state with INT64_MAX (the kept counts) — and 0 once they
 * went; refused for an unfinished state and a NULL count. */
static void test_prune_count(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    finished(f, 3, ASPEN_STORE_OUTCOME_SUCCESS, T0, NULL);
    finished(f, 2, ASPEN_STORE_OUTCOME_SUCCESS, T0 + 10 * H, NULL);
    finished(f, 1, ASPEN_STORE_OUTCOME_FAILURE, T0, NULL);
    submit_job(f->s, "echo", 0, 0, 1, T0); /* queued: never counted */
    int64_t n = -1;
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, T0, &n, &e), 0);
    assert_int_equal(n, 0); /* finished at T0: not before it */
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, INT64_MAX, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, INT64_MAX - 1, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, INT64_MIN, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_FAILED, T0 + H, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_CANCELLED, INT64_MAX, &n, &e), 0);
    assert_int_equal(n, 0);
    /* the count is what the prunes then delete */
    int64_t gone = 0;
    assert_int_equal(aspen_store_prune(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500, &gone, &e), 0);
    assert_int_equal(gone, 3);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_QUEUED, INT64_MAX, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_prune_count(f->s, (aspen_store_state)99, T0, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_prune_count(f->s, ASPEN_STORE_FAILED, T0, NULL, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_prune_count(NULL, ASPEN_STORE_FAILED, T0, &n, &e),
                     ASPEN_STORE_EINVAL);
}

/* n succeeded jobs finished at `at`, each with a log line, straight into the tables (SQLite). */
static void bulk_finished(struct fixture *f, int n, int64_t at)
{
    char sql[600];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)"
             " INSERT INTO jobs (type, payload, state, run_at, attempts, created_at, started_at,"
             " finished_at, log_count) SELECT 'echo', '{}', 'succeeded', %lld, 1, %lld, %lld,"
             " %lld, 1 FROM c; INSERT INTO logs (job, seq, attempt, time_ms, line)"
             " SELECT id, 1, 1, finished_at, 'an old line' FROM jobs",
             n, (long long)at, (long long)at, (long long)at, (long long)at);
    fx_raw_exec(f, sql);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_recount(f->s, &e), 0);
}

struct writer {
    const char *path;
    int started, stop, failed;
    long writes;
};

/* Another handle of the process writing all the time, as the engine's store thread claims: its
 * writes wait for the pruner's lock in the store's busy handler. */
static void *keep_writing(void *arg)
{
    struct writer *w = arg;
    aspen_store *h = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(w->path, NULL, &h, &e) != 0) {
        __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        if (aspen_store_setting_set(h, "test.writer", "x", &e) != 0) {
            __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
            break;
        }
        w->writes++;
        __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    }
    aspen_store_close(h);
    return NULL;
}

static void test_prune_yields_to_waiter(void **state)
{
    struct fixture *f = *state;
    enum { N = 20000 };
    bulk_finished(f, N, T0);
    aspen_store_error e = {0};
    struct writer w = {.path = f->path};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, keep_writing, &w), 0);
    while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
        sched_yield();
    assert_false(w.failed);
    /* batches of the most a transaction may take, bounded by a minute: only a waiter ends them */
    int64_t total = 0, batches = 0, cut = 0;
    aspen_store_prune_result r = {0};
    do {
        assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H,
                                                 ASPEN_STORE_PRUNE_MAX, 60 * 1000000LL, &r, &e),
                         0);
        assert_true(r.deleted >= 1 || !r.more); /* every batch makes progress */
        total += r.deleted;
        batches++;
        cut += r.more && r.deleted < ASPEN_STORE_PRUNE_MAX;
        assert_true(batches <= N + 1);
    } while (r.more);
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    assert_false(w.failed); /* the writer never timed out behind the pruner */
    assert_int_equal(total, N);
    /* 20,000 jobs fit in two full batches: the writer's waits ended some early */
    assert_true(cut >= 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM logs"), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A raw connection holding the write lock ~30 ms (no store busy handler of its own). */
static void *hold_write_lock(void *arg)
{
    struct writer *w = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open(w->path, &db) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
        struct timespec t = {0, 30 * 1000000L};
        nanosleep(&t, NULL);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    } else {
        __atomic_store_n(&w->failed, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    }
    sqlite3_close(db);
    return NULL;
}

/* The pruner's own wait for the lock is no waiter: once it has the lock, its batch runs whole. */
static void test_prune_own_wait_no_cut(void **state)
{
    struct fixture *f = *state;
    bulk_finished(f, 600, T0);
    aspen_store_error e = {0};
    struct writer w = {.path = f->path};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_write_lock, &w), 0);
    while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
        sched_yield();
    assert_false(w.failed);
    aspen_store_prune_result r = {0};
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500,
                                             60 * 1000000LL, &r, &e),
                     0);
    pthread_join(th, NULL);
    assert_int_equal(r.deleted, 500);
    assert_true(r.more);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 100);
}

/* The yield hook: asked between a bounded batch's jobs; true commits what the batch has. */
struct yield_count {
    int asked, yes_after;
};

static bool yield_after(void *arg)
{
    struct yield_count *y = arg;
    return ++y->asked > y->yes_after;
}

static void test_prune_yield_hook(void **state)
{
    struct fixture *f = *state;
    bulk_finished(f, 100, T0);
    aspen_store_error e = {0};
    aspen_store_prune_result r = {0};
    /* says yes at its 4th question: the batch ends after the 4th job (asked from the 2nd on) */
    struct yield_count y = {.yes_after = 3};
    aspen_store_prune_yield_set(f->s, yield_after, &y);
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 50,
                                             60 * 1000000LL, &r, &e),
                     0);
    assert_int_equal(r.deleted, 4);
    assert_true(r.more);
    assert_int_equal(y.asked, 4);
    /* always yes: every batch still deletes one job (progress) */
    y = (struct yield_count){.yes_after = 0};
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 50,
                                             60 * 1000000LL, &r, &e),
                     0);
    assert_int_equal(r.deleted, 1);
    assert_true(r.more);
    /* an unbounded prune (budget 0) is never cut: aspen_store_prune's callers get whole batches */
    y = (struct yield_count){.yes_after = 0};
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 50, 0, &r, &e),
                     0);
    assert_int_equal(r.deleted, 50);
    assert_int_equal(y.asked, 0);
    /* removed: the rest goes in one bounded batch */
    aspen_store_prune_yield_set(f->s, NULL, NULL);
    assert_int_equal(aspen_store_prune_timed(f->s, ASPEN_STORE_SUCCEEDED, T0 + H, 500,
                                             60 * 1000000LL, &r, &e),
                     0);
    assert_int_equal(r.deleted, 45);
    assert_false(r.more);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM jobs"), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_settings, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune_timed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_is_atomic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune_count, fx_setup, fx_teardown),
    };
    /* the busy handler and its waiters are SQLite's (PostgreSQL's batches lock only their rows) */
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_prune_yields_to_waiter, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune_own_wait_no_cut, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prune_yield_hook, fx_setup, fx_teardown),
    };
    return run_store_tests(__FILE__, both, sizeof both / sizeof both[0], sqlite_only,
                           sizeof sqlite_only / sizeof sqlite_only[0]);
}
