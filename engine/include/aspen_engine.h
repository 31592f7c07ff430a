/* engine/include/aspen_engine.h — the one public header of engine/, Aspen's job engine.
 *
 * The engine turns the store (store/include/aspen_store.h: durable jobs in SQLite) and the micro-VM monitor
 * (vm/include/aspen_vm.h) into a working job system:
 *   - job specs: guest binary by bytes, name (target/guest-binaries/NAME) or path, or a guest source
 *     directory built once with the SDK and cached by the hash of its sources; payload JSON checked
 *     with jansson at submit (refused with its line, column and position);
 *   - a worker pool: one dispatcher thread claims due jobs in batches into an in-memory queue, N
 *     worker threads run them, one committer thread writes results, attempt stats and log lines back
 *     in group commits;
 *   - routing by job type: jobs of type "vm_execute", tagged "requires_isolation" or with isolation
 *     on run in micro-VMs; every other type runs in an in-process C handler registered by name
 *     (built in: "echo", "checksum", "sleep");
 *   - a warm VM pool per binary (sha256 + guest memory size) bounded by a memory budget, least
 *     recently used out first; images cached by sha256 and shared by the VMs that run them;
 *   - timeouts through the VM deadline; cancel of queued jobs (store) and of running ones (the VM is
 *     interrupted at once); rerun; pause/resume (a store setting every process sees); retries with
 *     exponential backoff and jitter (the store decides whether attempts remain);
 *   - a lease renewed every second and crash recovery at start and periodically;
 *   - events for subscribers (job states, log lines, VM stats, throughput, pool) and a snapshot for
 *     UIs that poll.
 *
 * An engine opened with workers = 0 is a client: submit, cancel, rerun, queries and pause work, and
 * nothing is claimed (what `aspen submit` and the other CLI subcommands use).
 *
 * Conventions: functions return 0 or a negative ASPEN_ENGINE_E* code and fill an aspen_engine_error
 * with a message a user can act on. All functions are thread-safe unless said otherwise. Job rows,
 * filters, states and outcomes are the store's types (aspen_store.h), read back as the store keeps
 * them.
 */
#ifndef ASPEN_ENGINE_H
#define ASPEN_ENGINE_H

#include "aspen_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------------------------ *
 * One table: name, value, what it means. The rooms' codes do not overlap (vm -1xx, store -2xx,
 * engine -3xx): an aspen_engine_error's code is always one of these, and store_code the store's
 * own code (ASPEN_STORE_E*) when the store refused. */
#define ASPEN_ENGINE_ERRNO_MAP(X)                                                                  \
    X(EINVAL, -301, "a bad argument or configuration")                                             \
    X(EPAYLOAD, -302, "the payload is not valid JSON")                                             \
    X(EBINARY, -303, "the guest binary is missing, unreadable or too large")                       \
    X(ESTORE, -304, "the store refused (store_code says which store error)")                       \
    X(ENOTFOUND, -305, "no such job")                                                              \
    X(ESTATE, -306, "the job's state does not allow it (cancel of a finished job)")                \
    X(ENOMEM, -307, "out of memory")                                                               \
    X(ETHREAD, -308, "a thread could not be started")                                              \
    X(EKVM, -309, "KVM is not available (workers that run VMs need it)")                           \
    X(EBUILD, -310, "building a guest from source failed")

enum {
    ASPEN_ENGINE_OK = 0,
#define ASPEN_ENGINE_ERRNO_ENUM(name, value, text) ASPEN_ENGINE_##name = value,
    ASPEN_ENGINE_ERRNO_MAP(ASPEN_ENGINE_ERRNO_ENUM)
#undef ASPEN_ENGINE_ERRNO_ENUM
};

/* The name of any room's code — "ASPEN_ENGINE_ESTATE", "ASPEN_STORE_EBUSY", "ASPEN_VM_EKVM" (the
 * ranges tell them apart) — or NULL for a code no room defines; and what it means in general (the
 * error's message says what happened this time). Static strings: safe from any thread. */
const char *aspen_engine_err_name(int code);
const char *aspen_engine_strerror(int code);

typedef struct aspen_engine_error {
    int code;
    int store_code; /* the store's code when code == ASPEN_ENGINE_ESTORE (or ENOTFOUND/ESTATE) */
    char msg[1024];
    /* The database server could not be reached (aspen_store_error.disconnected): an outage that
     * passes; the next call reconnects. */
    bool disconnected;
} aspen_engine_error;

