/* tui/text.c — terminal-safe text (aspen_text.h): the escaping both front ends use, and the UTF-8
 * checks and repair the CLI's JSON output needs. Pure functions over bytes; tests/tui/test_text.c
 * covers every class of character it handles.
 */
#include "aspen_text.h"

#include <stdlib.h>
#include <string.h>

size_t aspen_text_utf8_decode(const void *p, size_t n, uint32_t *cp)
{
    const unsigned char *s = p;
    if (n == 0)
        return 0;
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        v = b & 0x1fu;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        v = b & 0x0fu;
        if (b == 0xe0)
            lo = 0xa0; /* below: overlong */
        else if (b == 0xed)
            hi = 0x9f; /* above: UTF-16 surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        v = b & 0x07u;
        if (b == 0xf0)
            lo = 0x90; /* below: overlong */
        else if (b == 0xf4)
            hi = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong 2-byte) or F5..FF */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
            return 0;
        v = (v << 6) | (c & 0x3fu);
    }
    *cp = v;
    return len;
}

bool aspen_text_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = aspen_text_utf8_decode(p + i, len - i, &cp);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

char *aspen_text_utf8_repair(const void *s, size_t len, size_t *out_len)
{
    const unsigned char *p = s;
    /* at most 3 bytes out for each byte in */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = aspen_text_utf8_decode(p + i, len - i, &cp);
        if (k == 0) {
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        } else {
            memcpy(out + w, p + i, k);
            w += k;
            i += k;
        }
    }
    out[w] = '\0';
    if (out_len)
        *out_len = w;
    return out;
}

static bool is_bidi_or_separator(uint32_t cp)
{
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* The next unit of s[0, n) as shown: writes it to unit (at most 7 bytes, not terminated) and
 * returns its length; *used gets the bytes of s it stands for (>= 1). */
static size_t next_unit(const unsigned char *s, size_t n, unsigned flags, char unit[8], size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b = s[0];
    *used = 1;
    if (b >= 0x20 && b < 0x7f) {
        unit[0] = (char)b;
        return 1;
    }
    if (b == '\t' || b == '\n') {
        unsigned keep = b == '\t' ? ASPEN_TEXT_KEEP_TAB : ASPEN_TEXT_KEEP_NEWLINE;
        if (flags & keep) {
            unit[0] = (char)b;
            return 1;
        }
        if (flags & ASPEN_TEXT_SPACES) {
            unit[0] = ' ';
            return 1;
        }
        unit[0] = '\\';
        unit[1] = b == '\t' ? 't' : 'n';
        return 2;
    }
    if (b == '\r') {
        memcpy(unit, "\\r", 2);
        return 2;
    }
    if (b < 0x80) { /* the other C0 controls and DEL */
        unit[0] = '\\';
        unit[1] = 'x';
        unit[2] = hex[b >> 4];
        unit[3] = hex[b & 15];
        return 4;
    }
    uint32_t cp;
    size_t k = aspen_text_utf8_decode(s, n, &cp);
    if (k == 0) { /* not UTF-8: the byte, escaped */
        unit[0] = '\\';
        unit[1] = 'x';
        unit[2] = hex[b >> 4];
        unit[3] = hex[b & 15];
        return 4;
    }
    *used = k;
    if ((cp >= 0x80 && cp <= 0x9f) || is_bidi_or_separator(cp)) {
        unit[0] = '\\';
        unit[1] = 'u';
        for (int i = 0; i < 4; i++)
            unit[2 + i] = hex[(cp >> (12 - 4 * i)) & 15];
        return 6;
    }
    memcpy(unit, s, k);
    return k;
}

/* Printable ASCII: the common case, copied in runs rather than unit by unit. */
static size_t ascii_run(const unsigned char *p, size_t n)
{
    size_t k = 0;
    while (k < n && p[k] >= 0x20 && p[k] < 0x7f)
        k++;
    return k;
}

size_t aspen_text_escape(const void *s, size_t len, unsigned flags, char *out, size_t cap)
{
    const unsigned char *p = s;
    size_t need = 0, w = 0;
    bool full = cap == 0;
    for (size_t i = 0; i < len;) {
        size_t run = ascii_run(p + i, len - i);
        if (run) {
            if (!full) {
                size_t fit = w + run < cap ? run : cap - 1 - w;
                memcpy(out + w, p + i, fit);
                w += fit;
                full = fit < run;
            }
            need += run;
            i += run;
            continue;
        }
        char unit[8];
        size_t used, u = next_unit(p + i, len - i, flags, unit, &used);
        i += used;
        if (!full && w + u < cap) {
            memcpy(out + w, unit, u);
            w += u;
        } else {
            full = true; /* nothing after a unit that did not fit */
        }
        need += u;
    }
    if (cap)
        out[w] = '\0';
    return need;
}

size_t aspen_text_escape_str(const char *s, unsigned flags, char *out, size_t cap)
{
    return aspen_text_escape(s, s ? strlen(s) : 0, flags, out, cap);
}

char *aspen_text_escape_dup(const void *s, size_t len, unsigned flags)
{
    size_t need = aspen_text_escape(s, len, flags, NULL, 0);
    if (need == SIZE_MAX)
        return NULL;
    char *out = malloc(need + 1);
    if (out)
        aspen_text_escape(s, len, flags, out, need + 1);
    return out;
}

int aspen_text_fputs(const void *s, size_t len, unsigned flags, FILE *f)
{
    const unsigned char *p = s;
    char buf[1024];
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        size_t run = ascii_run(p + i, len - i);
        if (run) {
            if (w && fwrite(buf, 1, w, f) != w)
                return EOF;
            w = 0;
            if (fwrite(p + i, 1, run, f) != run)
                return EOF;
            i += run;
            continue;
        }
        char unit[8];
        size_t used, u = next_unit(p + i, len - i, flags, unit, &used);
        i += used;
        if (w + u > sizeof buf) {
            if (fwrite(buf, 1, w, f) != w)
                return EOF;
            w = 0;
        }
        memcpy(buf + w, unit, u);
        w += u;
    }
    if (w && fwrite(buf, 1, w, f) != w)
        return EOF;
    return 0;
}
