/* tests/vm/test_linux.c — static Linux programs (musl-gcc -static) as guests: the system-call
 * layer of vm/linux.c.
 *
 * The guests are tests/vm/linux/lx-*.c and the vendored minigzip (guests/musl/minigzip), built
 * unmodified with musl-gcc -static. Checked: stdin/stdout/stderr/exit status/argv as a job sees
 * them; every hostile argument (huge counts, pointers into the host's pages or past guest memory,
 * lengths near 2^64, brk beyond memory, system call numbers -1 and 2^63, a call made from inside
 * the host's trampoline) refused the way Linux would, or ending the job with a clear message; no
 * state passing from one job to the next on a warm VM (memory, brk, mappings, TLS and FS/GS base,
 * XMM/MXCSR, closed streams); and that a warm job does not repeat libc's start-up.
 */
#include "aspen_vm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static aspen_vm_image *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LINUX_GUEST_DIR, name);
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &img, &err) != 0)
        fail_msg("loading %s: %s", path, err.msg);
    assert_true(aspen_vm_image_is_linux(img));
    return img;
}

struct logs {
    char text[8192];
    int n;
};

static void on_log(void *user, const char *line, size_t len)
{
    struct logs *l = user;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%.*s|", (int)len, line);
    l->n++;
}

static aspen_vm *make(const char *name, const char *const *argv, size_t mem, bool warm)
{
    aspen_vm_image *img = load(name);
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.argv = argv;
    cfg.warm = warm;
    cfg.timeout_ms = 60000; /* no test here is about time: thousands of exits on a busy machine */
    if (mem)
        cfg.memory_bytes = mem;
    aspen_vm *vm = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_create(img, &cfg, NULL, &vm, &err) != 0)
        fail_msg("creating a VM for %s: %s", name, err.msg);
    aspen_vm_image_release(img);
    return vm;
}

static aspen_vm_outcome run(aspen_vm *vm, const void *in, size_t len, aspen_vm_result *r,
                            struct logs *logs)
{
    aspen_vm_error err = {0};
    aspen_vm_run_opts o = {.input = in, .input_len = len, .on_log = logs ? on_log : NULL,
                           .log_user = logs};
    if (aspen_vm_run(vm, &o, r, &err) != 0)
        fail_msg("run failed: %s", err.msg);
    return r->outcome;
}

/* One job of lx-probe MODE on a fresh one-shot VM; the result stays in *r. */
static aspen_vm_outcome probe(const char *mode, const char *in, size_t mem, aspen_vm_result *r,
                              struct logs *logs)
{
    const char *argv[] = {mode, NULL};
    aspen_vm *vm = make("test-lx-probe", argv, mem, false);
    aspen_vm_outcome o = run(vm, in, strlen(in), r, logs);
    aspen_vm_destroy(vm);
    return o;
}

