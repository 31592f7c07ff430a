/* tests/engine/test_engine_guestkit.c — what a finished attempt keeps, through the engine and the
 * CLI (issue 11), on both backends (ctest runs it again as engine_test_engine_guestkit_pg):
 *   - a failed attempt of the debuggee (built with ASPEN_GUEST_DEBUG=1) keeps an ELF core per
 *     attempt; `aspen core ID -o FILE` writes the last, --attempt 1 the first, and gdb -batch opens
 *     it at crash_here's line with a backtrace; the engine's core cap bounds it;
 *   - a successful deterministic job keeps nothing (no core, no record: the hot path writes no
 *     more than before); the job's deletion takes its cores and records;
 *   - `aspen replay` says "identical" for a data-processor job (its clock reading fed back), for a
 *     failed attempt (the same fault), for a static Linux program reading the clock and random
 *     bytes, and for an echo job that kept no record (its stored result and log lines);
 *   - the recorded time of a clock-reading guest edited in the stored record: the replay diverges
 *     at host call 2 (hl_println), naming host call 1 (hl_get_time_ns) and the edited value; the
 *     same through `aspen replay --set`;
 *   - after a diverging host call, every part of how the run ended against the record (issue
 *     11's finding 8): the edited clock changes the output (first differing byte, the replayed
 *     text) and log line 1 (both ways) but not the outcome, error or number of lines; text and
 *     --json say so. A record edited to say fault, with an error carrying escapes and a newline,
 *     and 5 log lines: the outcome, error and count are each reported, the escapes never raw;
 *   - the listing of recorded calls (finding 7): for a static Linux program, `aspen replay
 *     --calls` (text and --json) names every call (readv, clock_gettime with its 2 values,
 *     getrandom's bytes, writev with none) and `replay --json` carries the same "calls"; --set
 *     of a call without values names it ("host call 4 (writev) recorded no values") and lists
 *     the ones with values; of no such call, of a value past the last, of bytes: each refused so;
 *     a record cut mid-call is refused as damaged, never read beyond;
 *   - refusals: an in-process job, an attempt that does not exist, a core of a job without one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_vm.h"

#include <jansson.h>

#define TEST_TMP_PREFIX "aspen-guestkit-test"
#include "test_support.h"

static aspen_engine *open_engine(size_t core_max)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 1;
    cfg.guest_dir = GUEST_DIR;
    cfg.backoff_base_ms = 1; /* retries at once */
    cfg.backoff_cap_ms = 1;
    if (core_max)
        cfg.core_max = core_max;
    aspen_engine *eng = open_cfg(&cfg);
    start(eng);
    return eng;
}

static void wait_idle(aspen_engine *eng)
{
    aspen_engine_error err = {0};
    int64_t t0 = now_ms();
    assert_int_equal(aspen_engine_wait_idle(eng, 60000, true, &err), 0);
    assert_true(now_ms() - t0 < 60000);
}

static void stop(aspen_engine *eng)
{
    aspen_engine_error err = {0};
    aspen_engine_stop(eng, 1000, &err);
    aspen_engine_close(eng);
}

static aspen_store_state state_of(aspen_engine *eng, int64_t id)
{
    aspen_store_job j = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_get(eng, id, &j, &err), 0);
    aspen_store_state s = j.state;
    aspen_store_job_clear(&j);
    return s;
}

/* Output of a shell command (stdout and stderr), and its exit status. */
static char *sh(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - 1 - n, p)) > 0)
        n += k;
    buf[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static int line_of(const char *tag)
{
    FILE *f = fopen(DEBUGGEE_SRC, "r");
    assert_non_null(f);
    char line[512], want[64];
    snprintf(want, sizeof want, "LINE:%s ", tag);
    int n = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        line[strcspn(line, "\n")] = ' ';
        if (strstr(line, want))
            found = n;
    }
    fclose(f);
    assert_true(found > 0);
    return found;
}

static int64_t submit_guest(aspen_engine *eng, const char *guest, const char *payload,
                            int attempts, const char *const *tags, size_t n_tags)
{
    aspen_engine_job_spec s = {.guest = guest, .payload = payload, .max_attempts = attempts,
                               .tags = tags, .n_tags = n_tags};
    return submit(eng, &s);
}

