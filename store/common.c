/* common.c — the parts of the store that no backend repeats: error filling, which errors are
 * permanent, the wall clock, which backend a database name asks for, the checks of a job spec and
 * a binary that need no database, freeing the result structs, and the retry backoff.
 *
 * Backoff lives here (not in a backend) because it is arithmetic on the engine's side: the engine
 * computes the delay and hands the store a run_at; the store never reads a clock of its own. */
#include "store_backend.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- which backend --------------------------------------------------------------------------- */

/* libpq's connection keywords (PostgreSQL 15-17, "Parameter Key Words"): a name whose first word is
 * one of these followed by '=' is a key=value connection string, not a file name. */
static const char *const libpq_keywords[] = {
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
};

enum store_backend_kind store_backend_of(const char *name, const char **form)
{
    if (form)
        *form = "a file path";
    if (!name)
        return STORE_BACKEND_SQLITE;
    if (strncmp(name, "postgresql://", 13) == 0) {
        if (form)
            *form = "a postgresql:// URI";
        return STORE_BACKEND_POSTGRES;
    }
    if (strncmp(name, "postgres://", 11) == 0) {
        if (form)
            *form = "a postgres:// URI";
        return STORE_BACKEND_POSTGRES;
    }
    const char *p = name;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    const char *key = p;
    while ((*p >= 'a' && *p <= 'z') || *p == '_')
        p++;
    size_t keylen = (size_t)(p - key);
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (keylen == 0 || *p != '=')
        return STORE_BACKEND_SQLITE;
    for (size_t i = 0; i < sizeof libpq_keywords / sizeof libpq_keywords[0]; i++)
        if (strlen(libpq_keywords[i]) == keylen && strncmp(libpq_keywords[i], key, keylen) == 0) {
            if (form)
                *form = "a libpq key=value connection string";
            return STORE_BACKEND_POSTGRES;
        }
    return STORE_BACKEND_SQLITE;
}

/* ---- errors and small helpers ---------------------------------------------------------------- */

int store_err(aspen_store_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->disconnected = false; /* a backend that lost its server says so after (pg_open.c) */
    }
    return code;
}

bool aspen_store_error_permanent(int code)
{
    switch (code) {
#define PERMANENT(name, value, permanent, text)                                                    \
    case ASPEN_STORE_##name:                                                                       \
        return permanent;
        ASPEN_STORE_ERRNO_MAP(PERMANENT)
#undef PERMANENT
    default:
        return false;
    }
}

const char *aspen_store_err_name(int code)
{
    switch (code) {
    case ASPEN_STORE_OK:
        return "ASPEN_STORE_OK";
#define NAME(name, value, permanent, text)                                                         \
    case ASPEN_STORE_##name:                                                                       \
        return "ASPEN_STORE_" #name;
        ASPEN_STORE_ERRNO_MAP(NAME)
#undef NAME
    default:
        return NULL;
    }
}

const char *aspen_store_strerror(int code)
{
    switch (code) {
    case ASPEN_STORE_OK:
        return "no error";
#define TEXT(name, value, permanent, text)                                                         \
    case ASPEN_STORE_##name:                                                                       \
        return text;
        ASPEN_STORE_ERRNO_MAP(TEXT)
#undef TEXT
    default:
        return NULL;
    }
}

char *store_strdup(const char *str)
{
    if (!str)
        return NULL;
    size_t n = strlen(str) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, str, n);
    return copy;
}

int64_t aspen_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t store_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t store_thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void *store_grow(void *arr, size_t *cap, size_t count, size_t elem)
{
    if (count < *cap)
        return arr;
    size_t want = *cap ? *cap * 2 : 16, bytes;
    if (want < *cap || __builtin_mul_overflow(want, elem, &bytes))
        return NULL;
    void *grown = realloc(arr, bytes);
    if (grown)
        *cap = want;
    return grown;
}

