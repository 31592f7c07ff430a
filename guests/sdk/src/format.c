/* format.c — snprintf and vsnprintf for the guest SDK (include/stdio.h), and the exact decimal
 * expansion of doubles that they and the JSON writer share.
 *
 * Bounded: never writes past `size` bytes, always NUL-terminates when size > 0, and returns the
 * full length so callers can detect truncation. Floating point is exact: a double is expanded into
 * all of its decimal digits with big-integer arithmetic (a double is m * 2^k, so its decimal
 * expansion is finite) and then rounded once, half to even, exactly as glibc does; so output
 * matches glibc byte for byte, which the host tests check. No allocation: it works with a full
 * heap, which matters because panic messages are formatted with it.
 */
#define ASPEN_LIBC_IMPL 1
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sdk_internal.h"

/* ---- Exact decimal digits of a double --------------------------------------------------------- */

int aspen__dtoa_exact(double x, char *digits, int *dexp)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int ebits = (int)(bits >> 52) & 0x7ff;
    uint64_t m = bits & ((1ull << 52) - 1);
    int k;
    if (ebits == 0) {
        k = -1074;
    } else {
        m |= 1ull << 52;
        k = ebits - 1075;
    }
    if (m == 0) {
        *dexp = 1;
        return 0;
    }
    int tz = __builtin_ctzll(m); /* fewer bits, smaller numbers below */
    m >>= tz;
    k += tz;

    big n;
    big_set_u64(&n, m);
    int shift10 = 0; /* value = n * 10^shift10 */
    if (k >= 0) {
        big_shl(&n, (unsigned)k);
    } else {
        big_mul_pow5(&n, (unsigned)-k); /* m / 2^-k = m * 5^-k / 10^-k */
        shift10 = k;
    }

    /* Base 10^9 chunks, least significant first: at most ~770 digits, so 90 chunks. */
    uint32_t chunk[96];
    int nch = 0;
    while (!big_is_zero(&n) && nch < 96)
        chunk[nch++] = big_divmod_1e9(&n);

    int len = 0;
    char tmp[12];
    for (int i = nch - 1; i >= 0; i--) {
        uint32_t c = chunk[i];
        int t = 0;
        for (int j = 0; j < 9; j++) {
            tmp[t++] = (char)('0' + c % 10);
            c /= 10;
        }
        if (i == nch - 1)
            while (t > 1 && tmp[t - 1] == '0')
                t--; /* no leading zeros in the top chunk */
        while (t > 0 && len < ASPEN_DTOA_MAX_DIGITS)
            digits[len++] = tmp[--t];
    }
    int total = len;
    while (len > 0 && digits[len - 1] == '0')
        len--;
    *dexp = total + shift10;
    return len;
}

/* Keep the first `keep` digits of d[0..n), rounding half to even on the exact value. May carry
 * into a new leading digit (then *dexp grows). Returns the new digit count (trailing zeros
 * dropped; 0 means the value rounded to zero). */
static int round_digits(char *d, int n, int keep, int *dexp)
{
    if (keep >= n)
        return n;
    if (keep < 0)
        return 0;
    bool up;
    if (d[keep] != '5')
        up = d[keep] > '5';
    else if (keep + 1 < n)
        up = true; /* digits are trimmed: anything after the 5 is non-zero */
    else
        up = keep > 0 && ((d[keep - 1] - '0') & 1); /* an exact tie: to even */
    n = keep;
    if (up) {
        int i = keep - 1;
        while (i >= 0 && d[i] == '9')
            i--;
        if (i < 0) {
            d[0] = '1';
            n = 1;
            (*dexp)++;
        } else {
            d[i]++;
            n = i + 1;
        }
    }
    while (n > 0 && d[n - 1] == '0')
        n--;
    return n;
}

/* ---- Output sink ------------------------------------------------------------------------------ */

typedef struct sink {
    char *buf;
    size_t size; /* capacity including the NUL */
    size_t len;  /* bytes the full output has so far */
} sink;

static void put(sink *s, char c)
{
    if (s->len + 1 < s->size)
        s->buf[s->len] = c;
    s->len++;
}

static void put_n(sink *s, const char *p, size_t n)
{
    if (s->len + 1 < s->size) {
        size_t room = s->size - 1 - s->len;
        memcpy(s->buf + s->len, p, n < room ? n : room);
    }
    s->len += n;
}

