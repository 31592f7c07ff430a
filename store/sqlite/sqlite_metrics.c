/* sqlite_metrics.c — the SQLite backend's metrics history (schema version 11): writing an engine's
 * per-minute rollups, reading them back for store/metrics.c to merge, pruning old ones in small
 * batches. The statements are prepared per call rather than cached with the hot ones: an engine
 * writes rollups every few seconds, and a reader asks for a chart at most once a second. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t i64(uint64_t v) { return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }

static int prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **st, const char *what,
                   aspen_store_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, what);
    return 0;
}

int sq_metrics_write(aspen_store *base, const aspen_store_rollup *rows, size_t n,
                     aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    static const char *const what = "writing metrics rollups";
    char *run = malloc(STORE_HIST_TEXT_MAX), *wait = malloc(STORE_HIST_TEXT_MAX);
    if (!run || !wait) {
        free(run);
        free(wait);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory %s", what);
    }
    int code = tx_begin(s, err);
    if (code)
        goto out;
    sqlite3_stmt *st = NULL;
    code = prepare(s,
                   "INSERT INTO metrics (minute, engine, type, guest, finished, succeeded, "
                   "failed, timeouts, cancelled, retried, exits, host_calls, run_us_sum, "
                   "wait_us_sum, run_max_us, wait_max_us, run_hist, wait_hist) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                   "?17, ?18) ON CONFLICT (minute, engine, type, guest) DO UPDATE SET "
                   "finished = excluded.finished, succeeded = excluded.succeeded, "
                   "failed = excluded.failed, timeouts = excluded.timeouts, "
                   "cancelled = excluded.cancelled, retried = excluded.retried, "
                   "exits = excluded.exits, host_calls = excluded.host_calls, "
                   "run_us_sum = excluded.run_us_sum, wait_us_sum = excluded.wait_us_sum, "
                   "run_max_us = excluded.run_max_us, wait_max_us = excluded.wait_max_us, "
                   "run_hist = excluded.run_hist, wait_hist = excluded.wait_hist",
                   &st, what, err);
    if (code)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        const aspen_store_rollup *r = &rows[i];
        store_hist_encode(&r->run_us, run, STORE_HIST_TEXT_MAX);
        store_hist_encode(&r->wait_us, wait, STORE_HIST_TEXT_MAX);
        sqlite3_bind_int64(st, 1, r->minute);
        sqlite3_bind_int64(st, 2, r->engine_id);
        sqlite3_bind_text(st, 3, r->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->guest, -1, SQLITE_STATIC);
        const uint64_t v[] = {r->finished,   r->succeeded,  r->failed,     r->timeouts,
                              r->cancelled,  r->retried,    r->exits,      r->host_calls,
                              r->run_us_sum, r->wait_us_sum, r->run_us.max, r->wait_us.max};
        for (int k = 0; k < 12; k++)
            sqlite3_bind_int64(st, 5 + k, i64(v[k]));
        sqlite3_bind_text(st, 17, run, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 18, wait, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            code = store_sqlite_err(s, err, rc, what);
            sqlite3_finalize(st);
            goto rollback;
        }
    }
    sqlite3_finalize(st);
    code = tx_commit(s, what, err);
    goto out;
rollback:
    tx_rollback(s);
out:
    free(run);
    free(wait);
    return code;
}

int sq_metrics_rows(aspen_store *base, int64_t from_minute, int64_t to_minute, const char *guest,
                    const char *type, int (*fn)(const aspen_store_rollup *row, void *user),
                    void *user, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    static const char *const what = "reading metrics rollups";
    aspen_store_rollup *row = malloc(sizeof *row);
    if (!row)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory %s", what);
    sqlite3_stmt *st = NULL;
    int code = prepare(s,
                       "SELECT minute, engine, type, guest, finished, succeeded, failed, "
                       "timeouts, cancelled, retried, exits, host_calls, run_us_sum, wait_us_sum, "
                       "run_max_us, wait_max_us, run_hist, wait_hist FROM metrics "
                       "WHERE minute BETWEEN ?1 AND ?2 AND (?3 IS NULL OR guest = ?3) "
                       "AND (?4 IS NULL OR type = ?4) ORDER BY minute",
                       &st, what, err);
    if (code) {
        free(row);
        return code;
    }
    sqlite3_bind_int64(st, 1, from_minute);
    sqlite3_bind_int64(st, 2, to_minute);
    if (guest)
        sqlite3_bind_text(st, 3, guest, -1, SQLITE_STATIC);
    if (type)
        sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(row, 0, sizeof *row);
        row->minute = sqlite3_column_int64(st, 0);
        row->minutes = 1;
        row->engine_id = sqlite3_column_int64(st, 1);
        store_clean_ascii((const char *)sqlite3_column_text(st, 2), row->type, sizeof row->type);
        store_clean_ascii((const char *)sqlite3_column_text(st, 3), row->guest, sizeof row->guest);
        uint64_t *v[] = {&row->finished,   &row->succeeded,  &row->failed,  &row->timeouts,
                         &row->cancelled,  &row->retried,    &row->exits,   &row->host_calls,
                         &row->run_us_sum, &row->wait_us_sum};
        for (int k = 0; k < 10; k++) {
            int64_t x = sqlite3_column_int64(st, 4 + k);
            *v[k] = x > 0 ? (uint64_t)x : 0;
        }
        int64_t run_max = sqlite3_column_int64(st, 14), wait_max = sqlite3_column_int64(st, 15);
        store_hist_decode(&row->run_us, (const char *)sqlite3_column_text(st, 16),
                          run_max > 0 ? (uint64_t)run_max : 0);
        store_hist_decode(&row->wait_us, (const char *)sqlite3_column_text(st, 17),
                          wait_max > 0 ? (uint64_t)wait_max : 0);
        code = fn(row, user);
        if (code)
            break;
    }
    if (!code && rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, what);
    sqlite3_finalize(st);
    free(row);
    return code;
}

int sq_metrics_prune(aspen_store *base, int64_t before_minute, size_t max_rows, int64_t *deleted,
                     aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    static const char *const what = "pruning old metrics rollups";
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st = NULL;
    code = prepare(s,
                   "DELETE FROM metrics WHERE rowid IN (SELECT rowid FROM metrics "
                   "WHERE minute < ?1 LIMIT ?2)",
                   &st, what, err);
    if (code)
        goto rollback;
    sqlite3_bind_int64(st, 1, before_minute);
    sqlite3_bind_int64(st, 2, max_rows > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max_rows);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, what);
        goto rollback;
    }
    if (deleted)
        *deleted = sqlite3_changes(s->db);
    return tx_commit(s, what, err);
rollback:
    tx_rollback(s);
    return code;
}
