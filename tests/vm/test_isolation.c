/* tests/vm/test_isolation.c — no state passes from one job to the next on the same warm VM.
 *
 * For each channel, the hostile guest test-leak (tests/vm/guests/leak) plants a marked value in
 * job 1 and ends the job with it live; job 2 on the same VM probes the channel. The probe must
 * read exactly what the same probe reads on a fresh VM — general registers and RFLAGS, x87/MMX,
 * XMM and MXCSR, YMM upper halves, the whole XSAVE image, PKRU, FS/GS base, segment selectors,
 * memory everywhere, and no pending I/O (a job that ends on an illegal `in` must not be resumed
 * in the next job). Each plant is repeated, and the VM must stay usable throughout.
 */
#include "aspen_vm.h"
#include "vm_internal.h" /* test_host_fault_discards_vm reaches into the trampoline page */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static aspen_vm *leak_vm(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/test-leak", GUEST_DIR);
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &img, &err) != 0)
        fail_msg("loading %s: %s", path, err.msg);
    aspen_vm *vm = NULL;
    if (aspen_vm_create(img, NULL, NULL, &vm, &err) != 0)
        fail_msg("creating a VM for test-leak: %s", err.msg);
    aspen_vm_image_release(img);
    return vm;
}

static aspen_vm_outcome run(aspen_vm *vm, const char *input, uint32_t timeout_ms,
                            aspen_vm_result *r)
{
    aspen_vm_error err = {0};
    aspen_vm_run_opts o = {.input = input, .input_len = strlen(input), .timeout_ms = timeout_ms};
    if (aspen_vm_run(vm, &o, r, &err) != 0)
        fail_msg("run \"%s\" failed: %s", input, err.msg);
    return r->outcome;
}

/* The probe's output for channel ch (malloc'd). */
static char *probe(aspen_vm *vm, const char *ch)
{
    char in[64];
    snprintf(in, sizeof in, "probe:%s", ch);
    aspen_vm_result r;
    if (run(vm, in, 0, &r) != ASPEN_VM_SUCCESS)
        fail_msg("%s: %s: %s", in, aspen_vm_outcome_name(r.outcome), r.message);
    char *s = strdup((char *)r.output);
    aspen_vm_result_free(&r);
    return s;
}

/* Plant in job 1 (expecting outcome want, with want_msg in its message if given), probe in job 2,
 * three times over on one VM; every probe must equal the fresh VM's. */
static void channel(const char *plant, const char *ch, aspen_vm_outcome want, const char *want_msg,
                    uint32_t timeout_ms)
{
    aspen_vm *vm = leak_vm();
    char *base = probe(vm, ch);
    assert_null(strstr(base, "unknown"));
    char in[64];
    snprintf(in, sizeof in, "plant:%s", plant);
    for (int round = 0; round < 3; round++) {
        aspen_vm_result r;
        aspen_vm_outcome got = run(vm, in, timeout_ms, &r);
        if (got != want || (want == ASPEN_VM_SUCCESS && strcmp((char *)r.output, "planted") != 0) ||
            (want_msg && !strstr(r.message, want_msg)))
            fail_msg("%s: want %s (%s), got %s: \"%s\" output \"%s\"", in,
                     aspen_vm_outcome_name(want), want_msg ? want_msg : "planted",
                     aspen_vm_outcome_name(got), r.message, r.output ? (char *)r.output : "");
        aspen_vm_result_free(&r);
        assert_true(aspen_vm_usable(vm));
        char *after = probe(vm, ch);
        if (strcmp(after, base) != 0)
            fail_msg("channel %s leaks after %s (round %d):\n fresh: %s\n after: %s", ch, in,
                     round, base, after);
        free(after);
    }
    free(base);
    aspen_vm_destroy(vm);
}

/* Whether the guest's CPU has feature name ("pkru", "fsgsbase", ...): the leak guest's "cpu" probe
 * runs each instruction CPUID lists and says "name=ok", or "name=absent" where CPUID lists none.
 * The project's machines differ (an Intel host whose guests get PKU, an AMD EPYC host whose guests
 * do not), so the channels a CPU lacks are tested for the fault instead of for a reset. */
