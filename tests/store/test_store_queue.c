/* test_store_queue.c — the queue end to end with an injected clock: submit validation, binaries by
 * content hash, claim order (priority, run_at, id), batch claim, group commit with attempts and
 * logs, retry with backoff through scheduled, cancel of queued and running jobs, rerun, retry of
 * failed jobs by filter, purge and recount, pause, the log cap and its marker, listing with
 * filters, counts and the oldest waiting job. */
#include "helpers.h"
#include "store_backend.h" /* STORE_BULK_BATCH */

#include <sqlite3.h>

static void test_submit_validation(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t id = 0;
    aspen_store_job_spec spec = {0};
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job type is missing"));
    spec.type = "";
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    spec.type = "echo";
    spec.tags = "\"notarray\"";
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "tags must be a JSON array"));
    spec.tags = "[\"a\",\"b\"]";
    spec.payload = "{not json";
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "payload is not valid JSON"));
    spec.payload = NULL;
    spec.binary_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "is not stored"));
    spec.binary_sha256 = "xyz";
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    spec.binary_sha256 = NULL;
    spec.max_attempts = -1;
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), ASPEN_STORE_EINVAL);
    spec.max_attempts = 0;

    /* Defaults. */
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_string_equal(j.type, "echo");
    assert_string_equal(j.payload, "{}");
    assert_string_equal(j.tags, "[\"a\",\"b\"]");
    assert_int_equal(j.max_attempts, 3);
    assert_int_equal(j.timeout_ms, 30000);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    assert_int_equal(j.run_at_ms, T0);
    assert_int_equal(j.created_at_ms, T0);
    assert_null(j.binary_sha256);
    assert_null(j.result);
    aspen_store_job_clear(&j);

    /* A batch with one bad job writes nothing. */
    int64_t before[ASPEN_STORE_STATE_COUNT], after[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, before, &e), 0);
    aspen_store_job_spec batch[3] = {{.type = "a"}, {.type = NULL}, {.type = "c"}};
    assert_int_equal(aspen_store_submit_batch(f->s, batch, 3, T0, NULL, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "job 2 of the batch"));
    assert_int_equal(aspen_store_counts(f->s, after, &e), 0);
    assert_memory_equal(before, after, sizeof before);
}

static void test_binaries(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    static const char bytes[] = "\x7f" "ELF pretend guest";
    char sha[65], sha2[65];
    assert_int_equal(aspen_store_put_binary(f->s, bytes, sizeof bytes, "echo-worker", T0, sha, &e), 0);
    assert_int_equal(aspen_store_put_binary(f->s, bytes, sizeof bytes, "other", T0, sha2, &e), 0);
    assert_string_equal(sha, sha2); /* stored once */
    char expect[65];
    aspen_store_sha256_hex(bytes, sizeof bytes, expect);
    assert_string_equal(sha, expect);
    aspen_store_binary b;
    assert_int_equal(aspen_store_get_binary(f->s, sha, &b, &e), 0);
    assert_int_equal(b.size, sizeof bytes);
    assert_memory_equal(b.bytes, bytes, sizeof bytes);
    assert_string_equal(b.name, "echo-worker"); /* the first name stays */
    aspen_store_binary_clear(&b);

    /* Jobs by reference and by bytes (hashed once per batch). */
    aspen_store_job_spec specs[3] = {
        {.type = "vm_execute", .binary_sha256 = sha, .binary_name = "echo-worker"},
        {.type = "vm_execute", .binary = bytes, .binary_size = sizeof bytes},
        {.type = "vm_execute", .binary = bytes, .binary_size = sizeof bytes, .binary_sha256 = sha},
    };
    int64_t ids[3];
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 3, T0, ids, &e), 0);
    for (int i = 0; i < 3; i++) {
        aspen_store_job j;
        assert_int_equal(aspen_store_get(f->s, ids[i], &j, &e), 0);
        assert_string_equal(j.binary_sha256, sha);
        aspen_store_job_clear(&j);
    }
    specs[0].binary = "different";
    specs[0].binary_size = 9;
    assert_int_equal(aspen_store_submit(f->s, &specs[0], T0, NULL, &e), ASPEN_STORE_EINVAL);

    /* Too large: the seed's message. */
    assert_int_equal(aspen_store_put_binary(f->s, bytes, (size_t)ASPEN_STORE_MAX_BINARY + 1, "big",
                                            T0, sha, &e),
                     ASPEN_STORE_ETOOBIG);
    assert_non_null(strstr(e.msg, "Binary too large: 52428801 bytes (max: 52428800 bytes)"));
    assert_int_equal(aspen_store_get_binary(f->s, "ab", &b, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_get_binary(
                         f->s, "1111111111111111111111111111111111111111111111111111111111111111", &b,
                         &e),
                     ASPEN_STORE_ENOTFOUND);
}

