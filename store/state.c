/* state.c — job states and THE transition table.
 *
 * Every change of a job's state is checked here: per-job writes call aspen_store_check_transition
 * through job_write (sqlite/sqlite_jobs.c), and the promotion of due scheduled jobs selects exactly the
 * from-state this table allows (tests/store/test_store_state.c holds it to it). The table used to
 * be installed as SQL triggers too, as a backstop; they cost a third of the write path (a trigger
 * program runs per row) and were dropped.
 *
 *                 submit (run_at later)
 *      (new) ───────────────────────────▶ scheduled ──cancel──▶ cancelled
 *        │ submit (due)                     │ its time came        ▲
 *        ▼                                  ▼                      │ cancel (also when reserved:
 *      queued ◀─────────────────────────────┘ ─────────────────────┘  the reservation goes too)
 *        │  ┆ claim = reservation: a claims row (engine, time); the job STAYS queued, attempts
 *        │  ┆ unchanged. Given back by unclaim, release, unregister, or recovery of a dead engine
 *        │  ┆ — never charged, because it never started.
 *        │──snooze (not while reserved: the engine may already be running it)──▶ scheduled
 *        │        (a scheduled job snoozed again keeps its state: only run_at moves)
 *        │ start: a worker really began it (start mark, or inside the completion's group commit)
 *        ▼        attempts + 1, started_at = the moment it began, owner = engine
 *      running ──success──▶ succeeded
 *        │──failure/timeout, attempts left──▶ scheduled (backoff) or queued (due now)
 *        │──out of attempts / no retry / recovery of a last attempt──▶ failed ──retry──▶ queued
 *        │──cancelled while running──▶ cancelled
 *        └──release (shutdown, attempt given back) / recovery of a lost attempt──▶ queued
 *
 * A reservation is not a state: to every reader a reserved job is queued, and cancel, counts and
 * listings treat it so. A job that starts and finishes within one group commit is written once,
 * queued → final, checked as the two edges queued → running → final (store_job_row.via_running).
 * Where a finished attempt goes is decided once, for every backend, by store_decide_completion below.
 */
#include "store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[ASPEN_STORE_STATE_COUNT] = {
    [ASPEN_STORE_QUEUED] = "queued",       [ASPEN_STORE_SCHEDULED] = "scheduled",
    [ASPEN_STORE_RUNNING] = "running",     [ASPEN_STORE_SUCCEEDED] = "succeeded",
    [ASPEN_STORE_FAILED] = "failed",       [ASPEN_STORE_CANCELLED] = "cancelled",
};

/* Rows: from; columns: to. Why each edge exists:
 *   new → queued | scheduled         submit (run_at now or later)
 *   queued → running                 start of a reserved job (a worker began it; attempt charged)
 *   queued → cancelled               cancel before it ran
 *   queued → scheduled               snooze: an operator puts a waiting job off (not when reserved)
 *   scheduled → queued               its run_at came (promotion, inside the claim transaction)
 *   scheduled → cancelled            cancel before it ran
 *   running → succeeded              completion
 *   running → failed                 completion out of attempts / no retry; recovery of a last try
 *   running → scheduled              completion with retry backoff
 *   running → queued                 retry due at once; recovery of a lost attempt; release
 *   running → cancelled              cancelled while running (the engine stopped it)
 *   failed → queued                  an operator's retry
 * succeeded and cancelled are final; a rerun is a new job. */
static const bool table[ASPEN_STORE_STATE_COUNT][ASPEN_STORE_STATE_COUNT] = {
    [ASPEN_STORE_QUEUED] = {[ASPEN_STORE_RUNNING] = true,
                            [ASPEN_STORE_SCHEDULED] = true,
                            [ASPEN_STORE_CANCELLED] = true},
    [ASPEN_STORE_SCHEDULED] = {[ASPEN_STORE_QUEUED] = true, [ASPEN_STORE_CANCELLED] = true},
    [ASPEN_STORE_RUNNING] = {[ASPEN_STORE_SUCCEEDED] = true,
                             [ASPEN_STORE_FAILED] = true,
                             [ASPEN_STORE_SCHEDULED] = true,
                             [ASPEN_STORE_QUEUED] = true,
                             [ASPEN_STORE_CANCELLED] = true},
    [ASPEN_STORE_FAILED] = {[ASPEN_STORE_QUEUED] = true},
};

static bool valid_state(int s) { return s >= 0 && s < ASPEN_STORE_STATE_COUNT; }

const char *aspen_store_state_name(aspen_store_state state)
{
    if (state == ASPEN_STORE_STATE_NEW)
        return "new";
    return valid_state(state) ? state_names[state] : "?";
}

int aspen_store_state_parse(const char *name, aspen_store_state *out)
{
    for (int i = 0; name && i < ASPEN_STORE_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (aspen_store_state)i;
            return 0;
        }
    return ASPEN_STORE_EINVAL;
}

int state_from_text(const unsigned char *text)
{
    if (!text)
        return -1;
    /* The first two letters tell the states apart; compare fully anyway. */
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if (strcmp((const char *)text, state_names[i]) == 0)
            return i;
    return -1;
}

bool aspen_store_transition_allowed(aspen_store_state from, aspen_store_state to)
{
    if (!valid_state(to))
        return false;
    if (from == ASPEN_STORE_STATE_NEW)
        return to == ASPEN_STORE_QUEUED || to == ASPEN_STORE_SCHEDULED;
    if (!valid_state(from))
        return false;
    return table[from][to];
}

