/* vm/linux.c — static Linux programs as guests: the system calls a `musl-gcc -static` program
 * makes, performed by the host.
 *
 * A binary without the Aspen ABI note is taken for a static Linux program. It starts at its ELF
 * entry with the stack Linux gives a new process (argc, argv, an empty environment, the auxiliary
 * vector), and its `syscall` instructions land in the host's trampoline page (MSR_LSTAR), whose one
 * OUT hands each call to vm_lx_syscall below. On this project's nested kvm_pvm the instruction
 * arrives there at CPL 3 (measured; docs/ABI.md section 12), so a system call costs one VM exit.
 *
 * A job is one run of the program's main: stdin is the job's input, stdout its output, each stderr
 * line a log line, the exit status success (0) or failure. Start-up (libc's initialisation: TLS,
 * stdio, whatever main does before it first touches the job) runs once per VM: the first system
 * call that depends on the job — a read of stdin, a write to stdout or stderr, the clock, exit — is
 * where the host stops start-up and takes the snapshot, with the registers. Every job resumes
 * there and begins by performing that call for itself.
 *
 * Every pointer, length and count a program passes is checked against guest memory with
 * overflow-safe arithmetic; a bad one is EFAULT/EINVAL, as Linux would answer, never a host crash.
 * A system call this layer does not implement ends the job with its name and number.
 */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "syscall_names.h" /* generated from <asm/unistd_64.h>: lx_syscall_names[] */

#define LX_MAX_ARGS 1024u
#define LX_MAX_ARG_BYTES (32u * 1024u)
#define LX_IOV_MAX 1024u
#define LX_MAX_RW 0x7ffff000ull /* what Linux moves in one read/write at most */
#define LX_PID 1

/* Linux x86-64 errno values and constants (the guest's ABI, not the host's headers). */
enum {
    L_EPERM = 1, L_ENOENT = 2, L_ESRCH = 3, L_EBADF = 9, L_ENOMEM = 12, L_EACCES = 13,
    L_EFAULT = 14, L_EINVAL = 22, L_ENOTTY = 25, L_ESPIPE = 29, L_ENODEV = 19, L_ENOSYS = 38,
};
#define L_MAP_SHARED 0x01
#define L_MAP_PRIVATE 0x02
#define L_MAP_FIXED 0x10
#define L_MAP_ANONYMOUS 0x20
#define L_PROT_EXEC 0x4

const char *vm_lx_sys_name(uint64_t nr)
{
    if (nr < sizeof lx_syscall_names / sizeof lx_syscall_names[0] && lx_syscall_names[nr])
        return lx_syscall_names[nr];
    return "unknown";
}

/* ---- guest memory ---------------------------------------------------------------------------- */

/* Is [gva, gva+len) mapped guest memory (writable too, if asked)? */
static bool mem_ok(const aspen_vm *vm, uint64_t gva, uint64_t len, bool write)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end))
        return false;
    if (len == 0)
        return true;
    for (uint64_t g = gva; g < end;) {
        const struct region *r = vm_region_of(vm, g);
        if (!r || (write && !(r->prot & SEG_W)))
            return false;
        g = r->gva + r->len;
    }
    return true;
}

/* Host writes into guest memory, recorded so the restore puts them back. */
static int put(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len)
{
    if (!mem_ok(vm, gva, len, true) || vm_guest_copy_in(vm, gva, src, len) != 0)
        return -1;
    return vm_note_host_write(vm, gva, len);
}

static int get(const aspen_vm *vm, uint64_t gva, void *dst, uint64_t len)
{
    int rc = vm_guest_copy_out(vm, gva, len, dst);
    if (rc == 0 && vm->tape) /* what a call passed (a write's bytes) is part of its digest */
        vm_tape_read(vm, dst, len);
    return rc;
}

/* Zero [gva, gva+len) of the heap (anonymous memory must read as zero), touching only pages that
 * are not zero already: a large mapping of untouched memory costs a read, not a write. */
static int zero_range(aspen_vm *vm, uint64_t gva, uint64_t len)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end))
        return -1;
    for (uint64_t g = gva; g < end;) {
        const struct region *r = vm_region_of(vm, g);
        if (!r || !(r->prot & SEG_W))
            return -1;
        uint64_t n = PAGE - (g & (PAGE - 1));
        if (n > end - g)
            n = end - g;
        static const uint8_t zeros[4096];
        uint8_t *h = r->host + (g - r->gva);
        if (memcmp(h, zeros, n) != 0) {
            memset(h, 0, n);
            if (vm_note_host_write(vm, g, n) != 0)
                return -1;
        }
        g += n;
    }
    return 0;
}

/* ---- the program's memory: brk below, anonymous mappings from the top of the heap down ------ */

static uint64_t maps_floor(const aspen_vm *vm)
{
    return vm->lx->nmaps ? vm->lx->maps[0].start : vm->heap_end;
}

/* Room for n mappings in s's table; -1 past LX_MAX_MAPS or out of host memory. */
static int maps_reserve(struct lx_state *s, int n)
{
    if (n <= s->cap)
        return 0;
    if (n > LX_MAX_MAPS)
        return -1;
    int cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap = cap * 2 > LX_MAX_MAPS ? LX_MAX_MAPS : cap * 2;
    struct lx_map *m = realloc(s->maps, (size_t)cap * sizeof *m);
    if (!m)
        return -1;
    s->maps = m;
    s->cap = cap;
    return 0;
}