static void test_claim_order(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    /* ids in submit order; expected claim order: priority desc, run_at asc, id asc. */
    int64_t low = submit_job(s, "t", 0, T0 - 10, 3, T0);
    int64_t high_late = submit_job(s, "t", 5, T0 - 1, 3, T0);
    int64_t high_early = submit_job(s, "t", 5, T0 - 5, 3, T0);
    int64_t mid_a = submit_job(s, "t", 1, T0 - 3, 3, T0);
    int64_t mid_b = submit_job(s, "t", 1, T0 - 3, 3, T0);
    int64_t neg = submit_job(s, "t", -3, T0 - 100, 3, T0);
    int64_t future = submit_job(s, "t", 99, T0 + 60000, 3, T0);
    int64_t ids[10];
    assert_int_equal(claim_ids(s, f->engine, 3, T0, ids), 3);
    assert_int_equal(ids[0], high_early);
    assert_int_equal(ids[1], high_late);
    assert_int_equal(ids[2], mid_a);
    assert_int_equal(claim_ids(s, f->engine, 10, T0, ids), 3);
    assert_int_equal(ids[0], mid_b);
    assert_int_equal(ids[1], low);
    assert_int_equal(ids[2], neg);
    assert_int_equal(claim_ids(s, f->engine, 10, T0, ids), 0);
    /* The scheduled job becomes claimable when its time comes, not before. */
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_engine_renew(s, f->engine, 5000, T0 + 59000, &e), 0);
    assert_int_equal(claim_ids(s, f->engine, 10, T0 + 59999, ids), 0);
    assert_int_equal(claim_ids(s, f->engine, 10, T0 + 60000, ids), 1);
    assert_int_equal(ids[0], future);
}

static void test_claim_fields_and_batches(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec specs[250];
    for (int i = 0; i < 250; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo",
                                          .payload = "{\"i\":1}",
                                          .timeout_ms = 1234,
                                          .memory_bytes = 1 << 20,
                                          .isolation = i % 2,
                                          .tags = "[\"x\"]",
                                          .source_dir = i == 0 ? "/src/guest" : NULL};
    int64_t ids[250];
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 250, T0, ids, &e), 0);
    for (int i = 1; i < 250; i++)
        assert_int_equal(ids[i], ids[i - 1] + 1);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    bool paused = true;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 100, T0 + 5, &jobs, &n, &paused, &e), 0);
    assert_false(paused);
    assert_int_equal(n, 100);
    assert_int_equal(jobs[0].id, ids[0]);
    /* A claim reserves: the job stays queued, nothing charged, nothing started. */
    assert_int_equal(jobs[0].state, ASPEN_STORE_QUEUED);
    assert_int_equal(jobs[0].attempts, 0);
    assert_int_equal(jobs[0].owner, 0);
    assert_int_equal(jobs[0].started_at_ms, 0);
    assert_int_equal(state_of(f->s, ids[0]), ASPEN_STORE_QUEUED);
    assert_int_equal(jobs[0].timeout_ms, 1234);
    assert_int_equal(jobs[0].memory_bytes, 1 << 20);
    assert_false(jobs[0].isolation);
    assert_true(jobs[1].isolation);
    assert_string_equal(jobs[0].source_dir, "/src/guest");
    assert_null(jobs[1].source_dir);
    assert_string_equal(jobs[0].payload, "{\"i\":1}");
    assert_string_equal(jobs[0].tags, "[\"x\"]");
    for (size_t i = 1; i < n; i++)
        assert_true(jobs[i].id > jobs[i - 1].id);
    aspen_store_jobs_free(jobs, n);
    /* Reserved jobs are skipped by later claims (this engine's and any other's). */
    int64_t got[100];
    assert_int_equal(claim_ids(f->s, f->engine, 100, T0, got), 100);
    assert_int_equal(got[0], ids[100]);
    assert_int_equal(claim_ids(f->s, f->engine, 100, T0, NULL), 50);
    assert_int_equal(claim_ids(f->s, f->engine, 100, T0, NULL), 0);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 150); /* started */
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 100);  /* reserved, not started */
    aspen_store_job started;
    assert_int_equal(aspen_store_get(f->s, ids[100], &started, &e), 0);
    assert_int_equal(started.state, ASPEN_STORE_RUNNING);
    assert_int_equal(started.attempts, 1);
    assert_int_equal(started.owner, f->engine);
    assert_int_equal(started.started_at_ms, T0);
    aspen_store_job_clear(&started);

    /* Claiming needs a live lease. */
    assert_int_equal(aspen_store_claim(f->s, 12345, 1, T0, &jobs, &n, NULL, &e), ASPEN_STORE_ELEASE);
    assert_int_equal(aspen_store_claim(f->s, f->engine, 1, T0 + 5001, &jobs, &n, NULL, &e),
                     ASPEN_STORE_ELEASE);
    assert_non_null(strstr(e.msg, "lease expired"));
}

