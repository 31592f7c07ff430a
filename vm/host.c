/* vm/host.c — the registry of host functions a guest may call, and the built-ins.
 *
 * The seed asks that every function beyond hl_println and hl_get_time be audited, so the registry
 * is explicit: numbered entries with a name and a signature, listable, frozen once a VM uses it
 * (lookups on the hot path then need no lock). Host functions see guest memory only through the
 * checked accessors here, which go through vm.c's address translation.
 */
#include "vm_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fn_println(aspen_vm_call *call, void *user)
{
    uint64_t ptr = call->args[0], len = call->args[1];
    char buf[ASPEN_MAX_LOG_LINE];
    bool cut = len > sizeof buf;
    uint64_t take = cut ? sizeof buf : len;
    uint64_t end;
    /* The whole claimed range must be guest memory, even the part we do not read. */
    if (__builtin_add_overflow(ptr, len, &end))
        return aspen_vm_call_illegal(call, "hl_println: buffer 0x%llx + %llu bytes wraps around "
                                           "the address space",
                                     (unsigned long long)ptr, (unsigned long long)len);
    if (len > (1ull << 31))
        return aspen_vm_call_illegal(call, "hl_println: length %llu is larger than any guest "
                                           "memory",
                                     (unsigned long long)len);
    if (vm_guest_copy_out(call->vm, ptr + take, len - take, NULL) != 0 ||
        aspen_vm_call_read(call, ptr, take, buf) != 0)
        return call->illegal ? -1
                             : aspen_vm_call_illegal(call, "hl_println: buffer 0x%llx + %llu bytes "
                                                           "is outside guest memory",
                                                     (unsigned long long)ptr,
                                                     (unsigned long long)len);
    host_emit_log(call->on_log, call->log_user, buf, take, cut, call->log_lines);
    aspen_vm_call_return(call, 0);
    return 0;
}

static int fn_get_time(aspen_vm_call *call, void *user)
{
    struct timespec ts;
    if (call->vm->tape) /* recorded, or replayed from the record */
        vm_tape_clock(call->vm, CLOCK_REALTIME, &ts);
    else
        clock_gettime(CLOCK_REALTIME, &ts);
    aspen_vm_call_return(call, (int64_t)ts.tv_sec);
    return 0;
}

static int fn_get_time_ns(aspen_vm_call *call, void *user)
{
    struct timespec ts;
    if (call->vm->tape)
        vm_tape_clock(call->vm, CLOCK_REALTIME, &ts);
    else
        clock_gettime(CLOCK_REALTIME, &ts);
    aspen_vm_call_return(call, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 0;
}

static void add_builtin(aspen_vm_host *h, uint32_t number, const char *name, const char *sig,
                        aspen_vm_hostfn fn)
{
    struct host_entry *e = &h->e[h->n++];
    e->number = number;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->signature, sizeof e->signature, "%s", sig);
    e->fn = fn;
}

aspen_vm_host *aspen_vm_host_new(void)
{
    aspen_vm_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    add_builtin(h, ASPEN_FN_PRINTLN, "hl_println", "(const char *line, u64 len) -> 0", fn_println);
    add_builtin(h, ASPEN_FN_GET_TIME, "hl_get_time", "() -> u64 unix_seconds", fn_get_time);
    add_builtin(h, ASPEN_FN_GET_TIME_NS, "hl_get_time_ns", "() -> u64 unix_nanoseconds",
                fn_get_time_ns);
    return h;
}

void aspen_vm_host_free(aspen_vm_host *host) { free(host); }

static aspen_vm_host *g_builtin;
static void make_builtin(void) { g_builtin = aspen_vm_host_new(); }

aspen_vm_host *host_builtin(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_builtin);
    return g_builtin;
}

int aspen_vm_host_register(aspen_vm_host *host, const char *name, const char *signature,
                           aspen_vm_hostfn fn, void *user, aspen_vm_error *err)
{
    if (atomic_load(&host->frozen)) {
        vm_set_error(err, ASPEN_VM_EREGISTRY, "cannot register host function %s: VMs already use "
                     "this registry; register every function before creating the first VM",
                     name ? name : "(null)");
        return ASPEN_VM_EREGISTRY;
    }
    size_t len = name ? strlen(name) : 0;
    bool ok = len > 0 && len < ASPEN_MAX_NAME && fn;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
             (name[i] >= '0' && name[i] <= '9') || name[i] == '_';
    if (!ok) {
        vm_set_error(err, ASPEN_VM_EREGISTRY, "invalid host function name \"%s\": use 1 to %u "
                     "letters, digits or underscores, and give a function",
                     name ? name : "(null)", ASPEN_MAX_NAME - 1);
        return ASPEN_VM_EREGISTRY;
    }
    for (int i = 0; i < host->n; i++)
        if (strcmp(host->e[i].name, name) == 0) {
            vm_set_error(err, ASPEN_VM_EREGISTRY, "host function %s is already registered", name);
            return ASPEN_VM_EREGISTRY;
        }
    if (host->n == HOST_MAX_ENTRIES) {
        vm_set_error(err, ASPEN_VM_EREGISTRY, "too many host functions (max %d)",
                     HOST_MAX_ENTRIES);
        return ASPEN_VM_EREGISTRY;
    }
    uint32_t number = ASPEN_FN_FIRST_EXTRA;
    for (int i = 0; i < host->n; i++)
        if (host->e[i].number >= number)
            number = host->e[i].number + 1;
    struct host_entry *e = &host->e[host->n];
    e->number = number;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->signature, sizeof e->signature, "%s", signature ? signature : "");
    e->fn = fn;
    e->user = user;
    host->n++;
    return 0;
}

size_t aspen_vm_host_count(const aspen_vm_host *host) { return (size_t)host->n; }

