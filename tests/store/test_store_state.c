/* test_store_state.c — the job state machine: every pair of states against the table, the error
 * message of an illegal move, the API refusing illegal moves (cancel a finished job, retry a
 * succeeded one, complete a job that is not running, ...), and the database's guard triggers
 * refusing an illegal UPDATE made behind the store's back. */
#include "helpers.h"

#include <sqlite3.h>

static const aspen_store_state Q = ASPEN_STORE_QUEUED, SC = ASPEN_STORE_SCHEDULED,
                               R = ASPEN_STORE_RUNNING, OK = ASPEN_STORE_SUCCEEDED,
                               F = ASPEN_STORE_FAILED, C = ASPEN_STORE_CANCELLED,
                               NEW = ASPEN_STORE_STATE_NEW;

static void test_table_every_pair(void **state)
{
    (void)state;
    /* The expected table, written out independently of state.c. */
    const bool expect[6][6] = {
        /*            Q      SC     R      OK     F      C   */
        /* Q  */ {false, false, true, false, false, true},
        /* SC */ {true, false, false, false, false, true},
        /* R  */ {true, true, false, true, true, true},
        /* OK */ {false, false, false, false, false, false},
        /* F  */ {true, false, false, false, false, false},
        /* C  */ {false, false, false, false, false, false},
    };
    int legal = 0;
    for (int f = 0; f < 6; f++)
        for (int t = 0; t < 6; t++) {
            bool got = aspen_store_transition_allowed((aspen_store_state)f, (aspen_store_state)t);
            if (got != expect[f][t])
                fail_msg("%s -> %s: got %d", aspen_store_state_name((aspen_store_state)f),
                         aspen_store_state_name((aspen_store_state)t), got);
            aspen_store_error e = {0};
            int rc = aspen_store_check_transition(7, (aspen_store_state)f, (aspen_store_state)t, &e);
            assert_int_equal(rc, got ? 0 : ASPEN_STORE_ESTATE);
            if (!got) {
                assert_int_equal(e.code, ASPEN_STORE_ESTATE);
                assert_non_null(strstr(e.msg, "job 7 is"));
            }
            legal += got;
        }
    assert_int_equal(legal, 10);
    /* Submit is the only way in. */
    for (int t = 0; t < 6; t++)
        assert_int_equal(aspen_store_transition_allowed(NEW, (aspen_store_state)t), t == Q || t == SC);
    assert_false(aspen_store_transition_allowed((aspen_store_state)9, Q));
    assert_false(aspen_store_transition_allowed(Q, (aspen_store_state)-5));
    assert_false(aspen_store_transition_allowed(NEW, NEW));
}

static void test_message_and_names(void **state)
{
    (void)state;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_check_transition(42, OK, C, &e), ASPEN_STORE_ESTATE);
    assert_string_equal(e.msg, "job 42 is succeeded: it cannot become cancelled (from succeeded "
                               "it can only become: nothing, it is final)");
    assert_int_equal(aspen_store_check_transition(5, Q, OK, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "can only become: running, cancelled"));
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++) {
        aspen_store_state back;
        assert_int_equal(aspen_store_state_parse(aspen_store_state_name((aspen_store_state)i), &back), 0);
        assert_int_equal(back, i);
    }
    aspen_store_state dummy;
    assert_int_equal(aspen_store_state_parse("done", &dummy), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_state_parse(NULL, &dummy), ASPEN_STORE_EINVAL);
    assert_string_equal(aspen_store_state_name(NEW), "new");
    assert_true(aspen_store_state_is_final(OK) && aspen_store_state_is_final(F) &&
                aspen_store_state_is_final(C));
    assert_false(aspen_store_state_is_final(Q) || aspen_store_state_is_final(SC) ||
                 aspen_store_state_is_final(R));
}

