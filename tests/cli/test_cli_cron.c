/* tests/cli/test_cli_cron.c — `aspen cron` of the real program, on SQLite and on PostgreSQL:
 * the documented errors (a field out of range, an unknown zone, a bad name, a taken name, an
 * unknown subcommand with "did you mean"); `@every 1s` with three `aspen worker` processes on one
 * database enqueues exactly one job per second for ten seconds (checked from the occurrence keys
 * and the jobs in the store: consecutive seconds, one key and one job each), also when the lease
 * holder is killed with SIGKILL (another takes over, nothing lost or doubled); and a schedule
 * missed while every engine was down follows its policy when one comes back (skip: nothing of
 * the downtime older than the grace; once: exactly one job for all of it, keyed by the first
 * missed occurrence); a schedule's zone: localtime and '' refused, and one whose zone file went
 * missing is "broken" in cron list and --json, with why and no next run (test_zone_gone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct db {
    char dir[64];
    char name[900]; /* an SQLite path or a conninfo */
    char pg_db[64];
    char server[512];
};

static void pg_admin(const char *server, const char *sql)
{
    PGconn *c = PQconnectdb(server);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting to the test server: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static void db_open(struct db *d, bool pg)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/aspen-cli-cron-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    if (!pg) {
        snprintf(d->name, sizeof d->name, "%s/a.db", d->dir);
        return;
    }
    cli_pg_server(d->server, sizeof d->server);
    static int seq;
    snprintf(d->pg_db, sizeof d->pg_db, "aspen_cli_cron_%d_%d", (int)getpid(), seq++);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", d->pg_db);
    pg_admin(d->server, sql);
    snprintf(d->name, sizeof d->name, "%s dbname=%s", d->server, d->pg_db);
}

static void db_close(struct db *d)
{
    if (d->pg_db[0]) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", d->pg_db);
        pg_admin(d->server, sql);
    }
    out o = run_plain("rm -rf '%s'", d->dir);
    free(o.buf);
}

static json_t *json_of(const char *what, out o)
{
    if (o.status != 0)
        fail_msg("%s: exit %d: %s", what, o.status, o.buf);
    json_error_t je;
    json_t *v = json_loads(o.buf, 0, &je);
    if (!v)
        fail_msg("%s printed no JSON (%s): %s", what, je.text, o.buf);
    free(o.buf);
    return v;
}

static json_t *runs_of(const struct db *d, const char *name)
{
    return json_of("aspen cron runs --json",
                   run_plain("'%s' cron runs %s --json --db '%s'", ASPEN_BIN, name, d->name));
}

static json_t *schedule_of(const struct db *d, const char *name)
{
    json_t *arr = json_of("aspen cron list --json",
                          run_plain("'%s' cron list --json --db '%s'", ASPEN_BIN, d->name));
    size_t i;
    json_t *e, *found = NULL;
    json_array_foreach(arr, i, e) if (strcmp(json_string_value(json_object_get(e, "name")), name) ==
                                      0) found = json_incref(e);
    json_decref(arr);
    if (!found)
        fail_msg("schedule %s is not in aspen cron list", name);
    return found;
}

static long long start_worker(const struct db *d, int i)
{
    out o = run_plain("'%s' worker --workers 1 --quiet --db '%s' >'%s/worker%d.log' 2>&1 & echo $!",
                ASPEN_BIN, d->name, d->dir, i);
    long long pid = atoll(o.buf);
    free(o.buf);
    assert_true(pid > 0);
    return pid;
}

static void stop_worker(long long pid)
{
    kill((pid_t)pid, SIGINT);
    /* 30 s: a worker under ASan on a loaded machine may take seconds to stop and exit */
    for (int i = 0; i < 600 && kill((pid_t)pid, 0) == 0; i++)
        sleep_ms(50);
    if (kill((pid_t)pid, 0) == 0)
        fail_msg("aspen worker %lld did not stop within 30 s of SIGINT", pid);
}