bool aspen_store_state_is_final(aspen_store_state state)
{
    return state == ASPEN_STORE_SUCCEEDED || state == ASPEN_STORE_FAILED ||
           state == ASPEN_STORE_CANCELLED;
}

bool store_states_final_only(unsigned states)
{
    unsigned all = (1u << ASPEN_STORE_STATE_COUNT) - 1, final = 0;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if (aspen_store_state_is_final((aspen_store_state)i))
            final |= 1u << i;
    return (states & all) && !(states & ~final);
}

int aspen_store_check_transition(int64_t job_id, aspen_store_state from, aspen_store_state to,
                                 aspen_store_error *err)
{
    if (aspen_store_transition_allowed(from, to))
        return 0;
    char allowed[128] = "";
    size_t len = 0;
    for (int t = 0; t < ASPEN_STORE_STATE_COUNT; t++)
        if (aspen_store_transition_allowed(from, (aspen_store_state)t))
            len += (size_t)snprintf(allowed + len, sizeof allowed - len, "%s%s", len ? ", " : "",
                                    state_names[t]);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "job %lld is %s: it cannot become %s (from %s it can only become: %s)",
                     (long long)job_id, aspen_store_state_name(from), aspen_store_state_name(to),
                     aspen_store_state_name(from), len ? allowed : "nothing, it is final");
}

/* ---- where a finished attempt goes (every backend's group commit) ---------------------------- */

void store_decide_completion(const struct store_job_row *before, const aspen_store_completion *c,
                             int64_t now, int64_t retry_at, bool retry_due,
                             struct store_job_row *after)
{
    *after = *before;
    after->owner = 0;
    after->set_result = true;
    after->result = c->output;
    after->result_size = c->output_size;
    after->set_error = true;
    after->error = c->error;
    bool retry = (c->outcome == ASPEN_STORE_OUTCOME_FAILURE ||
                  c->outcome == ASPEN_STORE_OUTCOME_TIMEOUT) &&
                 c->retry_at_ms > 0 && before->attempts < before->max_attempts &&
                 !before->cancel_requested;
    if (c->outcome == ASPEN_STORE_OUTCOME_SUCCESS) {
        after->state = ASPEN_STORE_SUCCEEDED;
        after->error = NULL;
    } else if (retry) {
        after->state = retry_due ? ASPEN_STORE_QUEUED : ASPEN_STORE_SCHEDULED;
        after->run_at = retry_at;
        after->finished_at = 0;
    } else if (c->outcome == ASPEN_STORE_OUTCOME_CANCELLED || before->cancel_requested) {
        after->state = ASPEN_STORE_CANCELLED;
    } else {
        after->state = ASPEN_STORE_FAILED;
    }
    if (aspen_store_state_is_final(after->state)) {
        after->finished_at = now;
        after->cancel_requested = false;
    }
}

const char *store_default_error(const aspen_store_completion *c, int attempts, char *buf,
                                size_t size)
{
    if (c->error || c->outcome == ASPEN_STORE_OUTCOME_SUCCESS)
        return c->error;
    const char *what = c->outcome == ASPEN_STORE_OUTCOME_TIMEOUT     ? "timed out"
                       : c->outcome == ASPEN_STORE_OUTCOME_CANCELLED ? "cancelled while running"
                                                                     : "failed";
    snprintf(buf, size, "%s (attempt %d)", what, attempts);
    return buf;
}

void store_started_row(const struct store_job_row *before, int64_t engine_id, int64_t started,
                       struct store_job_row *out)
{
    *out = *before;
    out->state = ASPEN_STORE_RUNNING;
    out->attempts = before->attempts + 1;
    out->started_at = started;
    out->finished_at = 0;
    out->owner = engine_id;
    out->cancel_requested = false;
    out->field_update = out->via_running = out->set_error = out->set_result = false;
}

bool store_decide_cancel(const struct store_job_row *before, int64_t now,
                         struct store_job_row *after, aspen_store_cancel_result *result)
{
    *after = *before;
    if (before->state == ASPEN_STORE_RUNNING) {
        /* In flight: its engine sees the flag and stops the VM; it stays running until then. */
        after->cancel_requested = true;
        after->field_update = true;
        *result = ASPEN_STORE_CANCEL_REQUESTED;
        return false;
    }
    after->state = ASPEN_STORE_CANCELLED;
    after->finished_at = now;
    after->set_error = true;
    after->error = "cancelled before it ran";
    *result = ASPEN_STORE_CANCEL_DONE;
    return true;
}

int store_decide_release(const struct store_job_row *before, int64_t engine_id,
                         struct store_job_row *after, aspen_store_error *err)
{
    if (before->state == ASPEN_STORE_RUNNING && before->owner != engine_id)
        return store_err(err, ASPEN_STORE_ELEASE, "job %lld is held by engine %lld, not %lld",
                         (long long)before->id, (long long)before->owner, (long long)engine_id);
    *after = *before;
    after->state = ASPEN_STORE_QUEUED;
    after->owner = 0;
    /* The attempt was interrupted on purpose, not used up: give it back. */
    after->attempts = before->attempts > 0 ? before->attempts - 1 : 0;
    return 0;
}
