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
 *   - refusals: an in-process job, an attempt that does not exist, a core of a job without one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "aspen_vm.h"

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
    if (!strstr(out, "host call 1 recorded 2 values: there is no value 3 to set"))
        fail_msg("replay --set 1.3 said: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1.2=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_null(strstr(out, "there is no value"));
    assert_null(strstr(out, "error:"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s replay %lld --set 1.0=5 --db '%s' 2>&1", ASPEN_BIN,
             (long long)id, g_db);
    out = sh(cmd, &st);
    assert_int_equal(st, 2);
    assert_non_null(strstr(out, "value I from 1"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_of_failed_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_clock_edited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
