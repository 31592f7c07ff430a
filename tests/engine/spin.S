/* tests/engine/spin.S — a guest that never finishes a job: it reaches READY, then its `execute`
 * spins without a host call. The engine tests use it for timeouts, cancel of a running job and
 * shutdown (only an interrupt of the vCPU can stop it). Same layout as tests/vm/minimal.S. */
#define PORT_EXIT 0xa4

    .section .text
    .globl _start
_start:
    movl $1, %eax
    outl %eax, $PORT_EXIT
1:  jmp 1b

    .globl execute
execute:
2:  jmp 2b

    .section .note.aspen, "a", @note
    .balign 4
    .long 6
    .long 16
    .long 0x31505341
    .asciz "Aspen"
    .balign 4
    .long 1
    .long 0
    .quad execute

    .section .data
counter: .quad 0
    .section .note.GNU-stack, "", @progbits
