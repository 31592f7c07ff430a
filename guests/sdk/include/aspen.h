/* aspen.h — the one header an Aspen guest includes: job handlers, host calls, output buffers,
 * the JSON tree, and heap statistics. The C library subset (string.h, stdlib.h, stdio.h with
 * snprintf, ctype.h, math.h, ...) sits beside it in guests/sdk/include.
 *
 * A guest is a static x86-64 program that runs at CPL 3 inside a KVM micro-VM with no kernel: no
 * files, no clock, no system calls (the `syscall` instruction does not work there). Its only way
 * out is a host call (an `outl` to a port, see vm/include/abi.h and docs/ABI.md). The SDK's start-up code
 * sets up the heap and tells the host it is ready; the host snapshots the VM there, and each job
 * starts from that snapshot — so every job sees the same clean globals, heap and stack.
 *
 * The smallest guest:
 *
 *     #include <aspen.h>
 *
 *     static int echo(const uint8_t *in, size_t len, aspen_buf *out)
 *     {
 *         hl_println("got %zu bytes", len);
 *         return aspen_buf_append(out, in, len);
 *     }
 *     ASPEN_JOB_HANDLER(echo);
 *
 * A JSON guest:
 *
 *     static aspen_json *greet(const aspen_json *payload, aspen_job_ctx *ctx)
 *     {
 *         const char *name = aspen_json_as_string(aspen_json_get(payload, "name"), NULL);
 *         if (!name)
 *             return aspen_fail(ctx, "bad input: \"name\" must be a string");
 *         aspen_json *out = aspen_json_new_object();
 *         aspen_json_set_string(out, "greeting", "hello");
 *         aspen_json_set_string(out, "name", name);
 *         return out;   // NULL from an allocation failure is reported as "out of memory"
 *     }
 *     ASPEN_JSON_HANDLER(greet);
 *
 * Build with scripts/build-guest.sh (it has the compiler and linker flags docs/ABI.md lists).
 */
#ifndef ASPEN_H
#define ASPEN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The host<->guest contract (ports, call block, status codes, host function numbers). Included by
 * path so the SDK always follows the monitor it ships with. */
#include "../../../vm/include/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ASPEN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define ASPEN_NORETURN __attribute__((noreturn))
#define ASPEN_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define ASPEN_PRINTF(fmt, args)
#define ASPEN_NORETURN
#define ASPEN_WARN_UNUSED
#endif

#define ASPEN_SDK_VERSION "1.0.0"

/* ================================================================================================
 * Output buffers
 * ================================================================================================
 * A growable byte buffer in the guest heap. Every append returns 0, or -1 when the heap is full;
 * after a failure the buffer remembers it (`failed`), so a handler may append many times and check
 * once. The runtime reports a handler's output buffer that failed as "out of memory". */
typedef struct aspen_buf {
    uint8_t *data; /* NULL until the first append */
    size_t len;
    size_t cap;  /* 0 with data != NULL: a view of memory the buffer does not own */
    bool failed; /* an append ran out of memory */
} aspen_buf;

#define ASPEN_BUF_INIT {NULL, 0, 0, false}

int aspen_buf_reserve(aspen_buf *b, size_t extra); /* room for `extra` more bytes */
int aspen_buf_append(aspen_buf *b, const void *data, size_t len);
int aspen_buf_puts(aspen_buf *b, const char *s);
int aspen_buf_putc(aspen_buf *b, int c);
int aspen_buf_appendf(aspen_buf *b, const char *fmt, ...) ASPEN_PRINTF(2, 3);
int aspen_buf_vappendf(aspen_buf *b, const char *fmt, va_list ap) ASPEN_PRINTF(2, 0);
/* NUL-terminate without counting the NUL in len; returns data, or NULL when out of memory. */
char *aspen_buf_cstr(aspen_buf *b);
void aspen_buf_reset(aspen_buf *b); /* len = 0, keeps the memory */
void aspen_buf_free(aspen_buf *b);  /* back to ASPEN_BUF_INIT */
/* Zero-copy: make b refer to len bytes at data (e.g. part of the job's input) instead of owning a
 * copy. The bytes must stay valid and unchanged until the job ends; a later append copies them
 * into a buffer of b's own first. Replaces b's contents (freeing what it owned). */
