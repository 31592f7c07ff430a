/* vm/gdb_vm.c — the VM side of `aspen run --gdb`: a GDB remote-protocol server on a TCP socket for
 * one one-shot VM, driven from the VM's own fault path.
 *
 * No KVM guest-debug support is used (KVM_SET_GUEST_DEBUG is not assumed to work on this nested
 * kvm_pvm host): a software breakpoint is an int3 byte in guest memory, a single step is the trap
 * flag, and either way the CPU raises #BP or #DB at CPL 3, which the guest's IDT sends to the
 * ring-0 stub (vm/stub.S), which reports it on the fault port like any fault. run.c hands such a
 * report here (vm_gdb_trap) instead of ending the job: the vCPU is put back to the CPL-3 state the
 * exception interrupted (the stub's frame gives rip, rsp, rflags; the fault block the rax the stub
 * used), the stop is reported to gdb, and the session is served until gdb resumes, kills or
 * detaches. Hardware breakpoints are DR0-DR3 set with KVM_SET_DEBUGREGS (the guest's own debug
 * registers, not KVM's guest-debug interface), offered only where a probe shows they fire.
 *
 * Only guest memory is visible (the VM's regions: image, stack, call block, heap); the host's
 * pages (trampoline, stub, page tables) are refused like unmapped memory. Registers that would
 * take the guest out of CPL 3 (segment selectors, IOPL and the other system flags) are not
 * writable. The VM must be one-shot (warm = false): its code is a private copy, so an int3 written
 * into it reaches no other VM.
 */
#include "gdb.h"
#include "vm_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RFLAGS_TF (1ull << 8)
#define RFLAGS_RF (1ull << 16)
/* The flags gdb may change: arithmetic flags, DF, AC, ID. Never IF, IOPL, NT, RF, VM, VIF, VIP
 * (IOPL 3 would open every I/O port to CPL 3 on bare-metal KVM) nor TF (the stub's). */
#define RFLAGS_USER 0x240cd5ull /* CF PF AF ZF SF DF OF AC ID */

struct aspen_vm_gdb {
    int lfd, fd;
    char address[128];
    aspen_vm *vm;
    struct gdb_session s;
    uint8_t in[4096];
    size_t in_pos, in_len;
    bool stepping; /* the vCPU runs with TF set by the stub */
    bool detached, killed, gone;
    int hw; /* DR0-3 usable: 1 yes, 0 no, -1 not probed */
    uint64_t dr[GDB_MAX_HW];
    uint64_t dr7;
    bool hw_resume_rf; /* resuming from a hardware breakpoint: RF, or it fires again at once */
};

const char *aspen_vm_gdb_address(const aspen_vm_gdb *g) { return g->address; }

/* ---- The socket --------------------------------------------------------------------------------- */

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

int aspen_vm_gdb_listen(const char *spec, aspen_vm_gdb **out, bool *loopback,
                        aspen_vm_error *err)
{
    *out = NULL;
    char host[256] = "127.0.0.1", port[16];
    const char *colon = strrchr(spec, ':');
    const char *p = colon ? colon + 1 : spec;
    if (colon) {
        const char *h = spec;
        size_t hl = (size_t)(colon - spec);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:1234 */
            h++;
            hl -= 2;
        }
        if (hl >= sizeof host) {
            vm_set_error(err, ASPEN_VM_EINVAL, "--gdb: the host name is too long");
            return ASPEN_VM_EINVAL;
        }
        if (hl) {
            memcpy(host, h, hl);
            host[hl] = '\0';
        }
    }
    size_t pl = strlen(p);
    if (pl == 0 || pl >= sizeof port || strspn(p, "0123456789") != pl || atol(p) > 65535) {
        vm_set_error(err, ASPEN_VM_EINVAL, "--gdb wants HOST:PORT or PORT with a port number "
                     "from 0 to 65535 (0: any free port), not '%s'", spec);
        return ASPEN_VM_EINVAL;
    }
    memcpy(port, p, pl + 1);
    if (strcmp(host, "*") == 0) {
        vm_set_error(err, ASPEN_VM_EINVAL, "--gdb: '*' (every interface) is refused: the "
                     "debugger gets full control of the guest, so name the one address to listen "
                     "on (the default is 127.0.0.1)");
        return ASPEN_VM_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai = NULL;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr != 0 || !ai) {
        vm_set_error(err, ASPEN_VM_EINVAL, "--gdb: cannot resolve '%s': %s", host,
                     gai_strerror(gr));
        return ASPEN_VM_EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1) != 0) {
        int e = errno;
        vm_set_error(err, ASPEN_VM_EINVAL, "--gdb: cannot listen on %s port %s: %s", host, port,
                     strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return ASPEN_VM_EINVAL;
    }
    *loopback = is_loopback(ai->ai_addr);
    freeaddrinfo(ai);
    aspen_vm_gdb *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
        return ASPEN_VM_ENOMEM;
    }
    g->lfd = fd;
    g->fd = -1;
    g->hw = -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char nh[NI_MAXHOST] = "?", ns[NI_MAXSERV] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, nh, sizeof nh, ns, sizeof ns,
                    NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(g->address, sizeof g->address, strchr(nh, ':') ? "[%s]:%s" : "%s:%s", nh, ns);
    *out = g;
    return 0;
}

