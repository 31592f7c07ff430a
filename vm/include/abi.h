/* vm/include/abi.h — the one contract between the Aspen host (vm/) and guest code (guests/sdk).
 *
 * Plain C with fixed-width types only, included by both sides. Everything a guest written in any
 * language needs is here and in docs/ABI.md: the ELF note that marks a binary as built for this ABI,
 * the I/O ports that are the only way out of the VM, the call block shared between guest and host,
 * status and error codes, and the host function numbers.
 *
 * Life of a guest:
 *   1. The host loads the static ELF, builds the memory map, and enters the ELF entry point (_start)
 *      at CPL 3 with rdi = address of the call block, rsp = top of the stack.
 *   2. The guest initialises itself (heap, globals) and writes ASPEN_EXIT_READY to ASPEN_PORT_EXIT.
 *      The host snapshots the VM here; every job starts from this snapshot.
 *   3. For each job the host restores the snapshot, writes the input into guest memory, and enters
 *      the function named by the ABI note's `execute` field with rdi = call block, rsi = input
 *      address, rdx = input length, rsp = top of the stack (a zero return address on it: returning
 *      from execute is a fault, not a way to finish).
 *   4. The guest fills status / output / message in the call block and writes ASPEN_EXIT_DONE to
 *      ASPEN_PORT_EXIT. One VM exit ends the job.
 *   Host calls: fill call_fn and call_args, write the function number to ASPEN_PORT_CALL (one exit);
 *   the host writes call_ret before the guest resumes.
 */
#ifndef ASPEN_VM_ABI_H
#define ASPEN_VM_ABI_H

#include <stdint.h>

#define ASPEN_ABI_VERSION 1u

/* ---- ELF note: owner "Aspen", type ASPEN_NOTE_TYPE, descriptor struct aspen_abi_note. ---------- */
#define ASPEN_NOTE_OWNER "Aspen"
#define ASPEN_NOTE_TYPE 0x31505341u /* "ASP1" little-endian */
struct aspen_abi_note {
    uint32_t abi_version; /* ASPEN_ABI_VERSION */
    uint32_t flags;       /* reserved, 0 */
    uint64_t execute;     /* address of the job entry `execute`; 0 means "missing execute" */
};

/* ---- Guest virtual address space. --------------------------------------------------------------
 * Loadable segments must lie in [ASPEN_USER_MIN, ASPEN_USER_MAX). The host places, after the image
 * (page aligned, a 64 KiB unmapped guard gap first): the stack, the call block page, then the heap up to
 * the end of guest memory. Exact addresses are reported in the call block. Everything else,
 * including page 0, is unmapped. The SDK links images at ASPEN_IMAGE_BASE. */
#define ASPEN_PAGE_SIZE 4096u
#define ASPEN_USER_MIN 0x10000ull
#define ASPEN_USER_MAX 0x40000000ull /* 1 GiB */
#define ASPEN_IMAGE_BASE 0x400000ull

/* ---- Ports (outl %eax to the port). A 32-bit OUT to port P is checked against I/O-bitmap bits
 * P..P+3, so the two guest ports sit 4 apart: the TSS I/O bitmap opens 0xA0-0xA7 to CPL 3 and
 * nothing else (any other port is a #GP, reported as a fault). An OUT inside that window that is not
 * a 4-byte write to CALL or EXIT ends the run as an illegal host call. ------------------------------ */
#define ASPEN_PORT_CALL 0xA0u  /* data: the host function number (same as call_fn) */
#define ASPEN_PORT_EXIT 0xA4u  /* data: ASPEN_EXIT_READY or ASPEN_EXIT_DONE */
#define ASPEN_PORT_FAULT 0xA8u /* the host's ring-0 fault stub only: closed to CPL 3 */

#define ASPEN_EXIT_READY 1u /* start-up finished: snapshot point */
#define ASPEN_EXIT_DONE 2u  /* job finished: status, output and message are in the call block */