static void test_core_of_failed_attempts(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    int64_t bad = submit_guest(eng, DEBUGGEE, "\"crash\"", 2, NULL, 0);
    int64_t good = submit_guest(eng, "echo-worker", "{\"message\":\"hi\"}", 1, NULL, 0);
    wait_idle(eng);
    assert_int_equal(state_of(eng, bad), ASPEN_STORE_FAILED);
    assert_int_equal(state_of(eng, good), ASPEN_STORE_SUCCEEDED);

    aspen_store_attempt_data *list = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_list_attempt_data(eng, bad, &list, &n, &err), 0);
    assert_int_equal(n, 4); /* a core and a replay record for each of the two attempts */
    for (size_t i = 0; i < n; i++)
        if (list[i].kind == ASPEN_STORE_DATA_CORE)
            assert_true(list[i].size > 4096 && list[i].size <= (8u << 20));
    free(list);
    /* the success of a deterministic guest keeps nothing */
    assert_int_equal(aspen_engine_list_attempt_data(eng, good, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    free(list);
    void *b = NULL;
    size_t len = 0;
    int which = 0;
    assert_int_equal(aspen_engine_attempt_data(eng, good, 0, ASPEN_STORE_DATA_CORE, &b, &len,
                                               &which, &err),
                     ASPEN_ENGINE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "keeps no core"));
    assert_int_equal(aspen_engine_attempt_data(eng, bad, 0, ASPEN_STORE_DATA_CORE, &b, &len,
                                               &which, &err),
                     0);
    assert_int_equal(which, 2);
    assert_memory_equal(b, "\x7f" "ELF", 4);
    free(b);
    stop(eng);

    /* the CLI writes it, and gdb opens it at the faulting line */
    char cmd[4096], core[512], elf[512], want[64];
    snprintf(core, sizeof core, "%s/core1", g_dir);
    snprintf(elf, sizeof elf, "%s/guest.elf", g_dir);
    snprintf(cmd, sizeof cmd, "%s core %lld --attempt 1 -o %s --binary %s --db '%s' 2>&1",
             ASPEN_BIN, (long long)bad, core, elf, g_db);
    int st = 0;
    char *o = sh(cmd, &st);
    if (st != 0)
        fail_msg("aspen core: %s", o);
    assert_non_null(strstr(o, "attempt 1"));
    char gdbline[1100];
    snprintf(gdbline, sizeof gdbline, "open it with: gdb %s %s", elf, core);
    assert_non_null(strstr(o, gdbline));
    free(o);
    snprintf(cmd, sizeof cmd, "timeout 600 gdb -nx -batch -ex bt %s %s 2>&1", elf, core);
    o = sh(cmd, &st);
    snprintf(want, sizeof want, "main.c:%d", line_of("crash_here"));
    if (!strstr(o, "Program terminated with signal SIGSEGV") || !strstr(o, "in crash_here") ||
        !strstr(o, want) || !strstr(o, "in debuggee"))
        fail_msg("gdb did not show the faulting line %s with a backtrace:\n%s", want, o);
    /* the core names the program after the file --binary wrote, the name gdb compares */
    if (strstr(o, "core file may not match"))
        fail_msg("gdb warned that the core does not match %s:\n%s", elf, o);
    assert_non_null(strstr(o, "Core was generated by `guest.elf'"));
    free(o);
    /* a damaged core is left as it is, never read beyond */
    uint8_t junk[64] = {0x7f, 'E', 'L', 'F', 2};
    assert_int_equal(aspen_vm_core_set_program(junk, sizeof junk, "x"), -1);
    assert_int_equal(aspen_vm_core_set_program(junk, 3, "x"), -1);

    /* no core for a job that has none; a usage error without -o */
    snprintf(cmd, sizeof cmd, "%s core %lld -o %s/x --db '%s' 2>&1", ASPEN_BIN, (long long)good,
             g_dir, g_db);
    o = sh(cmd, &st);
    assert_int_equal(st, 1);
    assert_non_null(strstr(o, "error: job"));
    assert_non_null(strstr(o, "keeps no core"));
    free(o);
    snprintf(cmd, sizeof cmd, "%s core %lld --db '%s' 2>&1", ASPEN_BIN, (long long)bad, g_db);
    o = sh(cmd, &st);
    assert_int_equal(st, 2);
    assert_non_null(strstr(o, "needs -o FILE"));
    free(o);

    /* deleting the job takes its cores and records */
    eng = open_engine(0);
    assert_int_equal(aspen_engine_delete(eng, bad, &err), 0);
    assert_int_equal(aspen_engine_list_attempt_data(eng, bad, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    free(list);
    stop(eng);
}

/* Why a job keeps no core, from how its last attempt ended: a job error is the guest's own
 * failure (issue 11: "only a failed attempt keeps one ... (job 4 is failed)" read as a
 * contradiction). */
static void test_no_core_reasons(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    int64_t je = submit_guest(eng, "data-processor", "{\"records\":5}", 2, NULL, 0);
    wait_idle(eng);
    assert_int_equal(state_of(eng, je), ASPEN_STORE_FAILED);
    aspen_engine_error err = {0};
    void *b = NULL;
    size_t len = 0;
    int which = 0;
    assert_int_equal(aspen_engine_attempt_data(eng, je, 0, ASPEN_STORE_DATA_CORE, &b, &len, &which,
                                               &err),
                     ASPEN_ENGINE_ENOTFOUND);
    assert_null(b);
    assert_non_null(strstr(err.msg, "keeps no core: its last attempt 2 ended in a job error (the "
                                    "guest's own failure"));
    assert_non_null(strstr(err.msg, "cores are kept for faults, panics and timeouts"));
    assert_null(strstr(err.msg, "only a failed attempt"));
    stop(eng);
}

/* The checks the console's form makes as a guest path or a memory size is typed. */
static void test_check_guest_and_memory(void **state)
{
    (void)state;
    aspen_engine_error err = {0};
    char path[1024];
    size_t mem = 0;
    snprintf(path, sizeof path, "%s/echo-worker", GUEST_DIR);
    assert_int_equal(aspen_engine_check_guest(path, &mem, &err), 0);
    assert_true(mem > 0);
    snprintf(path, sizeof path, "%s/notes.txt", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a guest\n", f);
    fclose(f);
    assert_int_equal(aspen_engine_check_guest(path, NULL, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "is not an Aspen guest"));
    snprintf(path, sizeof path, "%s/empty", g_dir);
    fclose(fopen(path, "w"));
    assert_int_equal(aspen_engine_check_guest(path, NULL, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "is not an Aspen guest"));
    assert_int_equal(aspen_engine_check_guest(g_dir, NULL, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "is not a file (a directory)"));
    snprintf(path, sizeof path, "%s/fifo", g_dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    /* no writer: must not wait for one */
    assert_int_equal(aspen_engine_check_guest(path, NULL, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "FIFO"));
    assert_int_equal(aspen_engine_check_guest("/dev/null", NULL, &err), ASPEN_ENGINE_EBINARY);
    snprintf(path, sizeof path, "%s/missing", g_dir);
    assert_int_equal(aspen_engine_check_guest(path, NULL, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "No such file"));

    int64_t m = 0;
    assert_int_equal(aspen_engine_memory_parse("1M", &m, &err), 0);
    assert_int_equal(m, 1 << 20);
    assert_int_equal(aspen_engine_memory_parse("  512K\t", &m, &err), 0);
    assert_int_equal(m, 512 << 10);
    assert_int_equal(aspen_engine_memory_parse("64MiB", &m, &err), 0);
    assert_int_equal(m, 64 << 20);
    static const char *bad[] = {"", "   ", "10x", "-1M", "0", "1M2", "M",
                                "99999999999999999999999999", "18446744073709551615K"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = 7;
        assert_int_equal(aspen_engine_memory_parse(bad[i], &m, &err), ASPEN_ENGINE_EINVAL);
        assert_int_equal(m, 7); /* untouched */
        assert_non_null(strstr(err.msg, "guest memory"));
    }
    assert_int_equal(aspen_engine_memory_parse("2G", &m, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "between 64 KiB and 1 GiB"));
    assert_int_equal(aspen_engine_memory_parse("16K", &m, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "between 64 KiB and 1 GiB"));
    assert_int_equal(aspen_engine_memory_parse("9223372036854775807", &m, &err),
                     ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "between 64 KiB and 1 GiB"));
    assert_int_equal(aspen_engine_memory_parse("1\x1b[2J", &m, &err), ASPEN_ENGINE_EINVAL);
    assert_null(strchr(err.msg, 0x1b)); /* said escaped */
}

static void test_core_cap(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(64u << 10);
    int64_t id = submit_guest(eng, DEBUGGEE, "\"crash\"", 1, NULL, 0);
    wait_idle(eng);
    void *b = NULL;
    size_t len = 0;
    int which = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_attempt_data(eng, id, 0, ASPEN_STORE_DATA_CORE, &b, &len,
                                               &which, &err),
                     0);
    assert_true(len > 0 && len <= (64u << 10));
    free(b);
    stop(eng);
}

static void replay(aspen_engine *eng, int64_t id, int attempt, aspen_engine_replay_report *r)
{
    aspen_engine_replay_opts o = {.attempt = attempt};
    aspen_engine_error err = {0};
    int rc = aspen_engine_replay(eng, id, &o, r, &err);
    if (rc)
        fail_msg("replay of job %lld: %s", (long long)id, err.msg);
}

static void test_replay_identical(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    int64_t dp = submit_guest(eng, "data-processor",
                              "{\"records\":[{\"name\":\" Alice \",\"age\":30},{\"name\":\"Bob\"}]}",
                              1, NULL, 0);
    int64_t crash = submit_guest(eng, DEBUGGEE, "\"crash\"", 1, NULL, 0);
    int64_t echo = submit_guest(eng, "echo-worker", "{\"message\":\"hello\"}", 1, NULL, 0);
    static const char *const lx_tags[] = {"arg:clock"};
    int64_t lx = submit_guest(eng, "test-lx-probe", "\"stdin\"", 1, lx_tags, 1);
    int64_t inproc = 0;
    aspen_engine_job_spec e = {.type = "echo", .payload = "{\"a\":1}"};
    inproc = submit(eng, &e);
    wait_idle(eng);
    assert_int_equal(state_of(eng, dp), ASPEN_STORE_SUCCEEDED);
    assert_int_equal(state_of(eng, lx), ASPEN_STORE_SUCCEEDED);
    sleep_ms(1100); /* a replay now reads another second from the live clock */

    aspen_engine_replay_report r;
    replay(eng, dp, 0, &r);
    if (!r.identical)
        fail_msg("data-processor: %s", r.summary);
    assert_true(r.recorded);
    assert_int_equal(r.values, 2); /* its hl_get_time reading: seconds, nanoseconds */
    assert_non_null(strstr(r.summary, "identical: outcome success"));

    replay(eng, crash, 1, &r);
    if (!r.identical)
        fail_msg("debuggee crash: %s", r.summary);
    assert_string_equal(r.outcome, "fault");

    replay(eng, lx, 0, &r);
    if (!r.identical)
        fail_msg("Linux program: %s", r.summary);
    assert_true(r.values >= 5); /* clock_gettime, time (a clock reading each), getrandom */

    replay(eng, echo, 0, &r);
    if (!r.identical)
        fail_msg("echo-worker: %s", r.summary);
    assert_false(r.recorded); /* nothing stored: the job row and its result sufficed */
    assert_int_equal(r.calls, 1);

    aspen_engine_replay_opts o = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_replay(eng, inproc, &o, &r, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "in-process"));
    o.attempt = 9;
    assert_int_equal(aspen_engine_replay(eng, dp, &o, &r, &err), ASPEN_ENGINE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no finished attempt 9"));
    stop(eng);

    /* the CLI says the same */
    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s replay %lld --db '%s' 2>&1", ASPEN_BIN, (long long)dp, g_db);
    char *out = sh(cmd, &st);
    if (st != 0 || !strstr(out, "attempt 1: identical"))
        fail_msg("aspen replay exited %d: %s", st, out);
    free(out);
}

/* Where the tape starts in a stored record (engine/replay.c's layout). */
static size_t tape_offset(const uint8_t *rec, size_t len)
{
    size_t p = 8 + 32 + 8 + 32 + 8 + 32 + 4;
    assert_true(len >= p + 8);
    uint32_t elen;
    memcpy(&elen, rec + p, 4);
    return p + 4 + elen + 4;
}

static void test_replay_clock_edited(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    int64_t id = submit_guest(eng, "test-clock", "\"x\"", 1, NULL, 0);
    wait_idle(eng);
    assert_int_equal(state_of(eng, id), ASPEN_STORE_SUCCEEDED);
    aspen_engine_replay_report r;
    replay(eng, id, 0, &r);
    if (!r.identical)
        fail_msg("clock: %s", r.summary);

    /* edit the recorded reading in the stored record, as a person with the database would */
    void *b = NULL;
    size_t len = 0;
    int which = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_attempt_data(eng, id, 1, ASPEN_STORE_DATA_REPLAY, &b, &len,
                                               &which, &err),
                     0);
    size_t off = tape_offset(b, len);
    aspen_vm_tape *t = NULL;
    aspen_vm_error ve = {0};
    assert_int_equal(aspen_vm_tape_open((uint8_t *)b + off, len - off, &t, &ve), 0);
    uint32_t call = 0;
    int64_t secs = 0;
    assert_int_equal(aspen_vm_tape_first_value(t, &call, &secs), 0);
    assert_int_equal(call, 1);
    assert_int_equal(aspen_vm_tape_set_value(t, 1, 0, secs - 86400, &ve), 0);
    size_t tlen = 0;
    const void *tb = aspen_vm_tape_data(t, &tlen);
    uint8_t *edited = malloc(off + tlen);
    memcpy(edited, b, off);
    uint32_t tl = (uint32_t)tlen;
    memcpy(edited + off - 4, &tl, 4);
    memcpy(edited + off, tb, tlen);
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &se), 0);
    aspen_store_attempt_data item = {id, 1, ASPEN_STORE_DATA_REPLAY, edited, off + tlen};
    assert_int_equal(aspen_store_put_attempt_data(s, &item, 1, &se), 0);
    aspen_store_close(s);
    free(edited);
    aspen_vm_tape_free(t);
    free(b);

    replay(eng, id, 0, &r);
    assert_false(r.identical);
    assert_int_equal(r.diverged_at, 2);
    assert_non_null(strstr(r.summary, "diverged at host call 2"));
    assert_non_null(strstr(r.summary, "host call 2 (hl_println)"));
    assert_non_null(strstr(r.summary, "host call 1's (hl_get_time_ns)"));
    char v[40];
    snprintf(v, sizeof v, "= %lld,", (long long)(secs - 86400));
    assert_non_null(strstr(r.summary, v));
    /* ... and then how the run ended: the output and the log line changed, nothing else */
    assert_false(r.outcome_differs);
    assert_string_equal(r.recorded_outcome, "success");
    assert_true(r.output_differs);
    assert_true(r.output_diff_at >= 0); /* the job's result is the recorded output */
    snprintf(v, sizeof v, "%lld", (long long)(secs - 86400));
    assert_memory_equal(r.output_head, v, strlen(v));
    assert_false(r.error_differs);
    assert_false(r.log_lines_differ);
    assert_int_equal(r.log_lines, 1);
    assert_int_equal(r.log_diff_at, 1);
    assert_non_null(strstr(r.log_replayed, v));
    assert_null(strstr(r.log_recorded, v));
    assert_non_null(strstr(r.details, "  outcome: success, as recorded\n"));
    assert_non_null(strstr(r.details, "  output: differs: recorded "));
    assert_non_null(strstr(r.details, "  error: none, as recorded\n"));
    assert_non_null(strstr(r.details, "  log lines: 1 (as many as recorded); line 1 differs"));
    stop(eng);

    /* --set does the same without touching the record; exit status 1 for a divergence */
    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1=%lld --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, (long long)(secs - 86400 + 7), g_db);
    char *out = sh(cmd, &st);
    assert_int_equal(st, 1);
    assert_non_null(strstr(out, "diverged at host call 2"));
    assert_non_null(strstr(out, "(hl_get_time_ns)"));
    /* the report goes on after the first difference, as docs/ABI.md section 14 says */
    snprintf(v, sizeof v, "replayed \"%lld", (long long)(secs - 86400 + 7));
    if (!strstr(out, "\n  outcome: success, as recorded\n") ||
        !strstr(out, "\n  output: differs: recorded 19 bytes (sha256 ") || !strstr(out, v) ||
        !strstr(out, "\n  error: none, as recorded\n") ||
        !strstr(out, "\n  log lines: 1 (as many as recorded); line 1 differs: recorded "))
        fail_msg("replay --set did not report the output and log line it changed:\n%s", out);
    free(out);
    /* the same in --json */
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1=%lld --json --db '%s'", ASPEN_BIN,
             (long long)id, (long long)(secs - 86400 + 7), g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 1);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("replay --json is not JSON (%s): %s", je.text, out);
    assert_int_equal(json_integer_value(json_object_get(j, "diverged_at")), 2);
    assert_true(json_is_true(json_object_get(j, "outcome_same")));
    json_t *jo = json_object_get(j, "output");
    assert_true(json_is_false(json_object_get(jo, "same")));
    assert_int_equal(json_integer_value(json_object_get(jo, "recorded_bytes")), 19);
    assert_true(json_is_integer(json_object_get(jo, "first_differing_byte")));
    snprintf(v, sizeof v, "%lld", (long long)(secs - 86400 + 7));
    /* the output is the nanoseconds: the edited seconds, then the recorded nanoseconds */
    assert_int_equal(strncmp(json_string_value(json_object_get(jo, "head")), v, strlen(v)), 0);
    assert_true(json_is_true(json_object_get(json_object_get(j, "error"), "same")));
    json_t *jl = json_object_get(j, "log_lines");
    assert_true(json_is_false(json_object_get(jl, "same")));
    assert_int_equal(json_integer_value(json_object_get(jl, "recorded")), 1);
    assert_int_equal(json_integer_value(json_object_get(jl, "first_differing_line")), 1);
    assert_non_null(strstr(json_string_value(json_object_get(jl, "replayed_line")), v));
    json_t *jc = json_object_get(j, "calls"); /* as recorded, before the edit */
    assert_int_equal(json_array_size(jc), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jc, 0), "name")),
                        "hl_get_time_ns");
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_array_get(jc, 0), "values"), 0)),
                     secs - 86400);
    json_decref(j);
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set nonsense --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 2);
    assert_non_null(strstr(out, "--set wants CALL=VALUE"));
    free(out);
    /* one numbering, from 1, in the option and in its errors: host call 1 (hl_get_time_ns)
     * recorded 2 values, so 1.2 exists and 1.3 is "no value 3" (it once said 4) */
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1.3=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 1);
    if (!strstr(out, "host call 1 (hl_get_time_ns) recorded 2 values: there is no value 3 to set"))
        fail_msg("replay --set 1.3 said: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1.2=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_null(strstr(out, "there is no value"));
    /* it replayed (the report's "  error: ..." line is the run's), no "error: ..." refusal */
    if (strncmp(out, "job ", 4) != 0 || strstr(out, "\nerror:"))
        fail_msg("replay --set 1.2 was refused: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1.0=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 2);
    assert_non_null(strstr(out, "value I from 1"));
    free(out);
}

/* A record rewritten as a person with the database could: another outcome, error and number
 * of log lines, its tape cut by cut bytes (engine/replay.c's layout). */
static uint8_t *rewrite_record(const uint8_t *rec, size_t len, int outcome, const char *error,
                               int64_t log_lines, size_t cut, size_t *out_len)
{
    size_t off = tape_offset(rec, len), p = 8 + 32 + 8 + 32 + 8 + 32, tlen = len - off;
    assert_true(cut <= tlen);
    tlen -= cut;
    uint32_t oelen;
    memcpy(&oelen, rec + p + 4, 4);
    const char *e = error ? error : (const char *)rec + p + 8;
    uint32_t elen = error ? (uint32_t)strlen(error) : oelen;
    size_t n = p + 8 + elen + 4 + tlen;
    uint8_t *b = malloc(n);
    memcpy(b, rec, p + 4);
    if (outcome >= 0)
        b[6] = (uint8_t)outcome;
    if (log_lines >= 0) {
        uint32_t ll = (uint32_t)log_lines;
        memcpy(b + p, &ll, 4);
    }
    memcpy(b + p + 4, &elen, 4);
    memcpy(b + p + 8, e, elen);
    uint32_t tl = (uint32_t)tlen;
    memcpy(b + p + 8 + elen, &tl, 4);
    memcpy(b + p + 12 + elen, rec + off, tlen);
    *out_len = n;
    return b;
}

static void put_record(int64_t id, const void *b, size_t n)
{
    aspen_store *s = NULL;
    aspen_store_error se = {0};
    assert_int_equal(aspen_store_open(g_db, NULL, &s, &se), 0);
    aspen_store_attempt_data item = {id, 1, ASPEN_STORE_DATA_REPLAY, (void *)b, n};
    assert_int_equal(aspen_store_put_attempt_data(s, &item, 1, &se), 0);
    aspen_store_close(s);
}

/* The recorded outcome, error and number of log lines each differ: each is reported, after the
 * first (the outcome), and the error's escapes and newline never reach the terminal raw. */
static void test_replay_reports_every_part(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    int64_t id = submit_guest(eng, "test-clock", "\"x\"", 1, NULL, 0);
    wait_idle(eng);
    void *b = NULL;
    size_t len = 0, n = 0;
    int which = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_attempt_data(eng, id, 1, ASPEN_STORE_DATA_REPLAY, &b, &len,
                                               &which, &err),
                     0);
    uint8_t *ed = rewrite_record(b, len, ASPEN_VM_FAULT,
                                 "boom\n\x1b]0;owned\x07\x1b[31mred \"q\\\"", 5, 0, &n);
    put_record(id, ed, n);
    free(ed);
    aspen_engine_replay_report r;
    replay(eng, id, 0, &r);
    assert_false(r.identical);
    assert_int_equal(r.diverged_at, 0); /* every host call agreed */
    assert_non_null(strstr(r.summary, "the recorded attempt ended fault, the replay success"));
    assert_true(r.outcome_differs && r.error_differs && r.log_lines_differ);
    assert_false(r.output_differs);
    assert_int_equal(r.recorded_log_lines, 5);
    assert_int_equal(r.log_lines, 1);
    assert_non_null(strstr(r.details, "  outcome: differs: recorded fault, replayed success\n"));
    assert_non_null(strstr(r.details, "  output: 19 bytes, as recorded\n"));
    assert_non_null(strstr(r.details, "  error: differs: recorded \"boom\\n"));
    assert_non_null(strstr(r.details, "red \\\"q\\\\\\\"\", replayed none\n")); /* quoted */
    assert_non_null(strstr(r.details, "  log lines: differ: recorded 5, replayed 1"));
    stop(eng);

    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s replay %lld --db '%s' 2>&1", ASPEN_BIN, (long long)id, g_db);
    char *out = sh(cmd, &st);
    assert_int_equal(st, 1);
    if (strchr(out, '\x1b') || strchr(out, '\x07'))
        fail_msg("the recorded error reached the terminal raw:\n%s", out);
    if (!strstr(out, "\n  error: differs: recorded \"boom\\n") ||
        !strstr(out, "\n  log lines: differ: recorded 5, replayed 1\n"))
        fail_msg("aspen replay did not report the error and log lines:\n%s", out);
    free(out);
    free(b);
}

