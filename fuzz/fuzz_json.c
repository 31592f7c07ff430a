/* fuzz/fuzz_json.c — libFuzzer target: the guest SDK's JSON parser and writer (guests/sdk/src/
 * json.c), built natively for the host as tests/guests does (ASPEN_SDK_NATIVE).
 *
 * Every input is parsed twice: with the system allocator (so AddressSanitizer sees every byte the
 * parser touches) and inside a small SDK heap (so out-of-memory paths run, and every byte is
 * given back when the tree is freed). A parsed tree must write back to text that parses to an
 * equal tree and writes identically (compact and pretty), and jansson must agree that the input
 * is JSON and what it means — except where the SDK documents a difference: integers beyond int64
 * (the SDK keeps them as doubles), U+0000 in member names (jansson refuses them) and the SDK's
 * nesting limit. Error positions must lie within the input.
 */
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aspen_native.h"

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_json: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* Same value? jansson objects lose order and keep the last of duplicate keys, as
 * aspen_json_getn finds the last one. */
static bool same(const aspen_json *a, json_t *j)
{
    switch (aspen_json_typeof(a)) {
    case ASPEN_JSON_NULL: return json_is_null(j);
    case ASPEN_JSON_BOOL: return json_is_boolean(j) && aspen_json_as_bool(a, 0) == json_is_true(j);
    case ASPEN_JSON_NUMBER:
        if (json_is_integer(j) && aspen_json_is_integer(a))
            return aspen_json_as_int(a, 0) == json_integer_value(j);
        return json_is_number(j) && aspen_json_as_number(a, 0) == json_number_value(j);
    case ASPEN_JSON_STRING:
        return json_is_string(j) && json_string_length(j) == aspen_json_len(a) &&
               memcmp(json_string_value(j), aspen_json_as_string(a, ""), aspen_json_len(a)) == 0;
    case ASPEN_JSON_ARRAY:
        if (!json_is_array(j) || json_array_size(j) != aspen_json_len(a))
            return false;
        for (size_t i = 0; i < aspen_json_len(a); i++)
            if (!same(aspen_json_at(a, i), json_array_get(j, i)))
                return false;
        return true;
    case ASPEN_JSON_OBJECT:
        if (!json_is_object(j))
            return false;
        for (size_t i = 0; i < aspen_json_len(a); i++) {
            size_t kl;
            const char *k = aspen_json_key_at(a, i, &kl);
            json_t *m = json_object_getn(j, k, kl);
            if (!m || !same(aspen_json_getn(a, k, kl), m))
                return false;
        }
        return true;
    default: return false;
    }
}

/* Write v, parse it back, compare, and write again: the writer's output is a fixed point. */
static void round_trip(const aspen_json *v, unsigned flags)
{
    size_t n1, n2;
    char *w1 = aspen_json_write(v, flags, &n1);
    if (!w1)
        finding("the writer failed on a tree the parser built (flags %u)", flags);
    if (strlen(w1) != n1)
        finding("written text has a NUL byte (length %zu, strlen %zu)", n1, strlen(w1));
    aspen_json_error err;
    aspen_json *v2 = aspen_json_parse(w1, n1, &err);
    if (!v2)
        finding("our own output does not parse: %s at byte %zu of: %.300s", err.message,
                err.offset, w1);
    if (!aspen_json_equal(v, v2))
        finding("our own output parses to a different tree: %.300s", w1);
    char *w2 = aspen_json_write(v2, flags, &n2);
    if (!w2 || n1 != n2 || memcmp(w1, w2, n1) != 0)
        finding("writing is not stable: %.300s then %.300s", w1, w2 ? w2 : "(null)");
    aspen_n_free(w2);
    aspen_n_free(w1);
    aspen_json_free(v2);
}

static bool has_nul_key(const aspen_json *v)
{
    if (aspen_json_is_object(v))
        for (size_t i = 0; i < aspen_json_len(v); i++) {
            size_t kl;
            const char *k = aspen_json_key_at(v, i, &kl);
            if (memchr(k, '\0', kl) || has_nul_key(aspen_json_at(v, i)))
                return true;
        }
    if (aspen_json_is_array(v))
        for (size_t i = 0; i < aspen_json_len(v); i++)
            if (has_nul_key(aspen_json_at(v, i)))
                return true;
    return false;
}

static void check_error(const aspen_json_error *err, size_t size)
{
    if (err->offset > size)
        finding("error offset %zu beyond the %zu-byte input (%s)", err->offset, size,
                err->message);
    if (err->line < 1 || err->column < 1 || err->column > size + 1 || err->line > size + 1)
        finding("error position %zu:%zu impossible for a %zu-byte input", err->line, err->column,
                size);
    if (!memchr(err->message, '\0', sizeof err->message) || !err->message[0])
        finding("error message empty or unterminated");
}

static _Alignas(16) uint8_t g_arena[48 << 10];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read one past the input is an ASan report. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);

    aspen_json_error err;
    memset(&err, 0, sizeof err);
    aspen_json *v = aspen_json_parse(text, size, &err);
    /* jansson stops at a raw NUL byte as if the input ended there; JSON allows none outside
     * strings and none unescaped inside them, so such input must fail and jansson is not asked. */
    bool raw_nul = memchr(text, '\0', size) != NULL;
    if (raw_nul && v)
        finding("we accept a raw NUL byte at %zu", (size_t)((char *)memchr(text, '\0', size) - text));
    json_error_t jerr;
    json_t *j = raw_nul ? NULL : json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v) {
        round_trip(v, 0);
        round_trip(v, ASPEN_JSON_PRETTY);
        if (!raw_nul && !j && !strstr(jerr.text, "too big") && !has_nul_key(v))
            finding("we accept what jansson rejects (%s at %d): %.*s", jerr.text, jerr.position,
                    (int)(size > 300 ? 300 : size), text);
        if (j && !same(v, j))
            finding("we and jansson read different values from: %.*s",
                    (int)(size > 300 ? 300 : size), text);
    } else {
        check_error(&err, size);
        if (j && !strstr(err.message, "nesting deeper"))
            finding("we reject what jansson accepts (%s at byte %zu): %.*s", err.message,
                    err.offset, (int)(size > 300 ? 300 : size), text);
    }
    json_decref(j);

    /* Again in a small heap of the SDK's own: out-of-memory must be an error, never a crash,
     * and freeing the tree gives every byte back. */
    aspen_heap_init(g_arena, g_arena + sizeof g_arena);
    aspen_heap_stats before, after;
    aspen_heap_get_stats(&before);
    aspen_json_error err2;
    aspen_json *w = aspen_json_parse(text, size, &err2);
    if (w) {
        if (!v)
            finding("parses in a small heap but not with the system allocator: %s", err.message);
        if (!aspen_json_equal(v, w))
            finding("a small heap parses to a different tree");
        aspen_json_free(w);
    } else {
        check_error(&err2, size);
        if (v && !strstr(err2.message, "out of memory"))
            finding("in a small heap the parse failed with \"%s\", not out of memory",
                    err2.message);
        if (!v && strcmp(err.message, err2.message) != 0 && !strstr(err2.message, "out of memory"))
            finding("errors differ between heaps: \"%s\" / \"%s\"", err.message, err2.message);
    }
    aspen_heap_get_stats(&after);
    if (after.in_use != before.in_use)
        finding("the parser kept %zu heap bytes after the tree was freed",
                after.in_use - before.in_use);
    aspen_heap_init(NULL, NULL);

    aspen_json_free(v);
    free(text);
    return 0;
}
