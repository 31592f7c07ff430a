/* vm/vm.c — one KVM micro-VM: memory layout, page tables, vCPU, run loop, snapshot and restore,
 * deadlines and interrupts.
 *
 * Shape of a VM (see docs/ARCHITECTURE.md and docs/ABI.md):
 *   - Guest code runs at CPL 3 in 64-bit long mode set up entirely by the host (no guest kernel).
 *     On this project's nested KVM, ring-0 guest code is emulated (~1 µs/instruction), so ring 0 is
 *     used only by the fault stub (vm/stub.S), never on a job's normal path.
 *   - Guest memory is exactly cfg.memory_bytes of user pages: the image (code R+X, rodata R, data
 *     R+W no-exec), the stack (a 64 KiB unmapped guard gap below it), the call block page, and the heap. Page 0 and
 *     everything else are unmapped. A separate "system" region (GDT, IDT, TSS with the I/O bitmap,
 *     fault stub, ring-0 stack, page tables) is supervisor-only, outside that budget.
 *   - Physically, the guest's pages are grouped by how they are restored between jobs, and mapped to
 *     the guest's virtual layout by the page tables:
 *       slot 0  system region                  restored only after a fault (registers)
 *       slot 1  read-only image (shared memfd)  never written: one copy for every VM of the image
 *       slot 2  "hot": data+bss, top of stack, call block, head of heap — what nearly every job
 *               writes; restored by one memcpy (cheaper than write-protect faults on this machine)
 *       slot 3  "cold": the rest of stack and heap — dirty-logged by KVM; only pages a job dirtied
 *               are restored, so restoring costs what the job dirtied, not the VM's size.
 *   - Every exit costs ~20 µs here, so a job that makes no host call costs exactly one exit (DONE),
 *     and host-call arguments travel in the call block, never through KVM_GET_REGS.
 *   - Deadlines: a per-thread POSIX timer sends a real-time signal to the vCPU thread; its handler
 *     sets kvm_run.immediate_exit so even a signal landing just before KVM_RUN is not lost.
 */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- System region layout (must match vm/stub.S) ----------------------------------------------- */
#define SYS_GVA 0xffffffff80000000ull
#define SYS_GDT_OFF 0x000u
#define SYS_TSS_OFF 0x100u
#define SYS_IDT_OFF 0x800u
#define SYS_STUB_OFF 0x1000u
#define SYS_FAULT_OFF 0x2000u
#define SYS_STACK_OFF 0x3000u /* two pages; RSP0 = SYS_GVA + SYS_TRAMP_OFF */
#define SYS_TRAMP_OFF 0x5000u /* the job trampoline: the only page here guest code may touch */
#define SYS_PT_OFF 0x6000u    /* page tables from here (not mapped in the guest's address space) */

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28

#define IOMAP_BYTES 23u /* ports 0x00-0xb7 described, +1 terminator byte inside */
#define TSS_LIMIT (104u + IOMAP_BYTES - 1u)

#define GPA_SYS 0x100000ull

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_NX (1ull << 63)

#define HOT_IMAGE_MAX (64u * 1024u) /* writable image pages restored by memcpy up to this size */
#define STACK_HOT (16u * 1024u)
#define HEAP_HOT (16u * 1024u)
#define MESSAGE_MAX ASPEN_MAX_MESSAGE
/* Unmapped gap below the stack: wide enough that a large stack frame cannot jump over it into the
 * image's data (virtual space only; it costs no memory). */
#define STACK_GUARD (64u * 1024u)

extern const uint8_t aspen_stub_start[], aspen_stub_end[], aspen_tramp_start[], aspen_tramp_end[];

struct region {
    uint64_t gva, len;
    uint8_t *host;
    uint64_t gpa;
    uint32_t prot;
    int slot; /* 1 code, 2 hot, 3 cold */
};
#define MAX_REGIONS (IMAGE_MAX_SEGS + 8)

struct snap_page {
    uint32_t idx; /* page index in the cold slot */
    uint8_t *data;
};

struct aspen_vm {
    aspen_vm_image *img;
    aspen_vm_host *host;
    aspen_vm_config cfg;
    int vmfd, cpufd;
    struct kvm_run *run;
    size_t run_size;

    uint8_t *arena; /* one mapping: system region, [code copy,] hot, cold */
    size_t arena_size;
    uint8_t *sys;
    size_t sys_size;
    uint64_t pt_next; /* next free page-table page (offset in sys) */
    uint8_t *code;    /* warm: the image's shared memfd mapped read-only; one-shot: in the arena */
    bool code_shared;
    uint8_t *umem; /* hot then cold */
    size_t hot_size, cold_size;
    uint64_t gpa_code, gpa_hot, gpa_cold;

    struct region reg[MAX_REGIONS];
    int nreg;
    uint64_t stack_lo, stack_hi, block_gva, heap_start, heap_end;
    struct aspen_abi_block *blk;

    /* snapshot */
    bool warm;
    uint8_t *hot_snap;
    struct snap_page *cold_snap;
    size_t ncold_snap;
    uint64_t *bitmap; /* dirty-bitmap fallback */
    size_t bitmap_words;
    struct kvm_dirty_gfn *ring; /* dirty ring, when KVM offers it */
    uint32_t ring_n, ring_fetch;
    uint32_t *dirty; /* cold pages dirtied and not yet restored */
    size_t ndirty, dirty_cap;

    struct kvm_sregs sregs;
    bool need_sregs;
    bool used;   /* a non-warm VM has run its job */
    bool broken; /* crashed: unusable */

    /* interrupt */
    pthread_mutex_t kick_lock;
    bool running;
    pthread_t thread;
    atomic_int interrupt_req;

    /* stats */
    uint64_t cold_start_ns;
    uint64_t runs;
    uint32_t last_dirty;
};