static const aspen_engine_replay_call *call_named(const aspen_engine_replay_call_list *c,
                                                 const char *name, size_t skip)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->calls[i].name, name) == 0 && skip-- == 0)
            return &c->calls[i];
    fail_msg("no recorded call %s", name);
    return NULL;
}

/* Issue 11's finding 7: which calls were recorded, and --set's errors name them. */
static void test_replay_calls_listed(void **state)
{
    (void)state;
    aspen_engine *eng = open_engine(0);
    static const char *const lx_tags[] = {"arg:clock"};
    int64_t lx = submit_guest(eng, "test-lx-probe", "\"stdin\"", 1, lx_tags, 1);
    int64_t echo = submit_guest(eng, "echo-worker", "{\"message\":\"hello\"}", 1, NULL, 0);
    aspen_engine_job_spec e = {.type = "echo", .payload = "{\"a\":1}"};
    int64_t inproc = submit(eng, &e);
    wait_idle(eng);
    assert_int_equal(state_of(eng, lx), ASPEN_STORE_SUCCEEDED);

    aspen_engine_replay_call_list c;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_replay_calls(eng, lx, 0, &c, &err), 0);
    assert_true(c.recorded);
    assert_false(c.truncated);
    assert_int_equal(c.attempt, 1);
    assert_true(c.n >= 5);
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(c.calls[i].index, i + 1);
        assert_true(c.calls[i].syscall);
    }
    const aspen_engine_replay_call *clk = call_named(&c, "clock_gettime", 0);
    assert_int_equal(clk->nvalues, 2);
    assert_false(c.values[clk->first_value].is_bytes);
    assert_true(c.values[clk->first_value].number > 1700000000);
    const aspen_engine_replay_call *rnd = call_named(&c, "getrandom", 0);
    assert_int_equal(rnd->nvalues, 1);
    assert_true(c.values[rnd->first_value].is_bytes);
    assert_int_equal(c.values[rnd->first_value].len, 8);
    assert_int_equal(strlen(c.values[rnd->first_value].hex), 16);
    const aspen_engine_replay_call *wr = call_named(&c, "writev", 0);
    assert_int_equal(wr->nvalues, 0);
    assert_int_equal(c.with_values, 3); /* clock_gettime twice, getrandom */
    uint32_t clk_i = clk->index, rnd_i = rnd->index, wr_i = wr->index;
    int64_t clk_s = c.values[clk->first_value].number;
    size_t ncalls = c.n;
    aspen_engine_replay_call_list_free(&c);

    /* a deterministic success keeps no record: nothing listed; an in-process job is refused */
    assert_int_equal(aspen_engine_replay_calls(eng, echo, 0, &c, &err), 0);
    assert_false(c.recorded);
    assert_int_equal(c.n, 0);
    aspen_engine_replay_call_list_free(&c);
    assert_int_equal(aspen_engine_replay_calls(eng, inproc, 0, &c, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "in-process"));
    assert_null(c.calls);

    /* replay's own listing (opts.calls) is the same */
    aspen_engine_replay_opts o = {.calls = &c};
    aspen_engine_replay_report r;
    assert_int_equal(aspen_engine_replay(eng, lx, &o, &r, &err), 0);
    assert_true(r.identical);
    assert_int_equal(c.n, ncalls);
    aspen_engine_replay_call_list_free(&c);
    /* ... and for an attempt without a record, the calls the replay made */
    assert_int_equal(aspen_engine_replay(eng, echo, &o, &r, &err), 0);
    assert_false(c.recorded);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.calls[0].name, "hl_println");
    aspen_engine_replay_call_list_free(&c);
    stop(eng);

    /* the CLI: --calls as text and JSON */
    char cmd[2048], want[1300];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s replay %lld --calls --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, g_db);
    char *out = sh(cmd, &st);
    assert_int_equal(st, 0);
    snprintf(want, sizeof want, "recorded %zu host calls, 3 with values", ncalls);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "  CALL  NAME"));
    snprintf(want, sizeof want, "%u  clock_gettime     %u.1=%lld  %u.2=", clk_i, clk_i,
             (long long)clk_s, clk_i);
    if (!strstr(out, want))
        fail_msg("--calls does not list '%s':\n%s", want, out);
    snprintf(want, sizeof want, "%u  getrandom         %u.1=8 bytes ", rnd_i, rnd_i);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "%u  writev            -\n", wr_i);
    assert_non_null(strstr(out, want));
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --calls --json --db '%s'", ASPEN_BIN,
             (long long)lx, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("--calls --json is not JSON (%s): %s", je.text, out);
    json_t *jc = json_object_get(j, "calls");
    assert_int_equal(json_array_size(jc), ncalls);
    json_t *k = json_array_get(jc, clk_i - 1);
    assert_int_equal(json_integer_value(json_object_get(k, "call")), clk_i);
    assert_string_equal(json_string_value(json_object_get(k, "name")), "clock_gettime");
    assert_true(json_is_true(json_object_get(k, "syscall")));
    assert_int_equal(json_integer_value(json_array_get(json_object_get(k, "values"), 0)), clk_s);
    k = json_array_get(jc, rnd_i - 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(json_object_get(k, "values"), 0),
                                           "bytes")),
        8);
    assert_int_equal(json_array_size(json_object_get(json_array_get(jc, wr_i - 1), "values")),
                     0);
    json_decref(j);
    free(out);
    /* replay --json carries the calls too */
    snprintf(cmd, sizeof cmd, "%s replay %lld --json --db '%s'", ASPEN_BIN, (long long)lx, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 0);
    j = json_loads(out, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "calls")), ncalls);
    json_decref(j);
    free(out);

    /* --set of a call without values names it and lists those with values */
    snprintf(cmd, sizeof cmd, "%s replay %lld --set %u=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, wr_i, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 1);
    snprintf(want, sizeof want, "host call %u (writev) recorded no values", wr_i);
    if (!strstr(out, want))
        fail_msg("--set %u said: %s", wr_i, out);
    snprintf(want, sizeof want, "the calls with values: host call %u (clock_gettime) %u.1 = %lld",
             clk_i, clk_i, (long long)clk_s);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "host call %u (getrandom) %u.1 = 8 bytes", rnd_i, rnd_i);
    assert_non_null(strstr(out, want));
    /* not the default database: the command names it, so that pasted it opens this one */
    snprintf(want, sizeof want, "aspen replay %lld --calls --db '%s' lists every call",
             (long long)lx, g_db);
    if (!strstr(out, want))
        fail_msg("want \"%s\" in: %s", want, out);
    free(out);
    /* no such call; a value past the last; bytes */
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 4000000000=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 1);
    snprintf(want, sizeof want, "recorded %zu host calls: there is no call 4000000000", ncalls);
    assert_non_null(strstr(out, want));
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set %u.3=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, clk_i, g_db);
    out = sh(cmd, &st);
    snprintf(want, sizeof want, "host call %u (clock_gettime) recorded 2 values: there is no "
             "value 3 to set", clk_i);
    assert_non_null(strstr(out, want));
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set %u=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, rnd_i, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 1);
    snprintf(want, sizeof want, "value %u.1 of host call %u (getrandom) is 8 bytes, not a number",
             rnd_i, rnd_i);
    assert_non_null(strstr(out, want));
    free(out);
    /* --calls runs nothing, --set replays: not both; a job without a record says why */
    snprintf(cmd, sizeof cmd, "%s replay %lld --calls --set 1=1 --db '%s' 2>&1", ASPEN_BIN,
             (long long)lx, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 2);
    assert_non_null(strstr(out, "give one of them"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --calls --db '%s' 2>&1", ASPEN_BIN,
             (long long)echo, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "kept no replay record"));
    free(out);

    /* a record cut in the middle of a call is refused as damaged, never read beyond */
    eng = open_engine(0);
    void *b = NULL;
    size_t len = 0, n = 0;
    int which = 0;
    assert_int_equal(aspen_engine_attempt_data(eng, lx, 1, ASPEN_STORE_DATA_REPLAY, &b, &len,
                                               &which, &err),
                     0);
    uint8_t *ed = rewrite_record(b, len, -1, NULL, -1, 3, &n);
    put_record(lx, ed, n);
    free(ed);
    free(b);
    assert_int_equal(aspen_engine_replay_calls(eng, lx, 0, &c, &err), ASPEN_ENGINE_EINVAL);
    assert_non_null(strstr(err.msg, "damaged"));
    assert_null(c.calls);
    stop(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_of_failed_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_core_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_guest_and_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_clock_edited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_reports_every_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_calls_listed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
