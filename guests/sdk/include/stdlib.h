/* stdlib.h — the Aspen guest SDK's allocator, number parsing and sorting (freestanding).
 * malloc and friends live in guests/sdk/src/alloc.c, the rest in src/stdlib.c and src/strtod.c.
 * The heap is the job's share of guest memory; malloc returns NULL when it is used up, never
 * crashes. There are no processes: abort() and exit() end the job (see the notes below). */
#ifndef ASPEN_STDLIB_H
#define ASPEN_STDLIB_H

#include <aspen/libc_config.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
#define RAND_MAX 0x7fffffff

typedef struct { int quot, rem; } div_t;
typedef struct { long quot, rem; } ldiv_t;

/* 16-byte aligned; NULL when out of memory or the size overflows. */
void *malloc(size_t size) ASPEN_LIBC_MALLOC;
void *calloc(size_t n, size_t size) ASPEN_LIBC_MALLOC;
/* realloc(p, 0) frees p and returns NULL (as glibc does). On failure p is left untouched. */
void *realloc(void *p, size_t size) __attribute__((__warn_unused_result__));
/* alignment: a power of two; any size (C17's multiple-of-alignment rule is not enforced). */
void *aligned_alloc(size_t alignment, size_t size) ASPEN_LIBC_MALLOC;
void free(void *p);

long strtol(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
/* Correctly rounded (round-to-nearest-even) for decimal input of any length; also accepts
 * hexadecimal floats (0x1.8p3), "inf", "infinity" and "nan". Sets errno = ERANGE on overflow
 * (returns +-HUGE_VAL) and on underflow to zero. */
double strtod(const char *restrict s, char **restrict end);
float strtof(const char *restrict s, char **restrict end);
int atoi(const char *s);
long atol(const char *s);
long long atoll(const char *s);
double atof(const char *s);

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *bsearch(const void *key, const void *base, size_t n, size_t size,
              int (*cmp)(const void *, const void *));

int abs(int x);
long labs(long x);
long long llabs(long long x);
div_t div(int a, int b);
ldiv_t ldiv(long a, long b);

/* A small deterministic generator (the same sequence in every job: memory is reset per job). */
int rand(void);
void srand(unsigned seed);

/* No process to end: abort() ends the job as a panic ("abort() called"); exit(0) ends it as a
 * failure too, because a handler must return its result instead. */
ASPEN_LIBC_NORETURN void abort(void);
ASPEN_LIBC_NORETURN void exit(int status);

#ifdef __cplusplus
}
#endif
#endif
