/* tests/vm/guests/leak — a hostile guest that tries to pass state from one job to the next on the
 * same warm VM. Input "plant:CHANNEL" leaves a marked value in one channel and ends the job with
 * that state live; input "probe:CHANNEL" reports what the channel holds when a job starts. The VM
 * and engine tests compare a probe after a plant with the same probe on a fresh VM: they must match
 * (docs/ABI.md, "Isolation"). The input may be wrapped in double quotes (a JSON string, which is
 * what the engine accepts as a payload).
 *
 * This guest does not use the SDK's entry code: its own `execute` records every general register,
 * RFLAGS and the segment selectors as its very first instructions, and all of its C code is
 * compiled for general registers only, so no x87, SSE or AVX register changes between the host's
 * trampoline and the probe. It still links with scripts/build-guest.sh (the SDK library is on the
 * link line, but nothing here pulls it in).
 *
 * Channels: regs (GPRs, RFLAGS incl. DF/AC), tf (single-step flag), x87, mmx, sse, mxcsr, avx (YMM
 * upper halves), xsave (the whole XSAVE image XCR0 enables), pkru, pkru-poison (PKRU = 1, which
 * denies every data access), fsgs (FS/GS base), seg (DS/ES/FS/GS selectors), mem (stack deep and
 * top, heap, data, bss, call block, input and beyond), io channels (in, in8, ins, outs, out1: an
 * illegal port access whose completion KVM still holds — a job that resumes after it prints
 * "HIJACKED"), shadow (a mov-ss interrupt shadow at the exit), dr (debug registers: #GP), and
 * spin-avx / fault-avx (AVX state left by a timed-out or faulted job). Input "input:..." carries the
 * mark itself (host-written memory the guest never writes) and reports probe:mem's scan of it.
 */
#pragma GCC target("general-regs-only")

#include <stddef.h>
#include <stdint.h>

#include "../../../../vm/include/abi.h"

#define PAT 0x4b41454c2d4e5041ull /* "APN-LEAK" */

/* ---- Entry points --------------------------------------------------------------------------- */
struct entry_state {
    uint64_t gpr[16]; /* rax rbx rcx rdx rsi rdi rbp rsp r8..r15 */
    uint64_t rflags;
    uint64_t seg[6]; /* ds es fs gs ss cs */
};
struct entry_state g_entry;
struct entry_state g_start; /* the same at _start, kept by the snapshot */
struct aspen_abi_block *g_block; /* set at start-up, so it is in the snapshot */

__asm__(".section .text.aspen_entry, \"ax\", @progbits\n"
        ".globl _start\n"
        "_start:\n"
        "    movq %rax, g_start+0(%rip)\n"
        "    movq %rbx, g_start+8(%rip)\n"
        "    movq %rcx, g_start+16(%rip)\n"
        "    movq %rdx, g_start+24(%rip)\n"
        "    movq %rsi, g_start+32(%rip)\n"
        "    movq %rdi, g_start+40(%rip)\n"
        "    movq %rbp, g_start+48(%rip)\n"
        "    movq %rsp, g_start+56(%rip)\n"
        "    movq %r8, g_start+64(%rip)\n"
        "    movq %r9, g_start+72(%rip)\n"
        "    movq %r10, g_start+80(%rip)\n"
        "    movq %r11, g_start+88(%rip)\n"
        "    movq %r12, g_start+96(%rip)\n"
        "    movq %r13, g_start+104(%rip)\n"
        "    movq %r14, g_start+112(%rip)\n"
        "    movq %r15, g_start+120(%rip)\n"
        "    pushfq\n"
        "    popq g_start+128(%rip)\n"
        "    movw %ds, g_start+136(%rip)\n"
        "    movw %es, g_start+144(%rip)\n"
        "    movw %fs, g_start+152(%rip)\n"
        "    movw %gs, g_start+160(%rip)\n"
        "    movw %ss, g_start+168(%rip)\n"
        "    movw %cs, g_start+176(%rip)\n"
        "    movq %rdi, g_block(%rip)\n"
        "    call leak_start_state\n"
        "    movl $1, %eax\n"
        "1:  outl %eax, $0xa4\n"
        "    jmp 1b\n"
        ".globl execute\n"
        "execute:\n"
        "    movq %rax, g_entry+0(%rip)\n"
        "    movq %rbx, g_entry+8(%rip)\n"
        "    movq %rcx, g_entry+16(%rip)\n"
        "    movq %rdx, g_entry+24(%rip)\n"
        "    movq %rsi, g_entry+32(%rip)\n"
        "    movq %rdi, g_entry+40(%rip)\n"
        "    movq %rbp, g_entry+48(%rip)\n"
        "    movq %rsp, g_entry+56(%rip)\n"
        "    movq %r8, g_entry+64(%rip)\n"
        "    movq %r9, g_entry+72(%rip)\n"
        "    movq %r10, g_entry+80(%rip)\n"
        "    movq %r11, g_entry+88(%rip)\n"
        "    movq %r12, g_entry+96(%rip)\n"
        "    movq %r13, g_entry+104(%rip)\n"
        "    movq %r14, g_entry+112(%rip)\n"
        "    movq %r15, g_entry+120(%rip)\n"
        "    pushfq\n"
        "    popq g_entry+128(%rip)\n"
        "    movw %ds, g_entry+136(%rip)\n"
        "    movw %es, g_entry+144(%rip)\n"
        "    movw %fs, g_entry+152(%rip)\n"
        "    movw %gs, g_entry+160(%rip)\n"
        "    movw %ss, g_entry+168(%rip)\n"
        "    movw %cs, g_entry+176(%rip)\n"
        "    cld\n"
        "    andq $-16, %rsp\n"
        "    call leak_main\n"
        "    ud2\n"
        ".text\n");