/* dst = src, mappings included. */
static int state_copy(struct lx_state *dst, const struct lx_state *src)
{
    if (maps_reserve(dst, src->nmaps) != 0)
        return -1;
    struct lx_map *m = dst->maps;
    int cap = dst->cap;
    *dst = *src;
    dst->maps = m;
    dst->cap = cap;
    if (src->nmaps)
        memcpy(dst->maps, src->maps, (size_t)src->nmaps * sizeof *m);
    return 0;
}

/* Remove [a, b) from the mappings (splitting one if needed). -1 when the table is full. */
static int maps_remove(struct lx_state *s, uint64_t a, uint64_t b)
{
    for (int i = 0; i < s->nmaps; i++) {
        struct lx_map *m = &s->maps[i];
        if (m->end <= a || m->start >= b)
            continue;
        if (m->start < a && m->end > b) { /* a hole in the middle: split */
            if (maps_reserve(s, s->nmaps + 1) != 0)
                return -1;
            m = &s->maps[i];
            memmove(&s->maps[i + 2], &s->maps[i + 1], (size_t)(s->nmaps - i - 1) * sizeof *m);
            s->maps[i + 1] = (struct lx_map){b, m->end};
            m->end = a;
            s->nmaps++;
            return 0;
        }
        if (m->start < a) {
            m->end = a;
        } else if (m->end > b) {
            m->start = b;
        } else { /* entirely inside: drop it */
            memmove(m, m + 1, (size_t)(s->nmaps - i - 1) * sizeof *m);
            s->nmaps--;
            i--;
        }
    }
    return 0;
}

/* Add [a, b), which overlaps no mapping. Touching neighbours merge (anonymous memory is all
 * alike, and munmap splits again where asked), so the table holds ranges, not calls. */
static int maps_insert(struct lx_state *s, uint64_t a, uint64_t b)
{
    int i = 0;
    while (i < s->nmaps && s->maps[i].start < a)
        i++;
    bool left = i > 0 && s->maps[i - 1].end == a, right = i < s->nmaps && s->maps[i].start == b;
    if (left && right) {
        s->maps[i - 1].end = s->maps[i].end;
        memmove(&s->maps[i], &s->maps[i + 1], (size_t)(s->nmaps - i - 1) * sizeof s->maps[0]);
        s->nmaps--;
        return 0;
    }
    if (left) {
        s->maps[i - 1].end = b;
        return 0;
    }
    if (right) {
        s->maps[i].start = a;
        return 0;
    }
    if (maps_reserve(s, s->nmaps + 1) != 0)
        return -1;
    memmove(&s->maps[i + 1], &s->maps[i], (size_t)(s->nmaps - i) * sizeof s->maps[0]);
    s->maps[i] = (struct lx_map){a, b};
    s->nmaps++;
    return 0;
}

static int64_t sys_brk(aspen_vm *vm, uint64_t want)
{
    struct lx_state *s = vm->lx;
    if (want < vm->heap_start || want > maps_floor(vm))
        return (int64_t)s->brk; /* Linux's answer to a brk it cannot give: the current one */
    if (want > s->brk && zero_range(vm, s->brk, want - s->brk) != 0)
        return (int64_t)s->brk;
    s->brk = want;
    return (int64_t)want;
}

static int64_t sys_mmap(aspen_vm *vm, uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags,
                        uint64_t fd)
{
    struct lx_state *s = vm->lx;
    if (len == 0)
        return -L_EINVAL;
    if (!(flags & L_MAP_ANONYMOUS))
        return (int64_t)fd <= 2 && (int64_t)fd >= 0 ? -L_ENODEV : -L_EBADF; /* there are no files */
    if ((flags & (L_MAP_SHARED | L_MAP_PRIVATE)) == 0)
        return -L_EINVAL;
    if (prot & L_PROT_EXEC)
        return -L_EACCES; /* heap memory is never executable */
    uint64_t heap = vm->heap_end - vm->heap_start;
    if (len > heap)
        return -L_ENOMEM;
    uint64_t size = PAGE_UP(len);
    uint64_t low = PAGE_UP(s->brk);
    if (flags & L_MAP_FIXED) {
        /* Only inside the heap: below the break (musl's malloc puts a guard page there), or a
         * range above it that replaces whatever mappings it overlaps. */
        if ((addr & (PAGE - 1)) || addr < vm->heap_start || addr > vm->heap_end - size)
            return -L_ENOMEM;
        if (addr + size <= low)
            return zero_range(vm, addr, size) == 0 ? (int64_t)addr : -L_ENOMEM;
        if (addr < low)
            return -L_ENOMEM;
        if (maps_remove(s, addr, addr + size) != 0 || maps_insert(s, addr, addr + size) != 0 ||
            zero_range(vm, addr, size) != 0)
            return -L_ENOMEM;
        return (int64_t)addr;
    }
    /* The highest gap that fits, from the top of the heap down: between the mappings, and
     * between the lowest one and the program break. */
    for (int i = s->nmaps; i >= 0; i--) {
        uint64_t top = i == s->nmaps ? vm->heap_end : s->maps[i].start;
        uint64_t lo = i > 0 ? s->maps[i - 1].end : low;
        if (lo < low)
            lo = low;
        if (top > lo && top - lo >= size) {
            uint64_t a = top - size;
            if (zero_range(vm, a, size) != 0 || maps_insert(s, a, a + size) != 0)
                return -L_ENOMEM;
            return (int64_t)a;
        }
        if (top <= low)
            break;
    }
    return -L_ENOMEM;
}

