/* tests/engine/test_engine_giveback.c — prefetched jobs whose give-back the store refuses are not
 * lost (issue 8's give_back_stale fix in engine/engine.c), made deterministic with the store's
 * test hook aspen_store_test_fail_unclaims instead of a PostgreSQL restart at the right
 * millisecond (tests/cli/worker_pgoutage_test.sh caught it about 1 run in 4).
 *
 * The shape is test_engine_claims' "prefetch bound": one worker runs short jobs, then a long one;
 * the jobs prefetched behind the long one wait past PREFETCH_MAX_WAIT_MS and the engine tries to
 * give them back (aspen_store_unclaim). Here the store refuses:
 *
 *   refused for ever   every give-back fails while the long job runs: the jobs stay this engine's
 *                      and it runs them itself once its worker is free, each exactly once
 *   refused 3 times    then the store answers: the next give-back succeeds and a second engine
 *                      runs the jobs; every job succeeds exactly once
 *
 * Before the fix the refused jobs were freed with their reservations left behind: the engine,
 * alive and holding its lease, had forgotten them and no one else could claim them, so they
 * stayed queued until it stopped (wait_idle times out here). Both tests check that the hook really
 * refused something, so neither passes without going through the path. Runs on both backends
 * (the _pg twin: ASPEN_TEST_BACKEND=postgres). KVM is required by the engine (fail, never skip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_store.h"

#define TEST_TMP_PREFIX "aspen-engine-giveback"
#include "test_support.h"

enum { FIRST = 40, AFTER = 10, SHORT_MS = 5, LONG_MS = 2000 };

static aspen_engine *open_eng(int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.guest_dir = GUEST_DIR;
    return open_cfg(&cfg);
}

/* n sleep jobs of `ms` each; ids into ids. */
static void submit_sleeps(aspen_engine *eng, int n, int ms, int64_t *ids)
{
    char payload[64];
    snprintf(payload, sizeof payload, "{\"ms\":%d}", ms);
    aspen_engine_job_spec specs[FIRST];
    assert_true(n <= FIRST);
    for (int i = 0; i < n; i++)
        specs[i] = (aspen_engine_job_spec){.type = "sleep", .payload = payload};
    aspen_engine_error err = {0};
    int rc = aspen_engine_submit_batch(eng, specs, (size_t)n, ids, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static aspen_store_state state_of(aspen_engine *eng, int64_t id)
{
    aspen_store_job j = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_get(eng, id, &j, &err), 0);
    aspen_store_state st = j.state;
    aspen_store_job_clear(&j);
    return st;
}

/* Submits FIRST short jobs, a long one and AFTER short ones, starts eng (one worker) and returns
 * once the long job runs: the engine has learnt its start rate from the short ones, so jobs are
 * prefetched behind the long one. */
static void run_up_to_the_long_job(aspen_engine *eng, int64_t *first, int64_t *slow, int64_t *after)
{
    submit_sleeps(eng, FIRST, SHORT_MS, first);
    submit_sleeps(eng, 1, LONG_MS, slow);
    submit_sleeps(eng, AFTER, SHORT_MS, after);
    start(eng);
    int64_t t0 = now_ms();
    while (state_of(eng, *slow) != ASPEN_STORE_RUNNING) {
        if (now_ms() - t0 > 30000)
            fail_msg("the long job did not start in 30 s");
        sleep_ms(2);
    }
}

/* Waits until nothing is queued or running; then every job of ids succeeded with exactly one
 * attempt, run by engine `by` when it is not 0. */
static void all_done_once(aspen_engine *eng, const int64_t *ids, int n, int64_t by)
{
    aspen_engine_error err = {0};
    int rc = aspen_engine_wait_idle(eng, 20000, true, &err);
    if (rc != 0) {
        int queued = 0;
        for (int i = 0; i < n; i++)
            queued += state_of(eng, ids[i]) == ASPEN_STORE_QUEUED;
        fail_msg("not idle 20 s after the long job started (wait_idle %d%s%s): %d of these %d "
                 "jobs are still queued, reserved by an engine that forgot them",
                 rc, err.msg[0] ? ": " : "", err.msg, queued, n);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(state_of(eng, ids[i]), ASPEN_STORE_SUCCEEDED);
        aspen_store_attempt *a = NULL;
        size_t k = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &k, &err), 0);
        if (k != 1)
            fail_msg("job %lld has %zu attempts, not 1", (long long)ids[i], k);
        if (by)
            assert_int_equal(a[0].engine_id, by);
        aspen_store_attempts_free(a, k);
    }
}

static int hook_off(void **state)
{
    aspen_store_test_fail_unclaims(0);
    return teardown(state);
}

