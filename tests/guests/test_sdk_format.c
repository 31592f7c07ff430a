/* tests/guests/test_sdk_format.c — the guest SDK's snprintf/vsnprintf against glibc's, byte for
 * byte: a fixed table of integer, string, pointer and floating-point cases with every flag, then
 * hundreds of thousands of random formats and values (doubles from every part of the range,
 * including exact ties, subnormals, infinities and NaN), and the truncation contract.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>

#include <cmocka.h>

#include "aspen_native.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long failures;

/* Format with both and compare (output and return value). */
static void check(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void check(const char *fmt, ...)
{
    char mine[2048], ref[2048];
    va_list a, b;
    va_start(a, fmt);
    va_copy(b, a);
    int n1 = aspen_n_vsnprintf(mine, sizeof mine, fmt, a);
    int n2 = vsnprintf(ref, sizeof ref, fmt, b);
    va_end(a);
    va_end(b);
    if (n1 != n2 || strcmp(mine, ref) != 0) {
        if (failures++ < 20)
            print_error("format \"%s\": got \"%s\" (%d), glibc \"%s\" (%d)\n", fmt, mine, n1, ref, n2);
    }
}

/* glibc bug: "%#.3g" of 999.9995 prints "1.e+03" — when rounding carries into a new leading digit
 * it drops the zeros '#' must keep (musl and the C standard: "1.00e+03"). So for '#' with g/G the
 * reference is glibc given the value already rounded to the precision, which carries nothing. */
static double glibc_safe_value(const char *fmt, double d)
{
    size_t len = strlen(fmt);
    if (!strchr(fmt, '#') || (fmt[len - 1] != 'g' && fmt[len - 1] != 'G') || !isfinite(d) || d == 0)
        return d;
    const char *dot = strchr(fmt, '.');
    int p = dot ? atoi(dot + 1) : 6;
    if (p == 0)
        p = 1;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    double r = strtod(tmp, NULL);
    return isinf(r) ? d : r; /* rounding up past DBL_MAX: no new digit, glibc is right */
}

static void check_float(const char *fmt, double d)
{
    char mine[2048], ref[2048];
    int n1 = aspen_n_snprintf(mine, sizeof mine, fmt, d);
    int n2 = snprintf(ref, sizeof ref, fmt, glibc_safe_value(fmt, d));
    if (n1 != n2 || strcmp(mine, ref) != 0) {
        if (failures++ < 20)
            print_error("format \"%s\" of %a: got \"%s\" (%d), glibc \"%s\" (%d)\n", fmt, d, mine,
                        n1, ref, n2);
    }
}

static void test_integers(void **state)
{
    failures = 0;
    static const char *ifmts[] = {"%d", "%i", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%.0d",
                                  "%8.3d", "%-8.3d|", "%+.0d", "%x", "%X", "%#x", "%#X", "%#o",
                                  "%o", "%#.0o", "%#.0x", "%08x", "%#08x", "%-#8x|", "%u", "%10u",
                                  "%#5.3x", "%+5d", "% 05d", "%+-6d|", "%.10d", "%012.5d", "%*d"};
    static const int ivals[] = {0, 1, -1, 7, -7, 42, 255, -255, 65535, 123456789, INT_MAX, INT_MIN};
    for (size_t f = 0; f < sizeof ifmts / sizeof ifmts[0]; f++)
        for (size_t v = 0; v < sizeof ivals / sizeof ivals[0]; v++) {
            if (strcmp(ifmts[f], "%*d") == 0) {
                check("%*d", 6, ivals[v]);
                check("%*d", -6, ivals[v]);
                check("%.*d", 4, ivals[v]);
                check("%.*d", -4, ivals[v]);
            } else {
                check(ifmts[f], ivals[v]);
            }
        }
    static const long long lvals[] = {0, 1, -1, LLONG_MAX, LLONG_MIN, 4294967296LL, -4294967297LL,
                                      1234567890123456789LL};
    for (size_t v = 0; v < sizeof lvals / sizeof lvals[0]; v++) {
        check("%lld %lli %llu %llx %llX %llo", lvals[v], lvals[v], (unsigned long long)lvals[v],
              (unsigned long long)lvals[v], (unsigned long long)lvals[v],
              (unsigned long long)lvals[v]);
        check("%ld %lu %lx %#lo", (long)lvals[v], (unsigned long)lvals[v], (unsigned long)lvals[v],
              (unsigned long)lvals[v]);
        check("%zd %zu %zx %jd %ju %td", (ssize_t)lvals[v], (size_t)lvals[v], (size_t)lvals[v],
              (intmax_t)lvals[v], (uintmax_t)lvals[v], (ptrdiff_t)lvals[v]);
        check("%hd %hu %hx %hhd %hhu %hhx", (short)lvals[v], (unsigned short)lvals[v],
              (unsigned short)lvals[v], (signed char)lvals[v], (unsigned char)lvals[v],
              (unsigned char)lvals[v]);
        check("%-25lld|%025lld|%+25lld|% .20lld", lvals[v], lvals[v], lvals[v], lvals[v]);
    }
    for (int i = 0; i < 50000; i++) {
        static const char convs[] = "diuxXo";
        char fmt[32];
        int n = 0;
        fmt[n++] = '%';
        static const char flags[] = "-+ #0";
        for (int k = 0; k < 5; k++)
            if (next() % 4 == 0)
                fmt[n++] = flags[k];
        if (next() % 2)
            n += snprintf(fmt + n, sizeof fmt - (size_t)n, "%d", (int)(next() % 30));
        if (next() % 2)
            n += snprintf(fmt + n, sizeof fmt - (size_t)n, ".%d", (int)(next() % 25));
        fmt[n++] = 'l';
        fmt[n++] = 'l';
        char conv = convs[next() % 6];
        if ((conv == 'd' || conv == 'i') && strchr(fmt, '#'))
            continue; /* # with d is undefined */
        fmt[n++] = conv;
        fmt[n] = '\0';
        long long v = (long long)(next() >> (next() % 64));
        if (next() % 2)
            v = -v;
        check(fmt, v);
    }
    assert_int_equal(failures, 0);
}

static void test_strings_chars_pointers(void **state)
{
    failures = 0;
    check("%s|%10s|%-10s|%.2s|%10.2s|%-10.2s|%.0s|", "hello", "hello", "hello", "hello", "hello",
          "hello", "hello");
    check("%s%s%s", "", "a", "");
    check("%c|%5c|%-5c|%c", 'x', 'y', 'z', 0xe9);
    check("100%% done, %%d is literal|");
    check("%p %p %20p %-20p|", (void *)0x1234, (void *)&failures, (void *)0xdeadbeef,
          (void *)0x1000);
    check("%p|%10p|%-10p|", (void *)0, (void *)0, (void *)0);
    check("%.*s|%*s|", 3, "abcdef", -6, "ab");
    check("no conversions at all");
    check("%s", "multi\nline\ttext\x01");
    /* glibc prints "(null)" for a NULL %s (an extension both implement) */
    const char *volatile nul = NULL; /* volatile: keep gcc from flagging the NULL */
    check("%s|%10s|%.6s|%.3s|", nul, nul, nul, nul);
    assert_int_equal(failures, 0);
}

static const double fvals[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, 3.5, -2.5, 0.125, 0.375, 1e-5, 1.5e-5, 123456789.125,
    1e21, 1e22, 1e23, 9.9999999999e-5, 0.00001234, 999.9995, 99.5, 0.05, 0.15, 0.25, 0.35,
    1234.5678, 3.141592653589793, 2.718281828459045, 1.0 / 3.0, 2.0 / 3.0, 6.02214076e23,
    1.602176634e-19, DBL_MAX, -DBL_MAX, DBL_MIN, 4.9406564584124654e-324, 2.2250738585072009e-308,
    9007199254740993.0, 1e15, 1e16, 1e17, 123e-310, 0.1, 0.2, 0.3, 100.0, 1e100, 1e-100,
    HUGE_VAL, -HUGE_VAL, NAN, -NAN, 5e-324, 0.9999999, 9.5, 0.95, 0.095, 1e-4, 1e-5, 123456.0,
    1234567.0, 0.000123456};

static void test_floats_table(void **state)
{
    failures = 0;
    static const char *ffmts[] = {
        "%f", "%e", "%g", "%F", "%E", "%G", "%.0f", "%.0e", "%.0g", "%#.0f", "%#.0e", "%#g",
        "%#.0g", "%.1f", "%.2f", "%.3e", "%.10g", "%.17g", "%.20e", "%.30f", "%.40g", "%+f", "% e",
        "%+.3g", "%10.3f", "%-12.4e|", "%012.3g", "%015.4f", "%-015.2e|", "%+015.6g", "%#10.3g",
        "%.15g", "%.16g", "%.60f", "%.99e", "%5.0f", "%.1g", "%.2g", "%g", "%#.3G", "%020f",
        "%.325f", "%.400e", "%-+ 30.10e|", "%.*f", "%*.*e"};
    for (size_t f = 0; f < sizeof ffmts / sizeof ffmts[0]; f++)
        for (size_t v = 0; v < sizeof fvals / sizeof fvals[0]; v++) {
            if (strcmp(ffmts[f], "%.*f") == 0) {
                check("%.*f", 3, fvals[v]);
                check("%.*f", -3, fvals[v]);
            } else if (strcmp(ffmts[f], "%*.*e") == 0) {
                check("%*.*e", 25, 5, fvals[v]);
                check("%*.*e", -25, 5, fvals[v]);
            } else {
                check_float(ffmts[f], fvals[v]);
            }
        }
    assert_int_equal(failures, 0);
}

static double random_double(void)
{
    uint64_t u = next();
    double d;
    switch (next() % 6) {
    case 0: /* any bit pattern: subnormals, huge, NaN payloads */
        memcpy(&d, &u, sizeof d);
        return d;
    case 1: /* moderate magnitudes */
        return ldexp((double)(u >> 11), (int)(next() % 120) - 90);
    case 2: /* decimal-looking values, where rounding ties live */
        return (double)(int64_t)(u % 2000000) / (double)(1 + next() % 1000);
    case 3: /* exact ties in binary: k + 0.5, k/8, ... */
        return (double)(int64_t)(u % 100000) / (double)(1u << (next() % 12));
    case 4: /* integers */
        return (double)(int64_t)(u >> (next() % 64));
    default: /* tiny and huge powers */
        return ldexp(1.0 + (double)(u % 1000) / 1000.0, (int)(next() % 2100) - 1075);
    }
}

static void test_floats_random(void **state)
{
    failures = 0;
    static const char convs[] = "feEgGF";
    for (int i = 0; i < 200000; i++) {
        char fmt[32];
        int n = 0;
        fmt[n++] = '%';
        static const char flags[] = "-+ #0";
        for (int k = 0; k < 5; k++)
            if (next() % 5 == 0)
                fmt[n++] = flags[k];
        if (next() % 3 == 0)
            n += snprintf(fmt + n, sizeof fmt - (size_t)n, "%d", (int)(next() % 40));
        if (next() % 4)
            n += snprintf(fmt + n, sizeof fmt - (size_t)n, ".%d", (int)(next() % 30));
        fmt[n++] = convs[next() % 6];
        fmt[n] = '\0';
        double d = random_double();
        if (next() % 2 && !isnan(d))
            d = -d;
        check_float(fmt, d);
        if (failures > 20)
            break;
    }
    assert_int_equal(failures, 0);
}

static void test_truncation(void **state)
{
    char buf[16];
    memset(buf, 'Z', sizeof buf);
    int n = aspen_n_snprintf(buf, 5, "%s=%d", "abcdef", 42);
    assert_int_equal(n, 9);
    assert_string_equal(buf, "abcd");
    assert_int_equal(buf[5], 'Z'); /* nothing written past size */
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(aspen_n_snprintf(buf, 1, "%f", 3.5), 8);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'Z');
    assert_int_equal(aspen_n_snprintf(NULL, 0, "%.100f", 1.0), 102);
    /* every size from 0 up: same prefix as glibc, same return value */
    const char *fmt = "%08.3f|%-6s|%#x|%e";
    char full[128];
    int want = snprintf(full, sizeof full, fmt, -3.14159, "ab", 255u, 1e-10);
    for (size_t size = 0; size < (size_t)want + 3; size++) {
        char mine[128], ref[128];
        memset(mine, 'Q', sizeof mine);
        memset(ref, 'Q', sizeof ref);
        int a = aspen_n_snprintf(size ? mine : NULL, size, fmt, -3.14159, "ab", 255u, 1e-10);
        int b = snprintf(size ? ref : NULL, size, fmt, -3.14159, "ab", 255u, 1e-10);
        assert_int_equal(a, b);
        assert_memory_equal(mine, ref, sizeof mine);
    }
    /* huge widths are bounded by size, and the length is still reported */
    assert_int_equal(aspen_n_snprintf(buf, sizeof buf, "%5000d", 1), 5000);
    assert_int_equal(strlen(buf), sizeof buf - 1);
}

static void test_exact_digits(void **state)
{
    /* The exact decimal expansion the formatter and JSON writer build on. */
    char d[800]; /* ASPEN_DTOA_MAX_DIGITS */
    int e;
    int n = aspen__dtoa_exact(0.1, d, &e);
    assert_int_equal(e, 0);
    assert_int_equal(n, 55); /* 0.1000000000000000055511151231257827021181583404541015625 */
    assert_memory_equal(d, "1000000000000000055511151231257827021181583404541015625", 55);
    n = aspen__dtoa_exact(1024.0, d, &e);
    assert_int_equal(n, 4);
    assert_int_equal(e, 4);
    n = aspen__dtoa_exact(5e-324, d, &e);
    assert_int_equal(e, -323);
    assert_int_equal(n, 751); /* 2^-1074 has 751 significant digits */
    n = aspen__dtoa_exact(DBL_MAX, d, &e);
    assert_int_equal(e, 309);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings_chars_pointers),
        cmocka_unit_test(test_floats_table),
        cmocka_unit_test(test_floats_random),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_exact_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
