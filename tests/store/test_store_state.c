/* test_store_state.c — the job state machine: every pair of states against the table, the error
 * message of an illegal move, the API refusing illegal moves (cancel a finished job, retry a
 * succeeded one, complete a job that is not running, ...), the bulk claim/promotion statements
 * against the table, and a random walk of every operation from two engines in which each observed
 * change of state must be an edge of the table and the kept counts must match a recount. */
#include "helpers.h"

#include <sqlite3.h>

#include "sqlite_store.h"

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
        /* Q  */ {false, true, true, false, false, true},
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
    assert_int_equal(legal, 11);
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
    assert_non_null(strstr(e.msg, "can only become: scheduled, running, cancelled"));
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

/* The two bulk statements encode the table: claim takes exactly the states that may become
 * running, promotion moves scheduled to queued. */
static void test_bulk_statements_match_table(void **state)
{
    (void)state;
    const char *claim = store_stmt_sql(ST_CLAIM);
    const char *promote = store_stmt_sql(ST_PROMOTE_DUE);
    /* The claim only reserves the head of the queue: it reads queued jobs and writes no job row
     * (the reservation is a claims row); the job becomes running when it starts. */
    assert_non_null(strstr(claim, "WHERE state = 'queued'"));
    assert_null(strstr(claim, "UPDATE"));
    assert_non_null(strstr(store_stmt_sql(ST_CLAIM_INSERT), "INSERT INTO claims"));
    for (int f = 0; f < ASPEN_STORE_STATE_COUNT; f++)
        assert_int_equal(aspen_store_transition_allowed((aspen_store_state)f, R), f == Q);
    assert_non_null(strstr(promote, "SET state = 'queued'"));
    assert_non_null(strstr(promote, "WHERE state = 'scheduled'"));
    assert_true(aspen_store_transition_allowed(SC, Q));
}

/* Random operations from two engines; after each, every job's state change must be an edge of the
 * table, and the per-state counts kept by the store must equal a full recount. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Every job's id and state, read through a second handle (as another process would). */
static size_t snapshot(aspen_store *db, int64_t *ids, int *states, size_t cap)
{
    aspen_store_filter all = {.limit = -1, .order = ASPEN_STORE_ORDER_OLDEST};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    if (aspen_store_list(db, &all, &jobs, &n, &e) != 0)
        fail_msg("snapshot: %s", e.msg);
    if (n > cap)
        fail_msg("snapshot: %zu jobs, room for %zu", n, cap);
    for (size_t i = 0; i < n; i++) {
        ids[i] = jobs[i].id;
        states[i] = jobs[i].state;
    }
    aspen_store_jobs_free(jobs, n);
    return n;
}

static void test_random_walk(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    aspen_store *db = open_or_fail(f->path, NULL);
    enum { CAP = 4096 };
    static int64_t ids_a[CAP], ids_b[CAP];
    static int st_a[CAP], st_b[CAP];
    size_t na = 0;
    int64_t now = T0, e2 = 0;
    assert_int_equal(aspen_store_engine_register(s, 2, "other", 3000, now, &e2, &e), 0);
    for (int step = 0; step < 1500; step++) {
        now += rnd(400);
        aspen_store_engine_renew(s, f->engine, 5000, now, NULL);
        if (rnd(4))
            aspen_store_engine_renew(s, e2, 3000, now, NULL); /* e2 sometimes lapses */
        int64_t any = na ? ids_a[rnd((unsigned)na)] : 1;
        aspen_store_cancel_result cr;
        switch (rnd(10)) {
        case 0:
        case 1:
            submit_job(s, "t", (int)rnd(3), rnd(2) ? 0 : now + rnd(3000), 1 + (int)rnd(3), now);
            break;
        case 2:
        case 3: {
            /* reserve; then start some of them (or another engine's, or jobs not reserved) */
            aspen_store_job *jobs = NULL;
            size_t n = 0;
            int64_t eng = rnd(2) ? f->engine : e2;
            aspen_store_claim(s, eng, 1 + rnd(4), now, &jobs, &n, NULL, NULL);
            aspen_store_start marks[5];
            size_t k = 0;
            for (size_t i = 0; i < n && k < 4; i++)
                if (rnd(2))
                    marks[k++] = (aspen_store_start){jobs[i].id, now};
            if (rnd(3) == 0)
                marks[k++] = (aspen_store_start){any, now};
            aspen_store_jobs_free(jobs, n);
            if (k)
                aspen_store_start_jobs(s, rnd(4) ? eng : (eng == e2 ? f->engine : e2), marks, k,
                                       now, NULL, NULL);
            break;
        }
        case 4:
        case 5: {
            aspen_store_completion c = {.job_id = any,
                                        .outcome = (aspen_store_outcome)rnd(4),
                                        .retry_at_ms = rnd(2) ? now + rnd(1000) : 0};
            aspen_store_complete(s, rnd(2) ? f->engine : e2, &c, 1, now, NULL, NULL, NULL);
            break;
        }
        case 6:
            aspen_store_cancel(s, any, now, &cr, NULL);
            break;
        case 7:
            if (rnd(2))
                aspen_store_retry(s, any, now, NULL);
            else
                aspen_store_rerun(s, any, now, NULL, NULL);
            break;
        case 8:
            aspen_store_recover(s, now, NULL, NULL);
            break;
        case 9:
            if (rnd(2))
                aspen_store_delete(s, any, NULL);
            else
                aspen_store_release(s, rnd(2) ? f->engine : e2, any, now, NULL);
            break;
        }
        size_t nb = snapshot(db, ids_b, st_b, CAP);
        for (size_t i = 0, j = 0; i < na && j < nb;) {
            if (ids_a[i] < ids_b[j]) {
                i++; /* deleted */
            } else if (ids_a[i] > ids_b[j]) {
                j++; /* new: checked below */
            } else {
                /* A reserved job that starts and finishes in one group commit goes from queued
                 * to its end in one transaction, through running. */
                bool via_running =
                    aspen_store_transition_allowed((aspen_store_state)st_a[i], R) &&
                    aspen_store_transition_allowed(R, (aspen_store_state)st_b[j]);
                /* The walk's claim step promotes a due job, reserves and starts it. */
                bool via_queued = st_a[i] == SC && st_b[j] == R;
                if (st_a[i] != st_b[j] && !via_running && !via_queued &&
                    !aspen_store_transition_allowed((aspen_store_state)st_a[i], (aspen_store_state)st_b[j]))
                    fail_msg("step %d: job %lld went %s -> %s", step, (long long)ids_a[i],
                             aspen_store_state_name((aspen_store_state)st_a[i]),
                             aspen_store_state_name((aspen_store_state)st_b[j]));
                i++, j++;
            }
        }
        int64_t counts[ASPEN_STORE_STATE_COUNT], real[ASPEN_STORE_STATE_COUNT] = {0};
        for (size_t j = 0; j < nb; j++)
            real[st_b[j]]++;
        assert_int_equal(aspen_store_counts(s, counts, &e), 0);
        if (memcmp(counts, real, sizeof real) != 0)
            fail_msg("step %d: counts drifted (queued %lld vs %lld)", step, (long long)counts[0],
                     (long long)real[0]);
        memcpy(ids_a, ids_b, nb * sizeof *ids_a);
        memcpy(st_a, st_b, nb * sizeof *st_a);
        na = nb;
    }
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    int64_t final = counts[ASPEN_STORE_SUCCEEDED] + counts[ASPEN_STORE_FAILED] + counts[ASPEN_STORE_CANCELLED];
    assert_true(final > 50); /* the walk reached the final states, not only the start */
    assert_int_equal(aspen_store_check(s, &e), 0);
    aspen_store_close(db);
}

