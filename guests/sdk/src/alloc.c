/* alloc.c — malloc, free, realloc, calloc and aligned_alloc over the guest's heap.
 *
 * The heap is one range of guest memory, [heap_start, limit): at start-up the whole heap range the
 * host reports, and for each job [heap_start, input_ptr), because the host writes the job's input
 * at the top of the heap range (see vm/include/abi.h). Memory is restored from the start-up snapshot before
 * every job, so the allocator needs no per-job cleanup: execute only moves the limit.
 *
 * Design: boundary-tagged chunks with segregated free lists. Each chunk has a 16-byte header
 * (prev_size, size|flags); payloads are 16-byte aligned. Free chunks sit in one of NBINS doubly
 * linked bins (exact 16-byte classes up to 1 KiB, then four classes per power of two), a bitmap
 * finds the next non-empty bin in a few instructions, and neighbours coalesce on free so no two
 * free chunks are ever adjacent. New memory is carved from the "top" (a bump pointer), and chunks
 * freed next to the top fall back into it — so a job touches only as many heap pages as it really
 * uses, which keeps the host's per-job restore cheap.
 *
 * malloc never crashes on exhaustion: it returns NULL. free() of a pointer the heap did not hand
 * out, or a double free, is a bug the guest cannot recover from: it ends the job as a panic.
 *
 * Natively (ASPEN_SDK_NATIVE, the host tests) these are aspen_n_malloc etc. Until a test calls
 * aspen_heap_init they forward to the system allocator (so AddressSanitizer checks the JSON and
 * format code); pointers outside an initialised heap are forwarded too.
 */
#define ASPEN_LIBC_IMPL 1
#include <aspen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

#define HDR 16u
#define MIN_CHUNK 32u
#define CINUSE ((size_t)1) /* this chunk is in use */
#define PINUSE ((size_t)2) /* the chunk just below is in use (so prev_size is not valid) */
#define FLAGS (CINUSE | PINUSE)
/* Requests above this are refused outright: it keeps every size computation below far from
 * overflowing, and no guest memory is that large anyway (ASPEN_USER_MAX is 1 GiB). */
#define MAX_REQUEST ((size_t)1 << 40)

#define NSMALL 64 /* bins 2..63: exact sizes 32..1008 */
#define NBINS 192

typedef struct chunk {
    size_t prev_size;
    size_t size;
    struct chunk *next, *prev; /* free chunks only: they overlay the payload */
} chunk;

static struct heap {
    uintptr_t base;  /* first chunk */
    uintptr_t top;   /* start of the never-used remainder */
    uintptr_t limit; /* allocations must end at or below this */
    uintptr_t end;   /* end of the heap range given at start-up */
    size_t in_use;   /* bytes in chunks handed out, headers included */
    size_t peak;
    uint64_t binmap[NBINS / 64];
    chunk *bins[NBINS];
} H;

#if defined(ASPEN_SDK_NATIVE)
/* native_sys.c: the system allocator, for pointers that are not ours. */
void *aspen__sys_malloc(size_t n);
void *aspen__sys_realloc(void *p, size_t n);
void aspen__sys_free(void *p);
#endif

static inline size_t csize(const chunk *c) { return c->size & ~FLAGS; }
static inline chunk *at(uintptr_t a) { return (chunk *)a; }
static inline uintptr_t addr(const chunk *c) { return (uintptr_t)c; }
static inline void *payload(chunk *c) { return (char *)c + HDR; }

static unsigned bin_index(size_t size)
{
    if (size < NSMALL * 16)
        return (unsigned)(size >> 4);
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)size); /* >= 10 */
    unsigned idx = NSMALL + (b - 10) * 4 + (unsigned)((size >> (b - 2)) & 3);
    return idx < NBINS ? idx : NBINS - 1;
}

static void bin_insert(chunk *c)
{
    unsigned i = bin_index(csize(c));
    c->prev = NULL;
    c->next = H.bins[i];
    if (c->next)
        c->next->prev = c;
    H.bins[i] = c;
    H.binmap[i / 64] |= 1ull << (i % 64);
}

static void bin_unlink(chunk *c)
{
    unsigned i = bin_index(csize(c));
    if (c->prev)
        c->prev->next = c->next;
    else
        H.bins[i] = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!H.bins[i])
        H.binmap[i / 64] &= ~(1ull << (i % 64));
}

