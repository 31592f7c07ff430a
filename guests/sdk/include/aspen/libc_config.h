/* aspen/libc_config.h — shared plumbing for the SDK's freestanding C library headers.
 *
 * Every libc header in guests/sdk/include includes this first. It exists for one reason: the same
 * SDK sources are compiled twice — for guests (the real names: memcpy, malloc, snprintf, ...) and
 * natively on the host for the cmocka tests, where those names belong to glibc. With
 * ASPEN_SDK_NATIVE defined, each public libc name is renamed to aspen_n_NAME so the SDK's versions
 * can live in a test binary next to glibc's and be compared with them.
 * Guest code never needs to include this file directly.
 */
#ifndef ASPEN_LIBC_CONFIG_H
#define ASPEN_LIBC_CONFIG_H

#if defined(ASPEN_SDK_NATIVE)
/* string.h */
#define memcpy aspen_n_memcpy
#define memmove aspen_n_memmove
#define memset aspen_n_memset
#define memcmp aspen_n_memcmp
#define memchr aspen_n_memchr
#define memrchr aspen_n_memrchr
#define memmem aspen_n_memmem
#define strlen aspen_n_strlen
#define strnlen aspen_n_strnlen
#define strcmp aspen_n_strcmp
#define strncmp aspen_n_strncmp
#define strcasecmp aspen_n_strcasecmp
#define strncasecmp aspen_n_strncasecmp
#define strchr aspen_n_strchr
#define strrchr aspen_n_strrchr
#define strstr aspen_n_strstr
#define strcpy aspen_n_strcpy
#define strncpy aspen_n_strncpy
#define strcat aspen_n_strcat
#define strncat aspen_n_strncat
#define strlcpy aspen_n_strlcpy
#define strlcat aspen_n_strlcat
#define strspn aspen_n_strspn
#define strcspn aspen_n_strcspn
#define strpbrk aspen_n_strpbrk
#define strtok_r aspen_n_strtok_r
#define strdup aspen_n_strdup
#define strndup aspen_n_strndup
#define strerror aspen_n_strerror
/* stdlib.h */
#define malloc aspen_n_malloc
#define free aspen_n_free
#define calloc aspen_n_calloc
#define realloc aspen_n_realloc
#define aligned_alloc aspen_n_aligned_alloc
#define strtol aspen_n_strtol
#define strtoul aspen_n_strtoul
#define strtoll aspen_n_strtoll
#define strtoull aspen_n_strtoull
#define strtod aspen_n_strtod
#define strtof aspen_n_strtof
#define atoi aspen_n_atoi
#define atol aspen_n_atol
#define atoll aspen_n_atoll
#define atof aspen_n_atof
#define qsort aspen_n_qsort
#define bsearch aspen_n_bsearch
#define abs aspen_n_abs
#define labs aspen_n_labs
#define llabs aspen_n_llabs
#define abort aspen_n_abort
#define exit aspen_n_exit
#define rand aspen_n_rand
#define srand aspen_n_srand
/* stdio.h */
#define snprintf aspen_n_snprintf
#define vsnprintf aspen_n_vsnprintf
/* errno.h */
#define errno aspen_n_errno
/* math.h */
#define floor aspen_n_floor
#define ceil aspen_n_ceil
#define trunc aspen_n_trunc
#define round aspen_n_round
#define fmod aspen_n_fmod
#define sqrt aspen_n_sqrt
#define fabs aspen_n_fabs
#define ldexp aspen_n_ldexp
#define frexp aspen_n_frexp
#endif

#if defined(__GNUC__)
#define ASPEN_LIBC_PRINTF(fmt, args) __attribute__((__format__(__printf__, fmt, args)))
#define ASPEN_LIBC_NORETURN __attribute__((__noreturn__))
#define ASPEN_LIBC_MALLOC __attribute__((__malloc__, __warn_unused_result__))
/* (Attribute names are spelled __x__ so the native renames above cannot touch them.) */
#else
#define ASPEN_LIBC_PRINTF(fmt, args)
#define ASPEN_LIBC_NORETURN
#define ASPEN_LIBC_MALLOC
#endif

/* Inside a guest, let gcc inline the common memory functions for small constant sizes:
 * -ffreestanding turns builtins off, and memcpy(&x, p, 8) as a real call is a waste. The SDK's
 * own implementations define ASPEN_LIBC_IMPL to see the plain declarations. */
#if !defined(ASPEN_SDK_NATIVE) && !defined(ASPEN_LIBC_IMPL) && defined(__GNUC__)
#define ASPEN_LIBC_USE_BUILTINS 1
#endif

#endif /* ASPEN_LIBC_CONFIG_H */
