/* sqlite_queues.c — named queues on the SQLite backend: the version-6 migration, queue rows made
 * on first use by a submit, the queue-aware claim (per-queue heads within the limits, pause and
 * rate of store_queue_plan_decide), the rate shares written when a job starts, the settings, and
 * the listing with each queue's figures.
 *
 * The claim in sqlite_jobs.c asks sq_claim_restricted first: when no queue has a setting and the
 * handle serves every queue it is false, and the claim reads the head of the one queue index as
 * it always did — the default queue's path costs one more tiny SELECT per claim, nothing per job.
 * Otherwise the whole claim is inside its BEGIN IMMEDIATE transaction, the one writer of the
 * database, so a queue's running and reserved jobs counted here cannot change before its
 * reservations are written: the limits hold across every process on the file. */
#include "sqlite_store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum qstmt {
    QST_ACTIVE,
    QST_NOTE,
    QST_SETTINGS,
    QST_RUNNING,
    QST_RESERVED,
    QST_STARTS_PRUNE,
    QST_STARTS_RECENT,
    QST_HEAD_DEFAULT,
    QST_HEAD_NAMED,
    QST_STARTED,
    QST_SET,
    QST_COUNT_
};

_Static_assert(QST_COUNT_ <= SQ_QUEUE_STMTS, "room for the queue statements in the handle");

static const char *const qsql[QST_COUNT_] = {
    /* Whether any queue has a setting: when none does, the claim takes the plain path. */
    [QST_ACTIVE] = "SELECT EXISTS (SELECT 1 FROM queues WHERE paused <> 0"
                   " OR concurrency IS NOT NULL OR rate_n IS NOT NULL)",
    [QST_NOTE] = "INSERT OR IGNORE INTO queues (name, created_at) VALUES (?1, ?2)",
    [QST_SETTINGS] = "SELECT name, coalesce(concurrency, 0), coalesce(rate_n, 0),"
                     " coalesce(rate_period_ms, 0), paused FROM queues",
    /* Running jobs are at most the workers of live engines: a short walk of jobs_running. */
    [QST_RUNNING] = "SELECT queue, count(*) FROM jobs INDEXED BY jobs_running"
                    " WHERE state = 'running' GROUP BY queue",
    [QST_RESERVED] = "SELECT j.queue, count(*) FROM claims c JOIN jobs j ON j.id = c.job"
                     " GROUP BY j.queue",
    /* Shares of a rate last one period after a start; older rows (and rows of queues without a
     * rate) are dropped. */
    [QST_STARTS_PRUNE] = "DELETE FROM queue_starts WHERE NOT EXISTS (SELECT 1 FROM queues q"
                         " WHERE q.name = queue_starts.queue AND q.rate_n IS NOT NULL"
                         " AND queue_starts.at > ?1 - q.rate_period_ms)",
    [QST_STARTS_RECENT] = "SELECT queue, count(*) FROM queue_starts GROUP BY queue",
    [QST_HEAD_DEFAULT] = "SELECT " JOB_COLUMNS " FROM jobs INDEXED BY jobs_queue"
                         " WHERE state = 'queued' AND queue = 'default'"
                         " AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
                         " ORDER BY priority DESC, run_at, id LIMIT ?1",
    [QST_HEAD_NAMED] = "SELECT " JOB_COLUMNS " FROM jobs INDEXED BY jobs_queue_named"
                       " WHERE state = 'queued' AND queue <> 'default' AND queue = ?2"
                       " AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.job = jobs.id)"
                       " ORDER BY priority DESC, run_at, id LIMIT ?1",
    [QST_STARTED] = "INSERT INTO queue_starts (queue, at) SELECT j.queue, ?2 FROM jobs j"
                    " JOIN queues q ON q.name = j.queue WHERE j.id = ?1 AND q.rate_n IS NOT NULL",
    [QST_SET] = "INSERT INTO queues (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
};

static sqlite3_stmt *qstmt(struct sqlite_store *s, enum qstmt id, aspen_store_error *err)
{
    sqlite3_stmt *st = s->qst[id];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(s->db, qsql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        store_sqlite_err(s, err, rc, "preparing a queue statement");
        return NULL;
    }
    s->qst[id] = st;
    return st;
}

