/* tests/vm/minimal.S — the smallest guest that keeps the ABI (vm/include/abi.h), in assembly and with no
 * SDK: it signals READY, then echoes its input as output. The VM tests use it to bring up the
 * monitor independently of the SDK, and mutate copies of it to craft invalid ELF files. Built also
 * with -DSTARTUP_FAULT, -DSTARTUP_SPIN or -DSTARTUP_INPORT: guests whose start-up faults, never ends,
 * or makes an illegal port access. */
#define PORT_CALL 0xa0
#define PORT_EXIT 0xa4
/* offsets in struct aspen_abi_block */
#define B_STATUS 64
#define B_OUT_PTR 72
#define B_OUT_LEN 80

    .section .text
    .globl _start
_start:
#if defined(STARTUP_FAULT)      /* variants that never reach READY (start-up failure tests) */
    ud2
#elif defined(STARTUP_SPIN)
3:  jmp 3b
#elif defined(STARTUP_INPORT)
    inl $PORT_CALL, %eax
#endif
    movl $1, %eax
    outl %eax, $PORT_EXIT
1:  jmp 1b

    .globl execute
execute: /* rdi = block, rsi = input, rdx = length */
    movl $0, B_STATUS(%rdi)
    movq %rsi, B_OUT_PTR(%rdi)
    movq %rdx, B_OUT_LEN(%rdi)
    movl $2, %eax
    outl %eax, $PORT_EXIT
2:  jmp 2b

    .section .note.aspen, "a", @note
    .balign 4
    .long 6          /* namesz: "Aspen\0" */
    .long 16         /* descsz */
    .long 0x31505341 /* ASPEN_NOTE_TYPE */
    .asciz "Aspen"
    .balign 4
    .long 1          /* abi_version */
    .long 0          /* flags */
    .quad execute

    .section .data
counter: .quad 0
    .section .note.GNU-stack, "", @progbits
