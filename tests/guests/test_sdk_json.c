/* tests/guests/test_sdk_json.c — the guest SDK's JSON parser, tree and writer.
 *
 * A valid corpus (every escape, surrogate pairs, numbers at the edges of int64 and double) that
 * must parse and round-trip; an invalid corpus with the exact byte offset and line:column of each
 * error (unpaired surrogates, bad UTF-8, the number grammar, trailing data, depth and size limits);
 * the tree API (lookup, duplicates, NUL in strings, builders and ownership); the writer (escapes,
 * shortest round-trip numbers, pretty printing, depth limit); parsing with an exhausted heap; and
 * random documents parsed by both this parser and jansson, which must agree.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aspen_native.h"

static uint64_t rng = 0x5851f42d4c957f2dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static aspen_json *parse(const char *s)
{
    aspen_json_error err;
    aspen_json *v = aspen_json_parse(s, strlen(s), &err);
    if (!v)
        fail_msg("parse of %s failed: %s at %zu:%zu (byte %zu)", s, err.message, err.line,
                 err.column, err.offset);
    return v;
}

static char *write_compact(const aspen_json *v)
{
    size_t len;
    char *s = aspen_json_write(v, 0, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len); /* NUL bytes are always escaped */
    return s;
}

/* ---- valid input --------------------------------------------------------------------------- */
static void test_valid_corpus(void **state)
{
    static const char *valid[] = {
        "null", "true", "false", "0", "-0", "1", "-1", "123456789", "1.5", "-1.5e10", "1E+2",
        "1e-2", "0.0000001", "1.7976931348623157e308", "5e-324", "1e-400",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "\"\"", "\"abc\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u4e2d\"",
        "\"\\ud83d\\ude00\"", "\"\\uD834\\uDD1E\"", "\"\\u0000\"", "\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"",
        "[]", "{}", "[[]]", "[1,2,3]", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        " \t\n\r [ 1 , { \"x\" : [ ] } ] \n", "[\"\xf4\x8f\xbf\xbf\"]", "{\"\":\"\"}",
        "{\"a\":1,\"a\":2}", "[1e2,1E2,1e+2,1e-2,-0.0,0e0]"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        aspen_json *v = parse(valid[i]);
        /* write -> parse gives an equal tree, and writing again gives the same text */
        char *w1 = write_compact(v);
        aspen_json *v2 = parse(w1);
        if (!aspen_json_equal(v, v2))
            fail_msg("round trip of %s changed it: %s", valid[i], w1);
        char *w2 = write_compact(v2);
        assert_string_equal(w1, w2);
        /* jansson agrees that it is valid JSON */
        json_error_t jerr;
        json_t *j = json_loads(w1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j)
            fail_msg("jansson rejects our output %s: %s", w1, jerr.text);
        json_decref(j);
        free(w1);
        free(w2);
        aspen_json_free(v);
        aspen_json_free(v2);
    }
}

/* ---- invalid input: message and exact position ------------------------------------------------ */
static void expect_error(const char *text, size_t len, size_t offset, size_t line, size_t col,
                         const char *msg_part)
{
    aspen_json_error err;
    aspen_json *v = aspen_json_parse(text, len, &err);
    if (v)
        fail_msg("accepted invalid JSON \"%.*s\"", (int)len, text);
    if (err.offset != offset || err.line != line || err.column != col ||
        (msg_part && !strstr(err.message, msg_part)))
        fail_msg("\"%.*s\": got \"%s\" at byte %zu (%zu:%zu), want \"%s\" at byte %zu (%zu:%zu)",
                 (int)len, text, err.message, err.offset, err.line, err.column,
                 msg_part ? msg_part : "", offset, line, col);
}

#define BAD(text, off, line, col, msg) expect_error(text, sizeof(text) - 1, off, line, col, msg)

