/* tests/engine/test_engine_queues.c — named queues through real engines and `aspen worker`
 * processes, on SQLite and (as engine_test_engine_queues_pg) on PostgreSQL:
 *
 *   limit     a queue with limit 2 and 3 `aspen worker` processes x 4 workers: never more than 2
 *             of its jobs at once (checked from the attempts' start and finish times), all finish
 *   rate      10/s over 2 processes: no 1-second window holds more than 10 starts, and 30 jobs
 *             take at least 2 s from first start to last
 *   pause     a paused queue's jobs wait while the default queue's run; resumed, they run
 *   --queues  an engine serving only queue a leaves b's jobs queued; `aspen worker --queues b`
 *             then runs them
 *   unfinished aspen_engine_count_unfinished (the console's X and aspen cancel --filter ask with
 *             it): a queue's unfinished jobs per state and the oldest ids, none for a filter of
 *             finished states, none once aspen_engine_cancel_matching has cancelled them
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

#define TEST_TMP_PREFIX "aspen-engine-queues"
#include "test_support.h"

static aspen_store *store(void)
{
    return test_store();
}

static void submit_n(aspen_store *s, const char *queue, const char *type, const char *payload,
                     int n)
{
    for (int i = 0; i < n; i++) {
        aspen_store_job_spec spec = {.type = type, .payload = payload, .queue = queue};
        aspen_store_error e = {0};
        if (aspen_store_submit(s, &spec, aspen_store_now_ms(), NULL, &e) != 0)
            fail_msg("submit: %s", e.msg);
    }
}

static pid_t spawn_worker(const char *workers, const char *queues)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        if (queues)
            execl(ASPEN_BIN, ASPEN_BIN, "worker", "--workers", workers, "--until-idle", "--quiet",
                  "--queues", queues, "--db", g_db, (char *)NULL);
        else
            execl(ASPEN_BIN, ASPEN_BIN, "worker", "--workers", workers, "--until-idle", "--quiet",
                  "--db", g_db, (char *)NULL);
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
        sleep_ms(20);
    }
}

struct span {
    int64_t start, finish;
};

/* Every succeeded attempt of queue q's jobs; asserts each job succeeded. Returns the count. */
static size_t attempts_of(aspen_store *s, const char *q, struct span *out, size_t cap)
{
    aspen_store_filter f = {.queue = q, .limit = -1};
    aspen_store_job *jobs = NULL;
    size_t n = 0, k = 0;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_list(s, &f, &jobs, &n, &e), 0);
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].state != ASPEN_STORE_SUCCEEDED)
            fail_msg("job %lld of queue %s is %s", (long long)jobs[i].id, q,
                     aspen_store_state_name(jobs[i].state));
        aspen_store_attempt *a = NULL;
        size_t na = 0;
        assert_int_equal(aspen_store_attempts(s, jobs[i].id, &a, &na, &e), 0);
        for (size_t j = 0; j < na; j++)
            if (!strcmp(a[j].outcome, "succeeded") && k < cap)
                out[k++] = (struct span){a[j].started_at_ms, a[j].finished_at_ms};
        aspen_store_attempts_free(a, na);
    }
    aspen_store_jobs_free(jobs, n);
    return k;
}

static int64_t count_state(aspen_store *s, const char *q, aspen_store_state st)
{
    return test_count_state(s, q, st);
}

/* Waits until queue q has `n` succeeded jobs (or fails after timeout_ms). */
static void wait_succeeded(aspen_store *s, const char *q, int64_t n, int timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (count_state(s, q, ASPEN_STORE_SUCCEEDED) < n) {
        if (now_ms() > until)
            fail_msg("queue %s: %lld of %lld jobs succeeded after %d ms", q,
                     (long long)count_state(s, q, ASPEN_STORE_SUCCEEDED), (long long)n,
                     timeout_ms);
        sleep_ms(20);
    }
}

