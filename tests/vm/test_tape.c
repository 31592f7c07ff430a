/* tests/vm/test_tape.c — recording and replaying a run's host calls (vm/tape.c).
 *
 * Checked: a guest reading the clock replays identically on a fresh VM (the recorded reading fed
 * back, not the clock's); an edited reading makes its log line — host call 2, hl_println — the
 * divergence, named with the clock call before it; another input diverges at the same call; a
 * replay that makes fewer calls says which never came; a registered function is not called again
 * on replay but its recorded result returned; a cut record (cap) replays live past its end; a
 * damaged record is refused; a deterministic guest records no values; and a static Linux program
 * (clock_gettime, time, getrandom) replays byte for byte while its live runs differ. The listing
 * (aspen_vm_tape_next_call) numbers calls from 1, names them (a registered function by the
 * registry it ran with, a system call by its name) and gives their values, edited ones as edited.
 */
#include "aspen_vm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct logs {
    char text[4096];
};

static void on_log(void *user, const char *line, size_t len)
{
    struct logs *l = user;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%.*s|", (int)len, line);
}

static aspen_vm *make(const char *name, const char *const *argv, aspen_vm_host *host)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GUEST_DIR, name);
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &img, &err) != 0)
        fail_msg("loading %s: %s", path, err.msg);
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.argv = argv;
    cfg.timeout_ms = 60000;
    aspen_vm *vm = NULL;
    if (aspen_vm_create(img, &cfg, host, &vm, &err) != 0)
        fail_msg("creating a VM for %s: %s", name, err.msg);
    aspen_vm_image_release(img);
    return vm;
}

/* One run with a tape; the output is copied into out. */
static aspen_vm_outcome run(aspen_vm *vm, const char *in, aspen_vm_tape *t, char *out,
                            size_t size, struct logs *l)
{
    aspen_vm_result r;
    aspen_vm_error err = {0};
    aspen_vm_run_opts o = {.input = in, .input_len = strlen(in), .tape = t,
                           .on_log = l ? on_log : NULL, .log_user = l};
    if (aspen_vm_run(vm, &o, &r, &err) != 0)
        fail_msg("run failed: %s", err.msg);
    snprintf(out, size, "%.*s", (int)r.output_len, r.output ? (const char *)r.output : "");
    aspen_vm_outcome oc = r.outcome;
    aspen_vm_result_free(&r);
    return oc;
}

static aspen_vm_tape *copy_of(const aspen_vm_tape *rec)
{
    size_t len = 0;
    const void *b = aspen_vm_tape_data(rec, &len);
    aspen_vm_tape *t = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_tape_open(b, len, &t, &err) != 0)
        fail_msg("opening the record: %s", err.msg);
    return t;
}

