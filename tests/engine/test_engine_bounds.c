/* tests/engine/test_engine_bounds.c — a worker's resources per job are bounded, and the engine's
 * inputs are checked where they come in (issue 7, items 3 and 6). KVM is required: these fail,
 * never skip, without it.
 *
 *   flood      test-flood prints 8,000 lines of 16 KiB (128 MiB) in a child `aspen worker`: its peak
 *              RSS (VmHWM) stays within 64 MiB of a worker that ran one tiny job, exactly the store's cap of
 *              lines is kept (then its marker), and the dropped count is exact. Also 100,000 tiny
 *              lines, a flood over two attempts (the cap spans attempts), the dropped count visible
 *              while the job still runs, and cancel of a job blocked on a full log buffer.
 *   disk full  live lines the store refuses while the disk is full are kept and written, in order,
 *              once it is freed (a 16 MiB tmpfs in the test's own mount namespace; needs root).
 *   results    24 results of 15 MB from two workers in a child `aspen worker`: the completions
 *              waiting for their group commit stay bounded (peak RSS within a stated bound).
 *   handlers   an in-process handler's log lines and its result are capped the same way.
 *   payload    a payload over ASPEN_ENGINE_MAX_PAYLOAD is refused at submit.
 *   tags       a tag `x","requires_isolation` (and look-alikes) does not route a job into a VM.
 *   sha256     a stored binary damaged in the SQLite file is refused when loaded, never run; a
 *              resubmit of the guest file repairs it.
 *   memory     --memory the VM would refuse (range, too small for image + stack) is refused at
 *              submit, through the API and the CLI, with no job created; the boundary runs.
 *   utf-8      a tag that is not UTF-8 is refused with a message (never dropped); a log line that
 *              is not UTF-8 is stored byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOD ENGINE_GUEST_DIR "/test-flood"
#define QUIET GUEST_DIR "/test-quiet-echo"
#define ECHO GUEST_DIR "/echo-worker"

#define TEST_TMP_PREFIX "aspen-engine-bounds"
#include "test_support.h"

enum { CAP = 1000 }; /* the store's default per-job cap (aspen_store_options.log_cap) */

static aspen_engine *open_eng(int workers)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.backoff_base_ms = 10;
    cfg.backoff_cap_ms = 20;
    cfg.guest_dir = GUEST_DIR;
    return open_cfg(&cfg);
}

static void get(aspen_engine *eng, int64_t id, aspen_store_job *j)
{
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_get(eng, id, j, &err), 0);
}

static void wait_state(aspen_engine *eng, int64_t id, aspen_store_state want, int timeout_ms)
{
    int64_t t0 = now_ms();
    for (;;) {
        aspen_store_job j = {0};
        get(eng, id, &j);
        aspen_store_state s = j.state;
        aspen_store_job_clear(&j);
        if (s == want)
            return;
        if (now_ms() - t0 > timeout_ms) {
            fprintf(stderr, "job %lld is %s, waited for %s\n", (long long)id,
                    aspen_store_state_name(s), aspen_store_state_name(want));
            fail();
        }
        sleep_ms(5);
    }
}

static int64_t total_jobs(aspen_engine *eng)
{
    int64_t c[ASPEN_STORE_STATE_COUNT], n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_counts(eng, c, &err), 0);
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        n += c[i];
    return n;
}

/* {"printed": N} from test-flood's result. */
static long long printed_of(const aspen_store_job *j)
{
    long long n = -1;
    assert_non_null(j->result);
    assert_int_equal(sscanf((const char *)j->result, "{\"printed\":%lld}", &n), 1);
    return n;
}

/* The job's stored lines: exactly CAP real ones, numbered 0.. in order (again from 0 after every
 * `per_attempt` lines when that is not 0) with their full length (unless 0), then the marker;
 * log_dropped is every line printed past the cap. */
static void check_capped(aspen_engine *eng, int64_t id, long long printed, size_t line_len,
                         size_t per_attempt)
{
    aspen_store_job j = {0};
    get(eng, id, &j);
    fprintf(stderr, "job %lld: %lld lines printed, %d stored (marker included), %lld dropped\n",
            (long long)id, printed, j.log_count, (long long)j.log_dropped);
    assert_int_equal(j.log_count, CAP + 1);
    assert_int_equal(j.log_dropped, printed - CAP);
    aspen_store_job_clear(&j);
    aspen_store_log *logs = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_logs(eng, id, 0, 0, &logs, &n, &err), 0);
    assert_int_equal(n, CAP + 1);
    for (size_t k = 0; k < CAP; k++) {
        assert_false(logs[k].marker);
        long long num = -1;
        assert_int_equal(sscanf(logs[k].line, "%lld", &num), 1);
        assert_int_equal(num, (long long)(per_attempt ? k % per_attempt : k));
        if (line_len)
            assert_int_equal(strlen(logs[k].line), line_len);
    }
    assert_true(logs[CAP].marker);
    assert_non_null(strstr(logs[CAP].line, "log truncated"));
    aspen_store_logs_free(logs, n);
}

