/* pg_store.h — what the PostgreSQL backend's source files share and nobody else sees: the handle,
 * the lazily prepared statements, query parameters, transactions with their per-state count
 * deltas, the database's clock, error mapping, the single writer of a job's state
 * (pg_job_read/pg_job_write) and the functions its ops table (pg_open.c) points at.
 *
 * Files: pg_open.c (connect, errors with advice, reconnect, migrations, statement cache,
 * transactions, settings, binaries, UTF-8 cleaning, check/recount, the ops table), pg_query.c
 * (get, list, count, counts, oldest waiting, attempts, logs, pg_job_from_row, the filter's WHERE
 * clause, retry_failed and cancel_matching), pg_jobs.c (submit, claim with FOR UPDATE SKIP
 * LOCKED, unclaim, logs, the group commit, release, cancel, rerun, retry, delete, purge, the
 * transition writer), pg_lease.c
 * (engines, leases, recovery, cancel requests, NOTIFY of new work).
 *
 * One handle is one connection, used by one thread at a time (as an SQLite handle is).
 *
 * Time: every decision that more than one host must agree on (leases, run_at, backoff, recovery,
 * claimed_at, started_at/finished_at) is taken on the database server's timeline, so hosts with
 * skewed clocks agree. The API still passes now_ms (unix ms) and tests inject it; the backend
 * shifts it by this host's measured skew from the server's clock: a statement's "now" is
 * now_ms + skew, where skew = server clock - this host's wall clock, measured (to half a round
 * trip) when a handle connects and again every minute, and taken as 0 when it is under
 * PG_SKEW_IGNORE_MS. So hosts whose clocks differ by more than that still agree on the server's
 * timeline, and on one host (the tests, a single machine) the caller's clock is used exactly: a
 * test that passes T0 gets T0, not T0 plus a millisecond of latency. See PG_NOW and pg_p_now.
 * (Why not the server's statement_timestamp() plus the caller's offset: that differs from the
 * caller's clock by the round trip, so a lease that ends at exactly "now" was live or not by
 * chance, and no test could state an exact time.) */
#ifndef ASPEN_STORE_PG_H
#define ASPEN_STORE_PG_H

#include "store_backend.h"

#include <libpq-fe.h>

/* A PostgreSQL handle. base.name is the conninfo as given (it may hold a password: never print
 * it; print `shown`). */
struct pg_store {
    struct aspen_store base; /* first: a struct pg_store * is an aspen_store * */
    PGconn *conn;
    int64_t skew_measured_ms; /* wall clock of this handle's last skew measurement */
    char shown[512]; /* the conninfo with any password replaced by *** (store_redact_conninfo) */
    bool read_only;
    const _Atomic int *give_up; /* aspen_store_options.give_up: reconnect once, no backoff */
    bool in_tx;
    bool tx_wrote; /* the open transaction changed something: COMMIT bumps the data version.
                    * pg_exec sets it when an INSERT/UPDATE/DELETE changed rows; a write hidden
                    * in a CTE under a top-level SELECT must set it itself. */
    /* Statements prepared on this connection (names are the callers' string literals; a
     * reconnect forgets them all). */
    struct pg_prepared {
        const char *name;
    } prepared[128];
    size_t n_prepared;
    /* Net change of jobs per state in the open transaction; flushed by pg_tx_commit. */
    int64_t count_delta[ASPEN_STORE_STATE_COUNT];
    int reconnects; /* successful reconnects over the handle's life (for tests and the console) */
    /* What the server said on its own, outside any statement (an ErrorResponse such as "FATAL:
     * terminating connection due to administrator command" when it shuts down), one line; taken
     * by the notice processor instead of libpq's default, which prints it on stderr — over the
     * console's screen. Named in the next lost-connection message; cleared by a reconnect. */
    char server_said[200];
    /* LISTEN aspen_jobs was sent on this connection (pg_lease.c: pg_wait_fd), at reconnect count
     * listen_reconnects: after a reconnect it is sent again and the waiter woken. */
    bool listening;
    int listen_reconnects;
    /* The same for LISTEN aspen_logs (pg_log_wait_fd: the log feed's followers). */
    bool listening_logs;
    int listen_logs_reconnects;
    /* Data-version bumps made by this handle's own commits: pg_data_version reports the shared
     * counter minus these, so (as SQLite's PRAGMA data_version) only OTHER connections' commits
     * move it and an engine is not woken by its own writes. */
    uint64_t own_commits;
    /* Named queues (pg_queues.c): the last claim's lease check saw a queue with a setting; a
     * claim or a commit's lease check on this handle saw a rate limit (then its starts write rate
     * shares). */
    bool queues_active, rate_seen;
    /* The answer deadline (pg_open.c, "Waiting for answers"): how long this connection waits
     * for the server to say anything before it takes the server for gone, in ms (0: no
     * deadline), from the session's statement_timeout (also ms, 0: none) plus PG_ANSWER_MARGIN_MS.
     * long_wait: creating or migrating the schema, which runs under PG_MIGRATE_ANSWER_MS. */
    int64_t answer_ms, statement_timeout_ms;
    bool long_wait;
    /* The server had said nothing for this long when the last wait gave up on it and closed the
     * connection (0: the last loss was not a silence); named in the lost-connection message and
     * cleared by a successful connect. `where` names the server ("127.0.0.1 port 5432"), kept
     * for the messages written after the connection is gone. */
    int64_t silent_ms;
    char where[200];
};

