/* tests/engine/test_engine_claims.c — what people see of claims and store failures, through one
 * engine in this process (the several-process cases are in test_engine_procs.c).
 *
 *   priority        a priority-100 job submitted behind 200 priority-0 jobs starts before almost
 *                   all of them with 2 workers (the engine reserves only what it can start soon)
 *   durations       a job's started_at is when its worker began it: the queue wait is not in its
 *                   duration (finished_at − started_at), and the attempt row says the same
 *   cancel          cancelling a queued job while every worker is busy cancels it at once (it was
 *                   never running and is charged nothing)
 *   prefetch bound  jobs prefetched behind a long job are given back and a second engine runs them
 *                   before the long job ends
 *   prefetch size   25 ms of the start rate; twice the store thread's recent group time when that
 *                   is longer (up to 80 ms), so the workers do not run dry while a group is
 *                   written; never more than 4 × claim_batch
 *   held groups     a group commit stays open past commit_interval_ms (up to commit_busy_ms)
 *                   only while the engine is saturated: never for jobs that leave the ready queue
 *                   empty, nor when commit_busy_ms is not the longer; held under a backlog of
 *                   1 ms jobs, and every job still succeeds exactly once
 *   priorities      the store thread (it feeds every worker) runs ENG_STORE_NICE_BOOST above the
 *                   process when allowed (root, as this suite runs), the workers at its priority
 *   schema missing  a permanent store error (a table dropped under a running engine) stops the
 *                   engine with a message that wait_idle returns, instead of retrying for ever
 *   disk full       a real 16 MiB tmpfs (own mount namespace, needs root as the rest of this suite
 *                   runs here) filled up under a running engine: clear messages, no progress, no
 *                   loss; space freed: the engine resumes and every job succeeds exactly once
 * KVM is required by the engine (fail, never skip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "engine_internal.h" /* eng_prefetch_jobs, eng_group_close_ms */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_TMP_PREFIX "aspen-engine-claims"
#include "test_support.h"

static aspen_engine *open_eng_at(const char *db, int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = db;
    cfg.workers = workers;
    cfg.guest_dir = GUEST_DIR;
    return open_cfg(&cfg);
}

static aspen_engine *open_eng(int workers) { return open_eng_at(g_db, workers); }

static int64_t count(aspen_engine *eng, aspen_store_state st)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_counts(eng, c, &err), 0);
    return c[st];
}

static aspen_store_job get(aspen_engine *eng, int64_t id)
{
    aspen_store_job j = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_get(eng, id, &j, &err), 0);
    return j;
}

/* n sleep jobs of `ms` each at `priority`; ids into ids. */
static void submit_sleeps(aspen_engine *eng, int n, int ms, int priority, int64_t *ids)
{
    char payload[64];
    snprintf(payload, sizeof payload, "{\"ms\":%d}", ms);
    aspen_engine_job_spec *specs = calloc((size_t)n, sizeof *specs);
    for (int i = 0; i < n; i++)
        specs[i] = (aspen_engine_job_spec){.type = "sleep", .payload = payload,
                                           .priority = priority};
    aspen_engine_error err = {0};
    int rc = aspen_engine_submit_batch(eng, specs, (size_t)n, ids, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, 0);
    free(specs);
}