static int64_t sys_munmap(aspen_vm *vm, uint64_t addr, uint64_t len)
{
    uint64_t end;
    if ((addr & (PAGE - 1)) || len == 0 || __builtin_add_overflow(addr, PAGE_UP(len), &end) ||
        PAGE_UP(len) < len)
        return -L_EINVAL;
    if (addr < vm->heap_start || end > vm->heap_end)
        return -L_EINVAL; /* only anonymous mappings can be unmapped */
    return maps_remove(vm->lx, addr, end) == 0 ? 0 : -L_ENOMEM;
}

static int64_t sys_mprotect(aspen_vm *vm, uint64_t addr, uint64_t len, uint64_t prot)
{
    if (addr & (PAGE - 1))
        return -L_EINVAL;
    uint64_t size = PAGE_UP(len);
    if (size < len || !mem_ok(vm, addr, size, false))
        return -L_ENOMEM;
    if (prot & L_PROT_EXEC)
        return -L_EACCES;
    return 0; /* page permissions stay as the host set them (see docs/ABI.md section 12) */
}

static int64_t sys_madvise(aspen_vm *vm, uint64_t addr, uint64_t len, uint64_t advice)
{
    if (addr & (PAGE - 1))
        return -L_EINVAL;
    uint64_t size = PAGE_UP(len);
    if (size < len || !mem_ok(vm, addr, size, false))
        return -L_ENOMEM;
    if (advice == 4 /* MADV_DONTNEED: anonymous memory reads as zero afterwards */) {
        if (addr < vm->heap_start || addr + size > vm->heap_end)
            return -L_EINVAL;
        if (zero_range(vm, addr, size) != 0)
            return -L_ENOMEM;
    }
    return 0;
}

/* ---- the standard streams -------------------------------------------------------------------- */

static void emit_line(aspen_vm *vm, struct run_ctx *c, const char *p, size_t n)
{
    struct lx_run *r = vm->lxr;
    host_emit_log(c->on_log, c->log_user, p, n, false, &c->res->stats.log_lines);
    size_t k = n < sizeof r->last_err - 1 ? n : sizeof r->last_err - 1;
    memcpy(r->last_err, p, k);
    r->last_err[k] = '\0';
}

/* stderr: lines to the log, a partial line kept until its newline (or until it is too long). */
static void stderr_bytes(aspen_vm *vm, struct run_ctx *c, const uint8_t *p, size_t n)
{
    struct lx_run *r = vm->lxr;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            emit_line(vm, c, r->err, r->err_len);
            r->err_len = 0;
            continue;
        }
        if (r->err_len == sizeof r->err) {
            emit_line(vm, c, r->err, r->err_len);
            r->err_len = 0;
        }
        r->err[r->err_len++] = (char)p[i];
    }
}

static void stderr_flush(aspen_vm *vm, struct run_ctx *c)
{
    if (vm->lxr->err_len) {
        emit_line(vm, c, vm->lxr->err, vm->lxr->err_len);
        vm->lxr->err_len = 0;
    }
}

/* stdout: the job's output, up to the VM's max_output. 0, or 1 when the job must end. */
static int stdout_bytes(aspen_vm *vm, const uint8_t *p, size_t n)
{
    struct lx_run *r = vm->lxr;
    if (n > vm->cfg.max_output - r->out_len) {
        r->end = LX_TOO_LARGE;
        return 1;
    }
    if (r->out_len + n > r->out_cap) {
        uint64_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + n)
            cap *= 2;
        uint8_t *o = realloc(r->out, cap);
        if (!o) {
            r->end = LX_NOMEM;
            return 1;
        }
        r->out = o;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
    return 0;
}

static bool fd_open(const aspen_vm *vm, uint64_t fd)
{
    return fd <= 2 && !(vm->lx->closed & (1u << fd));
}

struct iov {
    uint64_t base, len;
};

/* Read and check an iovec array: EINVAL for a bad count or a total that overflows, EFAULT for an
 * array or buffer outside guest memory (writable ones for reads). */
static int64_t load_iov(aspen_vm *vm, uint64_t ptr, uint64_t cnt, bool write, struct iov *v,
                        uint64_t *total)
{
    if (cnt > LX_IOV_MAX)
        return -L_EINVAL;
    if (cnt && get(vm, ptr, v, cnt * sizeof *v) != 0)
        return -L_EFAULT;
    uint64_t t = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        if (v[i].len > (uint64_t)INT64_MAX || __builtin_add_overflow(t, v[i].len, &t) ||
            t > (uint64_t)INT64_MAX)
            return -L_EINVAL;
        if (!mem_ok(vm, v[i].base, v[i].len, write))
            return -L_EFAULT;
    }
    *total = t;
    return 0;
}

/* write/writev to fd 1 or 2. The bytes go through a bounded host buffer. */
static int64_t do_write(aspen_vm *vm, struct run_ctx *c, uint64_t fd, const struct iov *v,
                        uint64_t cnt, int *end)
{
    if (!fd_open(vm, fd) || fd == 0)
        return -L_EBADF;
    uint64_t done = 0;
    uint8_t buf[16384];
    for (uint64_t i = 0; i < cnt && done < LX_MAX_RW; i++) {
        uint64_t len = v[i].len;
        if (len > LX_MAX_RW - done)
            len = LX_MAX_RW - done;
        for (uint64_t off = 0; off < len;) {
            uint64_t n = len - off < sizeof buf ? len - off : sizeof buf;
            if (get(vm, v[i].base + off, buf, n) != 0)
                return done ? (int64_t)done : -L_EFAULT;
            if (fd == 1) {
                if (stdout_bytes(vm, buf, n)) {
                    *end = 1;
                    return (int64_t)done;
                }
            } else {
                stderr_bytes(vm, c, buf, n);
            }
            off += n;
            done += n;
        }
    }
    return (int64_t)done;
}

