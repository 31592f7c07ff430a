/* bench/retention_bench.c — `aspen-bench-retention`: what the retention pruner does to the queue
 * (issue 10: "a million finished jobs pruned while 10,000 jobs run, with claim latency
 * unchanged"). Prints JSON. A benchmark, not a timed test: nothing passes or fails on time
 * (docs/BENCHMARKS.md records its numbers; bench/retention.sh runs it on both backends).
 *
 *   aspen-bench-retention [--old N] [--load N] [--rate JOBS_PER_S] [--rounds R]
 *                         [--pg ADMIN_CONNINFO] [--dir DIR] [--guest-dir DIR]
 *
 * Each round runs twice on an equally full database: once with the pruner off ("without"), once
 * with it on ("with"), alternating which goes first from round to round so drift on a shared
 * machine falls on both. A run:
 *   1. a fresh database (SQLite in DIR, or a new PostgreSQL database made through the admin
 *      conninfo and dropped after) with N old finished jobs, 3 days old (past the 24 h default),
 *      each with an attempt and a log line, put in with INSERT … SELECT as a year of history would
 *      be there already;
 *   2. an engine with 2 workers; LOAD echo jobs submitted at RATE jobs/s (in batches of 20) — a
 *      rate the engine keeps up with, so a job's queue wait is the claim's latency, not a backlog;
 *   3. every LOAD job's queue wait (started_at − created_at: from submit to its claim, what a
 *      user sees) read back: p50, p99, max. In the "with" run the pruner works the whole time
 *      (a million jobs take it minutes; the load is seconds): the run then waits for it to finish
 *      and reports how long it took, its batches and its longest batch.
 * Defaults: 100,000 old jobs, 10,000 load jobs at 1,000/s, 1 round. The case is --old
 * 1000000.
 *
 * KVM is required by the engine (it opens /dev/kvm even for in-process echo jobs). */
#include "aspen_engine.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUBMIT_BATCH 20

static struct {
    int64_t old, load, rate;
    int rounds;
    const char *pg_admin, *dir, *guest_dir;
} opt = {.old = 100000, .load = 10000, .rate = 1000, .rounds = 1};

static char g_db[1200], g_pg_name[64];

static double mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec t = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&t, NULL);
}

static _Noreturn void die(const char *what, const char *why)
{
    fprintf(stderr, "aspen-bench-retention: %s: %s\n", what, why);
    exit(1);
}

static bool on_pg(void) { return opt.pg_admin != NULL; }