static int failed_prep(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

void sq_queues_close(struct sqlite_store *s)
{
    for (int i = 0; i < SQ_QUEUE_STMTS; i++)
        sqlite3_finalize(s->qst[i]);
}

int sq_migrate_queues(struct sqlite_store *s, aspen_store_error *err)
{
    for (size_t i = 0; i < store_queues_v8_nsql; i++) {
        int rc = sqlite3_exec(s->db, store_queues_v8_sql[i], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_err(s, err, rc, "adding named queues (version 8)");
    }
    return 0;
}

/* Runs a statement to its end. */
static int step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what,
                     aspen_store_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, what);
}

int sq_queue_note(struct sqlite_store *s, const char *queue, int64_t now_ms, aspen_store_error *err)
{
    sqlite3_stmt *st = qstmt(s, QST_NOTE, err);
    if (!st)
        return failed_prep(err);
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    return step_done(s, st, "recording a job's queue", err);
}

int sq_queue_started(struct sqlite_store *s, int64_t job, int64_t at, aspen_store_error *err)
{
    if (!s->rate_seen)
        return 0;
    sqlite3_stmt *st = qstmt(s, QST_STARTED, err);
    if (!st)
        return failed_prep(err);
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, at);
    return step_done(s, st, "recording a start against its queue's rate", err);
}

/* Adds the counts of a "SELECT queue, count(*)" statement into the plan's field at `off`. */
static int read_counts(struct sqlite_store *s, sqlite3_stmt *st, struct store_queue_plan *plan,
                       size_t off, const char *what, aspen_store_error *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        struct store_queue_row *q = store_queue_plan_row(plan, name ? name : "");
        if (!q) {
            sqlite3_reset(st);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
        }
        *(int64_t *)((char *)q + off) += sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, what);
}

static int read_settings(struct sqlite_store *s, struct store_queue_plan *plan,
                         aspen_store_error *err)
{
    sqlite3_stmt *st = qstmt(s, QST_SETTINGS, err);
    if (!st)
        return failed_prep(err);
    if (!store_queue_plan_row(plan, ASPEN_STORE_QUEUE_DEFAULT))
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        struct store_queue_row *q = store_queue_plan_row(plan, name ? name : "");
        if (!q) {
            sqlite3_reset(st);
            return store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading queues");
        }
        q->limit = sqlite3_column_int64(st, 1);
        q->rate_n = sqlite3_column_int64(st, 2);
        q->rate_period_ms = sqlite3_column_int64(st, 3);
        q->paused = sqlite3_column_int(st, 4) != 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "reading queue settings");
}

int sq_claim_restricted(struct sqlite_store *s, bool *restricted, aspen_store_error *err)
{
    s->base.claim_held = false;
    s->base.claim_retry_in_ms = 0;
    *restricted = s->base.n_serve > 0;
    if (*restricted)
        return 0;
    sqlite3_stmt *st = qstmt(s, QST_ACTIVE, err);
    if (!st)
        return failed_prep(err);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *restricted = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_sqlite_err(s, err, rc, "reading whether queues have settings");
    return 0;
}

/* Reads the head of one queue (at most `limit` jobs) into out[got..]. */
static int read_head(struct sqlite_store *s, const struct store_queue_row *q, int64_t limit,
                     aspen_store_job **out, size_t *cap, size_t *got, aspen_store_error *err)
{
    bool is_default = !strcmp(q->name, ASPEN_STORE_QUEUE_DEFAULT);
    sqlite3_stmt *st = qstmt(s, is_default ? QST_HEAD_DEFAULT : QST_HEAD_NAMED, err);
    if (!st)
        return failed_prep(err);
    sqlite3_bind_int64(st, 1, limit);
    if (!is_default)
        sqlite3_bind_text(st, 2, q->name, -1, SQLITE_STATIC);
    int rc, code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        aspen_store_job *grown = store_grow(*out, cap, *got, sizeof **out);
        if (!grown) {
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory claiming jobs");
            break;
        }
        *out = grown;
        code = job_from_row(st, &(*out)[*got], err);
        if (code)
            break;
        (*got)++;
    }
    sqlite3_reset(st);
    if (!code && rc != SQLITE_DONE && rc != SQLITE_ROW)
        code = store_sqlite_err(s, err, rc, "claiming jobs of a queue");
    return code;
}

