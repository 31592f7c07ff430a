/* sqlite_edit.c — the SQLite backend's edits of a waiting job: its priority, "run now" for a
 * scheduled one, and its inverse "snooze" (one job or every one a filter matches). edit.c decides what is allowed (the same rules as PostgreSQL's); here the row is
 * read and written in one BEGIN IMMEDIATE transaction, the state re-checked in the UPDATE. */
#include "sqlite_store.h"

#include <stdlib.h>

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

/* One snooze inside the caller's transaction. The reservation is read under the same write lock
 * a claim takes, so a claim either came first (refused here) or finds the job scheduled. */
static int snooze_one(struct sqlite_store *s, int64_t id, int64_t delay_ms, int64_t now_ms,
                      aspen_store_error *err)
{
    struct store_job_row before, after;
    int64_t reserved_by = 0;
    aspen_store_job_rule rule = {0}; /* a job's rule never changes: read as it is */
    int code = job_read(s, id, &before, err);
    if (!code && before.state == ASPEN_STORE_QUEUED)
        code = claim_owner(s, id, &reserved_by, err);
    if (!code && before.state == ASPEN_STORE_QUEUED)
        code = sq_job_unique_rule(&s->base, id, &rule, err);
    if (!code)
        code = store_decide_snooze(&before, now_ms, delay_ms, reserved_by, &rule, &after,
                                   store_cmd(&s->base), err);
    aspen_store_job_rule_clear(&rule);
    return code ? code : job_write(s, &before, &after, err);
}

int sq_snooze(aspen_store *base, int64_t id, int64_t delay_ms, int64_t now_ms,
              aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    code = snooze_one(s, id, delay_ms, now_ms, err);
    if (code) {
        tx_rollback(s);
        return code;
    }
    return tx_commit(s, "snoozing a job", err);
}

struct snooze_ctx {
    int64_t delay_ms, now_ms;
};

/* One batch of snooze_matching: counts[0] snoozed, counts[1] left (reserved: an engine is
 * starting it; or kept for its unique key — store_decide_snooze says why). */
static int snooze_batch(struct sqlite_store *s, const int64_t *ids, size_t n, void *ctx,
                        int64_t counts[2], aspen_store_error *err)
{
    const struct snooze_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        int64_t owner = 0;
        int code = claim_owner(s, ids[i], &owner, err);
        if (!code && owner) {
            counts[1]++;
            continue;
        }
        if (!code)
            code = snooze_one(s, ids[i], c->delay_ms, c->now_ms, err);
        if (!code) {
            counts[0]++;
        } else if (code == ASPEN_STORE_ESTATE) {
            counts[1]++; /* its unique rule would let its key go: left */
            if (err)
                *err = (aspen_store_error){0};
        } else {
            return code;
        }
    }
    return 0;
}

/* In batches, as cancel_matching (sq_bulk_batches, store_backend.h): one transaction for a
 * million jobs would hold the write lock for seconds, and every engine's claims and commits
 * wait for it. */
int sq_snooze_matching(aspen_store *base, const aspen_store_filter *filter, int64_t delay_ms,
                       int64_t now_ms, int64_t *snoozed, int64_t *reserved,
                       aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    unsigned waiting = 1u << ASPEN_STORE_QUEUED | 1u << ASPEN_STORE_SCHEDULED;
    if (filter && filter->states)
        waiting &= filter->states;
    struct snooze_ctx c = {delay_ms, now_ms};
    int64_t totals[2];
    int code = sq_bulk_batches(s, filter, waiting, "snoozing jobs", snooze_batch, &c, totals, err);
    if (snoozed)
        *snoozed = totals[0];
    if (reserved)
        *reserved = totals[1];
    if (code)
        store_bulk_partial(err, "snoozed", totals[0]);
    return code;
}
