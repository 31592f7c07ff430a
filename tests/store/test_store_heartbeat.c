/* test_store_heartbeat.c — engines' heartbeats (schema version 5), on both backends: the figures
 * and what each busy worker runs round-trip through aspen_store_engine_heartbeat and
 * aspen_store_engines; the heartbeat extends the lease; a host is stale past
 * ASPEN_STORE_HEARTBEAT_STALE_MS by injected time; a heartbeat from an engine id that is not
 * registered writes nothing; hostile host names, guest names, versions and slot text written behind
 * the store's back; a version-4 database (made as version 4 was: SQLite by dropping the columns and
 * user_version, PostgreSQL from schema_v4.sql) migrates on open and keeps its engines and jobs. */
#include "helpers.h"
#include "store_backend.h" /* the version-5 columns, to make a version-4 SQLite file */

#include <math.h>

static aspen_store_engine_info *find(aspen_store_engine_info *list, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    fail_msg("engine %lld is not listed", (long long)id);
    return NULL;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_engine_slot slots[2] = {{.worker = 0, .job_id = 41, .guest = "echo-worker"},
                                        {.worker = 3, .job_id = 42, .guest = "data-processor"}};
    aspen_store_engine_figures fig = {.workers = 4,
                                      .busy = 2,
                                      .warm_vms = 7,
                                      .rss_bytes = 123456789,
                                      .jobs_per_s = 1234.5,
                                      .version = "0.1.0",
                                      .slots = slots,
                                      .n_slots = 2,
                                      .queues = "bulk,reports.2026"};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &fig, T0 + 1000, &e), 0);
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_engines(f->s, T0 + 1500, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    aspen_store_engine_info *x = find(list, n, f->engine);
    assert_int_equal(x->heartbeat_ms, T0 + 1000);
    assert_int_equal(x->heartbeat_age_ms, 500);
    assert_false(x->stale);
    assert_int_equal(x->lease_until_ms, T0 + 6000); /* the heartbeat renewed the lease */
    assert_int_equal(x->workers, 4);
    assert_int_equal(x->busy, 2);
    assert_int_equal(x->warm_vms, 7);
    assert_int_equal(x->rss_bytes, 123456789);
    assert_true(fabs(x->jobs_per_s - 1234.5) < 1e-9);
    assert_string_equal(x->version, "0.1.0");
    assert_string_equal(x->host, "test");
    assert_int_equal(x->n_slots, 2);
    assert_int_equal(x->slots[0].worker, 0);
    assert_int_equal(x->slots[0].job_id, 41);
    assert_string_equal(x->slots[0].guest, "echo-worker");
    assert_int_equal(x->slots[1].worker, 3);
    assert_int_equal(x->slots[1].job_id, 42);
    assert_string_equal(x->slots[1].guest, "data-processor");
    assert_string_equal(x->queues, "bulk,reports.2026"); /* schema version 18 */
    aspen_store_engines_free(list);

    /* The next beat replaces the figures: an idle engine lists no slots. */
    aspen_store_engine_figures idle = {.workers = 4, .version = "0.1.0"};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &idle, T0 + 2000, &e), 0);
    assert_int_equal(aspen_store_engines(f->s, T0 + 2000, &list, &n, &e), 0);
    x = find(list, n, f->engine);
    assert_int_equal(x->n_slots, 0);
    assert_int_equal(x->busy, 0);
    assert_int_equal(x->heartbeat_age_ms, 0);
    assert_string_equal(x->queues, ""); /* NULL: every queue */
    aspen_store_engines_free(list);
    /* a list longer than 16 names of 64 bytes is refused before the database */
    char longq[ASPEN_STORE_ENGINE_QUEUES_MAX + 2];
    memset(longq, 'q', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    aspen_store_engine_figures too_long = {.workers = 4, .queues = longq};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &too_long, T0 + 2100, &e),
                     ASPEN_STORE_EINVAL);
}

static void test_stale_by_time(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t quiet = 0;
    /* registered at T0 + 100 and never beats: its age counts from its start */
    assert_int_equal(aspen_store_engine_register(f->s, 7, "quiet", 60000, T0 + 100, &quiet, &e), 0);
    aspen_store_engine_figures fig = {.workers = 1};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 60000, &fig, T0 + 1000, &e), 0);
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(
        aspen_store_engines(f->s, T0 + 1000 + ASPEN_STORE_HEARTBEAT_STALE_MS, &list, &n, &e), 0);
    assert_false(find(list, n, f->engine)->stale); /* exactly at the limit: not yet */
    assert_true(find(list, n, quiet)->stale);       /* 5900 ms since it started */
    assert_int_equal(find(list, n, quiet)->heartbeat_ms, 0);
    assert_int_equal(find(list, n, quiet)->heartbeat_age_ms, 5900);
    aspen_store_engines_free(list);
    assert_int_equal(
        aspen_store_engines(f->s, T0 + 1001 + ASPEN_STORE_HEARTBEAT_STALE_MS, &list, &n, &e), 0);
    assert_true(find(list, n, f->engine)->stale);
    aspen_store_engines_free(list);
    /* a beat makes it fresh again */
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 60000, &fig, T0 + 7000, &e), 0);
    assert_int_equal(aspen_store_engines(f->s, T0 + 7000, &list, &n, &e), 0);
    assert_false(find(list, n, f->engine)->stale);
    aspen_store_engines_free(list);
}

