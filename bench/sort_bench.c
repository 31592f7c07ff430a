/* bench/sort_bench.c — `aspen-bench-sort`: the whole-store sort at 10,000,000 jobs on SQLite,
 * or on PostgreSQL when --db is a libpq conninfo (key=value or postgres://) of an empty database.
 * Prints JSON. A benchmark, not a timed test (docs/BENCHMARKS.md and docs/STORE.md "Sorting"
 * record its numbers).
 *
 *   aspen-bench-sort [--jobs N] [--db PATH|CONNINFO] [--rounds N] [--keep]
 *
 * 1. Builds the database fast: the store creates an empty one (schema and indexes), the jobs
 *    table's indexes are dropped, N jobs go in with one INSERT … SELECT over a counter in one
 *    transaction (states, guests, priorities, attempts and run times spread by a hash of the id:
 *    90% succeeded, 5% failed, 2% cancelled, 2.9% queued, 0.1% scheduled), the indexes are
 *    created again (sorting once is far faster than N random inserts) and the kept counts
 *    rebuilt. Two jobs in five are in the default queue, the others in one of eight named ones.
 *    With --db of an existing database built before, it is reused (--keep keeps a new one).
 *    PostgreSQL: the store creates the schema, the same rows go in with one INSERT … SELECT over
 *    generate_series with the indexes in place, then ANALYZE and the counts rebuilt; a database
 *    that has jobs already is reused.
 * 2. Through the store's public API, as the console reads (tui/app.c): for every indexed sort key
 *    (id, guest, priority, created, duration) and direction, a sort change = the first window of
 *    500 rows; then cursor moves = the window re-read around a row deeper in the list,
 *    keyset-paged as the console does (the 250 rows before the cursor's job, the 250 from it on:
 *    two queries), 20 window shifts down the list per sort; G = the last window (the other
 *    direction's first). Then under a filter (failed; one guest) by id, duration and priority; the
 *    sorts without an index (state, attempts) once; the queue sort (no index either) both ways,
 *    alone and under a filter (failed), in rounds of its own; and for comparison an OFFSET page at
 *    the middle of the list.
 * Medians, p95 and max in ms.
 */
#include "aspen_store.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 500

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct series {
    double v[4096];
    size_t n;
};

static void add(struct series *s, double v)
{
    if (s->n < sizeof s->v / sizeof s->v[0])
        s->v[s->n++] = v;
}

static void print_series(const char *name, struct series *s, bool last)
{
    qsort(s->v, s->n, sizeof s->v[0], cmp_d);
    double med = s->n ? s->v[s->n / 2] : 0, p95 = s->n ? s->v[(s->n * 95) / 100] : 0,
           max = s->n ? s->v[s->n - 1] : 0;
    printf("  \"%s\": {\"n\": %zu, \"median_ms\": %.2f, \"p95_ms\": %.2f, \"max_ms\": %.2f}%s\n",
           name, s->n, med, p95, max, last ? "" : ",");
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "aspen-bench-sort: %s: %s\n", what, msg);
    exit(1);
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die(sql, msg ? msg : "?");
}

/* the queue of job x: two in five in the default queue, the others in q-0 .. q-7 */
#define QUEUE_OF_X "CASE WHEN x %% 5 < 2 THEN 'default' ELSE 'q-' || (x * 13 %% 8) END"

static bool is_pg(const char *path)
{
    return strncmp(path, "postgres", 8) == 0 || strchr(path, '=') != NULL;
}

static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        die(sql, PQerrorMessage(c));
    PQclear(r);
}

/* PostgreSQL: the same rows as build()'s (the hash written with bigint arithmetic), into the
 * store's own schema; reused when it has jobs already. */
