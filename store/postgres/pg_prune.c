/* pg_prune.c — the PostgreSQL backend's batched deletes: retention's prune and delete_jobs, each
 * one statement in one short transaction (the same contracts as sqlite/sqlite_prune.c).
 *
 * Several hosts may prune at once: the batch is chosen FOR UPDATE SKIP LOCKED, so two pruners
 * take disjoint batches instead of one waiting for the other, and a job another transaction is
 * deleting or changing is skipped, not waited for. A batch's jobs go with their logs, attempts and
 * unique keys in the same statement; attempt_data goes by its foreign key (ON DELETE CASCADE). */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the "state, count" rows of a delete into the counts; returns the total. */
static int64_t note_gone(struct pg_store *s, PGresult *r)
{
    int64_t total = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, i, 0));
        int64_t k = pg_get_int(r, i, 1);
        if (state >= 0)
            pg_counts_note(s, (aspen_store_state)state, ASPEN_STORE_STATE_NEW, k);
        total += k;
    }
    if (total)
        s->tx_wrote = true; /* the deletes hide in a CTE under a SELECT */
    return total;
}

/* Every delete takes its ids as an array (= ANY (ARRAY(SELECT ...))), never as a join or IN with
 * the CTE: the statements are prepared, and after five runs PostgreSQL keeps a generic plan, which
 * cannot see LIMIT $3 and guessed a tenth of the table for the batch. With the join the generic
 * plan read the whole jobs table into a hash for every batch (EXPLAIN ANALYZE, 100,000 finished
 * jobs: 42 of 48 ms for a batch of 100; it grows with the table), which held batches at the
 * 16-job floor (docs/BENCHMARKS.md). An array is an index condition on each primary key whatever
 * the estimate: 1,000 jobs in 17 ms on the same table. */
#define GONE_TAIL                                                                                  \
    " l AS (DELETE FROM logs WHERE job = ANY (ARRAY(SELECT id FROM gone))),"                       \
    " a AS (DELETE FROM attempts WHERE job = ANY (ARRAY(SELECT id FROM gone))),"                   \
    " u AS (DELETE FROM job_unique WHERE job = ANY (ARRAY(SELECT id FROM gone)))"                  \
    " SELECT state, count(*) FROM gone GROUP BY state"

static int in_tx(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
                 const char *what, int64_t *deleted, aspen_store_error *err)
{
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r) {
        pg_tx_rollback(s);
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    }
    int64_t k = note_gone(s, r);
    PQclear(r);
    code = pg_tx_commit(s, what, err);
    if (!code)
        *deleted = k;
    return code;
}

int pg_prune(aspen_store *base, aspen_store_state state, int64_t finished_before_ms, size_t max,
             int64_t budget_us, aspen_store_prune_result *out, aspen_store_error *err)
{
    /* One statement cannot stop half-way without aborting its work; the rows it locks are its own
     * (SKIP LOCKED) and a claim never waits for them, so the bound matters less here: the engine
     * keeps the batch short by sizing it from the last batch's time (engine/retention.c). */
    (void)budget_us;
    struct pg_store *s = pgs(base);
    struct pg_params p = {0};
    pg_p_text(&p, aspen_store_state_name(state));
    /* the cut-off is the caller's time: on the server's timeline like every other */
    pg_p_int(&p, finished_before_ms + pg_clock_skew_ms());
    pg_p_int(&p, (int64_t)max);
    int64_t t0 = store_mono_us();
    int code = in_tx(s, "pgp_prune",
                 "WITH victims AS (SELECT id FROM jobs WHERE state = $1 AND finished_at < $2::bigint"
                 " ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED),"
                 " gone AS (DELETE FROM jobs WHERE id = ANY (ARRAY(SELECT id FROM victims))"
                 " RETURNING id, state)," GONE_TAIL,
                 &p, "pruning finished jobs", &out->deleted, err);
    /* a full batch may have left more; a short one found all there were (bar locked rows, which
     * their holder is deleting or changing) */
    if (!code) {
        out->more = out->deleted >= (int64_t)max;
        out->held_us = store_mono_us() - t0; /* its row locks: from BEGIN to COMMIT */
    }
    return code;
}

int pg_delete_jobs(aspen_store *base, const int64_t *ids, size_t n, int64_t *deleted,
                   aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    size_t cap = n * 21 + 3;
    char *arr = malloc(cap);
    if (!arr)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory deleting %zu jobs", n);
    size_t used = 0;
    arr[used++] = '{';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(arr + used, cap - used, "%s%lld", i ? "," : "", (long long)ids[i]);
    snprintf(arr + used, cap - used, "}");
    struct pg_params p = {0};
    pg_p_text(&p, arr);
    int code = in_tx(s, "pgp_delete_jobs",
                     "WITH gone AS (DELETE FROM jobs WHERE id = ANY ($1::bigint[]) AND state IN"
                     " ('succeeded', 'failed', 'cancelled') RETURNING id, state)," GONE_TAIL,
                     &p, "deleting jobs", deleted, err);
    free(arr);
    return code;
}

/* aspen purge's count: the range of jobs_finished the batches read (an index scan; only a
 * moment's figure, as jobs finish and are pruned meanwhile). */
int pg_prune_count(aspen_store *base, aspen_store_state state, int64_t finished_before_ms,
                   int64_t *count, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    struct pg_params p = {0};
    pg_p_text(&p, aspen_store_state_name(state));
    /* the caller's cut-off on the server's timeline, saturated rather than overflowed */
    int64_t skew = pg_clock_skew_ms(), before = finished_before_ms;
    if (skew > 0 && before > INT64_MAX - skew)
        before = INT64_MAX;
    else if (skew < 0 && before < INT64_MIN - skew)
        before = INT64_MIN;
    else
        before += skew;
    pg_p_int(&p, before);
    PGresult *r = pg_exec(s, "pgp_prune_count",
                          "SELECT count(*) FROM jobs WHERE state = $1 AND finished_at < $2::bigint",
                          &p, "counting finished jobs to purge", err);
    if (!r)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    *count = pg_get_int(r, 0, 0);
    PQclear(r);
    return 0;
}