/* ---- KVM device and clocks ---------------------------------------------------------------------- */
static pthread_mutex_t g_kvm_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_kvm = -1;
static int g_run_size;
static bool g_readonly_mem;
static bool g_sync_regs;  /* KVM_CAP_SYNC_REGS: registers through the run page */
static bool g_sync_sregs; /* ... and segment/control registers too */
static struct kvm_sregs g_sregs_template; /* a fresh vCPU's sregs, read once per process */
static int g_ring_max;                   /* KVM_CAP_DIRTY_LOG_RING: largest ring in bytes, or 0 */
static bool g_have_template;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int kvm_open(aspen_vm_error *err)
{
    pthread_mutex_lock(&g_kvm_lock);
    if (g_kvm >= 0) {
        pthread_mutex_unlock(&g_kvm_lock);
        return 0;
    }
    const char *path = getenv("ASPEN_KVM_DEVICE");
    if (!path || !*path)
        path = "/dev/kvm";
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            vm_set_error(err, ASPEN_VM_EKVM,
                         "KVM not available: %s does not exist (%s). Load the kvm modules "
                         "(sudo modprobe kvm; sudo modprobe kvm_intel, or kvm_amd) and make sure "
                         "virtualization (VT-x/AMD-V) is enabled in the BIOS",
                         path, strerror(e));
        else if (e == EACCES || e == EPERM)
            vm_set_error(err, ASPEN_VM_EKVM,
                         "KVM not available: no permission to open %s. Add your user to the kvm "
                         "group (sudo usermod -aG kvm $USER) and log in again",
                         path);
        else
            vm_set_error(err, ASPEN_VM_EKVM, "KVM not available: cannot open %s: %s", path,
                         strerror(e));
        pthread_mutex_unlock(&g_kvm_lock);
        return ASPEN_VM_EKVM;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    int run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (api != KVM_API_VERSION || run_size < (int)sizeof(struct kvm_run) ||
        ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
        vm_set_error(err, ASPEN_VM_EKVM,
                     "KVM not available: %s speaks API %d (want %d) or lacks immediate exit; "
                     "use a Linux kernel of 4.11 or later",
                     path, api, KVM_API_VERSION);
        close(fd);
        pthread_mutex_unlock(&g_kvm_lock);
        return ASPEN_VM_EKVM;
    }
    g_readonly_mem = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    int sync = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    g_sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
    g_sync_sregs = sync > 0 && (sync & KVM_SYNC_X86_SREGS);
    int ring = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
    g_ring_max = ring > 0 && !getenv("ASPEN_NO_DIRTY_RING") ? ring : 0;
    g_run_size = run_size;
    g_kvm = fd;
    pthread_mutex_unlock(&g_kvm_lock);
    return 0;
}

int aspen_vm_check_kvm(aspen_vm_error *err) { return kvm_open(err); }

/* ---- Interrupts: a real-time signal kicks the vCPU thread out of KVM_RUN ----------------------- */
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
static int thread_prepare(aspen_vm_error *err)
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
static void timer_ensure(uint64_t now, uint64_t deadline_ns)
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

bool aspen_vm_usable(const aspen_vm *vm) { return !vm->broken && !(vm->used && !vm->warm); }

/* ---- Guest memory access ---------------------------------------------------------------------- */
static const struct region *region_of(const aspen_vm *vm, uint64_t gva)
{
    for (int i = 0; i < vm->nreg; i++)
        if (gva >= vm->reg[i].gva && gva - vm->reg[i].gva < vm->reg[i].len)
            return &vm->reg[i];
    return NULL;
}

/* Copy [gva, gva+len) out of guest memory (dst NULL: only check). Every byte must be mapped. */
int vm_guest_copy_out(const aspen_vm *vm, uint64_t gva, uint64_t len, void *dst)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end))
        return -1;
    while (len > 0) {
        const struct region *r = region_of(vm, gva);
        if (!r)
            return -1;
        uint64_t off = gva - r->gva, n = r->len - off;
        if (n > len)
            n = len;
        if (dst) {
            memcpy(dst, r->host + off, n);
            dst = (uint8_t *)dst + n;
        }
        gva += n;
        len -= n;
    }
    return 0;
}

int vm_guest_copy_in(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end) || vm_guest_copy_out(vm, gva, len, NULL) != 0)
        return -1;
    for (uint64_t g = gva; g < end;) { /* all of it must be guest-writable before we write any */
        const struct region *r = region_of(vm, g);
        if (!(r->prot & SEG_W))
            return -1;
        g = r->gva + r->len;
    }
    while (len > 0) {
        const struct region *r = region_of(vm, gva);
        uint64_t off = gva - r->gva, n = r->len - off;
        if (n > len)
            n = len;
        memcpy(r->host + off, src, n);
        src = (const uint8_t *)src + n;
        gva += n;
        len -= n;
    }
    return 0;
}

/* ---- Building the VM -------------------------------------------------------------------------- */
static uint64_t *pt_table(aspen_vm *vm, uint64_t *entry)
{
    if (!(*entry & PTE_P)) {
        if (vm->pt_next + PAGE > vm->sys_size)
            return NULL;
        *entry = (GPA_SYS + vm->pt_next) | PTE_P | PTE_W | PTE_U;
        vm->pt_next += PAGE;
    }
    uint64_t gpa = *entry & 0x000ffffffffff000ull;
    return (uint64_t *)(vm->sys + (gpa - GPA_SYS));
}

static int map_page(aspen_vm *vm, uint64_t gva, uint64_t gpa, uint64_t flags)
{
    uint64_t *t = (uint64_t *)(vm->sys + SYS_PT_OFF); /* PML4 is the first table */
    for (int shift = 39; shift > 12; shift -= 9) {
        t = pt_table(vm, &t[(gva >> shift) & 511]);
        if (!t)
            return -1;
    }
    t[(gva >> 12) & 511] = gpa | flags;
    return 0;
}

static void gdt_set(uint64_t *gdt, int idx, uint64_t desc) { gdt[idx] = desc; }

static void build_system(aspen_vm *vm)
{
    uint8_t *s = vm->sys;
    uint64_t *gdt = (uint64_t *)(s + SYS_GDT_OFF);
    gdt_set(gdt, 1, 0x00af9b000000ffffull); /* kernel code, 64-bit, DPL 0 */
    gdt_set(gdt, 2, 0x00cf93000000ffffull); /* kernel data */
    gdt_set(gdt, 3, 0x00affb000000ffffull); /* user code, 64-bit, DPL 3 */
    gdt_set(gdt, 4, 0x00cff3000000ffffull); /* user data, DPL 3 */
    uint64_t tss = SYS_GVA + SYS_TSS_OFF;
    gdt[5] = (TSS_LIMIT & 0xffffull) | ((tss & 0xffffffull) << 16) | (0x89ull << 40) |
             (((uint64_t)TSS_LIMIT >> 16 & 0xf) << 48) | (((tss >> 24) & 0xff) << 56);
    gdt[6] = tss >> 32;

    /* TSS: RSP0 for exceptions from CPL 3; I/O bitmap opening ports 0xA0-0xA7 only. */
    uint8_t *t = s + SYS_TSS_OFF;
    uint64_t rsp0 = SYS_GVA + SYS_TRAMP_OFF;
    memcpy(t + 4, &rsp0, 8);
    uint16_t iomap = 104;
    memcpy(t + 102, &iomap, 2);
    memset(t + 104, 0xff, IOMAP_BYTES);
    t[104 + ASPEN_PORT_CALL / 8] = 0x00; /* 0xA0..0xA7: CALL (A0-A3) and EXIT (A4-A7) */

    /* IDT: vectors 0-31 to the stub's entries, interrupt gates, DPL 0 (so `int n` from CPL 3 is a
     * #GP instead of a way into ring 0). */
    uint64_t *idt = (uint64_t *)(s + SYS_IDT_OFF);
    for (int v = 0; v < 32; v++) {
        uint64_t off = SYS_GVA + SYS_STUB_OFF + 16u * (unsigned)v;
        idt[2 * v] = (off & 0xffff) | ((uint64_t)SEL_KCODE << 16) | (0x8eull << 40) |
                     ((off >> 16 & 0xffff) << 48);
        idt[2 * v + 1] = off >> 32;
    }
    memcpy(s + SYS_STUB_OFF, aspen_stub_start, (size_t)(aspen_stub_end - aspen_stub_start));
    memcpy(s + SYS_TRAMP_OFF, aspen_tramp_start, (size_t)(aspen_tramp_end - aspen_tramp_start));
}