/* Every give-back refused: the jobs prefetched behind the long job run on this engine after it. */
static void test_refused_for_ever_runs_here(void **state)
{
    (void)state;
    enum { FOREVER = 1000000 };
    aspen_engine *eng = open_eng(1);
    int64_t first[FIRST], slow, after[AFTER];
    aspen_store_test_fail_unclaims(FOREVER);
    run_up_to_the_long_job(eng, first, &slow, after);
    /* past PREFETCH_MAX_WAIT_MS (200 ms) with the worker still busy: give-backs were tried */
    sleep_ms(LONG_MS / 2);
    assert_int_equal(state_of(eng, slow), ASPEN_STORE_RUNNING);
    all_done_once(eng, after, AFTER, aspen_engine_id(eng));
    all_done_once(eng, first, FIRST, aspen_engine_id(eng));
    int left = aspen_store_test_fail_unclaims(0);
    fprintf(stderr, "the store refused %d give-backs\n", FOREVER - left);
    assert_true(left < FOREVER); /* the path was taken: something was refused */
    aspen_engine_close(eng);
}

/* Three refusals, then the store answers: the jobs are given back and a second engine runs them. */
static void test_refused_then_given_back(void **state)
{
    (void)state;
    aspen_engine *a = open_eng(1);
    int64_t first[FIRST], slow, after[AFTER];
    aspen_store_test_fail_unclaims(3);
    run_up_to_the_long_job(a, first, &slow, after);
    aspen_engine *b = open_eng(1);
    start(b);
    all_done_once(b, after, AFTER, 0);
    all_done_once(b, first, FIRST, 0);
    assert_int_equal(state_of(b, slow), ASPEN_STORE_SUCCEEDED);
    /* all three refusals were used: the give-back failed and was tried again */
    assert_int_equal(aspen_store_test_fail_unclaims(0), 0);
    aspen_engine_close(b);
    aspen_engine_close(a);
}

/* The hook itself: it refuses exactly n unclaims with EIO and a message naming it, touches
 * nothing, and then unclaim works again. */
static void test_hook_refuses_n_unclaims(void **state)
{
    (void)state;
    aspen_store *s = test_store();
    aspen_store_error e = {0};
    int64_t id = 0;
    aspen_store_job_spec spec = {.type = "echo", .payload = "{}"};
    assert_int_equal(aspen_store_submit(s, &spec, aspen_store_now_ms(), &id, &e), 0);
    int64_t engine_id = 0;
    assert_int_equal(aspen_store_engine_register(s, getpid(), "giveback-test", 60000,
                                                 aspen_store_now_ms(), &engine_id, &e),
                     0);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_claim(s, engine_id, 1, aspen_store_now_ms(), &jobs, &n, NULL, &e),
                     0);
    assert_int_equal(n, 1);
    aspen_store_jobs_free(jobs, n);

    assert_int_equal(aspen_store_test_fail_unclaims(2), 0);
    for (int i = 0; i < 2; i++) {
        e = (aspen_store_error){0};
        assert_int_equal(aspen_store_unclaim(s, engine_id, &id, 1, &e), ASPEN_STORE_EIO);
        assert_int_equal(e.code, ASPEN_STORE_EIO);
        assert_non_null(strstr(e.msg, "aspen_store_test_fail_unclaims"));
    }
    /* still reserved: a second claim finds nothing */
    assert_int_equal(aspen_store_claim(s, engine_id, 1, aspen_store_now_ms(), &jobs, &n, NULL, &e),
                     0);
    assert_int_equal(n, 0);
    /* giving back nothing is not refused and uses none of the budget */
    assert_int_equal(aspen_store_test_fail_unclaims(1), 0);
    assert_int_equal(aspen_store_unclaim(s, engine_id, NULL, 0, &e), 0);
    assert_int_equal(aspen_store_test_fail_unclaims(0), 1);
    /* off: the give-back works and the job can be claimed again */
    assert_int_equal(aspen_store_unclaim(s, engine_id, &id, 1, &e), 0);
    assert_int_equal(aspen_store_claim(s, engine_id, 1, aspen_store_now_ms(), &jobs, &n, NULL, &e),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].id, id);
    aspen_store_jobs_free(jobs, n);
    int64_t released = 0;
    assert_int_equal(aspen_store_engine_unregister(s, engine_id, aspen_store_now_ms(), &released, &e),
                     0);
    aspen_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hook_refuses_n_unclaims, setup, hook_off),
        cmocka_unit_test_setup_teardown(test_refused_for_ever_runs_here, setup, hook_off),
        cmocka_unit_test_setup_teardown(test_refused_then_given_back, setup, hook_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
