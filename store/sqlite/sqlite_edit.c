/* sqlite_edit.c — the SQLite backend's edits of a waiting job: its priority, and "run now" for a
 * scheduled one. edit.c decides what is allowed (the same rules as PostgreSQL's); here the row is
 * read and written in one BEGIN IMMEDIATE transaction, the state re-checked in the UPDATE. */
#include "sqlite_store.h"

int sq_set_priority(aspen_store *base, int64_t id, int priority, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row row;
    code = job_read(s, id, &row, err);
    if (!code)
        code = store_decide_priority(&row, priority, store_cmd(&s->base), err);
    if (code)
        goto rollback;
    sqlite3_stmt *st = NULL;
    /* the jobs_queue index holds priority: the job moves to its new place in the claim order */
    int rc = sqlite3_prepare_v2(s->db, "UPDATE jobs SET priority = ?2 WHERE id = ?1 AND state = ?3",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        code = store_sqlite_err(s, err, rc, "changing a job's priority");
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, priority);
    sqlite3_bind_text(st, 3, aspen_store_state_name(row.state), -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "changing a job's priority");
        goto rollback;
    }
    return tx_commit(s, "changing a job's priority", err);
rollback:
    tx_rollback(s);
    return code;
}

int sq_run_now(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row before, after;
    code = job_read(s, id, &before, err);
    if (!code)
        code = store_decide_run_now(&before, now_ms, &after, store_cmd(&s->base), err);
    /* queued now, it counts for rules that did not count it scheduled: not beside another job
     * that holds its key (a rule without scheduled), as a retry is not */
    bool held = false;
    aspen_store_retry_skip skip;
    if (!code)
        code = sq_unique_held(s, id, now_ms, &held, &skip, err);
    if (!code && held)
        code = store_run_now_held(&skip, store_cmd(&s->base), err);
    if (!code)
        code = job_write(s, &before, &after, err);
    if (code) {
        tx_rollback(s);
        return code;
    }
    return tx_commit(s, "running a scheduled job now", err);
}
