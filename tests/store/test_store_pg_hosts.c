/* test_store_pg_hosts.c — what the PostgreSQL store must do that one SQLite file never shows:
 * several hosts on one queue. Against the tests' private server (ctest fixture "pg",
 * ASPEN_PG_DIR), each test on a fresh database of its own:
 *
 *   two handles claiming at the same moment never reserve the same job;
 *   four processes drain one queue and every job is finished exactly once (checked in SQL: no job
 *     with two succeeded attempts, no job finished twice);
 *   an engine whose lease expired by the database's clock has its late results refused (ELEASE)
 *     and its jobs' lost attempts recorded, whether or not someone recovered it first;
 *   hosts whose wall clocks are 30 s apart agree on leases and run_at, because the server's
 *     timeline decides (a skewed host is a child process whose CLOCK_REALTIME is interposed);
 *   an idle waiter is woken by NOTIFY when a job is submitted (latency printed), and after its
 *     connection is killed it is woken once and keeps being woken;
 *   a host that stops in the middle of a transaction (SIGSTOP: as if cut off) does not hold its
 *     locks beyond the server's idle-in-transaction timeout;
 *   a cancel request, or the job recovered and started again elsewhere, committed while a group
 *     commit of the job waits for its row: the cancel wins / the late result is refused (ELEASE);
 *   hostile input: a batch with one bad job is refused whole with the job named; 8 MB of result
 *     bytes of every value, and log lines that are not UTF-8, round-trip. */
#include "helpers.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <libpq-fe.h>

#include "pg_store.h" /* white box: a transaction left open by a host that went away */

/* ---- a skewed wall clock for one "host" ------------------------------------------------------ */

/* While clock_skew_ms is not 0, CLOCK_REALTIME reads that far off (aspen_store_now_ms() and
 * libpq included): set in a child process, it makes that process a host whose clock is wrong. */
static volatile int64_t clock_skew_ms;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    long rc = syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && id == CLOCK_REALTIME && clock_skew_ms) {
        int64_t ns = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec + clock_skew_ms * 1000000LL;
        ts->tv_sec = ns / 1000000000LL;
        ts->tv_nsec = ns % 1000000000LL;
    }
    return (int)rc;
}

/* ---- a fresh database per test --------------------------------------------------------------- */

struct pgfx {
    char conninfo[640]; /* the test's own database */
    char dbname[64];
    aspen_store *s;
    int64_t engine;
};

static char server[512];

static PGconn *admin(void)
{
    PGconn *c = PQconnectdb(server);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", server, PQerrorMessage(c));
    return c;
}

static void admin_exec(const char *sql)
{
    PGconn *c = admin();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* One number from SQL on the test's database. */
static int64_t sql_int(struct pgfx *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static aspen_store *pg_open(struct pgfx *f)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0)
        fail_msg("open %s: %s", f->conninfo, e.msg);
    return s;
}

static int pg_setup(void **state)
{
    static int seq;
    const char *dir = getenv("ASPEN_PG_DIR");
    if (!dir)
        fail_msg("ASPEN_PG_DIR is not set: run through ctest (fixture pg starts the server)");
    char path[400];
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *fp = fopen(path, "r");
    if (!fp || !fgets(server, sizeof server, fp))
        fail_msg("no %s: the pg_server_start fixture did not run", path);
    fclose(fp);
    server[strcspn(server, "\n")] = '\0';
    struct pgfx *f = calloc(1, sizeof *f);
    snprintf(f->dbname, sizeof f->dbname, "aspen_hosts_%d_%d", (int)getpid(), ++seq);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    admin_exec(sql);
    snprintf(f->conninfo, sizeof f->conninfo, "%s dbname=%s", server, f->dbname);
    f->s = pg_open(f);
    aspen_store_error e = {0};
    if (aspen_store_engine_register(f->s, getpid(), "test", 60000, aspen_store_now_ms(), &f->engine,
                                    &e) != 0)
        fail_msg("register: %s", e.msg);
    *state = f;
    return 0;
}

