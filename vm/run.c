/* vm/run.c — running the guest: start-up to the READY exit, and one job from the snapshot. The
 * run loop reads each exit (host call, DONE, fault report, anything else an error), and the job's
 * result is read from the call block with every pointer checked.
 *
 * Every exit costs ~25 µs on this project's nested KVM, so a job that makes no host call costs
 * exactly one exit (DONE), registers go in through the run page (sync regs), and host-call arguments
 * travel in the call block, never through KVM_GET_REGS.
 */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static void finish_done(aspen_vm *vm, aspen_vm_result *res);
static int run_linux(aspen_vm *vm, const aspen_vm_run_opts *opts, struct run_ctx *c,
                     aspen_vm_error *err);
static int run_end(aspen_vm *vm, struct run_ctx *c, enum ev ev, uint64_t t0, uint32_t timeout,
                   uint64_t in_gva, uint64_t in_len, aspen_vm_error *err);

static enum ev run_loop(aspen_vm *vm, struct run_ctx *c)
{
    aspen_vm_result *res = c->res;
    for (;;) {
        int r = ioctl(vm->cpufd, KVM_RUN, 0);
        if (r < 0 || vm->run->exit_reason == KVM_EXIT_INTR) {
            if (r < 0 && errno != EINTR && errno != EAGAIN) {
                snprintf(res->message, sizeof res->message, "KVM_RUN failed: %s",
                         strerror(errno));
                return EV_ERROR;
            }
            __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
            if (vm->dbg) {
                int dbg = vm_gdb_poll(vm, c); /* the debugger's socket kicks too (^C) */
                if (dbg >= 0)
                    return (enum ev)dbg;
            }
            if (atomic_load(&vm->interrupt_req) ||
                (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_SEQ_CST)))
                return EV_CANCEL;
            uint64_t now = now_ns();
            if (now >= c->deadline)
                return EV_TIMEOUT;
            vm_timer_ensure(now, c->deadline); /* an early expiry, or a foreign signal */
            continue;
        }
        res->stats.exits++;
        switch (vm->run->exit_reason) {
        case KVM_EXIT_IO: {
            struct kvm_run *run = vm->run;
            uint32_t data = 0;
            /* KVM completes an IN (writes the register or memory, moves rip past it) at the next
             * KVM_RUN, whatever the registers are by then: the run ends here, so the completion
             * must be dropped before the vCPU is reused (vm_quiesce). */
            if (run->io.direction == KVM_EXIT_IO_IN)
                vm->pending_io = true;
            bool out4 = run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 &&
                        run->io.count == 1;
            if (out4)
                memcpy(&data, (uint8_t *)run + run->io.data_offset, 4);
            if (run->io.port == ASPEN_PORT_FAULT) {
                int dbg = vm->dbg ? vm_gdb_trap(vm, c) : EV_FAULT;
                if (dbg < 0)
                    continue; /* a debugger stop, and gdb resumed the guest */
                return (enum ev)dbg;
            }
            if (vm->img->linux_abi) {
                /* A Linux program talks to the host through system calls only. */
                if (out4 && run->io.port == ASPEN_PORT_CALL && vm_lx_is_syscall_exit(vm)) {
                    switch (vm_lx_syscall(vm, c)) {
                    case LX_CONTINUE:
                        if (vm->dbg) { /* a single step over the system call ends after it */
                            int dbg = vm_gdb_after_call(vm, c, true);
                            if (dbg >= 0)
                                return (enum ev)dbg;
                        }
                        continue;
                    case LX_READY: return EV_READY;
                    case LX_END: return EV_DONE;
                    default: return EV_ILLEGAL;
                    }
                }
                snprintf(res->message, sizeof res->message,
                         "illegal host call: %s of %u byte(s) to port 0x%x by a Linux program, "
                         "which talks to the host only through system calls",
                         run->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN", run->io.size,
                         run->io.port);
                return EV_ILLEGAL;
            }
            if (out4 && run->io.port == ASPEN_PORT_CALL) {
                if (vm_hostcall(vm, data, c) != 0)
                    return EV_ILLEGAL;
                if (vm->dbg) { /* a single step over the host call ends after its OUT */
                    int dbg = vm_gdb_after_call(vm, c, false);
                    if (dbg >= 0)
                        return (enum ev)dbg;
                }
                continue;
            }
            if (out4 && run->io.port == ASPEN_PORT_EXIT && data == ASPEN_EXIT_READY) {
                if (c->startup)
                    return EV_READY;
                snprintf(res->message, sizeof res->message,
                         "illegal host call: the guest signalled READY during a job");
                return EV_ILLEGAL;
            }
            if (out4 && run->io.port == ASPEN_PORT_EXIT && data == ASPEN_EXIT_DONE)
                return EV_DONE;
            snprintf(res->message, sizeof res->message,
                     "illegal host call: %s of %u byte(s) x%u to port 0x%x (data 0x%x); guests "
                     "talk to the host only with 4-byte OUTs to ports 0x%x and 0x%x",
                     run->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN", run->io.size,
                     run->io.count, run->io.port, data, ASPEN_PORT_CALL, ASPEN_PORT_EXIT);
            return EV_ILLEGAL;
        }
        case KVM_EXIT_DIRTY_RING_FULL:
            if (vm_ring_harvest(vm) != 0) {
                snprintf(res->message, sizeof res->message, "cannot harvest the dirty ring: %s",
                         strerror(errno));
                return EV_ERROR;
            }
            continue;
        case KVM_EXIT_SHUTDOWN:
            snprintf(res->message, sizeof res->message,
                     "the guest CPU shut down (triple fault): a fault happened while reporting a "
                     "fault");
            return EV_CRASH;
        case KVM_EXIT_MMIO:
            snprintf(res->message, sizeof res->message,
                     "the guest touched physical address 0x%llx, which has no memory",
                     (unsigned long long)vm->run->mmio.phys_addr);
            return EV_CRASH;
        case KVM_EXIT_HLT:
            snprintf(res->message, sizeof res->message, "the guest CPU halted");
            return EV_CRASH;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(res->message, sizeof res->message,
                     "KVM could not enter the guest (hardware reason 0x%llx)",
                     (unsigned long long)vm->run->fail_entry.hardware_entry_failure_reason);
            return EV_CRASH;
        case KVM_EXIT_INTERNAL_ERROR:
            snprintf(res->message, sizeof res->message, "KVM internal error (suberror %u)",
                     vm->run->internal.suberror);
            return EV_CRASH;
        default:
            snprintf(res->message, sizeof res->message, "unexpected VM exit %u",
                     vm->run->exit_reason);
            return EV_CRASH;
        }
    }
}

