/* unique.c — what unique jobs need that no backend repeats: the key a submit's rule gives (given,
 * or derived from the job's type, guest and payload or chosen payload fields), which existing jobs
 * a rule counts (state and age), the one wording of a duplicate, and the small parsers the CLI and
 * the console share for the rule's parts (a list of states, a duration).
 *
 * A derived key hashes the payload after jansson re-encodes it with sorted keys and no white
 * space, so {"a":1, "b":2} and {"b":2,"a":1} are one key: two submitters of "the same job" rarely
 * agree on spacing or key order. The backends only look keys up; none of them parses JSON. */
#include "store_backend.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned store_unique_states(const aspen_store_unique *u)
{
    return u && u->states ? u->states : ASPEN_STORE_UNIQUE_STATES;
}

int64_t store_unique_since(const aspen_store_unique *u, int64_t now)
{
    if (!u || u->period_ms <= 0)
        return INT64_MIN;
    if (now < INT64_MIN + u->period_ms)
        return INT64_MIN;
    return now - u->period_ms;
}

bool store_unique_matches(const aspen_store_unique *u, aspen_store_state state,
                          int64_t created_at, int64_t now)
{
    if ((int)state < 0 || state >= ASPEN_STORE_STATE_COUNT)
        return false;
    if (!(store_unique_states(u) & (1u << state)))
        return false;
    /* created exactly `period` ago no longer counts: "unique for 10m" is a half-open window */
    return created_at > store_unique_since(u, now) || u->period_ms <= 0;
}

/* Length of the UTF-8 sequence at c, or 0 when it is not well-formed (overlongs, surrogates and
 * code points past U+10FFFF refused, as PostgreSQL refuses them). */
