/* sqlite_schedule.c — the SQLite backend's schedules (schema version 7): the schedules table, the
 * occurrence keys in schedule_runs, and the scheduler lease, one row in `scheduler`. A tick is one
 * BEGIN IMMEDIATE transaction — the lease taken or renewed, every due occurrence's key inserted
 * with its job (store_sqlite_insert_job, the submit's own insert) — so a key exists exactly when
 * its job does, and a second enqueue of the same occurrence finds the key and writes nothing.
 * Statements are prepared per call: schedules change a few times a second at most, and this
 * keeps the job path's statement cache untouched. */
#include "sqlite_store.h"
#include "schedule_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prep(struct sqlite_store *s, const char *sql, sqlite3_stmt **st, aspen_store_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return store_sqlite_err(s, err, rc, "preparing a schedules statement");
    }
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows; *changes (if any) gets the rows changed. */
static int exec_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what, int *changes,
                     aspen_store_error *err)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sqlite_err(s, err, rc, what);
    if (!code && changes)
        *changes = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return code;
}

static int row_to_schedule(sqlite3_stmt *st, aspen_store_schedule *out, aspen_store_error *err)
{
    const char *v[STORE_SCHEDULE_NCOLUMNS];
    for (int i = 0; i < STORE_SCHEDULE_NCOLUMNS; i++)
        v[i] = (const char *)sqlite3_column_text(st, i);
    return store_schedule_from_texts(out, v, err);
}

#define SELECT_SCHEDULES                                                                         \
    "SELECT " STORE_SCHEDULE_COLUMNS " FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job"

/* Every schedule's name, for "did you mean". */
static int not_found(struct sqlite_store *s, const char *name, aspen_store_error *err)
{
    sqlite3_stmt *st;
    const char *names[256];
    char *owned[256];
    size_t n = 0;
    if (prep(s, "SELECT name FROM schedules ORDER BY name LIMIT 256", &st, NULL) == 0) {
        while (sqlite3_step(st) == SQLITE_ROW && n < 256) {
            owned[n] = store_strdup((const char *)sqlite3_column_text(st, 0));
            if (owned[n])
                names[n] = owned[n], n++;
        }
        sqlite3_finalize(st);
    }
    int code = store_schedule_notfound(name, names, n, store_cmd(&s->base), err);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    return code;
}

/* ---- definitions ------------------------------------------------------------------------------- */