/* Runs the vCPU with deadline and interrupt plumbing around run_loop. */
static enum ev run_guarded(aspen_vm *vm, struct run_ctx *c)
{
    pthread_mutex_lock(&vm->kick_lock);
    vm->running = true;
    vm->thread = pthread_self();
    atomic_store(&vm->interrupt_req, 0);
    pthread_mutex_unlock(&vm->kick_lock);
    vm_kick_target(vm->run);
    enum ev ev;
    if (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_SEQ_CST)) {
        ev = EV_CANCEL;
    } else {
        vm_timer_ensure(now_ns(), c->deadline);
        ev = run_loop(vm, c);
    }
    vm_kick_target(NULL);
    pthread_mutex_lock(&vm->kick_lock);
    vm->running = false;
    pthread_mutex_unlock(&vm->kick_lock);
    __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return ev;
}

/* Drop what KVM still holds from the last run before the vCPU is reused: a pending IN completion
 * (a KVM_RUN with immediate_exit set completes it without running a guest instruction; done
 * before the restore, so whatever it writes to guest memory is restored away). Pending exceptions,
 * NMIs and interrupt shadow are cleared by every run's events (run page) or, where KVM cannot take
 * them there, here. */
static int vm_quiesce(aspen_vm *vm, bool events)
{
    /* A string IN may need more than one round: completing one batch can be a new I/O exit. */
    for (int round = 0; vm->pending_io; round++) {
        if (round == 16) {
            errno = EAGAIN;
            return -1;
        }
        vm->pending_io = false;
        vm->run->kvm_dirty_regs = 0;
        __atomic_store_n(&vm->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        int r = ioctl(vm->cpufd, KVM_RUN, 0);
        int e = errno;
        __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (r == 0 && vm->run->exit_reason == KVM_EXIT_IO) {
            vm->pending_io = true;
            continue;
        }
        if (r == 0 || e != EINTR) {
            errno = r == 0 ? EIO : e;
            return -1;
        }
    }
    if (events && !vm_kvm.sync_events) {
        struct kvm_vcpu_events ev;
        vm_clear_events(&ev);
        if (vm_ioctl(vm->cpufd, KVM_SET_VCPU_EVENTS, &ev) != 0)
            return -1;
    }
    return 0;
}

/* Registers (and special registers, and events) for the next KVM_RUN, through the run page when
 * KVM can take them there: no ioctl on a warm run. */
static int load_vcpu(aspen_vm *vm, const struct kvm_regs *regs, bool sregs)
{
    uint32_t dirty = 0;
    if (vm_kvm.sync_regs) {
        vm->run->s.regs.regs = *regs;
        dirty |= KVM_SYNC_X86_REGS;
    } else if (vm_ioctl(vm->cpufd, KVM_SET_REGS, (void *)regs) != 0) {
        return -1;
    }
    if (sregs && vm_kvm.sync_regs && vm_kvm.sync_sregs) {
        vm->run->s.regs.sregs = vm->sregs;
        dirty |= KVM_SYNC_X86_SREGS;
    } else if (sregs && vm_ioctl(vm->cpufd, KVM_SET_SREGS, &vm->sregs) != 0) {
        return -1;
    }
    if (vm_kvm.sync_regs && vm_kvm.sync_events) {
        vm_clear_events(&vm->run->s.regs.events);
        dirty |= KVM_SYNC_X86_EVENTS;
    }
    vm->run->kvm_dirty_regs = dirty;
    return 0;
}

/* Ask the CPU, at CPL 3 inside this VM, what guest code can use (the trampoline's probe in
 * vm/stub.S): each step runs one instruction and reports, or faults into the ring-0 stub, and the
 * probe then starts again at the step after it, with the whole vCPU state loaded again (so the
 * last start's, which ended at CPL 3 in the probe's own loop, is what the caller finds). Once per
 * process; the answer shapes every VM's trampoline. */
static int probe_cpl3(aspen_vm *vm, aspen_vm_error *err)
{
    int features = 0;
    uint32_t next = 0; /* the step the probe runs next */
    for (int starts = 0; starts <= TRAMP_PROBE_STEPS; starts++) {
        struct kvm_regs regs;
        vm_set_run_regs(&regs,
                        SYS_GVA + SYS_TRAMP_OFF + (uint64_t)(aspen_probe - aspen_tramp_start),
                        vm->stack_hi, next, 0, 0);
        if (load_vcpu(vm, &regs, true) != 0) {
            vm_set_error(err, ASPEN_VM_EKVM, "cannot set the vCPU's initial state: %s",
                         strerror(errno));
            return ASPEN_VM_EKVM;
        }
        for (;;) {
            int r;
            do {
                r = ioctl(vm->cpufd, KVM_RUN, 0);
                if (r < 0 || vm->run->exit_reason == KVM_EXIT_INTR)
                    __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
            } while ((r < 0 && errno == EINTR) ||
                     (r == 0 && vm->run->exit_reason == KVM_EXIT_INTR));
            struct kvm_run *run = vm->run;
            bool out = r == 0 && run->exit_reason == KVM_EXIT_IO &&
                       run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4;
            uint32_t data = 0;
            if (out)
                memcpy(&data, (uint8_t *)run + run->io.data_offset, 4);
            if (out && run->io.port == ASPEN_PORT_FAULT) {
                next++; /* that step's instruction is not usable at CPL 3 here */
                break;
            }
            uint32_t step = (data >> 8) & 0xffu;
            if (!out || run->io.port != ASPEN_PORT_EXIT ||
                (data & 0xffff0000u) != TRAMP_PROBE_MAGIC ||
                (step != TRAMP_PROBE_DONE && step != next)) {
                vm_set_error(err, ASPEN_VM_EKVM,
                             "the CPU probe in a new VM did not report (KVM_RUN %s, exit %u)",
                             r < 0 ? strerror(errno) : "ok", r == 0 ? run->exit_reason : 0);
                return ASPEN_VM_EKVM;
            }
            if (step == TRAMP_PROBE_DONE) {
                atomic_store(&vm_kvm.cpl3, features);
                return 0;
            }
            features |= (int)(data & 0xffu);
            next = step + 1;
        }
    }
    vm_set_error(err, ASPEN_VM_EKVM, "the CPU probe in a new VM faulted more often than it has "
                 "steps (%d)", TRAMP_PROBE_STEPS);
    return ASPEN_VM_EKVM;
}

int vm_startup(aspen_vm *vm, aspen_vm_error *err)
{
    int rc = vm_thread_prepare(err);
    if (rc)
        return rc;
    bool sregs = true;
    if (atomic_load(&vm_kvm.cpl3) < 0) {
        if ((rc = probe_cpl3(vm, err)) != 0)
            return rc;
        sregs = false; /* in place since the probe's last start */
    }
    vm_tramp_prepare(vm, atomic_load(&vm_kvm.cpl3));
    if (vm->cfg.gdb) {
        if ((rc = vm_gdb_attach(vm, err)) != 0)
            return rc;
        sregs = true; /* its probe of the debug registers ran the vCPU */
    }
    /* A fresh vCPU's FPU is in its reset state already; registers and special registers go in
     * through the run page when KVM can take them there (two ioctls fewer per cold start). */
    struct kvm_regs regs;
    vm_set_run_regs(&regs, vm->img->entry, vm->stack_hi, vm->block_gva, 0, 0);
    if (vm->img->linux_abi) {
        if (!(atomic_load(&vm_kvm.cpl3) & TRAMP_HAS_FSGSBASE)) {
            vm_set_error(err, ASPEN_VM_EINVAL, "%s is a Linux program, which needs a thread "
                         "pointer the host can reset per job (FSGSBASE at CPL 3), and this CPU "
                         "or KVM does not offer it", vm->img->name);
            return ASPEN_VM_EINVAL;
        }
        /* Linux's process entry: rsp at argc, every other register 0. Each exit reports the
         * registers (a system call's arguments) and the segments (its CPL) in the run page. */
        vm_set_run_regs(&regs, vm->img->entry, vm->lx_regs.rsp, 0, 0, 0);
        vm->run->kvm_valid_regs = KVM_SYNC_X86_REGS | (vm_kvm.sync_sregs ? KVM_SYNC_X86_SREGS : 0);
    }
    if (load_vcpu(vm, &regs, sregs) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot set the vCPU's initial state: %s",
                     strerror(errno));
        return ASPEN_VM_EKVM;
    }
    if (vm->dbg) {
        int e = vm_gdb_entry(vm); /* stopped at _start until gdb resumes it */
        if (e >= 0) {
            vm_set_error(err, e == EV_CANCEL ? ASPEN_VM_ESTARTUP : ASPEN_VM_EKVM,
                         e == EV_CANCEL ? "guest %s was killed by the debugger at its entry"
                                        : "guest %s: the debugger could not set up the vCPU",
                         vm->img->name);
            return err ? err->code : ASPEN_VM_ESTARTUP;
        }
    }
    aspen_vm_result res;
    memset(&res, 0, sizeof res);
    struct run_ctx c = {.deadline = now_ns() + (uint64_t)vm->cfg.timeout_ms * 1000000ull,
                        .res = &res, .startup = true, .on_log = vm->cfg.startup_log,
                        .log_user = vm->cfg.startup_log_user};
    enum ev ev = run_guarded(vm, &c);
    if (vm->img->linux_abi)
        vm_lx_end_run(vm, &c);
    switch (ev) {
    case EV_READY:
        if (vm->img->linux_abi && (rc = vm_lx_capture(vm, err)) != 0)
            return rc;
        break;
    case EV_FAULT:
        vm_describe_fault(vm, &res);
        /* fallthrough */
    default:
        if (ev == EV_TIMEOUT)
            snprintf(res.message, sizeof res.message, "it did not reach its ready point within "
                     "%u ms", vm->cfg.timeout_ms);
        else if (ev == EV_DONE && vm->img->linux_abi)
            snprintf(res.message, sizeof res.message, "it ended before its first system call "
                     "that depends on the job");
        else if (ev == EV_CANCEL && vm_gdb_killed(vm))
            snprintf(res.message, sizeof res.message, "killed by the debugger");
        else if (ev == EV_DONE) {
            /* e.g. a panic in the guest's init function: say what the guest said */
            finish_done(vm, &res);
            if (res.outcome == ASPEN_VM_SUCCESS)
                snprintf(res.message, sizeof res.message,
                         "it finished a job before signalling ready");
            aspen_vm_result_free(&res);
        }
        vm_set_error(err, ev == EV_ERROR ? ASPEN_VM_EKVM : ASPEN_VM_ESTARTUP,
                     "guest %s failed during start-up: %s", vm->img->name, res.message);
        return err ? err->code : ASPEN_VM_ESTARTUP;
    }
    if (vm->warm)
        return vm_take_snapshot(vm, err);
    return 0;
}

