/* test_store_metrics.c — the metrics history (schema version 11), on both backends.
 *
 * The histogram math first (no database): every value lands in the bucket whose bounds hold it,
 * buckets tile 0 .. 2^40 without gaps, each at most 1/8 of its lower bound wide; p50/p95/p99 of a
 * histogram are within 1/16 of the exact nearest-rank sample (exact below 8 µs) for skewed
 * random samples; histograms split at random and merged give the very counts and percentiles of
 * one histogram of all samples; counts saturate; the stored text round-trips and hostile text
 * (garbage, huge numbers, out-of-range buckets) decodes without harm.
 *
 * Then the store: two engines' rollups of one minute merge (counters add, histograms merge,
 * percentiles from the merged buckets); a rewrite of a row replaces it (absolute values, so a
 * retried write is harmless); points per step with empty steps present; by guest, one guest, one
 * type; pruning in small batches keeps newer rows; retention's default, setting, refusals and a
 * hand-written bad value; hostile guest and type text stored cleaned; bad queries refused; a
 * read-only handle reads and cannot write; a version-10 database gains the table on open. */
#include "helpers.h"
#include "store_backend.h" /* the text form of histograms */

#include <math.h>

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_buckets_tile(void **state)
{
    (void)state;
    assert_int_equal(aspen_store_hist_lower(0), 0);
    for (size_t b = 0; b + 1 < ASPEN_STORE_HIST_BUCKETS; b++) {
        uint64_t lo = aspen_store_hist_lower(b), w = aspen_store_hist_width(b);
        assert_true(w >= 1);
        assert_int_equal(aspen_store_hist_lower(b + 1), lo + w); /* no gap, no overlap */
        if (lo >= 8)
            assert_true(w * 8 <= lo); /* at most 1/8 of its lower bound wide */
        assert_int_equal(aspen_store_hist_bucket(lo), b);
        assert_int_equal(aspen_store_hist_bucket(lo + w - 1), b);
    }
    size_t last = ASPEN_STORE_HIST_BUCKETS - 1;
    assert_int_equal(aspen_store_hist_bucket(ASPEN_STORE_HIST_MAX), last);
    assert_int_equal(aspen_store_hist_lower(last) + aspen_store_hist_width(last) - 1,
                     ASPEN_STORE_HIST_MAX);
    assert_int_equal(aspen_store_hist_bucket(UINT64_MAX), last); /* larger count as the max */
    for (uint64_t v = 0; v < 200000; v += 1 + v / 64) {
        size_t b = aspen_store_hist_bucket(v);
        assert_true(aspen_store_hist_lower(b) <= v);
        assert_true(v < aspen_store_hist_lower(b) + aspen_store_hist_width(b));
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact nearest-rank percentile of sorted samples. */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void check_close(uint64_t est, uint64_t exact)
{
    if (exact < 8) {
        assert_int_equal(est, exact);
        return;
    }
    double rel = fabs((double)est - (double)exact) / (double)exact;
    if (rel > 1.0 / 16)
        fail_msg("estimate %llu vs exact %llu: %.4f > 1/16", (unsigned long long)est,
                 (unsigned long long)exact, rel);
}

static void test_percentile_error_bound(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    aspen_store_hist *h = calloc(1, sizeof *h);
    for (int round = 0; round < 20; round++) {
        memset(h, 0, sizeof *h);
        size_t n = 1 + rnd() % N;
        for (size_t i = 0; i < n; i++) {
            /* log-uniform over 0 .. 2^(10 + round) µs: job run times spread over decades */
            unsigned bits = (unsigned)(rnd() % (10 + round));
            v[i] = (rnd() & ((UINT64_C(1) << bits) - 1)) | (bits ? UINT64_C(1) << (bits - 1) : 0);
            aspen_store_hist_add(h, v[i]);
        }
        assert_int_equal(h->n, n);
        qsort(v, n, sizeof *v, cmp_u64);
        assert_int_equal(h->max, v[n - 1]);
        const double ps[] = {1, 50, 90, 95, 99, 99.9, 100};
        for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
            check_close(aspen_store_hist_percentile(h, ps[k]), exact_pct(v, n, ps[k]));
        assert_int_equal(aspen_store_hist_percentile(h, 100), v[n - 1]); /* clamped to max */
    }
    memset(h, 0, sizeof *h);
    assert_int_equal(aspen_store_hist_percentile(h, 95), 0); /* empty */
    aspen_store_hist_add(h, 5);
    assert_int_equal(aspen_store_hist_percentile(h, 50), 5);
    assert_int_equal(aspen_store_hist_percentile(h, 0), 0); /* no such percentile */
    free(h);
    free(v);
}

static void test_merge_equals_whole(void **state)
{
    (void)state;
    aspen_store_hist *whole = calloc(1, sizeof *whole), *part = calloc(3, sizeof *part),
                     *merged = calloc(1, sizeof *merged);
    enum { N = 30000 };
    uint64_t *v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++) {
        /* three engines of different speeds: percentiles of the parts say little of the whole */
        size_t e = rnd() % 3;
        v[i] = (e == 0 ? 70 : e == 1 ? 5000 : 900000) + rnd() % (e == 0 ? 30 : e == 1 ? 4000 : 100000);
        aspen_store_hist_add(&part[e], v[i]);
        aspen_store_hist_add(whole, v[i]);
    }
    for (int e = 0; e < 3; e++)
        aspen_store_hist_merge(merged, &part[e]);
    assert_memory_equal(merged, whole, sizeof *whole);
    qsort(v, N, sizeof *v, cmp_u64);
    check_close(aspen_store_hist_percentile(merged, 50), exact_pct(v, N, 50));
    check_close(aspen_store_hist_percentile(merged, 95), exact_pct(v, N, 95));
    check_close(aspen_store_hist_percentile(merged, 99), exact_pct(v, N, 99));
    /* saturating: no wrap-around however many are merged */
    aspen_store_hist *big = calloc(1, sizeof *big);
    big->n = big->counts[3] = UINT64_MAX - 1;
    aspen_store_hist_merge(big, whole);
    assert_true(big->n == UINT64_MAX);
    aspen_store_hist_merge(big, big);
    assert_true(big->counts[3] == UINT64_MAX);
    free(big);
    free(v);
    free(whole);
    free(part);
    free(merged);
}

static void test_text_round_trip_and_hostile(void **state)
{
    (void)state;
    aspen_store_hist *h = calloc(1, sizeof *h), *back = calloc(1, sizeof *back);
    char *text = malloc(STORE_HIST_TEXT_MAX);
    assert_int_equal(store_hist_encode(h, text, STORE_HIST_TEXT_MAX), 0);
    assert_string_equal(text, "");
    store_hist_decode(back, text, 0);
    assert_int_equal(back->n, 0);
    for (int i = 0; i < 5000; i++)
        aspen_store_hist_add(h, rnd() % 100000000);
    aspen_store_hist_add(h, ASPEN_STORE_HIST_MAX);
    assert_true(store_hist_encode(h, text, STORE_HIST_TEXT_MAX) > 0);
    store_hist_decode(back, text, h->max);
    assert_memory_equal(back, h, sizeof *h);
    /* every bucket at the largest count fits the documented size */
    for (size_t b = 0; b < ASPEN_STORE_HIST_BUCKETS; b++)
        h->counts[b] = UINT64_MAX;
    assert_true(store_hist_encode(h, text, STORE_HIST_TEXT_MAX) > 0);
    char tiny[8];
    assert_int_equal(store_hist_encode(h, tiny, sizeof tiny), 0); /* does not fit: nothing */
    assert_string_equal(tiny, "");
    /* what another program may have written */
    const char *hostile[] = {"abc", ":", ",,,", "3:", ":4", "-1:5", "304:1", "99999999999:1",
                             "3:99999999999999999999999999", "3:4,,5:x,7:2", "3:4junk,6:1",
                             "3 : 4", "\xff\x01:2", "7:0"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        store_hist_decode(back, hostile[i], UINT64_MAX);
        uint64_t sum = 0;
        for (size_t b = 0; b < ASPEN_STORE_HIST_BUCKETS; b++)
            sum += back->counts[b] > UINT64_MAX - sum ? UINT64_MAX - sum : back->counts[b];
        assert_true(back->n == sum);
        if (back->n) /* max stays inside the top bucket */
            assert_true(back->max < UINT64_C(1) << 40);
        (void)aspen_store_hist_percentile(back, 99);
    }
    store_hist_decode(back, "3:99999999999999999999999999", 0);
    assert_true(back->counts[3] == UINT64_MAX);
    store_hist_decode(back, "3:4,,5:x,7:2", 0);
    assert_int_equal(back->n, 6);
    assert_int_equal(back->counts[3], 4);
    assert_int_equal(back->counts[7], 2);
    assert_int_equal(back->max, 7); /* unknown max: the top of the top bucket */
    store_hist_decode(back, NULL, 0);
    assert_int_equal(back->n, 0);
    free(text);
    free(h);
    free(back);
}

/* ---- the store ---------------------------------------------------------------------------------- */

#define M0 (T0 / 60000) /* the tests' minute */

static aspen_store_rollup *row_of(int64_t minute, int64_t engine, const char *type,
                                  const char *guest, uint64_t finished, uint64_t run_us_each)
{
    aspen_store_rollup *r = calloc(1, sizeof *r);
    r->minute = minute;
    r->engine_id = engine;
    snprintf(r->type, sizeof r->type, "%s", type);
    snprintf(r->guest, sizeof r->guest, "%s", guest);
    r->finished = finished;
    r->succeeded = finished > 1 ? finished - 1 : finished;
    r->failed = finished - r->succeeded;
    r->exits = finished * 3;
    r->host_calls = finished * 2;
    for (uint64_t i = 0; i < finished; i++) {
        aspen_store_hist_add(&r->run_us, run_us_each + i);
        aspen_store_hist_add(&r->wait_us, 1000 * i);
        r->run_us_sum += run_us_each + i;
        r->wait_us_sum += 1000 * i;
    }
    return r;
}

static void write_ok(aspen_store *s, const aspen_store_rollup *r)
{
    aspen_store_error e = {0};
    int rc = aspen_store_metrics_write(s, r, 1, &e);
    if (rc)
        fail_msg("metrics_write: %d %s", rc, e.msg);
}

static void test_engines_merge(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t other = 0;
    assert_int_equal(aspen_store_engine_register(f->s, 2, "h2", 5000, T0, &other, &e), 0);
    aspen_store_rollup *a = row_of(M0, f->engine, "vm_execute", "echo-worker", 100, 70);
    aspen_store_rollup *b = row_of(M0, other, "vm_execute", "echo-worker", 50, 900000);
    aspen_store_rollup *c = row_of(M0 + 2, other, "echo", "", 7, 10);
    write_ok(f->s, a);
    write_ok(f->s, b);
    write_ok(f->s, c);
    aspen_store_metrics_query q = {.from_minute = M0 - 1, .to_minute = M0 + 2};
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 4); /* every minute, empty ones too */
    assert_int_equal(pts[0].minute, M0 - 1);
    assert_int_equal(pts[0].finished, 0);
    assert_int_equal(pts[1].minute, M0);
    assert_int_equal(pts[1].minutes, 1);
    assert_int_equal(pts[1].finished, 150);
    assert_int_equal(pts[1].succeeded, 99 + 49);
    assert_int_equal(pts[1].failed, 2);
    assert_int_equal(pts[1].exits, 450);
    assert_int_equal(pts[1].host_calls, 300);
    assert_int_equal(pts[1].run_us_sum, a->run_us_sum + b->run_us_sum);
    aspen_store_hist whole = a->run_us;
    aspen_store_hist_merge(&whole, &b->run_us);
    assert_memory_equal(&pts[1].run_us, &whole, sizeof whole);
    /* the p95 of the merged minute is the slow engine's, which neither engine's p95 averages to */
    uint64_t p95 = aspen_store_hist_percentile(&pts[1].run_us, 95);
    assert_true(p95 >= 900000 * 15 / 16 && p95 <= 900049 * 17 / 16);
    assert_int_equal(pts[2].finished, 0);
    assert_int_equal(pts[3].finished, 7);
    free(pts);

    /* steps of 3 minutes: the last is cut at the range's end */
    q.step_minutes = 3;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pts[0].minutes, 3);
    assert_int_equal(pts[0].finished, 150);
    assert_int_equal(pts[1].minute, M0 + 2);
    assert_int_equal(pts[1].minutes, 1);
    assert_int_equal(pts[1].finished, 7);
    free(pts);

    /* by guest over the whole range: one point per (type, guest) */
    q.step_minutes = 60;
    q.by_guest = true;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(pts[0].type, "echo");
    assert_string_equal(pts[0].guest, "");
    assert_int_equal(pts[0].finished, 7);
    assert_string_equal(pts[1].type, "vm_execute");
    assert_string_equal(pts[1].guest, "echo-worker");
    assert_int_equal(pts[1].finished, 150);
    assert_int_equal(pts[1].minutes, 4);
    free(pts);

    /* one guest; one type */
    q.by_guest = false;
    q.guest = "echo-worker";
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pts[0].finished, 150);
    free(pts);
    q.guest = NULL;
    q.type = "echo";
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(pts[0].finished, 7);
    free(pts);
    q.type = "nothing";
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pts[0].finished, 0);
    free(pts);
    free(a);
    free(b);
    free(c);
}

