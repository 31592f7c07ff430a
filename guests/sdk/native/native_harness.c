/* native_harness.c — run a guest's handler natively, with a fake host standing in for the VM.
 *
 * The runtime's port I/O (aspen__port_out) lands here instead of in a VM exit: CALL dispatches the
 * built-in host functions (hl_println into a log buffer, the clocks, lookup of functions the test
 * registered), EXIT ends the start-up or the job with a longjmp back to aspen_native_run. Memory is
 * laid out as a VM would: one heap range with the input copied to its top. Compiled with the
 * system's headers; link it only into tests that also link one guest (it needs the guest's
 * aspen_guest_handler).
 */
#include "aspen_native.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void aspen__port_out(uint16_t port, uint32_t value);
void aspen__init(struct aspen_abi_block *blk);
void aspen__run_job(struct aspen_abi_block *blk, const uint8_t *in, size_t len);

#define MAX_EXTRA 16
static struct {
    char name[ASPEN_MAX_NAME];
    aspen_native_hostfn fn;
    void *user;
} g_extra[MAX_EXTRA];
static int g_nextra;

static struct {
    struct aspen_abi_block *blk;
    const aspen_native_config *cfg;
    aspen_native_result *res;
    uint8_t *mem;
    size_t mem_size;
    jmp_buf jb;
    bool armed;
    char illegal[256];
    size_t log_cap;
} H;

int aspen_native_register(const char *name, aspen_native_hostfn fn, void *user)
{
    if (g_nextra == MAX_EXTRA || strlen(name) >= ASPEN_MAX_NAME)
        return -1;
    snprintf(g_extra[g_nextra].name, sizeof g_extra[g_nextra].name, "%s", name);
    g_extra[g_nextra].fn = fn;
    g_extra[g_nextra].user = user;
    return (int)ASPEN_FN_FIRST_EXTRA + g_nextra++;
}

__attribute__((noreturn)) static void illegal(const char *why)
{
    snprintf(H.illegal, sizeof H.illegal, "%s", why);
    H.res->illegal_call = true;
    longjmp(H.jb, 1);
}

