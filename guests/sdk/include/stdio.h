/* stdio.h — the Aspen guest SDK's formatting subset: snprintf and vsnprintf only.
 * There are no files, streams or stdout inside a guest: log with hl_println (aspen.h), build
 * output with aspen_buf_appendf. Implemented in guests/sdk/src/format.c.
 * Conversions: d i u x X o c s p % f F e E g G, with flags - 0 + space #, width and precision
 * (numbers or *), length modifiers hh h l ll z j t. Floating point is exact and rounds half to
 * even like glibc. %n is not supported (it is printed literally). */
#ifndef ASPEN_STDIO_H
#define ASPEN_STDIO_H

#include <aspen/libc_config.h>
#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EOF (-1)

/* Write at most size bytes including the terminating NUL; return the length the full result
 * would have (so truncation is `ret >= size`), or -1 for a result longer than INT_MAX. */
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...) ASPEN_LIBC_PRINTF(3, 4);
int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
    ASPEN_LIBC_PRINTF(3, 0);

#ifdef __cplusplus
}
#endif
#endif
