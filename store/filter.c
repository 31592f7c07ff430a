/* filter.c — the one filter language of `aspen jobs --filter`, `aspen retry --failed --filter`,
 * the console's `/` prompt and the bulk actions, parsed here for every front end and every backend
 * into an aspen_store_filter:
 *
 *   state:failed,running  type:T  guest:NAME (or binary:NAME)  tag:T  queue:Q  id:N  rerun-of:N
 *   payload.FIELD:VALUE  order:newest|oldest|queue        KEY:"a quoted value"
 *   failed  #42  42  echo-worker                           bare words: a state, a job id, a guest
 *
 * The shorthands (guest:, bare words) used to be expanded by the console alone, so the same text
 * meant different things in the console and the CLI; now both call this. A backend turns the parsed
 * filter into its own query, always binding the values, never pasting them into SQL; payload field
 * paths are restricted here to characters that are safe in a JSON path of either backend.
 *
 * Errors name the term (cut to a readable length) and list the valid keys, with "did you mean" for
 * a near-miss key or state. Repeating a term is harmless (its value is stored once, so thousands of
 * `failed` fit any buffer); two different values for a one-valued key (two guests, two ids) are an
 * error rather than a silent "last one wins". */
#include "store_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char filter_keys[] =
    "Valid keys: state: type: guest: binary: tag: queue: id: rerun-of: payload.FIELD: order:. A bare "
    "word is a state, a job id (42 or #42) or a guest name";

static const char *const key_names[] = {"state", "type", "guest",    "binary", "tag",
                                        "queue", "id",   "rerun-of", "order"};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool path_ok(const char *p)
{
    if (!*p)
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '[' || *p == ']' || *p == '$'))
            return false;
    return true;
}

static bool parse_id(const char *v, int64_t *out)
{
    char *end = NULL;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*end || errno || x <= 0)
        return false;
    *out = x;
    return true;
}

/* The well-formed UTF-8 sequence at s[0, n): its length (2..4), or 0 (overlong, surrogate, past
 * U+10FFFF, cut short, a stray continuation byte). Only for bytes >= 0x80. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t l = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4
                                                                                               : 0;
    if (!l || l > n)
        return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return l;
}

const char *store_shown(const char *s, size_t len, size_t max, char *out, size_t size)
{
    if (!size)
        return out;
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    if (!s)
        len = 0;
    size_t in = 0, o = 0;
    while (in < len && in < max) {
        char esc[8];
        size_t k, w; /* bytes read, bytes written */
        if (u[in] >= 0x20 && u[in] < 0x7f) {
            esc[0] = (char)u[in];
            k = w = 1;
        } else if (u[in] >= 0x80 && (k = utf8_seq(u + in, len - in)) != 0 &&
                   !(k == 2 && u[in] == 0xC2 && u[in + 1] < 0xA0)) {
            memcpy(esc, u + in, k); /* a character, as it is (C1 controls are not: below) */
            w = k;
        } else if (u[in] == 0xC2 && in + 1 < len && u[in + 1] >= 0x80 && u[in + 1] < 0xA0) {
            snprintf(esc, sizeof esc, "\\u%04x", u[in + 1]);
            k = 2;
            w = 6;
        } else {
            snprintf(esc, sizeof esc, "\\x%02x", u[in]);
            k = 1;
            w = 4;
        }
        if (in + k > max || o + w + 4 > size) /* room for "…" and the NUL after it */
            break;
        memcpy(out + o, esc, w);
        o += w;
        in += k;
    }
    snprintf(out + o, size - o, "%s", in < len ? "\u2026" : "");
    return out;
}

/* A term as it may be quoted in a message: at most 60 bytes (store_shown). */
static const char *shown(const char *s, size_t len, char out[80])
{
    return store_shown(s, len, 60, out, 80);
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Optimal string alignment distance, case-insensitive, for words up to 47 bytes (longer: far). */
static size_t distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 47 || lb > 47)
        return 99;
    size_t d[48][48];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* True when word without its leading dashes (3 bytes or more) is a whole part of name between
 * '-'s, name being longer: "--attempts" in "--max-attempts", "now" in "run-now". */
