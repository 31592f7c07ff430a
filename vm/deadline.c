/* vm/deadline.c — deadlines and interrupts: a real-time signal kicks the vCPU thread out of
 * KVM_RUN. A per-thread POSIX timer sends it at the run's deadline; aspen_vm_interrupt sends it
 * from any thread. The handler sets kvm_run.immediate_exit, so even a signal landing just before
 * KVM_RUN is not lost.
 */
#include "vm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int g_kick_sig;
static pthread_once_t g_sig_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_timer_key;
static __thread struct kvm_run *volatile t_run; /* the run page this thread is executing */
static __thread timer_t *t_timer;
static __thread uint64_t t_armed; /* when this thread's timer fires (0: not armed) */

static void kick_handler(int sig, siginfo_t *si, void *uc)
{
    struct kvm_run *r = t_run;
    if (r)
        __atomic_store_n(&r->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

static void timer_destroy(void *p)
{
    timer_delete(*(timer_t *)p);
    free(p);
}

static void sig_init(void)
{
    g_kick_sig = SIGRTMIN + 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = kick_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART; /* other syscalls restart; KVM_RUN returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(g_kick_sig, &sa, NULL);
    pthread_key_create(&g_timer_key, timer_destroy);
}

/* Per vCPU thread, once: the kick signal unblocked and a timer aimed at this very thread. */
int vm_thread_prepare(aspen_vm_error *err)
{
    pthread_once(&g_sig_once, sig_init);
    if (t_timer)
        return 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, g_kick_sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    timer_t *tp = malloc(sizeof *tp);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = g_kick_sig;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (!tp || timer_create(CLOCK_MONOTONIC, &sev, tp) != 0) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "cannot create the deadline timer: %s",
                     strerror(errno));
        free(tp);
        return ASPEN_VM_ENOMEM;
    }
    pthread_setspecific(g_timer_key, tp);
    t_timer = tp;
    return 0;
}

static void timer_arm(uint64_t deadline_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ull);
    timer_settime(*t_timer, TIMER_ABSTIME, &its, NULL);
    t_armed = deadline_ns;
}

/* The timer stays armed between runs: arming and disarming it around every run would cost two
 * syscalls (~1 µs here). A run re-arms only when the pending expiry would come too late for its
 * deadline or has already passed; an expiry that comes early (a previous run's deadline) kicks
 * the vCPU once, and the run loop re-arms for the real deadline and goes on. Runs shorter than
 * their timeout thus cost no timer syscall at all, and an idle thread sees at most one stray
 * signal per timeout period (SA_RESTART makes it harmless). */
void vm_timer_ensure(uint64_t now, uint64_t deadline_ns)
{
    if (t_armed == 0 || t_armed <= now || t_armed > deadline_ns)
        timer_arm(deadline_ns);
}

void aspen_vm_interrupt(aspen_vm *vm)
{
    pthread_mutex_lock(&vm->kick_lock);
    if (vm->running) {
        atomic_store(&vm->interrupt_req, 1);
        __atomic_store_n(&vm->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        pthread_kill(vm->thread, g_kick_sig);
    }
    pthread_mutex_unlock(&vm->kick_lock);
}


void vm_kick_target(struct kvm_run *run) { t_run = run; }

int vm_kick_signal(void)
{
    pthread_once(&g_sig_once, sig_init);
    return g_kick_sig;
}
