/* sqlite_store.h — what the SQLite backend's source files share and nobody else sees: the
 * handle, the prepared-statement cache, transaction helpers, error mapping, the single writer of a
 * job's state (job_read/job_write) through which every per-job transition passes, and the
 * functions its ops table (sqlite_open.c) points at. */
#ifndef ASPEN_STORE_SQLITE_H
#define ASPEN_STORE_SQLITE_H

#include "store_backend.h"

#include <pthread.h>
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
    ST_ENGINE_HEARTBEAT,
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
    ST_ATTEMPT_DATA_PUT, /* a completion's replay record (sqlite_attempt_data.c) */
    ST_UNIQUE_FIND,
    ST_UNIQUE_INSERT,
    ST_UNIQUE_GET,
    ST_DELETE_UNIQUE,
    ST_KEEP_MAX_ATTEMPTS, /* schema version 17: a retry keeps the max attempts as submitted */
    ST_LOG_FEED,     /* schema version 12: every job's lines after a cursor */
    ST_LOG_FEED_END,
    ST_LOG_TX_BUMP, /* the feed's counter, one up before a write of log lines */
    ST_COUNT
};

/* How a connection waits for a lock another one holds (sqlite_busy.c): short sleeps while the
 * wait is young, longer ones after, SQLITE_BUSY once timeout_ms have passed. */
#define SQ_BUSY_FIRST_US 50          /* the first sleep of a wait */
#define SQ_BUSY_STEP_US 200          /* ... doubling up to this while the wait is young */
#define SQ_BUSY_FAST_US 25000        /* how long a wait counts as young */
#define SQ_BUSY_MAX_US 50000         /* the longest sleep of an old wait */
struct sq_busy {
    int timeout_ms;
    int64_t since_us; /* when the current wait began (store_mono_us) */
};
/* The sleep before try count + 1 of a wait that has lasted waited_us, in µs; -1: give up (the
 * wait reached timeout_us). Pure, so its schedule is tested without a clock. */
int64_t sq_busy_delay_us(int count, int64_t waited_us, int64_t timeout_us);
/* Puts b (owned by the caller, living as long as db) as db's busy handler. */
void sq_busy_install(sqlite3 *db, struct sq_busy *b, int timeout_ms);
/* Whether a connection of this process other than self's is waiting for a lock: its busy handler
 * ran within the last SQ_BUSY_WAITING_US (a waiter tries at least every SQ_BUSY_STEP_US while its
 * wait is young). */
#define SQ_BUSY_WAITING_US 2000
bool sq_busy_other_waiting(const struct sq_busy *self);

/* A writable handle's checkpointer (sqlite_checkpoint.c): a thread and its own connection that
 * copy the write-ahead log into the database, so no COMMIT of the handle waits for it. */
struct store_checkpointer {
    bool started, failed, want, stop;
    bool running; /* a checkpoint is under way (the thread's, or the writer's own) */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;
    struct sq_busy busy;
    uint64_t runs; /* checkpoints run, for tests */
    int log_pages; /* the write-ahead log's length after this handle's last commit (its hook) */
    int64_t inline_us; /* CPU time of the writer's own checkpoints (inside its COMMITs), in all */
};

/* The group commit's batched statements (sqlite_group.c), prepared on first use per size. */
enum group_stmt { GROUP_WRITE, GROUP_ATTEMPT, GROUP_LOG, GROUP_CLAIM, GROUP_KINDS };
#define GROUP_ROWS 32 /* jobs per batched statement; a power of two */
#define GROUP_LOG2_MAX 5 /* log2(GROUP_ROWS) */