int sq_claim_queues(struct sqlite_store *s, size_t max, int64_t now_ms, aspen_store_job **out,
                    size_t *got, aspen_store_error *err)
{
    *out = NULL;
    *got = 0;
    struct store_queue_plan plan = {0};
    size_t cap = 0;
    int code = read_settings(s, &plan, err);
    bool rates = false;
    for (size_t i = 0; !code && i < plan.n; i++)
        rates = rates || plan.q[i].rate_n > 0;
    if (rates)
        s->rate_seen = true; /* from now on this handle's starts write their rate shares */
    sqlite3_stmt *st;
    if (!code) {
        st = qstmt(s, QST_RUNNING, err);
        code = st ? read_counts(s, st, &plan, offsetof(struct store_queue_row, running),
                                "counting queues' running jobs", err)
                  : failed_prep(err);
    }
    if (!code) {
        st = qstmt(s, QST_RESERVED, err);
        code = st ? read_counts(s, st, &plan, offsetof(struct store_queue_row, reserved),
                                "counting queues' reserved jobs", err)
                  : failed_prep(err);
    }
    if (!code && (rates || s->rate_seen)) {
        st = qstmt(s, QST_STARTS_PRUNE, err);
        if (!st)
            code = failed_prep(err);
        else {
            sqlite3_bind_int64(st, 1, now_ms);
            code = step_done(s, st, "dropping old rate shares", err);
        }
        if (!code) {
            st = qstmt(s, QST_STARTS_RECENT, err);
            code = st ? read_counts(s, st, &plan, offsetof(struct store_queue_row, recent_starts),
                                    "counting queues' recent starts", err)
                      : failed_prep(err);
        }
    }
    if (code)
        goto done;
    store_queue_plan_decide(&s->base, &plan);
    store_queue_plan_hint(&s->base, &plan);
    for (size_t i = 0; i < plan.n && !code; i++) {
        const struct store_queue_row *q = &plan.q[i];
        if (q->allow <= 0)
            continue;
        int64_t limit = q->allow < (int64_t)max ? q->allow : (int64_t)max;
        code = read_head(s, q, limit, out, &cap, got, err);
    }
    if (code)
        goto done;
    /* Each queue's head came in claim order; together they are cut to the best `max`. */
    if (*got > 1)
        qsort(*out, *got, sizeof **out, store_claim_order);
    while (*got > max)
        aspen_store_job_clear(&(*out)[--*got]);
done:
    store_queue_plan_free(&plan);
    if (code) {
        aspen_store_jobs_free(*out, *got);
        *out = NULL;
        *got = 0;
    }
    return code;
}

/* ---- settings and listing ------------------------------------------------------------------------ */

int sq_queue_set(aspen_store *base, const char *name, unsigned what, int64_t limit, int64_t rate_n,
                 int64_t rate_period_ms, bool paused, int64_t now_ms, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st = qstmt(s, QST_SET, err);
    if (!st) {
        code = failed_prep(err);
        goto rollback;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    code = step_done(s, st, "declaring a queue", err);
    /* Three fixed statements, run only for what is set (not cached: settings change rarely). */
    struct { unsigned bit; const char *sql; } writes[] = {
        {ASPEN_STORE_QUEUE_SET_LIMIT, "UPDATE queues SET concurrency = nullif(?2, 0) WHERE name = ?1"},
        {ASPEN_STORE_QUEUE_SET_RATE, "UPDATE queues SET rate_n = nullif(?2, 0),"
                                     " rate_period_ms = CASE WHEN ?2 > 0 THEN ?3 END WHERE name = ?1"},
        {STORE_QUEUE_SET_PAUSE, "UPDATE queues SET paused = ?2 WHERE name = ?1"},
    };
    for (size_t i = 0; !code && i < sizeof writes / sizeof writes[0]; i++) {
        if (!(what & writes[i].bit))
            continue;
        sqlite3_stmt *w = NULL;
        int rc = sqlite3_prepare_v2(s->db, writes[i].sql, -1, &w, NULL);
        if (rc != SQLITE_OK) {
            code = store_sqlite_err(s, err, rc, "changing a queue's settings");
            break;
        }
        sqlite3_bind_text(w, 1, name, -1, SQLITE_STATIC);
        int64_t v = writes[i].bit == ASPEN_STORE_QUEUE_SET_LIMIT ? limit
                    : writes[i].bit == ASPEN_STORE_QUEUE_SET_RATE ? rate_n
                                                                  : (int64_t)paused;
        sqlite3_bind_int64(w, 2, v);
        sqlite3_bind_int64(w, 3, rate_period_ms);
        rc = sqlite3_step(w);
        sqlite3_finalize(w);
        if (rc != SQLITE_DONE)
            code = store_sqlite_err(s, err, rc, "changing a queue's settings");
    }
    if (code)
        goto rollback;
    return tx_commit(s, "committing a queue's settings", err);
rollback:
    tx_rollback(s);
    return code;
}

/* Runs one ad-hoc statement with ?1 = now (when it takes a parameter), calling row() per row. */
static int each_row(struct sqlite_store *s, const char *sql, int64_t now_ms,
                    void (*row)(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n),
                    aspen_store_queue_info *qs, size_t n, aspen_store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_err(s, err, rc, "listing queues");
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, now_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        row(st, qs, n);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "listing queues");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const aspen_store_queue_info *)a)->name, ((const aspen_store_queue_info *)b)->name);
}

