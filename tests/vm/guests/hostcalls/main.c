/* tests/vm/guests/hostcalls — host calls on demand: with a number N as input it makes N hl_get_time
 * calls and outputs their sum (exactly N host calls, for tests and the per-call cost benchmark);
 * "ns" outputs hl_get_time_ns(); "call:NAME:A:B" calls a host function registered by the embedder. */
#include <aspen.h>
#include <stdlib.h>
#include <string.h>

#include "../test_guest.h"

/* "call:NAME:A:B": look NAME up among the host's functions and call it with (A, B); the output is
 * its return value, or "ENOENT" when the host has no such function. */
static int call_by_name(const char *spec, aspen_buf *out)
{
    char name[128];
    unsigned long long a = 0, b = 0;
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof name)
        return aspen_error("test-hostcalls: want call:NAME:A:B");
    memcpy(name, spec, (size_t)(colon - spec));
    name[colon - spec] = '\0';
    a = strtoull(colon + 1, (char **)&colon, 10);
    if (*colon == ':')
        b = strtoull(colon + 1, NULL, 10);
    int64_t fn = aspen_host_lookup(name);
    if (fn < 0)
        return aspen_buf_puts(out, "ENOENT");
    return aspen_buf_appendf(out, "%lld", (long long)aspen_hostcall((uint32_t)fn, 2, a, b));
}

static int hostcalls(const uint8_t *in, size_t len, aspen_buf *out)
{
    char text[256];
    if (len < sizeof text) {
        memcpy(text, in, len);
        text[len] = '\0';
        if (strncmp(text, "call:", 5) == 0)
            return call_by_name(text + 5, out);
        if (strcmp(text, "ns") == 0) /* the finer clock, in nanoseconds */
            return aspen_buf_appendf(out, "%llu", (unsigned long long)hl_get_time_ns());
    }
    uint64_t n, sum = 0;
    if (!input_u64(in, len, &n))
        return aspen_error("test-hostcalls: the input must be a call count");
    for (uint64_t i = 0; i < n; i++)
        sum += hl_get_time();
    return aspen_buf_appendf(out, "%llu", (unsigned long long)sum);
}

ASPEN_JOB_HANDLER(hostcalls);
