/* math.c — the small math subset of the guest SDK (include/math.h).
 *
 * Guests are built for baseline x86-64 (SSE2, no SSE4.1 `roundsd`), where gcc turns floor() and
 * friends into library calls, so they are implemented here on the bits of the double. Exact: no
 * rounding error is possible in any of them except sqrt, which is the correctly rounded hardware
 * instruction.
 */
#define ASPEN_LIBC_IMPL 1
#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double of_bits(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

double fabs(double x) { return of_bits(bits_of(x) & ~(1ull << 63)); }

double trunc(double x)
{
    uint64_t u = bits_of(x);
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    if (e >= 52)
        return x; /* already integral (or inf/nan) */
    if (e < 0)
        return of_bits(u & (1ull << 63)); /* |x| < 1: signed zero */
    uint64_t frac_mask = ((1ull << 52) - 1) >> e;
    return of_bits(u & ~frac_mask);
}

double floor(double x)
{
    double t = trunc(x);
    return (t != x && x < 0) ? t - 1.0 : t;
}

double ceil(double x)
{
    double t = trunc(x);
    return (t != x && x > 0) ? t + 1.0 : t;
}

double round(double x)
{
    double t = trunc(x);
    double diff = x - t; /* exact: x and t share the exponent range */
    if (diff >= 0.5)
        return t + 1.0;
    if (diff <= -0.5)
        return t - 1.0;
    return t;
}

double fmod(double x, double y)
{
    if (isnan(x) || isnan(y) || isinf(x) || y == 0)
        return NAN;
    if (isinf(y) || fabs(x) < fabs(y))
        return x;
    /* Long division on the binary expansion: subtract y * 2^k for decreasing k. Exact. */
    double ax = fabs(x), ay = fabs(y);
    while (ax >= ay) {
        double d = ay;
        while (d <= ax / 2)
            d *= 2;
        ax -= d;
    }
    return x < 0 ? -ax : ax;
}

double sqrt(double x)
{
    double r;
    __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x));
    return r;
}

double ldexp(double x, int exp)
{
    if (x == 0 || isinf(x) || isnan(x))
        return x;
    /* Scale in steps the exponent range can take, so intermediate results do not overflow and
     * the final subnormal rounding happens once. */
    while (exp > 1000) {
        x *= 0x1p1000;
        exp -= 1000;
        if (isinf(x))
            return x;
    }
    while (exp < -1000) {
        x *= 0x1p-1000;
        exp += 1000;
        if (x == 0)
            return x;
    }
    /* Now -1000 <= exp <= 1000: 2^exp is a normal double, and one multiply rounds once. */
    return x * of_bits((uint64_t)(exp + 1023) << 52);
}

double frexp(double x, int *exp)
{
    *exp = 0;
    if (x == 0 || isinf(x) || isnan(x))
        return x;
    uint64_t u = bits_of(x);
    int e = (int)((u >> 52) & 0x7ff);
    if (e == 0) { /* subnormal: normalise first */
        x *= 0x1p64;
        u = bits_of(x);
        e = (int)((u >> 52) & 0x7ff) - 64;
    }
    *exp = e - 1022;
    return of_bits((u & ~(0x7ffull << 52)) | (1022ull << 52));
}
