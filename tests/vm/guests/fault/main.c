/* tests/vm/guests/fault — each input makes one kind of CPU fault, so the VM tests can check the
 * host names it (vector, rip, address) and restores the VM afterwards:
 *   null            read of address 0 (page 0 is unmapped)         #PF
 *   write-code      write to the guest's own code (R+X)             #PF
 *   div0            integer divide by zero                          #DE
 *   ud2             an invalid opcode                               #UD
 *   stack-overflow  unbounded recursion into the stack guard page   #PF
 *   exec-data       a jump into a data array (no-execute)           #PF
 *   port            outl to port 0x80, closed to the guest          #GP
 *   hlt             hlt, privileged at CPL 3                        #GP
 *   syscall         syscall, which does not work in a guest         #UD
 *   int3            the breakpoint instruction                      #BP
 *   int80           int $0x80, Linux's old system call              #GP (no gate for CPL 3)
 *   int1            icebp, the one-byte debug trap                  #DB
 *   sysenter        sysenter, not available in 64-bit guests        #UD (#GP on some CPUs)
 *   none            no fault: outputs "ok"
 * The faults are written in inline assembly where C would let the compiler see the undefined
 * behaviour and replace it with something else. */
#include <aspen.h>

#include "../test_guest.h"

static volatile int g_stop; /* never set: keeps the recursion from looking infinite */
static uint8_t g_data_code[16] = {0xc3}; /* "ret", in a writable, non-executable page */

__attribute__((noinline)) static int recurse(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    if (g_stop)
        return 0;
    return recurse(depth + 1) + frame[0];
}

__attribute__((noinline)) static void some_code(void) { __asm__ volatile(""); }

static int fault(const uint8_t *in, size_t len, aspen_buf *out)
{
    uint32_t v = 0;
    if (input_is(in, len, "null")) {
        __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"((uintptr_t)0) : "memory");
    } else if (input_is(in, len, "write-code")) {
        __asm__ volatile("movb $0xc3, (%0)" : : "r"((uintptr_t)&some_code) : "memory");
    } else if (input_is(in, len, "div0")) {
        __asm__ volatile("xorl %%edx, %%edx\n\tmovl $1, %%eax\n\txorl %%ecx, %%ecx\n\tdivl %%ecx"
                         : : : "eax", "ecx", "edx");
    } else if (input_is(in, len, "ud2")) {
        __asm__ volatile("ud2");
    } else if (input_is(in, len, "stack-overflow")) {
        v = (uint32_t)recurse(0);
    } else if (input_is(in, len, "exec-data")) {
        void (*fn)(void) = (void (*)(void))(uintptr_t)g_data_code;
        __asm__ volatile("" : "+r"(fn)); /* hide the target from the optimiser */
        fn();
    } else if (input_is(in, len, "port")) {
        __asm__ volatile("outl %0, $0x80" : : "a"(0u));
    } else if (input_is(in, len, "hlt")) {
        __asm__ volatile("hlt");
    } else if (input_is(in, len, "syscall")) {
        __asm__ volatile("syscall" : : : "rcx", "r11", "memory");
    } else if (input_is(in, len, "int3")) {
        __asm__ volatile("int3");
    } else if (input_is(in, len, "int80")) {
        __asm__ volatile("int $0x80" : : : "memory");
    } else if (input_is(in, len, "int21")) {
        __asm__ volatile("int $0x21" : : : "memory");
    } else if (input_is(in, len, "int3long")) {
        __asm__ volatile(".byte 0xcd, 0x03" : : : "memory");
    } else if (input_is(in, len, "int14")) {
        __asm__ volatile("int $14" : : : "memory");
    } else if (input_is(in, len, "int1")) {
        __asm__ volatile(".byte 0xf1");
    } else if (input_is(in, len, "sysenter")) {
        __asm__ volatile("sysenter" : : : "memory");
    } else if (!input_is(in, len, "none")) {
        return aspen_error("test-fault: unknown mode '%.*s'", (int)(len > 64 ? 64 : len), in);
    }
    (void)v;
    return aspen_buf_puts(out, "ok");
}

ASPEN_JOB_HANDLER(fault);