static void log_append(const char *s, size_t n)
{
    aspen_native_result *r = H.res;
    if (r->log_len + n + 2 > H.log_cap) {
        size_t cap = (r->log_len + n + 2) * 2;
        char *p = realloc(r->log, cap);
        if (!p)
            return;
        r->log = p;
        H.log_cap = cap;
    }
    memcpy(r->log + r->log_len, s, n);
    r->log_len += n;
    r->log[r->log_len++] = '\n';
    r->log[r->log_len] = '\0';
    if (H.cfg->echo_log)
        fprintf(stderr, "[guest] %.*s\n", (int)n, s);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void host_call(struct aspen_abi_block *b, uint32_t fn)
{
    const uint64_t *a = b->call_args;
    H.res->host_calls++;
    switch (fn) {
    case ASPEN_FN_PRINTLN: {
        /* Natively a guest string may be a literal in the test binary: accept any pointer the
         * sanitizers would accept, but insist on the sizes the VM enforces. */
        if (a[1] > (1u << 31) || a[0] + a[1] < a[0])
            illegal("hl_println: buffer length out of range");
        if (a[0] == 0 && a[1] != 0)
            illegal("hl_println: NULL buffer");
        const char *s = (const char *)(uintptr_t)a[0];
        size_t n = a[1];
        size_t start = 0;
        for (size_t i = 0; i <= n; i++)
            if (i == n || s[i] == '\n') {
                if (i > start || i < n)
                    log_append(s + start, i - start > ASPEN_MAX_LOG_LINE ? ASPEN_MAX_LOG_LINE : i - start);
                start = i + 1;
            }
        b->call_ret = 0;
        return;
    }
    case ASPEN_FN_GET_TIME:
        b->call_ret = H.cfg->time_s ? (int64_t)H.cfg->time_s : now_ns() / 1000000000;
        return;
    case ASPEN_FN_GET_TIME_NS:
        b->call_ret = H.cfg->time_ns ? (int64_t)H.cfg->time_ns : now_ns();
        return;
    case ASPEN_FN_LOOKUP: {
        if (a[1] >= ASPEN_MAX_NAME) {
            b->call_ret = ASPEN_CALL_ENOENT;
            return;
        }
        if (a[0] == 0)
            illegal("lookup: NULL name");
        const char *name = (const char *)(uintptr_t)a[0];
        b->call_ret = ASPEN_CALL_ENOENT;
        for (int i = 0; i < g_nextra; i++)
            if (strlen(g_extra[i].name) == a[1] && memcmp(g_extra[i].name, name, a[1]) == 0)
                b->call_ret = (int64_t)ASPEN_FN_FIRST_EXTRA + i;
        return;
    }
    default:
        if (fn >= ASPEN_FN_FIRST_EXTRA && fn < ASPEN_FN_FIRST_EXTRA + (uint32_t)g_nextra) {
            int i = (int)(fn - ASPEN_FN_FIRST_EXTRA);
            b->call_ret = g_extra[i].fn(a, g_extra[i].user);
            return;
        }
        illegal("unknown host function number");
    }
}

void aspen__port_out(uint16_t port, uint32_t value)
{
    if (!H.armed) {
        fprintf(stderr, "aspen SDK (native): port 0x%x written outside aspen_native_run\n", port);
        abort();
    }
    if (port == ASPEN_PORT_CALL) {
        if (value != H.blk->call_fn)
            illegal("CALL port value differs from call_fn");
        host_call(H.blk, value);
        return;
    }
    if (port == ASPEN_PORT_EXIT && (value == ASPEN_EXIT_DONE || value == ASPEN_EXIT_READY))
        longjmp(H.jb, 1);
    illegal("write to an unknown port");
}

/* A fatal SDK error inside the harness ends the job as a panic, as in a VM. */
__attribute__((noreturn)) static void fatal_to_panic(const char *msg) { aspen_panic("%s", msg); }

int aspen_native_run(const aspen_native_config *cfg, const void *input, size_t len,
                     aspen_native_result *res)
{
    static const aspen_native_config defaults = {0};
    memset(res, 0, sizeof res[0]);
    if (!cfg)
        cfg = &defaults;
    size_t mem = cfg->memory_bytes ? cfg->memory_bytes : (1u << 20);
    struct aspen_abi_block *blk = calloc(1, sizeof *blk);
    uint8_t *m = malloc(mem);
    if (!blk || !m) {
        free(blk);
        free(m);
        return -1;
    }
    memset(&H, 0, sizeof H);
    H.blk = blk;
    H.cfg = cfg;
    H.res = res;
    H.mem = m;
    H.mem_size = mem;

    uint64_t lo = (uint64_t)(uintptr_t)m, hi = lo + mem;
    blk->magic = ASPEN_BLOCK_MAGIC;
    blk->abi_version = ASPEN_ABI_VERSION;
    blk->mem_size = mem;
    blk->heap_start = lo;
    blk->heap_end = hi;
    blk->stack_low = blk->stack_high = 0;
    void (*saved_hook)(const char *) = aspen_native_fatal_hook;
    aspen_native_fatal_hook = fatal_to_panic;

    H.armed = true;
    volatile bool started = false;
    if (setjmp(H.jb) == 0) {
        aspen__init(blk);
        started = true;
    }
    if (started && !res->illegal_call) {
        /* The input at the top of the heap range, 16-byte aligned, as the VM places it. */
        uint64_t in_at = (hi - len) & ~(uint64_t)15;
        if (len > mem || in_at < lo) {
            res->input_too_large = true;
        } else {
            blk->input_ptr = in_at;
            blk->input_len = len;
            if (len)
                memcpy((void *)(uintptr_t)in_at, input, len);
            blk->status = UINT32_MAX;
            if (setjmp(H.jb) == 0)
                aspen__run_job(blk, (const uint8_t *)(uintptr_t)in_at, len);
        }
    }
    /* If start-up ended with DONE (a panic in ASPEN_INIT), blk holds its status and message. */
    H.armed = false;
    aspen_native_fatal_hook = saved_hook;

    res->status = blk->status;
    const char *msg = res->illegal_call ? H.illegal : (const char *)(uintptr_t)blk->message_ptr;
    size_t mlen = res->illegal_call ? strlen(H.illegal) : (size_t)blk->message_len;
    res->message = malloc(mlen + 1);
    res->output = malloc(blk->output_len + 1);
    if (res->message) {
        if (mlen)
            memcpy(res->message, msg, mlen);
        res->message[mlen] = '\0';
    }
    if (res->output) {
        if (blk->output_len)
            memcpy(res->output, (const void *)(uintptr_t)blk->output_ptr, blk->output_len);
        res->output[blk->output_len] = '\0';
        res->output_len = blk->output_len;
    }
    if (!res->log) {
        res->log = malloc(1);
        if (res->log)
            res->log[0] = '\0';
    }
    aspen_heap_init(NULL, NULL); /* later SDK calls in the test go to the system allocator */
    free(m);
    free(blk);
    return res->message && res->output && res->log ? 0 : -1;
}

void aspen_native_result_free(aspen_native_result *res)
{
    free(res->output);
    free(res->message);
    free(res->log);
    memset(res, 0, sizeof *res);
}
