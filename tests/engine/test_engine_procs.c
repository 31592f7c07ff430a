/* tests/engine/test_engine_procs.c — several processes on one database, and the crash test.
 *
 *   two processes    a forked child submits jobs one by one through its own engine while this
 *                    process's engine runs them; then `aspen submit` (the real CLI) does the same.
 *   crash            `aspen worker` runs 1,000 jobs (VM jobs and in-process sleep jobs mixed); it is
 *                    killed with SIGKILL in the middle, and `aspen worker --until-idle` is started
 *                    again: once the dead engine's lease expires its jobs are recovered and run.
 *                    Checked in the store: all 1,000 succeeded, none lost, none completed twice
 *                    (exactly one "succeeded" attempt per job; any other attempt is "recovered").
 *   sharing          a second `aspen worker` on the same database runs jobs while this engine does
 *   cancel           `aspen cancel` of a job waiting behind busy workers cancels it (not "running")
 *   kill -9 x 3      only jobs that were running are charged an attempt, none fails unrun
 *   missing table    `aspen worker --until-idle` stops with the store's message and status 1
 * KVM is required (fail, never skip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"

#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUIET GUEST_DIR "/test-quiet-echo"

#define TEST_TMP_PREFIX "aspen-engine-procs"
#include "test_support.h"

static aspen_engine *open_eng(int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    return open_cfg(&cfg);
}

static int64_t count(aspen_engine *eng, aspen_store_state st)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_counts(eng, c, &err), 0);
    return c[st];
}

/* Runs ASPEN_BIN with args; returns its pid (not waited for). */
static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(10);
    }
}

static void test_two_processes(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    aspen_engine_error err = {0};
    /* fork before the engine's threads exist */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        aspen_engine_config cfg;
        aspen_engine_config_default(&cfg);
        cfg.db_path = g_db;
        cfg.workers = 0;
        aspen_engine *c = NULL;
        if (aspen_engine_open(&cfg, &c, &err) != 0)
            _exit(10);
        sleep_ms(100);
        for (int i = 0; i < 300; i++) {
            char payload[64];
            snprintf(payload, sizeof payload, "{\"from\":\"child\",\"i\":%d}", i);
            aspen_engine_job_spec s = {.guest = QUIET, .payload = payload};
            int64_t id;
            if (aspen_engine_submit(c, &s, &id, &err) != 0)
                _exit(11);
        }
        aspen_engine_close(c);
        _exit(0);
    }
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the CLI in another process */
    char *argv[] = {ASPEN_BIN, "submit", QUIET, "--payload", "{\"from\":\"cli\"}", "--db", g_db,
                    NULL};
    assert_int_equal(wait_exit(spawn(argv), 30000), 0);
    assert_int_equal(aspen_engine_wait_idle(eng, 30000, true, &err), 0);
    assert_int_equal(count(eng, ASPEN_STORE_SUCCEEDED), 301);
    aspen_store_filter f = {0};
    char buf[256];
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_filter_parse("payload.from:cli", &f, buf, sizeof buf, &se), 0);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_list(eng, &f, &jobs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].state, ASPEN_STORE_SUCCEEDED);
    aspen_store_jobs_free(jobs, n);
    aspen_engine_close(eng);
}

static void test_crash_kill9(void **state)
{
    (void)state;
    enum { N = 1000 };
    aspen_engine *eng = open_eng(0);
    aspen_engine_error err = {0};
    aspen_engine_job_spec *specs = calloc(N, sizeof *specs);
    for (int i = 0; i < N; i++)
        specs[i] = i % 2 ? (aspen_engine_job_spec){.type = "sleep", .payload = "{\"ms\":4}"}
                         : (aspen_engine_job_spec){.guest = QUIET, .payload = "{\"vm\":1}"};
    int64_t ids[N];
    assert_int_equal(aspen_engine_submit_batch(eng, specs, N, ids, &err), 0);
    free(specs);

    char *run[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--db", g_db, NULL};
    pid_t w = spawn(run);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_SUCCEEDED) < 200) {
        assert_true(now_ms() - t0 < 60000);
        sleep_ms(5);
    }
    kill(w, SIGKILL);
    int status;
    waitpid(w, &status, 0);
    int64_t done = count(eng, ASPEN_STORE_SUCCEEDED), running = count(eng, ASPEN_STORE_RUNNING);
    fprintf(stderr, "killed the worker with %lld succeeded, %lld running (claimed)\n",
            (long long)done, (long long)running);
    assert_true(done < N); /* really in the middle */
    assert_true(running > 0);

    char *again[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--until-idle",
                     "--db", g_db, NULL};
    t0 = now_ms();
    assert_int_equal(wait_exit(spawn(again), 120000), 0);
    fprintf(stderr, "restarted worker finished in %lld ms (the dead engine's lease is 5 s)\n",
            (long long)(now_ms() - t0));

    assert_int_equal(count(eng, ASPEN_STORE_SUCCEEDED), N);
    int64_t recovered = 0;
    for (int i = 0; i < N; i++) {
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &n, &err), 0);
        int ok = 0;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(a[k].outcome, "succeeded") == 0)
                ok++;
            else {
                assert_string_equal(a[k].outcome, "recovered");
                assert_true(a[k].recovered);
                recovered++;
            }
        }
        if (ok != 1)
            fprintf(stderr, "job %lld completed %d times\n", (long long)ids[i], ok);
        assert_int_equal(ok, 1);
        aspen_store_job j = {0};
        assert_int_equal(aspen_engine_get(eng, ids[i], &j, &err), 0);
        assert_int_equal(j.attempts, (int)n);
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        aspen_store_job_clear(&j);
        aspen_store_attempts_free(a, n);
    }
    fprintf(stderr, "all %d jobs succeeded exactly once; %lld lost attempts recovered\n", N,
            (long long)recovered);
    assert_true(recovered > 0);
    aspen_engine_close(eng);
}