static void test_limit_three_processes(void **state)
{
    (void)state;
    aspen_store *s = store();
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(s, "lim", ASPEN_STORE_QUEUE_SET_LIMIT, 2, 0, 0,
                                           aspen_store_now_ms(), &e), 0);
    enum { JOBS = 24 };
    submit_n(s, "lim", "sleep", "{\"ms\":60}", JOBS);
    submit_n(s, NULL, "sleep", "{\"ms\":20}", 12);
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = spawn_worker("4", NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wait_exit(w[i], 180000), 0);
    struct span sp[JOBS * 2];
    size_t n = attempts_of(s, "lim", sp, JOBS * 2);
    assert_int_equal(n, JOBS);
    int most = 0;
    for (size_t i = 0; i < n; i++) { /* how many run at the moment each one starts */
        int at = 0;
        for (size_t j = 0; j < n; j++)
            at += sp[j].start <= sp[i].start && sp[i].start < sp[j].finish;
        if (at > most)
            most = at;
    }
    print_message("limit 2: at most %d of the queue's jobs ran at once\n", most);
    assert_true(most <= 2);
    assert_true(most >= 1);
    assert_int_equal(count_state(s, "default", ASPEN_STORE_SUCCEEDED), 12);
    aspen_store_close(s);
}

static void test_rate_window(void **state)
{
    (void)state;
    aspen_store *s = store();
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_queue_set(s, "r", ASPEN_STORE_QUEUE_SET_RATE, 0, 10, 1000,
                                           aspen_store_now_ms(), &e), 0);
    enum { JOBS = 30 };
    submit_n(s, "r", "echo", "{}", JOBS);
    int64_t t0 = now_ms();
    pid_t w[2] = {spawn_worker("4", NULL), spawn_worker("4", NULL)};
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_exit(w[i], 120000), 0);
    int64_t took = now_ms() - t0;
    struct span sp[JOBS * 2];
    size_t n = attempts_of(s, "r", sp, JOBS * 2);
    assert_int_equal(n, JOBS);
    int64_t first = sp[0].start, last = sp[0].start;
    int most = 0;
    for (size_t i = 0; i < n; i++) {
        int in = 0; /* starts in [start_i, start_i + 1 s) */
        for (size_t j = 0; j < n; j++)
            in += sp[j].start >= sp[i].start && sp[j].start < sp[i].start + 1000;
        if (in > most)
            most = in;
        if (sp[i].start < first)
            first = sp[i].start;
        if (sp[i].start > last)
            last = sp[i].start;
    }
    print_message("rate 10/s: %d jobs, at most %d starts in a second, first to last start "
                  "%lld ms, %lld ms in all\n", JOBS, most, (long long)(last - first),
                  (long long)took);
    assert_true(most <= 10);
    assert_true(last - first >= 2000); /* the 21st start is at least 2 s after the 1st */
    aspen_store_close(s);
}

static void test_pause_one_queue(void **state)
{
    (void)state;
    aspen_store *s = store();
    aspen_store_error e = {0};
    submit_n(s, "p", "echo", "{}", 3);
    assert_int_equal(aspen_store_queue_pause(s, "p", true, aspen_store_now_ms(), &e), 0);
    submit_n(s, NULL, "echo", "{}", 3);
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 2;
    aspen_engine *eng = open_cfg(&cfg);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    wait_succeeded(s, "default", 3, 30000);
    sleep_ms(300);
    assert_int_equal(count_state(s, "p", ASPEN_STORE_QUEUED), 3);
    assert_int_equal(aspen_store_queue_pause(s, "p", false, aspen_store_now_ms(), &e), 0);
    wait_succeeded(s, "p", 3, 30000);
    aspen_engine_close(eng);
    aspen_store_close(s);
}

static void test_serve_queues(void **state)
{
    (void)state;
    aspen_store *s = store();
    submit_n(s, "a", "echo", "{}", 3);
    submit_n(s, "b", "echo", "{}", 3);
    const char *serve[] = {"a"};
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 2;
    cfg.queues = serve;
    cfg.n_queues = 1;
    aspen_engine *eng = open_cfg(&cfg);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_start(eng, &err), 0);
    wait_succeeded(s, "a", 3, 30000);
    sleep_ms(300);
    assert_int_equal(count_state(s, "b", ASPEN_STORE_QUEUED), 3);
    aspen_engine_close(eng);
    assert_int_equal(wait_exit(spawn_worker("2", "b,c"), 60000), 0);
    assert_int_equal(count_state(s, "b", ASPEN_STORE_SUCCEEDED), 3);
    /* --until-idle judges idleness by the queues it serves: queue a's waiting jobs must not keep a
     * worker for b running for ever (found by a new-user trial) */
    submit_n(s, "a", "echo", "{}", 2);
    submit_n(s, "b", "echo", "{}", 2);
    assert_int_equal(wait_exit(spawn_worker("2", "b"), 60000), 0);
    assert_int_equal(count_state(s, "b", ASPEN_STORE_SUCCEEDED), 5);
    assert_int_equal(count_state(s, "a", ASPEN_STORE_QUEUED), 2);
    /* a bad name is refused before anything starts */
    const char *bad[] = {"no spaces"};
    cfg.queues = bad;
    aspen_engine *none = NULL;
    assert_int_equal(aspen_engine_open(&cfg, &none, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "not valid"));
    aspen_store_close(s);
}

