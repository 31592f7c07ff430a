/* strtod.c — correctly rounded decimal (and hexadecimal) to double conversion for the guest SDK.
 *
 * Used by the JSON parser and by guests directly (include/stdlib.h). The result is the double
 * nearest to the exact decimal value, ties to even, for inputs of any length — the same answer
 * glibc gives. Method:
 *   1. Exact fast path (Clinger): at most 19 significant digits forming an integer below 2^53 and a
 *      power of ten below 10^23 are both exact doubles, so one multiply or divide rounds correctly.
 *   2. Otherwise an approximation from the first 19 digits (a few ulps off at worst) is corrected
 *      by comparing the exact decimal value with the midpoints between neighbouring doubles, in
 *      big-integer arithmetic (bignum.c), stepping one ulp at a time until it brackets the input.
 * Up to 800 significant digits are kept; any non-zero digit beyond that only breaks an exact tie
 * (a midpoint between doubles never has more than 767 significant digits, so 800 always decide).
 */
#define ASPEN_LIBC_IMPL 1
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

#define MAX_DIGITS 800
#define MANT_TOP (1ull << 52)

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* m * 2^k (m < 2^53; normalised by the caller or subnormal with k = -1074) as a double. */
static double compose(uint64_t m, int k)
{
    if (m == 0)
        return 0.0;
    if (m < MANT_TOP) /* subnormal: k is -1074 */
        return from_bits(m);
    return from_bits(((uint64_t)(k + 1075) << 52) | (m & (MANT_TOP - 1)));
}

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 10^e for 0 <= e <= 350 by binary powering: a few ulps off for large e, which only costs the
 * correction loop a step or two. */
static double approx_pow10(int e)
{
    static const double sq[9] = {1e1, 1e2, 1e4, 1e8, 1e16, 1e32, 1e64, 1e128, 1e256};
    double r = 1.0;
    for (int i = 0; i < 9 && e; i++, e >>= 1)
        if (e & 1)
            r *= sq[i];
    return e ? __builtin_inf() : r;
}

/* The decimal input: value = digits (as an integer) * 10^e10, plus "a bit more" if sticky. */
typedef struct decimal {
    char d[MAX_DIGITS]; /* digit values 0..9, no leading zeros */
    int n;
    int e10;
    bool sticky; /* non-zero digits were dropped after the first MAX_DIGITS */
} decimal;

/* Compare the decimal value with m * 2^j exactly: <0, 0 or >0. */
static int cmp_decimal(const decimal *x, const big *digits, uint64_t m, int j)
{
    big a = *digits, b;
    big_set_u64(&b, m);
    if (x->e10 >= 0)
        big_mul_pow5(&a, (unsigned)x->e10);
    else
        big_mul_pow5(&b, (unsigned)-x->e10);
    int p2 = x->e10 - j;
    if (p2 >= 0)
        big_shl(&a, (unsigned)p2);
    else
        big_shl(&b, (unsigned)-p2);
    int c = big_cmp(&a, &b);
    if (c == 0 && x->sticky)
        c = 1;
    return c;
}

