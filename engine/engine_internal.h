/* engine/engine_internal.h — what the engine's source files share and nobody else sees: the engine
 * struct, the in-flight job and completion records, the worker, the warm VM pool and the build cache.
 *
 * Threads (see engine.c): one dispatcher (lease, recovery, cancel polling), N workers (run jobs),
 * one store thread (reservations, start marks and group commits). Each thread that touches SQLite has its own store handle;
 * API calls from outside share `api_store` under `api_mu`.
 */
#ifndef ASPEN_ENGINE_INTERNAL_H
#define ASPEN_ENGINE_INTERNAL_H

#include "aspen_engine.h"
#include "aspen_vm.h"

#include <pthread.h>
#include <stdatomic.h>

#define ENG_MAX_HANDLERS 32

/* Why a worker's cancel flag was raised. */
enum { CANCEL_NONE = 0, CANCEL_USER = 1, CANCEL_SHUTDOWN = 2, CANCEL_LEASE = 3 };

/* A reserved job waiting for (or held by) a worker. row is as the worker will run it: state
 * running, attempts = the number of the attempt it becomes when started. */
struct eng_job {
    aspen_store_job row;
    int64_t engine_id;   /* the engine id that reserved it (changes after a lost lease) */
    int64_t queued_mono; /* when it entered the ready queue: prefetch is time-bounded */
    atomic_int cancel;   /* CANCEL_* seen while it waited in the queue */
};

/* A worker began a reserved job: the store thread marks it running (attempt charged) in its next
 * group commit, or together with the job's completion if that is already there. */
struct eng_start {
    int64_t job_id, engine_id, started_ms;
};

struct eng_log {
    int64_t time_ms;
    char *line;
    size_t bytes; /* what the line costs in memory (strlen + 1) */
};

/* A finished attempt on its way to the committer (or a job to hand back, release = true). */
struct eng_done {
    struct eng_done *next;
    int64_t job_id, engine_id;
    int attempt;
    bool release; /* shutdown: give the job back without counting the attempt */
    aspen_store_outcome outcome;
    int64_t retry_at_ms;
    aspen_store_attempt_stats stats;
    uint8_t *output;
    size_t output_len;
    char *error;
    /* The job's log lines not yet handed to the store thread: at most ENG_LOG_BUF_LINES lines and
     * about ENG_LOG_BUF_BYTES bytes (worker.c). Lines handed over live leave this buffer. */
    struct eng_log *logs;
    size_t n_logs, cap_logs;
    size_t n_flushed; /* always 0: lines sent live are moved out of logs[], not kept */
    size_t log_bytes; /* bytes of the lines in logs[] */
    int64_t log_room;    /* lines the store will still keep for this job (its cap, marker slot
                            included); past it lines are counted, not kept */
    int64_t log_dropped; /* lines counted but not kept, not yet reported to the store */
    /* What the attempt keeps beside its row (engine/replay.c), written after its commit: the ELF
     * core of a failed attempt, the replay record. malloc'd, or NULL. */
    uint8_t *core;
    size_t core_len;
    uint8_t *replay;
    size_t replay_len;
    size_t held;              /* bytes counted in *held_in while it waits for its commit */
    atomic_size_t *held_in;   /* the engine's d_bytes once handed over, else NULL */
    char type[32];
    char guest[64];  /* the job's binary name ("" for in-process types), for metrics.c */
    int64_t wait_ms; /* queue wait: when its worker began it - when it was due */
};

/* Finished attempts waiting for their group commit hold their results (up to 16 MiB each) and
 * log lines: a worker whose completion would take them past this waits for a commit first, so a
 * stream of big results slows down to what SQLite writes instead of piling up in memory. */
#define ENG_DONE_MAX_BYTES (64u << 20)
/* A group held open past commit_interval_ms (eng_group_close_ms) closes once its completions hold
 * this much: holding is for many small jobs, whose group's fixed cost matters; big results gain
 * nothing from it and would only sit in memory longer (test_engine_bounds' 15 MB results). */
#define ENG_HOLD_MAX_BYTES (4u << 20)

/* Bounds of one job's log buffer in a worker (lines waiting for the store thread), and of the
 * lines one worker may have queued to the store thread at once. A job printing faster than the
 * store writes is slowed down (its worker waits), never buffered without bound. */
