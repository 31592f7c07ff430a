/* tests/guests/test_sdk_string.c — the guest SDK's string, integer-parsing, sorting and math
 * functions, compared with glibc's on the host (the SDK is built natively with renamed symbols,
 * see guests/sdk/native/aspen_native.h). Exhaustive over small sizes and offsets, random beyond.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "aspen_native.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_mem_functions(void **state)
{
    unsigned char a[96], b[96], c[96], d[96];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof a; i++)
            a[i] = (unsigned char)next(), b[i] = (unsigned char)next();
        for (size_t off = 0; off < 16; off++)
            for (size_t n = 0; n + off <= 64; n += 1 + (n > 20) * 7) {
                memcpy(c, b, sizeof c);
                memcpy(d, b, sizeof d);
                assert_ptr_equal(aspen_n_memcpy(c + off, a, n), c + off);
                memcpy(d + off, a, n);
                assert_memory_equal(c, d, sizeof c);
                assert_ptr_equal(aspen_n_memset(c + off, 0x5a + (int)n, n), c + off);
                memset(d + off, 0x5a + (int)n, n);
                assert_memory_equal(c, d, sizeof c);
                /* overlapping moves, both directions */
                size_t src = (size_t)(next() % 16);
                assert_ptr_equal(aspen_n_memmove(c + off, c + src, n), c + off);
                memmove(d + off, d + src, n);
                assert_memory_equal(c, d, sizeof c);
                memcpy(c, a, sizeof c);
                if (n && round % 2)
                    c[off + n - 1] ^= 1;
                assert_int_equal(sign(aspen_n_memcmp(c + off, a + off, n)),
                                 sign(memcmp(c + off, a + off, n)));
                int ch = a[(off + n) % sizeof a];
                assert_ptr_equal(aspen_n_memchr(a + off, ch, n), memchr(a + off, ch, n));
                assert_ptr_equal(aspen_n_memrchr(a + off, ch, n), memrchr(a + off, ch, n));
            }
    }
    const char hay[] = "abcabcabd\0xyz";
    assert_ptr_equal(aspen_n_memmem(hay, sizeof hay, "abd", 3), memmem(hay, sizeof hay, "abd", 3));
    assert_ptr_equal(aspen_n_memmem(hay, sizeof hay, "\0xy", 3), memmem(hay, sizeof hay, "\0xy", 3));
    assert_ptr_equal(aspen_n_memmem(hay, sizeof hay, "zz", 2), NULL);
    assert_ptr_equal(aspen_n_memmem(hay, 3, "", 0), hay);
}

static void test_str_functions(void **state)
{
    static const char *words[] = {"", "a", "abc", "abd", "ab", "ABC", "hello world", "hello",
                                  "\xff\x80", "zeta", "Zeta", "a\tb c"};
    size_t nw = sizeof words / sizeof words[0];
    for (size_t i = 0; i < nw; i++) {
        const char *x = words[i];
        assert_int_equal(aspen_n_strlen(x), strlen(x));
        for (size_t m = 0; m < 6; m++)
            assert_int_equal(aspen_n_strnlen(x, m), strnlen(x, m));
        for (int ch = 0; ch < 256; ch += 1) {
            assert_ptr_equal(aspen_n_strchr(x, ch), strchr(x, ch));
            assert_ptr_equal(aspen_n_strrchr(x, ch), strrchr(x, ch));
        }
        for (size_t j = 0; j < nw; j++) {
            const char *y = words[j];
            assert_int_equal(sign(aspen_n_strcmp(x, y)), sign(strcmp(x, y)));
            assert_int_equal(sign(aspen_n_strcasecmp(x, y)), sign(strcasecmp(x, y)));
            for (size_t n = 0; n < 5; n++) {
                assert_int_equal(sign(aspen_n_strncmp(x, y, n)), sign(strncmp(x, y, n)));
                assert_int_equal(sign(aspen_n_strncasecmp(x, y, n)), sign(strncasecmp(x, y, n)));
            }
            assert_ptr_equal(aspen_n_strstr(x, y), strstr(x, y));
            assert_int_equal(aspen_n_strspn(x, y), strspn(x, y));
            assert_int_equal(aspen_n_strcspn(x, y), strcspn(x, y));
            assert_ptr_equal(aspen_n_strpbrk(x, y), strpbrk(x, y));
        }
    }

    char buf[32], ref[32];
    memset(buf, 'x', sizeof buf);
    memset(ref, 'x', sizeof ref);
    aspen_n_strcpy(buf, "abc");
    strcpy(ref, "abc");
    aspen_n_strcat(buf, "def");
    strcat(ref, "def");
    const char *tail = "ghijkl";
    size_t three = strlen(tail) / 2;
    aspen_n_strncat(buf, tail, three);
    memcpy(ref + strlen(ref), tail, three);
    ref[9] = '\0';
    assert_memory_equal(buf, ref, sizeof buf);
    aspen_n_strncpy(buf, "hi", 8);
    strncpy(ref, "hi", 8);
    assert_memory_equal(buf, ref, sizeof buf);

    /* strlcpy / strlcat: truncate, always terminate, return the length they tried to make */
    assert_int_equal(aspen_n_strlcpy(buf, "hello", 4), 5);
    assert_string_equal(buf, "hel");
    assert_int_equal(aspen_n_strlcpy(buf, "hi", sizeof buf), 2);
    assert_int_equal(aspen_n_strlcat(buf, " there", 6), 8);
    assert_string_equal(buf, "hi th");
    assert_int_equal(aspen_n_strlcat(buf, "x", 3), 4); /* dst unterminated in size: size + strlen(src) */

    char *dup = aspen_n_strdup("copy me");
    assert_string_equal(dup, "copy me");
    aspen_n_free(dup);
    dup = aspen_n_strndup("copy me", 4);
    assert_string_equal(dup, "copy");
    aspen_n_free(dup);
    dup = aspen_n_strndup("ab", 10);
    assert_string_equal(dup, "ab");
    aspen_n_free(dup);

    char t1[] = "  a,b,,c  ", t2[] = "  a,b,,c  ";
    char *s1, *s2, *p1, *p2;
    p1 = aspen_n_strtok_r(t1, " ,", &s1);
    p2 = strtok_r(t2, " ,", &s2);
    while (p1 || p2) {
        assert_non_null(p1);
        assert_non_null(p2);
        assert_string_equal(p1, p2);
        p1 = aspen_n_strtok_r(NULL, " ,", &s1);
        p2 = strtok_r(NULL, " ,", &s2);
    }
}