static bool guest_cpu_has(const char *name)
{
    aspen_vm *vm = leak_vm();
    char *p = probe(vm, "cpu");
    char key[32];
    snprintf(key, sizeof key, "%s=ok ", name);
    bool has = strstr(p, key) != NULL;
    free(p);
    aspen_vm_destroy(vm);
    return has;
}

/* A fresh VM's probes hold no mark, and each probe sees the mark when its plant runs in the same
 * job ("check:"), so an equal probe after a plant means the channel was reset, not unseen. */
static void test_probes_see_a_mark(void **state)
{
    bool pku = guest_cpu_has("pkru");
    aspen_vm *vm = leak_vm();
    const char *fresh[] = {"regs", "x87", "avx", "xsave", "pkru", "fsgs", "seg", "mem"};
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++) {
        char *p = probe(vm, fresh[i]);
        assert_null(strstr(p, "4b41454c2d4e5041"));
        assert_null(strstr(p, "41504e2d4c45414b")); /* the mark as bytes, little-endian */
        if (strcmp(fresh[i], "pkru") == 0 && !pku)
            assert_string_equal(p, "pkru=unsupported ");
        else
            assert_null(strstr(p, "unsupported")); /* every other channel exists everywhere */
        free(p);
    }
    static const struct { const char *ch, *mark; } checks[] = {
        {"avx", "41504e2d4c45414b"},   {"mmx", "41504e2d4c45414b"},
        {"sse", "41504e2d4c45414b"},   {"xsave", "41504e2d4c45414b"},
        {"pkru", "pkru=00000000aaaaaaa8"}, {"fsgs", "fsbase=00005a5a5a5a5000"},
        {"mem", "hits=0000000000"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (strcmp(checks[i].ch, "pkru") == 0 && !pku)
            continue;
        char in[64];
        snprintf(in, sizeof in, "check:%s", checks[i].ch);
        aspen_vm_result r;
        assert_int_equal(run(vm, in, 0, &r), ASPEN_VM_SUCCESS);
        if (!strstr((char *)r.output, checks[i].mark))
            fail_msg("%s: the probe does not see its own plant: %s", in, (char *)r.output);
        if (strcmp(checks[i].ch, "mem") == 0)
            assert_null(strstr((char *)r.output, "hits=0000000000000000"));
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
}

static void test_gprs_and_rflags(void **state)
{
    channel("regs", "regs", ASPEN_VM_SUCCESS, NULL, 0);
}
static void test_trap_flag(void **state) { channel("tf", "regs", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_x87(void **state) { channel("x87", "x87", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_mmx(void **state) { channel("mmx", "mmx", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_xmm(void **state) { channel("sse", "sse", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_mxcsr(void **state) { channel("mxcsr", "mxcsr", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_ymm_upper(void **state) { channel("avx", "avx", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_xsave_image(void **state)
{
    channel("xsave", "xsave", ASPEN_VM_SUCCESS, NULL, 0);
}
/* Where the guest's CPU has no PKU, its wrpkru must fault (#UD) and leave the VM as it was. */
static void pkru_channel(const char *plant)
{
    if (guest_cpu_has("pkru"))
        channel(plant, "pkru", ASPEN_VM_SUCCESS, NULL, 0);
    else
        channel(plant, "pkru", ASPEN_VM_FAULT, "invalid opcode (#UD)", 0);
}
static void test_pkru(void **state) { pkru_channel("pkru"); }
/* PKRU = 1 denies every data access at CPL 3: before the fix every later job on the VM faulted
 * in the host's trampoline, and the pool kept reusing the VM. */
static void test_pkru_poison(void **state) { pkru_channel("pkru-poison"); }
static void test_fs_gs_base(void **state) { channel("fsgs", "fsgs", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_selectors(void **state) { channel("seg", "seg", ASPEN_VM_SUCCESS, NULL, 0); }
static void test_memory_everywhere(void **state)
{
    channel("mem", "mem", ASPEN_VM_SUCCESS, NULL, 0);
}
/* The input is written by the host, not the guest, so KVM's dirty tracking does not list its
 * pages; the restore puts the input's pages back whole (vm/snapshot.c). A job whose input carries
 * the mark over several pages (read, never written, by the guest) must leave none of it to the
 * next job's scan, whatever the inputs' lengths and alignment. */
static void test_input_remnants(void **state)
{
    aspen_vm *vm = leak_vm();
    char *base = probe(vm, "mem");
    static const size_t marks[] = {1535, 1000, 1, 3000, 511};
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
        size_t len = 8 + 8 * marks[k];
        char *in = malloc(len + 1);
        assert_non_null(in);
        memcpy(in, "input:  ", 8); /* 8 bytes: the marks stay 8-aligned (the input is 16-aligned) */
        for (size_t i = 0; i < marks[k]; i++)
            memcpy(in + 8 + 8 * i, "APN-LEAK", 8);
        in[len] = '\0';
        aspen_vm_result r;
        assert_int_equal(run(vm, in, 0, &r), ASPEN_VM_SUCCESS);
        char want[64];
        snprintf(want, sizeof want, "hits=%016llx", (unsigned long long)marks[k]);
        if (!strstr((char *)r.output, want))
            fail_msg("the job does not see its own input's %zu marks: %s", marks[k],
                     (char *)r.output);
        aspen_vm_result_free(&r);
        free(in);
        char *after = probe(vm, "mem");
        if (strcmp(after, base) != 0)
            fail_msg("an input of %zu bytes leaks to the next job:\n fresh: %s\n after: %s", len,
                     base, after);
        free(after);
    }
    free(base);
    aspen_vm_destroy(vm);
}

/* State left by a job that timed out or faulted goes too. */
static void test_after_timeout(void **state)
{
    channel("spin-avx", "avx", ASPEN_VM_TIMEOUT, NULL, 50);
}
static void test_after_fault(void **state)
{
    channel("fault-avx", "avx", ASPEN_VM_FAULT, "invalid opcode (#UD)", 0);
}

/* Pending I/O: the run ended on a port access KVM expects the host to complete. The next job
 * must run its own code, not resume the last job's after the `in` (which would print HIJACKED
 * with the next job's input). */
static void test_pending_in(void **state)
{
    channel("in", "io", ASPEN_VM_ILLEGAL_CALL, "IN of 4 byte(s) x1 to port 0xa0", 0);
}
static void test_pending_in8(void **state)
{
    channel("in8", "io", ASPEN_VM_ILLEGAL_CALL, "IN of 1 byte(s) x1 to port 0xa4", 0);
}
static void test_pending_ins(void **state)
{
    channel("ins", "io", ASPEN_VM_ILLEGAL_CALL, "to port 0xa0", 0);
}
/* A `rep insw` of 200,000 words: more than KVM completes in one round. */
static void test_pending_ins_huge(void **state)
{
    channel("ins-huge", "io", ASPEN_VM_ILLEGAL_CALL, "IN of 2 byte(s)", 0);
}
/* A 4-byte `rep outs` to the exit port reaches the host as one 4-byte OUT per element, like
 * `out` (docs/ABI.md section 4): here the first element is DONE and the job ends; the rest of the
 * string must not run in the next job. */
static void test_rep_outs(void **state)
{
    channel("outs", "io", ASPEN_VM_SUCCESS, NULL, 0);
}
static void test_out_byte(void **state)
{
    channel("out1", "io", ASPEN_VM_ILLEGAL_CALL, "OUT of 1 byte(s) x1 to port 0xa0", 0);
}
static void test_interrupt_shadow(void **state)
{
    channel("shadow", "regs", ASPEN_VM_SUCCESS, NULL, 0);
}
/* Debug registers are privileged: a guest cannot set DR0-7 (a #GP), so nothing carries over. */
static void test_debug_registers(void **state)
{
    channel("dr", "regs", ASPEN_VM_FAULT, "general protection fault (#GP)", 0);
}

/* The CPU contract of docs/ABI.md section 4: every instruction the guest's CPUID lists works at
 * CPL 3 ("ok"; a fault would end the probe job) and does what it says ("broken" otherwise); rdtsc,
 * AVX2 and FS/GS base are on every machine of this project; rdtscp, rdpid and PKU only on some
 * (CPUID shows CPL 3 no rdtscp on the nested Intel machines).
 * XCR0 enables x87, SSE and AVX, and PKRU exactly where wrpkru works. */
static void test_cpu_contract(void **state)
{
    aspen_vm *vm = leak_vm();
    char *p = probe(vm, "cpu");
    static const char *everywhere[] = {"rdtsc=ok ", "avx2=ok ", "fsgsbase=ok "};
    for (size_t i = 0; i < sizeof everywhere / sizeof everywhere[0]; i++)
        if (!strstr(p, everywhere[i]))
            fail_msg("CPU contract: no \"%s\" in \"%s\"", everywhere[i], p);
    static const char *somewhere[] = {"rdtscp", "rdpid", "rdrand", "rdseed", "pkru"};
    for (size_t i = 0; i < sizeof somewhere / sizeof somewhere[0]; i++) {
        char ok[32], absent[32];
        snprintf(ok, sizeof ok, "%s=ok ", somewhere[i]);
        snprintf(absent, sizeof absent, "%s=absent ", somewhere[i]);
        if (!strstr(p, ok) && !strstr(p, absent))
            fail_msg("CPU contract: %s is neither ok nor absent in \"%s\"", somewhere[i], p);
    }
    assert_null(strstr(p, "broken"));
    const char *x = strstr(p, "xcr0=");
    assert_non_null(x);
    unsigned long long xcr0 = strtoull(x + 5, NULL, 16);
    assert_int_equal(xcr0 & 0x7, 0x7); /* x87, SSE, AVX */
    assert_int_equal((xcr0 & 0x200) != 0, strstr(p, "pkru=ok ") != NULL);
    free(p);
    aspen_vm_destroy(vm);
}

/* The trampoline page is user-executable: a guest may jump into it as often as it likes (here
 * 100,000 times, timing it for docs/BENCHMARKS.md). That changes nothing for the host or the next
 * job. */
static void test_guest_runs_the_trampoline(void **state)
{
    aspen_vm *vm = leak_vm();
    char *base = probe(vm, "xsave");
    aspen_vm_result r;
    assert_int_equal(run(vm, "probe:tramp-cost", 0, &r), ASPEN_VM_SUCCESS);
    assert_non_null(strstr((char *)r.output, "tramp_ps="));
    aspen_vm_result_free(&r);
    char *after = probe(vm, "xsave");
    assert_string_equal(base, after);
    free(base);
    free(after);
    aspen_vm_destroy(vm);
}

static uint64_t field(const char *s, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(s, key);
    while (p && p != s && p[-1] != ' ') /* "gs=" also ends "rflags=" */
        p = strstr(p + 1, key);
    if (!p)
        fail_msg("no %s in \"%s\"", name, s);
    return strtoull(p + strlen(key), NULL, 16);
}

/* The registers docs/ABI.md promises at _start and at execute (section 1). */
static void test_entry_registers(void **state)
{
    aspen_vm *vm = leak_vm();
    char *st = probe(vm, "start"), *ex = probe(vm, "entry");
    uint64_t block = field(st, "rdi");
    assert_true(block > 0x10000);
    assert_int_equal(field(st, "rsp"), block); /* stack_high: the call block sits right above */
    static const char *zero_at_start[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rbp", "r8", "r9",
                                          "r10", "r11", "r12", "r13", "r14", "r15", "ds", "es",
                                          "fs", "gs"};
    for (size_t i = 0; i < sizeof zero_at_start / sizeof zero_at_start[0]; i++)
        if (field(st, zero_at_start[i]) != 0)
            fail_msg("_start: %s is not 0: %s", zero_at_start[i], st);
    uint64_t no = 0x400 | 0x100 | 0x40000; /* DF, TF, AC */
    assert_int_equal(field(st, "rflags") & no, 0);

    assert_int_equal(field(ex, "rdi"), block);
    assert_int_equal(field(ex, "rsp"), block - 8);
    assert_int_equal(field(ex, "rdx"), strlen("probe:entry"));
    uint64_t in = field(ex, "rsi"); /* input_ptr: the top of the heap, 16-byte aligned */
    assert_true(in > block && (in & 15) == 0);
    uint64_t rax = field(ex, "rax"); /* the execute address */
    assert_true(rax >= 0x400000 && rax < block);
    static const char *zero_at_execute[] = {"rbx", "rcx", "rbp", "r8", "r9", "r10", "r11", "r12",
                                            "r13", "r14", "r15", "ds", "es", "fs", "gs"};
    for (size_t i = 0; i < sizeof zero_at_execute / sizeof zero_at_execute[0]; i++)
        if (field(ex, zero_at_execute[i]) != 0)
            fail_msg("execute: %s is not 0: %s", zero_at_execute[i], ex);
    assert_int_equal(field(ex, "rflags") & no, 0);
    free(st);
    free(ex);
    /* At _start: PKRU 0, FS/GS base 0, FCW 0x37f with every x87 register empty, MXCSR 0x1f80 */
    bool pku = guest_cpu_has("pkru");
    const char *pk0 = pku ? "pkru=0000000000000000 " : "pkru=unsupported ";
    char *ss = probe(vm, "start-state");
    if (strncmp(ss, pk0, strlen(pk0)) != 0)
        fail_msg("_start: want \"%s\" first: %s", pk0, ss);
    assert_non_null(strstr(ss, "fsbase=0000000000000000 gsbase=0000000000000000 x87=7f0300000000"));
    assert_non_null(strstr(ss, "801f0000"));
    free(ss);
    /* At execute: x87/SSE/AVX at their init values, PKRU 0, FS/GS base 0 */
    char *fp = probe(vm, "x87");
    assert_non_null(strstr(fp, "x87=7f0300000000")); /* FCW 0x37f, FSW 0, all registers empty */
    assert_non_null(strstr(fp, "801f0000")); /* MXCSR 0x1f80 */
    free(fp);
    char *pk = probe(vm, "pkru"), *fs = probe(vm, "fsgs");
    assert_string_equal(pk, pk0);
    assert_string_equal(fs, "fsbase=0000000000000000 gsbase=0000000000000000 ");
    free(pk);
    free(fs);
    aspen_vm_destroy(vm);
}

/* A fault in the host's own code (the trampoline every job enters through) means the vCPU is not in
 * the state the host set up: the job ends as crashed and the VM is never used again. No guest can
 * cause this any more (that is what the tests above show), so the trampoline is broken by hand. */
static void test_host_fault_discards_vm(void **state)
{
    aspen_vm *vm = leak_vm();
    char *p = probe(vm, "io");
    free(p);
    static const uint8_t ud2[2] = {0x0f, 0x0b};
    memcpy(vm->sys + SYS_TRAMP_OFF, ud2, sizeof ud2);
    aspen_vm_result r;
    assert_int_equal(run(vm, "probe:io", 0, &r), ASPEN_VM_CRASHED);
    assert_non_null(strstr(r.message, "invalid opcode (#UD)"));
    assert_non_null(strstr(r.message, "host's own code and is discarded"));
    aspen_vm_result_free(&r);
    assert_false(aspen_vm_usable(vm));
    aspen_vm_error err = {0};
    aspen_vm_run_opts o = {.input = "probe:io", .input_len = 8};
    assert_int_equal(aspen_vm_run(vm, &o, &r, &err), ASPEN_VM_EINVAL);
    aspen_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_see_a_mark),
        cmocka_unit_test(test_gprs_and_rflags),
        cmocka_unit_test(test_trap_flag),
        cmocka_unit_test(test_x87),
        cmocka_unit_test(test_mmx),
        cmocka_unit_test(test_xmm),
        cmocka_unit_test(test_mxcsr),
        cmocka_unit_test(test_ymm_upper),
        cmocka_unit_test(test_xsave_image),
        cmocka_unit_test(test_pkru),
        cmocka_unit_test(test_pkru_poison),
        cmocka_unit_test(test_fs_gs_base),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_memory_everywhere),
        cmocka_unit_test(test_input_remnants),
        cmocka_unit_test(test_after_timeout),
        cmocka_unit_test(test_after_fault),
        cmocka_unit_test(test_pending_in),
        cmocka_unit_test(test_pending_in8),
        cmocka_unit_test(test_pending_ins),
        cmocka_unit_test(test_pending_ins_huge),
        cmocka_unit_test(test_rep_outs),
        cmocka_unit_test(test_out_byte),
        cmocka_unit_test(test_interrupt_shadow),
        cmocka_unit_test(test_debug_registers),
        cmocka_unit_test(test_cpu_contract),
        cmocka_unit_test(test_entry_registers),
        cmocka_unit_test(test_guest_runs_the_trampoline),
        cmocka_unit_test(test_host_fault_discards_vm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
