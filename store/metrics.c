/* store/metrics.c — the backend-independent half of the metrics history (schema version 11): the
 * mergeable run-time and queue-wait histograms, their text form in the database, the merging of
 * every engine's per-minute rollups into points for a chart or a table, retention, and the public
 * functions, which call the backends' metrics_* ops (sqlite/sqlite_metrics.c,
 * postgres/pg_metrics.c).
 *
 * Why histograms: percentiles of several engines or minutes cannot be combined from their
 * percentiles, but bucket counts add. Buckets are log-linear — 8 per power of two above 8, one per
 * value below — so a bucket is at most 1/8 of its lower bound wide, and the middle of the bucket
 * that holds the nearest-rank sample is within 1/16 of that sample. 304 buckets cover 0 .. 2^40 µs
 * (12.7 days); a row stores only its non-empty ones, as text ("BUCKET:COUNT,..."), which both
 * SQLite and PostgreSQL keep as it is. */
#include "store_backend.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char store_metrics_v11_sql[] =
    "CREATE TABLE IF NOT EXISTS metrics ("
    "  minute BIGINT NOT NULL,"
    "  engine BIGINT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  guest TEXT NOT NULL,"
    "  finished BIGINT NOT NULL DEFAULT 0,"
    "  succeeded BIGINT NOT NULL DEFAULT 0,"
    "  failed BIGINT NOT NULL DEFAULT 0,"
    "  timeouts BIGINT NOT NULL DEFAULT 0,"
    "  cancelled BIGINT NOT NULL DEFAULT 0,"
    "  retried BIGINT NOT NULL DEFAULT 0,"
    "  exits BIGINT NOT NULL DEFAULT 0,"
    "  host_calls BIGINT NOT NULL DEFAULT 0,"
    "  run_us_sum BIGINT NOT NULL DEFAULT 0,"
    "  wait_us_sum BIGINT NOT NULL DEFAULT 0,"
    "  run_max_us BIGINT NOT NULL DEFAULT 0,"
    "  wait_max_us BIGINT NOT NULL DEFAULT 0,"
    "  run_hist TEXT NOT NULL DEFAULT '',"
    "  wait_hist TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (minute, engine, type, guest))";

/* ---- histograms -------------------------------------------------------------------------------- */

size_t aspen_store_hist_bucket(uint64_t v)
{
    if (v > ASPEN_STORE_HIST_MAX)
        v = ASPEN_STORE_HIST_MAX;
    if (v < ASPEN_STORE_HIST_SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v); /* >= 3 */
    size_t sub = (size_t)(v >> (e - 3)) & (ASPEN_STORE_HIST_SUB - 1);
    return (size_t)(e - 2) * ASPEN_STORE_HIST_SUB + sub;
}

uint64_t aspen_store_hist_lower(size_t b)
{
    if (b >= ASPEN_STORE_HIST_BUCKETS)
        b = ASPEN_STORE_HIST_BUCKETS - 1;
    if (b < ASPEN_STORE_HIST_SUB)
        return b;
    int e = (int)(b / ASPEN_STORE_HIST_SUB) + 2;
    uint64_t sub = b % ASPEN_STORE_HIST_SUB;
    return (ASPEN_STORE_HIST_SUB + sub) << (e - 3);
}