/* The ABI note naming execute (docs/ABI.md section 2). */
__asm__(".section .note.aspen, \"a\", @note\n"
        ".balign 4\n"
        ".long 6, 16, 0x31505341\n"
        ".asciz \"Aspen\"\n"
        ".balign 4\n"
        ".long 1, 0\n"
        ".quad execute\n"
        ".text\n");

/* ---- Small helpers (no libc) ----------------------------------------------------------------- */
static char g_out[16384];
static size_t g_outn;

static void put(const char *s)
{
    while (*s && g_outn < sizeof g_out)
        g_out[g_outn++] = *s++;
}

static void put_hex(uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0 && g_outn < sizeof g_out; i--)
        g_out[g_outn++] = hx[(v >> (4 * i)) & 15];
}

static void put_kv(const char *k, uint64_t v)
{
    put(k);
    put("=");
    put_hex(v, 16);
    put(" ");
}

static void put_bytes(const char *k, const volatile uint8_t *p, size_t n)
{
    put(k);
    put("=");
    for (size_t i = 0; i < n; i++)
        put_hex(p[i], 2);
    put(" ");
}

static int starts(const uint8_t *in, size_t len, const char *w, const uint8_t **rest, size_t *rn)
{
    size_t n = 0;
    while (w[n])
        n++;
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (in[i] != (uint8_t)w[i])
            return 0;
    *rest = in + n;
    *rn = len - n;
    return 1;
}

static int is(const uint8_t *p, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n && w[i]; i++)
        if (p[i] != (uint8_t)w[i])
            return 0;
    return i == n && !w[i];
}

static void done_raw(void)
{
    for (;;)
        __asm__ volatile("outl %0, $0xa4" : : "a"((uint32_t)ASPEN_EXIT_DONE) : "memory");
}

/* Fill the call block with a successful result (what we printed) and end the job. */
__attribute__((noreturn)) static void finish(void)
{
    struct aspen_abi_block *b = g_block;
    b->status = ASPEN_STATUS_OK;
    b->output_ptr = (uint64_t)(uintptr_t)g_out;
    b->output_len = g_outn;
    b->message_len = 0;
    done_raw();
    __builtin_unreachable();
}

/* Set up the result of a plant job; the plant then ends the job itself with its state live. */
static void planted(void)
{
    g_outn = 0;
    put("planted");
    struct aspen_abi_block *b = g_block;
    b->status = ASPEN_STATUS_OK;
    b->output_ptr = (uint64_t)(uintptr_t)g_out;
    b->output_len = g_outn;
    b->message_len = 0;
}