static void init_sregs(aspen_vm *vm, struct kvm_sregs *sr)
{
    struct kvm_segment cs = {.base = 0, .limit = 0xffffffff, .selector = SEL_UCODE, .type = 11,
                             .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1};
    struct kvm_segment ds = {.base = 0, .limit = 0xffffffff, .selector = SEL_UDATA, .type = 3,
                             .present = 1, .dpl = 3, .s = 1, .db = 1, .g = 1};
    sr->cs = cs;
    sr->ds = sr->es = sr->fs = sr->gs = sr->ss = ds;
    sr->tr = (struct kvm_segment){.base = SYS_GVA + SYS_TSS_OFF, .limit = TSS_LIMIT,
                                  .selector = SEL_TSS, .type = 11, .present = 1};
    sr->ldt = (struct kvm_segment){.unusable = 1};
    sr->gdt.base = SYS_GVA + SYS_GDT_OFF;
    sr->gdt.limit = 7 * 8 - 1;
    sr->idt.base = SYS_GVA + SYS_IDT_OFF;
    sr->idt.limit = 32 * 16 - 1;
    sr->cr0 = 0x80050033; /* PG | AM | WP | NE | ET | MP | PE */
    sr->cr3 = GPA_SYS + SYS_PT_OFF;
    sr->cr4 = 0x620;     /* OSXMMEXCPT | OSFXSR | PAE */
    sr->efer = 0xd00;    /* NXE | LMA | LME; no SCE: `syscall` is #UD */
    memset(sr->interrupt_bitmap, 0, sizeof sr->interrupt_bitmap);
}

static void add_region(aspen_vm *vm, uint64_t gva, uint64_t len, int slot, uint64_t slot_off,
                       uint32_t prot)
{
    if (len == 0)
        return;
    struct region *r = &vm->reg[vm->nreg++];
    r->gva = gva;
    r->len = len;
    r->prot = prot;
    r->slot = slot;
    if (slot == 1) {
        r->host = vm->code + slot_off;
        r->gpa = vm->gpa_code + slot_off;
    } else if (slot == 2) {
        r->host = vm->umem + slot_off;
        r->gpa = vm->gpa_hot + slot_off;
    } else {
        r->host = vm->umem + vm->hot_size + slot_off;
        r->gpa = vm->gpa_cold + slot_off;
    }
}

static int region_cmp(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    return x->gva < y->gva ? -1 : x->gva > y->gva;
}

static int set_slot(aspen_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
                    uint32_t flags, aspen_vm_error *err)
{
    struct kvm_userspace_memory_region r = {.slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                            .memory_size = size,
                                            .userspace_addr = (uint64_t)(uintptr_t)host};
    if (ioctl(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &r) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM refused guest memory slot %u (%llu bytes): %s", slot,
                     (unsigned long long)size, strerror(errno));
        return ASPEN_VM_EKVM;
    }
    return 0;
}

void aspen_vm_config_default(aspen_vm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->memory_bytes = 1u << 20;
    cfg->stack_bytes = 64u << 10;
    cfg->timeout_ms = 1000;
    cfg->max_output = 16u << 20;
    cfg->warm = true;
}

