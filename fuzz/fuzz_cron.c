/* fuzz/fuzz_cron.c — libFuzzer target: the schedules' cron expressions (aspen_store_cron_parse,
 * store/cron.c), what `aspen cron add` takes from a user. An input is one expression; a failure
 * must be EINVAL with a message that begins with `cron expression "`; an expression that parses
 * must have a next occurrence strictly later than the time asked (in UTC and in a DST zone,
 * from several starting times), or EINVAL saying it never matches — never a crash, a hang or an
 * occurrence in the past. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aspen_store.h"

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_cron: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static aspen_store_tz *g_berlin;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (aspen_store_tz_open("Europe/Berlin", &g_berlin, NULL) != 0)
        g_berlin = NULL; /* no tzdata: UTC only */
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char expr[512];
    if (size >= sizeof expr)
        size = sizeof expr - 1;
    memcpy(expr, data, size);
    expr[size] = '\0';
    aspen_store_cron c;
    aspen_store_error e = {0};
    int rc = aspen_store_cron_parse(expr, &c, &e);
    if (rc) {
        if (rc != ASPEN_STORE_EINVAL || !e.msg[0])
            finding("parse failed with %d and message \"%s\"", rc, e.msg);
        if (strlen(expr) == size && strncmp(e.msg, "cron expression \"", 17) != 0)
            finding("parse error without the expression: %s", e.msg);
        return 0;
    }
    static const int64_t starts[] = {0, 1700000000000LL, 1774746000000LL, 4102444800000LL};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        for (int z = 0; z < 2; z++) {
            int64_t next = 0;
            e = (aspen_store_error){0};
            rc = aspen_store_cron_next(&c, z ? g_berlin : NULL, starts[i], &next, &e);
            if (rc && (rc != ASPEN_STORE_EINVAL || !e.msg[0]))
                finding("next failed with %d: %s", rc, e.msg);
            if (!rc && next <= starts[i])
                finding("next occurrence %lld is not after %lld", (long long)next,
                        (long long)starts[i]);
        }
    return 0;
}