static void test_priority_jumps_the_queue(void **state)
{
    (void)state;
    enum { N = 200 };
    aspen_engine *eng = open_eng(2);
    static int64_t low[N];
    submit_sleeps(eng, N, 10, 0, low);
    start(eng);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_SUCCEEDED) < 6) { /* steady state: the rate is known */
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    int64_t urgent;
    submit_sleeps(eng, 1, 10, 100, &urgent);
    int64_t submitted_at = aspen_store_now_ms();
    t0 = now_ms();
    for (;;) {
        aspen_store_job j = get(eng, urgent);
        bool done = j.state == ASPEN_STORE_SUCCEEDED;
        aspen_store_job_clear(&j);
        if (done)
            break;
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    aspen_store_job u = get(eng, urgent);
    int64_t urgent_start = u.started_at_ms;
    aspen_store_job_clear(&u);
    int before = 0, between = 0;
    for (int i = 0; i < N; i++) {
        aspen_store_job j = get(eng, low[i]);
        if (j.started_at_ms && j.started_at_ms < urgent_start) {
            before++;
            if (j.started_at_ms >= submitted_at)
                between++;
        }
        aspen_store_job_clear(&j);
    }
    fprintf(stderr, "the priority-100 job started after %d of %d priority-0 jobs (%d of them after "
                    "it was submitted)\n", before, N, between);
    /* Before: all 200 were claimed into running at once, and it started last. */
    assert_true(before < N / 4);
    /* what was already reserved when it came: the two workers' next jobs and the prefetch
     * (25 ms at 2 jobs per 10 ms: 5; up to 80 ms, 16, while group commits are slow), plus one
     * claim's rounding */
    assert_true(between <= 19);
    aspen_engine_close(eng); /* the rest go back to the queue */
}

static void test_durations_exclude_the_wait(void **state)
{
    (void)state;
    enum { N = 12, MS = 30 };
    aspen_engine *eng = open_eng(1);
    int64_t ids[N];
    submit_sleeps(eng, N, MS, 0, ids);
    start(eng);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_wait_idle(eng, 60000, true, &err), 0);
    int64_t longest_wait = 0;
    for (int i = 0; i < N; i++) {
        aspen_store_job j = get(eng, ids[i]);
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        int64_t ran = j.finished_at_ms - j.started_at_ms, waited = j.started_at_ms - j.created_at_ms;
        if (waited > longest_wait)
            longest_wait = waited;
        /* A 30 ms job, whatever it waited: scheduling noise and one group commit on a loaded
         * machine (the wait of the last ones is over 300 ms; equal start times below are what
         * tells a run from a wait exactly) */
        if (ran < MS || ran > MS + 1000)
            fail_msg("job %d ran %lld ms (waited %lld ms)", i, (long long)ran, (long long)waited);
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(a[0].started_at_ms, j.started_at_ms);
        aspen_store_attempts_free(a, n);
        aspen_store_job_clear(&j);
    }
    /* one worker: the last job waited for the eleven before it, and that is not in its duration */
    assert_true(longest_wait >= (N - 1) * MS);
    aspen_engine_close(eng);
}

static void test_cancel_queued_while_busy(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    int64_t busy[2], waiting[4];
    submit_sleeps(eng, 2, 3000, 1, busy);
    submit_sleeps(eng, 4, 10, 0, waiting);
    start(eng);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_RUNNING) < 2) {
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    sleep_ms(100); /* the engine has had every chance to claim the rest */
    aspen_store_job w = get(eng, waiting[3]);
    assert_int_equal(w.state, ASPEN_STORE_QUEUED);
    assert_int_equal(w.attempts, 0);
    aspen_store_job_clear(&w);
    bool requested = true;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_cancel(eng, waiting[3], &requested, &err), 0);
    assert_false(requested); /* it was queued, not running: cancelled now */
    w = get(eng, waiting[3]);
    assert_int_equal(w.state, ASPEN_STORE_CANCELLED);
    assert_int_equal(w.attempts, 0);
    assert_string_equal(w.error, "cancelled before it ran");
    aspen_store_job_clear(&w);
    /* the others still run once the workers are free; the cancelled one never does */
    assert_int_equal(aspen_engine_wait_idle(eng, 60000, true, &err), 0);
    for (int i = 0; i < 3; i++) {
        w = get(eng, waiting[i]);
        assert_int_equal(w.state, ASPEN_STORE_SUCCEEDED);
        aspen_store_job_clear(&w);
    }
    aspen_store_attempt *a = NULL;
    size_t n = 9;
    assert_int_equal(aspen_engine_attempts(eng, waiting[3], &a, &n, &err), 0);
    assert_int_equal(n, 0);
    aspen_store_attempts_free(a, n);
    aspen_engine_close(eng);
}

/* Prefetch is time-bounded: jobs an engine prefetched while its only worker ran short jobs, then
 * stuck behind a long one, are given back within ~200 ms and another engine runs them meanwhile. */
