/* sqlite_lease.c — the SQLite backend's engine leases and crash recovery.
 *
 * An engine registers (engines row, id never reused) and renews its lease, e.g. every second for
 * five. Jobs it reserves (claims rows) and jobs it started (running, owner) carry its id. If the
 * process dies, the reservations are simply deleted by recovery (those jobs never started: still
 * queued, nothing charged). If the process dies, its lease stops being renewed;
 * the recovery pass — run by any process at start and now and then — finds running jobs whose
 * owner's lease has expired (or whose owner row is gone), counts the lost attempt (attempts row
 * with outcome "recovered"), and puts each job back to queued, or failed when that was its last
 * attempt. A job whose engine's lease is alive is never touched, however long it runs: timeouts
 * are the engine's business. Recovery and renewal both take the write lock, so an engine either
 * renews before recovery (and keeps its jobs) or finds its row gone (ELEASE) and must drop them. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sq_engine_register(aspen_store *base, int64_t pid, const char *host, int64_t lease_ms,
                       int64_t now_ms, int64_t *engine_id, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st = store_stmt(s, ST_ENGINE_INSERT, err);
    if (!st) {
        code = err ? err->code : ASPEN_STORE_EIO;
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_text(st, 2, host ? host : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, now_ms + lease_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "registering an engine");
        goto rollback;
    }
    if (engine_id)
        *engine_id = sqlite3_last_insert_rowid(s->db);
    return tx_commit(s, "registering an engine", err);
rollback:
    tx_rollback(s);
    return code;
}

int sq_engine_renew(aspen_store *base, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    if (s->read_only)
        return tx_begin(s, err); /* the read-only message */
    sqlite3_stmt *st = store_stmt(s, ST_ENGINE_RENEW, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, engine_id);
    sqlite3_bind_int64(st, 2, now_ms + lease_ms);
    int rc = sqlite3_step(st), code = 0;
    if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "renewing an engine's lease");
    else if (sqlite3_changes(s->db) == 0)
        code = store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld's lease is gone: it expired and another process recovered "
                         "its jobs. Stop the jobs it holds (their results would not be recorded) "
                         "and register again",
                         (long long)engine_id);
    sqlite3_reset(st);
    return code;
}

int sq_engine_unregister(aspen_store *base, int64_t engine_id, int64_t now_ms, int64_t *released,
                         aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    (void)now_ms;
    if (released)
        *released = 0;
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = store_release_all(s, engine_id, released, err);
    if (code)
        goto rollback;
    sqlite3_stmt *st = store_stmt(s, ST_CLAIMS_OF_ENGINE_DELETE, err);
    if (!st) {
        code = err ? err->code : ASPEN_STORE_EIO;
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, engine_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "giving back an engine's reserved jobs");
        goto rollback;
    }
    st = store_stmt(s, ST_ENGINE_DELETE, err);
    if (!st) {
        code = err ? err->code : ASPEN_STORE_EIO;
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, engine_id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "unregistering an engine");
        goto rollback;
    }
    return tx_commit(s, "unregistering an engine", err);
rollback:
    tx_rollback(s);
    return code;
}

int sq_engine_heartbeat(aspen_store *base, int64_t engine_id, int64_t lease_ms,
                        const aspen_store_engine_figures *f, const char *version, const char *slots,
                        int64_t now_ms, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    if (s->read_only)
        return tx_begin(s, err); /* the read-only message */
    sqlite3_stmt *st = store_stmt(s, ST_ENGINE_HEARTBEAT, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, engine_id);
    sqlite3_bind_int64(st, 2, now_ms + lease_ms);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, f->workers);
    sqlite3_bind_int64(st, 5, f->busy);
    sqlite3_bind_int64(st, 6, f->warm_vms);
    sqlite3_bind_int64(st, 7, f->rss_bytes);
    sqlite3_bind_int64(st, 8, (int64_t)(f->jobs_per_s * 1000.0 + 0.5));
    sqlite3_bind_text(st, 9, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, slots, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, f->queues ? f->queues : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), code = 0;
    if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "writing an engine's heartbeat");
    else if (sqlite3_changes(s->db) == 0)
        code = store_err(err, ASPEN_STORE_ELEASE,
                         "engine %lld is not registered (never, or its lease expired and another "
                         "process recovered its jobs): its heartbeat was not written. Stop the "
                         "jobs it holds and register again",
                         (long long)engine_id);
    sqlite3_reset(st);
    return code;
}