static void test_group_complete(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t a = submit_job(f->s, "t", 0, 0, 3, T0);
    int64_t b = submit_job(f->s, "t", 0, 0, 3, T0);
    int64_t c = submit_job(f->s, "t", 0, 0, 1, T0);
    int64_t d = submit_job(f->s, "t", 0, 0, 3, T0);
    int64_t q = submit_job(f->s, "t", -1, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 4, T0 + 1, NULL), 4);
    aspen_store_log_line la[2] = {{.time_ms = T0 + 2, .line = "hello"},
                                  {.time_ms = T0 + 3, .line = "world"}};
    aspen_store_completion comp[5] = {
        {.job_id = a,
         .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
         .output = "out-a",
         .output_size = 5,
         .logs = la,
         .n_logs = 2,
         .stats = {.wall_us = 77, .exits = 3, .host_calls = 2, .pages_dirtied = 4, .bytes_in = 10,
                   .bytes_out = 5}},
        {.job_id = b, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .error = "boom", .retry_at_ms = T0 + 1000},
        {.job_id = c, .outcome = ASPEN_STORE_OUTCOME_TIMEOUT, .retry_at_ms = T0 + 1000},
        {.job_id = d, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .error = "no retry"},
        {.job_id = q, .outcome = ASPEN_STORE_OUTCOME_SUCCESS}, /* not running: refused alone */
    };
    int status[5];
    aspen_store_state fin[5];
    assert_int_equal(aspen_store_complete(f->s, f->engine, comp, 5, T0 + 10, status, fin, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    assert_int_equal(status[2], 0);
    assert_int_equal(status[3], 0);
    assert_int_equal(status[4], ASPEN_STORE_ESTATE);
    assert_non_null(strstr(e.msg, "not running"));
    assert_int_equal(fin[0], ASPEN_STORE_SUCCEEDED);
    assert_int_equal(fin[1], ASPEN_STORE_SCHEDULED);
    assert_int_equal(fin[2], ASPEN_STORE_FAILED);
    assert_int_equal(fin[3], ASPEN_STORE_FAILED);

    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, a, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
    assert_int_equal(j.result_size, 5);
    assert_string_equal((char *)j.result, "out-a");
    assert_null(j.error);
    assert_int_equal(j.finished_at_ms, T0 + 10);
    assert_int_equal(j.owner, 0);
    assert_int_equal(j.log_count, 2);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_get(f->s, b, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_SCHEDULED);
    assert_int_equal(j.run_at_ms, T0 + 1000);
    assert_string_equal(j.error, "boom");
    assert_int_equal(j.finished_at_ms, 0);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_get(f->s, c, &j, &e), 0);
    assert_string_equal(j.error, "timed out (attempt 1)");
    aspen_store_job_clear(&j);

    aspen_store_attempt *at = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(f->s, a, &at, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(at[0].number, 1);
    assert_int_equal(at[0].engine_id, f->engine);
    assert_string_equal(at[0].outcome, "succeeded");
    assert_int_equal(at[0].started_at_ms, T0 + 1);
    assert_int_equal(at[0].finished_at_ms, T0 + 10);
    assert_int_equal(at[0].wall_us, 77);
    assert_int_equal(at[0].exits, 3);
    assert_int_equal(at[0].host_calls, 2);
    assert_int_equal(at[0].pages_dirtied, 4);
    assert_int_equal(at[0].bytes_in, 10);
    assert_int_equal(at[0].bytes_out, 5);
    assert_false(at[0].recovered);
    aspen_store_attempts_free(at, n);
    assert_int_equal(aspen_store_attempts(f->s, c, &at, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(at[0].outcome, "timeout");
    aspen_store_attempts_free(at, n);

    aspen_store_log *logs = NULL;
    assert_int_equal(aspen_store_logs(f->s, a, 0, 0, &logs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(logs[0].seq, 1);
    assert_string_equal(logs[0].line, "hello");
    assert_int_equal(logs[1].time_ms, T0 + 3);
    assert_int_equal(logs[1].attempt, 1);
    aspen_store_logs_free(logs, n);
    assert_int_equal(aspen_store_logs(f->s, a, 1, 0, &logs, &n, &e), 0); /* tail after seq 1 */
    assert_int_equal(n, 1);
    assert_string_equal(logs[0].line, "world");
    aspen_store_logs_free(logs, n);

    /* Another engine cannot complete this engine's job. */
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 1, "h", 5000, T0, &other, &e), 0);
    int64_t x = submit_job(f->s, "t", 100, 0, 1, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    assert_int_equal(complete_one(f->s, other, x, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0), ASPEN_STORE_ELEASE);
    assert_int_equal(state_of(f->s, x), ASPEN_STORE_RUNNING);
}

static void test_retry_backoff_flow(void **state)
{
    struct fixture *f = *state;
    int64_t now = T0;
    int64_t id = submit_job(f->s, "flaky", 0, 0, 3, now);
    for (int attempt = 1; attempt <= 3; attempt++) {
        int64_t ids[1];
        assert_int_equal(claim_ids(f->s, f->engine, 1, now, ids), 1);
        assert_int_equal(ids[0], id);
        int64_t delay = aspen_store_backoff_ms(attempt, 1000, 60000, 0.2, 0x123456789abcdefULL * attempt);
        assert_true(delay >= 800LL << (attempt - 1) && delay <= 1200LL << (attempt - 1));
        assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, now + delay, now), 0);
        if (attempt < 3) {
            assert_int_equal(state_of(f->s, id), ASPEN_STORE_SCHEDULED);
            /* Not claimable a millisecond early; claimable at its time. */
            assert_int_equal(claim_ids(f->s, f->engine, 1, now + delay - 1, NULL), 0);
            aspen_store_error e = {0};
            assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, now + delay, &e), 0);
            now += delay;
        } else {
            assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);
        }
    }
    aspen_store_attempt *at = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_attempts(f->s, id, &at, &n, &e), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(at[i].number, (int)i + 1);
        assert_string_equal(at[i].outcome, "failed");
    }
    aspen_store_attempts_free(at, n);
}