void aspen_buf_view(aspen_buf *b, const void *data, size_t len);

/* ================================================================================================
 * JSON (RFC 8259)
 * ================================================================================================
 * A tree of values in the guest heap. The parser is strict and bounded: exactly one value with
 * optional surrounding whitespace; all escapes, \u with surrogate pairs (unpaired surrogates are
 * rejected); UTF-8 validated (overlong forms and surrogate code points rejected); the strict
 * number grammar (no leading zeros, no '+', no '.5', no NaN); numbers too large for a double are
 * rejected; nesting depth and input size are limited. Errors give the byte offset and line:column.
 *
 * Objects keep their members in input order; duplicate keys are kept, and aspen_json_get finds
 * the last one (as JavaScript does). Strings carry a length and may contain NUL bytes; they are
 * also NUL-terminated for convenience. Numbers hold a double, plus an exact int64 when the literal
 * was an integer (no '.', no exponent) that fits. */

typedef struct aspen_json aspen_json;

typedef enum aspen_json_type {
    ASPEN_JSON_NONE = 0, /* no value: the NULL pointer (a missing key, an index out of range) */
    ASPEN_JSON_NULL,
    ASPEN_JSON_BOOL,
    ASPEN_JSON_NUMBER,
    ASPEN_JSON_STRING,
    ASPEN_JSON_ARRAY,
    ASPEN_JSON_OBJECT,
} aspen_json_type;

#define ASPEN_JSON_MAX_DEPTH 64u          /* default nesting limit of the parser */
#define ASPEN_JSON_MAX_INPUT (64u << 20)  /* default input size limit: 64 MiB */
#define ASPEN_JSON_MAX_WRITE_DEPTH 1000u  /* the writer refuses deeper (hand-built) trees */

typedef struct aspen_json_error {
    size_t offset;    /* 0-based byte offset where the input went wrong */
    size_t line;      /* 1-based */
    size_t column;    /* 1-based, counted in characters (UTF-8 code points) */
    char message[96]; /* e.g. "expected ',' or '}' after an object member" */
} aspen_json_error;

typedef struct aspen_json_limits {
    size_t max_depth; /* 0 = ASPEN_JSON_MAX_DEPTH */
    size_t max_input; /* 0 = ASPEN_JSON_MAX_INPUT */
} aspen_json_limits;

/* Parse len bytes of text (which need not be NUL-terminated). Returns the tree (free it with
 * aspen_json_free), or NULL with err filled (err may be NULL). Running out of memory is an error
 * too ("out of memory", at the offset reached). */
aspen_json *aspen_json_parse(const char *text, size_t len, aspen_json_error *err);
aspen_json *aspen_json_parse_limits(const char *text, size_t len, const aspen_json_limits *limits,
                                    aspen_json_error *err);

/* ---- Reading. Every reader accepts NULL (a missing value) and answers "no"/default for it. ---- */
aspen_json_type aspen_json_typeof(const aspen_json *v);
const char *aspen_json_type_name(aspen_json_type t); /* "null", "bool", "number", "string", ... */
bool aspen_json_is_null(const aspen_json *v);
bool aspen_json_is_bool(const aspen_json *v);
bool aspen_json_is_number(const aspen_json *v);
bool aspen_json_is_integer(const aspen_json *v); /* a number with an exact int64 value */
bool aspen_json_is_string(const aspen_json *v);
bool aspen_json_is_array(const aspen_json *v);
bool aspen_json_is_object(const aspen_json *v);

