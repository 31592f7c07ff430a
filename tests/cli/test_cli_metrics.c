/* test_cli_metrics.c — `aspen metrics` as a user runs it (issue 9), on SQLite and PostgreSQL: jobs
 * run by one `aspen worker --until-idle` process, which exits; a new process, `aspen metrics`,
 * shows what it finished (attempts, failures, the guest, run time percentiles) — the history
 * survives the restart; a second worker process adds its jobs to the same history; --guest and
 * --json; --retention set and shown; bad --since, --step and --retention refused with exit 2 and
 * a message saying what to write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "cli_support.h"

static void check(int status, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int status, const char *needle, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out o = run_shell(cmd);
    if (o.status != status || (needle && !has(&o, needle)))
        fail_msg("%s\nexit %d (wanted %d), wanted '%s' in:\n%s", cmd, o.status, status,
                 needle ? needle : "", o.buf);
    free(o.buf);
}

static json_t *metrics_json(const char *db, const char *extra)
{
    out o = run_plain("'%s' metrics --json %s --db '%s'", ASPEN_BIN, extra, db);
    if (o.status != 0)
        fail_msg("aspen metrics --json: exit %d: %s", o.status, o.buf);
    json_error_t je;
    json_t *v = json_loads(o.buf, 0, &je);
    if (!v)
        fail_msg("aspen metrics --json printed no JSON (%s): %s", je.text, o.buf);
    free(o.buf);
    return v;
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no integer '%s'", key);
    return json_integer_value(v);
}

static json_t *guest_row(json_t *v, const char *guest)
{
    json_t *gs = json_object_get(v, "guests"), *g;
    size_t i;
    json_array_foreach(gs, i, g) if (strcmp(json_string_value(json_object_get(g, "guest")),
                                            guest) == 0) return g;
    fail_msg("no row of guest %s", guest);
    return NULL;
}

/* One database, two worker processes one after the other, and readers in between. */
static void history_across_processes(const char *db, const char *create)
{
    check(0, NULL, "'%s' submit echo-worker --payload '{\"message\":\"m\"}' --count 12 --db '%s' %s",
          ASPEN_BIN, db, create);
    check(0, NULL, "'%s' submit test-fail --max-attempts 1 --db '%s'", ASPEN_BIN, db);
    check(0, NULL, "'%s' worker --workers 2 --until-idle --db '%s' 2>&1", ASPEN_BIN, db);

    /* the worker process is gone: a new process reads what it finished */
    json_t *v = metrics_json(db, "");
    json_t *tot = json_object_get(v, "total");
    assert_int_equal(num(tot, "finished"), 13);
    assert_int_equal(num(tot, "succeeded"), 12);
    assert_int_equal(num(tot, "failed"), 1);
    assert_int_equal(num(v, "retention_minutes"), 7 * 24 * 60);
    json_t *g = guest_row(v, "echo-worker");
    assert_int_equal(num(g, "finished"), 12);
    json_t *run_us = json_object_get(g, "run_us");
    assert_int_equal(num(run_us, "n"), 12);
    assert_true(num(run_us, "p50") > 0);
    assert_true(num(run_us, "p50") <= num(run_us, "p95"));
    assert_true(num(run_us, "p95") <= num(run_us, "p99"));
    assert_true(num(run_us, "p99") <= num(run_us, "max"));
    assert_true(num(g, "exits") >= 12);
    assert_int_equal(num(guest_row(v, "test-fail"), "failed"), 1);
    json_decref(v);

    /* the text table a person reads */
    check(0, "echo-worker", "'%s' metrics --db '%s'", ASPEN_BIN, db);
    check(0, "RUN p50", "'%s' metrics --db '%s'", ASPEN_BIN, db);
    check(0, "in windows of 1m", "'%s' metrics --since 15m --db '%s'", ASPEN_BIN, db);

    /* a second worker process adds to the same history, nothing counted twice */
    check(0, NULL, "'%s' submit echo-worker --payload '{\"message\":\"n\"}' --count 5 --db '%s'",
          ASPEN_BIN, db);
    check(0, NULL, "'%s' worker --until-idle --db '%s' 2>&1", ASPEN_BIN, db);
    v = metrics_json(db, "--guest echo-worker");
    assert_int_equal(num(json_object_get(v, "total"), "finished"), 17);
    assert_int_equal(json_array_size(json_object_get(v, "guests")), 1);
    json_decref(v);
    v = metrics_json(db, "--step 1m --since 10m");
    assert_int_equal(num(v, "step_minutes"), 1);
    assert_int_equal(json_array_size(json_object_get(v, "windows")), 10);
    assert_int_equal(num(json_object_get(v, "total"), "finished"), 18);
    json_decref(v);

    /* retention */
    check(0, "kept for 14d", "'%s' metrics --retention 14d --db '%s'", ASPEN_BIN, db);
    v = metrics_json(db, "");
    assert_int_equal(num(v, "retention_minutes"), 14 * 24 * 60);
    json_decref(v);
    check(2, "outside 1h .. 366d", "'%s' metrics --retention 30m --db '%s' 2>&1", ASPEN_BIN, db);
    check(2, "not a duration", "'%s' metrics --retention forever --db '%s' 2>&1", ASPEN_BIN, db);
    /* bad arguments */
    check(2, "under a minute", "'%s' metrics --since 30s --db '%s' 2>&1", ASPEN_BIN, db);
    check(2, "is not a duration: write one such as", "'%s' metrics --since 1x --db '%s' 2>&1", ASPEN_BIN, db);
    check(2, "whole number of minutes", "'%s' metrics --step 90s --db '%s' 2>&1", ASPEN_BIN, db);
    check(1, "larger step", "'%s' metrics --since 30d --step 1m --db '%s' 2>&1", ASPEN_BIN, db);
}

static void test_sqlite(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-cli-metrics-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[300];
    snprintf(db, sizeof db, "%s/m.db", dir);
    history_across_processes(db, "--create");
    out o = run("rm -rf '%s'", dir);
    free(o.buf);
}

static void pg_admin(const char *server, const char *sql)
{
    PGconn *c = PQconnectdb(server);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void test_postgres(void **state)
{
    (void)state;
    const char *pgdir = getenv("ASPEN_PG_DIR");
    assert_non_null(pgdir);
    char path[400], server[512] = "";
    snprintf(path, sizeof path, "%s/conninfo", pgdir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(server, sizeof server, f))
        fail_msg("no %s: run through ctest (fixture pg)", path);
    fclose(f);
    server[strcspn(server, "\n")] = 0;
    char name[64], sql[128], info[800];
    snprintf(name, sizeof name, "aspen_cli_metrics_%d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_admin(server, sql);
    snprintf(info, sizeof info, "%s dbname=%s", server, name);
    history_across_processes(info, "");
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_admin(server, sql);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sqlite),
                                       cmocka_unit_test(test_postgres)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