static void test_backoff_helper(void **state)
{
    (void)state;
    /* No jitter: exact doubling, capped. */
    assert_int_equal(aspen_store_backoff_ms(1, 1000, 60000, 0, 0), 1000);
    assert_int_equal(aspen_store_backoff_ms(2, 1000, 60000, 0, 0), 2000);
    assert_int_equal(aspen_store_backoff_ms(3, 1000, 60000, 0, 0), 4000);
    assert_int_equal(aspen_store_backoff_ms(7, 1000, 60000, 0, 0), 60000);
    assert_int_equal(aspen_store_backoff_ms(1000, 1000, 60000, 0, 0), 60000); /* no overflow */
    assert_int_equal(aspen_store_backoff_ms(0, 1000, 60000, 0, 0), 1000);
    assert_int_equal(aspen_store_backoff_ms(3, 1000, 10, 0, 0), 1000); /* cap below base: base */
    /* Jitter: the extremes of random map to the edges, the middle to the centre. */
    assert_int_equal(aspen_store_backoff_ms(1, 1000, 60000, 0.5, 0), 500);
    assert_int_equal(aspen_store_backoff_ms(1, 1000, 60000, 0.5, 1ULL << 63), 1000);
    int64_t top = aspen_store_backoff_ms(1, 1000, 60000, 0.5, UINT64_MAX);
    assert_true(top >= 1499 && top <= 1500);
    /* Spread: many randoms stay in range and are not all equal. */
    uint64_t x = 88172645463325252ULL;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t d = aspen_store_backoff_ms(4, 1000, 60000, 0.25, x);
        assert_true(d >= 6000 && d <= 10000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 6200 && hi > 9800);
    assert_int_equal(aspen_store_backoff_ms(1, 1000, 60000, -1, 12345), 1000); /* bad jitter: none */
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_cancel_result r;
    int64_t q = submit_job(f->s, "t", 0, 0, 3, T0);
    int64_t run = submit_job(f->s, "t", 9, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);

    assert_int_equal(aspen_store_cancel(f->s, q, T0 + 1, &r, &e), 0);
    assert_int_equal(r, ASPEN_STORE_CANCEL_DONE);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, q, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_CANCELLED);
    assert_int_equal(j.finished_at_ms, T0 + 1);
    assert_string_equal(j.error, "cancelled before it ran");
    aspen_store_job_clear(&j);

    /* Running: requested, still running, seen by its engine. */
    assert_int_equal(aspen_store_cancel(f->s, run, T0 + 1, &r, &e), 0);
    assert_int_equal(r, ASPEN_STORE_CANCEL_REQUESTED);
    assert_int_equal(state_of(f->s, run), ASPEN_STORE_RUNNING);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_cancel_requests(f->s, f->engine, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], run);
    free(ids);
    /* A second cancel says the same. */
    assert_int_equal(aspen_store_cancel(f->s, run, T0 + 2, &r, &e), 0);
    assert_int_equal(r, ASPEN_STORE_CANCEL_REQUESTED);
    /* The engine stopped it; even a "failure with retry" report ends cancelled, not retried. */
    assert_int_equal(complete_one(f->s, f->engine, run, ASPEN_STORE_OUTCOME_FAILURE, T0 + 5, T0 + 3), 0);
    assert_int_equal(state_of(f->s, run), ASPEN_STORE_CANCELLED);
    assert_int_equal(aspen_store_cancel_requests(f->s, f->engine, &ids, &n, &e), 0);
    assert_int_equal(n, 0);
    free(ids);

    /* Bulk cancel by filter: waiting ones (a scheduled one among them) cancelled as one cancel
     * does (finished now, the error said), a running one asked to stop and left running (on
     * PostgreSQL in a few statements for all of them: trial 23). */
    int64_t bulk[3];
    for (int i = 0; i < 5; i++) {
        int64_t id = submit_job(f->s, i < 3 ? "bulk" : "keep", 0, i == 0 ? T0 + 99999 : 0, 3, T0);
        if (i < 3)
            bulk[i] = id;
    }
    int64_t brun = submit_job(f->s, "bulk", 9, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    assert_int_equal(state_of(f->s, brun), ASPEN_STORE_RUNNING);
    aspen_store_filter flt = {.type = "bulk"};
    int64_t done = 0, asked = 0;
    assert_int_equal(aspen_store_cancel_matching(f->s, &flt, T0 + 7, &done, &asked, &e), 0);
    assert_int_equal(done, 3);
    assert_int_equal(asked, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aspen_store_get(f->s, bulk[i], &j, &e), 0);
        assert_int_equal(j.state, ASPEN_STORE_CANCELLED);
        assert_int_equal(j.finished_at_ms, T0 + 7);
        assert_string_equal(j.error, "cancelled before it ran");
        aspen_store_job_clear(&j);
    }
    assert_int_equal(state_of(f->s, brun), ASPEN_STORE_RUNNING);
    assert_int_equal(aspen_store_cancel_requests(f->s, f->engine, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], brun);
    free(ids);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 2);
    assert_int_equal(counts[ASPEN_STORE_SCHEDULED], 0);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 1);
    assert_int_equal(counts[ASPEN_STORE_CANCELLED], 5);
    /* again: nothing waiting is left, the running one is asked again */
    assert_int_equal(aspen_store_cancel_matching(f->s, &flt, T0 + 8, &done, &asked, &e), 0);
    assert_int_equal(done, 0);
    assert_int_equal(asked, 1);
}

