/* helpers.h — shared by the store tests: a fresh database per test (an SQLite file in a fresh
 * temporary directory, or, when the test runs on PostgreSQL, a fresh database on the tests'
 * private server), a fixed clock, and small shorthands for submitting and claiming.
 * Header-only (static functions) so each test program stays one file plus this.
 *
 * Both backends: a test program lists the tests that go through the public API in one array and
 * its white-box SQLite tests in another (run_store_tests). ctest runs each program twice: as is
 * (SQLite) and as NAME_pg with ASPEN_TEST_BACKEND=postgres and ASPEN_PG_DIR (the server that the
 * ctest fixture "pg" starts; see tests/store/pg_server.sh), where f->path is a libpq conninfo
 * naming a database created for that one test (t_PID_N, dropped afterwards). Without a server
 * the PostgreSQL run fails, naming what to start: it is never skipped. */
#ifndef ASPEN_TEST_STORE_HELPERS_H
#define ASPEN_TEST_STORE_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "aspen_store.h"

#define T0 1700000000000LL /* the tests' "now": a fixed unix ms */

/* SQLite statements that take a current database back to version 7 (before named queues), for
 * the tests that make an older database from a new one. */
#define UNDO_SQLITE_V8                                                                             \
    "DROP INDEX jobs_queue_named; DROP TABLE queues; DROP TABLE queue_starts;"                     \
    " ALTER TABLE jobs DROP COLUMN queue;"

struct fixture {
    char dir[256];
    char path[1024]; /* an SQLite file, or a PostgreSQL conninfo */
    char pg_db[64];  /* the test's PostgreSQL database, "" on SQLite */
    aspen_store *s;
    int64_t engine;
};

/* Whether this run is the PostgreSQL one (ctest sets ASPEN_TEST_BACKEND=postgres). */
static inline bool test_on_pg(void)
{
    const char *b = getenv("ASPEN_TEST_BACKEND");
    return b && strcmp(b, "postgres") == 0;
}

/* The private server's admin conninfo (ASPEN_PG_DIR/conninfo), or fails the test saying why. */
static inline const char *pg_admin_conninfo(void)
{
    static char info[512];
    if (info[0])
        return info;
    const char *dir = getenv("ASPEN_PG_DIR");
    if (!dir || !*dir)
        fail_msg("ASPEN_PG_DIR is not set: run the _pg tests through ctest, which starts the "
                 "PostgreSQL test server (tests/store/pg_server.sh)");
    char path[1024];
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("%s is missing: the PostgreSQL test server is not running. ctest starts it "
                 "(fixture pg_server_start); by hand: bash tests/store/pg_server.sh start %s",
                 path, dir);
    if (!fgets(info, sizeof info, fp))
        info[0] = '\0';
    fclose(fp);
    info[strcspn(info, "\n")] = '\0';
    return info;
}

/* Runs one statement on the test server as its superuser; fails the test if it fails. */
static inline void pg_admin_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting to the test server: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* A fresh, empty PostgreSQL database for one test: its name into db, its conninfo into info. */
static inline void pg_fresh_db(char *db, size_t dbsize, char *info, size_t infosize)
{
    static int seq;
    const char *admin = pg_admin_conninfo();
    snprintf(db, dbsize, "t_%d_%d", (int)getpid(), ++seq);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    pg_admin_exec(admin, sql);
    snprintf(info, infosize, "%s dbname=%s", admin, db);
}

static inline void pg_drop_db(const char *db)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pg_admin_exec(pg_admin_conninfo(), sql);
}

static inline void fx_path(struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static inline aspen_store *open_or_fail(const char *path, const aspen_store_options *o)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    int rc = aspen_store_open(path, o, &s, &e);
    if (rc != 0)
        fail_msg("open %s: %d %s", path, rc, e.msg);
    return s;
}

static inline int fx_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/aspen-store-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    if (test_on_pg())
        pg_fresh_db(f->pg_db, sizeof f->pg_db, f->path, sizeof f->path);
    else
        snprintf(f->path, sizeof f->path, "%s/aspen.db", f->dir);
    f->s = open_or_fail(f->path, NULL);
    aspen_store_error e = {0};
    if (aspen_store_engine_register(f->s, getpid(), "test", 5000, T0, &f->engine, &e) != 0)
        fail_msg("register: %s", e.msg);
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    if (f->pg_db[0])
        pg_drop_db(f->pg_db);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Submits one job of `type` with priority and run_at; returns its id. */
