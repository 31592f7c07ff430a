/* aspen_native.h — the guest SDK built natively on the host, for tests (never used by guests).
 *
 * The SDK's pure parts (string, stdlib, alloc, format, strtod, json, buf, math) and its runtime are
 * compiled with ASPEN_SDK_NATIVE, which renames each C library function NAME to aspen_n_NAME (see
 * include/aspen/libc_config.h) so it can be linked next to glibc and compared with it. This header
 * declares those renamed functions for test code that includes glibc's headers, plus a harness
 * that runs a guest's real handler without a VM: a fake host answers the host calls and collects
 * the log, and the guest gets a heap of its own laid out as in a VM (input at the top).
 */
#ifndef ASPEN_NATIVE_H
#define ASPEN_NATIVE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/aspen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The SDK's C library, renamed. ----------------------------------------------------------- */
void *aspen_n_memcpy(void *restrict dst, const void *restrict src, size_t n);
void *aspen_n_memmove(void *dst, const void *src, size_t n);
void *aspen_n_memset(void *dst, int c, size_t n);
int aspen_n_memcmp(const void *a, const void *b, size_t n);
void *aspen_n_memchr(const void *s, int c, size_t n);
void *aspen_n_memrchr(const void *s, int c, size_t n);
void *aspen_n_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);
size_t aspen_n_strlen(const char *s);
size_t aspen_n_strnlen(const char *s, size_t max);
int aspen_n_strcmp(const char *a, const char *b);
int aspen_n_strncmp(const char *a, const char *b, size_t n);
int aspen_n_strcasecmp(const char *a, const char *b);
int aspen_n_strncasecmp(const char *a, const char *b, size_t n);
char *aspen_n_strchr(const char *s, int c);
char *aspen_n_strrchr(const char *s, int c);
char *aspen_n_strstr(const char *hay, const char *needle);
char *aspen_n_strcpy(char *restrict dst, const char *restrict src);
char *aspen_n_strncpy(char *restrict dst, const char *restrict src, size_t n);
char *aspen_n_strcat(char *restrict dst, const char *restrict src);
char *aspen_n_strncat(char *restrict dst, const char *restrict src, size_t n);
size_t aspen_n_strlcpy(char *restrict dst, const char *restrict src, size_t size);
size_t aspen_n_strlcat(char *restrict dst, const char *restrict src, size_t size);
size_t aspen_n_strspn(const char *s, const char *accept);
size_t aspen_n_strcspn(const char *s, const char *reject);
char *aspen_n_strpbrk(const char *s, const char *accept);
char *aspen_n_strtok_r(char *restrict s, const char *restrict delim, char **restrict save);
char *aspen_n_strdup(const char *s);
char *aspen_n_strndup(const char *s, size_t n);

void *aspen_n_malloc(size_t n);
void *aspen_n_calloc(size_t n, size_t size);
void *aspen_n_realloc(void *p, size_t n);
void *aspen_n_aligned_alloc(size_t alignment, size_t n);
void aspen_n_free(void *p);

long aspen_n_strtol(const char *restrict s, char **restrict end, int base);
unsigned long aspen_n_strtoul(const char *restrict s, char **restrict end, int base);
long long aspen_n_strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long aspen_n_strtoull(const char *restrict s, char **restrict end, int base);
double aspen_n_strtod(const char *restrict s, char **restrict end);
int aspen_n_atoi(const char *s);
void aspen_n_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *aspen_n_bsearch(const void *key, const void *base, size_t n, size_t size,
                      int (*cmp)(const void *, const void *));
extern int aspen_n_errno;

int aspen_n_snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
    __attribute__((format(printf, 3, 4)));
int aspen_n_vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

double aspen_n_floor(double x);
double aspen_n_ceil(double x);
double aspen_n_trunc(double x);
double aspen_n_round(double x);
double aspen_n_fmod(double x, double y);
double aspen_n_sqrt(double x);
double aspen_n_ldexp(double x, int exp);
double aspen_n_frexp(double x, int *exp);

/* ---- The allocator's heap (alloc.c). Until aspen_heap_init is called with a range, the renamed
 * malloc family forwards to the system allocator; aspen_heap_init(NULL, NULL) goes back to that. */
void aspen_heap_init(void *start, void *end);
void aspen_heap_set_limit(void *limit);

/* Exact decimal digits of a double (format.c). */
int aspen__dtoa_exact(double x, char *digits, int *dexp);

/* Called instead of abort() when the SDK finds a fatal error (a bad free) outside the harness;
 * tests may set it to observe the message. It must not return (longjmp out). */
extern void (*aspen_native_fatal_hook)(const char *message);

/* ---- Running a guest's handler natively. ----------------------------------------------------- */
typedef struct aspen_native_config {
    size_t memory_bytes; /* the guest heap, input included; default 1 MiB */
    uint64_t time_s;     /* what hl_get_time returns; 0 = the real clock */
    uint64_t time_ns;    /* what hl_get_time_ns returns; 0 = the real clock */
    bool echo_log;       /* also print log lines to stderr */
} aspen_native_config;

typedef struct aspen_native_result {
    uint32_t status;      /* ASPEN_STATUS_* */
    bool illegal_call;    /* a host call broke the rules (message says how) */
    bool input_too_large; /* the input did not fit in memory_bytes (nothing ran) */
    uint8_t *output;      /* malloc'd copy, NUL-terminated (not counted) */
    size_t output_len;
    char *message;        /* malloc'd, NUL-terminated; "" on success */
    char *log;            /* every hl_println line, each ending in '\n' */
    size_t log_len;
    uint32_t host_calls;
} aspen_native_result;

/* A host function for aspen_host_lookup / aspen_hostcall; returns call_ret. */
typedef int64_t (*aspen_native_hostfn)(const uint64_t args[ASPEN_CALL_MAX_ARGS], void *user);
/* Returns the function's number (>= ASPEN_FN_FIRST_EXTRA) or -1. */
int aspen_native_register(const char *name, aspen_native_hostfn fn, void *user);

/* Start the guest (heap, ASPEN_INIT) and run one job; every call starts afresh. 0, or -1 if the
 * host side ran out of memory. */
int aspen_native_run(const aspen_native_config *cfg, const void *input, size_t len,
                     aspen_native_result *res);
void aspen_native_result_free(aspen_native_result *res);

#ifdef __cplusplus
}
#endif
#endif