#define ENG_LOG_BUF_LINES 512
#define ENG_LOG_BUF_BYTES (1u << 20)
#define ENG_LOG_LIVE_BYTES (2u << 20)

/* A log line of a job still running, on its way to the store ahead of the job's completion, so
 * `aspen logs --follow` in another process sees a long job's lines as they are printed. */
struct eng_live {
    struct eng_live *next;
    int64_t job_id;
    int attempt;
    int64_t time_ms;
    char *line;      /* NULL: only a count of dropped lines */
    int64_t dropped; /* lines of this job counted but not kept (aspen_store_log_line.dropped) */
    int worker;      /* whose live_bytes this line counts in */
    size_t bytes;
};

struct vm_slot {
    struct vm_slot *prev, *next; /* the pool's list of all VMs */
    aspen_vm *vm;
    aspen_vm_image *img;
    char sha[65];
    size_t mem;
    char *args; /* a Linux program's arguments, JSON array text (worker.c): part of the key */
    uint64_t last_used;
    bool in_use;
};

struct vm_image_entry {
    char sha[65];
    aspen_vm_image *img;
};

struct vm_pool {
    pthread_mutex_t mu;
    struct vm_slot *head; /* all VMs */
    size_t total_bytes, budget, n_vms;
    uint64_t tick;
    atomic_ulong hits, misses, evictions;
    struct vm_image_entry *images;
    size_t n_images, cap_images;
};

struct aspen_engine_ctx {
    aspen_engine *eng;
    struct eng_worker *w;
    const aspen_store_job *job;
    struct eng_done *done;
    int64_t deadline_mono_ms;
    bool permanent;
    bool timed_out; /* the VM's deadline fired */
    bool output_refused; /* set_output got more than ASPEN_ENGINE_MAX_OUTPUT: the attempt fails */
};

struct eng_worker {
    aspen_engine *eng;
    int index;
    pthread_t th;
    bool started;
    aspen_store *store; /* opened on first need (binary fetch) */
    pthread_mutex_t mu; /* guards cur_job_id, cur_vm and st against cancel/snapshot */
    int64_t cur_job_id;
    aspen_vm *cur_vm;
    struct eng_done *cur_done; /* the running job's results so far (its logs), under mu */
    int64_t cur_started_mono;
    int cancel; /* CANCEL_*; read by the VM through run_opts.cancel */
    aspen_engine_worker_status st;
    struct vm_slot *sticky; /* the warm VM this worker holds between jobs */
    struct aspen_vm_tape *tape; /* records each VM job's host calls (replay.c); made on first need */
    int64_t stats_ms;       /* when the VM's memory figures were last read */
    uint64_t rng;
    size_t live_bytes;          /* bytes of this worker's lines queued to the store thread (mu) */
    pthread_cond_t live_cond;   /* signalled when the store thread wrote some of them (mu) */
};

struct eng_handler {
    char type[32];
    aspen_engine_handler_fn fn;
    void *user;
};

struct eng_sub {
    int id;
    unsigned mask;
    aspen_engine_event_fn fn;
    void *user;
};

struct aspen_engine {
    aspen_engine_config cfg;
    /* cfg.queues points here: the queues this engine serves, copied at open (--queues). */
    char serve_names[16][65];
    const char *serve_ptrs[16];
    char db_path[4096];
    char guest_dir[4096];
    char build_script[4096];
    char cache_dir[4096];
    char cmd_args[4 * 4096 + 16]; /* cfg.cmd_args points here (copied at open; "" for none) */

    pthread_mutex_t api_mu;
    aspen_store *api_store;

    struct eng_handler handlers[ENG_MAX_HANDLERS];
    size_t n_handlers;

    /* subscribers */
    pthread_rwlock_t sub_lock;
    struct eng_sub *subs;
    size_t n_subs;
    int next_sub_id;
    atomic_uint sub_mask;

