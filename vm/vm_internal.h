/* vm/vm_internal.h — structures shared by the monitor's source files. Not included outside vm/.
 *
 * The monitor is split by concern, after the shape of Solo5's hvt tender:
 *   image.c     ELF loading and validation            host.c      host-function registry, built-ins
 *   kvm.c       the KVM device, VM and vCPU setup     cpu.c       page tables, GDT/IDT/TSS, sregs
 *   vm.c        create/destroy, memory layout, guest memory access, stats
 *   run.c       start-up and job runs: the run loop and its exits, results
 *   hostcall.c  host-call dispatch                     deadline.c  timers and interrupts (kicks)
 *   snapshot.c  dirty tracking, snapshot, restore     fault.c     fault reports
 *   stub.S      guest code carried by the host: the ring-0 fault stub and the job trampoline
 *   x86.h       CPU bits and the system-region layout, shared by the C and the assembly */
#ifndef ASPEN_VM_INTERNAL_H
#define ASPEN_VM_INTERNAL_H

#include "abi.h"
#include "aspen_vm.h"
#include "x86.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

#define PAGE ((uint64_t)ASPEN_PAGE_SIZE)
#define PAGE_DOWN(x) ((uint64_t)(x) & ~(PAGE - 1))
#define PAGE_UP(x) (((uint64_t)(x) + PAGE - 1) & ~(PAGE - 1))

#define SEG_R 4u
#define SEG_W 2u
#define SEG_X 1u
#define IMAGE_MAX_SEGS 16

/* One PT_LOAD segment, page-rounded. Read-only segments live in the image's shared memfd at
 * ro_offset; writable ones keep a private copy (data) that each VM copies into its own memory. */
struct image_seg {
    uint64_t gva;  /* page-aligned start */
    uint64_t size; /* page-rounded size */
    uint32_t prot; /* SEG_R | SEG_W | SEG_X */
    uint64_t ro_offset;
    uint8_t *data;     /* writable segments only: size bytes */
    uint64_t file_off; /* where the segment's file bytes are, while loading */
    uint64_t file_len;
    uint64_t page_off; /* offset of p_vaddr within its first page */
};

struct aspen_vm_image {
    atomic_int refs;
    char name[128];
    size_t file_size;
    uint64_t entry;
    uint64_t execute;
    int nseg;
    struct image_seg seg[IMAGE_MAX_SEGS]; /* sorted by gva */
    uint64_t lo, hi;                      /* page-aligned span of all segments */
    int ro_fd;                            /* memfd with every read-only segment, back to back */
    const uint8_t *ro_map;                /* a read-only view of it (copied by one-shot VMs) */
    bool linux_abi;                       /* no Aspen ABI note: a static Linux program (linux.c) */
    uint64_t phdr;                        /* its program headers' address in memory, or 0 */
    uint32_t phnum;
    size_t ro_size;
    size_t rw_size;
};

/* Host function registry. */
struct host_entry {
    uint32_t number;
    char name[ASPEN_MAX_NAME];
    char signature[96];
    aspen_vm_hostfn fn;
    void *user;
};
#define HOST_MAX_ENTRIES 64
struct aspen_vm_host {
    int n;
    atomic_bool frozen;
    struct host_entry e[HOST_MAX_ENTRIES];
};

/* What a host function sees of the run that called it. */
struct aspen_vm_call {
    aspen_vm *vm;
    const struct host_entry *entry;
    uint64_t args[ASPEN_CALL_MAX_ARGS];
    int64_t ret;
    bool illegal;
    char *illegal_msg; /* points into the run's result message */
    size_t illegal_cap;
    aspen_vm_log_fn on_log;
    void *log_user;
    uint32_t *log_lines;
};

/* ---- Static Linux programs (linux.c) -----------------------------------------------------------
 * What a job of a Linux program may change besides memory and registers: the program break, the
 * anonymous mappings, the FS/GS base it asked for, which standard streams it closed. A copy taken
 * at the snapshot is put back before every job. */
