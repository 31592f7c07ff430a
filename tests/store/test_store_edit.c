/* test_store_edit.c — edits of a waiting job (store/edit.c and each backend's writer): a queued or
 * scheduled job's priority changes and the claim order follows at once (a reserved job keeps its
 * reservation); a running or finished job's is refused with the reason; out of range is EINVAL.
 * "Run now": a scheduled job (delayed, or backing off after a failure) becomes queued with
 * run_at = now, the kept counts move with it, and the next claim takes it; a queued, running or
 * finished job is refused saying why; an unknown id is ENOTFOUND. Retry (edit.c's
 * store_decide_retry): only a failed job, due at once; a scheduled one is refused unchanged,
 * pointing at run-now. Snooze, run-now's inverse: a queued or scheduled job is put off (scheduled,
 * run_at = now + delay) with its attempts, priority and unique key kept; running, finished,
 * reserved and unknown jobs and bad delays are refused; by filter; and a snooze racing an
 * engine's claims from another process either loses to the claim or wins it, never both. Runs on
 * SQLite and PostgreSQL.
 */
#include "helpers.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t counts_of(struct fixture *f, aspen_store_state st)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(f->s, c, &e), 0);
    return c[st];
}

static void test_priority_of_waiting_jobs(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t a = submit_job(f->s, "echo", 0, 0, 3, T0);
    int64_t b = submit_job(f->s, "echo", 0, 0, 3, T0);
    int64_t later = submit_job(f->s, "echo", 0, T0 + 60000, 3, T0);
    /* b jumps ahead of a */
    assert_int_equal(aspen_store_set_priority(f->s, b, 7, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, b, &j, &e), 0);
    assert_int_equal(j.priority, 7);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    aspen_store_job_clear(&j);
    int64_t ids[4];
    assert_int_equal(reserve_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(ids[0], b);
    /* a reserved job may change too, and keeps its reservation */
    assert_int_equal(aspen_store_set_priority(f->s, b, -3, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 2, ids), 1);
    assert_int_equal(ids[0], a);
    /* a scheduled one */
    assert_int_equal(aspen_store_set_priority(f->s, later, 1000000, &e), 0);
    assert_int_equal(aspen_store_get(f->s, later, &j, &e), 0);
    assert_int_equal(j.priority, 1000000);
    assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
    aspen_store_job_clear(&j);
    /* out of range, unknown */
    assert_int_equal(aspen_store_set_priority(f->s, a, 1000001, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "from -1000000 to 1000000"));
    assert_int_equal(aspen_store_set_priority(f->s, 999, 1, &e), ASPEN_STORE_ENOTFOUND);
}

static void test_priority_refused_once_started(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t r = submit_job(f->s, "echo", 0, 0, 3, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(ids[0], r);
    assert_int_equal(aspen_store_set_priority(f->s, r, 5, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is running: only a waiting job's priority can change"));
    assert_int_equal(complete_one(f->s, f->engine, r, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 2), 0);
    assert_int_equal(aspen_store_set_priority(f->s, r, 5, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is succeeded"));
    assert_non_null(strstr(e.msg, "aspen rerun"));
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, r, &j, &e), 0);
    assert_int_equal(j.priority, 0);
    aspen_store_job_clear(&j);
}

static void test_run_now(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t later = submit_job(f->s, "echo", 0, T0 + 3600000, 3, T0);
    assert_int_equal(counts_of(f, ASPEN_STORE_SCHEDULED), 1);
    int64_t ids[4];
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 5, ids), 0); /* not due */
    assert_int_equal(aspen_store_run_now(f->s, later, T0 + 10, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, later, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    assert_int_equal(j.run_at_ms, T0 + 10);
    aspen_store_job_clear(&j);
    assert_int_equal(counts_of(f, ASPEN_STORE_SCHEDULED), 0);
    assert_int_equal(counts_of(f, ASPEN_STORE_QUEUED), 1);
    /* queued now: refused again, saying it is due */
    assert_int_equal(aspen_store_run_now(f->s, later, T0 + 11, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "already queued"));
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 12, ids), 1);
    assert_int_equal(ids[0], later);
    assert_int_equal(aspen_store_run_now(f->s, 4242, T0, &e), ASPEN_STORE_ENOTFOUND);
}

static void test_run_now_after_a_failure(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(aspen_store_run_now(f->s, id, T0 + 2, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is running: only a scheduled job"));
    /* fails, backs off for a minute */
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, T0 + 60000,
                                  T0 + 3),
                     0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_SCHEDULED);
    assert_int_equal(aspen_store_run_now(f->s, id, T0 + 4, &e), 0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_QUEUED);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 5, ids), 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 6), 0);
    assert_int_equal(aspen_store_run_now(f->s, id, T0 + 7, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is succeeded"));
    /* the kept counts match a recount after all of it */
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* An operator's retry is for a failed job. A scheduled one (a delayed submit, or backing off after
 * a failed attempt) used to be queued at once through the scheduled → queued edge; now it is
 * refused, unchanged, saying when it runs and that run-now is the way to run it early. A failed job
 * that had a delay is due at once: the delay was for its first run. */
static void test_retry_is_for_failed_jobs(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t later = submit_job(f->s, "echo", 0, T0 + 3600000, 3, T0);
    assert_int_equal(aspen_store_retry(f->s, later, T0 + 1000, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is scheduled, not failed"));
    assert_non_null(strstr(e.msg, "submitted with a delay"));
    assert_non_null(strstr(e.msg, "aspen run-now"));
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, later, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
    assert_int_equal(j.run_at_ms, T0 + 3600000);
    aspen_store_job_clear(&j);
    assert_int_equal(counts_of(f, ASPEN_STORE_SCHEDULED), 1);

    /* backing off after a failed attempt: refused too, and says why it waits */
    int64_t id = submit_job(f->s, "echo", 0, 0, 2, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(aspen_store_retry(f->s, id, T0 + 2, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is running"));
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, T0 + 60000,
                                  T0 + 3),
                     0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_SCHEDULED);
    assert_int_equal(aspen_store_retry(f->s, id, T0 + 4, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "backoff after a failed attempt"));
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_SCHEDULED);
    /* the backoff over, it fails for good (2 of 2); retry queues it due now, one more allowed */
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, T0 + 60000, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 60000, ids), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, 0, T0 + 60001),
                     0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);
    assert_int_equal(aspen_store_retry(f->s, id, T0 + 70000, &e), 0);
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    assert_int_equal(j.run_at_ms, T0 + 70000);
    assert_int_equal(j.max_attempts, 3);
    aspen_store_job_clear(&j);
    /* queued: refused, it is due already */
    assert_int_equal(aspen_store_retry(f->s, id, T0 + 70001, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "already queued"));

    /* a failed job that was submitted with a delay runs at once when retried */
    int64_t d = submit_job(f->s, "echo", 0, T0 + 80000, 1, T0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 80000, ids), 2); /* id, then d */
    aspen_store_start marks[2] = {{id, T0 + 80000}, {d, T0 + 80000}};
    assert_int_equal(aspen_store_start_jobs(f->s, f->engine, marks, 2, T0 + 80000, NULL, &e), 0);
    assert_int_equal(complete_one(f->s, f->engine, d, ASPEN_STORE_OUTCOME_FAILURE, 0, T0 + 80001), 0);
    assert_int_equal(state_of(f->s, d), ASPEN_STORE_FAILED);
    assert_int_equal(aspen_store_retry(f->s, d, T0 + 90000, &e), 0);
    assert_int_equal(aspen_store_get(f->s, d, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    assert_int_equal(j.run_at_ms, T0 + 90000);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_retry(f->s, 4242, T0, &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

static void test_snooze_waiting_jobs(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t q = submit_job(f->s, "echo", 5, 0, 4, T0);
    int64_t later = submit_job(f->s, "echo", 0, T0 + 3600000, 3, T0);
    assert_int_equal(aspen_store_snooze(f->s, q, 60000, T0 + 10, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, q, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
    assert_int_equal(j.run_at_ms, T0 + 60010);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.max_attempts, 4);
    assert_int_equal(j.priority, 5);
    aspen_store_job_clear(&j);
    assert_int_equal(counts_of(f, ASPEN_STORE_QUEUED), 0);
    assert_int_equal(counts_of(f, ASPEN_STORE_SCHEDULED), 2);
    int64_t ids[4];
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 20, ids), 0); /* not due */
    /* a job due later: put off by the delay from its own time, never brought earlier (from now,
     * 2 s would have made an hour's wait 2 s) */
    assert_int_equal(aspen_store_snooze(f->s, later, 2000, T0 + 30, &e), 0);
    assert_int_equal(aspen_store_get(f->s, later, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
    assert_int_equal(j.run_at_ms, T0 + 3602000);
    aspen_store_job_clear(&j);
    /* snoozed again: put off further from its snoozed time, still scheduled, nothing counted
     * twice */
    assert_int_equal(aspen_store_snooze(f->s, q, 1000, T0 + 40, &e), 0);
    assert_int_equal(aspen_store_get(f->s, q, &j, &e), 0);
    assert_int_equal(j.run_at_ms, T0 + 61010);
    aspen_store_job_clear(&j);
    assert_int_equal(counts_of(f, ASPEN_STORE_SCHEDULED), 2);
    /* its time comes: promoted and claimed as any due job, q first */
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 3600000, T0 + 61000, &e), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 61009, ids), 0);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 61010, ids), 1);
    assert_int_equal(ids[0], q);
    assert_int_equal(reserve_ids(f->s, f->engine, 4, T0 + 3602000, ids), 1);
    assert_int_equal(ids[0], later);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A job backing off after a failed attempt keeps its attempt count when snoozed: snoozing is no
 * attempt, and it leaves the job exactly the attempts it had left. */