    /* lifecycle */
    bool started, stopped;
    atomic_int stopping;      /* no more claims */
    /* Set by aspen_engine_stop_request and aspen_engine_stop: every store handle of this engine
     * is opened with it as aspen_store_options.give_up (store_opts), so that with the database
     * away a stopping engine's store calls fail after one reconnect attempt instead of each
     * retrying for 5 s (the stop's dozen calls in a row took 20-25 s). */
    atomic_int store_give_up;
    aspen_store_options store_opts; /* {.give_up = &store_give_up}: for every handle but api's */
    atomic_llong engine_id;
    pthread_t dispatcher_th, committer_th;
    bool dispatcher_started, committer_started;
    aspen_store *disp_store, *commit_store;
    /* The claims' handle: commit_store on SQLite (one writer thread there), a connection of its
     * own on PostgreSQL, used by the claimer thread (engine.c, claimer_main) so that a claim's
     * round trips run while a group commit waits for its statements and its fsync. */
    aspen_store *claim_store;
    pthread_t claimer_th;
    bool claimer_on;          /* set before the service threads start, read-only after */
    bool claimer_started;
    pthread_mutex_t c_mu;     /* the claimer sleeps on c_cond between claims */
    pthread_cond_t c_cond;
    atomic_int c_kick;        /* a claim is wanted now (low queue, local submit, a group done) */
    atomic_int c_freed;       /* a group commit finished jobs: a limited queue may have room */
    _Atomic double c_busy_ms; /* the store thread's recent group time, for the prefetch */
    /* the retention pruner (retention.c) */
    aspen_store *prune_store;
    pthread_t prune_th;
    bool prune_started;
    int prune_pipe[2];
    pthread_mutex_t prune_mu; /* guards prune_stats */
    aspen_engine_retention_stats prune_stats;
    size_t prune_batch;       /* the next batch's size (pruner thread only; retention.c) */
    /* SQLite: the pruner's batch waiting for the store thread to run it on commit_store
     * (eng_store_prune), under d_mu; the store thread signals prune_done when it ran one. */
    struct eng_prune_req *prune_req;
    pthread_cond_t prune_done;
    /* the waiter for announced new work (listen.c; PostgreSQL only) */
    aspen_store *listen_store;
    pthread_t listen_th;
    bool listen_started;
    int listen_pipe[2];
    atomic_ullong c_notify_wakes;
    struct eng_scheduler *sched; /* schedule.c: periodic jobs' scheduler thread */

    /* ready queue: claimed jobs waiting for a worker */
    pthread_mutex_t q_mu;
    pthread_cond_t q_nonempty;
    atomic_int need_claim; /* the queue ran low: the store thread should claim now */
    atomic_int claiming;   /* the store thread is inside a claim */

    /* the dispatcher (housekeeping) sleeps here */
    pthread_mutex_t h_mu;
    pthread_cond_t h_cond;
    struct eng_job **q;
    size_t q_cap, q_head, q_len;
    /* Read without q_mu by the store thread, to hold a group open while the engine is saturated
     * (eng_group_close_ms): q_len's last value, and how often a worker found the queue empty or
     * left it so. */
    atomic_size_t q_ready;
    atomic_ullong q_dry;
    bool q_closed; /* workers exit once the queue is empty */
    atomic_int running_jobs; /* jobs inside workers now */
    atomic_int wake_dispatcher; /* a local submit or cancel happened */

    /* completions */
    pthread_mutex_t d_mu;
    pthread_cond_t d_cond, d_flushed;
    struct eng_done *d_head, **d_tail;
    size_t d_len;
    bool d_stop;
    uint64_t d_enqueued, d_committed; /* for wait_idle: all handed over were committed */
    struct eng_start *starts; /* started jobs not yet marked running in the store, under d_mu */
    size_t n_starts, cap_starts;

    /* A permanent store error (schema missing, read-only, corrupt, newer): the engine stops
     * claiming and committing; wait_idle returns it. fatal_msg is written before fatal is set. */
    atomic_int fatal, fatal_taken;
    char fatal_msg[1024];
    atomic_int store_failing; /* group commits fail for now (disk full, busy): claims wait */
    /* The database server cannot be reached (aspen_store_error.disconnected): set by the first
     * service or API call that finds it so, with the time and the failed tries since; cleared by
     * the first call that succeeds after. eng_outage/eng_outage_over say each once. */
    atomic_int outage, outage_tries;
    _Atomic int64_t outage_since_ms;
    /* Monotonic ms at which the last lease renewal that succeeded was sent (dispatcher's
     * heartbeat, or the store thread's own renewal before a commit after a gap): the lease held
     * at least until this + lease_ms. A commit after a longer gap renews first, so an engine back
     * from an outage re-takes its own lease (if nobody recovered it) instead of having its
     * finished jobs refused (docs/STORE.md, "An outage every engine shared"). */
    _Atomic int64_t lease_renewed_mono;
    atomic_size_t d_bytes; /* what the completions handed over and not yet freed hold */