const char *aspen_vm_outcome_name(aspen_vm_outcome o)
{
    switch (o) {
    case ASPEN_VM_SUCCESS: return "success";
    case ASPEN_VM_JOB_ERROR: return "job_error";
    case ASPEN_VM_PANIC: return "panic";
    case ASPEN_VM_FAULT: return "fault";
    case ASPEN_VM_ILLEGAL_CALL: return "illegal_call";
    case ASPEN_VM_OUTPUT_TOO_LARGE: return "output_too_large";
    case ASPEN_VM_INPUT_TOO_LARGE: return "input_too_large";
    case ASPEN_VM_TIMEOUT: return "timeout";
    case ASPEN_VM_CANCELLED: return "cancelled";
    case ASPEN_VM_CRASHED: return "crashed";
    }
    return "unknown";
}

static void read_message(aspen_vm *vm, aspen_vm_result *res, const char *prefix, uint64_t ptr,
                         uint64_t len)
{
    char msg[MESSAGE_MAX + 1];
    bool cut = len > MESSAGE_MAX;
    uint64_t take = cut ? MESSAGE_MAX : len;
    if (vm_guest_copy_out(vm, ptr, take, msg) != 0) {
        res->outcome = ASPEN_VM_ILLEGAL_CALL;
        snprintf(res->message, sizeof res->message,
                 "illegal host call: the guest's error message at 0x%llx + %llu bytes is outside "
                 "guest memory",
                 (unsigned long long)ptr, (unsigned long long)len);
        return;
    }
    for (uint64_t i = 0; i < take; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f)
            msg[i] = '?';
    }
    msg[take] = '\0';
    /* The guest's message may be longer than the result's; keep its head and mark the cut. */
    size_t cap = sizeof res->message, n = strlen(prefix);
    memcpy(res->message, prefix, n);
    const char *body = take ? msg : "(no message)";
    size_t blen = strlen(body), room = cap - n - sizeof "…";
    if (blen > room) {
        blen = room;
        cut = true;
    }
    memcpy(res->message + n, body, blen);
    n += blen;
    if (cut) {
        memcpy(res->message + n, "…", sizeof "…" - 1);
        n += sizeof "…" - 1;
    }
    res->message[n] = '\0';
}