/* First non-empty bin with index >= i, or NBINS. */
static unsigned next_bin(unsigned i)
{
    while (i < NBINS) {
        uint64_t m = H.binmap[i / 64] & (~0ull << (i % 64));
        if (m)
            return (i & ~63u) + (unsigned)__builtin_ctzll(m);
        i = (i & ~63u) + 64;
    }
    return NBINS;
}

void aspen_heap_init(void *start, void *end)
{
    memset(&H, 0, sizeof H);
    if (!start || !end)
        return;
    uintptr_t s = ((uintptr_t)start + 15) & ~(uintptr_t)15;
    uintptr_t e = (uintptr_t)end & ~(uintptr_t)15;
    if (e <= s)
        e = s; /* an empty heap: every malloc fails */
    H.base = H.top = s;
    H.limit = H.end = e;
}

void aspen_heap_set_limit(void *limit)
{
    uintptr_t l = (uintptr_t)limit & ~(uintptr_t)15;
    if (l > H.end)
        l = H.end;
    H.limit = l;
}

size_t aspen_heap_used_top(void) { return H.top - H.base; }

void aspen_heap_get_stats(aspen_heap_stats *st)
{
    size_t free_in_bins = 0;
    for (unsigned i = 0; i < NBINS; i++)
        for (chunk *c = H.bins[i]; c; c = c->next)
            free_in_bins += csize(c);
    st->heap_bytes = H.limit > H.base ? H.limit - H.base : 0;
    st->in_use = H.in_use;
    st->peak_in_use = H.peak;
    st->free_bytes = free_in_bins + (H.limit > H.top ? H.limit - H.top : 0);
    st->untouched = H.limit > H.top ? H.limit - H.top : 0;
}

/* Is p a payload this heap handed out (and not yet freed)? Panics otherwise: continuing after a
 * double free or a wild free would corrupt memory silently. */
static chunk *checked_chunk(void *p, const char *who)
{
    uintptr_t a = (uintptr_t)p;
    if ((a & 15) || a < H.base + HDR || a > H.top)
        aspen__fatal("%s(): invalid pointer %p (not from malloc)", who, p);
    chunk *c = at(a - HDR);
    size_t sz = csize(c);
    if (!(c->size & CINUSE))
        aspen__fatal("%s(): pointer %p is not allocated (double free?)", who, p);
    if (sz < MIN_CHUNK || (sz & 15) || sz > H.top - addr(c))
        aspen__fatal("%s(): heap corrupted at %p (a write past the end of a block?)", who, p);
    return c;
}

ASPEN_UNUSED static bool ours(const void *p)
{
    return H.base && (uintptr_t)p >= H.base && (uintptr_t)p < H.end;
}

static size_t request_size(size_t n)
{
    size_t sz = (n + HDR + 15) & ~(size_t)15; /* n <= MAX_REQUEST: cannot overflow */
    return sz < MIN_CHUNK ? MIN_CHUNK : sz;
}

/* Split chunk c (in use, size `have`) so it keeps `want` bytes; the rest becomes free. */
static void trim_chunk(chunk *c, size_t have, size_t want);

static void account(ptrdiff_t delta)
{
    H.in_use += (size_t)delta;
    if (H.in_use > H.peak)
        H.peak = H.in_use;
}

void *malloc(size_t n)
{
#if defined(ASPEN_SDK_NATIVE)
    if (!H.base)
        return aspen__sys_malloc(n);
#endif
    if (n > MAX_REQUEST || !H.base)
        return NULL;
    size_t sz = request_size(n);
    unsigned i = bin_index(sz);
    chunk *c = NULL;
    if (i >= NSMALL) {
        /* A large bin holds a range of sizes: first fit within it. */
        for (chunk *k = H.bins[i]; k; k = k->next)
            if (csize(k) >= sz) {
                c = k;
                break;
            }
        if (!c)
            i++;
    }
    if (!c) {
        i = next_bin(i);
        if (i < NBINS)
            c = H.bins[i];
    }
    if (c) {
        bin_unlink(c);
        size_t have = csize(c);
        c->size |= CINUSE;
        chunk *next = at(addr(c) + have); /* never the top: free chunks do not touch it */
        next->size |= PINUSE;
        account((ptrdiff_t)have);
        trim_chunk(c, have, sz);
        return payload(c);
    }
    if (H.top > H.limit || H.limit - H.top < sz)
        return NULL;
    c = at(H.top);
    c->size = sz | CINUSE | PINUSE; /* the chunk below the top is always in use */
    H.top += sz;
    account((ptrdiff_t)sz);
    return payload(c);
}