    /* live log lines of long-running jobs, written by the store thread before completions */
    pthread_mutex_t live_mu;
    struct eng_live *live_head, **live_tail;
    int live_fails;           /* live writes failed in a row (disk full, busy): kept, retried */
    int64_t live_failing_ms;  /* when they started failing, and when that was last said */
    int64_t live_told_ms;

    struct eng_worker *workers;
    int n_workers;

    struct vm_pool pool;
    aspen_vm_host *host;

    /* build cache */
    pthread_mutex_t build_mu;
    atomic_ulong builds, build_hits;

    /* counters */
    atomic_ulong c_claimed, c_started, c_finished, c_succeeded, c_failed, c_retried, c_cancelled, c_timeouts,
        c_commits, c_commits_held;
    struct eng_metrics *metrics; /* metrics.c: the store thread's per-minute rollups */
    _Atomic double jobs_per_s; /* written by the dispatcher, read by snapshots */
    uint64_t last_finished_sample;
    int64_t last_sample_ms;
};

/* engine.c */
void eng_emit(aspen_engine *eng, const aspen_engine_event *ev);
static inline bool eng_wants(aspen_engine *eng, unsigned type)
{
    return (atomic_load_explicit(&eng->sub_mask, memory_order_relaxed) & type) != 0;
}
int64_t eng_mono_ms(void);
int eng_store_err(aspen_engine_error *err, const aspen_store_error *se, const char *what);
/* A store call failed with se->disconnected: the first of an outage says "reconnecting to DB
 * (attempt N, next in Xs)" once (next_ms: when this caller tries again; what: what it was doing,
 * or NULL when se->msg says it); later ones only count.
 * Returns true when se was a disconnection (then the caller says nothing of its own). */
