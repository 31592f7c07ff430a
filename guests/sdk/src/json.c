/* json.c — the guest SDK's JSON parser, tree and writer (API in include/aspen.h).
 *
 * Guests receive untrusted input, so the parser is strict (RFC 8259, nothing more) and bounded:
 * recursion depth is limited (the guest stack is only 64 KiB by default), input size is limited,
 * every allocation failure is reported rather than crashing, and errors say where: byte offset and
 * line:column. Numbers are converted with the SDK's correctly rounded strtod; integer literals
 * that fit also keep an exact int64 so ids and counts survive the round trip unchanged.
 *
 * The tree is plain heap nodes: arrays are vectors of node pointers, objects vectors of
 * (key, value) members in input order. Lookup scans small objects (the common case, where that
 * beats hashing) and uses a hash index in objects with more than 16 members.
 */
#include <aspen.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

typedef struct member {
    char *key;
    size_t klen;
    aspen_json *val;
} member;

/* 32 bytes, so a node is one 48-byte heap chunk: parsed trees are mostly nodes, and every page a
 * job touches costs a page fault and a restore. */
struct aspen_json {
    uint8_t type;
    bool b;
    bool is_int;
    uint8_t idx_bits; /* objects with a hash index: it has 1 << idx_bits slots */
    uint32_t cap;     /* arrays and objects: allocated elements */
    union {
        struct {
            double d;
            int64_t i;
        } num;
        struct {
            char *s;
            size_t len;
        } str;
        struct {
            aspen_json **items;
            size_t len;
        } arr;
        struct {
            member *m;
            size_t len;
        } obj;
    } u;
    uint32_t *idx; /* objects: member positions + 1 by key hash (0 = empty); big objects only */
};
_Static_assert(sizeof(struct aspen_json) == 32, "keep nodes small");

/* ================================================================================================
 * UTF-8
 * ================================================================================================ */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not valid UTF-8
 * (overlong forms, surrogates, code points above U+10FFFF, truncation). */
static size_t utf8_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ================================================================================================
 * Nodes
 * ================================================================================================ */

static aspen_json *new_node(uint8_t type)
{
    aspen_json *v = malloc(sizeof *v);
    if (v)
        *v = (aspen_json){.type = type}; /* plain stores: cheaper than calloc's memset call */
    return v;
}

aspen_json *aspen_json_new_null(void) { return new_node(ASPEN_JSON_NULL); }

aspen_json *aspen_json_new_bool(bool b)
{
    aspen_json *v = new_node(ASPEN_JSON_BOOL);
    if (v)
        v->b = b;
    return v;
}

aspen_json *aspen_json_new_number(double d)
{
    aspen_json *v = new_node(ASPEN_JSON_NUMBER);
    if (v)
        v->u.num.d = d;
    return v;
}

aspen_json *aspen_json_new_int(int64_t i)
{
    aspen_json *v = new_node(ASPEN_JSON_NUMBER);
    if (v) {
        v->u.num.d = (double)i;
        v->u.num.i = i;
        v->is_int = true;
    }
    return v;
}

aspen_json *aspen_json_new_stringn(const char *s, size_t len)
{
    if (!s && len)
        return NULL;
    if (len == SIZE_MAX)
        return NULL;
    aspen_json *v = new_node(ASPEN_JSON_STRING);
    if (!v)
        return NULL;
    v->u.str.s = malloc(len + 1);
    if (!v->u.str.s) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = '\0';
    v->u.str.len = len;
    return v;
}

aspen_json *aspen_json_new_string(const char *s)
{
    return s ? aspen_json_new_stringn(s, strlen(s)) : NULL;
}

aspen_json *aspen_json_new_array(void) { return new_node(ASPEN_JSON_ARRAY); }
aspen_json *aspen_json_new_object(void) { return new_node(ASPEN_JSON_OBJECT); }

