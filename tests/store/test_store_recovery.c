/* test_store_recovery.c — leases and crash recovery, and several connections on one database:
 * a job owned by an engine whose lease expired is requeued with its attempt counted (or failed on
 * its last attempt, or cancelled if a cancel was pending), one owned by a live engine is never
 * touched; a recovered engine learns it lost its lease; two handles share the queue (one submits,
 * the other claims); data_version moves when another connection writes; a second process claims
 * concurrently without any job claimed twice; after an outage every engine shared, engines
 * re-take their own leases and nothing runs twice, while a host partitioned alone and rescued by
 * another has its late result refused. */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <time.h>
#include <sys/wait.h>

static void test_recover_expired_not_live(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t dead = 0, live = 0;
    assert_int_equal(aspen_store_engine_register(s, 111, "hostA", 5000, T0, &dead, &e), 0);
    assert_int_equal(aspen_store_engine_register(s, 222, "hostB", 5000, T0, &live, &e), 0);
    int64_t a = submit_job(s, "t", 3, 0, 3, T0); /* claimed by dead, will be requeued */
    int64_t b = submit_job(s, "t", 2, 0, 1, T0); /* claimed by dead, last attempt: failed */
    int64_t c = submit_job(s, "t", 1, 0, 3, T0); /* claimed by live: untouched */
    int64_t d = submit_job(s, "t", 0, 0, 3, T0); /* claimed by dead, cancel pending: cancelled */
    int64_t ids[4];
    assert_int_equal(claim_ids(s, dead, 2, T0, ids), 2);
    assert_int_equal(ids[0], a);
    assert_int_equal(ids[1], b);
    assert_int_equal(claim_ids(s, live, 1, T0, ids), 1);
    assert_int_equal(ids[0], c);
    assert_int_equal(claim_ids(s, dead, 1, T0, ids), 1);
    assert_int_equal(ids[0], d);
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(s, d, T0, &cr, &e), 0);
    assert_int_equal(cr, ASPEN_STORE_CANCEL_REQUESTED);

    /* Within the lease nothing is recovered, whatever the age of the jobs. */
    aspen_store_recovery r = {0};
    assert_int_equal(aspen_store_recover(s, T0 + 5000, &r, &e), 0);
    assert_int_equal(r.requeued + r.failed + r.cancelled, 0);

    /* The live engine renews; the dead one does not. */
    assert_int_equal(aspen_store_engine_renew(s, live, 5000, T0 + 4000, &e), 0);
    assert_int_equal(aspen_store_engine_renew(s, f->engine, 60000, T0 + 4000, &e), 0);
    assert_int_equal(aspen_store_recover(s, T0 + 6000, &r, &e), 0);
    assert_int_equal(r.requeued, 1);
    assert_int_equal(r.failed, 1);
    assert_int_equal(r.cancelled, 1);
    assert_int_equal(r.engines_removed, 1);
    assert_int_equal(state_of(s, a), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(s, b), ASPEN_STORE_FAILED);
    assert_int_equal(state_of(s, c), ASPEN_STORE_RUNNING);
    assert_int_equal(state_of(s, d), ASPEN_STORE_CANCELLED);

    aspen_store_job j;
    assert_int_equal(aspen_store_get(s, a, &j, &e), 0);
    assert_int_equal(j.attempts, 1); /* counted */
    assert_int_equal(j.owner, 0);
    assert_non_null(strstr(j.error, "pid 111 on hostA"));
    aspen_store_job_clear(&j);
    aspen_store_attempt *at = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(s, a, &at, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(at[0].outcome, "recovered");
    assert_true(at[0].recovered);
    assert_int_equal(at[0].engine_id, dead);
    assert_int_equal(at[0].started_at_ms, T0);
    assert_int_equal(at[0].finished_at_ms, T0 + 6000);
    aspen_store_attempts_free(at, n);
    assert_int_equal(aspen_store_get(s, b, &j, &e), 0);
    assert_non_null(strstr(j.error, "out of attempts"));
    assert_int_equal(j.finished_at_ms, T0 + 6000);
    aspen_store_job_clear(&j);

    /* The dead engine comes back: its lease is gone, its late result is refused. */
    assert_int_equal(aspen_store_engine_renew(s, dead, 5000, T0 + 7000, &e), ASPEN_STORE_ELEASE);
    assert_non_null(strstr(e.msg, "lease is gone"));
    /* Both refusals the contract allows: SQLite judges the job (no longer running: ESTATE);
     * PostgreSQL judges the engine first (no live lease on the server's clock: ELEASE). */
    assert_int_equal(complete_one(s, dead, a, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 7000),
                     test_on_pg() ? ASPEN_STORE_ELEASE : ASPEN_STORE_ESTATE);
    /* The requeued job runs again as attempt 2, by someone alive. */
    assert_int_equal(claim_ids(s, f->engine, 10, T0 + 7000, ids), 1);
    assert_int_equal(ids[0], a);
    assert_int_equal(complete_one(s, f->engine, a, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 7001), 0);
    assert_int_equal(aspen_store_attempts(s, a, &at, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(at[1].number, 2);
    assert_string_equal(at[1].outcome, "succeeded");
    aspen_store_attempts_free(at, n);

    /* A clean exit hands running jobs back without counting an attempt. */
    int64_t g = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(claim_ids(s, live, 1, T0 + 7000, NULL), 1);
    int64_t released = 0;
    assert_int_equal(aspen_store_engine_unregister(s, live, T0 + 7000, &released, &e), 0);
    assert_int_equal(released, 2); /* c and g go back without an attempt counted */
    assert_int_equal(state_of(s, c), ASPEN_STORE_QUEUED);
    assert_int_equal(aspen_store_get(s, g, &j, &e), 0);
    assert_int_equal(j.attempts, 0);
    aspen_store_job_clear(&j);

    aspen_store_engine_info *engines = NULL;
    assert_int_equal(aspen_store_engines(s, T0 + 8000, &engines, &n, &e), 0);
    assert_int_equal(n, 1); /* only the fixture's engine is left */
    assert_int_equal(engines[0].id, f->engine);
    assert_int_equal(engines[0].running, 0);
    aspen_store_engines_free(engines);

    /* A running job whose owner row vanished (deleted by hand) is recovered at once. */
    int64_t ghost = 0;
    assert_int_equal(aspen_store_engine_register(s, 333, "hostC", 60000, T0 + 7000, &ghost, &e), 0);
    assert_int_equal(claim_ids(s, ghost, 1, T0 + 7000, ids), 1);
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM engines WHERE id = %lld", (long long)ghost);
    fx_raw_exec(f, sql);
    assert_int_equal(aspen_store_recover(s, T0 + 7001, &r, &e), 0);
    assert_int_equal(r.requeued, 1);
    assert_int_equal(state_of(s, ids[0]), ASPEN_STORE_QUEUED);
    assert_int_equal(aspen_store_get(s, ids[0], &j, &e), 0);
    assert_non_null(strstr(j.error, "is gone"));
    aspen_store_job_clear(&j);
}

static int64_t attempts_with(aspen_store *s, int64_t id, const char *outcome)
{
    aspen_store_attempt *at = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    if (aspen_store_attempts(s, id, &at, &n, &e) != 0)
        fail_msg("attempts of %lld: %s", (long long)id, e.msg);
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !outcome || strcmp(at[i].outcome, outcome) == 0;
    aspen_store_attempts_free(at, n);
    return k;
}

/* An outage every engine shared (the trial: the server stopped 10 s under two workers): both
 * leases expired while neither could reach the database. The first back recovers neither itself
 * nor the other (expired less than its own 10 s away), while an engine dead before the outage is
 * recovered at once; each then re-takes its own lease — a renewal after expiry succeeds because
 * nobody took its jobs — and its finished job completes, once, with no lost attempt. */
static void test_shared_outage_no_rerun(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t x = 0, y = 0, dead = 0, ids[2];
    assert_int_equal(aspen_store_engine_renew(s, f->engine, 600000, T0, &e), 0);
    assert_int_equal(aspen_store_engine_register(s, 30, "dead", 5000, T0 - 30000, &dead, &e), 0);
    int64_t jd = submit_job(s, "t", 2, 0, 3, T0 - 30000);
    assert_int_equal(claim_ids(s, dead, 1, T0 - 30000, ids), 1);
    assert_int_equal(ids[0], jd);
    assert_int_equal(aspen_store_engine_register(s, 10, "hostX", 5000, T0, &x, &e), 0);
    assert_int_equal(aspen_store_engine_register(s, 20, "hostY", 5000, T0, &y, &e), 0);
    int64_t jx = submit_job(s, "t", 1, 0, 3, T0), jy = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(claim_ids(s, x, 1, T0, ids), 1);
    assert_int_equal(ids[0], jx);
    assert_int_equal(claim_ids(s, y, 1, T0, ids), 1);
    assert_int_equal(ids[0], jy);

    /* x is back at T0 + 10 s, having last renewed at T0: y expired 5 s ago, inside x's own gap. */
    aspen_store_recovery r = {0};
    assert_int_equal(aspen_store_recover_others(s, x, 10000, T0 + 10000, &r, &e), 0);
    assert_int_equal(r.requeued, 1); /* the engine dead long before: its job only */
    assert_int_equal(r.engines_removed, 1);
    assert_int_equal(state_of(s, jd), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(s, jx), ASPEN_STORE_RUNNING);
    assert_int_equal(state_of(s, jy), ASPEN_STORE_RUNNING);
    /* x re-takes its own lease after expiry and its waiting completion is accepted. */
    assert_int_equal(aspen_store_engine_renew(s, x, 5000, T0 + 10000, &e), 0);
    assert_int_equal(complete_one(s, x, jx, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 10001), 0);
    /* y comes back a little later (still inside x's grace): the same. */
    assert_int_equal(aspen_store_recover_others(s, x, 10000, T0 + 10500, &r, &e), 0);
    assert_int_equal(r.requeued + r.failed + r.cancelled + r.engines_removed, 0);
    assert_int_equal(aspen_store_engine_renew(s, y, 5000, T0 + 10600, &e), 0);
    assert_int_equal(complete_one(s, y, jy, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 10601), 0);
    for (int k = 0; k < 2; k++) {
        int64_t id = k ? jy : jx;
        assert_int_equal(state_of(s, id), ASPEN_STORE_SUCCEEDED);
        assert_int_equal(attempts_with(s, id, NULL), 1); /* no lost attempt, no rerun */
        assert_int_equal(attempts_with(s, id, "succeeded"), 1);
    }
    assert_int_equal(attempts_with(s, jd, "recovered"), 1);

    /* An engine never recovers itself, however long expired: that is its renewal's business. */
    int64_t jz = submit_job(s, "t", 0, 0, 3, T0 + 11000);
    assert_int_equal(claim_ids(s, x, 2, T0 + 11000, ids), 2); /* jd (requeued, first) and jz */
    assert_int_equal(ids[0], jd);
    assert_int_equal(ids[1], jz);
    assert_int_equal(aspen_store_recover_others(s, x, 0, T0 + 60000, &r, &e), 0);
    assert_int_equal(state_of(s, jz), ASPEN_STORE_RUNNING);
    assert_int_equal(state_of(s, jd), ASPEN_STORE_RUNNING);
    assert_int_equal(r.requeued, 0);
    assert_int_equal(r.engines_removed, 1); /* y, expired long ago and not x's grace any more */
    /* Bad arguments are refused, nothing recovered. */
    assert_int_equal(aspen_store_recover_others(s, -1, 0, T0 + 60000, &r, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_recover_others(s, x, -5, T0 + 60000, &r, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "minimum expiry"));
    assert_int_equal(state_of(s, jz), ASPEN_STORE_RUNNING);
}

/* A partition only one engine suffered: p is cut off, q is not and recovers p's job once p's
 * lease expired. When p comes back its renewal (after expiry) finds its row gone — ELEASE, it
 * must register again — and its late result is refused; the job completes once, by q. */
static void test_partitioned_late_result_refused(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t p = 0, q = 0, ids[1];
    assert_int_equal(aspen_store_engine_renew(s, f->engine, 600000, T0, &e), 0);
    assert_int_equal(aspen_store_engine_register(s, 40, "hostP", 5000, T0, &p, &e), 0);
    assert_int_equal(aspen_store_engine_register(s, 50, "hostQ", 5000, T0, &q, &e), 0);
    int64_t j = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(claim_ids(s, p, 1, T0, ids), 1);
    assert_int_equal(aspen_store_engine_renew(s, q, 5000, T0 + 6000, &e), 0);
    aspen_store_recovery r = {0};
    assert_int_equal(aspen_store_recover_others(s, q, 0, T0 + 6000, &r, &e), 0);
    assert_int_equal(r.requeued, 1);
    assert_int_equal(aspen_store_engine_renew(s, p, 5000, T0 + 9000, &e), ASPEN_STORE_ELEASE);
    assert_non_null(strstr(e.msg, "register again"));
    assert_int_equal(complete_one(s, p, j, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 9001),
                     test_on_pg() ? ASPEN_STORE_ELEASE : ASPEN_STORE_ESTATE);
    assert_int_equal(claim_ids(s, q, 1, T0 + 9002, ids), 1);
    assert_int_equal(ids[0], j);
    assert_int_equal(complete_one(s, q, j, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 9003), 0);
    assert_int_equal(attempts_with(s, j, "succeeded"), 1);
    assert_int_equal(attempts_with(s, j, "recovered"), 1);
    aspen_store_attempt *at = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(s, j, &at, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(at[0].engine_id, p); /* the lost attempt is p's, the success q's */
    assert_int_equal(at[1].engine_id, q);
    aspen_store_attempts_free(at, n);
}

static void test_engine_ids_not_reused(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t a = 0, b = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 1, "h", 1000, T0, &a, &e), 0);
    assert_int_equal(aspen_store_recover(f->s, T0 + 60000, NULL, &e), 0); /* removes a (and f's) */
    assert_int_equal(aspen_store_engine_register(f->s, 1, "h", 1000, T0 + 60000, &b, &e), 0);
    assert_true(b > a);
    assert_int_equal(aspen_store_engine_register(f->s, 1, "h", 0, T0, &b, &e), ASPEN_STORE_EINVAL);
}

static void test_two_handles(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store *other = open_or_fail(f->path, NULL);
    uint64_t v0 = 0, v1 = 0, v2 = 0;
    assert_int_equal(aspen_store_data_version(f->s, &v0, &e), 0);
    /* "aspen submit" in another terminal. */
    int64_t id = submit_job(other, "from-other", 0, 0, 3, T0);
    assert_int_equal(aspen_store_data_version(f->s, &v1, &e), 0);
    assert_true(v1 != v0);
    /* Our own writes do not move our data_version; they move the other's. */
    uint64_t o0 = 0, o1 = 0;
    assert_int_equal(aspen_store_data_version(other, &o0, &e), 0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, ids), 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(aspen_store_data_version(f->s, &v2, &e), 0);
    assert_true(v2 == v1);
    assert_int_equal(aspen_store_data_version(other, &o1, &e), 0);
    assert_true(o1 != o0);
    /* The other sees the claim, cancels it; we see the request. */
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(other, id, T0, &cr, &e), 0);
    assert_int_equal(cr, ASPEN_STORE_CANCEL_REQUESTED);
    int64_t *req = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_cancel_requests(f->s, f->engine, &req, &n, &e), 0);
    assert_int_equal(n, 1);
    free(req);
    /* Pause from the other process stops our claims. */
    assert_int_equal(aspen_store_set_paused(other, true, &e), 0);
    submit_job(other, "x", 0, 0, 3, T0);
    aspen_store_job *jobs = NULL;
    bool paused = false;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 5, T0, &jobs, &n, &paused, &e), 0);
    assert_true(paused);
    assert_int_equal(n, 0);
    aspen_store_close(other);
}