static inline struct pg_store *pgs(aspen_store *s) { return (struct pg_store *)s; }

extern const struct store_ops store_pg_ops;

/* Opens a PostgreSQL database named by a URI or key=value conninfo; see aspen_store_open.
 * Creates or migrates the schema (same version numbers as SQLite) unless read_only. */
int store_pg_open(const char *conninfo, const aspen_store_options *o, aspen_store **out,
                  aspen_store_error *err);

/* ---- parameters ------------------------------------------------------------------------------ */

#define PG_MAX_PARAMS 32

/* Text-format parameters for one statement, bound by position ($1 is the first added). Integers
 * are formatted into `buf`; strings and bytes point at the caller's memory, which must outlive
 * the call. Bytes (bytea) are sent in binary format. Adding past PG_MAX_PARAMS sets `overflow`
 * and the exec functions refuse the statement (EINVAL), so a mistake is an error, not a crash. */
struct pg_params {
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][24];
    int n;
    bool overflow;
};
void pg_p_int(struct pg_params *p, int64_t v);
void pg_p_opt_int(struct pg_params *p, int64_t v); /* 0 → NULL */
void pg_p_bool(struct pg_params *p, bool v);
void pg_p_text(struct pg_params *p, const char *v); /* NULL → NULL */
void pg_p_bytes(struct pg_params *p, const void *v, size_t n); /* NULL → NULL */
/* The caller's "now" on the server's timeline (now_ms + the measured skew, see Time above) as the
 * next parameter, for PG_NOW. */
void pg_p_now(struct pg_params *p, int64_t now_ms);
/* Clock differences below this are taken as none (NTP keeps hosts within a few ms; leases are
 * seconds long). */
#define PG_SKEW_IGNORE_MS 25
/* This process's current skew from the server (0 when ignored): what pg_p_now adds. */
int64_t pg_clock_skew_ms(void);

/* A session idle inside a transaction this long is ended by the server (its locks released): a
 * host cut off mid-transaction must not hold its engine row and jobs beyond its lease, which is
 * 5 s by default (pg_open.c's pg_connect). */
#define PG_IDLE_IN_TX_MS 2000
#define PG_IDLE_IN_TX_TEXT "2000"

/* The answer deadline (pg_open.c, "Waiting for answers"; docs/STORE.md "Answer deadline"): the
 * session's statement_timeout, PG_STATEMENT_TIMEOUT_MS unless the user set one (libpq's
 * options=-c statement_timeout=..., PGOPTIONS, ALTER ROLE/DATABASE ... SET), plus this margin is
 * how long a wait for the server's answer lasts before the connection is taken as lost. The
 * server cancels its own statements first (57014: a clear "took too long" error, the connection
 * kept), so the client's deadline only ends a server that answers nothing at all. */
#define PG_STATEMENT_TIMEOUT_MS 30000
#define PG_STATEMENT_TIMEOUT_TEXT "30000"
#define PG_ANSWER_MARGIN_MS 2000
/* Creating or migrating the schema (an index build over millions of jobs, the schema lock another
 * host holds while it migrates): no statement_timeout, and this answer deadline. */
