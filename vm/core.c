/* vm/core.c — an ELF core file of a guest whose job failed (fault, panic, timeout, crash), in the
 * format Linux writes for a process, so `gdb GUEST CORE` shows the failing line and a backtrace.
 *
 * What goes in: a PT_NOTE with NT_PRSTATUS (the signal and the general registers as the failure
 * left them: for a CPU fault the faulting rip and rsp from the stub's frame, not the stub's own),
 * NT_PRPSINFO (the guest's name) and NT_FPREGSET (x87/SSE state), then one PT_LOAD per run of
 * guest pages that hold something: the writable regions (data and bss, stack, call block, heap)
 * page by page where the host has memory behind them. The code and read-only data are not copied
 * (gdb reads them from the guest's ELF file) and the host's own pages (trampoline, stub, page
 * tables) never are. Under the size cap the stack goes first, as the backtrace needs it; the
 * pages that do not fit are left out (gdb then says it cannot read them).
 *
 * Captured before the VM is restored from its snapshot (run.c), so it works for warm VMs too.
 */
#include "gdb.h"
#include "vm_internal.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/user.h>

struct core_page {
    uint64_t gva;
    const uint8_t *host;
};

static int page_cmp(const void *a, const void *b)
{
    const struct core_page *x = a, *y = b;
    return x->gva < y->gva ? -1 : x->gva > y->gva;
}

/* The guest's registers at the failure: when the vCPU is in the ring-0 stub (it reported a CPU
 * fault), the interrupted state comes from the stub's frame in the fault block. */
static int core_regs(aspen_vm *vm, struct user_regs_struct *u, struct kvm_fpu *f)
{
    struct kvm_regs r;
    struct kvm_sregs sr;
    if (vm_ioctl(vm->cpufd, KVM_GET_REGS, &r) != 0 || vm_ioctl(vm->cpufd, KVM_GET_SREGS, &sr) != 0)
        return -1;
    if (vm_ioctl(vm->cpufd, KVM_GET_FPU, f) != 0)
        memset(f, 0, sizeof *f);
    if ((sr.cs.selector & 3) == 0) {
        const uint64_t *fb = (const uint64_t *)(vm->sys + SYS_FAULT_OFF);
        r.rax = fb[FB_RAX / 8];
        r.rcx = fb[FB_RCX / 8];
        r.rip = fb[FB_RIP / 8];
        r.rsp = fb[FB_RSP / 8];
        r.rflags = fb[FB_RFLAGS / 8];
    }
    memset(u, 0, sizeof *u);
    u->r15 = r.r15;
    u->r14 = r.r14;
    u->r13 = r.r13;
    u->r12 = r.r12;
    u->rbp = r.rbp;
    u->rbx = r.rbx;
    u->r11 = r.r11;
    u->r10 = r.r10;
    u->r9 = r.r9;
    u->r8 = r.r8;
    u->rax = r.rax;
    u->rcx = r.rcx;
    u->rdx = r.rdx;
    u->rsi = r.rsi;
    u->rdi = r.rdi;
    u->orig_rax = (unsigned long long)-1;
    u->rip = r.rip;
    u->cs = SEL_UCODE;
    u->eflags = r.rflags;
    u->rsp = r.rsp;
    u->ss = SEL_UDATA;
    u->fs_base = sr.fs.base;
    u->gs_base = sr.gs.base;
    u->ds = sr.ds.selector;
    u->es = sr.es.selector;
    u->fs = sr.fs.selector;
    u->gs = sr.gs.selector;
    return 0;
}

/* Pages of a region with host memory behind them (mincore): the ones the guest or its start-up
 * touched. Appended to pages[] while the budget lasts. */
static void add_region_pages(const struct region *r, struct core_page *pages, size_t *n,
                             size_t cap_pages)
{
    size_t np = (size_t)(r->len / PAGE);
    unsigned char vec[256];
    for (size_t off = 0; off < np && *n < cap_pages; off += sizeof vec) {
        size_t chunk = np - off < sizeof vec ? np - off : sizeof vec;
        if (mincore((void *)(r->host + off * PAGE), chunk * PAGE, vec) != 0)
            memset(vec, 1, chunk); /* cannot tell: take them */
        for (size_t i = 0; i < chunk && *n < cap_pages; i++)
            if (vec[i] & 1) {
                pages[*n].gva = r->gva + (off + i) * PAGE;
                pages[*n].host = r->host + (off + i) * PAGE;
                (*n)++;
            }
    }
}