int sq_engines(aspen_store *base, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
               aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_ENGINES_LIST, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    aspen_store_engine_info *list = NULL;
    size_t count = 0, cap = 0;
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_engine_info *grown = store_grow(list, &cap, count, sizeof *list);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing engines");
            goto free_list;
        }
        list = grown;
        aspen_store_engine_info *e = &list[count++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(st, 0);
        e->pid = sqlite3_column_int64(st, 1);
        snprintf(e->host, sizeof e->host, "%s", (const char *)sqlite3_column_text(st, 2));
        e->started_at_ms = sqlite3_column_int64(st, 3);
        e->lease_until_ms = sqlite3_column_int64(st, 4);
        e->running = sqlite3_column_int64(st, 5);
        e->heartbeat_ms = sqlite3_column_int64(st, 6);
        e->heartbeat_age_ms = now_ms - (e->heartbeat_ms ? e->heartbeat_ms : e->started_at_ms);
        e->workers = sqlite3_column_int64(st, 7);
        e->busy = sqlite3_column_int64(st, 8);
        e->warm_vms = sqlite3_column_int64(st, 9);
        e->rss_bytes = sqlite3_column_int64(st, 10);
        e->jobs_per_s = (double)sqlite3_column_int64(st, 11) / 1000.0;
        store_clean_ascii((const char *)sqlite3_column_text(st, 12), e->version,
                          sizeof e->version);
        store_engine_slots_decode(e, (const char *)sqlite3_column_text(st, 13));
        const char *q = (const char *)sqlite3_column_text(st, 14);
        snprintf(e->queues, sizeof e->queues, "%s", q ? q : "");
    }
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "listing engines");
        goto free_list;
    }
    sqlite3_reset(st);
    *out = list;
    *n = count;
    return 0;
free_list:
    sqlite3_reset(st);
    free(list);
    return code;
}

/* Collects the ids (and owners) of running jobs without a live lease. */
static int find_orphans(struct sqlite_store *s, int64_t cutoff_ms, int64_t self_engine,
                        int64_t **ids, int64_t **owners, size_t *n, aspen_store_error *err)
{
    *ids = NULL;
    *owners = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_ORPHANS, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int64(st, 2, self_engine);
    size_t cap = 0;
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *gi = realloc(*ids, cap * sizeof **ids);
            if (gi)
                *ids = gi;
            int64_t *go = realloc(*owners, cap * sizeof **owners);
            if (go)
                *owners = go;
            if (!gi || !go) {
                code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory during recovery");
                goto free_lists;
            }
        }
        (*ids)[*n] = sqlite3_column_int64(st, 0);
        (*owners)[*n] = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "finding jobs of dead engines");
        goto free_lists;
    }
    sqlite3_reset(st);
    return 0;
free_lists:
    sqlite3_reset(st);
    free(*ids);
    free(*owners);
    *ids = *owners = NULL;
    *n = 0;
    return code;
}

/* "engine 3 (pid 1234 on host) stopped renewing its lease (expired 8000 ms before recovery)". */
static void describe_owner(struct sqlite_store *s, int64_t owner, int64_t now_ms, char *buf,
                           size_t size)
{
    sqlite3_stmt *st = store_stmt(s, ST_ENGINE_GET, NULL);
    if (st && owner) {
        sqlite3_bind_int64(st, 1, owner);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(buf, size,
                     "engine %lld (pid %lld on %s) stopped renewing its lease (expired %lld ms "
                     "before recovery)",
                     (long long)owner, (long long)sqlite3_column_int64(st, 0),
                     (const char *)sqlite3_column_text(st, 1),
                     (long long)(now_ms - sqlite3_column_int64(st, 2)));
            sqlite3_reset(st);
            return;
        }
        sqlite3_reset(st);
    }
    snprintf(buf, size, "engine %lld is gone (no lease)", (long long)owner);
}

