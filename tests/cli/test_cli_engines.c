/* tests/cli/test_cli_engines.c — `aspen engines [--json]` of the real program: an empty database
 * lists none; a second process (`aspen worker`) on the same database is listed with its host,
 * pid, version, workers and the job and guest each busy worker runs, from its heartbeat; an engine
 * whose heartbeat stopped is marked stale; a hostile host name (terminal escapes, very long) is
 * escaped in the table and kept as data in --json; an engine that left is gone from the list.
 * And `aspen bench engine --json` names the durability it measured: SQLite's WAL on a file, a
 * PostgreSQL COMMIT on a server (it said "SQLite WAL" for both), never the conninfo's password.
 * And two `aspen worker --db postgresql://…` processes, one killed mid-job: the other rescues its
 * jobs (--lease, --recover) and everything succeeds once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include "aspen_store.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static json_t *engines_json(const char *db)
{
    out o = run_plain("'%s' engines --json --db '%s'", ASPEN_BIN, db);
    if (o.status != 0)
        fail_msg("aspen engines --json: exit %d: %s", o.status, o.buf);
    json_error_t je;
    json_t *v = json_loads(o.buf, 0, &je);
    if (!v || !json_is_array(v))
        fail_msg("aspen engines --json printed no JSON array (%s): %s", je.text, o.buf);
    free(o.buf);
    return v;
}

static json_t *engine_by_pid(json_t *arr, long long pid)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) if (json_integer_value(json_object_get(e, "pid")) == pid) return e;
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_engines(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-cli-engines-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[300];
    snprintf(db, sizeof db, "%s/a.db", dir);

    /* two sleep jobs; none registered yet: an empty list. 60 s each, cancelled once read: the
     * checks below need both running, and 3 s was a window a loaded machine could miss (an ASan
     * worker's start, then each `aspen engines` a process of its own); the timeout above them */
    out o = run_plain("'%s' submit --type sleep --payload '{\"ms\":60000}' --timeout 300000 --count 2 --db '%s' --create "
                "2>&1",
                ASPEN_BIN, db);
    assert_int_equal(o.status, 0);
    free(o.buf);
    json_t *arr = engines_json(db);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    o = run_plain("'%s' engines --db '%s'", ASPEN_BIN, db);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "no engine is registered"));
    free(o.buf);

    /* A second process runs them: its heartbeat shows both jobs on its two workers. */
    o = run_plain("'%s' worker --workers 2 --until-idle --quiet --db '%s' >'%s/worker.log' 2>&1 & "
            "echo $!",
            ASPEN_BIN, db, dir);
    long long pid = atoll(o.buf);
    free(o.buf);
    assert_true(pid > 0);
    json_t *e = NULL;
    for (int tries = 0; tries < 100; tries++) { /* up to 10 s on a loaded machine */
        arr = engines_json(db);
        e = engine_by_pid(arr, pid);
        if (e && json_integer_value(json_object_get(e, "busy")) == 2 &&
            json_array_size(json_object_get(e, "slots")) == 2)
            break;
        json_decref(arr);
        e = NULL;
        sleep_ms(100);
    }
    if (!e)
        fail_msg("the worker (pid %lld) never showed two busy workers in aspen engines", pid);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    assert_string_equal(json_string_value(json_object_get(e, "host")), host);
    assert_string_equal(json_string_value(json_object_get(e, "version")), "0.1.0");
    assert_int_equal(json_integer_value(json_object_get(e, "workers")), 2);
    /* no --queues: it serves every queue, [] (named ones on PostgreSQL below) */
    assert_true(json_is_array(json_object_get(e, "queues")));
    assert_int_equal(json_array_size(json_object_get(e, "queues")), 0);
    assert_false(json_is_true(json_object_get(e, "stale")));
    assert_true(json_is_integer(json_object_get(e, "heartbeat_ms")));
    assert_true(json_integer_value(json_object_get(e, "rss_bytes")) > 1024 * 1024);
    json_t *slots = json_object_get(e, "slots");
    long long jobs_seen = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *s = json_array_get(slots, i);
        assert_string_equal(json_string_value(json_object_get(s, "guest")), "sleep");
        jobs_seen += json_integer_value(json_object_get(s, "job"));
    }
    assert_int_equal(jobs_seen, 1 + 2); /* jobs 1 and 2 */
    json_decref(arr);

    /* The table names it too. */
    o = run_plain("'%s' engines --db '%s'", ASPEN_BIN, db);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "sleep"));
    assert_true(has(&o, "HEARTBEAT"));
    assert_true(has(&o, "(all)")); /* QUEUES: every queue */
    free(o.buf);
    /* read while running: now they go (the sleep handler stops when asked), and the worker, idle,
     * leaves (checked at the end) */
    o = run_plain("'%s' cancel 1 --db '%s' 2>&1 && '%s' cancel 2 --db '%s' 2>&1", ASPEN_BIN, db,
                  ASPEN_BIN, db);
    assert_int_equal(o.status, 0);
    free(o.buf);

    /* A hostile host that stopped beating long ago: stale, escaped in the table. */
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(db, NULL, &st, &se), 0);
    char evil[400];
    int len = snprintf(evil, sizeof evil, "evil\x1b]0;owned\x07\x1b[2J\r\nhost");
    memset(evil + len, 'x', sizeof evil - (size_t)len - 1);
    evil[sizeof evil - 1] = 0;
    int64_t id = 0;
    int64_t past = aspen_store_now_ms() - 60000;
    assert_int_equal(aspen_store_engine_register(st, 31337, evil, 3600000, past, &id, &se), 0);
    aspen_store_engine_figures fig = {.workers = 1, .version = "0.1.0"};
    assert_int_equal(aspen_store_engine_heartbeat(st, id, 3600000, &fig, past, &se), 0);
    aspen_store_close(st);
    arr = engines_json(db);
    e = engine_by_pid(arr, 31337);
    assert_non_null(e);
    assert_true(json_is_true(json_object_get(e, "stale")));
    assert_memory_equal(json_string_value(json_object_get(e, "host")), "evil\x1b]0;", 7);
    json_decref(arr);
    o = run_plain("'%s' engines --db '%s'", ASPEN_BIN, db);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "STALE"));
    assert_null(memchr(o.buf, 0x1b, o.len)); /* no raw escape reaches the terminal */
    assert_null(memchr(o.buf, '\r', o.len));
    free(o.buf);

    /* The worker finishes and leaves: it is no longer listed. */
    bool gone = false;
    for (int tries = 0; tries < 300 && !gone; tries++) { /* 30 s and more */
        arr = engines_json(db);
        gone = engine_by_pid(arr, pid) == NULL;
        json_decref(arr);
        if (!gone)
            sleep_ms(100);
    }
    assert_true(gone);
    o = run_plain("rm -rf '%s'", dir);
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