#define PG_MIGRATE_ANSWER_MS (15 * 60 * 1000)
/* While the owner gives up (aspen_store_options.give_up) a wait ends once the server has been
 * silent this long, and once one wait of this process ended so, later ones while giving up wait
 * PG_STOP_PEEK_MS: a stopping worker's dozen calls to a stopped server take about a second in
 * all, where a live server answers a stopping worker's last commits in milliseconds. */
#define PG_STOP_SILENCE_MS 500
#define PG_STOP_PEEK_MS 50
/* tcp_user_timeout for TCP connections (ms): sent data unacknowledged this long ends the
 * connection (a dead network path with a request in flight). A live server's kernel acknowledges
 * in milliseconds however long the statement runs, so it need not follow statement_timeout. */
#define PG_TCP_USER_TIMEOUT_TEXT "30000"

/* SQL for "now" in unix ms on the server's timeline: parameter $N, added with pg_p_now. */
#define PG_NOW(N) "($" #N "::bigint)"

/* ---- running statements ------------------------------------------------------------------------ */

/* Runs a statement prepared once per connection under `name` (a string literal unique to the
 * SQL) and returns its result when its status is PGRES_COMMAND_OK or PGRES_TUPLES_OK; otherwise
 * NULL with err filled by pg_err (the caller owns the result: PQclear). Outside a transaction a
 * lost connection is re-established (pg_reconnect) and the statement retried once; inside one, the
 * transaction is lost and ELOST-style EIO is returned ("connection lost; the transaction was rolled
 * back: retry") so the caller's retry logic (engine: disk-full/transient retry) redoes it. */
PGresult *pg_exec(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
                  const char *what, aspen_store_error *err);
/* The same for SQL built at run time (filters): not prepared. */
PGresult *pg_exec_dynamic(struct pg_store *s, const char *sql, const struct pg_params *p,
                          const char *what, aspen_store_error *err);

/* Several statements without parameters in the simple protocol (as libpq's PQexec: the last
 * result, or the first error), under the answer deadline. NULL when the server did not answer in
 * time (the connection is then closed) or the connection broke: pass it to pg_err, which says so. */
PGresult *pg_exec_script(struct pg_store *s, const char *sql);

/* One statement of a pipeline: prepared once per connection under `name` as with pg_exec (NULL:
 * unnamed), its parameters (may be NULL) and what it does, for messages. `r` is its result after
 * pg_pipeline (the caller PQclears it). */
struct pg_step {
    const char *name, *sql;
    const struct pg_params *p;
    const char *what;
    PGresult *r;
    bool prepare_sent; /* internal */
};
#define PG_PIPELINE_MAX 12
/* Sends steps[0..n) in one round trip (libpq's pipeline mode: a Parse for statements new to the
 * connection, each Bind/Execute, one Sync) and reads every result: 0 with each steps[i].r set
 * (status COMMAND_OK or TUPLES_OK), or the first failing statement's error mapped by pg_err,
 * with no results left to clear. The server runs the statements in order and skips every one
 * after a failure, so a failed pipeline inside a transaction leaves it aborted: roll back, as
 * after a failed pg_exec. Outside a transaction a pipeline must begin one (pg_tx_begin_with):
 * then a connection lost on the way undid all of it, and it is re-established and the pipeline
 * sent once more; inside one, or when `committing` (the last step is COMMIT), the loss is
 * reported as pg_exec reports it. */
int pg_pipeline(struct pg_store *s, struct pg_step *steps, size_t n, bool committing,
                aspen_store_error *err);

/* Maps a failed result (r may be NULL: then the connection's error) while doing `what` to an
 * ASPEN_STORE_E* code and a message with advice, by SQLSTATE: 23xxx constraint names as SQLite's
 * messages word them (type_nonempty, tags_array, ...) → EINVAL; 53100 disk full → EFULL;
 * 40001/40P01 serialization/deadlock → EBUSY (retry); 42P01/42703 missing table/column → ESCHEMA;
 * 42501 → EPERM; 08xxx and a dead connection → EIO naming the server tried and what to do. */
int pg_err(struct pg_store *s, aspen_store_error *err, PGresult *r, const char *what);

/* Re-establishes a lost connection with backoff (up to ~5 s in all); 0 or EIO with advice. */
int pg_reconnect(struct pg_store *s, aspen_store_error *err);

