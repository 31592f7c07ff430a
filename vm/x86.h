/* vm/x86.h — the x86-64 bits and the system-region layout the monitor builds, in one place for the
 * C sources and for vm/stub.S (which is preprocessed assembly: no C here, only #defines of plain
 * integer literals, so both languages read the same numbers).
 *
 * Named architectural bits (CR0, CR4, EFER, page-table entries, XCR0 components) and the layout of
 * the host-owned "system" region that sits at SYS_GVA in every guest's address space.
 */
#ifndef ASPEN_VM_X86_H
#define ASPEN_VM_X86_H

/* Bit n / a 64-bit constant: unsigned long long in C, a plain (64-bit) integer for the assembler. */
#ifdef __ASSEMBLER__
#define X86_BIT(n) (1 << (n))
#define X86_U64(x) x
#else
#define X86_BIT(n) (1ull << (n))
#define X86_U64(x) x##ull
#endif

/* ---- Control registers ------------------------------------------------------------------------- */
#define X86_CR0_PE X86_BIT(0)  /* protected mode */
#define X86_CR0_MP X86_BIT(1)  /* monitor coprocessor */
#define X86_CR0_ET X86_BIT(4)  /* extension type (always 1) */
#define X86_CR0_NE X86_BIT(5)  /* native x87 error reporting (#MF, not IRQ 13) */
#define X86_CR0_WP X86_BIT(16) /* write protect also in ring 0 */
#define X86_CR0_AM X86_BIT(18) /* RFLAGS.AC may enable alignment checks at CPL 3 */
#define X86_CR0_PG X86_BIT(31) /* paging */

#define X86_CR4_PAE X86_BIT(5)
#define X86_CR4_OSFXSR X86_BIT(9)      /* fxsave/fxrstor and SSE */
#define X86_CR4_OSXMMEXCPT X86_BIT(10) /* SIMD exceptions are #XM */
#define X86_CR4_UMIP X86_BIT(11)       /* sgdt/sidt/sldt/str/smsw are #GP at CPL 3 */
#define X86_CR4_FSGSBASE X86_BIT(16)   /* rd/wr{fs,gs}base at CPL 3 */
#define X86_CR4_OSXSAVE X86_BIT(18)    /* xsave/xrstor/xgetbv, AVX */
#define X86_CR4_PKE X86_BIT(22)        /* protection keys for user pages (rdpkru/wrpkru) */

#define X86_EFER_SCE X86_BIT(0) /* syscall/sysret: set only for Linux programs (vm/linux.c) */
#define X86_EFER_LME X86_BIT(8)
#define X86_EFER_LMA X86_BIT(10)
#define X86_EFER_NXE X86_BIT(11)

#define X86_RFLAGS_FIXED 0x2 /* bit 1 always reads 1 */

/* ---- Page-table entries ------------------------------------------------------------------------ */
#define X86_PTE_P X86_BIT(0)
#define X86_PTE_W X86_BIT(1)
#define X86_PTE_U X86_BIT(2)
#define X86_PTE_NX X86_BIT(63)
#define X86_PTE_ADDR X86_U64(0x000ffffffffff000)

/* ---- XCR0 (XSAVE feature components) ---------------------------------------------------------- */
#define X86_XCR0_X87 X86_BIT(0)
#define X86_XCR0_SSE X86_BIT(1)
#define X86_XCR0_AVX X86_BIT(2)
#define X86_XCR0_OPMASK X86_BIT(5)    /* AVX-512 k0-k7 */
#define X86_XCR0_ZMM_HI256 X86_BIT(6) /* AVX-512 upper halves of zmm0-15 */
#define X86_XCR0_HI16_ZMM X86_BIT(7)  /* AVX-512 zmm16-31 */
#define X86_XCR0_PKRU X86_BIT(9)

/* ---- The system region: host-owned pages at SYS_GVA, supervisor-only except the trampoline ---- */
#define SYS_GVA X86_U64(0xffffffff80000000)
#define SYS_GDT_OFF 0x0000
#define SYS_TSS_OFF 0x0100
#define SYS_IDT_OFF 0x0800
#define SYS_STUB_OFF 0x1000  /* the ring-0 fault stub (vm/stub.S) */
#define SYS_FAULT_OFF 0x2000 /* the fault block the stub fills */
#define SYS_STACK_OFF 0x3000 /* two pages of ring-0 stack; RSP0 = SYS_GVA + SYS_TRAMP_OFF */
#define SYS_TRAMP_OFF 0x5000 /* the job trampoline: the only page here guest code may touch */
#define SYS_PT_OFF 0x6000    /* page tables from here (not mapped in the guest's address space) */
#define SYS_FAULT_BLOCK (SYS_GVA + SYS_FAULT_OFF)

/* Fault block layout (u64 slots, filled by the stub). */
#define FB_VECTOR 0
#define FB_ERROR 8
#define FB_RIP 16
#define FB_CS 24
#define FB_RFLAGS 32
#define FB_RSP 40
#define FB_CR2 48
#define FB_RCX 56
#define FB_RAX 64 /* the guest's rax, which the stub needs as scratch (debugger, cores) */

/* GDT selectors. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28

/* The job trampoline's page (vm/stub.S): code first, then at TRAMP_XINIT the host-written XSAVE
 * image every job's XRSTOR loads (64-byte aligned; the rest of the page covers the largest XSAVE
 * area the mask below can name). */
#define TRAMP_XINIT 0x400
/* XRSTOR components: x87, SSE, AVX, MPX, AVX-512 and PKRU (never AMX, which the host's XFD keeps
 * disabled for guests: naming it would fault). Anything XCR0 does not enable is ignored. */
#define TRAMP_XRSTOR_MASK 0x2ff
/* The resume block (Linux programs, vm/linux.c): host-written, guest read-only, after the XSAVE
 * image. A job of a Linux program enters the trampoline with r10 = 1 and leaves it for the
 * registers start-up stopped at: FS/GS base, then the registers the trampoline itself uses, then
 * rip (u64 slots at these offsets in the page). */
#define TRAMP_RES 0xf00
#define RES_FS 0
#define RES_GS 8
#define RES_RAX 16
#define RES_RCX 24
#define RES_RDX 32
#define RES_R8 40
#define RES_R9 48
#define RES_R10 56
#define RES_RIP 64
#define RES_EOF 72 /* the system-call entry's fast paths: fd 0 is open and at end of file */
#define RES_FDS 80 /* ... bit n: fd n (0-2) is open */
/* MSRs the host sets for Linux programs: `syscall` lands in the trampoline page. */
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
/* The probe's reports: a magic value, the step (bits 8-15) and what CPL-3 code can use. */
#define TRAMP_PROBE_MAGIC 0x5a1e0000
#define TRAMP_PROBE_STEPS 3 /* xgetbv, rdpkru, rdfsbase */
#define TRAMP_PROBE_DONE 0xff
#define TRAMP_HAS_XSAVE 0x1
#define TRAMP_HAS_PKU 0x2
#define TRAMP_HAS_FSGSBASE 0x4

/* The port the ring-0 stub reports faults on: must equal ASPEN_PORT_FAULT (checked in C). */
#define SYS_PORT_FAULT 0xa8

#endif
