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
 * here (rcx = the image's execute function, other registers already set by the host) so x87, MMX
 * and SSE state from the previous job is scrubbed by a few native instructions instead of a
 * KVM_SET_FPU ioctl (~3 µs on this machine). The guest cannot change this page. */
    .balign 16
    .globl aspen_tramp_start
    .globl aspen_tramp_end
aspen_tramp_start:
    fninit
    fldz
    fldz
    fldz
    fldz
    fldz
    fldz
    fldz
    fldz
    fninit                       /* all eight x87/MMX registers now zero and empty */
    ldmxcsr .Lmxcsr(%rip)
    pxor %xmm0, %xmm0
    pxor %xmm1, %xmm1
    pxor %xmm2, %xmm2
    pxor %xmm3, %xmm3
    pxor %xmm4, %xmm4
    pxor %xmm5, %xmm5
    pxor %xmm6, %xmm6
    pxor %xmm7, %xmm7
    pxor %xmm8, %xmm8
    pxor %xmm9, %xmm9
    pxor %xmm10, %xmm10
    pxor %xmm11, %xmm11
    pxor %xmm12, %xmm12
    pxor %xmm13, %xmm13
    pxor %xmm14, %xmm14
    pxor %xmm15, %xmm15
    movq %rcx, %rax
    xorl %ecx, %ecx
    jmp *%rax
    .balign 4
.Lmxcsr:
    .long 0x1f80
aspen_tramp_end:

    .section .note.GNU-stack, "", @progbits