/* Column helpers for text-format results (bytea columns come back hex-escaped). */
int64_t pg_get_int(const PGresult *r, int row, int col);  /* NULL → 0 */
bool pg_get_bool(const PGresult *r, int row, int col);    /* 't' → true */
char *pg_get_text(const PGresult *r, int row, int col, bool *oom); /* malloc'd; NULL → NULL */
void *pg_get_bytes(const PGresult *r, int row, int col, size_t *n, bool *oom); /* malloc'd */

/* ---- transactions ------------------------------------------------------------------------------ */

int pg_tx_begin(struct pg_store *s, aspen_store_error *err); /* BEGIN (READ COMMITTED) */
/* BEGIN and steps[0..n) in one round trip (pg_pipeline). On success every steps[i].r is set. When
 * a step fails after BEGIN ran, the transaction stays open (aborted): the caller rolls back as
 * after any failed statement. */
int pg_tx_begin_with(struct pg_store *s, struct pg_step *steps, size_t n, aspen_store_error *err);
/* Flushes count_delta into job_counts, bumps the data version when the transaction wrote, and
 * commits. EBUSY on a serialization failure (rolled back: retry). */
int pg_tx_commit(struct pg_store *s, const char *what, aspen_store_error *err);
void pg_tx_rollback(struct pg_store *s);
/* Records that n jobs moved from → to (ASPEN_STORE_STATE_NEW for a new or deleted job) in the
 * open transaction, and marks it as a write. */
void pg_counts_note(struct pg_store *s, aspen_store_state from, aspen_store_state to, int64_t n);

/* ---- binaries and text (pg_open.c) ----------------------------------------------------------- */

/* Inside the caller's transaction: stores bytes under sha (their SHA-256, computed by the caller)
 * once; if a copy is already stored under sha but differs (damaged), these bytes replace it. */
int pg_binary_store(struct pg_store *s, const char *sha, const void *bytes, size_t size,
                    const char *name, int64_t now_ms, aspen_store_error *err);
/* 0 if a binary is stored under sha, else ENOTFOUND with advice. */
int pg_binary_exists(struct pg_store *s, const char *sha, aspen_store_error *err);

/* Text parameters must be valid UTF-8 (the database's encoding), or PostgreSQL refuses the whole
 * statement (22021 → EINVAL). For text from guests (log lines, errors): *out is NULL when `in` is
 * valid UTF-8 (use it as is), else a malloc'd copy with each invalid byte replaced by U+FFFD
 * (free it). ENOMEM on allocation failure. */
int pg_utf8_clean(const char *in, char **out, aspen_store_error *err);

/* ---- jobs ------------------------------------------------------------------------------------- */

/* The jobs columns read back into an aspen_store_job, in this order (see pg_job_from_row). */
#define PG_JOB_COLUMNS                                                                             \
    "id, type, binary_sha256, binary_name, payload, state, priority, run_at, attempts, "           \
    "max_attempts, timeout_ms, memory_bytes, isolation, tags, created_at, started_at, "           \
    "finished_at, result, error, rerun_of, owner, cancel_requested, source_dir, log_count, "      \
    "log_dropped, queue"

/* Fills job from row `row` of r, PG_JOB_COLUMNS starting at column col0. ENOMEM on failure. */
int pg_job_from_row(const PGresult *r, int row, int col0, aspen_store_job *job,
                    aspen_store_error *err);

/* Reads (and, with for_update, locks: SELECT … FOR UPDATE) a job's mutable fields; ENOTFOUND. */
int pg_job_read(struct pg_store *s, int64_t id, bool for_update, struct store_job_row *row,
                aspen_store_error *err);
/* THE writer of a job's state: checks before → after against the transition table (state.c),
 * writes WHERE id AND state = before.state, notes the counts. ESTATE if illegal or the row moved. */
int pg_job_write(struct pg_store *s, const struct store_job_row *before,
                 const struct store_job_row *after, aspen_store_error *err);

/* Per-job operator actions inside the caller's transaction (pg_jobs.c; used by pg_query.c's
 * cancel_matching and retry_failed). */
/* Every job of ids[0..n) (locked FOR UPDATE by the caller's transaction, each unfinished when
 * locked) cancelled as pg_cancel_one would, in a few statements rather than three round trips a
 * job: queued and scheduled ones cancelled (their reservations gone), running ones asked to
 * stop; *done and *asked say how many of each. */