/* A writer holding the lock longer than the busy timeout: EBUSY with advice, nothing lost. */
static void test_locked(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_options quick = {.busy_timeout_ms = 100};
    aspen_store *other = open_or_fail(f->path, &quick);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    aspen_store_job_spec spec = {.type = "t"};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(aspen_store_submit(other, &spec, T0, NULL, &e), ASPEN_STORE_EBUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(e.msg, "is locked"));
    assert_non_null(strstr(e.msg, "100 ms"));
    /* the store's busy handler (short sleeps, sqlite_busy.c) still waits the whole timeout before
     * it gives up: a lower bound, the semantics, not a speed */
    int64_t waited_ms =
        (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(waited_ms >= 100);
    /* Readers are not blocked by the writer (WAL). */
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(other, counts, &e), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(aspen_store_submit(other, &spec, T0, NULL, &e), 0);
    sqlite3_close(db);
    aspen_store_close(other);
}

/* A lock held briefly by another connection is waited out, not reported: the short sleeps go on
 * trying until it is free (here: a writer holding it ~30 ms, far inside the 5 s timeout). */
struct holder {
    const char *path;
    int held;
};

static void *hold_lock(void *arg)
{
    struct holder *h = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open(h->path, &db) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        __atomic_store_n(&h->held, 1, __ATOMIC_RELEASE);
        struct timespec t = {0, 30 * 1000000L};
        nanosleep(&t, NULL);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    } else {
        __atomic_store_n(&h->held, -1, __ATOMIC_RELEASE);
    }
    sqlite3_close(db);
    return NULL;
}

