/* vm/vm.c — one KVM micro-VM: creating it (memory layout, regions, then the KVM objects and the
 * guest's start-up), destroying it, checked access to guest memory, and its statistics.
 *
 * Shape of a VM (see docs/ARCHITECTURE.md and docs/ABI.md):
 *   - Guest code runs at CPL 3 in 64-bit long mode set up entirely by the host (no guest kernel).
 *     On this project's nested KVM, ring-0 guest code is emulated (~1 µs/instruction), so ring 0 is
 *     used only by the fault stub (vm/stub.S), never on a job's normal path.
 *   - Guest memory is exactly cfg.memory_bytes of user pages: the image (code R+X, rodata R, data
 *     R+W no-exec), the stack (a 64 KiB unmapped guard gap below it), the call block page, and the heap. Page 0 and
 *     everything else are unmapped. A separate "system" region (GDT, IDT, TSS with the I/O bitmap,
 *     fault stub, ring-0 stack, page tables) is supervisor-only, outside that budget.
 *   - Physically, the guest's pages are grouped by how they are restored between jobs, and mapped to
 *     the guest's virtual layout by the page tables:
 *       slot 0  system region                  restored only after a fault (registers)
 *       slot 1  read-only image (shared memfd)  never written: one copy for every VM of the image
 *       slot 2  "hot": data+bss, top of stack, call block, head of heap — what nearly every job
 *               writes; restored by one memcpy (cheaper than write-protect faults on this machine)
 *       slot 3  "cold": the rest of stack and heap — dirty-logged by KVM; only pages a job dirtied
 *               are restored, so restoring costs what the job dirtied, not the VM's size.
 *   - Every exit costs ~20 µs here, so a job that makes no host call costs exactly one exit (DONE),
 *     and host-call arguments travel in the call block, never through KVM_GET_REGS.
 *   - Deadlines: a per-thread POSIX timer sends a real-time signal to the vCPU thread; its handler
 *     sets kvm_run.immediate_exit so even a signal landing just before KVM_RUN is not lost.
 */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

bool aspen_vm_usable(const aspen_vm *vm) { return !vm->broken && !(vm->used && !vm->warm); }

const struct region *vm_region_of(const aspen_vm *vm, uint64_t gva)
{
    for (int i = 0; i < vm->nreg; i++)
        if (gva >= vm->reg[i].gva && gva - vm->reg[i].gva < vm->reg[i].len)
            return &vm->reg[i];
    return NULL;
}

/* Copy [gva, gva+len) out of guest memory (dst NULL: only check). Every byte must be mapped. */
int vm_guest_copy_out(const aspen_vm *vm, uint64_t gva, uint64_t len, void *dst)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end))
        return -1;
    while (len > 0) {
        const struct region *r = vm_region_of(vm, gva);
        if (!r)
            return -1;
        uint64_t off = gva - r->gva, n = r->len - off;
        if (n > len)
            n = len;
        if (dst) {
            memcpy(dst, r->host + off, n);
            dst = (uint8_t *)dst + n;
        }
        gva += n;
        len -= n;
    }
    return 0;
}

int vm_guest_copy_in(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len)
{
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end) || vm_guest_copy_out(vm, gva, len, NULL) != 0)
        return -1;
    for (uint64_t g = gva; g < end;) { /* all of it must be guest-writable before we write any */
        const struct region *r = vm_region_of(vm, g);
        if (!(r->prot & SEG_W))
            return -1;
        g = r->gva + r->len;
    }
    while (len > 0) {
        const struct region *r = vm_region_of(vm, gva);
        uint64_t off = gva - r->gva, n = r->len - off;
        if (n > len)
            n = len;
        memcpy(r->host + off, src, n);
        src = (const uint8_t *)src + n;
        gva += n;
        len -= n;
    }
    return 0;
}

static void add_region(aspen_vm *vm, uint64_t gva, uint64_t len, int slot, uint64_t slot_off,
                       uint32_t prot)
{
    if (len == 0)
        return;
    struct region *r = &vm->reg[vm->nreg++];
    r->gva = gva;
    r->len = len;
    r->prot = prot;
    r->slot = slot;
    if (slot == 1) {
        r->host = vm->code + slot_off;
        r->gpa = vm->gpa_code + slot_off;
    } else if (slot == 2) {
        r->host = vm->umem + slot_off;
        r->gpa = vm->gpa_hot + slot_off;
    } else {
        r->host = vm->umem + vm->hot_size + slot_off;
        r->gpa = vm->gpa_cold + slot_off;
    }
}

static int region_cmp(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    return x->gva < y->gva ? -1 : x->gva > y->gva;
}