static void test_streams_argv_status(void **state)
{
    (void)state;
    const char *argv[] = {"echo", "two words", "-x", NULL};
    aspen_vm *vm = make("test-lx-probe", argv, 0, true);
    for (int i = 0; i < 3; i++) {
        struct logs l = {0};
        aspen_vm_result r;
        assert_int_equal(run(vm, "payload bytes", 13, &r, &l), ASPEN_VM_SUCCESS);
        static const char want[] = "argv[1]=echo\nargv[2]=two words\nargv[3]=-x\npayload bytes";
        assert_string_equal((char *)r.output, want);
        assert_int_equal(r.output_len, sizeof want - 1);
        assert_string_equal(l.text, "probe: 13 bytes, argc 4|");
        assert_int_equal(r.stats.log_lines, 1);
        aspen_vm_result_free(&r);
    }
    /* no input at all: stdin is at its end at once */
    struct logs l = {0};
    aspen_vm_result r;
    assert_int_equal(run(vm, NULL, 0, &r, &l), ASPEN_VM_SUCCESS);
    assert_string_equal(l.text, "probe: 0 bytes, argc 4|");
    aspen_vm_result_free(&r);
    aspen_vm_destroy(vm);

    /* a non-zero exit status fails the job with it; a partial last stderr line is logged too */
    l = (struct logs){0};
    assert_int_equal(probe("exit", "7", 0, &r, &l), ASPEN_VM_JOB_ERROR);
    assert_non_null(strstr(r.message, "exited with status 7"));
    assert_non_null(strstr(r.message, "no newline at the end"));
    assert_string_equal(l.text, "probe: giving up with status 7|no newline at the end|");
    aspen_vm_result_free(&r);
    assert_int_equal(probe("exit", "0", 0, &r, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_result_free(&r);
    /* abort() is SIGABRT sent to itself */
    assert_int_equal(probe("abort", "", 0, &r, NULL), ASPEN_VM_PANIC);
    assert_non_null(strstr(r.message, "signal 6 (SIGABRT)"));
    assert_non_null(strstr(r.message, "about to abort"));
    aspen_vm_result_free(&r);
}

/* Arguments too big for the stack's memcpy-restored top (16 KiB) still reach every job of a warm
 * VM whole: the host's own writes of the initial stack are part of the snapshot. */
static void test_big_arguments(void **state)
{
    (void)state;
    static char big[24000];
    memset(big, 'q', sizeof big - 1);
    const char *argv[] = {"echo", big, "last", NULL};
    aspen_vm *vm = make("test-lx-probe", argv, 0, true);
    for (int i = 0; i < 3; i++) {
        aspen_vm_result r;
        assert_int_equal(run(vm, "x", 1, &r, NULL), ASPEN_VM_SUCCESS);
        assert_int_equal(r.output_len, strlen("argv[1]=echo\nargv[2]=") + sizeof big - 1 +
                                           strlen("\nargv[3]=last\nx"));
        assert_non_null(strstr((char *)r.output, "\nargv[3]=last\nx"));
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
    /* a job that overwrites its arguments: the next one has them back */
    argv[0] = "mutate";
    vm = make("test-lx-probe", argv, 0, true);
    for (int i = 0; i < 3; i++) {
        aspen_vm_result r;
        assert_int_equal(run(vm, "x", 1, &r, NULL), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, "23999 qq\n");
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
    /* more than the limit is refused at creation, with the reason */
    static char huge[40000];
    memset(huge, 'h', sizeof huge - 1);
    const char *hargv[] = {huge, NULL};
    aspen_vm_image *img = load("test-lx-probe");
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.argv = hargv;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_create(img, &cfg, NULL, &vm, &err), ASPEN_VM_EINVAL);
    assert_non_null(strstr(err.msg, "arguments"));
    aspen_vm_image_release(img);
}

static void test_libc(void **state)
{
    (void)state;
    aspen_vm_result r;
    assert_int_equal(probe("libc", "", 16u << 20, &r, NULL), ASPEN_VM_SUCCESS);
    /* malloc of 3 MiB (mmap), realloc to 5 MiB (mremap refused, so copied), clocks, uname,
     * isatty (TIOCGWINSZ -> ENOTTY), getpid, a __thread variable */
    assert_string_equal((char *)r.output, "big=1 clock=1 tv=1 time=1 uname=0:Linux:x86_64 tty=0 "
                                          "errno=25 pid=1 tls=6\n");
    aspen_vm_result_free(&r);
    /* thousands of mappings, holes punched in them, reused pages zero */
    const char *argv[] = {"maps", NULL};
    aspen_vm *vm = make("test-lx-probe", argv, 16u << 20, true);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run(vm, "", 0, &r, NULL), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, "maps ok=3001\n");
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
}

static void test_hostile_arguments(void **state)
{
    (void)state;
    aspen_vm_result r;
    assert_int_equal(probe("hostile", "", 0, &r, NULL), ASPEN_VM_SUCCESS);
    static const char want[] =
        "writev-iovcnt-huge -22\nwritev-iovcnt-neg -22\nwritev-iovcnt-2p63 -22\n"
        "writev-host-page -14\nwritev-past-end -14\nwritev-len-huge -22\n"
        "writev-total-overflow -14\nwritev-iov-in-host -14\nwritev-iov-wraps -14\n"
        "write-wraps -14\nwrite-host -14\nread-bad-fd -9\nwrite-stdin -9\nbrk-beyond 1\n"
        "brk-past-memory 1\nbrk-below 1\nmmap-2p64 -12\nmmap-2p63 -12\nmmap-all-ones -12\n"
        "mmap-zero -22\nmmap-exec -13\nmmap-file -19\nmmap-fixed-host -12\n"
        "mmap-fixed-code -12\nmunmap-wraps -22\nmunmap-code -22\nmprotect-host -12\n"
        "mprotect-wraps -12\nclock-bad -22\nclock-host -14\nclock-code -14\nuname-host -14\n"
        "arch-prctl-noncanonical -1\narch-prctl-bad -22\nsigaction-host -14\nioctl -25\n"
        "open -2\nkill-other -3\n";
    assert_string_equal((char *)r.output, want);
    aspen_vm_result_free(&r);
    /* reads into code, the host's pages and past the end, with input left to read */
    assert_int_equal(probe("hostile-read", "abcdef", 0, &r, NULL), ASPEN_VM_SUCCESS);
    assert_string_equal((char *)r.output, "read-into-code -14\nread-into-host -14\n"
                                          "read-past-end -14\nreadv-iov-host -14\nread-ok 2\n");
    aspen_vm_result_free(&r);
}

/* The system-call entry answers ioctl on the standard streams and end-of-file reads itself (no
 * exit); everything around those answers still goes to the host, on every job of a warm VM. */
static void test_fast_paths(void **state)
{
    (void)state;
    const char *argv[] = {"fastpath", NULL};
    aspen_vm *vm = make("test-lx-probe", argv, 0, true);
    for (int i = 0; i < 3; i++) {
        aspen_vm_result r;
        struct logs l = {0};
        assert_int_equal(run(vm, "twelve bytes", 12, &r, &l), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output,
                            "ioctl -25\ninput 12\neof-read 0 0\neof-readv 0\n"
                            "eof-readv-huge -22\neof-read-neg -22\neof-read-fd1 -9\n"
                            "ioctl-fd3 -9\nioctl-df -25 df=1\nclosed-read -9\n");
        assert_string_equal(l.text, "closed-ioctl -9|");
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
}

static void test_unsupported_and_illegal(void **state)
{
    (void)state;
    static const struct {
        const char *nr, *msg;
    } cases[] = {
        {"41", "unsupported system call 41 (socket)"},
        {"-1", "unsupported system call 18446744073709551615 (unknown)"},
        {"0x8000000000000000", "unsupported system call 9223372036854775808 (unknown)"},
        {"57", "unsupported system call 57 (fork)"},
        {"100000", "unsupported system call 100000 (unknown)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aspen_vm_result r;
        assert_int_equal(probe("syscall", cases[i].nr, 0, &r, NULL), ASPEN_VM_ILLEGAL_CALL);
        if (!strstr(r.message, cases[i].msg))
            fail_msg("syscall %s: %s", cases[i].nr, r.message);
        aspen_vm_result_free(&r);
    }
    /* a system call from inside the host's trampoline page */
    aspen_vm_result r;
    assert_int_equal(probe("tramp", "", 0, &r, NULL), ASPEN_VM_ILLEGAL_CALL);
    assert_non_null(strstr(r.message, "from the host's own trampoline page"));
    aspen_vm_result_free(&r);
    /* faults, timeouts and output limits work as for any guest */
    assert_int_equal(probe("null", "", 0, &r, NULL), ASPEN_VM_FAULT);
    assert_non_null(strstr(r.message, "null pointer"));
    aspen_vm_result_free(&r);
    const char *argv[] = {"bigout", NULL};
    aspen_vm_image *img = load("test-lx-probe");
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.argv = argv;
    cfg.max_output = 64u << 10;
    cfg.timeout_ms = 20000;
    aspen_vm *vm = NULL;
    aspen_vm_error err = {0};
    assert_int_equal(aspen_vm_create(img, &cfg, NULL, &vm, &err), 0);
    aspen_vm_image_release(img);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run(vm, "", 0, &r, NULL), ASPEN_VM_OUTPUT_TOO_LARGE);
        assert_non_null(strstr(r.message, "more than 65536 bytes"));
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
}

/* After a plant (which also ends on a hand-made exit with a foreign FS base), a check prints
 * exactly what it prints on a fresh VM: nothing of one job reaches the next. */
static void test_isolation(void **state)
{
    (void)state;
    aspen_vm *fresh = make("test-lx-leak", NULL, 4u << 20, false);
    aspen_vm_result r;
    struct logs l = {0};
    assert_int_equal(run(fresh, "check", 5, &r, &l), ASPEN_VM_SUCCESS);
    char *base = strdup((char *)r.output);
    aspen_vm_result_free(&r);
    aspen_vm_destroy(fresh);
    assert_non_null(strstr(base, "counter=0 tls=0 "));
    assert_non_null(strstr(base, "zero=1 last_map=0 mxcsr=0x1f80 xmm8=0 gs=0 fs_is_tp=1"));

    aspen_vm *vm = make("test-lx-leak", NULL, 4u << 20, true);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(run(vm, "plant", 5, &r, NULL), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, "planted\n");
        aspen_vm_result_free(&r);
        l = (struct logs){0};
        assert_int_equal(run(vm, "check", 5, &r, &l), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, base);
        assert_string_equal(l.text, "stderr works|"); /* stderr closed by the plant is back */
        aspen_vm_result_free(&r);
        assert_true(aspen_vm_usable(vm));
    }
    /* a fault, an unsupported call and a timeout in between change nothing either */
    static const struct {
        const char *in;
        aspen_vm_outcome want;
    } ends[] = {{"fault", ASPEN_VM_FAULT}, {"socket", ASPEN_VM_ILLEGAL_CALL},
                {"spin", ASPEN_VM_TIMEOUT}};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        aspen_vm_error err = {0};
        aspen_vm_run_opts o = {.input = ends[i].in, .input_len = strlen(ends[i].in),
                               .timeout_ms = 200};
        assert_int_equal(aspen_vm_run(vm, &o, &r, &err), 0);
        if (r.outcome != ends[i].want)
            fail_msg("%s: %s: %s", ends[i].in, aspen_vm_outcome_name(r.outcome), r.message);
        aspen_vm_result_free(&r);
        assert_true(aspen_vm_usable(vm));
        assert_int_equal(run(vm, "check", 5, &r, NULL), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, base);
        aspen_vm_result_free(&r);
    }
    aspen_vm_destroy(vm);
    free(base);
}

/* A real program, unmodified: zlib's minigzip compresses stdin to stdout and, with -d, back. */
static void test_minigzip(void **state)
{
    (void)state;
    static const char text[] = "The quick brown fox jumps over the lazy dog. "
                               "The quick brown fox jumps over the lazy dog. "
                               "The quick brown fox jumps over the lazy dog.\n";
    aspen_vm *gz = make("minigzip", NULL, 8u << 20, true);
    const char *dargv[] = {"-d", NULL};
    aspen_vm *gunzip = make("minigzip", dargv, 8u << 20, true);
    for (int i = 0; i < 3; i++) {
        aspen_vm_result r, d;
        assert_int_equal(run(gz, text, sizeof text - 1, &r, NULL), ASPEN_VM_SUCCESS);
        assert_true(r.output_len > 18 && r.output_len < sizeof text - 1);
        assert_int_equal(r.output[0], 0x1f); /* the gzip magic */
        assert_int_equal(r.output[1], 0x8b);
        assert_int_equal(run(gunzip, r.output, r.output_len, &d, NULL), ASPEN_VM_SUCCESS);
        assert_int_equal(d.output_len, sizeof text - 1);
        assert_memory_equal(d.output, text, sizeof text - 1);
        aspen_vm_result_free(&r);
        aspen_vm_result_free(&d);
    }
    /* corrupt gzip data: minigzip says so on stderr and exits 1 */
    aspen_vm_result r;
    struct logs l = {0};
    static const uint8_t bad[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(run(gunzip, bad, sizeof bad, &r, &l), ASPEN_VM_JOB_ERROR);
    assert_non_null(strstr(r.message, "exited with status 1"));
    assert_true(l.n >= 1);
    aspen_vm_result_free(&r);
    aspen_vm_destroy(gz);
    aspen_vm_destroy(gunzip);
}

/* A warm job resumes after libc's start-up: it makes fewer system calls than a cold one. */
static void test_warm_skips_startup(void **state)
{
    (void)state;
    const char *argv[] = {"upper", NULL};
    aspen_vm *cold = make("test-lx-probe", argv, 0, false);
    aspen_vm_result r;
    assert_int_equal(run(cold, "abc", 3, &r, NULL), ASPEN_VM_SUCCESS);
    aspen_vm_result_free(&r);
    aspen_vm_destroy(cold);
    aspen_vm *vm = make("test-lx-probe", argv, 0, true);
    uint32_t calls = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(run(vm, "abc", 3, &r, NULL), ASPEN_VM_SUCCESS);
        assert_string_equal((char *)r.output, "ABC");
        /* what a job does after the snapshot: the reads of stdin, a malloc'd buffer, one write,
         * exit — never the start-up calls (arch_prctl, set_tid_address) again */
        if (i > 0)
            assert_int_equal(r.stats.host_calls, calls);
        calls = r.stats.host_calls;
        /* the first read is performed before the guest runs, the end-of-file read and stdout's
         * terminal check by the syscall entry itself: a write and the exit are left */
        assert_int_equal(r.stats.exits, 2);
        aspen_vm_result_free(&r);
    }
    assert_true(calls <= 8);
    aspen_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_argv_status),
        cmocka_unit_test(test_big_arguments),
        cmocka_unit_test(test_libc),
        cmocka_unit_test(test_hostile_arguments),
        cmocka_unit_test(test_fast_paths),
        cmocka_unit_test(test_unsupported_and_illegal),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_minigzip),
        cmocka_unit_test(test_warm_skips_startup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