/* An SQLite handle: one connection. base.name is the path. */
struct sqlite_store {
    struct aspen_store base; /* first: a struct sqlite_store * is an aspen_store * */
    sqlite3 *db;
    int busy_timeout_ms;
    struct sq_busy busy; /* db's lock waits (sqlite_busy.c) */
    bool read_only;
    sqlite3_stmt *st[ST_COUNT];
    /* Net change of jobs per state in the open write transaction; flushed by tx_commit. */
    int64_t count_delta[ASPEN_STORE_STATE_COUNT];
    struct store_checkpointer ckpt;
    /* What a prune's COMMIT costs per job it deleted (the pages it writes), measured
     * (sqlite_prune.c) */
    double prune_commit_us_per_job;
    /* Named queues (sqlite_queues.c): its own cached statements, and whether a claim of this
     * handle ever saw a rate limit (then its starts write rate shares). */
#define SQ_QUEUE_STMTS 16
    sqlite3_stmt *qst[SQ_QUEUE_STMTS];
    bool rate_seen;
    sqlite3_stmt *group_st[GROUP_KINDS][GROUP_LOG2_MAX + 1]; /* [kind][log2 rows], sqlite_group.c */
    /* The batched job-row UPDATEs, one per set of columns they change (sqlite_group.c), reused
     * round robin past SQ_WRITE_SHAPES sets. */
#define SQ_WRITE_SHAPES 8
    struct sq_write_shape {
        unsigned columns; /* 0: unused */
        sqlite3_stmt *st[GROUP_LOG2_MAX + 1];
    } write_shape[SQ_WRITE_SHAPES];
    unsigned write_shape_next;
};

/* A job's payload: in its row when small, else (schema 4, payload_ext = 1) in job_payloads, so
 * that the many writes of a job's state never rewrite a big payload. */
#define PAYLOAD_EXPR                                                                               \
    "(CASE WHEN jobs.payload_ext THEN (SELECT p.payload FROM job_payloads p WHERE p.id = jobs.id)" \
    " ELSE jobs.payload END)"
/* A log line's feed number (schema version 12, migrate_v12): the counter in settings, which
 * ST_LOG_TX_BUMP moves one up before each write of lines. Never max(tx) + 1: after the newest
 * lines are deleted (a purge, aspen delete) that would hand out again a number a follower has
 * already passed, and the new lines would never reach it. */
#define SQ_LOG_TX_KEY "'log.feed_tx'"
#define SQ_LOG_TX "(SELECT CAST(value AS INTEGER) FROM settings WHERE key = " SQ_LOG_TX_KEY ")"
/* A new job's id (schema version 13, migrate_v13): NULL — SQLite's max(id) + 1 — unless the
 * newest jobs were deleted, then one past the highest deleted id the trigger noted, so an id a
 * user or script holds never comes to name another job. The note stays; once a larger id exists
 * the comparison sends NULL again. */
#define SQ_JOB_ID_FLOOR_KEY "'jobs.id_floor'"
#define SQ_JOB_NEXT_ID                                                                             \
    "(SELECT f + 1 FROM (SELECT CAST(value AS INTEGER) AS f FROM settings WHERE key = "           \
    SQ_JOB_ID_FLOOR_KEY ") WHERE f >= coalesce((SELECT max(id) FROM jobs), 0))"
/* Payloads longer than this live in job_payloads. */
#define PAYLOAD_INLINE_MAX 256

/* The jobs columns read back into an aspen_store_job, in this order (see job_from_row). */
#define JOB_COLUMNS                                                                               \
    "id, type, binary_sha256, binary_name, " PAYLOAD_EXPR ", state, priority, run_at, attempts, " \
    "max_attempts, timeout_ms, memory_bytes, isolation, tags, created_at, started_at, "           \
    "finished_at, result, error, rerun_of, owner, cancel_requested, source_dir, log_count, "      \
    "log_dropped, queue"

/* Maps a failed SQLite call (rc) on s while doing `what` to an ASPEN_STORE_E* code and a message
 * with advice (locked, corrupt, full, read-only, ...). */
int store_sqlite_err(struct sqlite_store *s, aspen_store_error *err, int rc, const char *what);

/* The cached statement `id`, reset and unbound; NULL with err filled on failure. */
sqlite3_stmt *store_stmt(struct sqlite_store *s, enum stmt_id id, aspen_store_error *err);

/* The SQL text of a cached statement (tests check its query plan). */
const char *store_stmt_sql(enum stmt_id id);

/* The checkpointer: init registers the WAL hook (writable handles), stop joins the thread. */
void store_checkpointer_init(struct sqlite_store *s);
void store_checkpointer_stop(struct sqlite_store *s);
uint64_t store_checkpointer_runs(struct sqlite_store *s);

