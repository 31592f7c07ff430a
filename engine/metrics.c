/* engine/metrics.c — the engine's half of the metrics history (issue 9): the store thread sums
 * every attempt it commits into one rollup per (minute, job type, guest) in memory, writes the
 * changed ones every ENG_METRICS_FLUSH_MS (and at stop) in one small transaction of its own, and
 * once a minute prunes rollups older than the database's retention, a batch at a time.
 *
 * Why here and like this: the store thread is the engine's only writer and already holds every
 * finished attempt after its group commit, so the sums cost a few additions per job and no lock;
 * the writes are one transaction every few seconds, not one per group, so `aspen bench engine`
 * does not notice them. A row's values are absolute (everything this engine finished in that
 * minute), so a write that fails is simply made again later, and a retried one doubles nothing.
 * The minute is the commit's (the engine host's clock when the attempt was written, at most a
 * group commit after it ended), so minutes only move forward here and a row whose minute has
 * passed is complete once written: it is dropped from memory then.
 *
 * Only the store thread calls these (no locking). Hostile input: guests and types are named by
 * submitters, so at most ENG_METRICS_MAX_ROWS rows are held; past that, attempts are summed under
 * the type and guest "(other)". */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENG_METRICS_FLUSH_MS 5000
#define ENG_METRICS_PRUNE_MS 60000
#define ENG_METRICS_PRUNE_BATCH 500
#define ENG_METRICS_MAX_ROWS 512

struct eng_metrics {
    aspen_store_rollup *rows;
    bool *dirty;
    size_t n, cap;
    size_t last; /* the row the previous attempt went to: consecutive jobs are mostly alike */
    int64_t engine_id;
    int64_t next_flush, next_prune; /* mono ms */
    int fails;                      /* writes failed in a row */
};

struct eng_metrics *eng_metrics_new(void)
{
    struct eng_metrics *m = calloc(1, sizeof *m);
    if (m)
        m->next_prune = eng_mono_ms() + 1000; /* soon after start, not in its first claims */
    return m;
}

void eng_metrics_free(struct eng_metrics *m)
{
    if (!m)
        return;
    free(m->rows);
    free(m->dirty);
    free(m);
}

static aspen_store_rollup *row_for(struct eng_metrics *m, int64_t minute, const char *type,
                                   const char *guest)
{
    if (m->last < m->n) {
        aspen_store_rollup *r = &m->rows[m->last];
        if (r->minute == minute && strcmp(r->type, type) == 0 && strcmp(r->guest, guest) == 0)
            return r;
    }
    for (size_t i = 0; i < m->n; i++) {
        aspen_store_rollup *r = &m->rows[i];
        if (r->minute == minute && strcmp(r->type, type) == 0 && strcmp(r->guest, guest) == 0) {
            m->last = i;
            return r;
        }
    }
    if (m->n >= ENG_METRICS_MAX_ROWS && strcmp(type, "(other)") != 0)
        return row_for(m, minute, "(other)", "(other)");
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        if (cap > ENG_METRICS_MAX_ROWS + 1)
            cap = ENG_METRICS_MAX_ROWS + 1;
        if (cap <= m->n)
            return NULL;
        aspen_store_rollup *rows = realloc(m->rows, cap * sizeof *rows);
        if (!rows)
            return NULL;
        m->rows = rows;
        bool *dirty = realloc(m->dirty, cap * sizeof *dirty);
        if (!dirty)
            return NULL;
        m->dirty = dirty;
        m->cap = cap;
    }
    aspen_store_rollup *r = &m->rows[m->n];
    memset(r, 0, sizeof *r);
    r->minute = minute;
    r->minutes = 1;
    snprintf(r->type, sizeof r->type, "%s", type);
    snprintf(r->guest, sizeof r->guest, "%s", guest);
    m->dirty[m->n] = false;
    m->last = m->n++;
    return r;
}