static double decimal_to_double(const decimal *x, bool *range_err)
{
    *range_err = false;
    if (x->n == 0)
        return 0.0;
    /* The value lies in [10^(n+e10-1), 10^(n+e10)). */
    int mag = x->n + x->e10;
    if (mag > 310) {
        *range_err = true;
        return __builtin_inf();
    }
    if (mag < -324) {
        *range_err = true;
        return 0.0;
    }
    int lead = x->n < 19 ? x->n : 19;
    uint64_t w = 0;
    for (int i = 0; i < lead; i++)
        w = w * 10 + (uint64_t)x->d[i];
    int e = x->e10 + (x->n - lead);
    if (x->n == lead && !x->sticky && w < (1ull << 53) && e >= -22 && e <= 22)
        return e >= 0 ? (double)w * exact_pow10[e] : (double)w / exact_pow10[-e];

    /* Approximation, kept inside the finite range so the loop below can walk from it. */
    double g = (double)w;
    if (e >= 0) {
        g *= approx_pow10(e > 308 ? 308 : e);
        if (e > 308)
            g *= approx_pow10(e - 308);
    } else {
        int ne = -e;
        if (ne > 300) {
            g /= approx_pow10(300);
            ne -= 300;
        }
        g /= approx_pow10(ne);
    }
    if (g == __builtin_inf())
        g = 1.7976931348623157e308;

    uint64_t m;
    int k;
    uint64_t bits = to_bits(g);
    int ebits = (int)(bits >> 52) & 0x7ff;
    if (ebits == 0) {
        m = bits & (MANT_TOP - 1);
        k = -1074;
        if (m == 0)
            m = 1; /* start from the smallest subnormal */
    } else {
        m = (bits & (MANT_TOP - 1)) | MANT_TOP;
        k = ebits - 1075;
    }

    big digits;
    big_set_u64(&digits, 0);
    for (int i = 0; i < x->n; i++) {
        big_mul_small(&digits, 10);
        big_add_small(&digits, (uint32_t)x->d[i]);
    }

    for (int iter = 0; iter < 4096; iter++) {
        /* Above the midpoint to the next double up (or on it, with m odd)? Step up. */
        int c = cmp_decimal(x, &digits, 2 * m + 1, k - 1);
        if (c > 0 || (c == 0 && (m & 1))) {
            m++;
            if (m == 2 * MANT_TOP) {
                m = MANT_TOP;
                k++;
            }
            if (k > 971) {
                *range_err = true;
                return __builtin_inf();
            }
            continue;
        }
        if (m == 0)
            break;
        /* Below the midpoint to the next double down? Step down. The gap below a power of two
         * is half as wide. */
        if (m == MANT_TOP && k > -1074)
            c = cmp_decimal(x, &digits, 4 * m - 1, k - 2);
        else
            c = cmp_decimal(x, &digits, 2 * m - 1, k - 1);
        if (c < 0 || (c == 0 && (m & 1))) {
            m--;
            if (m < MANT_TOP && k > -1074) {
                m = 2 * m + 1;
                k--;
            }
            continue;
        }
        break;
    }
    if (m == 0)
        *range_err = true;
    return compose(m, k);
}

/* Round a hexadecimal mantissa (top bit at bit 63, sticky below) times 2^lb-63 to a double. */
static double hex_to_double(uint64_t mant, int lb, bool sticky, bool *range_err)
{
    *range_err = false;
    if (lb > 1023) {
        *range_err = true;
        return __builtin_inf();
    }
    int shift = 11; /* 64 - 53 */
    int k = lb - 52;
    if (lb < -1022) {
        shift += -1022 - lb;
        k = -1074;
    }
    if (shift > 64) {
        *range_err = true;
        return 0.0;
    }
    uint64_t m = shift == 64 ? 0 : mant >> shift;
    uint64_t rest = shift == 64 ? mant : mant << (64 - shift);
    uint64_t half = 1ull << 63;
    if (rest > half || (rest == half && (sticky || (m & 1))))
        m++;
    if (m == 2 * MANT_TOP) {
        m = MANT_TOP;
        k++;
        if (k > 971) {
            *range_err = true;
            return __builtin_inf();
        }
    }
    /* A subnormal that rounded up to MANT_TOP is the smallest normal: compose handles it. */
    if (m == 0)
        *range_err = true;
    return compose(m, k);
}

static bool match_word(const char *p, const char *w, const char **end)
{
    size_t i = 0;
    for (; w[i]; i++)
        if (tolower((unsigned char)p[i]) != w[i])
            return false;
    *end = p + i;
    return true;
}

/* The exponent after 'e' or 'p' at p (the letter itself excluded): an optional sign and digits.
 * Returns the end of the digits with *value = the exponent (digits stop counting once it reaches
 * cap: a bigger one means the same overflow or underflow), or NULL when no digit follows, which
 * leaves the letter out of the number. */