static int sqs_add(aspen_store *base, const aspen_store_schedule_spec *spec, const char *sha,
                   const char *tags, int64_t now_ms, int64_t next_run, int64_t *id,
                   aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    const aspen_store_job_spec *j = spec->job;
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st;
    int rc;
    /* The queue's check inside this write transaction: a removal (its own BEGIN IMMEDIATE) has
     * either deleted the row before it or reads this schedule after the commit and is refused. */
    if (spec->require_queue && spec->queue && strcmp(spec->queue, ASPEN_STORE_QUEUE_DEFAULT)) {
        if ((code = prep(s, "SELECT 1 FROM queues WHERE name = ?1", &st, err)) != 0)
            goto rollback;
        sqlite3_bind_text(st, 1, spec->queue, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            code = store_sqlite_err(s, err, rc, "looking up a schedule's queue");
            goto rollback;
        }
        if (rc == SQLITE_DONE) {
            code = store_schedule_no_queue(spec->queue, store_cmd(&s->base), err);
            goto rollback;
        }
    }
    if ((code = prep(s, "SELECT id FROM schedules WHERE name = ?1", &st, err)) != 0)
        goto rollback;
    sqlite3_bind_text(st, 1, spec->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int64_t existing = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "looking up a schedule");
        goto rollback;
    }
    if (existing && !spec->replace) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "a schedule named \"%s\" already exists: remove it first (aspen cron rm "
                         "%s%s), replace it (--replace) or pick another name",
                         spec->name, spec->name, store_cmd(&s->base));
        goto rollback;
    }
    const char *sql =
        existing
            ? "UPDATE schedules SET expr = ?2, tz = ?3, missed = ?4, grace_ms = ?5, queue = ?6,"
              " paused = ?7, type = ?8, binary_sha256 = ?9, binary_name = ?10, payload = ?11,"
              " tags = ?12, source_dir = ?13, priority = ?14, max_attempts = ?15,"
              " timeout_ms = ?16, memory_bytes = ?17, isolation = ?18, next_run = ?20,"
              " error = NULL WHERE name = ?1"
            : "INSERT INTO schedules (name, expr, tz, missed, grace_ms, queue, paused, type,"
              " binary_sha256, binary_name, payload, tags, source_dir, priority, max_attempts,"
              " timeout_ms, memory_bytes, isolation, created_at, next_run)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
              " ?17, ?18, ?19, ?20)";
    if ((code = prep(s, sql, &st, err)) != 0)
        goto rollback;
    sqlite3_bind_text(st, 1, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, spec->expr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, spec->tz && *spec->tz ? spec->tz : "UTC", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, spec->missed == ASPEN_STORE_MISSED_ONCE ? "once" : "skip", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, spec->grace_ms ? spec->grace_ms : ASPEN_STORE_SCHEDULE_GRACE_MS);
    bind_text_or_null(st, 6, spec->queue);
    sqlite3_bind_int(st, 7, spec->paused);
    sqlite3_bind_text(st, 8, j->type, -1, SQLITE_STATIC);
    bind_text_or_null(st, 9, sha);
    bind_text_or_null(st, 10, j->binary_name);
    sqlite3_bind_text(st, 11, j->payload ? j->payload : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, tags, -1, SQLITE_STATIC);
    bind_text_or_null(st, 13, j->source_dir);
    sqlite3_bind_int(st, 14, j->priority);
    sqlite3_bind_int(st, 15, j->max_attempts ? j->max_attempts : 3);
    sqlite3_bind_int64(st, 16, j->timeout_ms ? j->timeout_ms : 30000);
    sqlite3_bind_int64(st, 17, j->memory_bytes);
    sqlite3_bind_int(st, 18, j->isolation);
    sqlite3_bind_int64(st, 19, now_ms);
    sqlite3_bind_int64(st, 20, next_run);
    if ((code = exec_done(s, st, "storing a schedule", NULL, err)) != 0)
        goto rollback;
    *id = existing ? existing : sqlite3_last_insert_rowid(s->db);
    return tx_commit(s, "committing a schedule", err);
rollback:
    tx_rollback(s);
    return code;
}

static int sqs_remove(aspen_store *base, const char *name, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st;
    int changed = 0;
    if ((code = prep(s, "DELETE FROM schedule_runs WHERE schedule IN"
                        " (SELECT id FROM schedules WHERE name = ?1)",
                     &st, err)) != 0)
        goto rollback;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((code = exec_done(s, st, "removing a schedule's keys", NULL, err)) != 0)
        goto rollback;
    if ((code = prep(s, "DELETE FROM schedules WHERE name = ?1", &st, err)) != 0)
        goto rollback;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((code = exec_done(s, st, "removing a schedule", &changed, err)) != 0)
        goto rollback;
    if (!changed) {
        tx_rollback(s);
        return not_found(s, name, err);
    }
    return tx_commit(s, "committing a schedule's removal", err);
rollback:
    tx_rollback(s);
    return code;
}

static int sqs_set_paused(aspen_store *base, const char *name, bool paused, int64_t next_run,
                          aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s,
                    paused ? "UPDATE schedules SET paused = 1 WHERE name = ?1"
                           : "UPDATE schedules SET paused = 0, next_run = ?2 WHERE name = ?1",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bind_int_or_null(st, 2, next_run);
    int changed = 0;
    if ((code = exec_done(s, st, paused ? "pausing a schedule" : "resuming a schedule", &changed,
                          err)) != 0)
        return code;
    return changed ? 0 : not_found(s, name, err);
}

static int sqs_get(aspen_store *base, const char *name, aspen_store_schedule *out,
                   aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s, SELECT_SCHEDULES " WHERE s.name = ?1", &st, err);
    if (code)
        return code;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        code = row_to_schedule(st, out, err);
    else if (rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading a schedule");
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return not_found(s, name, err);
    return code;
}

/* Rows of a SELECT_SCHEDULES statement into a new array. */
static int read_schedules(struct sqlite_store *s, sqlite3_stmt *st, aspen_store_schedule **out,
                          size_t *n, aspen_store_error *err)
{
    size_t cap = 0;
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_schedule *grown = store_grow(*out, &cap, *n, sizeof **out);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading schedules");
            break;
        }
        *out = grown;
        if ((code = row_to_schedule(st, &(*out)[*n], err)) != 0)
            break;
        (*n)++;
    }
    if (!code && rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading schedules");
    sqlite3_finalize(st);
    if (code) {
        aspen_store_schedules_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return code;
}

static int sqs_list(aspen_store *base, aspen_store_schedule **out, size_t *n,
                    aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s, SELECT_SCHEDULES " ORDER BY s.name", &st, err);
    return code ? code : read_schedules(s, st, out, n, err);
}

