/* runtime.c — the guest SDK's runtime: start-up, the per-job entry, handler dispatch, host calls,
 * failure and panic reporting, and the ABI note that names `execute` (vm/include/abi.h).
 *
 * Life of a guest (vm/include/abi.h): _start (start.S) calls aspen__startup, which sets up the heap, runs
 * the guest's ASPEN_INIT hook and writes ASPEN_EXIT_READY; the host snapshots the VM there. For
 * each job the host restores that snapshot and enters `execute` (start.S), which calls
 * aspen__execute: run the handler, fill status/output/message in the call block, write
 * ASPEN_EXIT_DONE. Exactly one exit per job unless the handler makes host calls.
 *
 * Everything here except the port I/O also builds natively (ASPEN_SDK_NATIVE): the host tests run
 * real guest handlers through aspen__init/aspen__run_job with a fake host (native/native_sys.c),
 * so a guest's logic can be tested without a VM.
 */
#include <aspen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

/* ---- Port I/O: the only way out of the VM. -------------------------------------------------- */
#if defined(ASPEN_SDK_NATIVE)
void aspen__port_out(uint16_t port, uint32_t value); /* native/native_sys.c: the fake host */
#else
static inline void aspen__port_out(uint16_t port, uint32_t value)
{
    /* The "memory" clobber makes every store to the call block happen before the exit and every
     * load of call_ret happen after it. */
    __asm__ volatile("outl %0, %w1" : : "a"(value), "Nd"(port) : "memory");
}
#endif

struct aspen_job_ctx {
    const uint8_t *in;
    size_t len;
};

static struct aspen_abi_block *g_blk;
static aspen_job_ctx g_ctx;
static char g_msg[ASPEN_MESSAGE_MAX];
static size_t g_msg_len;
static bool g_has_msg;
static const uint8_t g_empty[1];

/* The guest's optional start-up hook (ASPEN_INIT): weak, so guests without one still link. */
#pragma weak aspen_guest_init

struct aspen_abi_block *aspen_call_block(void) { return g_blk; }

/* ---- Messages -------------------------------------------------------------------------------- */

static void set_message_v(const char *fmt, va_list ap)
{
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    if (n < 0)
        n = 0;
    g_msg_len = (size_t)n < sizeof g_msg ? (size_t)n : sizeof g_msg - 1;
    g_has_msg = true;
}

void aspen__set_message(bool force, const char *fmt, ...)
{
    if (g_has_msg && !force)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
}

int aspen_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
    return -1;
}

aspen_json *aspen_fail(aspen_job_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
    return NULL;
}

const uint8_t *aspen_job_input(const aspen_job_ctx *ctx, size_t *len)
{
    if (len)
        *len = ctx ? ctx->len : 0;
    return ctx ? ctx->in : NULL;
}

/* ---- Finishing a job ------------------------------------------------------------------------- */

void aspen__finish(uint32_t status, const void *out, size_t out_len)
{
    struct aspen_abi_block *b = g_blk;
    b->status = status;
    b->output_ptr = (uint64_t)(uintptr_t)(out ? out : g_empty);
    b->output_len = out ? out_len : 0;
    b->message_ptr = (uint64_t)(uintptr_t)g_msg;
    b->message_len = status == ASPEN_STATUS_OK ? 0 : g_msg_len;
}

ASPEN_NORETURN static void exit_done(void)
{
    for (;;)
        aspen__port_out(ASPEN_PORT_EXIT, ASPEN_EXIT_DONE);
}

void aspen_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
    if (g_blk)
        aspen__finish(ASPEN_STATUS_PANIC, NULL, 0);
    exit_done();
}

#if !defined(ASPEN_SDK_NATIVE)
void aspen__fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(fmt, ap);
    va_end(ap);
    if (g_blk)
        aspen__finish(ASPEN_STATUS_PANIC, NULL, 0);
    exit_done();
}
#endif

void aspen__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    aspen_panic("assertion failed: %s (%s:%d, in %s)", expr, file, line, func);
}

void abort(void) { aspen_panic("abort() called"); }

