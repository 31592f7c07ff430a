/* test_store_attempt_data.c — what a finished attempt keeps beside its row (schema version 6: an
 * ELF core, a replay record), on both backends: blobs round-trip byte for byte (NUL and 0xff
 * bytes, 1 MiB), a second put replaces, a missing one is ENOTFOUND saying which attempts keep one,
 * the list names attempts, kinds and sizes; they go with their job (delete and purge); a job that
 * does not exist is ENOTFOUND with nothing written; bad arguments and an oversized blob are
 * refused before the database; a version-5 SQLite database migrates and keeps its jobs. */
#include "helpers.h"

/* A job that ran attempt 1 (failed, retried) and attempt 2 (failed for good). */
static int64_t failed_twice(struct fixture *f)
{
    int64_t id = submit_job(f->s, "t", 0, 0, 2, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 1, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, T0 + 2, T0 + 2),
                     0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 3, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, 0, T0 + 4), 0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);
    return id;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = failed_twice(f);
    size_t big = 1u << 20;
    uint8_t *core = malloc(big);
    assert_non_null(core);
    for (size_t i = 0; i < big; i++)
        core[i] = (uint8_t)(i * 7 + (i >> 8));
    core[0] = 0x7f;
    core[1] = 0;
    core[2] = 0xff;
    const uint8_t rec[] = {'A', 0, 0xff, 1, 2, 3};
    aspen_store_attempt_data items[] = {
        {.job_id = id, .attempt = 2, .kind = ASPEN_STORE_DATA_CORE, .bytes = core, .size = big},
        {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_REPLAY, .bytes = rec,
         .size = sizeof rec},
        {.job_id = id, .attempt = 2, .kind = ASPEN_STORE_DATA_REPLAY, .bytes = rec, .size = 3},
    };
    assert_int_equal(aspen_store_put_attempt_data(f->s, items, 3, &e), 0);
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_get_attempt_data(f->s, id, 2, ASPEN_STORE_DATA_CORE, &got, &n, &e),
                     0);
    assert_int_equal(n, big);
    assert_memory_equal(got, core, big);
    free(got);
    assert_int_equal(
        aspen_store_get_attempt_data(f->s, id, 1, ASPEN_STORE_DATA_REPLAY, &got, &n, &e), 0);
    assert_int_equal(n, sizeof rec);
    assert_memory_equal(got, rec, sizeof rec);
    free(got);

    /* a second put of the same attempt and kind replaces it */
    const uint8_t again[] = {9, 8};
    aspen_store_attempt_data one = {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_REPLAY,
                                    .bytes = again, .size = 2};
    assert_int_equal(aspen_store_put_attempt_data(f->s, &one, 1, &e), 0);
    assert_int_equal(
        aspen_store_get_attempt_data(f->s, id, 1, ASPEN_STORE_DATA_REPLAY, &got, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(got, again, 2);
    free(got);

    aspen_store_attempt_data *list = NULL;
    size_t ln = 0;
    assert_int_equal(aspen_store_list_attempt_data(f->s, id, &list, &ln, &e), 0);
    assert_int_equal(ln, 3);
    assert_int_equal(list[0].attempt, 1);
    assert_int_equal(list[0].kind, ASPEN_STORE_DATA_REPLAY);
    assert_int_equal(list[0].size, 2);
    assert_int_equal(list[1].attempt, 2);
    assert_int_equal(list[1].kind, ASPEN_STORE_DATA_CORE);
    assert_int_equal(list[1].size, big);
    assert_null(list[1].bytes);
    assert_int_equal(list[2].kind, ASPEN_STORE_DATA_REPLAY);
    free(list);

    /* none for attempt 1's core: the message says which attempt keeps one */
    assert_int_equal(aspen_store_get_attempt_data(f->s, id, 1, ASPEN_STORE_DATA_CORE, &got, &n, &e),
                     ASPEN_STORE_ENOTFOUND);
    assert_null(got);
    assert_non_null(strstr(e.msg, "attempt 1 of job"));
    assert_non_null(strstr(e.msg, "attempt 2 of job"));
    assert_non_null(strstr(e.msg, "keeps a core"));
    free(core);
}

static void test_gone_with_job(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t a = failed_twice(f), b = failed_twice(f);
    const uint8_t x[] = {1, 2, 3, 4};
    aspen_store_attempt_data items[] = {
        {.job_id = a, .attempt = 2, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 4},
        {.job_id = b, .attempt = 2, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 4},
        {.job_id = b, .attempt = 1, .kind = ASPEN_STORE_DATA_REPLAY, .bytes = x, .size = 4},
    };
    assert_int_equal(aspen_store_put_attempt_data(f->s, items, 3, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 3);
    assert_int_equal(aspen_store_delete(f->s, a, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 2);
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_get_attempt_data(f->s, a, 2, ASPEN_STORE_DATA_CORE, &got, &n, &e),
                     ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no attempt of job"));
    /* retention: purge takes the rest with job b */
    int64_t deleted = 0;
    assert_int_equal(aspen_store_purge(f->s, T0 + 1000000, &deleted, &e), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 0);
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = failed_twice(f);
    const uint8_t x[] = {1};
    /* a job that does not exist: nothing of the batch is written */
    aspen_store_attempt_data two[] = {
        {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 1},
        {.job_id = id + 100, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 1},
    };
    assert_int_equal(aspen_store_put_attempt_data(f->s, two, 2, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "is not in"));
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 0);
    /* bad arguments, refused before the database */
    aspen_store_attempt_data bad[] = {
        {.job_id = id, .attempt = 0, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 1},
        {.job_id = id, .attempt = 1, .kind = (aspen_store_data_kind)7, .bytes = x, .size = 1},
        {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE, .bytes = NULL, .size = 1},
        {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 0},
        {.job_id = 0, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE, .bytes = x, .size = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(aspen_store_put_attempt_data(f->s, &bad[i], 1, &e), ASPEN_STORE_EINVAL);
    aspen_store_attempt_data huge = {.job_id = id, .attempt = 1, .kind = ASPEN_STORE_DATA_CORE,
                                     .bytes = x, .size = (size_t)ASPEN_STORE_MAX_ATTEMPT_DATA + 1};
    assert_int_equal(aspen_store_put_attempt_data(f->s, &huge, 1, &e), ASPEN_STORE_ETOOBIG);
    assert_non_null(strstr(e.msg, "more than the store keeps"));
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_get_attempt_data(f->s, id, 0, ASPEN_STORE_DATA_CORE, &got, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_get_attempt_data(NULL, id, 1, ASPEN_STORE_DATA_CORE, &got, &n, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_put_attempt_data(f->s, NULL, 0, &e), 0); /* nothing to do */
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 0);
}

/* A replay record given with a completion is written in the commit's transaction, under the
 * attempt's number; a completion the store refuses (another engine's job) writes none. */
static void test_with_the_commit(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = submit_job(f->s, "t", 0, 0, 3, T0), other = submit_job(f->s, "t", 0, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0 + 1, NULL), 2);
    const uint8_t rec[] = {'A', 'S', 'P', 'R', 0, 0xff};
    aspen_store_completion c[2] = {
        {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .replay = rec,
         .replay_size = sizeof rec, .replay_attempt = 1},
        {.job_id = other, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .replay = rec,
         .replay_size = sizeof rec, .replay_attempt = 1},
    };
    int64_t stranger = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 99, "other", 60000, T0, &stranger, &e), 0);
    int status[2] = {0};
    /* `other` committed by the stranger: refused (ELEASE or ESTATE), nothing of it written */
    assert_int_equal(aspen_store_complete(f->s, stranger, &c[1], 1, T0 + 2, status, NULL, &e), 0);
    assert_int_not_equal(status[0], 0);
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 2, T0 + 2, status, NULL, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(
        aspen_store_get_attempt_data(f->s, id, 1, ASPEN_STORE_DATA_REPLAY, &got, &n, &e), 0);
    assert_int_equal(n, sizeof rec);
    assert_memory_equal(got, rec, sizeof rec);
    free(got);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 2);
    /* malformed: refused before the database */
    int64_t third = submit_job(f->s, "t", 0, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0 + 3, NULL), 1);
    aspen_store_completion bad = {.job_id = third, .replay = rec, .replay_size = 0,
                                  .replay_attempt = 1};
    assert_int_equal(aspen_store_complete(f->s, f->engine, &bad, 1, T0 + 4, status, NULL, &e),
                     ASPEN_STORE_EINVAL);
    bad.replay_size = sizeof rec;
    bad.replay_attempt = 0;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &bad, 1, T0 + 4, status, NULL, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(state_of(f->s, third), ASPEN_STORE_RUNNING);
}

/* A version-5 file (attempt_data and its trigger removed, user_version 5) migrates on open. */
static void test_v5_migrates(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = failed_twice(f);
    aspen_store_close(f->s);
    f->s = NULL;
    fx_raw_exec(f, UNDO_SQLITE_V8 "DROP TRIGGER attempt_data_with_job; DROP TABLE attempt_data;"
                   " PRAGMA user_version = 5;");
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(fx_raw_int(f, "PRAGMA user_version"), ASPEN_STORE_SCHEMA_VERSION);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);
    const uint8_t x[] = {5};
    aspen_store_attempt_data one = {.job_id = id, .attempt = 2, .kind = ASPEN_STORE_DATA_CORE,
                                    .bytes = x, .size = 1};
    assert_int_equal(aspen_store_put_attempt_data(f->s, &one, 1, &e), 0);
    assert_int_equal(aspen_store_delete(f->s, id, &e), 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM attempt_data"), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_round_trip),
        T(test_gone_with_job),
        T(test_refused),
        T(test_with_the_commit),
    };
    const struct CMUnitTest sqlite_only[] = {
        T(test_v5_migrates),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
