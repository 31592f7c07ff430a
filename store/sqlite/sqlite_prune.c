/* sqlite_prune.c — the SQLite backend's batched deletes: retention's prune (the oldest finished
 * jobs of one state, read on jobs_finished) and delete_jobs (the finished ones among given ids),
 * each ONE short BEGIN IMMEDIATE transaction of at most ASPEN_STORE_PRUNE_MAX jobs, so a pruner
 * holds the write lock for milliseconds at a time and the engine's group commits go on between
 * its batches.
 *
 * A prune may also carry a time bound (aspen_store_prune_timed): the batch's size is only a guess
 * at its time (a cold page cache or a loaded disk makes 500 jobs take 5 ms or 150 ms), and every
 * claim waits for the write lock while the batch holds it. So the batch looks at the clock after
 * each job and, past the bound, commits what it has: a claim waits about the bound, not the
 * batch's worst case. It also commits early once another connection of the process starts
 * waiting for the lock (sq_busy_other_waiting: the engine's claims), so such a claim waits about
 * one job's deletes and a commit. The engine runs its retention batches on its store thread's own
 * handle (engine/retention.c: one writer, no lock waits between the two), and that thread's claims
 * cut the batch the same way through the handle's prune_yield (aspen_store_prune_yield_set).
 *
 * Everything that belongs to a job goes with it: the rows of job_tables below, and attempt_data
 * through its trigger (schema 6). A table keyed by job added later belongs in job_tables. */
#include "sqlite_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each a DELETE of one job's rows in another table (?1 = the job's id), the job row last. */
static const char *const job_tables[] = {
    "DELETE FROM logs WHERE job = ?1",
    "DELETE FROM attempts WHERE job = ?1",
    "DELETE FROM job_payloads WHERE id = ?1",
    "DELETE FROM job_unique WHERE job = ?1",
    "DELETE FROM jobs WHERE id = ?1",
};
#define N_TABLES (sizeof job_tables / sizeof job_tables[0])

struct deleter {
    sqlite3_stmt *state; /* the job's state */
    sqlite3_stmt *del[N_TABLES];
};

static void deleter_free(struct deleter *d)
{
    sqlite3_finalize(d->state);
    for (size_t i = 0; i < N_TABLES; i++)
        sqlite3_finalize(d->del[i]);
}

static int deleter_init(struct sqlite_store *s, struct deleter *d, const char *what,
                        aspen_store_error *err)
{
    memset(d, 0, sizeof *d);
    int rc = sqlite3_prepare_v2(s->db, "SELECT state FROM jobs WHERE id = ?1", -1, &d->state, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < N_TABLES; i++)
        rc = sqlite3_prepare_v2(s->db, job_tables[i], -1, &d->del[i], NULL);
    if (rc != SQLITE_OK) {
        int code = store_sqlite_err(s, err, rc, what);
        deleter_free(d);
        return code;
    }
    return 0;
}

/* The deletes of one finished job (state: its state, for the kept counts). */
static int delete_rows(struct sqlite_store *s, struct deleter *d, int64_t id,
                       aspen_store_state state, bool *gone, const char *what,
                       aspen_store_error *err)
{
    for (size_t i = 0; i < N_TABLES; i++) {
        sqlite3_reset(d->del[i]);
        sqlite3_bind_int64(d->del[i], 1, id);
        int rc = sqlite3_step(d->del[i]);
        if (rc != SQLITE_DONE)
            return store_sqlite_err(s, err, rc, what);
    }
    counts_note(s, state, ASPEN_STORE_STATE_NEW, 1);
    *gone = true;
    return 0;
}

/* Deletes job id with its rows if it is finished; *gone says whether it went. known: the job's
 * state when the caller read it in this same transaction (the prune's SELECT by state), so it is
 * not read again; -1 to look it up. */
static int delete_one(struct sqlite_store *s, struct deleter *d, int64_t id, int known, bool *gone,
                      const char *what, aspen_store_error *err)
{
    *gone = false;
    if (known >= 0)
        return delete_rows(s, d, id, (aspen_store_state)known, gone, what, err);
    sqlite3_reset(d->state);
    sqlite3_bind_int64(d->state, 1, id);
    int rc = sqlite3_step(d->state);
    if (rc == SQLITE_DONE)
        return 0; /* not there (deleted meanwhile): nothing to do */
    if (rc != SQLITE_ROW)
        return store_sqlite_err(s, err, rc, what);
    int state = state_from_text(sqlite3_column_text(d->state, 0));
    sqlite3_reset(d->state);
    if (state < 0 || !aspen_store_state_is_final((aspen_store_state)state))
        return 0; /* queued, scheduled, running: left alone */
    return delete_rows(s, d, id, (aspen_store_state)state, gone, what, err);
}

/* The COMMIT of a prune writes every page its deletes dirtied to the log, and with the many
 * indexes on jobs that is 5-8 pages a job: measured here, 300-480 pages and 3-7 ms for a 50-job
 * batch whose deletes took under 1 ms (docs/BENCHMARKS.md). So a bound must count the commit to
 * come, not only the deletes so far: its estimate is the jobs deleted so far times the CPU time
 * this handle's last prune commits took per job (50 us, about 6 pages, until one was measured).
 * CPU time, not wall time: a commit now and then waits 10-40 ms off the CPU (the file system
 * behind a checkpoint's fsync) whatever its size, and counting that per job would shrink every
 * batch after it to a few jobs for nothing. */
