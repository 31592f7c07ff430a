/* guests/musl/minigzip/glibc_fortify.c — the two glibc "fortify" entry points Debian's libz.a
 * (built against glibc with _FORTIFY_SOURCE) calls from gzprintf and gz_error. musl has no
 * __*_chk functions; these give them glibc's documented meaning (abort when the buffer is smaller
 * than the length passed). Not part of minigzip: the program itself is built unmodified. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, va_list ap);
int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...);

int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, va_list ap)
{
    (void)flag;
    if (maxlen > slen)
        abort();
    return vsnprintf(s, maxlen, fmt, ap);
}

int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __vsnprintf_chk(s, maxlen, flag, slen, fmt, ap);
    va_end(ap);
    return r;
}
