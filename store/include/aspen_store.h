/* aspen_store.h — the one public header of store/, Aspen's durable SQLite job store.
 *
 * The store keeps jobs, their attempts and logs, guest binaries by content hash, engine leases and
 * queue settings in one SQLite database in WAL mode, so that several processes (the console, a
 * headless worker, `aspen submit` from another terminal) share the same truth. It knows nothing of
 * VMs: the engine (engine/) claims jobs, runs them and hands results back here in group commits.
 *
 * Conventions
 * - Every function that can fail returns 0 or a negative ASPEN_STORE_E* code and, when `err` is not
 *   NULL, fills it with the code and a message that says what happened and what to do.
 * - Time is never read inside the store's logic: every function that needs "now" takes `now_ms`
 *   (unix milliseconds; aspen_store_now_ms() gives the wall clock). Tests pass their own clock.
 * - Priority: a HIGHER number is MORE urgent. Claim order is priority descending, then run_at
 *   ascending (oldest due first), then id ascending.
 * - Thread-safety: an aspen_store handle is one SQLite connection and must be used by one thread
 *   at a time. Open one handle per thread (open the same path N times); handles on one database,
 *   in one process or many, are safe together (WAL, busy timeout, BEGIN IMMEDIATE for writes).
 *   The pure functions (state names, transition table, SHA-256, backoff, filter parsing) are
 *   thread-safe.
 * - Memory returned through out-parameters is owned by the caller and freed with the matching
 *   _free or _clear function named next to it.
 */
#ifndef ASPEN_STORE_H
#define ASPEN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------------------------ */

/* One table: name, value, permanent, what it means. Permanent errors need a person (corrupt or not
 * a database, schema missing or newer, read-only or permission denied, no directory); the others
 * pass by themselves (busy, disk full, I/O, out of memory: retry with backoff). An engine stops on
 * a permanent error and says why. The rooms' codes do not overlap (vm -1xx, store -2xx,
 * engine -3xx). */
#define ASPEN_STORE_ERRNO_MAP(X)                                                                   \
    X(EINVAL, -201, false, "a bad argument (an empty type, tags that are not JSON, ...)")          \
    X(ENOTFOUND, -202, false, "no such job, binary, engine, queue or schedule")                    \
    X(ESTATE, -203, false, "the job's state does not allow the change")                            \
    X(EBUSY, -204, false, "the database is locked by another connection beyond the busy timeout")  \
    X(ECORRUPT, -205, true, "not a database, not Aspen's, or malformed (left untouched)")          \
    X(EFULL, -206, false, "the disk or the database's size limit is full (rolled back)")           \
    X(ENEWER, -207, true, "the database's schema is newer than this program")                      \
    X(ENODIR, -208, true, "the database's directory does not exist")                               \
    X(EPERM, -209, true, "permission denied, or a read-only file or directory")                    \
    X(ENOMEM, -210, false, "out of memory")                                                        \
    X(EIO, -211, false, "an I/O error or another database failure")                                \
    X(ELEASE, -212, false, "this engine's lease is gone: another engine recovered its jobs")       \
    X(ETOOBIG, -213, false, "a binary larger than ASPEN_STORE_MAX_BINARY")                         \
    X(ESCHEMA, -214, true, "a table or column of Aspen's schema is missing: a damaged database")

enum {
    ASPEN_STORE_OK = 0,
#define ASPEN_STORE_ERRNO_ENUM(name, value, permanent, text) ASPEN_STORE_##name = value,
    ASPEN_STORE_ERRNO_MAP(ASPEN_STORE_ERRNO_ENUM)
#undef ASPEN_STORE_ERRNO_ENUM
};

/* Whether an error needs a person (the table's third column). */
bool aspen_store_error_permanent(int code);
/* "ASPEN_STORE_EBUSY", ... ("ASPEN_STORE_OK" for 0, NULL for a code that is not the store's), and
 * what the code means in general (the aspen_store_error's message says what happened this time).
 * Static strings: safe from any thread. */
const char *aspen_store_err_name(int code);
const char *aspen_store_strerror(int code);

typedef struct aspen_store_error {
    int code;      /* the same negative code the function returned; 0 when fine */
    char msg[512]; /* a human message: what happened and what to do */
    /* The database server cannot be reached now (PostgreSQL: the connection was lost, or the
     * server refuses connections while it stops or starts): an outage, not a refusal. The call
     * reconnects on its own next time; an engine waits and says "reconnecting" (once). Always
     * false on SQLite. Set with code EIO or EBUSY, never with a permanent code. */
    bool disconnected;
} aspen_store_error;

/* The seed's limit: "Binary too large: X bytes (max: 52428800 bytes)". */
#define ASPEN_STORE_MAX_BINARY 52428800u
#define ASPEN_STORE_SCHEMA_VERSION 18

/* ---- states and the transition table ---------------------------------------------------------- */

typedef enum aspen_store_state {
    ASPEN_STORE_QUEUED = 0,    /* due; waiting (perhaps reserved by an engine about to start it) */
    ASPEN_STORE_SCHEDULED = 1, /* run_at in the future (delayed submit or retry backoff) */
    ASPEN_STORE_RUNNING = 2,   /* started by an engine (owner): its attempt is charged */
    ASPEN_STORE_SUCCEEDED = 3,
    ASPEN_STORE_FAILED = 4,    /* out of attempts (or failed without retry) */
    ASPEN_STORE_CANCELLED = 5, /* stopped on purpose */
    ASPEN_STORE_STATE_COUNT = 6,
    ASPEN_STORE_STATE_NEW = -1 /* "no row yet": the from-state of a submit */
} aspen_store_state;

const char *aspen_store_state_name(aspen_store_state state); /* "queued", ...; "new"; "?" */
int aspen_store_state_parse(const char *name, aspen_store_state *out); /* 0 or EINVAL */
/* The transition table, the single source of truth (also installed as a trigger in the database). */
bool aspen_store_transition_allowed(aspen_store_state from, aspen_store_state to);
/* 0 if allowed; ESTATE with "job 42 is succeeded: it cannot become cancelled (...)" otherwise. */
int aspen_store_check_transition(int64_t job_id, aspen_store_state from, aspen_store_state to,
                                 aspen_store_error *err);
bool aspen_store_state_is_final(aspen_store_state state); /* succeeded, failed, cancelled */

/* ---- opening ------------------------------------------------------------------------------------ */

typedef struct aspen_store aspen_store;

typedef struct aspen_store_options {
    int busy_timeout_ms; /* 0 → 5000: how long a write waits for another process's lock */
    int log_cap;         /* 0 → 1000 lines kept per job, then one truncation marker line */
    bool read_only;      /* open without writing anything (no create, no migration) */
    bool no_create;      /* fail with ENOTFOUND if the file does not exist (PostgreSQL: if the
                          * database holds no Aspen schema yet; nothing is created) */
    /* PostgreSQL: while *give_up is non-zero (NULL: never), a call that finds the server gone
     * tries to reconnect once, without backoff, and fails at once with EIO (disconnected)
     * instead of retrying for about 5 s, and a backoff sleep under way ends within 50 ms. For a
     * process that is stopping: its shutdown made a dozen such calls one after another and took
     * tens of seconds with the server down. Read with an atomic load from any thread; it must
     * outlive the handle. SQLite ignores it (its calls do not reconnect). */
    const _Atomic int *give_up;
} aspen_store_options;

/* Opens (creating if needed) and migrates the database at `path` (":memory:" for a private one),
 * or, for a postgresql:// or postgres:// URI or a libpq key=value string, a PostgreSQL database
 * (its schema created on first use; docs/STORE.md "Backends").
 * Errors: ENODIR, EPERM, ECORRUPT (never overwritten), ENEWER, EBUSY, EFULL, EIO; on PostgreSQL
 * also ENOTFOUND (no such database) and EPERM (authentication refused). */
int aspen_store_open(const char *path, const aspen_store_options *opts, aspen_store **out,
                     aspen_store_error *err);
void aspen_store_close(aspen_store *s); /* NULL is fine */
/* Whether a database name names a PostgreSQL database (postgresql://…, postgres://…, or a libpq
 * key=value string such as "host=db dbname=aspen") rather than an SQLite file: a caller skips its
 * file checks for it (the store says what is wrong with a server). */
bool aspen_store_name_is_postgres(const char *name);
/* A database name fit to print or show: any password replaced by *** (a PostgreSQL conninfo may
 * hold one; an SQLite path is copied as it is). out is always terminated, cut at size. */
void aspen_store_name_shown(const char *name, char *out, size_t size);
const char *aspen_store_path(const aspen_store *s);
/* Log lines kept per job by this handle (aspen_store_options.log_cap, default 1000), not counting
 * the truncation marker that replaces the first line past it. */