#define LX_MAX_MAPS 65530 /* Linux's default vm.max_map_count */
struct lx_map {
    uint64_t start, end; /* page-aligned, [start, end) */
};
struct lx_state {
    uint64_t brk;
    uint64_t fs_base, gs_base;
    uint32_t closed; /* bit n: fd n (0-2) was closed */
    int nmaps, cap;
    struct lx_map *maps; /* sorted by start, disjoint, not touching; cap entries allocated */
};
/* One run of a Linux program: stdin, stdout, the stderr line being assembled, how it ended. */
struct lx_run {
    const uint8_t *in;
    uint64_t in_len, in_pos;
    uint8_t *out;
    uint64_t out_len, out_cap;
    char err[ASPEN_MAX_LOG_LINE];
    size_t err_len;
    char last_err[240]; /* the last stderr line, quoted in a failure's message */
    enum { LX_RUNNING, LX_EXITED, LX_SIGNALLED, LX_TOO_LARGE, LX_NOMEM } end;
    int status;
};

/* ---- One VM ------------------------------------------------------------------------------------ */
_Static_assert(SYS_PORT_FAULT == ASPEN_PORT_FAULT, "vm/x86.h and vm/include/abi.h agree on the fault port");

#define GPA_SYS 0x100000ull /* guest-physical address of the system region (slot 0) */

#define HOT_IMAGE_MAX (64u * 1024u) /* writable image pages restored by memcpy up to this size */
#define STACK_HOT (16u * 1024u)
#define HEAP_HOT (16u * 1024u)
#define MESSAGE_MAX ASPEN_MAX_MESSAGE
/* Unmapped gap below the stack: wide enough that a large stack frame cannot jump over it into the
 * image's data (virtual space only; it costs no memory). */
#define STACK_GUARD (64u * 1024u)

extern const uint8_t aspen_stub_start[], aspen_stub_end[], aspen_tramp_start[], aspen_tramp_end[];
extern const uint8_t aspen_tramp_pkru[], aspen_tramp_pkru_end[], aspen_tramp_xsave[],
    aspen_tramp_xsave_end[], aspen_tramp_fxsave[], aspen_tramp_fxsave_end[], aspen_tramp_fsgs[],
    aspen_tramp_fsgs_end[], aspen_probe[], aspen_tramp_syscall[], aspen_tramp_syscall_out[],
    aspen_tramp_lx[],
    aspen_tramp_lx_end[];

/* A guest-virtual range and where it lives: host address, guest-physical address, memory slot. */
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
    aspen_vm_tape *tape; /* this run's record or replay (tape.c); NULL outside a run */
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
    bool pending_io; /* the last run ended on an exit KVM expects completed (an IN) */
    bool used;   /* a non-warm VM has run its job */
    bool broken; /* crashed: unusable */

    /* a Linux program (img->linux_abi): the system-call layer's state, linux.c */
    struct lx_state *lx, *lx_snap;
    struct kvm_regs lx_regs; /* at the system call start-up stopped on (rip: the return address) */
    struct lx_run *lxr;      /* the run in progress */
    uint64_t lx_entry_rip;   /* where the OUT of the syscall entry is, as KVM may report it */
    bool lx_cpl3_seen;       /* a system call arrived at CPL 3: the entry's fast paths may run */

    /* interrupt */
    pthread_mutex_t kick_lock;
    bool running;
    pthread_t thread;
    atomic_int interrupt_req;

    struct aspen_vm_gdb *dbg; /* the debugger, when cfg.gdb is set (gdb_vm.c) */

    /* stats */
    uint64_t cold_start_ns;
    uint64_t runs;
    uint32_t last_dirty;
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* kvm.c: what this process's KVM offers, filled once by vm_kvm_open. */
struct vm_kvm {
    int fd;
    int run_size;
    bool readonly_mem;
    bool sync_regs;  /* KVM_CAP_SYNC_REGS: registers through the run page */
    bool sync_sregs; /* ... and segment/control registers too */
    int ring_max;    /* KVM_CAP_DIRTY_LOG_RING: largest ring in bytes, or 0 */
    bool sync_events; /* ... and vCPU events (pending exceptions, NMIs, interrupt shadow) */
    /* The CPU the vCPU is given: KVM's supported CPUID, and the CR4 bits and XCR0 that enable
     * what it lists (XSAVE and its components, FSGSBASE, protection keys). */
    struct kvm_cpuid2 *cpuid;
    uint64_t cr4_extra;
    uint64_t xcr0;
    /* What guest code at CPL 3 can really use (TRAMP_HAS_*), measured by the trampoline's probe
     * in the first VM of the process; -1 until then. */
    atomic_int cpl3;
};
extern struct vm_kvm vm_kvm;
int vm_kvm_open(aspen_vm_error *err);
/* The VM, its memory slots and its vCPU, for a VM whose memory is laid out (vm.c). */
int vm_kvm_setup(aspen_vm *vm, aspen_vm_error *err);
/* ioctl() retried while it fails with EINTR: the thread's deadline timer stays armed between runs
 * (deadline.c) and its signal must not fail a VM creation or setup call. Not for KVM_RUN. */