/* Reached only if the vCPU resumes a previous job's code after an illegal port access. */
__attribute__((noreturn, used)) void hijacked(void)
{
    g_outn = 0;
    put("HIJACKED input=");
    struct aspen_abi_block *b = g_block;
    const uint8_t *in = (const uint8_t *)(uintptr_t)b->input_ptr;
    for (uint64_t i = 0; i < b->input_len && i < 64; i++)
        put_hex(in[i], 2);
    finish();
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static int has_osxsave(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    return (r[2] >> 27) & 1;
}

static int has_avx(void);

/* XCR0 by xgetbv, tried whenever the CPU model has AVX even if CPUID says the OS did not enable
 * XSAVE: on nested kvm_pvm on Intel CPUID showed CPL 3 no OSXSAVE while xgetbv and AVX worked, and
 * a hostile guest does not ask first. */
static uint64_t xcr0(void)
{
    if (!has_osxsave() && !has_avx())
        return 0;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* The CPU model has AVX (CPUID.1:ECX[28]); whether it works at CPL 3 is the hardware's answer, not
 * OSXSAVE's or XCR0's as CPUID shows them (see xcr0): the plants use it whenever the model has it. */
static int has_avx(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    return (r[2] >> 28) & 1;
}

static int has_pku(void)
{
    uint32_t r[4];
    cpuid(7, 0, r);
    return (r[2] >> 4) & 1; /* OSPKE: CR4.PKE is set */
}

static int has_fsgsbase(void)
{
    uint32_t r[4];
    cpuid(7, 0, r);
    return r[1] & 1;
}

/* ---- Probes ---------------------------------------------------------------------------------- */
/* The rest of the state at _start, recorded before READY (kept by the snapshot). */
static char g_start_state[512];

static void probe_fpu(void);
static void probe_pkru(void);
static void probe_fsgs(void);

__attribute__((used)) void leak_start_state(void)
{
    g_outn = 0;
    probe_pkru();
    probe_fsgs();
    probe_fpu();
    size_t n = g_outn < 64 + 96 ? g_outn : 64 + 96; /* pkru, bases, FCW..MXCSR */
    for (size_t i = 0; i < n; i++)
        g_start_state[i] = g_out[i];
    g_outn = 0;
}

static uint64_t host_time_ns(void)
{
    struct aspen_abi_block *b = g_block;
    b->call_fn = ASPEN_FN_GET_TIME_NS;
    for (unsigned i = 0; i < ASPEN_CALL_MAX_ARGS; i++)
        b->call_args[i] = 0;
    __asm__ volatile("outl %0, $0xa0" : : "a"((uint32_t)ASPEN_FN_GET_TIME_NS) : "memory");
    return (uint64_t)*(volatile int64_t *)&b->call_ret;
}

/* What the host's job trampoline costs natively: the guest calls it (it is user-executable,
 * read-only) 100,000 times in a row, each time with rcx = where to come back, and reports the
 * time per pass (docs/BENCHMARKS.md). */
static void probe_tramp_cost(void)
{
    enum { N = 100000 };
    uint64_t t0 = host_time_ns();
    __asm__ volatile("movl %0, %%r11d\n"
                     "1: leaq 2f(%%rip), %%rcx\n"
                     "   movabsq $0xffffffff80005000, %%rax\n"
                     "   jmp *%%rax\n"
                     "2: decl %%r11d\n"
                     "   jnz 1b\n"
                     :
                     : "i"(N)
                     : "rax", "rcx", "rdx", "r8", "r9", "r11", "memory");
    uint64_t t1 = host_time_ns();
    put_kv("tramp_ps", (t1 - t0) * 1000 / N);
}

/* The CPU contract (docs/ABI.md section 4): each instruction CPUID says the CPU has, executed at
 * CPL 3 ("ok"; a fault would end the job), or "absent" when CPUID does not list it. */
static void probe_cpu(void)
{
    uint32_t r1[4], r7[4], rx[4], lo, hi, aux;
    cpuid(1, 0, r1);
    cpuid(7, 0, r7);
    cpuid(0x80000001, 0, rx);
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    put("rdtsc=ok ");
    if (rx[3] & (1u << 27)) {
        __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
        put("rdtscp=ok ");
    } else {
        put("rdtscp=absent ");
    }
    if (r7[2] & (1u << 22)) {
        uint64_t v;
        __asm__ volatile("rdpid %0" : "=r"(v));
        put("rdpid=ok ");
    } else {
        put("rdpid=absent ");
    }
    if (r1[2] & (1u << 30)) {
        uint64_t v;
        unsigned char okb;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(okb));
        put("rdrand=ok ");
    } else {
        put("rdrand=absent ");
    }
    if (r7[1] & (1u << 18)) {
        uint64_t v;
        unsigned char okb;
        __asm__ volatile("rdseed %0; setc %1" : "=r"(v), "=qm"(okb));
        put("rdseed=ok ");
    } else {
        put("rdseed=absent ");
    }
    if (has_avx() && (r7[1] & (1u << 5))) {
        __asm__ volatile("vpxor %%ymm1, %%ymm1, %%ymm1\n vpaddd %%ymm1, %%ymm1, %%ymm2\n vzeroupper"
                         :
                         :
                         : "memory");
        put("avx2=ok ");
    } else {
        put("avx2=absent ");
    }
    if (has_fsgsbase()) {
        uint64_t v;
        __asm__ volatile("wrfsbase %1\n rdfsbase %0\n wrfsbase %2" : "=&r"(v) : "r"(0x1000ull), "r"(0ull));
        put(v == 0x1000 ? "fsgsbase=ok " : "fsgsbase=broken ");
    } else {
        put("fsgsbase=absent ");
    }
    if (has_pku()) {
        uint32_t v;
        __asm__ volatile("wrpkru" : : "a"(0xcu), "c"(0), "d"(0) : "memory");
        __asm__ volatile("rdpkru" : "=a"(v) : "c"(0) : "rdx");
        __asm__ volatile("wrpkru" : : "a"(0u), "c"(0), "d"(0) : "memory");
        put(v == 0xc ? "pkru=ok " : "pkru=broken ");
    } else {
        put("pkru=absent ");
    }
    put_kv("xcr0", xcr0());
}

/* What the CPU tells a guest: CPUID leaves 0, 1, 7 and 0xd, XCR0, and the cost of one cpuid. */
static void probe_cpuid(void)
{
    static const uint32_t leaves[][2] = {{0, 0}, {1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x40000000, 0}};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        uint32_t r[4];
        cpuid(leaves[i][0], leaves[i][1], r);
        put_hex(leaves[i][0], 8);
        put(".");
        put_hex(leaves[i][1], 1);
        put("=");
        for (int k = 0; k < 4; k++) {
            put_hex(r[k], 8);
            put(k < 3 ? ":" : " ");
        }
    }
    put_kv("xcr0", xcr0());
    uint32_t lo0, hi0, lo1, hi1, r[4];
    __asm__ volatile("rdtsc" : "=a"(lo0), "=d"(hi0));
    cpuid(1, 0, r);
    __asm__ volatile("rdtsc" : "=a"(lo1), "=d"(hi1));
    put_kv("cpuid_cycles", ((uint64_t)hi1 << 32 | lo1) - ((uint64_t)hi0 << 32 | lo0));
}

