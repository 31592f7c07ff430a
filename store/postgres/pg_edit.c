/* pg_edit.c — the PostgreSQL backend's edits of a waiting job: its priority, and "run now" for a
 * scheduled one. edit.c decides what is allowed (the same rules as SQLite's); here the row is
 * locked (FOR UPDATE), decided on and written in one transaction, and a job made due announces
 * itself to idle engines (NOTIFY, as every write that makes a job claimable does). */
#include "pg_store.h"

int pg_set_priority(aspen_store *base, int64_t id, int priority, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row row;
    code = pg_job_read(s, id, true, &row, err);
    if (!code)
        code = store_decide_priority(&row, priority, store_cmd(&s->base), err);
    if (!code) {
        struct pg_params p = {0};
        pg_p_int(&p, id);
        pg_p_int(&p, priority);
        PGresult *r = pg_exec(s, "aspen_set_priority",
                              "UPDATE jobs SET priority = $2::integer WHERE id = $1::bigint", &p,
                              "changing a job's priority", err);
        if (!r)
            code = err && err->code ? err->code : ASPEN_STORE_EIO;
        PQclear(r);
    }
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    return pg_tx_commit(s, "changing a job's priority", err);
}

int pg_run_now(aspen_store *base, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct store_job_row before, after;
    code = pg_job_read(s, id, true, &before, err);
    if (!code) /* "now" on the server's timeline, as every time the backend writes */
        code = store_decide_run_now(&before, now_ms + pg_clock_skew_ms(), &after,
                                    store_cmd(&s->base), err);
    /* not beside another job that holds its key (as SQLite's sq_run_now) */
    bool held = false;
    aspen_store_retry_skip skip;
    if (!code)
        code = pg_unique_held(s, id, now_ms + pg_clock_skew_ms(), now_ms, &held, &skip, err);
    if (!code && held)
        code = store_run_now_held(&skip, store_cmd(&s->base), err);
    if (!code)
        code = pg_job_write(s, &before, &after, err);
    if (!code)
        code = pg_notify_work(s, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    return pg_tx_commit(s, "running a scheduled job now", err);
}