static void test_rewrite_replaces(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_rollup *r = row_of(M0, f->engine, "echo", "", 10, 100);
    write_ok(f->s, r);
    write_ok(f->s, r); /* the same write again (a retry): nothing doubles */
    aspen_store_rollup *more = row_of(M0, f->engine, "echo", "", 25, 100);
    write_ok(f->s, more);
    aspen_store_metrics_query q = {.from_minute = M0, .to_minute = M0};
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pts[0].finished, 25);
    assert_memory_equal(&pts[0].run_us, &more->run_us, sizeof more->run_us);
    assert_memory_equal(&pts[0].wait_us, &more->wait_us, sizeof more->wait_us);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM metrics"), 1);
    free(pts);
    free(r);
    free(more);
}

static void test_prune_small_batches(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    for (int m = 0; m < 10; m++) {
        aspen_store_rollup *r = row_of(M0 + m, f->engine, "echo", "", 1, 5);
        write_ok(f->s, r);
        free(r);
    }
    int64_t deleted = -1, total = 0;
    assert_int_equal(aspen_store_metrics_prune(f->s, M0 + 7, 3, &deleted, &e), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM metrics"), 7);
    do {
        assert_int_equal(aspen_store_metrics_prune(f->s, M0 + 7, 3, &deleted, &e), 0);
        total += deleted;
    } while (deleted);
    assert_int_equal(total, 4);
    /* minutes M0+7 .. M0+9 stay */
    assert_int_equal(fx_raw_int(f, "SELECT count(*) FROM metrics"), 3);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT min(minute) FROM metrics");
    assert_int_equal(fx_raw_int(f, sql), M0 + 7);
    assert_int_equal(aspen_store_metrics_prune(f->s, M0 + 100, 0, &deleted, &e), 0);
    assert_int_equal(deleted, 0); /* a batch of nothing deletes nothing */
}

static void test_retention(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    int64_t m = 0;
    assert_int_equal(aspen_store_metrics_retention(f->s, &m, &e), 0);
    assert_int_equal(m, 7 * 24 * 60); /* the default: the console's 7d window whole */
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "72h", &e), 0);
    assert_int_equal(aspen_store_metrics_retention(f->s, &m, &e), 0);
    assert_int_equal(m, 72 * 60);
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "30m", &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "outside 1h .. 366d"));
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "400d", &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "72", &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "outside 1h .. 366d")); /* a bare number is seconds */
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "72x", &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "'72x' is not a duration"));
    assert_int_equal(aspen_store_metrics_set_retention(f->s, "99999999999999999999h", &e),
                     ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics_retention(f->s, &m, &e), 0);
    assert_int_equal(m, 72 * 60); /* refusals changed nothing */
    /* a value written by hand that means nothing: the default, never an error for the engine */
    assert_int_equal(aspen_store_setting_set(f->s, "metrics.retention", "soon", &e), 0);
    assert_int_equal(aspen_store_metrics_retention(f->s, &m, &e), 0);
    assert_int_equal(m, 7 * 24 * 60);
    int64_t ms = 0;
    assert_int_equal(aspen_store_duration_parse("90s", &ms, &e), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(aspen_store_duration_parse("2w", &ms, &e), 0);
    assert_int_equal(ms, 14 * 86400000LL);
    assert_int_equal(aspen_store_duration_parse("", &ms, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_duration_parse("1hh", &ms, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_duration_parse(NULL, &ms, &e), ASPEN_STORE_EINVAL);
    /* past 64 bits of milliseconds it is a duration too long, not "not a duration" (trial 22) */
    assert_int_equal(aspen_store_duration_parse("999999999999d", &ms, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "'999999999999d' is too long a duration: at most"));
    assert_int_equal(aspen_store_duration_parse("99999999999999999999s", &ms, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "is too long a duration"));
    assert_int_equal(aspen_store_duration_parse("106751991167d", &ms, &e), 0);
    assert_int_equal(aspen_store_duration_parse("3x", &ms, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "is not a duration"));
}

static void test_hostile_names(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_rollup *r = row_of(M0, f->engine, "t\x1b[2Jx", "", 2, 5);
    /* a guest name of control bytes, bidi controls, bytes that are not UTF-8, quotes */
    snprintf(r->guest, sizeof r->guest, "g\n\x07\xe2\x80\xae\xff'; DROP TABLE metrics; --");
    write_ok(f->s, r);
    aspen_store_metrics_query q = {.from_minute = M0, .to_minute = M0, .by_guest = true,
                                   .step_minutes = 1};
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pts[0].type, "t?[2Jx");
    assert_string_equal(pts[0].guest, "g\?\?\?\?\?\?'; DROP TABLE metrics; --");
    assert_int_equal(pts[0].finished, 2);
    free(pts);
    /* the cleaned name is what a guest filter matches */
    q.guest = "g\?\?\?\?\?\?'; DROP TABLE metrics; --";
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    free(pts);
    /* a name longer than the row keeps is cut, not refused */
    memset(r->guest, 'x', sizeof r->guest - 1);
    r->guest[sizeof r->guest - 1] = 0;
    write_ok(f->s, r);
    free(r);
    /* garbage histogram text written behind the store's back reads as what parses */
    fx_raw_exec(f, "UPDATE metrics SET run_hist = 'junk,3:4,99999:1', run_max_us = -5");
    q.guest = NULL;
    q.by_guest = false;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pts[0].run_us.n, 8); /* 4 in bucket 3 from each of the two rows */
    assert_int_equal(aspen_store_hist_percentile(&pts[0].run_us, 50), 3);
    free(pts);
}