/* A job's id names that job for good: deleting the newest jobs (one by one, by purge, by the
 * pruner, all of them) never lets a later submit or rerun take a deleted id (on SQLite a rowid
 * table would give max(id) + 1; schema version 13). */
static int64_t cancelled_job(aspen_store *s, int64_t now)
{
    int64_t id = submit_job(s, "echo", 0, 0, 3, now);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_cancel(s, id, now, NULL, &e), 0);
    return id;
}

static void test_ids_never_reused(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t a = cancelled_job(s, T0);
    int64_t b = cancelled_job(s, T0);
    /* the newest, deleted: the next submit goes past it */
    assert_int_equal(aspen_store_delete(s, b, &e), 0);
    int64_t c = cancelled_job(s, T0 + 1);
    assert_true(c > b);
    /* every job gone (purge): still past the highest ever */
    int64_t deleted = 0;
    assert_int_equal(aspen_store_purge(s, T0 + 1000, &deleted, &e), 0);
    assert_int_equal(deleted, 2);
    int64_t d = cancelled_job(s, T0 + 2000);
    assert_true(d > c);
    /* a rerun of an older job after the newest was deleted */
    int64_t newest = cancelled_job(s, T0 + 2000);
    assert_int_equal(aspen_store_delete(s, newest, &e), 0);
    int64_t r = 0;
    assert_int_equal(aspen_store_rerun(s, d, T0 + 2001, &r, &e), 0);
    assert_true(r > newest);
    /* the pruner deletes the newest (and the rest) */
    assert_int_equal(aspen_store_cancel(s, r, T0 + 2002, NULL, &e), 0);
    assert_int_equal(aspen_store_prune(s, ASPEN_STORE_CANCELLED, T0 + 5000, 100, &deleted, &e), 0);
    assert_int_equal(deleted, 2);
    int64_t g = cancelled_job(s, T0 + 6000);
    assert_true(g > r);
    /* an older job deleted while a newer one exists changes nothing */
    int64_t h = cancelled_job(s, T0 + 6000);
    assert_int_equal(aspen_store_delete(s, g, &e), 0);
    int64_t k = cancelled_job(s, T0 + 6000);
    assert_int_equal(k, h + 1);
    /* the newest deleted first, then the newest that remained (a purge of one state, then of
     * another: trial 10 saw ids 12-14 handed out again): a lower note must not lower the floor */
    int64_t lower = cancelled_job(s, T0 + 7000);
    int64_t top = cancelled_job(s, T0 + 7000);
    assert_true(top > lower);
    assert_int_equal(aspen_store_delete(s, top, &e), 0);
    for (int64_t id = 1; id < top; id++)
        (void)aspen_store_delete(s, id, &e); /* every job left, the lower newest among them */
    int64_t after = cancelled_job(s, T0 + 8000);
    if (after <= top)
        fail_msg("job id %lld handed out again (the highest deleted was %lld)", (long long)after,
                 (long long)top);
    (void)a;
    assert_int_equal(aspen_store_check(s, &e), 0);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_table_every_pair),
        cmocka_unit_test(test_message_and_names),
        cmocka_unit_test_setup_teardown(test_legal_edges_through_api, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_illegal_edges_through_api, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_random_walk, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ids_never_reused, fx_setup, fx_teardown),
    };
    /* The SQLite backend's statement texts (sqlite_store.h) against the table. */
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test(test_bulk_statements_match_table),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