void exit(int status)
{
    aspen_panic("exit(%d) called: a job handler must return its result instead", status);
}

/* ---- Host calls ------------------------------------------------------------------------------ */

int64_t aspen_hostcallv(uint32_t fn, const uint64_t *args, unsigned nargs)
{
    if (nargs > ASPEN_CALL_MAX_ARGS || (nargs && !args))
        return ASPEN_CALL_EINVAL;
    struct aspen_abi_block *b = g_blk;
    b->call_fn = fn;
    unsigned i = 0;
    for (; i < nargs; i++)
        b->call_args[i] = args[i];
    for (; i < ASPEN_CALL_MAX_ARGS; i++)
        b->call_args[i] = 0; /* no stale arguments from an earlier call */
    aspen__port_out(ASPEN_PORT_CALL, fn);
    return b->call_ret;
}

int64_t aspen_hostcall(uint32_t fn, unsigned nargs, ...)
{
    uint64_t args[ASPEN_CALL_MAX_ARGS];
    if (nargs > ASPEN_CALL_MAX_ARGS)
        return ASPEN_CALL_EINVAL;
    va_list ap;
    va_start(ap, nargs);
    for (unsigned i = 0; i < nargs; i++)
        args[i] = va_arg(ap, uint64_t);
    va_end(ap);
    return aspen_hostcallv(fn, args, nargs);
}

int hl_print(const char *s, size_t len)
{
    uint64_t args[2] = {(uint64_t)(uintptr_t)s, len};
    return (int)aspen_hostcallv(ASPEN_FN_PRINTLN, args, 2);
}

int hl_vprintln(const char *fmt, va_list ap)
{
    /* Short lines (nearly all) are formatted on the stack; long ones on the heap, and if the heap
     * is full, the first part is sent rather than nothing. */
    char line[512];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    int r;
    if (n < 0) {
        r = ASPEN_CALL_EINVAL;
    } else if ((size_t)n < sizeof line) {
        r = hl_print(line, (size_t)n);
    } else {
        char *long_line = malloc((size_t)n + 1);
        if (long_line) {
            vsnprintf(long_line, (size_t)n + 1, fmt, ap2);
            r = hl_print(long_line, (size_t)n);
            free(long_line);
        } else {
            r = hl_print(line, sizeof line - 1);
        }
    }
    va_end(ap2);
    return r;
}

int hl_println(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = hl_vprintln(fmt, ap);
    va_end(ap);
    return r;
}

uint64_t hl_get_time(void) { return (uint64_t)aspen_hostcallv(ASPEN_FN_GET_TIME, NULL, 0); }

uint64_t hl_get_time_ns(void) { return (uint64_t)aspen_hostcallv(ASPEN_FN_GET_TIME_NS, NULL, 0); }

int64_t aspen_host_lookup(const char *name)
{
    if (!name)
        return ASPEN_CALL_EINVAL;
    uint64_t args[2] = {(uint64_t)(uintptr_t)name, strlen(name)};
    return aspen_hostcallv(ASPEN_FN_LOOKUP, args, 2);
}

/* ---- Start-up and jobs ----------------------------------------------------------------------- */

/* Constructors (__attribute__((constructor))), collected by aspen.ld. */
typedef void (*init_fn)(void);
extern const init_fn __init_array_start[] __attribute__((weak));
extern const init_fn __init_array_end[] __attribute__((weak));

void aspen__init(struct aspen_abi_block *blk)
{
    g_blk = blk;
    if (blk->heap_start && blk->heap_end > blk->heap_start)
        aspen_heap_init((void *)(uintptr_t)blk->heap_start, (void *)(uintptr_t)blk->heap_end);
    else
        aspen_heap_init(NULL, NULL);
#if !defined(ASPEN_SDK_NATIVE)
    for (const init_fn *f = __init_array_start; f && f < __init_array_end; f++)
        (*f)();
#endif
    if (&aspen_guest_init && aspen_guest_init)
        aspen_guest_init();
}