static void test_count_unfinished(void **state)
{
    (void)state;
    aspen_store *s = store();
    aspen_store_error e = {0};
    submit_n(s, "c", "echo", "{}", 3); /* jobs 1-3 queued */
    for (int i = 0; i < 2; i++) {      /* jobs 4-5 scheduled an hour ahead */
        aspen_store_job_spec spec = {.type = "echo", .payload = "{}", .queue = "c",
                                     .run_at_ms = aspen_store_now_ms() + 3600 * 1000};
        if (aspen_store_submit(s, &spec, aspen_store_now_ms(), NULL, &e) != 0)
            fail_msg("submit: %s", e.msg);
    }
    submit_n(s, "d", "echo", "{}", 1); /* job 6, another queue */
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 1;
    aspen_engine *eng = open_cfg(&cfg); /* not started: nothing runs */
    aspen_engine_error err = {0};
    aspen_engine_unfinished u;
    aspen_store_filter f = {.queue = "c"};
    assert_int_equal(aspen_engine_count_unfinished(eng, &f, 2, &u, &err), 0);
    assert_int_equal(u.n[ASPEN_STORE_QUEUED], 3);
    assert_int_equal(u.n[ASPEN_STORE_SCHEDULED], 2);
    assert_int_equal(u.n[ASPEN_STORE_RUNNING], 0);
    assert_int_equal(u.total, 5);
    assert_int_equal(u.n_ids, 2); /* the oldest two */
    assert_int_equal(u.ids[0], 1);
    assert_int_equal(u.ids[1], 2);
    /* no ids asked: counted only */
    assert_int_equal(aspen_engine_count_unfinished(eng, &f, 0, &u, &err), 0);
    assert_int_equal(u.total, 5);
    assert_int_equal(u.n_ids, 0);
    /* a state the filter names narrows it; finished states only match none */
    f.states = 1u << ASPEN_STORE_SCHEDULED | 1u << ASPEN_STORE_SUCCEEDED;
    assert_int_equal(aspen_engine_count_unfinished(eng, &f, 8, &u, &err), 0);
    assert_int_equal(u.total, 2);
    assert_int_equal(u.n[ASPEN_STORE_QUEUED], 0);
    assert_int_equal(u.n_ids, 2);
    assert_int_equal(u.ids[0], 4);
    f.states = 1u << ASPEN_STORE_SUCCEEDED | 1u << ASPEN_STORE_CANCELLED;
    assert_int_equal(aspen_engine_count_unfinished(eng, &f, 8, &u, &err), 0);
    assert_int_equal(u.total, 0);
    /* NULL: every unfinished job; the cancel the question asks for leaves none of queue c */
    assert_int_equal(aspen_engine_count_unfinished(eng, NULL, 8, &u, &err), 0);
    assert_int_equal(u.total, 6);
    assert_int_equal(u.n_ids, 6);
    f.states = 0;
    int64_t cancelled = 0, requested = 0;
    assert_int_equal(aspen_engine_cancel_matching(eng, &f, &cancelled, &requested, &err), 0);
    assert_int_equal(cancelled, 5);
    assert_int_equal(aspen_engine_count_unfinished(eng, &f, 8, &u, &err), 0);
    assert_int_equal(u.total, 0);
    assert_int_equal(u.n_ids, 0);
    assert_int_equal(aspen_engine_count_unfinished(eng, NULL, 8, &u, &err), 0);
    assert_int_equal(u.total, 1);
    assert_int_equal(u.ids[0], 6);
    aspen_engine_close(eng);
    aspen_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limit_three_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_one_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_unfinished, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