static void pg_build(const char *conninfo, long jobs)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(conninfo, NULL, &s, &e) != 0)
        die("creating the schema", e.msg);
    aspen_store_close(s);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connecting", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT count(*) FROM jobs");
    long have = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    if (have) {
        PQfinish(c);
        return;
    }
    double t0 = now_ms();
    char sql[4096];
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs (id, type, binary_name, payload, state, priority, run_at, attempts,"
             "  max_attempts, timeout_ms, created_at, started_at, finished_at, error, queue)"
             " OVERRIDING SYSTEM VALUE"
             " SELECT x, 'echo', 'guest-' || (x * 7 %% 20), '{}',"
             "  CASE WHEN h < 900 THEN 'succeeded' WHEN h < 950 THEN 'failed'"
             "       WHEN h < 970 THEN 'cancelled' WHEN h < 999 THEN 'queued' ELSE 'scheduled' END,"
             "  (x * 31) %% 10, CASE WHEN h >= 999 THEN 4102444800000 ELSE 1700000000000 + x * 10 END,"
             "  CASE WHEN h < 900 THEN 1 + (x %% 7 = 0)::int WHEN h < 950 THEN 3 ELSE 0 END, 3, 30000,"
             "  1700000000000 + x * 10,"
             "  CASE WHEN h < 950 THEN 1700000000000 + x * 10 + 5 END,"
             "  CASE WHEN h < 950 THEN 1700000000000 + x * 10 + 5 + d"
             "       WHEN h < 970 THEN 1700000000000 + x * 10 + 2 END,"
             "  CASE WHEN h >= 900 AND h < 950 THEN 'exit status 1' END,"
             "  " QUEUE_OF_X
             " FROM (SELECT x, (x * 2654435761) %% 1000 AS h,"
             "   ((x * 40503) %% 1000) * ((x * 40503) %% 1000) * ((x * 7919) %% 211) / 1000 AS d"
             "   FROM generate_series(1::bigint, %ld::bigint) AS x) AS g",
             jobs);
    pg_ok(c, sql);
    double t1 = now_ms();
    pg_ok(c, "VACUUM ANALYZE jobs");
    PQfinish(c);
    if (aspen_store_open(conninfo, NULL, &s, &e) != 0 || aspen_store_recount(s, &e) != 0)
        die("recounting", e.msg);
    aspen_store_close(s);
    fprintf(stderr, "built %ld jobs on PostgreSQL: insert %.1f s, vacuum analyze %.1f s\n", jobs,
            (t1 - t0) / 1e3, (now_ms() - t1) / 1e3);
}

static void build(const char *path, long jobs)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(path, NULL, &s, &e) != 0)
        die("creating the database", e.msg);
    aspen_store_close(s);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("opening", sqlite3_errmsg(db));
    exec_or_die(db, "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;"
                    "PRAGMA cache_size = -1000000");
    /* keep the indexes' definitions, drop them, insert, create them again */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'jobs' AND sql IS NOT NULL", -1, &st, NULL);
    char *defs[64];
    size_t n_defs = 0;
    char drops[4096] = "";
    while (sqlite3_step(st) == SQLITE_ROW && n_defs < 64) {
        defs[n_defs++] = strdup((const char *)sqlite3_column_text(st, 1));
        size_t l = strlen(drops);
        snprintf(drops + l, sizeof drops - l, "DROP INDEX %s;", sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    exec_or_die(db, drops);
    double t0 = now_ms();
    char sql[4096];
    /* h: a hash of the id spread over 0..999 for the state; d: a run time in ms with a long
     * tail (a few minutes at most) */
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld),"
             " h(x, h, d) AS (SELECT x, (x * 2654435761) %% 1000,"
             "   ((x * 40503) %% 1000) * ((x * 40503) %% 1000) * ((x * 7919) %% 211) / 1000 FROM c)"
             " INSERT INTO jobs (id, type, binary_name, payload, state, priority, run_at, attempts,"
             "  max_attempts, timeout_ms, created_at, started_at, finished_at, error, queue)"
             " SELECT x, 'echo', 'guest-' || (x * 7 %% 20), '{}',"
             "  CASE WHEN h < 900 THEN 'succeeded' WHEN h < 950 THEN 'failed'"
             "       WHEN h < 970 THEN 'cancelled' WHEN h < 999 THEN 'queued' ELSE 'scheduled' END,"
             "  (x * 31) %% 10, CASE WHEN h >= 999 THEN 4102444800000 ELSE 1700000000000 + x * 10 END,"
             "  CASE WHEN h < 900 THEN 1 + (x %% 7 = 0) WHEN h < 950 THEN 3 ELSE 0 END, 3, 30000,"
             "  1700000000000 + x * 10,"
             "  CASE WHEN h < 950 THEN 1700000000000 + x * 10 + 5 END,"
             "  CASE WHEN h < 950 THEN 1700000000000 + x * 10 + 5 + d"
             "       WHEN h < 970 THEN 1700000000000 + x * 10 + 2 END,"
             "  CASE WHEN h >= 900 AND h < 950 THEN 'exit status 1' END,"
             "  " QUEUE_OF_X
             " FROM h;"
             "COMMIT;",
             jobs);
    exec_or_die(db, sql);
    double t1 = now_ms();
    for (size_t i = 0; i < n_defs; i++) {
        exec_or_die(db, defs[i]);
        free(defs[i]);
    }
    double t2 = now_ms();
    exec_or_die(db, "PRAGMA journal_mode = WAL");
    sqlite3_close(db);
    if (aspen_store_open(path, NULL, &s, &e) != 0 || aspen_store_recount(s, &e) != 0)
        die("recounting", e.msg);
    aspen_store_close(s);
    fprintf(stderr, "built %ld jobs: insert %.1f s, %zu indexes %.1f s\n", jobs, (t1 - t0) / 1e3,
            n_defs, (t2 - t1) / 1e3);
}