static void test_stale_prefetch_given_back(void **state)
{
    (void)state;
    aspen_engine *a = open_eng(1);
    int64_t first[40], slow, after[10];
    submit_sleeps(a, 40, 5, 0, first);
    submit_sleeps(a, 1, 2500, 0, &slow);
    submit_sleeps(a, 10, 5, 0, after);
    start(a);
    int64_t t0 = now_ms();
    for (;;) { /* the long job has started on a's only worker */
        aspen_store_job j = get(a, slow);
        bool running = j.state == ASPEN_STORE_RUNNING;
        aspen_store_job_clear(&j);
        if (running)
            break;
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    aspen_engine *b = open_eng(1);
    start(b);
    aspen_engine_error err = {0};
    t0 = now_ms();
    for (;;) {
        int done = 0;
        for (int i = 0; i < 10; i++) {
            aspen_store_job j = get(b, after[i]);
            done += j.state == ASPEN_STORE_SUCCEEDED;
            aspen_store_job_clear(&j);
        }
        if (done == 10)
            break;
        aspen_store_job j = get(b, slow);
        bool slow_done = j.state == ASPEN_STORE_SUCCEEDED;
        aspen_store_job_clear(&j);
        /* before the long job is over: none of them waited for it */
        if (slow_done)
            fail_msg("only %d of the 10 jobs behind the long one ran while it did", done);
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(5);
    }
    for (int i = 0; i < 10; i++) {
        aspen_store_attempt *x = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(b, after[i], &x, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(x[0].engine_id, aspen_engine_id(b));
        aspen_store_attempts_free(x, n);
    }
    aspen_engine_close(b);
    aspen_engine_close(a);
}

static void exec_sql(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(h);
}

static void test_missing_table_stops_the_engine(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    int64_t ids[20];
    submit_sleeps(eng, 20, 5, 0, ids);
    exec_sql(g_db, "DROP TABLE attempts");
    start(eng);
    aspen_engine_error err = {0};
    int64_t t0 = now_ms();
    int rc = aspen_engine_wait_idle(eng, 20000, true, &err);
    fprintf(stderr, "wait_idle after %lld ms: %d %s\n", (long long)(now_ms() - t0), rc, err.msg);
    assert_true(rc < 0); /* an error, not "still busy" after 20 s of retrying */
    assert_true(now_ms() - t0 < 15000);
    assert_non_null(strstr(err.msg, "missing part of Aspen's schema"));
    assert_non_null(strstr(err.msg, "attempts"));
    /* nothing was marked done that was not written */
    assert_int_equal(count(eng, ASPEN_STORE_SUCCEEDED), 0);
    aspen_engine_close(eng);
}

/* ---- disk full ---------------------------------------------------------------------------------- */

struct watch {
    atomic_int full_msgs, resumed_msgs, succeeded;
    char first_full[1024];
};

static void on_event(const aspen_engine_event *ev, void *user)
{
    struct watch *w = user;
    if (ev->type == ASPEN_ENGINE_EV_ENGINE && ev->message) {
        if (strstr(ev->message, "disk full") && atomic_fetch_add(&w->full_msgs, 1) == 0)
            snprintf(w->first_full, sizeof w->first_full, "%s", ev->message);
        if (strstr(ev->message, "accepts writes again"))
            atomic_fetch_add(&w->resumed_msgs, 1);
    }
    if (ev->type == ASPEN_ENGINE_EV_JOB_STATE && ev->state == ASPEN_STORE_SUCCEEDED)
        atomic_fetch_add(&w->succeeded, 1);
}

static int disk_full_child(void)
{
    enum { N = 120 };
    char dir[300], db[340], filler[340];
    child_small_disk(dir, sizeof dir, db, sizeof db);

    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = db;
    cfg.workers = 2;
    cfg.guest_dir = GUEST_DIR;
    cfg.lease_ms = 60000; /* the store may refuse renewals while full: keep the lease meanwhile */
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    CHILD_CHECK(aspen_engine_open(&cfg, &eng, &err) == 0, "open: %s", err.msg);
    /* 4 KiB payloads: a state change that rewrote them would need far more room */
    static char payload[4200];
    int len = snprintf(payload, sizeof payload, "{\"ms\":20,\"pad\":\"");
    memset(payload + len, 'p', 4096);
    snprintf(payload + len + 4096, sizeof payload - (size_t)len - 4096, "\"}");
    static aspen_engine_job_spec specs[N];
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        specs[i] = (aspen_engine_job_spec){.type = "sleep", .payload = payload};
    CHILD_CHECK(aspen_engine_submit_batch(eng, specs, N, ids, &err) == 0, "submit: %s", err.msg);
    static struct watch w;
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_ENGINE | ASPEN_ENGINE_EV_JOB_STATE, on_event, &w);
    CHILD_CHECK(aspen_engine_start(eng, &err) == 0, "start: %s", err.msg);
    int64_t t0 = now_ms();
    while (atomic_load(&w.succeeded) < 10) {
        CHILD_CHECK(now_ms() - t0 < 30000, "no progress before the disk filled");
        sleep_ms(2);
    }
    CHILD_CHECK(fill_disk(dir, filler, sizeof filler) == 0, "filling the tmpfs: %s",
                strerror(errno));
    t0 = now_ms();
    while (atomic_load(&w.full_msgs) == 0) {
        CHILD_CHECK(now_ms() - t0 < 30000, "the engine never reported the full disk (%d done)",
                    atomic_load(&w.succeeded));
        sleep_ms(5);
    }
    fprintf(stderr, "disk full after %d jobs: %s\n", atomic_load(&w.succeeded), w.first_full);
    CHILD_CHECK(strstr(w.first_full, "Free space"), "the message says what to do");
    /* six seconds of failing writes: the engine retries with backoff and keeps what it holds
     * (it used to give up after 50 tries, about 4 s, and drop the finished jobs: they stayed
     * running for good) */
    sleep_ms(6000);
    fprintf(stderr, "%d jobs done while the disk was full\n", atomic_load(&w.succeeded));
    CHILD_CHECK(unlink(filler) == 0, "unlink filler: %s", strerror(errno));
    int rc = aspen_engine_wait_idle(eng, 60000, true, &err);
    CHILD_CHECK(rc == 0, "not idle a minute after space was freed (%d): %s", rc, err.msg);
    CHILD_CHECK(atomic_load(&w.resumed_msgs) >= 1, "no message that writes resumed");
    for (int i = 0; i < N; i++) {
        aspen_store_job j = {0};
        CHILD_CHECK(aspen_engine_get(eng, ids[i], &j, &err) == 0, "get: %s", err.msg);
        CHILD_CHECK(j.state == ASPEN_STORE_SUCCEEDED, "job %d is %s", i,
                    aspen_store_state_name(j.state));
        aspen_store_job_clear(&j);
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        CHILD_CHECK(aspen_engine_attempts(eng, ids[i], &a, &n, &err) == 0, "attempts: %s",
                    err.msg);
        CHILD_CHECK(n == 1 && strcmp(a[0].outcome, "succeeded") == 0,
                    "job %d has %zu attempts (double completion or a lost one)", i, n);
        aspen_store_attempts_free(a, n);
    }
    fprintf(stderr, "all %d jobs succeeded exactly once after the disk was freed\n", N);
    aspen_engine_close(eng);
    umount(dir);
    return 0;
}

static void test_prefetch_follows_group_time(void **state)
{
    (void)state;
    /* 30 jobs/ms (30,000 jobs/s), claim_batch 256: the cap is 1,024 */
    assert_int_equal(eng_prefetch_jobs(30, 0, 256), 750);   /* 25 ms */
    assert_int_equal(eng_prefetch_jobs(30, 5, 256), 750);   /* short groups: still 25 ms */
    assert_int_equal(eng_prefetch_jobs(10, 20, 256), 400);  /* 20 ms groups: 40 ms of work */
    assert_int_equal(eng_prefetch_jobs(10, 100, 256), 800); /* long groups: at most 80 ms */
    assert_int_equal(eng_prefetch_jobs(30, 30, 256), 1024); /* and at most 4 × claim_batch */
    assert_int_equal(eng_prefetch_jobs(0.001, 30, 256), 0); /* one-second jobs: none */
}

static void test_group_close_rule(void **state)
{
    (void)state;
    assert_int_equal(eng_group_close_ms(100, 2, 8, false), 102); /* not saturated: the interval */
    assert_int_equal(eng_group_close_ms(100, 2, 8, true), 108);  /* saturated: the busy bound */
    assert_int_equal(eng_group_close_ms(100, 5, 1, true), 105);  /* a shorter busy bound: never */
    assert_int_equal(eng_group_close_ms(100, 2, 2, true), 102);  /* equal: held off */
    assert_int_equal(eng_group_close_ms(100, 2, -7, true), 102); /* nonsense: the interval */
}

static aspen_engine_throughput throughput(aspen_engine *eng)
{
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_snapshot_get(eng, snap, &err), 0);
    aspen_engine_throughput t = snap->throughput;
    free(snap);
    return t;
}