void aspen_json_free(aspen_json *v)
{
    if (!v)
        return;
    switch (v->type) {
    case ASPEN_JSON_STRING:
        free(v->u.str.s);
        break;
    case ASPEN_JSON_ARRAY:
        for (size_t i = 0; i < v->u.arr.len; i++)
            aspen_json_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case ASPEN_JSON_OBJECT:
        for (size_t i = 0; i < v->u.obj.len; i++) {
            free(v->u.obj.m[i].key);
            aspen_json_free(v->u.obj.m[i].val);
        }
        free(v->u.obj.m);
        free(v->idx);
        break;
    default:
        break;
    }
    free(v);
}

/* Grow a vector of `size`-byte elements to hold one more. */
static int grow(void **vec, uint32_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return 0;
    if (*cap >= UINT32_MAX / 2)
        return -1;
    uint32_t ncap = *cap ? *cap * 2 : 4;
    if (ncap > SIZE_MAX / size)
        return -1;
    void *p = realloc(*vec, ncap * size);
    if (!p)
        return -1;
    *vec = p;
    *cap = ncap;
    return 0;
}

int aspen_json_append(aspen_json *arr, aspen_json *val)
{
    if (!arr || !val || arr->type != ASPEN_JSON_ARRAY ||
        grow((void **)&arr->u.arr.items, &arr->cap, arr->u.arr.len, sizeof(aspen_json *))) {
        aspen_json_free(val);
        return -1;
    }
    arr->u.arr.items[arr->u.arr.len++] = val;
    return 0;
}

/* Objects with more than INDEX_MIN members get a hash index (open addressing, load <= 1/2), so
 * lookups and inserts stay O(1) however many members there are; small objects, the common case,
 * are scanned, which is faster for them and costs no memory. The index maps a key to the position
 * of its last member, which is the one aspen_json_get returns. Losing the index to an allocation
 * failure only makes lookups slower, never wrong. */
#define INDEX_MIN 16

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 0x100000001b3ull;
    return h;
}

static bool key_eq(const member *m, const char *key, size_t klen)
{
    return m->klen == klen && (klen == 0 || memcmp(m->key, key, klen) == 0);
}

/* Point the index slot for member `pos`'s key at pos (a later duplicate replaces an earlier one). */
static void index_put(uint32_t *idx, size_t cap, const member *ms, size_t pos)
{
    const member *m = &ms[pos];
    for (size_t h = key_hash(m->key, m->klen) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (!idx[h] || key_eq(&ms[idx[h] - 1], m->key, m->klen)) {
            idx[h] = (uint32_t)(pos + 1);
            return;
        }
    }
}

static void index_update(aspen_json *obj)
{
    size_t len = obj->u.obj.len;
    if (len <= INDEX_MIN)
        return;
    size_t have = obj->idx ? (size_t)1 << obj->idx_bits : 0;
    if (obj->idx && len * 2 <= have) {
        index_put(obj->idx, have, obj->u.obj.m, len - 1);
        return;
    }
    unsigned bits = 6;
    while (((size_t)1 << bits) < len * 4)
        bits++;
    size_t cap = (size_t)1 << bits;
    uint32_t *idx = calloc(cap, sizeof *idx);
    free(obj->idx);
    obj->idx = idx;
    obj->idx_bits = (uint8_t)bits;
    if (idx)
        for (size_t i = 0; i < len; i++)
            index_put(idx, cap, obj->u.obj.m, i);
}

static member *find_member(const aspen_json *obj, const char *key, size_t klen)
{
    if (!obj || obj->type != ASPEN_JSON_OBJECT || (!key && klen))
        return NULL;
    if (obj->idx) {
        size_t cap = (size_t)1 << obj->idx_bits;
        for (size_t h = key_hash(key, klen) & (cap - 1);; h = (h + 1) & (cap - 1)) {
            uint32_t e = obj->idx[h];
            if (!e)
                return NULL;
            if (key_eq(&obj->u.obj.m[e - 1], key, klen))
                return &obj->u.obj.m[e - 1];
        }
    }
    for (size_t i = obj->u.obj.len; i-- > 0;)
        if (key_eq(&obj->u.obj.m[i], key, klen))
            return &obj->u.obj.m[i];
    return NULL;
}