int aspen_vm_gdb_accept(aspen_vm_gdb *g, aspen_vm_error *err)
{
    int fd;
    do
        fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        vm_set_error(err, ASPEN_VM_EIO, "--gdb: accept failed: %s", strerror(errno));
        return ASPEN_VM_EIO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(g->lfd); /* one client per run */
    g->lfd = -1;
    g->fd = fd;
    return 0;
}

void aspen_vm_gdb_close(aspen_vm_gdb *g)
{
    if (!g)
        return;
    if (g->fd >= 0)
        close(g->fd);
    if (g->lfd >= 0)
        close(g->lfd);
    free(g);
}

/* Send what the session queued. A client that stopped reading is gone. */
static void flush_out(aspen_vm_gdb *g)
{
    size_t off = 0;
    while (!g->gone && off < g->s.out_len) {
        ssize_t n = send(g->fd, g->s.out + off, g->s.out_len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g->gone = true;
            break;
        }
        off += (size_t)n;
    }
    gdb_out_clear(&g->s);
}

/* Serve packets until the client resumes, kills or detaches (or goes away: a detach). */
static enum gdb_action serve(aspen_vm_gdb *g)
{
    for (;;) {
        flush_out(g);
        if (g->gone)
            return GDB_DETACH;
        if (g->in_pos == g->in_len) {
            ssize_t n = recv(g->fd, g->in, sizeof g->in, 0);
            if (n < 0 && errno == EINTR)
                continue; /* the deadline timer's signal: the guest is stopped, not running */
            if (n <= 0) {
                g->gone = true;
                return GDB_DETACH;
            }
            g->in_pos = 0;
            g->in_len = (size_t)n;
        }
        size_t used;
        enum gdb_feed_ev ev = gdb_feed(&g->s, g->in + g->in_pos, g->in_len - g->in_pos, &used);
        g->in_pos += used;
        if (ev != GDB_FEED_PACKET)
            continue; /* ^C while stopped: already stopped */
        enum gdb_action a = gdb_handle(&g->s);
        if (a != GDB_NONE) {
            flush_out(g);
            return a;
        }
    }
}

/* ---- The target: registers and memory of the stopped vCPU --------------------------------------- */

static void ftag_full(const struct kvm_fpu *f, uint32_t *tag)
{
    /* fxsave keeps one "not empty" bit per register; gdb wants the two-bit tags of FSTENV. */
    unsigned top = (f->fsw >> 11) & 7;
    uint32_t t = 0;
    for (unsigned phys = 0; phys < 8; phys++) {
        unsigned tv = 3; /* empty */
        if (f->ftwx & (1u << phys)) {
            const uint8_t *r = f->fpr[(phys - top) & 7];
            uint16_t exp = (uint16_t)(r[8] | r[9] << 8) & 0x7fff;
            uint64_t mant;
            memcpy(&mant, r, 8);
            if (exp == 0x7fff)
                tv = 2;
            else if (exp == 0)
                tv = mant == 0 ? 1 : 2;
            else
                tv = (mant >> 63) ? 0 : 2;
        }
        t |= tv << (2 * phys);
    }
    *tag = t;
}