/* Elements of an array, members of an object, bytes of a string; 0 for anything else. */
size_t aspen_json_len(const aspen_json *v);
/* The i-th element of an array or the i-th member value of an object; NULL when out of range. */
const aspen_json *aspen_json_at(const aspen_json *v, size_t i);
/* The i-th member name of an object (NUL-terminated; *key_len gets its length if not NULL). */
const char *aspen_json_key_at(const aspen_json *obj, size_t i, size_t *key_len);
/* The value of member `key` (the last one if repeated), or NULL. */
const aspen_json *aspen_json_get(const aspen_json *obj, const char *key);
const aspen_json *aspen_json_getn(const aspen_json *obj, const char *key, size_t key_len);

/* The value if v has the right type, else def. as_int also accepts a double with an integral
 * value in int64 range. as_string's result is NUL-terminated; its length is aspen_json_len(v). */
const char *aspen_json_as_string(const aspen_json *v, const char *def);
double aspen_json_as_number(const aspen_json *v, double def);
int64_t aspen_json_as_int(const aspen_json *v, int64_t def);
bool aspen_json_as_bool(const aspen_json *v, bool def);

/* Deep equality (numbers compare by value, objects member by member in order). */
bool aspen_json_equal(const aspen_json *a, const aspen_json *b);

/* ---- Building. Constructors return NULL when out of memory. ---------------------------------- */
aspen_json *aspen_json_new_null(void);
aspen_json *aspen_json_new_bool(bool b);
aspen_json *aspen_json_new_number(double d); /* NaN and infinities are written as null */
aspen_json *aspen_json_new_int(int64_t i);
aspen_json *aspen_json_new_string(const char *s); /* copies s */
aspen_json *aspen_json_new_stringn(const char *s, size_t len);
aspen_json *aspen_json_new_array(void);
aspen_json *aspen_json_new_object(void);
aspen_json *aspen_json_clone(const aspen_json *v);

/* Add val to an array / set member key of an object (replacing the last member of that name).
 * They take ownership of val: on any failure (container NULL or of the wrong type, val NULL, out
 * of memory) val is freed and -1 returned, so `aspen_json_append(a, aspen_json_new_int(1))`
 * never leaks. */
int aspen_json_append(aspen_json *arr, aspen_json *val);
int aspen_json_set(aspen_json *obj, const char *key, aspen_json *val);
int aspen_json_setn(aspen_json *obj, const char *key, size_t key_len, aspen_json *val);
int aspen_json_set_null(aspen_json *obj, const char *key);
int aspen_json_set_bool(aspen_json *obj, const char *key, bool b);
int aspen_json_set_number(aspen_json *obj, const char *key, double d);
int aspen_json_set_int(aspen_json *obj, const char *key, int64_t i);
int aspen_json_set_string(aspen_json *obj, const char *key, const char *s);
int aspen_json_set_stringn(aspen_json *obj, const char *key, const char *s, size_t len);

void aspen_json_free(aspen_json *v);

/* ---- Writing. Compact by default; ASPEN_JSON_PRETTY indents by two spaces. Integers are written
 * exactly; other numbers with the fewest digits (15, 16 or 17) that read back as the same double;
 * NaN and infinities as null. Strings are escaped as JSON requires; invalid UTF-8 in a built
 * string becomes U+FFFD so the output is always valid JSON. */
#define ASPEN_JSON_PRETTY 1u

/* malloc'd and NUL-terminated (*len, if not NULL, excludes the NUL); NULL when out of memory or
 * deeper than ASPEN_JSON_MAX_WRITE_DEPTH. */
char *aspen_json_write(const aspen_json *v, unsigned flags, size_t *len);
int aspen_json_write_buf(const aspen_json *v, unsigned flags, aspen_buf *out);
/* Append s as a quoted, escaped JSON string. */
int aspen_json_write_string(aspen_buf *out, const char *s, size_t len);
/* The text the writer uses for a number (NUL-terminated; at most 32 bytes with the NUL). */
size_t aspen_json_number_text(double d, char buf[32]);