static void test_invalid_corpus(void **state)
{
    BAD("", 0, 1, 1, "empty input");
    BAD("   \n ", 5, 2, 2, "empty input");
    BAD("[1,]", 3, 1, 4, "expected a value");
    BAD("[1 2]", 3, 1, 4, "',' or ']'");
    BAD("{\"a\" 1}", 5, 1, 6, "':'");
    BAD("{\"a\":1,}", 7, 1, 8, "member name");
    BAD("{1:2}", 1, 1, 2, "member name");
    BAD("{\"a\":1 \"b\":2}", 7, 1, 8, "',' or '}'");
    BAD("[", 1, 1, 2, "end of input");
    BAD("{\"a\":", 5, 1, 6, "end of input");
    BAD("1 2", 2, 1, 3, "end of input after the JSON value");
    BAD("[1]]", 3, 1, 4, "after the JSON value");
    BAD("01", 0, 1, 1, "leading zeros");
    BAD("-01", 0, 1, 1, "leading zeros");
    BAD("1.", 2, 1, 3, "digit after '.'");
    BAD(".5", 0, 1, 1, "unexpected character '.'");
    BAD("+1", 0, 1, 1, "unexpected character '+'");
    BAD("-", 1, 1, 2, "digit after '-'");
    BAD("-a", 1, 1, 2, "digit after '-'");
    BAD("1e", 2, 1, 3, "exponent");
    BAD("1e+", 3, 1, 4, "exponent");
    BAD("0x10", 1, 1, 2, "after the JSON value");
    BAD("NaN", 0, 1, 1, "unexpected character 'N'");
    BAD("Infinity", 0, 1, 1, "unexpected character 'I'");
    BAD("-Infinity", 1, 1, 2, "digit after '-'");
    BAD("[1e999]", 1, 1, 2, "out of range");
    BAD("[-1e999]", 1, 1, 2, "out of range");
    BAD("tru", 0, 1, 1, "'true'");
    BAD("nul", 0, 1, 1, "'null'");
    BAD("falsey", 5, 1, 6, "after the JSON value");
    BAD("\"abc", 0, 1, 1, "unterminated string");
    BAD("\"abc\\\"", 0, 1, 1, "unterminated string");
    BAD("\"a\x01\"", 2, 1, 3, "control character 0x01");
    BAD("\"a\nb\"", 2, 1, 3, "control character 0x0A");
    BAD("\"\\x\"", 1, 1, 2, "invalid escape '\\x'");
    BAD("\"\\u12\"", 1, 1, 2, "four hex digits");
    BAD("\"\\u12G4\"", 1, 1, 2, "four hex digits");
    BAD("\"\\ud800\"", 1, 1, 2, "high surrogate");
    BAD("\"\\ud800\\u0041\"", 1, 1, 2, "high surrogate");
    BAD("\"\\ud800\\ud800\"", 1, 1, 2, "high surrogate");
    BAD("\"\\udc00\"", 1, 1, 2, "unpaired low surrogate");
    BAD("\"ab\\udfff\"", 3, 1, 4, "unpaired low surrogate");
    BAD("\"\xc0\xaf\"", 1, 1, 2, "invalid UTF-8");         /* overlong '/' */
    BAD("\"\xe0\x80\xaf\"", 1, 1, 2, "invalid UTF-8");     /* overlong */
    BAD("\"\xed\xa0\x80\"", 1, 1, 2, "invalid UTF-8");     /* UTF-8-encoded surrogate */
    BAD("\"\xf4\x90\x80\x80\"", 1, 1, 2, "invalid UTF-8"); /* above U+10FFFF */
    BAD("\"\xe2\x82\"", 1, 1, 2, "invalid UTF-8");         /* truncated */
    BAD("\"\x80\"", 1, 1, 2, "invalid UTF-8");             /* lone continuation */
    BAD("\"\xff\"", 1, 1, 2, "invalid UTF-8");
    BAD("\xef\xbb\xbf{}", 0, 1, 1, "byte 0xEF");           /* a BOM is not JSON */
    BAD("[\n  1,\n  x]", 9, 3, 3, "unexpected character 'x'");
    /* columns count characters, not bytes */
    BAD("[\"\xc3\xa9\xc3\xa9\", ?]", 9, 1, 8, "unexpected character '?'");
    BAD("{\"a\":\r\n\t[1,\n,2]}", 12, 3, 1, "expected a value");
    /* embedded NUL: the length counts, not a terminator */
    expect_error("[1]\0", 4, 3, 1, 4, "byte 0x00");
    expect_error("\"a\0b\"", 5, 2, 1, 3, "control character 0x00");
}