/* Append a member without looking for an existing one (the parser keeps duplicates). */
static int add_member(aspen_json *obj, char *key, size_t klen, aspen_json *val)
{
    if (grow((void **)&obj->u.obj.m, &obj->cap, obj->u.obj.len, sizeof(member)))
        return -1;
    obj->u.obj.m[obj->u.obj.len++] = (member){key, klen, val};
    index_update(obj);
    return 0;
}

int aspen_json_setn(aspen_json *obj, const char *key, size_t klen, aspen_json *val)
{
    if (!obj || !val || obj->type != ASPEN_JSON_OBJECT || (!key && klen) || klen == SIZE_MAX)
        goto fail;
    member *m = find_member(obj, key, klen);
    if (m) {
        aspen_json_free(m->val);
        m->val = val;
        return 0;
    }
    char *k = malloc(klen + 1);
    if (!k)
        goto fail;
    if (klen)
        memcpy(k, key, klen);
    k[klen] = '\0';
    if (add_member(obj, k, klen, val)) {
        free(k);
        goto fail;
    }
    return 0;
fail:
    aspen_json_free(val);
    return -1;
}

int aspen_json_set(aspen_json *obj, const char *key, aspen_json *val)
{
    if (!key) {
        aspen_json_free(val);
        return -1;
    }
    return aspen_json_setn(obj, key, strlen(key), val);
}

int aspen_json_set_null(aspen_json *obj, const char *key)
{
    return aspen_json_set(obj, key, aspen_json_new_null());
}
int aspen_json_set_bool(aspen_json *obj, const char *key, bool b)
{
    return aspen_json_set(obj, key, aspen_json_new_bool(b));
}
int aspen_json_set_number(aspen_json *obj, const char *key, double d)
{
    return aspen_json_set(obj, key, aspen_json_new_number(d));
}
int aspen_json_set_int(aspen_json *obj, const char *key, int64_t i)
{
    return aspen_json_set(obj, key, aspen_json_new_int(i));
}
int aspen_json_set_string(aspen_json *obj, const char *key, const char *s)
{
    return aspen_json_set(obj, key, aspen_json_new_string(s));
}
int aspen_json_set_stringn(aspen_json *obj, const char *key, const char *s, size_t len)
{
    return aspen_json_set(obj, key, aspen_json_new_stringn(s, len));
}

aspen_json *aspen_json_clone(const aspen_json *v)
{
    if (!v)
        return NULL;
    aspen_json *c;
    switch (v->type) {
    case ASPEN_JSON_STRING:
        return aspen_json_new_stringn(v->u.str.s, v->u.str.len);
    case ASPEN_JSON_ARRAY:
        c = aspen_json_new_array();
        for (size_t i = 0; c && i < v->u.arr.len; i++)
            if (aspen_json_append(c, aspen_json_clone(v->u.arr.items[i]))) {
                aspen_json_free(c);
                return NULL;
            }
        return c;
    case ASPEN_JSON_OBJECT:
        c = aspen_json_new_object();
        for (size_t i = 0; c && i < v->u.obj.len; i++) {
            const member *m = &v->u.obj.m[i];
            aspen_json *cv = aspen_json_clone(m->val);
            char *k = cv ? malloc(m->klen + 1) : NULL;
            if (k)
                memcpy(k, m->key, m->klen + 1);
            if (!k || add_member(c, k, m->klen, cv)) {
                free(k);
                aspen_json_free(cv);
                aspen_json_free(c);
                return NULL;
            }
        }
        return c;
    default:
        c = new_node(v->type);
        if (c) {
            c->b = v->b;
            c->is_int = v->is_int;
            c->u.num = v->u.num;
        }
        return c;
    }
}

/* ================================================================================================
 * Reading
 * ================================================================================================ */

aspen_json_type aspen_json_typeof(const aspen_json *v)
{
    return v ? (aspen_json_type)v->type : ASPEN_JSON_NONE;
}