static void finish_done(aspen_vm *vm, aspen_vm_result *res)
{
    volatile struct aspen_abi_block *b = vm->blk;
    uint32_t status = b->status;
    uint64_t optr = b->output_ptr, olen = b->output_len;
    uint64_t mptr = b->message_ptr, mlen = b->message_len;
    size_t max = vm->cfg.max_output;
    switch (status) {
    case ASPEN_STATUS_OK:
        if (olen > max) {
            res->outcome = ASPEN_VM_OUTPUT_TOO_LARGE;
            snprintf(res->message, sizeof res->message,
                     "output too large: %llu bytes (max: %zu bytes)", (unsigned long long)olen,
                     max);
            return;
        }
        res->output = malloc(olen + 1);
        if (!res->output || vm_guest_copy_out(vm, optr, olen, res->output) != 0) {
            res->outcome = ASPEN_VM_ILLEGAL_CALL;
            if (res->output)
                snprintf(res->message, sizeof res->message,
                         "illegal host call: the job's output at 0x%llx + %llu bytes is outside "
                         "guest memory",
                         (unsigned long long)optr, (unsigned long long)olen);
            else
                snprintf(res->message, sizeof res->message,
                         "out of host memory for %llu bytes of output", (unsigned long long)olen);
            free(res->output);
            res->output = NULL;
            return;
        }
        res->output[olen] = '\0';
        res->output_len = olen;
        res->outcome = ASPEN_VM_SUCCESS;
        res->stats.bytes_out = olen;
        return;
    case ASPEN_STATUS_ERROR:
        res->outcome = ASPEN_VM_JOB_ERROR;
        read_message(vm, res, "", mptr, mlen);
        return;
    case ASPEN_STATUS_PANIC:
        res->outcome = ASPEN_VM_PANIC;
        read_message(vm, res, "guest panicked: ", mptr, mlen);
        return;
    default:
        res->outcome = ASPEN_VM_ILLEGAL_CALL;
        snprintf(res->message, sizeof res->message,
                 "illegal host call: the guest finished with unknown status %u", status);
    }
}

