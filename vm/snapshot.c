/* vm/snapshot.c — the warm VM's snapshot and its restore after every run.
 *
 * The snapshot is taken at the guest's READY exit. Guest memory is split by how it is restored:
 * the "hot" slot (data+bss, top of stack, call block, head of heap: what nearly every job writes)
 * by one memcpy; the "cold" slot page by page, only what KVM says the job dirtied (dirty ring, or
 * the dirty bitmap where there is no ring). Restoring so costs what a job dirtied, not the VM's size.
 */
#include "vm_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static int snap_cmp(const void *a, const void *b)
{
    const struct snap_page *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* ---- Dirty-page tracking of the cold slot ------------------------------------------------------
 * Preferred: KVM's dirty ring, a per-vCPU ring shared with the kernel that lists pages as they are
 * first written; a job that dirtied nothing costs no ioctl at all. Fallback: the dirty bitmap
 * (KVM_GET_DIRTY_LOG, ~1-2 µs per call here). Either way the pages land in vm->dirty as cold-slot
 * page indices, unsorted and possibly repeated, until restore or the snapshot consumes them. */
static int dirty_push(aspen_vm *vm, uint32_t idx)
{
    if (vm->ndirty == vm->dirty_cap) {
        size_t cap = vm->dirty_cap ? vm->dirty_cap * 2 : 256;
        uint32_t *d = realloc(vm->dirty, cap * sizeof *d);
        if (!d)
            return -1;
        vm->dirty = d;
        vm->dirty_cap = cap;
    }
    vm->dirty[vm->ndirty++] = idx;
    return 0;
}

int vm_note_host_write(aspen_vm *vm, uint64_t gva, uint64_t len)
{
    if (!vm->warm || !vm->cold_size || !len)
        return 0;
    uint64_t end;
    if (__builtin_add_overflow(gva, len, &end))
        return -1;
    for (uint64_t g = PAGE_DOWN(gva); g < end; g += PAGE) {
        const struct region *r = vm_region_of(vm, g);
        if (r && r->slot == 3 &&
            dirty_push(vm, (uint32_t)((r->gpa - vm->gpa_cold + (g - r->gva)) / PAGE)) != 0)
            return -1;
    }
    return 0;
}

/* Take every entry the kernel has published, give the entries back, and re-arm write protection
 * of the harvested pages (KVM_RESET_DIRTY_RINGS), as KVM_GET_DIRTY_LOG would. Also called when the
 * ring fills up in the middle of a run (KVM_EXIT_DIRTY_RING_FULL). */
int vm_ring_harvest(aspen_vm *vm)
{
    uint32_t got = 0, cold_pages = (uint32_t)(vm->cold_size / PAGE);
    for (;;) {
        struct kvm_dirty_gfn *e = &vm->ring[vm->ring_fetch & (vm->ring_n - 1)];
        if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
            break;
        if (e->slot == 3 && e->offset < cold_pages && dirty_push(vm, (uint32_t)e->offset) != 0)
            return -1;
        __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
        vm->ring_fetch++;
        got++;
    }
    if (got && vm_ioctl(vm->vmfd, KVM_RESET_DIRTY_RINGS, 0) < 0)
        return -1;
    return 0;
}

static int collect_dirty(aspen_vm *vm)
{
    if (vm->ring)
        return vm_ring_harvest(vm);
    struct kvm_dirty_log dl;
    memset(&dl, 0, sizeof dl);
    dl.slot = 3;
    dl.dirty_bitmap = vm->bitmap;
    memset(vm->bitmap, 0, vm->bitmap_words * 8);
    if (vm_ioctl(vm->vmfd, KVM_GET_DIRTY_LOG, &dl) != 0)
        return -1;
    for (size_t w = 0; w < vm->bitmap_words; w++)
        for (uint64_t bits = vm->bitmap[w]; bits; bits &= bits - 1)
            if (dirty_push(vm, (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(bits))) != 0)
                return -1;
    return 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop repeats, so restores coalesce runs and count each page once. */
static void dirty_sort_unique(aspen_vm *vm)
{
    if (vm->ndirty < 2)
        return;
    qsort(vm->dirty, vm->ndirty, sizeof *vm->dirty, u32_cmp);
    size_t k = 1;
    for (size_t i = 1; i < vm->ndirty; i++)
        if (vm->dirty[i] != vm->dirty[k - 1])
            vm->dirty[k++] = vm->dirty[i];
    vm->ndirty = k;
}

int vm_take_snapshot(aspen_vm *vm, aspen_vm_error *err)
{
    vm->hot_snap = malloc(vm->hot_size);
    if (!vm->hot_snap)
        goto fail_nomem;
    memcpy(vm->hot_snap, vm->umem, vm->hot_size);
    if (vm->cold_size == 0)
        return 0;
    if (collect_dirty(vm) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "cannot read the guest's dirty pages: %s",
                     strerror(errno));
        return ASPEN_VM_EKVM;
    }
    /* Cold pages that matter: what start-up dirtied, and what the host wrote (image data). */
    for (int i = 0; i < vm->nreg; i++)
        if (vm->reg[i].slot == 3 && vm->reg[i].gva >= vm->img->lo && vm->reg[i].gva < vm->img->hi)
            for (uint64_t p = 0; p < vm->reg[i].len; p += PAGE)
                if (dirty_push(vm, (uint32_t)((vm->reg[i].gpa - vm->gpa_cold + p) / PAGE)) != 0)
                    goto fail_nomem;
    dirty_sort_unique(vm);
    vm->cold_snap = calloc(vm->ndirty ? vm->ndirty : 1, sizeof *vm->cold_snap);
    if (!vm->cold_snap)
        goto fail_nomem;
    for (size_t i = 0; i < vm->ndirty; i++) {
        uint32_t idx = vm->dirty[i];
        const uint8_t *pg = vm->umem + vm->hot_size + (uint64_t)idx * PAGE;
        if (page_is_zero(pg))
            continue;
        uint8_t *copy = malloc(PAGE);
        if (!copy)
            goto fail_nomem;
        memcpy(copy, pg, PAGE);
        vm->cold_snap[vm->ncold_snap++] = (struct snap_page){idx, copy}; /* sorted: dirty is */
    }
    vm->ndirty = 0;
    return 0;
fail_nomem:
    vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory taking the VM snapshot");
    return ASPEN_VM_ENOMEM;
}

/* Long runs of pages that go back to zero are handed back to the kernel instead of cleared: an idle
 * pooled VM then holds no memory for what a big job touched (KVM refaults them as zero pages). */
#define ZERO_RUN_RELEASE 16u

struct zero_run {
    uint32_t start, len;
};

static void zero_run_flush(aspen_vm *vm, struct zero_run *z)
{
    if (!z->len)
        return;
    uint8_t *p = vm->umem + vm->hot_size + (uint64_t)z->start * PAGE;
    if (z->len < ZERO_RUN_RELEASE || madvise(p, (size_t)z->len * PAGE, MADV_DONTNEED) != 0)
        memset(p, 0, (size_t)z->len * PAGE);
    z->len = 0;
}

static void restore_cold_page(aspen_vm *vm, uint32_t idx, struct zero_run *z)
{
    uint8_t *pg = vm->umem + vm->hot_size + (uint64_t)idx * PAGE;
    struct snap_page key = {idx, NULL};
    struct snap_page *s = bsearch(&key, vm->cold_snap, vm->ncold_snap, sizeof key, snap_cmp);
    if (s) {
        zero_run_flush(vm, z);
        memcpy(pg, s->data, PAGE);
    } else if (z->len && z->start + z->len == idx) {
        z->len++;
    } else {
        zero_run_flush(vm, z);
        *z = (struct zero_run){idx, 1};
    }
}

/* Put guest memory back to the snapshot: the hot slot wholesale, the cold slot page by page as
 * dirtied by the guest (and by the host's writes for host calls, vm_note_host_write), plus the
 * pages the host itself wrote for the input. */
int vm_restore(aspen_vm *vm, uint64_t in_gva, uint64_t in_len, uint32_t *dirtied)
{
    memcpy(vm->umem, vm->hot_snap, vm->hot_size);
    *dirtied = 0;
    if (vm->cold_size == 0)
        return 0;
    if (collect_dirty(vm) != 0)
        return -1;
    *dirtied = (uint32_t)vm->ndirty; /* before adding the input: what the guest dirtied */
    for (uint64_t g = PAGE_DOWN(in_gva); in_len && g < in_gva + in_len; g += PAGE) {
        const struct region *r = vm_region_of(vm, g);
        if (r && r->slot == 3 &&
            dirty_push(vm, (uint32_t)((r->gpa - vm->gpa_cold + (g - r->gva)) / PAGE)) != 0)
            return -1;
    }
    dirty_sort_unique(vm);
    struct zero_run z = {0, 0};
    for (size_t i = 0; i < vm->ndirty; i++)
        restore_cold_page(vm, vm->dirty[i], &z);
    zero_run_flush(vm, &z);
    vm->ndirty = 0;
    return 0;
}