/* ---- configuration ----------------------------------------------------------------------------- */
typedef struct aspen_engine_config {
    const char *db_path;        /* required: the store's database file */
    int workers;                /* worker threads; 0 = client only (no claiming); default via _default: 2 */
    size_t vm_memory_budget;    /* guest memory of all warm VMs together; default 256 MiB */
    size_t default_memory;      /* guest memory of a job that asks for none; default 1 MiB */
    size_t claim_batch;         /* jobs claimed per transaction; default 256 */
    int commit_interval_ms;     /* longest a finished job waits for its group commit; default 2 */
    int commit_busy_ms;         /* ...while every worker has its next job waiting in the ready
                                   queue (the engine is saturated: a group's fixed cost is paid
                                   by fewer jobs' CPU), up to this instead; default 8. Not above
                                   commit_interval_ms: never held (docs/OPERATING.md) */
    size_t commit_batch;        /* commit as soon as this many finished; default 512 */
    int cancel_poll_ms;         /* how often the store's cancel requests are read; default 50 */
    int idle_poll_ms;           /* how often an idle engine checks the database's data version
                                   for new work; default 10 (a claim only when it changed, or
                                   every second for scheduled jobs falling due) */
    int64_t lease_ms;           /* default 5000 */
    int renew_ms;               /* default 1000 */
    int recover_ms;             /* recovery pass period; default 5000 (also run at start) */
    int64_t backoff_base_ms;    /* retry backoff: base * 2^(attempt-1); default 1000 */
    int64_t backoff_cap_ms;     /* default 60000 */
    double backoff_jitter;      /* default 0.2 (±20%) */
    int shutdown_grace_ms;      /* running jobs may finish within this at stop; default 5000 */
    const char *guest_dir;      /* where guest names are looked up; NULL → $ASPEN_GUEST_DIR, then
                                   the source tree's target/guest-binaries */
    const char *build_script;   /* NULL → $ASPEN_BUILD_GUEST, then scripts/build-guest.sh of the tree;
                                   locates the tree whose guests/sdk and vm/include/abi.h `--source` builds
                                   use (the engine builds in its sandbox, never runs the script) */
    const char *cache_dir;      /* build cache; NULL → DIR_OF_DB/build-cache, or for a PostgreSQL
                                   database $XDG_CACHE_HOME/aspen/build-cache-pg-HASH (HASH: 16 hex
                                   of the sha256 of the name, password redacted) */
    size_t core_max;            /* a failed VM attempt keeps an ELF core of at most this many
                                   bytes (aspen core); default 8 MiB */
    size_t replay_max;          /* cap of an attempt's record of host calls (aspen replay);
                                   default 64 KiB; past it the record is cut */
    bool no_builtin_handlers;   /* do not register echo/checksum/sleep */
    bool no_live_logs;          /* do not emit log events while a guest runs (benchmarks) */
    const char *const *queues;  /* serve only these named queues (aspen worker --queues a,b), at
                                   most 16; n_queues 0 → every queue. Copied by aspen_engine_open */
    size_t n_queues;
    bool no_create;             /* open only a database that holds Aspen's schema already: a
                                 * missing SQLite file or a PostgreSQL database without the
                                 * schema is ENOTFOUND, and nothing is created (read-only
                                 * commands: a typo must not leave an empty schema behind) */
    /* Retention (engine/retention.c): how often this engine looks for finished jobs past the
     * database's retention settings, 0 → 10000 ms, < 0 → never (another engine prunes); and the
     * most jobs one prune transaction deletes, 0 → 500 (the pruner sizes its batches by time,
     * a few ms each, up to this). An engine without workers never prunes. */
    int retention_poll_ms;
    int retention_batch;
    /* Appended to every aspen command the engine's messages name ("aspen show 7 lists them"): the
     * CLI's " --db '…'" for a database that is not the default one, so that pasted the command
     * opens this one; NULL or "" → none. Copied by aspen_engine_open (at most 16,399 bytes). */
    const char *cmd_args;
} aspen_engine_config;

void aspen_engine_config_default(aspen_engine_config *cfg);

/* ---- lifecycle --------------------------------------------------------------------------------- */
typedef struct aspen_engine aspen_engine;

/* Opens the store, registers handlers. Threads start with aspen_engine_start. */
int aspen_engine_open(const aspen_engine_config *cfg, aspen_engine **out, aspen_engine_error *err);
/* Registers the engine (lease), runs recovery, starts dispatcher, committer and workers.
 * A client engine (workers = 0) needs no start. */
int aspen_engine_start(aspen_engine *eng, aspen_engine_error *err);
/* Graceful stop: stop claiming, give running jobs grace_ms (< 0 → the configured grace) to finish,
 * then interrupt the rest and release them to the queue unconsumed, flush completions, hand back
 * claimed jobs that never started, unregister. Idempotent. */
int aspen_engine_stop(aspen_engine *eng, int grace_ms, aspen_engine_error *err);
/* Says a stop is coming (async-signal-safe as well as thread-safe: one atomic store). From now on
 * the engine's store calls that find the database unreachable give up after one reconnect
 * attempt instead of retrying for about 5 s each, so that the caller's own calls before
 * aspen_engine_stop (aspen_engine_wait_idle) and the stop itself end promptly when the server is
 * down. Jobs keep running until aspen_engine_stop, which must still be called (and does this
 * itself). With the database away, what the stop cannot write stays leased to this engine and is
 * recovered once its lease expires; the stop says so. */
void aspen_engine_stop_request(aspen_engine *eng);
/* Stops (if running) and frees. NULL is fine. */
void aspen_engine_close(aspen_engine *eng);
/* The store's engine id (0 before start or for a client). */
int64_t aspen_engine_id(const aspen_engine *eng);
const char *aspen_engine_db_path(const aspen_engine *eng);

/* Blocks until nothing is due or running in the whole database (queued, due scheduled and running
 * all zero) and every completion of this engine is flushed, or timeout_ms passes (< 0: forever).
 * Returns 0 when idle, 1 on timeout. Jobs scheduled for later do not count unless
 * include_scheduled. */