bool store_is_sha256_hex(const char *h)
{
    if (!h || strlen(h) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return false;
    return true;
}

int store_check_binary_size(size_t size, aspen_store_error *err)
{
    if (size > ASPEN_STORE_MAX_BINARY)
        return store_err(err, ASPEN_STORE_ETOOBIG,
                         "Binary too large: %zu bytes (max: %u bytes): strip symbols, build with "
                         "-Os, or split the work",
                         size, ASPEN_STORE_MAX_BINARY);
    return 0;
}

void aspen_store_binary_clear(aspen_store_binary *b)
{
    if (!b)
        return;
    free(b->name);
    free(b->bytes);
    memset(b, 0, sizeof *b);
}

int64_t aspen_store_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double jitter,
                               uint64_t random)
{
    if (attempt < 1)
        attempt = 1;
    if (base_ms < 0)
        base_ms = 0;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    if (!(jitter >= 0))
        jitter = 0; /* also catches NaN */
    if (jitter > 1)
        jitter = 1;
    /* base * 2^(n-1) without overflow: stop doubling once past the cap. */
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    if (d > cap_ms)
        d = cap_ms;
    /* Uniform in [-1, 1) from the top 53 bits of random. */
    double u = (double)(random >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
    double v = (double)d * (1.0 + jitter * u);
    if (v < 0)
        v = 0;
    return (int64_t)llround(v);
}

void aspen_store_job_clear(aspen_store_job *job)
{
    if (!job)
        return;
    free(job->type);
    free(job->binary_sha256);
    free(job->binary_name);
    free(job->payload);
    free(job->tags);
    free(job->result);
    free(job->error);
    free(job->source_dir);
    memset(job, 0, sizeof *job);
}

void aspen_store_jobs_free(aspen_store_job *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        aspen_store_job_clear(&jobs[i]);
    free(jobs);
}

void aspen_store_attempts_free(aspen_store_attempt *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].error);
    free(a);
}

void aspen_store_logs_free(aspen_store_log *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i].line);
    free(l);
}

void aspen_store_engines_free(aspen_store_engine_info *engines) { free(engines); }

/* ---- engines' heartbeats (schema version 5, the same on both backends) ------------------------- */

/* bigint and text mean the same to SQLite (integer and text affinity) and PostgreSQL. */
const char *const store_engine_v5_columns[] = {
    "workers bigint NOT NULL DEFAULT 0",
    "busy bigint NOT NULL DEFAULT 0",
    "warm_vms bigint NOT NULL DEFAULT 0",
    "rss_bytes bigint NOT NULL DEFAULT 0",
    "jobs_per_s_milli bigint NOT NULL DEFAULT 0", /* jobs/s * 1000: an integer on both */
    "version text NOT NULL DEFAULT ''",
    "heartbeat_at bigint NOT NULL DEFAULT 0", /* 0: none yet */
    "slots text NOT NULL DEFAULT ''",         /* store_engine_slots_encode */
};
const size_t store_engine_v5_ncolumns =
    sizeof store_engine_v5_columns / sizeof store_engine_v5_columns[0];

/* Schema version 18: the queues an engine serves ('' = every queue), so that `aspen engines` and
 * the console say which engine takes which queue (issue 10). */
const char *const store_engine_v18_column = "queues text NOT NULL DEFAULT ''";

void store_clean_ascii(const char *src, char *dst, size_t size)
{
    if (!size)
        return;
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    dst[i] = 0;
}

char *store_engine_slots_encode(const aspen_store_engine_slot *slots, size_t n)
{
    if (n > ASPEN_STORE_ENGINE_SLOTS)
        n = ASPEN_STORE_ENGINE_SLOTS;
    /* a line: two numbers of at most 20 characters, two spaces, 63 of guest, a newline */
    char *out = malloc(n * 110 + 1);
    if (!out)
        return NULL;
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char guest[sizeof slots[i].guest];
        memcpy(guest, slots[i].guest, sizeof guest);
        guest[sizeof guest - 1] = 0;
        store_clean_ascii(guest, guest, sizeof guest);
        for (char *g = guest; *g; g++)
            if (*g == ' ')
                *g = '?';
        len += (size_t)snprintf(out + len, 110, "%d %lld %s\n", slots[i].worker,
                                (long long)slots[i].job_id, guest[0] ? guest : "-");
    }
    return out;
}