void aspen_vm_config_default(aspen_vm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->memory_bytes = 1u << 20;
    cfg->stack_bytes = 64u << 10;
    cfg->timeout_ms = 1000;
    cfg->max_output = 16u << 20;
    cfg->warm = true;
}

int aspen_vm_parse_size(const char *s, size_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1ull << 10, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1ull << 20, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1ull << 30, end++;
    if (mul > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (mul > 1 && (*end == 'b' || *end == 'B'))
        end++;
    else if (mul == 1 && (*end == 'b' || *end == 'B'))
        end++;
    if (*end != '\0' || v == 0 || __builtin_mul_overflow(v, mul, &v) || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

int aspen_vm_create(aspen_vm_image *img, const aspen_vm_config *cfg_in, aspen_vm_host *host,
                    aspen_vm **out, aspen_vm_error *err)
{
    uint64_t t0 = now_ns();
    *out = NULL;
    int rc = vm_kvm_open(err);
    if (rc)
        return rc;
    aspen_vm_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        aspen_vm_config_default(&cfg);
    if (cfg.memory_bytes == 0)
        cfg.memory_bytes = 1u << 20;
    if (cfg.stack_bytes == 0)
        cfg.stack_bytes = 64u << 10;
    if (cfg.timeout_ms == 0)
        cfg.timeout_ms = 1000;
    if (cfg.max_output == 0)
        cfg.max_output = 16u << 20;
    if (cfg.memory_bytes < ASPEN_VM_MIN_MEMORY || cfg.memory_bytes > ASPEN_VM_MAX_MEMORY) {
        vm_set_error(err, ASPEN_VM_EINVAL, "guest memory must be between 64 KiB and 1 GiB (got "
                     "%zu bytes)", cfg.memory_bytes);
        return ASPEN_VM_EINVAL;
    }
    cfg.memory_bytes = PAGE_UP(cfg.memory_bytes);
    cfg.stack_bytes = PAGE_UP(cfg.stack_bytes);
    if (cfg.stack_bytes < (16u << 10) || cfg.stack_bytes > (256u << 20)) {
        vm_set_error(err, ASPEN_VM_EINVAL, "stack must be between 16 KiB and 256 MiB (got %zu "
                     "bytes)", cfg.stack_bytes);
        return ASPEN_VM_EINVAL;
    }
    size_t image_mem = img->ro_size + img->rw_size;
    size_t need = image_mem + cfg.stack_bytes + ASPEN_VM_MEMORY_RESERVE; /* block + 4 heap pages */
    if (cfg.memory_bytes < need) {
        vm_set_error(err, ASPEN_VM_EINVAL,
                     "guest memory of %zu KiB is too small for %s: its image takes %zu KiB and "
                     "the stack %zu KiB; give it at least %zu KiB",
                     cfg.memory_bytes >> 10, img->name, image_mem >> 10, cfg.stack_bytes >> 10,
                     (need + 1023) >> 10);
        return ASPEN_VM_EINVAL;
    }
    if (!host)
        host = host_builtin();
    if (!host) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
        return ASPEN_VM_ENOMEM;
    }
    host_freeze(host);

    aspen_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory creating a VM");
        return ASPEN_VM_ENOMEM;
    }
    vm->img = aspen_vm_image_retain(img);
    vm->host = host;
    vm->cfg = cfg;
    vm->warm = cfg.warm;
    vm->vmfd = vm->cpufd = -1;
    pthread_mutex_init(&vm->kick_lock, NULL);
    rc = ASPEN_VM_EKVM;

    /* Virtual layout: image, guard gap, stack, call block, heap to the end of guest memory. */
    uint64_t heap_bytes = cfg.memory_bytes - image_mem - cfg.stack_bytes - PAGE;
    vm->stack_lo = img->hi + STACK_GUARD;
    vm->stack_hi = vm->stack_lo + cfg.stack_bytes;
    vm->block_gva = vm->stack_hi;
    vm->heap_start = vm->block_gva + PAGE;
    vm->heap_end = vm->heap_start + heap_bytes;

    /* Physical grouping: hot (memcpy-restored) and cold (dirty-logged). */
    bool rw_hot = img->rw_size <= HOT_IMAGE_MAX;
    uint64_t stack_hot = cfg.stack_bytes < STACK_HOT ? cfg.stack_bytes : STACK_HOT;
    uint64_t heap_hot = heap_bytes < HEAP_HOT ? heap_bytes : HEAP_HOT;
    vm->hot_size = (rw_hot ? img->rw_size : 0) + stack_hot + PAGE + heap_hot;
    vm->cold_size = cfg.memory_bytes - img->ro_size - vm->hot_size;

    /* Page-table pages: an upper bound, touched only as used. */
    size_t pt_pages = 1 + 3; /* PML4 + the system mapping's PDPT, PD, PT */
    int nparts = img->nseg + 5;
    pt_pages += (size_t)nparts * 6 + cfg.memory_bytes / (2u << 20) + 2;
    vm->sys_size = SYS_PT_OFF + pt_pages * PAGE;
    /* One host mapping for everything private to this VM; guest-physical addresses follow it, so
     * a one-shot VM needs a single memory slot (each slot costs ~20 µs to register here). A warm
     * VM maps the image's shared code instead of copying it, and dirty-logs its cold part. */
    vm->code_shared = vm->warm;
    size_t code_copy = vm->code_shared ? 0 : img->ro_size;
    vm->arena_size = vm->sys_size + code_copy + vm->hot_size + vm->cold_size;
    vm->arena = mmap(NULL, vm->arena_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->arena == MAP_FAILED) {
        vm->arena = NULL;
        vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map %zu bytes of guest memory: %s",
                     cfg.memory_bytes, strerror(errno));
        rc = ASPEN_VM_ENOMEM;
        goto fail_destroy;
    }
    vm->sys = vm->arena;
    vm->umem = vm->arena + vm->sys_size + code_copy;
    vm->gpa_hot = GPA_SYS + vm->sys_size + code_copy;
    vm->gpa_cold = vm->gpa_hot + vm->hot_size;
    if (!vm->code_shared) {
        vm->code = vm->arena + vm->sys_size;
        vm->gpa_code = GPA_SYS + vm->sys_size;
        memcpy(vm->code, img->ro_map, img->ro_size);
    } else {
        vm->gpa_code = (GPA_SYS + vm->arena_size + (2u << 20)) & ~((2ull << 20) - 1);
        vm->code = mmap(NULL, img->ro_size, vm_kvm.readonly_mem ? PROT_READ : PROT_READ | PROT_WRITE,
                        vm_kvm.readonly_mem ? MAP_SHARED : MAP_PRIVATE, img->ro_fd, 0);
        if (vm->code == MAP_FAILED) {
            vm->code = NULL;
            vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map the image of %s: %s", img->name,
                         strerror(errno));
            rc = ASPEN_VM_ENOMEM;
            goto fail_destroy;
        }
    }

    /* Regions: image segments, stack (cold bottom, hot top), call block, heap (hot head). */
    uint64_t hot_off = 0, cold_off = 0;
    for (int i = 0; i < img->nseg; i++) {
        const struct image_seg *s = &img->seg[i];
        if (!(s->prot & SEG_W)) {
            add_region(vm, s->gva, s->size, 1, s->ro_offset, s->prot);
        } else if (rw_hot) {
            memcpy(vm->umem + hot_off, s->data, s->size);
            add_region(vm, s->gva, s->size, 2, hot_off, s->prot);
            hot_off += s->size;
        } else {
            memcpy(vm->umem + vm->hot_size + cold_off, s->data, s->size);
            add_region(vm, s->gva, s->size, 3, cold_off, s->prot);
            cold_off += s->size;
        }
    }
    add_region(vm, vm->stack_lo, cfg.stack_bytes - stack_hot, 3, cold_off, SEG_R | SEG_W);
    cold_off += cfg.stack_bytes - stack_hot;
    add_region(vm, vm->stack_hi - stack_hot, stack_hot, 2, hot_off, SEG_R | SEG_W);
    hot_off += stack_hot;
    vm->blk = (struct aspen_abi_block *)(vm->umem + hot_off);
    add_region(vm, vm->block_gva, PAGE, 2, hot_off, SEG_R | SEG_W);
    hot_off += PAGE;
    add_region(vm, vm->heap_start, heap_hot, 2, hot_off, SEG_R | SEG_W);
    add_region(vm, vm->heap_start + heap_hot, heap_bytes - heap_hot, 3, cold_off, SEG_R | SEG_W);
    qsort(vm->reg, (size_t)vm->nreg, sizeof vm->reg[0], region_cmp);

    /* Page tables and the system region. */
    vm_build_system(vm);
    vm->pt_next = SYS_PT_OFF + PAGE; /* the PML4 itself */
    static const struct { uint32_t off; uint64_t flags; } sys_pages[] = {
        {SYS_GDT_OFF, X86_PTE_P | X86_PTE_W | X86_PTE_NX}, {SYS_STUB_OFF, X86_PTE_P},
        {SYS_FAULT_OFF, X86_PTE_P | X86_PTE_W | X86_PTE_NX}, {SYS_STACK_OFF, X86_PTE_P | X86_PTE_W | X86_PTE_NX},
        {SYS_STACK_OFF + 0x1000, X86_PTE_P | X86_PTE_W | X86_PTE_NX}, {SYS_TRAMP_OFF, X86_PTE_P | X86_PTE_U},
    };
    for (size_t i = 0; i < sizeof sys_pages / sizeof sys_pages[0]; i++)
        if (vm_map_page(vm, SYS_GVA + sys_pages[i].off, GPA_SYS + sys_pages[i].off,
                     sys_pages[i].flags) != 0)
            goto fail_pt;
    for (int i = 0; i < vm->nreg; i++) {
        const struct region *r = &vm->reg[i];
        uint64_t flags = X86_PTE_P | X86_PTE_U | ((r->prot & SEG_W) ? X86_PTE_W : 0) |
                         ((r->prot & SEG_X) ? 0 : X86_PTE_NX);
        for (uint64_t p = 0; p < r->len; p += PAGE)
            if (vm_map_page(vm, r->gva + p, r->gpa + p, flags) != 0)
                goto fail_pt;
    }

    /* The call block's constant part. */
    vm->blk->magic = ASPEN_BLOCK_MAGIC;
    vm->blk->abi_version = ASPEN_ABI_VERSION;
    vm->blk->mem_size = cfg.memory_bytes;
    vm->blk->stack_low = vm->stack_lo;
    vm->blk->stack_high = vm->stack_hi;
    vm->blk->heap_start = vm->heap_start;
    vm->blk->heap_end = vm->heap_end;
    vm->blk->input_ptr = vm->heap_end;

    if (img->linux_abi) {
        rc = vm_lx_init(vm, err);
        vm->cfg.argv = NULL; /* the caller's array is not ours to keep */
        if (rc)
            goto fail_destroy;
    }
    if ((rc = vm_kvm_setup(vm, err)) != 0)
        goto fail_destroy;
    if ((rc = vm_startup(vm, err)) != 0)
        goto fail_destroy;
    vm->cold_start_ns = now_ns() - t0;
    *out = vm;
    return 0;