static void test_unregistered(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_engine_figures fig = {.workers = 2, .busy = 1, .version = "x"};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, 999999, 5000, &fig, T0, &e),
                     ASPEN_STORE_ELEASE);
    assert_non_null(strstr(e.msg, "999999 is not registered"));
    assert_int_equal(aspen_store_engine_heartbeat(f->s, -1, 5000, &fig, T0, &e),
                     ASPEN_STORE_ELEASE);
    /* one that left */
    int64_t gone = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 9, "gone", 5000, T0, &gone, &e), 0);
    assert_int_equal(aspen_store_engine_unregister(f->s, gone, T0, NULL, &e), 0);
    assert_int_equal(aspen_store_engine_heartbeat(f->s, gone, 5000, &fig, T0, &e),
                     ASPEN_STORE_ELEASE);
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_engines(f->s, T0, &list, &n, &e), 0);
    assert_int_equal(n, 1); /* nothing was created by those beats */
    assert_int_equal(list[0].id, f->engine);
    assert_int_equal(list[0].heartbeat_ms, 0);
    aspen_store_engines_free(list);
    /* bad figures are refused before the database */
    aspen_store_engine_figures neg = {.workers = -1};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &neg, T0, &e),
                     ASPEN_STORE_EINVAL);
    aspen_store_engine_figures nan_rate = {.jobs_per_s = NAN};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &nan_rate, T0, &e),
                     ASPEN_STORE_EINVAL);
    aspen_store_engine_figures no_array = {.n_slots = 3};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, &no_array, T0, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 5000, NULL, T0, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_engine_heartbeat(f->s, f->engine, 0, &fig, T0, &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_engine_heartbeat(NULL, f->engine, 5000, &fig, T0, &e),
                     ASPEN_STORE_EINVAL);
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    /* a host name with terminal escapes, a newline, and far longer than the 128 bytes kept */
    char host[600];
    int len = snprintf(host, sizeof host, "evil\x1b]0;owned\x07\x1b[2J\nhost-");
    memset(host + len, 'h', sizeof host - (size_t)len - 1);
    host[sizeof host - 1] = 0;
    int64_t id = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 1, host, 5000, T0, &id, &e), 0);
    aspen_store_engine_slot slots[100];
    memset(slots, 0, sizeof slots);
    for (int i = 0; i < 100; i++) {
        slots[i].worker = i;
        slots[i].job_id = 1000 + i;
        snprintf(slots[i].guest, sizeof slots[i].guest, "g %d\n\x1b[31m\xff\t", i);
    }
    memset(slots[5].guest, 'G', sizeof slots[5].guest); /* no terminating NUL */
    slots[6].guest[0] = 0;                                /* an empty name */
    aspen_store_engine_figures fig = {.workers = 100,
                                      .busy = 100,
                                      .version = "1.0\n\x1b[2J\xc3\xa9-a-very-long-version-string",
                                      .slots = slots,
                                      .n_slots = 100};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, id, 5000, &fig, T0, &e), 0);
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_engines(f->s, T0, &list, &n, &e), 0);
    aspen_store_engine_info *x = find(list, n, id);
    if (x == NULL) { /* (a return gcc sees, so -O2 knows x is not NULL below) */
        fail_msg("engine %lld not listed", (long long)id);
        return;
    }
    assert_int_equal(strlen(x->host), sizeof x->host - 1); /* cut, not overflowed */
    assert_memory_equal(x->host, "evil\x1b]0;", 7);        /* kept as data: the UIs sanitise */
    assert_int_equal(x->busy, 100);
    assert_int_equal(x->n_slots, ASPEN_STORE_ENGINE_SLOTS);
    for (size_t i = 0; i < x->n_slots; i++) {
        assert_int_equal(x->slots[i].worker, (int)i);
        assert_int_equal(x->slots[i].job_id, 1000 + (int64_t)i);
        for (const char *p = x->slots[i].guest; *p; p++)
            assert_true(*p > ' ' && *p < 0x7f);
    }
    assert_string_equal(x->slots[0].guest, "g?0?" "?[31m?" "?");
    assert_int_equal(strlen(x->slots[5].guest), 63);
    assert_string_equal(x->slots[6].guest, "-");
    assert_string_equal(x->version, "1.0?" "?[2J?" "?-a-very-long-version-");
    aspen_store_engines_free(list);

    /* Slot text another (or a broken) host wrote behind the store's back: bad lines skipped. */
    char sql[800];
    snprintf(sql, sizeof sql,
             "UPDATE engines SET slots = 'garbage\n-1 5 neg\n2 0 zero\n3 abc x\n\n4 77 ok\n"
             "5 78 %s\n6 79' WHERE id = %lld",
             "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
             "ttttttttttttttttttttttttttttttttttttttttttttttttttttt",
             (long long)id);
    fx_raw_exec(f, sql);
    assert_int_equal(aspen_store_engines(f->s, T0, &list, &n, &e), 0);
    x = find(list, n, id);
    assert_int_equal(x->n_slots, 1);
    assert_int_equal(x->slots[0].worker, 4);
    assert_int_equal(x->slots[0].job_id, 77);
    assert_string_equal(x->slots[0].guest, "ok");
    aspen_store_engines_free(list);
}