/* Each strto* result compared with glibc: value, end pointer and errno. */
static void check_strtol(const char *s, int base)
{
    char *e1, *e2;
    errno = 0;
    aspen_n_errno = 0;
    long long v1 = aspen_n_strtoll(s, &e1, base);
    long long v2 = strtoll(s, &e2, base);
    if (v1 != v2 || e1 != e2 || aspen_n_errno != errno)
        fail_msg("strtoll(\"%s\", %d): got %lld end+%td errno %d, glibc %lld end+%td errno %d", s,
                 base, v1, e1 - s, aspen_n_errno, v2, e2 - s, errno);
    errno = 0;
    aspen_n_errno = 0;
    unsigned long long u1 = aspen_n_strtoull(s, &e1, base);
    unsigned long long u2 = strtoull(s, &e2, base);
    if (u1 != u2 || e1 != e2 || aspen_n_errno != errno)
        fail_msg("strtoull(\"%s\", %d): got %llu end+%td errno %d, glibc %llu end+%td errno %d", s,
                 base, u1, e1 - s, aspen_n_errno, u2, e2 - s, errno);
    errno = 0;
    aspen_n_errno = 0;
    long l1 = aspen_n_strtol(s, &e1, base);
    long l2 = strtol(s, &e2, base);
    assert_true(l1 == l2 && e1 == e2 && aspen_n_errno == errno);
    unsigned long ul1 = aspen_n_strtoul(s, &e1, base);
    unsigned long ul2 = strtoul(s, &e2, base);
    assert_true(ul1 == ul2 && e1 == e2);
}