static int pg_teardown(void **state)
{
    struct pgfx *f = *state;
    aspen_store_close(f->s);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
    admin_exec(sql);
    free(f);
    return 0;
}

static void submit_n(aspen_store *s, size_t n, int64_t now)
{
    aspen_store_job_spec *specs = calloc(n, sizeof *specs);
    for (size_t i = 0; i < n; i++)
        specs[i] = (aspen_store_job_spec){.type = "echo", .payload = "{\"n\":1}", .max_attempts = 3};
    aspen_store_error e = {0};
    if (aspen_store_submit_batch(s, specs, n, now, NULL, &e) != 0)
        fail_msg("submit: %s", e.msg);
    free(specs);
}

/* ---- two hosts claiming at once ----------------------------------------------------------------- */

struct claimer {
    struct pgfx *f;
    pthread_barrier_t *go;
    int64_t *ids;
    size_t n, claims;
};

static void *claim_all(void *arg)
{
    struct claimer *c = arg;
    aspen_store *s = pg_open(c->f);
    aspen_store_error e = {0};
    int64_t engine = 0;
    if (aspen_store_engine_register(s, getpid(), "host", 60000, aspen_store_now_ms(), &engine, &e))
        fail_msg("register: %s", e.msg);
    pthread_barrier_wait(c->go);
    for (;;) {
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        if (aspen_store_claim(s, engine, 7, aspen_store_now_ms(), &jobs, &n, NULL, &e) != 0)
            fail_msg("claim: %s", e.msg);
        for (size_t i = 0; i < n; i++)
            c->ids[c->n++] = jobs[i].id;
        aspen_store_jobs_free(jobs, n);
        c->claims++;
        /* Empty: the other host holds the rest (locked, about to commit), or all is taken. */
        if (n == 0 && sql_int(c->f, "SELECT count(*) FROM jobs WHERE NOT EXISTS (SELECT 1 FROM"
                                    " claims WHERE job = jobs.id)") == 0)
            break;
    }
    aspen_store_close(s);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_two_hosts_never_claim_one_job(void **state)
{
    struct pgfx *f = *state;
    enum { JOBS = 3000 };
    submit_n(f->s, JOBS, aspen_store_now_ms());
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct claimer c[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i] = (struct claimer){.f = f, .go = &go, .ids = calloc(JOBS, sizeof(int64_t))};
        pthread_create(&t[i], NULL, claim_all, &c[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int64_t *all = calloc(JOBS, sizeof *all);
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        assert_true(c[i].n + n <= JOBS);
        memcpy(all + n, c[i].ids, c[i].n * sizeof *all);
        n += c[i].n;
        free(c[i].ids);
    }
    print_message("two hosts reserved %zu and %zu of %d jobs in %zu and %zu claims of 7\n",
                  c[0].n, c[1].n, JOBS, c[0].claims, c[1].claims);
    assert_int_equal(n, JOBS);
    qsort(all, n, sizeof *all, cmp64);
    for (size_t i = 1; i < n; i++)
        if (all[i] == all[i - 1])
            fail_msg("job %lld was reserved by both hosts", (long long)all[i]);
    assert_true(c[0].n > 0 && c[1].n > 0); /* both really claimed: neither waited out the other */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM claims"), JOBS);
    assert_int_equal(sql_int(f, "SELECT count(DISTINCT engine) FROM claims"), 2);
    free(all);
    pthread_barrier_destroy(&go);
}

/* ---- four processes, every job finished once ----------------------------------------------------- */

static int drain(struct pgfx *f)
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0)
        return 10;
    int64_t engine = 0;
    if (aspen_store_engine_register(s, getpid(), "proc", 60000, aspen_store_now_ms(), &engine, &e))
        return 11;
    int idle = 0;
    while (idle < 3) {
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        if (aspen_store_claim(s, engine, 16, aspen_store_now_ms(), &jobs, &n, NULL, &e) != 0)
            return 12;
        if (n == 0) {
            idle++;
            continue;
        }
        idle = 0;
        aspen_store_completion c[16];
        int status[16];
        for (size_t i = 0; i < n; i++)
            c[i] = (aspen_store_completion){.job_id = jobs[i].id,
                                            .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                            .output = "ok",
                                            .output_size = 2};
        aspen_store_jobs_free(jobs, n);
        if (aspen_store_complete(s, engine, c, n, aspen_store_now_ms(), status, NULL, &e) != 0) {
            fprintf(stderr, "completing jobs: %d %s\n", e.code, e.msg);
            return 13;
        }
        for (size_t i = 0; i < n; i++)
            if (status[i] != 0)
                return 14;
    }
    aspen_store_close(s);
    return 0;
}