/* Turns the fixture's fresh database into what version 4 wrote, with an engine and a job in it. */
static void make_v4(struct fixture *f)
{
    aspen_store_close(f->s);
    f->s = NULL;
    if (f->pg_db[0]) {
        /* a fresh database with schema_v4.sql, as a version-4 aspen created it */
        pg_drop_db(f->pg_db);
        pg_fresh_db(f->pg_db, sizeof f->pg_db, f->path, sizeof f->path);
        FILE *fp = fopen(ASPEN_PG_SCHEMA, "r");
        assert_non_null(fp);
        static char sql[1 << 16];
        size_t got = fread(sql, 1, sizeof sql - 1, fp);
        fclose(fp);
        sql[got] = 0;
        pg_admin_exec(f->path, sql);
        assert_int_equal(fx_raw_int(f, "SELECT max(version) FROM aspen_schema"), 4);
    } else {
        char sql[1024] = UNDO_SQLITE_V8;
        for (size_t i = 0; i < store_engine_v5_ncolumns; i++) {
            char col[64];
            snprintf(col, sizeof col, "%s", store_engine_v5_columns[i]);
            col[strcspn(col, " ")] = 0;
            size_t l = strlen(sql);
            snprintf(sql + l, sizeof sql - l, "ALTER TABLE engines DROP COLUMN %s;", col);
        }
        strcat(sql, "DELETE FROM engines; PRAGMA user_version = 4;");
        fx_raw_exec(f, sql);
        assert_int_equal(fx_raw_int(f, "PRAGMA user_version"), 4);
    }
    fx_raw_exec(f, "INSERT INTO engines (pid, host, started_at, lease_until)"
                   " VALUES (4444, 'old-host', 1700000000000, 1700000060000)");
}

static void test_v4_migrates(void **state)
{
    struct fixture *f = *state;
    make_v4(f);
    aspen_store_error e = {0};
    /* read-only cannot migrate: refused, and nothing written */
    aspen_store_options ro = {.read_only = true};
    aspen_store *r = NULL;
    assert_int_not_equal(aspen_store_open(f->path, &ro, &r, &e), 0);
    assert_null(r);
    assert_int_equal(f->pg_db[0] ? fx_raw_int(f, "SELECT max(version) FROM aspen_schema")
                                 : fx_raw_int(f, "PRAGMA user_version"),
                     4);
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(f->pg_db[0] ? fx_raw_int(f, "SELECT max(version) FROM aspen_schema")
                                 : fx_raw_int(f, "PRAGMA user_version"),
                     ASPEN_STORE_SCHEMA_VERSION);
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_engines(f->s, T0 + 2000, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    int64_t old = list[0].id;
    assert_string_equal(list[0].host, "old-host");
    assert_int_equal(list[0].pid, 4444);
    assert_int_equal(list[0].heartbeat_ms, 0); /* none yet: its age counts from its start */
    assert_int_equal(list[0].heartbeat_age_ms, 2000);
    assert_false(list[0].stale);
    assert_int_equal(list[0].n_slots, 0);
    assert_string_equal(list[0].version, "");
    aspen_store_engines_free(list);
    /* the old engine's row takes heartbeats, and the migrated database works as a queue */
    aspen_store_engine_figures fig = {.workers = 2, .version = "0.1.0"};
    assert_int_equal(aspen_store_engine_heartbeat(f->s, old, 5000, &fig, T0 + 2500, &e), 0);
    int64_t job = submit_job(f->s, "t", 0, 0, 3, T0);
    assert_true(job > 0);
    assert_int_equal(claim_ids(f->s, old, 1, T0 + 2600, NULL), 1);
    assert_int_equal(state_of(f->s, job), ASPEN_STORE_RUNNING);
    /* opening again (another host) finds version 5 and changes nothing */
    aspen_store *again = open_or_fail(f->path, NULL);
    assert_int_equal(aspen_store_engines(again, T0 + 3000, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].heartbeat_ms, T0 + 2500);
    assert_int_equal(list[0].running, 1);
    aspen_store_engines_free(list);
    aspen_store_close(again);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        T(test_round_trip),
        T(test_stale_by_time),
        T(test_unregistered),
        T(test_hostile),
        T(test_v4_migrates),
    };
    return _cmocka_run_group_tests(__FILE__, both, sizeof both / sizeof both[0], NULL, NULL);
}
