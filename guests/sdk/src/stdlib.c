/* stdlib.c — integer parsing, sorting and small helpers of the guest SDK (include/stdlib.h).
 *
 * Pure C, built for guests and natively for the tests. strtod lives in strtod.c, the allocator in
 * alloc.c; abort() and exit() belong to the runtime (they end the job). errno is a plain global:
 * guests have no thread pointer, and memory is reset before every job anyway.
 */
#define ASPEN_LIBC_IMPL 1
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int errno;

static int digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 99;
}

/* The shared core of the strto* family: parse an optionally signed magnitude in base (0 = C
 * prefixes), saturating at `limit`; *neg reports the sign, *over a value beyond limit. Returns
 * the magnitude; *end points past the last digit used (or at s when there is no number). */
static unsigned long long parse_magnitude(const char *s, const char **end, int base,
                                          unsigned long long limit, int *neg, int *over)
{
    const char *p = s;
    *neg = 0;
    *over = 0;
    *end = s;
    if (base < 0 || base == 1 || base > 36) {
        errno = EINVAL;
        return 0;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-')
        *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        digit_value((unsigned char)p[2]) < 16) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    unsigned long long v = 0;
    const char *first = p;
    for (;; p++) {
        int d = digit_value((unsigned char)*p);
        if (d >= base)
            break;
        if (v > (limit - (unsigned)d) / (unsigned)base)
            *over = 1;
        else
            v = v * (unsigned)base + (unsigned)d;
    }
    if (p != first)
        *end = p;
    return *over ? limit : v;
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base)
{
    const char *e;
    int neg, over;
    unsigned long long v = parse_magnitude(s, &e, base, ULLONG_MAX, &neg, &over);
    if (end)
        *end = (char *)e;
    if (over) {
        errno = ERANGE;
        return ULLONG_MAX;
    }
    return neg ? 0ull - v : v; /* C: a negated unsigned result, like glibc */
}

long long strtoll(const char *restrict s, char **restrict end, int base)
{
    const char *e;
    int neg, over;
    /* The magnitude of LLONG_MIN is one more than LLONG_MAX. */
    unsigned long long v = parse_magnitude(s, &e, base, (unsigned long long)LLONG_MAX + 1, &neg, &over);
    if (end)
        *end = (char *)e;
    if (neg) {
        if (over) {
            errno = ERANGE;
            return LLONG_MIN;
        }
        return v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    }
    if (over || v > (unsigned long long)LLONG_MAX) {
        errno = ERANGE;
        return LLONG_MAX;
    }
    return (long long)v;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
    return (long)strtoll(s, end, base); /* long is 64 bits on x86-64 */
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
    return (unsigned long)strtoull(s, end, base);
}

int atoi(const char *s) { return (int)strtol(s, NULL, 10); }
long atol(const char *s) { return strtol(s, NULL, 10); }
long long atoll(const char *s) { return strtoll(s, NULL, 10); }
double atof(const char *s) { return strtod(s, NULL); }

int abs(int x) { return x < 0 ? -x : x; }
long labs(long x) { return x < 0 ? -x : x; }
long long llabs(long long x) { return x < 0 ? -x : x; }

div_t div(int a, int b)
{
    div_t r = {a / b, a % b};
    return r;
}

ldiv_t ldiv(long a, long b)
{
    ldiv_t r = {a / b, a % b};
    return r;
}

static uint64_t rand_state = 0x853c49e6748fea9bull;

void srand(unsigned seed) { rand_state = seed * 0x9e3779b97f4a7c15ull + 1; }

int rand(void)
{
    /* xorshift64*: small, good enough for tests and shuffles, not for secrets. */
    rand_state ^= rand_state >> 12;
    rand_state ^= rand_state << 25;
    rand_state ^= rand_state >> 27;
    return (int)((rand_state * 0x2545f4914f6cdd1dull) >> 33);
}

/* ---- qsort: introsort (quicksort with median of three, insertion sort for short runs, heapsort
 * when the recursion gets too deep), so no input makes it quadratic or blows the small stack. */

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    while (size >= 8) {
        uint64_t t;
        memcpy(&t, a, 8);
        memcpy(a, b, 8);
        memcpy(b, &t, 8);
        a += 8, b += 8, size -= 8;
    }
    while (size--) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

typedef int (*cmp_fn)(const void *, const void *);

static void insertion_sort(unsigned char *base, size_t n, size_t size, cmp_fn cmp)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp(base + (j - 1) * size, base + j * size) > 0; j--)
            swap_bytes(base + (j - 1) * size, base + j * size, size);
}

static void sift_down(unsigned char *base, size_t root, size_t n, size_t size, cmp_fn cmp)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0)
            child++;
        if (cmp(base + root * size, base + child * size) >= 0)
            return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

static void heap_sort(unsigned char *base, size_t n, size_t size, cmp_fn cmp)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(base, i, n, size, cmp);
    for (size_t end = n; end-- > 1;) {
        swap_bytes(base, base + end * size, size);
        sift_down(base, 0, end, size, cmp);
    }
}

static void intro_sort(unsigned char *base, size_t n, size_t size, cmp_fn cmp, int depth)
{
    while (n > 12) {
        if (depth-- == 0) {
            heap_sort(base, n, size, cmp);
            return;
        }
        unsigned char *lo = base, *mid = base + (n / 2) * size, *hi = base + (n - 1) * size;
        /* Median of three to the front, as the pivot. */
        if (cmp(mid, lo) < 0)
            swap_bytes(mid, lo, size);
        if (cmp(hi, mid) < 0) {
            swap_bytes(hi, mid, size);
            if (cmp(mid, lo) < 0)
                swap_bytes(mid, lo, size);
        }
        swap_bytes(lo, mid, size);
        /* Hoare partition around *lo. */
        size_t i = 0, j = n;
        for (;;) {
            do
                i++;
            while (i < n && cmp(base + i * size, lo) < 0);
            do
                j--;
            while (cmp(base + j * size, lo) > 0);
            if (i >= j)
                break;
            swap_bytes(base + i * size, base + j * size, size);
        }
        swap_bytes(lo, base + j * size, size);
        /* Recurse into the smaller side, loop on the larger: O(log n) stack. */
        size_t left = j, right = n - j - 1;
        if (left < right) {
            intro_sort(base, left, size, cmp, depth);
            base += (j + 1) * size;
            n = right;
        } else {
            intro_sort(base + (j + 1) * size, right, size, cmp, depth);
            n = left;
        }
    }
    insertion_sort(base, n, size, cmp);
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n < 2 || size == 0)
        return;
    int depth = 0;
    for (size_t m = n; m; m >>= 1)
        depth += 2;
    intro_sort(base, n, size, cmp, depth);
}

void *bsearch(const void *key, const void *base, size_t n, size_t size,
              int (*cmp)(const void *, const void *))
{
    const unsigned char *b = base;
    while (n > 0) {
        const unsigned char *mid = b + (n / 2) * size;
        int c = cmp(key, mid);
        if (c == 0)
            return (void *)mid;
        if (c > 0) {
            b = mid + size;
            n -= n / 2 + 1;
        } else {
            n /= 2;
        }
    }
    return NULL;
}