static void test_limits(void **state)
{
    char deep[300];
    /* 64 levels: fine; 65: refused at the 65th opening bracket */
    for (int depth = 63; depth <= 65; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = '[';
        for (int i = 0; i < depth; i++)
            deep[n++] = ']';
        aspen_json_error err;
        aspen_json *v = aspen_json_parse(deep, (size_t)n, &err);
        if (depth <= 64) {
            assert_non_null(v);
            aspen_json_free(v);
        } else {
            assert_null(v);
            assert_non_null(strstr(err.message, "nesting deeper than 64"));
            assert_int_equal(err.offset, 64);
        }
    }
    /* mixed objects and arrays count alike */
    aspen_json_limits lim = {.max_depth = 3};
    aspen_json_error err;
    aspen_json *three = aspen_json_parse_limits("{\"a\":[{}]}", 10, &lim, &err);
    assert_non_null(three);
    aspen_json_free(three);
    assert_null(aspen_json_parse_limits("{\"a\":[{\"b\":[]}]}", 16, &lim, &err));
    assert_int_equal(err.offset, 11);
    /* input size */
    aspen_json_limits small = {.max_input = 8};
    assert_null(aspen_json_parse_limits("[1,2,3,4,5]", 11, &small, &err));
    assert_non_null(strstr(err.message, "input too large: 11 bytes"));
    aspen_json *ok = aspen_json_parse_limits("[1,2,3]", 7, &small, &err);
    assert_non_null(ok);
    aspen_json_free(ok);
    /* a million-deep input fails fast, without recursion trouble */
    size_t big = 1u << 20;
    char *p = malloc(big);
    memset(p, '[', big);
    assert_null(aspen_json_parse(p, big, &err));
    assert_int_equal(err.offset, 64);
    free(p);
}