static aspen_store_queue_info *find_info(aspen_store_queue_info *qs, size_t n, sqlite3_stmt *st)
{
    const char *name = (const char *)sqlite3_column_text(st, 0);
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(qs[i].name, name))
            return &qs[i];
    return NULL;
}

static void row_queued(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    aspen_store_queue_info *q = find_info(qs, n, st);
    if (!q)
        return;
    q->queued = sqlite3_column_int64(st, 1);
    q->oldest_waiting_ms = sqlite3_column_int64(st, 2); /* min run_at for now; an age below */
}

static void row_scheduled(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    aspen_store_queue_info *q = find_info(qs, n, st);
    if (!q)
        return;
    q->scheduled = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
        int64_t due = sqlite3_column_int64(st, 2);
        if (!q->oldest_waiting_ms || due < q->oldest_waiting_ms)
            q->oldest_waiting_ms = due;
    }
}

static void row_running(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    aspen_store_queue_info *q = find_info(qs, n, st);
    if (q)
        q->running = sqlite3_column_int64(st, 1);
}

static void row_reserved(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    aspen_store_queue_info *q = find_info(qs, n, st);
    if (q)
        q->reserved = sqlite3_column_int64(st, 1);
}

static void row_finished(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    aspen_store_queue_info *q = find_info(qs, n, st);
    if (q)
        q->finished_last_min = sqlite3_column_int64(st, 1);
}

static void row_capped(sqlite3_stmt *st, aspen_store_queue_info *qs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qs[i].throughput_capped = sqlite3_column_int(st, 0) != 0;
}

int sq_queues(aspen_store *base, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
              aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    struct store_queue_plan plan = {0};
    aspen_store_queue_info *qs = NULL;
    int code = tx_begin_read(s, err);
    if (code)
        return code;
    code = read_settings(s, &plan, err);
    if (code)
        goto done;
    qs = calloc(plan.n, sizeof *qs);
    if (!qs) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing queues");
        goto done;
    }
    /* "default" first (read_settings put it there), then by name. */
    for (size_t i = 0; i < plan.n; i++) {
        snprintf(qs[i].name, sizeof qs[i].name, "%s", plan.q[i].name);
        qs[i].limit = plan.q[i].limit;
        qs[i].rate_n = plan.q[i].rate_n;
        qs[i].rate_period_ms = plan.q[i].rate_period_ms;
        qs[i].paused = plan.q[i].paused;
    }
    if (plan.n > 2)
        qsort(qs + 1, plan.n - 1, sizeof *qs, by_name);
    static const struct {
        const char *sql;
        void (*row)(sqlite3_stmt *, aspen_store_queue_info *, size_t);
    } reads[] = {
        {"SELECT queue, count(*), min(run_at) FROM jobs INDEXED BY jobs_queue_named"
         " WHERE state = 'queued' AND queue <> 'default' GROUP BY queue", row_queued},
        /* The default queue's jobs are the queued ones of no named queue: one walk of jobs_queue. */
        {"SELECT 'default', count(*), min(run_at) FROM jobs INDEXED BY jobs_queue"
         " WHERE state = 'queued' AND queue = 'default'", row_queued},
        {"SELECT queue, count(*), min(CASE WHEN run_at <= ?1 THEN run_at END)"
         " FROM jobs INDEXED BY jobs_due WHERE state = 'scheduled' GROUP BY queue", row_scheduled},
        {"SELECT queue, count(*) FROM jobs INDEXED BY jobs_running WHERE state = 'running'"
         " GROUP BY queue", row_running},
        {"SELECT j.queue, count(*) FROM claims c JOIN jobs j ON j.id = c.job GROUP BY j.queue",
         row_reserved},
        /* runs that finished (succeeded, failed): a cancellation is no throughput — X over
         * 100,000 waiting jobs read >=100000 a minute (trial 24), as the console header did */
        {"SELECT queue, count(*) FROM (SELECT queue, finished_at, state FROM jobs ORDER BY id DESC"
         " LIMIT 100000) WHERE finished_at >= ?1 - 60000 AND state IN ('succeeded', 'failed')"
         " GROUP BY queue", row_finished},
        {"SELECT coalesce((SELECT created_at >= ?1 - 60000 FROM jobs ORDER BY id DESC"
         " LIMIT 1 OFFSET 99999), 0)", row_capped},
    };
    for (size_t i = 0; !code && i < sizeof reads / sizeof reads[0]; i++)
        code = each_row(s, reads[i].sql, now_ms, reads[i].row, qs, plan.n, err);
    if (code)
        goto done;
    for (size_t i = 0; i < plan.n; i++)
        if (qs[i].oldest_waiting_ms)
            qs[i].oldest_waiting_ms =
                now_ms > qs[i].oldest_waiting_ms ? now_ms - qs[i].oldest_waiting_ms : 0;
    *out = qs;
    *n = plan.n;
    qs = NULL;