static int sqs_runs(aspen_store *base, const char *name, size_t limit,
                    aspen_store_schedule_run **out, size_t *n, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s,
                    "SELECT * FROM (SELECT r.occurrence, r.manual, r.job, r.engine, r.enqueued_at"
                    " FROM schedule_runs r JOIN schedules s ON s.id = r.schedule"
                    " WHERE s.name = ?1 ORDER BY r.enqueued_at DESC, r.occurrence DESC LIMIT ?2)"
                    " ORDER BY enqueued_at, occurrence",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : -1);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_schedule_run *grown = store_grow(*out, &cap, *n, sizeof **out);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a schedule's runs");
            break;
        }
        *out = grown;
        aspen_store_schedule_run *r = &(*out)[(*n)++];
        r->occurrence_ms = sqlite3_column_int64(st, 0);
        r->manual = sqlite3_column_int(st, 1) != 0;
        r->job_id = sqlite3_column_int64(st, 2);
        r->engine_id = sqlite3_column_int64(st, 3);
        r->enqueued_at_ms = sqlite3_column_int64(st, 4);
    }
    if (!code && rc != SQLITE_DONE)
        code = store_sqlite_err(s, err, rc, "reading a schedule's runs");
    sqlite3_finalize(st);
    if (code) {
        free(*out);
        *out = NULL;
        *n = 0;
    } else if (*n == 0) {
        aspen_store_schedule sc;
        if ((code = sqs_get(base, name, &sc, err)) == 0)
            aspen_store_schedule_clear(&sc);
    }
    return code;
}

/* ---- enqueueing -------------------------------------------------------------------------------- */

/* Inserts the key (schedule, manual, occurrence) and, if it was new, the job; *job_id 0 when the
 * key existed (someone enqueued that occurrence already). Inside the caller's transaction. */
