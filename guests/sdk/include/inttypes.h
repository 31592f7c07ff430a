/* inttypes.h — printf format macros for the fixed-width types (x86-64 LP64), for the Aspen guest
 * SDK's snprintf. strtoimax and friends are plain aliases of the long long parsers. */
#ifndef ASPEN_INTTYPES_H
#define ASPEN_INTTYPES_H

#include <stdint.h>
#include <stdlib.h>

#define PRId8 "d"
#define PRId16 "d"
#define PRId32 "d"
#define PRId64 "ld"
#define PRIi64 "li"
#define PRIu8 "u"
#define PRIu16 "u"
#define PRIu32 "u"
#define PRIu64 "lu"
#define PRIx8 "x"
#define PRIx16 "x"
#define PRIx32 "x"
#define PRIx64 "lx"
#define PRIX32 "X"
#define PRIX64 "lX"
#define PRIo64 "lo"
#define PRIdMAX "jd"
#define PRIuMAX "ju"
#define PRIxMAX "jx"
#define PRIdPTR "ld"
#define PRIuPTR "lu"
#define PRIxPTR "lx"

#define strtoimax(s, e, b) ((intmax_t)strtoll((s), (e), (b)))
#define strtoumax(s, e, b) ((uintmax_t)strtoull((s), (e), (b)))

#endif
