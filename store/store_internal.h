/* store_internal.h — what the store's source files share and nobody else sees: the handle, the
 * prepared-statement cache, transaction helpers, error mapping, and the single writer of a job's
 * state (job_read/job_write) through which every per-job transition passes. */
#ifndef ASPEN_STORE_INTERNAL_H
#define ASPEN_STORE_INTERNAL_H

#include "aspen_store.h"

#include <sqlite3.h>

/* Cached statements, prepared on first use and kept for the life of the handle. */
enum stmt_id {
    ST_BEGIN_IMMEDIATE,
    ST_BEGIN_DEFERRED,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_JOB_INSERT,
    ST_BINARY_INSERT,
    ST_BINARY_EXISTS,
    ST_BINARY_GET,
    ST_BINARY_REPAIR,
    ST_PAUSED,
    ST_ENGINE_LEASE,
    ST_PROMOTE_DUE,
    ST_CLAIM,
    ST_CLAIM_INSERT,
    ST_CLAIM_OWNER,
    ST_CLAIM_DELETE,
    ST_CLAIM_TAKE,
    ST_CLAIMS_OF_ENGINE_DELETE,
    ST_CLAIMS_ORPHANS_DELETE,
    ST_JOB_READ,
    ST_JOB_WRITE,
    ST_JOB_WRITE_SMALL,
    ST_JOB_LOGCOUNT_WRITE,
    ST_ATTEMPT_INSERT,
    ST_LOG_INSERT,
    ST_JOB_GET,
    ST_ATTEMPTS_GET,
    ST_LOGS_GET,
    ST_COUNTS,
    ST_COUNTS_ADD,
    ST_OLDEST_QUEUED,
    ST_OLDEST_DUE,
    ST_DATA_VERSION,
    ST_SETTING_GET,
    ST_SETTING_SET,
    ST_SETTING_DEL,
    ST_ENGINE_INSERT,
    ST_ENGINE_RENEW,
    ST_ENGINE_GET,
    ST_ENGINE_DELETE,
    ST_ENGINES_LIST,
    ST_ENGINES_EXPIRED_DELETE,
    ST_ORPHANS,
    ST_RUNNING_OF_ENGINE,
    ST_CANCEL_REQUESTS,
    ST_RERUN,
    ST_DELETE_LOGS,
    ST_DELETE_ATTEMPTS,
    ST_DELETE_JOB,
    ST_PAYLOAD_INSERT,
    ST_PAYLOAD_COPY,
    ST_DELETE_PAYLOAD,
    ST_COUNT
};

struct aspen_store {
    sqlite3 *db;
    char *path;
    int log_cap;
    int busy_timeout_ms;
    bool read_only;
    sqlite3_stmt *st[ST_COUNT];
    /* Net change of jobs per state in the open write transaction; flushed by tx_commit. */
    int64_t count_delta[ASPEN_STORE_STATE_COUNT];
};

/* A job's payload: in its row when small, else (schema 4, payload_ext = 1) in job_payloads, so
 * that the many writes of a job's state never rewrite a big payload. */
#define PAYLOAD_EXPR                                                                               \
    "(CASE WHEN jobs.payload_ext THEN (SELECT p.payload FROM job_payloads p WHERE p.id = jobs.id)" \
    " ELSE jobs.payload END)"
/* Payloads longer than this live in job_payloads. */
#define PAYLOAD_INLINE_MAX 256

/* The jobs columns read back into an aspen_store_job, in this order (see job_from_row). */
#define JOB_COLUMNS                                                                                 \
    "id, type, binary_sha256, binary_name, " PAYLOAD_EXPR ", state, priority, run_at, attempts, "  \
    "max_attempts, timeout_ms, memory_bytes, isolation, tags, created_at, started_at, "            \
    "finished_at, result, error, rerun_of, owner, cancel_requested, source_dir, log_count, "       \
    "log_dropped"