/* A cancel by filter runs in batches of STORE_BULK_BATCH (1,000) jobs, each its own transaction,
 * so a million-job cancel never holds the queue (SQLite's write lock ~9 s, PostgreSQL's count rows
 * ~27 s in one transaction). The batches must still take every match and nothing else: matches
 * spread among other jobs (every other id), a running match that stays running (asked once, not
 * again in every later batch), a scheduled one, across three batch boundaries. */
static void test_cancel_in_batches(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    enum { EACH = 2 * STORE_BULK_BATCH + 150 };
    aspen_store_job_spec *specs = calloc(2 * EACH, sizeof *specs);
    int64_t *ids = calloc(2 * EACH, sizeof *ids);
    assert_non_null(specs);
    assert_non_null(ids);
    for (size_t i = 0; i < 2 * EACH; i++) {
        specs[i] = (aspen_store_job_spec){.type = i % 2 ? "keep" : "bulk", .payload = "{}",
                                          .max_attempts = 3, .timeout_ms = 1000};
        if (i == 10)
            specs[i].run_at_ms = T0 + 99999; /* scheduled */
    }
    specs[2 * EACH - 2].priority = 9; /* the newest match: claimed first, running */
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 2 * EACH, T0, ids, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    assert_int_equal(state_of(f->s, ids[2 * EACH - 2]), ASPEN_STORE_RUNNING);

    aspen_store_filter flt = {.type = "bulk"};
    int64_t done = -1, asked = -1;
    assert_int_equal(aspen_store_cancel_matching(f->s, &flt, T0 + 7, &done, &asked, &e), 0);
    assert_int_equal(done, EACH - 1);
    assert_int_equal(asked, 1);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_CANCELLED], EACH - 1);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], EACH);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 1);
    assert_int_equal(counts[ASPEN_STORE_SCHEDULED], 0);
    assert_int_equal(state_of(f->s, ids[10]), ASPEN_STORE_CANCELLED);
    assert_int_equal(state_of(f->s, ids[2 * EACH - 3]), ASPEN_STORE_QUEUED); /* a "keep" one */
    assert_int_equal(state_of(f->s, ids[2 * EACH - 4]), ASPEN_STORE_CANCELLED);
    int64_t *req = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_cancel_requests(f->s, f->engine, &req, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(req[0], ids[2 * EACH - 2]);
    free(req);
    free(ids);
    free(specs);
}