int pg_cancel_ids(struct pg_store *s, const int64_t *ids, size_t n, int64_t now_ms, int64_t *done,
                  int64_t *asked, aspen_store_error *err);
int pg_cancel_one(struct pg_store *s, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
                  aspen_store_error *err);
/* A job whose unique key another job holds is left as it is: ESTATE with the refusal in err,
 * *was_held set and *held (may be NULL) filled. */
int pg_retry_one(struct pg_store *s, int64_t id, int64_t now_ms, aspen_store_retry_skip *held,
                 bool *was_held, aspen_store_error *err);
/* Takes the unique-key locks of jobs ids (those that have a key), in the one order every caller
 * uses, so a bulk retry never deadlocks with another: before its per-job retries. */
int pg_unique_lock_jobs(struct pg_store *s, const int64_t *ids, size_t n, aspen_store_error *err);
/* Whether another job holds job id's unique key by id's own rule (*found, *skip; now the
 * server's time, now_ms the caller's), under the key's lock, taken after the job's row lock as a
 * retry takes it (run now). */
int pg_unique_held(struct pg_store *s, int64_t id, int64_t now, int64_t now_ms, bool *found,
                   aspen_store_retry_skip *skip, aspen_store_error *err);

/* ---- filters (pg_query.c) ----------------------------------------------------------------------- */

/* A growing SQL text; on allocation failure `oom` is set and later appends do nothing. */
struct pg_sql {
    char *text;
    size_t len, cap;
    bool oom;
};
void pg_sql_add(struct pg_sql *q, const char *text);
void pg_sql_free(struct pg_sql *q);
/* Appends " WHERE …" for filter f restricted to the states in `states` (0 = the filter's own),
 * adding its values to p (never into the text). EINVAL when the filter has more values than fit. */
int pg_filter_where(const aspen_store_filter *f, unsigned states, struct pg_sql *q,
                    struct pg_params *p, aspen_store_error *err);
/* A list with a whole-store sort (f->sort set, after_id paging): pg_sort.c. */
int pg_list_sorted(struct pg_store *s, const aspen_store_filter *f, aspen_store_job **jobs,
                   size_t *n, aspen_store_error *err);

/* ---- the ops table's entries (contracts: the public functions of the same names) ----------------- */

void pg_close(aspen_store *s);
int pg_check(aspen_store *s, aspen_store_error *err);
int pg_recount(aspen_store *s, aspen_store_error *err);
int pg_setting_set(aspen_store *s, const char *key, const char *value, aspen_store_error *err);
int pg_setting_get(aspen_store *s, const char *key, char **value, aspen_store_error *err);
int pg_checkpoint(aspen_store *s, aspen_store_error *err);
int pg_data_version(aspen_store *s, uint64_t *version, aspen_store_error *err);
int pg_put_binary(aspen_store *s, const void *bytes, size_t size, const char *name, int64_t now_ms,
                  char sha256_out[65], aspen_store_error *err);
int pg_get_binary(aspen_store *s, const char *sha256, aspen_store_binary *out,
                  aspen_store_error *err);
int pg_submit_batch(aspen_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                    const char *const *keys, int64_t *ids_out, aspen_store_submitted *out,
                    aspen_store_error *err);
int pg_job_unique_rule(aspen_store *s, int64_t id, aspen_store_job_rule *out, aspen_store_error *err);
int pg_prune_count(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                   int64_t *count, aspen_store_error *err);
int pg_prune(aspen_store *s, aspen_store_state state, int64_t finished_before_ms, size_t max,
             int64_t budget_us, aspen_store_prune_result *out, aspen_store_error *err);
int pg_delete_jobs(aspen_store *s, const int64_t *ids, size_t n, int64_t *deleted,
                   aspen_store_error *err);
int pg_claim(aspen_store *s, int64_t engine_id, size_t max, int64_t now_ms, aspen_store_job **jobs,
             size_t *n, bool *paused, aspen_store_error *err);
int pg_unclaim(aspen_store *s, int64_t engine_id, const int64_t *ids, size_t n,
               aspen_store_error *err);
int pg_append_logs(aspen_store *s, const aspen_store_log_line *lines, size_t n,
                   aspen_store_error *err);