static bool is_part(const char *word, size_t len, const char *name)
{
    while (len && *word == '-') {
        word++;
        len--;
    }
    while (*name == '-')
        name++;
    size_t nl = strlen(name);
    if (len < 3 || nl <= len)
        return false;
    for (size_t at = 0; at + len <= nl; at++) {
        bool starts = at == 0 || name[at - 1] == '-';
        bool ends = at + len == nl || name[at + len] == '-';
        if (starts && ends && strncmp(name + at, word, len) == 0)
            return true;
    }
    return false;
}

const char *aspen_store_nearest(const char *word, size_t len, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = len <= 3 ? 2 : 3;
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        size_t d = distance(word, len, names[i]);
        /* a prefix of a longer name counts as near too: --pay for --payload */
        if (len >= 3 && strlen(names[i]) > len && strncmp(names[i], word, len) == 0)
            d = 1;
        /* so does a whole '-'-separated part of one, the part people remember of a compound
         * name: --attempts for --max-attempts, :now for :run-now */
        else if (is_part(word, len, names[i]))
            d = 1;
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

/* One-valued keys: the first value is kept, the same again is fine, another is an error. */
static int set_once(const char **slot, const char *val, const char *what, const char *term,
                    size_t termlen, aspen_store_error *err)
{
    if (*slot && strcmp(*slot, val) != 0) {
        char a[80], b[80];
        return store_err(err, ASPEN_STORE_EINVAL,
                         "filter term '%s' conflicts with the earlier %s '%s': a job has one; "
                         "give one %s term",
                         shown(term, termlen, a), what, shown(*slot, strlen(*slot), b), what);
    }
    if (!*slot)
        *slot = val;
    return 0;
}

static int set_id_once(int64_t *slot, int64_t v, const char *what, const char *term,
                       size_t termlen, aspen_store_error *err)
{
    if (*slot && *slot != v) {
        char a[80];
        return store_err(err, ASPEN_STORE_EINVAL,
                         "filter term '%s' conflicts with the earlier %s %lld: give one %s term",
                         shown(term, termlen, a), what, (long long)*slot, what);
    }
    *slot = v;
    return 0;
}

static int too_long(const char *term, size_t termlen, size_t bufsize, aspen_store_error *err)
{
    char a[80];
    return store_err(err, ASPEN_STORE_EINVAL,
                     "filter too long: term '%s' (%zu bytes) does not fit with the rest in %zu "
                     "bytes; use fewer or shorter terms",
                     shown(term, termlen, a), termlen, bufsize);
}

static int parse_states(char *val, const char *term, size_t termlen, unsigned *states,
                        aspen_store_error *err)
{
    static const char *const names[] = {"queued",    "scheduled", "running",
                                        "succeeded", "failed",    "cancelled"};
    for (char *s = val; s;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        aspen_store_state st;
        if (aspen_store_state_parse(s, &st) != 0) {
            char a[80], b[80];
            const char *near = aspen_store_nearest(s, strlen(s), names, sizeof names / sizeof names[0]);
            char hint[40] = ". ";
            if (near)
                snprintf(hint, sizeof hint, ": did you mean '%s'? ", near);
            return store_err(err, ASPEN_STORE_EINVAL,
                             "unknown state '%s' in filter term '%s'%sStates: queued, "
                             "scheduled, running, succeeded, failed, cancelled",
                             shown(s, strlen(s), a), shown(term, termlen, b), hint);
        }
        *states |= 1u << st;
        s = comma ? comma + 1 : NULL;
    }
    return 0;
}

int aspen_store_filter_parse(const char *text, aspen_store_filter *out, char *buf, size_t bufsize,
                             aspen_store_error *err)
{
    memset(out, 0, sizeof *out);
    if (!buf || bufsize == 0)
        return store_err(err, ASPEN_STORE_EINVAL, "filter: no buffer to parse into");
    size_t used = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        const char *term = p;
        /* key: up to ':' or a space; a term that starts with a quote has no key */
        const char *key = p;
        while (*p && *p != ':' && *p != '"' && !is_space(*p))
            p++;
        size_t keylen = (size_t)(p - key);
        bool bare = *p != ':';
        if (bare) {
            p = key; /* the whole term is the value */
            keylen = 0;
        } else {
            p++;
        }
        /* the value: "quoted" (\" and \\ inside) or up to the next space; copied into buf */
        size_t start = used;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        while (*p && (quoted ? *p != '"' : !is_space(*p))) {
            if (!quoted && *p == '"') {
                const char *e = p;
                while (*e && !is_space(*e))
                    e++;
                char a[80];
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "stray quote in filter term '%s': quote the whole value, "
                                 "e.g. payload.user.name:\"Alice B\"",
                                 shown(term, (size_t)(e - term), a));
            }
            if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            if (used + 1 >= bufsize) {
                const char *e = p;
                while (*e && (quoted ? *e != '"' : !is_space(*e)))
                    e++;
                return too_long(term, (size_t)(e - term), bufsize, err);
            }
            buf[used++] = *p++;
        }
        if (quoted) {
            if (*p != '"') {
                char a[80];
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "unterminated quote in filter term '%s': end the value with \"",
                                 shown(term, (size_t)(p - term), a));
            }
            p++;
            if (*p && !is_space(*p)) {
                const char *e = p;
                while (*e && !is_space(*e))
                    e++;
                char a[80];
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "filter term '%s' goes on after its closing quote: put a space "
                                 "between terms",
                                 shown(term, (size_t)(e - term), a));
            }
        }
        size_t termlen = (size_t)(p - term);
        if (used + 1 >= bufsize)
            return too_long(term, termlen, bufsize, err);
        buf[used++] = '\0';
        char *val = buf + start;
        bool keep = false; /* whether val stays in buf (a string the filter points to) */
        char a[80];

        if (bare && quoted) { /* "a name": always a guest name, quoted so it is taken literally */
            if (!*val)
                return store_err(err, ASPEN_STORE_EINVAL, "empty quoted filter term '\"\"'");
            int rc = set_once(&out->binary_name, val, "guest", term, termlen, err);
            if (rc)
                return rc;
            keep = out->binary_name == val;
        } else if (bare) {
            aspen_store_state st;
            int64_t id;
            if (aspen_store_state_parse(val, &st) == 0) {
                out->states |= 1u << st;
            } else if (parse_id(val[0] == '#' ? val + 1 : val, &id)) {
                int rc = set_id_once(&out->id, id, "job id", term, termlen, err);
                if (rc)
                    return rc;
            } else if (val[0] == '#') {
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "filter term '%s': # goes before a job id (a positive number), "
                                 "e.g. #42",
                                 shown(term, termlen, a));
            } else {
                int rc = set_once(&out->binary_name, val, "guest", term, termlen, err);
                if (rc)
                    return rc;
                keep = out->binary_name == val;
            }
        } else if (!*val) {
            return store_err(err, ASPEN_STORE_EINVAL,
                             "filter term '%s' has no value: write %.*s:VALUE (quote it if it has "
                             "spaces)",
                             shown(term, termlen, a), (int)(keylen < 40 ? keylen : 40), key);
        } else {
#define KEY(k) (keylen == sizeof(k) - 1 && strncmp(key, k, keylen) == 0)
            int rc = 0;
            if (KEY("state")) {
                rc = parse_states(val, term, termlen, &out->states, err);
            } else if (KEY("type")) {
                rc = set_once(&out->type, val, "type", term, termlen, err);
                keep = out->type == val;
            } else if (KEY("guest") || KEY("binary")) {
                rc = set_once(&out->binary_name, val, "guest", term, termlen, err);
                keep = out->binary_name == val;
            } else if (KEY("tag")) {
                rc = set_once(&out->tag, val, "tag", term, termlen, err);
                keep = out->tag == val;
            } else if (KEY("queue")) {
                rc = aspen_store_queue_name_check(val, err);
                if (!rc)
                    rc = set_once(&out->queue, val, "queue", term, termlen, err);
                keep = out->queue == val;
            } else if (KEY("id") || KEY("rerun-of")) {
                int64_t v;
                bool is_id = KEY("id");
                if (!parse_id(val, &v))
                    return store_err(err, ASPEN_STORE_EINVAL,
                                     "filter term '%s' needs a positive job id, e.g. %s:42",
                                     shown(term, termlen, a), is_id ? "id" : "rerun-of");
                rc = is_id ? set_id_once(&out->id, v, "job id", term, termlen, err)
                           : set_id_once(&out->rerun_of, v, "rerun-of", term, termlen, err);
            } else if (KEY("order")) {
                aspen_store_order o;
                if (strcmp(val, "newest") == 0)
                    o = ASPEN_STORE_ORDER_NEWEST;
                else if (strcmp(val, "oldest") == 0)
                    o = ASPEN_STORE_ORDER_OLDEST;
                else if (strcmp(val, "queue") == 0)
                    o = ASPEN_STORE_ORDER_QUEUE;
                else
                    return store_err(err, ASPEN_STORE_EINVAL,
                                     "unknown order in filter term '%s': use order:newest, "
                                     "order:oldest or order:queue",
                                     shown(term, termlen, a));
                out->order = o;
            } else if (keylen > 8 && strncmp(key, "payload.", 8) == 0) {
                size_t plen = keylen - 8;
                if (used + plen + 1 > bufsize)
                    return too_long(term, termlen, bufsize, err);
                char *path = buf + used;
                memcpy(path, key + 8, plen);
                path[plen] = '\0';
                if (!path_ok(path))
                    return store_err(err, ASPEN_STORE_EINVAL,
                                     "bad payload field in filter term '%s': a field is letters, "
                                     "digits, _ - . and [n], e.g. payload.user.name:alice",
                                     shown(term, termlen, a));
                bool dup = false;
                for (size_t i = 0; i < out->n_fields; i++)
                    dup |= strcmp(out->fields[i].path, path) == 0 &&
                           strcmp(out->fields[i].value, val) == 0;
                if (!dup) {
                    if (out->n_fields == ASPEN_STORE_FILTER_MAX_FIELDS)
                        return store_err(err, ASPEN_STORE_EINVAL,
                                         "filter term '%s': at most %d payload.FIELD terms",
                                         shown(term, termlen, a), ASPEN_STORE_FILTER_MAX_FIELDS);
                    used += plen + 1;
                    out->fields[out->n_fields].path = path;
                    out->fields[out->n_fields].value = val;
                    out->n_fields++;
                    keep = true;
                }
            } else if (KEY("payload")) {
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "filter term '%s' names no payload field: write "
                                 "payload.FIELD:VALUE, e.g. payload.user:alice",
                                 shown(term, termlen, a));
            } else {
                char k[80];
                const char *near =
                    aspen_store_nearest(key, keylen, key_names, sizeof key_names / sizeof key_names[0]);
                const char *dot = memchr(key, '.', keylen);
                if (!near && dot && distance(key, (size_t)(dot - key), "payload") <= 2)
                    near = "payload.FIELD";
                char hint[40] = ". ";
                if (near)
                    snprintf(hint, sizeof hint, ": did you mean '%s:'? ", near);
                return store_err(err, ASPEN_STORE_EINVAL, "unknown filter key '%s' in '%s'%s%s",
                                 shown(key, keylen, k), shown(term, termlen, a), hint,
                                 filter_keys);
            }
#undef KEY
            if (rc)
                return rc;
        }
        if (!keep)
            used = start; /* nothing points at it: the space is free for the next term */
    }
    return 0;
}