/* ---- a child `aspen worker` and its peak memory ------------------------------------------------- */

/* The release build's CLI when $ASPEN_BUILD names it (make test does): its memory is what users
 * get. Otherwise this build's, with ASan's quarantine off so freed memory is not counted. */
static const char *worker_bin(bool *sanitized)
{
    static char path[4096];
    const char *b = getenv("ASPEN_BUILD");
    if (b && *b) {
        snprintf(path, sizeof path, "%s/aspen", b);
        if (access(path, X_OK) == 0) {
            *sanitized = false;
            return path;
        }
    }
    *sanitized = true;
    return ASPEN_BIN;
}

/* The process's peak RSS since its exec (VmHWM, KiB), or -1 once it is gone. Not ru_maxrss: that
 * also counts the pages the child shared with this (large, sanitized) process before its exec. */
static long vm_hwm(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Runs `aspen worker --workers N --until-idle` on g_db; returns its peak RSS in KiB, read from
 * /proc every few ms while it runs (the high-water mark only grows, so the last reading before it
 * exits is its peak but for its final milliseconds). */
static long run_worker_child(int workers)
{
    char nw[16];
    snprintf(nw, sizeof nw, "%d", workers);
    bool sanitized;
    const char *bin = worker_bin(&sanitized);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        if (sanitized)
            setenv("ASAN_OPTIONS", "quarantine_size_mb=0:detect_leaks=0", 1);
        execl(bin, bin, "worker", "--workers", nw, "--until-idle", "--quiet", "--db", g_db,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    int64_t until = now_ms() + 120000;
    long peak = 0;
    bool execed = false;
    char real[4096];
    assert_non_null(realpath(bin, real));
    for (;;) {
        /* VmHWM counts from the exec: read it once /proc shows the new program */
        char exe[4096] = "", link[64];
        snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
        ssize_t n = readlink(link, exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            execed = execed || strcmp(exe, real) == 0;
        }
        long hwm = execed ? vm_hwm(pid) : -1;
        if (hwm > peak)
            peak = hwm;
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        assert_true(r >= 0);
        if (r == pid)
            break;
        if (now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("aspen worker --until-idle did not finish in 120 s");
        }
        sleep_ms(5);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(peak > 0);
    fprintf(stderr, "%s worker: peak RSS %ld KiB (VmHWM; ru_maxrss %ld KiB)\n",
            sanitized ? "sanitized" : "release", peak, ru.ru_maxrss);
    return peak;
}

/* Runs the CLI with args; returns its exit code, with its stdout in out. */
static int run_cli_stdout(char *const argv[], char *out, size_t cap)
{
    char path[400];
    snprintf(path, sizeof path, "%s/stdout.txt", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return WEXITSTATUS(status);
}

/* ---- floods ------------------------------------------------------------------------------------- */

static void test_flood_peak_memory(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    aspen_engine_job_spec q = {.guest = QUIET, .payload = "{}"};
    submit(eng, &q);
    long base = run_worker_child(1);

    /* 8,000 lines of 16 KiB: 128 MiB, twice the bound, printed as fast as the guest can */
    aspen_engine_job_spec f = {.guest = FLOOD, .payload = "{\"len\":16384,\"lines\":8000}",
                               .timeout_ms = 120000, .max_attempts = 1};
    int64_t id = submit(eng, &f);
    long flood = run_worker_child(1);
    fprintf(stderr, "peak RSS: %ld KiB for one tiny job, %ld KiB for the flood (+%ld KiB)\n", base,
            flood, flood - base);
    aspen_store_job j = {0};
    get(eng, id, &j);
    assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
    long long printed = printed_of(&j);
    aspen_store_job_clear(&j);
    assert_int_equal(printed, 8000);
    check_capped(eng, id, printed, 16384, 0);
    assert_true(flood - base < 64 * 1024);
    aspen_engine_close(eng);
}

/* Results wait for their group commit in memory: 24 results of 15 MB (360 MB) from two workers
 * must not pile up there when SQLite writes them slower than the guests make them. The bound:
 * both VMs' guest memory, the 64 MiB of waiting completions (ENG_DONE_MAX_BYTES), the result each
 * worker holds, and 64 MiB for SQLite's caches and the allocator. */
static void test_big_results_peak_memory(void **state)
{
    (void)state;
    enum { JOBS = 24, MEM_MIB = 40 };
    aspen_engine *eng = open_eng(0);
    aspen_engine_job_spec q = {.guest = QUIET, .payload = "{}"};
    submit(eng, &q);
    long base = run_worker_child(2);
    aspen_engine_job_spec specs[JOBS];
    for (int i = 0; i < JOBS; i++)
        specs[i] = (aspen_engine_job_spec){.guest = GUEST_DIR "/test-bigout", .payload = "15000000",
                                           .memory_bytes = MEM_MIB << 20, .max_attempts = 1,
                                           .timeout_ms = 60000};
    int64_t ids[JOBS];
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit_batch(eng, specs, JOBS, ids, &err), 0);
    long peak = run_worker_child(2);
    long bound = (2 * MEM_MIB + 64 + 2 * 16 + 64) * 1024;
    fprintf(stderr, "peak RSS: %ld KiB for one tiny job, %ld KiB for %d results of 15 MB (+%ld KiB, "
                    "bound +%ld KiB)\n",
            base, peak, JOBS, peak - base, bound);
    for (int i = 0; i < JOBS; i++) {
        aspen_store_job j = {0};
        get(eng, ids[i], &j);
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        assert_int_equal(j.result_size, 15000000);
        assert_int_equal(((const char *)j.result)[14999999], '0' + 14999999 % 10);
        aspen_store_job_clear(&j);
    }
    assert_true(peak - base < bound);
    aspen_engine_close(eng);
}

/* The same flood in this (sanitized) process: the buffer's hand-offs and waits under ASan. */
static void test_flood_in_process(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_job_spec big = {.guest = FLOOD, .payload = "{\"len\":16384,\"lines\":3000}",
                                 .timeout_ms = 120000, .max_attempts = 1};
    int64_t a = submit(eng, &big);
    aspen_engine_job_spec tiny = {.guest = FLOOD, .payload = "{\"len\":8,\"lines\":100000}",
                                  .timeout_ms = 120000, .max_attempts = 1};
    int64_t b = submit(eng, &tiny);
    start(eng);
    wait_state(eng, a, ASPEN_STORE_SUCCEEDED, 120000);
    wait_state(eng, b, ASPEN_STORE_SUCCEEDED, 120000);
    aspen_store_job j = {0};
    get(eng, a, &j);
    check_capped(eng, a, printed_of(&j), 16384, 0);
    aspen_store_job_clear(&j);
    get(eng, b, &j);
    assert_int_equal(printed_of(&j), 100000);
    check_capped(eng, b, 100000, 8, 0);
    aspen_store_job_clear(&j);
    /* the count is visible to people too */
    char out[8192], id[32];
    snprintf(id, sizeof id, "%lld", (long long)b);
    char *show[] = {ASPEN_BIN, "show", id, "--db", g_db, NULL};
    assert_int_equal(run_cli_stdout(show, out, sizeof out), 0);
    assert_non_null(strstr(out, "1001 lines"));
    assert_non_null(strstr(out, "99000 more not kept (the per-job cap)"));
    char *json[] = {ASPEN_BIN, "show", id, "--json", "--db", g_db, NULL};
    assert_int_equal(run_cli_stdout(json, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"log_dropped\": 99000"));
    aspen_engine_close(eng);
}

/* The cap is per job: a second attempt fills what the first left, then only counts. */
static void test_flood_cap_spans_attempts(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_job_spec f = {.guest = FLOOD,
                               .payload = "{\"len\":100,\"lines\":700,\"fail\":true}",
                               .max_attempts = 2};
    int64_t id = submit(eng, &f);
    start(eng);
    wait_state(eng, id, ASPEN_STORE_FAILED, 60000);
    check_capped(eng, id, 1400, 100, 700);
    aspen_store_log *logs = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_logs(eng, id, 0, 0, &logs, &n, &err), 0);
    assert_int_equal(logs[699].attempt, 1);
    assert_int_equal(logs[700].attempt, 2);
    char want[101];
    memset(want, 'x', 100);
    memcpy(want, "0 ", 2);
    want[100] = '\0';
    assert_string_equal(logs[700].line, want); /* the second attempt's first line */
    aspen_store_logs_free(logs, n);
    aspen_engine_close(eng);
}

/* A flood that never ends: its dropped count reaches the store while it runs, and a cancel stops
 * it although its worker is waiting for the store to take its lines. */
static void test_flood_live_count_and_cancel(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_job_spec f = {.guest = FLOOD, .payload = "{\"len\":16384,\"ms\":120000}",
                               .timeout_ms = 180000, .max_attempts = 1};
    int64_t id = submit(eng, &f);
    start(eng);
    aspen_engine *other = open_eng(0);
    int64_t t0 = now_ms();
    aspen_store_job j = {0};
    for (;;) {
        get(other, id, &j);
        if (j.log_dropped > 0)
            break;
        assert_true(now_ms() - t0 < 60000);
        aspen_store_job_clear(&j);
        sleep_ms(20);
    }
    fprintf(stderr, "while running: %d lines stored, %lld dropped, after %lld ms\n", j.log_count,
            (long long)j.log_dropped, (long long)(now_ms() - t0));
    assert_int_equal(j.state, ASPEN_STORE_RUNNING);
    assert_int_equal(j.log_count, CAP + 1);
    aspen_store_job_clear(&j);
    aspen_engine_error err = {0};
    int64_t t1 = now_ms();
    assert_int_equal(aspen_engine_cancel(eng, id, NULL, &err), 0);
    wait_state(eng, id, ASPEN_STORE_CANCELLED, 5000);
    fprintf(stderr, "cancelled in %lld ms\n", (long long)(now_ms() - t1));
    get(other, id, &j);
    assert_int_equal(j.log_count, CAP + 1);
    assert_true(j.log_dropped > 0);
    aspen_store_job_clear(&j);
    aspen_engine_close(other);
    aspen_engine_close(eng);
}

/* ---- live lines across a full disk ------------------------------------------------------------- */

struct live_watch {
    atomic_int kept_msgs, again_msgs;
};

static void on_engine_msg(const aspen_engine_event *ev, void *user)
{
    struct live_watch *w = user;
    if (!ev->message)
        return;
    if (strstr(ev->message, "live log lines failed"))
        atomic_fetch_add(&w->kept_msgs, 1);
    if (strstr(ev->message, "live log lines are written again"))
        atomic_fetch_add(&w->again_msgs, 1);
}

/* In its own mount namespace with a 16 MiB tmpfs: a job prints 400 lines steadily; the disk fills
 * while it runs and is freed a few seconds later. Every line must be stored, in order. */
static int live_disk_full_child(void)
{
    char dir[300], db[340], filler[340];
    child_small_disk(dir, sizeof dir, db, sizeof db);
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = db;
    cfg.workers = 1;
    cfg.guest_dir = GUEST_DIR;
    cfg.lease_ms = 60000; /* renewals may fail while the disk is full */
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    CHILD_CHECK(aspen_engine_open(&cfg, &eng, &err) == 0, "open: %s", err.msg);
    aspen_engine_job_spec f = {.guest = FLOOD,
                               .payload = "{\"len\":200,\"lines\":400,\"every_ms\":25}",
                               .timeout_ms = 120000, .max_attempts = 1};
    int64_t id = 0;
    CHILD_CHECK(aspen_engine_submit(eng, &f, &id, &err) == 0, "submit: %s", err.msg);
    static struct live_watch w;
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_ENGINE, on_engine_msg, &w);
    CHILD_CHECK(aspen_engine_start(eng, &err) == 0, "start: %s", err.msg);
    int64_t t0 = now_ms();
    aspen_store_job j = {0};
    for (;;) { /* lines are being written live */
        CHILD_CHECK(aspen_engine_get(eng, id, &j, &err) == 0, "get: %s", err.msg);
        int count = j.log_count;
        aspen_store_job_clear(&j);
        if (count >= 40)
            break;
        CHILD_CHECK(now_ms() - t0 < 30000, "no live lines after 30 s");
        sleep_ms(10);
    }
    CHILD_CHECK(fill_disk(dir, filler, sizeof filler) == 0, "filling the tmpfs: %s",
                strerror(errno));
    t0 = now_ms();
    while (atomic_load(&w.kept_msgs) == 0) {
        CHILD_CHECK(now_ms() - t0 < 20000, "no live write failed on the full disk");
        sleep_ms(5);
    }
    sleep_ms(1500); /* lines keep coming while nothing can be written */
    CHILD_CHECK(aspen_engine_get(eng, id, &j, &err) == 0, "get: %s", err.msg);
    CHILD_CHECK(j.state == ASPEN_STORE_RUNNING, "the job ended before the disk was freed (%s)",
                aspen_store_state_name(j.state));
    fprintf(stderr, "disk full with %d lines stored; freeing it\n", j.log_count);
    aspen_store_job_clear(&j);
    CHILD_CHECK(unlink(filler) == 0, "unlink filler: %s", strerror(errno));
    t0 = now_ms();
    for (;;) {
        CHILD_CHECK(aspen_engine_get(eng, id, &j, &err) == 0, "get: %s", err.msg);
        aspen_store_state st = j.state;
        aspen_store_job_clear(&j);
        if (st == ASPEN_STORE_SUCCEEDED)
            break;
        CHILD_CHECK(st == ASPEN_STORE_RUNNING, "the job is %s", aspen_store_state_name(st));
        CHILD_CHECK(now_ms() - t0 < 60000, "not done a minute after the disk was freed");
        sleep_ms(20);
    }
    CHILD_CHECK(aspen_engine_get(eng, id, &j, &err) == 0, "get: %s", err.msg);
    CHILD_CHECK(j.log_count == 400 && j.log_dropped == 0, "%d lines stored, %lld dropped",
                j.log_count, (long long)j.log_dropped);
    aspen_store_job_clear(&j);
    CHILD_CHECK(atomic_load(&w.again_msgs) >= 1, "no message that live lines are written again");
    aspen_store_log *logs = NULL;
    size_t n = 0;
    CHILD_CHECK(aspen_engine_logs(eng, id, 0, 0, &logs, &n, &err) == 0, "logs: %s", err.msg);
    CHILD_CHECK(n == 400, "%zu lines read back", n);
    for (size_t k = 0; k < n; k++) {
        long long num = -1;
        CHILD_CHECK(sscanf(logs[k].line, "%lld", &num) == 1 && num == (long long)k,
                    "line %zu is '%.20s'", k, logs[k].line);
    }
    aspen_store_logs_free(logs, n);
    fprintf(stderr, "all 400 lines stored in order across the full disk\n");
    aspen_engine_close(eng);
    umount(dir);
    return 0;
}

static void test_live_lines_survive_disk_full(void **state)
{
    (void)state;
    run_in_child(live_disk_full_child);
}

/* ---- in-process handlers ------------------------------------------------------------------------ */

static int h_chatty(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    for (int i = 0; i < 5000; i++)
        aspen_engine_ctx_log(ctx, "%d chatty line", i);
    return aspen_engine_ctx_set_output(ctx, "{}", 2) == 0 ? ASPEN_ENGINE_HANDLER_OK
                                                            : ASPEN_ENGINE_HANDLER_FAILED;
}

static atomic_int g_big_rc = 1; /* set_output's answer, checked on the test's thread */

static int h_big(aspen_engine_ctx *ctx, void *user)
{
    bool ignore = user != NULL;
    size_t n = (size_t)ASPEN_ENGINE_MAX_OUTPUT + 1;
    char *b = calloc(1, n);
    int rc = b ? aspen_engine_ctx_set_output(ctx, b, n) : ASPEN_ENGINE_ENOMEM;
    free(b);
    atomic_store(&g_big_rc, rc);
    return ignore || rc == 0 ? ASPEN_ENGINE_HANDLER_OK : ASPEN_ENGINE_HANDLER_FAILED;
}

static void test_handler_bounds(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_register_handler(eng, "chatty", h_chatty, NULL, &err), 0);
    assert_int_equal(aspen_engine_register_handler(eng, "big", h_big, NULL, &err), 0);
    assert_int_equal(aspen_engine_register_handler(eng, "big-ignoring", h_big, eng, &err), 0);
    aspen_engine_job_spec c = {.type = "chatty"};
    int64_t chatty = submit(eng, &c);
    aspen_engine_job_spec b = {.type = "big", .max_attempts = 3};
    int64_t big = submit(eng, &b);
    aspen_engine_job_spec bi = {.type = "big-ignoring", .max_attempts = 3};
    int64_t ignoring = submit(eng, &bi);
    start(eng);
    wait_state(eng, chatty, ASPEN_STORE_SUCCEEDED, 30000);
    check_capped(eng, chatty, 5000, 0, 0);
    int64_t ids[] = {big, ignoring};
    for (int k = 0; k < 2; k++) {
        wait_state(eng, ids[k], ASPEN_STORE_FAILED, 30000);
        aspen_store_job j = {0};
        get(eng, ids[k], &j);
        assert_int_equal(j.attempts, 1); /* permanent: it would be as large again */
        assert_non_null(strstr(j.error, "ASPEN_ENGINE_MAX_OUTPUT"));
        assert_null(j.result);
        aspen_store_job_clear(&j);
    }
    assert_int_equal(atomic_load(&g_big_rc), ASPEN_ENGINE_EINVAL);
    aspen_engine_close(eng);
}