static json_t *bench_json(const char *db)
{
    out o = run_plain("'%s' bench engine --jobs 20 --workers 1 --json --db '%s' 2>/dev/null", ASPEN_BIN,
                db);
    if (o.status != 0)
        fail_msg("aspen bench engine on %s: exit %d: %s", db, o.status, o.buf);
    json_error_t je;
    json_t *v = json_loads(o.buf, 0, &je);
    if (!v)
        fail_msg("aspen bench engine --json printed no JSON (%s): %s", je.text, o.buf);
    assert_null(strstr(o.buf, "sekret"));
    free(o.buf);
    return v;
}

/* Two workers serving long queue names that differ only at the end: at 80 columns the QUEUES
 * column keeps both ends (bulk-rep...ce.2027 / ...ce.2028) and says what it cut, as aspen queues
 * does (trial 24: both read bulk-reports-ni... with no note). */
static void test_engines_long_queue_names(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-cli-engq.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[300];
    snprintf(db, sizeof db, "%s/a.db", dir);
    const char *q[2] = {"bulk-reports-nightly-finance.2027", "bulk-reports-nightly-finance.2028"};
    long long pid[2];
    for (int i = 0; i < 2; i++) {
        out o = run_plain("'%s' queue set %s --limit 2 --db '%s' %s 2>&1", ASPEN_BIN, q[i], db,
                          i == 0 ? "--create" : "");
        if (o.status != 0)
            fail_msg("queue set %s: %s", q[i], o.buf);
        free(o.buf);
        o = run_plain("'%s' worker --workers 1 --quiet --queues %s --db '%s' >/dev/null 2>&1 & "
                      "echo $!",
                      ASPEN_BIN, q[i], db);
        pid[i] = atoll(o.buf);
        free(o.buf);
        assert_true(pid[i] > 0);
    }
    out o = {0};
    for (int tries = 0; tries < 100; tries++) { /* both heartbeats in, up to 10 s */
        json_t *arr = engines_json(db);
        bool both = engine_by_pid(arr, pid[0]) && engine_by_pid(arr, pid[1]) &&
                    json_array_size(json_object_get(engine_by_pid(arr, pid[0]), "queues")) == 1 &&
                    json_array_size(json_object_get(engine_by_pid(arr, pid[1]), "queues")) == 1;
        json_decref(arr);
        if (both)
            break;
        sleep_ms(100);
    }
    o = run_plain("COLUMNS=80 '%s' engines --db '%s' 2>&1", ASPEN_BIN, db);
    for (int i = 0; i < 2; i++)
        kill((pid_t)pid[i], SIGTERM);
    assert_int_equal(o.status, 0);
    if (!has(&o, "ce.2027") || !has(&o, "ce.2028") ||
        !has(&o, "2 queue names cut to fit 80 columns, keeping both ends: --wide shows them whole"))
        fail_msg("aspen engines at 80 columns:\n%s", o.buf);
    free(o.buf);
}

