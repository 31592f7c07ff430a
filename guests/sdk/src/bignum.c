/* bignum.c — the small fixed-size big-integer arithmetic behind exact number conversion.
 *
 * strtod.c compares a decimal input with binary candidates exactly, and format.c expands doubles
 * into their exact decimal digits; both need unsigned integers of a few thousand bits and only a
 * handful of operations (multiply by a small number or a power of 5 or 2, compare, divide by 1e9).
 * Fixed capacity keeps it allocation-free, so formatting works even when the heap is exhausted.
 */
#define ASPEN_LIBC_IMPL 1
#include <string.h>

#include "sdk_internal.h"

static void trim(big *b)
{
    while (b->n > 0 && b->d[b->n - 1] == 0)
        b->n--;
}

void big_set_u64(big *b, uint64_t v)
{
    b->overflow = false;
    b->d[0] = (uint32_t)v;
    b->d[1] = (uint32_t)(v >> 32);
    b->n = 2;
    trim(b);
}

void big_mul_small(big *b, uint32_t m)
{
    uint64_t carry = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->d[i] * m + carry;
        b->d[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) {
        if (b->n == BIG_LIMBS)
            b->overflow = true;
        else
            b->d[b->n++] = (uint32_t)carry;
    }
}

void big_add_small(big *b, uint32_t a)
{
    uint64_t carry = a;
    for (uint32_t i = 0; i < b->n && carry; i++) {
        uint64_t t = (uint64_t)b->d[i] + carry;
        b->d[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) {
        if (b->n == BIG_LIMBS)
            b->overflow = true;
        else
            b->d[b->n++] = (uint32_t)carry;
    }
}

void big_mul_pow5(big *b, unsigned e)
{
    static const uint32_t pow5[14] = {1,       5,        25,        125,        625,
                                      3125,    15625,    78125,     390625,     1953125,
                                      9765625, 48828125, 244140625, 1220703125};
    while (e >= 13) {
        big_mul_small(b, pow5[13]);
        e -= 13;
    }
    if (e)
        big_mul_small(b, pow5[e]);
}

void big_shl(big *b, unsigned bits)
{
    if (b->n == 0 || bits == 0)
        return;
    unsigned limbs = bits / 32, s = bits % 32;
    uint32_t need = b->n + limbs + (s ? 1 : 0);
    if (need > BIG_LIMBS) {
        b->overflow = true;
        return;
    }
    if (s) {
        b->d[b->n + limbs] = 0;
        for (uint32_t i = b->n; i-- > 0;) {
            b->d[i + limbs + 1] |= b->d[i] >> (32 - s);
            b->d[i + limbs] = b->d[i] << s;
        }
    } else {
        for (uint32_t i = b->n; i-- > 0;)
            b->d[i + limbs] = b->d[i];
    }
    for (unsigned i = 0; i < limbs; i++)
        b->d[i] = 0;
    b->n = need;
    trim(b);
}

void big_mul_pow10(big *b, unsigned e)
{
    big_mul_pow5(b, e);
    big_shl(b, e);
}

int big_cmp(const big *a, const big *b)
{
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (uint32_t i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i])
            return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

uint32_t big_divmod_1e9(big *b)
{
    uint64_t rem = 0;
    for (uint32_t i = b->n; i-- > 0;) {
        uint64_t cur = (rem << 32) | b->d[i];
        b->d[i] = (uint32_t)(cur / 1000000000u);
        rem = cur % 1000000000u;
    }
    trim(b);
    return (uint32_t)rem;
}