static void test_clock_identical_and_edited(void **state)
{
    (void)state;
    aspen_vm *vm = make("test-clock", NULL, NULL);
    aspen_vm_tape *rec = aspen_vm_tape_new(0);
    char out1[64], out2[64], out3[64];
    struct logs l1 = {0}, l2 = {0}, l3 = {0};
    assert_int_equal(run(vm, "abc", rec, out1, sizeof out1, &l1), ASPEN_VM_SUCCESS);
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(rec, &ti);
    assert_int_equal(ti.calls, 2);  /* hl_get_time_ns, hl_println */
    assert_int_equal(ti.values, 2); /* seconds and nanoseconds of the reading */
    assert_false(ti.truncated);
    assert_true(ti.bytes > 0 && ti.bytes < 40);
    /* the listing: each call numbered from 1, named, with its values; then the end, for good */
    aspen_vm_tape_cursor cur = {0};
    aspen_vm_tape_call c;
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 1);
    assert_int_equal(c.index, 1);
    assert_string_equal(c.name, "hl_get_time_ns");
    assert_false(c.syscall);
    assert_int_equal(c.nvalues, 2);
    assert_false(c.values[0].is_bytes);
    assert_true(c.values[0].number > 1700000000u);
    assert_true(c.values[1].number < 1000000000u);
    uint64_t rec_secs = c.values[0].number;
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 1);
    assert_int_equal(c.index, 2);
    assert_string_equal(c.name, "hl_println");
    assert_int_equal(c.nvalues, 0);
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 0);
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 0);

    /* a fresh VM, later: the live clock has moved, the replay feeds the recorded reading */
    aspen_vm *again = make("test-clock", NULL, NULL);
    aspen_vm_tape *rp = copy_of(rec);
    assert_int_equal(run(again, "abc", rp, out2, sizeof out2, &l2), ASPEN_VM_SUCCESS);
    assert_string_equal(out2, out1);
    assert_string_equal(l2.text, l1.text);
    aspen_vm_tape_get_info(rp, &ti);
    assert_false(ti.diverged);
    assert_int_equal(ti.replayed, 2);
    /* and the VM's own next run without a tape reads the clock again */
    assert_int_equal(run(again, "abc", NULL, out3, sizeof out3, NULL), ASPEN_VM_SUCCESS);
    assert_string_not_equal(out3, out1);

    /* the recorded seconds edited: the log line is the divergence, named with the clock call */
    uint32_t call = 0;
    int64_t secs = 0;
    assert_int_equal(aspen_vm_tape_first_value(rp, &call, &secs), 0);
    assert_int_equal(call, 1);
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_tape_set_value(rp, 1, 0, secs + 3600, &err), 0);
    assert_int_equal((uint64_t)secs, rec_secs);
    cur = (aspen_vm_tape_cursor){0}; /* the edited record lists the edited value */
    assert_int_equal(aspen_vm_tape_next_call(rp, NULL, &cur, &c), 1);
    assert_int_equal(c.values[0].number, (uint64_t)(secs + 3600));
    memset(&l3, 0, sizeof l3);
    assert_int_equal(run(again, "abc", rp, out3, sizeof out3, &l3), ASPEN_VM_SUCCESS);
    assert_string_not_equal(out3, out1);
    aspen_vm_tape_get_info(rp, &ti);
    assert_true(ti.diverged);
    assert_int_equal(ti.diverged_at, 2);
    assert_non_null(strstr(ti.why, "host call 2 (hl_println)"));
    assert_non_null(strstr(ti.why, "host call 1's (hl_get_time_ns)"));
    char secs_text[32];
    snprintf(secs_text, sizeof secs_text, "= %lld, ", (long long)(secs + 3600));
    assert_non_null(strstr(ti.why, secs_text));

    /* another input: the same call differs (its text names the input's size) */
    aspen_vm_tape_free(rp);
    rp = copy_of(rec);
    assert_int_equal(run(again, "abcd", rp, out3, sizeof out3, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_get_info(rp, &ti);
    assert_true(ti.diverged);
    assert_int_equal(ti.diverged_at, 2);

    /* editing what is not there is refused */
    assert_int_equal(aspen_vm_tape_set_value(rp, 2, 0, 1, &err), ASPEN_VM_EINVAL);
    assert_non_null(strstr(err.msg, "recorded 0 values"));
    assert_int_equal(aspen_vm_tape_set_value(rp, 9, 0, 1, &err), ASPEN_VM_EINVAL);
    assert_non_null(strstr(err.msg, "no call 9"));
    aspen_vm_tape_free(rp);
    aspen_vm_tape_free(rec);
    aspen_vm_destroy(vm);
    aspen_vm_destroy(again);
}

static void test_fewer_calls_and_cap(void **state)
{
    (void)state;
    aspen_vm *vm = make("test-hostcalls", NULL, NULL);
    aspen_vm_tape *rec = aspen_vm_tape_new(0);
    char out[64];
    assert_int_equal(run(vm, "5", rec, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape *rp = copy_of(rec);
    assert_int_equal(run(vm, "3", rp, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(rp, &ti);
    assert_true(ti.diverged);
    assert_non_null(strstr(ti.why, "made 3 host calls where the recorded run made 5"));
    aspen_vm_tape_free(rp);
    /* and more calls than recorded */
    rp = copy_of(rec);
    assert_int_equal(run(vm, "7", rp, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_get_info(rp, &ti);
    assert_true(ti.diverged);
    assert_int_equal(ti.diverged_at, 6);
    assert_non_null(strstr(ti.why, "host call 6 (hl_get_time) was not made by the recorded run"));
    aspen_vm_tape_free(rp);
    aspen_vm_tape_free(rec);

    /* a record cut at its cap: the calls past it run live, not as a divergence */
    aspen_vm_tape *small = aspen_vm_tape_new(64);
    assert_int_equal(run(vm, "1000", small, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_get_info(small, &ti);
    assert_true(ti.truncated);
    assert_true(ti.bytes <= 64);
    assert_true(ti.calls > 0 && ti.calls < 1000);
    rp = copy_of(small);
    aspen_vm_tape_set_truncated(rp, true);
    assert_int_equal(run(vm, "1000", rp, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_get_info(rp, &ti);
    assert_false(ti.diverged);
    assert_int_equal(ti.replayed, 1000);
    aspen_vm_tape_free(rp);
    aspen_vm_tape_free(small);
    aspen_vm_destroy(vm);
}

static int counter_calls;
static int fn_counter(aspen_vm_call *call, void *user)
{
    (void)user;
    counter_calls++;
    aspen_vm_call_return(call, 1000 * counter_calls + (int64_t)aspen_vm_call_arg(call, 0));
    return 0;
}

static void test_registered_function(void **state)
{
    (void)state;
    aspen_vm_host *host = aspen_vm_host_new();
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_host_register(host, "counter", "(u64) -> u64", fn_counter, NULL,
                                            &err),
                     0);
    aspen_vm *vm = make("test-hostcalls", NULL, host);
    aspen_vm_tape *rec = aspen_vm_tape_new(0);
    char out[64], out2[64];
    counter_calls = 0;
    assert_int_equal(run(vm, "call:counter:7:0", rec, out, sizeof out, NULL), ASPEN_VM_SUCCESS);
    assert_string_equal(out, "1007");
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(rec, &ti);
    assert_int_equal(ti.calls, 2); /* lookup, counter */
    assert_int_equal(ti.values, 1);
    /* named by the registry it ran with; without it, the built-ins know no "counter" */
    aspen_vm_tape_cursor cur = {0};
    aspen_vm_tape_call c;
    assert_int_equal(aspen_vm_tape_next_call(rec, host, &cur, &c), 1);
    assert_string_equal(c.name, "lookup");
    assert_int_equal(aspen_vm_tape_next_call(rec, host, &cur, &c), 1);
    assert_string_equal(c.name, "counter");
    assert_int_equal(c.nvalues, 1); /* its result */
    assert_int_equal(c.values[0].number, 1007);
    cur = (aspen_vm_tape_cursor){0};
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 1);
    assert_int_equal(aspen_vm_tape_next_call(rec, NULL, &cur, &c), 1);
    assert_string_equal(c.name, "unknown");
    aspen_vm_tape *rp = copy_of(rec);
    assert_int_equal(run(vm, "call:counter:7:0", rp, out2, sizeof out2, NULL), ASPEN_VM_SUCCESS);
    assert_string_equal(out2, "1007"); /* live it would say 2007 */
    assert_int_equal(counter_calls, 1); /* not called again */
    aspen_vm_tape_get_info(rp, &ti);
    assert_false(ti.diverged);
    /* another argument: the call's digest differs */
    aspen_vm_tape_reset(rp);
    assert_int_equal(run(vm, "call:counter:8:0", rp, out2, sizeof out2, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_tape_get_info(rp, &ti);
    assert_true(ti.diverged);
    assert_int_equal(ti.diverged_at, 2);
    assert_non_null(strstr(ti.why, "(counter)"));
    aspen_vm_tape_free(rp);
    aspen_vm_tape_free(rec);
    aspen_vm_destroy(vm);
    aspen_vm_host_free(host);
}

static void test_deterministic_and_damaged(void **state)
{
    (void)state;
    aspen_vm *vm = make("echo-worker", NULL, NULL);
    aspen_vm_tape *rec = aspen_vm_tape_new(0);
    char out[64];
    assert_int_equal(run(vm, "{\"message\":\"hi\"}", rec, out, sizeof out, NULL),
                     ASPEN_VM_SUCCESS);
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(rec, &ti);
    assert_int_equal(ti.calls, 1); /* its one log line */
    assert_int_equal(ti.values, 0);
    aspen_vm_tape_free(rec);
    aspen_vm_destroy(vm);

    static const uint8_t bad[][6] = {{0x80}, {0x01, 0, 0}, {0x01, 0, 0, 0, 0, 0x7f}};
    static const size_t lens[] = {1, 3, 6};
    for (size_t i = 0; i < 3; i++) {
        aspen_vm_tape *t = NULL;
        aspen_vm_error err = {0};
        assert_int_equal(aspen_vm_tape_open(bad[i], lens[i], &t, &err), ASPEN_VM_EINVAL);
        assert_null(t);
        assert_non_null(strstr(err.msg, "damaged"));
    }
}

static void test_linux_program(void **state)
{
    (void)state;
    const char *argv[] = {"clock", NULL};
    aspen_vm *vm = make("test-lx-probe", argv, NULL);
    aspen_vm_tape *rec = aspen_vm_tape_new(0);
    char out1[128], out2[128], live[128];
    struct logs l1 = {0}, l2 = {0};
    assert_int_equal(run(vm, "xyz", rec, out1, sizeof out1, &l1), ASPEN_VM_SUCCESS);
    assert_non_null(strstr(out1, "random(8)="));
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(rec, &ti);
    assert_true(ti.values >= 4); /* the clock (2), time's clock (2), the random bytes */
    assert_int_equal(run(vm, "xyz", NULL, live, sizeof live, NULL), ASPEN_VM_SUCCESS);
    assert_string_not_equal(live, out1); /* live runs differ: another reading, other bytes */
    aspen_vm *again = make("test-lx-probe", argv, NULL);
    aspen_vm_tape *rp = copy_of(rec);
    assert_int_equal(run(again, "xyz", rp, out2, sizeof out2, &l2), ASPEN_VM_SUCCESS);
    assert_string_equal(out2, out1);
    assert_string_equal(l2.text, l1.text);
    aspen_vm_tape_get_info(rp, &ti);
    assert_false(ti.diverged);
    /* system calls are listed by their names; getrandom's value is its bytes */
    aspen_vm_tape_cursor cur = {0};
    aspen_vm_tape_call c;
    bool clock = false, random = false;
    while (aspen_vm_tape_next_call(rp, NULL, &cur, &c) == 1) {
        assert_true(c.syscall);
        if (strcmp(c.name, "clock_gettime") == 0)
            clock = c.nvalues == 2 && !c.values[0].is_bytes;
        if (strcmp(c.name, "getrandom") == 0)
            random = c.nvalues == 1 && c.values[0].is_bytes && c.values[0].len == 8;
    }
    assert_int_equal(cur.calls, ti.calls);
    assert_true(clock && random);
    aspen_vm_tape_free(rp);
    aspen_vm_tape_free(rec);
    aspen_vm_destroy(vm);
    aspen_vm_destroy(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_identical_and_edited),
        cmocka_unit_test(test_fewer_calls_and_cap),
        cmocka_unit_test(test_registered_function),
        cmocka_unit_test(test_deterministic_and_damaged),
        cmocka_unit_test(test_linux_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