static void wait_succeeded(aspen_engine *eng, int64_t n)
{
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_SUCCEEDED) < n) {
        assert_true(now_ms() - t0 < 60000);
        sleep_ms(2);
    }
}

/* Every job of ids succeeded with exactly one attempt (a held group lost or doubled nothing). */
static void each_once(aspen_engine *eng, const int64_t *ids, int n)
{
    aspen_engine_error err = {0};
    for (int i = 0; i < n; i++) {
        aspen_store_job j = get(eng, ids[i]);
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        assert_int_equal(j.attempts, 1);
        aspen_store_job_clear(&j);
        aspen_store_attempt *a = NULL;
        size_t k = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &k, &err), 0);
        assert_int_equal(k, 1);
        aspen_store_attempts_free(a, k);
    }
}

static void test_group_held_only_when_saturated(void **state)
{
    (void)state;
    enum { SINGLES = 8, N = 600 };
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    assert_int_equal(cfg.commit_interval_ms, 2);
    assert_int_equal(cfg.commit_busy_ms, 8);
    cfg.db_path = g_db;
    cfg.workers = 2;
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *eng = open_cfg(&cfg);
    start(eng);
    /* One job at a time: its worker leaves the queue empty, so no group is ever held, however
     * slowly the machine runs. */
    int64_t singles[SINGLES];
    for (int i = 0; i < SINGLES; i++) {
        submit_sleeps(eng, 1, 1, 0, &singles[i]);
        wait_succeeded(eng, i + 1);
    }
    aspen_engine_throughput t = throughput(eng);
    assert_true(t.commits >= 1);
    assert_int_equal(t.commits_held, 0);
    each_once(eng, singles, SINGLES);

    /* A backlog of 1 ms jobs (2 workers start ~2 a ms, the prefetch keeps ~50 waiting): groups
     * are held past the 2 ms interval, and none of the jobs is lost or run twice for it. */
    static int64_t ids[N];
    submit_sleeps(eng, N, 1, 0, ids);
    wait_succeeded(eng, SINGLES + N);
    aspen_engine_throughput u = throughput(eng);
    fprintf(stderr, "backlog: %llu group commits, %llu of them held\n",
            (unsigned long long)(u.commits - t.commits), (unsigned long long)u.commits_held);
    assert_true(u.commits_held > 0);
    assert_true(u.commits_held <= u.commits);
    each_once(eng, ids, N);
    aspen_engine_close(eng);

    /* commit_busy_ms not above the interval: the same backlog holds no group. */
    cfg.commit_busy_ms = 1;
    eng = open_cfg(&cfg);
    start(eng);
    submit_sleeps(eng, N, 1, 0, ids);
    wait_succeeded(eng, SINGLES + 2 * N);
    u = throughput(eng);
    assert_true(u.commits >= 1);
    assert_int_equal(u.commits_held, 0);
    each_once(eng, ids, N);

    /* Closing while groups are held (a backlog still running) ends at once with the finished
     * jobs written: nothing waits out a held group, and what did not run stays queued. */
    aspen_engine_close(eng);
    cfg.commit_busy_ms = 0; /* the default */
    eng = open_cfg(&cfg);
    start(eng);
    submit_sleeps(eng, N, 1, 0, ids);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_SUCCEEDED) < SINGLES + 2 * N + 20) {
        assert_true(now_ms() - t0 < 60000);
        sleep_ms(1);
    }
    aspen_engine_close(eng);
    eng = open_eng(0); /* a client: reads the store, runs nothing */
    int64_t done = count(eng, ASPEN_STORE_SUCCEEDED) - (SINGLES + 2 * N);
    int64_t queued = count(eng, ASPEN_STORE_QUEUED);
    assert_int_equal(count(eng, ASPEN_STORE_RUNNING), 0);
    assert_int_equal(done + queued, N);
    aspen_engine_close(eng);
}