int aspen_engine_wait_idle(aspen_engine *eng, int timeout_ms, bool include_scheduled,
                           aspen_engine_error *err);

/* ---- job specs and submit ---------------------------------------------------------------------- */
typedef struct aspen_engine_job_spec {
    const char *type;         /* NULL → "vm_execute" when a guest is given, else required */
    /* the guest: exactly one of bytes, guest (a name in the guest dir, or a path), sha256 of a stored
     * binary, or source_dir (built from source when the job runs) — or none for non-VM types */
    const void *binary;
    size_t binary_size;
    const char *guest;
    const char *binary_sha256;
    const char *source_dir;
    const char *binary_name;  /* shown to people; default: the guest name or source dir's name */
    const char *payload;      /* JSON text; NULL → "{}" */
    int priority;             /* higher runs first */
    int64_t run_at_ms;        /* 0 → now */
    int max_attempts;         /* 0 → 3 */
    int64_t timeout_ms;       /* 0 → 30000; enforced by the VM deadline */
    int64_t memory_bytes;     /* guest memory; 0 → the engine's default */
    bool isolation;           /* run in a micro-VM whatever the type */
    const char *const *tags;  /* n_tags strings */
    size_t n_tags;
    const char *queue;        /* its named queue; NULL → "default" (docs/QUEUES.md) */
    const aspen_store_unique *unique; /* a uniqueness rule (aspen_store.h), or NULL */
} aspen_engine_job_spec;

/* Validates (payload JSON, binary present and under 50 MiB, source dir exists), stores the binary
 * once by content hash, writes the job. *id_out gets its id. */
int aspen_engine_submit(aspen_engine *eng, const aspen_engine_job_spec *spec, int64_t *id_out,
                        aspen_engine_error *err);
/* n jobs in one transaction: all or none. ids_out may be NULL. */
int aspen_engine_submit_batch(aspen_engine *eng, const aspen_engine_job_spec *specs, size_t n,
                              int64_t *ids_out, aspen_engine_error *err);
/* aspen_engine_submit_batch that says per job whether its uniqueness rule found an existing job
 * (out[i].duplicate: nothing written, out[i].id is that job). out may be NULL. */
int aspen_engine_submit_ex(aspen_engine *eng, const aspen_engine_job_spec *specs, size_t n,
                           aspen_store_submitted *out, aspen_engine_error *err);
/* The unique key job id was submitted with (*key malloc'd; NULL when none). */
int aspen_engine_unique_key(aspen_engine *eng, int64_t id, char **key, aspen_engine_error *err);
/* Its whole rule: key, period, states (aspen_store_job_unique_rule; out->key NULL when none;
 * aspen_store_job_rule_clear frees it). */
int aspen_engine_unique_rule(aspen_engine *eng, int64_t id, aspen_store_job_rule *out,
                             aspen_engine_error *err);
/* JSON check used by submit: 0, or EPAYLOAD with "invalid JSON payload: line L, column C,
 * position P: reason", or EPAYLOAD for a payload over ASPEN_ENGINE_MAX_PAYLOAD bytes. */
#define ASPEN_ENGINE_MAX_PAYLOAD (16u << 20)
int aspen_engine_check_payload(const char *json, aspen_engine_error *err);

/* ---- operator actions -------------------------------------------------------------------------- */
/* Queued/scheduled → cancelled at once; running → cancel requested, and if this engine runs it the VM
 * is stopped now (another process's engine notices within its cancel poll, ~50 ms). *requested
 * (may be NULL) tells the second case. */
int aspen_engine_cancel(aspen_engine *eng, int64_t id, bool *requested, aspen_engine_error *err);
/* A new queued job with the original's spec (its max attempts as submitted), linked by rerun_of,
 * and with its uniqueness rule: while another job holds the key in a state the rule counts,
 * *new_id is that job's id and nothing is made (aspen_engine_rerun_ex says which happened). */
int aspen_engine_rerun(aspen_engine *eng, int64_t id, int64_t *new_id, aspen_engine_error *err);
/* aspen_store_rerun_ex through the engine: flags ASPEN_STORE_RERUN_NO_UNIQUE, out (may be NULL)
 * says whether it was a duplicate. */
int aspen_engine_rerun_ex(aspen_engine *eng, int64_t id, unsigned flags, aspen_store_submitted *out,
                          aspen_engine_error *err);
/* failed → queued with one more attempt; ESTATE, nothing changed, while another job holds its
 * unique key in a state its rule counts (the message names that job and what to do). */
int aspen_engine_retry(aspen_engine *eng, int64_t id, aspen_engine_error *err);
/* A waiting job's new priority (aspen_store_set_priority): queued or scheduled only. */
int aspen_engine_set_priority(aspen_engine *eng, int64_t id, int priority, aspen_engine_error *err);
/* A scheduled job runs now (aspen_store_run_now): queued with run_at = now, engines woken. */
int aspen_engine_run_now(aspen_engine *eng, int64_t id, aspen_engine_error *err);
/* Snooze, run-now's inverse (aspen_store_snooze): a waiting job (queued or scheduled) is put off
 * by delay_ms (1 ms .. ASPEN_STORE_SNOOZE_MAX_MS) from when it would run, max(run_at, now), and
 * scheduled, its attempts, priority, queue and unique key kept. EINVAL for a delay out of range; ENOTFOUND; ESTATE for a running or
 * finished job, or a queued one an engine is starting (reserved: it runs now; cancel it). */