/* Fills err (if any) and returns code. */
int store_err(aspen_store_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a failed SQLite call (rc) on s while doing `what` to an ASPEN_STORE_E* code and a message
 * with advice (locked, corrupt, full, read-only, ...). */
int store_sqlite_err(aspen_store *s, aspen_store_error *err, int rc, const char *what);

/* The cached statement `id`, reset and unbound; NULL with err filled on failure. */
sqlite3_stmt *store_stmt(aspen_store *s, enum stmt_id id, aspen_store_error *err);

/* The SQL text of a cached statement (tests check its query plan). */
const char *store_stmt_sql(enum stmt_id id);

int tx_begin(aspen_store *s, aspen_store_error *err);          /* BEGIN IMMEDIATE */
int tx_begin_read(aspen_store *s, aspen_store_error *err);     /* BEGIN (deferred) */
int tx_commit(aspen_store *s, const char *what, aspen_store_error *err);
void tx_rollback(aspen_store *s);

/* Records that n jobs moved from → to (ASPEN_STORE_STATE_NEW for a new job, or to NEW for a
 * deleted one) in the open write transaction, for job_counts. */
void counts_note(aspen_store *s, aspen_store_state from, aspen_store_state to, int64_t n);

/* Text of a state column → enum (-1 when unknown). */
int state_from_text(const unsigned char *text);

/* The per-job mutable fields the transition writer touches. */
struct job_row {
    int64_t id;
    aspen_store_state state;
    int64_t run_at;
    int attempts, max_attempts;
    int64_t started_at, finished_at; /* 0 = NULL */
    int64_t owner;                   /* 0 = NULL */
    bool cancel_requested;
    int log_count;
    int64_t log_dropped;
    /* Write-only: field_update marks a write that keeps the state (cancel_requested); every other
     * write must be an edge of the transition table, even to the same state. */
    bool field_update;
    /* Write-only: a reserved (queued) job that started and finished within one group commit: the
     * write is checked as queued → running → after.state, both edges of the table. */
    bool via_running;
    /* Write-only: set_error/set_result replace the column (NULL pointer → SQL NULL). */
    bool set_error;
    const char *error;
    bool set_result;
    const void *result;
    size_t result_size;
};

/* Reads a job's mutable fields; ENOTFOUND when no such job. */
int job_read(aspen_store *s, int64_t id, struct job_row *row, aspen_store_error *err);
/* THE writer of a job's state: checks the transition before → after against the table (unless
 * after->field_update and the state is unchanged), then writes
 * after's fields WHERE id AND state = before.state. ESTATE if illegal or if the row moved. */
int job_write(aspen_store *s, const struct job_row *before, const struct job_row *after,
              aspen_store_error *err);

/* The engine holding a reservation (claims row) on a job, 0 when none. */
int claim_owner(aspen_store *s, int64_t job, int64_t *engine, aspen_store_error *err);
/* Deletes engine's reservation of a job; ELEASE (naming who holds it, if anyone) when it has none. */
int claim_take(aspen_store *s, int64_t engine, int64_t job, aspen_store_error *err);
/* Deletes a job's reservation, whoever holds it (no-op when none). */
int claim_delete(aspen_store *s, int64_t job, aspen_store_error *err);

/* Inserts log lines for one job, honouring the cap; updates row->log_count/log_dropped (the
 * caller writes them back). */
int logs_insert(aspen_store *s, struct job_row *row, int attempt, const aspen_store_log_line *lines,
                size_t n, aspen_store_error *err);

/* Writes one attempts row (numbers never repeat: release gives its number back unused). */
int store_insert_attempt(aspen_store *s, int64_t job, int number, int64_t engine, int64_t started,
                         int64_t finished, const aspen_store_attempt_stats *stats,
                         const char *outcome, const char *error, bool recovered,
                         aspen_store_error *err);
/* Per-job operator actions, inside the caller's write transaction. */
int store_cancel_one(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
                     aspen_store_error *err);
int store_retry_one(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
/* Releases every running job of an engine (attempts given back), inside a write transaction. */
int store_release_all(aspen_store *s, int64_t engine_id, int64_t *released, aspen_store_error *err);

/* Fills job from the current row of stmt, JOB_COLUMNS starting at column 0. ENOMEM on failure. */
int job_from_row(sqlite3_stmt *st, aspen_store_job *job, aspen_store_error *err);

char *store_strdup(const char *s);

/* Room for one more element in a growing array of `count` elements of `elem` bytes with capacity
 * *cap (doubling from 16): returns the array, moved if it had to grow, or NULL (the old array
 * still valid and owned by the caller) when memory ran out. */
void *store_grow(void *arr, size_t *cap, size_t count, size_t elem);

#endif