/* Free chunk c of size sz: coalesce with free neighbours or fall back into the top. */
static void release(chunk *c, size_t sz)
{
    c->size &= ~CINUSE; /* so a second free of this pointer is caught */
    if (!(c->size & PINUSE)) {
        chunk *prev = at(addr(c) - c->prev_size);
        bin_unlink(prev);
        sz += csize(prev);
        c = prev;
    }
    uintptr_t end = addr(c) + sz;
    if (end == H.top) {
        H.top = addr(c);
        return;
    }
    chunk *next = at(end);
    if (!(next->size & CINUSE)) {
        bin_unlink(next);
        sz += csize(next);
        next = at(addr(c) + sz);
    }
    c->size = sz | PINUSE;
    next->prev_size = sz;
    next->size &= ~PINUSE;
    bin_insert(c);
}

static void trim_chunk(chunk *c, size_t have, size_t want)
{
    if (have - want < MIN_CHUNK)
        return;
    c->size = want | (c->size & FLAGS);
    chunk *rest = at(addr(c) + want);
    rest->size = (have - want) | CINUSE | PINUSE;
    account(-(ptrdiff_t)(have - want));
    release(rest, have - want);
}

void free(void *p)
{
    if (!p)
        return;
#if defined(ASPEN_SDK_NATIVE)
    if (!ours(p)) {
        aspen__sys_free(p);
        return;
    }
#endif
    chunk *c = checked_chunk(p, "free");
    size_t sz = csize(c);
    account(-(ptrdiff_t)sz);
    release(c, sz);
}

void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
#if defined(ASPEN_SDK_NATIVE)
    if (!ours(p))
        return aspen__sys_realloc(p, n);
#endif
    if (n == 0) {
        free(p);
        return NULL;
    }
    chunk *c = checked_chunk(p, "realloc");
    if (n > MAX_REQUEST)
        return NULL;
    size_t have = csize(c), sz = request_size(n);
    if (sz <= have) {
        trim_chunk(c, have, sz);
        return p;
    }
    uintptr_t end = addr(c) + have;
    if (end == H.top) {
        /* The last chunk: grow into the top. */
        if (H.limit >= addr(c) && H.limit - addr(c) >= sz) {
            H.top = addr(c) + sz;
            c->size = sz | (c->size & FLAGS);
            account((ptrdiff_t)(sz - have));
            return p;
        }
    } else {
        chunk *next = at(end);
        if (!(next->size & CINUSE) && have + csize(next) >= sz) {
            size_t total = have + csize(next);
            bin_unlink(next);
            c->size = total | (c->size & FLAGS);
            at(addr(c) + total)->size |= PINUSE;
            account((ptrdiff_t)(total - have));
            trim_chunk(c, total, sz);
            return p;
        }
    }
    void *q = malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, have - HDR);
    free(p);
    return q;
}

void *aligned_alloc(size_t alignment, size_t n)
{
    if (alignment == 0 || (alignment & (alignment - 1)))
        return NULL;
    if (alignment <= 16)
        return malloc(n);
#if defined(ASPEN_SDK_NATIVE)
    if (!H.base)
        return NULL; /* not needed by the tests of the system path */
#endif
    if (n > MAX_REQUEST || alignment > MAX_REQUEST)
        return NULL;
    /* Over-allocate, then give back the misaligned head as a free chunk of its own. */
    char *raw = malloc(n + alignment + MIN_CHUNK);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + MIN_CHUNK + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (((uintptr_t)raw & (alignment - 1)) == 0)
        return raw; /* already aligned: keep it whole */
    chunk *c = at((uintptr_t)raw - HDR);
    size_t total = csize(c), lead = a - (uintptr_t)raw;
    chunk *c2 = at(a - HDR);
    c->size = lead | (c->size & FLAGS);
    c2->size = (total - lead) | CINUSE | PINUSE;
    free(raw); /* coalesces the head backwards if it can, and marks c2's neighbour state */
    trim_chunk(c2, total - lead, request_size(n));
    return (void *)a;
}