int aspen_vm_run(aspen_vm *vm, const aspen_vm_run_opts *opts, aspen_vm_result *res,
                 aspen_vm_error *err)
{
    static const aspen_vm_run_opts none;
    if (!opts)
        opts = &none;
    memset(res, 0, sizeof *res);
    if (vm->broken) {
        vm_set_error(err, ASPEN_VM_EINVAL, "this VM crashed earlier and cannot run again; "
                     "destroy it and create another");
        return ASPEN_VM_EINVAL;
    }
    if (vm->used && !vm->warm) {
        vm_set_error(err, ASPEN_VM_EINVAL, "this VM was created without a snapshot (warm = "
                     "false) and has run its one job");
        return ASPEN_VM_EINVAL;
    }
    int rc = vm_thread_prepare(err);
    if (rc)
        return rc;
    uint64_t t0 = now_ns();
    uint32_t timeout = opts->timeout_ms ? opts->timeout_ms : vm->cfg.timeout_ms;
    res->stats.bytes_in = opts->input_len;

    struct run_ctx c = {.deadline = t0 + (uint64_t)timeout * 1000000ull, .cancel = opts->cancel,
                        .res = res, .on_log = opts->on_log, .log_user = opts->log_user,
                        .core_max = opts->core_max};
    vm->tape = opts->tape;
    if (vm->tape)
        aspen_vm_tape_reset(vm->tape);
    if (vm->img->linux_abi)
        return run_linux(vm, opts, &c, err);

    /* Input at the top of the heap range, 16-byte aligned, leaving the job a page of heap. */
    uint64_t heap_bytes = vm->heap_end - vm->heap_start;
    uint64_t in_len = opts->input_len;
    if (in_len > heap_bytes - PAGE - 16) {
        res->outcome = ASPEN_VM_INPUT_TOO_LARGE;
        snprintf(res->message, sizeof res->message,
                 "input too large: %llu bytes do not fit in the guest's %llu bytes of heap "
                 "(guest memory %zu KiB); raise the memory limit",
                 (unsigned long long)in_len, (unsigned long long)heap_bytes,
                 vm->cfg.memory_bytes >> 10);
        vm_tape_run_end(vm);
        return 0;
    }
    uint64_t in_gva = (vm->heap_end - in_len) & ~15ull;
    if (in_len && vm_guest_copy_in(vm, in_gva, opts->input, in_len) != 0) {
        vm_set_error(err, ASPEN_VM_EINVAL, "internal error: input placement");
        return ASPEN_VM_EINVAL;
    }
    vm->blk->input_ptr = in_gva;
    vm->blk->input_len = in_len;
    vm->blk->status = 0;
    vm->blk->output_len = vm->blk->message_len = 0;
    uint64_t zero = 0; /* the return address execute() must never use */
    vm_guest_copy_in(vm, vm->stack_hi - 8, &zero, 8);

    /* Registers go in through the run page (KVM_CAP_SYNC_REGS: no ioctl), with vCPU events
     * cleared the same way; the trampoline resets the rest of the CPU state and jumps to execute
     * (rcx). sregs only change after a fault in ring 0. */
    struct kvm_regs regs;
    vm_set_run_regs(&regs, SYS_GVA + SYS_TRAMP_OFF, vm->stack_hi - 8, vm->block_gva, in_gva, in_len);
    regs.rcx = vm->img->execute;
    if (vm->dbg)
        vm_gdb_job_entry(vm, &regs);
    if (load_vcpu(vm, &regs, vm->need_sregs) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot reset the vCPU: %s", strerror(errno));
        vm->broken = true;
        return ASPEN_VM_EKVM;
    }
    vm->need_sregs = false;

    enum ev ev = run_guarded(vm, &c);
    return run_end(vm, &c, ev, t0, timeout, in_gva, in_len, err);
}

