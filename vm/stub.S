/* vm/stub.S — the guest's ring-0 fault stub: guest machine code carried as data by the host.
 *
 * Guest job code runs at CPL 3. When it takes a CPU exception, the IDT sends the CPU here at CPL 0
 * (on the TSS's RSP0 stack). The stub records vector, error code, faulting RIP, CS, RFLAGS, RSP and
 * CR2 in the fault block and reports with one OUT to ASPEN_PORT_FAULT, a port closed to CPL 3 by the
 * TSS I/O bitmap, so guest code cannot forge a fault report. The host never resumes a faulted VM;
 * it restores it from the snapshot. Ring-0 code is emulated on this machine's nested KVM (~1 µs per
 * instruction), which is fine for an error path of ~30 instructions and never on a job's normal path.
 *
 * The host copies [aspen_stub_start, aspen_stub_end) to SYS_GVA + SYS_STUB_OFF; entry for vector v
 * is at offset 16*v, and [aspen_tramp_start, aspen_tramp_end) to SYS_GVA + SYS_TRAMP_OFF. The
 * layout comes from vm/x86.h, which the C side reads too.
 */
#include "x86.h"
#define ASPEN_PORT_SYSCALL_OUT 0xa0 /* ASPEN_PORT_CALL: told apart by where the OUT is */

    .section .rodata.aspen_stub, "a"
    .balign 16
    .globl aspen_stub_start
    .globl aspen_stub_end
    .code64

.macro entry vec, has_error
    .balign 16
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vec
    jmp common
.endm

aspen_stub_start:
    entry 0, 0
    entry 1, 0
    entry 2, 0
    entry 3, 0
    entry 4, 0
    entry 5, 0
    entry 6, 0
    entry 7, 0
    entry 8, 1
    entry 9, 0
    entry 10, 1
    entry 11, 1
    entry 12, 1
    entry 13, 1
    entry 14, 1
    entry 15, 0
    entry 16, 0
    entry 17, 1
    entry 18, 0
    entry 19, 0
    entry 20, 0
    entry 21, 1
    entry 22, 0
    entry 23, 0
    entry 24, 0
    entry 25, 0
    entry 26, 0
    entry 27, 0
    entry 28, 0
    entry 29, 1
    entry 30, 1
    entry 31, 0

    .balign 16
common:
    /* rax first of all: the stub uses it below, and the debugger and core dumps need the guest's */
    movq %rax, SYS_FAULT_BLOCK + FB_RAX
    /* rcx first: after a `syscall` it holds the address of the next instruction, which is how the
     * host recognises one (nested KVM jumps to LSTAR instead of raising #UD when SCE is off) */
    movq %rcx, SYS_FAULT_BLOCK + FB_RCX
    /* stack: vector, error code, rip, cs, rflags, rsp, ss */
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_VECTOR
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_ERROR
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_RIP
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_CS
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_RFLAGS
    popq %rax
    movq %rax, SYS_FAULT_BLOCK + FB_RSP
    movq %cr2, %rax
    movq %rax, SYS_FAULT_BLOCK + FB_CR2
    movl $1, %eax
    outl %eax, $SYS_PORT_FAULT
1:  hlt
    jmp 1b
aspen_stub_end:

/* The job trampoline: a host-owned page mapped read-only and executable at CPL 3. Every job enters
 * here (rcx = the image's execute function; rdi, rsi, rdx its arguments; every other general
 * register 0, RFLAGS 0x2 — all set by the host through the run page) and leaves for execute with
 * every piece of user-writable CPU state the previous job could have changed back in its initial
 * state, using native CPL-3 instructions instead of KVM_SET_XSAVE/KVM_SET_SREGS ioctls:
 *   - PKRU = 0 first, with wrpkru: a PKRU left denying data access would make the XRSTOR below
 *     (a data read) fault, and with it every later job;
 *   - x87, MMX, SSE, AVX, AVX-512, MPX and PKRU state to their init values with one XRSTOR of a
 *     host-written image whose XSTATE_BV is 0 (MXCSR 0x1f80 comes from its legacy area); FXRSTOR
 *     of the same image where XSAVE is not enabled;
 *   - DS, ES, FS and GS to the null selector, then FS and GS base to 0 with wrfsbase/wrgsbase (a
 *     null selector load keeps the base on AMD).
 * The blocks between the aspen_tramp_* labels are overwritten with NOPs by the host (cpu.c) where
 * guest code at CPL 3 cannot use the instruction (and so cannot change that state either). The
 * guest cannot change this page. */
    .balign 16
    .globl aspen_tramp_start
    .globl aspen_tramp_end
    .globl aspen_tramp_pkru, aspen_tramp_pkru_end
    .globl aspen_tramp_xsave, aspen_tramp_xsave_end
    .globl aspen_tramp_fxsave, aspen_tramp_fxsave_end
    .globl aspen_tramp_fsgs, aspen_tramp_fsgs_end
    .globl aspen_probe
    .globl aspen_tramp_lx, aspen_tramp_lx_end