/* The nice value of thread tid of this process (field 19 of its stat), or -100. */
static int thread_nice(const char *tid)
{
    char path[300], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -100;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (!p)
        return -100;
    p++;
    for (int field = 3; field < 19 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    return p ? atoi(p + 1) : -100;
}

static void test_store_thread_runs_first(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    start(eng);
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    /* the store thread raises its priority as it starts: wait for it (root may; others stay) */
    int boost = geteuid() == 0 ? ENG_STORE_NICE_BOOST : 0;
    int workers = 0, stores = 0, bad = 0;
    for (int tries = 0; tries < 500; tries++) {
        workers = stores = bad = 0;
        DIR *d = opendir("/proc/self/task");
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[300], comm[32] = "";
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
            if (strncmp(comm, "aspen-worker", 12) == 0) {
                workers++;
                bad += thread_nice(e->d_name) != base;
            } else if (strncmp(comm, "aspen-store", 11) == 0) {
                stores++;
                bad += thread_nice(e->d_name) != base - boost;
            }
        }
        closedir(d);
        if (workers == 2 && stores == 1 && bad == 0)
            break;
        sleep_ms(10);
    }
    assert_int_equal(bad, 0);
    assert_int_equal(workers, 2);
    assert_int_equal(stores, 1);
    aspen_engine_close(eng);
}

static void test_disk_full_then_freed(void **state)
{
    (void)state;
    run_in_child(disk_full_child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_priority_jumps_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durations_exclude_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_queued_while_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_prefetch_given_back, setup, teardown),
        cmocka_unit_test(test_prefetch_follows_group_time),
        cmocka_unit_test(test_group_close_rule),
        cmocka_unit_test_setup_teardown(test_group_held_only_when_saturated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_thread_runs_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_stops_the_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_then_freed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
