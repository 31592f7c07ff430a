/* test_engine_pg_wake.c — an idle engine on PostgreSQL picks up a job submitted by another
 * process within milliseconds: the store's NOTIFY aspen_jobs wakes the engine's waiter
 * (engine/listen.c), not its poll. The engine's data-version poll is set to a minute here, so
 * only the announcement (or the once-a-second claim for scheduled jobs) can wake it; the test
 * checks that every pickup was announced (throughput.notify_wakes), that each came well inside
 * that second, and prints the latencies (a job's started_at − created_at, both stamped by the
 * store on the server's timeline). Against the private server of tests/store (fixture "pg"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "aspen_engine.h"
#include "engine_internal.h" /* the derived build-cache directory */

#define TEST_TMP_PREFIX "aspen-engine-pg"
#include "test_support.h"

static char conninfo[700], dbname[64], server[512];

static void admin(const char *sql)
{
    PGconn *c = PQconnectdb(server);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int pg_setup(void **state)
{
    if (setup(state))
        return -1;
    const char *dir = getenv("ASPEN_PG_DIR");
    char path[400];
    snprintf(path, sizeof path, "%s/conninfo", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f || !fgets(server, sizeof server, f))
        fail_msg("no %s: run through ctest (the pg_server_start fixture starts the server)", path);
    fclose(f);
    server[strcspn(server, "\n")] = '\0';
    snprintf(dbname, sizeof dbname, "aspen_wake_%d", (int)getpid());
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    admin(sql);
    snprintf(conninfo, sizeof conninfo, "%s dbname=%s", server, dbname);
    return 0;
}

static int pg_teardown(void **state)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    admin(sql);
    return teardown(state);
}

static void test_idle_engine_woken_by_notify(void **state)
{
    (void)state;
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = conninfo;
    cfg.workers = 1;
    cfg.idle_poll_ms = 60000; /* the data-version poll would take a minute */
    char cache[320];
    snprintf(cache, sizeof cache, "%s/cache", g_dir);
    cfg.cache_dir = cache;
    aspen_engine *eng = open_cfg(&cfg);
    start(eng);
    /* Another host submits. */
    aspen_store *other = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(conninfo, NULL, &other, &se) != 0)
        fail_msg("open: %s", se.msg);
    enum { TRIES = 5 };
    int64_t lat[TRIES];
    aspen_engine_snapshot snap;
    for (int i = 0; i < TRIES; i++) {
        sleep_ms(300); /* idle: its claim of nothing is long done */
        aspen_engine_snapshot_live(eng, &snap);
        uint64_t wakes = snap.throughput.notify_wakes;
        aspen_store_job_spec spec = {.type = "echo", .payload = "{\"i\":1}"};
        int64_t id = 0;
        if (aspen_store_submit(other, &spec, aspen_store_now_ms(), &id, &se) != 0)
            fail_msg("submit: %s", se.msg);
        aspen_store_job j = {0};
        int64_t until = now_ms() + 10000;
        for (;;) {
            assert_int_equal(aspen_store_get(other, id, &j, &se), 0);
            if (j.state == ASPEN_STORE_SUCCEEDED || now_ms() > until)
                break;
            aspen_store_job_clear(&j);
            sleep_ms(1);
        }
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        lat[i] = j.started_at_ms - j.created_at_ms;
        aspen_store_job_clear(&j);
        aspen_engine_snapshot_live(eng, &snap);
        assert_true(snap.throughput.notify_wakes > wakes); /* the announcement woke it */
    }
    int64_t worst = 0, sum = 0;
    for (int i = 0; i < TRIES; i++) {
        sum += lat[i];
        worst = lat[i] > worst ? lat[i] : worst;
    }
    print_message("idle engine on PostgreSQL: submit to start %lld ms on average, %lld ms at "
                  "worst (%d jobs; %lld %lld %lld %lld %lld)\n",
                  (long long)(sum / TRIES), (long long)worst, TRIES, (long long)lat[0],
                  (long long)lat[1], (long long)lat[2], (long long)lat[3], (long long)lat[4]);
    /* Without the announcement it would wait for the once-a-second claim (up to 1000 ms) or the
     * one-minute poll. */
    assert_true(worst < 500);
    aspen_store_close(other);
    aspen_engine_close(eng);
}

/* A connection string has no directory: the build cache goes under $XDG_CACHE_HOME by a hash of
 * the name with its password redacted (it was "DIR_OF_DB/build-cache" cut at the last '/' of the
 * string: a strange relative path, e.g. from a unix-socket host=/tmp/x). */
static void test_build_cache_dir_of_a_conninfo(void **state)
{
    (void)state;
    char xdg[400], with_pw[800], other_pw[800];
    snprintf(xdg, sizeof xdg, "%s/xdg", g_dir);
    setenv("XDG_CACHE_HOME", xdg, 1);
    snprintf(with_pw, sizeof with_pw, "%s password=sekret-one", conninfo);
    snprintf(other_pw, sizeof other_pw, "%s password=sekret-two", conninfo);
    char dirs[2][4096];
    const char *names[2] = {with_pw, other_pw};
    for (int i = 0; i < 2; i++) {
        aspen_engine_config cfg;
        aspen_engine_config_default(&cfg);
        cfg.db_path = names[i];
        cfg.workers = 0;
        aspen_engine *eng = open_cfg(&cfg);
        snprintf(dirs[i], sizeof dirs[i], "%s", eng->cache_dir);
        aspen_engine_close(eng);
    }
    char want[500];
    snprintf(want, sizeof want, "%s/aspen/build-cache-pg-", xdg);
    if (strncmp(dirs[0], want, strlen(want)) != 0 || strlen(dirs[0]) != strlen(want) + 16)
        fail_msg("build cache of %s is %s, want %sHASH", conninfo, dirs[0], want);
    assert_null(strstr(dirs[0], "sekret"));
    assert_string_equal(dirs[0], dirs[1]); /* the same database: the same cache */
    unsetenv("XDG_CACHE_HOME");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_engine_woken_by_notify, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_build_cache_dir_of_a_conninfo, pg_setup, pg_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