static void test_rerun_and_retry_failed(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec spec = {.type = "echo",
                                 .payload = "{\"user\":\"alice\"}",
                                 .priority = 4,
                                 .max_attempts = 1,
                                 .timeout_ms = 99,
                                 .tags = "[\"t1\"]",
                                 .isolation = true};
    int64_t id = 0, again = 0;
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_FAILURE, T0 + 5, T0 + 1), 0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_FAILED);

    assert_int_equal(aspen_store_rerun(f->s, id, T0 + 100, &again, &e), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, again, &j, &e), 0);
    assert_int_equal(j.rerun_of, id);
    assert_int_equal(j.state, ASPEN_STORE_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.priority, 4);
    assert_int_equal(j.timeout_ms, 99);
    assert_true(j.isolation);
    assert_string_equal(j.payload, "{\"user\":\"alice\"}");
    assert_string_equal(j.tags, "[\"t1\"]");
    assert_int_equal(j.created_at_ms, T0 + 100);
    assert_null(j.error);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_rerun(f->s, 424242, T0, &again, &e), ASPEN_STORE_ENOTFOUND);
    aspen_store_filter reruns = {.rerun_of = id};
    int64_t cnt = 0;
    assert_int_equal(aspen_store_count(f->s, &reruns, &cnt, &e), 0);
    assert_int_equal(cnt, 1);

    /* Retry every failed job of type echo. */
    int64_t other = submit_job(f->s, "other", 0, 0, 1, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 10, T0, NULL), 2);
    complete_one(f->s, f->engine, other, ASPEN_STORE_OUTCOME_FAILURE, 0, T0);
    complete_one(f->s, f->engine, again, ASPEN_STORE_OUTCOME_FAILURE, 0, T0);
    aspen_store_filter flt = {.type = "echo"};
    int64_t retried = 0;
    assert_int_equal(aspen_store_retry_failed(f->s, &flt, T0 + 200, &retried, &e), 0);
    assert_int_equal(retried, 2);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, again), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, other), ASPEN_STORE_FAILED);
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.max_attempts, 2); /* one more attempt than it had used */
    assert_string_equal(j.error, "failed (attempt 1)"); /* the last error stays visible */
    assert_int_equal(j.finished_at_ms, 0);
    aspen_store_job_clear(&j);

    /* Delete a finished job with its attempts and logs. */
    assert_int_equal(aspen_store_delete(f->s, other, &e), 0);
    assert_int_equal(aspen_store_get(f->s, other, &j, &e), ASPEN_STORE_ENOTFOUND);
    aspen_store_attempt *at = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_attempts(f->s, other, &at, &n, &e), 0);
    assert_int_equal(n, 0);
    free(at);
}

static void test_purge_and_recount(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t old_ok = submit_job(f->s, "t", 0, 0, 1, T0);
    int64_t old_bad = submit_job(f->s, "t", 0, 0, 1, T0);
    int64_t recent = submit_job(f->s, "t", 0, 0, 1, T0);
    int64_t waiting = submit_job(f->s, "t", -1, 0, 1, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 3, T0, NULL), 3);
    aspen_store_log_line l = {.line = "x"};
    aspen_store_completion c[3] = {
        {.job_id = old_ok, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .logs = &l, .n_logs = 1},
        {.job_id = old_bad, .outcome = ASPEN_STORE_OUTCOME_FAILURE},
    };
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 2, T0 + 10, NULL, NULL, &e), 0);
    c[0].job_id = recent;
    assert_int_equal(aspen_store_complete(f->s, f->engine, c, 1, T0 + 1000, NULL, NULL, &e), 0);
    int64_t deleted = 0;
    assert_int_equal(aspen_store_purge(f->s, T0 + 500, &deleted, &e), 0);
    assert_int_equal(deleted, 2);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, old_ok, &j, &e), ASPEN_STORE_ENOTFOUND);
    assert_int_equal(aspen_store_get(f->s, recent, &j, &e), 0);
    aspen_store_job_clear(&j);
    assert_int_equal(state_of(f->s, waiting), ASPEN_STORE_QUEUED);
    aspen_store_log *logs = NULL;
    size_t n = 9;
    assert_int_equal(aspen_store_logs(f->s, old_ok, 0, 0, &logs, &n, &e), 0);
    assert_int_equal(n, 0);
    free(logs);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 1);
    assert_int_equal(counts[ASPEN_STORE_FAILED], 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);

    /* Rows changed behind the store's back: the check notices, recount repairs. */
    fx_raw_exec(f, "DELETE FROM jobs WHERE state = 'queued'");
    assert_int_equal(aspen_store_check(f->s, &e), ASPEN_STORE_EIO);
    assert_non_null(strstr(e.msg, "counts drifted"));
    assert_int_equal(aspen_store_recount(f->s, &e), 0);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0);
}