/* ---- the tree ----------------------------------------------------------------------------------- */
static void test_tree_api(void **state)
{
    aspen_json *v = parse("{\"name\":\"Ada\",\"age\":36,\"tags\":[\"x\",\"y\"],\"dup\":1,\"dup\":2,"
                          "\"nul\":\"a\\u0000b\",\"big\":9007199254740993,\"f\":2.5,\"neg0\":-0,"
                          "\"t\":true,\"n\":null,\"e\":1e2}");
    assert_int_equal(aspen_json_typeof(v), ASPEN_JSON_OBJECT);
    assert_int_equal(aspen_json_len(v), 12);
    assert_string_equal(aspen_json_as_string(aspen_json_get(v, "name"), "?"), "Ada");
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "age"), -1), 36);
    assert_true(aspen_json_is_integer(aspen_json_get(v, "age")));
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "dup"), -1), 2); /* the last one wins */
    const aspen_json *tags = aspen_json_get(v, "tags");
    assert_int_equal(aspen_json_len(tags), 2);
    assert_string_equal(aspen_json_as_string(aspen_json_at(tags, 1), ""), "y");
    assert_null(aspen_json_at(tags, 2));
    const aspen_json *nul = aspen_json_get(v, "nul");
    assert_int_equal(aspen_json_len(nul), 3);
    assert_memory_equal(aspen_json_as_string(nul, ""), "a\0b", 4);
    /* exact integers beyond 2^53 survive */
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "big"), 0), 9007199254740993LL);
    assert_false(aspen_json_is_integer(aspen_json_get(v, "f")));
    assert_true(aspen_json_as_number(aspen_json_get(v, "f"), 0) == 2.5);
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "f"), 7), 7);  /* not integral */
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "e"), 0), 100); /* integral double */
    assert_false(aspen_json_is_integer(aspen_json_get(v, "e")));
    assert_true(signbit(aspen_json_as_number(aspen_json_get(v, "neg0"), 1)));
    assert_true(aspen_json_as_bool(aspen_json_get(v, "t"), false));
    assert_true(aspen_json_is_null(aspen_json_get(v, "n")));
    /* missing values and wrong types give the defaults */
    assert_null(aspen_json_get(v, "missing"));
    assert_int_equal(aspen_json_typeof(aspen_json_get(v, "missing")), ASPEN_JSON_NONE);
    assert_string_equal(aspen_json_as_string(aspen_json_get(v, "age"), "def"), "def");
    assert_true(aspen_json_as_number(NULL, 4.5) == 4.5);
    assert_null(aspen_json_get(tags, "x"));
    assert_null(aspen_json_get(NULL, "x"));
    size_t klen;
    assert_string_equal(aspen_json_key_at(v, 0, &klen), "name");
    assert_int_equal(klen, 4);
    assert_null(aspen_json_key_at(tags, 0, &klen));
    assert_string_equal(aspen_json_type_name(ASPEN_JSON_ARRAY), "array");
    aspen_json *c = aspen_json_clone(v);
    assert_true(aspen_json_equal(v, c));
    aspen_json_set_int(c, "age", 37);
    assert_false(aspen_json_equal(v, c));
    aspen_json_free(c);
    aspen_json_free(v);
}

static void test_builders(void **state)
{
    aspen_json *o = aspen_json_new_object();
    assert_int_equal(aspen_json_set_string(o, "s", "x\"y"), 0);
    assert_int_equal(aspen_json_set_int(o, "i", INT64_MIN), 0);
    assert_int_equal(aspen_json_set_number(o, "d", 0.1), 0);
    assert_int_equal(aspen_json_set_bool(o, "b", false), 0);
    assert_int_equal(aspen_json_set_null(o, "n"), 0);
    assert_int_equal(aspen_json_setn(o, "k\0ey", 4, aspen_json_new_stringn("v\0w", 3)), 0);
    aspen_json *a = aspen_json_new_array();
    for (int i = 0; i < 100; i++)
        assert_int_equal(aspen_json_append(a, aspen_json_new_int(i)), 0);
    assert_int_equal(aspen_json_set(o, "a", a), 0);
    assert_int_equal(aspen_json_set_int(o, "i", 5), 0); /* replaces, keeps position */
    assert_int_equal(aspen_json_len(o), 7);
    char *w = write_compact(o);
    assert_string_equal(w, "{\"s\":\"x\\\"y\",\"i\":5,\"d\":0.1,\"b\":false,\"n\":null,"
                           "\"k\\u0000ey\":\"v\\u0000w\",\"a\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,"
                           "14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,"
                           "37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,"
                           "60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,"
                           "83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]}");
    free(w);
    assert_non_null(aspen_json_getn(o, "k\0ey", 4));
    /* ownership: a failed add frees the value (the leak checker would notice otherwise) */
    assert_int_equal(aspen_json_append(NULL, aspen_json_new_string("leak?")), -1);
    assert_int_equal(aspen_json_append(o, aspen_json_new_string("not an array")), -1);
    assert_int_equal(aspen_json_set(a, "k", aspen_json_new_int(1)), -1);
    assert_int_equal(aspen_json_set(o, NULL, aspen_json_new_int(1)), -1);
    assert_int_equal(aspen_json_append(a, NULL), -1);
    aspen_json_free(o);
    aspen_json_free(NULL);
}