/* ================================================================================================
 * Job handlers
 * ================================================================================================
 * Exactly one handler per guest, defined at file scope with one of the two macros.
 *
 * Bytes handler — int fn(const uint8_t *in, size_t len, aspen_buf *out):
 *   `in` is the job's input (valid for the whole job), `out` starts empty. Return 0 for success
 *   (the output is out's bytes), or non-zero for failure: `return aspen_error("why: %s", ...)`
 *   sets the message and returns -1. A non-zero return without a message is reported as
 *   "handler failed (returned N)". An output buffer whose append ran out of memory turns a success
 *   into the failure "out of memory building the output".
 *
 * JSON handler — aspen_json *fn(const aspen_json *payload, aspen_job_ctx *ctx):
 *   The input is parsed first; input that is not JSON fails the job with the parser's message
 *   ("input is not valid JSON: ... at line 1, column 7 (byte 6)") before fn runs. Return a value
 *   for success (the SDK writes it as compact JSON), or `return aspen_fail(ctx, "bad input: ...")`
 *   (which returns NULL) for failure. NULL without aspen_fail means the heap ran out ("out of
 *   memory"). Nothing needs freeing: the payload, the result and everything else the job
 *   allocated vanish when the VM is reset for the next job. To put parts of the payload into the
 *   result, aspen_json_clone them (the result must be a tree of its own).
 *
 * Optional: ASPEN_INIT(fn) runs `void fn(void)` once at start-up, before the snapshot: work done
 * there (tables, parsed configuration, heap allocations) is inherited by every job for free. It
 * may call host functions and may panic (the VM then fails to start); log lines written there
 * belong to no job, and a host may not show them.
 *
 * Either way the status, output and message go to the host with one exit; nothing runs after. */

typedef struct aspen_job_ctx aspen_job_ctx;

typedef int (*aspen_bytes_handler_fn)(const uint8_t *in, size_t len, aspen_buf *out);
typedef aspen_json *(*aspen_json_handler_fn)(const aspen_json *payload, aspen_job_ctx *ctx);

/* Set the job's failure message (printf-style) and return -1 / NULL. The message is limited to
 * ASPEN_MESSAGE_MAX - 1 bytes. Calling it again replaces the message. */
#define ASPEN_MESSAGE_MAX 2048u
int aspen_error(const char *fmt, ...) ASPEN_PRINTF(1, 2);
aspen_json *aspen_fail(aspen_job_ctx *ctx, const char *fmt, ...) ASPEN_PRINTF(2, 3);
/* The job's raw input bytes (the JSON text, for a JSON handler). */
const uint8_t *aspen_job_input(const aspen_job_ctx *ctx, size_t *len);

/* End the job now with status PANIC and this message. For bugs and impossible states; expected
 * failures (bad input) should use aspen_error / aspen_fail. assert() and abort() end up here. */
ASPEN_NORETURN void aspen_panic(const char *fmt, ...) ASPEN_PRINTF(1, 2);

/* The call block the host shares with the guest (vm/include/abi.h): layout, heap range, input. Most
 * guests never need it. */
struct aspen_abi_block *aspen_call_block(void);

/* ---- The handler registration (implementation detail of the macros below). ------------------
 * The definition names the runner for its kind, so a bytes guest never links the JSON code. */
enum { ASPEN_HANDLER_BYTES = 1, ASPEN_HANDLER_JSON = 2 };
typedef struct aspen_handler_def aspen_handler_def;
struct aspen_handler_def {
    int kind;
    aspen_bytes_handler_fn bytes;
    aspen_json_handler_fn json;
    void (*run)(const aspen_handler_def *h, aspen_job_ctx *ctx, aspen_buf *out);
};
void aspen__run_bytes(const aspen_handler_def *h, aspen_job_ctx *ctx, aspen_buf *out);
void aspen__run_json(const aspen_handler_def *h, aspen_job_ctx *ctx, aspen_buf *out);
/* Defined by exactly one of the macros; a guest without a handler fails to link with
 * "undefined reference to `aspen_guest_handler'". */