static void pg_admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(opt.pg_admin);
    if (PQstatus(c) != CONNECTION_OK)
        die("connecting with --pg", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* A statement on the run's database behind the store's back (the bulk fill). */
static void raw_exec(const char *sql)
{
    if (on_pg()) {
        PGconn *c = PQconnectdb(g_db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            die(sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return;
    }
    sqlite3 *db = NULL;
    char *msg = NULL;
    if (sqlite3_open(g_db, &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die(sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* The rows of a one-column integer query, into out (at most cap); returns how many. */
static size_t raw_ints(const char *sql, int64_t *out, size_t cap)
{
    size_t n = 0;
    if (on_pg()) {
        PGconn *c = PQconnectdb(g_db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die(sql, PQerrorMessage(c));
        for (int i = 0; i < PQntuples(r) && n < cap; i++)
            out[n++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return n;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(g_db, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW && n < cap)
        out[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int64_t raw_int(const char *sql)
{
    int64_t v = -1;
    raw_ints(sql, &v, 1);
    return v;
}

static void fresh_db(int run)
{
    if (on_pg()) {
        snprintf(g_pg_name, sizeof g_pg_name, "aspen_bench_ret_%d_%d", (int)getpid(), run);
        char sql[200];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", g_pg_name);
        pg_admin_exec(sql);
        snprintf(g_db, sizeof g_db, "%s dbname=%s", opt.pg_admin, g_pg_name);
    } else {
        snprintf(g_db, sizeof g_db, "%s/retention-%d-%d.db", opt.dir, (int)getpid(), run);
    }
    /* the schema, through the store as any first use makes it */
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(g_db, NULL, &s, &se) != 0)
        die(g_db, se.msg);
    aspen_store_close(s);
}

static void drop_db(void)
{
    if (on_pg()) {
        char sql[200];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", g_pg_name);
        pg_admin_exec(sql);
        return;
    }
    char p[1300];
    static const char *const tails[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", g_db, tails[i]);
        unlink(p);
    }
}

/* opt.old succeeded jobs finished 3 days ago, each with an attempt and a log line. */
static void fill_old(void)
{
    int64_t t = aspen_store_now_ms() - 3 * 24 * 3600 * 1000LL;
    char sql[1200];
    if (on_pg())
        snprintf(sql, sizeof sql,
                 "INSERT INTO jobs (type, payload, state, run_at, attempts, created_at, started_at,"
                 " finished_at, log_count) SELECT 'echo', '{\"old\":1}', 'succeeded', %lld, 1,"
                 " %lld, %lld, %lld + g %% 1000, 1 FROM generate_series(1, %lld) g",
                 (long long)t, (long long)t, (long long)t, (long long)t, (long long)opt.old);
    else
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %lld)"
                 " INSERT INTO jobs (type, payload, state, run_at, attempts, created_at,"
                 " started_at, finished_at, log_count) SELECT 'echo', '{\"old\":1}', 'succeeded',"
                 " %lld, 1, %lld, %lld, %lld + i %% 1000, 1 FROM c",
                 (long long)opt.old, (long long)t, (long long)t, (long long)t, (long long)t);
    raw_exec(sql);
    raw_exec("INSERT INTO attempts (job, number, started_at, finished_at, outcome)"
             " SELECT id, 1, started_at, finished_at, 'succeeded' FROM jobs");
    raw_exec("INSERT INTO logs (job, seq, attempt, time_ms, line)"
             " SELECT id, 1, 1, finished_at, 'an old line' FROM jobs");
    if (on_pg())
        raw_exec("ANALYZE");
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(g_db, NULL, &s, &se) != 0 || aspen_store_recount(s, &se) != 0)
        die("recounting after the fill", se.msg);
    aspen_store_close(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct result {
    int64_t p50, p99, max;
    double load_s;           /* submit of the first load job to the last one's finish */
    double prune_s;          /* the whole prune (with) */
    int64_t left_at_load_end; /* old jobs not yet pruned when the load had finished */
    aspen_engine_retention_stats rs;
};

/* What the pruner has deleted so far: its own figure, not a count(*) of a million rows, which
 * would itself load the 2 cores the measurement runs on. */
static int64_t pruned_so_far(aspen_engine *eng)
{
    aspen_engine_retention_stats rs;
    aspen_engine_retention_stats_get(eng, &rs);
    return rs.pruned;
}

/* Jobs not finished yet, from the store's kept counts (no table scan). */
static int64_t unfinished(aspen_store *s)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_store_error se = {0};
    if (aspen_store_counts(s, c, &se) != 0)
        die("reading the counts", se.msg);
    return c[ASPEN_STORE_QUEUED] + c[ASPEN_STORE_SCHEDULED] + c[ASPEN_STORE_RUNNING];
}

static int64_t old_left_now(void)
{
    return raw_int(on_pg() ? "SELECT count(*) FROM jobs WHERE payload::text = '{\"old\":1}'"
                           : "SELECT count(*) FROM jobs WHERE payload = '{\"old\":1}'");
}

static struct result run(int run_no, bool pruner)
{
    struct result res = {0};
    fresh_db(run_no);
    fill_old();
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 2;
    cfg.guest_dir = opt.guest_dir;
    /* the pruner's first look comes at once; off = never */
    cfg.retention_poll_ms = pruner ? 200 : -1;
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0 || aspen_engine_start(eng, &err) != 0)
        die("starting the engine", err.msg);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    if (aspen_store_open(g_db, NULL, &s, &se) != 0)
        die(g_db, se.msg);
    double t0 = mono_ms();
    /* let the pruner start before the load (its first look is within a second of start) */
    if (pruner) {
        while (pruned_so_far(eng) == 0) {
            if (mono_ms() - t0 > 30000)
                die("the pruner", "it deleted nothing within 30 s of the engine's start");
            sleep_ms(10);
        }
    }
    aspen_engine_job_spec specs[SUBMIT_BATCH];
    for (int i = 0; i < SUBMIT_BATCH; i++)
        specs[i] = (aspen_engine_job_spec){.type = "echo", .payload = "{\"new\":1}"};
    double start = mono_ms(), gap = 1000.0 * SUBMIT_BATCH / (double)opt.rate;
    for (int64_t sent = 0; sent < opt.load; sent += SUBMIT_BATCH) {
        size_t n = opt.load - sent < SUBMIT_BATCH ? (size_t)(opt.load - sent) : SUBMIT_BATCH;
        if (aspen_engine_submit_batch(eng, specs, n, NULL, &err) != 0)
            die("submitting", err.msg);
        /* paced against the start, so a slow submit is caught up, never accumulated */
        sleep_ms(start + gap * (double)(sent / SUBMIT_BATCH + 1) - mono_ms());
    }
    while (unfinished(s) > 0) {
        if (mono_ms() - start > 600000)
            die("the load", "its jobs did not all finish within 600 s");
        sleep_ms(20);
    }
    res.load_s = (mono_ms() - start) / 1000;
    res.left_at_load_end = opt.old - (pruner ? pruned_so_far(eng) : 0);
    if (pruner) {
        while (pruned_so_far(eng) < opt.old) {
            if (mono_ms() - t0 > 3600000)
                die("the pruner", "old jobs were still there after an hour");
            sleep_ms(100);
        }
        res.prune_s = (mono_ms() - t0) / 1000;
    }
    aspen_engine_retention_stats_get(eng, &res.rs);
    aspen_engine_close(eng);
    aspen_store_close(s);
    /* the pruner took exactly the old jobs: every one, and none of the load */
    if (pruner && old_left_now() != 0)
        die("the pruner", "it reported all old jobs pruned but some are still there");
    int64_t *w = calloc((size_t)opt.load, sizeof *w);
    if (!w)
        die("reading the waits", "out of memory");
    size_t n = raw_ints(on_pg() ? "SELECT started_at - created_at FROM jobs WHERE payload::text ="
                                  " '{\"new\":1}' AND state = 'succeeded'"
                                : "SELECT started_at - created_at FROM jobs WHERE payload ="
                                  " '{\"new\":1}' AND state = 'succeeded'",
                        w, (size_t)opt.load);
    if (n != (size_t)opt.load)
        die("reading the waits", "fewer load jobs succeeded than were submitted");
    qsort(w, n, sizeof *w, cmp_i64);
    res.p50 = w[n / 2];
    res.p99 = w[n * 99 / 100];
    res.max = w[n - 1];
    free(w);
    drop_db();
    return res;
}

static void print_run(const char *name, const struct result *r, bool pruner, bool last)
{
    printf("\"%s\": {\"claim_p50_ms\": %lld, \"claim_p99_ms\": %lld, \"claim_max_ms\": %lld,"
           " \"load_s\": %.2f",
           name, (long long)r->p50, (long long)r->p99, (long long)r->max, r->load_s);
    if (pruner)
        printf(", \"prune_s\": %.1f, \"pruned\": %lld, \"pruned_per_s\": %.0f,"
               " \"old_left_when_load_done\": %lld, \"batches\": %lld, \"longest_batch_ms\": %.1f,"
               " \"last_batch_size\": %lld",
               r->prune_s, (long long)r->rs.pruned,
               r->prune_s > 0 ? (double)r->rs.pruned / r->prune_s : 0.0,
               (long long)r->left_at_load_end, (long long)r->rs.batches, r->rs.max_batch_ms,
               (long long)r->rs.batch_size);
    printf("}%s", last ? "" : ", ");
}

static void usage(void)
{
    fprintf(stderr, "usage: aspen-bench-retention [--old N] [--load N] [--rate JOBS_PER_S]"
                    " [--rounds R] [--pg ADMIN_CONNINFO] [--dir DIR] [--guest-dir DIR]\n");
    exit(2);
}

static int64_t positive(const char *flag, const char *v)
{
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!end || *end || n <= 0 || n > 100000000) {
        fprintf(stderr, "aspen-bench-retention: %s '%s' is not a number from 1 to 100000000\n",
                flag, v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"old", 1, 0, 'o'},   {"load", 1, 0, 'l'}, {"rate", 1, 0, 'r'},      {"rounds", 1, 0, 'R'},
        {"pg", 1, 0, 'p'},    {"dir", 1, 0, 'd'},  {"guest-dir", 1, 0, 'g'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'o': opt.old = positive("--old", optarg); break;
        case 'l': opt.load = positive("--load", optarg); break;
        case 'r': opt.rate = positive("--rate", optarg); break;
        case 'R': opt.rounds = (int)positive("--rounds", optarg); break;
        case 'p': opt.pg_admin = optarg; break;
        case 'd': opt.dir = optarg; break;
        case 'g': opt.guest_dir = optarg; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    char tmp[] = "/tmp/aspen-bench-retention-XXXXXX";
    if (!opt.dir) {
        if (!mkdtemp(tmp))
            die("making a directory for the databases", "mkdtemp failed");
        opt.dir = tmp;
    }
    for (int round = 0; round < opt.rounds; round++) {
        /* alternate which goes first: drift on a shared machine lands on both */
        bool with_first = round % 2 == 1;
        struct result with, without;
        if (with_first) {
            with = run(2 * round, true);
            without = run(2 * round + 1, false);
        } else {
            without = run(2 * round, false);
            with = run(2 * round + 1, true);
        }
        printf("{\"backend\": \"%s\", \"round\": %d, \"old_jobs\": %lld, \"load_jobs\": %lld,"
               " \"load_rate_per_s\": %lld, ",
               on_pg() ? "postgresql" : "sqlite", round + 1, (long long)opt.old,
               (long long)opt.load, (long long)opt.rate);
        print_run("without_pruner", &without, false, false);
        print_run("with_pruner", &with, true, false);
        printf("\"p99_ratio\": %.2f}\n",
               without.p99 > 0 ? (double)with.p99 / (double)without.p99 : 0.0);
        fflush(stdout);
    }
    if (opt.dir == tmp)
        rmdir(tmp);
    return 0;
}