int aspen_store_log_cap(const aspen_store *s);
/* Appended to every aspen command this handle's messages name ("aspen cron rm nightly", "aspen
 * cancel ID"): the CLI's " --db '…'" for a database that is not the default one, so that the
 * command pasted opens this one, as aspen_engine_config.cmd_args does for the engine's (an engine
 * sets its own on the handle it answers calls with); NULL or "" → none. Copied. A message is cut
 * at its 512 bytes: the CLI's form is single-quoted, so a command cut inside it does not run
 * pasted (the shell waits for the quote) instead of opening another database. EINVAL past
 * ASPEN_STORE_CMD_ARGS_MAX bytes, ENOMEM. */
#define ASPEN_STORE_CMD_ARGS_MAX (4 * 4096 + 15)
int aspen_store_set_cmd_args(aspen_store *s, const char *args, aspen_store_error *err);
int64_t aspen_store_now_ms(void); /* wall clock, unix ms */
/* PRAGMA quick_check, and the kept per-state counts against a recount: 0, or ECORRUPT naming the
 * first problem (EIO "counts drifted" when only the counts are off: run aspen_store_recount).
 * O(database size). */
int aspen_store_check(aspen_store *s, aspen_store_error *err);
/* Rebuilds the per-state counts from the jobs table (after rows were changed by hand). O(jobs). */
int aspen_store_recount(aspen_store *s, aspen_store_error *err);

/* ---- binaries (content-addressed) --------------------------------------------------------------- */

typedef struct aspen_store_binary {
    char sha256[65];
    char *name;
    void *bytes;
    size_t size;
    int64_t created_at_ms;
} aspen_store_binary;

/* Stores bytes once by SHA-256 (INSERT OR IGNORE); writes the hex hash to sha256_out. */
int aspen_store_put_binary(aspen_store *s, const void *bytes, size_t size, const char *name,
                           int64_t now_ms, char sha256_out[65], aspen_store_error *err);
int aspen_store_get_binary(aspen_store *s, const char *sha256, aspen_store_binary *out,
                           aspen_store_error *err);
void aspen_store_binary_clear(aspen_store_binary *b);

/* ---- submit ------------------------------------------------------------------------------------- */

typedef struct aspen_store_job_spec {
    const char *type;          /* required, non-empty: "vm_execute", "echo", ... */
    const char *binary_sha256; /* a binary already stored, or NULL */
    const void *binary;        /* or bytes to store with the job (hashed, stored once) */
    size_t binary_size;
    const char *binary_name;   /* shown to people; NULL allowed */
    const char *payload;       /* JSON text (validated by the engine); NULL → "{}" */
    int priority;              /* higher = more urgent; default 0 */
    int64_t run_at_ms;         /* 0 or <= now → queued; later → scheduled */
    int max_attempts;          /* 0 → 3 */
    int64_t timeout_ms;        /* 0 → 30000 */
    int64_t memory_bytes;      /* 0 → engine default (stored as 0) */
    bool isolation;            /* run in a micro-VM whatever the type */
    const char *tags;          /* JSON array of strings; NULL → "[]" */
    const char *source_dir;    /* guest source directory for build-from-source jobs, or NULL */
    const char *queue;         /* the job's named queue; NULL or "" → "default" (names: see
                                  aspen_store_queue_name_check) */
    const struct aspen_store_unique *unique; /* a uniqueness rule (see below), or NULL */
} aspen_store_job_spec;

int aspen_store_submit(aspen_store *s, const aspen_store_job_spec *spec, int64_t now_ms,
                       int64_t *id_out, aspen_store_error *err);
/* N jobs in one transaction: all or none. ids_out (may be NULL) receives n ids. */
int aspen_store_submit_batch(aspen_store *s, const aspen_store_job_spec *specs, size_t n,
                             int64_t now_ms, int64_t *ids_out, aspen_store_error *err);

/* ---- unique jobs (store/unique.c; docs/STORE.md "Unique jobs") ---------------------------------- */

/* A submit that carries a rule is a duplicate when a job with the same key exists that was created
 * less than period_ms before now and is in one of `states` NOW (the rule of the job being
 * submitted decides, not the rule the existing job was submitted with). A duplicate writes
 * nothing: the submit returns the existing job's id. Checked inside the submit's transaction
 * (SQLite: under its write lock; PostgreSQL: under a transaction advisory lock on the key), so
 * concurrent submits of one key from any number of processes or hosts create one job. */
typedef struct aspen_store_unique {
    /* The key as given (1-ASPEN_STORE_UNIQUE_KEY_MAX bytes of UTF-8; it is the whole key, the same
     * across guests and types). NULL or "" → derived: "sha256:" + the hash of the job's type, its
     * guest (binary name, else hash, else source directory) and its payload with keys sorted and
     * no white space — or, when fields is set, only those payload fields. */
    const char *key;
    const char *fields; /* "user,order.id": the payload fields a derived key covers, or NULL */
    int64_t period_ms;  /* only jobs created within this long count; 0 → any age */
    unsigned states;    /* bit (1u << state) per state that counts; 0 → ASPEN_STORE_UNIQUE_STATES */
} aspen_store_unique;

#define ASPEN_STORE_UNIQUE_STATES                                                                  \
    ((1u << ASPEN_STORE_QUEUED) | (1u << ASPEN_STORE_SCHEDULED) | (1u << ASPEN_STORE_RUNNING))
#define ASPEN_STORE_UNIQUE_KEY_MAX 512

/* What a submit did with one spec. */
typedef struct aspen_store_submitted {
    int64_t id;             /* the new job, or the existing one for a duplicate */
    bool duplicate;         /* nothing was written: id is the job the rule matched */
    aspen_store_state state; /* of the job (the existing one's when a duplicate) */
    int64_t created_at_ms;  /* when that job was created */
} aspen_store_submitted;

/* aspen_store_submit_batch that says, per spec, whether it was a duplicate (out may be NULL; it
 * receives n entries). Specs with a rule that repeat a key within the batch are duplicates of the
 * first one (when its state counts). All or none, as a batch is. */
int aspen_store_submit_ex(aspen_store *s, const aspen_store_job_spec *specs, size_t n,
                          int64_t now_ms, aspen_store_submitted *out, aspen_store_error *err);
/* The key a spec's rule gives (as stored), into out (ASPEN_STORE_UNIQUE_KEY_MAX + 1 bytes is
 * enough). EINVAL for a rule that cannot be used (empty or over-long key, a field path that is
 * not a.b.c, a payload that is not JSON, a negative period, an unknown state bit). */
int aspen_store_unique_key(const aspen_store_job_spec *spec, char *out, size_t size,
                           aspen_store_error *err);
/* "queued,scheduled,running,succeeded" → state bits (any state names, comma separated, at least
 * one); EINVAL naming the bad word with "did you mean". */
int aspen_store_states_parse(const char *text, unsigned *states, aspen_store_error *err);
/* The same, for a command that offers only some states (bits of `offered`, e.g. the final ones
 * for retention): an unknown word's "did you mean" and the list of names come from those. A
 * known state outside them is still parsed, so the caller can say why it is not taken here. */
int aspen_store_states_parse_in(const char *text, unsigned offered, unsigned *states,
                                aspen_store_error *err);
/* "90s", "10m", "12h", "7d", "2w", "500ms", or a bare number of seconds; also "1h30m". EINVAL
 * with what was wrong for anything else (negative, empty, unknown unit, overflow). */
int aspen_store_duration_parse(const char *text, int64_t *ms, aspen_store_error *err);
/* A time as aspen submit --timeout / --delay and the console's submit form take it: a bare
 * number of milliseconds, or a duration as above (500ms, 30s, 5m, 1h), from lo to hi ms
 * (blanks around it ignored). EINVAL says what is taken: "milliseconds (a bare number) or a
 * duration such as ..., from 1ms to 1d, not 'X'" (the caller puts the option's name first). */
int aspen_store_ms_parse(const char *text, int64_t lo, int64_t hi, int64_t *ms,
                         aspen_store_error *err);
/* The inverse for people: "10m", "24h", "7d", "1h30m", "0s". */
void aspen_store_duration_format(int64_t ms, char *out, size_t size);
/* The one wording of a duplicate (CLI, console): "job 12 already exists for unique key K (queued,
 * submitted 3 s ago); not submitting another". key is the spec's key (aspen_store_unique_key). */
void aspen_store_duplicate_message(const char *key, const aspen_store_submitted *dup,
                                   int64_t now_ms, char *out, size_t size);
/* The unique key stored with job id (*key malloc'd, NULL when it was submitted without a rule). */
int aspen_store_job_unique_key(aspen_store *s, int64_t id, char **key, aspen_store_error *err);

/* The uniqueness rule a job was submitted (or rerun) with, as stored (schema version 17). */
typedef struct aspen_store_job_rule {
    char *key;         /* malloc'd (aspen_store_job_rule_clear); NULL when the job has no rule */
    int64_t period_ms; /* only jobs created within this long count; 0 → any age */
    unsigned states;   /* the states that count, never 0 (a rule stored before version 17, which
                          kept only the key, reads as the default states and any age) */
} aspen_store_job_rule;
int aspen_store_job_unique_rule(aspen_store *s, int64_t id, aspen_store_job_rule *out,
                                aspen_store_error *err);