uint64_t aspen_store_hist_width(size_t b)
{
    if (b >= ASPEN_STORE_HIST_BUCKETS)
        b = ASPEN_STORE_HIST_BUCKETS - 1;
    if (b < ASPEN_STORE_HIST_SUB)
        return 1;
    return UINT64_C(1) << ((int)(b / ASPEN_STORE_HIST_SUB) - 1);
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

void aspen_store_hist_add(aspen_store_hist *h, uint64_t v)
{
    if (!h)
        return;
    if (v > ASPEN_STORE_HIST_MAX)
        v = ASPEN_STORE_HIST_MAX;
    size_t b = aspen_store_hist_bucket(v);
    h->counts[b] = sat_add(h->counts[b], 1);
    h->n = sat_add(h->n, 1);
    if (v > h->max)
        h->max = v;
}

void aspen_store_hist_merge(aspen_store_hist *into, const aspen_store_hist *from)
{
    if (!into || !from || !from->n)
        return;
    for (size_t b = 0; b < ASPEN_STORE_HIST_BUCKETS; b++)
        if (from->counts[b])
            into->counts[b] = sat_add(into->counts[b], from->counts[b]);
    into->n = sat_add(into->n, from->n);
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t aspen_store_hist_percentile(const aspen_store_hist *h, double p)
{
    if (!h || !h->n || !(p > 0))
        return 0;
    if (p > 100)
        p = 100;
    double r = ceil(p / 100.0 * (double)h->n);
    uint64_t rank = r < 1 ? 1 : r >= (double)h->n ? h->n : (uint64_t)r;
    uint64_t cum = 0;
    for (size_t b = 0; b < ASPEN_STORE_HIST_BUCKETS; b++) {
        cum = sat_add(cum, h->counts[b]);
        if (cum >= rank) {
            uint64_t lo = aspen_store_hist_lower(b), w = aspen_store_hist_width(b);
            uint64_t est = lo + (w - 1) / 2;
            if (rank == h->n && h->max >= lo && h->max < lo + w)
                return h->max; /* the largest sample is known exactly */
            /* the largest sample bounds every percentile (exact p100) */
            if (h->max >= lo && est > h->max)
                est = h->max;
            return est;
        }
    }
    return h->max; /* counts summing to less than n: a hand-edited row */
}

size_t store_hist_encode(const aspen_store_hist *h, char *out, size_t cap)
{
    if (!cap)
        return 0;
    size_t len = 0;
    out[0] = 0;
    for (size_t b = 0; h && b < ASPEN_STORE_HIST_BUCKETS; b++) {
        if (!h->counts[b])
            continue;
        int k = snprintf(out + len, cap - len, "%s%zu:%llu", len ? "," : "", b,
                         (unsigned long long)h->counts[b]);
        if (k < 0 || (size_t)k >= cap - len) {
            out[0] = 0;
            return 0;
        }
        len += (size_t)k;
    }
    return len;
}

/* Reads decimal digits at *p (at most 20, no sign), saturating; false when there are none. */
static bool read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
        digits++;
    }
    *p = s;
    *out = v;
    return digits > 0;
}

void store_hist_decode(aspen_store_hist *h, const char *text, uint64_t max)
{
    memset(h, 0, sizeof *h);
    const char *p = text ? text : "";
    size_t top = 0;
    bool any = false;
    while (*p) {
        uint64_t b, c;
        bool ok = read_u64(&p, &b) && *p == ':';
        if (ok) {
            p++;
            ok = read_u64(&p, &c) && (*p == ',' || *p == 0);
        }
        if (ok && b < ASPEN_STORE_HIST_BUCKETS && c) {
            h->counts[b] = sat_add(h->counts[b], c);
            h->n = sat_add(h->n, c);
            if (!any || b > top)
                top = (size_t)b;
            any = true;
        }
        while (*p && *p != ',') /* skip the rest of a malformed entry */
            p++;
        if (*p == ',')
            p++;
    }
    if (any) {
        uint64_t hi = aspen_store_hist_lower(top) + aspen_store_hist_width(top) - 1;
        uint64_t lo = aspen_store_hist_lower(top);
        h->max = max < lo || max > hi ? hi : max;
    }
}

void aspen_store_rollup_merge(aspen_store_rollup *into, const aspen_store_rollup *from)
{
    if (!into || !from)
        return;
    into->finished = sat_add(into->finished, from->finished);
    into->succeeded = sat_add(into->succeeded, from->succeeded);
    into->failed = sat_add(into->failed, from->failed);
    into->timeouts = sat_add(into->timeouts, from->timeouts);
    into->cancelled = sat_add(into->cancelled, from->cancelled);
    into->retried = sat_add(into->retried, from->retried);
    into->exits = sat_add(into->exits, from->exits);
    into->host_calls = sat_add(into->host_calls, from->host_calls);
    into->run_us_sum = sat_add(into->run_us_sum, from->run_us_sum);
    into->wait_us_sum = sat_add(into->wait_us_sum, from->wait_us_sum);
    aspen_store_hist_merge(&into->run_us, &from->run_us);
    aspen_store_hist_merge(&into->wait_us, &from->wait_us);
}

/* ---- the public functions ---------------------------------------------------------------------- */