/* Walks every legal edge through the API and checks the resulting state. */
static void test_legal_edges_through_api(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t now = T0;
    aspen_store_cancel_result cr;

    /* new → queued, queued → running, running → succeeded */
    int64_t a = submit_job(s, "t", 0, 0, 3, now);
    assert_int_equal(state_of(s, a), Q);
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(state_of(s, a), R);
    assert_int_equal(complete_one(s, f->engine, a, ASPEN_STORE_OUTCOME_SUCCESS, 0, now), 0);
    assert_int_equal(state_of(s, a), OK);

    /* new → scheduled, scheduled → cancelled */
    int64_t b = submit_job(s, "t", 0, now + 1000, 3, now);
    assert_int_equal(state_of(s, b), SC);
    assert_int_equal(aspen_store_cancel(s, b, now, &cr, &e), 0);
    assert_int_equal(cr, ASPEN_STORE_CANCEL_DONE);
    assert_int_equal(state_of(s, b), C);

    /* queued → cancelled */
    int64_t c = submit_job(s, "t", 0, 0, 3, now);
    assert_int_equal(aspen_store_cancel(s, c, now, &cr, &e), 0);
    assert_int_equal(state_of(s, c), C);

    /* scheduled → queued (promotion) → running; running → scheduled (retry later);
     * running → queued (retry now); running → failed (out of attempts); failed → queued (retry) */
    int64_t d = submit_job(s, "t", 0, now + 1000, 2, now);
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 0);
    now += 1000;
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(complete_one(s, f->engine, d, ASPEN_STORE_OUTCOME_FAILURE, now + 500, now), 0);
    assert_int_equal(state_of(s, d), SC);
    now += 500;
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(complete_one(s, f->engine, d, ASPEN_STORE_OUTCOME_FAILURE, now + 1, now), 0);
    assert_int_equal(state_of(s, d), F); /* 2 of 2 attempts used: no retry */
    assert_int_equal(aspen_store_retry(s, d, now, &e), 0);
    assert_int_equal(state_of(s, d), Q);
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(complete_one(s, f->engine, d, ASPEN_STORE_OUTCOME_TIMEOUT, now, now), 0);
    assert_int_equal(state_of(s, d), F); /* the extra attempt given by retry is used */

    /* running → queued (retry due now) */
    int64_t g = submit_job(s, "t", 0, 0, 5, now);
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(complete_one(s, f->engine, g, ASPEN_STORE_OUTCOME_FAILURE, now, now), 0);
    assert_int_equal(state_of(s, g), Q);

    /* running → cancelled */
    assert_int_equal(claim_ids(s, f->engine, 10, now, NULL), 1);
    assert_int_equal(complete_one(s, f->engine, g, ASPEN_STORE_OUTCOME_CANCELLED, 0, now), 0);
    assert_int_equal(state_of(s, g), C);
}

static void test_illegal_edges_through_api(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    aspen_store_cancel_result cr;
    int64_t now = T0;

    int64_t done = submit_job(s, "t", 0, 0, 1, now);
    claim_ids(s, f->engine, 1, now, NULL);
    complete_one(s, f->engine, done, ASPEN_STORE_OUTCOME_SUCCESS, 0, now);

    /* succeeded → cancelled */
    assert_int_equal(aspen_store_cancel(s, done, now, &cr, &e), ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "is succeeded"));
    /* succeeded → queued (retry) */
    assert_int_equal(aspen_store_retry(s, done, now, &e), ASPEN_STORE_ESTATE);
    /* succeeded → succeeded again (completion of a job not running): refused per item */
    assert_int_equal(complete_one(s, f->engine, done, ASPEN_STORE_OUTCOME_SUCCESS, 0, now),
                     ASPEN_STORE_ESTATE);

    int64_t q = submit_job(s, "t", 0, 0, 1, now);
    /* queued → queued (retry of a queued job) */
    assert_int_equal(aspen_store_retry(s, q, now, &e), ASPEN_STORE_ESTATE);
    /* queued → succeeded (completion without a claim) */
    assert_int_equal(complete_one(s, f->engine, q, ASPEN_STORE_OUTCOME_SUCCESS, 0, now),
                     ASPEN_STORE_ESTATE);
    /* queued → queued via release */
    assert_int_equal(aspen_store_release(s, f->engine, q, now, &e), ASPEN_STORE_ESTATE);
    /* queued job cannot be deleted */
    assert_int_equal(aspen_store_delete(s, q, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(state_of(s, q), Q);

    /* cancelled → cancelled, cancelled → queued */
    assert_int_equal(aspen_store_cancel(s, q, now, &cr, &e), 0);
    assert_int_equal(aspen_store_cancel(s, q, now, &cr, &e), ASPEN_STORE_ESTATE);
    assert_int_equal(aspen_store_retry(s, q, now, &e), ASPEN_STORE_ESTATE);

    /* unknown job */
    assert_int_equal(aspen_store_cancel(s, 999999, now, &cr, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no job 999999"));
}

/* The triggers refuse illegal moves made with plain SQL by another connection. */
static void test_guard_trigger(void **state)
{
    struct fixture *f = *state;
    int64_t id = submit_job(f->s, "t", 0, 0, 1, T0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'succeeded' WHERE id = %lld", (long long)id);
    char *msg = NULL;
    assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK);
    assert_non_null(strstr(msg, "illegal job state transition"));
    sqlite3_free(msg);
    msg = NULL;
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO jobs (type, state, run_at, created_at)"
                                      " VALUES ('t', 'running', 0, 0)",
                                      NULL, NULL, &msg),
                         SQLITE_OK);
    sqlite3_free(msg);
    /* A legal one passes. */
    snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'cancelled' WHERE id = %lld", (long long)id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(state_of(f->s, id), C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_every_pair),
        cmocka_unit_test(test_message_and_names),
        cmocka_unit_test_setup_teardown(test_legal_edges_through_api, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_illegal_edges_through_api, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_guard_trigger, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