static void test_four_processes_finish_each_job_once(void **state)
{
    struct pgfx *f = *state;
    enum { PROCS = 4, PER = 500 };
    submit_n(f->s, PROCS * PER, aspen_store_now_ms());
    pid_t kids[PROCS];
    for (int i = 0; i < PROCS; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(drain(f));
    }
    for (int i = 0; i < PROCS; i++) {
        int st = 0;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("process %d failed: status %d", i, st);
    }
    assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs WHERE state = 'succeeded'"), PROCS * PER);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM (SELECT job FROM attempts WHERE outcome ="
                                " 'succeeded' GROUP BY job HAVING count(*) > 1) x"),
                     0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM attempts"), PROCS * PER);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs WHERE attempts <> 1"), 0);
    assert_int_equal(sql_int(f, "SELECT count(DISTINCT engine) FROM attempts"), PROCS);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM claims"), 0);
    int64_t counts[ASPEN_STORE_STATE_COUNT] = {0};
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_SUCCEEDED], PROCS * PER);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0);
    assert_int_equal(counts[ASPEN_STORE_RUNNING], 0);
}

/* ---- leases on the server's clock ----------------------------------------------------------------- */

/* A host cut off beyond its lease comes back: another host recovered its jobs (attempt recorded as
 * recovered) and runs them; the late result is refused with ELEASE and the job ends with exactly
 * one success, the other host's. */
static void test_late_result_after_recovery_refused(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    aspen_store *a = pg_open(f), *b = pg_open(f);
    int64_t now = aspen_store_now_ms(), ea = 0, eb = 0;
    assert_int_equal(aspen_store_engine_register(a, 1, "hostA", 1000, now, &ea, &e), 0);
    assert_int_equal(aspen_store_engine_register(b, 2, "hostB", 60000, now, &eb, &e), 0);
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, now);
    assert_int_equal(claim_ids(a, ea, 1, now, NULL), 1);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_RUNNING);
    /* B looks 2 s later (A's lease of 1 s has run out) and recovers A. */
    aspen_store_recovery rep = {0};
    assert_int_equal(aspen_store_recover(b, now + 2000, &rep, &e), 0);
    assert_int_equal(rep.requeued, 1);
    assert_int_equal(rep.engines_removed, 1);
    assert_int_equal(claim_ids(b, eb, 1, now + 2000, NULL), 1);
    /* A's result arrives late. */
    aspen_store_completion c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                .output = "late", .output_size = 4};
    int status = 0;
    aspen_store_state fs = ASPEN_STORE_STATE_NEW;
    assert_int_equal(aspen_store_complete(a, ea, &c, 1, now + 2100, &status, &fs, &e), 0);
    assert_int_equal(status, ASPEN_STORE_ELEASE);
    assert_int_equal(fs, ASPEN_STORE_RUNNING); /* B's attempt, untouched */
    assert_int_equal(aspen_store_engine_renew(a, ea, 1000, now + 2100, &e), ASPEN_STORE_ELEASE);
    c.output = "b";
    c.output_size = 1;
    assert_int_equal(aspen_store_complete(b, eb, &c, 1, now + 2200, &status, &fs, &e), 0);
    assert_int_equal(status, 0);
    assert_int_equal(fs, ASPEN_STORE_SUCCEEDED);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE job = %lld AND outcome = "
                              "'succeeded'", (long long)id);
    assert_int_equal(sql_int(f, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE job = %lld AND recovered AND "
                              "engine = %lld", (long long)id, (long long)ea);
    assert_int_equal(sql_int(f, sql), 1);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.result_size, 1);
    assert_memory_equal(j.result, "b", 1);
    assert_int_equal(j.attempts, 2);
    aspen_store_job_clear(&j);
    aspen_store_close(a);
    aspen_store_close(b);
}