static size_t note_size(size_t desc) { return sizeof(Elf64_Nhdr) + 8 + ((desc + 3) & ~(size_t)3); }

static uint8_t *put_note(uint8_t *p, uint32_t type, const void *desc, size_t len)
{
    Elf64_Nhdr h = {.n_namesz = 5, .n_descsz = (Elf64_Word)len, .n_type = type};
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, "CORE\0\0\0", 8); /* name, padded to 4 bytes */
    p += 8;
    memcpy(p, desc, len);
    memset(p + len, 0, ((len + 3) & ~(size_t)3) - len);
    return p + ((len + 3) & ~(size_t)3);
}

static int signal_of(const aspen_vm_result *res)
{
    switch (res->outcome) {
    case ASPEN_VM_FAULT: return gdb_signal_of_vector(res->fault.vector);
    case ASPEN_VM_PANIC: return 6;    /* SIGABRT, as abort() */
    case ASPEN_VM_TIMEOUT: return 24; /* SIGXCPU: out of time */
    default: return 11;
    }
}

void vm_core_capture(aspen_vm *vm, aspen_vm_result *res, size_t max)
{
    struct user_regs_struct u;
    struct kvm_fpu f;
    if (core_regs(vm, &u, &f) != 0)
        return;
    int sig = signal_of(res);

    prstatus_t ps;
    memset(&ps, 0, sizeof ps);
    ps.pr_info.si_signo = sig;
    ps.pr_cursig = (short)sig;
    ps.pr_pid = 1;
    _Static_assert(sizeof ps.pr_reg == sizeof u, "elf_gregset_t is user_regs_struct");
    memcpy(&ps.pr_reg, &u, sizeof u);
    prpsinfo_t pi;
    memset(&pi, 0, sizeof pi);
    pi.pr_sname = 'R';
    pi.pr_pid = 1;
    const char *base = strrchr(vm->img->name, '/');
    base = base ? base + 1 : vm->img->name;
    size_t bl = strlen(base);
    memcpy(pi.pr_fname, base, bl < sizeof pi.pr_fname - 1 ? bl : sizeof pi.pr_fname - 1);
    memcpy(pi.pr_psargs, base, bl < sizeof pi.pr_psargs - 1 ? bl : sizeof pi.pr_psargs - 1);
    struct user_fpregs_struct fp;
    memset(&fp, 0, sizeof fp);
    fp.cwd = f.fcw;
    fp.swd = f.fsw;
    fp.ftw = f.ftwx;
    fp.fop = f.last_opcode;
    fp.rip = f.last_ip;
    fp.rdp = f.last_dp;
    fp.mxcsr = f.mxcsr;
    fp.mxcr_mask = 0xffff;
    memcpy(fp.st_space, f.fpr, sizeof fp.st_space);
    memcpy(fp.xmm_space, f.xmm, sizeof fp.xmm_space);

    size_t notes = note_size(sizeof ps) + note_size(sizeof pi) + note_size(sizeof fp);
    /* Pages within the cap: the header, the notes and one program header per page at worst,
     * padded to a page, then the pages. */
    size_t total_pages = (vm->hot_size + vm->cold_size) / PAGE;
    size_t cap_pages = max / PAGE < total_pages ? max / PAGE : total_pages;
    while (cap_pages > 0 && PAGE_UP(sizeof(Elf64_Ehdr) + (1 + cap_pages) * sizeof(Elf64_Phdr) +
                                    notes) + cap_pages * PAGE > max)
        cap_pages--;
    if (PAGE_UP(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + notes) > max)
        return; /* not even the registers fit */
    struct core_page *pages = calloc(cap_pages ? cap_pages : 1, sizeof *pages);
    if (!pages)
        return;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) /* the stack first: the backtrace needs it */
        for (int i = 0; i < vm->nreg; i++) {
            const struct region *r = &vm->reg[i];
            bool stack = r->gva >= vm->stack_lo && r->gva < vm->stack_hi;
            if ((r->prot & SEG_W) && stack == (pass == 0))
                add_region_pages(r, pages, &n, cap_pages);
        }
    qsort(pages, n, sizeof *pages, page_cmp);
    size_t nload = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || pages[i].gva != pages[i - 1].gva + PAGE)
            nload++;

    size_t phoff = sizeof(Elf64_Ehdr);
    size_t note_off = phoff + (1 + nload) * sizeof(Elf64_Phdr);
    size_t data_off = PAGE_UP(note_off + notes);
    size_t len = data_off + n * PAGE;
    uint8_t *out = calloc(1, len);
    if (!out) {
        free(pages);
        return;
    }
    Elf64_Ehdr eh = {.e_type = ET_CORE, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                     .e_phoff = phoff, .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (Elf64_Half)(1 + nload)};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    memcpy(out, &eh, sizeof eh);
    Elf64_Phdr ph = {.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = notes, .p_align = 4};
    memcpy(out + phoff, &ph, sizeof ph);
    uint8_t *np = out + note_off;
    np = put_note(np, NT_PRSTATUS, &ps, sizeof ps);
    np = put_note(np, NT_PRPSINFO, &pi, sizeof pi);
    put_note(np, NT_FPREGSET, &fp, sizeof fp);
    size_t k = 1;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && pages[j].gva == pages[j - 1].gva + PAGE)
            j++;
        const struct region *r = vm_region_of(vm, pages[i].gva);
        Elf64_Phdr lp = {.p_type = PT_LOAD, .p_flags = PF_R | ((r && (r->prot & SEG_W)) ? PF_W : 0),
                         .p_offset = data_off + i * PAGE, .p_vaddr = pages[i].gva,
                         .p_filesz = (j - i) * PAGE, .p_memsz = (j - i) * PAGE, .p_align = PAGE};
        memcpy(out + phoff + k++ * sizeof(Elf64_Phdr), &lp, sizeof lp);
        for (size_t q = i; q < j; q++)
            memcpy(out + data_off + q * PAGE, pages[q].host, PAGE);
        i = j;
    }
    free(pages);
    free(res->core);
    res->core = out;
    res->core_len = len;
}