static int64_t do_read(aspen_vm *vm, uint64_t fd, const struct iov *v, uint64_t cnt)
{
    if (!fd_open(vm, fd) || fd != 0)
        return -L_EBADF;
    struct lx_run *r = vm->lxr;
    uint64_t done = 0;
    for (uint64_t i = 0; i < cnt && r->in_pos < r->in_len && done < LX_MAX_RW; i++) {
        uint64_t n = v[i].len, left = r->in_len - r->in_pos;
        if (n > left)
            n = left;
        if (n > LX_MAX_RW - done)
            n = LX_MAX_RW - done;
        if (put(vm, v[i].base, r->in + r->in_pos, n) != 0)
            return done ? (int64_t)done : -L_EFAULT;
        r->in_pos += n;
        done += n;
    }
    return (int64_t)done;
}

/* ---- time, identity -------------------------------------------------------------------------- */

static int64_t put_timespec(aspen_vm *vm, uint64_t ptr, const struct timespec *ts)
{
    int64_t v[2] = {ts->tv_sec, ts->tv_nsec};
    return put(vm, ptr, v, sizeof v) == 0 ? 0 : -L_EFAULT;
}

static int64_t sys_clock_gettime(aspen_vm *vm, uint64_t clk, uint64_t ptr)
{
    static const clockid_t map[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                    CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,
                                    CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE,
                                    CLOCK_BOOTTIME};
    if (clk >= sizeof map / sizeof map[0])
        return -L_EINVAL;
    struct timespec ts;
    vm_tape_clock(vm, map[clk], &ts); /* the clock, recorded or replayed */
    return put_timespec(vm, ptr, &ts);
}

static int64_t sys_uname(aspen_vm *vm, uint64_t ptr)
{
    char u[6][65];
    memset(u, 0, sizeof u);
    strcpy(u[0], "Linux");
    strcpy(u[1], "aspen");
    strcpy(u[2], "6.1.0-aspen");
    strcpy(u[3], "#1 Aspen micro-VM");
    strcpy(u[4], "x86_64");
    strcpy(u[5], "(none)");
    return put(vm, ptr, u, sizeof u) == 0 ? 0 : -L_EFAULT;
}

