/* buf.c — aspen_buf, the growable byte buffer of aspen.h: handler output, JSON writing, log lines.
 * A buffer can also be a view of memory it does not own (cap == 0, data != NULL), which lets a
 * handler return part of its input without copying it.
 *
 * Growth doubles the capacity (amortised O(1) appends) with overflow-checked arithmetic; a failed
 * allocation leaves the contents intact and sets `failed`, so callers may append many times and
 * check once at the end.
 */
#include <aspen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aspen_buf_reserve(aspen_buf *b, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need)) {
        b->failed = true;
        return -1;
    }
    if (need <= b->cap)
        return 0;
    if (b->cap == 0 && b->data) {
        /* A view (aspen_buf_view): take a copy of our own before growing. */
        uint8_t *own = malloc(need);
        if (!own) {
            b->failed = true;
            return -1;
        }
        memcpy(own, b->data, b->len);
        b->data = own;
        b->cap = need;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        /* Doubling may ask for far more than needed: try the exact size before giving up. */
        cap = need;
        p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return -1;
        }
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int aspen_buf_append(aspen_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return b->failed ? -1 : 0;
    if (aspen_buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int aspen_buf_puts(aspen_buf *b, const char *s) { return aspen_buf_append(b, s, strlen(s)); }

int aspen_buf_putc(aspen_buf *b, int c)
{
    if (aspen_buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = (uint8_t)c;
    return 0;
}

int aspen_buf_vappendf(aspen_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    /* Try in the room there is; if it does not fit, grow exactly and format again. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0; /* 0 for a view: copied on reserve */
    int n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        b->failed = true;
        return -1;
    }
    if ((size_t)n >= room) {
        if (aspen_buf_reserve(b, (size_t)n + 1) != 0) {
            va_end(ap2);
            return -1;
        }
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int aspen_buf_appendf(aspen_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = aspen_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return r;
}

char *aspen_buf_cstr(aspen_buf *b)
{
    if (aspen_buf_reserve(b, 1) != 0)
        return NULL;
    b->data[b->len] = '\0';
    return (char *)b->data;
}

void aspen_buf_reset(aspen_buf *b) { b->len = 0; }

void aspen_buf_view(aspen_buf *b, const void *data, size_t len)
{
    aspen_buf_free(b);
    b->data = (uint8_t *)data;
    b->len = data ? len : 0;
}

void aspen_buf_free(aspen_buf *b)
{
    if (b->cap)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