static void test_snooze_keeps_attempts(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "echo", 0, 0, 2, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, T0 + 100,
                                  T0 + 2),
                     0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_SCHEDULED);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    int64_t due = j.run_at_ms > T0 + 3 ? j.run_at_ms : T0 + 3; /* its backoff's end, or now */
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_snooze(f->s, id, 3000, T0 + 3, &e), 0);
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.max_attempts, 2);
    assert_int_equal(j.run_at_ms, due + 3000);
    aspen_store_job_clear(&j);
    assert_int_equal(reserve_ids(f->s, f->engine, 1, due, ids), 0); /* its backoff's time */
    assert_int_equal(claim_ids(f->s, f->engine, 1, due + 3000, ids), 1);
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.attempts, 2);
    aspen_store_job_clear(&j);
}

static void test_snooze_refusals(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t run = submit_job(f->s, "echo", 0, 0, 3, T0);
    int64_t ids[2];
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, ids), 1);
    assert_int_equal(aspen_store_snooze(f->s, run, 60000, T0 + 2, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is running: it cannot be snoozed, it runs now"));
    assert_non_null(strstr(e.msg, "aspen cancel"));
    assert_int_equal(complete_one(f->s, f->engine, run, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 3), 0);
    assert_int_equal(aspen_store_snooze(f->s, run, 60000, T0 + 4, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is succeeded: it has finished"));
    /* reserved, not started: the reservation wins and the engine's start goes through */
    int64_t res = submit_job(f->s, "echo", 0, 0, 3, T0);
    assert_int_equal(reserve_ids(f->s, f->engine, 1, T0 + 5, ids), 1);
    assert_int_equal(aspen_store_snooze(f->s, res, 60000, T0 + 6, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is being started by engine"));
    assert_non_null(strstr(e.msg, "nothing changed"));
    assert_int_equal(state_of(f->s, res), ASPEN_STORE_QUEUED);
    aspen_store_start mark = {res, T0 + 7};
    int st = -1;
    assert_int_equal(aspen_store_start_jobs(f->s, f->engine, &mark, 1, T0 + 7, &st, &e), 0);
    assert_int_equal(st, 0);
    assert_int_equal(state_of(f->s, res), ASPEN_STORE_RUNNING);
    /* delays out of range: refused before any backend, the job untouched */
    int64_t q = submit_job(f->s, "echo", 0, 0, 3, T0);
    assert_int_equal(aspen_store_snooze(f->s, q, 0, T0, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "puts nothing off"));
    assert_int_equal(aspen_store_snooze(f->s, q, -1000, T0, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "negative"));
    assert_int_equal(aspen_store_snooze(f->s, q, ASPEN_STORE_SNOOZE_MAX_MS + 1, T0, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "at most 365d"));
    assert_int_equal(aspen_store_snooze(f->s, q, INT64_MAX, T0, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(state_of(f->s, q), ASPEN_STORE_QUEUED);
    assert_int_equal(aspen_store_snooze(f->s, q, ASPEN_STORE_SNOOZE_MAX_MS, T0, &e), 0);
    /* unknown ids */
    const int64_t bad[] = {0, -1, 4242, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(aspen_store_snooze(f->s, bad[i], 1000, T0, &e), ASPEN_STORE_ENOTFOUND);
        assert_non_null(strstr(e.msg, "no job"));
    }
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A unique job keeps holding its key while snoozed: a second submit of the key is its duplicate. */
static void test_snooze_keeps_unique_key(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_unique u = {.key = "nightly:2026-12-04"};
    aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .unique = &u};
    aspen_store_submitted a = {0}, b = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &spec, 1, T0, &a, &e), 0);
    assert_false(a.duplicate);
    assert_int_equal(aspen_store_snooze(f->s, a.id, 600000, T0 + 1, &e), 0);
    assert_int_equal(aspen_store_submit_ex(f->s, &spec, 1, T0 + 2, &b, &e), 0);
    assert_true(b.duplicate);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.state, ASPEN_STORE_SCHEDULED);
    char *key = NULL;
    assert_int_equal(aspen_store_job_unique_key(f->s, a.id, &key, &e), 0);
    assert_string_equal(key, "nightly:2026-12-04");
    free(key);
    /* a rule counting queued jobs but not scheduled ones: snoozing would let the key go, so a
     * queued job of it is refused (a scheduled one already does not hold it) */
    aspen_store_unique qu = {.key = "only-queued", .states = 1u << ASPEN_STORE_QUEUED};
    aspen_store_job_spec qs = {.type = "echo", .payload = "{}", .unique = &qu};
    aspen_store_submitted c = {0};
    assert_int_equal(aspen_store_submit_ex(f->s, &qs, 1, T0, &c, &e), 0);
    assert_int_equal(aspen_store_snooze(f->s, c.id, 600000, T0 + 1, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "holds unique key 'only-queued' only while queued"));
    assert_non_null(strstr(e.msg, "would give the key up; nothing changed"));
    assert_int_equal(state_of(f->s, c.id), ASPEN_STORE_QUEUED);
    aspen_store_filter flt;
    char buf[64];
    int64_t snoozed = -1, left = -1;
    assert_int_equal(aspen_store_filter_parse("state:queued", &flt, buf, sizeof buf, &e), 0);
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 600000, T0 + 2, &snoozed, &left, &e),
                     0);
    assert_int_equal(snoozed, 0);
    assert_int_equal(left, 1);
    assert_int_equal(state_of(f->s, c.id), ASPEN_STORE_QUEUED);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

static void test_snooze_matching(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .tags = "[\"nightly\"]"};
    int64_t ids[8], n_ids = 0;
    for (int i = 0; i < 4; i++) {
        spec.run_at_ms = i == 3 ? T0 + 3600000 : 0;
        assert_int_equal(aspen_store_submit(f->s, &spec, T0, &ids[n_ids++], &e), 0);
    }
    int64_t other = submit_job(f->s, "echo", 0, 0, 3, T0); /* untagged */
    int64_t got[4];
    /* ids[0] running, ids[1] reserved (in claim order: lowest id first) */
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, got), 1);
    assert_int_equal(got[0], ids[0]);
    assert_int_equal(reserve_ids(f->s, f->engine, 1, T0 + 2, got), 1);
    assert_int_equal(got[0], ids[1]);
    aspen_store_filter flt;
    char buf[256];
    assert_int_equal(aspen_store_filter_parse("tag:nightly", &flt, buf, sizeof buf, &e), 0);
    int64_t snoozed = -1, reserved = -1;
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 0, T0 + 3, &snoozed, &reserved, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(snoozed, 0);
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 60000, T0 + 3, &snoozed, &reserved,
                                                 &e),
                     0);
    assert_int_equal(snoozed, 2); /* ids[2] queued, ids[3] scheduled */
    assert_int_equal(reserved, 1);
    assert_int_equal(state_of(f->s, ids[0]), ASPEN_STORE_RUNNING);
    assert_int_equal(state_of(f->s, ids[1]), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, other), ASPEN_STORE_QUEUED);
    aspen_store_job j;
    for (int i = 2; i < 4; i++) { /* ids[3] was due in an hour: put off from then */
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
        assert_int_equal(j.run_at_ms, i == 3 ? T0 + 3660000 : T0 + 60003);
        aspen_store_job_clear(&j);
    }
    /* a filter matching nothing snoozes nothing, and says so with zeros */
    assert_int_equal(aspen_store_filter_parse("tag:nosuch", &flt, buf, sizeof buf, &e), 0);
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 60000, T0 + 4, &snoozed, &reserved,
                                                 &e),
                     0);
    assert_int_equal(snoozed, 0);
    assert_int_equal(reserved, 0);
    /* finished states only: nothing waits among them */
    assert_int_equal(aspen_store_filter_parse("state:running", &flt, buf, sizeof buf, &e), 0);
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 60000, T0 + 4, &snoozed, &reserved,
                                                 &e),
                     0);
    assert_int_equal(snoozed, 0);
    /* past one batch (1,000 jobs a transaction): every one of 2,500 matches, none twice */
    enum { MANY = 2500 };
    aspen_store_job_spec *many = calloc(MANY, sizeof *many);
    for (int i = 0; i < MANY; i++)
        many[i] = (aspen_store_job_spec){.type = "echo", .payload = "{}", .tags = "[\"bulk\"]"};
    assert_int_equal(aspen_store_submit_batch(f->s, many, MANY, T0, NULL, &e), 0);
    free(many);
    assert_int_equal(aspen_store_filter_parse("tag:bulk", &flt, buf, sizeof buf, &e), 0);
    assert_int_equal(aspen_store_snooze_matching(f->s, &flt, 1000, T0 + 5, &snoozed, &reserved,
                                                 &e),
                     0);
    assert_int_equal(snoozed, MANY);
    assert_int_equal(reserved, 0);
    int64_t left_queued = -1;
    flt.states = 1u << ASPEN_STORE_QUEUED;
    assert_int_equal(aspen_store_count(f->s, &flt, &left_queued, &e), 0);
    assert_int_equal(left_queued, 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

/* A snooze from another process races an engine's claims: each job ends either reserved (the
 * snooze refused, saying it is being started) or snoozed (scheduled, never reserved), never both
 * and never neither. The child snoozes from the highest id down, the claims take the lowest up,
 * so they meet somewhere in the middle, on PostgreSQL at the same rows. */
#define RACE_JOBS 150

/* The race's other process (main runs it when ASPEN_TEST_SNOOZE_DB is set): opens the store,
 * says so with a {0, 0} record, then snoozes ids first + n - 1 down to first, one {id, code}
 * record each (-999: refused for another reason than a reservation). Exit 0, or 2/3 on failure. */
static int snooze_race_child(void)
{
    const char *path = getenv("ASPEN_TEST_SNOOZE_DB");
    long long first = 0;
    int n = 0, fd = -1;
    if (sscanf(getenv("ASPEN_TEST_SNOOZE_IDS") ? getenv("ASPEN_TEST_SNOOZE_IDS") : "", "%lld:%d",
               &first, &n) != 2 ||
        sscanf(getenv("ASPEN_TEST_SNOOZE_FD") ? getenv("ASPEN_TEST_SNOOZE_FD") : "", "%d", &fd) != 1)
        return 2;
    aspen_store *c = NULL;
    aspen_store_error ce = {0};
    if (aspen_store_open(path, NULL, &c, &ce) != 0)
        return 2;
    const int64_t ready[2] = {0, 0};
    if (write(fd, ready, sizeof ready) != (ssize_t)sizeof ready)
        return 3;
    for (int i = n - 1; i >= 0; i--) {
        int64_t rec[2] = {first + i, aspen_store_snooze(c, first + i, 600000, T0 + 1, &ce)};
        if (rec[1] == ASPEN_STORE_ESTATE && !strstr(ce.msg, "being started by engine"))
            rec[1] = -999;
        if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
            return 3;
        usleep(100); /* an operator's pace against the claims': they meet in the middle */
    }
    aspen_store_close(c);
    return 0;
}
static void test_snooze_races_claims(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t ids[RACE_JOBS];
    for (int i = 0; i < RACE_JOBS; i++)
        ids[i] = submit_job(f->s, "echo", 0, 0, 3, T0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    /* the child is this program again (exec), not a bare fork: a fork of a process whose other
     * threads (the store's, the sanitizer's) held a lock leaves that lock held in the child */
    char env_path[1200], env_ids[64], env_fd[32];
    snprintf(env_path, sizeof env_path, "ASPEN_TEST_SNOOZE_DB=%s", f->path);
    snprintf(env_ids, sizeof env_ids, "ASPEN_TEST_SNOOZE_IDS=%lld:%d", (long long)ids[0],
             RACE_JOBS);
    snprintf(env_fd, sizeof env_fd, "ASPEN_TEST_SNOOZE_FD=%d", fds[1]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        putenv(env_path), putenv(env_ids), putenv(env_fd); /* the rest of the environment kept */
        char *argv[] = {"test_store_edit", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    int64_t rec[2];
    assert_int_equal(read(fds[0], rec, sizeof rec), (ssize_t)sizeof rec);
    bool claimed[RACE_JOBS] = {0};
    size_t n_claimed = 0;
    for (int round = 0; round < RACE_JOBS; round++) {
        int64_t got[1];
        if (reserve_ids(f->s, f->engine, 1, T0 + 1, got) == 0)
            break;
        int64_t k = got[0] - ids[0];
        assert_true(k >= 0 && k < RACE_JOBS);
        assert_false(claimed[k]);
        claimed[k] = true;
        n_claimed++;
        usleep(100); /* an engine's pace between claims */
    }
    int64_t snoozed[RACE_JOBS];
    for (int i = 0; i < RACE_JOBS; i++)
        snoozed[i] = -1;
    while (read(fds[0], rec, sizeof rec) == (ssize_t)sizeof rec)
        snoozed[rec[0] - ids[0]] = rec[1];
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the claimer may have stopped before the child finished: what it left is claimable still */
    int64_t got[RACE_JOBS];
    size_t late = reserve_ids(f->s, f->engine, RACE_JOBS, T0 + 1, got);
    for (size_t i = 0; i < late; i++) {
        assert_false(claimed[got[i] - ids[0]]);
        claimed[got[i] - ids[0]] = true;
        n_claimed++;
    }
    size_t n_snoozed = 0;
    for (int i = 0; i < RACE_JOBS; i++) {
        assert_true(snoozed[i] == 0 || snoozed[i] == ASPEN_STORE_ESTATE);
        bool won = snoozed[i] == 0;
        if (won == claimed[i])
            fail_msg("job %lld: snoozed %d, reserved %d", (long long)ids[i], won, claimed[i]);
        assert_int_equal(state_of(f->s, ids[i]), won ? ASPEN_STORE_SCHEDULED : ASPEN_STORE_QUEUED);
        n_snoozed += won;
    }
    print_message("snooze race: %zu snoozed, %zu reserved (%zu after the child)\n", n_snoozed,
                  n_claimed, late);
    assert_int_equal(n_snoozed + n_claimed, RACE_JOBS);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

int main(void)
{
    if (getenv("ASPEN_TEST_SNOOZE_DB"))
        return snooze_race_child();
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_priority_of_waiting_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_priority_refused_once_started, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_now, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_now_after_a_failure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_for_failed_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_waiting_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_keeps_attempts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_keeps_unique_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_matching, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snooze_races_claims, fx_setup, fx_teardown),
    };
    const struct CMUnitTest sqlite_only[] = {};
    return RUN_STORE_TESTS(both, sqlite_only);
}
