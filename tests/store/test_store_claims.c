/* test_store_claims.c — reservations (a claim is a claims row; the job stays queued until started),
 * and how store errors are classified and recovered from:
 *
 *   reserve       a claim leaves the job queued, uncharged, its row untouched; other engines skip
 *                 it; only its holder can start it; start = running, attempt 1, started_at given
 *   one group     a completion of a reserved job starts and ends it in one write (attempt charged,
 *                 started_at from the worker), and is refused for anyone else's reservation
 *   cancel        a reserved job is cancelled at once (CANCEL_DONE); its start is then refused
 *   give back     unclaim, release and unregister drop reservations without charging anything;
 *                 recovery of a dead engine drops its reservations uncharged and charges only the
 *                 jobs it had started
 *   full          a size-limited database (PRAGMA max_page_count) refuses writes with EFULL, a
 *                 transient error, keeps everything committed, and works again once it may grow
 *   big payloads  live outside the job row (schema 4): a job's state changes work on a database
 *                 that cannot grow a page; reads, filters, rerun, delete, purge see them; a version
 *                 3 database migrates with its jobs intact
 *   schema        a dropped table is ESCHEMA (permanent) with advice; with a newer user_version,
 *                 ENEWER
 */
#include "helpers.h"

#include <sqlite3.h>

#include "sqlite_store.h"

static const aspen_store_state Q = ASPEN_STORE_QUEUED, R = ASPEN_STORE_RUNNING;

static int attempts_of(aspen_store *s, int64_t id, int *charged)
{
    aspen_store_job j;
    aspen_store_error e = {0};
    if (aspen_store_get(s, id, &j, &e) != 0)
        fail_msg("get: %s", e.msg);
    *charged = j.attempts;
    aspen_store_job_clear(&j);
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    if (aspen_store_attempts(s, id, &a, &n, &e) != 0)
        fail_msg("attempts: %s", e.msg);
    aspen_store_attempts_free(a, n);
    return (int)n;
}

static int start_one(aspen_store *s, int64_t engine, int64_t id, int64_t at)
{
    aspen_store_start m = {id, at};
    int status = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_start_jobs(s, engine, &m, 1, T0, &status, &e);
    if (rc != 0)
        fail_msg("start: %d %s", rc, e.msg);
    return status;
}

static void test_reserve_then_start(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(s, 2, "other", 5000, T0, &other, &e), 0);
    int64_t a = submit_job(s, "t", 0, 0, 3, T0);
    int64_t b = submit_job(s, "t", 0, 0, 3, T0);
    int64_t got[2];
    assert_int_equal(reserve_ids(s, f->engine, 1, T0, got), 1);
    assert_int_equal(got[0], a);
    int charged = -1;
    assert_int_equal(state_of(s, a), Q);
    assert_int_equal(attempts_of(s, a, &charged), 0);
    assert_int_equal(charged, 0);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(counts[Q], 2);
    assert_int_equal(counts[R], 0);
    /* the other engine skips the reservation */
    assert_int_equal(reserve_ids(s, other, 5, T0, got), 1);
    assert_int_equal(got[0], b);
    /* only the holder starts it */
    assert_int_equal(start_one(s, other, a, T0 + 3), ASPEN_STORE_ELEASE);
    assert_int_equal(state_of(s, a), Q);
    assert_int_equal(start_one(s, f->engine, a, T0 + 3), 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(s, a, &j, &e), 0);
    assert_int_equal(j.state, R);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.owner, f->engine);
    assert_int_equal(j.started_at_ms, T0 + 3);
    aspen_store_job_clear(&j);
    /* started once: a second start is refused */
    assert_int_equal(start_one(s, f->engine, a, T0 + 4), ASPEN_STORE_ESTATE);
    assert_int_equal(complete_one(s, f->engine, a, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 9), 0);
    assert_int_equal(attempts_of(s, a, &charged), 1);
    assert_int_equal(charged, 1);
}

