/* tests/guests/test_sdk_alloc.c — the guest SDK's allocator (malloc, free, realloc, calloc,
 * aligned_alloc) on a heap region like a guest's.
 *
 * A long random stress with a shadow record of every block (contents, alignment, no overlap,
 * realloc keeps the data), exhaustion (NULL, never a crash; everything comes back after freeing,
 * so coalescing works), overflowing sizes, the per-job limit that keeps the heap below the input,
 * and the checks that turn a double or wild free into a fatal error instead of heap corruption.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aspen_native.h"

static uint64_t rng = 0xda3e39cb94b95bdbull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define HEAP_SIZE (16u << 20)
static unsigned char *heap;

static int setup(void **state)
{
    heap = aligned_alloc(4096, HEAP_SIZE);
    aspen_heap_init(heap, heap + HEAP_SIZE);
    return heap ? 0 : -1;
}

static int teardown(void **state)
{
    aspen_heap_init(NULL, NULL);
    free(heap);
    return 0;
}

static void fill(unsigned char *p, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(tag * 31 + i);
}

static void verify(const unsigned char *p, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag * 31 + i))
            fail_msg("block %u corrupted at byte %zu of %zu", tag, i, n);
}

static size_t random_size(void)
{
    switch (next() % 10) {
    case 0: return 0;
    case 1: return (size_t)(next() % 65536);  /* medium */
    case 2: return (size_t)(next() % 400000); /* large */
    default: return (size_t)(next() % 256);   /* small, the common case */
    }
}