/* struct stat of x86-64 Linux for fds 0-2: a pipe. */
static int64_t put_stat_fifo(aspen_vm *vm, uint64_t fd, uint64_t ptr)
{
    if (!fd_open(vm, fd))
        return -L_EBADF;
    uint8_t st[144];
    memset(st, 0, sizeof st);
    uint64_t nlink = 1;
    uint32_t mode = 0010000u | 0600u; /* S_IFIFO */
    int64_t blksize = 4096;
    memcpy(st + 16, &nlink, 8);
    memcpy(st + 24, &mode, 4);
    memcpy(st + 56, &blksize, 8);
    return put(vm, ptr, st, sizeof st) == 0 ? 0 : -L_EFAULT;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* Calls whose result depends on the job (its input, output, clock, end): start-up stops at the
 * first of them, so every job performs it for itself. */
static bool job_visible(uint64_t nr)
{
    switch (nr) {
    case 0: case 19: /* read, readv */
    case 1: case 20: /* write, writev */
    case 17: case 18: case 295: case 296: /* pread64, pwrite64, preadv, pwritev */
    case 228: case 96: case 201: /* clock_gettime, gettimeofday, time */
    case 318: /* getrandom */
    case 60: case 231: /* exit, exit_group */
    case 62: case 200: case 234: /* kill, tkill, tgkill */
        return true;
    default:
        return false;
    }
}

static int unsupported(aspen_vm *vm, struct run_ctx *c, uint64_t nr)
{
    (void)vm;
    snprintf(c->res->message, sizeof c->res->message,
             "unsupported system call %llu (%s): Aspen runs static Linux programs with the calls "
             "listed in docs/ABI.md section 12 (stdin, stdout, stderr, memory, clocks, exit)",
             (unsigned long long)nr, vm_lx_sys_name(nr));
    return LX_ILLEGAL;
}

static const char *sig_name(uint64_t s)
{
    static const char *n[] = {"0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT",
                              "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2",
                              "SIGPIPE", "SIGALRM", "SIGTERM"};
    return s < sizeof n / sizeof n[0] ? n[s] : "a signal";
}

static int dispatch_call(aspen_vm *vm, struct run_ctx *c, struct kvm_regs *g);

/* Perform system call g->rax with g's arguments; the result goes to g->rax. With a tape each call
 * is recorded or checked against the record (tape.c). */
static int dispatch(aspen_vm *vm, struct run_ctx *c, struct kvm_regs *g)
{
    if (!vm->tape)
        return dispatch_call(vm, c, g);
    uint64_t args[7] = {g->rax, g->rdi, g->rsi, g->rdx, g->r10, g->r8, g->r9};
    vm_tape_begin(vm, VM_TAPE_LX_CODE | (uint32_t)(g->rax & 0xfffff), vm_lx_sys_name(g->rax),
                  args, 7, true);
    int rc = dispatch_call(vm, c, g);
    vm_tape_end(vm);
    return rc;
}

static int dispatch_call(aspen_vm *vm, struct run_ctx *c, struct kvm_regs *g)
{
    uint64_t nr = g->rax, a0 = g->rdi, a1 = g->rsi, a2 = g->rdx, a3 = g->r10, a4 = g->r8,
             a5 = g->r9;
    int64_t ret = 0;
    int end = 0;
    struct iov one, *v = NULL;
    static __thread struct iov vbuf[LX_IOV_MAX];
    switch (nr) {
    case 0: /* read */
    case 1: /* write */
        one = (struct iov){a1, a2};
        if ((int64_t)a2 < 0)
            ret = -L_EINVAL;
        else if (a1 + a2 < a1)
            ret = -L_EFAULT;
        else
            ret = nr == 0 ? do_read(vm, a0, &one, 1) : do_write(vm, c, a0, &one, 1, &end);
        break;
    case 19: /* readv */
    case 20: { /* writev */
        uint64_t total;
        v = vbuf;
        if ((int64_t)a2 < 0) {
            ret = -L_EINVAL;
            break;
        }
        ret = load_iov(vm, a1, a2, nr == 19, v, &total);
        if (ret == 0)
            ret = nr == 19 ? do_read(vm, a0, v, a2) : do_write(vm, c, a0, v, a2, &end);
        break;
    }
    case 17: case 18: case 295: case 296: case 8: /* pread64, pwrite64, preadv, pwritev, lseek */
        ret = fd_open(vm, a0) ? -L_ESPIPE : -L_EBADF;
        break;
    case 3: /* close */
        if (fd_open(vm, a0))
            vm->lx->closed |= 1u << a0;
        else
            ret = -L_EBADF;
        break;
    case 16: /* ioctl: the streams are not terminals (TIOCGWINSZ, TCGETS, ...) */
        ret = fd_open(vm, a0) ? -L_ENOTTY : -L_EBADF;
        break;
    case 72: /* fcntl */
        if (!fd_open(vm, a0))
            ret = -L_EBADF;
        else if (a1 == 1 /* F_GETFD */ || a1 == 2 /* F_SETFD */ || a1 == 4 /* F_SETFL */)
            ret = 0;
        else if (a1 == 3 /* F_GETFL */)
            ret = a0 == 0 ? 0 /* O_RDONLY */ : 1 /* O_WRONLY */;
        else
            ret = -L_EINVAL;
        break;
    case 5: /* fstat */
        ret = put_stat_fifo(vm, a0, a1);
        break;
    case 262: { /* newfstatat: fstat through an empty path only */
        uint8_t ch = 1;
        if (get(vm, a1, &ch, 1) != 0)
            ret = -L_EFAULT;
        else if (ch == 0 && (a3 & 0x1000 /* AT_EMPTY_PATH */))
            ret = put_stat_fifo(vm, a0, a2);
        else
            ret = -L_ENOENT;
        break;
    }
    case 2: case 257: case 4: case 6: case 21: case 269: case 89: case 267: case 332:
        /* open, openat, stat, lstat, access, faccessat, readlink, readlinkat, statx: no files */
        ret = -L_ENOENT;
        break;
    case 12: /* brk */
        ret = sys_brk(vm, a0);
        break;
    case 9: /* mmap */
        ret = sys_mmap(vm, a0, a1, a2, a3, a4);
        break;
    case 11: /* munmap */
        ret = sys_munmap(vm, a0, a1);
        break;
    case 10: /* mprotect */
        ret = sys_mprotect(vm, a0, a1, a2);
        break;
    case 28: /* madvise */
        ret = sys_madvise(vm, a0, a1, a2);
        break;
    case 25: /* mremap: never possible here; callers (musl's realloc) fall back to copying */
        ret = -L_ENOMEM;
        break;
    case 228: /* clock_gettime */
        ret = sys_clock_gettime(vm, a0, a1);
        break;
    case 229: { /* clock_getres */
        struct timespec ts = {0, 1};
        ret = a0 > 7 ? -L_EINVAL : a1 ? put_timespec(vm, a1, &ts) : 0;
        break;
    }
    case 96: { /* gettimeofday */
        struct timespec ts;
        vm_tape_clock(vm, CLOCK_REALTIME, &ts);
        int64_t tv[2] = {ts.tv_sec, ts.tv_nsec / 1000};
        int32_t tz[2] = {0, 0};
        if ((a0 && put(vm, a0, tv, sizeof tv) != 0) || (a1 && put(vm, a1, tz, sizeof tz) != 0))
            ret = -L_EFAULT;
        break;
    }
    case 201: { /* time */
        struct timespec ts;
        vm_tape_clock(vm, CLOCK_REALTIME, &ts);
        int64_t t = (int64_t)ts.tv_sec;
        ret = a0 && put(vm, a0, &t, 8) != 0 ? -L_EFAULT : t;
        break;
    }
    case 318: { /* getrandom */
        uint8_t buf[256];
        uint64_t n = a1 > 33554431u ? 33554431u : a1;
        for (uint64_t off = 0; off < n && ret >= 0;) {
            size_t k = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
            bool replayed = false, got = getrandom(buf, k, 0) == (ssize_t)k;
            if (got)
                vm_tape_bytes(vm, buf, k, &replayed); /* recorded, or the recorded bytes */
            if (!got || put(vm, a0 + off, buf, k) != 0)
                ret = off ? (int64_t)off : -L_EFAULT;
            off += k;
            if (ret >= 0)
                ret = (int64_t)off;
        }
        break;
    }
    case 60: case 231: /* exit, exit_group */
        vm->lxr->end = LX_EXITED;
        vm->lxr->status = (int)(a0 & 0xff);
        end = 1;
        break;
    case 62: case 200: case 234: { /* kill, tkill, tgkill: to itself only */
        uint64_t sig = nr == 234 ? a2 : a1;
        bool self = nr == 62 ? (a0 == LX_PID || a0 == 0) : nr == 200 ? a0 == LX_PID
                                                                     : a0 == LX_PID && a1 == LX_PID;
        if (!self)
            ret = -L_ESRCH;
        else if (sig > 64)
            ret = -L_EINVAL;
        else if (sig != 0 && sig != 17 && sig != 18 && sig != 23 && sig != 28) {
            /* no handler runs in a guest: a signal a program sends itself ends the job, as its
             * default action would (abort(), raise(SIGTERM), ...); SIGCHLD, SIGCONT, SIGURG and
             * SIGWINCH are ignored by default */
            vm->lxr->end = LX_SIGNALLED;
            vm->lxr->status = (int)sig;
            end = 1;
        }
        break;
    }
    case 13: /* rt_sigaction: accepted, never delivered */
        if (a3 != 8 || a0 == 0 || a0 > 64 || ((a0 == 9 || a0 == 19) && a1))
            ret = -L_EINVAL;
        else if (a1 && !mem_ok(vm, a1, 32, false))
            ret = -L_EFAULT;
        else if (a2) {
            uint8_t z[32] = {0};
            ret = put(vm, a2, z, sizeof z) == 0 ? 0 : -L_EFAULT;
        }
        break;
    case 14: /* rt_sigprocmask */
        if (a3 != 8 || (a1 && a0 > 2))
            ret = -L_EINVAL;
        else if (a1 && !mem_ok(vm, a1, 8, false))
            ret = -L_EFAULT;
        else if (a2) {
            uint64_t z = 0;
            ret = put(vm, a2, &z, 8) == 0 ? 0 : -L_EFAULT;
        }
        break;
    case 131: /* sigaltstack */
        if (a1) {
            uint8_t ss[24] = {0};
            uint32_t disabled = 2; /* SS_DISABLE */
            memcpy(ss + 8, &disabled, 4);
            ret = put(vm, a1, ss, sizeof ss) == 0 ? 0 : -L_EFAULT;
        }
        break;
    case 218: /* set_tid_address */
        ret = LX_PID;
        break;
    case 273: /* set_robust_list */
        ret = a1 == 24 ? 0 : -L_EINVAL;
        break;
    case 158: /* arch_prctl */
        if (a0 == 0x1002 || a0 == 0x1001) { /* ARCH_SET_FS, ARCH_SET_GS */
            if (a1 >= (1ull << 47))
                ret = -L_EPERM;
            else if (vm_set_msr(vm, a0 == 0x1002 ? MSR_FS_BASE : MSR_GS_BASE, a1) != 0) {
                snprintf(c->res->message, sizeof c->res->message,
                         "cannot set the guest's %s base: %s", a0 == 0x1002 ? "FS" : "GS",
                         strerror(errno));
                return LX_ILLEGAL;
            } else if (a0 == 0x1002)
                vm->lx->fs_base = a1;
            else
                vm->lx->gs_base = a1;
        } else if (a0 == 0x1003 || a0 == 0x1004) { /* ARCH_GET_FS, ARCH_GET_GS */
            uint64_t b = a0 == 0x1003 ? vm->lx->fs_base : vm->lx->gs_base;
            ret = put(vm, a1, &b, 8) == 0 ? 0 : -L_EFAULT;
        } else {
            ret = -L_EINVAL;
        }
        break;
    case 39: case 186: /* getpid, gettid */
        ret = LX_PID;
        break;
    case 110: /* getppid */
        ret = 0;
        break;
    case 102: case 104: case 107: case 108: /* getuid, getgid, geteuid, getegid */
        ret = 0;
        break;
    case 63: /* uname */
        ret = sys_uname(vm, a0);
        break;
    case 24: /* sched_yield */
        ret = 0;
        break;
    default:
        (void)a5;
        return unsupported(vm, c, nr);
    }
    g->rax = (uint64_t)ret;
    return end ? LX_END : LX_CONTINUE;
}

bool vm_lx_is_syscall_exit(const aspen_vm *vm)
{
    uint64_t rip = vm->run->s.regs.regs.rip;
    /* KVM reports the OUT's own address (bare metal) or the next one (nested kvm_pvm). */
    return vm->img->linux_abi && (rip == vm->lx_entry_rip || rip == vm->lx_entry_rip + 2);
}

/* What the system-call entry's fast paths need (stub.S): which standard streams are open, and
 * whether stdin is at its end. Written after every call that could change either. */
static void fast_paths(aspen_vm *vm)
{
    uint64_t *res = (uint64_t *)(vm->sys + SYS_TRAMP_OFF + TRAMP_RES);
    if (!vm->lx_cpl3_seen)
        return;
    res[RES_FDS / 8] = ~(uint64_t)vm->lx->closed & 7;
    res[RES_EOF / 8] = fd_open(vm, 0) && vm->lxr->in_pos >= vm->lxr->in_len;
}

int vm_lx_syscall(aspen_vm *vm, struct run_ctx *c)
{
    struct kvm_regs *g = &vm->run->s.regs.regs;
    if (vm_kvm.sync_sregs && (vm->run->s.regs.sregs.cs.selector & 3) != 3) {
        snprintf(c->res->message, sizeof c->res->message,
                 "a system call arrived at CPL %u, not 3: this KVM delivers `syscall` to ring 0, "
                 "which Aspen's Linux-program support does not handle",
                 vm->run->s.regs.sregs.cs.selector & 3);
        vm->broken = true; /* its vCPU is not at CPL 3 any more: it runs nothing again */
        return LX_ILLEGAL;
    }
    vm->lx_cpl3_seen = vm_kvm.sync_sregs; /* checked just above, so every call arrives so */
    if (vm_gva_is_host(g->rcx)) {
        snprintf(c->res->message, sizeof c->res->message,
                 "a system call (%llu) from the host's own trampoline page (return address "
                 "0x%llx): guest code may only make system calls from its own code",
                 (unsigned long long)g->rax, (unsigned long long)g->rcx);
        return LX_ILLEGAL;
    }
    c->res->stats.host_calls++;
    if (c->startup && job_visible(g->rax)) {
        vm->lx_regs = *g;
        return LX_READY;
    }
    int rc = dispatch(vm, c, g);
    if (rc == LX_ILLEGAL)
        return rc;
    if (!c->startup) /* start-up must reach the host with its first read of stdin */
        fast_paths(vm);
    g->rip = g->rcx;
    g->rflags = (g->r11 & 0x240cd5ull) | X86_RFLAGS_FIXED; /* status flags, DF, AC, ID */
    vm->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    return rc;
}

/* ---- set-up, snapshot, jobs ------------------------------------------------------------------ */

/* Linux's initial process stack at the top of the guest stack: argc, argv, an empty environment
 * and the auxiliary vector musl reads (program headers for TLS, page size, AT_RANDOM, ids). */
/* The host writes the initial stack before start-up: recorded like any host write, so a page of
 * it the guest never touches before the snapshot is still part of the snapshot (a job that
 * overwrites its argv strings must not leave zeros to the next one). */
static void stack_put(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len)
{
    vm_guest_copy_in(vm, gva, src, len);
    vm_note_host_write(vm, gva, len);
}

static int build_stack(aspen_vm *vm, uint64_t *rsp, aspen_vm_error *err)
{
    const char *const *args = vm->cfg.argv;
    size_t argc = 1, bytes = strlen(vm->img->name) + 1;
    for (size_t i = 0; args && args[i]; i++) {
        if (argc == LX_MAX_ARGS) {
            vm_set_error(err, ASPEN_VM_EINVAL, "too many arguments for %s (max %u)",
                         vm->img->name, LX_MAX_ARGS - 1);
            return ASPEN_VM_EINVAL;
        }
        bytes += strlen(args[i]) + 1;
        argc++;
    }
    if (bytes > LX_MAX_ARG_BYTES || bytes + 512 + argc * 8 > vm->cfg.stack_bytes / 2) {
        vm_set_error(err, ASPEN_VM_EINVAL, "the arguments of %s take %zu bytes (max %u, and half "
                     "the stack)", vm->img->name, bytes, LX_MAX_ARG_BYTES);
        return ASPEN_VM_EINVAL;
    }
    uint64_t sp = vm->stack_hi;
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0x5a, sizeof rnd);
    sp -= 16;
    uint64_t at_random = sp;
    stack_put(vm, sp, rnd, 16);
    sp -= 8;
    uint64_t at_platform = sp;
    stack_put(vm, sp, "x86_64", 7);
    uint64_t *argp = calloc(argc, sizeof *argp);
    if (!argp) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
        return ASPEN_VM_ENOMEM;
    }
    for (size_t i = 0; i < argc; i++) {
        const char *a = i == 0 ? vm->img->name : args[i - 1];
        size_t n = strlen(a) + 1;
        sp -= n;
        stack_put(vm, sp, a, n);
        argp[i] = sp;
    }
    uint64_t aux[][2] = {
        {3, vm->img->phdr}, {4, 56}, {5, vm->img->phnum}, {6, PAGE}, {7, 0}, {8, 0},
        {9, vm->img->entry}, {11, 0}, {12, 0}, {13, 0}, {14, 0}, {15, at_platform}, {16, 0},
        {17, 100}, {23, 0}, {25, at_random}, {31, argp[0]}, {0, 0},
    };
    size_t words = 1 + argc + 1 + 1 + sizeof aux / 8;
    sp = (sp - words * 8) & ~15ull;
    *rsp = sp;
    uint64_t w = argc;
    stack_put(vm, sp, &w, 8);
    sp += 8;
    stack_put(vm, sp, argp, argc * 8);
    sp += argc * 8;
    w = 0;
    stack_put(vm, sp, &w, 8); /* argv's NULL */
    sp += 8;
    stack_put(vm, sp, &w, 8); /* the environment: empty */
    sp += 8;
    stack_put(vm, sp, aux, sizeof aux);
    free(argp);
    return 0;
}