void aspen_store_job_rule_clear(aspen_store_job_rule *r);
/* "queued,scheduled,running": the names of a state set, comma separated, in state order. */
void aspen_store_states_format(unsigned states, char *out, size_t size);

/* A failed job an operator's retry left as it was because another job holds its unique key in a
 * state its rule counts (retrying it would make two live jobs of one key). */
typedef struct aspen_store_retry_skip {
    int64_t id;                   /* the failed job, unchanged */
    aspen_store_submitted holder; /* the job holding the key (its id, state, created_at_ms) */
    char key[ASPEN_STORE_UNIQUE_KEY_MAX + 1];
} aspen_store_retry_skip;
/* The one wording of that refusal (CLI, console, the store's own error): "job 1 not retried: job
 * 2 (queued) holds its unique key 'K'; cancel job 2 first (aspen cancel 2), or aspen rerun 1
 * --no-unique" (a finished holder: "delete job 2 first (aspen delete 2)"; cmd: the arguments to
 * append to the commands it names, such as " --db PATH", or ""; a key past 200 bytes is cut). */
void aspen_store_retry_skip_message(const aspen_store_retry_skip *skip, const char *cmd, char *out,
                                    size_t size);

/* ---- jobs as read back -------------------------------------------------------------------------- */

typedef struct aspen_store_job {
    int64_t id;
    char *type;
    char *binary_sha256; /* NULL when none */
    char *binary_name;   /* NULL when none */
    char *payload;
    aspen_store_state state;
    int priority;
    int64_t run_at_ms;
    int attempts; /* attempts started so far (a running job: the number of this attempt) */
    int max_attempts;
    int64_t timeout_ms;
    int64_t memory_bytes;
    bool isolation;
    char *tags; /* JSON array text */
    int64_t created_at_ms, started_at_ms, finished_at_ms; /* 0 when not yet */
    void *result; /* output of the last attempt that produced one; NUL-terminated extra byte */
    size_t result_size;
    char *error; /* last error, NULL when none */
    int64_t rerun_of; /* 0 when not a rerun */
    int64_t owner;    /* engine id while running, else 0 */
    bool cancel_requested;
    char *source_dir;
    int log_count;       /* log lines stored (truncation marker included) */
    int64_t log_dropped; /* lines not kept because of the per-job cap */
    /* its named queue ("default" unless submitted to another); an array, not a pointer: every
     * claimed job carries one, and a malloc per job showed in the claim's cost */
    char queue[65];
} aspen_store_job;

void aspen_store_job_clear(aspen_store_job *job);
void aspen_store_jobs_free(aspen_store_job *jobs, size_t n);

/* ---- claim: reserve, then start ----------------------------------------------------------------- */

/* Reserves up to `max` due jobs for `engine_id` in one transaction: scheduled jobs whose run_at has
 * come are promoted to queued, then the head of the queue (priority desc, run_at, id) that no
 * engine has reserved gets a reservation (a row in the claims table). The jobs STAY QUEUED, their
 * attempts uncharged and their rows untouched: to everyone else they are waiting, a cancel cancels
 * them at once, and if the engine dies recovery drops its reservations without charging anything.
 * A reserved job becomes running (attempts + 1, started_at) only when the engine starts it:
 * aspen_store_start_jobs, or implicitly by aspen_store_complete when it started and finished within
 * one group commit. The returned rows are as read (state queued, attempts so far), in claim order.
 * If the queue is paused, reserves nothing and sets *paused (may be NULL). *jobs is NULL when *n
 * is 0. Reserve only what can start now (free workers plus a short prefetch): a reserved job is
 * invisible to other engines until it starts or is given back. */
int aspen_store_claim(aspen_store *s, int64_t engine_id, size_t max, int64_t now_ms,
                      aspen_store_job **jobs, size_t *n, bool *paused, aspen_store_error *err);

/* Gives back reservations of `engine_id` (jobs it reserved and will not start): they are at once
 * claimable by anyone. Ids not reserved by this engine are ignored. One transaction. */
int aspen_store_unclaim(aspen_store *s, int64_t engine_id, const int64_t *ids, size_t n,
                        aspen_store_error *err);

/* TEST HOOK, not for programs: makes the next `n` calls of aspen_store_unclaim in this process, on
 * any handle and either backend, fail with ASPEN_STORE_EIO (a message naming this hook) without
 * touching the database, as a store that went away would; 0 turns it off. Returns how many
 * refusals of the previous setting were still left (0 once they were all used). It lets a test
 * make an engine's give-back of prefetched jobs fail on purpose (tests/engine/
 * test_engine_giveback.c), which otherwise takes a database server dying at the right
 * millisecond. Compiled in everywhere; while off it costs unclaim one relaxed atomic load.
 * Thread-safe. */
int aspen_store_test_fail_unclaims(int n);

typedef struct aspen_store_start {
    int64_t job_id;
    int64_t started_at_ms; /* when its worker really began it; 0 → now_ms */
} aspen_store_start;

/* Marks reserved jobs started in one transaction: queued + reserved by engine_id → running,
 * attempts + 1, started_at, owner. A job no longer reserved by this engine (cancelled, or its
 * reservation given back after a lost lease) is refused alone: status[i] ESTATE/ELEASE/ENOTFOUND. */
int aspen_store_start_jobs(aspen_store *s, int64_t engine_id, const aspen_store_start *starts,
                           size_t n, int64_t now_ms, int *status, aspen_store_error *err);

/* Hands a job back without counting the attempt (graceful shutdown): running → queued; a reserved
 * job not started yet just loses its reservation. */
int aspen_store_release(aspen_store *s, int64_t engine_id, int64_t job_id, int64_t now_ms,
                        aspen_store_error *err);

/* ---- complete (group commit) -------------------------------------------------------------------- */

typedef enum aspen_store_outcome {
    ASPEN_STORE_OUTCOME_SUCCESS = 0,
    ASPEN_STORE_OUTCOME_FAILURE = 1,
    ASPEN_STORE_OUTCOME_TIMEOUT = 2,
    ASPEN_STORE_OUTCOME_CANCELLED = 3,
} aspen_store_outcome;

typedef struct aspen_store_attempt_stats {
    int64_t started_at_ms, finished_at_ms; /* 0 → the job's started_at / now_ms */
    int64_t wall_us;
    uint64_t exits, host_calls, pages_dirtied, bytes_in, bytes_out;
} aspen_store_attempt_stats;

typedef struct aspen_store_log_line {
    int64_t job_id;  /* for aspen_store_append_logs; ignored inside a completion */
    int attempt;     /* likewise; 0 → the job's current attempt */
    int64_t time_ms;
    const char *line;
    /* Lines the writer did not keep (past the per-job cap, or dropped by a full buffer): added to
     * the job's log_dropped. An entry with line NULL and dropped > 0 carries only that count. */
    int64_t dropped;
} aspen_store_log_line;

typedef struct aspen_store_completion {
    int64_t job_id;
    aspen_store_outcome outcome;
    aspen_store_attempt_stats stats;
    const void *output; /* result bytes, may be NULL */
    size_t output_size;
    const char *error;  /* for failure/timeout/cancelled; NULL → a default message */
    const aspen_store_log_line *logs;
    size_t n_logs;
    /* Failure or timeout: > 0 asks for a retry at that time (see aspen_store_backoff_ms). The store
     * retries only if attempts < max_attempts and no cancel was requested; else the job fails. */
    int64_t retry_at_ms;
    /* The attempt's replay record (attempt_data kind replay, schema version 6), written in the same
     * transaction as the attempt when the completion is accepted; NULL: none. replay_attempt is
     * the attempt's number (the engine's). At most ASPEN_STORE_MAX_ATTEMPT_DATA bytes. */
    const void *replay;
    size_t replay_size;
    int replay_attempt;
} aspen_store_completion;

/* Writes n completions by `engine_id` in ONE transaction: job state, attempt row, logs. A job
 * still queued and reserved by this engine is taken as started (stats.started_at_ms) and finished
 * in the same write. A completion that no longer applies (job recovered by someone else after a lost lease, already
 * final, not running) does not abort the others: its status[i] is ESTATE/ENOTFOUND/ELEASE and
 * nothing is written for it. status may be NULL. Returns 0 when the transaction committed (err->msg
 * then still describes the first refused item, if any, for the log). If final_states is not NULL,
 * final_states[i] receives each job's new state (its unchanged state when refused). */
int aspen_store_complete(aspen_store *s, int64_t engine_id, const aspen_store_completion *c,
                         size_t n, int64_t now_ms, int *status, aspen_store_state *final_states,
                         aspen_store_error *err);

