/* vm/cpu.c — the CPU side of a VM: the system region (GDT, TSS with its I/O bitmap, IDT, the
 * fault stub and trampoline copied in), the guest page tables, and the register values a vCPU is
 * started with. Guest code runs at CPL 3 in long mode with no kernel of its own; every bit here is
 * set by the host and the guest cannot change it.
 */
#include "vm_internal.h"

#include <string.h>

#define IOMAP_BYTES 23u /* ports 0x00-0xb7 described, +1 terminator byte inside */
#define TSS_LIMIT (104u + IOMAP_BYTES - 1u)

static uint64_t *pt_table(aspen_vm *vm, uint64_t *entry)
{
    if (!(*entry & X86_PTE_P)) {
        if (vm->pt_next + PAGE > vm->sys_size)
            return NULL;
        *entry = (GPA_SYS + vm->pt_next) | X86_PTE_P | X86_PTE_W | X86_PTE_U;
        vm->pt_next += PAGE;
    }
    uint64_t gpa = *entry & X86_PTE_ADDR;
    return (uint64_t *)(vm->sys + (gpa - GPA_SYS));
}

int vm_map_page(aspen_vm *vm, uint64_t gva, uint64_t gpa, uint64_t flags)
{
    uint64_t *t = (uint64_t *)(vm->sys + SYS_PT_OFF); /* PML4 is the first table */
    for (int shift = 39; shift > 12; shift -= 9) {
        t = pt_table(vm, &t[(gva >> shift) & 511]);
        if (!t)
            return -1;
    }
    t[(gva >> 12) & 511] = gpa | flags;
    return 0;
}

static void gdt_set(uint64_t *gdt, int idx, uint64_t desc) { gdt[idx] = desc; }

void vm_build_system(aspen_vm *vm)
{
    uint8_t *s = vm->sys;
    uint64_t *gdt = (uint64_t *)(s + SYS_GDT_OFF);
    gdt_set(gdt, 1, 0x00af9b000000ffffull); /* kernel code, 64-bit, DPL 0 */
    gdt_set(gdt, 2, 0x00cf93000000ffffull); /* kernel data */
    gdt_set(gdt, 3, 0x00affb000000ffffull); /* user code, 64-bit, DPL 3 */
    gdt_set(gdt, 4, 0x00cff3000000ffffull); /* user data, DPL 3 */
    uint64_t tss = SYS_GVA + SYS_TSS_OFF;
    gdt[5] = (TSS_LIMIT & 0xffffull) | ((tss & 0xffffffull) << 16) | (0x89ull << 40) |
             (((uint64_t)TSS_LIMIT >> 16 & 0xf) << 48) | (((tss >> 24) & 0xff) << 56);
    gdt[6] = tss >> 32;

    /* TSS: RSP0 for exceptions from CPL 3; I/O bitmap opening ports 0xA0-0xA7 only. */
    uint8_t *t = s + SYS_TSS_OFF;
    uint64_t rsp0 = SYS_GVA + SYS_TRAMP_OFF;
    memcpy(t + 4, &rsp0, 8);
    uint16_t iomap = 104;
    memcpy(t + 102, &iomap, 2);
    memset(t + 104, 0xff, IOMAP_BYTES);
    t[104 + ASPEN_PORT_CALL / 8] = 0x00; /* 0xA0..0xA7: CALL (A0-A3) and EXIT (A4-A7) */

    /* IDT: vectors 0-31 to the stub's entries, interrupt gates, DPL 0 (so `int n` from CPL 3 is a
     * #GP instead of a way into ring 0) except #BP's, DPL 3, so `int3` is a #BP everywhere (as on
     * nested kvm_pvm, which delivers it whatever the gate says). Every entry only reports. */
    uint64_t *idt = (uint64_t *)(s + SYS_IDT_OFF);
    for (int v = 0; v < 32; v++) {
        uint64_t off = SYS_GVA + SYS_STUB_OFF + 16u * (unsigned)v;
        uint64_t type = v == 3 ? 0xeeull : 0x8eull; /* present, DPL 3 or 0, 64-bit interrupt gate */
        idt[2 * v] = (off & 0xffff) | ((uint64_t)SEL_KCODE << 16) | (type << 40) |
                     ((off >> 16 & 0xffff) << 48);
        idt[2 * v + 1] = off >> 32;
    }
    memcpy(s + SYS_STUB_OFF, aspen_stub_start, (size_t)(aspen_stub_end - aspen_stub_start));
    _Static_assert(SYS_TRAMP_OFF + TRAMP_XINIT + 2696 <= SYS_PT_OFF, "trampoline page layout");
    memcpy(s + SYS_TRAMP_OFF, aspen_tramp_start, (size_t)(aspen_tramp_end - aspen_tramp_start));
    /* The init image every job's XRSTOR (or FXRSTOR) loads: XSTATE_BV 0 in its header puts every
     * component in its init state; the legacy area gives FXRSTOR the same (FCW 0x37f, all x87
     * registers empty) and both MXCSR 0x1f80. */
    uint8_t *x = s + SYS_TRAMP_OFF + TRAMP_XINIT;
    uint16_t fcw = 0x37f;
    uint32_t mxcsr = 0x1f80;
    memcpy(x + 0, &fcw, 2);
    memcpy(x + 24, &mxcsr, 4);
}