static size_t utf8_len(const unsigned char *c)
{
    if (c[0] < 0x80)
        return 1;
    size_t n = c[0] >= 0xf0 ? 4 : c[0] >= 0xe0 ? 3 : c[0] >= 0xc2 ? 2 : 0;
    if (!n || c[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((c[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c[0] == 0xe0 && c[1] < 0xa0) || (c[0] == 0xed && c[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((c[0] == 0xf0 && c[1] < 0x90) || (c[0] == 0xf4 && c[1] >= 0x90)))
        return 0;
    return n;
}

/* The guest a derived key names: what people call it, else its hash, else its sources. */
static const char *guest_of(const aspen_store_job_spec *j, char sha[65])
{
    if (j->binary_name && *j->binary_name)
        return j->binary_name;
    if (j->binary_sha256)
        return j->binary_sha256;
    if (j->binary) {
        aspen_store_sha256_hex(j->binary, j->binary_size, sha);
        return sha;
    }
    return j->source_dir ? j->source_dir : "";
}

/* Appends one length-prefixed part to the hash, so "ab"+"c" and "a"+"bc" differ. */
static void hash_part(aspen_store_sha256_ctx *c, const char *text, size_t len)
{
    char n[24];
    int k = snprintf(n, sizeof n, "%zu:", len);
    aspen_store_sha256_update(c, n, (size_t)k);
    aspen_store_sha256_update(c, text, len);
}

static void hash_json(aspen_store_sha256_ctx *c, const json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    if (text)
        hash_part(c, text, strlen(text));
    else
        hash_part(c, "", 0); /* absent: differs from every JSON text, null included */
    free(text);
}

/* One field path ("order.id", "$.order.id") of the payload, or NULL when it is not there. */
static const json_t *field_of(const json_t *root, const char *path, size_t len)
{
    if (len >= 2 && path[0] == '$' && path[1] == '.')
        path += 2, len -= 2;
    const json_t *v = root;
    while (len && v) {
        const char *dot = memchr(path, '.', len);
        size_t k = dot ? (size_t)(dot - path) : len;
        char name[256];
        if (!json_is_object(v) || k >= sizeof name)
            return NULL;
        memcpy(name, path, k);
        name[k] = '\0';
        v = json_object_get(v, name);
        path += k, len -= k;
        if (dot)
            path++, len--;
    }
    return v;
}

/* Whether a field path is a.b.c (with an optional leading "$."): names of letters, digits, '_',
 * '-', no empty part. */
static bool path_ok(const char *p, size_t len)
{
    if (len >= 2 && p[0] == '$' && p[1] == '.')
        p += 2, len -= 2;
    if (!len || len > 200)
        return false;
    bool empty = true;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '.') {
            if (empty)
                return false;
            empty = true;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                   ch == '_' || ch == '-') {
            empty = false;
        } else {
            return false;
        }
    }
    return !empty;
}

int aspen_store_unique_key(const aspen_store_job_spec *j, char *out, size_t size,
                           aspen_store_error *err)
{
    if (!j || !j->unique)
        return store_err(err, ASPEN_STORE_EINVAL, "the job has no uniqueness rule");
    if (!out || size < 72)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_unique_key: no room for the key");
    const aspen_store_unique *u = j->unique;
    if (u->period_ms < 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "the uniqueness period must not be negative (0 means any age)");
    if (u->states & ~((1u << ASPEN_STORE_STATE_COUNT) - 1))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "the uniqueness rule names a state that does not exist (bits 0x%x)",
                         u->states);
    if (u->key && *u->key) {
        size_t len = strlen(u->key);
        if (len > ASPEN_STORE_UNIQUE_KEY_MAX)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "the unique key is %zu bytes: at most %d are kept; use a shorter "
                             "key (or let aspen derive one from the payload)",
                             len, ASPEN_STORE_UNIQUE_KEY_MAX);
        for (const unsigned char *c = (const unsigned char *)u->key; *c;) {
            size_t k = utf8_len(c);
            if (!k)
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "the unique key is not valid UTF-8 (byte 0x%02x at offset %zu): "
                                 "keys are text",
                                 *c, (size_t)(c - (const unsigned char *)u->key));
            c += k;
        }
        if (size <= len)
            return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_unique_key: no room for the key");
        memcpy(out, u->key, len + 1);
        return 0;
    }
    const char *payload = j->payload ? j->payload : "{}";
    json_error_t jerr;
    json_t *root = json_loads(payload, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!root && u->fields)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "cannot read the payload's fields for the unique key: %s (line %d, "
                         "column %d)",
                         jerr.text, jerr.line, jerr.column);
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    char sha[65];
    hash_part(&c, j->type ? j->type : "", j->type ? strlen(j->type) : 0);
    const char *guest = guest_of(j, sha);
    hash_part(&c, guest, strlen(guest));
    if (u->fields) {
        hash_part(&c, "fields", 6);
        const char *p = u->fields;
        size_t n = 0, present = 0;
        while (*p) {
            size_t k = strcspn(p, ",");
            size_t a = 0, b = k;
            while (a < b && (p[a] == ' ' || p[a] == '\t'))
                a++;
            while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
                b--;
            if (b > a) {
                if (!path_ok(p + a, b - a)) {
                    json_decref(root);
                    return store_err(err, ASPEN_STORE_EINVAL,
                                     "unique field '%.*s' is not a payload path such as user or "
                                     "order.id (names of letters, digits, _ and -, joined by .)",
                                     (int)(b - a > 80 ? 80 : b - a), p + a);
                }
                hash_part(&c, p + a, b - a);
                const json_t *v = field_of(root, p + a, b - a);
                hash_json(&c, v);
                present += v != NULL;
                n++;
            }
            p += k;
            if (*p == ',')
                p++;
        }
        if (!n) {
            json_decref(root);
            return store_err(err, ASPEN_STORE_EINVAL,
                             "no unique fields given: name payload fields such as user,order.id");
        }
        /* One field absent is a value of its own (absent differs from null); all of them absent
         * is a typo in the names nearly always, and would make every such job one job. */
        if (!present) {
            json_decref(root);
            return store_err(err, ASPEN_STORE_EINVAL,
                             "the payload has none of the unique fields '%.200s': every job "
                             "without them would be a duplicate of the first; check the names "
                             "(paths such as user or order.id) against the payload",
                             u->fields);
        }
    } else if (root) {
        hash_part(&c, "payload", 7);
        hash_json(&c, root);
    } else {
        /* Valid JSON that jansson cannot hold (an integer past 64 bits): its text as given. */
        hash_part(&c, "payload-text", 12);
        hash_part(&c, payload, strlen(payload));
    }
    json_decref(root);
    uint8_t digest[32];
    aspen_store_sha256_final(&c, digest);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[digest[i] >> 4];
        out[8 + 2 * i] = hex[digest[i] & 15];
    }
    out[71] = '\0';
    return 0;
}