int tx_begin(struct sqlite_store *s, aspen_store_error *err);      /* BEGIN IMMEDIATE */
int tx_begin_read(struct sqlite_store *s, aspen_store_error *err); /* BEGIN (deferred) */
int tx_commit(struct sqlite_store *s, const char *what, aspen_store_error *err);
void tx_rollback(struct sqlite_store *s);

/* Records that n jobs moved from → to (ASPEN_STORE_STATE_NEW for a new job, or to NEW for a
 * deleted one) in the open write transaction, for job_counts. */
void counts_note(struct sqlite_store *s, aspen_store_state from, aspen_store_state to, int64_t n);


/* Reads a job's mutable fields; ENOTFOUND when no such job. */
int job_read(struct sqlite_store *s, int64_t id, struct store_job_row *row, aspen_store_error *err);
/* THE writer of a job's state: checks the transition before → after against the table (unless
 * after->field_update and the state is unchanged), then writes
 * after's fields WHERE id AND state = before.state. ESTATE if illegal or if the row moved. */
int job_write(struct sqlite_store *s, const struct store_job_row *before, const struct store_job_row *after,
              aspen_store_error *err);

/* job_write without the transition check: the UPDATE WHERE id AND state = before.state, the
 * counts noted; ESTATE if the row moved. */
int job_write_row(struct sqlite_store *s, const struct store_job_row *before,
                  const struct store_job_row *after, aspen_store_error *err);
/* The transition check job_write makes before it writes. */
int job_write_check(const struct store_job_row *before, const struct store_job_row *after,
                    aspen_store_error *err);

/* A group commit's pending writes (sqlite_group.c): per job its attempt row, log lines and job
 * row, written GROUP_ROWS jobs at a time. */
struct group_item {
    struct store_job_row before, after; /* after.error may point into errbuf */
    bool has_attempt;                   /* a completion: an attempts row, number/engine/... */
    int number;
    int64_t engine, started, finished;
    const aspen_store_attempt_stats *stats;
    const char *outcome;
    const aspen_store_log_line *logs; /* written into after's counts at the flush */
    size_t n_logs;
    int log_attempt;
    int *status;                    /* the caller's status of this item: a refusal lands here */
    aspen_store_state *final_state; /* the caller's final state: set once the row is written */
    const aspen_store_completion *replay; /* its replay record goes with it (sq_commit_replay) */
    bool refused;
    unsigned columns; /* the job-row columns its write changes (set by the flush) */
    char errbuf[640]; /* the default error, or an automatic retry's refusal (unique key held) */
    char marker[160]; /* the truncation marker's text, when this job's lines reach the cap */
};
struct sq_group {
    struct sqlite_store *s;
    size_t n;
    size_t bytes; /* results held by the waiting rows: a batched UPDATE copies them all at once */
    size_t *refused;                 /* the commit's refusal count */
    aspen_store_error *first_refusal; /* filled by the commit's first refusal */
    struct group_item it[GROUP_ROWS];
};
void group_init(struct sq_group *g, struct sqlite_store *s, size_t *refused,
                aspen_store_error *first_refusal);
/* A job with a write waiting in the group (read it only after group_flush). */
bool group_holds(const struct sq_group *g, int64_t id);
/* The next item to fill (zeroed); group_add queues it (flushing a full group). */
struct group_item *group_next(struct sq_group *g);
int group_add(struct sq_group *g, aspen_store_error *err);
/* Inserts engine's reservations (claims rows) of jobs[0..n), GROUP_ROWS per statement. */
int group_reserve(struct sqlite_store *s, const aspen_store_job *jobs, size_t n, int64_t engine,
                  int64_t now_ms, aspen_store_error *err);
/* Writes what waits: attempts, then log lines, then job rows. A per-item refusal goes to its
 * status; any other failure is returned (the caller rolls back). */
int group_flush(struct sq_group *g, aspen_store_error *err);
/* The SQL of a batched statement for `rows` rows (malloc'd; tests read its query plan). For
 * GROUP_WRITE: the UPDATE that sets every column group_write_sql can name. */
char *group_sql(enum group_stmt kind, size_t rows);
/* The batched job-row UPDATE for `rows` rows that sets only `columns` (WRITE_* bits of
 * sqlite_group.c; malloc'd). */