/* Nobody recovered the expired engine yet: its own late commit does it, so the job does not stay
 * "running" under a lease that will never be renewed, and the result is still refused. */
static void test_late_commit_recovers_its_engine(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    aspen_store *a = pg_open(f);
    int64_t now = aspen_store_now_ms(), ea = 0;
    assert_int_equal(aspen_store_engine_register(a, 1, "hostA", 1000, now, &ea, &e), 0);
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, now);
    int64_t id2 = submit_job(f->s, "echo", 0, 0, 3, now);
    int64_t got[2];
    assert_int_equal(claim_ids(a, ea, 1, now, got), 1);
    assert_int_equal(got[0], id);
    assert_int_equal(reserve_ids(a, ea, 1, now, got), 1); /* id2 reserved, not started */
    aspen_store_completion c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS};
    aspen_store_start m = {.job_id = id2};
    int status = 0, mstatus = 0;
    assert_int_equal(aspen_store_commit(a, ea, &m, 1, &mstatus, &c, 1, now + 1500, &status, NULL,
                                        &e),
                     0);
    assert_int_equal(status, ASPEN_STORE_ELEASE);
    assert_int_equal(mstatus, ASPEN_STORE_ELEASE);
    assert_non_null(strstr(e.msg, "lease had expired"));
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_QUEUED);
    assert_int_equal(state_of(f->s, id2), ASPEN_STORE_QUEUED);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE job = %lld AND recovered",
             (long long)id);
    assert_int_equal(sql_int(f, sql), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM claims"), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM engines WHERE id = %lld", (long long)ea);
    assert_int_equal(sql_int(f, sql), 0);
    /* and the main engine runs both once */
    assert_int_equal(claim_ids(f->s, f->engine, 5, now + 1600, NULL), 2);
    assert_int_equal(complete_one(f->s, f->engine, id, ASPEN_STORE_OUTCOME_SUCCESS, 0, now + 1700), 0);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_SUCCEEDED);
    aspen_store_close(a);
}

/* Another "host": fn runs in a child process whose wall clock is skew_ms off from the start (so
 * its handles measure that skew from the server when they connect, as a real host's would). Up
 * to four numbers come back through a pipe; the child's exit status says whether its checks
 * held (0) or which failed. The child never touches the parent's handles (_exit, no close). */
typedef int host_fn(struct pgfx *f, int64_t out[4]);

static void as_host(struct pgfx *f, int64_t skew_ms, host_fn *fn, int64_t out[4])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        clock_skew_ms = skew_ms;
        int64_t v[4] = {0};
        int rc = fn(f, v);
        if (write(fds[1], v, sizeof v) != (ssize_t)sizeof v)
            rc = 99;
        _exit(rc);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], out, 4 * sizeof *out), (ssize_t)(4 * sizeof *out));
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("host with a clock %+lld ms off: check %d failed", (long long)skew_ms,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* C, 30 s ahead: recovery by its clock would take everything; by the server's, nothing. Then a
 * job due in 2 s of its clock, and a 5 s lease. */
static int host_ahead(struct pgfx *f, int64_t out[4])
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0)
        return 1;
    aspen_store_recovery rep = {0};
    if (aspen_store_recover(s, aspen_store_now_ms(), &rep, &e) != 0)
        return 2;
    if (rep.requeued || rep.engines_removed || rep.failed)
        return 3;
    aspen_store_job_spec spec = {.type = "echo", .run_at_ms = aspen_store_now_ms() + 2000};
    if (aspen_store_submit(s, &spec, aspen_store_now_ms(), &out[0], &e) != 0)
        return 4;
    if (aspen_store_engine_register(s, 3, "C", 5000, aspen_store_now_ms(), &out[1], &e) != 0)
        return 5;
    return 0;
}