static void test_random_stress(void **state)
{
    aspen_heap_init(heap, heap + HEAP_SIZE);
    enum { SLOTS = 512 };
    static struct {
        unsigned char *p;
        size_t n;
        uint32_t tag;
    } s[SLOTS];
    memset(s, 0, sizeof s);
    uint32_t tag = 1;
    for (int op = 0; op < 300000; op++) {
        int i = (int)(next() % SLOTS);
        unsigned r = (unsigned)(next() % 10);
        if (s[i].p && r < 4) {
            verify(s[i].p, s[i].n, s[i].tag);
            aspen_n_free(s[i].p);
            s[i].p = NULL;
        } else if (s[i].p && r < 7) {
            size_t n = random_size();
            unsigned char *q = aspen_n_realloc(s[i].p, n);
            if (n == 0) {
                assert_null(q); /* realloc(p, 0) frees p */
                s[i].p = NULL;
                continue;
            }
            if (!q) {
                verify(s[i].p, s[i].n, s[i].tag); /* untouched on failure */
                continue;
            }
            verify(q, n < s[i].n ? n : s[i].n, s[i].tag);
            s[i].p = q;
            s[i].n = n;
            s[i].tag = tag++;
            fill(q, n, s[i].tag);
        } else if (!s[i].p) {
            size_t n = random_size();
            unsigned char *p;
            if (r == 9) {
                size_t align = (size_t)32 << (next() % 8);
                p = aspen_n_aligned_alloc(align, n);
                if (p)
                    assert_int_equal((uintptr_t)p % align, 0);
            } else if (r == 8) {
                p = aspen_n_calloc(n, 1);
                if (p)
                    for (size_t k = 0; k < n; k++)
                        assert_int_equal(p[k], 0);
            } else {
                p = aspen_n_malloc(n);
            }
            if (!p)
                continue; /* the heap may be full: that is allowed */
            assert_int_equal((uintptr_t)p % 16, 0);
            assert_true(p >= heap && p + n <= heap + HEAP_SIZE);
            s[i].p = p;
            s[i].n = n;
            s[i].tag = tag++;
            fill(p, n, s[i].tag);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (s[i].p) {
            verify(s[i].p, s[i].n, s[i].tag);
            aspen_n_free(s[i].p);
        }
    /* everything coalesced back into one untouched region */
    aspen_heap_stats st;
    aspen_heap_get_stats(&st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.untouched, st.heap_bytes);
    assert_true(st.peak_in_use > 0);
}

static void test_exhaustion(void **state)
{
    aspen_heap_init(heap, heap + (1u << 20)); /* 1 MiB, like a small guest */
    assert_null(aspen_n_malloc(2u << 20));
    assert_null(aspen_n_malloc(SIZE_MAX));
    assert_null(aspen_n_malloc(SIZE_MAX - 8));
    assert_null(aspen_n_calloc(SIZE_MAX / 2, 3)); /* n * size overflows */
    assert_null(aspen_n_calloc(1u << 31, 1u << 31));
    assert_null(aspen_n_aligned_alloc(3, 16)); /* not a power of two */
    /* fill it with small blocks until malloc says no */
    static void *blocks[100000];
    size_t n = 0;
    while (n < 100000 && (blocks[n] = aspen_n_malloc(100)) != NULL)
        n++;
    assert_true(n > 5000 && n < 100000);
    aspen_heap_stats st;
    aspen_heap_get_stats(&st);
    assert_true(st.free_bytes < 128);
    /* realloc to something bigger fails and leaves the block alone */
    memset(blocks[0], 0x11, 100);
    assert_null(aspen_n_realloc(blocks[0], 4096));
    assert_int_equal(((unsigned char *)blocks[0])[99], 0x11);
    /* free every other block: the holes are reused for blocks that fit... */
    for (size_t i = 0; i < n; i += 2)
        aspen_n_free(blocks[i]);
    void *again = aspen_n_malloc(100);
    assert_non_null(again);
    /* ...but no hole is big enough for 1 KiB */
    assert_null(aspen_n_malloc(1024));
    aspen_n_free(again);
    for (size_t i = 1; i < n; i += 2)
        aspen_n_free(blocks[i]);
    /* and now all of it is one block again */
    void *all = aspen_n_malloc((1u << 20) - 64);
    assert_non_null(all);
    aspen_n_free(all);
    aspen_heap_get_stats(&st);
    assert_int_equal(st.in_use, 0);
}

static void test_realloc_in_place(void **state)
{
    aspen_heap_init(heap, heap + (1u << 20));
    unsigned char *a = aspen_n_malloc(100);
    unsigned char *b = aspen_n_malloc(100);
    fill(a, 100, 1);
    /* b is last: it grows into the free space after it without moving */
    assert_ptr_equal(aspen_n_realloc(b, 5000), b);
    /* a grows into b's place once b is freed */
    aspen_n_free(b);
    unsigned char *a2 = aspen_n_realloc(a, 3000);
    assert_ptr_equal(a2, a);
    verify(a2, 100, 1);
    /* shrinking never moves */
    assert_ptr_equal(aspen_n_realloc(a2, 10), a2);
    verify(a2, 10, 1);
    assert_null(aspen_n_realloc(a2, SIZE_MAX)); /* too big: a2 still valid */
    verify(a2, 10, 1);
    aspen_n_free(a2);
    void *z = aspen_n_realloc(NULL, 0); /* malloc(0): a minimal block */
    assert_non_null(z);
    aspen_n_free(z);
}

static void test_limit(void **state)
{
    /* Per job the heap ends where the input starts. */
    aspen_heap_init(heap, heap + (1u << 20));
    void *early = aspen_n_malloc(1000);
    aspen_heap_set_limit(heap + (64u << 10));
    assert_null(aspen_n_malloc(100u << 10));
    void *fits = aspen_n_malloc(32u << 10);
    assert_non_null(fits);
    assert_true((unsigned char *)fits + (32u << 10) <= heap + (64u << 10));
    aspen_heap_stats st;
    aspen_heap_get_stats(&st);
    assert_int_equal(st.heap_bytes, 64u << 10);
    aspen_n_free(fits);
    aspen_n_free(early);
}

static jmp_buf fatal_jb;
static char fatal_msg[256];
static void on_fatal(const char *msg)
{
    snprintf(fatal_msg, sizeof fatal_msg, "%s", msg);
    longjmp(fatal_jb, 1);
}

static void expect_fatal(void (*fn)(void *), void *arg, const char *substr)
{
    aspen_native_fatal_hook = on_fatal;
    fatal_msg[0] = '\0';
    if (setjmp(fatal_jb) == 0) {
        fn(arg);
        aspen_native_fatal_hook = NULL;
        fail_msg("expected a fatal error containing \"%s\"", substr);
    }
    aspen_native_fatal_hook = NULL;
    if (!strstr(fatal_msg, substr))
        fail_msg("fatal message \"%s\" lacks \"%s\"", fatal_msg, substr);
}

static void do_free(void *p) { aspen_n_free(p); }
static void do_realloc(void *p) { (void)!aspen_n_realloc(p, 10); }

static void test_bad_frees_are_fatal(void **state)
{
    aspen_heap_init(heap, heap + (1u << 20));
    unsigned char *a = aspen_n_malloc(64), *b = aspen_n_malloc(64);
    aspen_n_free(a);
    expect_fatal(do_free, a, "double free");
    expect_fatal(do_free, b + 8, "invalid pointer");
    /* a pointer into the middle of b whose "header" claims an impossible size */
    memset(b, 0, 64);
    ((size_t *)b)[1] = 3; /* in use, size 0 */
    expect_fatal(do_realloc, b + 16, "heap corrupted");
    expect_fatal(do_free, heap + (512u << 10), "invalid pointer"); /* never handed out */
    aspen_n_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_stress),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_realloc_in_place),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_bad_frees_are_fatal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