bool eng_outage(aspen_engine *eng, const char *what, const aspen_store_error *se, int64_t next_ms);
/* A store call succeeded: ends an outage, saying once that the database is back. */
void eng_outage_over(aspen_engine *eng);
int eng_err(aspen_engine_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void eng_done_free(struct eng_done *d);
/* Called by a worker as it begins a job taken from the ready queue (before its handler runs). */
void eng_job_started(aspen_engine *eng, struct eng_job *j, int64_t started_ms);
/* How much higher than the process the store thread runs (nice, when allowed: engine.c). */
#define ENG_STORE_NICE_BOOST 10
/* Raises the calling thread's priority boost steps above the process's (Linux: nice per thread),
 * where that is allowed (root or CAP_SYS_NICE); otherwise it stays as it is. */
void eng_thread_nice_boost(int boost);
/* ts = now + ms on CLOCK_MONOTONIC, for pthread_cond_timedwait on the engine's condition
 * variables (all made on that clock). */
void eng_abs_deadline(struct timespec *ts, int ms);

/* The prefetch (engine.c): jobs to hold beyond the idle workers at a start rate of rate_per_ms,
 * when the store thread's recent groups took busy_ms: what the workers start in 25 ms, or in
 * twice busy_ms up to 80 ms, and at most 4 × claim_batch. */
size_t eng_prefetch_jobs(double rate_per_ms, double busy_ms, size_t claim_batch);

/* When a group commit opened at opened_ms closes: commit_interval_ms later, or busy_ms later
 * when the engine stayed saturated (no worker found the ready queue empty since the group opened,
 * and it still holds jobs) and busy_ms is the longer. A saturated engine's jobs wait in the queue
 * anyway; a longer group spreads its fixed cost (COMMIT, the WAL frames of every index page it
 * touches, the checkpoint that copies them) over more jobs (docs/BENCHMARKS.md). */
int64_t eng_group_close_ms(int64_t opened_ms, int interval_ms, int busy_ms, bool saturated);

/* worker.c */
void *eng_worker_main(void *arg);
void eng_worker_interrupt(struct eng_worker *w, int reason);
/* Moves the job's buffered log lines (and, if with_count, its count of dropped lines) to the
 * store thread's live list, in order. Caller holds w->mu and signals the store thread after. */
bool eng_logs_to_live(aspen_engine *eng, struct eng_worker *w, struct eng_done *d,
                      bool with_count);
/* Wakes the store thread to write live lines (call without holding a worker's lock). */
void eng_signal_store(aspen_engine *eng);
const struct eng_handler *eng_find_handler(aspen_engine *eng, const char *type);

/* vmpool.c */
void vm_pool_init(struct vm_pool *p, size_t budget);
void vm_pool_destroy(struct vm_pool *p);
/* A VM for (sha, mem): an idle warm one, or a new one (image fetched through `store` if needed). */
/* args/args_key: a Linux program's arguments (NULL-terminated, may be NULL) and their JSON text,
 * which is part of a VM's key with sha and mem. */
int vm_pool_acquire(struct vm_pool *p, aspen_engine *eng, aspen_store *store, const char *sha,
                    const char *name, size_t mem, const char *const *args, const char *args_key,
                    aspen_vm_log_fn startup_log, void *log_user,
                    struct vm_slot **out, bool *cold, char *msg, size_t msgcap, bool *permanent);
void vm_pool_release(struct vm_pool *p, struct vm_slot *slot);
void vm_pool_stats(struct vm_pool *p, aspen_engine_throughput *t);

/* handlers.c */
int eng_register_builtins(aspen_engine *eng, bool all, aspen_engine_error *err);
void eng_cancel_local(aspen_engine *eng, int64_t id);
void eng_wake(aspen_engine *eng);
/* The ready queue ran low: asks whoever claims (the claimer thread on PostgreSQL, the store
 * thread otherwise) for a claim now. Cheap when one was already asked for. */
void eng_want_claim(aspen_engine *eng);
/* api.c: converts an engine job spec as a submit does (guest stored, payload and tags checked)
 * and calls with() on the store's spec under api_mu, eng->api_store usable (schedule.c). */
int eng_with_store_spec(aspen_engine *eng, const aspen_engine_job_spec *in,
                        int (*with)(aspen_engine *, const aspen_store_job_spec *, void *),
                        void *arg, aspen_engine_error *err);
/* schedule.c: the scheduler thread (started with the workers, stopped before unregistering). */
struct eng_scheduler;
void eng_scheduler_start(aspen_engine *eng);
void eng_scheduler_stop(aspen_engine *eng);
/* retention.c: start (workers > 0 and retention_poll_ms >= 0; best effort) and stop the pruner. */
void eng_pruner_start(aspen_engine *eng);
void eng_pruner_stop(aspen_engine *eng);
/* One prune batch handed by the pruner thread to the store thread (SQLite: one writer). Posted
 * (eng->prune_req), taken (the store thread runs it), done (result filled in). */
struct eng_prune_req {
    aspen_store_state state;
    int64_t before_ms, budget_us;
    size_t max;
    aspen_store_prune_result res;
    aspen_store_error se;
    int rc;
    bool taken, done;
};
/* The store thread's side: runs the posted batch, if any, on commit_store (engine.c). */
void eng_store_prune_serve(aspen_engine *eng);
/* The store thread's question between a batch's jobs: has work come that a batch must not
 * delay (a claim wanted, the engine stopping)? */
bool eng_store_prune_yield(void *eng);
/* listen.c: start (best effort: without it the store thread polls) and stop the waiter. */
void eng_listener_start(aspen_engine *eng);
void eng_listener_stop(aspen_engine *eng);

/* metrics.c (the store thread only): sums a committed attempt into this minute's rollup of its
 * type and guest; tick writes changed rollups every few seconds (force: now, at stop) and prunes
 * those past the database's retention about once a minute. */
struct eng_metrics;
struct eng_metrics *eng_metrics_new(void);
void eng_metrics_free(struct eng_metrics *m);
void eng_metrics_note(aspen_engine *eng, struct eng_metrics *m, const struct eng_done *d,
                      aspen_store_state state, int64_t engine_id, int64_t now_ms);
void eng_metrics_tick(aspen_engine *eng, struct eng_metrics *m, bool force);

/* build.c */
int eng_build(aspen_engine *eng, const char *source_dir, char *path_out, size_t cap, bool *cached,
              char **log_out, aspen_engine_error *err);
/* --source DIR at submit: checks DIR (eng_source_refusal) and pins its content: *pinned
 * (malloc'd) is "DIR#sha256=HEX", the digest of its files as they are now, which eng_build
 * checks, so the job runs what was there at submit or is refused. 0, or an error saying what. */
int eng_source_pin(aspen_engine *eng, const char *dir, char **pinned, aspen_engine_error *err);
/* What submit (of a directory or a commit's tree) and build both refuse in the tree at dir, in
 * one place: no C sources (naming subdirectories that have some: "give --source AGAIN SUB"), a
 * Rust guest, a plain C-library program (scripts/build-guest.sh's musl rule), a guest.flags off
 * the allow-list. what names the tree to the submitter (never a temporary copy), checkout where
 * scripts/build-guest.sh would build it. flags (may be NULL) gets guest.flags' flags
 * (aspen_build_flags_free). 0, or code with the sentence. */
int eng_source_refusal(aspen_engine *eng, const char *dir, const char *what, const char *again,
                       const char *checkout, int code, char ***flags, size_t *nflags,
                       aspen_engine_error *err);
/* A stored source "DIR#sha256=HEX": DIR into dir, HEX into hex, true; else false (unpinned). */
bool eng_source_pin_split(const char *source, char *dir, size_t cap, char hex[65]);

/* A static Linux program's arguments from a job's tags ("arg:VALUE", worker.c): argv is
 * NULL-terminated (or NULL), key their JSON array (the warm pool's key). 0, or -1 out of memory. */
struct job_args {
    char **argv;
    const char *key; /* the pool key: key_buf, or the static "[]" of a job without arguments */
    char *key_buf;
};
int job_args_get(const char *tags, struct job_args *out);
void job_args_free(struct job_args *a);

/* An engine message event (ASPEN_ENGINE_EV_ENGINE), printf-style. */
void engine_message(aspen_engine *eng, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* replay.c: the replay record of a finished VM attempt, or NULL when it needs none (a success
 * whose host calls the host made up nothing for: its job row says all a replay needs). */
struct aspen_vm_result;
uint8_t *eng_replay_record(const aspen_store_job *job, const char *sha, size_t memory,
                           const struct aspen_vm_result *res, struct aspen_vm_tape *tape,
                           size_t *len);
/* After a group commit: stores the cores of the completions written (status 0) in one
 * transaction; a failure is reported, never retried (the attempts stand without). Replay records
 * go with the completions into the commit itself. */
void eng_store_attempt_data(aspen_engine *eng, struct eng_done *const *d, const int *status,
                            size_t n);

/* gitsrc.c: --source REPO#REV[:SUBDIR] (a commit of a local git repository). syntax: s names
 * one (holds '#' and is no existing path). resolve (at submit): the revision to its commit, as the
 * canonical "git+file:///REPO#COMMIT[:SUBDIR]" (malloc'd) and a name for the guest. is_source: s
 * is canonical. build: the canonical source built (build.c), cached by commit + SDK. */
bool eng_git_source_syntax(const char *s);
int eng_git_resolve(aspen_engine *eng, const char *spec, char **canonical, char *name,
                    size_t name_cap, aspen_engine_error *err);
bool eng_git_is_source(const char *s);
int eng_git_export(const char *canonical, const char *dest, char *commit_out, size_t ccap,
                   char *why, size_t wcap);
int eng_git_build(aspen_engine *eng, const char *canonical, char *path_out, size_t cap,
                  bool *cached, char **log_out, aspen_engine_error *err);
/* build.c: what besides the sources decides a build (recipe, toolchain, SDK, ABI, allow-list). */
int eng_build_env_digest(aspen_engine *eng, uint8_t out[32], aspen_engine_error *err);
void eng_rm_tree(const char *dir);

#endif