const char *aspen_json_type_name(aspen_json_type t)
{
    switch (t) {
    case ASPEN_JSON_NULL: return "null";
    case ASPEN_JSON_BOOL: return "bool";
    case ASPEN_JSON_NUMBER: return "number";
    case ASPEN_JSON_STRING: return "string";
    case ASPEN_JSON_ARRAY: return "array";
    case ASPEN_JSON_OBJECT: return "object";
    default: return "missing";
    }
}

bool aspen_json_is_null(const aspen_json *v) { return v && v->type == ASPEN_JSON_NULL; }
bool aspen_json_is_bool(const aspen_json *v) { return v && v->type == ASPEN_JSON_BOOL; }
bool aspen_json_is_number(const aspen_json *v) { return v && v->type == ASPEN_JSON_NUMBER; }
bool aspen_json_is_integer(const aspen_json *v) { return aspen_json_is_number(v) && v->is_int; }
bool aspen_json_is_string(const aspen_json *v) { return v && v->type == ASPEN_JSON_STRING; }
bool aspen_json_is_array(const aspen_json *v) { return v && v->type == ASPEN_JSON_ARRAY; }
bool aspen_json_is_object(const aspen_json *v) { return v && v->type == ASPEN_JSON_OBJECT; }

size_t aspen_json_len(const aspen_json *v)
{
    switch (aspen_json_typeof(v)) {
    case ASPEN_JSON_ARRAY: return v->u.arr.len;
    case ASPEN_JSON_OBJECT: return v->u.obj.len;
    case ASPEN_JSON_STRING: return v->u.str.len;
    default: return 0;
    }
}

const aspen_json *aspen_json_at(const aspen_json *v, size_t i)
{
    if (aspen_json_is_array(v))
        return i < v->u.arr.len ? v->u.arr.items[i] : NULL;
    if (aspen_json_is_object(v))
        return i < v->u.obj.len ? v->u.obj.m[i].val : NULL;
    return NULL;
}

const char *aspen_json_key_at(const aspen_json *obj, size_t i, size_t *key_len)
{
    if (!aspen_json_is_object(obj) || i >= obj->u.obj.len)
        return NULL;
    if (key_len)
        *key_len = obj->u.obj.m[i].klen;
    return obj->u.obj.m[i].key;
}

const aspen_json *aspen_json_getn(const aspen_json *obj, const char *key, size_t key_len)
{
    member *m = find_member(obj, key, key_len);
    return m ? m->val : NULL;
}

const aspen_json *aspen_json_get(const aspen_json *obj, const char *key)
{
    return key ? aspen_json_getn(obj, key, strlen(key)) : NULL;
}

const char *aspen_json_as_string(const aspen_json *v, const char *def)
{
    return aspen_json_is_string(v) ? v->u.str.s : def;
}

double aspen_json_as_number(const aspen_json *v, double def)
{
    return aspen_json_is_number(v) ? v->u.num.d : def;
}

int64_t aspen_json_as_int(const aspen_json *v, int64_t def)
{
    if (!aspen_json_is_number(v))
        return def;
    if (v->is_int)
        return v->u.num.i;
    double d = v->u.num.d;
    /* Integral and inside [-2^63, 2^63): the conversion is exact. */
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (double)(int64_t)d == d)
        return (int64_t)d;
    return def;
}

bool aspen_json_as_bool(const aspen_json *v, bool def) { return aspen_json_is_bool(v) ? v->b : def; }

