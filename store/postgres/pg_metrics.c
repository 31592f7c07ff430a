/* pg_metrics.c — the PostgreSQL backend's metrics history (schema version 11): an engine's
 * per-minute rollups written with one upsert per row in one transaction, read back for
 * store/metrics.c to merge, and old ones pruned in small batches (ctid, LIMIT). Each engine writes
 * only rows of its own id, so hosts never contend for a rollup row. Minutes are the writing
 * host's clock (docs/STORE.md, "Metrics history"). */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t i64(uint64_t v) { return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }

static int code_of(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

int pg_metrics_write(aspen_store *base, const aspen_store_rollup *rows, size_t n,
                     aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    static const char *const what = "writing metrics rollups";
    char *run = malloc(STORE_HIST_TEXT_MAX), *wait = malloc(STORE_HIST_TEXT_MAX);
    if (!run || !wait) {
        free(run);
        free(wait);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory %s", what);
    }
    int code = pg_tx_begin(s, err);
    if (code)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const aspen_store_rollup *r = &rows[i];
        store_hist_encode(&r->run_us, run, STORE_HIST_TEXT_MAX);
        store_hist_encode(&r->wait_us, wait, STORE_HIST_TEXT_MAX);
        struct pg_params p = {0};
        pg_p_int(&p, r->minute);
        pg_p_int(&p, r->engine_id);
        pg_p_text(&p, r->type);
        pg_p_text(&p, r->guest);
        const uint64_t v[] = {r->finished,   r->succeeded,  r->failed,     r->timeouts,
                              r->cancelled,  r->retried,    r->exits,      r->host_calls,
                              r->run_us_sum, r->wait_us_sum, r->run_us.max, r->wait_us.max};
        for (int k = 0; k < 12; k++)
            pg_p_int(&p, i64(v[k]));
        pg_p_text(&p, run);
        pg_p_text(&p, wait);
        PGresult *res = pg_exec(
            s, "pgm_write",
            "INSERT INTO metrics (minute, engine, type, guest, finished, succeeded, failed, "
            "timeouts, cancelled, retried, exits, host_calls, run_us_sum, wait_us_sum, "
            "run_max_us, wait_max_us, run_hist, wait_hist) VALUES ($1::bigint, $2::bigint, $3, "
            "$4, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9::bigint, $10::bigint, "
            "$11::bigint, $12::bigint, $13::bigint, $14::bigint, $15::bigint, $16::bigint, $17, "
            "$18) ON CONFLICT (minute, engine, type, guest) DO UPDATE SET "
            "finished = excluded.finished, succeeded = excluded.succeeded, "
            "failed = excluded.failed, timeouts = excluded.timeouts, "
            "cancelled = excluded.cancelled, retried = excluded.retried, exits = excluded.exits, "
            "host_calls = excluded.host_calls, run_us_sum = excluded.run_us_sum, "
            "wait_us_sum = excluded.wait_us_sum, run_max_us = excluded.run_max_us, "
            "wait_max_us = excluded.wait_max_us, run_hist = excluded.run_hist, "
            "wait_hist = excluded.wait_hist",
            &p, what, err);
        if (!res) {
            code = code_of(err);
            pg_tx_rollback(s);
            goto out;
        }
        PQclear(res);
    }
    code = pg_tx_commit(s, what, err);
out:
    free(run);
    free(wait);
    return code;
}

static uint64_t u64_at(const PGresult *r, int row, int col)
{
    int64_t x = pg_get_int(r, row, col);
    return x > 0 ? (uint64_t)x : 0;
}

int pg_metrics_rows(aspen_store *base, int64_t from_minute, int64_t to_minute, const char *guest,
                    const char *type, int (*fn)(const aspen_store_rollup *row, void *user),
                    void *user, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    static const char *const what = "reading metrics rollups";
    struct pg_params p = {0};
    pg_p_int(&p, from_minute);
    pg_p_int(&p, to_minute);
    pg_p_text(&p, guest);
    pg_p_text(&p, type);
    PGresult *r = pg_exec(s, "pgm_rows",
                          "SELECT minute, engine, type, guest, finished, succeeded, failed, "
                          "timeouts, cancelled, retried, exits, host_calls, run_us_sum, "
                          "wait_us_sum, run_max_us, wait_max_us, run_hist, wait_hist FROM metrics "
                          "WHERE minute BETWEEN $1::bigint AND $2::bigint "
                          "AND ($3::text IS NULL OR guest = $3::text) "
                          "AND ($4::text IS NULL OR type = $4::text) ORDER BY minute",
                          &p, what, err);
    if (!r)
        return code_of(err);
    aspen_store_rollup *row = malloc(sizeof *row);
    if (!row) {
        PQclear(r);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory %s", what);
    }
    int code = 0;
    for (int i = 0; i < PQntuples(r) && !code; i++) {
        memset(row, 0, sizeof *row);
        row->minute = pg_get_int(r, i, 0);
        row->minutes = 1;
        row->engine_id = pg_get_int(r, i, 1);
        store_clean_ascii(PQgetvalue(r, i, 2), row->type, sizeof row->type);
        store_clean_ascii(PQgetvalue(r, i, 3), row->guest, sizeof row->guest);
        uint64_t *v[] = {&row->finished,   &row->succeeded,  &row->failed,  &row->timeouts,
                         &row->cancelled,  &row->retried,    &row->exits,   &row->host_calls,
                         &row->run_us_sum, &row->wait_us_sum};
        for (int k = 0; k < 10; k++)
            *v[k] = u64_at(r, i, 4 + k);
        store_hist_decode(&row->run_us, PQgetvalue(r, i, 16), u64_at(r, i, 14));
        store_hist_decode(&row->wait_us, PQgetvalue(r, i, 17), u64_at(r, i, 15));
        code = fn(row, user);
    }
    free(row);
    PQclear(r);
    return code;
}

int pg_metrics_prune(aspen_store *base, int64_t before_minute, size_t max_rows, int64_t *deleted,
                     aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    static const char *const what = "pruning old metrics rollups";
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_int(&p, before_minute);
    pg_p_int(&p, max_rows > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max_rows);
    PGresult *r = pg_exec(s, "pgm_prune",
                          "DELETE FROM metrics WHERE ctid IN (SELECT ctid FROM metrics "
                          "WHERE minute < $1::bigint LIMIT $2::bigint)",
                          &p, what, err);
    if (!r) {
        code = code_of(err);
        pg_tx_rollback(s);
        return code;
    }
    if (deleted)
        *deleted = atoll(PQcmdTuples(r));
    PQclear(r);
    return pg_tx_commit(s, what, err);
}
