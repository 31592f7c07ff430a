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
    clock_gettime(CLOCK_REALTIME, &ts);
    aspen_vm_call_return(call, (int64_t)ts.tv_sec);
    return 0;
}

static int fn_get_time_ns(aspen_vm_call *call, void *user)
{
    struct timespec ts;
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
    return 0;
}

int aspen_vm_call_write(aspen_vm_call *call, uint64_t gva, const void *src, uint64_t len)
{
    if (vm_guest_copy_in(call->vm, gva, src, len) != 0)
        return aspen_vm_call_illegal(call, "%s: write to 0x%llx + %llu bytes is outside the "
                                           "guest's writable memory",
                                     call->entry->name, (unsigned long long)gva,
                                     (unsigned long long)len);
    return 0;
}

void aspen_vm_call_log(aspen_vm_call *call, const char *line, size_t len)
{
    host_emit_log(call->on_log, call->log_user, line, len, false, call->log_lines);
}

/* Guest text is hostile: it reaches terminals (aspen run, the console), so control bytes other
 * than tab become '?', and it is split into lines at '\n'. */
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
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)text[start + k];
            line[k] = ((c < 0x20 && c != '\t') || c == 0x7f) ? '?' : (char)c;
        }
        if (truncated && i == len) {
            memcpy(line + n, mark, sizeof mark - 1);
            n += sizeof mark - 1;
        }
        line[n] = '\0';
        if (lines)
            (*lines)++;
        if (fn)
            fn(user, line, n);
        start = i + 1;
    }
}