static int enqueue_one(struct sqlite_store *s, const aspen_store_schedule *sc, bool manual,
                       int64_t occurrence, int64_t engine_id, int64_t now_ms, int64_t *job_id,
                       aspen_store_error *err)
{
    *job_id = 0;
    sqlite3_stmt *st;
    int code = prep(s,
                    "INSERT INTO schedule_runs (schedule, manual, occurrence, engine, enqueued_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_int(st, 2, manual);
    sqlite3_bind_int64(st, 3, occurrence);
    bind_int_or_null(st, 4, engine_id);
    sqlite3_bind_int64(st, 5, now_ms);
    int changed = 0;
    if ((code = exec_done(s, st, "recording a schedule's occurrence", &changed, err)) != 0 ||
        !changed)
        return code;
    aspen_store_job_spec spec;
    char *tags = NULL;
    if ((code = store_schedule_job(sc, &spec, &tags, err)) != 0)
        return code;
    code = store_sqlite_insert_job(s, &spec, now_ms, job_id, err);
    free(tags);
    if (code)
        return code;
    if ((code = prep(s, "UPDATE schedule_runs SET job = ?4 WHERE schedule = ?1 AND manual = ?2"
                        " AND occurrence = ?3",
                     &st, err)) != 0)
        return code;
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_int(st, 2, manual);
    sqlite3_bind_int64(st, 3, occurrence);
    sqlite3_bind_int64(st, 4, *job_id);
    return exec_done(s, st, "recording a schedule's job", NULL, err);
}

/* Keeps the newest ASPEN_STORE_SCHEDULE_RUNS_KEPT keys of a schedule. */
static int prune_runs(struct sqlite_store *s, int64_t schedule, aspen_store_error *err)
{
    sqlite3_stmt *st;
    int code = prep(s,
                    "DELETE FROM schedule_runs WHERE schedule = ?1 AND manual = 0 AND occurrence <"
                    " (SELECT occurrence FROM schedule_runs WHERE schedule = ?1 AND manual = 0"
                    " ORDER BY occurrence DESC LIMIT 1 OFFSET ?2)",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, schedule);
    sqlite3_bind_int(st, 2, ASPEN_STORE_SCHEDULE_RUNS_KEPT - 1);
    return exec_done(s, st, "pruning a schedule's old keys", NULL, err);
}

static int note_enqueued(struct sqlite_store *s, int64_t schedule, int64_t next_run,
                         const char *error, int64_t last_run, int64_t job, int64_t now_ms,
                         int64_t runs, int64_t missed, aspen_store_error *err)
{
    sqlite3_stmt *st;
    int code = prep(s,
                    "UPDATE schedules SET next_run = ?2, error = ?3,"
                    " last_run = CASE WHEN ?5 THEN ?4 ELSE last_run END,"
                    " last_job = CASE WHEN ?5 THEN ?5 ELSE last_job END,"
                    " last_enqueued_at = CASE WHEN ?5 THEN ?6 ELSE last_enqueued_at END,"
                    " runs = runs + ?7, missed_count = missed_count + ?8 WHERE id = ?1",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, schedule);
    bind_int_or_null(st, 2, next_run);
    bind_text_or_null(st, 3, error);
    sqlite3_bind_int64(st, 4, last_run);
    sqlite3_bind_int64(st, 5, job);
    sqlite3_bind_int64(st, 6, now_ms);
    sqlite3_bind_int64(st, 7, runs);
    sqlite3_bind_int64(st, 8, missed);
    return exec_done(s, st, "updating a schedule's next run", NULL, err);
}

/* The schedule's newest job that still waits or runs (its runs' keys, at most 1,000 rows), into
 * *dup (dup->duplicate set) when there is one. */
static int live_run(struct sqlite_store *s, int64_t schedule, aspen_store_submitted *dup,
                    aspen_store_error *err)
{
    sqlite3_stmt *st;
    int code = prep(s,
                    "SELECT j.id, j.state, j.created_at FROM schedule_runs r JOIN jobs j"
                    " ON j.id = r.job WHERE r.schedule = ?1"
                    " AND j.state IN ('queued', 'scheduled', 'running') ORDER BY j.id DESC LIMIT 1",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, schedule);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int state = state_from_text(sqlite3_column_text(st, 1));
        *dup = (aspen_store_submitted){.id = sqlite3_column_int64(st, 0),
                                       .duplicate = true,
                                       .state = state >= 0 ? (aspen_store_state)state
                                                           : ASPEN_STORE_QUEUED,
                                       .created_at_ms = sqlite3_column_int64(st, 2)};
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "looking for a schedule's unfinished job");
    }
    sqlite3_finalize(st);
    return code;
}

static int sqs_run_now(aspen_store *base, const char *name, int64_t now_ms,
                       aspen_store_submitted *out, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    *out = (aspen_store_submitted){0};
    int64_t *job_id = &out->id;
    int code = tx_begin(s, err);
    if (code)
        return code;
    aspen_store_schedule sc;
    if ((code = sqs_get(base, name, &sc, err)) != 0)
        goto rollback;
    /* Under the write lock: a run-now while the schedule's job still waits or runs is that job,
     * as a duplicate submit is (two presses of the console's n, or two aspen cron run). */
    if ((code = live_run(s, sc.id, out, err)) != 0 || out->duplicate) {
        aspen_store_schedule_clear(&sc);
        if (code)
            goto rollback;
        tx_rollback(s);
        return 0;
    }
    /* Two runs asked within one millisecond get the next free key. */
    int64_t at = now_ms;
    for (int i = 0; i < 1000 && !code; i++, at++) {
        code = enqueue_one(s, &sc, true, at, 0, now_ms, job_id, err);
        if (!code && *job_id)
            break;
    }
    if (!code && !*job_id)
        code = store_err(err, ASPEN_STORE_EBUSY, "too many runs of schedule %s asked at once",
                         name);
    if (!code)
        code = note_enqueued(s, sc.id, sc.next_run_ms, sc.error, at, *job_id, now_ms, 1, 0, err);
    out->state = ASPEN_STORE_QUEUED;
    out->created_at_ms = now_ms;
    aspen_store_schedule_clear(&sc);
    if (code)
        goto rollback;
    return tx_commit(s, "committing a schedule's run", err);
rollback:
    tx_rollback(s);
    return code;
}

/* ---- the scheduler ----------------------------------------------------------------------------- */