size_t aspen_heap_used_top(void); /* alloc.c: bytes of heap start-up has claimed */

void aspen__run_job(struct aspen_abi_block *blk, const uint8_t *in, size_t len)
{
    g_blk = blk;
    g_has_msg = false;
    g_msg_len = 0;
    g_ctx.in = in ? in : g_empty;
    g_ctx.len = len;

    /* The host put the input at the top of the heap range: the job's heap ends where it starts. */
    if (blk->input_ptr && blk->heap_start) {
        if (blk->input_ptr < blk->heap_start + aspen_heap_used_top()) {
            aspen__set_message(true, "the input (%llu bytes) overlaps the %llu bytes of heap the guest used at "
                        "start-up: give the VM more memory",
                        (unsigned long long)blk->input_len,
                        (unsigned long long)aspen_heap_used_top());
            aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
            return;
        }
        aspen_heap_set_limit((void *)(uintptr_t)blk->input_ptr);
    }

    const aspen_handler_def *h = &aspen_guest_handler;
    aspen_buf out = ASPEN_BUF_INIT;
    if (!h->run) {
        aspen__set_message(true, "this guest has no valid handler (define one with "
                                 "ASPEN_JOB_HANDLER or ASPEN_JSON_HANDLER)");
        aspen__finish(ASPEN_STATUS_PANIC, NULL, 0);
        return;
    }
    /* The output is not freed: it lives in the heap, where the host reads it after DONE, and
     * memory is reset before the next job anyway. */
    h->run(h, &g_ctx, &out);
}

void aspen__run_bytes(const aspen_handler_def *h, aspen_job_ctx *ctx, aspen_buf *out)
{
    int rc = h->bytes ? h->bytes(ctx->in, ctx->len, out) : -1;
    if (rc != 0) {
        aspen__set_message(false, "handler failed (returned %d)", rc);
        aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
    } else if (out->failed) {
        aspen__set_message(true, "out of memory building the output (%zu bytes so far)", out->len);
        aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
    } else {
        aspen__finish(ASPEN_STATUS_OK, out->data, out->len);
    }
}

#if !defined(ASPEN_SDK_NATIVE)
/* Called by _start (start.S) on an aligned stack. Never returns: the host snapshots the VM at the
 * READY exit and never resumes this path (if it did, we would just report READY again). */
ASPEN_NORETURN void aspen__startup(struct aspen_abi_block *blk);
void aspen__startup(struct aspen_abi_block *blk)
{
    aspen__init(blk);
    for (;;)
        aspen__port_out(ASPEN_PORT_EXIT, ASPEN_EXIT_READY);
}

/* Called by execute (start.S) for every job. */
ASPEN_NORETURN void aspen__execute(struct aspen_abi_block *blk, const uint8_t *in, size_t len);
void aspen__execute(struct aspen_abi_block *blk, const uint8_t *in, size_t len)
{
    aspen__run_job(blk, in, len);
    exit_done();
}

/* The ABI note: owner "Aspen", type ASPEN_NOTE_TYPE, descriptor {version, flags, &execute}. The
 * section name starting with ".note" makes the assembler give it type SHT_NOTE; aspen.ld keeps it
 * and gives it its own PT_NOTE program header, which is where the host looks. */
struct __attribute__((packed, aligned(4))) aspen_note_section {
    uint32_t namesz, descsz, type;
    char name[8]; /* "Aspen\0" padded to 4 bytes */
    struct aspen_abi_note desc;
};
_Static_assert(__builtin_offsetof(struct aspen_note_section, desc) == 20, "note layout");
_Static_assert(sizeof(struct aspen_note_section) == 36, "note layout");

__attribute__((used, section(".note.aspen"), aligned(4))) static const struct aspen_note_section
    aspen__note = {
    sizeof ASPEN_NOTE_OWNER,
    sizeof(struct aspen_abi_note),
    ASPEN_NOTE_TYPE,
    ASPEN_NOTE_OWNER,
    {ASPEN_ABI_VERSION, 0, (uint64_t)(uintptr_t)&execute},
};
#endif