/* The engine's group commit: start marks, then completions, in ONE transaction (either list may
 * be empty). Per-item refusals as for aspen_store_start_jobs and aspen_store_complete. */
int aspen_store_commit(aspen_store *s, int64_t engine_id, const aspen_store_start *starts,
                       size_t n_starts, int *start_status, const aspen_store_completion *c,
                       size_t n, int64_t now_ms, int *status, aspen_store_state *final_states,
                       aspen_store_error *err);

/* Appends log lines (each names its job and attempt) in one transaction, honouring the per-job cap:
 * for live logs while a job runs. */
int aspen_store_append_logs(aspen_store *s, const aspen_store_log_line *lines, size_t n,
                            aspen_store_error *err);

/* Exponential backoff with jitter for attempt n (1-based: the attempt that just failed):
 * base * 2^(n-1), capped at cap_ms, then spread uniformly by ±jitter (0..1, e.g. 0.2 = ±20%)
 * using `random` (any 64 random bits). Never below 0, never above cap_ms * (1 + jitter). */
int64_t aspen_store_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double jitter,
                               uint64_t random);

/* ---- engines, leases, recovery ------------------------------------------------------------------ */

/* A host's heartbeat is stale when it is older than this (an engine heartbeats every second, so
 * five missed beats): the console and `aspen engines` mark it. Its lease (default 5 s) decides
 * recovery; staleness only tells the operator. */
#define ASPEN_STORE_HEARTBEAT_STALE_MS 5000
/* Busy workers a heartbeat carries (more are counted in `busy` but not listed). */
#define ASPEN_STORE_ENGINE_SLOTS 64
/* The served-queue list a heartbeat carries: 16 names of at most 64 bytes and their commas. */
#define ASPEN_STORE_ENGINE_QUEUES_MAX (16 * 65)

/* What one busy worker runs. */
typedef struct aspen_store_engine_slot {
    int worker;
    int64_t job_id;
    char guest[64]; /* the binary's name as the engine knows it (control bytes shown as '?') */
} aspen_store_engine_slot;

/* An engine's live figures, written by aspen_store_engine_heartbeat (schema version 5). */
typedef struct aspen_store_engine_figures {
    int64_t workers;   /* worker threads */
    int64_t busy;      /* running a job now */
    int64_t warm_vms;  /* VMs in its warm pool */
    int64_t rss_bytes; /* resident memory of the process */
    double jobs_per_s; /* finished per second over the last ~1 s */
    const char *version; /* Aspen version, e.g. "0.1.0"; NULL → "" */
    const aspen_store_engine_slot *slots; /* what the busy workers run; may be NULL */
    size_t n_slots;                       /* at most ASPEN_STORE_ENGINE_SLOTS are kept */
    /* The named queues it serves, comma-separated as `aspen worker --queues` takes them (schema
     * version 18); NULL or "" → every queue. At most ASPEN_STORE_ENGINE_QUEUES_MAX bytes. */
    const char *queues;
} aspen_store_engine_figures;

typedef struct aspen_store_engine_info {
    int64_t id;
    int64_t pid;
    char host[128];
    int64_t started_at_ms, lease_until_ms;
    int64_t running; /* jobs it owns now */
    /* Its last heartbeat (0 = none yet: an engine of an older Aspen, or just registered). */
    int64_t heartbeat_ms;
    int64_t heartbeat_age_ms; /* now_ms - (heartbeat, or started when none) on the store's clock */
    bool stale;               /* heartbeat_age_ms > ASPEN_STORE_HEARTBEAT_STALE_MS */
    int64_t workers, busy, warm_vms, rss_bytes;
    double jobs_per_s;
    char version[32];
    /* The queues it serves, comma-separated; "" → every queue (or an engine of an Aspen before
     * schema version 18, or one without a heartbeat yet: they serve every queue too). */
    char queues[ASPEN_STORE_ENGINE_QUEUES_MAX + 1];
    size_t n_slots;
    aspen_store_engine_slot slots[ASPEN_STORE_ENGINE_SLOTS];
} aspen_store_engine_info;

/* Registers a new engine (ids are never reused) holding a lease until now + lease_ms. */
int aspen_store_engine_register(aspen_store *s, int64_t pid, const char *host, int64_t lease_ms,
                                int64_t now_ms, int64_t *engine_id, aspen_store_error *err);
/* Extends the lease to now + lease_ms. ELEASE if the engine row is gone (another process recovered
 * its jobs after the lease expired): the engine must stop working on the jobs it holds. A renewal
 * after the lease expired succeeds as long as the row is still there: recovery deletes the row in
 * the transaction that takes the jobs, so a surviving row means nothing was taken over and the
 * engine re-takes its own lease with its jobs (one statement, on the database's clock). */
int aspen_store_engine_renew(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                             aspen_store_error *err);
/* Leaves cleanly: releases its running jobs (attempt not counted), gives back its reservations and
 * deletes the engine row. */
int aspen_store_engine_unregister(aspen_store *s, int64_t engine_id, int64_t now_ms,
                                  int64_t *released, aspen_store_error *err);
/* Writes this engine's live figures (about once a second) and extends its lease like renew, in
 * one statement. ELEASE if the engine row is gone (never registered, or its lease expired and it
 * was recovered): nothing is written. */
int aspen_store_engine_heartbeat(aspen_store *s, int64_t engine_id, int64_t lease_ms,
                                 const aspen_store_engine_figures *f, int64_t now_ms,
                                 aspen_store_error *err);
/* Every registered engine, by id, each with its last heartbeat and whether it is stale at now_ms. */
int aspen_store_engines(aspen_store *s, int64_t now_ms, aspen_store_engine_info **out, size_t *n,
                        aspen_store_error *err);
void aspen_store_engines_free(aspen_store_engine_info *engines);

typedef struct aspen_store_recovery {
    int64_t requeued;  /* lost attempts that go again (queued) */
    int64_t failed;    /* lost attempts that were the last ones (failed) */
    int64_t cancelled; /* lost attempts of jobs a user had asked to cancel */
    int64_t engines_removed;
    int64_t unreserved; /* reservations of dead engines given back (never started: not charged) */
} aspen_store_recovery;

/* Finds running jobs whose owner's lease expired before now_ms (or whose owner row is gone),
 * records the lost attempt (outcome "recovered", recovered=1) and puts them back to queued (or
 * failed when out of attempts, or cancelled when a cancel was pending); gives back the
 * reservations of such engines (those jobs never started: nothing charged); then deletes the
 * expired engine rows. Never touches a job whose engine's lease is alive. One transaction. */
int aspen_store_recover(aspen_store *s, int64_t now_ms, aspen_store_recovery *report,
                        aspen_store_error *err);
/* Recovery as a running engine runs it (docs/STORE.md, "An outage every engine shared"): never
 * touches self_engine (its own lease is its renewal's business: an engine that renews after its
 * lease expired keeps its jobs if nobody recovered them), and takes only engines whose lease
 * expired at least min_expired_ms before now (0: as aspen_store_recover). An engine just back from
 * being cut off passes how long it was cut off, so the engines the same outage cut off get one
 * lease period to renew before their jobs are taken; an engine dead before the outage is taken at
 * once. Running jobs whose owner row is gone are recovered as always. */
int aspen_store_recover_others(aspen_store *s, int64_t self_engine, int64_t min_expired_ms,
                               int64_t now_ms, aspen_store_recovery *report,
                               aspen_store_error *err);

/* Running jobs of `engine_id` with cancel_requested set: the engine stops their VMs. */
int aspen_store_cancel_requests(aspen_store *s, int64_t engine_id, int64_t **ids, size_t *n,
                                aspen_store_error *err);

/* ---- operator actions --------------------------------------------------------------------------- */

typedef enum aspen_store_cancel_result {
    ASPEN_STORE_CANCEL_DONE = 0,      /* was queued/scheduled: now cancelled */
    ASPEN_STORE_CANCEL_REQUESTED = 1, /* running: cancel_requested set; its engine stops it */
} aspen_store_cancel_result;

/* Cancel: queued/scheduled → cancelled; running → cancel requested (*result tells which, and the
 * distinction matters: the job is still in flight); final → ESTATE. */
int aspen_store_cancel(aspen_store *s, int64_t id, int64_t now_ms,
                       aspen_store_cancel_result *result, aspen_store_error *err);
/* A new queued job with the same spec and rerun_of = id (any state of the original). It takes
 * the original's max attempts as submitted (not a retry's raise) and its uniqueness rule: when a
 * job of that key is in a state the rule counts (the original itself, say, still queued), nothing
 * is written and *new_id is that job's id, as a duplicate submit answers (aspen_store_rerun_ex
 * says which happened). */
int aspen_store_rerun(aspen_store *s, int64_t id, int64_t now_ms, int64_t *new_id,
                      aspen_store_error *err);
/* Flags of aspen_store_rerun_ex. NO_UNIQUE: the new job has no uniqueness rule and is made
 * whatever holds the key (aspen rerun --no-unique). */