/* A payload is held by every worker that claims its job: more than ASPEN_ENGINE_MAX_PAYLOAD is
 * refused at submit (before it is parsed), the limit itself is accepted. */
static void test_payload_cap(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    size_t n = ASPEN_ENGINE_MAX_PAYLOAD;
    char *p = malloc(n + 2);
    assert_non_null(p);
    memset(p, 'a', n + 1);
    p[0] = '"';
    p[n - 1] = '"';
    p[n] = '\0'; /* a JSON string of exactly the limit */
    aspen_engine_job_spec s = {.type = "echo", .payload = p};
    int64_t id = submit(eng, &s);
    assert_true(id > 0);
    p[n - 1] = 'a';
    p[n] = '"';
    p[n + 1] = '\0'; /* one byte more */
    int64_t id2 = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit(eng, &s, &id2, &err), ASPEN_ENGINE_EPAYLOAD);
    assert_non_null(strstr(err.msg, "ASPEN_ENGINE_MAX_PAYLOAD"));
    assert_int_equal(aspen_engine_check_payload(p, &err), ASPEN_ENGINE_EPAYLOAD);
    free(p);
    assert_int_equal(total_jobs(eng), 1);
    aspen_engine_close(eng);
}

/* ---- tags --------------------------------------------------------------------------------------- */