extern const aspen_handler_def aspen_guest_handler;
extern void (*const aspen_guest_init)(void);

#define ASPEN_JOB_HANDLER(fn)                                                                    \
    const aspen_handler_def aspen_guest_handler = {ASPEN_HANDLER_BYTES, (fn), NULL,              \
                                                   aspen__run_bytes}
#define ASPEN_JSON_HANDLER(fn)                                                                   \
    const aspen_handler_def aspen_guest_handler = {ASPEN_HANDLER_JSON, NULL, (fn),               \
                                                   aspen__run_json}
#define ASPEN_INIT(fn) void (*const aspen_guest_init)(void) = (fn)

/* The job entry the ABI note names (vm/include/abi.h life cycle, step 3): rdi = call block, rsi = input,
 * rdx = length. Provided by the SDK; never call it, and do not define a symbol of this name. */
ASPEN_NORETURN void execute(struct aspen_abi_block *blk, const uint8_t *in, size_t len);

/* ================================================================================================
 * Host calls
 * ================================================================================================
 * Each host call is one VM exit (~25 µs on nested KVM, a few µs on bare metal): batch log output
 * rather than printing in a tight loop. The host checks every pointer and length; a call that
 * breaks the rules (memory outside the guest, an unknown function) ends the job as an illegal host
 * call — it does not return an error. */

/* Log one line (printf-style; a '\n' inside splits it into several lines). Lines longer than
 * ASPEN_MAX_LOG_LINE bytes are cut by the host and marked "…[truncated]". Returns 0, or a
 * negative ASPEN_CALL_* value. */
int hl_println(const char *fmt, ...) ASPEN_PRINTF(1, 2);
int hl_vprintln(const char *fmt, va_list ap) ASPEN_PRINTF(1, 0);
/* Log len raw bytes (no formatting, no NUL needed). */
int hl_print(const char *s, size_t len);
/* The host's clock: Unix time in seconds / nanoseconds. */
uint64_t hl_get_time(void);
uint64_t hl_get_time_ns(void);

/* Find a function the embedding program registered: its number (>= ASPEN_FN_FIRST_EXTRA), or
 * ASPEN_CALL_ENOENT. Look it up once (in ASPEN_INIT, say) and keep the number. */
int64_t aspen_host_lookup(const char *name);
/* Call host function fn with nargs (<= ASPEN_CALL_MAX_ARGS) arguments, each passed as a
 * uint64_t — cast pointers and signed values: aspen_hostcall(fn, 2, (uint64_t)(uintptr_t)p,
 * (uint64_t)n). Returns the function's result (call_ret), or ASPEN_CALL_EINVAL without calling
 * when nargs is too large. */
int64_t aspen_hostcall(uint32_t fn, unsigned nargs, ...);
int64_t aspen_hostcallv(uint32_t fn, const uint64_t *args, unsigned nargs);

/* ================================================================================================
 * Heap
 * ================================================================================================
 * malloc/free/realloc/calloc (stdlib.h) work in the job's heap: [heap_start, input) of guest
 * memory. They return NULL when it is full. */
typedef struct aspen_heap_stats {
    size_t heap_bytes;  /* the job's whole heap */
    size_t in_use;      /* bytes in allocated blocks (16-byte headers included) */
    size_t peak_in_use; /* the most in_use has been since start-up */
    size_t free_bytes;  /* what is left: freed blocks plus never-used space */
    size_t untouched;   /* never-used space at the top (the largest possible block, roughly) */
} aspen_heap_stats;
void aspen_heap_get_stats(aspen_heap_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* ASPEN_H */