static void put_rep(sink *s, char c, size_t n)
{
    if (s->len + 1 < s->size) {
        size_t room = s->size - 1 - s->len;
        memset(s->buf + s->len, c, n < room ? n : room);
    }
    s->len += n;
}

/* ---- Conversion specs ------------------------------------------------------------------------- */

enum { F_MINUS = 1, F_PLUS = 2, F_SPACE = 4, F_ALT = 8, F_ZERO = 16 };

typedef struct spec {
    unsigned flags;
    size_t width;
    int prec; /* -1: none */
    char conv;
} spec;

/* Pad to the width around a body of body_len bytes whose sign/prefix (pre) goes first. */
static void pad_left(sink *s, const spec *sp, size_t total)
{
    if (!(sp->flags & (F_MINUS | F_ZERO)) && sp->width > total)
        put_rep(s, ' ', sp->width - total);
}

static void pad_zero(sink *s, const spec *sp, size_t total)
{
    if ((sp->flags & F_ZERO) && !(sp->flags & F_MINUS) && sp->width > total)
        put_rep(s, '0', sp->width - total);
}

static void pad_right(sink *s, const spec *sp, size_t total)
{
    if ((sp->flags & F_MINUS) && sp->width > total)
        put_rep(s, ' ', sp->width - total);
}

static void fmt_int(sink *s, spec sp, uint64_t v, bool neg)
{
    char digits[24];
    int nd = 0;
    unsigned base = 10;
    const char *alphabet = "0123456789abcdef";
    switch (sp.conv) {
    case 'o': base = 8; break;
    case 'x': base = 16; break;
    case 'X': base = 16; alphabet = "0123456789ABCDEF"; break;
    default: break;
    }
    for (uint64_t t = v; t; t /= base)
        digits[nd++] = alphabet[t % base];
    if (sp.prec >= 0)
        sp.flags &= ~F_ZERO; /* a precision overrides the 0 flag for integers */
    int prec = sp.prec < 0 ? 1 : sp.prec;
    char pre[3];
    int npre = 0;
    if (sp.conv == 'd' || sp.conv == 'i') {
        if (neg)
            pre[npre++] = '-';
        else if (sp.flags & F_PLUS)
            pre[npre++] = '+';
        else if (sp.flags & F_SPACE)
            pre[npre++] = ' ';
    } else if ((sp.flags & F_ALT) && base == 16 && v != 0) {
        pre[npre++] = '0';
        pre[npre++] = sp.conv == 'X' ? 'X' : 'x';
    } else if ((sp.flags & F_ALT) && base == 8 && prec <= nd) {
        prec = nd + 1; /* the alternate form starts with a 0 */
    }
    size_t zeros = prec > nd ? (size_t)(prec - nd) : 0;
    size_t total = (size_t)npre + zeros + (size_t)nd;
    pad_left(s, &sp, total);
    put_n(s, pre, (size_t)npre);
    pad_zero(s, &sp, total);
    put_rep(s, '0', zeros);
    while (nd > 0)
        put(s, digits[--nd]);
    pad_right(s, &sp, total);
}

static void fmt_str(sink *s, const spec *sp, const char *str, size_t n)
{
    pad_left(s, sp, n);
    if (sp->flags & F_ZERO && !(sp->flags & F_MINUS) && sp->width > n)
        put_rep(s, ' ', sp->width - n); /* glibc pads strings with spaces even with 0 */
    put_n(s, str, n);
    pad_right(s, sp, n);
}