fail_pt:
    vm_set_error(err, ASPEN_VM_ENOMEM, "internal error: page-table pool exhausted");
    rc = ASPEN_VM_ENOMEM;
fail_destroy:
    aspen_vm_destroy(vm);
    return rc;
}

void aspen_vm_destroy(aspen_vm *vm)
{
    if (!vm)
        return;
    if (vm->run)
        munmap(vm->run, vm->run_size);
    if (vm->cpufd >= 0)
        close(vm->cpufd);
    if (vm->vmfd >= 0)
        close(vm->vmfd);
    if (vm->arena)
        munmap(vm->arena, vm->arena_size);
    if (vm->code && vm->code_shared)
        munmap(vm->code, vm->img->ro_size);
    for (size_t i = 0; i < vm->ncold_snap; i++)
        free(vm->cold_snap[i].data);
    free(vm->cold_snap);
    free(vm->hot_snap);
    free(vm->bitmap);
    free(vm->dirty);
    if (vm->ring)
        munmap(vm->ring, (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn));
    vm_lx_free(vm);
    pthread_mutex_destroy(&vm->kick_lock);
    aspen_vm_image_release(vm->img);
    free(vm);
}

static size_t resident(const void *addr, size_t len)
{
    if (!addr || !len)
        return 0;
    size_t pages = (len + PAGE - 1) / PAGE, n = 0;
    unsigned char vec[4096];
    for (size_t off = 0; off < pages; off += sizeof vec) {
        size_t chunk = pages - off < sizeof vec ? pages - off : sizeof vec;
        size_t bytes = chunk * PAGE;
        if (off * PAGE + bytes > len)
            bytes = len - off * PAGE;
        if (mincore((uint8_t *)addr + off * PAGE, bytes, vec) != 0)
            return 0;
        for (size_t i = 0; i < chunk; i++)
            n += vec[i] & 1;
    }
    return n * PAGE;
}

void aspen_vm_get_stats(const aspen_vm *vm, aspen_vm_stats *st)
{
    memset(st, 0, sizeof *st);
    st->memory_bytes = vm->cfg.memory_bytes;
    st->memory_touched = resident(vm->umem, vm->hot_size + vm->cold_size) +
                         resident(vm->code, vm->img->ro_size);
    st->host_overhead = resident(vm->sys, vm->sys_size) + (vm->hot_snap ? vm->hot_size : 0) +
                        vm->ncold_snap * (PAGE + sizeof(struct snap_page)) +
                        vm->bitmap_words * 8 + vm->dirty_cap * sizeof *vm->dirty +
                        (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn) + vm->run_size +
                        sizeof *vm;
    st->cold_start_ns = vm->cold_start_ns;
    st->runs = vm->runs;
    st->last_pages_dirtied = vm->last_dirty;
}

const aspen_vm_image *aspen_vm_get_image(const aspen_vm *vm) { return vm->img; }