done:
    tx_rollback(s); /* a read transaction: nothing to keep */
    free(qs);
    store_queue_plan_free(&plan);
    return code;
}

/* ---- a retry or rerun into a removed queue, removing a queue ------------------------------------ */

int sq_queue_renote(struct sqlite_store *s, int64_t id, int64_t now_ms, aspen_store_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, STORE_QUEUE_RENOTE_SQL("?1", "?2"), -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, err, rc, "recording a job's queue");
}

/* The check and the delete in one BEGIN IMMEDIATE: no submit, retry or rerun can put a job in the
 * queue between them (each one writes inside its own write transaction). */
int sq_queue_remove(aspen_store *base, const char *name, aspen_store_queue_held *held,
                    aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int code = tx_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st = NULL;
    /* each count on the index of its state, as the listing reads them */
    int rc = sqlite3_prepare_v2(
        s->db,
        "SELECT EXISTS (SELECT 1 FROM queues WHERE name = ?1),"
        " (SELECT count(*) FROM jobs INDEXED BY jobs_queue_named WHERE state = 'queued'"
        "  AND queue <> 'default' AND queue = ?1),"
        " (SELECT count(*) FROM jobs INDEXED BY jobs_due WHERE state = 'scheduled' AND queue = ?1),"
        " (SELECT count(*) FROM jobs INDEXED BY jobs_running WHERE state = 'running'"
        "  AND queue = ?1)",
        -1, &st, NULL);
    bool exists = false;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            exists = sqlite3_column_int(st, 0) != 0;
            held->queued = sqlite3_column_int64(st, 1);
            held->scheduled = sqlite3_column_int64(st, 2);
            held->running = sqlite3_column_int64(st, 3);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        code = store_sqlite_err(s, err, rc, "counting a queue's jobs");
    else if (!exists)
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "no queue named %s (removed meanwhile?): "
                         "aspen queues%s lists them", name, store_cmd(base));
    /* the schedules whose jobs go to it: their next run would make it again (in this write
     * transaction, so no schedule is added or changed between this read and the delete) */
    char schedules[STORE_QUEUE_RM_NAMES_CAP] = "";
    if (!code) {
        st = NULL;
        rc = sqlite3_prepare_v2(s->db, STORE_QUEUE_RM_SCHEDULES_SQL("?1"), -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                store_queue_rm_add_name(schedules, sizeof schedules,
                                        (const char *)sqlite3_column_text(st, 0));
                held->schedules = sqlite3_column_int64(st, 1);
            }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            code = store_sqlite_err(s, err, rc, "reading the schedules of a queue");
    }
    if (!code && (held->queued || held->scheduled || held->running || held->schedules))
        code = store_queue_held_err(name, held, schedules, store_cmd(base), err);
    static const char *const deletes[] = {"DELETE FROM queue_starts WHERE queue = ?1",
                                          "DELETE FROM queues WHERE name = ?1"};
    for (size_t i = 0; !code && i < sizeof deletes / sizeof deletes[0]; i++) {
        st = NULL;
        rc = sqlite3_prepare_v2(s->db, deletes[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            code = store_sqlite_err(s, err, rc, "removing a queue");
    }
    if (code) {
        tx_rollback(s);
        return code;
    }
    return tx_commit(s, "committing a queue's removal", err);
}