static uint8_t g_xsave[8192] __attribute__((aligned(64)));

static void probe_regs_of(const struct entry_state *e)
{
    static const char *names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
    static const char *segs[6] = {"ds", "es", "fs", "gs", "ss", "cs"};
    for (int i = 0; i < 16; i++)
        put_kv(names[i], e->gpr[i]);
    put_kv("rflags", e->rflags);
    for (int i = 0; i < 6; i++)
        put_kv(segs[i], e->seg[i]);
}

static void probe_regs(void)
{
    static const char *names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
    for (int i = 0; i < 16; i++)
        put_kv(names[i], g_entry.gpr[i]);
    put_kv("rflags", g_entry.rflags);
}

static void probe_fpu(void)
{
    for (size_t i = 0; i < 512; i++)
        g_xsave[i] = 0;
    __asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[512])g_xsave));
    put_bytes("x87", g_xsave, 160); /* FCW FSW FTW FOP FIP FDP MXCSR MXCSR_MASK ST0-7 */
    put_bytes("xmm", g_xsave + 160, 256);
}

static void probe_avx(void)
{
    if (!has_avx()) {
        put("avx=unsupported");
        return;
    }
    static uint8_t hi[16 * 16] __attribute__((aligned(16)));
#define HI(n) __asm__ volatile("vextractf128 $1, %%ymm" #n ", %0" : "=m"(*(uint8_t(*)[16])(hi + 16 * n)))
    HI(0); HI(1); HI(2); HI(3); HI(4); HI(5); HI(6); HI(7);
    HI(8); HI(9); HI(10); HI(11); HI(12); HI(13); HI(14); HI(15);
#undef HI
    put_bytes("ymm_hi", hi, sizeof hi);
}

static void probe_xsave(void)
{
    uint64_t x = xcr0();
    put_kv("xcr0", x);
    if (!x)
        return;
    uint32_t r[4];
    cpuid(0xd, 0, r);
    uint32_t size = r[1]; /* bytes XSAVE writes for what XCR0 enables */
    if (size > sizeof g_xsave)
        size = sizeof g_xsave;
    for (size_t i = 0; i < sizeof g_xsave; i++)
        g_xsave[i] = 0;
    __asm__ volatile("xsave64 %0" : "+m"(*(uint8_t(*)[8192])g_xsave) : "a"(~0u), "d"(~0u));
    put_kv("size", size);
    /* The legacy area's bytes 464-511 are not part of the state; skip them. */
    put_bytes("legacy", g_xsave, 464);
    put_bytes("rest", g_xsave + 512, size - 512);
}