static int recover_one(struct sqlite_store *s, int64_t id, int64_t owner, int64_t now_ms,
                       aspen_store_recovery *report, aspen_store_error *err)
{
    struct store_job_row before, after;
    int code = job_read(s, id, &before, err);
    if (code)
        return code;
    char why[256], msg[384];
    describe_owner(s, owner, now_ms, why, sizeof why);
    after = before;
    after.owner = 0;
    after.set_error = true;
    after.error = msg;
    if (before.cancel_requested) {
        after.state = ASPEN_STORE_CANCELLED;
        after.finished_at = now_ms;
        after.cancel_requested = false;
        snprintf(msg, sizeof msg, "cancelled: attempt %d was lost when %s", before.attempts, why);
        report->cancelled++;
    } else if (before.attempts < before.max_attempts) {
        after.state = ASPEN_STORE_QUEUED; /* keeps its run_at: back at the front of its priority */
        snprintf(msg, sizeof msg, "attempt %d lost: %s; queued again", before.attempts, why);
        report->requeued++;
    } else {
        after.state = ASPEN_STORE_FAILED;
        after.finished_at = now_ms;
        snprintf(msg, sizeof msg, "attempt %d of %d lost: %s; out of attempts", before.attempts,
                 before.max_attempts, why);
        report->failed++;
    }
    code = aspen_store_check_transition(id, before.state, after.state, err);
    if (code)
        return code;
    code = store_insert_attempt(s, id, before.attempts, owner, before.started_at, now_ms, NULL,
                                "recovered", msg, true, err);
    if (code)
        return code;
    return job_write(s, &before, &after, err);
}

int sq_recover(aspen_store *base, int64_t self_engine, int64_t min_expired_ms, int64_t now_ms,
               aspen_store_recovery *report, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    aspen_store_recovery r = {0};
    int64_t *ids = NULL, *owners = NULL;
    size_t n = 0;
    int code = tx_begin(s, err);
    if (code)
        return code;
    /* Engines expired before the cut-off, never the caller's own (aspen_store_recover_others). */
    int64_t cutoff = min_expired_ms > 0 && now_ms > INT64_MIN + min_expired_ms
                         ? now_ms - min_expired_ms
                         : now_ms;
    code = find_orphans(s, cutoff, self_engine, &ids, &owners, &n, err);
    if (code)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        code = recover_one(s, ids[i], owners[i], now_ms, &r, err);
        if (code)
            goto free_lists;
    }
    /* Reservations of dead engines: those jobs never started, so they are simply queued again
     * (they never stopped being queued) and no attempt is charged. */
    sqlite3_stmt *st = store_stmt(s, ST_CLAIMS_ORPHANS_DELETE, err);
    if (!st) {
        code = err ? err->code : ASPEN_STORE_EIO;
        goto free_lists;
    }
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, self_engine);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "giving back reservations of dead engines");
        goto free_lists;
    }
    r.unreserved = sqlite3_changes(s->db);
    st = store_stmt(s, ST_ENGINES_EXPIRED_DELETE, err);
    if (!st) {
        code = err ? err->code : ASPEN_STORE_EIO;
        goto free_lists;
    }
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, self_engine);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "removing expired engines");
        goto free_lists;
    }
    r.engines_removed = sqlite3_changes(s->db);
    free(ids);
    free(owners);
    code = tx_commit(s, "committing recovery", err);
    if (!code && report)
        *report = r;
    return code;
free_lists:
    free(ids);
    free(owners);
rollback:
    tx_rollback(s);
    return code;
}

int sq_cancel_requests(aspen_store *base, int64_t engine_id, int64_t **ids, size_t *n,
                       aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_CANCEL_REQUESTS, err);
    if (!st)
        return err ? err->code : ASPEN_STORE_EIO;
    sqlite3_bind_int64(st, 1, engine_id);
    size_t cap = 0;
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *grown = store_grow(*ids, &cap, *n, sizeof **ids);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading cancel requests");
            goto free_ids;
        }
        *ids = grown;
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "reading cancel requests");
        goto free_ids;
    }
    sqlite3_reset(st);
    return 0;
free_ids:
    sqlite3_reset(st);
    free(*ids);
    *ids = NULL;
    *n = 0;
    return code;
}