static int no_handle(aspen_store_error *err, const char *what)
{
    return store_err(err, ASPEN_STORE_EINVAL, "%s: no store handle (NULL)", what);
}

int aspen_store_metrics_write(aspen_store *s, const aspen_store_rollup *rows, size_t n,
                              aspen_store_error *err)
{
    if (!s)
        return no_handle(err, "metrics_write");
    if (!n)
        return 0;
    if (!rows)
        return store_err(err, ASPEN_STORE_EINVAL, "metrics_write: rows is NULL");
    aspen_store_rollup *clean = malloc(n * sizeof *clean);
    if (!clean)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory writing %zu rollups", n);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].minute < 0 || rows[i].engine_id <= 0) {
            free(clean);
            return store_err(err, ASPEN_STORE_EINVAL,
                             "rollup %zu has minute %lld and engine %lld: both must be set", i,
                             (long long)rows[i].minute, (long long)rows[i].engine_id);
        }
        clean[i] = rows[i];
        clean[i].minutes = 1;
        /* the same text on both backends, whatever a job named its type or guest */
        store_clean_ascii(rows[i].type, clean[i].type, sizeof clean[i].type);
        store_clean_ascii(rows[i].guest, clean[i].guest, sizeof clean[i].guest);
    }
    int code = s->ops->metrics_write(s, clean, n, err);
    free(clean);
    return code;
}

int aspen_store_metrics_prune(aspen_store *s, int64_t before_minute, size_t max_rows,
                              int64_t *deleted, aspen_store_error *err)
{
    if (deleted)
        *deleted = 0;
    if (!s)
        return no_handle(err, "metrics_prune");
    if (!max_rows)
        return 0;
    return s->ops->metrics_prune(s, before_minute, max_rows, deleted, err);
}

/* Points being merged: an array, and for by_guest an index by (step, type, guest). */
struct agg {
    const aspen_store_metrics_query *q;
    int64_t step;
    aspen_store_rollup *pts;
    size_t n, cap;
    size_t *slots; /* open addressing over pts (by_guest): index + 1, 0 = empty */
    size_t n_slots;
    aspen_store_error *err;
};

static uint64_t key_hash(int64_t idx, const char *type, const char *guest)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)idx;
    for (const char *p = type; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = guest; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static int agg_row(const aspen_store_rollup *row, void *user)
{
    struct agg *a = user;
    if (row->minute < a->q->from_minute || row->minute > a->q->to_minute)
        return 0;
    int64_t idx = (row->minute - a->q->from_minute) / a->step;
    if (!a->q->by_guest) {
        aspen_store_rollup_merge(&a->pts[idx], row);
        return 0;
    }
    uint64_t h = key_hash(idx, row->type, row->guest);
    size_t mask = a->n_slots - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        size_t k = a->slots[i];
        if (!k)
            break;
        aspen_store_rollup *p = &a->pts[k - 1];
        if (p->minute == a->q->from_minute + idx * a->step && strcmp(p->type, row->type) == 0 &&
            strcmp(p->guest, row->guest) == 0) {
            aspen_store_rollup_merge(p, row);
            return 0;
        }
    }
    if (a->n >= ASPEN_STORE_METRICS_MAX_POINTS)
        return store_err(a->err, ASPEN_STORE_EINVAL,
                         "more than %d points (steps x job types x guests) in the range asked "
                         "for: ask for a larger step, a shorter range or one guest",
                         ASPEN_STORE_METRICS_MAX_POINTS);
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        aspen_store_rollup *grown = realloc(a->pts, cap * sizeof *grown);
        if (!grown)
            return store_err(a->err, ASPEN_STORE_ENOMEM, "out of memory merging rollups");
        a->pts = grown;
        a->cap = cap;
    }
    aspen_store_rollup *p = &a->pts[a->n];
    memset(p, 0, sizeof *p);
    p->minute = a->q->from_minute + idx * a->step;
    p->minutes = a->step;
    if (p->minute + p->minutes - 1 > a->q->to_minute)
        p->minutes = a->q->to_minute - p->minute + 1;
    memcpy(p->type, row->type, sizeof p->type);
    memcpy(p->guest, row->guest, sizeof p->guest);
    aspen_store_rollup_merge(p, row);
    a->slots[i] = ++a->n;
    return 0;
}