static void test_big_objects(void **state)
{
    /* Objects past 16 members are indexed: lookups, duplicates and replacement must behave
     * exactly as in small ones. */
    char doc[32768];
    size_t n = 0;
    doc[n++] = '{';
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"k%d\":%d", i ? "," : "", i % 700, i);
    doc[n++] = '}';
    doc[n] = '\0';
    aspen_json *v = parse(doc);
    assert_int_equal(aspen_json_len(v), 1000);
    for (int k = 0; k < 700; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        int64_t want = k < 300 ? k + 700 : k; /* keys 0..299 repeat: the last one wins */
        assert_int_equal(aspen_json_as_int(aspen_json_get(v, key), -1), want);
    }
    assert_null(aspen_json_get(v, "k700"));
    assert_int_equal(aspen_json_set_int(v, "k5", -5), 0);
    assert_int_equal(aspen_json_len(v), 1000);
    assert_int_equal(aspen_json_as_int(aspen_json_get(v, "k5"), 0), -5);
    assert_int_equal(aspen_json_as_int(aspen_json_at(v, 705), 0), -5); /* the last k5 changed */
    assert_int_equal(aspen_json_as_int(aspen_json_at(v, 5), 0), 5);
    aspen_json *c = aspen_json_clone(v);
    assert_true(aspen_json_equal(v, c));
    aspen_json_free(c);
    aspen_json_free(v);
    /* built up one member at a time, with lookups all along */
    aspen_json *o = aspen_json_new_object();
    for (int i = 0; i < 5000; i++) {
        char key[16];
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(aspen_json_set_int(o, key, i), 0);
        assert_int_equal(aspen_json_as_int(aspen_json_get(o, key), -1), i);
        assert_int_equal(aspen_json_as_int(aspen_json_get(o, "key-0"), -1), 0);
    }
    assert_int_equal(aspen_json_len(o), 5000);
    aspen_json_free(o);
}