static bool routed(const char *tags)
{
    aspen_store_job j = {.type = "echo", .tags = (char *)tags};
    return aspen_engine_job_needs_vm(&j);
}

static void test_tags_exact_match(void **state)
{
    (void)state;
    /* the row's text as the store holds it */
    assert_true(routed("[\"requires_isolation\"]"));
    assert_true(routed("[\"a\",\"requires_isolation\",\"b\"]"));
    assert_true(routed("[\"requires\\u005fisolation\"]")); /* escaped, still the tag */
    assert_false(routed("[\"x\\\",\\\"requires_isolation\"]"));
    assert_false(routed("[\"\\\"requires_isolation\\\"\"]"));
    assert_false(routed("[[\"requires_isolation\"]]"));
    assert_false(routed("{\"requires_isolation\":true}"));
    assert_false(routed("[\"requires_isolation \"]"));
    assert_false(routed("[]"));
    assert_false(routed(NULL));
    assert_true(routed("[\"requires_isolation\"")); /* unparseable and naming it: isolate */

    /* end to end: an in-process type with hostile tags runs in-process (no VM exits) */
    aspen_engine *eng = open_eng(1);
    const char *hostile[] = {"x\",\"requires_isolation", "\"requires_isolation\"",
                             "requires_isolation ", " requires_isolation", "Requires_isolation",
                             "requires_isolation\\", "requires_isolation\",\""};
    enum { N = sizeof hostile / sizeof hostile[0] };
    int64_t ids[N];
    for (size_t i = 0; i < N; i++) {
        const char *tags[] = {"urgent", hostile[i]};
        aspen_engine_job_spec s = {.type = "echo", .payload = "{\"t\":1}", .tags = tags,
                                   .n_tags = 2};
        ids[i] = submit(eng, &s);
    }
    const char *real[] = {"urgent", "requires_isolation"};
    aspen_engine_job_spec vm = {.type = "echo", .guest = QUIET, .payload = "{\"vm\":1}",
                                .tags = real, .n_tags = 2};
    int64_t in_vm = submit(eng, &vm);
    start(eng);
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_wait_idle(eng, 60000, true, &err), 0);
    for (size_t i = 0; i < N; i++) {
        aspen_store_job j = {0};
        get(eng, ids[i], &j);
        if (j.state != ASPEN_STORE_SUCCEEDED)
            fprintf(stderr, "tag '%s': %s (%s)\n", hostile[i], aspen_store_state_name(j.state),
                    j.error ? j.error : "");
        assert_int_equal(j.state, ASPEN_STORE_SUCCEEDED);
        assert_string_equal((const char *)j.result, "{\"t\":1}"); /* echo's own result */
        aspen_store_job_clear(&j);
        aspen_store_attempt *a = NULL;
        size_t n = 0;
        assert_int_equal(aspen_engine_attempts(eng, ids[i], &a, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(a[0].exits, 0);
        aspen_store_attempts_free(a, n);
    }
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_attempts(eng, in_vm, &a, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(a[0].outcome, "succeeded");
    assert_true(a[0].exits >= 1);
    aspen_store_attempts_free(a, n);
    aspen_engine_close(eng);
}

/* ---- stored binaries checked by hash ------------------------------------------------------------ */

/* Flips one byte of every stored binary in the database file, as disk damage or a hand edit
 * would. */
static void damage_binaries(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_stmt *sel = NULL, *upd = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sha256, bytes FROM binaries", -1, &sel, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE binaries SET bytes = ?2 WHERE sha256 = ?1",
                                        -1, &upd, NULL),
                     SQLITE_OK);
    int damaged = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(sel, 1);
        assert_true(n > 0);
        unsigned char *b = malloc((size_t)n);
        memcpy(b, sqlite3_column_blob(sel, 1), (size_t)n);
        b[n / 2] ^= 0x01;
        sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(sel, 0), -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(upd, 2, b, n, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
        sqlite3_reset(upd);
        free(b);
        damaged++;
    }
    assert_int_equal(damaged, 1);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_close(db);
}