int aspen_vm_parse_size(const char *s, size_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1ull << 10, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1ull << 20, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1ull << 30, end++;
    if (mul > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (mul > 1 && (*end == 'b' || *end == 'B'))
        end++;
    else if (mul == 1 && (*end == 'b' || *end == 'B'))
        end++;
    if (*end != '\0' || v == 0 || __builtin_mul_overflow(v, mul, &v) || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

static void set_run_regs(struct kvm_regs *r, uint64_t rip, uint64_t rsp, uint64_t rdi,
                         uint64_t rsi, uint64_t rdx)
{
    memset(r, 0, sizeof *r);
    r->rip = rip;
    r->rsp = rsp;
    r->rdi = rdi;
    r->rsi = rsi;
    r->rdx = rdx;
    r->rflags = 0x2;
}

/* ---- The run loop ----------------------------------------------------------------------------- */
enum ev { EV_READY, EV_DONE, EV_FAULT, EV_ILLEGAL, EV_TIMEOUT, EV_CANCEL, EV_CRASH, EV_ERROR };

struct run_ctx {
    uint64_t deadline;
    const int *cancel;
    aspen_vm_result *res;
    aspen_vm_log_fn on_log;
    void *log_user;
    bool startup;
};

static int do_hostcall(aspen_vm *vm, uint32_t fn, struct run_ctx *c)
{
    aspen_vm_result *res = c->res;
    aspen_vm_call call;
    memset(&call, 0, sizeof call);
    call.vm = vm;
    call.illegal_msg = res->message;
    call.illegal_cap = sizeof res->message;
    call.on_log = c->on_log;
    call.log_user = c->log_user;
    call.log_lines = &res->stats.log_lines;
    memcpy(call.args, (const void *)vm->blk->call_args, sizeof call.args);
    res->stats.host_calls++;
    if (fn == ASPEN_FN_LOOKUP) {
        static const struct host_entry lookup = {.name = "lookup"};
        char name[ASPEN_MAX_NAME];
        uint64_t len = call.args[1];
        call.entry = &lookup;
        if (len == 0 || len >= sizeof name)
            return aspen_vm_call_illegal(&call, "host function lookup: name length %llu is not "
                                                "in 1..%u",
                                         (unsigned long long)len, ASPEN_MAX_NAME - 1);
        if (aspen_vm_call_read(&call, call.args[0], len, name) != 0)
            return -1;
        name[len] = '\0';
        int64_t ret = ASPEN_CALL_ENOENT;
        for (size_t i = 0; i < aspen_vm_host_count(vm->host); i++)
            if (strcmp(vm->host->e[i].name, name) == 0)
                ret = vm->host->e[i].number;
        vm->blk->call_ret = ret;
        return 0;
    }
    const struct host_entry *e = host_find(vm->host, fn);
    if (!e)
        return aspen_vm_call_illegal(&call, "unknown host function number %u (registered: "
                                            "%zu functions; look names up with "
                                            "aspen_host_lookup)",
                                     fn, aspen_vm_host_count(vm->host));
    call.entry = e;
    int rc = e->fn(&call, e->user);
    if (call.illegal)
        return -1;
    if (rc != 0 && call.ret == 0)
        call.ret = ASPEN_CALL_EFAIL;
    vm->blk->call_ret = call.ret;
    return 0;
}

static int ring_harvest(aspen_vm *vm);

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
            if (atomic_load(&vm->interrupt_req) ||
                (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_SEQ_CST)))
                return EV_CANCEL;
            uint64_t now = now_ns();
            if (now >= c->deadline)
                return EV_TIMEOUT;
            timer_ensure(now, c->deadline); /* an early expiry, or a foreign signal */
            continue;
        }
        res->stats.exits++;
        switch (vm->run->exit_reason) {
        case KVM_EXIT_IO: {
            struct kvm_run *run = vm->run;
            uint32_t data = 0;
            bool out4 = run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 &&
                        run->io.count == 1;
            if (out4)
                memcpy(&data, (uint8_t *)run + run->io.data_offset, 4);
            if (run->io.port == ASPEN_PORT_FAULT)
                return EV_FAULT;
            if (out4 && run->io.port == ASPEN_PORT_CALL) {
                if (do_hostcall(vm, data, c) != 0)
                    return EV_ILLEGAL;
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
            if (ring_harvest(vm) != 0) {
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
    t_run = vm->run;
    enum ev ev;
    if (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_SEQ_CST)) {
        ev = EV_CANCEL;
    } else {
        timer_ensure(now_ns(), c->deadline);
        ev = run_loop(vm, c);
    }
    t_run = NULL;
    pthread_mutex_lock(&vm->kick_lock);
    vm->running = false;
    pthread_mutex_unlock(&vm->kick_lock);
    __atomic_store_n(&vm->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return ev;
}

/* ---- Fault reports ---------------------------------------------------------------------------- */
static const char *vector_name(uint32_t v)
{
    static const char *names[32] = {
        [0] = "divide error (#DE)",         [1] = "debug exception (#DB)",
        [2] = "NMI",                        [3] = "breakpoint (#BP)",
        [4] = "overflow (#OF)",             [5] = "bound range exceeded (#BR)",
        [6] = "invalid opcode (#UD)",       [7] = "device not available (#NM)",
        [8] = "double fault (#DF)",         [10] = "invalid TSS (#TS)",
        [11] = "segment not present (#NP)", [12] = "stack-segment fault (#SS)",
        [13] = "general protection fault (#GP)", [14] = "page fault (#PF)",
        [16] = "x87 floating-point error (#MF)", [17] = "alignment check (#AC)",
        [18] = "machine check (#MC)",       [19] = "SIMD floating-point exception (#XM)",
        [20] = "virtualization exception (#VE)", [21] = "control protection (#CP)",
    };
    return v < 32 && names[v] ? names[v] : "CPU exception";
}

/* A hint from the bytes at the faulting instruction, for the faults people actually meet. */
static const char *insn_hint(const aspen_vm *vm, uint64_t rip, uint32_t vec)
{
    uint8_t b[2] = {0, 0};
    if (vm_guest_copy_out(vm, rip, 2, b) != 0 && vm_guest_copy_out(vm, rip, 1, b) != 0)
        return "";
    if (b[0] == 0x0f && b[1] == 0x05)
        return " — a `syscall` instruction: guests have no system calls; use the SDK's host "
               "calls (libc built for Linux does not work inside Aspen)";
    if (b[0] == 0xf4)
        return " — a `hlt` instruction, which guest code may not execute; finish a job by "
               "returning from its handler";
    if (b[0] == 0xcd || b[0] == 0xcc)
        return " — an `int` instruction: guest code cannot raise interrupts";
    if (vec == 13 && (b[0] == 0xe6 || b[0] == 0xe7 || b[0] == 0xee || b[0] == 0xef ||
                      b[0] == 0xe4 || b[0] == 0xe5 || b[0] == 0xec || b[0] == 0xed))
        return " — I/O to a port closed to guests";
    if (b[0] == 0x0f && b[1] == 0x0b)
        return " — `ud2`, the compiler's trap (e.g. __builtin_trap or unreachable code)";
    return "";
}

static void describe_fault(aspen_vm *vm, aspen_vm_result *res)
{
    const uint64_t *fb = (const uint64_t *)(vm->sys + SYS_FAULT_OFF);
    aspen_vm_fault *f = &res->fault;
    f->vector = (uint32_t)fb[0];
    f->error_code = fb[1];
    f->rip = fb[2];
    f->rsp = fb[5];
    f->address = f->vector == 14 ? fb[6] : 0;
    bool from_user = (fb[3] & 3) == 3;
    char detail[512] = "";
    /* `syscall` with EFER.SCE clear: bare-metal KVM raises #UD on the instruction (insn_hint names
     * it); nested kvm_pvm jumps to LSTAR (0) at CPL 3 instead, leaving the return address in rcx. */
    uint8_t sc[2];
    if (f->vector == 14 && f->rip == 0 && fb[7] >= 2 && vm_guest_copy_out(vm, fb[7] - 2, 2, sc) == 0 &&
        sc[0] == 0x0f && sc[1] == 0x05) {
        f->rip = fb[7] - 2;
        f->vector = 6;
        f->address = 0;
        snprintf(res->message, sizeof res->message, "guest CPU fault: invalid opcode (#UD) at rip "
                 "0x%llx%s",
                 (unsigned long long)f->rip, insn_hint(vm, f->rip, 6));
        return;
    }
    if (f->vector == 14) {
        uint64_t a = f->address, ec = f->error_code;
        const char *what = (ec & 16) ? "executing" : (ec & 2) ? "writing" : "reading";
        const char *why;
        if (a < ASPEN_USER_MIN)
            why = "a null pointer dereference (nothing is mapped below 0x10000)";
        else if (a >= vm->stack_lo - STACK_GUARD && a < vm->stack_lo)
            why = "stack overflow (it ran into the guard gap below the stack)";
        else if (!(ec & 1))
            why = "the address is not mapped in guest memory";
        else if (ec & 16)
            why = "that memory is not executable (data, heap and stack are no-exec)";
        else if (ec & 2)
            why = "that memory is read-only (code and constants)";
        else if (a >= SYS_GVA)
            why = "that memory belongs to the host";
        else
            why = "access not allowed";
        snprintf(detail, sizeof detail, ": %s address 0x%llx — %s", what, (unsigned long long)a,
                 why);
    } else if (f->error_code && f->vector != 8) {
        snprintf(detail, sizeof detail, " (error code 0x%llx)", (unsigned long long)f->error_code);
    }
    snprintf(res->message, sizeof res->message, "guest CPU fault: %s at rip 0x%llx%s%s%s",
             vector_name(f->vector), (unsigned long long)f->rip, detail,
             insn_hint(vm, f->rip, f->vector), from_user ? "" : " [in the host's fault stub]");
}

/* ---- Snapshot and restore --------------------------------------------------------------------- */
static int snap_cmp(const void *a, const void *b)
{
    const struct snap_page *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* ---- Dirty-page tracking of the cold slot ------------------------------------------------------
 * Preferred: KVM's dirty ring, a per-vCPU ring shared with the kernel that lists pages as they are
 * first written; a job that dirtied nothing costs no ioctl at all. Fallback: the dirty bitmap
 * (KVM_GET_DIRTY_LOG, ~1-2 µs per call here). Either way the pages land in vm->dirty as cold-slot
 * page indices, unsorted and possibly repeated, until restore or the snapshot consumes them. */
static int dirty_push(aspen_vm *vm, uint32_t idx)
{
    if (vm->ndirty == vm->dirty_cap) {
        size_t cap = vm->dirty_cap ? vm->dirty_cap * 2 : 256;
        uint32_t *d = realloc(vm->dirty, cap * sizeof *d);
        if (!d)
            return -1;
        vm->dirty = d;
        vm->dirty_cap = cap;
    }
    vm->dirty[vm->ndirty++] = idx;
    return 0;
}

/* Take every entry the kernel has published, give the entries back, and re-arm write protection
 * of the harvested pages (KVM_RESET_DIRTY_RINGS), as KVM_GET_DIRTY_LOG would. Also called when the
 * ring fills up in the middle of a run (KVM_EXIT_DIRTY_RING_FULL). */
static int ring_harvest(aspen_vm *vm)
{
    uint32_t got = 0, cold_pages = (uint32_t)(vm->cold_size / PAGE);
    for (;;) {
        struct kvm_dirty_gfn *e = &vm->ring[vm->ring_fetch & (vm->ring_n - 1)];
        if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
            break;
        if (e->slot == 3 && e->offset < cold_pages && dirty_push(vm, (uint32_t)e->offset) != 0)
            return -1;
        __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
        vm->ring_fetch++;
        got++;
    }
    if (got && ioctl(vm->vmfd, KVM_RESET_DIRTY_RINGS, 0) < 0)
        return -1;
    return 0;
}

static int collect_dirty(aspen_vm *vm)
{
    if (vm->ring)
        return ring_harvest(vm);
    struct kvm_dirty_log dl;
    memset(&dl, 0, sizeof dl);
    dl.slot = 3;
    dl.dirty_bitmap = vm->bitmap;
    memset(vm->bitmap, 0, vm->bitmap_words * 8);
    if (ioctl(vm->vmfd, KVM_GET_DIRTY_LOG, &dl) != 0)
        return -1;
    for (size_t w = 0; w < vm->bitmap_words; w++)
        for (uint64_t bits = vm->bitmap[w]; bits; bits &= bits - 1)
            if (dirty_push(vm, (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(bits))) != 0)
                return -1;
    return 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop repeats, so restores coalesce runs and count each page once. */
static void dirty_sort_unique(aspen_vm *vm)
{
    if (vm->ndirty < 2)
        return;
    qsort(vm->dirty, vm->ndirty, sizeof *vm->dirty, u32_cmp);
    size_t k = 1;
    for (size_t i = 1; i < vm->ndirty; i++)
        if (vm->dirty[i] != vm->dirty[k - 1])
            vm->dirty[k++] = vm->dirty[i];
    vm->ndirty = k;
}

static int take_snapshot(aspen_vm *vm, aspen_vm_error *err)
{
    vm->hot_snap = malloc(vm->hot_size);
    if (!vm->hot_snap)
        goto fail_nomem;
    memcpy(vm->hot_snap, vm->umem, vm->hot_size);
    if (vm->cold_size == 0)
        return 0;
    if (collect_dirty(vm) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot read the guest's dirty pages: %s",
                     strerror(errno));
        return ASPEN_VM_EKVM;
    }
    /* Cold pages that matter: what start-up dirtied, and what the host wrote (image data). */
    for (int i = 0; i < vm->nreg; i++)
        if (vm->reg[i].slot == 3 && vm->reg[i].gva >= vm->img->lo && vm->reg[i].gva < vm->img->hi)
            for (uint64_t p = 0; p < vm->reg[i].len; p += PAGE)
                if (dirty_push(vm, (uint32_t)((vm->reg[i].gpa - vm->gpa_cold + p) / PAGE)) != 0)
                    goto fail_nomem;
    dirty_sort_unique(vm);
    vm->cold_snap = calloc(vm->ndirty ? vm->ndirty : 1, sizeof *vm->cold_snap);
    if (!vm->cold_snap)
        goto fail_nomem;
    for (size_t i = 0; i < vm->ndirty; i++) {
        uint32_t idx = vm->dirty[i];
        const uint8_t *pg = vm->umem + vm->hot_size + (uint64_t)idx * PAGE;
        if (page_is_zero(pg))
            continue;
        uint8_t *copy = malloc(PAGE);
        if (!copy)
            goto fail_nomem;
        memcpy(copy, pg, PAGE);
        vm->cold_snap[vm->ncold_snap++] = (struct snap_page){idx, copy}; /* sorted: dirty is */
    }
    vm->ndirty = 0;
    return 0;
fail_nomem:
    vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory taking the VM snapshot");
    return ASPEN_VM_ENOMEM;
}

/* Long runs of pages that go back to zero are handed back to the kernel instead of cleared: an idle
 * pooled VM then holds no memory for what a big job touched (KVM refaults them as zero pages). */
#define ZERO_RUN_RELEASE 16u

struct zero_run {
    uint32_t start, len;
};

static void zero_run_flush(aspen_vm *vm, struct zero_run *z)
{
    if (!z->len)
        return;
    uint8_t *p = vm->umem + vm->hot_size + (uint64_t)z->start * PAGE;
    if (z->len < ZERO_RUN_RELEASE || madvise(p, (size_t)z->len * PAGE, MADV_DONTNEED) != 0)
        memset(p, 0, (size_t)z->len * PAGE);
    z->len = 0;
}

static void restore_cold_page(aspen_vm *vm, uint32_t idx, struct zero_run *z)
{
    uint8_t *pg = vm->umem + vm->hot_size + (uint64_t)idx * PAGE;
    struct snap_page key = {idx, NULL};
    struct snap_page *s = bsearch(&key, vm->cold_snap, vm->ncold_snap, sizeof key, snap_cmp);
    if (s) {
        zero_run_flush(vm, z);
        memcpy(pg, s->data, PAGE);
    } else if (z->len && z->start + z->len == idx) {
        z->len++;
    } else {
        zero_run_flush(vm, z);
        *z = (struct zero_run){idx, 1};
    }
}

/* Put guest memory back to the snapshot: the hot slot wholesale, the cold slot page by page as
 * dirtied by the guest, plus the pages the host itself wrote for the input. */
static int restore(aspen_vm *vm, uint64_t in_gva, uint64_t in_len, uint32_t *dirtied)
{
    memcpy(vm->umem, vm->hot_snap, vm->hot_size);
    *dirtied = 0;
    if (vm->cold_size == 0)
        return 0;
    if (collect_dirty(vm) != 0)
        return -1;
    *dirtied = (uint32_t)vm->ndirty; /* before adding the input: what the guest dirtied */
    for (uint64_t g = PAGE_DOWN(in_gva); in_len && g < in_gva + in_len; g += PAGE) {
        const struct region *r = region_of(vm, g);
        if (r && r->slot == 3 &&
            dirty_push(vm, (uint32_t)((r->gpa - vm->gpa_cold + (g - r->gva)) / PAGE)) != 0)
            return -1;
    }
    dirty_sort_unique(vm);
    struct zero_run z = {0, 0};
    for (size_t i = 0; i < vm->ndirty; i++)
        restore_cold_page(vm, vm->dirty[i], &z);
    zero_run_flush(vm, &z);
    vm->ndirty = 0;
    return 0;
}

/* ---- Create / destroy ------------------------------------------------------------------------- */
static int startup(aspen_vm *vm, aspen_vm_error *err);

int aspen_vm_create(aspen_vm_image *img, const aspen_vm_config *cfg_in, aspen_vm_host *host,
                    aspen_vm **out, aspen_vm_error *err)
{
    uint64_t t0 = now_ns();
    *out = NULL;
    int rc = kvm_open(err);
    if (rc)
        return rc;
    aspen_vm_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        aspen_vm_config_default(&cfg);
    if (cfg.memory_bytes == 0)
        cfg.memory_bytes = 1u << 20;
    if (cfg.stack_bytes == 0)
        cfg.stack_bytes = 64u << 10;
    if (cfg.timeout_ms == 0)
        cfg.timeout_ms = 1000;
    if (cfg.max_output == 0)
        cfg.max_output = 16u << 20;
    if (cfg.memory_bytes < (64u << 10) || cfg.memory_bytes > (1ull << 30)) {
        vm_set_error(err, ASPEN_VM_EINVAL, "guest memory must be between 64 KiB and 1 GiB (got "
                     "%zu bytes)", cfg.memory_bytes);
        return ASPEN_VM_EINVAL;
    }
    cfg.memory_bytes = PAGE_UP(cfg.memory_bytes);
    cfg.stack_bytes = PAGE_UP(cfg.stack_bytes);
    if (cfg.stack_bytes < (16u << 10) || cfg.stack_bytes > (256u << 20)) {
        vm_set_error(err, ASPEN_VM_EINVAL, "stack must be between 16 KiB and 256 MiB (got %zu "
                     "bytes)", cfg.stack_bytes);
        return ASPEN_VM_EINVAL;
    }
    size_t image_mem = img->ro_size + img->rw_size;
    size_t need = image_mem + cfg.stack_bytes + PAGE + 4 * PAGE;
    if (cfg.memory_bytes < need) {
        vm_set_error(err, ASPEN_VM_EINVAL,
                     "guest memory of %zu KiB is too small for %s: its image takes %zu KiB and "
                     "the stack %zu KiB; give it at least %zu KiB",
                     cfg.memory_bytes >> 10, img->name, image_mem >> 10, cfg.stack_bytes >> 10,
                     (need + 1023) >> 10);
        return ASPEN_VM_EINVAL;
    }
    if (!host)
        host = host_builtin();
    if (!host) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
        return ASPEN_VM_ENOMEM;
    }
    host_freeze(host);

    aspen_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory creating a VM");
        return ASPEN_VM_ENOMEM;
    }
    vm->img = aspen_vm_image_retain(img);
    vm->host = host;
    vm->cfg = cfg;
    vm->warm = cfg.warm;
    vm->vmfd = vm->cpufd = -1;
    pthread_mutex_init(&vm->kick_lock, NULL);
    rc = ASPEN_VM_EKVM;

    /* Virtual layout: image, guard gap, stack, call block, heap to the end of guest memory. */
    uint64_t heap_bytes = cfg.memory_bytes - image_mem - cfg.stack_bytes - PAGE;
    vm->stack_lo = img->hi + STACK_GUARD;
    vm->stack_hi = vm->stack_lo + cfg.stack_bytes;
    vm->block_gva = vm->stack_hi;
    vm->heap_start = vm->block_gva + PAGE;
    vm->heap_end = vm->heap_start + heap_bytes;

    /* Physical grouping: hot (memcpy-restored) and cold (dirty-logged). */
    bool rw_hot = img->rw_size <= HOT_IMAGE_MAX;
    uint64_t stack_hot = cfg.stack_bytes < STACK_HOT ? cfg.stack_bytes : STACK_HOT;
    uint64_t heap_hot = heap_bytes < HEAP_HOT ? heap_bytes : HEAP_HOT;
    vm->hot_size = (rw_hot ? img->rw_size : 0) + stack_hot + PAGE + heap_hot;
    vm->cold_size = cfg.memory_bytes - img->ro_size - vm->hot_size;

    /* Page-table pages: an upper bound, touched only as used. */
    size_t pt_pages = 1 + 3; /* PML4 + the system mapping's PDPT, PD, PT */
    int nparts = img->nseg + 5;
    pt_pages += (size_t)nparts * 6 + cfg.memory_bytes / (2u << 20) + 2;
    vm->sys_size = SYS_PT_OFF + pt_pages * PAGE;
    /* One host mapping for everything private to this VM; guest-physical addresses follow it, so
     * a one-shot VM needs a single memory slot (each slot costs ~20 µs to register here). A warm
     * VM maps the image's shared code instead of copying it, and dirty-logs its cold part. */
    vm->code_shared = vm->warm;
    size_t code_copy = vm->code_shared ? 0 : img->ro_size;
    vm->arena_size = vm->sys_size + code_copy + vm->hot_size + vm->cold_size;
    vm->arena = mmap(NULL, vm->arena_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->arena == MAP_FAILED) {
        vm->arena = NULL;
        vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map %zu bytes of guest memory: %s",
                     cfg.memory_bytes, strerror(errno));
        rc = ASPEN_VM_ENOMEM;
        goto fail_destroy;
    }
    vm->sys = vm->arena;
    vm->umem = vm->arena + vm->sys_size + code_copy;
    vm->gpa_hot = GPA_SYS + vm->sys_size + code_copy;
    vm->gpa_cold = vm->gpa_hot + vm->hot_size;
    if (!vm->code_shared) {
        vm->code = vm->arena + vm->sys_size;
        vm->gpa_code = GPA_SYS + vm->sys_size;
        memcpy(vm->code, img->ro_map, img->ro_size);
    } else {
        vm->gpa_code = (GPA_SYS + vm->arena_size + (2u << 20)) & ~((2ull << 20) - 1);
        vm->code = mmap(NULL, img->ro_size, g_readonly_mem ? PROT_READ : PROT_READ | PROT_WRITE,
                        g_readonly_mem ? MAP_SHARED : MAP_PRIVATE, img->ro_fd, 0);
        if (vm->code == MAP_FAILED) {
            vm->code = NULL;
            vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map the image of %s: %s", img->name,
                         strerror(errno));
            rc = ASPEN_VM_ENOMEM;
            goto fail_destroy;
        }
    }

    /* Regions: image segments, stack (cold bottom, hot top), call block, heap (hot head). */
    uint64_t hot_off = 0, cold_off = 0;
    for (int i = 0; i < img->nseg; i++) {
        const struct image_seg *s = &img->seg[i];
        if (!(s->prot & SEG_W)) {
            add_region(vm, s->gva, s->size, 1, s->ro_offset, s->prot);
        } else if (rw_hot) {
            memcpy(vm->umem + hot_off, s->data, s->size);
            add_region(vm, s->gva, s->size, 2, hot_off, s->prot);
            hot_off += s->size;
        } else {
            memcpy(vm->umem + vm->hot_size + cold_off, s->data, s->size);
            add_region(vm, s->gva, s->size, 3, cold_off, s->prot);
            cold_off += s->size;
        }
    }
    add_region(vm, vm->stack_lo, cfg.stack_bytes - stack_hot, 3, cold_off, SEG_R | SEG_W);
    cold_off += cfg.stack_bytes - stack_hot;
    add_region(vm, vm->stack_hi - stack_hot, stack_hot, 2, hot_off, SEG_R | SEG_W);
    hot_off += stack_hot;
    vm->blk = (struct aspen_abi_block *)(vm->umem + hot_off);
    add_region(vm, vm->block_gva, PAGE, 2, hot_off, SEG_R | SEG_W);
    hot_off += PAGE;
    add_region(vm, vm->heap_start, heap_hot, 2, hot_off, SEG_R | SEG_W);
    add_region(vm, vm->heap_start + heap_hot, heap_bytes - heap_hot, 3, cold_off, SEG_R | SEG_W);
    qsort(vm->reg, (size_t)vm->nreg, sizeof vm->reg[0], region_cmp);

    /* Page tables and the system region. */
    build_system(vm);
    vm->pt_next = SYS_PT_OFF + PAGE; /* the PML4 itself */
    static const struct { uint32_t off; uint64_t flags; } sys_pages[] = {
        {SYS_GDT_OFF, PTE_P | PTE_W | PTE_NX}, {SYS_STUB_OFF, PTE_P},
        {SYS_FAULT_OFF, PTE_P | PTE_W | PTE_NX}, {SYS_STACK_OFF, PTE_P | PTE_W | PTE_NX},
        {SYS_STACK_OFF + 0x1000, PTE_P | PTE_W | PTE_NX}, {SYS_TRAMP_OFF, PTE_P | PTE_U},
    };
    for (size_t i = 0; i < sizeof sys_pages / sizeof sys_pages[0]; i++)
        if (map_page(vm, SYS_GVA + sys_pages[i].off, GPA_SYS + sys_pages[i].off,
                     sys_pages[i].flags) != 0)
            goto fail_pt;
    for (int i = 0; i < vm->nreg; i++) {
        const struct region *r = &vm->reg[i];
        uint64_t flags = PTE_P | PTE_U | ((r->prot & SEG_W) ? PTE_W : 0) |
                         ((r->prot & SEG_X) ? 0 : PTE_NX);
        for (uint64_t p = 0; p < r->len; p += PAGE)
            if (map_page(vm, r->gva + p, r->gpa + p, flags) != 0)
                goto fail_pt;
    }

    /* The call block's constant part. */
    vm->blk->magic = ASPEN_BLOCK_MAGIC;
    vm->blk->abi_version = ASPEN_ABI_VERSION;
    vm->blk->mem_size = cfg.memory_bytes;
    vm->blk->stack_low = vm->stack_lo;
    vm->blk->stack_high = vm->stack_hi;
    vm->blk->heap_start = vm->heap_start;
    vm->blk->heap_end = vm->heap_end;
    vm->blk->input_ptr = vm->heap_end;

    vm->vmfd = ioctl(g_kvm, KVM_CREATE_VM, 0);
    if (vm->vmfd < 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_CREATE_VM failed: %s%s", strerror(errno),
                     errno == ENOMEM || errno == EMFILE ? " (too many VMs or open files?)" : "");
        goto fail_destroy;
    }
    /* The dirty ring must be switched on before the vCPU exists. Its size: every cold page once
     * plus KVM's reserve, a power of two between one page and 64 KiB; a job dirtying more fills
     * it, and the run loop harvests it and goes on. */
    if (vm->warm && vm->cold_size && g_ring_max) {
        uint64_t want = (vm->cold_size / PAGE + 128) * sizeof(struct kvm_dirty_gfn), bytes = PAGE;
        while (bytes < want && bytes < (64u << 10) && bytes * 2 <= (uint64_t)g_ring_max)
            bytes *= 2;
        struct kvm_enable_cap cap = {.cap = KVM_CAP_DIRTY_LOG_RING, .args = {bytes}};
        if (ioctl(vm->vmfd, KVM_ENABLE_CAP, &cap) == 0)
            vm->ring_n = (uint32_t)(bytes / sizeof(struct kvm_dirty_gfn));
    }
    if (!vm->warm)
        rc = set_slot(vm, 0, GPA_SYS, vm->arena, vm->arena_size, 0, err);
    else if (!(rc = set_slot(vm, 0, GPA_SYS, vm->arena, vm->sys_size + vm->hot_size, 0, err)) &&
             !(rc = set_slot(vm, 1, vm->gpa_code, vm->code, img->ro_size,
                             g_readonly_mem ? KVM_MEM_READONLY : 0, err)) &&
             vm->cold_size)
        rc = set_slot(vm, 3, vm->gpa_cold, vm->umem + vm->hot_size, vm->cold_size,
                      KVM_MEM_LOG_DIRTY_PAGES, err);
    if (rc)
        goto fail_destroy;
    rc = ASPEN_VM_EKVM;
    vm->cpufd = ioctl(vm->vmfd, KVM_CREATE_VCPU, 0);
    if (vm->cpufd < 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_CREATE_VCPU failed: %s", strerror(errno));
        goto fail_destroy;
    }
    vm->run_size = (size_t)g_run_size;
    vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->cpufd, 0);
    if (vm->run == MAP_FAILED) {
        vm->run = NULL;
        vm_set_error(err, ASPEN_VM_EKVM, "cannot map the vCPU run page: %s", strerror(errno));
        goto fail_destroy;
    }
    /* Every fresh vCPU starts with the same special registers: read them once per process. */
    pthread_mutex_lock(&g_kvm_lock);
    if (!g_have_template && ioctl(vm->cpufd, KVM_GET_SREGS, &g_sregs_template) == 0)
        g_have_template = true;
    vm->sregs = g_sregs_template;
    pthread_mutex_unlock(&g_kvm_lock);
    if (!g_have_template) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_GET_SREGS failed: %s", strerror(errno));
        goto fail_destroy;
    }
    init_sregs(vm, &vm->sregs);
    if (vm->ring_n) {
        void *ring = mmap(NULL, (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn),
                          PROT_READ | PROT_WRITE, MAP_SHARED, vm->cpufd,
                          (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * (off_t)PAGE);
        if (ring == MAP_FAILED) {
            vm_set_error(err, ASPEN_VM_EKVM, "cannot map the dirty ring: %s", strerror(errno));
            goto fail_destroy;
        }
        vm->ring = ring;
    } else if (vm->cold_size && vm->warm) {
        vm->bitmap_words = (vm->cold_size / PAGE + 63) / 64;
        vm->bitmap = calloc(vm->bitmap_words, 8);
        if (!vm->bitmap) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
            rc = ASPEN_VM_ENOMEM;
            goto fail_destroy;
        }
    }
    if ((rc = startup(vm, err)) != 0)
        goto fail_destroy;
    vm->cold_start_ns = now_ns() - t0;
    *out = vm;
    return 0;

