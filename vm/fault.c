/* vm/fault.c — fault reports: what the ring-0 stub (vm/stub.S) recorded in the fault block,
 * turned into a message a user can act on (the exception's name, where, and for the common faults
 * why).
 */
#include "vm_internal.h"

#include <stdio.h>

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
    if (vec == 3)
        return " — an `int3` breakpoint (rip is the instruction after it); there is no debugger "
               "inside a guest";
    uint8_t b[2] = {0, 0};
    if (vm_guest_copy_out(vm, rip, 2, b) != 0 && vm_guest_copy_out(vm, rip, 1, b) != 0)
        return "";
    if (b[0] == 0x0f && b[1] == 0x05)
        return " — a `syscall` instruction: guests have no system calls; use the SDK's host "
               "calls (libc built for Linux does not work inside Aspen)";
    if (b[0] == 0xf4)
        return " — a `hlt` instruction, which guest code may not execute; finish a job by "
               "returning from its handler";
    if (b[0] == 0xcd && vec == 6)
        return " — an `int` instruction: guest code cannot raise interrupts (there is no kernel "
               "to call; use the SDK's host calls)";
    if (vec == 13 && (b[0] == 0xe6 || b[0] == 0xe7 || b[0] == 0xee || b[0] == 0xef ||
                      b[0] == 0xe4 || b[0] == 0xe5 || b[0] == 0xec || b[0] == 0xed))
        return " — I/O to a port closed to guests";
    if (b[0] == 0x0f && b[1] == 0x0b)
        return " — `ud2`, the compiler's trap (e.g. __builtin_trap or unreachable code)";
    return "";
}

/* The report: "guest CPU fault: NAME (vector V, error code 0xE) at rip 0xR, rsp 0xS", then for
 * #PF the address and why, and a hint from the instruction's bytes. */
static void fault_message(aspen_vm *vm, aspen_vm_result *res, const char *detail, bool from_user)
{
    const aspen_vm_fault *f = &res->fault;
    snprintf(res->message, sizeof res->message,
             "guest CPU fault: %s (vector %u, error code 0x%llx) at rip 0x%llx, rsp 0x%llx%s%s%s",
             vector_name(f->vector), f->vector, (unsigned long long)f->error_code,
             (unsigned long long)f->rip, (unsigned long long)f->rsp, detail,
             insn_hint(vm, f->rip, f->vector), from_user ? "" : " [in the host's fault stub]");
}

void vm_describe_fault(aspen_vm *vm, aspen_vm_result *res)
{
    const uint64_t *fb = (const uint64_t *)(vm->sys + SYS_FAULT_OFF);
    aspen_vm_fault *f = &res->fault;
    f->vector = (uint32_t)fb[FB_VECTOR / 8];
    f->error_code = fb[FB_ERROR / 8];
    f->rip = fb[FB_RIP / 8];
    f->rsp = fb[FB_RSP / 8];
    f->address = f->vector == 14 ? fb[FB_CR2 / 8] : 0;
    bool from_user = (fb[FB_CS / 8] & 3) == 3;
    char detail[512] = "";
    /* `syscall` with EFER.SCE clear: bare-metal KVM raises #UD on the instruction (insn_hint names
     * it); nested kvm_pvm jumps to LSTAR (0) at CPL 3 instead, leaving the return address in rcx. */
    uint8_t sc[2];
    uint64_t rcx = fb[FB_RCX / 8];
    if (f->vector == 14 && f->rip == 0 && rcx >= 2 && vm_guest_copy_out(vm, rcx - 2, 2, sc) == 0 &&
        sc[0] == 0x0f && sc[1] == 0x05) {
        f->rip = rcx - 2;
        f->vector = 6;
        f->address = 0;
        f->error_code = 0;
        fault_message(vm, res, "", true);
        return;
    }
    /* `int n` (n not 3): nested kvm_pvm raises #UD; bare-metal KVM a #GP whose error code names
     * the IDT entry (n * 8 + 2), as no gate but #BP's is open to CPL 3. Reported as #UD on both. */
    uint8_t in[2];
    if (f->vector == 13 && (f->error_code & 3) == 2 &&
        vm_guest_copy_out(vm, f->rip, 2, in) == 0 && in[0] == 0xcd &&
        in[1] == (f->error_code >> 3)) {
        f->vector = 6;
        f->error_code = 0;
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
    }
    fault_message(vm, res, detail, from_user);
}