static void test_start_and_end_in_one_group(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(s, 2, "other", 5000, T0, &other, &e), 0);
    int64_t a = submit_job(s, "t", 0, 0, 3, T0);
    int64_t b = submit_job(s, "t", 0, 0, 3, T0);
    int64_t c = submit_job(s, "t", 0, 0, 3, T0); /* never reserved */
    assert_int_equal(reserve_ids(s, f->engine, 2, T0, NULL), 2);
    aspen_store_completion comp[3] = {
        {.job_id = a, .outcome = ASPEN_STORE_OUTCOME_SUCCESS, .output = "ok", .output_size = 2,
         .stats = {.started_at_ms = T0 + 100, .finished_at_ms = T0 + 101, .wall_us = 73}},
        {.job_id = b, .outcome = ASPEN_STORE_OUTCOME_FAILURE, .retry_at_ms = T0 + 5000,
         .stats = {.started_at_ms = T0 + 100}},
        {.job_id = c, .outcome = ASPEN_STORE_OUTCOME_SUCCESS},
    };
    int status[3];
    aspen_store_state fin[3];
    /* someone else's completion of our reservations is refused, whole */
    assert_int_equal(aspen_store_complete(s, other, comp, 2, T0 + 102, status, fin, &e), 0);
    assert_int_equal(status[0], ASPEN_STORE_ELEASE);
    assert_int_equal(status[1], ASPEN_STORE_ELEASE);
    assert_int_equal(state_of(s, a), Q);
    assert_int_equal(aspen_store_complete(s, f->engine, comp, 3, T0 + 102, status, fin, &e), 0);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0);
    assert_int_equal(status[2], ASPEN_STORE_ESTATE); /* not reserved: not started */
    assert_int_equal(fin[0], ASPEN_STORE_SUCCEEDED);
    assert_int_equal(fin[1], ASPEN_STORE_SCHEDULED);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(s, a, &j, &e), 0);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.started_at_ms, T0 + 100); /* when it began, not when it was claimed */
    assert_int_equal(j.finished_at_ms, T0 + 102);
    assert_string_equal((const char *)j.result, "ok");
    aspen_store_job_clear(&j);
    int charged = 0;
    assert_int_equal(attempts_of(s, b, &charged), 1);
    assert_int_equal(charged, 1);
    assert_int_equal(attempts_of(s, c, &charged), 0);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], 1);
    assert_int_equal(counts[ASPEN_STORE_SCHEDULED], 1);
    assert_int_equal(counts[Q], 1);
    assert_int_equal(aspen_store_check(s, &e), 0);
}

static void test_cancel_reserved(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t a = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(reserve_ids(s, f->engine, 1, T0, NULL), 1);
    aspen_store_cancel_result cr = ASPEN_STORE_CANCEL_REQUESTED;
    assert_int_equal(aspen_store_cancel(s, a, T0 + 1, &cr, &e), 0);
    assert_int_equal(cr, ASPEN_STORE_CANCEL_DONE); /* it was never running */
    assert_int_equal(state_of(s, a), ASPEN_STORE_CANCELLED);
    assert_int_equal(start_one(s, f->engine, a, T0 + 2), ASPEN_STORE_ESTATE);
    assert_int_equal(complete_one(s, f->engine, a, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0 + 3),
                     ASPEN_STORE_ESTATE);
    int charged = -1;
    assert_int_equal(attempts_of(s, a, &charged), 0);
    assert_int_equal(charged, 0);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM claims"), 0);
}

static void test_give_back_uncharged(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(s, 2, "other", 5000, T0, &other, &e), 0);
    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = submit_job(s, "t", 0, 0, 1, T0);
    assert_int_equal(reserve_ids(s, f->engine, 4, T0, NULL), 4);
    assert_int_equal(reserve_ids(s, other, 4, T0, NULL), 0);
    /* unclaim: ids[0] back; a foreign engine's unclaim changes nothing */
    assert_int_equal(aspen_store_unclaim(s, other, &ids[1], 1, &e), 0);
    assert_int_equal(aspen_store_unclaim(s, f->engine, &ids[0], 1, &e), 0);
    int64_t got[4];
    assert_int_equal(reserve_ids(s, other, 4, T0, got), 1);
    assert_int_equal(got[0], ids[0]);
    /* release of a reserved job: back, nothing charged (max_attempts is 1: it would fail) */
    assert_int_equal(aspen_store_release(s, f->engine, ids[1], T0, &e), 0);
    assert_int_equal(reserve_ids(s, other, 4, T0, got), 1);
    assert_int_equal(got[0], ids[1]);
    /* unregister gives back the rest */
    int64_t released = -1;
    assert_int_equal(aspen_store_engine_unregister(s, f->engine, T0, &released, &e), 0);
    assert_int_equal(released, 0); /* no running job */
    assert_int_equal(reserve_ids(s, other, 4, T0, got), 2);
    for (int i = 0; i < 4; i++) {
        int charged = -1;
        assert_int_equal(attempts_of(s, ids[i], &charged), 0);
        assert_int_equal(charged, 0);
        assert_int_equal(state_of(s, ids[i]), Q);
    }
}