static void test_binary_hash_checked(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    aspen_engine_job_spec s = {.guest = QUIET, .payload = "{\"n\":1}", .max_attempts = 3};
    int64_t id = submit(eng, &s);
    aspen_engine_close(eng);
    damage_binaries();

    eng = open_eng(1);
    start(eng);
    wait_state(eng, id, ASPEN_STORE_FAILED, 30000);
    aspen_store_job j = {0};
    get(eng, id, &j);
    fprintf(stderr, "damaged binary: %s\n", j.error);
    assert_int_equal(j.attempts, 1); /* permanent: the same bytes would be refused again */
    assert_non_null(strstr(j.error, "stored binary test-quiet-echo does not match its sha256"));
    assert_non_null(strstr(j.error, "resubmit"));
    assert_null(j.result);
    aspen_store_job_clear(&j);
    aspen_engine_error err = {0};
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_attempts(eng, id, &a, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].exits, 0); /* never entered a VM */
    aspen_store_attempts_free(a, n);

    /* as the message says: resubmitting the guest file stores a good copy again */
    int64_t again = submit(eng, &s);
    wait_state(eng, again, ASPEN_STORE_SUCCEEDED, 30000);
    get(eng, again, &j);
    assert_string_equal((const char *)j.result, "{\"n\":1}");
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
}