static void probe_pkru(void)
{
    if (!has_pku()) {
        put("pkru=unsupported ");
        return;
    }
    uint32_t v;
    __asm__ volatile("rdpkru" : "=a"(v) : "c"(0) : "rdx");
    put_kv("pkru", v);
}

static void probe_fsgs(void)
{
    if (!has_fsgsbase()) {
        put("fsgsbase=unsupported");
        return;
    }
    uint64_t fs, gs;
    __asm__ volatile("rdfsbase %0" : "=r"(fs));
    __asm__ volatile("rdgsbase %0" : "=r"(gs));
    put_kv("fsbase", fs);
    put_kv("gsbase", gs);
}

static void probe_seg(void)
{
    static const char *names[6] = {"ds", "es", "fs", "gs", "ss", "cs"};
    for (int i = 0; i < 6; i++)
        put_kv(names[i], g_entry.seg[i]);
}

/* Writable memory the guest can name: its own data and bss (two pages each, and the page
 * boundaries), stack, call block page, heap, the input and beyond. */
static volatile uint64_t g_data[1024] = {1};
static volatile uint64_t g_bss[1024];

static uint64_t g_hits, g_first;

static void scan(const volatile uint64_t *p, const volatile uint64_t *end)
{
    for (; p < end; p++)
        if (*p == PAT) {
            if (!g_hits)
                g_first = (uint64_t)(uintptr_t)p;
            g_hits++;
        }
}

static void fill(volatile uint64_t *p, volatile uint64_t *end)
{
    for (; p < end; p++)
        *p = PAT;
}

static uint64_t cur_sp(void)
{
    uint64_t sp;
    __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
    return sp;
}

#define U64P(a) ((volatile uint64_t *)(uintptr_t)(a))

static void probe_mem(void)
{
    struct aspen_abi_block *b = g_block;
    g_hits = g_first = 0;
    scan(g_data, g_data + 1024);
    scan(g_bss, g_bss + 1024);
    scan(U64P(b->stack_low), U64P((cur_sp() - 256) & ~7ull));
    scan(U64P(b), U64P((uint64_t)(uintptr_t)b + ASPEN_PAGE_SIZE));
    scan(U64P(b->heap_start), U64P(b->heap_end));
    put_kv("hits", g_hits);
    put_kv("first", g_first);
}

static void plant_mem(void)
{
    struct aspen_abi_block *b = g_block;
    fill(g_data, g_data + 1024);
    fill(g_bss, g_bss + 1024);
    fill(U64P(b->stack_low), U64P((cur_sp() - 256) & ~7ull));
    /* the call block: its reserved words, the host-call area, and the rest of its page */
    b->reserved0 = (uint32_t)PAT;
    b->reserved1 = (uint32_t)PAT;
    for (unsigned i = 0; i < ASPEN_CALL_MAX_ARGS; i++)
        b->call_args[i] = PAT;
    b->call_ret = (int64_t)PAT;
    fill(U64P((uint64_t)(uintptr_t)b + sizeof *b), U64P((uint64_t)(uintptr_t)b + ASPEN_PAGE_SIZE));
    /* the heap, the input itself and what lies beyond it */
    fill(U64P(b->heap_start), U64P(b->heap_end));
}

/* ---- Plants that end the job with their state live -------------------------------------------- */
static const uint64_t g_pat[16][4] __attribute__((aligned(32))) = {
    {PAT, PAT ^ 1, PAT ^ 2, PAT ^ 3},     {PAT ^ 4, PAT ^ 5, PAT ^ 6, PAT ^ 7},
    {PAT ^ 8, PAT ^ 9, PAT ^ 10, PAT ^ 11}, {PAT ^ 12, PAT ^ 13, PAT ^ 14, PAT ^ 15},
    {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT},
    {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT},
    {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT}, {PAT, PAT, PAT, PAT},
};
static const uint32_t g_mxcsr_odd = 0xffbf; /* all flags, FZ, round toward zero, DAZ clear */
static const uint16_t g_fcw_odd = 0x0c7f;   /* round toward zero, single precision */

#define DONE_ASM "movl $2, %%eax\n1: outl %%eax, $0xa4\njmp 1b\n"