static void test_bench_durability(void **state)
{
    (void)state;
    char dir[] = "/tmp/aspen-cli-bench-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[300];
    snprintf(db, sizeof db, "%s/b.db", dir);
    json_t *v = bench_json(db);
    assert_string_equal(json_string_value(json_object_get(v, "durability")),
                        "SQLite WAL, synchronous=NORMAL");
    json_decref(v);

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
    snprintf(name, sizeof name, "aspen_cli_bench_%d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_admin(server, sql);
    snprintf(info, sizeof info, "%s dbname=%s password=sekret", server, name);
    v = bench_json(info);
    const char *d = json_string_value(json_object_get(v, "durability"));
    assert_non_null(d);
    assert_non_null(strstr(d, "PostgreSQL COMMIT"));
    assert_null(strstr(d, "SQLite"));
    assert_non_null(strstr(json_string_value(json_object_get(v, "db")), "password=***"));
    json_decref(v);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_admin(server, sql);
    out o = run_plain("rm -rf '%s'", dir);
    free(o.buf);
}

/* `aspen worker --db postgresql://…` on two "hosts": A takes two long jobs and is killed with
 * SIGKILL; B, started after, rescues them within its short lease and recovery period and runs
 * everything; the lost attempts are recorded as recovered and nothing is completed twice. */
static void test_pg_workers_end_to_end(void **state)
{
    (void)state;
    const char *pgdir = getenv("ASPEN_PG_DIR");
    assert_non_null(pgdir);
    char path[400], tcp[512] = "", server[512] = "";
    snprintf(path, sizeof path, "%s/conninfo", pgdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(server, sizeof server, f));
    fclose(f);
    server[strcspn(server, "\n")] = 0;
    snprintf(path, sizeof path, "%s/conninfo-tcp", pgdir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(tcp, sizeof tcp, f));
    fclose(f);
    const char *pp = strstr(tcp, "port=");
    assert_non_null(pp);
    int port = atoi(pp + 5);
    char name[64], sql[128], uri[256];
    snprintf(name, sizeof name, "aspen_cli_hosts_%d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_admin(server, sql);
    snprintf(uri, sizeof uri, "postgresql://aspen@127.0.0.1:%d/%s", port, name);
    char dir[] = "/tmp/aspen-cli-pgw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* 10 s sleeps: A must be seen running both, then killed before either ends (4 s was a window
     * an ASan worker's start and an `aspen engines` process each could eat on a loaded machine);
     * a timeout far above them: the sleep handler counts 5 ms steps, and under load 10 s of them
     * took over the default 30 s */
    out o = run_plain("'%s' submit --type sleep --payload '{\"ms\":10000}' --timeout 300000 --count 2 --db '%s' 2>&1 && "
                "'%s' submit --type echo --count 6 --db '%s' 2>&1",
                ASPEN_BIN, uri, ASPEN_BIN, uri);
    if (o.status != 0)
        fail_msg("submit on %s: %s", uri, o.buf);
    free(o.buf);
    /* --queues default (the queue the jobs are on): the heartbeat says so on PostgreSQL too */
    o = run_plain("'%s' worker --workers 2 --lease 1500 --recover 300 --quiet --queues default "
            "--db '%s' >'%s/a.log' 2>&1 & echo $!",
            ASPEN_BIN, uri, dir);
    long long a = atoll(o.buf);
    free(o.buf);
    json_t *e = NULL, *arr = NULL;
    for (int tries = 0; tries < 100 && !e; tries++) {
        arr = engines_json(uri);
        e = engine_by_pid(arr, a);
        if (!e || json_integer_value(json_object_get(e, "busy")) != 2 ||
            json_integer_value(json_object_get(json_array_get(json_object_get(e, "slots"), 0),
                                               "job")) > 2) {
            e = NULL;
            json_decref(arr);
            sleep_ms(100);
        }
    }
    if (!e)
        fail_msg("worker A (pid %lld) never ran the two sleep jobs", a);
    json_t *served = json_object_get(e, "queues");
    assert_int_equal(json_array_size(served), 1);
    assert_string_equal(json_string_value(json_array_get(served, 0)), "default");
    json_decref(arr);
    /* A dies with both sleep jobs running; B finds them once A's 1.5 s lease is over. */
    kill((pid_t)a, SIGKILL);
    o = run_plain("wait %lld 2>/dev/null; '%s' worker --workers 2 --lease 1500 --recover 300 "
            "--until-idle --db '%s' 2>&1",
            a, ASPEN_BIN, uri);
    if (o.status != 0)
        fail_msg("worker B: exit %d: %s", o.status, o.buf);
    assert_true(has(&o, "recovery"));
    free(o.buf);
    o = run_plain("'%s' jobs --json --limit 100 --db '%s' 2>&1", ASPEN_BIN, uri);
    json_error_t je;
    json_t *jobs = json_loads(o.buf, 0, &je);
    if (!jobs)
        fail_msg("aspen jobs --json: %s", o.buf);
    free(o.buf);
    assert_int_equal(json_array_size(jobs), 8);
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
        long long id = json_integer_value(json_object_get(j, "id"));
        long long tries = json_integer_value(json_object_get(j, "attempts"));
        assert_int_equal(tries, id <= 2 ? 2 : 1); /* the two A lost ran again, once */
    }
    json_decref(jobs);
    o = run_plain("'%s' show 1 --json --db '%s' 2>&1", ASPEN_BIN, uri);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "recovered"));
    free(o.buf);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_admin(server, sql);
    o = run_plain("rm -rf '%s'", dir);
    free(o.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_engines),
                                       cmocka_unit_test(test_engines_long_queue_names),
                                       cmocka_unit_test(test_bench_durability),
                                       cmocka_unit_test(test_pg_workers_end_to_end)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