char *group_write_sql(unsigned columns, size_t rows);

/* The engine holding a reservation (claims row) on a job, 0 when none. */
int claim_owner(struct sqlite_store *s, int64_t job, int64_t *engine, aspen_store_error *err);
/* Deletes engine's reservation of a job; ELEASE (naming who holds it, if anyone) when it has none. */
int claim_take(struct sqlite_store *s, int64_t engine, int64_t job, aspen_store_error *err);
/* Deletes a job's reservation, whoever holds it (no-op when none). */
int claim_delete(struct sqlite_store *s, int64_t job, aspen_store_error *err);

/* Inserts log lines for one job, honouring the cap; updates row->log_count/log_dropped (the
 * caller writes them back). */
/* Moves the log feed's counter one up (ST_LOG_TX_BUMP): before lines are written, in the same
 * transaction, so they take a number no follower has passed yet. */
int logs_tx_bump(struct sqlite_store *s, aspen_store_error *err);
int logs_insert(struct sqlite_store *s, struct store_job_row *row, int attempt,
                const aspen_store_log_line *lines, size_t n, aspen_store_error *err);

/* Writes one attempts row (numbers never repeat: release gives its number back unused). */
int store_insert_attempt(struct sqlite_store *s, int64_t job, int number, int64_t engine,
                         int64_t started, int64_t finished, const aspen_store_attempt_stats *stats,
                         const char *outcome, const char *error, bool recovered,
                         aspen_store_error *err);
/* Inserts one job inside the caller's write transaction, exactly as a submit does (the
 * schedules' enqueue: the job and its occurrence key commit together). */
int store_sqlite_insert_job(struct sqlite_store *s, const aspen_store_job_spec *j, int64_t now_ms,
                            int64_t *id, aspen_store_error *err);
/* Per-job operator actions, inside the caller's write transaction. */
int store_cancel_one(struct sqlite_store *s, int64_t id, int64_t now_ms,
                     aspen_store_cancel_result *result, aspen_store_error *err);
/* One retry inside the caller's transaction. A job whose unique key another job holds is left
 * as it is: ESTATE with the refusal in err, and *held (may be NULL) filled. */
int store_retry_one(struct sqlite_store *s, int64_t id, int64_t now_ms, aspen_store_retry_skip *held,
                    bool *was_held, aspen_store_error *err);
/* Releases every running job of an engine (attempts given back), inside a write transaction. */
int store_release_all(struct sqlite_store *s, int64_t engine_id, int64_t *released,
                      aspen_store_error *err);

/* Fills job from the current row of stmt, JOB_COLUMNS starting at column 0. ENOMEM on failure. */
int job_from_row(sqlite3_stmt *st, aspen_store_job *job, aspen_store_error *err);

/* The SQLite handle behind a public one (whose ops are store_sqlite_ops). */
static inline struct sqlite_store *sq(aspen_store *s) { return (struct sqlite_store *)s; }

extern const struct store_ops store_sqlite_ops;

/* Named queues (sqlite_queues.c). */
int sq_migrate_queues(struct sqlite_store *s, aspen_store_error *err); /* version 8 */
void sq_queues_close(struct sqlite_store *s);
/* A job submitted to a named queue makes its queues row (first use), in the submit's transaction. */
int sq_queue_note(struct sqlite_store *s, const char *queue, int64_t now_ms, aspen_store_error *err);
/* Inside the claim transaction: whether the claim must go queue by queue (some queue has a
 * setting, or the handle serves only some queues). */
int sq_claim_restricted(struct sqlite_store *s, bool *restricted, aspen_store_error *err);
/* Inside the claim transaction: up to max unreserved due jobs within every queue's allowance, in
 * claim order (the caller writes their reservations). */
int sq_claim_queues(struct sqlite_store *s, size_t max, int64_t now_ms, aspen_store_job **out,
                    size_t *got, aspen_store_error *err);
/* A reserved job starts at `at`: its rate share, when its queue has a rate (handles that saw one). */
int sq_queue_started(struct sqlite_store *s, int64_t job, int64_t at, aspen_store_error *err);
int sq_queue_set(aspen_store *s, const char *name, unsigned what, int64_t limit, int64_t rate_n,
                 int64_t rate_period_ms, bool paused, int64_t now_ms, aspen_store_error *err);