static uint64_t sum(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* Writes the rows that changed; drops the ones of minutes before `minute` once written. */
static int flush(aspen_engine *eng, struct eng_metrics *m, int64_t minute)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->dirty[i])
            k++;
    if (k) {
        aspen_store_rollup *out = malloc(k * sizeof *out);
        if (!out)
            return ASPEN_STORE_ENOMEM;
        k = 0;
        for (size_t i = 0; i < m->n; i++)
            if (m->dirty[i]) {
                out[k] = m->rows[i];
                out[k++].engine_id = m->engine_id;
            }
        aspen_store_error se = {0};
        int rc = aspen_store_metrics_write(eng->commit_store, out, k, &se);
        free(out);
        if (rc) {
            /* kept and written again later; said once, not every five seconds */
            bool lost = eng_outage(eng, "writing the metrics history", &se, 5000);
            if (m->fails++ == 0 && !lost) {
                aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1,
                                         .outcome = -1, .message = se.msg};
                eng_emit(eng, &ev);
            }
            return rc;
        }
        m->fails = 0;
        memset(m->dirty, 0, m->n * sizeof *m->dirty);
    }
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->rows[i].minute >= minute) {
            if (w != i) {
                m->rows[w] = m->rows[i];
                m->dirty[w] = m->dirty[i];
            }
            w++;
        }
    m->n = w;
    m->last = 0;
    return 0;
}

void eng_metrics_note(aspen_engine *eng, struct eng_metrics *m, const struct eng_done *d,
                      aspen_store_state state, int64_t engine_id, int64_t now_ms)
{
    if (!m)
        return;
    if (engine_id != m->engine_id) {
        /* registered again after a lost lease: what the old id summed stays under the old id */
        if (m->engine_id)
            flush(eng, m, INT64_MAX);
        m->n = 0;
        m->engine_id = engine_id;
    }
    aspen_store_rollup *r = row_for(m, now_ms / 60000, d->type, d->guest);
    if (!r)
        return; /* out of memory: this attempt is not counted, nothing else is lost */
    r->finished = sum(r->finished, 1);
    switch (d->outcome) {
    case ASPEN_STORE_OUTCOME_SUCCESS: r->succeeded = sum(r->succeeded, 1); break;
    case ASPEN_STORE_OUTCOME_TIMEOUT:
        r->timeouts = sum(r->timeouts, 1);
        r->failed = sum(r->failed, 1);
        break;
    case ASPEN_STORE_OUTCOME_CANCELLED: r->cancelled = sum(r->cancelled, 1); break;
    default: r->failed = sum(r->failed, 1); break;
    }
    if (state == ASPEN_STORE_QUEUED || state == ASPEN_STORE_SCHEDULED)
        r->retried = sum(r->retried, 1);
    r->exits = sum(r->exits, d->stats.exits);
    r->host_calls = sum(r->host_calls, d->stats.host_calls);
    uint64_t run = d->stats.wall_us > 0 ? (uint64_t)d->stats.wall_us : 0;
    uint64_t wait = d->wait_ms > 0 ? (uint64_t)d->wait_ms * 1000 : 0;
    r->run_us_sum = sum(r->run_us_sum, run);
    r->wait_us_sum = sum(r->wait_us_sum, wait);
    aspen_store_hist_add(&r->run_us, run);
    aspen_store_hist_add(&r->wait_us, wait);
    m->dirty[r - m->rows] = true;
}

void eng_metrics_tick(aspen_engine *eng, struct eng_metrics *m, bool force)
{
    if (!m)
        return;
    int64_t mono = eng_mono_ms();
    if (force || mono >= m->next_flush) {
        m->next_flush = mono + ENG_METRICS_FLUSH_MS;
        if (m->engine_id)
            flush(eng, m, force ? INT64_MAX : aspen_store_now_ms() / 60000);
    }
    if (force || mono < m->next_prune)
        return;
    m->next_prune = mono + ENG_METRICS_PRUNE_MS;
    aspen_store_error se = {0};
    int64_t keep = 0, deleted = 0;
    if (aspen_store_metrics_retention(eng->commit_store, &keep, &se) != 0)
        return;
    int64_t before = aspen_store_now_ms() / 60000 - keep;
    if (aspen_store_metrics_prune(eng->commit_store, before, ENG_METRICS_PRUNE_BATCH, &deleted,
                                  &se) == 0 &&
        deleted == ENG_METRICS_PRUNE_BATCH)
        m->next_prune = mono + ENG_METRICS_FLUSH_MS; /* more to go: the next batch soon */
}
