/* test_store_pg.c — the PostgreSQL test harness works: the private server that ctest starts
 * (tests/store/pg_server.sh, fixture "pg") answers over its unix socket and over loopback, the
 * PostgreSQL schema (store/postgres/schema_v4.sql) applies to a fresh database and reads back as
 * version 4 with every table, its constraints refuse what the SQLite schema refuses, payloads come
 * back byte for byte, and two connections claim with FOR UPDATE SKIP LOCKED without waiting on
 * each other. The backend itself is tested by test_store_pgopen and the shared suite's _pg runs.
 * Without a running server every test here fails, naming what to start. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

static char g_conninfo[512], g_conninfo_tcp[512];

/* One line of DIR/NAME (written by pg_server.sh start) into out; false (said why) if missing. */
static bool read_line(const char *dir, const char *name, char *out, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr,
                "test_store_pg: %s is missing: the PostgreSQL test server is not running. ctest "
                "starts it (fixture pg_server_start); by hand: bash tests/store/pg_server.sh "
                "start %s\n",
                path, dir);
        return false;
    }
    if (!fgets(out, (int)size, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return out[0] != '\0';
}

static PGconn *connect_or_fail(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting with '%s': %s", conninfo, PQerrorMessage(c));
    return c;
}

/* Runs sql; fails the test unless the result status is `want`. Returns the result. */
static PGresult *run(PGconn *c, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != want)
        fail_msg("%.200s: %s", sql, PQresultErrorMessage(r));
    return r;
}

static void exec_ok(PGconn *c, const char *sql) { PQclear(run(c, sql, PGRES_COMMAND_OK)); }

