/* pg_schedule.c — the PostgreSQL backend's schedules (schema version 7), the same tables and rules
 * as SQLite's (sqlite/sqlite_schedule.c) for many hosts: a tick locks the one scheduler row FOR
 * UPDATE first, so ticks of all hosts take turns, takes or renews the lease on the server's
 * timeline, locks the due schedules, and inserts each occurrence's key (ON CONFLICT DO NOTHING)
 * with its job (pg_insert_jobs, the submit's own insert, which also sends NOTIFY) in one
 * transaction. A key exists exactly when its job does. */
#include "pg_store.h"
#include "schedule_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t srv_now(int64_t now_ms) { return now_ms + pg_clock_skew_ms(); }

static int failed(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

static int run(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
               const char *what, int64_t *changed, aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r)
        return failed(err);
    if (changed)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int row_to_schedule(const PGresult *r, int row, aspen_store_schedule *out,
                           aspen_store_error *err)
{
    const char *v[STORE_SCHEDULE_NCOLUMNS];
    for (int i = 0; i < STORE_SCHEDULE_NCOLUMNS; i++)
        v[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
    return store_schedule_from_texts(out, v, err);
}

static int read_schedules(const PGresult *r, aspen_store_schedule **out, size_t *n,
                          aspen_store_error *err)
{
    int rows = PQntuples(r);
    *out = NULL;
    *n = 0;
    if (!rows)
        return 0;
    *out = calloc((size_t)rows, sizeof **out);
    if (!*out)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading schedules");
    for (int i = 0; i < rows; i++) {
        int code = row_to_schedule(r, i, &(*out)[i], err);
        if (code) {
            aspen_store_schedules_free(*out, *n);
            *out = NULL;
            *n = 0;
            return code;
        }
        (*n)++;
    }
    return 0;
}

#define SELECT_SCHEDULES                                                                         \
    "SELECT " STORE_SCHEDULE_COLUMNS " FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job"

static int not_found(struct pg_store *s, const char *name, aspen_store_error *err)
{
    struct pg_params p = {0};
    PGresult *r = pg_exec(s, "pgs_names", "SELECT name FROM schedules ORDER BY name LIMIT 256",
                          &p, "listing schedule names", NULL);
    const char *names[256];
    size_t n = 0;
    for (int i = 0; r && i < PQntuples(r) && n < 256; i++)
        names[n++] = PQgetvalue(r, i, 0);
    int code = store_schedule_notfound(name, names, n, store_cmd(&s->base), err);
    PQclear(r);
    return code;
}

/* ---- definitions ------------------------------------------------------------------------------- */

static int pgs_add(aspen_store *base, const aspen_store_schedule_spec *spec, const char *sha,
                   const char *tags, int64_t now_ms, int64_t next_run, int64_t *id,
                   aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    const aspen_store_job_spec *j = spec->job;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    PGresult *r;
    /* A schedule into a named queue takes ROW EXCLUSIVE on the queues table, the mode every
     * writer of it takes, which conflicts with the SHARE ROW EXCLUSIVE aspen_store_queue_remove
     * holds while it reads the queue's schedules and deletes its row: a removal that began first
     * has committed before the check below (a later statement, so a later snapshot) and the row
     * is gone; one that comes later waits for this commit and then reads this schedule and is
     * refused. A row lock (FOR SHARE) would not do: the removal reads the schedules before its
     * DELETE waits for the row, and would delete it once this commit let it go. */
    if (spec->queue && strcmp(spec->queue, ASPEN_STORE_QUEUE_DEFAULT)) {
        r = pg_exec_dynamic(s, "LOCK TABLE queues IN ROW EXCLUSIVE MODE", NULL,
                            "waiting for the queues table to store a schedule", err);
        if (!r) {
            code = failed(err);
            goto rollback;
        }
        PQclear(r);
        if (spec->require_queue) {
            pg_p_text(&p, spec->queue);
            r = pg_exec(s, "pgs_queue", "SELECT 1 FROM queues WHERE name = $1", &p,
                        "looking up a schedule's queue", err);
            if (!r) {
                code = failed(err);
                goto rollback;
            }
            bool found = PQntuples(r) > 0;
            PQclear(r);
            if (!found) {
                code = store_schedule_no_queue(spec->queue, store_cmd(&s->base), err);
                goto rollback;
            }
            p = (struct pg_params){0};
        }
    }
    pg_p_text(&p, spec->name);
    r = pg_exec(s, "pgs_find", "SELECT id FROM schedules WHERE name = $1 FOR UPDATE",
                          &p, "looking up a schedule", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    int64_t existing = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    if (existing && !spec->replace) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "a schedule named \"%s\" already exists: remove it first (aspen cron rm "
                         "%s%s), replace it (--replace) or pick another name",
                         spec->name, spec->name, store_cmd(&s->base));
        goto rollback;
    }
    p = (struct pg_params){0};
    pg_p_text(&p, spec->name);
    pg_p_text(&p, spec->expr);
    pg_p_text(&p, spec->tz && *spec->tz ? spec->tz : "UTC");
    pg_p_text(&p, spec->missed == ASPEN_STORE_MISSED_ONCE ? "once" : "skip");
    pg_p_int(&p, spec->grace_ms ? spec->grace_ms : ASPEN_STORE_SCHEDULE_GRACE_MS);
    pg_p_text(&p, spec->queue);
    pg_p_int(&p, spec->paused ? 1 : 0);
    pg_p_text(&p, j->type);
    pg_p_text(&p, sha);
    pg_p_text(&p, j->binary_name);
    pg_p_text(&p, j->payload ? j->payload : "{}");
    pg_p_text(&p, tags);
    pg_p_text(&p, j->source_dir);
    pg_p_int(&p, j->priority);
    pg_p_int(&p, j->max_attempts ? j->max_attempts : 3);
    pg_p_int(&p, j->timeout_ms ? j->timeout_ms : 30000);
    pg_p_int(&p, j->memory_bytes);
    pg_p_int(&p, j->isolation ? 1 : 0);
    pg_p_int(&p, srv_now(now_ms));
    pg_p_int(&p, next_run + pg_clock_skew_ms());
    if (existing)
        r = pg_exec(s, "pgs_update",
                    "UPDATE schedules SET expr = $2, tz = $3, missed = $4, grace_ms = $5,"
                    " queue = $6, paused = $7, type = $8, binary_sha256 = $9, binary_name = $10,"
                    " payload = $11, tags = $12, source_dir = $13, priority = $14,"
                    " max_attempts = $15, timeout_ms = $16, memory_bytes = $17, isolation = $18,"
                    " next_run = $20, error = NULL WHERE name = $1 AND $19::bigint IS NOT NULL"
                    " RETURNING id",
                    &p, "storing a schedule", err);
    else
        r = pg_exec(s, "pgs_insert",
                    "INSERT INTO schedules (name, expr, tz, missed, grace_ms, queue, paused, type,"
                    " binary_sha256, binary_name, payload, tags, source_dir, priority,"
                    " max_attempts, timeout_ms, memory_bytes, isolation, created_at, next_run)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
                    " $16, $17, $18, $19, $20) RETURNING id",
                    &p, "storing a schedule", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    *id = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    return pg_tx_commit(s, "committing a schedule", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

static int pgs_remove(aspen_store *base, const char *name, aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    int64_t changed = 0;
    code = run(s, "pgs_remove_runs",
               "DELETE FROM schedule_runs WHERE schedule IN (SELECT id FROM schedules WHERE name ="
               " $1)",
               &p, "removing a schedule's keys", NULL, err);
    if (!code)
        code = run(s, "pgs_remove", "DELETE FROM schedules WHERE name = $1", &p,
                   "removing a schedule", &changed, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    if (!changed) {
        pg_tx_rollback(s);
        return not_found(s, name, err);
    }
    return pg_tx_commit(s, "committing a schedule's removal", err);
}

static int pgs_set_paused(aspen_store *base, const char *name, bool paused, int64_t next_run,
                          aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    int64_t changed = 0;
    int code;
    if (paused) {
        code = run(s, "pgs_pause", "UPDATE schedules SET paused = 1 WHERE name = $1", &p,
                   "pausing a schedule", &changed, err);
    } else {
        pg_p_opt_int(&p, next_run ? next_run + pg_clock_skew_ms() : 0);
        code = run(s, "pgs_resume", "UPDATE schedules SET paused = 0, next_run = $2 WHERE name = $1",
                   &p, "resuming a schedule", &changed, err);
    }
    if (code)
        return code;
    return changed ? 0 : not_found(s, name, err);
}

static int pgs_get(aspen_store *base, const char *name, aspen_store_schedule *out,
                   aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    PGresult *r = pg_exec(s, "pgs_get", SELECT_SCHEDULES " WHERE s.name = $1", &p,
                          "reading a schedule", err);
    if (!r)
        return failed(err);
    int code = PQntuples(r) ? row_to_schedule(r, 0, out, err) : 1;
    PQclear(r);
    return code == 1 ? not_found(s, name, err) : code;
}

static int pgs_list(aspen_store *base, aspen_store_schedule **out, size_t *n,
                    aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    PGresult *r = pg_exec(s, "pgs_list", SELECT_SCHEDULES " ORDER BY s.name", &p,
                          "reading schedules", err);
    if (!r)
        return failed(err);
    int code = read_schedules(r, out, n, err);
    PQclear(r);
    return code;
}

static int pgs_runs(aspen_store *base, const char *name, size_t limit,
                    aspen_store_schedule_run **out, size_t *n, aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    pg_p_opt_int(&p, (int64_t)limit);
    PGresult *r = pg_exec(s, "pgs_runs",
                          "SELECT * FROM (SELECT r.occurrence, r.manual, r.job, r.engine,"
                          " r.enqueued_at FROM schedule_runs r JOIN schedules s ON s.id ="
                          " r.schedule WHERE s.name = $1 ORDER BY r.enqueued_at DESC,"
                          " r.occurrence DESC LIMIT $2::bigint) x ORDER BY enqueued_at, occurrence",
                          &p, "reading a schedule's runs", err);
    if (!r)
        return failed(err);
    int rows = PQntuples(r), code = 0;
    if (rows) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out)
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a schedule's runs");
        for (int i = 0; !code && i < rows; i++) {
            aspen_store_schedule_run *ru = &(*out)[(*n)++];
            ru->occurrence_ms = pg_get_int(r, i, 0);
            ru->manual = pg_get_int(r, i, 1) != 0;
            ru->job_id = pg_get_int(r, i, 2);
            ru->engine_id = pg_get_int(r, i, 3);
            ru->enqueued_at_ms = pg_get_int(r, i, 4);
        }
    }
    PQclear(r);
    if (!code && rows == 0) {
        aspen_store_schedule sc;
        if ((code = pgs_get(base, name, &sc, err)) == 0)
            aspen_store_schedule_clear(&sc);
    }
    return code;
}

/* ---- enqueueing -------------------------------------------------------------------------------- */

static int enqueue_one(struct pg_store *s, const aspen_store_schedule *sc, bool manual,
                       int64_t occurrence, int64_t engine_id, int64_t now_ms, int64_t *job_id,
                       aspen_store_error *err)
{
    *job_id = 0;
    struct pg_params p = {0};
    pg_p_int(&p, sc->id);
    pg_p_int(&p, manual ? 1 : 0);
    pg_p_int(&p, occurrence);
    pg_p_opt_int(&p, engine_id);
    pg_p_int(&p, srv_now(now_ms));
    int64_t changed = 0;
    int code = run(s, "pgs_key",
                   "INSERT INTO schedule_runs (schedule, manual, occurrence, engine, enqueued_at)"
                   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                   &p, "recording a schedule's occurrence", &changed, err);
    if (code || !changed)
        return code;
    aspen_store_job_spec spec;
    char *tags = NULL;
    if ((code = store_schedule_job(sc, &spec, &tags, err)) != 0)
        return code;
    code = pg_insert_jobs(s, &spec, 1, now_ms, job_id, err);
    free(tags);
    if (code)
        return code;
    p = (struct pg_params){0};
    pg_p_int(&p, sc->id);
    pg_p_int(&p, manual ? 1 : 0);
    pg_p_int(&p, occurrence);
    pg_p_int(&p, *job_id);
    return run(s, "pgs_key_job",
               "UPDATE schedule_runs SET job = $4 WHERE schedule = $1 AND manual = $2 AND"
               " occurrence = $3",
               &p, "recording a schedule's job", NULL, err);
}

static int prune_runs(struct pg_store *s, int64_t schedule, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, schedule);
    pg_p_int(&p, ASPEN_STORE_SCHEDULE_RUNS_KEPT - 1);
    return run(s, "pgs_prune",
               "DELETE FROM schedule_runs WHERE schedule = $1 AND manual = 0 AND occurrence <"
               " (SELECT occurrence FROM schedule_runs WHERE schedule = $1 AND manual = 0"
               " ORDER BY occurrence DESC LIMIT 1 OFFSET $2::bigint)",
               &p, "pruning a schedule's old keys", NULL, err);
}

static int note_enqueued(struct pg_store *s, int64_t schedule, int64_t next_run, const char *error,
                         int64_t last_run, int64_t job, int64_t now, int64_t runs, int64_t missed,
                         aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, schedule);
    pg_p_opt_int(&p, next_run);
    pg_p_text(&p, error);
    pg_p_int(&p, last_run);
    pg_p_int(&p, job);
    pg_p_int(&p, now);
    pg_p_int(&p, runs);
    pg_p_int(&p, missed);
    return run(s, "pgs_note",
               "UPDATE schedules SET next_run = $2, error = $3,"
               " last_run = CASE WHEN $5::bigint <> 0 THEN $4::bigint ELSE last_run END,"
               " last_job = CASE WHEN $5::bigint <> 0 THEN $5::bigint ELSE last_job END,"
               " last_enqueued_at = CASE WHEN $5::bigint <> 0 THEN $6::bigint"
               " ELSE last_enqueued_at END,"
               " runs = runs + $7, missed_count = missed_count + $8 WHERE id = $1",
               &p, "updating a schedule's next run", NULL, err);
}

/* The schedule's newest job that still waits or runs, into *dup (its creation time on the
 * caller's clock), under the schedule's row lock: two run-nows look one after the other. */
static int live_run(struct pg_store *s, int64_t schedule, int64_t now_ms,
                    aspen_store_submitted *dup, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_int(&p, schedule);
    PGresult *r = pg_exec(s, "pgs_live_run",
                          "SELECT j.id, j.state, j.created_at FROM schedule_runs r JOIN jobs j"
                          " ON j.id = r.job WHERE r.schedule = $1::bigint"
                          " AND j.state IN ('queued', 'scheduled', 'running')"
                          " ORDER BY j.id DESC LIMIT 1",
                          &p, "looking for a schedule's unfinished job", err);
    if (!r)
        return failed(err);
    if (PQntuples(r) == 1) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, 0, 1));
        *dup = (aspen_store_submitted){
            .id = strtoll(PQgetvalue(r, 0, 0), NULL, 10),
            .duplicate = true,
            .state = state >= 0 ? (aspen_store_state)state : ASPEN_STORE_QUEUED,
            .created_at_ms = strtoll(PQgetvalue(r, 0, 2), NULL, 10) - (srv_now(now_ms) - now_ms)};
    }
    PQclear(r);
    return 0;
}