fail_pt:
    vm_set_error(err, ASPEN_VM_ENOMEM, "internal error: page-table pool exhausted");
    rc = ASPEN_VM_ENOMEM;
fail_destroy:
    aspen_vm_destroy(vm);
    return rc;
}

static void finish_done(aspen_vm *vm, aspen_vm_result *res);

/* Enter _start and run it to its ready point; snapshot there if warm. */
static int startup(aspen_vm *vm, aspen_vm_error *err)
{
    int rc = thread_prepare(err);
    if (rc)
        return rc;
    /* A fresh vCPU's FPU is in its reset state already; registers and special registers go in
     * through the run page when KVM can take them there (two ioctls fewer per cold start). */
    struct kvm_regs regs;
    set_run_regs(&regs, vm->img->entry, vm->stack_hi, vm->block_gva, 0, 0);
    if (g_sync_regs && g_sync_sregs) {
        vm->run->s.regs.regs = regs;
        vm->run->s.regs.sregs = vm->sregs;
        vm->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    } else if (ioctl(vm->cpufd, KVM_SET_SREGS, &vm->sregs) != 0 ||
               ioctl(vm->cpufd, KVM_SET_REGS, &regs) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot set the vCPU's initial state: %s",
                     strerror(errno));
        return ASPEN_VM_EKVM;
    }
    aspen_vm_result res;
    memset(&res, 0, sizeof res);
    struct run_ctx c = {.deadline = now_ns() + (uint64_t)vm->cfg.timeout_ms * 1000000ull,
                        .res = &res, .startup = true, .on_log = vm->cfg.startup_log,
                        .log_user = vm->cfg.startup_log_user};
    enum ev ev = run_guarded(vm, &c);
    switch (ev) {
    case EV_READY:
        break;
    case EV_FAULT:
        describe_fault(vm, &res);
        /* fallthrough */
    default:
        if (ev == EV_TIMEOUT)
            snprintf(res.message, sizeof res.message, "it did not reach its ready point within "
                     "%u ms", vm->cfg.timeout_ms);
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
        return take_snapshot(vm, err);
    return 0;
}