/* ---- --memory at submit ------------------------------------------------------------------------- */

static int submit_err(aspen_engine *eng, const aspen_engine_job_spec *s, aspen_engine_error *err)
{
    int64_t id = 0;
    memset(err, 0, sizeof *err);
    return aspen_engine_submit(eng, s, &id, err);
}

/* Reads a whole small file into buf. */
static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs the CLI with args, stderr to a file; returns its exit code and what it printed there. */
static int run_cli(char *const argv[], char *errbuf, size_t cap)
{
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_WRONLY);
        if (fd < 0 || null < 0)
            _exit(126);
        dup2(fd, 2);
        dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    slurp(errpath, errbuf, cap);
    return WEXITSTATUS(status);
}

static void test_memory_checked_at_submit(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_error err;
    aspen_engine_job_spec s = {.guest = ECHO, .payload = "{}", .memory_bytes = 1024};
    assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "between 64 KiB and 1 GiB (got 1024 bytes)"));
    s.memory_bytes = (int64_t)ASPEN_VM_MIN_MEMORY - 1;
    assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);
    s.memory_bytes = (int64_t)ASPEN_VM_MAX_MEMORY + 1;
    assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "between 64 KiB and 1 GiB"));
    s.memory_bytes = -1;
    assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);

    /* too small for the image and the stack: the VM's own rule, before the job exists */
    aspen_vm_image *img = NULL;
    aspen_vm_error ve = {0};
    assert_int_equal(aspen_vm_image_load_file(ECHO, &img, &ve), 0);
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    size_t need = aspen_vm_image_mem_size(img) + cfg.stack_bytes + ASPEN_VM_MEMORY_RESERVE;
    s.memory_bytes = (int64_t)need - 4096;
    assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);
    fprintf(stderr, "%s\n", err.msg);
    assert_non_null(strstr(err.msg, "too small for echo-worker"));
    assert_non_null(strstr(err.msg, "give it at least"));
    /* the same through the binary's bytes and through its sha256 */
    FILE *f = fopen(ECHO, "rb");
    assert_non_null(f);
    static unsigned char bytes[1 << 20];
    size_t nb = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    aspen_engine_job_spec by_bytes = {.binary = bytes, .binary_size = nb, .binary_name = "echo",
                                      .payload = "{}", .memory_bytes = (int64_t)need - 4096};
    assert_int_equal(submit_err(eng, &by_bytes, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "too small"));
    char sha[65];
    aspen_store_sha256_hex(bytes, nb, sha);
    aspen_engine_job_spec by_sha = {.binary_sha256 = sha, .payload = "{}",
                                    .memory_bytes = (int64_t)need - 4096};
    assert_int_equal(total_jobs(eng), 0);

    /* exactly enough is accepted — and the VM agrees: it runs */
    s.memory_bytes = (int64_t)need;
    int64_t fits = submit(eng, &s);
    assert_int_equal(submit_err(eng, &by_sha, &err), ASPEN_ENGINE_EINVAL); /* stored now */
    assert_non_null(strstr(err.msg, "too small for echo-worker"));
    start(eng);
    wait_state(eng, fits, ASPEN_STORE_SUCCEEDED, 30000);
    aspen_vm *vm = NULL;
    cfg.memory_bytes = need - 4096;
    assert_int_equal(aspen_vm_create(img, &cfg, NULL, &vm, &ve), ASPEN_VM_EINVAL);
    aspen_vm_image_release(img);

    /* the CLI: non-zero exit, the message, no job (outside the VM's limits: a usage error, 2,
     * as --memory is read; too small for this image: 1, at submit) */
    char out[2048];
    char *cli[] = {ASPEN_BIN, "submit", ECHO, "--memory", "1K", "--db", g_db, NULL};
    assert_int_equal(run_cli(cli, out, sizeof out), 2);
    fprintf(stderr, "aspen submit --memory 1K: %s", out);
    assert_non_null(strstr(out, "between 64 KiB and 1 GiB (got 1024 bytes)"));
    char *cli2[] = {ASPEN_BIN, "submit", ECHO, "--memory", "64K", "--db", g_db, NULL};
    assert_int_equal(run_cli(cli2, out, sizeof out), 1);
    assert_non_null(strstr(out, "too small for echo-worker"));
    assert_int_equal(total_jobs(eng), 1);
    aspen_engine_close(eng);
}