/* A job of a Linux program: the system call start-up stopped on is performed for this job, then
 * the guest resumes after it, through the trampoline (which resets the CPU state). */
static int run_linux(aspen_vm *vm, const aspen_vm_run_opts *opts, struct run_ctx *c,
                     aspen_vm_error *err)
{
    uint64_t t0 = now_ns();
    uint32_t timeout = opts->timeout_ms ? opts->timeout_ms : vm->cfg.timeout_ms;
    struct kvm_regs regs;
    enum ev ev;
    int lx = vm_lx_begin(vm, c, opts->input, opts->input_len, &regs);
    if (lx == LX_END) {
        ev = EV_DONE;
    } else if (lx != LX_CONTINUE) {
        ev = EV_ILLEGAL;
    } else {
        if (load_vcpu(vm, &regs, vm->need_sregs) != 0) {
            vm_set_error(err, ASPEN_VM_EKVM, "cannot reset the vCPU: %s", strerror(errno));
            vm->broken = true;
            return ASPEN_VM_EKVM;
        }
        vm->need_sregs = false;
        ev = run_guarded(vm, c);
    }
    vm_lx_end_run(vm, c);
    return run_end(vm, c, ev, t0, timeout, 0, 0, err);
}

/* How a run ended, for both kinds of guest: the result, then the VM quiesced and restored. */
static int run_end(aspen_vm *vm, struct run_ctx *c, enum ev ev, uint64_t t0, uint32_t timeout,
                   uint64_t in_gva, uint64_t in_len, aspen_vm_error *err)
{
    aspen_vm_result *res = c->res;
    vm_tape_run_end(vm);
    switch (ev) {
    case EV_DONE:
        if (vm->img->linux_abi)
            vm_lx_finish(vm, res, ev);
        else
            finish_done(vm, res);
        break;
    case EV_FAULT:
        res->outcome = ASPEN_VM_FAULT;
        vm_describe_fault(vm, res);
        vm->need_sregs = true;
        if (vm_gva_is_host(res->fault.rip)) {
            /* The host's own code faulted (trampoline or stub): the vCPU is not in the state the
             * host set up, whatever caused it, so this VM runs nothing more. */
            res->outcome = ASPEN_VM_CRASHED;
            vm->broken = true;
            size_t n = strlen(res->message);
            snprintf(res->message + n, sizeof res->message - n,
                     "; the VM faulted in the host's own code and is discarded (the job may run "
                     "again on a fresh VM)");
        }
        break;
    case EV_ILLEGAL:
        res->outcome = ASPEN_VM_ILLEGAL_CALL;
        if (strncmp(res->message, "illegal host call", 17) != 0 && !vm->img->linux_abi) {
            static const char pre[] = "illegal host call: ";
            size_t keep = sizeof res->message - sizeof pre;
            memmove(res->message + sizeof pre - 1, res->message, keep);
            memcpy(res->message, pre, sizeof pre - 1);
            res->message[sizeof res->message - 1] = '\0';
        }
        break;
    case EV_TIMEOUT:
        res->outcome = ASPEN_VM_TIMEOUT;
        snprintf(res->message, sizeof res->message,
                 "Timeout exceeded: the job ran longer than its %u ms limit and was stopped",
                 timeout);
        break;
    case EV_CANCEL:
        res->outcome = ASPEN_VM_CANCELLED;
        snprintf(res->message, sizeof res->message, "%s",
                 vm->dbg && vm_gdb_killed(vm) ? "killed by the debugger" : "cancelled while running");
        break;
    case EV_READY:
    case EV_CRASH:
    case EV_ERROR:
        res->outcome = ASPEN_VM_CRASHED;
        vm->broken = true;
        break;
    }
    if (c->core_max && (res->outcome == ASPEN_VM_FAULT || res->outcome == ASPEN_VM_PANIC ||
                           res->outcome == ASPEN_VM_TIMEOUT || res->outcome == ASPEN_VM_CRASHED))
        vm_core_capture(vm, res, c->core_max); /* before the restore takes the memory away */
    uint64_t t1 = now_ns();
    res->stats.wall_ns = t1 - t0;
    if (!vm->broken && vm_quiesce(vm, ev != EV_DONE) != 0) {
        /* The job's result stands; the VM, whose vCPU may still hold it, is not used again. */
        vm->broken = true;
        size_t n = strlen(res->message);
        snprintf(res->message + n, sizeof res->message - n,
                 "%sthe VM could not drop the vCPU's pending I/O (%s) and is discarded",
                 n ? "; " : "", strerror(errno));
    }
    vm->runs++;
    vm->used = true;
    if (vm->warm && !vm->broken) {
        if (vm_restore(vm, in_gva, in_len, &res->stats.pages_dirtied) != 0) {
            vm->broken = true;
            vm_set_error(err, ASPEN_VM_EKVM, "cannot restore the VM after the run: %s",
                         strerror(errno));
            return ASPEN_VM_EKVM;
        }
        vm->last_dirty = res->stats.pages_dirtied;
        res->stats.restore_ns = now_ns() - t1;
    }
    return 0;
}

void aspen_vm_result_free(aspen_vm_result *res)
{
    free(res->output);
    res->output = NULL;
    res->output_len = 0;
    free(res->core);
    res->core = NULL;
    res->core_len = 0;
}