int aspen_store_states_parse(const char *text, unsigned *states, aspen_store_error *err)
{
    return aspen_store_states_parse_in(text, ~0u, states, err);
}

int aspen_store_states_parse_in(const char *text, unsigned offered, unsigned *states,
                                aspen_store_error *err)
{
    if (!states)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_states_parse: states is NULL");
    *states = 0;
    const char *p = text ? text : "";
    /* the states a caller offers: the suggestion and the list come from these alone */
    const char *names[ASPEN_STORE_STATE_COUNT];
    size_t n_names = 0;
    char list[128] = "";
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (offered & (1u << st)) {
            names[n_names++] = aspen_store_state_name((aspen_store_state)st);
            size_t at = strlen(list);
            snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", names[n_names - 1]);
        }
    while (*p) {
        size_t k = strcspn(p, ", ");
        if (k) {
            char word[32];
            int st = -1;
            if (k < sizeof word) {
                memcpy(word, p, k);
                word[k] = '\0';
                aspen_store_state s;
                if (aspen_store_state_parse(word, &s) == 0)
                    st = (int)s;
            }
            if (st < 0) {
                const char *near = aspen_store_nearest(p, k, names, n_names);
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "'%.*s' is not a state%s%s%s: name some of %s",
                                 (int)(k > 40 ? 40 : k), p, near ? " (did you mean " : "",
                                 near ? near : "", near ? "?)" : "", list);
            }
            *states |= 1u << st;
        }
        p += k;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (!*states)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "no states given: name some of %s (comma separated)", list);
    return 0;
}

static const struct {
    const char *unit;
    int64_t ms;
} duration_units[] = {{"ms", 1},         {"s", 1000},       {"min", 60000}, {"m", 60000},
                      {"h", 3600000},    {"d", 86400000},   {"w", 604800000}};

int aspen_store_duration_parse(const char *text, int64_t *ms, aspen_store_error *err)
{
    if (!ms)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_duration_parse: ms is NULL");
    const char *p = text ? text : "";
    int64_t total = 0;
    bool any = false;
    while (*p) {
        if (*p < '0' || *p > '9')
            goto bad;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno)
            goto too_large; /* only ERANGE here: p starts with a digit */
        int64_t unit = -1;
        size_t ulen = 0;
        if (!*end && !any) {
            unit = 1000; /* a bare number: seconds */
        } else {
            for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
                size_t l = strlen(duration_units[i].unit);
                if (strncmp(end, duration_units[i].unit, l) == 0 &&
                    !(end[l] >= 'a' && end[l] <= 'z')) {
                    unit = duration_units[i].ms;
                    ulen = l;
                    break;
                }
            }
        }
        if (unit < 0)
            goto bad;
        if (v > (INT64_MAX - total) / unit)
            goto too_large;
        total += v * unit;
        any = true;
        p = end + ulen;
    }
    if (!any)
        goto bad;
    *ms = total;
    return 0;
bad:
    return store_err(err, ASPEN_STORE_EINVAL,
                     "'%.40s' is not a duration: write one such as 500ms, 90s, 10m, 12h, 7d, 2w "
                     "or 1h30m",
                     text ? text : "");
too_large: /* a duration it is, past what milliseconds in 64 bits hold (trial 22 read it as
            * "not a duration") */
    return store_err(err, ASPEN_STORE_EINVAL,
                     "'%.40s' is too long a duration: at most about 292 million years "
                     "(106751991167d)",
                     text ? text : "");
}

