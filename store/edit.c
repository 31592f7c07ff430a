/* edit.c — what an operator may change about a waiting job, decided once for every backend: its
 * priority (while it waits: queued or scheduled), and "run now" for a scheduled one (its run_at
 * becomes now and it is queued, the table's scheduled → queued edge), and an operator's retry (a
 * failed job queued due now; a scheduled one is refused, pointing at run-now, instead of being
 * queued early through that same edge), and its inverse, "snooze" (a waiting job put off by a
 * delay from when it would run — now, or a scheduled job's later run_at — and scheduled, the
 * table's queued → scheduled edge, or a scheduled one's run_at moved). The backends read the row, ask here, and write
 * (sqlite/sqlite_edit.c, postgres/pg_edit.c; retry in sqlite_jobs.c, pg_jobs.c).
 */
#include "store_backend.h"

#include <stdint.h>
#include <stdio.h>

int store_decide_priority(const struct store_job_row *row, int priority, const char *cmd,
                          aspen_store_error *err)
{
    (void)priority; /* its range is checked before any backend (api.c) */
    if (row->state == ASPEN_STORE_QUEUED || row->state == ASPEN_STORE_SCHEDULED)
        return 0;
    char again[400] = "";
    if (aspen_store_state_is_final(row->state))
        snprintf(again, sizeof again,
                 "; to run it again with another priority: aspen rerun%s, then aspen priority%s",
                 cmd, cmd);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: only a waiting job's priority can change (queued or "
                     "scheduled)%s",
                     (long long)row->id, aspen_store_state_name(row->state), again);
}

int store_decide_run_now(const struct store_job_row *before, int64_t now, struct store_job_row *after,
                         const char *cmd, aspen_store_error *err)
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
                         "priority puts it first: aspen priority %lld N%s)",
                         (long long)before->id, (long long)before->id, cmd);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: only a scheduled job (waiting for its time or a retry's "
                     "backoff) can be run now",
                     (long long)before->id, aspen_store_state_name(before->state));
}

int store_decide_snooze(const struct store_job_row *before, int64_t now, int64_t delay_ms,
                        int64_t reserved_by, const aspen_store_job_rule *rule,
                        struct store_job_row *after, const char *cmd, aspen_store_error *err)
{
    const long long id = (long long)before->id;
    const unsigned q = 1u << ASPEN_STORE_QUEUED, sc = 1u << ASPEN_STORE_SCHEDULED;
    if (before->state == ASPEN_STORE_QUEUED && rule && rule->key && rule->states &&
        (rule->states & q) && !(rule->states & sc)) {
        /* its rule counts it while queued, not while scheduled: snoozed, it would let go of its
         * key and a second job of it could be submitted meanwhile */
        char states[96];
        aspen_store_states_format(rule->states, states, sizeof states);
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld holds unique key '%.200s' only while %s (its rule's states), "
                         "not scheduled: snoozed, it would give the key up; nothing changed",
                         id, rule->key, states);
    }
    if (before->state == ASPEN_STORE_QUEUED && reserved_by) {
        /* A reservation is not a start mark: the engine's worker may already be running it, and
         * its start is written by the next group commit. Taking the reservation away (as cancel
         * does) would then leave the job both run and snoozed, so the claim wins here. */
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is being started by engine %lld (it was reserved a moment "
                         "ago): it runs now and can no longer be snoozed; nothing changed (aspen "
                         "cancel %lld%s stops it)",
                         id, (long long)reserved_by, id, cmd);
    }
    if (before->state == ASPEN_STORE_QUEUED || before->state == ASPEN_STORE_SCHEDULED) {
        /* Only when it runs moves: attempts, max attempts, priority, queue and unique key stay
         * (a unique job keeps holding its key: scheduled counts as queued does by default). */
        /* Put off by the delay from when it would run: now for a queued (or overdue) job, its
         * run_at for one due later — a snooze never brings a job earlier (10m on a job due in an
         * hour would have made it due in 10 minutes). */
        int64_t from = before->run_at > now ? before->run_at : now;
        if (from > INT64_MAX - delay_ms)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "job %lld is due too far ahead to put it off further; nothing changed",
                             id);
        *after = *before;
        after->state = ASPEN_STORE_SCHEDULED;
        after->run_at = from + delay_ms;
        after->field_update = before->state == ASPEN_STORE_SCHEDULED; /* same state, new run_at */
        return 0;
    }
    if (before->state == ASPEN_STORE_RUNNING)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is running: it cannot be snoozed, it runs now; nothing changed "
                         "(aspen cancel %lld%s stops it)",
                         id, id, cmd);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: it has finished, so there is nothing to snooze; nothing "
                     "changed (aspen rerun %lld%s runs it again as a new job)",
                     id, aspen_store_state_name(before->state), id, cmd);
}

int store_decide_retry(const struct store_job_row *before, int64_t now, struct store_job_row *after,
                       const char *cmd, aspen_store_error *err)
{
    const long long id = (long long)before->id;
    switch (before->state) {
    case ASPEN_STORE_FAILED:
        *after = *before;
        after->state = ASPEN_STORE_QUEUED;
        after->run_at = now; /* due at once: a --delay it had was for its first run */
        after->finished_at = 0;
        after->owner = 0;
        after->cancel_requested = false;
        if (after->max_attempts <= after->attempts)
            after->max_attempts = after->attempts + 1; /* one more try, visibly */
        return 0;
    case ASPEN_STORE_SCHEDULED: {
        /* It has not failed for good: it waits for its --delay or a retry's backoff. Queueing it
         * here (the scheduled → queued edge exists for promotion) ran it early without saying so;
         * running it early is run-now's job. */
        char in[32];
        aspen_store_duration_format(before->run_at > now ? before->run_at - now : 0, in, sizeof in);
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is scheduled, not failed: it runs in %s (%s); nothing changed. "
                         "To run it now: aspen run-now %lld%s",
                         id, in,
                         before->attempts > 0 ? "the backoff after a failed attempt, with attempts "
                                                "left"
                                              : "it was submitted with a delay",
                         id, cmd);
    }
    case ASPEN_STORE_QUEUED:
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is already queued: it runs as soon as a worker is free; nothing "
                         "changed",
                         id);
    case ASPEN_STORE_RUNNING:
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is running: retry is for a failed job; nothing changed (if this "
                         "attempt fails and attempts remain, it is retried by itself)",
                         id);
    default:
        return store_err(err, ASPEN_STORE_ESTATE,
                         "job %lld is %s: retry gives a failed job another attempt; to run it "
                         "again, aspen rerun %lld%s makes a new job of it",
                         id, aspen_store_state_name(before->state), id, cmd);
    }
}
