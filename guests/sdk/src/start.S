/* start.S — the two ways the host enters an Aspen guest (vm/include/abi.h, "Life of a guest").
 *
 *   _start   the ELF entry, once per VM: rdi = call block. Runs start-up (heap, ASPEN_INIT) in
 *            aspen__startup, which ends with the READY exit the host snapshots.
 *   execute  the job entry named by the ABI note, once per job: rdi = call block, rsi = input,
 *            rdx = length. Runs the handler in aspen__execute, which ends with the DONE exit.
 *
 * Both are tiny trampolines that make the machine state what C code expects whatever the host
 * left: a 16-byte aligned stack at the call, the direction flag clear, a frame-pointer chain that
 * ends here, and the default SSE control word (round to nearest, exceptions masked), so one job
 * can never leave another a different rounding mode. Neither ever returns (the host puts a zero
 * return address on the stack; ud2 makes a stray return a clear #UD instead).
 */
    .section .text.aspen_entry, "ax", @progbits

    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp
    andq $-16, %rsp
    cld
    ldmxcsr aspen_mxcsr_default(%rip)
    call aspen__startup
    ud2
    .size _start, . - _start

    .globl execute
    .type execute, @function
execute:
    xorl %ebp, %ebp
    andq $-16, %rsp
    cld
    ldmxcsr aspen_mxcsr_default(%rip)
    call aspen__execute
    ud2
    .size execute, . - execute

    .section .rodata.aspen_entry, "a", @progbits
    .balign 4
aspen_mxcsr_default:
    .long 0x1f80

    .section .note.GNU-stack, "", @progbits