bool aspen_json_equal(const aspen_json *a, const aspen_json *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case ASPEN_JSON_NULL: return true;
    case ASPEN_JSON_BOOL: return a->b == b->b;
    case ASPEN_JSON_NUMBER:
        if (a->is_int && b->is_int)
            return a->u.num.i == b->u.num.i;
        return a->u.num.d == b->u.num.d;
    case ASPEN_JSON_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case ASPEN_JSON_ARRAY:
        if (a->u.arr.len != b->u.arr.len)
            return false;
        for (size_t i = 0; i < a->u.arr.len; i++)
            if (!aspen_json_equal(a->u.arr.items[i], b->u.arr.items[i]))
                return false;
        return true;
    case ASPEN_JSON_OBJECT:
        if (a->u.obj.len != b->u.obj.len)
            return false;
        for (size_t i = 0; i < a->u.obj.len; i++) {
            const member *x = &a->u.obj.m[i], *y = &b->u.obj.m[i];
            if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) != 0 ||
                !aspen_json_equal(x->val, y->val))
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* ================================================================================================
 * Parsing
 * ================================================================================================ */

typedef struct parser {
    const uint8_t *s;
    size_t len, pos;
    size_t depth, max_depth;
    aspen_json_error *err;
    bool failed;
} parser;

static void fail_at(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (!p->err)
        return;
    p->err->offset = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
    va_end(ap);
}

static void fail_unexpected(parser *p, const char *expected)
{
    if (p->pos >= p->len) {
        fail_at(p, p->pos, "unexpected end of input: expected %s", expected);
        return;
    }
    uint8_t c = p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        fail_at(p, p->pos, "unexpected character '%c': expected %s", c, expected);
    else
        fail_at(p, p->pos, "unexpected byte 0x%02X: expected %s", c, expected);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int hex4(const uint8_t *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parse a string at p->pos (on the opening quote) into a new NUL-terminated buffer. */
static char *parse_string(parser *p, size_t *out_len)
{
    size_t start = ++p->pos;
    /* Find the closing quote first: the decoded string is never longer than the raw text. */
    size_t i = start;
    while (i < p->len && p->s[i] != '"')
        i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->len) {
        fail_at(p, start - 1, "unterminated string");
        return NULL;
    }
    size_t raw = i - start;
    char *out = malloc(raw + 1);
    if (!out) {
        fail_at(p, start - 1, "out of memory");
        return NULL;
    }
    size_t n = 0, q = start, end = i;
    while (q < end) {
        uint8_t c = p->s[q];
        if (c == '\\') {
            uint8_t e = p->s[q + 1];
            q += 2;
            switch (e) {
            case '"': out[n++] = '"'; break;
            case '\\': out[n++] = '\\'; break;
            case '/': out[n++] = '/'; break;
            case 'b': out[n++] = '\b'; break;
            case 'f': out[n++] = '\f'; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 't': out[n++] = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (end - q < 4 || hex4(p->s + q, &cp)) {
                    fail_at(p, q - 2, "invalid \\u escape: expected four hex digits");
                    goto fail;
                }
                q += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail_at(p, q - 6, "invalid \\u escape: unpaired low surrogate \\u%04X", cp);
                    goto fail;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (end - q < 6 || p->s[q] != '\\' || p->s[q + 1] != 'u' ||
                        hex4(p->s + q + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        fail_at(p, q - 6,
                                "invalid \\u escape: high surrogate \\u%04X not followed by a low "
                                "surrogate",
                                cp);
                        goto fail;
                    }
                    q += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += utf8_encode(cp, out + n);
                break;
            }
            default:
                if (e >= 0x20 && e < 0x7f)
                    fail_at(p, q - 2, "invalid escape '\\%c' in string", e);
                else
                    fail_at(p, q - 2, "invalid escape in string");
                goto fail;
            }
        } else if (c < 0x20) {
            fail_at(p, q, "control character 0x%02X in string (it must be escaped)", c);
            goto fail;
        } else if (c < 0x80) {
            out[n++] = (char)c;
            q++;
        } else {
            size_t k = utf8_len(p->s + q, end - q);
            if (!k) {
                fail_at(p, q, "invalid UTF-8 in string (byte 0x%02X)", c);
                goto fail;
            }
            memcpy(out + n, p->s + q, k);
            n += k;
            q += k;
        }
    }
    out[n] = '\0';
    p->pos = end + 1;
    *out_len = n;
    return out;
fail:
    free(out);
    return NULL;
}

static aspen_json *parse_number(parser *p)
{
    size_t start = p->pos, i = p->pos;
    const uint8_t *s = p->s;
    bool neg = false, integer = true;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || s[i] < '0' || s[i] > '9') {
        fail_at(p, i, "invalid number: expected a digit after '-'");
        return NULL;
    }
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9') {
            fail_at(p, start, "invalid number: leading zeros are not allowed");
            return NULL;
        }
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && s[i] == '.') {
        integer = false;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') {
            fail_at(p, i, "invalid number: expected a digit after '.'");
            return NULL;
        }
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        integer = false;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') {
            fail_at(p, i, "invalid number: expected a digit in the exponent");
            return NULL;
        }
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    size_t n = i - start;
    aspen_json *v = new_node(ASPEN_JSON_NUMBER);
    if (!v) {
        fail_at(p, start, "out of memory");
        return NULL;
    }
    p->pos = i;

    if (integer) {
        /* Exact int64 if it fits (and is not -0, which only a double can hold). */
        uint64_t mag = 0;
        bool fits = true;
        for (size_t k = start + (neg ? 1 : 0); k < i; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (mag > (UINT64_MAX - d) / 10) {
                fits = false;
                break;
            }
            mag = mag * 10 + d;
        }
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (fits && mag <= limit && !(neg && mag == 0)) {
            v->is_int = true;
            v->u.num.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            v->u.num.d = (double)v->u.num.i; /* correctly rounded by the conversion */
            return v;
        }
    }
    /* strtod needs a terminated copy: the input need not be NUL-terminated. */
    char small[128];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy) {
        free(v);
        fail_at(p, start, "out of memory");
        return NULL;
    }
    memcpy(copy, s + start, n);
    copy[n] = '\0';
    int saved = errno;
    errno = 0;
    double d = strtod(copy, NULL);
    bool overflow = errno == ERANGE && (d == __builtin_inf() || d == -__builtin_inf());
    errno = saved;
    if (copy != small)
        free(copy);
    if (overflow) {
        free(v);
        fail_at(p, start, "number out of range (too large for a double)");
        return NULL;
    }
    v->u.num.d = d;
    return v;
}