/* The core may come from the store (an attempt's blob): every offset and size is checked against
 * len before it is read, so a damaged one is refused, never read beyond. */
int aspen_vm_core_set_program(uint8_t *core, size_t len, const char *exe)
{
    Elf64_Ehdr eh;
    if (!core || !exe || len < sizeof eh)
        return -1;
    memcpy(&eh, core, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_type != ET_CORE || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
        (size_t)eh.e_phnum > (len - eh.e_phoff) / sizeof(Elf64_Phdr))
        return -1;
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, core + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_NOTE || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            continue;
        size_t at = (size_t)ph.p_offset, end = at + (size_t)ph.p_filesz;
        while (end - at >= sizeof(Elf64_Nhdr)) {
            Elf64_Nhdr nh;
            memcpy(&nh, core + at, sizeof nh);
            size_t name = ((size_t)nh.n_namesz + 3) & ~(size_t)3;
            size_t desc = ((size_t)nh.n_descsz + 3) & ~(size_t)3;
            size_t body = end - at - sizeof nh;
            if (name > body || desc > body - name)
                return -1;
            uint8_t *d = core + at + sizeof nh + name;
            if (nh.n_type == NT_PRPSINFO && nh.n_descsz == sizeof(prpsinfo_t)) {
                prpsinfo_t pi;
                memcpy(&pi, d, sizeof pi);
                size_t bl = strlen(base);
                memset(pi.pr_fname, 0, sizeof pi.pr_fname);
                memset(pi.pr_psargs, 0, sizeof pi.pr_psargs);
                /* gdb compares the whole base name: a longer one cannot match (Linux cuts it the
                 * same way in its cores) */
                memcpy(pi.pr_fname, base, bl < sizeof pi.pr_fname - 1 ? bl : sizeof pi.pr_fname - 1);
                memcpy(pi.pr_psargs, base,
                       bl < sizeof pi.pr_psargs - 1 ? bl : sizeof pi.pr_psargs - 1);
                memcpy(d, &pi, sizeof pi);
                return 0;
            }
            at += sizeof nh + name + desc;
        }
    }
    return -1;
}