static void test_pause(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    submit_job(f->s, "t", 0, 0, 3, T0);
    bool paused = false;
    assert_int_equal(aspen_store_set_paused(f->s, true, &e), 0);
    assert_int_equal(aspen_store_paused(f->s, &paused, &e), 0);
    assert_true(paused);
    aspen_store_job *jobs = NULL;
    size_t n = 9;
    assert_int_equal(aspen_store_claim(f->s, f->engine, 10, T0, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 0);
    assert_null(jobs);
    assert_true(paused);
    assert_int_equal(aspen_store_set_paused(f->s, false, &e), 0);
    assert_int_equal(aspen_store_claim(f->s, f->engine, 10, T0, &jobs, &n, &paused, &e), 0);
    assert_int_equal(n, 1);
    assert_false(paused);
    aspen_store_jobs_free(jobs, n);

    char *v = NULL;
    assert_int_equal(aspen_store_setting_set(f->s, "console.theme", "dark", &e), 0);
    assert_int_equal(aspen_store_setting_get(f->s, "console.theme", &v, &e), 0);
    assert_string_equal(v, "dark");
    free(v);
    assert_int_equal(aspen_store_setting_set(f->s, "console.theme", NULL, &e), 0);
    assert_int_equal(aspen_store_setting_get(f->s, "console.theme", &v, &e), 0);
    assert_null(v);
}

static void test_log_cap(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_close(f->s);
    aspen_store_options o = {.log_cap = 5};
    f->s = open_or_fail(f->path, &o);
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 5000, T0, &e), 0);
    int64_t id = submit_job(f->s, "chatty", 0, 0, 3, T0);
    assert_int_equal(claim_ids(f->s, f->engine, 1, T0, NULL), 1);
    /* 3 live lines, then 4 more at completion: 5 kept, 1 marker, 1 dropped + 1 replaced by it. */
    aspen_store_log_line live[3];
    for (int i = 0; i < 3; i++)
        live[i] = (aspen_store_log_line){.job_id = id, .time_ms = T0 + i, .line = "live"};
    assert_int_equal(aspen_store_append_logs(f->s, live, 3, &e), 0);
    aspen_store_log_line more[4] = {{.line = "m1"}, {.line = "m2"}, {.line = "m3"}, {.line = "m4"}};
    aspen_store_completion c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .logs = more, .n_logs = 4};
    assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, T0 + 9, NULL, NULL, &e), 0);
    aspen_store_log *logs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_logs(f->s, id, 0, 0, &logs, &n, &e), 0);
    assert_int_equal(n, 6);
    assert_string_equal(logs[0].line, "live");
    assert_int_equal(logs[0].attempt, 1);
    assert_string_equal(logs[3].line, "m1");
    assert_string_equal(logs[4].line, "m2");
    assert_false(logs[4].marker);
    assert_true(logs[5].marker);
    assert_non_null(strstr(logs[5].line, "log truncated"));
    aspen_store_logs_free(logs, n);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.log_count, 6);
    assert_int_equal(j.log_dropped, 2);
    aspen_store_job_clear(&j);
    /* limit */
    assert_int_equal(aspen_store_logs(f->s, id, 2, 2, &logs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(logs[0].seq, 3);
    aspen_store_logs_free(logs, n);
    /* Unknown job */
    aspen_store_log_line bad = {.job_id = 999, .line = "x"};
    assert_int_equal(aspen_store_append_logs(f->s, &bad, 1, &e), ASPEN_STORE_ENOTFOUND);
}

static void test_list_filters_counts(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    const char *payloads[] = {"{\"user\":\"alice\",\"n\":5}", "{\"user\":\"bob\",\"n\":6}",
                              "{\"user\":{\"name\":\"Alice B\"},\"ok\":true}", "{\"user\":\"alice\"}"};
    const char *tags[] = {"[\"urgent\",\"x\"]", "[]", "[\"x\"]", "[\"urgent\"]"};
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        aspen_store_job_spec spec = {.type = i < 2 ? "echo" : "vm_execute",
                                     .payload = payloads[i],
                                     .tags = tags[i],
                                     .binary_name = i == 2 ? "data-processor" : NULL,
                                     .priority = i};
        assert_int_equal(aspen_store_submit(f->s, &spec, T0 + i, &ids[i], &e), 0);
    }
    char buf[512];
    aspen_store_filter flt;
    aspen_store_job *jobs = NULL;
    size_t n = 0;

#define LIST(text, expect_n)                                                                       \
    do {                                                                                           \
        assert_int_equal(aspen_store_filter_parse(text, &flt, buf, sizeof buf, &e), 0);            \
        assert_int_equal(aspen_store_list(f->s, &flt, &jobs, &n, &e), 0);                          \
        if (n != (size_t)(expect_n))                                                               \
            fail_msg("filter '%s': %zu jobs, expected %d", text, n, (int)(expect_n));            \
    } while (0)

    LIST("", 4);
    assert_int_equal(jobs[0].id, ids[3]); /* newest first */
    aspen_store_jobs_free(jobs, n);
    LIST("order:oldest", 4);
    assert_int_equal(jobs[0].id, ids[0]);
    aspen_store_jobs_free(jobs, n);
    LIST("order:queue", 4);
    assert_int_equal(jobs[0].id, ids[3]); /* highest priority */
    aspen_store_jobs_free(jobs, n);
    LIST("payload.user:alice", 2);
    assert_int_equal(jobs[0].id, ids[3]);
    assert_int_equal(jobs[1].id, ids[0]);
    aspen_store_jobs_free(jobs, n);
    LIST("payload.user.name:\"Alice B\"", 1);
    assert_int_equal(jobs[0].id, ids[2]);
    aspen_store_jobs_free(jobs, n);
    LIST("payload.n:6", 1);
    aspen_store_jobs_free(jobs, n);
    LIST("payload.ok:true", 1);
    aspen_store_jobs_free(jobs, n);
    LIST("tag:urgent", 2);
    aspen_store_jobs_free(jobs, n);
    LIST("tag:urgent type:echo payload.user:alice", 1);
    assert_int_equal(jobs[0].id, ids[0]);
    aspen_store_jobs_free(jobs, n);
    LIST("binary:data-processor", 1);
    aspen_store_jobs_free(jobs, n);
    LIST("state:queued,running", 4);
    aspen_store_jobs_free(jobs, n);
    LIST("state:failed", 0);
    aspen_store_jobs_free(jobs, n);
    char idterm[32];
    snprintf(idterm, sizeof idterm, "id:%lld", (long long)ids[1]);
    LIST(idterm, 1);
    aspen_store_jobs_free(jobs, n);

    /* limit / offset / count */
    aspen_store_filter page = {.limit = 2, .offset = 1, .order = ASPEN_STORE_ORDER_OLDEST};
    assert_int_equal(aspen_store_list(f->s, &page, &jobs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jobs[0].id, ids[1]);
    aspen_store_jobs_free(jobs, n);
    int64_t cnt = 0;
    assert_int_equal(aspen_store_count(f->s, &page, &cnt, &e), 0);
    assert_int_equal(cnt, 4);
    assert_int_equal(aspen_store_list(f->s, NULL, &jobs, &n, &e), 0);
    assert_int_equal(n, 4);
    aspen_store_jobs_free(jobs, n);

    /* Parse errors name the problem. */
    assert_int_equal(aspen_store_filter_parse("colour:red", &flt, buf, sizeof buf, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "unknown filter key 'colour'"));
    assert_int_equal(aspen_store_filter_parse("state:done", &flt, buf, sizeof buf, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "unknown state 'done'"));
    /* a bare word is a guest name now (the console's shorthand, in the one language) */
    assert_int_equal(aspen_store_filter_parse("alice", &flt, buf, sizeof buf, &e), 0);
    assert_string_equal(flt.binary_name, "alice");
    assert_int_equal(aspen_store_filter_parse("payload.a b:1", &flt, buf, sizeof buf, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_filter_parse("payload.x:\"open", &flt, buf, sizeof buf, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_filter_parse("id:abc", &flt, buf, sizeof buf, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_filter_parse("type:xxxxxxxxxxxxxxxx", &flt, buf, 8, &e), ASPEN_STORE_EINVAL);
    /* A bad JSON path built by hand is refused with a message, not a crash. */
    aspen_store_filter badpath = {.n_fields = 1};
    badpath.fields[0].path = "$..[";
    badpath.fields[0].value = "1";
    assert_int_equal(aspen_store_list(f->s, &badpath, &jobs, &n, &e), ASPEN_STORE_EINVAL);

    /* Counts and the oldest waiting job. */
    int64_t counts[ASPEN_STORE_STATE_COUNT], age = -1;
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 4);
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0 + 1000, &age, &e), 0);
    assert_int_equal(age, 1000);
    submit_job(f->s, "later", 0, T0 + 500, 3, T0); /* scheduled; due before T0 + 1000 */
    claim_ids(f->s, f->engine, 4, T0 + 100, NULL); /* the four queued ones */
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0 + 400, &age, &e), 0);
    assert_int_equal(age, 0); /* scheduled but not due yet */
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0 + 1000, &age, &e), 0);
    assert_int_equal(age, 500);
}