static aspen_json *parse_value(parser *p);

static aspen_json *parse_array(parser *p)
{
    size_t open = p->pos++;
    if (++p->depth > p->max_depth) {
        fail_at(p, open, "nesting deeper than %zu levels", p->max_depth);
        return NULL;
    }
    aspen_json *arr = new_node(ASPEN_JSON_ARRAY);
    if (!arr) {
        fail_at(p, open, "out of memory");
        return NULL;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        p->depth--;
        return arr;
    }
    for (;;) {
        size_t at = p->pos;
        aspen_json *v = parse_value(p);
        if (!v)
            goto fail;
        if (aspen_json_append(arr, v)) {
            fail_at(p, at, "out of memory");
            goto fail;
        }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            p->depth--;
            return arr;
        }
        fail_unexpected(p, "',' or ']' after an array element");
        goto fail;
    }
fail:
    aspen_json_free(arr);
    return NULL;
}

static aspen_json *parse_object(parser *p)
{
    size_t open = p->pos++;
    if (++p->depth > p->max_depth) {
        fail_at(p, open, "nesting deeper than %zu levels", p->max_depth);
        return NULL;
    }
    aspen_json *obj = new_node(ASPEN_JSON_OBJECT);
    if (!obj) {
        fail_at(p, open, "out of memory");
        return NULL;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        p->depth--;
        return obj;
    }
    for (;;) {
        if (p->pos >= p->len || p->s[p->pos] != '"') {
            fail_unexpected(p, "a string (an object member name)");
            goto fail;
        }
        size_t at = p->pos, klen;
        char *key = parse_string(p, &klen);
        if (!key)
            goto fail;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            fail_unexpected(p, "':' after an object member name");
            goto fail;
        }
        p->pos++;
        skip_ws(p);
        aspen_json *v = parse_value(p);
        if (!v) {
            free(key);
            goto fail;
        }
        if (add_member(obj, key, klen, v)) {
            free(key);
            aspen_json_free(v);
            fail_at(p, at, "out of memory");
            goto fail;
        }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            p->depth--;
            return obj;
        }
        fail_unexpected(p, "',' or '}' after an object member");
        goto fail;
    }
