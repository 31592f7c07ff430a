/* sdk_internal.h — declarations shared by the SDK's own sources (never included by guests).
 *
 * The pure parts of the SDK (string, stdlib, alloc, format, strtod, json, math) build both for
 * guests and natively for the host tests (ASPEN_SDK_NATIVE, see aspen/libc_config.h); only
 * runtime.c and start.S are guest-only. This header holds what those files share: the bignum used
 * by exact decimal conversion, the allocator's native hooks, and small helpers.
 */
#ifndef ASPEN_SDK_INTERNAL_H
#define ASPEN_SDK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ASPEN_UNUSED __attribute__((unused))
#define ASPEN_LIKELY(x) __builtin_expect(!!(x), 1)
#define ASPEN_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Big unsigned integers for exact decimal <-> binary conversion (bignum.c). ----------------
 * Fixed capacity, little-endian 32-bit limbs. The largest value conversion needs is about
 * 2^53 * 5^1100 * 2^1100 (~4200 bits, see strtod.c), so 160 limbs (5120 bits) is ample; operations
 * that would exceed it saturate and set `overflow`, which callers treat as a bug guard. */
#define BIG_LIMBS 160
typedef struct big {
    uint32_t n; /* limbs in use; no leading zero limbs; 0 means the value 0 */
    bool overflow;
    uint32_t d[BIG_LIMBS];
} big;

void big_set_u64(big *b, uint64_t v);
void big_mul_small(big *b, uint32_t m);
void big_add_small(big *b, uint32_t a);
void big_mul_pow5(big *b, unsigned e);
void big_mul_pow10(big *b, unsigned e);
void big_shl(big *b, unsigned bits);
int big_cmp(const big *a, const big *b);
/* Divide in place by 10^9 and return the remainder. */
uint32_t big_divmod_1e9(big *b);
static inline bool big_is_zero(const big *b) { return b->n == 0; }

/* ---- Exact decimal expansion of a double (format.c), also used by json.c's writer. ------------
 * Writes the significant decimal digits of |x| (finite, non-zero) into digits (no leading or
 * trailing zeros) and returns their count; *dexp is such that |x| = 0.DIGITS * 10^dexp.
 * digits must hold ASPEN_DTOA_MAX_DIGITS bytes. */
#define ASPEN_DTOA_MAX_DIGITS 800
int aspen__dtoa_exact(double x, char *digits, int *dexp);

/* ---- Allocator (alloc.c). ------------------------------------------------------------------- */
void aspen_heap_init(void *start, void *end);
void aspen_heap_set_limit(void *limit);

/* ---- Runtime (runtime.c), for the handler runners (runtime.c, json_runner.c). ---------------- */
struct aspen_abi_block;
void aspen__finish(uint32_t status, const void *out, size_t out_len);
/* Set the job's message unless the handler already set one (force: replace it). */
void aspen__set_message(bool force, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Misc. ----------------------------------------------------------------------------------- */
/* The guest runtime's panic (runtime.c) or, natively, native/native_sys.c's hook-or-abort. Used
 * when the heap finds itself corrupted (double free, wild pointer): continuing would only hide the
 * bug. */
#if defined(ASPEN_SDK_NATIVE)
#define aspen__fatal aspen__native_fatal
#endif
__attribute__((noreturn, format(printf, 1, 2))) void aspen__fatal(const char *fmt, ...);

#endif