int aspen_store_ms_parse(const char *text, int64_t lo, int64_t hi, int64_t *ms,
                         aspen_store_error *err)
{
    if (!ms)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_ms_parse: ms is NULL");
    const char *s = text ? text : "";
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    char buf[64];
    int64_t v = -1;
    if (n && n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        long long bare = strtoll(buf, &end, 10);
        /* a bare number is milliseconds here (aspen submit --timeout 500 has always meant it),
         * anything else a duration with its unit */
        if (buf[0] >= '0' && buf[0] <= '9' && !*end)
            v = errno ? -1 : bare;
        else if (aspen_store_duration_parse(buf, &v, NULL) != 0)
            v = -1;
    }
    if (v < lo || v > hi) {
        char a[32], b[32];
        aspen_store_duration_format(lo, a, sizeof a);
        aspen_store_duration_format(hi, b, sizeof b);
        return store_err(err, ASPEN_STORE_EINVAL,
                         "milliseconds (a bare number) or a duration such as 500ms, 30s, 5m or "
                         "1h, from %s to %s, not '%.40s'",
                         a, b, text ? text : "");
    }
    *ms = v;
    return 0;
}

void aspen_store_duration_format(int64_t ms, char *out, size_t size)
{
    if (!out || !size)
        return;
    if (ms <= 0) {
        snprintf(out, size, "0s");
        return;
    }
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"w", 604800000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},     {"s", 1000},     {"ms", 1}};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && ms > 0; i++) {
        /* "24h" and "7d" read better than "1d" and "1w"; weeks only when whole ("10d", not
         * "1w3d") and two or more, days only from two */
        if (i == 0 && (ms % parts[0].ms || ms < 2 * parts[0].ms))
            continue;
        if (i == 1 && ms < 2 * parts[1].ms)
            continue;
        int64_t k = ms / parts[i].ms;
        if (!k)
            continue;
        ms -= k * parts[i].ms;
        int w = snprintf(out + used, size - used, "%lld%s", (long long)k, parts[i].unit);
        if (w < 0 || (size_t)w >= size - used)
            return;
        used += (size_t)w;
    }
}

void aspen_store_duplicate_message(const char *key, const aspen_store_submitted *dup,
                                   int64_t now_ms, char *out, size_t size)
{
    if (!out || !size)
        return;
    char ago[40];
    int64_t age = dup && now_ms > dup->created_at_ms ? now_ms - dup->created_at_ms : 0;
    if (age < 1000)
        snprintf(ago, sizeof ago, "just now");
    else if (age < 120000)
        snprintf(ago, sizeof ago, "%lld s ago", (long long)(age / 1000));
    else if (age < 7200000)
        snprintf(ago, sizeof ago, "%lld min ago", (long long)(age / 60000));
    else if (age < 172800000)
        snprintf(ago, sizeof ago, "%lld h ago", (long long)(age / 3600000));
    else
        snprintf(ago, sizeof ago, "%lld d ago", (long long)(age / 86400000));
    snprintf(out, size,
             "job %lld already exists for unique key %s (%s, submitted %s); not submitting "
             "another",
             dup ? (long long)dup->id : 0LL, key ? key : "?",
             dup ? aspen_store_state_name(dup->state) : "?", ago);
}

/* ---- the rule kept with a job (schema version 17): show, retry and rerun read it -------------- */

aspen_store_unique store_unique_of_row(const char *key, int64_t period_ms, unsigned states)
{
    return (aspen_store_unique){.key = key,
                                .period_ms = period_ms > 0 ? period_ms : 0,
                                .states = states ? states : ASPEN_STORE_UNIQUE_STATES};
}

void aspen_store_job_rule_clear(aspen_store_job_rule *r)
{
    if (!r)
        return;
    free(r->key);
    *r = (aspen_store_job_rule){0};
}

void aspen_store_states_format(unsigned states, char *out, size_t size)
{
    if (!out || !size)
        return;
    size_t used = 0;
    out[0] = '\0';
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        if (!(states & (1u << st)))
            continue;
        int w = snprintf(out + used, size - used, "%s%s", used ? "," : "",
                         aspen_store_state_name((aspen_store_state)st));
        if (w < 0 || (size_t)w >= size - used)
            return;
        used += (size_t)w;
    }
}