fail:
    aspen_json_free(obj);
    return NULL;
}

static aspen_json *parse_literal(parser *p, const char *word, uint8_t type, bool b)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        fail_at(p, p->pos, "invalid literal: expected '%s'", word);
        return NULL;
    }
    aspen_json *v = new_node(type);
    if (!v) {
        fail_at(p, p->pos, "out of memory");
        return NULL;
    }
    v->b = b;
    p->pos += n;
    return v;
}

static aspen_json *parse_value(parser *p)
{
    if (p->pos >= p->len) {
        fail_unexpected(p, "a value");
        return NULL;
    }
    switch (p->s[p->pos]) {
    case '{': return parse_object(p);
    case '[': return parse_array(p);
    case '"': {
        size_t at = p->pos, n;
        char *s = parse_string(p, &n);
        if (!s)
            return NULL;
        aspen_json *v = new_node(ASPEN_JSON_STRING);
        if (!v) {
            free(s);
            fail_at(p, at, "out of memory");
            return NULL;
        }
        v->u.str.s = s;
        v->u.str.len = n;
        return v;
    }
    case 't': return parse_literal(p, "true", ASPEN_JSON_BOOL, true);
    case 'f': return parse_literal(p, "false", ASPEN_JSON_BOOL, false);
    case 'n': return parse_literal(p, "null", ASPEN_JSON_NULL, false);
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(p);
    default:
        fail_unexpected(p, "a value");
        return NULL;
    }
}

/* Fill line and column (both 1-based; the column in code points) for err->offset. */
static void locate(const uint8_t *s, size_t len, aspen_json_error *err)
{
    size_t off = err->offset < len ? err->offset : len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            line++;
            col = 1;
        } else if ((s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    err->line = line;
    err->column = col;
}

aspen_json *aspen_json_parse_limits(const char *text, size_t len, const aspen_json_limits *limits,
                                    aspen_json_error *err)
{
    size_t max_depth = limits && limits->max_depth ? limits->max_depth : ASPEN_JSON_MAX_DEPTH;
    size_t max_input = limits && limits->max_input ? limits->max_input : ASPEN_JSON_MAX_INPUT;
    parser p = {(const uint8_t *)text, len, 0, 0, max_depth, err, false};
    if (err)
        memset(err, 0, sizeof *err);
    if (!text && len) {
        fail_at(&p, 0, "no input");
    } else if (len > max_input) {
        fail_at(&p, max_input, "input too large: %zu bytes (the limit is %zu)", len, max_input);
    } else {
        skip_ws(&p);
        if (p.pos >= len) {
            fail_at(&p, p.pos, "empty input: expected a JSON value");
        } else {
            aspen_json *v = parse_value(&p);
            if (v) {
                skip_ws(&p);
                if (p.pos == len)
                    return v;
                aspen_json_free(v);
                fail_unexpected(&p, "the end of input after the JSON value");
            }
        }
    }
    if (err)
        locate(p.s, len, err);
    return NULL;
}

aspen_json *aspen_json_parse(const char *text, size_t len, aspen_json_error *err)
{
    return aspen_json_parse_limits(text, len, NULL, err);
}

/* ================================================================================================
 * Writing
 * ================================================================================================ */

size_t aspen_json_number_text(double d, char buf[32])
{
    if (d != d || d == __builtin_inf() || d == -__builtin_inf())
        return (size_t)snprintf(buf, 32, "null");
    /* Integral values that a double holds exactly: as integers, no exponent. */
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d) {
        if (d == 0 && __builtin_signbit(d))
            return (size_t)snprintf(buf, 32, "-0");
        return (size_t)snprintf(buf, 32, "%lld", (long long)d);
    }
    /* The fewest digits that read back as the same double. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

int aspen_json_write_string(aspen_buf *out, const char *str, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str;
    if (aspen_buf_putc(out, '"'))
        return -1;
    size_t run = 0; /* start of bytes that need no escaping, copied in one go */
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        size_t k = 1;
        const char *esc = NULL;
        char ubuf[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c < 0x20) {
            switch (c) {
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                memcpy(ubuf, "\\u00", 4);
                ubuf[4] = hexd[c >> 4];
                ubuf[5] = hexd[c & 15];
                ubuf[6] = '\0';
                esc = ubuf;
            }
        } else if (c >= 0x80) {
            k = utf8_len(s + i, len - i);
            if (!k) {
                esc = "\\ufffd"; /* invalid UTF-8: replace, so the output stays valid JSON */
                k = 1;
            }
        }
        if (esc) {
            aspen_buf_append(out, s + run, i - run);
            aspen_buf_puts(out, esc);
            run = i + k;
        }
        i += k;
    }
    aspen_buf_append(out, s + run, len - run);
    aspen_buf_putc(out, '"');
    return out->failed ? -1 : 0;
}

