/* guests/data-processor — the seed's JSON guest, in C: takes a batch of records and returns a
 * structured summary, stamped with the host's clock.
 *
 * Input:
 *   {"records": [{"name": "  Alice ", "age": 30, "city": "paris"}, ...],
 *    "options": {"case": "lower" | "upper" | "none",   (default "lower")
 *                "values": true | false,               (list every normalised value; default true)
 *                "records": true | false}}             (echo the normalised records; default false)
 * Output:
 *   {"record_count": N,
 *    "numeric_fields": {"age": {"count", "min", "max", "sum", "mean"}, ...},
 *    "string_fields": {"city": {"count", "distinct", "values": [...], "counts": {"paris": 2, ...}}},
 *    "ignored_values": {"field": n, ...}      (only if some values were neither number nor string)
 *    "records": [...]                        (only with options.records)
 *    "processed_at": <Unix seconds from hl_get_time>}
 * Strings are normalised: trimmed, runs of whitespace collapsed to one space, and case-folded
 * (ASCII and the Latin-1 letters À-Þ / à-þ). Fields appear in the order first seen. Integer sums
 * stay exact while they fit in 64 bits.
 *
 * Failures (reported as job errors, not crashes): input that is not JSON (the SDK reports where),
 * a payload without a "records" array, a record that is not an object, bad options.
 * Built by scripts/build-guest.sh data-processor into target/guest-binaries/data-processor.
 */
#include <aspen.h>
#include <stdlib.h>
#include <string.h>

enum fold { FOLD_LOWER, FOLD_UPPER, FOLD_NONE };

typedef struct options {
    enum fold fold;
    bool values;
    bool records;
} options;

/* ---- A small string -> index hash map (open addressing), for field names and distinct values. */
typedef struct strmap {
    struct slot {
        const char *key; /* NULL: empty */
        size_t len;
        size_t value;
    } *slots;
    size_t cap, n;
} strmap;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static struct slot *map_find(strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash_bytes(key, len) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct slot *s = &m->slots[i];
        if (!s->key || (s->len == len && memcmp(s->key, key, len) == 0))
            return s;
    }
}

/* Find key, or insert it with value *value. Returns the slot, NULL when out of memory. The key
 * must outlive the map (it points into the payload or a normalised string). */
static struct slot *map_get_or_add(strmap *m, const char *key, size_t len, size_t value, bool *added)
{
    *added = false;
    if ((m->n + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return NULL;
        strmap bigger = {ns, ncap, m->n};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key)
                *map_find(&bigger, m->slots[i].key, m->slots[i].len) = m->slots[i];
        free(m->slots);
        *m = bigger;
    }
    struct slot *s = map_find(m, key, len);
    if (!s->key) {
        *s = (struct slot){key, len, value};
        m->n++;
        *added = true;
    }
    return s;
}

/* ---- Per-field statistics. */
typedef struct field {
    const char *name;
    size_t name_len;
    /* numbers */
    size_t num_count;
    const aspen_json *min, *max;
    double sum;
    int64_t isum;
    bool isum_exact;
    /* strings */
    size_t str_count;
    aspen_json *values;   /* array of normalised values, in record order */
    strmap distinct;      /* normalised value -> index into counts */
    size_t *counts;       /* occurrences, by first-seen order */
    const char **dkeys;   /* the distinct values, by first-seen order */
    size_t *dlens;
    size_t dcap;
    /* anything else */
    size_t ignored;
} field;

typedef struct summary {
    field *fields;
    size_t n, cap;
    strmap index; /* name -> position in fields */
} summary;

static field *field_for(summary *s, const char *name, size_t len)
{
    bool added;
    struct slot *slot = map_get_or_add(&s->index, name, len, s->n, &added);
    if (!slot)
        return NULL;
    if (!added)
        return &s->fields[slot->value];
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        field *nf = realloc(s->fields, ncap * sizeof *nf);
        if (!nf)
            return NULL;
        s->fields = nf;
        s->cap = ncap;
    }
    field *f = &s->fields[s->n++];
    memset(f, 0, sizeof *f);
    f->name = name;
    f->name_len = len;
    f->isum_exact = true;
    return f;
}

static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Trim, collapse whitespace runs to one space, fold case. Returns a malloc'd string (length in
 * *out_len), NULL when out of memory. */