int pg_commit(aspen_store *s, int64_t engine_id, const aspen_store_start *starts, size_t n_starts,
              int *start_status, const aspen_store_completion *c, size_t n, int64_t now_ms,
              int *status, aspen_store_state *final_states, aspen_store_error *err);
int pg_release(aspen_store *s, int64_t engine_id, int64_t job_id, int64_t now_ms,
               aspen_store_error *err);
int pg_cancel(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_cancel_result *result,
              aspen_store_error *err);
int pg_rerun(aspen_store *s, int64_t id, int64_t now_ms, unsigned flags, aspen_store_submitted *out,
             aspen_store_error *err);
int pg_retry(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
/* pg_edit.c */
int pg_set_priority(aspen_store *s, int64_t id, int priority, aspen_store_error *err);
int pg_run_now(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
int pg_snooze(aspen_store *s, int64_t id, int64_t delay_ms, int64_t now_ms, aspen_store_error *err);
int pg_snooze_matching(aspen_store *s, const aspen_store_filter *filter, int64_t delay_ms,
                       int64_t now_ms, int64_t *snoozed, int64_t *reserved,
                       aspen_store_error *err);
/* A bulk action's one loop (store_backend.h, STORE_BULK_BATCH): the jobs in `states` matching
 * filter, up to the newest job when it began, in batches in id order, locked FOR UPDATE, each
 * batch given to fn inside its own transaction; totals[] adds each committed batch's counts[]. */
typedef int (*pg_bulk_fn)(struct pg_store *s, const int64_t *ids, size_t n, void *ctx,
                          int64_t counts[2], aspen_store_error *err);
int pg_bulk_batches(struct pg_store *s, const aspen_store_filter *filter, unsigned states,
                    const char *what, pg_bulk_fn fn, void *ctx, int64_t totals[2],
                    aspen_store_error *err);
int pg_delete(aspen_store *s, int64_t id, aspen_store_error *err);
int pg_purge(aspen_store *s, int64_t finished_before_ms, int64_t *deleted, aspen_store_error *err);
int pg_engine_register(aspen_store *s, int64_t pid, const char *host, int64_t lease_ms,
                       int64_t now_ms, int64_t *engine_id, aspen_store_error *err);
int pg_engine_renew(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                    aspen_store_error *err);
int pg_engine_unregister(aspen_store *s, int64_t engine_id, int64_t now_ms, int64_t *released,
                         aspen_store_error *err);
int pg_engine_heartbeat(aspen_store *s, int64_t engine_id, int64_t lease_ms,
                        const aspen_store_engine_figures *f, const char *version, const char *slots,
                        int64_t now_ms, aspen_store_error *err);
int pg_engines(aspen_store *s, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
               aspen_store_error *err);
int pg_recover(aspen_store *s, int64_t self_engine, int64_t min_expired_ms, int64_t now_ms,
               aspen_store_recovery *report,
               aspen_store_error *err);
int pg_cancel_requests(aspen_store *s, int64_t engine_id, int64_t **ids, size_t *n,
                       aspen_store_error *err);
/* A completion's replay record, inside the commit's transaction (pg_commit). */
int pg_commit_replay(struct pg_store *s, const aspen_store_completion *c, aspen_store_error *err);
int pg_put_attempt_data(aspen_store *s, const aspen_store_attempt_data *items, size_t n,
                        aspen_store_error *err);
int pg_get_attempt_data(aspen_store *s, int64_t job_id, int attempt, int kind, void **bytes,
                        size_t *size, aspen_store_error *err);
int pg_list_attempt_data(aspen_store *s, int64_t job_id, aspen_store_attempt_data **out,
                         size_t *n, aspen_store_error *err);
int pg_get(aspen_store *s, int64_t id, aspen_store_job *out, aspen_store_error *err);
int pg_list(aspen_store *s, const aspen_store_filter *filter, aspen_store_job **jobs, size_t *n,
            aspen_store_error *err);
int pg_count(aspen_store *s, const aspen_store_filter *filter, int64_t *count,
             aspen_store_error *err);
int pg_retry_failed(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                    int64_t *retried, aspen_store_retry_skip **skipped, size_t *n_skipped,
                    aspen_store_error *err);
int pg_cancel_matching(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                       int64_t *cancelled, int64_t *requested, aspen_store_error *err);
int pg_counts(aspen_store *s, int64_t counts[ASPEN_STORE_STATE_COUNT], aspen_store_error *err);
int pg_oldest_waiting(aspen_store *s, int64_t now_ms, int64_t *age_ms, aspen_store_error *err);
int pg_attempts(aspen_store *s, int64_t job_id, aspen_store_attempt **out, size_t *n,
                aspen_store_error *err);
int pg_logs(aspen_store *s, int64_t job_id, int64_t after_seq, size_t limit, aspen_store_log **out,
            size_t *n, aspen_store_error *err);
int pg_log_feed(aspen_store *s, aspen_store_log_cursor *cursor, size_t limit,
                aspen_store_feed_line **out, size_t *n, aspen_store_error *err);
int pg_log_feed_end(aspen_store *s, aspen_store_log_cursor *cursor, aspen_store_error *err);
int pg_metrics_write(aspen_store *s, const aspen_store_rollup *rows, size_t n,
                     aspen_store_error *err); /* pg_metrics.c */
int pg_metrics_rows(aspen_store *s, int64_t from_minute, int64_t to_minute, const char *guest,
                    const char *type, int (*fn)(const aspen_store_rollup *row, void *user),
                    void *user, aspen_store_error *err);
int pg_metrics_prune(aspen_store *s, int64_t before_minute, size_t max_rows, int64_t *deleted,
                     aspen_store_error *err);
int pg_wait_fd(aspen_store *s, int *fd, aspen_store_error *err);        /* pg_lease.c */
int pg_notified(aspen_store *s, bool *woken, aspen_store_error *err);   /* pg_lease.c */
int pg_log_wait_fd(aspen_store *s, int *fd, aspen_store_error *err);    /* pg_lease.c */
int pg_log_notified(aspen_store *s, bool *woken, aspen_store_error *err); /* pg_lease.c */

/* Inside the caller's transaction: NOTIFY aspen_jobs, delivered to every listener when the
 * transaction commits (PostgreSQL folds repeats into one). Called by every write that makes a
 * job claimable (pg_jobs.c, pg_lease.c, pg_query.c's retry_failed). */
int pg_notify_work(struct pg_store *s, aspen_store_error *err);
/* The jobs of a submit inside the caller's transaction (pg_submit_batch is this plus BEGIN and
 * COMMIT; the schedules' enqueue commits a job with its occurrence key). */
int pg_insert_jobs(struct pg_store *s, const aspen_store_job_spec *specs, size_t n, int64_t now_ms,
                   int64_t *ids_out, aspen_store_error *err);

/* ---- named queues (pg_queues.c) ------------------------------------------------------------------ */

int pg_migrate_queues(struct pg_store *s, aspen_store_error *err); /* version 8 */
/* Inside a submit: the jobs (ids, a bigint[] literal) of named queues (a text[] literal, one
 * name per id) get their queue, and each queue its row on first use. */
int pg_queues_submitted(struct pg_store *s, const char *ids, const char *names, int64_t now,
                        aspen_store_error *err);
/* Inside the claim transaction, `now` on the server's timeline: up to max unreserved due jobs
 * within every queue's allowance, reserved for engine_id, in claim order. */
int pg_claim_queues(struct pg_store *s, int64_t engine_id, size_t max, int64_t now,
                    aspen_store_job **out, size_t *got, aspen_store_error *err);
/* Inside a commit: started jobs (ids and their start times, bigint[] literals) of rate-limited
 * queues keep a share of the rate (handles that saw a rate limit only). */
int pg_queue_started(struct pg_store *s, const char *ids, const char *ats, aspen_store_error *err);
int pg_queue_set(aspen_store *s, const char *name, unsigned what, int64_t limit, int64_t rate_n,
                 int64_t rate_period_ms, bool paused, int64_t now_ms, aspen_store_error *err);
/* After a retry or rerun of job id, inside its transaction: its named queue's row again
 * (STORE_QUEUE_RENOTE_SQL). */
int pg_queue_renote(struct pg_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
int pg_queue_remove(aspen_store *s, const char *name, aspen_store_queue_held *held,
                    aspen_store_error *err);
int pg_queues(aspen_store *s, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
              aspen_store_error *err);

#endif