/* A fresh database for one test, with the schema applied; the connection to it in *db. */
struct fresh {
    char name[64];
    char conninfo[700];
    PGconn *admin, *db;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int fresh_setup(void **state)
{
    static int seq;
    struct fresh *x = calloc(1, sizeof *x);
    assert_non_null(x);
    snprintf(x->name, sizeof x->name, "aspen_test_%d_%d", (int)getpid(), ++seq);
    x->admin = connect_or_fail(g_conninfo);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", x->name);
    exec_ok(x->admin, sql);
    snprintf(x->conninfo, sizeof x->conninfo, "%s dbname=%s", g_conninfo, x->name);
    x->db = connect_or_fail(x->conninfo);
    char *schema = slurp(ASPEN_PG_SCHEMA);
    exec_ok(x->db, schema);
    free(schema);
    *state = x;
    return 0;
}

static int fresh_teardown(void **state)
{
    struct fresh *x = *state;
    PQfinish(x->db);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", x->name);
    exec_ok(x->admin, sql);
    PQfinish(x->admin);
    free(x);
    return 0;
}

static void test_socket_and_loopback(void **state)
{
    (void)state;
    const char *infos[] = {g_conninfo, g_conninfo_tcp};
    for (int i = 0; i < 2; i++) {
        PGconn *c = connect_or_fail(infos[i]);
        PGresult *r = run(c, "SELECT current_user, inet_server_addr() IS NULL", PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(r, 0, 0), "aspen");
        /* a unix socket has no server address; loopback has 127.0.0.1 */
        assert_string_equal(PQgetvalue(r, 0, 1), i == 0 ? "t" : "f");
        PQclear(r);
        PQfinish(c);
    }
}

static void test_schema_reads_back(void **state)
{
    struct fresh *x = *state;
    PGresult *r = run(x->db, "SELECT version, application_id FROM aspen_schema", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "4");
    assert_string_equal(PQgetvalue(r, 0, 1), "1098084462"); /* 0x4173706e, as on SQLite */
    PQclear(r);
    r = run(x->db,
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables"
            " WHERE table_schema = 'public'",
            PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "aspen_schema,attempts,binaries,claims,engines,"
                                             "job_counts,jobs,logs,settings");
    PQclear(r);
    /* the jobs columns the SQLite backend reads (JOB_COLUMNS) all exist, plus payload_ext */
    r = run(x->db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'jobs' AND "
            "column_name IN ('id','type','binary_sha256','binary_name','payload','state',"
            "'priority','run_at','attempts','max_attempts','timeout_ms','memory_bytes',"
            "'isolation','tags','created_at','started_at','finished_at','result','error',"
            "'rerun_of','owner','cancel_requested','source_dir','log_count','log_dropped',"
            "'payload_ext')",
            PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "26");
    PQclear(r);
    r = run(x->db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'jobs'", PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "8"); /* the primary key and seven partial */
    PQclear(r);
    r = run(x->db, "SELECT string_agg(state || '=' || n, ',' ORDER BY state) FROM job_counts",
            PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0),
                        "cancelled=0,failed=0,queued=0,running=0,scheduled=0,succeeded=0");
    PQclear(r);
}

/* What SQLite's constraints refuse, PostgreSQL's refuse too, under the same constraint names
 * (store_sqlite_err words its messages from them); and an escaped NUL (\u0000), which
 * PostgreSQL's json accepts but cannot turn into text. */
static void test_constraints(void **state)
{
    struct fresh *x = *state;
    const struct {
        const char *sql, *constraint;
    } bad[] = {
        {"INSERT INTO jobs (type, state, run_at, created_at) VALUES ('', 'queued', 1, 1)",
         "type_nonempty"},
        {"INSERT INTO jobs (type, state, run_at, created_at, tags) VALUES ('t', 'queued', 1, 1,"
         " '\"notarray\"')",
         "tags_array"},
        {"INSERT INTO jobs (type, state, run_at, created_at) VALUES ('t', 'sleeping', 1, 1)",
         "state_known"},
        {"INSERT INTO jobs (type, state, run_at, created_at, max_attempts) VALUES ('t', 'queued',"
         " 1, 1, 0)",
         "jobs_max_attempts_check"},
        {"INSERT INTO attempts (job, number, outcome) VALUES (1, 1, 'vanished')",
         "attempts_outcome_check"},
        {"INSERT INTO binaries (sha256, size, bytes, created_at) VALUES ('abc', 0, '', 1)",
         "binaries_sha256_check"},
        {"INSERT INTO jobs (type, state, run_at, created_at, payload) VALUES ('t', 'queued', 1,"
         " 1, '{\"a\":\"\\u0000\"}')",
         "payload_no_nul"},
        {"INSERT INTO jobs (type, state, run_at, created_at, tags) VALUES ('t', 'queued', 1, 1,"
         " '[\"x\\u0000\"]')",
         "tags_no_nul"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PGresult *r = PQexec(x->db, bad[i].sql);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        const char *c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        if (!c || strcmp(c, bad[i].constraint) != 0)
            fail_msg("%s: refused by %s, want %s (%s)", bad[i].sql, c ? c : "(none)",
                     bad[i].constraint, PQresultErrorMessage(r));
        PQclear(r);
    }
    /* a payload that is not JSON is refused by the column's type */
    PGresult *r = PQexec(x->db, "INSERT INTO jobs (type, state, run_at, created_at, payload)"
                                " VALUES ('t', 'queued', 1, 1, '{not json')");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22P02");
    PQclear(r);
}

/* A payload comes back exactly as given (json, not jsonb: order, spacing and duplicates kept),
 * a big one too. */
static void test_payload_verbatim(void **state)
{
    struct fresh *x = *state;
    size_t big = 300000;
    char *payload = malloc(big + 64);
    assert_non_null(payload);
    int n = snprintf(payload, big + 64, "{\"z\": 1,  \"a\":[true], \"z\":2, \"pad\":\"");
    memset(payload + n, 'p', big);
    strcpy(payload + n + big, "\"}");
    const char *params[] = {payload};
    PGresult *r = PQexecParams(x->db,
                               "INSERT INTO jobs (type, state, run_at, created_at, payload)"
                               " VALUES ('t', 'queued', 1, 1, $1) RETURNING id",
                               1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    r = run(x->db, "SELECT payload FROM jobs", PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), payload);
    PQclear(r);
    free(payload);
}

/* Two engines' connections claim from the same queue with FOR UPDATE SKIP LOCKED: the second
 * neither waits for the first nor gets its jobs. */
static void test_skip_locked_two_connections(void **state)
{
    struct fresh *x = *state;
    exec_ok(x->db, "INSERT INTO jobs (type, state, priority, run_at, created_at)"
                   " SELECT 't', 'queued', 0, g, 1 FROM generate_series(1, 6) g");
    PGconn *other = connect_or_fail(x->conninfo);
    exec_ok(other, "SET lock_timeout = '2s'"); /* waiting instead of skipping would fail */
    const char *claim = "SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM jobs"
                        " WHERE state = 'queued' ORDER BY priority DESC, run_at, id LIMIT 4"
                        " FOR UPDATE SKIP LOCKED) c";
    exec_ok(x->db, "BEGIN");
    exec_ok(other, "BEGIN");
    PGresult *a = run(x->db, claim, PGRES_TUPLES_OK);
    PGresult *b = run(other, claim, PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(a, 0, 0), "1,2,3,4");
    assert_string_equal(PQgetvalue(b, 0, 0), "5,6");
    PQclear(a);
    PQclear(b);
    exec_ok(x->db, "COMMIT");
    exec_ok(other, "COMMIT");
    PQfinish(other);
}

int main(void)
{
    const char *dir = getenv("ASPEN_PG_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, "test_store_pg: ASPEN_PG_DIR is not set: run it through ctest, which "
                        "starts the PostgreSQL test server (tests/store/pg_server.sh)\n");
        return 1;
    }
    if (!read_line(dir, "conninfo", g_conninfo, sizeof g_conninfo) ||
        !read_line(dir, "conninfo-tcp", g_conninfo_tcp, sizeof g_conninfo_tcp))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_and_loopback),
        cmocka_unit_test_setup_teardown(test_schema_reads_back, fresh_setup, fresh_teardown),
        cmocka_unit_test_setup_teardown(test_constraints, fresh_setup, fresh_teardown),
        cmocka_unit_test_setup_teardown(test_payload_verbatim, fresh_setup, fresh_teardown),
        cmocka_unit_test_setup_teardown(test_skip_locked_two_connections, fresh_setup,
                                        fresh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