/* After a retry or rerun of job id, inside its transaction: its named queue's row again
 * (STORE_QUEUE_RENOTE_SQL). */
int sq_queue_renote(struct sqlite_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
int sq_queue_remove(aspen_store *s, const char *name, aspen_store_queue_held *held,
                    aspen_store_error *err);
int sq_queues(aspen_store *s, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
              aspen_store_error *err);

/* The ops table's entries (contracts: the public functions of the same names). */
void sq_close(aspen_store *s);
int sq_check(aspen_store *s, aspen_store_error *err);
int sq_recount(aspen_store *s, aspen_store_error *err);
int sq_setting_set(aspen_store *s, const char *key, const char *value, aspen_store_error *err);
int sq_setting_get(aspen_store *s, const char *key, char **value, aspen_store_error *err);
int sq_checkpoint(aspen_store *s, aspen_store_error *err);
int sq_data_version(aspen_store *s, uint64_t *version, aspen_store_error *err);
int sq_put_binary(aspen_store *s, const void *bytes, size_t size, const char *name, int64_t now_ms,
                  char sha256_out[65], aspen_store_error *err);
int sq_get_binary(aspen_store *s, const char *sha256, aspen_store_binary *out,
                  aspen_store_error *err);
int sq_submit_batch(aspen_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                    const char *const *keys, int64_t *ids_out, aspen_store_submitted *out,
                    aspen_store_error *err);
int sq_job_unique_rule(aspen_store *s, int64_t id, aspen_store_job_rule *out, aspen_store_error *err);
/* Whether another job holds job id's unique key by id's own rule (*found, *skip), inside the
 * caller's write transaction (retry, run now). */
int sq_unique_held(struct sqlite_store *s, int64_t id, int64_t now_ms, bool *found,
                   aspen_store_retry_skip *skip, aspen_store_error *err);
int sq_prune_count(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                   int64_t *count, aspen_store_error *err);
int sq_prune(aspen_store *s, aspen_store_state state, int64_t finished_before_ms, size_t max,
             int64_t budget_us, aspen_store_prune_result *out, aspen_store_error *err);
int sq_delete_jobs(aspen_store *s, const int64_t *ids, size_t n, int64_t *deleted,
                   aspen_store_error *err);
int sq_claim(aspen_store *s, int64_t engine_id, size_t max, int64_t now_ms, aspen_store_job **jobs,
             size_t *n, bool *paused, aspen_store_error *err);
int sq_unclaim(aspen_store *s, int64_t engine_id, const int64_t *ids, size_t n,
               aspen_store_error *err);
int sq_append_logs(aspen_store *s, const aspen_store_log_line *lines, size_t n,
                   aspen_store_error *err);
int sq_commit(aspen_store *s, int64_t engine_id, const aspen_store_start *starts, size_t n_starts,
              int *start_status, const aspen_store_completion *c, size_t n, int64_t now_ms,
              int *status, aspen_store_state *final_states, aspen_store_error *err);
int sq_release(aspen_store *s, int64_t engine_id, int64_t job_id, int64_t now_ms,
               aspen_store_error *err);
/* sqlite_metrics.c */
int sq_metrics_write(aspen_store *s, const aspen_store_rollup *rows, size_t n,
                     aspen_store_error *err);
int sq_metrics_rows(aspen_store *s, int64_t from_minute, int64_t to_minute, const char *guest,
                    const char *type, int (*fn)(const aspen_store_rollup *row, void *user),
                    void *user, aspen_store_error *err);
int sq_metrics_prune(aspen_store *s, int64_t before_minute, size_t max_rows, int64_t *deleted,
                     aspen_store_error *err);
int sq_cancel(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
              aspen_store_error *err);
int sq_rerun(aspen_store *s, int64_t id, int64_t now_ms, unsigned flags, aspen_store_submitted *out,
             aspen_store_error *err);
int sq_retry(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
/* sqlite_edit.c */
int sq_set_priority(aspen_store *s, int64_t id, int priority, aspen_store_error *err);
int sq_run_now(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
int sq_snooze(aspen_store *s, int64_t id, int64_t delay_ms, int64_t now_ms, aspen_store_error *err);
int sq_snooze_matching(aspen_store *s, const aspen_store_filter *filter, int64_t delay_ms,
                       int64_t now_ms, int64_t *snoozed, int64_t *reserved,
                       aspen_store_error *err);
/* A bulk action's one loop (store_backend.h, STORE_BULK_BATCH): the jobs in `states` matching
 * filter, up to the newest job when it began, in batches in id order, each batch given to fn
 * inside its own write transaction; totals[] adds each committed batch's counts[]. */
typedef int (*sq_bulk_fn)(struct sqlite_store *s, const int64_t *ids, size_t n, void *ctx,
                          int64_t counts[2], aspen_store_error *err);
int sq_bulk_batches(struct sqlite_store *s, const aspen_store_filter *filter, unsigned states,
                    const char *what, sq_bulk_fn fn, void *ctx, int64_t totals[2],
                    aspen_store_error *err);
int sq_delete(aspen_store *s, int64_t id, aspen_store_error *err);
int sq_purge(aspen_store *s, int64_t finished_before_ms, int64_t *deleted, aspen_store_error *err);
int sq_engine_register(aspen_store *s, int64_t pid, const char *host, int64_t lease_ms,
                       int64_t now_ms, int64_t *engine_id, aspen_store_error *err);
int sq_engine_renew(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_error *err);
int sq_engine_unregister(aspen_store *s, int64_t engine_id, int64_t now_ms, int64_t *released,
                         aspen_store_error *err);
int sq_engine_heartbeat(aspen_store *s, int64_t engine_id, int64_t lease_ms,
                        const aspen_store_engine_figures *f, const char *version, const char *slots,
                        int64_t now_ms, aspen_store_error *err);
int sq_engines(aspen_store *s, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
               aspen_store_error *err);
int sq_recover(aspen_store *s, int64_t self_engine, int64_t min_expired_ms, int64_t now_ms,
               aspen_store_recovery *report,
               aspen_store_error *err);
int sq_cancel_requests(aspen_store *s, int64_t engine_id, int64_t **ids, size_t *n,
                       aspen_store_error *err);
int sq_get(aspen_store *s, int64_t id, aspen_store_job *out, aspen_store_error *err);
int sq_list(aspen_store *s, const aspen_store_filter *filter, aspen_store_job **jobs, size_t *n,
            aspen_store_error *err);
int sq_count(aspen_store *s, const aspen_store_filter *filter, int64_t *count,
             aspen_store_error *err);
int sq_retry_failed(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                    int64_t *retried, aspen_store_retry_skip **skipped, size_t *n_skipped,
                    aspen_store_error *err);
int sq_cancel_matching(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                       int64_t *cancelled, int64_t *requested, aspen_store_error *err);
int sq_counts(aspen_store *s, int64_t counts[ASPEN_STORE_STATE_COUNT], aspen_store_error *err);
int sq_oldest_waiting(aspen_store *s, int64_t now_ms, int64_t *age_ms, aspen_store_error *err);
int sq_attempts(aspen_store *s, int64_t job_id, aspen_store_attempt **out, size_t *n,
                aspen_store_error *err);
/* A completion's replay record, inside the commit's transaction (sq_commit). */
int sq_commit_replay(struct sqlite_store *s, const aspen_store_completion *c,
                     aspen_store_error *err);
int sq_put_attempt_data(aspen_store *s, const aspen_store_attempt_data *items, size_t n,
                        aspen_store_error *err);
int sq_get_attempt_data(aspen_store *s, int64_t job_id, int attempt, int kind, void **bytes,
                        size_t *size, aspen_store_error *err);
int sq_list_attempt_data(aspen_store *s, int64_t job_id, aspen_store_attempt_data **out,
                         size_t *n, aspen_store_error *err);
int sq_logs(aspen_store *s, int64_t job_id, int64_t after_seq, size_t limit, aspen_store_log **out,
            size_t *n, aspen_store_error *err);
int sq_log_feed(aspen_store *s, aspen_store_log_cursor *cursor, size_t limit,
                aspen_store_feed_line **out, size_t *n, aspen_store_error *err);
int sq_log_feed_end(aspen_store *s, aspen_store_log_cursor *cursor, aspen_store_error *err);

#endif