static void test_recovery_charges_only_started(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t dead = 0;
    assert_int_equal(aspen_store_engine_register(s, 99, "dead", 1000, T0, &dead, &e), 0);
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = submit_job(s, "t", 0, 0, 1, T0); /* one attempt each: a charge would fail it */
    int64_t got[5];
    assert_int_equal(reserve_ids(s, dead, 5, T0, got), 5);
    assert_int_equal(start_one(s, dead, ids[0], T0 + 10), 0); /* it was really running */
    aspen_store_engine_renew(s, f->engine, 60000, T0 + 2000, NULL);
    aspen_store_recovery rep = {0};
    assert_int_equal(aspen_store_recover(s, T0 + 2000, &rep, &e), 0);
    assert_int_equal(rep.unreserved, 4);
    assert_int_equal(rep.failed, 1); /* its last attempt was lost */
    assert_int_equal(rep.requeued, 0);
    assert_int_equal(state_of(s, ids[0]), ASPEN_STORE_FAILED);
    for (int i = 1; i < 5; i++) {
        int charged = -1;
        assert_int_equal(attempts_of(s, ids[i], &charged), 0);
        assert_int_equal(charged, 0);
        assert_int_equal(state_of(s, ids[i]), Q);
    }
    /* free for anyone, in order */
    assert_int_equal(reserve_ids(s, f->engine, 5, T0 + 2000, got), 4);
    assert_int_equal(got[0], ids[1]);
    assert_int_equal(aspen_store_check(s, &e), 0);
}

/* ---- errors ------------------------------------------------------------------------------------- */