/* ---- the writer --------------------------------------------------------------------------------- */
static void test_writer(void **state)
{
    aspen_json *s = aspen_json_new_stringn("\x01\x1f\b\f\n\r\t\"\\/\x7f\xc3\xa9\xff\xc3", 15);
    char *w = write_compact(s);
    /* control bytes escaped, '/' and DEL left alone, valid UTF-8 kept, invalid bytes -> U+FFFD */
    assert_string_equal(w, "\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\x7f\xc3\xa9\\ufffd\\ufffd\"");
    free(w);
    aspen_json_free(s);

    aspen_json *v = parse("{\"a\":[1,{\"b\":null}],\"c\":{},\"d\":[]}");
    char *p = aspen_json_write(v, ASPEN_JSON_PRETTY, NULL);
    assert_string_equal(p, "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n"
                           "  \"c\": {},\n  \"d\": []\n}");
    free(p);
    aspen_json_free(v);

    static const struct {
        double d;
        const char *text;
    } nums[] = {{0.0, "0"},     {-0.0, "-0"},          {1.0, "1"},       {-2.5, "-2.5"},
                {0.1, "0.1"},   {1.0 / 3, "0.3333333333333333"},          {1e21, "1e+21"},
                {1e300, "1e+300"}, {5e-324, "4.94065645841247e-324"},  {123456789012.0, "123456789012"},
                {9007199254740993.0, "9007199254740992"}, {1e16, "1e+16"},
                {NAN, "null"},  {INFINITY, "null"},    {-INFINITY, "null"}, {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char buf[32];
        aspen_json_number_text(nums[i].d, buf);
        assert_string_equal(buf, nums[i].text);
    }
    /* every double comes back exactly, in at most 17 significant digits */
    for (int i = 0; i < 100000; i++) {
        uint64_t u = next();
        double d;
        memcpy(&d, &u, sizeof d);
        if (!isfinite(d))
            continue;
        char buf[32];
        size_t n = aspen_json_number_text(d, buf);
        assert_int_equal(n, strlen(buf));
        double back = strtod(buf, NULL);
        if (memcmp(&back, &d, sizeof d) != 0 && !(d == 0 && back == 0))
            fail_msg("%a written as %s reads back as %a", d, buf, back);
    }
    /* a hand-built tree deeper than the writer's limit is refused, not a stack overflow */
    aspen_json *root = aspen_json_new_array(), *cur = root;
    for (int i = 0; i < 1200; i++) {
        aspen_json *child = aspen_json_new_array();
        assert_int_equal(aspen_json_append(cur, child), 0);
        cur = child;
    }
    assert_null(aspen_json_write(root, 0, NULL));
    aspen_buf b = ASPEN_BUF_INIT;
    aspen_buf_puts(&b, "keep");
    assert_int_equal(aspen_json_write_buf(root, 0, &b), -1);
    assert_int_equal(b.len, 4); /* nothing half-written */
    aspen_buf_free(&b);
    aspen_json_free(root);
}

/* ---- running out of memory ------------------------------------------------------------------ */
static void test_out_of_memory(void **state)
{
    const char *doc = "{\"records\":[{\"name\":\"a\",\"v\":[1,2,3,4,5,6,7,8,9]},{\"name\":\"b\"}],"
                      "\"more\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    static unsigned char heap[64 << 10];
    int failed = 0, succeeded = 0;
    /* every heap size from tiny to enough: NULL with "out of memory", or a correct tree */
    for (size_t size = 64; size < 8192; size += 48) {
        aspen_heap_init(heap, heap + size);
        aspen_json_error err;
        aspen_json *v = aspen_json_parse(doc, strlen(doc), &err);
        if (v) {
            succeeded++;
            assert_string_equal(aspen_json_as_string(aspen_json_get(aspen_json_at(
                                                         aspen_json_get(v, "records"), 1), "name"),
                                                     ""),
                                "b");
            char *w = aspen_json_write(v, 0, NULL); /* may fail too, cleanly */
            aspen_n_free(w);
            aspen_json_free(v);
        } else {
            failed++;
            assert_string_equal(err.message, "out of memory");
        }
        /* whatever happened, everything was given back */
        aspen_heap_stats st;
        aspen_heap_get_stats(&st);
        assert_int_equal(st.in_use, 0);
    }
    aspen_heap_init(NULL, NULL);
    assert_true(failed > 0 && succeeded > 0);
}

/* ---- random documents, checked against jansson ---------------------------------------------- */
/* key: no \u0000, which jansson does not support in member names */
static void random_string(char *out, size_t *n, size_t cap, bool key)
{
    static const char *pieces[] = {"a", "Z", " ", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n",
                                   "\\r", "\\t", "\\u0000", "\\u001F", "\\u00e9", "\\uFFFF",
                                   "\\ud83d\\ude00", "\xc3\xa9", "\xe4\xb8\xad",
                                   "\xf0\x9f\x98\x80", "\xef\xbf\xbd", "0"};
    out[(*n)++] = '"';
    int len = (int)(next() % 8);
    for (int i = 0; i < len && *n + 16 < cap; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof pieces[0])];
        if (key && strcmp(p, "\\u0000") == 0)
            p = "k";
        size_t l = strlen(p);
        memcpy(out + *n, p, l);
        *n += l;
    }
    out[(*n)++] = '"';
}