int vm_ioctl(int fd, unsigned long req, void *arg);

/* cpu.c: the system region, page tables and the vCPU's registers. */
void vm_build_system(aspen_vm *vm);
int vm_map_page(aspen_vm *vm, uint64_t gva, uint64_t gpa, uint64_t flags);
void vm_init_sregs(aspen_vm *vm, struct kvm_sregs *sr);
void vm_set_run_regs(struct kvm_regs *r, uint64_t rip, uint64_t rsp, uint64_t rdi, uint64_t rsi,
                     uint64_t rdx);
/* vCPU events with nothing pending: no exception, interrupt or NMI, no interrupt shadow. */
void vm_clear_events(struct kvm_vcpu_events *e);
/* Shape the job trampoline for what CPL 3 can use (features: TRAMP_HAS_*). */
void vm_tramp_prepare(aspen_vm *vm, int features);
/* Is a guest address inside the host's own pages (trampoline, stub)? A fault there means the VM's
 * state is no longer what the host set up: the VM is discarded. */
bool vm_gva_is_host(uint64_t gva);

/* vm.c: guest memory access with every address checked. */
const struct region *vm_region_of(const aspen_vm *vm, uint64_t gva);
int vm_guest_copy_out(const aspen_vm *vm, uint64_t gva, uint64_t len, void *dst);
int vm_guest_copy_in(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len);

/* run.c */
enum ev { EV_READY, EV_DONE, EV_FAULT, EV_ILLEGAL, EV_TIMEOUT, EV_CANCEL, EV_CRASH, EV_ERROR };

struct run_ctx {
    uint64_t deadline;
    const int *cancel;
    aspen_vm_result *res;
    aspen_vm_log_fn on_log;
    void *log_user;
    bool startup;
    size_t core_max; /* keep an ELF core of a failed run (core.c) */
};
/* Enter _start and run it to its ready point; snapshot there if warm. */
int vm_startup(aspen_vm *vm, aspen_vm_error *err);

/* hostcall.c: one host call (function fn, arguments in the call block); -1 when illegal. */
int vm_hostcall(aspen_vm *vm, uint32_t fn, struct run_ctx *c);

/* tape.c: recording and replaying a run's host calls (docs/ABI.md, "Deterministic replay").
 * Called only while vm->tape is set. begin: a call starts (code: host function number, or
 * VM_TAPE_LX_CODE | system call number); true when a registered function must not be called
 * again but replayed (vm_tape_replay_extra). read: guest bytes the host read for the call.
 * int/clock/bytes: a value the host makes up (recorded, or taken from the record). */
#define VM_TAPE_LX_CODE 0x100000u
/* linux.c: a system call's name ("clock_gettime"), "unknown" for a number it does not know. */
const char *vm_lx_sys_name(uint64_t nr);
bool vm_tape_begin(aspen_vm *vm, uint32_t code, const char *name, const uint64_t *args,
                   size_t nargs, bool digest_reads);
void vm_tape_read(const aspen_vm *vm, const void *bytes, size_t len);
int64_t vm_tape_int(aspen_vm *vm, int64_t live);
void vm_tape_clock(aspen_vm *vm, clockid_t clk, struct timespec *ts);
void vm_tape_bytes(aspen_vm *vm, void *buf, size_t n, bool *replayed);
int vm_tape_replay_extra(aspen_vm *vm, int64_t *ret);
void vm_tape_end(aspen_vm *vm);
void vm_tape_run_end(aspen_vm *vm); /* detaches the tape; a replay checks nothing was left */