/* D, 30 s behind: a 5 s lease that must not look expired at once. */
static int host_behind(struct pgfx *f, int64_t out[4])
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0)
        return 1;
    if (aspen_store_engine_register(s, 4, "D", 5000, aspen_store_now_ms(), &out[0], &e) != 0)
        return 2;
    return 0;
}

/* D again, 6 s later than it is (passing its own clock + 6 s): the leases of 5 s have ended. */
static int host_behind_recovers(struct pgfx *f, int64_t out[4])
{
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0)
        return 1;
    aspen_store_recovery rep = {0};
    if (aspen_store_recover(s, aspen_store_now_ms() + 6000, &rep, &e) != 0)
        return 2;
    out[0] = rep.engines_removed;
    out[1] = rep.requeued;
    return 0;
}

/* Hosts whose clocks are 30 s apart (C ahead, D behind, A right) agree on leases and run_at. */
static void test_skewed_clocks_agree(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    int64_t ea = 0, c[4], d[4];
    assert_int_equal(aspen_store_engine_register(f->s, 1, "A", 5000, aspen_store_now_ms(), &ea, &e), 0);
    int64_t running = submit_job(f->s, "echo", 0, 0, 3, aspen_store_now_ms());
    assert_int_equal(claim_ids(f->s, ea, 1, aspen_store_now_ms(), NULL), 1);
    as_host(f, -30000, host_behind, d);
    as_host(f, 30000, host_ahead, c);
    int64_t later = c[0], ec = c[1], ed = d[0];
    assert_int_equal(state_of(f->s, running), ASPEN_STORE_RUNNING);
    /* For A the job is due in 2 s, not 32 s ago: not claimable now, claimable 2.5 s on. */
    int64_t now = aspen_store_now_ms();
    assert_int_equal(reserve_ids(f->s, ea, 5, now, NULL), 0);
    assert_int_equal(state_of(f->s, later), ASPEN_STORE_SCHEDULED);
    int64_t ids[5];
    assert_int_equal(reserve_ids(f->s, ea, 5, now + 2500, ids), 1);
    assert_int_equal(ids[0], later);
    /* Every lease ends about 5 s from A's now, whoever's clock registered it. */
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_engines(f->s, now, &list, &n, &e), 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].id != ea && list[i].id != ec && list[i].id != ed)
            continue;
        seen++;
        int64_t left = list[i].lease_until_ms - now;
        if (left < 3000 || left > 5500)
            fail_msg("engine %s: lease ends %lld ms from now, want about 5000", list[i].host,
                     (long long)left);
    }
    aspen_store_engines_free(list);
    assert_int_equal(seen, 3);
    /* 6 s on, recovery by D (behind) removes A, C and D and requeues A's job. */
    assert_int_equal(aspen_store_engine_renew(f->s, f->engine, 60000, now + 6000, &e), 0);
    as_host(f, -30000, host_behind_recovers, d);
    assert_int_equal(d[0], 3);
    assert_int_equal(d[1], 1);
    assert_int_equal(state_of(f->s, running), ASPEN_STORE_QUEUED);
}

/* ---- NOTIFY: an idle waiter is woken by a submit ------------------------------------------------ */

