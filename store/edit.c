/* edit.c — what an operator may change about a waiting job, decided once for every backend: its
 * priority (while it waits: queued or scheduled), and "run now" for a scheduled one (its run_at
 * becomes now and it is queued, the table's scheduled → queued edge). The backends read the row,
 * ask here, and write (sqlite/sqlite_edit.c, postgres/pg_edit.c).
 */
#include "store_backend.h"

int store_decide_priority(const struct store_job_row *row, int priority, aspen_store_error *err)
{
    (void)priority; /* its range is checked before any backend (api.c) */
    if (row->state == ASPEN_STORE_QUEUED || row->state == ASPEN_STORE_SCHEDULED)
        return 0;
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: only a waiting job's priority can change (queued or "
                     "scheduled)%s",
                     (long long)row->id, aspen_store_state_name(row->state),
                     aspen_store_state_is_final(row->state)
                         ? "; to run it again with another priority: aspen rerun, then aspen priority"
                         : "");
}

int store_decide_run_now(const struct store_job_row *before, int64_t now, struct store_job_row *after,
                         aspen_store_error *err)
{
    if (before->state == ASPEN_STORE_SCHEDULED) {
        *after = *before;
        after->state = ASPEN_STORE_QUEUED;
        after->run_at = now;
        return 0;
    }
    if (before->state == ASPEN_STORE_QUEUED)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is already queued: it runs as soon as a worker is free (a higher "
                         "priority puts it first: aspen priority %lld N)",
                         (long long)before->id, (long long)before->id);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: only a scheduled job (waiting for its time or a retry's "
                     "backoff) can be run now",
                     (long long)before->id, aspen_store_state_name(before->state));
}