static size_t list(aspen_store *s, const aspen_store_filter *f, aspen_store_job **jobs)
{
    size_t n = 0;
    aspen_store_error e = {0};
    if (aspen_store_list(s, f, jobs, &n, &e) != 0)
        die("listing", e.msg);
    return n;
}

/* One window around the job `anchor` as the console reads it: 250 before it (the other
 * direction, exclusive) and 250 from it on. */
static double window_at(aspen_store *s, const aspen_store_filter *base, int64_t anchor,
                        int64_t *next_anchor)
{
    aspen_store_filter before = *base, after = *base;
    before.sort_desc = !base->sort_desc;
    before.after_id = anchor;
    before.limit = WINDOW / 2;
    after.after_id = anchor;
    after.after_inclusive = true;
    after.limit = WINDOW / 2;
    aspen_store_job *a = NULL, *b = NULL;
    double t = now_ms();
    size_t na = list(s, &before, &a);
    size_t nb = list(s, &after, &b);
    t = now_ms() - t;
    *next_anchor = nb ? b[nb - 1].id : anchor;
    aspen_store_jobs_free(a, na);
    aspen_store_jobs_free(b, nb);
    return t;
}

static bool indexed(aspen_store_sort k)
{
    return k == ASPEN_STORE_SORT_ID || k == ASPEN_STORE_SORT_GUEST || k == ASPEN_STORE_SORT_PRIORITY ||
           k == ASPEN_STORE_SORT_CREATED || k == ASPEN_STORE_SORT_DURATION;
}

/* A sort change (the first window) and then `shifts` window shifts down the list; G too when
 * end is not NULL. */
static void scroll(aspen_store *s, const aspen_store_filter *base, aspen_store_sort k, bool d,
                   int shifts, struct series *change, struct series *cursor, struct series *end)
{
    aspen_store_filter f = *base;
    f.sort = k;
    f.sort_desc = d;
    f.limit = WINDOW;
    aspen_store_job *jobs = NULL;
    double t = now_ms();
    size_t n = list(s, &f, &jobs);
    add(change, now_ms() - t);
    int64_t anchor = n ? jobs[n - 1].id : 0;
    aspen_store_jobs_free(jobs, n);
    for (int m = 0; m < shifts && anchor; m++)
        add(cursor, window_at(s, &f, anchor, &anchor));
    if (end) {
        f.sort_desc = !d;
        t = now_ms();
        n = list(s, &f, &jobs);
        add(end, now_ms() - t);
        aspen_store_jobs_free(jobs, n);
    }
}