static inline int64_t submit_job(aspen_store *s, const char *type, int priority, int64_t run_at,
                                 int max_attempts, int64_t now)
{
    aspen_store_job_spec spec = {.type = type,
                                 .priority = priority,
                                 .run_at_ms = run_at,
                                 .max_attempts = max_attempts,
                                 .payload = "{\"n\":1}"};
    int64_t id = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_submit(s, &spec, now, &id, &e);
    if (rc != 0)
        fail_msg("submit: %d %s", rc, e.msg);
    return id;
}

/* Reserves up to max jobs (they stay queued); returns how many, ids in claim order into ids (may
 * be NULL). */
static inline size_t reserve_ids(aspen_store *s, int64_t engine, size_t max, int64_t now,
                                 int64_t *ids)
{
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_claim(s, engine, max, now, &jobs, &n, NULL, &e);
    if (rc != 0)
        fail_msg("claim: %d %s", rc, e.msg);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].state != ASPEN_STORE_QUEUED)
            fail_msg("claim returned job %lld %s, not queued", (long long)jobs[i].id,
                     aspen_store_state_name(jobs[i].state));
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = jobs[i].id;
    aspen_store_jobs_free(jobs, n);
    return n;
}

/* Reserves up to max jobs and starts them at `now` (running, attempt charged), as an engine does
 * when its workers begin them; returns how many, ids in claim order into ids (may be NULL). */
static inline size_t claim_ids(aspen_store *s, int64_t engine, size_t max, int64_t now,
                               int64_t *ids)
{
    int64_t got[512];
    if (max > 512)
        max = 512;
    size_t n = reserve_ids(s, engine, max, now, got);
    aspen_store_start marks[512];
    int status[512];
    for (size_t i = 0; i < n; i++)
        marks[i] = (aspen_store_start){got[i], now};
    aspen_store_error e = {0};
    int rc = aspen_store_start_jobs(s, engine, marks, n, now, status, &e);
    if (rc != 0)
        fail_msg("start: %d %s", rc, e.msg);
    for (size_t i = 0; i < n; i++)
        if (status[i] != 0)
            fail_msg("start of job %lld refused: %d %s", (long long)got[i], status[i], e.msg);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = got[i];
    return n;
}

static inline aspen_store_state state_of(aspen_store *s, int64_t id)
{
    aspen_store_job j;
    aspen_store_error e = {0};
    if (aspen_store_get(s, id, &j, &e) != 0)
        fail_msg("get %lld: %s", (long long)id, e.msg);
    aspen_store_state st = j.state;
    aspen_store_job_clear(&j);
    return st;
}

/* Completes one job with an outcome; returns the per-item status. */
static inline int complete_one(aspen_store *s, int64_t engine, int64_t id, aspen_store_outcome o,
                               int64_t retry_at, int64_t now)
{
    aspen_store_completion c = {.job_id = id, .outcome = o, .retry_at_ms = retry_at};
    int status = 0;
    aspen_store_error e = {0};
    int rc = aspen_store_complete(s, engine, &c, 1, now, &status, NULL, &e);
    if (rc != 0)
        fail_msg("complete: %d %s", rc, e.msg);
    return status;
}

/* Changes the test's database behind the store's back (as a person with a SQL shell would), on
 * either backend: sql must be valid for both (plain DELETE/UPDATE). */
static inline void fx_raw_exec(struct fixture *f, const char *sql)
{
    if (f->pg_db[0]) {
        pg_admin_exec(f->path, sql);
        return;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open(f->path, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* One integer from a query on the test's database behind the store's back, on either backend. */
static inline int64_t fx_raw_int(struct fixture *f, const char *sql)
{
    int64_t v = 0;
    if (f->pg_db[0]) {
        PGconn *c = PQconnectdb(f->path);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(f->path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs `both` on either backend and `sqlite_only` (white-box tests of the SQLite backend) only
 * on SQLite; the PostgreSQL run says how many it left to the SQLite run. */
static inline int run_store_tests(const char *name, const struct CMUnitTest *both, size_t n_both,
                                  const struct CMUnitTest *sqlite_only, size_t n_sqlite)
{
    int failed = _cmocka_run_group_tests(name, both, n_both, NULL, NULL);
    if (test_on_pg()) {
        if (n_sqlite)
            printf("[ INFO ] %zu white-box SQLite tests of %s run in the SQLite run only\n",
                   n_sqlite, name);
        return failed;
    }
    if (n_sqlite)
        failed += _cmocka_run_group_tests(name, sqlite_only, n_sqlite, NULL, NULL);
    return failed;
}
#define RUN_STORE_TESTS(both, sqlite_only)                                                         \
    run_store_tests(__FILE__, both, sizeof both / sizeof both[0], sqlite_only,                    \
                    sizeof sqlite_only / sizeof sqlite_only[0])

#endif
