/* test_store_edit.c — edits of a waiting job (store/edit.c and each backend's writer): a queued or
 * scheduled job's priority changes and the claim order follows at once (a reserved job keeps its
 * reservation); a running or finished job's is refused with the reason; out of range is EINVAL.
 * "Run now": a scheduled job (delayed, or backing off after a failure) becomes queued with
 * run_at = now, the kept counts move with it, and the next claim takes it; a queued, running or
 * finished job is refused saying why; an unknown id is ENOTFOUND. Retry (edit.c's
 * store_decide_retry): only a failed job, due at once; a scheduled one is refused unchanged,
 * pointing at run-now. Runs on SQLite and PostgreSQL.
 */
#include "helpers.h"

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

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_priority_of_waiting_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_priority_refused_once_started, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_now, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_now_after_a_failure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_for_failed_jobs, fx_setup, fx_teardown),
    };
    const struct CMUnitTest sqlite_only[] = {};
    return RUN_STORE_TESTS(both, sqlite_only);
}