static char *normalise(const char *s, size_t len, enum fold fold, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    bool pending_space = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_space(c)) {
            pending_space = n > 0; /* leading whitespace is dropped */
            continue;
        }
        if (pending_space) {
            out[n++] = ' ';
            pending_space = false;
        }
        if (fold == FOLD_LOWER && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        else if (fold == FOLD_UPPER && c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 32);
        else if (c == 0xC3 && i + 1 < len && fold != FOLD_NONE) {
            /* Latin-1 letters in UTF-8: U+00C0..U+00DE <-> U+00E0..U+00FE, except × and ÷. */
            unsigned char d = (unsigned char)s[i + 1];
            if (fold == FOLD_LOWER && d >= 0x80 && d <= 0x9E && d != 0x97)
                d = (unsigned char)(d + 0x20);
            else if (fold == FOLD_UPPER && d >= 0xA0 && d <= 0xBE && d != 0xB7)
                d = (unsigned char)(d - 0x20);
            out[n++] = (char)c;
            out[n++] = (char)d;
            i++;
            continue;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0'; /* trailing whitespace never got its pending space written */
    *out_len = n;
    return out;
}

static int add_number(field *f, const aspen_json *v)
{
    double d = aspen_json_as_number(v, 0);
    if (f->num_count == 0 || d < aspen_json_as_number(f->min, 0))
        f->min = v;
    if (f->num_count == 0 || d > aspen_json_as_number(f->max, 0))
        f->max = v;
    f->num_count++;
    f->sum += d;
    if (f->isum_exact) {
        if (!aspen_json_is_integer(v) ||
            __builtin_add_overflow(f->isum, aspen_json_as_int(v, 0), &f->isum))
            f->isum_exact = false;
    }
    return 0;
}

static int add_string(field *f, const aspen_json *v, const options *o, aspen_json *norm_record,
                       const char *key, size_t key_len)
{
    size_t n;
    char *norm = normalise(aspen_json_as_string(v, ""), aspen_json_len(v), o->fold, &n);
    if (!norm)
        return -1;
    f->str_count++;
    if (o->values) {
        if (!f->values && !(f->values = aspen_json_new_array()))
            return -1;
        if (aspen_json_append(f->values, aspen_json_new_stringn(norm, n)))
            return -1;
    }
    if (norm_record && aspen_json_setn(norm_record, key, key_len, aspen_json_new_stringn(norm, n)))
        return -1;
    bool added;
    struct slot *slot = map_get_or_add(&f->distinct, norm, n, f->distinct.n, &added);
    if (!slot)
        return -1;
    if (added) {
        if (slot->value == f->dcap) {
            size_t ncap = f->dcap ? f->dcap * 2 : 8;
            size_t *nc = realloc(f->counts, ncap * sizeof *nc);
            if (!nc)
                return -1;
            f->counts = nc;
            const char **nk = realloc(f->dkeys, ncap * sizeof *nk);
            if (!nk)
                return -1;
            f->dkeys = nk;
            size_t *nl = realloc(f->dlens, ncap * sizeof *nl);
            if (!nl)
                return -1;
            f->dlens = nl;
            f->dcap = ncap;
        }
        f->counts[slot->value] = 0;
        f->dkeys[slot->value] = norm; /* kept: the map points at it */
        f->dlens[slot->value] = n;
    } else {
        free(norm);
    }
    f->counts[slot->value]++;
    return 0;
}

/* The builders return NULL if any part ran out of memory, so nothing incomplete is reported. */
static aspen_json *checked(aspen_json *o, int rc)
{
    if (rc) {
        aspen_json_free(o);
        return NULL;
    }
    return o;
}

static aspen_json *field_numbers(const field *f)
{
    aspen_json *o = aspen_json_new_object();
    int rc = aspen_json_set_int(o, "count", (int64_t)f->num_count);
    rc |= aspen_json_set(o, "min", aspen_json_clone(f->min));
    rc |= aspen_json_set(o, "max", aspen_json_clone(f->max));
    if (f->isum_exact)
        rc |= aspen_json_set_int(o, "sum", f->isum);
    else
        rc |= aspen_json_set_number(o, "sum", f->sum);
    rc |= aspen_json_set_number(o, "mean", f->sum / (double)f->num_count);
    return checked(o, rc);
}

static aspen_json *field_strings(field *f, const options *opt)
{
    aspen_json *o = aspen_json_new_object();
    int rc = aspen_json_set_int(o, "count", (int64_t)f->str_count);
    rc |= aspen_json_set_int(o, "distinct", (int64_t)f->distinct.n);
    if (opt->values) {
        rc |= aspen_json_set(o, "values", f->values);
        f->values = NULL;
    }
    aspen_json *counts = aspen_json_new_object();
    for (size_t i = 0; i < f->distinct.n; i++)
        rc |= aspen_json_setn(counts, f->dkeys[i], f->dlens[i],
                              aspen_json_new_int((int64_t)f->counts[i]));
    rc |= aspen_json_set(o, "counts", counts);
    return checked(o, rc);
}

static aspen_json *read_options(const aspen_json *payload, options *o, aspen_job_ctx *ctx)
{
    o->fold = FOLD_LOWER;
    o->values = true;
    o->records = false;
    const aspen_json *opts = aspen_json_get(payload, "options");
    if (!opts || aspen_json_is_null(opts))
        return (aspen_json *)payload; /* non-NULL: no error */
    if (!aspen_json_is_object(opts))
        return aspen_fail(ctx, "bad input: \"options\" must be an object, got %s",
                          aspen_json_type_name(aspen_json_typeof(opts)));
    const aspen_json *c = aspen_json_get(opts, "case");
    if (c) {
        const char *s = aspen_json_as_string(c, "");
        if (strcmp(s, "lower") == 0)
            o->fold = FOLD_LOWER;
        else if (strcmp(s, "upper") == 0)
            o->fold = FOLD_UPPER;
        else if (strcmp(s, "none") == 0)
            o->fold = FOLD_NONE;
        else
            return aspen_fail(ctx, "bad input: options.case must be \"lower\", \"upper\" or \"none\"");
    }
    const aspen_json *v = aspen_json_get(opts, "values");
    if (v && !aspen_json_is_bool(v))
        return aspen_fail(ctx, "bad input: options.values must be true or false");
    o->values = aspen_json_as_bool(v, true);
    const aspen_json *r = aspen_json_get(opts, "records");
    if (r && !aspen_json_is_bool(r))
        return aspen_fail(ctx, "bad input: options.records must be true or false");
    o->records = aspen_json_as_bool(r, false);
    return (aspen_json *)payload;
}

static aspen_json *process(const aspen_json *payload, aspen_job_ctx *ctx)
{
    if (!aspen_json_is_object(payload))
        return aspen_fail(ctx, "bad input: the payload must be a JSON object with a \"records\" "
                               "array, got %s",
                          aspen_json_type_name(aspen_json_typeof(payload)));
    const aspen_json *records = aspen_json_get(payload, "records");
    if (!aspen_json_is_array(records))
        return aspen_fail(ctx, "bad input: \"records\" must be an array of objects (%s)",
                          records ? aspen_json_type_name(aspen_json_typeof(records)) : "it is missing");
    options opt;
    if (!read_options(payload, &opt, ctx))
        return NULL;

    summary s = {0};
    aspen_json *norm_records = opt.records ? aspen_json_new_array() : NULL;
    if (opt.records && !norm_records)
        return NULL;
    size_t n = aspen_json_len(records);
    for (size_t i = 0; i < n; i++) {
        const aspen_json *rec = aspen_json_at(records, i);
        if (!aspen_json_is_object(rec))
            return aspen_fail(ctx, "bad input: records[%zu] is %s %s, not an object", i,
                              aspen_json_is_array(rec) || aspen_json_is_object(rec) ? "an" : "a",
                              aspen_json_type_name(aspen_json_typeof(rec)));
        aspen_json *norm = opt.records ? aspen_json_new_object() : NULL;
        if (opt.records && aspen_json_append(norm_records, norm))
            return NULL;
        for (size_t k = 0; k < aspen_json_len(rec); k++) {
            size_t klen;
            const char *key = aspen_json_key_at(rec, k, &klen);
            const aspen_json *v = aspen_json_at(rec, k);
            field *f = field_for(&s, key, klen);
            if (!f)
                return NULL;
            if (aspen_json_is_number(v)) {
                add_number(f, v);
                if (norm && aspen_json_setn(norm, key, klen, aspen_json_clone(v)))
                    return NULL;
            } else if (aspen_json_is_string(v)) {
                if (add_string(f, v, &opt, norm, key, klen))
                    return NULL;
            } else {
                f->ignored++;
                if (norm && aspen_json_setn(norm, key, klen, aspen_json_clone(v)))
                    return NULL;
            }
        }
    }

    aspen_json *out = aspen_json_new_object();
    aspen_json *nums = aspen_json_new_object();
    aspen_json *strs = aspen_json_new_object();
    aspen_json *ignored = NULL;
    if (!out || !nums || !strs)
        return NULL;
    for (size_t i = 0; i < s.n; i++) {
        field *f = &s.fields[i];
        if (f->num_count && aspen_json_setn(nums, f->name, f->name_len, field_numbers(f)))
            return NULL;
        if (f->str_count && aspen_json_setn(strs, f->name, f->name_len, field_strings(f, &opt)))
            return NULL;
        if (f->ignored) {
            if (!ignored && !(ignored = aspen_json_new_object()))
                return NULL;
            if (aspen_json_setn(ignored, f->name, f->name_len, aspen_json_new_int((int64_t)f->ignored)))
                return NULL;
        }
    }
    int rc = aspen_json_set_int(out, "record_count", (int64_t)n);
    rc |= aspen_json_set(out, "numeric_fields", nums);
    rc |= aspen_json_set(out, "string_fields", strs);
    if (ignored)
        rc |= aspen_json_set(out, "ignored_values", ignored);
    if (norm_records)
        rc |= aspen_json_set(out, "records", norm_records);
    uint64_t now = hl_get_time();
    rc |= aspen_json_set_int(out, "processed_at", (int64_t)now);
    if (rc)
        return NULL; /* reported as "out of memory" */
    hl_println("data-processor: %zu records, %zu numeric and %zu string fields", n,
               aspen_json_len(nums), aspen_json_len(strs));
    return out;
}

ASPEN_JSON_HANDLER(process);