/* Job status written by the guest before ASPEN_EXIT_DONE. */
#define ASPEN_STATUS_OK 0u    /* output_ptr/output_len hold the result */
#define ASPEN_STATUS_ERROR 1u /* the handler failed: message_ptr/message_len say why */
#define ASPEN_STATUS_PANIC 2u /* the guest panicked: message_ptr/message_len say why */

/* ---- Host functions. Numbers below ASPEN_FN_FIRST_EXTRA are built in; functions registered by the
 * embedding program get numbers from ASPEN_FN_FIRST_EXTRA up, found by name with ASPEN_FN_LOOKUP. */
#define ASPEN_FN_LOOKUP 0u      /* (name_ptr, name_len) -> function number, or ASPEN_CALL_ENOENT */
#define ASPEN_FN_PRINTLN 1u     /* hl_println(ptr, len) -> 0; one log line per call ('\n' splits) */
#define ASPEN_FN_GET_TIME 2u    /* hl_get_time() -> Unix time in seconds (host clock) */
#define ASPEN_FN_GET_TIME_NS 3u /* hl_get_time_ns() -> Unix time in nanoseconds (host clock) */
#define ASPEN_FN_FIRST_EXTRA 16u
#define ASPEN_CALL_MAX_ARGS 6u

/* Negative call_ret values a host function may return to the guest (the call itself succeeded). */
#define ASPEN_CALL_ENOENT (-2) /* lookup: no host function of that name */
#define ASPEN_CALL_EINVAL (-22)
#define ASPEN_CALL_EFAIL (-1) /* the host function failed */

/* Limits the host enforces on host-call arguments. */
#define ASPEN_MAX_LOG_LINE 16384u /* longer hl_println lines are cut and marked "…[truncated]" */
#define ASPEN_MAX_NAME 128u       /* host function names */
#define ASPEN_MAX_MESSAGE 4096u   /* error and panic messages: longer ones are cut and marked "…" */

#define ASPEN_BLOCK_MAGIC 0x4e505341u /* "ASPN" */

/* The call block: one page of guest memory, address in rdi at _start and at execute. */
struct aspen_abi_block {
    /* Written by the host when the VM is built; constant afterwards. */
    uint32_t magic;       /* ASPEN_BLOCK_MAGIC */
    uint32_t abi_version; /* ASPEN_ABI_VERSION */
    uint64_t mem_size;    /* guest memory in bytes (the whole configured size) */
    uint64_t stack_low;   /* lowest stack address (an unmapped 64 KiB guard gap lies below) */
    uint64_t stack_high;  /* one past the highest stack address */
    uint64_t heap_start;  /* first heap byte */
    uint64_t heap_end;    /* one past the last byte of guest memory */

    /* Written by the host before each job: the input lies at the top of the heap range, so the
     * heap a job may use is [heap_start, input_ptr). */
    uint64_t input_ptr;
    uint64_t input_len;

    /* Written by the guest before ASPEN_EXIT_DONE. */
    uint32_t status; /* ASPEN_STATUS_* */
    uint32_t reserved0;
    uint64_t output_ptr;
    uint64_t output_len;
    uint64_t message_ptr;
    uint64_t message_len;

    /* Host call: the guest fills call_fn and call_args, the host fills call_ret. */
    uint32_t call_fn;
    uint32_t reserved1;
    uint64_t call_args[ASPEN_CALL_MAX_ARGS];
    int64_t call_ret;
};

/* The layout is part of the contract (docs/ABI.md lists these offsets for other languages). */
_Static_assert(sizeof(struct aspen_abi_note) == 16, "note descriptor layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, input_ptr) == 48, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, status) == 64, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, output_ptr) == 72, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, message_ptr) == 88, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, call_fn) == 104, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, call_args) == 112, "call block layout");
_Static_assert(__builtin_offsetof(struct aspen_abi_block, call_ret) == 160, "call block layout");
_Static_assert(sizeof(struct aspen_abi_block) == 168, "call block layout");

#endif /* ASPEN_VM_ABI_H */