static const char *parse_exponent(const char *p, long cap, long *value)
{
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return NULL;
    long e = 0;
    for (; isdigit((unsigned char)*p); p++)
        if (e < cap)
            e = e * 10 + (*p - '0');
    *value = neg ? -e : e;
    return p;
}

static double parse_hex(const char *p, const char **end, bool *range_err)
{
    uint64_t mant = 0;
    int bits_exp = 0; /* binary exponent adjustment */
    bool sticky = false, any = false, point = false;
    for (;; p++) {
        int v;
        if (*p == '.' && !point) {
            point = true;
            continue;
        }
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            break;
        any = true;
        if (mant >> 60) { /* no room for 4 more bits: keep the exponent, remember non-zero bits */
            if (v)
                sticky = true;
            if (!point)
                bits_exp += 4;
        } else {
            mant = (mant << 4) | (uint64_t)v;
            if (point)
                bits_exp -= 4;
        }
    }
    if (!any)
        return -1.0; /* caller checks *end */
    *end = p;
    long e;
    const char *q;
    if ((*p == 'p' || *p == 'P') && (q = parse_exponent(p + 1, 100000, &e)) != NULL) {
        bits_exp += (int)e;
        *end = q;
    }
    *range_err = false;
    if (mant == 0)
        return 0.0;
    int lz = __builtin_clzll(mant);
    mant <<= lz;
    int lb = bits_exp + 63 - lz;
    return hex_to_double(mant, lb, sticky, range_err);
}

double strtod(const char *restrict s, char **restrict endp)
{
    const char *p = s, *end = s;
    bool neg = false, range_err = false;
    double r = 0.0;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';

    if (match_word(p, "infinity", &end) || match_word(p, "inf", &end)) {
        r = __builtin_inf();
    } else if (match_word(p, "nan", &end)) {
        r = __builtin_nan("");
        if (*end == '(') { /* nan(n-char-sequence) */
            const char *q = end + 1;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            if (*q == ')')
                end = q + 1;
        }
    } else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
               (isxdigit((unsigned char)p[2]) || (p[2] == '.' && isxdigit((unsigned char)p[3])))) {
        r = parse_hex(p + 2, &end, &range_err);
    } else {
        decimal x;
        x.n = 0;
        x.e10 = 0;
        x.sticky = false;
        bool any = false, point = false;
        int dropped_int = 0; /* integer digits beyond MAX_DIGITS: each multiplies by 10 */
        for (;; p++) {
            if (*p == '.' && !point) {
                point = true;
                continue;
            }
            if (!isdigit((unsigned char)*p))
                break;
            any = true;
            int v = *p - '0';
            if (x.n == 0 && v == 0) {
                if (point)
                    x.e10--; /* leading zero after the point: scales down */
                continue;
            }
            if (x.n < MAX_DIGITS) {
                x.d[x.n++] = (char)v;
                if (point)
                    x.e10--;
            } else {
                if (v)
                    x.sticky = true;
                if (!point)
                    dropped_int++;
            }
        }
        if (any) {
            x.e10 += dropped_int;
            end = p;
            long e;
            const char *q;
            if ((*p == 'e' || *p == 'E') && (q = parse_exponent(p + 1, 100000000, &e)) != NULL) {
                long total = (long)x.e10 + e;
                if (total > 100000000)
                    total = 100000000;
                if (total < -100000000)
                    total = -100000000;
                x.e10 = (int)total;
                end = q;
            }
            /* Trailing zeros carry no information: drop them into the exponent. */
            while (x.n > 0 && x.d[x.n - 1] == 0 && !x.sticky) {
                x.n--;
                x.e10++;
            }
            r = decimal_to_double(&x, &range_err);
        }
    }
    if (endp)
        *endp = (char *)end;
    if (end == s)
        return 0.0;
    if (range_err)
        errno = ERANGE;
    return neg ? -r : r;
}

float strtof(const char *restrict s, char **restrict end)
{
    /* Double rounding (decimal -> double -> float) is wrong only for inputs within a hair of a
     * float midpoint; good enough for a freestanding strtof. */
    return (float)strtod(s, end);
}