int aspen_engine_snooze(aspen_engine *eng, int64_t id, int64_t delay_ms, aspen_engine_error *err);
/* Every queued or scheduled job matching filter (NULL: all) snoozed so, in batches of 1,000 jobs;
 * *snoozed and *reserved (either may be NULL): how many were snoozed, and how many were left as
 * they were because an engine was starting them (or their unique rule, counting queued jobs and
 * not scheduled ones, would let the key go). Running and finished matches are not touched;
 * the filter's limit and offset are ignored. */
int aspen_engine_snooze_matching(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t delay_ms, int64_t *snoozed, int64_t *reserved,
                                 aspen_engine_error *err);
/* Every failed job matching filter (NULL: all) back to queued, in one transaction; *retried (may
 * be NULL) says how many. The filter's limit and offset are ignored. */
int aspen_engine_retry_failed(aspen_engine *eng, const aspen_store_filter *filter,
                              int64_t *retried, aspen_engine_error *err);
/* The same, listing the failed jobs left as they were because another job holds their unique
 * key (aspen_store_retry_failed_ex: *skipped malloc'd, free(); either may be NULL). */
int aspen_engine_retry_failed_ex(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t *retried, aspen_store_retry_skip **skipped,
                                 size_t *n_skipped, aspen_engine_error *err);
/* Every job matching filter (NULL: all) that is not finished, in one transaction: queued and
 * scheduled ones cancelled, running ones asked to stop (their engines stop them within
 * cancel_poll_ms). *cancelled and *requested (either may be NULL) say how many of each. The
 * filter's limit and offset are ignored. */
int aspen_engine_cancel_matching(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t *cancelled, int64_t *requested, aspen_engine_error *err);
/* What aspen_engine_cancel_matching would touch now: the unfinished jobs (queued, scheduled,
 * running) matching filter (NULL: all), counted per state, and the oldest few of their ids — for
 * the question the console's X and aspen cancel --filter ask first. A filter that names finished
 * states only matches none. Reads only; the filter's order, limit and offset are ignored. */
#define ASPEN_ENGINE_UNFINISHED_IDS 8
typedef struct aspen_engine_unfinished {
    int64_t n[ASPEN_STORE_STATE_COUNT]; /* per state; 0 for the finished ones */
    int64_t total;                      /* their sum */
    int64_t ids[ASPEN_ENGINE_UNFINISHED_IDS]; /* the oldest max_ids of them (by id) */
    size_t n_ids;
} aspen_engine_unfinished;
/* max_ids (at most ASPEN_ENGINE_UNFINISHED_IDS) of the ids are listed; 0 lists none (no read). */
int aspen_engine_count_unfinished(aspen_engine *eng, const aspen_store_filter *filter,
                                  size_t max_ids, aspen_engine_unfinished *out,
                                  aspen_engine_error *err);
/* Deletes a finished job (succeeded, failed, cancelled) with its attempts and logs: ESTATE for a
 * queued, scheduled or running one (cancel it first). */
int aspen_engine_delete(aspen_engine *eng, int64_t id, aspen_engine_error *err);
/* Retention: deletes every finished job that finished before finished_before_ms (see
 * aspen_store_purge); *deleted (may be NULL) says how many. */
int aspen_engine_purge(aspen_engine *eng, int64_t finished_before_ms, int64_t *deleted,
                       aspen_engine_error *err);
/* Retention settings and batched deletes (the store's aspen_store_retention_get/_set,
 * aspen_store_prune, aspen_store_delete_jobs, through this engine's handle). */
int aspen_engine_retention_get(aspen_engine *eng, aspen_store_retention *out,
                               aspen_engine_error *err);
int aspen_engine_retention_set(aspen_engine *eng, aspen_store_state state, int64_t keep_ms,
                               aspen_engine_error *err);
int aspen_engine_prune(aspen_engine *eng, aspen_store_state state, int64_t finished_before_ms,
                       size_t max, int64_t *deleted, aspen_engine_error *err);
/* What those prunes would delete, all batches together (aspen_store_prune_count). */
int aspen_engine_prune_count(aspen_engine *eng, aspen_store_state state, int64_t finished_before_ms,
                             int64_t *count, aspen_engine_error *err);
int aspen_engine_delete_jobs(aspen_engine *eng, const int64_t *ids, size_t n, int64_t *deleted,
                             aspen_engine_error *err);
/* A paced prune's figures, after each batch (aspen_engine_prune_paced). */
typedef struct aspen_engine_prune_progress {
    int64_t deleted;       /* jobs deleted so far by this call (and earlier calls with the same
                            * struct: it accumulates) */
    int64_t batch_deleted; /* by the last batch */
    int64_t batches;       /* transactions that deleted something */
    double last_batch_ms;  /* how long the last batch held its locks */
    double max_batch_ms;   /* the longest any did */
    int64_t batch_size;    /* the size the next batch asks for: it follows the measured speed, and
                            * a later call given the same struct starts from it */
    bool more;             /* the last batch left more: another follows unless told to stop */
    bool stopped;          /* the callback stopped the prune before the last job went */
    bool alone;            /* no live engine was on the database when it began: no pacing
                            * (re-checked about once a second; one that starts is waited for) */
} aspen_engine_prune_progress;
/* Called after every batch. pause_ms > 0 (more are waiting): sleep that long before the next
 * batch (the queue's claims and commits take the lock meanwhile) and return true to go on, false
 * to stop; 0: that was the last batch (the return is not read). */