void aspen_store_retry_skip_message(const aspen_store_retry_skip *skip, const char *cmd, char *out,
                                    size_t size)
{
    if (!out || !size)
        return;
    if (!skip) {
        snprintf(out, size, "job not retried: another job holds its unique key");
        return;
    }
    const long long id = (long long)skip->id, h = (long long)skip->holder.id;
    cmd = cmd ? cmd : "";
    /* A key may be 512 bytes and an error message holds 512: past 200 bytes the key is cut (at a
     * character boundary, marked …) so the advice after it always fits. */
    size_t klen = strlen(skip->key), shown = klen;
    if (shown > 200) {
        shown = 200;
        while (shown > 0 && ((unsigned char)skip->key[shown] & 0xc0) == 0x80)
            shown--;
    }
    /* a holder that waits or runs can be cancelled; a finished one (its rule counts it) only
     * deleted */
    bool final = aspen_store_state_is_final(skip->holder.state);
    snprintf(out, size,
             "job %lld not retried: job %lld (%s) holds its unique key '%.*s%s'; %s job %lld first "
             "(aspen %s %lld%s), or aspen rerun %lld --no-unique%s",
             id, h, aspen_store_state_name(skip->holder.state), (int)shown, skip->key,
             shown < klen ? "…" : "", final ? "delete" : "cancel", h, final ? "delete" : "cancel",
             h, cmd, id, cmd);
}

/* A key, or an error, shown cut past `max` bytes at a character boundary (the caller marks it). */
static int shown_len(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len <= max)
        return (int)len;
    while (max > 0 && ((unsigned char)text[max] & 0xc0) == 0x80)
        max--;
    return (int)max;
}

void store_unique_not_retried(const struct store_job_row *running, struct store_job_row *after,
                              int64_t now, const char *error, const aspen_store_retry_skip *skip,
                              char *out, size_t size)
{
    /* Why not hold the key on (two live jobs of one key) or cancel: the holder does the job's
     * work, and the job's own attempt failed, so "failed" says what happened; the note says who
     * has the work now and how to run this one again anyway. */
    after->state = ASPEN_STORE_FAILED;
    after->run_at = running->run_at;
    after->finished_at = now;
    after->cancel_requested = false;
    const char *e = error ? error : "failed";
    const long long h = (long long)skip->holder.id, id = (long long)skip->id;
    int el = shown_len(e, 200), kl = shown_len(skip->key, 160);
    snprintf(out, size,
             "%.*s%s; not retried: job %lld (%s) holds its unique key '%.*s%s' now (aspen retry "
             "%lld once job %lld is done, or aspen rerun %lld --no-unique)",
             el, e, (size_t)el < strlen(e) ? "…" : "", h,
             aspen_store_state_name(skip->holder.state), kl, skip->key,
             (size_t)kl < strlen(skip->key) ? "…" : "", id, h, id);
    after->set_error = true;
    after->error = out;
}

int store_run_now_held(const aspen_store_retry_skip *skip, const char *cmd, aspen_store_error *err)
{
    const long long id = (long long)skip->id, h = (long long)skip->holder.id;
    int kl = shown_len(skip->key, 200);
    bool final = aspen_store_state_is_final(skip->holder.state);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld not run now: job %lld (%s) holds its unique key '%.*s%s'; it runs "
                     "when its time comes, or %s job %lld first (aspen %s %lld%s)",
                     id, h, aspen_store_state_name(skip->holder.state), kl, skip->key,
                     (size_t)kl < strlen(skip->key) ? "…" : "", final ? "delete" : "cancel", h,
                     final ? "delete" : "cancel", h, cmd ? cmd : "");
}

int store_retry_skip_add(aspen_store_retry_skip **list, size_t *n, size_t *cap, int64_t id,
                         const char *key, const aspen_store_submitted *holder,
                         aspen_store_error *err)
{
    if (*n == *cap) {
        size_t want = *cap ? *cap * 2 : 8;
        if (want > SIZE_MAX / sizeof **list)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing skipped retries");
        aspen_store_retry_skip *grown = realloc(*list, want * sizeof **list);
        if (!grown)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing skipped retries");
        *list = grown, *cap = want;
    }
    aspen_store_retry_skip *k = &(*list)[(*n)++];
    memset(k, 0, sizeof *k);
    k->id = id;
    k->holder = *holder;
    snprintf(k->key, sizeof k->key, "%s", key ? key : "");
    return 0;
}