aspen_tramp_start:
    movq %rcx, %r8               /* execute */
    movq %rdx, %r9               /* the input length */
aspen_tramp_pkru:
    xorl %eax, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    wrpkru
aspen_tramp_pkru_end:
aspen_tramp_xsave:
    movl $TRAMP_XRSTOR_MASK, %eax
    xorl %edx, %edx
    xrstor64 aspen_tramp_start + TRAMP_XINIT(%rip)
aspen_tramp_xsave_end:
aspen_tramp_fxsave:
    fxrstor64 aspen_tramp_start + TRAMP_XINIT(%rip)
aspen_tramp_fxsave_end:
    /* A segment load costs ~200 ns under nested kvm_pvm (the hypervisor emulates it), reading a
     * selector almost nothing: reload only a selector that is not already null. */
    xorl %ecx, %ecx
    movl %ds, %eax
    testl %eax, %eax
    jz 1f
    movl %ecx, %ds
1:  movl %es, %eax
    testl %eax, %eax
    jz 2f
    movl %ecx, %es
2:  movl %fs, %eax
    testl %eax, %eax
    jz 3f
    movl %ecx, %fs
3:  movl %gs, %eax
    testl %eax, %eax
    jz 4f
    movl %ecx, %gs
4:
aspen_tramp_fsgs:
    wrfsbase %rcx
    wrgsbase %rcx
aspen_tramp_fsgs_end:
aspen_tramp_lx:                  /* NOPed unless the VM runs a Linux program (cpu.c) */
    testq %r10, %r10
    jnz aspen_tramp_resume
aspen_tramp_lx_end:
    movq %r9, %rdx
    movq %r8, %rax
    xorl %ecx, %ecx
    xorl %r8d, %r8d
    xorl %r9d, %r9d
    jmp *%rax

/* A job of a Linux program (vm/linux.c) resumes where start-up stopped, at the system call the
 * snapshot was taken on: FS/GS base (the thread pointer musl set with arch_prctl) and the
 * registers used above come from the host-written resume block, the rest from the run page. */
aspen_tramp_resume:
    movq aspen_tramp_start + TRAMP_RES + RES_FS(%rip), %rcx
    wrfsbase %rcx
    movq aspen_tramp_start + TRAMP_RES + RES_GS(%rip), %rcx
    wrgsbase %rcx
    movq aspen_tramp_start + TRAMP_RES + RES_RAX(%rip), %rax
    movq aspen_tramp_start + TRAMP_RES + RES_RCX(%rip), %rcx
    movq aspen_tramp_start + TRAMP_RES + RES_RDX(%rip), %rdx
    movq aspen_tramp_start + TRAMP_RES + RES_R8(%rip), %r8
    movq aspen_tramp_start + TRAMP_RES + RES_R9(%rip), %r9
    movq aspen_tramp_start + TRAMP_RES + RES_R10(%rip), %r10
    jmp *aspen_tramp_start + TRAMP_RES + RES_RIP(%rip)