typedef bool (*aspen_engine_prune_fn)(void *ctx, const aspen_engine_prune_progress *p, int pause_ms);
/* Deletes every job in `state` (final) that finished before finished_before_ms, oldest first, the
 * way the engine's retention pruner does (engine/retention.c): in many short transactions, each
 * sized from the last ones' measured lock time (a few ms; at most cfg.retention_batch jobs) and,
 * on SQLite, stopped by the store once it has held the write lock 6 ms, with a pause of twice the
 * hold after each, so the engines working on the database never wait long for a claim. Each batch
 * commits whole: stopping (after returns false) leaves every job either deleted with everything of
 * it or untouched. after NULL: pauses and never stops. progress (may be NULL) accumulates; zero it
 * before the first call. With no live engine on the database (none registered with a fresh
 * heartbeat, and this one has no workers) nothing waits for the lock: batches grow to about 100 ms
 * and nothing pauses, re-checked about once a second, so a purge of an idle database goes at the
 * disk's speed and one beside a starting engine is paced again within a second.
 * 0 (done, or stopped: progress->stopped), -1 with err. */
int aspen_engine_prune_paced(aspen_engine *eng, aspen_store_state state,
                             int64_t finished_before_ms, aspen_engine_prune_fn after, void *ctx,
                             aspen_engine_prune_progress *progress, aspen_engine_error *err);
/* What this engine's pruner has done since it started (engine/retention.c). */
typedef struct aspen_engine_retention_stats {
    int64_t pruned;       /* finished jobs deleted by retention */
    int64_t batches;      /* prune transactions that deleted something */
    int64_t last_run_ms;  /* when it last looked (0: not yet) */
    double max_batch_ms;  /* the longest a prune transaction held its locks */
    int64_t batch_size;   /* the size the pruner now asks for (it follows the measured speed) */
} aspen_engine_retention_stats;
void aspen_engine_retention_stats_get(aspen_engine *eng, aspen_engine_retention_stats *out);
/* Pause/resume claiming in every process on this database. */
int aspen_engine_set_paused(aspen_engine *eng, bool paused, aspen_engine_error *err);
int aspen_engine_paused(aspen_engine *eng, bool *paused, aspen_engine_error *err);

/* ---- queries (the store's rows; free with aspen_store_job_clear / _jobs_free / ...) ------------- */
int aspen_engine_get(aspen_engine *eng, int64_t id, aspen_store_job *out, aspen_engine_error *err);
int aspen_engine_list(aspen_engine *eng, const aspen_store_filter *filter, aspen_store_job **jobs,
                      size_t *n, aspen_engine_error *err);
int aspen_engine_attempts(aspen_engine *eng, int64_t id, aspen_store_attempt **out, size_t *n,
                          aspen_engine_error *err);
int aspen_engine_logs(aspen_engine *eng, int64_t id, int64_t after_seq, size_t limit,
                      aspen_store_log **out, size_t *n, aspen_engine_error *err);
int aspen_engine_counts(aspen_engine *eng, int64_t counts[ASPEN_STORE_STATE_COUNT],
                        aspen_engine_error *err);
/* Changes when another connection (another process, or this engine's own threads) commits. */
int aspen_engine_data_version(aspen_engine *eng, uint64_t *version, aspen_engine_error *err);

/* ---- handlers ---------------------------------------------------------------------------------- */
/* What a handler sees of the job it runs. */
typedef struct aspen_engine_ctx aspen_engine_ctx;

const aspen_store_job *aspen_engine_ctx_job(const aspen_engine_ctx *ctx);
/* A log line (stored with the attempt, and an event for subscribers). At most 4095 bytes; past
 * the store's per-job cap lines are only counted (the job's log_dropped), never kept. */