#define PRUNE_COMMIT_US_PER_JOB_FIRST 50.0

static int64_t commit_estimate_us(const struct sqlite_store *s, int64_t jobs)
{
    double per = s->prune_commit_us_per_job > 0 ? s->prune_commit_us_per_job
                                                : PRUNE_COMMIT_US_PER_JOB_FIRST;
    return (int64_t)((double)jobs * per);
}

/* Deletes the finished jobs among ids; with deadline_us > 0 it stops once the monotonic clock
 * plus the estimated commit (commit_estimate_us) passes it, as soon as another connection of this
 * process waits for the write lock (a claim or a submit: sqlite_busy.c), or when the handle's
 * prune_yield says its thread has other work (the engine's store thread running the batch
 * itself), and *cut then says so. At least one job goes first, so a bound shorter than one
 * job's delete, or a waiter always there, still makes progress. */
static int delete_ids(struct sqlite_store *s, const int64_t *ids, size_t n, int known,
                      int64_t deadline_us, int64_t *deleted, bool *cut, const char *what,
                      aspen_store_error *err)
{
    struct deleter d;
    int code = deleter_init(s, &d, what, err);
    for (size_t i = 0; !code && i < n; i++) {
        if (i > 0 && deadline_us > 0 &&
            (store_mono_us() + commit_estimate_us(s, *deleted) >= deadline_us ||
             sq_busy_other_waiting(&s->busy) ||
             (s->base.prune_yield && s->base.prune_yield(s->base.prune_yield_ctx)))) {
            *cut = true;
            break;
        }
        bool gone = false;
        code = delete_one(s, &d, ids[i], known, &gone, what, err);
        *deleted += gone;
    }
    deleter_free(&d);
    return code;
}

int sq_delete_jobs(aspen_store *base, const int64_t *ids, size_t n, int64_t *deleted,
                   aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int64_t k = 0;
    int code = tx_begin(s, err);
    if (code)
        return code;
    bool cut = false;
    code = delete_ids(s, ids, n, -1, 0, &k, &cut, "deleting jobs", err);
    if (code) {
        tx_rollback(s);
        return code;
    }
    code = tx_commit(s, "deleting jobs", err);
    if (!code)
        *deleted = k;
    return code;
}

/* The batch: read on jobs_finished (state, finished_at), oldest first, so a state's expired jobs
 * are found without reading its newer ones or any unfinished job. */
int sq_prune(aspen_store *base, aspen_store_state state, int64_t finished_before_ms, size_t max,
             int64_t budget_us, aspen_store_prune_result *out, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    int64_t *ids = malloc(max * sizeof *ids);
    if (!ids)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory pruning %zu jobs", max);
    int64_t k = 0;
    size_t n = 0;
    int code = tx_begin(s, err);
    if (code) {
        free(ids);
        return code;
    }
    /* the bound counts from holding the write lock: waiting for it stalls nobody */
    int64_t locked_at = store_mono_us(), deadline = budget_us > 0 ? locked_at + budget_us : 0;
    bool cut = false;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id FROM jobs INDEXED BY jobs_finished WHERE state = ?1"
                                " AND finished_at < ?2 ORDER BY finished_at LIMIT ?3",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, aspen_store_state_name(state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, finished_before_ms);
        sqlite3_bind_int64(st, 3, (int64_t)max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
            ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        code = store_sqlite_err(s, err, rc, "finding finished jobs to prune");
    if (!code)
        code = delete_ids(s, ids, n, (int)state, deadline, &k, &cut, "pruning finished jobs", err);
    free(ids);
    if (code) {
        tx_rollback(s);
        return code;
    }
    int64_t cpu_at = store_thread_cpu_us(), inline0 = s->ckpt.inline_us;
    code = tx_commit(s, "pruning finished jobs", err);
    if (!code) {
        int64_t end = store_mono_us();
        /* a checkpoint the commit ran (its WAL hook) is no cost of the pages */
        int64_t took = store_thread_cpu_us() - cpu_at - (s->ckpt.inline_us - inline0);
        if (k >= 4) { /* a few jobs say more of the commit's fixed cost than of theirs */
            double per = (double)(took > 0 ? took : 0) / (double)k;
            s->prune_commit_us_per_job = s->prune_commit_us_per_job > 0
                                             ? 0.7 * s->prune_commit_us_per_job + 0.3 * per
                                             : per;
        }
        out->deleted = k;
        out->more = cut || n >= max;
        out->held_us = end - locked_at;
        out->log_pages = s->ckpt.log_pages;
    }
    return code;
}

/* aspen purge's count: the same range of jobs_finished the batches read, counted in the index. */
int sq_prune_count(aspen_store *base, aspen_store_state state, int64_t finished_before_ms,
                   int64_t *count, aspen_store_error *err)
{
    struct sqlite_store *s = sq(base);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT count(*) FROM jobs INDEXED BY jobs_finished WHERE state = ?1"
                                " AND finished_at < ?2",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, aspen_store_state_name(state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, finished_before_ms);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *count = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_sqlite_err(s, err, rc, "counting finished jobs to purge");
}