static void random_value(char *out, size_t *n, size_t cap, int depth)
{
    if (*n + 64 >= cap)
        depth = 99;
    unsigned kind = depth > 6 ? (unsigned)(next() % 5) : (unsigned)(next() % 7);
    switch (kind) {
    case 0: *n += (size_t)snprintf(out + *n, cap - *n, "null"); break;
    case 1: *n += (size_t)snprintf(out + *n, cap - *n, next() % 2 ? "true" : "false"); break;
    case 2: *n += (size_t)snprintf(out + *n, cap - *n, "%lld", (long long)(next() >> (next() % 64)) * (next() % 2 ? 1 : -1)); break;
    case 3: {
        uint64_t u = next();
        double d;
        memcpy(&d, &u, sizeof d);
        if (!isfinite(d))
            d = 1.25;
        *n += (size_t)snprintf(out + *n, cap - *n, "%.*g", 1 + (int)(next() % 17), d);
        break;
    }
    case 4: random_string(out, n, cap, false); break;
    case 5: {
        out[(*n)++] = '[';
        int k = (int)(next() % 5);
        for (int i = 0; i < k; i++) {
            if (i)
                out[(*n)++] = ',';
            random_value(out, n, cap, depth + 1);
        }
        out[(*n)++] = ']';
        break;
    }
    default: {
        out[(*n)++] = '{';
        int k = (int)(next() % 5);
        for (int i = 0; i < k; i++) {
            if (i)
                out[(*n)++] = ',';
            random_string(out, n, cap, true);
            out[(*n)++] = ':';
            random_value(out, n, cap, depth + 1);
        }
        out[(*n)++] = '}';
        break;
    }
    }
}

/* Same value? Objects in jansson lose order and duplicates, so look members up by key. */
static bool same_as_jansson(const aspen_json *a, json_t *j)
{
    switch (aspen_json_typeof(a)) {
    case ASPEN_JSON_NULL: return json_is_null(j);
    case ASPEN_JSON_BOOL: return json_is_boolean(j) && aspen_json_as_bool(a, 0) == json_is_true(j);
    case ASPEN_JSON_NUMBER:
        /* An integral double is written without a fraction and may come back as an integer. */
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
            if (!same_as_jansson(aspen_json_at(a, i), json_array_get(j, i)))
                return false;
        return true;
    case ASPEN_JSON_OBJECT:
        if (!json_is_object(j))
            return false;
        for (size_t i = 0; i < aspen_json_len(a); i++) {
            size_t kl;
            const char *k = aspen_json_key_at(a, i, &kl);
            json_t *m = json_object_getn(j, k, kl);
            if (!m || !same_as_jansson(aspen_json_getn(a, k, kl), m))
                return false;
        }
        return true;
    default: return false;
    }
}

static void test_random_vs_jansson(void **state)
{
    static char doc[1 << 16];
    for (int i = 0; i < 3000; i++) {
        size_t n = 0;
        random_value(doc, &n, sizeof doc - 8, 0);
        doc[n] = '\0';
        aspen_json_error err;
        aspen_json *a = aspen_json_parse(doc, n, &err);
        json_error_t jerr;
        json_t *j = json_loadb(doc, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j && a && strstr(jerr.text, "real number overflow"))
            fail_msg("%s: we accept what jansson calls an overflow", doc);
        if (!a || !j)
            fail_msg("valid document rejected: ours \"%s\", jansson \"%s\": %.200s",
                     a ? "ok" : err.message, j ? "ok" : jerr.text, doc);
        if (!same_as_jansson(a, j))
            fail_msg("parsers disagree on %.300s", doc);
        /* and our writer's output means the same thing to jansson */
        char *w = write_compact(a);
        json_t *j2 = json_loads(w, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j2 || !same_as_jansson(a, j2))
            fail_msg("writer output %.300s not equivalent", w);
        json_decref(j2);
        free(w);
        json_decref(j);
        aspen_json_free(a);
        /* a random byte changed: both may reject it, but we must never crash or accept a
         * document jansson finds structurally invalid while disagreeing on its value */
        if (n > 0) {
            doc[next() % n] = (char)next();
            aspen_json *b = aspen_json_parse(doc, n, &err);
            json_t *jb = json_loadb(doc, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            if (b && jb && !same_as_jansson(b, jb))
                fail_msg("parsers disagree on mutated %.300s", doc);
            if (!b)
                assert_true(err.offset <= n && err.line >= 1 && err.column >= 1);
            json_decref(jb);
            aspen_json_free(b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_corpus),
        cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_tree_api),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_big_objects),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_random_vs_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
