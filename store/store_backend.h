/* store_backend.h — the seam between the store's one public API (include/aspen_store.h) and its
 * backends. Private to store/ (and its white-box tests).
 *
 * A handle is a backend's own struct whose first member is `struct aspen_store`; that base holds
 * the ops table and what every backend has (the database's name, the log cap). The public
 * functions (api.c) check what can be checked without a database — arguments, job specs, binary
 * sizes and hashes — and then call through the ops table. What no backend needs to repeat lives
 * once beside api.c: the states and the transition table (state.c), the filter language
 * (filter.c), backoff, errors and small helpers (common.c), SHA-256 (sha256.c).
 *
 * Backends: SQLite (sqlite/) for a file path, PostgreSQL (postgres/) for a postgresql:// or
 * postgres:// URI or a libpq key=value string (store_backend_of). */
#ifndef ASPEN_STORE_BACKEND_H
#define ASPEN_STORE_BACKEND_H

#include "aspen_store.h"

/* What a backend implements. Each entry has the contract of the public function of the same name
 * in aspen_store.h; `s` is never NULL and the arguments api.c checks are already checked. */
struct store_ops {
    const char *name; /* "sqlite", for messages */
    void (*close)(aspen_store *s);
    int (*check)(aspen_store *s, aspen_store_error *err);
    int (*recount)(aspen_store *s, aspen_store_error *err);
    int (*setting_set)(aspen_store *s, const char *key, const char *value, aspen_store_error *err);
    int (*setting_get)(aspen_store *s, const char *key, char **value, aspen_store_error *err);
    int (*checkpoint)(aspen_store *s, aspen_store_error *err);
    int (*data_version)(aspen_store *s, uint64_t *version, aspen_store_error *err);
    int (*put_binary)(aspen_store *s, const void *bytes, size_t size, const char *name,
                      int64_t now_ms, char sha256_out[65], aspen_store_error *err);
    int (*get_binary)(aspen_store *s, const char *sha256, aspen_store_binary *out,
                      aspen_store_error *err);
    /* keys[i]: the unique key of specs[i] (api.c derives it), NULL when it has no rule; keys is
     * NULL when no spec has one. out (may be NULL) as aspen_store_submit_ex; ids_out (may be NULL)
     * receives the ids. */
    int (*submit_batch)(aspen_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                        const char *const *keys, int64_t *ids_out, aspen_store_submitted *out,
                        aspen_store_error *err);
    /* out zeroed by api.c; out->key NULL when the job has no rule */
    int (*job_unique_rule)(aspen_store *s, int64_t id, aspen_store_job_rule *out,
                           aspen_store_error *err);
    /* state final, 1 <= max <= ASPEN_STORE_PRUNE_MAX, budget_us >= 0 (0: none); *out set */
    int (*prune)(aspen_store *s, aspen_store_state state, int64_t finished_before_ms, size_t max,
                 int64_t budget_us, aspen_store_prune_result *out, aspen_store_error *err);
    /* 1 <= n <= ASPEN_STORE_PRUNE_MAX; *deleted set */
    int (*delete_jobs)(aspen_store *s, const int64_t *ids, size_t n, int64_t *deleted,
                       aspen_store_error *err);
    int (*claim)(aspen_store *s, int64_t engine_id, size_t max, int64_t now_ms,
                 aspen_store_job **jobs, size_t *n, bool *paused, aspen_store_error *err);
    int (*unclaim)(aspen_store *s, int64_t engine_id, const int64_t *ids, size_t n,
                   aspen_store_error *err);
    int (*append_logs)(aspen_store *s, const aspen_store_log_line *lines, size_t n,
                       aspen_store_error *err);
    int (*commit)(aspen_store *s, int64_t engine_id, const aspen_store_start *starts,
                  size_t n_starts, int *start_status, const aspen_store_completion *c, size_t n,
                  int64_t now_ms, int *status, aspen_store_state *final_states,
                  aspen_store_error *err);
    int (*release)(aspen_store *s, int64_t engine_id, int64_t job_id, int64_t now_ms,
                   aspen_store_error *err);
    int (*cancel)(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
                  aspen_store_error *err);
    /* out (never NULL) as aspen_store_rerun_ex */
    int (*rerun)(aspen_store *s, int64_t id, int64_t now_ms, unsigned flags,
                 aspen_store_submitted *out, aspen_store_error *err);
    int (*retry)(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
    int (*delete)(aspen_store *s, int64_t id, aspen_store_error *err);
    int (*purge)(aspen_store *s, int64_t finished_before_ms, int64_t *deleted,
                 aspen_store_error *err);
    int (*engine_register)(aspen_store *s, int64_t pid, const char *host, int64_t lease_ms,
                           int64_t now_ms, int64_t *engine_id, aspen_store_error *err);
    int (*engine_renew)(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                        aspen_store_error *err);
    int (*engine_unregister)(aspen_store *s, int64_t engine_id, int64_t now_ms, int64_t *released,
                             aspen_store_error *err);
    /* slots: the encoded text of store_engine_slots_encode; version already cleaned */
    int (*engine_heartbeat)(aspen_store *s, int64_t engine_id, int64_t lease_ms,
                            const aspen_store_engine_figures *f, const char *version,
                            const char *slots, int64_t now_ms, aspen_store_error *err);
    /* fills heartbeat_age_ms on the store's clock and the slots with store_engine_slots_decode;
     * api.c sets stale */
    int (*engines)(aspen_store *s, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
                   aspen_store_error *err);
    /* self_engine 0 and min_expired_ms 0: every expired engine (aspen_store_recover) */
    int (*recover)(aspen_store *s, int64_t self_engine, int64_t min_expired_ms, int64_t now_ms,
                   aspen_store_recovery *report, aspen_store_error *err);
    int (*cancel_requests)(aspen_store *s, int64_t engine_id, int64_t **ids, size_t *n,
                           aspen_store_error *err);
    int (*get)(aspen_store *s, int64_t id, aspen_store_job *out, aspen_store_error *err);
    int (*list)(aspen_store *s, const aspen_store_filter *filter, aspen_store_job **jobs, size_t *n,
                aspen_store_error *err);
    int (*count)(aspen_store *s, const aspen_store_filter *filter, int64_t *count,
                 aspen_store_error *err);
    /* skipped/n_skipped never NULL (api.c), set to NULL/0 before the call */
    int (*retry_failed)(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                        int64_t *retried, aspen_store_retry_skip **skipped, size_t *n_skipped,
                        aspen_store_error *err);
    int (*cancel_matching)(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                           int64_t *cancelled, int64_t *requested, aspen_store_error *err);
    int (*counts)(aspen_store *s, int64_t counts[ASPEN_STORE_STATE_COUNT], aspen_store_error *err);
    int (*oldest_waiting)(aspen_store *s, int64_t now_ms, int64_t *age_ms, aspen_store_error *err);
    int (*attempts)(aspen_store *s, int64_t job_id, aspen_store_attempt **out, size_t *n,
                    aspen_store_error *err);
    int (*logs)(aspen_store *s, int64_t job_id, int64_t after_seq, size_t limit,
                aspen_store_log **out, size_t *n, aspen_store_error *err);
    /* the log feed (schema version 12): cursor->tx >= 0 here (api.c resolves the end first) */
    int (*log_feed)(aspen_store *s, aspen_store_log_cursor *cursor, size_t limit,
                    aspen_store_feed_line **out, size_t *n, aspen_store_error *err);
    int (*log_feed_end)(aspen_store *s, aspen_store_log_cursor *cursor, aspen_store_error *err);
    /* attempt_data (schema version 8); api.c checked the items */
    int (*put_attempt_data)(aspen_store *s, const aspen_store_attempt_data *items, size_t n,
                            aspen_store_error *err);
    int (*get_attempt_data)(aspen_store *s, int64_t job_id, int attempt, int kind, void **bytes,
                            size_t *size, aspen_store_error *err);
    int (*list_attempt_data)(aspen_store *s, int64_t job_id, aspen_store_attempt_data **out,
                             size_t *n, aspen_store_error *err);
    /* aspen_store_wait_fd / aspen_store_notified; a backend without announcements sets *fd = -1
     * and *woken = false. */
    int (*wait_fd)(aspen_store *s, int *fd, aspen_store_error *err);
    int (*notified)(aspen_store *s, bool *woken, aspen_store_error *err);
    /* aspen_store_log_wait_fd / _log_notified: NULL on a backend without announcements */
    int (*log_wait_fd)(aspen_store *s, int *fd, aspen_store_error *err);
    int (*log_notified)(aspen_store *s, bool *woken, aspen_store_error *err);
    /* Schedules (version 8): their own table of entries, schedule_backend.h. */
    const struct store_schedule_ops *schedule;
    /* Named queues (store/queues.c): declares `name` (created if new) and writes the settings in
     * `what` (ASPEN_STORE_QUEUE_SET_* or STORE_QUEUE_SET_PAUSE with `paused`); lists them. */
    int (*queue_set)(aspen_store *s, const char *name, unsigned what, int64_t limit,
                     int64_t rate_n, int64_t rate_period_ms, bool paused, int64_t now_ms,
                     aspen_store_error *err);
    int (*queues)(aspen_store *s, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
                  aspen_store_error *err);
    /* aspen_store_queue_remove after api's checks (a valid name, not "default"): ENOTFOUND when
     * the row is gone, ESTATE (store_queue_held_err) while it holds unfinished jobs */
    int (*queue_remove)(aspen_store *s, const char *name, aspen_store_queue_held *held,
                        aspen_store_error *err);
    /* aspen_store_prune_count for a cut-off below INT64_MAX: state is final */
    int (*prune_count)(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                       int64_t *count, aspen_store_error *err);
    /* aspen_store_set_priority / aspen_store_run_now (edit.c decides, the backend writes) */
    int (*set_priority)(aspen_store *s, int64_t id, int priority, aspen_store_error *err);
    int (*run_now)(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
    /* aspen_store_snooze / _snooze_matching after api's checks of the delay (edit.c decides) */
    int (*snooze)(aspen_store *s, int64_t id, int64_t delay_ms, int64_t now_ms,
                  aspen_store_error *err);
    int (*snooze_matching)(aspen_store *s, const struct aspen_store_filter *filter,
                           int64_t delay_ms, int64_t now_ms, int64_t *snoozed, int64_t *reserved,
                           aspen_store_error *err);
    /* Metrics history (store/metrics.c has the shared part). metrics_write: the rows in one
     * transaction, each replacing its key's row (text already cleaned). metrics_rows: every row
     * with from <= minute <= to (and the guest/type when not NULL), decoded, handed to fn one at a
     * time (fn returns nonzero to stop: its code is returned). metrics_prune: as the public one. */
    int (*metrics_write)(aspen_store *s, const aspen_store_rollup *rows, size_t n,
                         aspen_store_error *err);
    int (*metrics_rows)(aspen_store *s, int64_t from_minute, int64_t to_minute, const char *guest,
                        const char *type, int (*fn)(const aspen_store_rollup *row, void *user),
                        void *user, aspen_store_error *err);
    int (*metrics_prune)(aspen_store *s, int64_t before_minute, size_t max_rows, int64_t *deleted,
                         aspen_store_error *err);
};

/* Bulk actions on a filter (cancel_matching) run in transactions of STORE_BULK_BATCH jobs, in id
 * order, up to the newest job when the call began (a job submitted meanwhile is not taken): a
 * million jobs in one transaction held SQLite's write lock ~9 s and PostgreSQL's count rows ~27 s,
 * and every engine's claims and group commits waited behind it. A batch of 1,000 holds them
 * ~10-30 ms. Between batches SQLite's writer pauses (store_bulk_pause) so that a connection
 * waiting in the busy handler gets the lock before the next BEGIN. When a later batch fails, the
 * ones before it stay done: store_bulk_partial puts how many into the message. */
#define STORE_BULK_BATCH 1000
void store_bulk_pause(void);
void store_bulk_partial(aspen_store_error *err, const char *verb, int64_t done);

/* Queues one handle's claims may serve (aspen_store_serve_queues); 0 = every queue. */
#define STORE_SERVE_MAX 16

/* The part of every handle that the common code reads. */
struct aspen_store {
    const struct store_ops *ops;
    char *name; /* the database name as given to aspen_store_open (a path for SQLite) */
    int log_cap;
    size_t n_serve; /* aspen_store_serve_queues: the queues this handle claims from; 0 = all */
    bool claim_held;          /* aspen_store_claim_held, set by every claim */
    int64_t claim_retry_in_ms;
    char serve[STORE_SERVE_MAX][ASPEN_STORE_QUEUE_NAME_MAX + 1];
    /* aspen_store_prune_yield_set: asked between a bounded prune's jobs whether to commit now */
    bool (*prune_yield)(void *ctx);
    void *prune_yield_ctx;
    char *cmd_args; /* aspen_store_set_cmd_args (owned; NULL: none), freed by aspen_store_close */
};

/* What this handle's messages append to each aspen command they name: "" when nothing was set. */
static inline const char *store_cmd(const aspen_store *s)
{
    return s && s->cmd_args ? s->cmd_args : "";
}

/* ---- named queues (queues.c) --------------------------------------------------------------------- */

/* Schema version 8, the same statements on both backends: jobs.queue, the queues and
 * queue_starts tables, the index of named queues' queued jobs. */
extern const char *const store_queues_v8_sql[];
extern const size_t store_queues_v8_nsql;

#define STORE_QUEUE_SET_PAUSE 0x100u /* queue_set: write `paused` */

/* The queue a spec names ("default" for NULL or ""). */
const char *store_queue_of(const aspen_store_job_spec *spec);
/* ESTATE refusing to remove queue `name` while it holds *held's jobs or is the queue of
 * held->schedules schedules (the first of them by name in `schedules`, ", "-separated; "" when
 * none), with what to do instead: the one wording of both backends' queue_remove. */
int store_queue_held_err(const char *name, const aspen_store_queue_held *held,
                         const char *schedules, const char *cmd, aspen_store_error *err);
/* The schedules whose jobs go to queue P1 (paused ones too), as queue_remove reads them inside its
 * transaction: each row a name (by name, at most STORE_QUEUE_RM_NAMES) and how many there are in
 * all. Both backends have window functions; SQLite spells the parameter ?1, PostgreSQL $1. */
#define STORE_QUEUE_RM_NAMES 5
/* room for them, ", "-separated (a schedule's name is at most 64 bytes:
 * ASPEN_STORE_SCHEDULE_NAME_MAX) */
#define STORE_QUEUE_RM_NAMES_CAP (STORE_QUEUE_RM_NAMES * (64 + 2) + 1)
#define STORE_QUEUE_RM_SCHEDULES_SQL(P1)                                                           \
    "SELECT name, count(*) OVER () FROM schedules WHERE queue = " P1 " ORDER BY name LIMIT 5"
/* Appends one schedule name of that statement to `names` (cap bytes, ", " between). */
void store_queue_rm_add_name(char *names, size_t cap, const char *name);
/* The one statement both backends run after a retry or a rerun put a job back in the queue (P1:
 * its id, P2: now): its named queue's row again, in case aspen_store_queue_remove took it while
 * only finished jobs were in it. Without the row a claim that goes queue by queue would never
 * read the job. SQLite spells parameters ?N, PostgreSQL $N::bigint: the caller says which. */
#define STORE_QUEUE_RENOTE_SQL(P1, P2)                                                             \
    "INSERT INTO queues (name, created_at) SELECT queue, " P2 " FROM jobs WHERE id = " P1          \
    " AND queue <> 'default' ON CONFLICT (name) DO NOTHING"


/* One queue as a claim sees it inside its transaction. */
struct store_queue_row {
    char name[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    int64_t limit, rate_n, rate_period_ms; /* 0 = none */
    bool paused;
    int64_t running, reserved; /* its jobs running, and queued with a reservation */
    int64_t recent_starts;     /* queue_starts rows within its rate period */
    int64_t allow;             /* store_queue_plan_decide: how many more it may reserve now */
    bool waiting;              /* PostgreSQL's claim: it has a queued job nobody reserved */
};
struct store_queue_plan {
    struct store_queue_row *q;
    size_t n, cap;
};
/* The row of `name`, added (zeroed) when missing; NULL when out of memory. */
struct store_queue_row *store_queue_plan_row(struct store_queue_plan *plan, const char *name);
/* Sets every row's allow from its settings and figures and the handle's served queues: 0 when
 * paused or not served; at most limit - (running + reserved); at most rate_n - (reserved +
 * recent starts); INT64_MAX when nothing bounds it. */
void store_queue_plan_decide(const aspen_store *s, struct store_queue_plan *plan);
/* After a queue-aware claim: sets s->claim_held and s->claim_retry_in_ms from the plan. */
void store_queue_plan_hint(aspen_store *s, const struct store_queue_plan *plan);
void store_queue_plan_free(struct store_queue_plan *plan);
/* qsort order of claimed jobs: priority descending, run_at, id. */
int store_claim_order(const void *a, const void *b);

/* ---- which backend a database name asks for ------------------------------------------------ */

enum store_backend_kind {
    STORE_BACKEND_SQLITE,   /* a file path, ":memory:", or an SQLite "file:" URI */
    STORE_BACKEND_POSTGRES, /* postgresql://…, postgres://…, or a libpq key=value string */
};

/* Classifies a database name. For PostgreSQL, *form (if not NULL) names what was recognised
 * ("a postgresql:// URI", "a libpq key=value string", ...). A key=value string is recognised only
 * when its first word is a libpq connection keyword (host=, dbname=, ...), so a file named
 * "./a=b.db" stays a path. NULL or "" is SQLite (aspen_store_open then refuses it as empty). */
enum store_backend_kind store_backend_of(const char *name, const char **form);

/* Copies a database name into out (always terminated, cut at size) with any password replaced by
 * "***": user:PASSWORD@ and ?password= in a URI, password=VALUE in a key=value string. */
void store_redact_conninfo(const char *name, char *out, size_t size);

/* Schema version 5, written once for both backends: the columns each backend adds to `engines`
 * with ALTER TABLE engines ADD COLUMN (the types read the same in SQLite and PostgreSQL). */
extern const char *const store_engine_v5_columns[];
extern const size_t store_engine_v5_ncolumns;
/* Schema version 18's column of `engines`: the queues it serves (both backends). */
extern const char *const store_engine_v18_column;
/* A heartbeat's busy workers as text, one "WORKER JOB GUEST" line each (guest's control bytes,
 * spaces and bytes >= 0x80 as '?': the text is the same on both backends). Returns a malloc'd
 * string ("" for none) or NULL when out of memory. */
char *store_engine_slots_encode(const aspen_store_engine_slot *slots, size_t n);
/* Reads that text back into e->slots (whatever another host wrote: bad lines are skipped). */
void store_engine_slots_decode(aspen_store_engine_info *e, const char *text);
/* Copies src into dst[size] with control bytes and bytes >= 0x80 as '?'. */
void store_clean_ascii(const char *src, char *dst, size_t size);
/* A name or term as a message quotes it (store/filter.c): UTF-8 as it is (café, not caf??);
 * control bytes, C1 controls and bytes that are not well-formed UTF-8 as \xNN (\u0080 for C1),
 * the escapes the front ends' sanitiser (aspen_text) writes, so a message never carries a raw
 * control byte to a caller and reads the same in every front end. At most max bytes of s, and
 * what fits in out[size] with "…" after it when cut; never cut inside a character or an escape.
 * Returns out. */
const char *store_shown(const char *s, size_t len, size_t max, char *out, size_t size);

/* ---- metrics history (schema version 11, store/metrics.c) ------------------------------------- */

/* The rollups table, the same text for both backends' migrations. */
extern const char store_metrics_v11_sql[];
/* A histogram as stored: "BUCKET:COUNT,..." for the non-empty buckets, ascending. Returns the
 * text's length, or 0 with out[0] = 0 when it does not fit in cap (cap >= STORE_HIST_TEXT_MAX
 * always fits). */
#define STORE_HIST_TEXT_MAX (ASPEN_STORE_HIST_BUCKETS * 25 + 1)
size_t store_hist_encode(const aspen_store_hist *h, char *out, size_t cap);
/* Reads that text (whatever another host wrote: malformed or out-of-range entries are skipped,
 * counts saturate) into h, n recounted; max as stored (clamped to the largest non-empty bucket's
 * top). */
void store_hist_decode(aspen_store_hist *h, const char *text, uint64_t max);

/* ---- backends' open functions ------------------------------------------------------------------ */

/* Opens an SQLite database at `path` with options already defaulted; see aspen_store_open. */
int store_sqlite_open(const char *path, const aspen_store_options *o, aspen_store **out,
                      aspen_store_error *err);
/* Opens a PostgreSQL database named by a URI or libpq key=value string (postgres/pg_open.c). */
int store_pg_open(const char *conninfo, const aspen_store_options *o, aspen_store **out,
                  aspen_store_error *err);

/* ---- one job's state, as every backend's transition writer sees it ------------------------------ */

/* The per-job mutable fields a backend's transition writer (job_write, pg_job_write) touches. */
struct store_job_row {
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

/* Where a finished attempt sends its job, the same on every backend: succeeded; back to the queue
 * (queued when retry_due, else scheduled at retry_at) while attempts remain, the outcome is a
 * failure or timeout with a retry time and no cancel was asked; cancelled; or failed. `now` and
 * retry_at are on the backend's timeline. The transition itself is checked by the writer. */
void store_decide_completion(const struct store_job_row *before, const aspen_store_completion *c,
                             int64_t now, int64_t retry_at, bool retry_due,
                             struct store_job_row *after);
/* The error a failed attempt records when its engine gave none ("timed out (attempt 2)"); the
 * engine's own error, or NULL for a success, otherwise. buf holds the text when one is made. */
const char *store_default_error(const aspen_store_completion *c, int attempts, char *buf,
                                size_t size);

/* A queued job that engine_id really began at `started`: running, one more attempt charged. */
void store_started_row(const struct store_job_row *before, int64_t engine_id, int64_t started,
                       struct store_job_row *out);
/* What a cancel makes of a job: a running one keeps running with cancel_requested (its engine
 * stops it; *result REQUESTED, returns false); any other becomes cancelled now (*result DONE,
 * returns true — a queued job's reservation must then go too). The writer checks the edge. */
bool store_decide_cancel(const struct store_job_row *before, int64_t now,
                         struct store_job_row *after, aspen_store_cancel_result *result);

/* What releasing a running job makes of it (shutdown: the attempt given back, the job queued);
 * ELEASE when another engine holds it. The writer checks the edge (a final job is refused). */
int store_decide_release(const struct store_job_row *before, int64_t engine_id,
                         struct store_job_row *after, aspen_store_error *err);

/* Schema version 7, written once for both backends (schedule.c): the schedules, their occurrence
 * keys and the scheduler lease (the SQL differs only in how an id is numbered). */
extern const char store_schedule_v7_sqlite[];
extern const char store_schedule_v7_pg[];

/* ---- unique jobs (unique.c) --------------------------------------------------------------------- */

/* The rule's states with the default applied. */
unsigned store_unique_states(const aspen_store_unique *u);
/* The earliest created_at that counts for a rule at `now` (INT64_MIN when any age counts). */
int64_t store_unique_since(const aspen_store_unique *u, int64_t now);
/* Whether a job in `state` created at `created_at` is a duplicate for rule u at now. */
/* The rule a stored row gives (states 0: a row from before version 17, the default states). */
aspen_store_unique store_unique_of_row(const char *key, int64_t period_ms, unsigned states);
/* The engine's own retry of a unique job (a failed attempt with attempts left) that another job
 * now holds the key of, by the job's own rule (skip: that job; the completion's after-row as
 * store_decide_completion left it, going back to queued or scheduled): the job ends failed
 * instead, its error the attempt's with why it was not retried and what to do. out (size bytes)
 * holds the new error, which after->error then points to; error may not point into out. */
void store_unique_not_retried(const struct store_job_row *running, struct store_job_row *after,
                              int64_t now, const char *error, const aspen_store_retry_skip *skip,
                              char *out, size_t size);
/* A run-now of a scheduled job refused because another job holds its key by its own rule (a rule
 * that does not count scheduled jobs): ESTATE naming the holder and what to do. */
int store_run_now_held(const aspen_store_retry_skip *skip, const char *cmd, aspen_store_error *err);
/* Appends one skip to a growing list (*list, *n, *cap); ENOMEM when it cannot. */
int store_retry_skip_add(aspen_store_retry_skip **list, size_t *n, size_t *cap, int64_t id,
                         const char *key, const aspen_store_submitted *holder,
                         aspen_store_error *err);
bool store_unique_matches(const aspen_store_unique *u, aspen_store_state state,
                          int64_t created_at, int64_t now);

/* ---- shared helpers ---------------------------------------------------------------------------- */

/* Fills err (if any) and returns code. */
int store_err(aspen_store_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Text of a state column → enum (-1 when unknown). */
int state_from_text(const unsigned char *text);

/* Whether h is 64 lowercase hex digits. */
bool store_is_sha256_hex(const char *h);
/* ETOOBIG (with advice) when a binary is larger than ASPEN_STORE_MAX_BINARY. */
int store_check_binary_size(size_t size, aspen_store_error *err);
/* What a job spec must satisfy before any backend sees it: a type, no negative limits, a payload
 * that is JSON, tags that are a JSON array, a binary within the size limit, a well-formed hash. `where` prefixes messages ("job 3 of the batch: "). */
int store_check_spec(const aspen_store_job_spec *j, const char *where, aspen_store_error *err);

/* Nesting deeper than this is refused (SQLite's json functions allow 1000 levels too). */
#define STORE_JSON_MAX_DEPTH 1000
/* Whether text is exactly one JSON value (RFC 8259), and, when kind is '[' or '{', an array or an
 * object. When not: *offset (if not NULL) is the byte where it went wrong and *why says what. */
bool store_json_check(const char *text, char kind, size_t *offset, const char **why);

char *store_strdup(const char *s);

/* The monotonic clock in µs: lock hold times and waits (never a wall-clock time). */
int64_t store_mono_us(void);
/* The calling thread's CPU time in µs: what a statement cost, without the time it spent waiting
 * off the CPU (a lock, the file system, the scheduler). */
int64_t store_thread_cpu_us(void);

/* Room for one more element in a growing array of `count` elements of `elem` bytes with capacity
 * *cap (doubling from 16): returns the array, moved if it had to grow, or NULL (the old array
 * still valid and owned by the caller) when memory ran out. */
void *store_grow(void *arr, size_t *cap, size_t count, size_t elem);

/* ---- editing a waiting job (edit.c), the same rules on every backend ------------------------- */
/* cmd: store_cmd of the handle, appended to the commands the refusals name. */

/* 0 if row's priority may become `priority` (the job waits); ESTATE saying why not. */
int store_decide_priority(const struct store_job_row *row, int priority, const char *cmd,
                          aspen_store_error *err);
/* What "run now" makes of a job: a scheduled one queued with run_at = now (*after); ESTATE for
 * any other state, saying what to do instead. */
int store_decide_run_now(const struct store_job_row *before, int64_t now,
                         struct store_job_row *after, const char *cmd, aspen_store_error *err);

/* What a snooze makes of a job: a queued or scheduled one scheduled with run_at = now + delay_ms
 * (*after; attempts, priority, queue and key kept). ESTATE for a queued job an engine holds a
 * reservation of (reserved_by: its engine, 0 when none), a queued one whose unique rule (rule,
 * may be NULL) counts queued but not scheduled jobs (it would give its key up), a running one
 * and a finished one, saying why and what to do instead. */
int store_decide_snooze(const struct store_job_row *before, int64_t now, int64_t delay_ms,
                        int64_t reserved_by, const aspen_store_job_rule *rule,
                        struct store_job_row *after, const char *cmd, aspen_store_error *err);

/* What an operator's retry makes of a job: a failed one queued at once (*after, one more attempt
 * allowed if it was out of them); ESTATE for any other state, saying why and what to do instead
 * (a scheduled job: run-now; a finished one: rerun). */
int store_decide_retry(const struct store_job_row *before, int64_t now,
                       struct store_job_row *after, const char *cmd, aspen_store_error *err);

/* True when `states` (a filter's bit set) holds some final states and nothing else: a filter the
 * finished jobs' partial indexes can serve, once the query adds `finished_at IS NOT NULL`
 * (schema version 14; every job in a final state has finished_at). */
bool store_states_final_only(unsigned states);

/* ---- the whole-store sort (sort.c), the same keys and indexes on every backend ----------------- */

/* The SQL expression of a sort key (pg: PostgreSQL's text, the guest compared bytewise). */
const char *store_sort_key_sql(aspen_store_sort sort, bool pg);
/* The duration key's text, shared by the query and SQLite's partial index of version 14 (an
 * expression index is matched by its text). */
#define STORE_DURATION_KEY "(COALESCE(finished_at - started_at, -1))"
bool store_sort_key_is_text(aspen_store_sort sort); /* the guest: a text key, else an integer */
/* The state sort under a filter of some states: the ranks [lo, hi] they span (the key's index
 * range), so a page never scans the other states' jobs. False when it does not apply. */
bool store_sort_key_range(const aspen_store_filter *f, int *lo, int *hi);
/* The index serving a sort (schema version 6), NULL for id and none. */
const char *store_sort_index_name(aspen_store_sort sort);
/* Its CREATE INDEX IF NOT EXISTS statement into out: 0, or -1 (no index, or cap too small). */
int store_sort_index_sql(aspen_store_sort sort, bool pg, char *out, size_t cap);

#endif