static void indent(aspen_buf *out, unsigned flags, size_t depth)
{
    if (!(flags & ASPEN_JSON_PRETTY))
        return;
    aspen_buf_putc(out, '\n');
    for (size_t i = 0; i < depth; i++)
        aspen_buf_append(out, "  ", 2);
}

static int write_value(const aspen_json *v, unsigned flags, aspen_buf *out, size_t depth)
{
    if (depth > ASPEN_JSON_MAX_WRITE_DEPTH)
        return -1;
    char num[32];
    switch (aspen_json_typeof(v)) {
    case ASPEN_JSON_NONE:
    case ASPEN_JSON_NULL: return aspen_buf_append(out, "null", 4);
    case ASPEN_JSON_BOOL: return v->b ? aspen_buf_append(out, "true", 4) : aspen_buf_append(out, "false", 5);
    case ASPEN_JSON_NUMBER:
        if (v->is_int)
            return aspen_buf_appendf(out, "%lld", (long long)v->u.num.i);
        return aspen_buf_append(out, num, aspen_json_number_text(v->u.num.d, num));
    case ASPEN_JSON_STRING: return aspen_json_write_string(out, v->u.str.s, v->u.str.len);
    case ASPEN_JSON_ARRAY:
        aspen_buf_putc(out, '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                aspen_buf_putc(out, ',');
            indent(out, flags, depth + 1);
            if (write_value(v->u.arr.items[i], flags, out, depth + 1))
                return -1;
        }
        if (v->u.arr.len)
            indent(out, flags, depth);
        return aspen_buf_putc(out, ']');
    case ASPEN_JSON_OBJECT:
        aspen_buf_putc(out, '{');
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const member *m = &v->u.obj.m[i];
            if (i)
                aspen_buf_putc(out, ',');
            indent(out, flags, depth + 1);
            aspen_json_write_string(out, m->key, m->klen);
            aspen_buf_append(out, ": ", (flags & ASPEN_JSON_PRETTY) ? 2 : 1);
            if (write_value(m->val, flags, out, depth + 1))
                return -1;
        }
        if (v->u.obj.len)
            indent(out, flags, depth);
        return aspen_buf_putc(out, '}');
    }
    return -1;
}

int aspen_json_write_buf(const aspen_json *v, unsigned flags, aspen_buf *out)
{
    size_t mark = out->len;
    if (write_value(v, flags, out, 0) || out->failed) {
        out->len = mark; /* no half-written value */
        return -1;
    }
    return 0;
}

char *aspen_json_write(const aspen_json *v, unsigned flags, size_t *len)
{
    aspen_buf b = ASPEN_BUF_INIT;
    if (aspen_json_write_buf(v, flags, &b) || !aspen_buf_cstr(&b)) {
        aspen_buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return (char *)b.data;
}