static int cmp_point(const void *x, const void *y)
{
    const aspen_store_rollup *a = x, *b = y;
    if (a->minute != b->minute)
        return a->minute < b->minute ? -1 : 1;
    int c = strcmp(a->type, b->type);
    return c ? c : strcmp(a->guest, b->guest);
}

int aspen_store_metrics(aspen_store *s, const aspen_store_metrics_query *q,
                        aspen_store_rollup **out, size_t *n, aspen_store_error *err)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!s)
        return no_handle(err, "metrics");
    if (!q || !out || !n)
        return store_err(err, ASPEN_STORE_EINVAL, "metrics: query, out or n is NULL");
    if (q->to_minute < q->from_minute || q->from_minute < 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "metrics: the range ends (minute %lld) before it starts (minute %lld)",
                         (long long)q->to_minute, (long long)q->from_minute);
    if (q->step_minutes < 0)
        return store_err(err, ASPEN_STORE_EINVAL, "metrics: a negative step (%lld minutes)",
                         (long long)q->step_minutes);
    struct agg a = {.q = q, .step = q->step_minutes ? q->step_minutes : 1, .err = err};
    int64_t span = q->to_minute - q->from_minute + 1;
    int64_t steps = (span - 1) / a.step + 1;
    if (steps > ASPEN_STORE_METRICS_MAX_POINTS)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "%lld points of %lld minutes asked for (at most %d): ask for a larger "
                         "step or a shorter range",
                         (long long)steps, (long long)a.step, ASPEN_STORE_METRICS_MAX_POINTS);
    if (!q->by_guest) {
        a.pts = calloc((size_t)steps, sizeof *a.pts);
        if (!a.pts)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory for %lld points",
                             (long long)steps);
        a.n = (size_t)steps;
        for (int64_t i = 0; i < steps; i++) {
            a.pts[i].minute = q->from_minute + i * a.step;
            a.pts[i].minutes = i == steps - 1 ? q->to_minute - a.pts[i].minute + 1 : a.step;
        }
    } else {
        a.n_slots = 1;
        while (a.n_slots < 2 * ASPEN_STORE_METRICS_MAX_POINTS)
            a.n_slots <<= 1;
        a.slots = calloc(a.n_slots, sizeof *a.slots);
        if (!a.slots)
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory merging rollups");
    }
    int code = s->ops->metrics_rows(s, q->from_minute, q->to_minute, q->guest, q->type, agg_row,
                                    &a, err);
    free(a.slots);
    if (code) {
        free(a.pts);
        return code;
    }
    if (q->by_guest && a.n > 1)
        qsort(a.pts, a.n, sizeof *a.pts, cmp_point);
    *out = a.pts;
    *n = a.n;
    return 0;
}

/* ---- retention --------------------------------------------------------------------------------- */

int aspen_store_metrics_retention(aspen_store *s, int64_t *minutes, aspen_store_error *err)
{
    if (!s)
        return no_handle(err, "metrics_retention");
    if (!minutes)
        return store_err(err, ASPEN_STORE_EINVAL, "metrics_retention: minutes is NULL");
    *minutes = ASPEN_STORE_METRICS_RETENTION_MIN;
    char *v = NULL;
    int code = aspen_store_setting_get(s, "metrics.retention", &v, err);
    if (code)
        return code;
    int64_t ms;
    aspen_store_error ignored;
    /* a value written by hand that does not parse keeps the default (set refuses it) */
    if (v && aspen_store_duration_parse(v, &ms, &ignored) == 0 && ms >= 3600 * 1000LL)
        *minutes = ms / 60000;
    free(v);
    return 0;
}

int aspen_store_metrics_set_retention(aspen_store *s, const char *duration, aspen_store_error *err)
{
    if (!s)
        return no_handle(err, "metrics_set_retention");
    int64_t ms;
    int code = aspen_store_duration_parse(duration, &ms, err);
    if (code)
        return code;
    if (ms < 3600 * 1000LL || ms > 366 * 86400 * 1000LL)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "a metrics retention of %s is outside 1h .. 366d: charts need at least "
                         "the last hour, and a year of minutes is plenty",
                         duration);
    return aspen_store_setting_set(s, "metrics.retention", duration, err);
}
