/* native_sys.c — the host side of the natively built SDK: what a guest would get from its VM.
 *
 * Compiled with the system's headers (not the SDK's), it provides the system allocator that the
 * renamed malloc family falls back to (so AddressSanitizer checks the JSON and format code when no
 * guest heap is set up), and aspen__fatal for the pure parts when they run outside the harness.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void *aspen__sys_malloc(size_t n);
void *aspen__sys_realloc(void *p, size_t n);
void aspen__sys_free(void *p);
void aspen__native_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

void (*aspen_native_fatal_hook)(const char *message);

void *aspen__sys_malloc(size_t n) { return malloc(n); }
void *aspen__sys_realloc(void *p, size_t n) { return realloc(p, n); }
void aspen__sys_free(void *p) { free(p); }

void aspen__native_fatal(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (aspen_native_fatal_hook)
        aspen_native_fatal_hook(msg);
    fprintf(stderr, "aspen SDK (native): fatal: %s\n", msg);
    abort();
}