int vm_lx_init(aspen_vm *vm, aspen_vm_error *err)
{
    vm->lx = calloc(1, sizeof *vm->lx);
    vm->lx_snap = calloc(1, sizeof *vm->lx_snap);
    vm->lxr = calloc(1, sizeof *vm->lxr);
    if (!vm->lx || !vm->lx_snap || !vm->lxr) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
        return ASPEN_VM_ENOMEM;
    }
    vm->lx->brk = vm->heap_start;
    uint64_t rsp;
    int rc = build_stack(vm, &rsp, err);
    if (rc)
        return rc;
    vm->lx_regs.rsp = rsp;
    return 0;
}

void vm_lx_free(aspen_vm *vm)
{
    if (vm->lxr)
        free(vm->lxr->out);
    free(vm->lxr);
    if (vm->lx)
        free(vm->lx->maps);
    if (vm->lx_snap)
        free(vm->lx_snap->maps);
    free(vm->lx);
    free(vm->lx_snap);
}

int vm_lx_capture(aspen_vm *vm, aspen_vm_error *err)
{
    /* The thread pointer and the FPU state as start-up left them (one ioctl each, once). */
    struct kvm_sregs sr;
    if (vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_GET_SREGS failed: %s", strerror(errno));
        return ASPEN_VM_EKVM;
    }
    vm->lx->fs_base = sr.fs.base;
    vm->lx->gs_base = sr.gs.base;
    struct kvm_xsave *xs = calloc(1, sizeof *xs);
    if (xs && (atomic_load(&vm_kvm.cpl3) & TRAMP_HAS_XSAVE) &&
        vm_ioctl(vm->cpufd, KVM_GET_XSAVE, xs) == 0) {
        /* Every job's XRSTOR loads this instead of the init image: MXCSR, x87 control word and
         * registers are what start-up left. XCOMP_BV must be 0 (standard form) for XRSTOR. */
        uint8_t *x = vm->sys + SYS_TRAMP_OFF + TRAMP_XINIT;
        memcpy(x, xs->region, 2696);
        memset(x + 512 + 8, 0, 56); /* XCOMP_BV and the reserved header bytes */
    }
    free(xs);
    if (state_copy(vm->lx_snap, vm->lx) != 0) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory taking the snapshot");
        return ASPEN_VM_ENOMEM;
    }
    uint64_t *res = (uint64_t *)(vm->sys + SYS_TRAMP_OFF + TRAMP_RES);
    res[RES_FS / 8] = vm->lx->fs_base;
    res[RES_GS / 8] = vm->lx->gs_base;
    res[RES_RCX / 8] = vm->lx_regs.rcx;
    res[RES_RDX / 8] = vm->lx_regs.rdx;
    res[RES_R8 / 8] = vm->lx_regs.r8;
    res[RES_R9 / 8] = vm->lx_regs.r9;
    res[RES_R10 / 8] = vm->lx_regs.r10;
    res[RES_RIP / 8] = vm->lx_regs.rcx;
    return 0;
}