static void cron_errors(bool pg)
{
    struct db d;
    db_open(&d, pg);
    struct {
        const char *args, *want;
        int status; /* 2: a usage error (a bad argument), said before the database opens */
    } cases[] = {
        {"add a '0 0 32 * *' --type echo", "day-of-month 32 is out of range 1-31", 2},
        {"add a '61 * * * *' --type echo", "minute 61 is out of range 0-59", 2},
        {"add a '* * * * * *' --type echo", "expected 5 fields", 2},
        {"add a '0 9 * * FUN' --type echo", "day-of-week FUN is not a day of the week", 2},
        /* the range says 0-7 as docs/SCHEDULES.md does, since 7 is taken for Sunday (trial 10:
         * it said 0-6) */
        {"add a '0 9 * * 8' --type echo", "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)", 2},
        /* a zone a letter off gets the one meant, from the zoneinfo files (trial 10) */
        {"add a '@daily' --type echo --tz Europe/Pari", "did you mean Europe/Paris?", 2},
        {"add a '@every 0s' --type echo", "@every duration must be at least 1s", 2},
        {"add a '@daily' --type echo --tz Europe/Berln", "time zone \"Europe/Berln\" is not in", 2},
        {"add 'a b' '@daily' --type echo", "schedule name \"a b\" is not allowed", 0},
        {"add a '@daily' --type echo --missed sometimes", "--missed is skip or once", 2},
        {"add a '@daily' --type echo --grace soon", "--grace: 'soon' is not a duration", 2},
        {"add a '@daily' --type echo --queue 'bad name!'", "queue name \"bad name!\" is not valid", 0},
        {"add a '@daily'", "say what each run runs", 0},
        {"add a '@daily' no-such-guest", "no-such-guest", 0},
        {"lst", "unknown cron command 'lst': did you mean list?", 0},
        {"rm nothing", "no schedule named \"nothing\"", 0},
    };
    out o = run_plain("'%s' cron list --db '%s' --create 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "no schedules"));
    free(o.buf);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o = run_plain("'%s' cron %s --db '%s' 2>&1", ASPEN_BIN, cases[i].args, d.name);
        if (o.status == 0 || !has(&o, cases[i].want) ||
            (cases[i].status && o.status != cases[i].status))
            fail_msg("aspen cron %s: exit %d, wanted \"%s\" in: %s", cases[i].args, o.status,
                     cases[i].want, o.buf);
        free(o.buf);
    }
    o = run_plain("'%s' cron add a '@daily' --type echo --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    assert_true(has(&o, "schedule a added; next run"));
    free(o.buf);
    o = run_plain("'%s' cron add a '@hourly' --type echo --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 1);
    assert_true(has(&o, "a schedule named \"a\" already exists"));
    free(o.buf);
    o = run_plain("'%s' cron add a '@hourly' --type echo --replace --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    json_t *sc = schedule_of(&d, "a");
    assert_string_equal(json_string_value(json_object_get(sc, "expr")), "@hourly");
    json_decref(sc);

    /* --queue: the submit's rule. A mistyped queue is refused with a did-you-mean and makes
     * neither the schedule nor the queue; --create-queue makes both; a queue that exists (declared,
     * or now holding the schedule's) is taken as it is. */
    o = run_plain("'%s' queue set emails --limit 2 --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    o = run_plain("'%s' cron add mail '@daily' --type echo --queue emials --db '%s' 2>&1", ASPEN_BIN,
                  d.name);
    if (o.status != 1 || !has(&o, "error: --queue: no queue named emials (did you mean emails?)") ||
        !has(&o, "add --create-queue to make it by this schedule"))
        fail_msg("cron add --queue emials: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron list --json --db '%s'", ASPEN_BIN, d.name);
    assert_false(has(&o, "\"mail\"")); /* no schedule */
    free(o.buf);
    o = run_plain("'%s' queues --json --db '%s'", ASPEN_BIN, d.name);
    assert_false(has(&o, "emials")); /* no queue */
    free(o.buf);
    o = run_plain("'%s' cron add mail '@daily' --type echo --queue emails --db '%s' 2>&1", ASPEN_BIN,
                  d.name);
    assert_int_equal(o.status, 0); /* declared */
    free(o.buf);
    o = run_plain("'%s' cron add nightly '@daily' --type echo --queue reports --db '%s' 2>&1",
                  ASPEN_BIN, d.name);
    assert_int_equal(o.status, 1);
    assert_true(has(&o, "no queue named reports"));
    free(o.buf);
    o = run_plain("'%s' cron add nightly '@daily' --type echo --queue reports --create-queue"
                  " --db '%s' 2>&1",
                  ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    sc = schedule_of(&d, "nightly");
    assert_string_equal(json_string_value(json_object_get(sc, "queue")), "reports");
    json_decref(sc);
    o = run_plain("'%s' cron add plain '@daily' --type echo --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    sc = schedule_of(&d, "plain"); /* no --queue: default, as the table says (it was null) */
    assert_string_equal(json_string_value(json_object_get(sc, "queue")), "default");
    json_decref(sc);
    /* made now, not at the first run: listed, and the next schedule's --queue finds it */
    o = run_plain("'%s' queues --json --db '%s'", ASPEN_BIN, d.name);
    assert_true(has(&o, "\"reports\""));
    free(o.buf);
    o = run_plain("'%s' cron add weekly '@weekly' --type echo --queue reports --db '%s' 2>&1",
                  ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    /* the table names each schedule's queue (trial 10: only --json did) */
    o = run_plain("'%s' cron list --wide --db '%s' 2>&1", ASPEN_BIN, d.name);
    {
        const char *row = strstr(o.buf, "\nweekly ");
        const char *row_a = strstr(o.buf, "\na ");
        if (!has(&o, " QUEUE ") || !row || !strstr(row, " reports ") || !row_a ||
            !strstr(row_a, " default "))
            fail_msg("aspen cron list without the schedules' queues:\n%s", o.buf);
    }
    free(o.buf);
    /* 7 is Sunday: the next run of '0 9 * * 7' is a Sunday at 09:00 UTC */
    o = run_plain("'%s' cron add sunday '0 9 * * 7' --type echo --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    sc = schedule_of(&d, "sunday");
    {
        time_t next = (time_t)(json_integer_value(json_object_get(sc, "next_run_ms")) / 1000);
        struct tm tm;
        gmtime_r(&next, &tm);
        assert_int_equal(tm.tm_wday, 0);
        assert_int_equal(tm.tm_hour, 9);
    }
    json_decref(sc);
    /* a second pause (or resume) changes nothing and says so, with the command that would */
    o = run_plain("'%s' cron pause sunday --db '%s' 2>&1", ASPEN_BIN, d.name);
    if (o.status != 0 || !has(&o, "schedule sunday paused"))
        fail_msg("cron pause: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron pause sunday --db '%s' 2>&1", ASPEN_BIN, d.name);
    if (o.status != 0 ||
        !has(&o, "schedule sunday was already paused: nothing changed (aspen cron resume sunday"))
        fail_msg("second cron pause: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron resume sunday --db '%s' 2>&1", ASPEN_BIN, d.name);
    if (o.status != 0 || !has(&o, "schedule sunday resumed"))
        fail_msg("cron resume: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron resume sunday --db '%s' 2>&1", ASPEN_BIN, d.name);
    if (o.status != 0 ||
        !has(&o, "schedule sunday was already active: nothing changed (aspen cron pause sunday"))
        fail_msg("second cron resume: exit %d: %s", o.status, o.buf);
    free(o.buf);
    /* cron run: the new job's id; again while it waits (no worker runs): the same id on stdout,
     * why no other on stderr, exit 0, as a duplicate submit (issue 10) */
    o = run_plain("'%s' cron run sunday --db '%s' 2>'%s/run1.err'", ASPEN_BIN, d.name, d.dir);
    assert_int_equal(o.status, 0);
    long long first = atoll(o.buf);
    assert_true(first > 0);
    free(o.buf);
    o = run_plain("cat '%s/run1.err'", d.dir);
    assert_string_equal(o.buf, "");
    free(o.buf);
    o = run_plain("'%s' cron run sunday --db '%s' 2>'%s/run2.err'", ASPEN_BIN, d.name, d.dir);
    assert_int_equal(o.status, 0);
    assert_int_equal(atoll(o.buf), first);
    free(o.buf);
    o = run_plain("cat '%s/run2.err'", d.dir);
    char want[200];
    snprintf(want, sizeof want, "schedule sunday: its job %lld (queued, enqueued ", first);
    if (!has(&o, want) || !has(&o, "has not finished; not running another (aspen cancel"))
        fail_msg("second cron run said: %s", o.buf);
    free(o.buf);
    db_close(&d);
}

/* A schedule's zone is one thing on every host: --tz localtime (each host's own clock) and --tz ''
 * (read as UTC, silently) are refused (trial 10). And a schedule whose zone file went missing
 * after it was added (here: a private TZDIR with Europe/Berlin, then without it) is "broken" in
 * cron list and --json as in the console, with the reason and no next run — it was "active"
 * with its next run printed at +00:00. An @every schedule reads no zone and stays active. */
static void zone_gone(void)
{
    struct db d;
    db_open(&d, false);
    out o = run_plain("'%s' cron add a '@daily' --type echo --tz localtime --db '%s' --create 2>&1",
                      ASPEN_BIN, d.name);
    if (o.status != 2 || !has(&o, "time zone \"localtime\" is this host's own setting, not a "
                                  "zone: engines on hosts set differently would disagree"))
        fail_msg("cron add --tz localtime: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron add a '@daily' --type echo --tz '' --db '%s' --create 2>&1", ASPEN_BIN,
                  d.name);
    if (o.status != 2 || !has(&o, "time zone \"\" is empty"))
        fail_msg("cron add --tz '': exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("mkdir -p '%s/zi/Europe' && cp /usr/share/zoneinfo/Europe/Berlin '%s/zi/Europe/'",
                  d.dir, d.dir);
    assert_int_equal(o.status, 0);
    free(o.buf);
    o = run_plain("TZDIR='%s/zi' '%s' cron add berlin '0 9 * * *' --type echo --tz Europe/Berlin"
                  " --db '%s' --create 2>&1",
                  d.dir, ASPEN_BIN, d.name);
    if (o.status != 0 || !has(&o, "schedule berlin added; next run"))
        fail_msg("cron add --tz Europe/Berlin: exit %d: %s", o.status, o.buf);
    free(o.buf);
    o = run_plain("'%s' cron add hourly '@every 1h' --type echo --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    o = run_plain("TZDIR='%s/zi' '%s' cron list --db '%s' 2>&1", d.dir, ASPEN_BIN, d.name);
    {
        const char *row = strstr(o.buf, "\nberlin ");
        if (o.status != 0 || !row || !strstr(row, " active ") || has(&o, "broken"))
            fail_msg("cron list with the zone present: exit %d:\n%s", o.status, o.buf);
    }
    free(o.buf);
    o = run_plain("rm '%s/zi/Europe/Berlin'", d.dir);
    assert_int_equal(o.status, 0);
    free(o.buf);
    o = run_plain("TZDIR='%s/zi' '%s' cron list --db '%s' 2>&1", d.dir, ASPEN_BIN, d.name);
    {
        const char *row = strstr(o.buf, "\nberlin ");
        const char *row_h = strstr(o.buf, "\nhourly ");
        const char *eol = row ? strchr(row + 1, '\n') : NULL;
        if (o.status != 0 || !row || !eol || !strstr(row, " broken ") ||
            !strstr(row, " none (see below) ") || (size_t)(strstr(row, " broken ") - row) >
                                                        (size_t)(eol - row) ||
            !has(&o, "  ! berlin: time zone \"Europe/Berlin\" is not in the time zone database") ||
            !has(&o, "no run is computed until its zone loads again") || !row_h ||
            !strstr(row_h, " active "))
            fail_msg("cron list with the zone gone: exit %d:\n%s", o.status, o.buf);
    }
    free(o.buf);
    json_t *arr = json_of("aspen cron list --json",
                          run_plain("TZDIR='%s/zi' '%s' cron list --json --db '%s'", d.dir,
                                    ASPEN_BIN, d.name));
    size_t i;
    json_t *e;
    bool seen = false;
    json_array_foreach(arr, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *st = json_string_value(json_object_get(e, "state"));
        if (strcmp(name, "berlin") == 0) {
            const char *why = json_string_value(json_object_get(e, "error"));
            assert_string_equal(st, "broken");
            assert_true(json_is_null(json_object_get(e, "next_run_ms")));
            assert_non_null(why);
            assert_non_null(strstr(why, "Europe/Berlin"));
            seen = true;
        } else {
            assert_string_equal(st, "active");
            assert_true(json_is_integer(json_object_get(e, "next_run_ms")));
        }
    }
    assert_true(seen);
    json_decref(arr);
    db_close(&d);
}

static void test_zone_gone(void **state) { (void)state, zone_gone(); }

static void test_errors(void **state) { (void)state, cron_errors(false); }
static void test_errors_pg(void **state) { (void)state, cron_errors(true); }

/* Three engines, one schedule @every 1s, ten seconds: one job per second. */
static void every_second(bool pg)
{
    struct db d;
    db_open(&d, pg);
    out o = run_plain("'%s' cron add tick '@every 1s' --type echo --payload '{\"t\":1}' --queue ticks "
                "--create-queue --db '%s' --create 2>&1",
                ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    long long pids[3];
    for (int i = 0; i < 3; i++)
        pids[i] = start_worker(&d, i);
    /* wait for the first occurrence, then for ten more seconds of them */
    int64_t first = 0;
    for (int i = 0; i < 300 && !first; i++) {
        json_t *runs = runs_of(&d, "tick");
        if (json_array_size(runs))
            first = json_integer_value(json_object_get(json_array_get(runs, 0), "occurrence_ms"));
        json_decref(runs);
        if (!first)
            sleep_ms(100);
    }
    if (!first)
        fail_msg("no occurrence enqueued within 30 s of starting three workers");
    int64_t want_last = first + 10000;
    for (int i = 0; i < 600; i++) {
        json_t *runs = runs_of(&d, "tick");
        size_t n = json_array_size(runs);
        int64_t last =
            n ? json_integer_value(json_object_get(json_array_get(runs, n - 1), "occurrence_ms"))
              : 0;
        json_decref(runs);
        if (last >= want_last)
            break;
        sleep_ms(100);
    }
    o = run_plain("'%s' cron pause tick --db '%s' 2>&1", ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    /* a paused schedule has no next run, in the table and in --json alike (the console's rule:
     * aspen_store_schedule_next_due); the table used to show the stored occurrence it skips */
    o = run_plain("'%s' cron list --db '%s' 2>&1", ASPEN_BIN, d.name);
    {
        const char *row = strstr(o.buf, "\ntick ");
        if (!row || !strstr(row, " paused - "))
            fail_msg("a paused schedule's NEXT RUN is not '-':\n%s", o.buf);
    }
    free(o.buf);
    o = run_plain("'%s' cron list --json --db '%s' 2>&1", ASPEN_BIN, d.name);
    {
        json_t *l = json_loads(o.buf, 0, NULL);
        assert_non_null(l);
        assert_true(json_is_null(json_object_get(json_array_get(l, 0), "next_run_ms")));
        assert_true(json_is_true(json_object_get(json_array_get(l, 0), "paused")));
        json_decref(l);
    }
    free(o.buf);
    json_t *runs = runs_of(&d, "tick");
    size_t n = json_array_size(runs);
    assert_true(n >= 11);
    json_t *jobs = json_object();
    int64_t in_window = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        int64_t occ = json_integer_value(json_object_get(r, "occurrence_ms"));
        assert_false(json_is_true(json_object_get(r, "manual")));
        /* consecutive seconds: none skipped, none twice */
        assert_int_equal(occ, first + 1000 * (int64_t)i);
        assert_int_equal(occ % 1000, 0);
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(r, "job")));
        assert_true(json_integer_value(json_object_get(r, "job")) > 0);
        assert_null(json_object_get(jobs, key)); /* a job of its own */
        json_object_set_new(jobs, key, json_true());
        if (occ >= first && occ < first + 10000)
            in_window++;
    }
    assert_int_equal(in_window, 10);
    /* the store holds exactly those jobs, tagged with the schedule, in its queue */
    json_t *listed = json_of("aspen jobs --json",
                             run_plain("'%s' jobs --filter 'tag:cron:tick queue:ticks' --json --limit 1000"
                                 " --db '%s'",
                                 ASPEN_BIN, d.name));
    assert_int_equal(json_array_size(listed), n);
    size_t i;
    json_t *j;
    json_array_foreach(listed, i, j)
    {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(j, "id")));
        assert_non_null(json_object_get(jobs, key));
    }
    json_decref(listed);
    json_decref(jobs);
    json_decref(runs);
    /* whoever enqueued, the others stood by: one lease holder at a time */
    for (int k = 0; k < 3; k++)
        stop_worker(pids[k]);
    db_close(&d);
}

/* The lease holder is killed with SIGKILL: another engine takes over once its lease lapses (5 s)
 * and enqueues what came meanwhile (within the grace), so the seconds stay consecutive, each once,
 * and the keys after the kill name another engine. */
static void takeover(bool pg)
{
    struct db d;
    db_open(&d, pg);
    out o = run("'%s' cron add tick '@every 1s' --type echo --db '%s' --create 2>&1", ASPEN_BIN,
                d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    long long pids[3];
    for (int i = 0; i < 3; i++)
        pids[i] = start_worker(&d, i);
    int64_t holder = 0;
    for (int i = 0; i < 300 && !holder; i++) {
        json_t *runs = runs_of(&d, "tick");
        if (json_array_size(runs) >= 2)
            holder = json_integer_value(json_object_get(json_array_get(runs, 0), "engine"));
        json_decref(runs);
        if (!holder)
            sleep_ms(100);
    }
    if (!holder)
        fail_msg("nothing enqueued within 30 s of starting three workers");
    json_t *engines = json_of("aspen engines --json",
                              run("'%s' engines --json --db '%s'", ASPEN_BIN, d.name));
    long long victim = 0;
    size_t i;
    json_t *e;
    json_array_foreach(engines, i, e) if (json_integer_value(json_object_get(e, "id")) == holder)
        victim = json_integer_value(json_object_get(e, "pid"));
    json_decref(engines);
    assert_true(victim > 0);
    kill((pid_t)victim, SIGKILL);
    int64_t killed = now_ms();
    for (int k = 0; k < 600; k++) {
        json_t *runs = runs_of(&d, "tick");
        size_t n = json_array_size(runs);
        int64_t last =
            n ? json_integer_value(json_object_get(json_array_get(runs, n - 1), "occurrence_ms"))
              : 0;
        json_decref(runs);
        if (last >= killed + 8000)
            break;
        sleep_ms(100);
    }
    o = run("'%s' cron pause tick --db '%s' 2>&1", ASPEN_BIN, d.name);
    free(o.buf);
    json_t *runs = runs_of(&d, "tick");
    size_t n = json_array_size(runs);
    int64_t first = json_integer_value(json_object_get(json_array_get(runs, 0), "occurrence_ms"));
    bool other = false;
    for (i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        assert_int_equal(json_integer_value(json_object_get(r, "occurrence_ms")),
                         first + 1000 * (int64_t)i);
        int64_t by = json_integer_value(json_object_get(r, "engine"));
        if (json_integer_value(json_object_get(r, "occurrence_ms")) > killed + 6000 && by != holder)
            other = true;
    }
    assert_true(other); /* a survivor holds the lease now */
    assert_true(json_integer_value(json_object_get(json_array_get(runs, n - 1), "occurrence_ms")) >=
                killed + 8000);
    json_decref(runs);
    for (int k = 0; k < 3; k++)
        if (pids[k] != victim)
            stop_worker(pids[k]);
    db_close(&d);
}

static void test_takeover(void **state) { (void)state, takeover(false); }
static void test_takeover_pg(void **state) { (void)state, takeover(true); }

static void test_every_second(void **state) { (void)state, every_second(false); }
static void test_every_second_pg(void **state) { (void)state, every_second(true); }

/* The schedule runs, every engine stops for 6 s, one comes back. */
static void missed(bool pg)
{
    struct db d;
    db_open(&d, pg);
    out o = run_plain("'%s' cron add skipper '@every 1s' --type echo --grace 2s --missed skip --db '%s' "
                "--create 2>&1 && '%s' cron add catcher '@every 1s' --type echo --grace 2s "
                "--missed once --db '%s' 2>&1",
                ASPEN_BIN, d.name, ASPEN_BIN, d.name);
    assert_int_equal(o.status, 0);
    free(o.buf);
    long long pid = start_worker(&d, 0);
    for (int i = 0; i < 300; i++) {
        json_t *r1 = runs_of(&d, "skipper"), *r2 = runs_of(&d, "catcher");
        bool ok = json_array_size(r1) >= 2 && json_array_size(r2) >= 2;
        json_decref(r1);
        json_decref(r2);
        if (ok)
            break;
        sleep_ms(100);
    }
    stop_worker(pid);
    int64_t down = now_ms();
    sleep_ms(6000);
    pid = start_worker(&d, 1);
    int64_t up = now_ms();
    for (int i = 0; i < 300; i++) {
        json_t *r = runs_of(&d, "skipper");
        size_t n = json_array_size(r);
        int64_t last = n ? json_integer_value(json_object_get(json_array_get(r, n - 1),
                                                                "occurrence_ms"))
                         : 0;
        json_decref(r);
        if (last > up + 1000)
            break;
        sleep_ms(100);
    }
    stop_worker(pid);
    /* skip: a gap over the downtime, and nothing enqueued later than the grace */
    json_t *r = runs_of(&d, "skipper");
    size_t n = json_array_size(r), gaps = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(r, i);
        int64_t occ = json_integer_value(json_object_get(e, "occurrence_ms"));
        int64_t at = json_integer_value(json_object_get(e, "enqueued_at_ms"));
        assert_true(at - occ <= 2000);
        if (i) {
            int64_t prev = json_integer_value(
                json_object_get(json_array_get(r, i - 1), "occurrence_ms"));
            assert_true(occ > prev);
            if (occ - prev > 1000) {
                gaps++;
                assert_true(prev <= down && occ >= up - 2000 - 1000);
                assert_true(occ - prev >= 3000); /* 6 s down, 2 s of grace */
            }
        }
    }
    assert_int_equal(gaps, 1);
    json_decref(r);
    /* once: the same, plus exactly one job for the missed ones, keyed by the first of them */
    r = runs_of(&d, "catcher");
    n = json_array_size(r);
    size_t late = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(r, i);
        int64_t occ = json_integer_value(json_object_get(e, "occurrence_ms"));
        int64_t at = json_integer_value(json_object_get(e, "enqueued_at_ms"));
        if (at - occ > 2000) {
            late++;
            int64_t prev = json_integer_value(
                json_object_get(json_array_get(r, i - 1), "occurrence_ms"));
            assert_int_equal(occ, prev + 1000); /* the first missed occurrence */
            assert_true(at >= up);
            int64_t next = json_integer_value(
                json_object_get(json_array_get(r, i + 1), "occurrence_ms"));
            assert_true(next - occ >= 3000);
        }
    }
    assert_int_equal(late, 1);
    json_decref(r);
    json_t *sc = schedule_of(&d, "catcher");
    assert_true(json_integer_value(json_object_get(sc, "missed_count")) >= 1);
    json_decref(sc);
    db_close(&d);
}

static void test_missed(void **state) { (void)state, missed(false); }
static void test_missed_pg(void **state) { (void)state, missed(true); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zone_gone),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_errors_pg),
        cmocka_unit_test(test_every_second), cmocka_unit_test(test_every_second_pg),
        cmocka_unit_test(test_missed),       cmocka_unit_test(test_missed_pg),
        cmocka_unit_test(test_takeover),     cmocka_unit_test(test_takeover_pg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
