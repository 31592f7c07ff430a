/* tests/guests/test_sdk_strtod.c — the guest SDK's strtod against glibc's, bit for bit: hard
 * cases (halfway points between doubles, the subnormal range and its edges, overflow, inputs
 * longer than 800 digits), syntax (end pointer, hex floats, inf/nan), and a broad random sample
 * of shortest, %.17g, %.Ne and random-digit strings across the whole exponent range.
 */
#include <errno.h>
#include <float.h>
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

static uint64_t rng = 0x0123456789abcdefull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long failures;

static void check(const char *s)
{
    char *e1, *e2;
    aspen_n_errno = 0;
    errno = 0;
    double a = aspen_n_strtod(s, &e1);
    double b = strtod(s, &e2);
    bool same = memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
    /* ERANGE must agree on overflow; glibc also flags some subnormal results, which we do not. */
    bool erange_ok = !isinf(b) || (aspen_n_errno == ERANGE) == (errno == ERANGE) || e2 == s ||
                     strncasecmp(e2 - 3, "inf", 3) == 0 || strpbrk(s, "iI");
    if (!same || e1 != e2 || !erange_ok) {
        if (failures++ < 20)
            print_error("strtod(\"%.80s%s\"): got %a end+%td errno %d, glibc %a end+%td errno %d\n", s,
                        strlen(s) > 80 ? "..." : "", a, e1 - s, aspen_n_errno, b, e2 - s, errno);
    }
}

static void test_edge_cases(void **state)
{
    failures = 0;
    static const char *cases[] = {
        "0", "-0", "+0", "0.0", "00000.00000e99999", "1", "-1", "0.1", "0.2", "0.3", "1e23",
        "8.98846567431158e307", "1.7976931348623157e308", "1.7976931348623158e308",
        "1.7976931348623159e308", "1.797693134862315807e308", "1.7976931348623158079e308",
        "179769313486231580793728971405301e276", "1e308", "1e309", "-1e309", "1e-307",
        "2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308",
        "2.225073858507201136057409796709131975934819546351645648e-308",
        "4.9406564584124654e-324", "4.94065645841246544e-324", "2.4703282292062327e-324",
        "2.4703282292062328e-324", "2.47032822920623272088e-324", "1e-324", "3e-324",
        "7.4109846876186982e-324", "1e-400", "-1e-400", "9007199254740992", "9007199254740993",
        "9007199254740994", "9007199254740995", "9007199254740993.0000000000000000000001",
        "18014398509481985", "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126", "0.500000000000000166533453693773481063544750213623046875",
        "3.0517578125e-05", "123456789012345678901234567890", "0.000000000000000000000000000001",
        "1e-5", "1.5e-5", "12345678901234567890e-30", "2e0", "2E+0", "2e-0", "6.02214076e23",
        "  \t\n 12.5e+3xyz", "1e", "1e+", "1e-x", ".5", "5.", ".", "-", "+", "", "  ", "e5",
        "-.e5", "1.e5", "1..5", "1_000", "0x", "0x1p3", "0x1.8p3", "0X.8P1", "0x1p-1074",
        "0x1p-1075", "0x1.0000000000001p-1075", "0x1p1024", "0x1.fffffffffffff8p1023",
        "0x1.fffffffffffff7ffp1023", "0x123456789abcdef0123p0", "0x.00001p20", "0xp1", "0x1p",
        "0x1.8", "inf", "-Inf", "INFINITY", "infinit", "nan", "-NaN", "nan(123)", "nan(", "nanx",
        "1e2147483648", "1e-2147483649", "0e-999999999999", "1e+00000000000000000000000000003"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(cases[i]);
    assert_int_equal(failures, 0);
}

static void test_long_inputs(void **state)
{
    failures = 0;
    /* Far more than the 800 digits kept: the dropped digits must still break exact ties. */
    static char buf[4000];
    for (int round = 0; round < 400; round++) {
        int len = 0;
        int mode = round % 4;
        if (mode == 0) {
            /* 2^53 + 1 (a tie) followed by many zeros and then maybe a 1 */
            len = snprintf(buf, sizeof buf, "9007199254740993");
        } else if (mode == 1) {
            len = snprintf(buf, sizeof buf, "0.");
            for (int i = 0; i < 340; i++)
                buf[len++] = '0';
            buf[len++] = '2';
            buf[len++] = '4';
            buf[len++] = '7';
        } else {
            buf[len++] = (char)('1' + next() % 9);
            buf[len++] = '.';
        }
        int digits = 700 + (int)(next() % 2500);
        for (int i = 0; i < digits && len < (int)sizeof buf - 20; i++)
            buf[len++] = mode < 2 ? (next() % 50 == 0 ? '1' : '0') : (char)('0' + next() % 10);
        if (round % 3 == 0)
            buf[len - 1] = '1';
        if (mode >= 2)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "e%d", (int)(next() % 640) - 330);
        buf[len] = '\0';
        check(buf);
    }
    assert_int_equal(failures, 0);
}

static double random_double(void)
{
    uint64_t u = next();
    double d;
    switch (next() % 4) {
    case 0:
        memcpy(&d, &u, sizeof d);
        return isfinite(d) ? d : 1.0;
    case 1:
        return ldexp((double)(u >> 11), (int)(next() % 2140) - 1126);
    case 2:
        return (double)(int64_t)(u % 10000000) / (double)(1 + next() % 100000);
    default:
        return ldexp((double)(u >> 11), (int)(next() % 120) - 60);
    }
}

static void test_random_sample(void **state)
{
    failures = 0;
    char buf[128];
    for (int i = 0; i < 150000 && failures < 20; i++) {
        double d = fabs(random_double());
        /* exactly what a JSON writer would emit, and nearby shorter/longer texts */
        snprintf(buf, sizeof buf, "%.17g", d);
        check(buf);
        snprintf(buf, sizeof buf, "%.15g", d);
        check(buf);
        snprintf(buf, sizeof buf, "%.*e", (int)(next() % 25), d);
        check(buf);
        /* a random decimal: up to 25 random digits, random point, random exponent */
        int n = 0, nd = 1 + (int)(next() % 25), point = (int)(next() % (unsigned)(nd + 1));
        for (int k = 0; k < nd; k++) {
            if (k == point)
                buf[n++] = '.';
            buf[n++] = (char)('0' + next() % 10);
        }
        n += snprintf(buf + n, sizeof buf - (size_t)n, "e%d", (int)(next() % 700) - 350);
        check(buf);
        /* halfway between two neighbouring doubles, written exactly (the hardest case) */
        if (isfinite(d) && d > 0 && d < 1e300) {
            double up = nextafter(d, INFINITY);
            char mid[1200];
            /* (d + up) / 2 exactly: %.800e prints enough digits to be exact for these */
            long double m = ((long double)d + (long double)up) / 2;
            snprintf(mid, sizeof mid, "%.60Le", m);
            check(mid);
        }
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_random_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