#define ASPEN_STORE_RERUN_NO_UNIQUE 1u
/* aspen_store_rerun that says what it did: out->duplicate (nothing written; out->id, state and
 * created_at_ms are the job holding the key), or the new job (out->id, queued). Checked as a
 * submit is: SQLite under its write lock, PostgreSQL under the key's transaction lock. */
int aspen_store_rerun_ex(aspen_store *s, int64_t id, int64_t now_ms, unsigned flags,
                         aspen_store_submitted *out, aspen_store_error *err);
/* failed → queued, with one more attempt allowed if it was out of them (the max attempts as
 * submitted are kept for a rerun). ESTATE, nothing changed, when another job holds the job's
 * unique key in a state the job's own rule counts (aspen_store_retry_skip_message's wording):
 * the check runs under the same lock as a submit's, so retries and submits of one key from any
 * number of processes leave at most one live holder. */
int aspen_store_retry(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
struct aspen_store_filter; /* defined with the queries below */

/* Bulk actions on everything matching a filter (the filter's limit/offset are ignored).
 * retry_failed (one transaction): every matching failed job → queued. cancel_matching: every
 * matching queued/scheduled job → cancelled, every running one → cancel requested, in
 * transactions of 1,000 jobs in id order up to the newest job when the call began (a job
 * submitted meanwhile is not taken), so a million-job cancel never holds the queue; when a batch
 * fails, the batches before it stay done, *cancelled / *requested say how many, and the message
 * too. */
int aspen_store_retry_failed(aspen_store *s, const struct aspen_store_filter *filter, int64_t now_ms,
                             int64_t *retried, aspen_store_error *err);
/* aspen_store_retry_failed that retries every job it can and lists the ones it left failed
 * because another job holds their unique key (*skipped malloc'd, free(); NULL and 0 when none;
 * both may be NULL). Jobs of one key in the selection: the first (lowest id) is retried, the
 * others are skipped with it as the holder. */
int aspen_store_retry_failed_ex(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t now_ms, int64_t *retried, aspen_store_retry_skip **skipped,
                                size_t *n_skipped, aspen_store_error *err);
int aspen_store_cancel_matching(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t now_ms, int64_t *cancelled, int64_t *requested,
                                aspen_store_error *err);
/* Priorities a job may have (the CLI's --priority takes the same range). */
#define ASPEN_STORE_PRIORITY_MIN (-1000000)
#define ASPEN_STORE_PRIORITY_MAX 1000000
/* Changes the priority of a waiting job (queued, reserved or not, or scheduled): it takes its new
 * place in the claim order at once. ESTATE for a running or finished job, EINVAL out of range. */
int aspen_store_set_priority(aspen_store *s, int64_t id, int priority, aspen_store_error *err);
/* "Run now": a scheduled job (delayed submit, or a retry's backoff) becomes queued with run_at =
 * now, so it is claimed like any due job of its priority. ESTATE for any other state (a queued one
 * is already due). */
int aspen_store_run_now(aspen_store *s, int64_t id, int64_t now_ms, aspen_store_error *err);
/* The longest a snooze puts a job off: a year, as submit's --delay. */
#define ASPEN_STORE_SNOOZE_MAX_MS (365LL * 86400000)
/* "Snooze", run-now's inverse: a waiting job (queued, or scheduled for a --delay or a retry's
 * backoff) becomes scheduled with run_at = max(run_at, now) + delay_ms — put off from when it
 * would run, never earlier (on PostgreSQL the server's now, as every run_at). It counts no attempt and keeps its max attempts, priority, queue and unique key.
 * EINVAL for delay_ms outside 1..ASPEN_STORE_SNOOZE_MAX_MS; ENOTFOUND for an unknown id; ESTATE,
 * saying why, for a running or finished job, for a queued one an engine has reserved (it may
 * already run there: the reservation wins, never both), and for a queued one whose unique rule
 * counts queued but not scheduled jobs (snoozed, it would give its key up). */
int aspen_store_snooze(aspen_store *s, int64_t id, int64_t delay_ms, int64_t now_ms,
                       aspen_store_error *err);
/* Every queued or scheduled job matching filter (NULL: all; limit and offset ignored) snoozed so,
 * in transactions of 1,000 jobs up to the newest job when it began, as cancel_matching (an error
 * says how many went before it). *snoozed: how many; *reserved: matching queued jobs left as they were
 * because an engine was starting them or their unique rule would let the key go (either may be
 * NULL). Running and finished matches are not touched. */
int aspen_store_snooze_matching(aspen_store *s, const struct aspen_store_filter *filter,
                                int64_t delay_ms, int64_t now_ms, int64_t *snoozed,
                                int64_t *reserved, aspen_store_error *err);
/* Deletes a final job with its attempts and logs (ESTATE for queued/scheduled/running jobs). */
int aspen_store_delete(aspen_store *s, int64_t id, aspen_store_error *err);

/* Retention: deletes final jobs (succeeded, failed, cancelled) that finished before
 * finished_before_ms, with their attempts and logs, in one transaction. O(table): maintenance, not
 * the hot path. Binaries stay (other jobs may reference them). */
int aspen_store_purge(aspen_store *s, int64_t finished_before_ms, int64_t *deleted,
                      aspen_store_error *err);

/* ---- retention and bulk deletes (store/retention.c; docs/STORE.md "Retention") ----------------- */

/* How long finished jobs of each final state are kept (index: aspen_store_state; only succeeded,
 * failed and cancelled are used). 0 = kept forever ("off"). Stored in the database's settings
 * (retention.STATE), so every engine and console on it sees the same. */
typedef struct aspen_store_retention {
    int64_t keep_ms[ASPEN_STORE_STATE_COUNT];
    bool is_default[ASPEN_STORE_STATE_COUNT]; /* not set: the default applies */
} aspen_store_retention;

/* River's defaults: succeeded 24 h, cancelled 24 h, failed 7 days (0 for a non-final state). */
int64_t aspen_store_retention_default_ms(aspen_store_state state);
int aspen_store_retention_get(aspen_store *s, aspen_store_retention *out, aspen_store_error *err);
/* keep_ms > 0: keep that long after a job finished; 0: off (keep forever); < 0: the default again.
 * EINVAL for a state that is not final. */
int aspen_store_retention_set(aspen_store *s, aspen_store_state state, int64_t keep_ms,
                              aspen_store_error *err);

/* Most jobs one prune or delete_jobs takes (one transaction each). */
#define ASPEN_STORE_PRUNE_MAX 10000
/* Deletes up to max (capped at ASPEN_STORE_PRUNE_MAX) jobs in `state` (final) that finished before
 * finished_before_ms, oldest first, with everything that belongs to them (attempts, logs, payload,
 * unique key, attempt data), in ONE short transaction; *deleted says how many. Idempotent and safe
 * from several processes at once (PostgreSQL: rows another pruner holds are skipped, not waited
 * for). Reads the jobs_finished index: the cost is the batch, not the table. */
int aspen_store_prune(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                      size_t max, int64_t *deleted, aspen_store_error *err);
/* How many jobs in `state` (final) finished before finished_before_ms: what prunes with that
 * cut-off would delete, all batches together (aspen purge says it before it asks). INT64_MAX (no
 * age) reads the kept per-state counts; otherwise a count of one range of jobs_finished (the
 * index, not the table). A moment's figure: jobs finish and are pruned meanwhile. */
int aspen_store_prune_count(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                            int64_t *count, aspen_store_error *err);
/* What one time-bounded prune did. */
typedef struct aspen_store_prune_result {
    int64_t deleted; /* jobs deleted */
    bool more;       /* it stopped on the bound or took max jobs: more may be waiting; false when
                      * it found fewer than max (none left) */
    int64_t held_us; /* how long the transaction held its locks (SQLite: the write lock, from
                      * BEGIN IMMEDIATE granted to COMMIT done; waiting for it not counted) */
    int64_t log_pages; /* SQLite: the write-ahead log's length in pages after the commit (a long
                        * one means its checkpoints are not catching up); 0 on PostgreSQL */
} aspen_store_prune_result;
/* aspen_store_prune with a time bound, for a pruner that must never stall the queue: on SQLite the
 * batch stops taking jobs once it has held the write lock budget_us microseconds (0: no bound) and
 * commits what it deleted, so a claim waiting for the lock waits about budget_us however slow the
 * disk or cold the cache. On PostgreSQL a batch is one statement that locks only its own rows: the
 * bound is not checked there (the caller keeps the batch short by its size). out may be NULL. */
int aspen_store_prune_timed(aspen_store *s, aspen_store_state state, int64_t finished_before_ms,
                            size_t max, int64_t budget_us, aspen_store_prune_result *out,
                            aspen_store_error *err);
/* A bounded prune on handle s (aspen_store_prune_timed with budget_us > 0) also calls fn(ctx)
 * between jobs, and commits what it has deleted as soon as fn says true: for a caller that runs
 * the prune on the thread that also claims (the engine's store thread), so work that arrives
 * mid-batch waits one job's deletes, not the batch. fn runs on the thread using s; NULL removes it.
 * SQLite only: a PostgreSQL batch is one statement, never cut. */
void aspen_store_prune_yield_set(aspen_store *s, bool (*fn)(void *ctx), void *ctx);
/* Deletes the finished jobs among ids (at most ASPEN_STORE_PRUNE_MAX) with everything that belongs
 * to them, in ONE transaction: all of them or, on an error, none. Ids of queued, scheduled or
 * running jobs, and ids that do not exist, are left alone (not errors); *deleted says how many
 * went. For bulk deletes (aspen delete --filter, the console's marked and filter delete). */
int aspen_store_delete_jobs(aspen_store *s, const int64_t *ids, size_t n, int64_t *deleted,
                            aspen_store_error *err);

int aspen_store_set_paused(aspen_store *s, bool paused, aspen_store_error *err);
int aspen_store_paused(aspen_store *s, bool *paused, aspen_store_error *err);
int aspen_store_setting_set(aspen_store *s, const char *key, const char *value,
                            aspen_store_error *err); /* value NULL deletes */
/* *value is malloc'd (free()), NULL when unset. */
int aspen_store_setting_get(aspen_store *s, const char *key, char **value,
                            aspen_store_error *err);

/* ---- queries ------------------------------------------------------------------------------------ */

#define ASPEN_STORE_FILTER_MAX_FIELDS 4

typedef enum aspen_store_order {
    ASPEN_STORE_ORDER_NEWEST = 0, /* id descending (default) */
    ASPEN_STORE_ORDER_OLDEST = 1, /* id ascending */
    ASPEN_STORE_ORDER_QUEUE = 2,  /* claim order: priority desc, run_at, id */
} aspen_store_order;

/* Sorting a list over every matching job, in the store (docs/STORE.md "Sorting"). Guest,
 * priority, created and duration have an index each (schema version 9): a page is an index range
 * at any size. State, attempts and queue have none (an index on them would cost every job write):
 * a page sorted by them scans the matches. Ties are broken by id in the same direction, so the order is
 * total and a page can start after any job (keyset paging: after_id). */
typedef enum aspen_store_sort {
    ASPEN_STORE_SORT_NONE = 0,  /* by `order` (id, or the claim order) */
    ASPEN_STORE_SORT_ID,
    ASPEN_STORE_SORT_STATE,     /* queued, scheduled, running, succeeded, failed, cancelled */
    ASPEN_STORE_SORT_GUEST,     /* the binary's name, bytewise; jobs without one first */
    ASPEN_STORE_SORT_PRIORITY,
    ASPEN_STORE_SORT_ATTEMPTS,
    ASPEN_STORE_SORT_CREATED,   /* when submitted (ascending: the oldest first) */
    ASPEN_STORE_SORT_DURATION,  /* finished - started; -1 for a job with no finished run yet */
    ASPEN_STORE_SORT_QUEUE,     /* the queue's name, bytewise ("default" among the others) */
    ASPEN_STORE_SORT_COUNT
} aspen_store_sort;

/* "id" "state" "guest" "priority" "attempts" "created" "duration" "queue"; "none"; "?" */
const char *aspen_store_sort_name(aspen_store_sort sort);
/* "COL" or "COL,desc" / "COL,asc" (also "age" for created): 0, or EINVAL naming the columns and
 * a near miss. */
int aspen_store_sort_parse(const char *text, aspen_store_sort *sort, bool *desc,
                           aspen_store_error *err);

typedef struct aspen_store_filter {
    unsigned states;         /* bit (1u << state) per wanted state; 0 = any */
    const char *type;        /* exact, or NULL */
    const char *binary_name; /* exact, or NULL */
    const char *tag;         /* the job's tags contain it, or NULL */
    struct {
        const char *path;  /* a payload field: "user" or "user.name" or "$.user" */
        const char *value; /* compared as text: 5, "5" and true→"1" */
    } fields[ASPEN_STORE_FILTER_MAX_FIELDS];
    size_t n_fields;
    int64_t id; /* one job, or 0 */
    int64_t rerun_of; /* reruns of a job, or 0 */
    const char *queue; /* jobs of one named queue, or NULL */
    int64_t limit;    /* 0 → 100; < 0 → no limit */
    int64_t offset;
    aspen_store_order order;
    /* Whole-store sort (SORT_NONE: by order). With a sort, after_id pages by key: only jobs after
     * that job in the sort order (after_inclusive: from it on), its key read from the store
     * (ENOTFOUND if it is gone); offset then counts from there. */
    aspen_store_sort sort;
    bool sort_desc;
    int64_t after_id;
    bool after_inclusive;
} aspen_store_filter;

/* "Did you mean": the nearest of names (NULL entries skipped) to the len bytes of word — within 2
 * edits, 1 for words of 3 bytes or less, case-insensitive, a swap of neighbours one edit, a prefix
 * of 3 or more bytes of a longer name one edit, and so a whole '-'-separated part of one (3 bytes
 * or more, leading dashes aside: --attempts for --max-attempts) — or NULL. The filter parser, the CLI's commands
 * and options and the console's :commands all use it, so they suggest alike. */
const char *aspen_store_nearest(const char *word, size_t len, const char *const *names, size_t n);

/* Parses the one filter language of the CLI and the console: terms separated by white space
 *   state:failed,running  type:vm_execute  guest:echo-worker (= binary:)  tag:urgent  id:42
 *   rerun-of:7  payload.user:alice  payload.user.name:"Alice B"  order:newest|oldest|queue
 * and bare words: a state (failed), a job id (42 or #42), else a guest name ("a name" quoted is
 * always a guest name). A quoted value may hold \" and \\. Repeating a term is harmless; two
 * different values of a one-valued key (guest, type, tag, id, rerun-of) are an error.
 * Strings in *out point into buf (copied there). A bad term → EINVAL with a message naming it and
 * the valid keys, with "did you mean" for a near-miss key or state. */
int aspen_store_filter_parse(const char *text, aspen_store_filter *out, char *buf, size_t bufsize,
                             aspen_store_error *err);

int aspen_store_get(aspen_store *s, int64_t id, aspen_store_job *out, aspen_store_error *err);
int aspen_store_list(aspen_store *s, const aspen_store_filter *filter, aspen_store_job **jobs,
                     size_t *n, aspen_store_error *err);
int aspen_store_count(aspen_store *s, const aspen_store_filter *filter, int64_t *count,
                      aspen_store_error *err); /* limit/offset ignored */
/* Counts per state, indexed by aspen_store_state. */
int aspen_store_counts(aspen_store *s, int64_t counts[ASPEN_STORE_STATE_COUNT],
                       aspen_store_error *err);
/* Age of the oldest job waiting while due (queued, or scheduled with run_at <= now): now − its
 * run_at, in ms; 0 when nothing waits. */
int aspen_store_oldest_waiting(aspen_store *s, int64_t now_ms, int64_t *age_ms,
                               aspen_store_error *err);

typedef struct aspen_store_attempt {
    int64_t job_id;
    int number;
    int64_t engine_id;
    int64_t started_at_ms, finished_at_ms;
    int64_t wall_us;
    uint64_t exits, host_calls, pages_dirtied, bytes_in, bytes_out;
    char outcome[16]; /* succeeded, failed, timeout, cancelled, recovered */
    char *error;
    bool recovered;
} aspen_store_attempt;

int aspen_store_attempts(aspen_store *s, int64_t job_id, aspen_store_attempt **out, size_t *n,
                         aspen_store_error *err);
void aspen_store_attempts_free(aspen_store_attempt *a, size_t n);

/* ---- what an attempt keeps beside its row (schema version 6) ------------------------------------ */

/* A finished attempt may keep blobs in their own table (attempt_data), so attempt rows stay
 * narrow: the ELF core of a failed attempt (`aspen core`) and the replay record of what its host
 * calls returned (`aspen replay`). They go with their job (delete, purge, retention). */
typedef enum aspen_store_data_kind {
    ASPEN_STORE_DATA_CORE = 1,   /* an ELF core file (vm/core.c) */
    ASPEN_STORE_DATA_REPLAY = 2, /* a replay record (engine/replay.c) */
} aspen_store_data_kind;
#define ASPEN_STORE_MAX_ATTEMPT_DATA (64u << 20) /* bytes of one blob; more is ETOOBIG */

typedef struct aspen_store_attempt_data {
    int64_t job_id;
    int attempt; /* >= 1 */
    aspen_store_data_kind kind;
    const void *bytes;
    size_t size; /* 1 .. ASPEN_STORE_MAX_ATTEMPT_DATA */
} aspen_store_attempt_data;

/* Writes n blobs in one transaction (a blob already kept for the same job, attempt and kind is
 * replaced). ENOTFOUND when a job does not exist (nothing written). */
int aspen_store_put_attempt_data(aspen_store *s, const aspen_store_attempt_data *items, size_t n,
                                 aspen_store_error *err);
/* One blob (malloc'd, free()). ENOTFOUND, saying which attempts of the job keep one, when there
 * is none. */
int aspen_store_get_attempt_data(aspen_store *s, int64_t job_id, int attempt,
                                 aspen_store_data_kind kind, void **bytes, size_t *size,
                                 aspen_store_error *err);
/* Which blobs a job keeps (bytes NULL in the list; free() it), by attempt then kind. */
int aspen_store_list_attempt_data(aspen_store *s, int64_t job_id, aspen_store_attempt_data **out,
                                  size_t *n, aspen_store_error *err);
const char *aspen_store_data_kind_name(aspen_store_data_kind kind); /* "core", "replay" */

typedef struct aspen_store_log {
    int64_t seq; /* 1, 2, ... per job */
    int attempt;  /* 0 for the truncation marker */
    int64_t time_ms;
    char *line;
    bool marker; /* the truncation marker line */
} aspen_store_log;

/* Log lines of a job with seq > after_seq, oldest first, at most `limit` (0 → all). For
 * `aspen logs --follow`: remember the last seq and ask again when the data version changes. */
int aspen_store_logs(aspen_store *s, int64_t job_id, int64_t after_seq, size_t limit,
                     aspen_store_log **out, size_t *n, aspen_store_error *err);
void aspen_store_logs_free(aspen_store_log *l, size_t n);

/* The log feed (schema version 12): every job's new log lines, from every engine on the database,
 * in the order their transactions committed — what the console's Logs pane and
 * `aspen logs --follow` without a job tail. A cursor is opaque: start from
 * ASPEN_STORE_LOG_CURSOR_END (or a zeroed cursor for everything still kept) and pass back the one
 * each read leaves. On SQLite the order is a per-statement number (writes are serialised by the
 * file's lock); on PostgreSQL the writing transaction's id, and a line shows only once every
 * transaction that started before it has ended, so a slow writer's lines are never skipped. */
typedef struct aspen_store_log_cursor {
    int64_t tx, job, seq;
} aspen_store_log_cursor;
#define ASPEN_STORE_LOG_CURSOR_END ((aspen_store_log_cursor){.tx = -1})

typedef struct aspen_store_feed_line {
    int64_t job_id, seq;
    int attempt;       /* 0 for the truncation marker */
    int64_t time_ms;
    int64_t engine_id; /* the engine that ran the attempt; 0 when no longer known */
    char host[64];     /* that engine's host name and pid, "" / 0 when its row is gone */
    int64_t pid;
    char *line;
    bool marker;
} aspen_store_feed_line;

/* At most `limit` (0 → 500) lines after *cursor, oldest first; *cursor moves past them. A cursor
 * of ASPEN_STORE_LOG_CURSOR_END becomes the current end and no lines are returned. Read-only
 * handles may call it. */
int aspen_store_log_feed(aspen_store *s, aspen_store_log_cursor *cursor, size_t limit,
                         aspen_store_feed_line **out, size_t *n, aspen_store_error *err);
void aspen_store_log_feed_free(aspen_store_feed_line *l, size_t n);

/* Copies the write-ahead log into the database and truncates it to nothing (SQLite's TRUNCATE
 * checkpoint). After a disk-full error this gives back the room the log took (it grows to about
 * 4 MB between automatic checkpoints), so that writing can resume once a little space is free.
 * A reader still using the log leaves it partly copied: not an error. */
int aspen_store_checkpoint(aspen_store *s, aspen_store_error *err);

/* PRAGMA data_version: changes when ANOTHER connection commits to the database (not this handle's
 * own writes). Poll it (e.g. every 250 ms) to notice other processes' changes cheaply. */
int aspen_store_data_version(aspen_store *s, uint64_t *version, aspen_store_error *err);

/* ---- metrics history: per-minute rollups (schema version 11; store/metrics.c) --------------------
 * Every engine sums what it finished into one row per (minute, engine, job type, guest) and
 * writes it with aspen_store_metrics_write about every few seconds (absolute values: the row is
 * replaced, so a retried write is harmless). Run time and queue wait are kept as mergeable
 * histograms: log-scale buckets, 8 per power of two, so rows of many engines and minutes add up
 * bucket by bucket and p50/p95/p99 are read off the merged counts. A percentile is the middle of
 * the bucket holding the nearest-rank sample: exact below 8 µs, otherwise within 1/16 (6.25%) of
 * the true sample, whatever was merged (docs/STORE.md, "Metrics history"). */

#define ASPEN_STORE_HIST_SUB 8          /* buckets per power of two */
#define ASPEN_STORE_HIST_BUCKETS 304 /* values 0 .. 2^40 - 1 (µs: 12.7 days); larger count as that */
#define ASPEN_STORE_HIST_MAX ((UINT64_C(1) << 40) - 1)

typedef struct aspen_store_hist {
    uint64_t n;   /* samples */
    uint64_t max; /* the largest sample (a percentile never exceeds it) */
    uint64_t counts[ASPEN_STORE_HIST_BUCKETS];
} aspen_store_hist;

/* The bucket of a value and the values a bucket holds: [lower, lower + width). */
size_t aspen_store_hist_bucket(uint64_t value);
uint64_t aspen_store_hist_lower(size_t bucket);
uint64_t aspen_store_hist_width(size_t bucket);
void aspen_store_hist_add(aspen_store_hist *h, uint64_t value); /* values over _MAX count as _MAX */
void aspen_store_hist_merge(aspen_store_hist *into, const aspen_store_hist *from); /* saturating */
/* The p-th percentile (0 < p <= 100; nearest rank) as the middle of its bucket, never above max;
 * 0 when the histogram is empty. */
uint64_t aspen_store_hist_percentile(const aspen_store_hist *h, double p);

/* One rollup: a row as written (minutes = 1), or several merged (aspen_store_metrics). */
typedef struct aspen_store_rollup {
    int64_t minute;  /* unix minute (ms / 60000) of the engine host's clock when the attempt ended */
    int64_t minutes; /* how many minutes it covers */
    int64_t engine_id; /* the engine that wrote it; 0 when several are merged */
    char type[64];   /* job type; "" when types are merged */
    char guest[128]; /* guest (binary name, "" for in-process types); control and non-ASCII bytes
                        are kept as '?' */
    uint64_t finished;  /* attempts that ended (every outcome) */
    uint64_t succeeded, failed, timeouts, cancelled; /* by outcome (failed: failure or timeout) */
    uint64_t retried;   /* of those, how many went back to the queue */
    uint64_t exits, host_calls; /* VM exits and host calls, summed */
    uint64_t run_us_sum, wait_us_sum;
    aspen_store_hist run_us;  /* run time (the attempt's wall time), µs */
    aspen_store_hist wait_us; /* queue wait (start - when the job was due), µs, ms resolution */
} aspen_store_rollup;

/* Adds one rollup into another (counters and histograms; saturating). */
void aspen_store_rollup_merge(aspen_store_rollup *into, const aspen_store_rollup *from);

/* Writes rows (engine_id, minute, type and guest set) in one transaction, each replacing the row
 * of its key. */
int aspen_store_metrics_write(aspen_store *s, const aspen_store_rollup *rows, size_t n,
                              aspen_store_error *err);

typedef struct aspen_store_metrics_query {
    int64_t from_minute, to_minute; /* inclusive */
    int64_t step_minutes;           /* minutes per point; 0 → 1 */
    const char *guest;              /* only this guest (as stored), or NULL */
    const char *type;               /* only this type, or NULL */
    bool by_guest; /* a point per step and (type, guest) that has data, instead of one point per
                      step with everything merged (every step, empty ones included) */
} aspen_store_metrics_query;

/* At most this many points in one answer (ask for a larger step). */
#define ASPEN_STORE_METRICS_MAX_POINTS 10000

/* Rollups of every engine merged per step (and per type and guest when by_guest), oldest first:
 * *out (free()) holds *n points. EINVAL for an empty range or too many points. */
int aspen_store_metrics(aspen_store *s, const aspen_store_metrics_query *q,
                        aspen_store_rollup **out, size_t *n, aspen_store_error *err);

/* Deletes at most max_rows rollups of minutes before before_minute (small batches: the engine
 * prunes a little at a time). *deleted (may be NULL) says how many went. */
int aspen_store_metrics_prune(aspen_store *s, int64_t before_minute, size_t max_rows,
                              int64_t *deleted, aspen_store_error *err);

/* How long rollups are kept: the setting "metrics.retention" (a duration: 90m, 72h, 7d), default
 * ASPEN_STORE_METRICS_RETENTION_MIN minutes (7 days: the console's longest chart window, 7d, is
 * whole by default); set refuses anything outside 1 hour .. 366 days. */
#define ASPEN_STORE_METRICS_RETENTION_MIN (7 * 24 * 60)
int aspen_store_metrics_retention(aspen_store *s, int64_t *minutes, aspen_store_error *err);
int aspen_store_metrics_set_retention(aspen_store *s, const char *duration,
                                      aspen_store_error *err);

/* ---- waiting for new work ---------------------------------------------------------------------- */

/* An idle engine can wait for new work instead of polling, on a backend that announces it
 * (PostgreSQL: every write that makes a job claimable — submit, retry, rerun, a job given back
 * or recovered — sends NOTIFY aspen_jobs when it commits). The first call subscribes the handle
 * and *fd is a descriptor to poll() for reading: it becomes readable when an announcement may
 * have arrived (then call aspen_store_notified). *fd is -1 when the backend has none (SQLite: poll
 * aspen_store_data_version, which is cheap there). The descriptor may change after the handle
 * reconnects: ask again before each poll, never close it. Give waiting its own handle (the
 * descriptor is the handle's connection, used by one thread at a time like the rest of it). */
int aspen_store_wait_fd(aspen_store *s, int *fd, aspen_store_error *err);
/* Consumes what arrived, never blocking: *woken is true when new work was announced since the
 * last call, or when the subscription had to be renewed after a lost connection (something may
 * have been missed). False, and 0 returned, on a backend without announcements. */
int aspen_store_notified(aspen_store *s, bool *woken, aspen_store_error *err);
/* Both in one: waits up to timeout_ms (< 0: no limit) for an announcement. Returns at once with
 * *woken false on a backend without announcements (the caller polls instead). */
int aspen_store_wait_work(aspen_store *s, int timeout_ms, bool *woken, aspen_store_error *err);

/* The same for new log lines (the log feed's followers: the console's Logs pane, aspen logs
 * --follow): on PostgreSQL every transaction that writes lines sends NOTIFY aspen_logs when it
 * commits (one per group commit, not one per line), and a follower polls this descriptor instead
 * of waiting for its next read of the feed. *fd is -1 on SQLite (read the feed on a timer; it is
 * an index seek). Its own handle, as for aspen_store_wait_fd: a handle listens on one of the two,
 * since each _notified call consumes every announcement that arrived. */
int aspen_store_log_wait_fd(aspen_store *s, int *fd, aspen_store_error *err);
int aspen_store_log_notified(aspen_store *s, bool *woken, aspen_store_error *err);

/* ---- named queues (store/queues.c; docs/QUEUES.md) ----------------------------------------------- */

/* Every job is in a named queue, "default" unless submitted to another. A queue exists once a job
 * is submitted to it or it is declared with settings (aspen_store_queue_set). Its settings hold
 * across every engine and host on the database, enforced inside the claim transaction:
 * - a concurrency limit: at most `limit` of its jobs running or reserved at once;
 * - pause: none of its jobs is claimed (the global pause, aspen_store_set_paused, stays);
 * - a rate limit: at most rate_n of its jobs started in any window of rate_period_ms (a job holds
 *   its share from its reservation until rate_period_ms after its start).
 * A claim on a database where no queue has settings, by a handle that serves every queue, takes
 * the same path as before queues existed. */
#define ASPEN_STORE_QUEUE_DEFAULT "default"
#define ASPEN_STORE_QUEUE_NAME_MAX 64

/* 0 when name is a valid queue name (1 to 64 letters, digits, '_', '-', '.', starting with a
 * letter or digit); EINVAL saying so otherwise. */
int aspen_store_queue_name_check(const char *name, aspen_store_error *err);
/* Parses a rate "N/PERIOD": N a positive integer, PERIOD a unit alone (ms, s, m, min, h, d, w:
 * one of it) or a duration of aspen_store_duration_parse with its unit (10s, 500ms, 1h30m, 2d),
 * more than 0 and at most 7 days: "100/s", "5/10s", "50/1h30m". EINVAL naming what is wrong. */
int aspen_store_rate_parse(const char *text, int64_t *n, int64_t *period_ms, aspen_store_error *err);
/* Writes a rate back as text ("100/s", "5/10s", "3/250ms", "50/90m", "1000/d") into buf. */
void aspen_store_rate_format(int64_t n, int64_t period_ms, char *buf, size_t size);

enum {
    ASPEN_STORE_QUEUE_SET_LIMIT = 1, /* set (limit > 0) or remove (limit 0) the concurrency limit */
    ASPEN_STORE_QUEUE_SET_RATE = 2,  /* set (rate_n > 0) or remove (rate_n 0) the rate limit */
};
/* Declares a queue (created if new) and changes the settings named in `what`. EINVAL for a bad
 * name, a negative limit, or a rate whose count or period is not positive. */
int aspen_store_queue_set(aspen_store *s, const char *name, unsigned what, int64_t limit,
                          int64_t rate_n, int64_t rate_period_ms, int64_t now_ms,
                          aspen_store_error *err);
/* Pauses or resumes one queue (ENOTFOUND, with a "did you mean", for a queue that does not exist). */
int aspen_store_queue_pause(aspen_store *s, const char *name, bool paused, int64_t now_ms,
                            aspen_store_error *err);

typedef struct aspen_store_queue_info {
    char name[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    int64_t limit;                  /* concurrency limit, 0 = none */
    int64_t rate_n, rate_period_ms; /* rate limit, 0 = none */
    bool paused;
    int64_t queued, scheduled, running, reserved; /* its jobs now (reserved: queued and claimed) */
    int64_t oldest_waiting_ms; /* age of its oldest due job, 0 when none */
    /* Its jobs finished in the last 60 s, counted among the newest 100,000 jobs of the database;
     * throughput_capped when that many were looked at and more may have finished. */
    int64_t finished_last_min;
    bool throughput_capped;
} aspen_store_queue_info;

/* Every queue ("default" first, then by name) with its settings and figures at now_ms. */
int aspen_store_queues(aspen_store *s, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
                       aspen_store_error *err);
void aspen_store_queues_free(aspen_store_queue_info *q);
/* 0 when the queue exists (declared, or holding jobs); ENOTFOUND "no queue named x (did you mean
 * y?)" otherwise. For commands that name an existing queue. */
int aspen_store_queue_exists(aspen_store *s, const char *name, aspen_store_error *err);

/* What keeps a queue from being removed (aspen_store_queue_remove): the jobs it still holds, which
 * would be stranded without it, and the schedules (aspen cron) whose jobs go to it, whose next run
 * would make it again. */
typedef struct aspen_store_queue_held {
    int64_t queued, scheduled, running;
    int64_t schedules; /* paused ones too: resumed, they would run into it */
} aspen_store_queue_held;
/* Removes a queue: its settings row (limit, rate, pause) and its rate shares, in one transaction.
 * Refused, nothing changed: EINVAL for "default" (it always exists) or a bad name; ENOTFOUND (with
 * a "did you mean") for a queue that does not exist; ESTATE while it holds queued, scheduled or
 * running jobs, or while a schedule's jobs go to it (*held, may be NULL, says how many; the
 * message too, naming the schedules and what to do with them). Its finished jobs stay, still
 * named by it (queue:NAME finds them); a later submit, retry or rerun into it makes it again,
 * without settings. On PostgreSQL the check and the delete hold the queues table against writers
 * (submits into named queues wait that moment), so a job submitted meanwhile is counted or comes
 * after and makes the queue again: none is left in a queue that does not exist. */
int aspen_store_queue_remove(aspen_store *s, const char *name, aspen_store_queue_held *held,
                             aspen_store_error *err);

/* After this handle's last claim: *held when a queue's limit or rate bounded it (a claimer should
 * claim again once its own jobs finish: that frees slots without another connection's commit),
 * and *retry_in_ms > 0 when a rate limit held jobs back: about when a share comes free. */
void aspen_store_claim_held(const aspen_store *s, bool *held, int64_t *retry_in_ms);

/* Which queues this handle's claims serve (an engine's `--queues a,b`): n = 0 serves every queue
 * (the default). Names are checked and copied. */
int aspen_store_serve_queues(aspen_store *s, const char *const *names, size_t n,
                             aspen_store_error *err);

/* ---- SHA-256 ------------------------------------------------------------------------------------ */

typedef struct aspen_store_sha256_ctx {
    uint32_t h[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used;
} aspen_store_sha256_ctx;

void aspen_store_sha256_init(aspen_store_sha256_ctx *c);
void aspen_store_sha256_update(aspen_store_sha256_ctx *c, const void *data, size_t size);
void aspen_store_sha256_final(aspen_store_sha256_ctx *c, uint8_t digest[32]);
void aspen_store_sha256_hex(const void *data, size_t size, char hex[65]);

#ifdef __cplusplus
}
#endif

/* Periodic jobs: time zones, cron expressions, schedules and the scheduler lease. */
#include "aspen_store_schedule.h"
#endif