/* Where `syscall` lands (MSR_LSTAR) in a Linux program's VM. On nested kvm_pvm it arrives here at
 * CPL 3 with rcx = the return address and r11 = RFLAGS; the OUT hands the call to the host
 * (vm/linux.c), which reads the registers from the run page, performs the call, and resumes the
 * guest at rcx with rax = the result. The host never lets the guest run past the OUT.
 *
 * Two answers need no host, and cost no exit: ioctl on an open standard stream (ENOTTY: stdio asks
 * once per stream whether it is a terminal) and read/readv of fd 0 once the input is used up (0:
 * the end-of-file read every stdio reader makes). The host keeps the two facts they need in the
 * resume block (RES_FDS, RES_EOF), and only once it has seen a system call arrive at CPL 3 in this
 * VM. Returning is a jump to rcx: rcx and r11 are what `syscall` left, as Linux leaves them, and
 * the status flags mean nothing after a system call; a caller with TF, DF or AC set goes to the
 * host, which restores RFLAGS from r11. */
    .globl aspen_tramp_syscall, aspen_tramp_syscall_out
aspen_tramp_syscall:
    testl $0x40500, %r11d        /* TF, DF, AC */
    jnz aspen_tramp_syscall_out
    cmpq $16, %rax               /* ioctl */
    je 2f
    cmpq $19, %rax               /* readv: iovcnt 0..1024 */
    je 1f
    testq %rax, %rax             /* read: a count that is not negative */
    jnz aspen_tramp_syscall_out
    testq %rdx, %rdx
    js aspen_tramp_syscall_out
    jmp 3f
1:  cmpq $1024, %rdx
    ja aspen_tramp_syscall_out
3:  testq %rdi, %rdi             /* fd 0, at end of file */
    jnz aspen_tramp_syscall_out
    cmpq $0, aspen_tramp_start + TRAMP_RES + RES_EOF(%rip)
    je aspen_tramp_syscall_out
    xorl %eax, %eax
    jmp *%rcx
2:  cmpq $2, %rdi                /* fd 0, 1 or 2, open */
    ja aspen_tramp_syscall_out
    btq %rdi, aspen_tramp_start + TRAMP_RES + RES_FDS(%rip)
    jnc aspen_tramp_syscall_out
    movq $-25, %rax              /* -ENOTTY */
    jmp *%rcx
aspen_tramp_syscall_out:
    outl %eax, $ASPEN_PORT_SYSCALL_OUT
9:  jmp 9b

/* What guest code at CPL 3 can use on this machine, asked once per process by the host before the
 * first guest's start-up (run.c, probe_cpl3): XSAVE state (xgetbv), protection keys (rdpkru) and
 * FSGSBASE (rdfsbase), each found by running the instruction, never by reading CPUID. CPUID is
 * what KVM or the outer hypervisor chooses to show: on nested kvm_pvm on Intel it showed CPL 3 no
 * OSXSAVE while AVX worked, so the trampoline reset only x87/SSE and a job's YMM upper halves
 * reached the next job on the same VM (tests/vm/test_isolation.c, test_ymm_upper). A step whose
 * instruction is not usable faults (#UD) into the ring-0 stub; the host then starts the probe
 * again at the next step (rdi = the first step to run). Each step that runs reports
 * TRAMP_PROBE_MAGIC | step << 8 | its TRAMP_HAS_* bit with one OUT to the exit port, and step
 * TRAMP_PROBE_DONE ends the probe. */
aspen_probe:
    cmpl $1, %edi
    jae 1f
    xorl %ecx, %ecx
    xgetbv                       /* #UD unless CR4.OSXSAVE is in effect */
    movl $(TRAMP_PROBE_MAGIC | TRAMP_HAS_XSAVE), %eax
    outl %eax, $0xa4
1:  cmpl $2, %edi
    jae 2f
    xorl %ecx, %ecx
    rdpkru                       /* #UD unless CR4.PKE is in effect */
    movl $(TRAMP_PROBE_MAGIC | (1 << 8) | TRAMP_HAS_PKU), %eax
    outl %eax, $0xa4
2:  cmpl $3, %edi
    jae 3f
    rdfsbase %rax                /* #UD unless CR4.FSGSBASE is in effect */
    movl $(TRAMP_PROBE_MAGIC | (2 << 8) | TRAMP_HAS_FSGSBASE), %eax
    outl %eax, $0xa4
3:  movl $(TRAMP_PROBE_MAGIC | (TRAMP_PROBE_DONE << 8)), %eax
4:  outl %eax, $0xa4
    jmp 4b
aspen_tramp_end:

    .section .note.GNU-stack, "", @progbits