void aspen_engine_ctx_log(aspen_engine_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The job's result bytes (copied). More than ASPEN_ENGINE_MAX_OUTPUT bytes: EINVAL, and the
 * attempt fails (permanently) with a message saying so, whatever the handler returns. */
int aspen_engine_ctx_set_output(aspen_engine_ctx *ctx, const void *bytes, size_t len);
/* Largest result of an in-process handler: the VM's own default output limit (16 MiB). */
#define ASPEN_ENGINE_MAX_OUTPUT (16u << 20)
/* True once the job was cancelled, timed out, or the engine is stopping: return promptly. */
bool aspen_engine_ctx_should_stop(const aspen_engine_ctx *ctx);
/* Milliseconds left before the job's timeout (never negative). */
int64_t aspen_engine_ctx_remaining_ms(const aspen_engine_ctx *ctx);

/* Handler return: how the attempt ended. A failure is retried with backoff while attempts remain
 * unless ctx_fail said permanent. */
typedef enum aspen_engine_handler_result {
    ASPEN_ENGINE_HANDLER_OK = 0,
    ASPEN_ENGINE_HANDLER_FAILED = 1,
} aspen_engine_handler_result;

/* Record the failure message; permanent = do not retry. Returns ASPEN_ENGINE_HANDLER_FAILED. */
int aspen_engine_ctx_fail(aspen_engine_ctx *ctx, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef int (*aspen_engine_handler_fn)(aspen_engine_ctx *ctx, void *user);

/* Registers fn for jobs of `type` (before start). "vm_execute" is the micro-VM executor and is
 * always present; registering it again replaces it. EINVAL for a duplicate other name. */
int aspen_engine_register_handler(aspen_engine *eng, const char *type, aspen_engine_handler_fn fn,
                                  void *user, aspen_engine_error *err);
/* The job types this engine has handlers for (vm_execute, the built-in echo, checksum and sleep
 * unless no_builtin_handlers, and what was registered), at most cap names into names (pointers
 * valid while the engine is open); returns how many there are. A client (aspen submit) asks it
 * to refuse a type that no engine of its own kind could run. */
size_t aspen_engine_handler_types(const aspen_engine *eng, const char **names, size_t cap);
/* True for the built-in in-process types (echo, checksum, sleep): C functions in the worker that
 * run no guest. Submit refuses a guest or source directory with one of them unless the job runs
 * in a micro-VM anyway (isolation, or the tag requires_isolation): the guest would never run. */
bool aspen_engine_type_in_process(const char *type);
/* True when jobs of this row run in a micro-VM (type vm_execute, tag requires_isolation,
 * isolation on). The tag is one whole element of the tags array, parsed, not a substring. */
bool aspen_engine_job_needs_vm(const aspen_store_job *job);

/* ---- events ------------------------------------------------------------------------------------ */
typedef enum aspen_engine_event_type {
    ASPEN_ENGINE_EV_JOB_STATE = 1u << 0, /* job_id, attempt, state (new), outcome, message */
    ASPEN_ENGINE_EV_LOG = 1u << 1,       /* job_id, attempt, worker, line */
    ASPEN_ENGINE_EV_VM = 1u << 2,        /* worker status after a run: worker, vm */
    ASPEN_ENGINE_EV_THROUGHPUT = 1u << 3, /* about every second: throughput, pool */
    ASPEN_ENGINE_EV_ENGINE = 1u << 4,    /* engine messages: lease lost, recovery, store errors */
    ASPEN_ENGINE_EV_ALL = 0x1f,
} aspen_engine_event_type;

typedef struct aspen_engine_worker_status {
    int index;
    char state[16];      /* "idle", "running", "building", "stopped" */
    int64_t job_id;      /* running job, or 0 */
    char job_type[32];
    char guest[64];      /* binary name of the running or last job */
    size_t memory_configured, memory_touched;
    uint32_t pages_dirtied; /* last run */
    uint64_t cold_start_ns; /* of the VM used last */
    uint64_t last_run_ns;
    uint32_t exits, host_calls; /* last run */
    uint64_t jobs_done;
    bool last_was_cold;   /* the last job needed a new VM */
} aspen_engine_worker_status;

typedef struct aspen_engine_throughput {
    uint64_t claimed, finished, succeeded, failed, retried, cancelled, timeouts;
    double jobs_per_s;        /* finished per second over the last ~1 s */
    uint64_t commits;         /* group commits so far */
    uint64_t commits_held;    /* of them, held open past commit_interval_ms (saturated) */
    uint64_t notify_wakes;    /* wakes by the store's announcement of new work (PostgreSQL) */
    size_t queue_depth;       /* claimed, waiting for a worker */
    size_t pool_vms;          /* warm VMs (idle + in use) */
    size_t pool_bytes;        /* their guest memory */
    size_t pool_budget;
    uint64_t pool_hits, pool_misses, pool_evictions;
    double pool_hit_rate;     /* hits / (hits + misses), 0..1 */
    size_t images;            /* images cached by sha256 */
    uint64_t builds, build_cache_hits;
} aspen_engine_throughput;

typedef struct aspen_engine_event {
    aspen_engine_event_type type;
    int64_t job_id;
    int attempt;
    int worker;                   /* -1 when none */
    aspen_store_state state;      /* EV_JOB_STATE: the new state */
    int outcome;                  /* EV_JOB_STATE after a run: aspen_store_outcome, else -1 */
    const char *job_type;         /* may be NULL */
    const char *message;          /* EV_LOG: the line; JOB_STATE: error; ENGINE: the text */
    const aspen_engine_worker_status *vm;     /* EV_VM */
    const aspen_engine_throughput *throughput; /* EV_THROUGHPUT */
} aspen_engine_event;

/* Called from engine threads (several at once): copy what you keep, return quickly, never call
 * back into the engine from it. */
typedef void (*aspen_engine_event_fn)(const aspen_engine_event *ev, void *user);

/* Returns a subscription id (> 0) or a negative code. mask: ASPEN_ENGINE_EV_* bits. */
int aspen_engine_subscribe(aspen_engine *eng, unsigned mask, aspen_engine_event_fn fn, void *user);
/* After it returns, fn is not running and will not be called again. */
void aspen_engine_unsubscribe(aspen_engine *eng, int id);

/* ---- snapshot for UIs that poll ---------------------------------------------------------------- */
#define ASPEN_ENGINE_MAX_WORKERS 64

typedef struct aspen_engine_snapshot {
    int64_t counts[ASPEN_STORE_STATE_COUNT]; /* whole database, by state */
    int64_t oldest_waiting_ms;
    bool paused;
    int64_t engine_id;
    int n_workers;
    aspen_engine_worker_status workers[ASPEN_ENGINE_MAX_WORKERS];
    aspen_engine_throughput throughput;
    /* The database server cannot be reached now (PostgreSQL restarting, network down): the
     * engine keeps reconnecting; claims wait and finished jobs are held in memory. Since when
     * (unix ms) and how many tries have failed. */
    bool reconnecting;
    int64_t reconnecting_since_ms;
    int reconnect_tries;
} aspen_engine_snapshot;

int aspen_engine_snapshot_get(aspen_engine *eng, aspen_engine_snapshot *out,
                              aspen_engine_error *err);
/* The snapshot's in-memory half only — workers and throughput, never the database (counts,
 * oldest_waiting_ms and paused are left 0): for a UI thread, or one that reads the store's half
 * through another engine handle so that it never queues behind this one's queries. */
void aspen_engine_snapshot_live(aspen_engine *eng, aspen_engine_snapshot *out);

/* Create a directory and any missing parents (mkdir -p, mode 0755): 0, or -1 with errno. */
int aspen_engine_mkdirs(const char *path);

/* The checks a submit makes of a guest file, made before one (the console's form, as a path is
 * typed): path opens as a regular file (never waiting on a FIFO), within the binary size cap, and
 * loads as a guest image (an Aspen guest or a static Linux program). *image_mem (may be NULL): the
 * image's pages. EBINARY says which check failed and why. */
int aspen_engine_check_guest(const char *path, size_t *image_mem, aspen_engine_error *err);
/* A guest memory size as `aspen submit --memory` takes it ("1M", "512K", "64MiB", bytes; blanks
 * around it ignored), within the VM's limits (64 KiB to 1 GiB): EINVAL says what is wrong. */
int aspen_engine_memory_parse(const char *text, int64_t *bytes, aspen_engine_error *err);

/* ---- build from source ------------------------------------------------------------------------- */
/* Builds (or finds in the cache) the guest in source_dir; path_out gets the binary's path. *cached
 * (may be NULL) tells whether the cache answered. EBUILD carries the compiler's message. */
int aspen_engine_build(aspen_engine *eng, const char *source_dir, char *path_out, size_t cap,
                       bool *cached, aspen_engine_error *err);

/* ---- cores and replay (docs/ABI.md "Debugging and core dumps", "Deterministic replay") ------ */

/* A blob an attempt keeps (ASPEN_STORE_DATA_CORE or _REPLAY). attempt 0: the last attempt that
 * keeps one (*attempt_out says which). bytes: malloc'd (free()). ENOTFOUND says which attempts
 * keep one, or that none does and why (a success keeps no core). */
int aspen_engine_attempt_data(aspen_engine *eng, int64_t job_id, int attempt,
                              aspen_store_data_kind kind, void **bytes, size_t *size,
                              int *attempt_out, aspen_engine_error *err);
/* "Did you mean" for a guest name not found in dir: the nearest file name there (within 2 edits,
 * as every "did you mean" of Aspen), or "" in out. */
void aspen_engine_nearest_guest(const char *dir, const char *name, char *out, size_t cap);
/* A stored guest binary by its hash (the exact ELF a job ran, for gdb). */
int aspen_engine_get_binary(aspen_engine *eng, const char *sha256, aspen_store_binary *out,
                            aspen_engine_error *err);
/* A core's program name (NT_PRPSINFO) set to exe's base name, so gdb EXE CORE opens it without
 * "core file may not match": gdb compares the whole base name and the core keeps at most 15
 * bytes of it, so exe's base name should be that short (the console names it job-ID-ATTEMPT).
 * -1 for what is not an ELF core (written as it is then); the console cannot reach vm/ itself. */
int aspen_engine_core_set_program(void *core, size_t len, const char *exe);
/* A job's source_dir pinned at submit ("DIR#sha256=HEX", engine/build.c): true with the
 * directory in dir and the tree's digest in hex; false for a plain directory (or one longer than
 * cap). For showing it: the console's detail, aspen job. */
bool aspen_engine_source_pin(const char *source, char *dir, size_t cap, char hex[65]);
/* The sha256 (hex) of the binary an attempt ran, from its replay record: how a --source job's
 * built guest is known (the job row names only its source). ENOTFOUND when it keeps none. */
int aspen_engine_attempt_binary(aspen_engine *eng, int64_t job_id, int attempt, char hex[65],
                                aspen_engine_error *err);
/* Which blobs a job's attempts keep (free() the list). */
int aspen_engine_list_attempt_data(aspen_engine *eng, int64_t job_id,
                                   aspen_store_attempt_data **out, size_t *n,
                                   aspen_engine_error *err);

/* What an attempt's record holds, call by call: which host calls it recorded and the values the
 * host made up for them (the ones --set can edit). */
typedef struct aspen_engine_replay_value {
    bool is_bytes;
    int64_t number; /* a number (a clock reading is two: seconds, nanoseconds) */
    size_t len;     /* bytes (getrandom's, a registered function's write into the guest): how
                     * many; their first 32 in hex (bytes cannot be set) */
    char hex[65];
} aspen_engine_replay_value;

typedef struct aspen_engine_replay_call {
    uint32_t index;    /* from 1, as --set CALL and the report number calls */
    char name[128];    /* hl_get_time_ns, clock_gettime, a registered function's name */
    bool syscall;      /* a Linux program's system call */
    uint32_t nvalues;  /* its values: list->values[first_value ...] */
    size_t first_value;
} aspen_engine_replay_call;

typedef struct aspen_engine_replay_call_list {
    int attempt;
    bool recorded;  /* false: the attempt kept no record (its guest was asked for nothing the host
                     * makes up, and it succeeded): nothing listed, nothing to set */
    bool truncated; /* the record was cut at its cap: later calls are not in it */
    aspen_engine_replay_call *calls;
    size_t n;
    aspen_engine_replay_value *values;
    size_t nvalues;
    size_t with_values; /* calls that recorded at least one value */
} aspen_engine_replay_call_list;

/* Lists the recorded host calls of attempt (0: the last) without running anything; refused as
 * aspen_engine_replay refuses (an in-process job, a recovered or cancelled attempt...). Free the
 * list with aspen_engine_replay_call_list_free. */
int aspen_engine_replay_calls(aspen_engine *eng, int64_t job_id, int attempt,
                              aspen_engine_replay_call_list *out, aspen_engine_error *err);
void aspen_engine_replay_call_list_free(aspen_engine_replay_call_list *c);

typedef struct aspen_engine_replay_opts {
    int attempt;        /* 0: the job's last attempt */
    bool set;           /* first replace a recorded value ("what if the host had said"): */
    uint32_t set_call;  /*   host call, 1-based */
    uint32_t set_index; /*   its value, 0-based (a clock reading is seconds, nanoseconds) */
    int64_t set_value;
    /* Optional: filled with the record's calls as recorded (before --set's edit), or, for an
     * attempt without a record, the calls its replay made (no values); free it with
     * aspen_engine_replay_call_list_free, also when the replay fails. */
    aspen_engine_replay_call_list *calls;
    /* Optional: appended to the aspen command its messages name (the CLI's " --db '…'" for a
     * database that is not the default one, so that pasted it opens this one); NULL: none. */
    const char *cmd_args;
} aspen_engine_replay_opts;

typedef struct aspen_engine_replay_report {
    int attempt;
    bool identical;      /* output, log lines and outcome as recorded, every host call agreeing */
    bool recorded;       /* a record was stored (else the job's row and stored result were used) */
    uint32_t calls;      /* host calls of the replayed run */
    uint32_t values;     /* recorded values fed back */
    uint32_t diverged_at; /* the first host call that differed, 0 when none did */
    char outcome[32];    /* how the replayed run ended */
    char summary[2048];  /* "identical: ..." or "diverged at host call 2 (hl_println): ..." */
    /* Every part of how the run ended, replayed against recorded — also after a host call that
     * differed, so an edit's (--set's) effect on the result shows. Text fields are the guest's
     * raw bytes: escape them before they reach a terminal. */
    char recorded_outcome[32];
    bool outcome_differs;
    uint64_t output_len, recorded_output_len;
    char output_sha256[65], recorded_output_sha256[65];
    bool output_differs;
    int64_t output_diff_at;   /* first differing byte; -1 when the recorded bytes are not kept
                               * (a record keeps their hash; the job's row, its last result) */
    char output_head[100];    /* the replayed output's first bytes */
    size_t output_head_len;
    bool error_differs;
    char error[1024];         /* the replayed run's error ("" for none) */
    char recorded_error[1025];
    uint32_t log_lines, recorded_log_lines;
    bool log_lines_differ;    /* their number (or, without a record, a stored line) differs */
    uint32_t log_diff_at;     /* the first stored log line of the attempt that differs from the
                               * replayed one (from 1), 0 when none does or none is stored */
    char log_recorded[256], log_replayed[256]; /* that line, both ways (cut) */
    /* When not identical: those parts as indented lines ("  output: differs: ..."), the guest's
     * text in them quoted (newlines as \n, quotes and backslashes after a backslash), other
     * bytes raw (escape them to print). */
    char details[4096];
} aspen_engine_replay_report;

/* Runs an attempt of a micro-VM job again in a fresh VM from the snapshot, with the recorded
 * image (by hash), memory size and input, the recorded host-call results fed back, and compares.
 * Returns 0 when the replay ran (report->identical says how it compared), or a negative code when
 * it cannot (no such job or attempt, an in-process job, a recovered attempt, the binary no longer
 * stored, a damaged record, KVM missing). */
int aspen_engine_replay(aspen_engine *eng, int64_t job_id, const aspen_engine_replay_opts *opts,
                        aspen_engine_replay_report *report, aspen_engine_error *err);

#ifdef __cplusplus
}
#endif

/* Periodic jobs: schedules through the engine. */
#include "aspen_engine_schedule.h"
#endif /* ASPEN_ENGINE_H */