static void fmt_float(sink *s, spec sp, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bool neg = bits >> 63;
    bool upper = sp.conv == 'F' || sp.conv == 'E' || sp.conv == 'G';
    char sign = neg ? '-' : (sp.flags & F_PLUS) ? '+' : (sp.flags & F_SPACE) ? ' ' : 0;
    size_t nsign = sign ? 1 : 0;

    if (x != x || x == __builtin_inf() || x == -__builtin_inf()) {
        const char *t = x != x ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
        sp.flags &= ~F_ZERO; /* glibc pads inf and nan with spaces */
        size_t total = nsign + 3;
        pad_left(s, &sp, total);
        if (sign)
            put(s, sign);
        put_n(s, t, 3);
        pad_right(s, &sp, total);
        return;
    }

    char d[ASPEN_DTOA_MAX_DIGITS];
    int dexp;
    int n = aspen__dtoa_exact(x, d, &dexp); /* sign ignored: bits of |x| */
    int prec = sp.prec < 0 ? 6 : sp.prec;
    char style = (char)(sp.conv | 0x20); /* 'f', 'e' or 'g' */
    bool strip = false;

    if (style == 'g') {
        int p = prec == 0 ? 1 : prec;
        n = round_digits(d, n, p, &dexp);
        int X = n == 0 ? 0 : dexp - 1;
        if (p > X && X >= -4) {
            style = 'f';
            prec = p - 1 - X;
        } else {
            style = 'e';
            prec = p - 1;
        }
        strip = !(sp.flags & F_ALT);
    }

    /* Layout: [sign] int_part [point frac_part] [exponent]. */
    int int_digits, frac_len = prec;
    char expbuf[8];
    int nexp = 0;
    if (style == 'e') {
        n = round_digits(d, n, prec + 1, &dexp);
        int e = n == 0 ? 0 : dexp - 1;
        if (strip) {
            /* %g: drop trailing zeros of the fraction */
            int have = n > 0 ? n - 1 : 0;
            if (frac_len > have)
                frac_len = have;
        }
        int_digits = 1;
        expbuf[nexp++] = upper ? 'E' : 'e';
        expbuf[nexp++] = e < 0 ? '-' : '+';
        unsigned ae = (unsigned)(e < 0 ? -e : e);
        char t[4];
        int nt = 0;
        do {
            t[nt++] = (char)('0' + ae % 10);
            ae /= 10;
        } while (ae);
        if (nt < 2)
            t[nt++] = '0';
        while (nt)
            expbuf[nexp++] = t[--nt];
    } else {
        n = round_digits(d, n, dexp + prec, &dexp);
        if (n == 0)
            dexp = 1;
        int_digits = dexp > 0 ? dexp : 1;
        if (strip) {
            int have = n - dexp; /* digits after the point */
            if (have < 0)
                have = 0;
            if (frac_len > have)
                frac_len = have;
        }
    }
    bool point = frac_len > 0 || (sp.flags & F_ALT);
    size_t total = nsign + (size_t)int_digits + (point ? 1 : 0) + (size_t)frac_len + (size_t)nexp;

    pad_left(s, &sp, total);
    if (sign)
        put(s, sign);
    pad_zero(s, &sp, total);
    /* Digit i of the value (0 = first significant) is d[i] when 0 <= i < n, else '0'. In the
     * fixed style, the first integer digit is digit 0 when dexp > 0 and a lone '0' otherwise. */
    if (style == 'e') {
        put(s, n > 0 ? d[0] : '0');
        if (point)
            put(s, '.');
        int avail = n > 1 ? n - 1 : 0;
        int take = frac_len < avail ? frac_len : avail;
        put_n(s, d + 1, (size_t)take);
        put_rep(s, '0', (size_t)(frac_len - take));
        put_n(s, expbuf, (size_t)nexp);
    } else {
        if (dexp > 0) {
            int take = n < dexp ? n : dexp;
            put_n(s, d, (size_t)take);
            put_rep(s, '0', (size_t)(dexp - take));
        } else {
            put(s, '0');
        }
        if (point)
            put(s, '.');
        /* Fraction position j (0-based) is digit dexp + j. */
        int j = 0;
        if (dexp < 0) {
            int z = -dexp < frac_len ? -dexp : frac_len;
            put_rep(s, '0', (size_t)z);
            j = z;
        }
        int first = dexp + j; /* >= 0 here */
        if (first < n && j < frac_len) {
            int take = n - first < frac_len - j ? n - first : frac_len - j;
            put_n(s, d + first, (size_t)take);
            j += take;
        }
        put_rep(s, '0', (size_t)(frac_len - j));
    }
    pad_right(s, &sp, total);
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
    sink s = {buf, size, 0};
    va_list args;
    va_copy(args, ap);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            const char *q = p;
            while (q[1] && q[1] != '%')
                q++;
            put_n(&s, p, (size_t)(q - p + 1));
            p = q;
            continue;
        }
        const char *start = p++;
        spec sp = {0, 0, -1, 0};
        for (;; p++) {
            if (*p == '-')
                sp.flags |= F_MINUS;
            else if (*p == '+')
                sp.flags |= F_PLUS;
            else if (*p == ' ')
                sp.flags |= F_SPACE;
            else if (*p == '#')
                sp.flags |= F_ALT;
            else if (*p == '0')
                sp.flags |= F_ZERO;
            else if (*p == '\'')
                ; /* thousands grouping: the C locale has none */
            else
                break;
        }
        if (*p == '*') {
            int w = va_arg(args, int);
            if (w < 0) {
                sp.flags |= F_MINUS;
                sp.width = (size_t)-(long)w;
            } else {
                sp.width = (size_t)w;
            }
            p++;
        } else {
            while (*p >= '0' && *p <= '9') {
                if (sp.width < INT_MAX)
                    sp.width = sp.width * 10 + (size_t)(*p - '0');
                p++;
            }
        }
        if (*p == '.') {
            p++;
            if (*p == '*') {
                int pr = va_arg(args, int);
                sp.prec = pr < 0 ? -1 : pr;
                p++;
            } else {
                long pr = 0;
                while (*p >= '0' && *p <= '9') {
                    if (pr < INT_MAX / 10)
                        pr = pr * 10 + (*p - '0');
                    p++;
                }
                sp.prec = (int)pr;
            }
        }
        /* Length modifier: 0 int, 1 char, 2 short, 3 long, 4 long long, 5 size_t, 6 intmax_t,
         * 7 ptrdiff_t. */
        int len = 0;
        switch (*p) {
        case 'h': len = p[1] == 'h' ? (p++, 1) : 2; p++; break;
        case 'l': len = p[1] == 'l' ? (p++, 4) : 3; p++; break;
        case 'z': len = 5; p++; break;
        case 'j': len = 6; p++; break;
        case 't': len = 7; p++; break;
        default: break;
        }
        sp.conv = *p;
        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v;
            switch (len) {
            case 1: v = (signed char)va_arg(args, int); break;
            case 2: v = (short)va_arg(args, int); break;
            case 3: v = va_arg(args, long); break;
            case 4: v = va_arg(args, long long); break;
            case 5: v = va_arg(args, long); break; /* ssize_t */
            case 6: v = va_arg(args, intmax_t); break;
            case 7: v = va_arg(args, ptrdiff_t); break;
            default: v = va_arg(args, int); break;
            }
            uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            fmt_int(&s, sp, mag, v < 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            uint64_t v;
            switch (len) {
            case 1: v = (unsigned char)va_arg(args, unsigned); break;
            case 2: v = (unsigned short)va_arg(args, unsigned); break;
            case 3: v = va_arg(args, unsigned long); break;
            case 4: v = va_arg(args, unsigned long long); break;
            case 5: v = va_arg(args, size_t); break;
            case 6: v = va_arg(args, uintmax_t); break;
            case 7: v = (uint64_t)va_arg(args, ptrdiff_t); break;
            default: v = va_arg(args, unsigned); break;
            }
            fmt_int(&s, sp, v, false);
            break;
        }
        case 'c': {
            char c = (char)va_arg(args, int);
            sp.prec = -1;
            fmt_str(&s, &sp, &c, 1);
            break;
        }
        case 's': {
            const char *str = va_arg(args, const char *);
            size_t n;
            if (!str) {
                /* glibc: "(null)" if the precision allows all of it, else nothing */
                str = (sp.prec < 0 || sp.prec >= 6) ? "(null)" : "";
                n = strlen(str);
            } else {
                n = sp.prec < 0 ? strlen(str) : strnlen(str, (size_t)sp.prec);
            }
            fmt_str(&s, &sp, str, n);
            break;
        }
        case 'p': {
            void *ptr = va_arg(args, void *);
            if (!ptr) {
                sp.prec = -1;
                fmt_str(&s, &sp, "(nil)", 5);
            } else {
                sp.conv = 'x';
                sp.flags |= F_ALT;
                fmt_int(&s, sp, (uint64_t)(uintptr_t)ptr, false);
            }
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            fmt_float(&s, sp, va_arg(args, double));
            break;
        case '%':
            put(&s, '%');
            break;
        default:
            /* Unknown (or %n, which is never honoured): print the spec as written. */
            if (!*p)
                p--;
            put_n(&s, start, (size_t)(p - start + 1));
            break;
        }
    }
    va_end(args);
    if (size > 0)
        buf[s.len < size ? s.len : size - 1] = '\0';
    if (s.len > INT_MAX)
        return -1;
    return (int)s.len;
}

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