/* deadline.c: per-thread deadline timer and the kick signal that stops KVM_RUN. */
int vm_thread_prepare(aspen_vm_error *err);
void vm_timer_ensure(uint64_t now, uint64_t deadline_ns);
void vm_kick_target(struct kvm_run *run); /* the run page a kick on this thread stops; NULL: none */
int vm_kick_signal(void); /* the kick's signal number (the debugger's socket raises it, gdb_vm.c) */

/* snapshot.c */
int vm_take_snapshot(aspen_vm *vm, aspen_vm_error *err);
int vm_restore(aspen_vm *vm, uint64_t in_gva, uint64_t in_len, uint32_t *dirtied);
int vm_ring_harvest(aspen_vm *vm);

/* linux.c: static Linux programs. */
enum lx_rc { LX_CONTINUE = 0, LX_READY = 1, LX_END = 2, LX_ILLEGAL = -1 };
int vm_lx_init(aspen_vm *vm, aspen_vm_error *err);   /* state, initial stack; before start-up */
void vm_lx_free(aspen_vm *vm);
bool vm_lx_is_syscall_exit(const aspen_vm *vm);       /* this OUT came from the syscall entry */
int vm_lx_syscall(aspen_vm *vm, struct run_ctx *c);   /* one system call at a syscall exit */
int vm_lx_capture(aspen_vm *vm, aspen_vm_error *err); /* at the start-up stop: registers, FPU */
/* Before a job: state from the snapshot, the pending system call performed for this job.
 * LX_CONTINUE: enter the guest with *regs; LX_END: the job already ended (e.g. exit). */
int vm_lx_begin(aspen_vm *vm, struct run_ctx *c, const void *in, size_t in_len,
                struct kvm_regs *regs);
void vm_lx_finish(aspen_vm *vm, aspen_vm_result *res, enum ev ev);
void vm_lx_end_run(aspen_vm *vm, struct run_ctx *c); /* after every run: the partial stderr line */
/* kvm.c: one MSR of the vCPU. */
int vm_set_msr(aspen_vm *vm, uint32_t index, uint64_t value);
/* snapshot.c: the host wrote [gva, gva+len) of guest memory during a run: restore it afterwards. */
int vm_note_host_write(aspen_vm *vm, uint64_t gva, uint64_t len);

/* gdb_vm.c: the debugger's hooks (vm/gdb.h has the rest). attach: at start-up, when cfg.gdb is
 * set; entry: stopped at the guest's first instruction; job_entry: a step pending from start-up
 * goes on into the job; trap: a fault report while debugging becomes a stop (-1: resume the run,
 * otherwise how the run ends). */
struct aspen_vm_gdb;
int vm_gdb_attach(aspen_vm *vm, aspen_vm_error *err);
int vm_gdb_entry(aspen_vm *vm);
void vm_gdb_job_entry(aspen_vm *vm, struct kvm_regs *regs);
int vm_gdb_trap(aspen_vm *vm, struct run_ctx *c);
/* poll: KVM_RUN was interrupted; a ^C from gdb becomes a SIGINT stop (-1: go on as before). */
int vm_gdb_poll(aspen_vm *vm, struct run_ctx *c);
bool vm_gdb_killed(const aspen_vm *vm); /* the run ended because gdb killed it */
/* after_call: a host call (or a Linux program's system call: lx) was served; a single step
 * that made it stops right after it (-1: go on as before). */
int vm_gdb_after_call(aspen_vm *vm, struct run_ctx *c, bool lx);

/* core.c: an ELF core of the guest as the run left it, into res->core (at most max bytes). */
void vm_core_capture(aspen_vm *vm, aspen_vm_result *res, size_t max);

/* fault.c: fill res->fault and res->message from the fault block. */
void vm_describe_fault(aspen_vm *vm, aspen_vm_result *res);

/* host.c */
const struct host_entry *host_find(const aspen_vm_host *host, uint32_t number);
void host_freeze(aspen_vm_host *host);
aspen_vm_host *host_builtin(void); /* process-wide registry with the built-ins only */
/* Deliver text as log lines: split at '\n', control bytes replaced, long lines cut. */
void host_emit_log(aspen_vm_log_fn fn, void *user, const char *text, size_t len, bool truncated,
                   uint32_t *lines);

void vm_set_error(aspen_vm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
