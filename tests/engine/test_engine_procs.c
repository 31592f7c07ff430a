/* tests/engine/test_engine_procs.c — several processes on one database, and the crash test.
 *
 *   two processes    a forked child submits jobs one by one through its own engine while this
 *                    process's engine runs them; then `aspen submit` (the real CLI) does the same.
 *   crash            `aspen worker` runs 1,000 jobs (VM jobs and in-process sleep jobs mixed); it is
 *                    killed with SIGKILL in the middle, and `aspen worker --until-idle` is started
 *                    again: once the dead engine's lease expires its jobs are recovered and run.
 *                    Checked in the store: all 1,000 succeeded, none lost, none completed twice
 *                    (exactly one "succeeded" attempt per job; any other attempt is "recovered").
 * KVM is required (fail, never skip).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"

#include <fcntl.h>
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
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    int rc = aspen_engine_open(&cfg, &eng, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return eng;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_kill9, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