static void test_notify_wakes_waiter(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    aspen_store *w = pg_open(f);
    int fd = -1;
    assert_int_equal(aspen_store_wait_fd(w, &fd, &e), 0);
    assert_true(fd >= 0);
    bool woken = true;
    assert_int_equal(aspen_store_notified(w, &woken, &e), 0);
    assert_false(woken);
    /* Nothing announced: the wait times out. */
    assert_int_equal(aspen_store_wait_work(w, 50, &woken, &e), 0);
    assert_false(woken);
    /* A job due later is no work yet; one due now is. */
    submit_job(f->s, "echo", 0, aspen_store_now_ms() + 60000, 3, aspen_store_now_ms());
    assert_int_equal(aspen_store_wait_work(w, 100, &woken, &e), 0);
    assert_false(woken);
    double total = 0, worst = 0;
    for (int i = 0; i < 5; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        submit_job(f->s, "echo", 0, 0, 3, aspen_store_now_ms());
        assert_int_equal(aspen_store_wait_work(w, 10000, &woken, &e), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(woken);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        total += ms;
        worst = ms > worst ? ms : worst;
    }
    print_message("NOTIFY: submit to woken waiter %.2f ms on average, %.2f ms at worst (5 tries)\n",
                  total / 5, worst);
    /* Its connection is killed: the next look reconnects, says "woken" (something may have been
     * missed), and announcements keep coming. */
    PGconn *c = PQconnectdb(f->conninfo);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s'"
             " AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%%'",
             f->dbname);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    PQfinish(c);
    woken = false;
    for (int i = 0; i < 100 && !woken; i++)
        assert_int_equal(aspen_store_wait_work(w, 100, &woken, &e), 0);
    assert_true(woken);
    assert_int_equal(aspen_store_wait_work(w, 50, &woken, &e), 0);
    assert_false(woken);
    submit_job(f->s, "echo", 0, 0, 3, aspen_store_now_ms());
    assert_int_equal(aspen_store_wait_work(w, 10000, &woken, &e), 0);
    assert_true(woken);
    aspen_store_close(w);
}

/* ---- a host gone quiet inside a transaction -------------------------------------------------- */

struct canceller {
    struct pgfx *f;
    int64_t id;
    int rc;
    volatile bool done;
};

static void *cancel_it(void *arg)
{
    struct canceller *c = arg;
    aspen_store *s = pg_open(c->f);
    aspen_store_error e = {0};
    aspen_store_cancel_result res;
    c->rc = aspen_store_cancel(s, c->id, aspen_store_now_ms(), &res, &e);
    aspen_store_close(s);
    c->done = true;
    return NULL;
}

static void test_stopped_host_releases_locks(void **state)
{
    struct pgfx *f = *state;
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, aspen_store_now_ms());
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Locks the job inside a transaction, then stops dead, as a host whose link went down
         * between two statements. */
        aspen_store *s = NULL;
        aspen_store_error e = {0};
        struct store_job_row row;
        if (aspen_store_open(f->conninfo, NULL, &s, &e) != 0 || pg_tx_begin(pgs(s), &e) != 0 ||
            pg_job_read(pgs(s), id, true, &row, &e) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        raise(SIGSTOP);
        _exit(0);
    }
    char x;
    assert_int_equal(read(ready[0], &x, 1), 1);
    struct canceller c = {.f = f, .id = id};
    pthread_t t;
    int64_t t0 = aspen_store_now_ms();
    pthread_create(&t, NULL, cancel_it, &c);
    for (int i = 0; i < 1000 && !c.done; i++)
        usleep(10000);
    int64_t waited = aspen_store_now_ms() - t0;
    bool done = c.done;
    kill(pid, SIGKILL); /* unblocks the cancel in any case */
    waitpid(pid, NULL, 0);
    pthread_join(t, NULL);
    print_message("a cancel waited %lld ms for the locks of a host stopped mid-transaction\n",
                  (long long)waited);
    assert_true(done); /* within 10 s, not when TCP gives up */
    assert_int_equal(c.rc, 0);
    assert_true(waited >= PG_IDLE_IN_TX_MS - 500); /* it did wait on that transaction */
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_CANCELLED);
    close(ready[0]);
    close(ready[1]);
}

/* ---- a job changed between a group commit's read and its UPDATE ------------------------------- */

/* A change to a job committed while a group commit of it is under way. These hold the job's row in
 * another transaction with a change made but not committed, start the commit (which waits for the
 * row: today in its FOR UPDATE read, pg_jobs.c), then commit the change: the commit must decide on
 * the changed row, exactly as if the change had come first. An optimistic commit that reads the
 * rows without locking them and waits only in its UPDATE (tried, docs/BENCHMARKS.md) fails both
 * unless that UPDATE checks the row version it read. */
struct committer {
    aspen_store *s;
    int64_t engine;
    aspen_store_completion c;
    int rc, status;
    aspen_store_state fs;
    aspen_store_error e;
};