void store_engine_slots_decode(aspen_store_engine_info *e, const char *text)
{
    e->n_slots = 0;
    for (const char *p = text ? text : ""; *p && e->n_slots < ASPEN_STORE_ENGINE_SLOTS;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[128];
        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = 0;
            char *end;
            long long worker = strtoll(line, &end, 10);
            char *jp = end;
            long long job = strtoll(jp, &end, 10);
            if (end != jp && end != line && *end == ' ' && worker >= 0 && worker < 1000000 &&
                job > 0) {
                aspen_store_engine_slot *sl = &e->slots[e->n_slots++];
                sl->worker = (int)worker;
                sl->job_id = job;
                store_clean_ascii(end + 1, sl->guest, sizeof sl->guest);
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
}

/* ---- checks that need no database -------------------------------------------------------------- */

int store_check_spec(const aspen_store_job_spec *j, const char *where, aspen_store_error *err)
{
    if (!j->type || !*j->type)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%sjob type is missing: give a type such as vm_execute", where);
    if (j->max_attempts < 0 || j->timeout_ms < 0 || j->memory_bytes < 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%smax attempts, timeout and memory must not be negative", where);
    size_t at = 0;
    const char *why = NULL;
    if (j->payload && !store_json_check(j->payload, 0, &at, &why))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%spayload is not valid JSON (%s at byte %zu): fix it, e.g. "
                         "{\"key\":\"value\"}",
                         where, why, at);
    if (j->tags && !store_json_check(j->tags, '[', &at, &why))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%stags must be a JSON array of strings like [\"a\",\"b\"] (%s at byte "
                         "%zu)",
                         where, why, at);
    if (j->binary) {
        int code = store_check_binary_size(j->binary_size, err);
        if (code)
            return code;
    } else if (j->binary_sha256 && !store_is_sha256_hex(j->binary_sha256)) {
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%s'%.80s' is not a SHA-256 (64 lowercase hex digits)", where,
                         j->binary_sha256);
    }
    return 0;
}

/* ---- showing a connection string without its password ------------------------------------------ */

struct bounded {
    char *b;
    size_t n, size;
};

static void put(struct bounded *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len && w->n + 1 < w->size; i++)
        w->b[w->n++] = s[i];
    w->b[w->n] = '\0';
}

/* At p, a `password` keyword (followed by optional spaces and '='): the length up to and
 * including the '=', else 0. */
static size_t password_key(const char *p)
{
    if (strncmp(p, "password", 8) != 0)
        return 0;
    const char *e = p + 8;
    while (*e == ' ')
        e++;
    return *e == '=' ? (size_t)(e + 1 - p) : 0;
}

void store_redact_conninfo(const char *name, char *out, size_t size)
{
    if (!size)
        return;
    struct bounded w = {out, 0, size};
    out[0] = '\0';
    const char *start = name ? name : "", *p = start;
    const char *scheme = strstr(p, "://");
    if (scheme) {
        /* URI: user:PASSWORD@ in the authority, and ?password=… among the parameters. */
        const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#"), *at = NULL;
        for (const char *q = auth; q < end; q++)
            if (*q == '@')
                at = q;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            put(&w, p, (size_t)(colon + 1 - p));
            put(&w, "***", 3);
            p = at;
        }
        for (; *p; p++) {
            size_t k = p > start && (p[-1] == '?' || p[-1] == '&') ? password_key(p) : 0;
            if (k) {
                put(&w, p, k);
                put(&w, "***", 3);
                p += k + strcspn(p + k, "&#") - 1;
            } else {
                put(&w, p, 1);
            }
        }
        return;
    }
    /* key=value: the value of password= (quoted with '…' or up to the next space). */
    for (const char *q = p; *q; q++) {
        size_t k = (q == p || q[-1] == ' ' || q[-1] == '\t') ? password_key(q) : 0;
        if (!k) {
            put(&w, q, 1);
            continue;
        }
        put(&w, q, k);
        put(&w, "***", 3);
        q += k;
        while (*q == ' ')
            q++;
        if (*q == '\'') {
            for (q++; *q && *q != '\''; q++)
                if (*q == '\\' && q[1])
                    q++;
        } else {
            while (*q && *q != ' ' && *q != '\t')
                q++;
            q--;
        }
        if (!*q)
            break;
    }
}

/* ~1 ms: longer than a busy handler's step (sqlite_busy.c, 200 µs), so a waiting connection takes
 * the lock first; a million jobs are a thousand pauses, 1 s more. */
void store_bulk_pause(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

void store_bulk_partial(aspen_store_error *err, const char *verb, int64_t done)
{
    if (!err || done <= 0)
        return;
    char was[sizeof err->msg];
    memcpy(was, err->msg, sizeof was);
    was[sizeof was - 1] = '\0';
    int head = snprintf(err->msg, sizeof err->msg,
                        "%s %lld jobs, then stopped (those stay %s; run it again for the rest): ",
                        verb, (long long)done, verb);
    if (head <= 0 || (size_t)head >= sizeof err->msg)
        return;
    size_t len = strnlen(was, sizeof err->msg - 1 - (size_t)head); /* the cause, cut to fit */
    memcpy(err->msg + head, was, len);
    err->msg[(size_t)head + len] = '\0';
}