int aspen_vm_host_entry(const aspen_vm_host *host, size_t i, uint32_t *number, const char **name,
                        const char **signature)
{
    if (i >= (size_t)host->n)
        return ASPEN_VM_EINVAL;
    if (number)
        *number = host->e[i].number;
    if (name)
        *name = host->e[i].name;
    if (signature)
        *signature = host->e[i].signature;
    return 0;
}

const struct host_entry *host_find(const aspen_vm_host *host, uint32_t number)
{
    for (int i = 0; i < host->n; i++)
        if (host->e[i].number == number)
            return &host->e[i];
    return NULL;
}

void host_freeze(aspen_vm_host *host) { atomic_store(&host->frozen, true); }

uint64_t aspen_vm_call_arg(const aspen_vm_call *call, unsigned i)
{
    return i < ASPEN_CALL_MAX_ARGS ? call->args[i] : 0;
}

void aspen_vm_call_return(aspen_vm_call *call, int64_t value) { call->ret = value; }

int aspen_vm_call_illegal(aspen_vm_call *call, const char *fmt, ...)
{
    if (!call->illegal) {
        call->illegal = true;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(call->illegal_msg, call->illegal_cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int aspen_vm_call_read(aspen_vm_call *call, uint64_t gva, uint64_t len, void *dst)
{
    if (vm_guest_copy_out(call->vm, gva, len, dst) != 0)
        return aspen_vm_call_illegal(call, "%s: read of 0x%llx + %llu bytes is outside guest "
                                           "memory",
                                     call->entry->name, (unsigned long long)gva,
                                     (unsigned long long)len);
    if (call->vm->tape)
        vm_tape_read(call->vm, dst, len);
    return 0;
}

int aspen_vm_call_write(aspen_vm_call *call, uint64_t gva, const void *src, uint64_t len)
{
    if (vm_guest_copy_in(call->vm, gva, src, len) != 0)
        return aspen_vm_call_illegal(call, "%s: write to 0x%llx + %llu bytes is outside the "
                                           "guest's writable memory",
                                     call->entry->name, (unsigned long long)gva,
                                     (unsigned long long)len);
    if (call->vm->tape && call->entry->number >= ASPEN_FN_FIRST_EXTRA) {
        /* what a registered function wrote is part of its result: recorded for replay */
        bool replayed;
        vm_tape_int(call->vm, (int64_t)gva);
        vm_tape_bytes(call->vm, (void *)src, len, &replayed);
    }
    return 0;
}

void aspen_vm_call_log(aspen_vm_call *call, const char *line, size_t len)
{
    host_emit_log(call->on_log, call->log_user, line, len, false, call->log_lines);
}

/* The well-formed UTF-8 sequence at s[0, n): its length (1..4) and code point, or 0 when there is
 * none (stray continuation, overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t log_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        lo = b == 0xe0 ? 0xa0 : 0x80; /* below: overlong */
        hi = b == 0xed ? 0x9f : 0xbf; /* above: surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        lo = b == 0xf0 ? 0x90 : 0x80; /* below: overlong */
        hi = b == 0xf4 ? 0x8f : 0xbf; /* above: beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    uint32_t v = b & (len == 2 ? 0x1fu : len == 3 ? 0x0fu : 0x07u);
    for (size_t i = 1; i < len; i++) {
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
            return 0;
        v = v << 6 | (c & 0x3fu);
    }
    *cp = v;
    return len;
}

/* True for what a terminal acts on or reorders by: C1 controls (U+0080..U+009F) and the bidi
 * embedding, override, isolate and mark characters, and the line/paragraph separators. */
static bool log_control_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

/* Guest text is hostile: it reaches terminals (aspen run, the console, aspen logs), so C0 controls
 * other than tab, DEL, C1 controls (as UTF-8, or as raw bytes 0x80..0x9F outside any character,
 * which 8-bit terminals read as CSI and friends) and bidi controls each become one '?'; it is
 * split into lines at '\n'. Other bytes that are not UTF-8 are kept: the front ends show them as
 * \xNN (tui/include/aspen_text.h), and the store keeps what the guest said. */
void host_emit_log(aspen_vm_log_fn fn, void *user, const char *text, size_t len, bool truncated,
                   uint32_t *lines)
{
    static const char mark[] = "\xe2\x80\xa6[truncated]";
    char line[ASPEN_MAX_LOG_LINE + sizeof mark];
    size_t start = 0;
    if (len > 0 && text[len - 1] == '\n')
        len--; /* a trailing newline ends the line; it does not start an empty one */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n')
            continue;
        size_t n = i - start;
        if (n > ASPEN_MAX_LOG_LINE)
            n = ASPEN_MAX_LOG_LINE;
        const unsigned char *src = (const unsigned char *)text + start;
        size_t w = 0; /* never more than n: every replacement is no longer than what it replaces */
        for (size_t k = 0; k < n;) {
            unsigned char c = src[k];
            uint32_t cp;
            size_t u = c < 0x80 ? 1 : log_utf8_decode(src + k, n - k, &cp);
            if (c < 0x80) {
                line[w++] = ((c < 0x20 && c != '\t') || c == 0x7f) ? '?' : (char)c;
            } else if (u == 0) {
                line[w++] = c <= 0x9f ? '?' : (char)c; /* a raw C1 byte, or kept */
                u = 1;
            } else if (log_control_cp(cp)) {
                line[w++] = '?';
            } else {
                memcpy(line + w, src + k, u);
                w += u;
            }
            k += u;
        }
        if (truncated && i == len) {
            memcpy(line + w, mark, sizeof mark - 1);
            w += sizeof mark - 1;
        }
        line[w] = '\0';
        if (lines)
            (*lines)++;
        if (fn)
            fn(user, line, w);
        start = i + 1;
    }
}