static void *complete_it(void *arg)
{
    struct committer *c = arg;
    c->rc = aspen_store_complete(c->s, c->engine, &c->c, 1, aspen_store_now_ms(), &c->status,
                                 &c->fs, &c->e);
    return NULL;
}

static void pq_ok(PGconn *x, const char *sql)
{
    PGresult *r = PQexec(x, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(x));
    PQclear(r);
}

/* Runs c's completion while `change` (SQL on the job) is made in another transaction that commits
 * only once the completion waits for its row lock. */
static void complete_across(struct pgfx *f, struct committer *c, const char *change)
{
    PGconn *x = PQconnectdb(f->conninfo);
    assert_int_equal(PQstatus(x), CONNECTION_OK);
    pq_ok(x, "BEGIN");
    pq_ok(x, change);
    pthread_t t;
    pthread_create(&t, NULL, complete_it, c);
    int64_t waiting = 0;
    for (int i = 0; i < 1000 && waiting == 0; i++) {
        usleep(10000);
        waiting = sql_int(f, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                             " current_database() AND wait_event_type = 'Lock'");
    }
    pq_ok(x, "COMMIT");
    pthread_join(t, NULL);
    PQfinish(x);
    assert_int_equal(waiting, 1); /* the commit did wait for the change's row */
    assert_int_equal(c->rc, 0);
}

/* A cancel request lands while a failed attempt that would be retried is committed: the cancel
 * wins (the job ends cancelled, not queued again with the request forgotten). */
static void test_cancel_during_group_commit(void **state)
{
    struct pgfx *f = *state;
    aspen_store *a = pg_open(f);
    int64_t now = aspen_store_now_ms();
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, now);
    assert_int_equal(claim_ids(a, f->engine, 1, now, NULL), 1);
    struct committer c = {.s = a, .engine = f->engine,
                          .c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_FAILURE,
                                .error = "boom", .retry_at_ms = now}};
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE jobs SET cancel_requested = true WHERE id = %lld",
             (long long)id);
    complete_across(f, &c, sql);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.fs, ASPEN_STORE_CANCELLED);
    assert_int_equal(state_of(f->s, id), ASPEN_STORE_CANCELLED);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE job = %lld AND outcome ="
                              " 'failed'", (long long)id);
    assert_int_equal(sql_int(f, sql), 1); /* the attempt recorded once */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND cancel_requested",
             (long long)id);
    assert_int_equal(sql_int(f, sql), 0);
    aspen_store_close(a);
}

/* The job's lease is lost meanwhile (it was recovered and started again by another engine, as a
 * recovery and a claim elsewhere would leave it): the late result is refused with ELEASE and the
 * other engine's attempt is untouched. */
static void test_lease_lost_during_group_commit(void **state)
{
    struct pgfx *f = *state;
    aspen_store *a = pg_open(f);
    aspen_store_error e = {0};
    int64_t now = aspen_store_now_ms(), other = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 2, "hostB", 60000, now, &other, &e), 0);
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, now);
    assert_int_equal(claim_ids(a, f->engine, 1, now, NULL), 1);
    struct committer c = {.s = a, .engine = f->engine,
                          .c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                                .output = "late", .output_size = 4}};
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE jobs SET owner = %lld, attempts = attempts + 1 WHERE id = %lld",
             (long long)other, (long long)id);
    complete_across(f, &c, sql);
    assert_int_equal(c.status, ASPEN_STORE_ELEASE);
    assert_int_equal(c.fs, ASPEN_STORE_RUNNING);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_RUNNING);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.result_size, 0);
    aspen_store_job_clear(&j);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE job = %lld", (long long)id);
    assert_int_equal(sql_int(f, sql), 0); /* nothing of the refused result was written */
    snprintf(sql, sizeof sql, "SELECT owner FROM jobs WHERE id = %lld", (long long)id);
    assert_int_equal(sql_int(f, sql), other);
    aspen_store_close(a);
}

/* ---- hostile input -------------------------------------------------------------------------------- */