static void test_strtol(void **state)
{
    static const char *inputs[] = {
        "0", "1", "-1", "+1", "  42", "\t\n-17x", "007", "0x1f", "0X1F", "0x", "0xg", "-0x10",
        "z", "", " ", "-", "+", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
        "18446744073709551616", "-18446744073709551615", "-18446744073709551616",
        "99999999999999999999999", "0777", "08", "1010102", "zz", "ZZ", "0b101", "12abc",
        "   +0x7fffffffffffffff", "-0x8000000000000000", "0x10000000000000000"};
    static const int bases[] = {0, 2, 8, 10, 16, 36};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
            check_strtol(inputs[i], bases[b]);
    char buf[40];
    for (int i = 0; i < 20000; i++) {
        snprintf(buf, sizeof buf, "%s%llu", next() % 3 ? "" : "-",
                 (unsigned long long)(next() >> (next() % 64)));
        check_strtol(buf, (int)(next() % 3) * 8 + 0); /* bases 0, 8, 16 */
        check_strtol(buf, 10);
    }
    assert_int_equal(aspen_n_atoi("  -123abc"), -123);
    /* invalid base */
    char *e;
    aspen_n_errno = 0;
    assert_int_equal(aspen_n_strtol("12", &e, 1), 0);
    assert_int_equal(aspen_n_errno, EINVAL);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

struct rec {
    uint64_t key;
    char pad[16];
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static int cmp_byte(const void *a, const void *b)
{
    return (int)*(const unsigned char *)a - (int)*(const unsigned char *)b;
}

static void test_qsort(void **state)
{
    enum { N = 5000 };
    static int v[N], w[N];
    for (int kind = 0; kind < 6; kind++)
        for (int n = 0; n <= N; n = n ? n * 3 : 1) {
            for (int i = 0; i < n; i++) {
                switch (kind) {
                case 0: v[i] = (int)next(); break;      /* random */
                case 1: v[i] = i; break;                /* sorted */
                case 2: v[i] = n - i; break;            /* reversed */
                case 3: v[i] = (int)(next() % 3); break; /* many duplicates */
                case 4: v[i] = 7; break;                /* all equal */
                default: v[i] = i % 2 ? i : n - i; break; /* organ pipe */
                }
                w[i] = v[i];
            }
            aspen_n_qsort(v, (size_t)n, sizeof v[0], cmp_int);
            qsort(w, (size_t)n, sizeof w[0], cmp_int);
            assert_memory_equal(v, w, (size_t)n * sizeof v[0]);
            for (int i = 0; i < n; i += 1 + n / 50) {
                int *hit = aspen_n_bsearch(&w[i], v, (size_t)n, sizeof v[0], cmp_int);
                assert_non_null(hit);
                assert_int_equal(*hit, w[i]);
            }
            int missing = INT_MIN;
            if (n && v[0] != INT_MIN)
                assert_null(aspen_n_bsearch(&missing, v, (size_t)n, sizeof v[0], cmp_int));
        }
    static struct rec r[1000];
    for (size_t i = 0; i < 1000; i++) {
        r[i].key = next() % 100;
        memset(r[i].pad, (int)r[i].key, sizeof r[i].pad);
    }
    aspen_n_qsort(r, 1000, sizeof r[0], cmp_rec);
    for (size_t i = 0; i < 1000; i++) {
        if (i)
            assert_true(r[i - 1].key <= r[i].key);
        assert_int_equal((unsigned char)r[i].pad[15], (unsigned char)r[i].key); /* moved whole */
    }
    unsigned char bytes[300];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)next();
    aspen_n_qsort(bytes, sizeof bytes, 1, cmp_byte);
    for (size_t i = 1; i < sizeof bytes; i++)
        assert_true(bytes[i - 1] <= bytes[i]);
}

static double random_double(void)
{
    switch (next() % 4) {
    case 0: return (double)(int64_t)(next() % 2000001) / 1000.0 - 1000.0;
    case 1: return (double)(int64_t)next() / 1e3;
    case 2: return ldexp((double)(next() >> 11), (int)(next() % 200) - 100);
    default: {
        uint64_t u = next();
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    }
}

static int same(double a, double b)
{
    if (isnan(a) && isnan(b))
        return 1;
    return memcmp(&a, &b, sizeof a) == 0;
}

static void test_math(void **state)
{
    static const double special[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994,
                                     4503599627370495.5, 4503599627370497.0, 1e300, -1e-300,
                                     5e-324, INFINITY, -INFINITY, NAN, 3.0, -3.0, 123.456};
    for (int i = 0; i < 100000; i++) {
        double x = i < (int)(sizeof special / sizeof special[0]) ? special[i] : random_double();
        if (!same(aspen_n_floor(x), floor(x)) || !same(aspen_n_ceil(x), ceil(x)) ||
            !same(aspen_n_trunc(x), trunc(x)) || !same(aspen_n_round(x), round(x)))
            fail_msg("rounding of %a", x);
        if (!same(aspen_n_sqrt(x), sqrt(x)))
            fail_msg("sqrt(%a)", x);
        int e1, e2;
        double f1 = aspen_n_frexp(x, &e1), f2 = frexp(x, &e2);
        if (!same(f1, f2) || (isfinite(x) && e1 != e2))
            fail_msg("frexp(%a): %a %d vs %a %d", x, f1, e1, f2, e2);
        int k = (int)(next() % 2200) - 1100;
        if (!same(aspen_n_ldexp(x, k), ldexp(x, k)))
            fail_msg("ldexp(%a, %d): %a vs %a", x, k, aspen_n_ldexp(x, k), ldexp(x, k));
        double y = i % 7 ? random_double() : (double)(next() % 10 + 1);
        if (fabs(x) < 1e30 && fabs(y) > 1e-30 && !same(aspen_n_fmod(x, y), fmod(x, y)))
            fail_msg("fmod(%a, %a): %a vs %a", x, y, aspen_n_fmod(x, y), fmod(x, y));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_functions),
        cmocka_unit_test(test_str_functions),
        cmocka_unit_test(test_strtol),
        cmocka_unit_test(test_qsort),
        cmocka_unit_test(test_math),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