/* Overwrite [a, b) of the trampoline copy with NOPs. */
static void tramp_nop(aspen_vm *vm, const uint8_t *a, const uint8_t *b)
{
    memset(vm->sys + SYS_TRAMP_OFF + (a - aspen_tramp_start), 0x90, (size_t)(b - a));
}

void vm_tramp_prepare(aspen_vm *vm, int features)
{
    if (!(features & TRAMP_HAS_PKU))
        tramp_nop(vm, aspen_tramp_pkru, aspen_tramp_pkru_end);
    if (features & TRAMP_HAS_XSAVE)
        tramp_nop(vm, aspen_tramp_fxsave, aspen_tramp_fxsave_end);
    else
        tramp_nop(vm, aspen_tramp_xsave, aspen_tramp_xsave_end);
    if (!(features & TRAMP_HAS_FSGSBASE))
        tramp_nop(vm, aspen_tramp_fsgs, aspen_tramp_fsgs_end);
    /* Only a Linux program's jobs resume where start-up stopped (r10 = 1, vm/linux.c); in any
     * other VM the trampoline always goes to execute, whatever r10 a guest jumps in with. */
    if (!vm->img->linux_abi)
        tramp_nop(vm, aspen_tramp_lx, aspen_tramp_lx_end);
}

bool vm_gva_is_host(uint64_t gva) { return gva >= SYS_GVA && gva - SYS_GVA < SYS_PT_OFF; }

void vm_clear_events(struct kvm_vcpu_events *e)
{
    memset(e, 0, sizeof *e);
    e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
}

void vm_init_sregs(aspen_vm *vm, struct kvm_sregs *sr)
{
    struct kvm_segment cs = {.base = 0, .limit = 0xffffffff, .selector = SEL_UCODE, .type = 11,
                             .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1};
    struct kvm_segment ds = {.base = 0, .limit = 0xffffffff, .selector = SEL_UDATA, .type = 3,
                             .present = 1, .dpl = 3, .s = 1, .db = 1, .g = 1};
    sr->cs = cs;
    /* DS, ES, FS and GS null (64-bit code needs none of them; FS/GS base 0), as the trampoline
     * leaves them for every job. */
    struct kvm_segment null = {.unusable = 1};
    sr->ss = ds;
    sr->ds = sr->es = sr->fs = sr->gs = null;
    sr->tr = (struct kvm_segment){.base = SYS_GVA + SYS_TSS_OFF, .limit = TSS_LIMIT,
                                  .selector = SEL_TSS, .type = 11, .present = 1};
    sr->ldt = (struct kvm_segment){.unusable = 1};
    sr->gdt.base = SYS_GVA + SYS_GDT_OFF;
    sr->gdt.limit = 7 * 8 - 1;
    sr->idt.base = SYS_GVA + SYS_IDT_OFF;
    sr->idt.limit = 32 * 16 - 1;
    sr->cr0 = X86_CR0_PG | X86_CR0_AM | X86_CR0_WP | X86_CR0_NE | X86_CR0_ET | X86_CR0_MP |
              X86_CR0_PE;
    sr->cr3 = GPA_SYS + SYS_PT_OFF;
    sr->cr4 = X86_CR4_OSXMMEXCPT | X86_CR4_OSFXSR | X86_CR4_PAE | vm_kvm.cr4_extra;
    sr->efer = X86_EFER_NXE | X86_EFER_LMA | X86_EFER_LME; /* no SCE: `syscall` is #UD */
    memset(sr->interrupt_bitmap, 0, sizeof sr->interrupt_bitmap);
}

void vm_set_run_regs(struct kvm_regs *r, uint64_t rip, uint64_t rsp, uint64_t rdi,
                         uint64_t rsi, uint64_t rdx)
{
    memset(r, 0, sizeof *r);
    r->rip = rip;
    r->rsp = rsp;
    r->rdi = rdi;
    r->rsi = rsi;
    r->rdx = rdx;
    r->rflags = X86_RFLAGS_FIXED;
}
