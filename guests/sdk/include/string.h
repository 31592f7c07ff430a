/* string.h — the Aspen guest SDK's memory and string functions (freestanding; see aspen.h).
 * Implemented in guests/sdk/src/string.c. Byte strings only: no locales, no wide characters. */
#ifndef ASPEN_STRING_H
#define ASPEN_STRING_H

#include <aspen/libc_config.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
void *memrchr(const void *s, int c, size_t n);
void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);

size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
int strcasecmp(const char *a, const char *b);   /* ASCII case folding */
int strncasecmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strstr(const char *hay, const char *needle);
char *strcpy(char *restrict dst, const char *restrict src);
char *strncpy(char *restrict dst, const char *restrict src, size_t n);
char *strcat(char *restrict dst, const char *restrict src);
char *strncat(char *restrict dst, const char *restrict src, size_t n);
/* BSD: copy/append at most size-1 bytes, always NUL-terminate (size > 0); return the length of
 * the string they tried to create, so truncation is `ret >= size`. */
size_t strlcpy(char *restrict dst, const char *restrict src, size_t size);
size_t strlcat(char *restrict dst, const char *restrict src, size_t size);
size_t strspn(const char *s, const char *accept);
size_t strcspn(const char *s, const char *reject);
char *strpbrk(const char *s, const char *accept);
char *strtok_r(char *restrict s, const char *restrict delim, char **restrict save);
char *strdup(const char *s);               /* malloc'd; NULL when out of memory */
char *strndup(const char *s, size_t n);    /* at most n bytes, NUL-terminated */
char *strerror(int errnum);                /* static text for the errno.h codes */

#ifdef ASPEN_LIBC_USE_BUILTINS
/* Small constant-size copies become moves; anything else still calls the functions above. */
#define memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define memset(d, c, n) __builtin_memset((d), (c), (n))
#define memcmp(a, b, n) __builtin_memcmp((a), (b), (n))
#define strlen(s) __builtin_strlen((s))
#endif

#ifdef __cplusplus
}
#endif
#endif