/* Runs argv with stdout and stderr into one buffer; returns the exit status (-1 on timeout). */
static int run_capture(char *const argv[], char *out, size_t cap, int timeout_ms)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    size_t len = 0;
    int64_t until = now_ms() + timeout_ms;
    int status = 0, rc = -2;
    for (;;) {
        ssize_t r;
        while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
            len += (size_t)r;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
                len += (size_t)r;
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            rc = -1;
            break;
        }
        sleep_ms(10);
    }
    out[len] = '\0';
    close(fds[0]);
    return rc;
}

static void submit_sleeps(aspen_engine *eng, int n, int ms, int64_t *ids)
{
    char payload[64];
    snprintf(payload, sizeof payload, "{\"ms\":%d}", ms);
    aspen_engine_job_spec *specs = calloc((size_t)n, sizeof *specs);
    for (int i = 0; i < n; i++)
        specs[i] = (aspen_engine_job_spec){.type = "sleep", .payload = payload};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit_batch(eng, specs, (size_t)n, ids, &err), 0);
    free(specs);
}

/* A second worker process on the same database takes its share at once: both engines run jobs at
 * the same time (before, the first engine had claimed every job into running and the second one
 * waited idle until they were all done). */
static void test_second_process_shares(void **state)
{
    (void)state;
    enum { N = 40 };
    aspen_engine *eng = open_eng(2);
    aspen_engine_error err = {0};
    int64_t ids[N];
    submit_sleeps(eng, N, 300, ids); /* 6 s for this engine alone: time for the other to start */
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_RUNNING) < 2) {
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    int64_t mine = aspen_engine_id(eng);
    char *run[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--until-idle", "--db", g_db,
                   NULL};
    assert_int_equal(wait_exit(spawn(run), 60000), 0);
    assert_int_equal(aspen_engine_wait_idle(eng, 30000, true, &err), 0);
    assert_int_equal(count(eng, ASPEN_STORE_SUCCEEDED), N);
    int by_me = 0, by_other = 0;
    int64_t my_last_start = 0, other_first_start = INT64_MAX;
    for (int i = 0; i < N; i++) {
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &n, &err), 0);
        assert_int_equal(n, 1); /* nobody charged an attempt for a job it did not run */
        if (a[0].engine_id == mine) {
            by_me++;
            if (a[0].started_at_ms > my_last_start)
                my_last_start = a[0].started_at_ms;
        } else {
            by_other++;
            if (a[0].started_at_ms < other_first_start)
                other_first_start = a[0].started_at_ms;
        }
        aspen_store_attempts_free(a, n);
    }
    fprintf(stderr, "engine %lld ran %d jobs, the other process %d; its first start was %lld ms "
                    "before this engine's last\n",
            (long long)mine, by_me, by_other, (long long)(my_last_start - other_first_start));
    assert_true(by_other >= N / 4);
    assert_true(by_me >= N / 4);
    assert_true(other_first_start < my_last_start); /* at the same time, not one after the other */
    aspen_engine_close(eng);
}

/* `aspen cancel` of a job still waiting while every worker is busy: it was never running. */
static void test_cli_cancel_queued(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(2);
    aspen_engine_error err = {0};
    int64_t busy[2], waiting[3];
    submit_sleeps(eng, 2, 3000, busy);
    submit_sleeps(eng, 3, 10, waiting);
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    int64_t t0 = now_ms();
    while (count(eng, ASPEN_STORE_RUNNING) < 2) {
        assert_true(now_ms() - t0 < 30000);
        sleep_ms(2);
    }
    sleep_ms(100);
    char id[32], out[4096];
    snprintf(id, sizeof id, "%lld", (long long)waiting[2]);
    char *cancel[] = {ASPEN_BIN, "cancel", id, "--db", g_db, NULL};
    assert_int_equal(run_capture(cancel, out, sizeof out, 30000), 0);
    fprintf(stderr, "aspen cancel: %s", out);
    assert_non_null(strstr(out, "cancelled"));
    assert_null(strstr(out, "running"));
    aspen_store_job j = {0};
    assert_int_equal(aspen_engine_get(eng, waiting[2], &j, &err), 0);
    assert_int_equal(j.state, ASPEN_STORE_CANCELLED);
    assert_int_equal(j.attempts, 0);
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
}

