/* pg_edit.c — the PostgreSQL backend's edits of a waiting job: its priority, "run now" for a
 * scheduled one, and its inverse "snooze" (one job or every one a filter matches). edit.c decides what is allowed (the same rules as SQLite's); here the row is
 * locked (FOR UPDATE), decided on and written in one transaction, and a job made due announces
 * itself to idle engines (NOTIFY, as every write that makes a job claimable does). */
#include "pg_store.h"

#include <stdlib.h>

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

/* One snooze inside the caller's transaction. The job's row is locked (FOR UPDATE) before its
 * reservation is read: a claim locks the row too (FOR UPDATE SKIP LOCKED) and inserts the claims
 * row in the same transaction, so a claim that came first is committed and seen here (READ
 * COMMITTED: each statement sees what committed before it), and one that comes later skips the
 * locked row or finds it scheduled once the lock is let go. now: the server's timeline. */
static int snooze_one(struct pg_store *s, int64_t id, int64_t delay_ms, int64_t now,
                      bool *left, aspen_store_error *err)
{
    struct store_job_row before, after;
    int64_t reserved_by = 0;
    int code = pg_job_read(s, id, true, &before, err);
    if (!code && before.state == ASPEN_STORE_QUEUED) {
        struct pg_params p = {0};
        pg_p_int(&p, id);
        PGresult *r = pg_exec(s, "aspen_snooze_claim", "SELECT engine FROM claims WHERE job = $1",
                              &p, "reading a job's reservation", err);
        if (!r)
            return err && err->code ? err->code : ASPEN_STORE_EIO;
        reserved_by = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
        PQclear(r);
    }
    aspen_store_job_rule rule = {0}; /* a job's rule never changes: read as it is */
    if (!code && before.state == ASPEN_STORE_QUEUED && !reserved_by)
        code = pg_job_unique_rule(&s->base, id, &rule, err);
    if (!code) {
        code = store_decide_snooze(&before, now, delay_ms, reserved_by, &rule, &after,
                                   store_cmd(&s->base), err);
        /* a waiting job refused: reserved, or its unique rule would let its key go */
        if (left)
            *left = code == ASPEN_STORE_ESTATE && before.state == ASPEN_STORE_QUEUED;
    }
    aspen_store_job_rule_clear(&rule);
    return code ? code : pg_job_write(s, &before, &after, err);
}

int pg_snooze(aspen_store *base, int64_t id, int64_t delay_ms, int64_t now_ms,
              aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = snooze_one(s, id, delay_ms, now_ms + pg_clock_skew_ms(), NULL, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    return pg_tx_commit(s, "snoozing a job", err);
}

struct snooze_ctx {
    int64_t delay_ms, now; /* now: the server's timeline */
};

/* One batch of snooze_matching: counts[0] snoozed, counts[1] left (reserved: an engine is
 * starting it; or kept for its unique key). */
static int snooze_batch(struct pg_store *s, const int64_t *ids, size_t n, void *ctx,
                        int64_t counts[2], aspen_store_error *err)
{
    const struct snooze_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        bool left = false;
        int code = snooze_one(s, ids[i], c->delay_ms, c->now, &left, err);
        if (!code) {
            counts[0]++;
        } else if (code == ASPEN_STORE_ESTATE && s->in_tx &&
                   PQtransactionStatus(s->conn) == PQTRANS_INTRANS) {
            /* decided on this side, the transaction still good: reserved (an engine is
             * starting it) or kept for its unique key is counted; a job that moved on since it
             * was selected (no longer waiting) is left */
            counts[1] += left;
            if (err)
                *err = (aspen_store_error){0};
        } else {
            return code;
        }
    }
    return 0;
}

/* In batches, as cancel_matching (pg_bulk_batches, store_backend.h): a million rows locked in
 * one transaction would hold them, and the job_counts rows every completion updates, for many
 * seconds. */
int pg_snooze_matching(aspen_store *base, const aspen_store_filter *filter, int64_t delay_ms,
                       int64_t now_ms, int64_t *snoozed, int64_t *reserved,
                       aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    unsigned waiting = 1u << ASPEN_STORE_QUEUED | 1u << ASPEN_STORE_SCHEDULED;
    if (filter && filter->states)
        waiting &= filter->states;
    struct snooze_ctx c = {delay_ms, now_ms + pg_clock_skew_ms()};
    int64_t totals[2];
    int code = pg_bulk_batches(s, filter, waiting, "snoozing jobs", snooze_batch, &c, totals, err);
    if (snoozed)
        *snoozed = totals[0];
    if (reserved)
        *reserved = totals[1];
    if (code)
        store_bulk_partial(err, "snoozed", totals[0]);
    return code;
}