__attribute__((noreturn)) static void plant_regs(void)
{
    /* Every GPR but rax (the DONE code) marked; RFLAGS with DF, AC and the arithmetic flags set. */
    uint64_t fl = 0x2 | 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | (1u << 18);
    __asm__ volatile("movq %0, %%r15\n"
                     "movabsq $0x4b41454c2d4e5041, %%rbx\n"
                     "movq %%rbx, %%rcx\n movq %%rbx, %%rdx\n movq %%rbx, %%rsi\n"
                     "movq %%rbx, %%rdi\n movq %%rbx, %%rbp\n movq %%rbx, %%r8\n"
                     "movq %%rbx, %%r9\n movq %%rbx, %%r10\n movq %%rbx, %%r11\n"
                     "movq %%rbx, %%r12\n movq %%rbx, %%r13\n movq %%rbx, %%r14\n"
                     "pushq %%r15\n popfq\n"
                     "movq %%rbx, %%r15\n movq %%rbx, %%rsp\n" DONE_ASM
                     :
                     : "r"(fl)
                     : "memory");
    __builtin_unreachable();
}

/* TF set by the instruction just before the DONE exit: the single-step trap is due right after
 * the OUT, which the host never resumes. */
__attribute__((noreturn)) static void plant_tf(void)
{
    __asm__ volatile("movl $2, %%eax\n pushq %0\n popfq\n outl %%eax, $0xa4\n 1: jmp 1b"
                     :
                     : "r"((uint64_t)0x102)
                     : "rax", "memory");
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_x87(void)
{
    __asm__ volatile("fninit\n fldcw %0\n"
                     "fildq %1\n fildq %1\n fildq %1\n fildq %1\n"
                     "fildq %1\n fildq %1\n fld1\n fldz\n"
                     "fdivr %%st(0), %%st(1)\n" /* 1/0, masked: ZE stays set in FSW */
                     DONE_ASM
                     :
                     : "m"(g_fcw_odd), "m"(g_pat[0][0])
                     : "memory");
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_mmx(void)
{
    __asm__ volatile("movq 0(%0), %%mm0\n movq 8(%0), %%mm1\n movq 16(%0), %%mm2\n"
                     "movq 24(%0), %%mm3\n movq 32(%0), %%mm4\n movq 40(%0), %%mm5\n"
                     "movq 48(%0), %%mm6\n movq 56(%0), %%mm7\n" DONE_ASM
                     :
                     : "r"(g_pat)
                     : "memory");
    __builtin_unreachable();
}

#define LOAD16(insn)                                                                               \
    insn " 0(%0), %%" R "0\n" insn " 32(%0), %%" R "1\n" insn " 64(%0), %%" R "2\n" insn            \
         " 96(%0), %%" R "3\n" insn " 128(%0), %%" R "4\n" insn " 160(%0), %%" R "5\n" insn         \
         " 192(%0), %%" R "6\n" insn " 224(%0), %%" R "7\n" insn " 256(%0), %%" R "8\n" insn        \
         " 288(%0), %%" R "9\n" insn " 320(%0), %%" R "10\n" insn " 352(%0), %%" R "11\n" insn      \
         " 384(%0), %%" R "12\n" insn " 416(%0), %%" R "13\n" insn " 448(%0), %%" R "14\n" insn     \
         " 480(%0), %%" R "15\n"

__attribute__((noreturn)) static void plant_sse(void)
{
#define R "xmm"
    __asm__ volatile(LOAD16("movdqa") DONE_ASM : : "r"(g_pat) : "memory");
#undef R
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_mxcsr(void)
{
    __asm__ volatile("ldmxcsr %0\n" DONE_ASM : : "m"(g_mxcsr_odd) : "memory");
    __builtin_unreachable();
}

#define R "ymm"
static void load_ymm(void) { __asm__ volatile(LOAD16("vmovdqa") : : "r"(g_pat) : "memory"); }
#undef R

__attribute__((noreturn)) static void plant_avx(void)
{
    load_ymm();
    __asm__ volatile(DONE_ASM : : : "memory"); /* no vzeroupper: the upper halves stay */
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_pkru(uint32_t v)
{
    /* After wrpkru with v = 1 no data access is allowed: the exit must follow at once. */
    __asm__ volatile("xorl %%ecx, %%ecx\n xorl %%edx, %%edx\n wrpkru\n" DONE_ASM
                     :
                     : "a"(v)
                     : "rcx", "rdx", "memory");
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_fsgs(void)
{
    __asm__ volatile("wrfsbase %0\n wrgsbase %1\n" DONE_ASM
                     :
                     : "r"(0x00005a5a5a5a5000ull), "r"(0x00004b4b4b4b4000ull)
                     : "memory");
    __builtin_unreachable();
}

__attribute__((noreturn)) static void plant_seg(void)
{
    /* Each of ds, es, fs and gs changed to a selector it did not hold: null if it held one, else
     * the stack's (always a loadable data segment at CPL 3). On bare-metal KVM the guest sees the
     * host's GDT selectors (0x23); on nested kvm_pvm, the outer kernel's (ds 0, ss 0x2b). */
#define FLIP(sr)                                                                                   \
    "mov %%" sr ", %%cx\n test %%cx, %%cx\n mov %%ss, %%dx\n jz 1f\n xorl %%edx, %%edx\n"           \
    "1: mov %%dx, %%" sr "\n"
    __asm__ volatile(FLIP("ds") FLIP("es") FLIP("fs") FLIP("gs")
                     "movl $2, %%eax\n outl %%eax, $0xa4\n 2: jmp 2b"
                     :
                     :
                     : "rax", "rcx", "rdx", "memory");
#undef FLIP
    __builtin_unreachable();
}

/* The port accesses a guest may not make, each followed by the code that would run if the host
 * let the vCPU resume here in a later job. */
__attribute__((noreturn)) static void plant_io(const uint8_t *w, size_t n)
{
    static uint32_t buf[8];
    if (is(w, n, "in"))
        __asm__ volatile("inl $0xa0, %%eax\n call hijacked" : : : "rax", "memory");
    else if (is(w, n, "in8"))
        __asm__ volatile("inb $0xa4, %%al\n call hijacked" : : : "rax", "memory");
    else if (is(w, n, "ins"))
        __asm__ volatile("movl $0xa0, %%edx\n movl $4, %%ecx\n rep insl\n call hijacked"
                         :
                         : "D"(buf)
                         : "rcx", "rdx", "memory");
    else if (is(w, n, "ins-huge")) /* more than KVM completes in one round */
        __asm__ volatile("movl $0xa0, %%edx\n movl $200000, %%ecx\n rep insw\n call hijacked"
                         :
                         : "D"((uintptr_t)g_block->heap_start)
                         : "rcx", "rdx", "memory");
    else if (is(w, n, "outs")) {
        /* DONE written by a string OUT, with three more elements to go */
        for (int i = 0; i < 4; i++)
            buf[i] = ASPEN_EXIT_DONE;
        __asm__ volatile("movl $0xa4, %%edx\n movl $4, %%ecx\n rep outsl\n call hijacked"
                         :
                         : "S"(buf)
                         : "rcx", "rdx", "memory");
    }
    else if (is(w, n, "out1"))
        __asm__ volatile("movb $1, %%al\n outb %%al, $0xa0\n call hijacked" : : : "rax", "memory");
    else if (is(w, n, "shadow"))
        __asm__ volatile("movl $2, %%eax\n mov %%ss, %%cx\n mov %%cx, %%ss\n outl %%eax, $0xa4\n"
                         "1: jmp 1b"
                         :
                         :
                         : "rax", "rcx", "memory");
    else if (is(w, n, "dr"))
        __asm__ volatile("movq %0, %%dr0\n movq %0, %%dr7\n" DONE_ASM : : "r"(PAT & 0xfffff) : "memory");
    put("unknown io plant");
    finish();
}

/* ---- The job entry --------------------------------------------------------------------------- */
__attribute__((used, noreturn)) void leak_main(struct aspen_abi_block *b, const uint8_t *in,
                                               size_t len)
{
    const uint8_t *w;
    size_t n;
    g_outn = 0;
    if (len >= 2 && in[0] == '"' && in[len - 1] == '"') { /* a JSON string, as the engine sends */
        in++;
        len -= 2;
    }
    if (starts(in, len, "input:", &w, &n)) {
        /* The mark arrives in the input and the guest only reads it: the host wrote that memory,
         * not the guest, so KVM's dirty tracking never lists it (vm/snapshot.c restores the
         * input's bytes by hand). The same scan as probe:mem, which must count the mark here. */
        probe_mem();
        finish();
    }
    if (starts(in, len, "probe:", &w, &n)) {
        if (is(w, n, "regs") || is(w, n, "tf"))
            probe_regs();
        else if (is(w, n, "x87") || is(w, n, "mmx") || is(w, n, "sse") || is(w, n, "mxcsr"))
            probe_fpu();
        else if (is(w, n, "avx"))
            probe_avx();
        else if (is(w, n, "xsave"))
            probe_xsave();
        else if (is(w, n, "pkru"))
            probe_pkru();
        else if (is(w, n, "fsgs"))
            probe_fsgs();
        else if (is(w, n, "seg"))
            probe_seg();
        else if (is(w, n, "mem"))
            probe_mem();
        else if (is(w, n, "io"))
            put("probe-io-ok");
        else if (is(w, n, "cpuid"))
            probe_cpuid();
        else if (is(w, n, "cpu"))
            probe_cpu();
        else if (is(w, n, "tramp-cost"))
            probe_tramp_cost();
        else if (is(w, n, "start"))
            probe_regs_of(&g_start);
        else if (is(w, n, "start-state"))
            put(g_start_state);
        else if (is(w, n, "entry"))
            probe_regs_of(&g_entry);
        else
            put("unknown probe");
        finish();
    }
    if (starts(in, len, "check:", &w, &n)) {
        /* Plant and probe in one job: proves each probe sees what its plant leaves. */
        if (is(w, n, "avx") && has_avx()) {
            load_ymm();
            probe_avx();
        } else if (is(w, n, "mmx")) {
            __asm__ volatile("movq %0, %%mm0" : : "m"(g_pat[0][0]));
            probe_fpu();
            __asm__ volatile("emms");
        } else if (is(w, n, "sse")) {
            __asm__ volatile("movdqa %0, %%xmm5" : : "m"(g_pat[4]));
            probe_fpu();
        } else if (is(w, n, "xsave") && has_avx()) {
            load_ymm();
            probe_xsave();
        } else if (is(w, n, "pkru") && has_pku()) {
            __asm__ volatile("wrpkru" : : "a"(0xaaaaaaa8u), "c"(0), "d"(0) : "memory");
            probe_pkru();
        } else if (is(w, n, "fsgs") && has_fsgsbase()) {
            __asm__ volatile("wrfsbase %0" : : "r"(0x00005a5a5a5a5000ull));
            probe_fsgs();
        } else if (is(w, n, "mem")) {
            plant_mem();
            probe_mem();
        } else {
            put("unsupported");
        }
        finish();
    }
    if (!starts(in, len, "plant:", &w, &n)) {
        put("unknown mode");
        finish();
    }
    planted();
    if (is(w, n, "regs"))
        plant_regs();
    if (is(w, n, "tf"))
        plant_tf();
    if (is(w, n, "x87"))
        plant_x87();
    if (is(w, n, "mmx"))
        plant_mmx();
    if (is(w, n, "sse"))
        plant_sse();
    if (is(w, n, "mxcsr"))
        plant_mxcsr();
    if (is(w, n, "avx") || is(w, n, "spin-avx") || is(w, n, "fault-avx")) {
        if (!has_avx()) {
            g_outn = 0;
            put("unsupported");
            finish();
        }
        if (is(w, n, "avx"))
            plant_avx();
        load_ymm();
        if (is(w, n, "fault-avx"))
            __asm__ volatile("ud2");
        for (;;)
            __asm__ volatile("");
    }
    if (is(w, n, "xsave")) { /* everything at once: x87, SSE, AVX, PKRU */
        if (has_avx())
            load_ymm();
        __asm__ volatile("fninit\n fildq %0\n ldmxcsr %1\n" : : "m"(g_pat[0][0]), "m"(g_mxcsr_odd));
        if (has_pku())
            plant_pkru(0xaaaaaaa8u);
        __asm__ volatile(DONE_ASM : : : "memory"); /* no PKRU on this CPU: the rest is planted */
        __builtin_unreachable();
    }
    if (is(w, n, "pkru") || is(w, n, "pkru-poison")) {
        /* Where CPUID lists no PKU the guest tries anyway: wrpkru must then be #UD (the CPU must
         * not behave as if CR4.PKE were set, and a hostile guest does not ask CPUID first). */
        /* 0xaaaaaaa8: write-disable every key but 0 (harmless, visible); 1: access-disable key 0,
         * so no data access works until PKRU is reset */
        plant_pkru(is(w, n, "pkru") ? 0xaaaaaaa8u : 1u);
    }
    if (is(w, n, "fsgs")) {
        if (!has_fsgsbase()) {
            g_outn = 0;
            put("unsupported");
            finish();
        }
        plant_fsgs();
    }
    if (is(w, n, "seg"))
        plant_seg();
    if (is(w, n, "mem")) {
        plant_mem();
        done_raw();
    }
    (void)b;
    plant_io(w, n);
}