static void test_locked_briefly(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    struct holder h = {.path = f->path};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_lock, &h), 0);
    while (__atomic_load_n(&h.held, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    assert_int_equal(h.held, 1);
    aspen_store_job_spec spec = {.type = "t"};
    for (int i = 0; i < 3; i++) /* the first waits; the rest may find it free already */
        assert_int_equal(aspen_store_submit(f->s, &spec, T0, NULL, &e), 0);
    pthread_join(th, NULL);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 3);
}

/* Two processes claim from one queue at once: every job is claimed exactly once. */
static void test_two_processes_claim(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    enum { JOBS = 2000 };
    static aspen_store_job_spec specs[JOBS];
    for (int i = 0; i < JOBS; i++)
        specs[i] = (aspen_store_job_spec){.type = "t"};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, JOBS, T0, NULL, &e), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            aspen_store *s = NULL;
            aspen_store_error ce = {0};
            if (aspen_store_open(f->path, NULL, &s, &ce) != 0)
                _exit(10);
            int64_t me = 0;
            if (aspen_store_engine_register(s, getpid(), "kid", 60000, T0, &me, &ce) != 0)
                _exit(11);
            for (;;) {
                aspen_store_job *jobs = NULL;
                size_t n = 0;
                if (aspen_store_claim(s, me, 7, T0, &jobs, &n, NULL, &ce) != 0)
                    _exit(12);
                if (n == 0)
                    break;
                aspen_store_completion c[7];
                for (size_t i = 0; i < n; i++)
                    c[i] = (aspen_store_completion){.job_id = jobs[i].id,
                                                    .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
                int status[7];
                if (aspen_store_complete(s, me, c, n, T0, status, NULL, &ce) != 0)
                    _exit(13);
                for (size_t i = 0; i < n; i++)
                    if (status[i] != 0)
                        _exit(14);
                aspen_store_jobs_free(jobs, n);
            }
            aspen_store_close(s);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st = 0;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], JOBS);
    /* Exactly one attempt per job: nobody ran a job twice. */
    aspen_store_filter all = {.limit = -1};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(f->s, &all, &jobs, &n, &e), 0);
    assert_int_equal(n, JOBS);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jobs[i].attempts, 1);
    aspen_store_jobs_free(jobs, n);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_recover_expired_not_live),
        T(test_shared_outage_no_rerun),
        T(test_partitioned_late_result_refused),
        T(test_engine_ids_not_reused),
        T(test_two_handles),
        T(test_two_processes_claim),
    };
    /* SQLite's write lock and busy timeout (PostgreSQL locks rows, and has no busy timeout). */
    const struct CMUnitTest sqlite_only[] = {
        T(test_locked),
        T(test_locked_briefly),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