static void test_bad_job_refuses_whole_batch(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    aspen_store_job_spec specs[4] = {
        {.type = "echo"}, {.type = "echo"}, {.type = "echo"}, {.type = "echo"}};
    /* job 3 names a binary that is not stored */
    specs[2].binary_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    int64_t ids[4] = {0};
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 4, aspen_store_now_ms(), ids, &e),
                     ASPEN_STORE_ENOTFOUND);
    assert_non_null(strstr(e.msg, "job 3 of the batch"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs"), 0);
    /* job 2's type is not UTF-8: PostgreSQL refuses it, and the batch with it */
    specs[2].binary_sha256 = NULL;
    specs[1].type = "ech\xff";
    int rc = aspen_store_submit_batch(f->s, specs, 4, aspen_store_now_ms(), ids, &e);
    assert_true(rc < 0);
    assert_non_null(strstr(e.msg, "job 2 of the batch"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs"), 0);
    int64_t counts[ASPEN_STORE_STATE_COUNT] = {0};
    assert_int_equal(aspen_store_counts(f->s, counts, &e), 0);
    assert_int_equal(counts[ASPEN_STORE_QUEUED], 0);
    /* and the handle still works */
    specs[1].type = "echo";
    assert_int_equal(aspen_store_submit_batch(f->s, specs, 4, aspen_store_now_ms(), ids, &e), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM jobs"), 4);
}

static void test_huge_result_and_bad_text_round_trip(void **state)
{
    struct pgfx *f = *state;
    aspen_store_error e = {0};
    size_t size = 8u << 20;
    unsigned char *big = malloc(size);
    for (size_t i = 0; i < size; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 11));
    int64_t now = aspen_store_now_ms();
    int64_t id = submit_job(f->s, "echo", 0, 0, 3, now);
    assert_int_equal(claim_ids(f->s, f->engine, 1, now, NULL), 1);
    aspen_store_log_line logs[3] = {
        {.time_ms = now, .line = "quote \" backslash \\ brace } comma , done"},
        {.time_ms = now, .line = "not utf-8: \xff\xfe end"},
        {.time_ms = now, .line = "\xe2\x82\xac fine"},
    };
    aspen_store_completion c = {.job_id = id, .outcome = ASPEN_STORE_OUTCOME_FAILURE,
                                .output = big, .output_size = size,
                                .error = "bad \xc3 byte", .logs = logs, .n_logs = 3};
    int status = -1;
    assert_int_equal(aspen_store_complete(f->s, f->engine, &c, 1, now, &status, NULL, &e), 0);
    assert_int_equal(status, 0);
    aspen_store_job j;
    assert_int_equal(aspen_store_get(f->s, id, &j, &e), 0);
    assert_int_equal(j.state, ASPEN_STORE_FAILED);
    assert_int_equal(j.result_size, size);
    assert_memory_equal(j.result, big, size);
    assert_string_equal(j.error, "bad \xef\xbf\xbd byte");
    assert_int_equal(j.log_count, 3);
    aspen_store_job_clear(&j);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM logs WHERE job = %lld AND line IN ("
                              "'quote \" backslash \\ brace } comma , done',"
                              " 'not utf-8: \xef\xbf\xbd\xef\xbf\xbd end', '\xe2\x82\xac fine')",
             (long long)id);
    assert_int_equal(sql_int(f, sql), 3);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_hosts_never_claim_one_job, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_four_processes_finish_each_job_once, pg_setup,
                                        pg_teardown),
        cmocka_unit_test_setup_teardown(test_late_result_after_recovery_refused, pg_setup,
                                        pg_teardown),
        cmocka_unit_test_setup_teardown(test_late_commit_recovers_its_engine, pg_setup,
                                        pg_teardown),
        cmocka_unit_test_setup_teardown(test_skewed_clocks_agree, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_notify_wakes_waiter, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_stopped_host_releases_locks, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_group_commit, pg_setup,
                                        pg_teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost_during_group_commit, pg_setup,
                                        pg_teardown),
        cmocka_unit_test_setup_teardown(test_bad_job_refuses_whole_batch, pg_setup, pg_teardown),
        cmocka_unit_test_setup_teardown(test_huge_result_and_bad_text_round_trip, pg_setup,
                                        pg_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