static int64_t page_count(aspen_store *s)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(sq(s)->db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void set_max_pages(aspen_store *s, int64_t n)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)n);
    assert_int_equal(sqlite3_exec(sq(s)->db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void test_full_then_room(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    static char payload[3000];
    int len = snprintf(payload, sizeof payload, "{\"pad\":\"");
    memset(payload + len, 'p', 2900);
    snprintf(payload + len + 2900, sizeof payload - (size_t)len - 2900, "\"}");
    aspen_store_job_spec spec = {.type = "t", .payload = payload};
    int64_t first[20];
    for (int i = 0; i < 20; i++)
        assert_int_equal(aspen_store_submit(s, &spec, T0, &first[i], &e), 0);
    /* the database may not grow any more */
    set_max_pages(s, page_count(s));
    int rc = 0, ok = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        int64_t id;
        rc = aspen_store_submit(s, &spec, T0, &id, &e);
        ok += rc == 0;
    }
    assert_int_equal(rc, ASPEN_STORE_EFULL);
    assert_non_null(strstr(e.msg, "disk full while"));
    assert_non_null(strstr(e.msg, "Free space"));
    assert_false(aspen_store_error_permanent(rc)); /* the engine retries it */
    /* everything committed before is intact */
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    assert_int_equal(aspen_store_counts(s, counts, &e), 0);
    assert_int_equal(counts[Q], 20 + ok);
    /* room again: writes resume, on the same handle */
    set_max_pages(s, 1000000);
    assert_int_equal(reserve_ids(s, f->engine, 5, T0, NULL), 5);
    assert_int_equal(complete_one(s, f->engine, first[0], ASPEN_STORE_OUTCOME_SUCCESS, 0, T0), 0);
    int64_t id;
    assert_int_equal(aspen_store_submit(s, &spec, T0, &id, &e), 0);
    assert_int_equal(aspen_store_check(s, &e), 0);
}

static int64_t count_rows(aspen_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(sq(s)->db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A 40 KB payload lives outside the job's row: its state changes do not rewrite it, so they still
 * work on a database that cannot grow by a single page (before, the start of such a job rewrote
 * its ten overflow pages into new ones and failed with EFULL). */
static void test_big_payload_not_rewritten(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    static char big[40100];
    int len = snprintf(big, sizeof big, "{\"user\":\"alice\",\"pad\":\"");
    memset(big + len, 'p', 40000);
    snprintf(big + len + 40000, sizeof big - (size_t)len - 40000, "\"}");
    aspen_store_job_spec spec = {.type = "t", .payload = big};
    int64_t a, b, small;
    assert_int_equal(aspen_store_submit(s, &spec, T0, &a, &e), 0);
    assert_int_equal(aspen_store_submit(s, &spec, T0, &b, &e), 0);
    small = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM job_payloads"), 2);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(s, a, &j, &e), 0);
    assert_string_equal(j.payload, big);
    aspen_store_job_clear(&j);
    assert_int_equal(aspen_store_get(s, small, &j, &e), 0);
    assert_string_equal(j.payload, "{\"n\":1}");
    aspen_store_job_clear(&j);
    /* filters see it */
    aspen_store_filter flt;
    char buf[128];
    assert_int_equal(aspen_store_filter_parse("payload.user:alice", &flt, buf, sizeof buf, &e), 0);
    int64_t n = 0;
    assert_int_equal(aspen_store_count(s, &flt, &n, &e), 0);
    assert_int_equal(n, 2);

    set_max_pages(s, page_count(s));
    int64_t got[3];
    assert_int_equal(reserve_ids(s, f->engine, 1, T0, got), 1);
    assert_int_equal(got[0], a);
    assert_int_equal(start_one(s, f->engine, a, T0 + 1), 0);
    assert_int_equal(complete_one(s, f->engine, a, ASPEN_STORE_OUTCOME_FAILURE, T0 + 50, T0 + 2),
                     0); /* running → scheduled */
    assert_int_equal(state_of(s, a), ASPEN_STORE_SCHEDULED);
    set_max_pages(s, 1000000);
    /* the claim reads it back whole; rerun copies it; delete and purge remove it */
    aspen_store_job *jobs = NULL;
    size_t k = 0;
    assert_int_equal(aspen_store_claim(s, f->engine, 1, T0 + 60, &jobs, &k, NULL, &e), 0);
    assert_int_equal(k, 1);
    assert_int_equal(jobs[0].id, b) /* run_at T0: before a, retried for T0 + 50 */;
    assert_string_equal(jobs[0].payload, big);
    aspen_store_jobs_free(jobs, k);
    int64_t again;
    assert_int_equal(aspen_store_rerun(s, b, T0, &again, &e), 0);
    assert_int_equal(aspen_store_get(s, again, &j, &e), 0);
    assert_string_equal(j.payload, big);
    aspen_store_job_clear(&j);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM job_payloads"), 3);
    aspen_store_cancel_result cr;
    assert_int_equal(aspen_store_cancel(s, again, T0, &cr, &e), 0);
    assert_int_equal(aspen_store_delete(s, again, &e), 0);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM job_payloads"), 2);
    assert_int_equal(aspen_store_cancel(s, b, T0, &cr, &e), 0);
    int64_t purged = 0;
    assert_int_equal(aspen_store_purge(s, T0 + 1, &purged, &e), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM job_payloads"), 1);
    /* a payload that is not JSON is refused as before */
    aspen_store_job_spec bad = {.type = "t", .payload = big + 1};
    int64_t id;
    assert_int_equal(aspen_store_submit(s, &bad, T0, &id, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "payload is not valid JSON"));
}

/* A version-3 database (payloads in the rows) opens as version 4 with its jobs intact. */
static void test_migration_from_v3(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    static char big[1200];
    int len = snprintf(big, sizeof big, "{\"pad\":\"");
    memset(big + len, 'q', 1000);
    snprintf(big + len + 1000, sizeof big - (size_t)len - 1000, "\"}");
    aspen_store_close(f->s);
    f->s = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *sql = sqlite3_mprintf(
        UNDO_SQLITE_V8 "DROP TABLE job_payloads; ALTER TABLE jobs DROP COLUMN payload_ext;"
        /* version 5's heartbeat columns */
        " ALTER TABLE engines DROP COLUMN workers; ALTER TABLE engines DROP COLUMN busy;"
        " ALTER TABLE engines DROP COLUMN warm_vms; ALTER TABLE engines DROP COLUMN rss_bytes;"
        " ALTER TABLE engines DROP COLUMN jobs_per_s_milli; ALTER TABLE engines DROP COLUMN version;"
        " ALTER TABLE engines DROP COLUMN heartbeat_at; ALTER TABLE engines DROP COLUMN slots;"
        " INSERT INTO jobs (type, payload, state, priority, run_at, created_at)"
        " VALUES ('t', '%q', 'queued', 0, %lld, %lld);"
        " UPDATE job_counts SET n = n + 1 WHERE state = 'queued'; PRAGMA user_version = 3",
        big, (long long)T0, (long long)T0);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("making a version-3 database: %s", msg);
    sqlite3_free(sql);
    sqlite3_close(db);
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(count_rows(f->s, "PRAGMA user_version"), ASPEN_STORE_SCHEMA_VERSION);
    aspen_store_filter flt = {.limit = -1};
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_list(f->s, &flt, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].payload, big); /* still in its row: read as before */
    int64_t old_id = jobs[0].id;
    aspen_store_jobs_free(jobs, n);
    assert_int_equal(aspen_store_engine_register(f->s, 1, "t", 5000, T0, &f->engine, &e), 0);
    assert_int_equal(claim_ids(f->s, f->engine, 5, T0, NULL), 1);
    assert_int_equal(complete_one(f->s, f->engine, old_id, ASPEN_STORE_OUTCOME_SUCCESS, 0, T0), 0);
    aspen_store_job_spec spec = {.type = "t", .payload = big};
    int64_t id;
    assert_int_equal(aspen_store_submit(f->s, &spec, T0, &id, &e), 0);
    assert_int_equal(count_rows(f->s, "SELECT count(*) FROM job_payloads"), 1);
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

static void test_schema_errors_are_permanent(void **state)
{
    struct fixture *f = *state;
    aspen_store *s = f->s;
    aspen_store_error e = {0};
    int64_t a = submit_job(s, "t", 0, 0, 3, T0);
    assert_int_equal(reserve_ids(s, f->engine, 1, T0, NULL), 1);
    /* another program damages the file under us */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE attempts", NULL, NULL, NULL), SQLITE_OK);
    aspen_store_completion c = {.job_id = a, .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    int rc = aspen_store_complete(s, f->engine, &c, 1, T0, NULL, NULL, &e);
    assert_int_equal(rc, ASPEN_STORE_ESCHEMA);
    assert_non_null(strstr(e.msg, "missing part of Aspen's schema"));
    assert_non_null(strstr(e.msg, "no such table: attempts"));
    assert_non_null(strstr(e.msg, "Restore it from a backup"));
    assert_true(aspen_store_error_permanent(rc));
    assert_int_equal(state_of(s, a), Q); /* rolled back */
    /* the same, once a newer aspen has changed the schema */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    rc = aspen_store_complete(s, f->engine, &c, 1, T0, NULL, NULL, &e);
    assert_int_equal(rc, ASPEN_STORE_ENEWER);
    assert_non_null(strstr(e.msg, "newer than this aspen"));
    assert_true(aspen_store_error_permanent(rc));
    sqlite3_close(db);
    /* and the transient ones are not permanent */
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EBUSY));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EFULL));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_EIO));
    assert_false(aspen_store_error_permanent(ASPEN_STORE_ENOMEM));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_ECORRUPT));
    assert_true(aspen_store_error_permanent(ASPEN_STORE_EPERM));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_reserve_then_start),
        T(test_start_and_end_in_one_group),
        T(test_cancel_reserved),
        T(test_give_back_uncharged),
        T(test_recovery_charges_only_started),
    };
    /* White-box SQLite: PRAGMA max_page_count and page counts, the job_payloads table (PostgreSQL
     * keeps big values out of line itself), a version-3 file (PostgreSQL databases begin at 4),
     * SQLite's own error texts. test_store_pg covers the PostgreSQL side of each. */
    const struct CMUnitTest sqlite_only[] = {
        T(test_full_then_room),
        T(test_big_payload_not_rewritten),
        T(test_migration_from_v3),
        T(test_schema_errors_are_permanent),
    };
    return RUN_STORE_TESTS(both, sqlite_only);
}