int vm_lx_begin(aspen_vm *vm, struct run_ctx *c, const void *in, size_t in_len,
                struct kvm_regs *regs)
{
    if (state_copy(vm->lx, vm->lx_snap) != 0) { /* cannot fail: lx has held as many before */
        snprintf(c->res->message, sizeof c->res->message, "out of host memory");
        return LX_ILLEGAL;
    }
    struct lx_run *r = vm->lxr;
    free(r->out);
    memset(r, 0, offsetof(struct lx_run, err));
    r->end = LX_RUNNING;
    r->status = 0;
    r->err_len = 0;
    r->last_err[0] = '\0';
    r->in = in;
    r->in_len = in_len;
    /* The call start-up stopped on, for this job. */
    struct kvm_regs g = vm->lx_regs;
    int rc = dispatch(vm, c, &g);
    if (rc != LX_CONTINUE)
        return rc;
    uint64_t *res = (uint64_t *)(vm->sys + SYS_TRAMP_OFF + TRAMP_RES);
    res[RES_RAX / 8] = g.rax;
    fast_paths(vm);
    *regs = vm->lx_regs;
    regs->rip = SYS_GVA + SYS_TRAMP_OFF;
    regs->r10 = 1; /* the trampoline's resume path */
    regs->rflags = X86_RFLAGS_FIXED;
    return LX_CONTINUE;
}

