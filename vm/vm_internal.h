/* vm/vm_internal.h — structures shared by the monitor's source files (image.c, host.c, vm.c).
 * Not installed, not included outside vm/. */
#ifndef ASPEN_VM_INTERNAL_H
#define ASPEN_VM_INTERNAL_H

#include "abi.h"
#include "aspen_vm.h"

#include <stdarg.h>
#include <stdatomic.h>

#define PAGE ((uint64_t)ASPEN_PAGE_SIZE)
#define PAGE_DOWN(x) ((uint64_t)(x) & ~(PAGE - 1))
#define PAGE_UP(x) (((uint64_t)(x) + PAGE - 1) & ~(PAGE - 1))

#define SEG_R 4u
#define SEG_W 2u
#define SEG_X 1u
#define IMAGE_MAX_SEGS 16

/* One PT_LOAD segment, page-rounded. Read-only segments live in the image's shared memfd at
 * ro_offset; writable ones keep a private copy (data) that each VM copies into its own memory. */
struct image_seg {
    uint64_t gva;  /* page-aligned start */
    uint64_t size; /* page-rounded size */
    uint32_t prot; /* SEG_R | SEG_W | SEG_X */
    uint64_t ro_offset;
    uint8_t *data;     /* writable segments only: size bytes */
    uint64_t file_off; /* where the segment's file bytes are, while loading */
    uint64_t file_len;
    uint64_t page_off; /* offset of p_vaddr within its first page */
};

struct aspen_vm_image {
    atomic_int refs;
    char name[128];
    size_t file_size;
    uint64_t entry;
    uint64_t execute;
    int nseg;
    struct image_seg seg[IMAGE_MAX_SEGS]; /* sorted by gva */
    uint64_t lo, hi;                      /* page-aligned span of all segments */
    int ro_fd;                            /* memfd with every read-only segment, back to back */
    const uint8_t *ro_map;                /* a read-only view of it (copied by one-shot VMs) */
    size_t ro_size;
    size_t rw_size;
};

/* Host function registry. */
struct host_entry {
    uint32_t number;
    char name[ASPEN_MAX_NAME];
    char signature[96];
    aspen_vm_hostfn fn;
    void *user;
};
#define HOST_MAX_ENTRIES 64
struct aspen_vm_host {
    int n;
    atomic_bool frozen;
    struct host_entry e[HOST_MAX_ENTRIES];
};

/* What a host function sees of the run that called it. */
struct aspen_vm_call {
    aspen_vm *vm;
    const struct host_entry *entry;
    uint64_t args[ASPEN_CALL_MAX_ARGS];
    int64_t ret;
    bool illegal;
    char *illegal_msg; /* points into the run's result message */
    size_t illegal_cap;
    aspen_vm_log_fn on_log;
    void *log_user;
    uint32_t *log_lines;
};

/* vm.c: guest memory access with every address checked. want_w asks for guest-writable pages. */
int vm_guest_copy_out(const aspen_vm *vm, uint64_t gva, uint64_t len, void *dst);
int vm_guest_copy_in(aspen_vm *vm, uint64_t gva, const void *src, uint64_t len);

/* host.c */
const struct host_entry *host_find(const aspen_vm_host *host, uint32_t number);
void host_freeze(aspen_vm_host *host);
aspen_vm_host *host_builtin(void); /* process-wide registry with the built-ins only */
/* Deliver text as log lines: split at '\n', control bytes replaced, long lines cut. */
void host_emit_log(aspen_vm_log_fn fn, void *user, const char *text, size_t len, bool truncated,
                   uint32_t *lines);

void vm_set_error(aspen_vm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