void aspen_vm_destroy(aspen_vm *vm)
{
    if (!vm)
        return;
    if (vm->run)
        munmap(vm->run, vm->run_size);
    if (vm->cpufd >= 0)
        close(vm->cpufd);
    if (vm->vmfd >= 0)
        close(vm->vmfd);
    if (vm->arena)
        munmap(vm->arena, vm->arena_size);
    if (vm->code && vm->code_shared)
        munmap(vm->code, vm->img->ro_size);
    for (size_t i = 0; i < vm->ncold_snap; i++)
        free(vm->cold_snap[i].data);
    free(vm->cold_snap);
    free(vm->hot_snap);
    free(vm->bitmap);
    free(vm->dirty);
    if (vm->ring)
        munmap(vm->ring, (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn));
    pthread_mutex_destroy(&vm->kick_lock);
    aspen_vm_image_release(vm->img);
    free(vm);
}

/* ---- Running a job ---------------------------------------------------------------------------- */
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
    int rc = thread_prepare(err);
    if (rc)
        return rc;
    uint64_t t0 = now_ns();
    uint32_t timeout = opts->timeout_ms ? opts->timeout_ms : vm->cfg.timeout_ms;
    res->stats.bytes_in = opts->input_len;

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

    /* Registers go in through the run page (KVM_CAP_SYNC_REGS: no ioctl); the trampoline scrubs
     * x87/SSE state and jumps to execute (rcx). sregs only change after a fault in ring 0. */
    bool sregs_via_run = vm->need_sregs && g_sync_regs && g_sync_sregs;
    if (vm->need_sregs && !sregs_via_run && ioctl(vm->cpufd, KVM_SET_SREGS, &vm->sregs) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot reset the vCPU: %s", strerror(errno));
        vm->broken = true;
        return ASPEN_VM_EKVM;
    }
    if (sregs_via_run)
        vm->run->s.regs.sregs = vm->sregs;
    vm->need_sregs = false;
    struct kvm_regs *regs = &vm->run->s.regs.regs, local;
    if (!g_sync_regs)
        regs = &local;
    set_run_regs(regs, SYS_GVA + SYS_TRAMP_OFF, vm->stack_hi - 8, vm->block_gva, in_gva, in_len);
    regs->rcx = vm->img->execute;
    if (g_sync_regs) {
        vm->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | (sregs_via_run ? KVM_SYNC_X86_SREGS : 0);
    } else if (ioctl(vm->cpufd, KVM_SET_REGS, regs) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot reset the vCPU: %s", strerror(errno));
        vm->broken = true;
        return ASPEN_VM_EKVM;
    }

    struct run_ctx c = {.deadline = t0 + (uint64_t)timeout * 1000000ull, .cancel = opts->cancel,
                        .res = res, .on_log = opts->on_log, .log_user = opts->log_user};
    enum ev ev = run_guarded(vm, &c);
    switch (ev) {
    case EV_DONE:
        finish_done(vm, res);
        break;
    case EV_FAULT:
        res->outcome = ASPEN_VM_FAULT;
        describe_fault(vm, res);
        vm->need_sregs = true;
        break;
    case EV_ILLEGAL:
        res->outcome = ASPEN_VM_ILLEGAL_CALL;
        if (strncmp(res->message, "illegal host call", 17) != 0) {
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
        snprintf(res->message, sizeof res->message, "cancelled while running");
        break;
    case EV_READY:
    case EV_CRASH:
    case EV_ERROR:
        res->outcome = ASPEN_VM_CRASHED;
        vm->broken = true;
        break;
    }
    uint64_t t1 = now_ns();
    res->stats.wall_ns = t1 - t0;
    vm->runs++;
    vm->used = true;
    if (vm->warm && !vm->broken) {
        if (restore(vm, in_gva, in_len, &res->stats.pages_dirtied) != 0) {
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
}

static size_t resident(const void *addr, size_t len)
{
    if (!addr || !len)
        return 0;
    size_t pages = (len + PAGE - 1) / PAGE, n = 0;
    unsigned char vec[4096];
    for (size_t off = 0; off < pages; off += sizeof vec) {
        size_t chunk = pages - off < sizeof vec ? pages - off : sizeof vec;
        size_t bytes = chunk * PAGE;
        if (off * PAGE + bytes > len)
            bytes = len - off * PAGE;
        if (mincore((uint8_t *)addr + off * PAGE, bytes, vec) != 0)
            return 0;
        for (size_t i = 0; i < chunk; i++)
            n += vec[i] & 1;
    }
    return n * PAGE;
}

void aspen_vm_get_stats(const aspen_vm *vm, aspen_vm_stats *st)
{
    memset(st, 0, sizeof *st);
    st->memory_bytes = vm->cfg.memory_bytes;
    st->memory_touched = resident(vm->umem, vm->hot_size + vm->cold_size) +
                         resident(vm->code, vm->img->ro_size);
    st->host_overhead = resident(vm->sys, vm->sys_size) + (vm->hot_snap ? vm->hot_size : 0) +
                        vm->ncold_snap * (PAGE + sizeof(struct snap_page)) +
                        vm->bitmap_words * 8 + vm->dirty_cap * sizeof *vm->dirty +
                        (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn) + vm->run_size +
                        sizeof *vm;
    st->cold_start_ns = vm->cold_start_ns;
    st->runs = vm->runs;
    st->last_pages_dirtied = vm->last_dirty;
}

const aspen_vm_image *aspen_vm_get_image(const aspen_vm *vm) { return vm->img; }