static int lease_take(struct sqlite_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                      aspen_store_scheduler_report *r, aspen_store_error *err)
{
    sqlite3_stmt *st;
    /* Taken when free, lapsed or held by an engine that is no longer registered with a live
     * lease; kept by its holder; only by an engine whose own lease is live. */
    int code = prep(s,
                    "UPDATE scheduler SET engine = ?1, lease_until = ?2 + ?3 WHERE id = 1"
                    " AND EXISTS (SELECT 1 FROM engines e WHERE e.id = ?1 AND e.lease_until >= ?2)"
                    " AND (engine = ?1 OR engine IS NULL OR lease_until < ?2 OR NOT EXISTS"
                    " (SELECT 1 FROM engines e WHERE e.id = scheduler.engine"
                    " AND e.lease_until >= ?2))",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, engine_id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, lease_ms);
    int changed = 0;
    if ((code = exec_done(s, st, "taking the scheduler lease", &changed, err)) != 0)
        return code;
    r->held = changed > 0;
    if ((code = prep(s, "SELECT engine FROM scheduler WHERE id = 1", &st, err)) != 0)
        return code;
    if (sqlite3_step(st) == SQLITE_ROW)
        r->holder = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int next_due(struct sqlite_store *s, int64_t *due, aspen_store_error *err)
{
    sqlite3_stmt *st;
    int code = prep(s, "SELECT min(next_run) FROM schedules WHERE paused = 0", &st, err);
    if (code)
        return code;
    *due = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

static int sqs_tick(aspen_store *base, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_scheduler_report *r, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    if ((code = lease_take(s, engine_id, lease_ms, now_ms, r, err)) != 0)
        goto rollback;
    if (!r->held) {
        code = next_due(s, &r->next_due_ms, err);
        tx_rollback(s); /* nothing was written */
        return code;
    }
    sqlite3_stmt *st;
    if ((code = prep(s,
                     SELECT_SCHEDULES " WHERE s.paused = 0 AND s.next_run IS NOT NULL"
                                      " AND s.next_run <= ?1 ORDER BY s.next_run LIMIT 32",
                     &st, err)) != 0)
        goto rollback;
    sqlite3_bind_int64(st, 1, now_ms);
    aspen_store_schedule *due = NULL;
    size_t n = 0;
    if ((code = read_schedules(s, st, &due, &n, err)) != 0)
        goto rollback;
    for (size_t i = 0; i < n && !code; i++) {
        struct store_schedule_plan plan;
        store_schedule_plan(&due[i], now_ms, &plan);
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
                                 last_run, last_job, now_ms, runs, plan.missed, err);
        if (!code && runs)
            code = prune_runs(s, due[i].id, err);
        r->enqueued += runs;
        r->missed += plan.missed;
    }
    aspen_store_schedules_free(due, n);
    if (!code)
        code = next_due(s, &r->next_due_ms, err);
    if (code)
        goto rollback;
    return tx_commit(s, "committing the scheduler's enqueues", err);
rollback:
    tx_rollback(s);
    r->enqueued = 0;
    return code;
}

static int sqs_release(aspen_store *base, int64_t engine_id, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s, "UPDATE scheduler SET engine = NULL, lease_until = 0 WHERE id = 1"
                       " AND engine = ?1",
                    &st, err);
    if (code)
        return code;
    sqlite3_bind_int64(st, 1, engine_id);
    return exec_done(s, st, "giving up the scheduler lease", NULL, err);
}

static int sqs_holder(aspen_store *base, int64_t *engine_id, int64_t *until_ms,
                      aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st;
    int code = prep(s, "SELECT engine, lease_until FROM scheduler WHERE id = 1", &st, err);
    if (code)
        return code;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *engine_id = sqlite3_column_int64(st, 0);
        *until_ms = sqlite3_column_int64(st, 1);
    } else if (rc != SQLITE_DONE) {
        code = store_sqlite_err(s, err, rc, "reading the scheduler lease");
    }
    sqlite3_finalize(st);
    return code;
}

const struct store_schedule_ops store_sqlite_schedule_ops = {
    .add = sqs_add,
    .remove = sqs_remove,
    .set_paused = sqs_set_paused,
    .run_now = sqs_run_now,
    .get = sqs_get,
    .list = sqs_list,
    .runs = sqs_runs,
    .tick = sqs_tick,
    .release = sqs_release,
    .holder = sqs_holder,
};