/* kill -9 of a worker three times while 20 jobs wait: only the jobs that were running are charged
 * an attempt (before, every claimed job was, and 17 of 20 failed "out of attempts", 16 of them
 * having never run). */
static void test_kill9_charges_only_running(void **state)
{
    (void)state;
    enum { N = 20, KILLS = 3, WORKERS = 2 };
    aspen_engine *eng = open_eng(0);
    aspen_engine_error err = {0};
    int64_t ids[N];
    submit_sleeps(eng, N, 300, ids);
    char *run[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--db", g_db, NULL};
    for (int k = 0; k < KILLS; k++) {
        int64_t done0 = count(eng, ASPEN_STORE_SUCCEEDED), spawned = aspen_store_now_ms();
        pid_t w = spawn(run);
        int64_t t0 = now_ms();
        /* mid-run: something finished under this worker and both its workers run a job (jobs
         * of the worker killed before stay running until its lease lapses and they are
         * recovered: they are not this worker's) */
        for (;;) {
            if (now_ms() - t0 >= 60000) { /* never leave the worker behind */
                kill(w, SIGKILL);
                waitpid(w, NULL, 0);
                fail_msg("kill %d: the worker never had both its workers busy", k + 1);
            }
            sleep_ms(5);
            if (count(eng, ASPEN_STORE_SUCCEEDED) < done0 + 1)
                continue;
            aspen_store_filter f = {.states = 1u << ASPEN_STORE_RUNNING, .limit = -1};
            aspen_store_job *running = NULL;
            size_t n = 0;
            assert_int_equal(aspen_engine_list(eng, &f, &running, &n, &err), 0);
            int fresh = 0;
            for (size_t x = 0; x < n; x++)
                fresh += running[x].started_at_ms >= spawned;
            aspen_store_jobs_free(running, n);
            if (fresh == WORKERS)
                break;
        }
        kill(w, SIGKILL);
        int status;
        waitpid(w, &status, 0);
        fprintf(stderr, "kill %d: %lld succeeded, %lld running, %lld queued\n", k + 1,
                (long long)count(eng, ASPEN_STORE_SUCCEEDED),
                (long long)count(eng, ASPEN_STORE_RUNNING),
                (long long)count(eng, ASPEN_STORE_QUEUED));
    }
    char *again[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--until-idle", "--db", g_db,
                     NULL};
    assert_int_equal(wait_exit(spawn(again), 120000), 0);
    int recovered = 0;
    for (int i = 0; i < N; i++) {
        aspen_store_job j = {0};
        assert_int_equal(aspen_engine_get(eng, ids[i], &j, &err), 0);
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &n, &err), 0);
        assert_int_equal(j.attempts, (int)n); /* every charged attempt is one that started */
        int lost = 0;
        for (size_t x = 0; x < n; x++)
            if (a[x].recovered) {
                lost++;
                assert_true(a[x].started_at_ms > 0); /* it had really started */
            }
        recovered += lost;
        if (j.state != ASPEN_STORE_SUCCEEDED)
            fprintf(stderr, "job %lld is %s after %d lost attempts: %s\n", (long long)ids[i],
                    aspen_store_state_name(j.state), lost, j.error ? j.error : "");
        /* out of attempts only if it was running at every kill */
        assert_true(j.state == ASPEN_STORE_SUCCEEDED || lost == KILLS);
        aspen_store_job_clear(&j);
        aspen_store_attempts_free(a, n);
    }
    fprintf(stderr, "%d lost attempts over %d kills of a %d-worker engine\n", recovered, KILLS,
            WORKERS);
    assert_true(recovered <= KILLS * WORKERS);
    assert_true(recovered >= 1);
    aspen_engine_close(eng);
}

/* `aspen worker --until-idle` on a database that lost a table: a permanent error, so it stops and
 * says so (before, it retried for ever and never exited). */
static void test_worker_exits_on_missing_table(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    int64_t ids[5];
    submit_sleeps(eng, 5, 5, ids);
    aspen_engine_close(eng);
    char sql[400];
    snprintf(sql, sizeof sql, "DROP TABLE attempts");
    char *drop[] = {"/usr/bin/sqlite3", g_db, sql, NULL};
    char out[8192];
    assert_int_equal(run_capture(drop, out, sizeof out, 30000), 0);
    char *run[] = {ASPEN_BIN, "worker", "--workers", "2", "--quiet", "--until-idle", "--db", g_db,
                   NULL};
    int64_t t0 = now_ms();
    int rc = run_capture(run, out, sizeof out, 30000);
    fprintf(stderr, "aspen worker exited %d after %lld ms:\n%s", rc, (long long)(now_ms() - t0),
            out);
    assert_true(rc > 0); /* exited by itself, with a failure status */
    assert_non_null(strstr(out, "missing part of Aspen's schema"));
    assert_non_null(strstr(out, "no such table: attempts"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_process_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_cancel_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_charges_only_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_exits_on_missing_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