static void run(const char *path, int rounds)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    aspen_store_options o = {.read_only = true};
    if (aspen_store_open(path, &o, &s, &e) != 0)
        die("opening", e.msg);
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    aspen_store_counts(s, counts, &e);
    int64_t total = 0;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        total += counts[i];
    struct series sort_change = {0}, cursor = {0}, end = {0}, f_sort = {0}, f_cursor = {0};
    struct series u_sort = {0}, u_cursor = {0}, offset_mid = {0};
    struct series q_sort = {0}, q_cursor = {0}, q_f_sort = {0}, q_f_cursor = {0};
    aspen_store_filter none = {0};
    for (int r = 0; r < rounds; r++) {
        /* the indexed sorts, both ways: 20 window shifts each, and G */
        for (int k = ASPEN_STORE_SORT_ID; k < ASPEN_STORE_SORT_COUNT; k++)
            for (int d = 0; d < 2; d++)
                if (indexed((aspen_store_sort)k))
                    scroll(s, &none, (aspen_store_sort)k, d, 20, &sort_change, &cursor, &end);
        /* under a filter: failed (5%) and one guest of 20, by id, duration and priority */
        const char *filters[] = {"failed", "guest:guest-3"};
        const aspen_store_sort fs[] = {ASPEN_STORE_SORT_ID, ASPEN_STORE_SORT_DURATION,
                                       ASPEN_STORE_SORT_PRIORITY};
        for (size_t fi = 0; fi < 2; fi++) {
            aspen_store_filter base = {0};
            char buf[256];
            if (aspen_store_filter_parse(filters[fi], &base, buf, sizeof buf, &e))
                die("filter", e.msg);
            for (size_t k = 0; k < 3; k++)
                for (int d = 0; d < 2; d++)
                    scroll(s, &base, fs[k], d, 5, &f_sort, &f_cursor, NULL);
        }
        if (r == 0) {
            /* the sorts without an index (state, attempts): a sort change and 2 shifts each */
            for (int d = 0; d < 2; d++) {
                scroll(s, &none, ASPEN_STORE_SORT_STATE, d, 2, &u_sort, &u_cursor, NULL);
                scroll(s, &none, ASPEN_STORE_SORT_ATTEMPTS, d, 2, &u_sort, &u_cursor, NULL);
            }
        }
        /* the queue sort (no index: a scan of the matches), alone and under a filter, both ways:
         * a sort change and 5 shifts each, every round */
        for (int d = 0; d < 2; d++) {
            scroll(s, &none, ASPEN_STORE_SORT_QUEUE, d, 5, &q_sort, &q_cursor, NULL);
            aspen_store_filter failed = {.states = 1u << ASPEN_STORE_FAILED};
            scroll(s, &failed, ASPEN_STORE_SORT_QUEUE, d, 5, &q_f_sort, &q_f_cursor, NULL);
        }
        if (r == 0) {
            /* for comparison: a page at the middle by OFFSET */
            for (int k = ASPEN_STORE_SORT_ID; k < ASPEN_STORE_SORT_COUNT; k++) {
                if (!indexed((aspen_store_sort)k))
                    continue;
                aspen_store_filter f = {.sort = (aspen_store_sort)k, .limit = WINDOW,
                                        .offset = total / 2};
                aspen_store_job *jobs = NULL;
                double t = now_ms();
                size_t n = list(s, &f, &jobs);
                add(&offset_mid, now_ms() - t);
                aspen_store_jobs_free(jobs, n);
            }
        }
    }
    aspen_store_close(s);
    struct stat sb = {0};
    if (!is_pg(path))
        stat(path, &sb);
    printf("{\n  \"jobs\": %lld,\n  \"db_bytes\": %lld,\n  \"window\": %d,\n", (long long)total,
           (long long)sb.st_size, WINDOW);
    print_series("sort_change", &sort_change, false);
    print_series("cursor_window_shift", &cursor, false);
    print_series("end_G", &end, false);
    print_series("filtered_sort_change", &f_sort, false);
    print_series("filtered_cursor_window_shift", &f_cursor, false);
    print_series("unindexed_sort_change", &u_sort, false);
    print_series("unindexed_cursor_window_shift", &u_cursor, false);
    print_series("queue_sort_change", &q_sort, false);
    print_series("queue_cursor_window_shift", &q_cursor, false);
    print_series("queue_failed_sort_change", &q_f_sort, false);
    print_series("queue_failed_cursor_window_shift", &q_f_cursor, false);
    print_series("offset_page_at_middle", &offset_mid, true);
    printf("}\n");
}

int main(int argc, char **argv)
{
    long jobs = 10000000;
    int rounds = 3;
    const char *db = NULL;
    bool keep = false;
    static const struct option opts[] = {{"jobs", required_argument, 0, 'n'},
                                         {"db", required_argument, 0, 'd'},
                                         {"rounds", required_argument, 0, 'r'},
                                         {"keep", no_argument, 0, 'k'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': jobs = atol(optarg); break;
        case 'd': db = optarg; break;
        case 'r': rounds = atoi(optarg); break;
        case 'k': keep = true; break;
        default:
            fprintf(stderr, "usage: aspen-bench-sort [--jobs N] [--db PATH] [--rounds N] [--keep]\n");
            return 2;
        }
    }
    if (jobs < 1 || rounds < 1) {
        fprintf(stderr, "aspen-bench-sort: --jobs and --rounds must be at least 1\n");
        return 2;
    }
    char tmp[256] = "";
    if (!db) {
        snprintf(tmp, sizeof tmp, "/tmp/aspen-bench-sort-%d.db", (int)getpid());
        db = tmp;
    }
    if (is_pg(db)) {
        pg_build(db, jobs);
        run(db, rounds);
        return 0; /* the database is the caller's: kept */
    }
    if (access(db, F_OK) != 0)
        build(db, jobs);
    else
        keep = true; /* a database built before: reused and kept */
    run(db, rounds);
    if (!keep) {
        char side[300];
        unlink(db);
        snprintf(side, sizeof side, "%s-wal", db);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", db);
        unlink(side);
    }
    return 0;
}