void vm_lx_finish(aspen_vm *vm, aspen_vm_result *res, enum ev ev)
{
    struct lx_run *r = vm->lxr;
    char tail[300] = "";
    if (r->last_err[0])
        snprintf(tail, sizeof tail, " (its last stderr line: %s)", r->last_err);
    if (ev != EV_DONE)
        return;
    switch (r->end) {
    case LX_EXITED:
        if (r->status == 0) {
            res->outcome = ASPEN_VM_SUCCESS;
            res->output = r->out ? r->out : malloc(1);
            if (!res->output) {
                res->outcome = ASPEN_VM_CRASHED;
                snprintf(res->message, sizeof res->message, "out of host memory");
                return;
            }
            res->output_len = r->out_len;
            res->stats.bytes_out = r->out_len;
            r->out = NULL;
            r->out_len = r->out_cap = 0;
            /* the caller may read output as a string */
            uint8_t *o = realloc(res->output, res->output_len + 1);
            if (o) {
                res->output = o;
                o[res->output_len] = '\0';
            }
        } else {
            res->outcome = ASPEN_VM_JOB_ERROR;
            snprintf(res->message, sizeof res->message, "the program exited with status %d%s",
                     r->status, tail);
        }
        return;
    case LX_SIGNALLED:
        res->outcome = ASPEN_VM_PANIC;
        snprintf(res->message, sizeof res->message,
                 "guest panicked: the program killed itself with signal %d (%s)%s", r->status,
                 sig_name((uint64_t)r->status), tail);
        return;
    case LX_TOO_LARGE:
        res->outcome = ASPEN_VM_OUTPUT_TOO_LARGE;
        snprintf(res->message, sizeof res->message,
                 "output too large: the program wrote more than %zu bytes to stdout",
                 vm->cfg.max_output);
        return;
    case LX_NOMEM:
    case LX_RUNNING:
        res->outcome = ASPEN_VM_CRASHED;
        snprintf(res->message, sizeof res->message, "out of host memory for the job's output");
        return;
    }
}

/* The end of a run, whatever ended it: the partial stderr line is a log line too. */
void vm_lx_end_run(aspen_vm *vm, struct run_ctx *c)
{
    stderr_flush(vm, c);
}