static int pgs_run_now(aspen_store *base, const char *name, int64_t now_ms,
                       aspen_store_submitted *out, aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    *out = (aspen_store_submitted){0};
    int64_t *job_id = &out->id;
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_text(&p, name);
    PGresult *r = pg_exec(s, "pgs_get_lock", SELECT_SCHEDULES " WHERE s.name = $1 FOR UPDATE OF s",
                          &p, "reading a schedule", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    aspen_store_schedule sc;
    bool found = PQntuples(r) > 0;
    code = found ? row_to_schedule(r, 0, &sc, err) : 0;
    PQclear(r);
    if (!found) {
        pg_tx_rollback(s);
        return not_found(s, name, err);
    }
    if (code)
        goto rollback;
    /* a run-now while the schedule's job still waits or runs is that job (as SQLite's) */
    if ((code = live_run(s, sc.id, now_ms, out, err)) != 0 || out->duplicate) {
        aspen_store_schedule_clear(&sc);
        if (code)
            goto rollback;
        pg_tx_rollback(s);
        return 0;
    }
    int64_t at = srv_now(now_ms);
    for (int i = 0; i < 1000 && !code; i++, at++) {
        code = enqueue_one(s, &sc, true, at, 0, now_ms, job_id, err);
        if (!code && *job_id)
            break;
    }
    if (!code && !*job_id)
        code = store_err(err, ASPEN_STORE_EBUSY, "too many runs of schedule %s asked at once",
                         name);
    if (!code)
        code = note_enqueued(s, sc.id, sc.next_run_ms, sc.error, at, *job_id, srv_now(now_ms), 1,
                             0, err);
    out->state = ASPEN_STORE_QUEUED;
    out->created_at_ms = now_ms;
    aspen_store_schedule_clear(&sc);
    if (code)
        goto rollback;
    return pg_tx_commit(s, "committing a schedule's run", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

/* ---- the scheduler ----------------------------------------------------------------------------- */

static int next_due(struct pg_store *s, int64_t *due, aspen_store_error *err)
{
    struct pg_params p = {0};
    PGresult *r = pg_exec(s, "pgs_next_due", "SELECT min(next_run) FROM schedules WHERE paused = 0",
                          &p, "reading the next schedule due", err);
    if (!r)
        return failed(err);
    *due = pg_get_int(r, 0, 0);
    if (*due)
        *due -= pg_clock_skew_ms(); /* back on the caller's clock */
    PQclear(r);
    return 0;
}

static int pgs_tick(aspen_store *base, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_scheduler_report *rep, aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int64_t now = srv_now(now_ms);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    /* Every host's tick takes this row first: they take turns. */
    PGresult *r = pg_exec(s, "pgs_lease_lock", "SELECT engine FROM scheduler WHERE id = 1 FOR UPDATE",
                          &p, "locking the scheduler lease", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    PQclear(r);
    p = (struct pg_params){0};
    pg_p_int(&p, engine_id);
    pg_p_int(&p, now);
    pg_p_int(&p, lease_ms);
    int64_t changed = 0;
    code = run(s, "pgs_lease_take",
               "UPDATE scheduler SET engine = $1, lease_until = $2::bigint + $3::bigint WHERE id = 1"
               " AND EXISTS (SELECT 1 FROM engines e WHERE e.id = $1 AND e.lease_until >= $2)"
               " AND (engine = $1 OR engine IS NULL OR lease_until < $2 OR NOT EXISTS"
               " (SELECT 1 FROM engines e WHERE e.id = scheduler.engine AND e.lease_until >= $2))",
               &p, "taking the scheduler lease", &changed, err);
    if (code)
        goto rollback;
    rep->held = changed > 0;
    p = (struct pg_params){0};
    r = pg_exec(s, "pgs_holder", "SELECT engine, lease_until FROM scheduler WHERE id = 1", &p,
                "reading the scheduler lease", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    rep->holder = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
    PQclear(r);
    if (!rep->held) {
        code = next_due(s, &rep->next_due_ms, err);
        pg_tx_rollback(s);
        return code;
    }
    p = (struct pg_params){0};
    pg_p_int(&p, now);
    r = pg_exec(s, "pgs_due",
                SELECT_SCHEDULES " WHERE s.paused = 0 AND s.next_run IS NOT NULL AND"
                                 " s.next_run <= $1 ORDER BY s.next_run LIMIT 32 FOR UPDATE OF s",
                &p, "reading the schedules due", err);
    if (!r) {
        code = failed(err);
        goto rollback;
    }
    aspen_store_schedule *due = NULL;
    size_t n = 0;
    code = read_schedules(r, &due, &n, err);
    PQclear(r);
    if (code)
        goto rollback;
    for (size_t i = 0; i < n && !code; i++) {
        struct store_schedule_plan plan;
        store_schedule_plan(&due[i], now, &plan);
        int64_t last_job = 0, last_run = 0, runs = 0;
        for (size_t k = 0; k < plan.n && !code; k++) {
            int64_t job = 0;
            code = enqueue_one(s, &due[i], false, plan.occurrences[k], engine_id, now_ms, &job,
                               err);
            if (!code && job)
                last_job = job, last_run = plan.occurrences[k], runs++;
        }
        if (!code)
            code = note_enqueued(s, due[i].id, plan.next_run, plan.error[0] ? plan.error : NULL,
                                 last_run, last_job, now, runs, plan.missed, err);
        if (!code && runs)
            code = prune_runs(s, due[i].id, err);
        rep->enqueued += runs;
        rep->missed += plan.missed;
    }
    aspen_store_schedules_free(due, n);
    if (!code)
        code = next_due(s, &rep->next_due_ms, err);
    if (code)
        goto rollback;
    return pg_tx_commit(s, "committing the scheduler's enqueues", err);
rollback:
    pg_tx_rollback(s);
    rep->enqueued = 0;
    return code;
}

static int pgs_release(aspen_store *base, int64_t engine_id, aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    pg_p_int(&p, engine_id);
    return run(s, "pgs_release",
               "UPDATE scheduler SET engine = NULL, lease_until = 0 WHERE id = 1 AND engine = $1",
               &p, "giving up the scheduler lease", NULL, err);
}

static int pgs_holder(aspen_store *base, int64_t *engine_id, int64_t *until_ms,
                      aspen_store_error *err)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_params p = {0};
    PGresult *r = pg_exec(s, "pgs_holder", "SELECT engine, lease_until FROM scheduler WHERE id = 1",
                          &p, "reading the scheduler lease", err);
    if (!r)
        return failed(err);
    if (PQntuples(r)) {
        *engine_id = pg_get_int(r, 0, 0);
        *until_ms = pg_get_int(r, 0, 1);
        if (*until_ms)
            *until_ms -= pg_clock_skew_ms();
    }
    PQclear(r);
    return 0;
}

const struct store_schedule_ops store_pg_schedule_ops = {
    .add = pgs_add,
    .remove = pgs_remove,
    .set_paused = pgs_set_paused,
    .run_now = pgs_run_now,
    .get = pgs_get,
    .list = pgs_list,
    .runs = pgs_runs,
    .tick = pgs_tick,
    .release = pgs_release,
    .holder = pgs_holder,
};