static int vm_get_regs(void *t, struct gdb_regs *o)
{
    aspen_vm *vm = t;
    struct kvm_regs r;
    struct kvm_sregs sr;
    struct kvm_fpu f;
    if (vm_ioctl(vm->cpufd, KVM_GET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0 ||
        vm_ioctl(vm->cpufd, KVM_GET_FPU, &f) != 0)
        return -1;
    memset(o, 0, sizeof *o);
    uint64_t g[16] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
                      r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
    memcpy(o->gpr, g, sizeof g);
    o->rip = r.rip;
    o->eflags = (uint32_t)(r.rflags & ~RFLAGS_TF);
    const struct kvm_segment *seg[6] = {&sr.cs, &sr.ss, &sr.ds, &sr.es, &sr.fs, &sr.gs};
    for (int i = 0; i < 6; i++)
        o->seg[i] = seg[i]->selector;
    o->fs_base = sr.fs.base;
    o->gs_base = sr.gs.base;
    for (int i = 0; i < 8; i++)
        memcpy(o->st[i], f.fpr[i], 10);
    o->fpc[0] = f.fcw;
    o->fpc[1] = f.fsw;
    ftag_full(&f, &o->fpc[2]);
    o->fpc[3] = (uint32_t)(f.last_ip >> 32);
    o->fpc[4] = (uint32_t)f.last_ip;
    o->fpc[5] = (uint32_t)(f.last_dp >> 32);
    o->fpc[6] = (uint32_t)f.last_dp;
    o->fpc[7] = f.last_opcode;
    memcpy(o->xmm, f.xmm, sizeof o->xmm);
    o->mxcsr = f.mxcsr;
    return 0;
}

static bool canonical(uint64_t a) { return (uint64_t)((int64_t)(a << 16) >> 16) == a; }

static int vm_set_regs(void *t, const struct gdb_regs *o)
{
    aspen_vm *vm = t;
    struct kvm_regs r;
    struct kvm_sregs sr;
    struct kvm_fpu f;
    if (vm_ioctl(vm->cpufd, KVM_GET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0 ||
        vm_ioctl(vm->cpufd, KVM_GET_FPU, &f) != 0)
        return -1;
    /* The guest stays at CPL 3 with the host's segments: selectors are read-only here. */
    const struct kvm_segment *seg[6] = {&sr.cs, &sr.ss, &sr.ds, &sr.es, &sr.fs, &sr.gs};
    for (int i = 0; i < 6; i++)
        if (o->seg[i] != seg[i]->selector)
            return -1;
    if (!canonical(o->fs_base) || !canonical(o->gs_base) || !canonical(o->rip))
        return -1;
    if ((o->mxcsr & 0xffff0000u) != 0) /* reserved MXCSR bits would make KVM_SET_FPU's image #GP */
        return -1;
    __u64 *g[16] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rbp, &r.rsp,
                    &r.r8,  &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15};
    for (int i = 0; i < 16; i++)
        *g[i] = o->gpr[i];
    r.rip = o->rip;
    r.rflags = (r.rflags & ~RFLAGS_USER) | (o->eflags & RFLAGS_USER) | X86_RFLAGS_FIXED;
    sr.fs.base = o->fs_base;
    sr.gs.base = o->gs_base;
    for (int i = 0; i < 8; i++)
        memcpy(f.fpr[i], o->st[i], 10);
    f.fcw = (uint16_t)o->fpc[0];
    f.fsw = (uint16_t)o->fpc[1];
    uint8_t ftwx = 0;
    for (unsigned i = 0; i < 8; i++)
        if (((o->fpc[2] >> (2 * i)) & 3) != 3)
            ftwx |= (uint8_t)(1u << i);
    f.ftwx = ftwx;
    f.last_ip = (uint64_t)o->fpc[3] << 32 | o->fpc[4];
    f.last_dp = (uint64_t)o->fpc[5] << 32 | o->fpc[6];
    f.last_opcode = (uint16_t)o->fpc[7];
    memcpy(f.xmm, o->xmm, sizeof f.xmm);
    f.mxcsr = o->mxcsr;
    if (vm_ioctl(vm->cpufd, KVM_SET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_SET_SREGS, &sr) != 0 ||
        vm_ioctl(vm->cpufd, KVM_SET_FPU, &f) != 0)
        return -1;
    return 0;
}

static int vm_read_mem(void *t, uint64_t addr, uint64_t len, uint8_t *dst)
{
    return vm_guest_copy_out(t, addr, len, dst);
}

/* Guest memory of any permission (a breakpoint goes into code): the regions only, every byte
 * checked before one is written. */
static int vm_write_mem(void *t, uint64_t addr, const uint8_t *src, uint64_t len)
{
    aspen_vm *vm = t;
    if (vm->code_shared || vm_guest_copy_out(vm, addr, len, NULL) != 0)
        return -1;
    while (len > 0) {
        const struct region *r = vm_region_of(vm, addr);
        uint64_t off = addr - r->gva, n = r->len - off;
        if (n > len)
            n = len;
        memcpy(r->host + off, src, n);
        src += n;
        addr += n;
        len -= n;
    }
    return 0;
}

/* DR7 bits for slot i: local enable, then R/W (00 execute, 01 write, 11 read/write) and LEN. */
static int vm_hw_point(void *t, bool insert, int type, uint64_t addr, uint64_t len)
{
    aspen_vm *vm = t;
    aspen_vm_gdb *g = vm->dbg;
    uint64_t rw, ln;
    switch (type) {
    case 1: rw = 0; break;
    case 2: rw = 1; break;
    case 3: /* read-only watchpoints do not exist on x86: read/write is the closest */
    case 4: rw = 3; break;
    default: return -1;
    }
    if (type == 1) {
        ln = 0;
    } else {
        switch (len) {
        case 1: ln = 0; break;
        case 2: ln = 1; break;
        case 4: ln = 3; break;
        case 8: ln = 2; break;
        default: return -1;
        }
        if (addr & (len - 1))
            return -1;
    }
    if (addr >= SYS_GVA || !canonical(addr))
        return -1; /* the host's pages are not watched for the client */
    int slot = -1;
    for (int i = 0; i < GDB_MAX_HW; i++) {
        bool on = (g->dr7 >> (2 * i)) & 1;
        uint64_t cfg = (g->dr7 >> (16 + 4 * i)) & 15;
        if (on && g->dr[i] == addr && cfg == (rw | ln << 2)) {
            if (!insert)
                g->dr7 &= ~((1ull << (2 * i)) | (15ull << (16 + 4 * i)));
            return 0;
        }
        if (!on && slot < 0)
            slot = i;
    }
    if (!insert)
        return 0;
    if (slot < 0)
        return -1;
    g->dr[slot] = addr;
    g->dr7 |= (1ull << (2 * slot)) | ((rw | ln << 2) << (16 + 4 * slot));
    return 0;
}

static const struct gdb_target_ops vm_ops_hw = {vm_read_mem, vm_write_mem, vm_get_regs,
                                                 vm_set_regs, vm_hw_point};
static const struct gdb_target_ops vm_ops_nohw = {vm_read_mem, vm_write_mem, vm_get_regs,
                                                   vm_set_regs, NULL};

/* The debug registers go to the vCPU before every resume (they are the guest's DR0-7). */
static int load_debugregs(aspen_vm *vm)
{
    aspen_vm_gdb *g = vm->dbg;
    if (g->hw != 1)
        return 0;
    struct kvm_debugregs d;
    memset(&d, 0, sizeof d);
    memcpy(d.db, g->dr, sizeof d.db);
    d.dr6 = 0xffff0ff0ull;
    d.dr7 = g->dr7 | 0x400;
    return vm_ioctl(vm->cpufd, KVM_SET_DEBUGREGS, &d);
}

/* ---- Stops -------------------------------------------------------------------------------------- */

/* Registers and events the run loop left in the run page for the next KVM_RUN (sync regs) go to
 * the vCPU now, so that what gdb reads and writes with ioctls is what the guest will run with. */
static int flush_sync(aspen_vm *vm)
{
    struct kvm_run *run = vm->run;
    uint64_t d = run->kvm_dirty_regs;
    if ((d & KVM_SYNC_X86_REGS) && vm_ioctl(vm->cpufd, KVM_SET_REGS, &run->s.regs.regs) != 0)
        return -1;
    if ((d & KVM_SYNC_X86_SREGS) && vm_ioctl(vm->cpufd, KVM_SET_SREGS, &run->s.regs.sregs) != 0)
        return -1;
    if ((d & KVM_SYNC_X86_EVENTS) &&
        vm_ioctl(vm->cpufd, KVM_SET_VCPU_EVENTS, &run->s.regs.events) != 0)
        return -1;
    run->kvm_dirty_regs = 0;
    return 0;
}

static int set_tf(aspen_vm *vm, bool tf, bool rf)
{
    struct kvm_regs r;
    if (vm_ioctl(vm->cpufd, KVM_GET_REGS, &r) != 0)
        return -1;
    r.rflags = (r.rflags & ~(RFLAGS_TF | RFLAGS_RF)) | (tf ? RFLAGS_TF : 0) |
               (rf ? RFLAGS_RF : 0);
    return vm_ioctl(vm->cpufd, KVM_SET_REGS, &r);
}

/* After gdb said how to go on: set up the vCPU for it. Returns -1 to resume, or the run's end. */
static int resume(aspen_vm *vm, enum gdb_action a, int fault_sig)
{
    aspen_vm_gdb *g = vm->dbg;
    switch (a) {
    case GDB_KILL:
        g->killed = true;
        gdb_remove_all(&g->s);
        return EV_CANCEL;
    case GDB_DETACH:
        gdb_remove_all(&g->s);
        g->detached = true;
        g->dr7 = 0;
        if (load_debugregs(vm) != 0 || set_tf(vm, false, false) != 0)
            return EV_ERROR;
        g->stepping = false;
        return -1;
    case GDB_CONTINUE:
    case GDB_STEP:
        /* Passing a fault's own signal on (gdb's default for SIGSEGV and friends) ends the job
         * with that fault, as the signal would end a process; without it the guest resumes at
         * the registers as they now are (gdb's `signal 0`, or after `set $pc = ...`). */
        if (fault_sig && g->s.signal == fault_sig)
            return EV_FAULT;
        g->stepping = a == GDB_STEP;
        if (load_debugregs(vm) != 0 || set_tf(vm, g->stepping, g->hw_resume_rf) != 0)
            return EV_ERROR;
        g->hw_resume_rf = false;
        if (g->in_pos < g->in_len) /* a ^C already read with the resume: look at it at once */
            __atomic_store_n(&vm->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        return -1;
    case GDB_NONE:
        break;
    }
    return EV_ERROR;
}

/* Do DR0-3 fire here? Asked of this very vCPU: DR0 on the first instruction of the trampoline's
 * CPU probe (vm/stub.S), then run it. A #DB reported from that address says yes; the probe's own
 * report (an OUT) says the debug registers are ignored. Either way nothing of the guest has run,
 * and the caller loads the vCPU's whole state afterwards. */
static int probe_hw(aspen_vm *vm)
{
    uint64_t at = SYS_GVA + SYS_TRAMP_OFF + (uint64_t)(aspen_probe - aspen_tramp_start);
    struct kvm_debugregs d;
    memset(&d, 0, sizeof d);
    d.db[0] = at;
    d.dr6 = 0xffff0ff0ull;
    d.dr7 = 0x401; /* L0, execute, one byte */
    struct kvm_regs r;
    vm_set_run_regs(&r, at, vm->stack_hi, 0, 0, 0);
    vm->run->kvm_dirty_regs = 0;
    if (vm_ioctl(vm->cpufd, KVM_SET_DEBUGREGS, &d) != 0 ||
        vm_ioctl(vm->cpufd, KVM_SET_REGS, &r) != 0 ||
        vm_ioctl(vm->cpufd, KVM_SET_SREGS, &vm->sregs) != 0)
        return 0;
    int rc;
    do {
        rc = ioctl(vm->cpufd, KVM_RUN, 0);
        if (rc < 0 || vm->run->exit_reason == KVM_EXIT_INTR)
            __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    } while ((rc < 0 && errno == EINTR) || (rc == 0 && vm->run->exit_reason == KVM_EXIT_INTR));
    const uint64_t *fb = (const uint64_t *)(vm->sys + SYS_FAULT_OFF);
    bool works = rc == 0 && vm->run->exit_reason == KVM_EXIT_IO &&
                 vm->run->io.port == ASPEN_PORT_FAULT && fb[FB_VECTOR / 8] == 1 &&
                 fb[FB_RIP / 8] == at;
    d.db[0] = 0;
    d.dr7 = 0x400;
    if (vm_ioctl(vm->cpufd, KVM_SET_DEBUGREGS, &d) != 0)
        return 0;
    return works ? 1 : 0;
}

int vm_gdb_attach(aspen_vm *vm, aspen_vm_error *err)
{
    aspen_vm_gdb *g = vm->cfg.gdb;
    if (vm->warm || vm->code_shared) {
        vm_set_error(err, ASPEN_VM_EINVAL, "a debugged VM must be one-shot (warm = false): a "
                     "breakpoint is written into the guest's code, which warm VMs share");
        return ASPEN_VM_EINVAL;
    }
    if (g->fd < 0 || g->vm) {
        vm_set_error(err, ASPEN_VM_EINVAL, "the gdb server has no client yet, or debugs another "
                     "VM already");
        return ASPEN_VM_EINVAL;
    }
    g->vm = vm;
    vm->dbg = g;
    /* Bytes from gdb while the guest runs (its ^C) raise the kick signal on this, the vCPU's,
     * thread: KVM_RUN returns and the run loop asks vm_gdb_poll. No thread, no polling. */
    struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = (pid_t)syscall(SYS_gettid)};
    if (fcntl(g->fd, F_SETOWN_EX, &owner) != 0 || fcntl(g->fd, F_SETSIG, vm_kick_signal()) != 0 ||
        fcntl(g->fd, F_SETFL, fcntl(g->fd, F_GETFL) | O_ASYNC) != 0) {
        vm_set_error(err, ASPEN_VM_EIO, "cannot watch the gdb connection: %s", strerror(errno));
        return ASPEN_VM_EIO;
    }
    g->hw = probe_hw(vm);
    gdb_session_init(&g->s, g->hw == 1 ? &vm_ops_hw : &vm_ops_nohw, vm);
    return 0;
}

int vm_gdb_entry(aspen_vm *vm)
{
    aspen_vm_gdb *g = vm->dbg;
    if (flush_sync(vm) != 0)
        return EV_ERROR;
    snprintf(g->s.stop, sizeof g->s.stop, "S05");
    return resume(vm, serve(g), 0);
}

void vm_gdb_job_entry(aspen_vm *vm, struct kvm_regs *regs)
{
    /* A step pending from start-up (the READY exit ended it) goes on into the job: the
     * trampoline is stepped through quietly and the step stops at the job's first instruction. */
    if (vm->dbg && !vm->dbg->detached && vm->dbg->stepping)
        regs->rflags |= RFLAGS_TF;
}

int vm_gdb_trap(aspen_vm *vm, struct run_ctx *c)
{
    aspen_vm_gdb *g = vm->dbg;
    if (!g || g->detached)
        return EV_FAULT;
    uint64_t t0 = now_ns();
    const uint64_t *fb = (const uint64_t *)(vm->sys + SYS_FAULT_OFF);
    uint32_t vector = (uint32_t)fb[FB_VECTOR / 8];
    if ((fb[FB_CS / 8] & 3) != 3)
        return EV_FAULT; /* not from guest code: the host's stub itself */
    /* Back to the CPL-3 state the exception interrupted. */
    struct kvm_regs r;
    struct kvm_sregs sr;
    if (vm_ioctl(vm->cpufd, KVM_GET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0)
        return EV_ERROR;
    r.rax = fb[FB_RAX / 8];
    r.rcx = fb[FB_RCX / 8];
    r.rip = fb[FB_RIP / 8];
    r.rsp = fb[FB_RSP / 8];
    r.rflags = fb[FB_RFLAGS / 8];
    sr.cs = vm->sregs.cs;
    sr.ss = vm->sregs.ss;
    bool stepped = vector == 1 && g->stepping;
    const char *reason = NULL;
    if (vector == 1 && g->hw == 1) {
        struct kvm_debugregs d;
        if (vm_ioctl(vm->cpufd, KVM_GET_DEBUGREGS, &d) == 0 && (d.dr6 & 15) &&
            (g->dr7 & 0xff)) {
            reason = "hwbreak";
            stepped = false;
            g->hw_resume_rf = true;
        }
    }
    if (vector == 3 && r.rip > 0 && gdb_is_bp(&g->s, r.rip - 1)) {
        r.rip--; /* at the breakpoint, as gdb expects when the stub reports swbreak */
        reason = "swbreak";
    }
    if (g->stepping)
        r.rflags &= ~RFLAGS_TF;
    if (stepped && vm_gva_is_host(r.rip)) {
        /* A step into the host's trampoline (on the way to the job's code): keep stepping, the
         * client never sees the host's page. */
        r.rflags |= RFLAGS_TF;
        if (vm_ioctl(vm->cpufd, KVM_SET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_SET_SREGS, &sr) != 0)
            return EV_ERROR;
        c->deadline += now_ns() - t0;
        return -1;
    }
    if (vm_ioctl(vm->cpufd, KVM_SET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_SET_SREGS, &sr) != 0)
        return EV_ERROR;
    vm->need_sregs = true; /* for the next job, as after any fault */
    g->stepping = false;
    int sig = gdb_signal_of_vector(vector);
    gdb_stop_reply(&g->s, sig, reason);
    int fault_sig = vector == 1 || vector == 3 ? 0 : sig;
    int rc = resume(vm, serve(g), fault_sig);
    c->deadline += now_ns() - t0; /* time spent stopped is not the job's */
    return rc;
}

bool vm_gdb_killed(const aspen_vm *vm) { return vm->dbg && vm->dbg->killed; }

int vm_gdb_after_call(aspen_vm *vm, struct run_ctx *c, bool lx)
{
    aspen_vm_gdb *g = vm->dbg;
    if (!g || g->detached || !g->stepping)
        return -1;
    uint64_t t0 = now_ns();
    if (lx) {
        /* linux.c left the registers after the call (rip at the return address) in the run
         * page; the OUT its trampoline exited with is not completed once rip moved. */
        if (flush_sync(vm) != 0)
            return EV_ERROR;
    } else {
        /* KVM completes the OUT (moves rip past it) at the next KVM_RUN; one with immediate_exit
         * does only that, without running the next instruction, which the step must not run. */
        vm->run->kvm_dirty_regs = 0;
        __atomic_store_n(&vm->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        int r = ioctl(vm->cpufd, KVM_RUN, 0);
        int e = errno;
        __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (r == 0 || e != EINTR)
            return EV_ERROR;
    }
    /* A #DB KVM may have queued for the completed instruction would be a second stop. */
    struct kvm_vcpu_events ev;
    vm_clear_events(&ev);
    if (vm_ioctl(vm->cpufd, KVM_SET_VCPU_EVENTS, &ev) != 0 || set_tf(vm, false, false) != 0)
        return EV_ERROR;
    g->stepping = false;
    gdb_stop_reply(&g->s, 5, NULL);
    int rc = resume(vm, serve(g), 0);
    c->deadline += now_ns() - t0;
    return rc;
}

int vm_gdb_poll(aspen_vm *vm, struct run_ctx *c)
{
    aspen_vm_gdb *g = vm->dbg;
    if (!g || g->detached || g->gone)
        return -1;
    bool interrupt = false;
    for (;;) {
        if (g->in_pos == g->in_len) {
            ssize_t n = recv(g->fd, g->in, sizeof g->in, MSG_DONTWAIT);
            if (n == 0) { /* gone while the guest runs: it runs on without a debugger */
                g->gone = true;
                gdb_remove_all(&g->s);
                g->detached = true;
                return set_tf(vm, false, false) == 0 ? -1 : EV_ERROR;
            }
            if (n < 0)
                break; /* EAGAIN: nothing (a deadline kick or another signal) */
            g->in_pos = 0;
            g->in_len = (size_t)n;
        }
        size_t used;
        enum gdb_feed_ev ev = gdb_feed(&g->s, g->in + g->in_pos, g->in_len - g->in_pos, &used);
        g->in_pos += used;
        flush_out(g); /* acks */
        if (ev == GDB_FEED_INTERRUPT) {
            interrupt = true;
            break;
        }
        /* a packet while the guest runs: a client in all-stop mode sends none; dropped */
    }
    if (!interrupt)
        return -1;
    if (flush_sync(vm) != 0) /* registers a KVM_RUN that ended at once has not taken yet */
        return EV_ERROR;
    struct kvm_sregs sr;
    if (vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0)
        return EV_ERROR;
    if ((sr.cs.selector & 3) != 3)
        return -1; /* in the host's fault stub: its report is a stop of its own, coming next */
    uint64_t t0 = now_ns();
    g->stepping = false;
    if (set_tf(vm, false, false) != 0)
        return EV_ERROR;
    gdb_stop_reply(&g->s, 2, NULL); /* SIGINT */
    int rc = resume(vm, serve(g), 0);
    c->deadline += now_ns() - t0;
    return rc;
}

void aspen_vm_gdb_finish(aspen_vm_gdb *g, const aspen_vm_result *res)
{
    if (!g || g->fd < 0 || g->killed || g->detached || g->gone)
        return;
    if (g->vm)
        gdb_remove_all(&g->s);
    if (!res) {
        gdb_exit_reply(&g->s, true, 9); /* it never ran: as if killed */
    } else {
        switch (res->outcome) {
        case ASPEN_VM_SUCCESS: gdb_exit_reply(&g->s, false, 0); break;
        case ASPEN_VM_JOB_ERROR:
        case ASPEN_VM_OUTPUT_TOO_LARGE:
        case ASPEN_VM_INPUT_TOO_LARGE: gdb_exit_reply(&g->s, false, 1); break;
        case ASPEN_VM_PANIC: gdb_exit_reply(&g->s, true, 6); break; /* SIGABRT */
        case ASPEN_VM_FAULT:
            gdb_exit_reply(&g->s, true, gdb_signal_of_vector(res->fault.vector));
            break;
        case ASPEN_VM_TIMEOUT: gdb_exit_reply(&g->s, true, 24); break; /* SIGXCPU */
        case ASPEN_VM_ILLEGAL_CALL: gdb_exit_reply(&g->s, true, 31); break; /* SIGSYS */
        case ASPEN_VM_CANCELLED: gdb_exit_reply(&g->s, true, 9); break;
        case ASPEN_VM_CRASHED: gdb_exit_reply(&g->s, true, 11); break;
        }
    }
    flush_out(g);
    /* The job is over. gdb may still send a packet or two (a detach, a kill, a question): answer
     * them with the end until it closes the connection, for a moment at most. */
    for (int rounds = 0; rounds < 16 && !g->gone; rounds++) {
        if (g->in_pos == g->in_len) {
            struct pollfd p = {.fd = g->fd, .events = POLLIN};
            int pr;
            do
                pr = poll(&p, 1, 1000);
            while (pr < 0 && errno == EINTR); /* the socket's own O_ASYNC signal */
            if (pr <= 0)
                break;
            ssize_t n = recv(g->fd, g->in, sizeof g->in, 0);
            if (n <= 0)
                break;
            g->in_pos = 0;
            g->in_len = (size_t)n;
        }
        size_t used;
        enum gdb_feed_ev ev = gdb_feed(&g->s, g->in + g->in_pos, g->in_len - g->in_pos, &used);
        g->in_pos += used;
        if (ev == GDB_FEED_PACKET && g->s.pkt_len) {
            char cmd = g->s.pkt[0];
            if (cmd == 'k' || (cmd == 'v' && g->s.pkt_len >= 5 && !memcmp(g->s.pkt, "vKill", 5)))
                break;
            if (cmd == 'D')
                gdb_handle(&g->s); /* OK */
            else
                gdb_exit_reply(&g->s, g->s.stop[0] == 'X', (int)strtol(g->s.stop + 1, NULL, 16));
        }
        flush_out(g);
    }
}