static void test_bad_queries(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_rollup *pts = (void *)1;
    size_t n = 7;
    aspen_store_metrics_query q = {.from_minute = M0, .to_minute = M0 - 1};
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), ASPEN_STORE_EINVAL);
    assert_null(pts);
    assert_int_equal(n, 0);
    q = (aspen_store_metrics_query){.from_minute = M0 - 20000, .to_minute = M0};
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "larger step"));
    q.step_minutes = 60; /* the same range in hours is fine */
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), 0);
    assert_int_equal(n, 334);
    free(pts);
    q.step_minutes = -1;
    assert_int_equal(aspen_store_metrics(f->s, &q, &pts, &n, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics(NULL, &q, &pts, &n, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics(f->s, NULL, &pts, &n, &e), ASPEN_STORE_EINVAL);
    aspen_store_rollup r = {.minute = M0, .engine_id = 0};
    assert_int_equal(aspen_store_metrics_write(f->s, &r, 1, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics_write(f->s, NULL, 1, &e), ASPEN_STORE_EINVAL);
    assert_int_equal(aspen_store_metrics_write(f->s, NULL, 0, &e), 0);
    assert_int_equal(aspen_store_metrics_write(NULL, &r, 1, &e), ASPEN_STORE_EINVAL);
}

static void test_read_only(void **state)
{
    struct fixture *f = *state;
    aspen_store_error e = {0};
    aspen_store_rollup *r = row_of(M0, f->engine, "echo", "", 3, 5);
    write_ok(f->s, r);
    aspen_store_options ro = {.read_only = true};
    aspen_store *s = open_or_fail(f->path, &ro);
    aspen_store_metrics_query q = {.from_minute = M0, .to_minute = M0};
    aspen_store_rollup *pts = NULL;
    size_t n = 0;
    assert_int_equal(aspen_store_metrics(s, &q, &pts, &n, &e), 0);
    assert_int_equal(pts[0].finished, 3);
    free(pts);
    assert_int_equal(aspen_store_metrics_write(s, r, 1, &e), ASPEN_STORE_EPERM);
    int64_t m = 0;
    assert_int_equal(aspen_store_metrics_retention(s, &m, &e), 0);
    assert_int_equal(m, 7 * 24 * 60);
    aspen_store_close(s);
    free(r);
}

static void test_v10_gains_the_table(void **state)
{
    struct fixture *f = *state;
    aspen_store_close(f->s);
    f->s = NULL;
    if (f->pg_db[0])
        fx_raw_exec(f, "DROP TABLE metrics; UPDATE aspen_schema SET version = 10");
    else
        fx_raw_exec(f, "DROP TABLE metrics; PRAGMA user_version = 10");
    f->s = open_or_fail(f->path, NULL);
    assert_int_equal(f->pg_db[0] ? fx_raw_int(f, "SELECT max(version) FROM aspen_schema")
                                 : fx_raw_int(f, "PRAGMA user_version"),
                     ASPEN_STORE_SCHEMA_VERSION);
    aspen_store_rollup *r = row_of(M0, f->engine, "echo", "", 4, 5);
    write_ok(f->s, r);
    free(r);
    assert_int_equal(fx_raw_int(f, "SELECT sum(finished) FROM metrics"), 4);
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_check(f->s, &e), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest both[] = {
        cmocka_unit_test(test_buckets_tile),
        cmocka_unit_test(test_percentile_error_bound),
        cmocka_unit_test(test_merge_equals_whole),
        cmocka_unit_test(test_text_round_trip_and_hostile),
        T(test_engines_merge),
        T(test_rewrite_replaces),
        T(test_prune_small_batches),
        T(test_retention),
        T(test_hostile_names),
        T(test_bad_queries),
        T(test_read_only),
        T(test_v10_gains_the_table),
    };
    const struct CMUnitTest sqlite_only[] = {0};
    return run_store_tests(__FILE__, both, sizeof both / sizeof both[0], sqlite_only, 0);
}