/* The oldest waiting job among several priorities: the oldest is neither in the most nor in the
 * least urgent priority, and the answer must not depend on which priority comes first. */
static void test_oldest_waiting_across_priorities(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t age = -1;
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0, &age, &e), 0);
    assert_int_equal(age, 0); /* nothing waits */
    submit_job(f->s, "p9", 9, 0, 3, T0 - 100);
    submit_job(f->s, "p5-old", 5, 0, 3, T0 - 700);
    submit_job(f->s, "p5-new", 5, 0, 3, T0 - 50);
    submit_job(f->s, "p-3", -3, 0, 3, T0 - 300);
    submit_job(f->s, "p0", 0, 0, 3, T0 - 10);
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0, &age, &e), 0);
    assert_int_equal(age, 700);
    /* once the oldest is taken, the next oldest sits in another priority */
    assert_int_equal(claim_ids(f->s, f->engine, 2, T0, NULL), 2); /* p9, then p5-old */
    assert_int_equal(aspen_store_oldest_waiting(f->s, T0, &age, &e), 0);
    assert_int_equal(age, 300);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_submit_validation),
        T(test_binaries),
        T(test_claim_order),
        T(test_oldest_waiting_across_priorities),
        T(test_claim_fields_and_batches),
        T(test_group_complete),
        T(test_retry_backoff_flow),
        cmocka_unit_test(test_backoff_helper),
        T(test_cancel),
        T(test_cancel_in_batches),
        T(test_rerun_and_retry_failed),
        T(test_purge_and_recount),
        T(test_pause),
        T(test_log_cap),
        T(test_list_filters_counts),
    };
    return run_store_tests("test_store_queue", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