/* ---- UTF-8 -------------------------------------------------------------------------------------- */

static void test_non_utf8_tags_and_logs(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    aspen_engine_error err;
    const char *bad[] = {"a\xff" "b", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *tags[] = {"fine", bad[i]};
        aspen_engine_job_spec s = {.type = "echo", .tags = tags, .n_tags = 2};
        assert_int_equal(submit_err(eng, &s, &err), ASPEN_ENGINE_EINVAL);
        assert_non_null(strstr(err.msg, "tag 2 (\""));
        assert_non_null(strstr(err.msg, "is not valid UTF-8"));
        assert_non_null(strstr(err.msg, "\\x")); /* the bytes shown escaped, not raw */
    }
    assert_int_equal(total_jobs(eng), 0); /* refused, never stored without the tag */
    const char *good[] = {"h\xc3\xa9llo", "\xe2\x9c\x93", "\xf0\x9f\x98\x80"};
    aspen_engine_job_spec g = {.type = "echo", .tags = good, .n_tags = 3};
    int64_t id = submit(eng, &g);
    aspen_store_job j = {0};
    get(eng, id, &j);
    json_error_t je;
    json_t *arr = json_loads(j.tags, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), good[i]);
    json_decref(arr);
    aspen_store_job_clear(&j);

    char out[2048];
    char *cli[] = {ASPEN_BIN, "submit", "--type", "echo", "--tag", "x\xfe", "--db", g_db, NULL};
    assert_int_equal(run_cli(cli, out, sizeof out), 1);
    assert_non_null(strstr(out, "is not valid UTF-8"));
    assert_int_equal(total_jobs(eng), 1);

    /* a guest's log line that is not UTF-8 is kept byte for byte */
    aspen_engine_job_spec f = {.guest = FLOOD, .payload = "{\"bad_utf8\":true}"};
    int64_t fid = submit(eng, &f);
    start(eng);
    wait_state(eng, fid, ASPEN_STORE_SUCCEEDED, 30000);
    aspen_store_log *logs = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_logs(eng, fid, 0, 0, &logs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(logs[0].line, "bad \xff\xfe utf8 \xc3\x28 end");
    aspen_store_logs_free(logs, n);
    aspen_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flood_peak_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_results_peak_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_cap_spans_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_live_count_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_lines_survive_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_exact_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_hash_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_checked_at_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_tags_and_logs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
