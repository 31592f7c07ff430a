/* tests/vm/test_kvm_eintr.c — a signal arriving while a VM is created or run is never a failure.
 *
 * The engine's worker threads keep their deadline timer armed between runs (vm/deadline.c), so its
 * signal can land in the middle of KVM_CREATE_VM or any other KVM call; KVM then fails the call with
 * EINTR (SA_RESTART does not restart it). Here a timer on the test's own thread is re-armed before
 * every VM to fire once somewhere in the next 1.5 ms, as a deadline does (and so during VM creation,
 * which takes about that long here, most of the time); every VM must be created and run, and the
 * signal must really have landed during the work. (A periodic storm faster than KVM_CREATE_VM
 * itself would starve it, retried or not: that is not what a deadline timer does.)
 */
#include "aspen_vm.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static volatile sig_atomic_t g_ticks;

static void on_tick(int sig) { g_ticks++; }

static timer_t timer_start(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART; /* as the monitor's own kick signal: KVM calls still see EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGUSR1;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t t;
    assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &t), 0);
    return t;
}

/* Fire once, after_ns from now. */
static void timer_once(timer_t t, long after_ns)
{
    struct itimerspec its = {.it_value = {0, after_ns}};
    assert_int_equal(timer_settime(t, 0, &its, NULL), 0);
}

static void timer_stop(timer_t t)
{
    timer_delete(t);
    signal(SIGUSR1, SIG_IGN);
}

static void test_create_and_run_under_signals(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/test-quiet-echo", GUEST_DIR);
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &img, &err) != 0)
        fail_msg("loading %s: %s", path, err.msg);
    timer_t t = timer_start();
    uint32_t seed = 12345;
    int failures = 0;
    char first[2048] = "";
    for (int i = 0; i < 150; i++) {
        aspen_vm *vm = NULL;
        memset(&err, 0, sizeof err);
        seed = seed * 1103515245u + 12345u;
        timer_once(t, 1000 + (long)(seed >> 8) % 1500000);
        if (aspen_vm_create(img, NULL, NULL, &vm, &err) != 0) {
            if (!failures++)
                snprintf(first, sizeof first, "%s", err.msg);
            continue;
        }
        for (int k = 0; k < 3; k++) {
            aspen_vm_run_opts o = {.input = "x", .input_len = 1};
            aspen_vm_result r;
            if (aspen_vm_run(vm, &o, &r, &err) != 0 || r.outcome != ASPEN_VM_SUCCESS) {
                if (!failures++)
                    snprintf(first, sizeof first, "run: %s %s", err.msg, r.message);
            }
            aspen_vm_result_free(&r);
        }
        aspen_vm_destroy(vm);
    }
    timer_stop(t);
    aspen_vm_image_release(img);
    if (failures)
        fail_msg("%d of 600 creates/runs failed with a timer firing; first: %s", failures, first);
    assert_true(g_ticks > 100); /* the signal really did land during the work */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_run_under_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
