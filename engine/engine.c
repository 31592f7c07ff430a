/* engine/engine.c — the engine's life and its two service threads.
 *
 * Open/start/stop/close, the event fan-out to subscribers, the snapshot, and:
 *   dispatcher  registers the engine (lease), runs recovery at start and every recover_ms, renews the
 *               lease every renew_ms with a heartbeat of its live figures (busy workers and
 *               their jobs, warm VMs, memory, jobs/s) that every host can read, polls the store's cancel requests every cancel_poll_ms and
 *               stops those VMs, flushes long jobs' log lines, and samples throughput once a second;
 *   store thread (committer_main) reserves due jobs for the ready queue (claim_more), writes start
 *               marks and finished attempts in ONE aspen_store_commit every commit_interval_ms or
 *               commit_batch jobs (every commit_busy_ms while the engine stays saturated:
 *               eng_group_close_ms), then tells subscribers the jobs' new states (after the
 *               commit: what they see is durable); on SQLite it also runs the retention
 *               pruner's batches between its group commits (retention.c: one writer);
 *   claimer     (PostgreSQL only: claimer_main) makes the claims instead of the store thread, on a
 *               connection of its own, so that a claim's round trips run while a group commit
 *               waits for its statements and its fsync. On SQLite the store thread claims itself:
 *               one writer thread, no second write lock to wait on.
 * Workers are in worker.c, the warm VM pool in vmpool.c.
 *
 * A job's life in one engine (store states in capitals; see store/state.c for the whole table):
 *
 *   QUEUED ──claim_more: reservation (claims row)──▶ ready queue (local, FIFO in claim order)
 *     ▲          │ given back: unclaim after PREFETCH_MAX_WAIT_MS, at stop, on unregister;
 *     │          │ dropped (the lease lapses, recovery gives it back) on a lost lease or a
 *     │          │ permanent store error
 *     │          ▼ a worker pops it: eng_job_started → start list (RUNNING event)
 *     │        worker runs it ─────────────▶ start mark written by the next group commit
 *     │          │                            (QUEUED → RUNNING, attempts + 1, started_at)
 *     │          ▼ finished: eng_done → completion list
 *     │        group commit: completion (with its start if not yet written: QUEUED → end in one
 *     │          write) → SUCCEEDED | FAILED | CANCELLED | SCHEDULED/QUEUED (retry)
 *     └── release at shutdown (RUNNING → QUEUED, attempt given back)
 *
 * Invariants:
 *   - An attempt is charged (attempts + 1, an attempts row eventually) only for a job a worker
 *     began; a job only reserved is QUEUED to every reader, and a kill -9 costs it nothing.
 *   - The engine reserves idle workers plus a prefetch of what it starts in PREFETCH_MS (up to
 *     PREFETCH_MAX_MS while its group commits take long) at its recent rate (≤ 4 × claim_batch):
 *     others' engines and higher priorities wait at most that.
 *   - A job's start is handed to the store thread before its completion (same worker, same
 *     d_mu), so a group never holds a completion whose start comes later.
 *   - A job reaches the ready queue only after its claim's transaction committed (whichever
 *     connection made it), so the commit that starts or finishes it always sees its reservation.
 *   - Completions and start marks stay in memory until a commit holding them succeeds: transient
 *     store errors (disk full, locked, I/O) are retried with backoff and claims wait meanwhile;
 *     nothing is dropped unless the error is permanent (engine_fatal: the engine stops claiming
 *     and wait_idle returns the message) or the engine stops while the store still fails.
 *   - Only the current engine id's work is written; after a lost lease the old id's jobs belong to
 *     whoever recovered them, and their results are dropped here.
 *   - After an outage the engine re-takes its own lease before it commits (renew_if_stale), never
 *     recovers itself, and gives the engines the same outage cut off one lease period before it
 *     recovers them (the dispatcher; docs/STORE.md, "An outage every engine shared").
 */
#include "engine_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef ASPEN_SOURCE_DIR
#define ASPEN_SOURCE_DIR "."
#endif

/* ---- small helpers ------------------------------------------------------------------------------ */

int64_t eng_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int eng_err(aspen_engine_error *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->store_code = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Maps a store error to the engine's codes, keeping the store's message. */
int eng_store_err(aspen_engine_error *err, const aspen_store_error *se, const char *what)
{
    int code = se->code == ASPEN_STORE_ENOTFOUND ? ASPEN_ENGINE_ENOTFOUND
               : se->code == ASPEN_STORE_ESTATE  ? ASPEN_ENGINE_ESTATE
               : se->code == ASPEN_STORE_EINVAL  ? ASPEN_ENGINE_EINVAL
                                                 : ASPEN_ENGINE_ESTORE;
    if (err) {
        err->code = code;
        err->store_code = se->code;
        err->disconnected = se->disconnected;
        if (what)
            snprintf(err->msg, sizeof err->msg, "%s: %s", what, se->msg);
        else
            snprintf(err->msg, sizeof err->msg, "%s", se->msg);
    }
    return code;
}

void eng_done_free(struct eng_done *d)
{
    if (!d)
        return;
    if (d->held_in) /* frees room for the workers waiting in hand_over (worker.c) */
        atomic_fetch_sub(d->held_in, d->held);
    free(d->output);
    free(d->error);
    free(d->core);
    free(d->replay);
    for (size_t i = 0; i < d->n_logs; i++)
        free(d->logs[i].line);
    free(d->logs);
    free(d);
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

void eng_abs_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static bool is_dir(const char *p)
{
    return access(p, F_OK) == 0 && access(p, X_OK) == 0;
}

/* ---- configuration ------------------------------------------------------------------------------ */

void aspen_engine_config_default(aspen_engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 2;
    cfg->vm_memory_budget = 256u << 20;
    cfg->default_memory = 1u << 20;
    cfg->claim_batch = 256;
    cfg->commit_interval_ms = 2;
    cfg->commit_busy_ms = 8;
    cfg->commit_batch = 512;
    cfg->cancel_poll_ms = 50;
    cfg->idle_poll_ms = 10;
    cfg->lease_ms = 5000;
    cfg->renew_ms = 1000;
    cfg->recover_ms = 5000;
    cfg->backoff_base_ms = 1000;
    cfg->backoff_cap_ms = 60000;
    cfg->backoff_jitter = 0.2;
    cfg->shutdown_grace_ms = 5000;
    cfg->core_max = 8u << 20;
    cfg->replay_max = 64u << 10;
    cfg->retention_poll_ms = 10000;
    cfg->retention_batch = 500;
}

/* Zero fields take their defaults, so callers may fill only what they care about. */
static void config_fill(aspen_engine_config *c)
{
    aspen_engine_config d;
    aspen_engine_config_default(&d);
    if (c->workers < 0)
        c->workers = 0;
    if (c->workers > ASPEN_ENGINE_MAX_WORKERS)
        c->workers = ASPEN_ENGINE_MAX_WORKERS;
#define DEF(f) if (!c->f) c->f = d.f
    DEF(vm_memory_budget);
    DEF(default_memory);
    DEF(core_max);
    DEF(replay_max);
    DEF(claim_batch);
    DEF(commit_interval_ms);
    DEF(commit_busy_ms);
    DEF(commit_batch);
    DEF(cancel_poll_ms);
    DEF(idle_poll_ms);
    DEF(lease_ms);
    DEF(renew_ms);
    DEF(recover_ms);
    DEF(retention_poll_ms);
    DEF(retention_batch);
    DEF(backoff_base_ms);
    DEF(backoff_cap_ms);
    DEF(shutdown_grace_ms);
#undef DEF
    if (c->backoff_jitter < 0 || c->backoff_jitter > 1)
        c->backoff_jitter = d.backoff_jitter;
}

static void pick_paths(aspen_engine *eng)
{
    const aspen_engine_config *c = &eng->cfg;
    const char *env;
    if (c->guest_dir)
        snprintf(eng->guest_dir, sizeof eng->guest_dir, "%s", c->guest_dir);
    else if ((env = getenv("ASPEN_GUEST_DIR")) && *env)
        snprintf(eng->guest_dir, sizeof eng->guest_dir, "%s", env);
    else if (is_dir("target/guest-binaries"))
        snprintf(eng->guest_dir, sizeof eng->guest_dir, "target/guest-binaries");
    else
        snprintf(eng->guest_dir, sizeof eng->guest_dir, "%s/target/guest-binaries",
                 ASPEN_SOURCE_DIR);

    if (c->build_script)
        snprintf(eng->build_script, sizeof eng->build_script, "%s", c->build_script);
    else if ((env = getenv("ASPEN_BUILD_GUEST")) && *env)
        snprintf(eng->build_script, sizeof eng->build_script, "%s", env);
    else
        snprintf(eng->build_script, sizeof eng->build_script, "%s/scripts/build-guest.sh",
                 ASPEN_SOURCE_DIR);

    if (c->cache_dir) {
        snprintf(eng->cache_dir, sizeof eng->cache_dir, "%s", c->cache_dir);
    } else if (aspen_store_name_is_postgres(eng->db_path)) {
        /* A connection string has no directory: the cache goes under the user's XDG cache, one
         * per database, named by a hash of the name as shown (password redacted, so the same
         * database gets the same cache whatever password reached it, and none is on disk). */
        char shown[1024];
        aspen_store_name_shown(eng->db_path, shown, sizeof shown);
        aspen_store_sha256_ctx h;
        uint8_t d[32];
        aspen_store_sha256_init(&h);
        aspen_store_sha256_update(&h, shown, strlen(shown));
        aspen_store_sha256_final(&h, d);
        char hex[17];
        for (int i = 0; i < 8; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
            snprintf(eng->cache_dir, sizeof eng->cache_dir, "%s/aspen/build-cache-pg-%s", xdg, hex);
        else if (home && home[0] == '/')
            snprintf(eng->cache_dir, sizeof eng->cache_dir, "%s/.cache/aspen/build-cache-pg-%s",
                     home, hex);
        else
            snprintf(eng->cache_dir, sizeof eng->cache_dir, "/tmp/aspen-%d/build-cache-pg-%s",
                     (int)getuid(), hex);
    } else {
        const char *slash = strrchr(eng->db_path, '/');
        if (slash)
            snprintf(eng->cache_dir, sizeof eng->cache_dir, "%.*s/build-cache",
                     (int)(slash - eng->db_path), eng->db_path);
        else
            snprintf(eng->cache_dir, sizeof eng->cache_dir, "build-cache");
    }
}

/* ---- open / close ------------------------------------------------------------------------------- */

int aspen_engine_open(const aspen_engine_config *cfg, aspen_engine **out, aspen_engine_error *err)
{
    *out = NULL;
    if (!cfg || !cfg->db_path || !*cfg->db_path)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "no database path given");
    aspen_engine *eng = calloc(1, sizeof *eng);
    if (!eng)
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory creating the engine");
    eng->cfg = *cfg;
    config_fill(&eng->cfg);
    snprintf(eng->db_path, sizeof eng->db_path, "%s", cfg->db_path);
    eng->cfg.db_path = eng->db_path;
    pick_paths(eng);
    eng->cfg.guest_dir = eng->cfg.build_script = eng->cfg.cache_dir = NULL;

    if (cfg->n_queues > 16 || (cfg->n_queues && !cfg->queues)) {
        free(eng);
        return eng_err(err, ASPEN_ENGINE_EINVAL, "an engine serves at most 16 named queues (%zu "
                       "given)", cfg->n_queues);
    }
    for (size_t i = 0; i < cfg->n_queues; i++) {
        aspen_store_error qe = {0};
        if (aspen_store_queue_name_check(cfg->queues[i], &qe) != 0) {
            free(eng);
            return eng_err(err, ASPEN_ENGINE_EINVAL, "%s", qe.msg);
        }
        snprintf(eng->serve_names[i], sizeof eng->serve_names[i], "%s", cfg->queues[i]);
        eng->serve_ptrs[i] = eng->serve_names[i];
    }
    eng->cfg.queues = cfg->n_queues ? eng->serve_ptrs : NULL;
    if (cfg->cmd_args && strlen(cfg->cmd_args) >= sizeof eng->cmd_args) {
        free(eng); /* cut, the printed commands would name another database */
        return eng_err(err, ASPEN_ENGINE_EINVAL, "cmd_args is %zu bytes, more than the %zu an "
                       "engine keeps", strlen(cfg->cmd_args), sizeof eng->cmd_args - 1);
    }
    snprintf(eng->cmd_args, sizeof eng->cmd_args, "%s", cfg->cmd_args ? cfg->cmd_args : "");
    eng->cfg.cmd_args = eng->cmd_args;

    pthread_mutex_init(&eng->api_mu, NULL);
    pthread_rwlock_init(&eng->sub_lock, NULL);
    pthread_mutex_init(&eng->q_mu, NULL);
    cond_init_mono(&eng->q_nonempty);
    pthread_mutex_init(&eng->h_mu, NULL);
    pthread_mutex_init(&eng->prune_mu, NULL);
    cond_init_mono(&eng->h_cond);
    pthread_mutex_init(&eng->d_mu, NULL);
    pthread_mutex_init(&eng->live_mu, NULL);
    eng->live_tail = &eng->live_head;
    cond_init_mono(&eng->d_cond);
    cond_init_mono(&eng->d_flushed);
    cond_init_mono(&eng->prune_done);
    eng->d_tail = &eng->d_head;
    pthread_mutex_init(&eng->c_mu, NULL);
    cond_init_mono(&eng->c_cond);
    pthread_mutex_init(&eng->build_mu, NULL);
    vm_pool_init(&eng->pool, eng->cfg.vm_memory_budget);
    eng->next_sub_id = 1;

    int code;
    aspen_store_error se = {0};
    eng->store_opts = (aspen_store_options){.give_up = &eng->store_give_up};
    aspen_store_options so = {.no_create = eng->cfg.no_create, .give_up = &eng->store_give_up};
    if (aspen_store_open(eng->db_path, &so, &eng->api_store, &se) != 0) {
        code = eng_store_err(err, &se, NULL);
        goto free_engine;
    }
    /* the store's own messages (a queue removal refused, a schedule not found) name commands
     * too: the same --db as the engine's */
    if (aspen_store_set_cmd_args(eng->api_store, eng->cmd_args, &se) != 0) {
        code = eng_store_err(err, &se, NULL);
        goto close_store;
    }
    eng->host = aspen_vm_host_new();
    if (!eng->host) {
        code = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory creating the host-call registry");
        goto close_store;
    }
    if ((code = eng_register_builtins(eng, !eng->cfg.no_builtin_handlers, err)) != 0)
        goto free_host;
    *out = eng;
    return 0;

free_host:
    aspen_vm_host_free(eng->host);
close_store:
    aspen_store_close(eng->api_store);
free_engine:
    vm_pool_destroy(&eng->pool);
    free(eng);
    return code;
}

int64_t aspen_engine_id(const aspen_engine *eng)
{
    return atomic_load(&((aspen_engine *)eng)->engine_id);
}

const char *aspen_engine_db_path(const aspen_engine *eng) { return eng->db_path; }

void aspen_engine_close(aspen_engine *eng)
{
    if (!eng)
        return;
    aspen_engine_stop(eng, -1, NULL);
    vm_pool_destroy(&eng->pool);
    aspen_vm_host_free(eng->host);
    aspen_store_close(eng->api_store);
    free(eng->subs);
    free(eng->q);
    free(eng->starts);
    free(eng->workers);
    eng_metrics_free(eng->metrics);
    pthread_mutex_destroy(&eng->api_mu);
    pthread_rwlock_destroy(&eng->sub_lock);
    pthread_mutex_destroy(&eng->q_mu);
    pthread_cond_destroy(&eng->q_nonempty);
    pthread_mutex_destroy(&eng->h_mu);
    pthread_cond_destroy(&eng->h_cond);
    pthread_mutex_destroy(&eng->d_mu);
    for (struct eng_live *l = eng->live_head, *next; l; l = next) {
        next = l->next;
        free(l->line);
        free(l);
    }
    pthread_mutex_destroy(&eng->live_mu);
    pthread_cond_destroy(&eng->d_cond);
    pthread_cond_destroy(&eng->d_flushed);
    pthread_cond_destroy(&eng->prune_done);
    pthread_mutex_destroy(&eng->c_mu);
    pthread_cond_destroy(&eng->c_cond);
    pthread_mutex_destroy(&eng->build_mu);
    free(eng);
}

/* ---- events ------------------------------------------------------------------------------------- */

void eng_emit(aspen_engine *eng, const aspen_engine_event *ev)
{
    if (!eng_wants(eng, ev->type))
        return;
    pthread_rwlock_rdlock(&eng->sub_lock);
    for (size_t i = 0; i < eng->n_subs; i++)
        if (eng->subs[i].mask & ev->type)
            eng->subs[i].fn(ev, eng->subs[i].user);
    pthread_rwlock_unlock(&eng->sub_lock);
}

void engine_message(aspen_engine *eng, const char *fmt, ...)
{
    if (!eng_wants(eng, ASPEN_ENGINE_EV_ENGINE))
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1, .outcome = -1,
                             .message = buf};
    eng_emit(eng, &ev);
}

bool eng_outage(aspen_engine *eng, const char *what, const aspen_store_error *se, int64_t next_ms)
{
    if (!se->disconnected)
        return false;
    int tries = atomic_fetch_add(&eng->outage_tries, 1) + 1;
    if (atomic_exchange(&eng->outage, 1))
        return true; /* said at the outage's start; the console shows the count */
    atomic_store(&eng->outage_since_ms, aspen_store_now_ms());
    /* Stopping: "finished jobs are held in memory and written once it is back" would be untrue
     * (nothing waits for it now); the stop says what it could not write instead. */
    if (!eng_wants(eng, ASPEN_ENGINE_EV_ENGINE) || atomic_load(&eng->store_give_up))
        return true;
    char shown[512]; /* a PostgreSQL conninfo may hold a password */
    aspen_store_name_shown(eng->db_path, shown, sizeof shown);
    /* one line, the store's whole message (with its advice) at the end: engine_message's
     * buffer would cut it */
    char msg[2048];
    snprintf(msg, sizeof msg,
             /* the engine's own attempts, each after the store's ~5 s of reconnecting: "attempt
              * 1" beside "did not succeed for 5 s" read as a contradiction (trial 24) */
             "reconnecting to %s (engine attempt %d, next in %.1fs): claims wait, finished jobs are held "
             "in memory and written once it is back; %s%s%s",
             shown, tries, (double)next_ms / 1000.0, what ? what : "", what ? ": " : "", se->msg);
    aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1, .outcome = -1,
                             .message = msg};
    eng_emit(eng, &ev);
    return true;
}

void eng_outage_over(aspen_engine *eng)
{
    if (!atomic_load(&eng->outage) || !atomic_exchange(&eng->outage, 0))
        return;
    int tries = atomic_exchange(&eng->outage_tries, 0);
    int64_t took = aspen_store_now_ms() - atomic_load(&eng->outage_since_ms);
    char shown[512];
    aspen_store_name_shown(eng->db_path, shown, sizeof shown);
    /* since the first failed call gave up: the store's own reconnect tried ~5 s before that */
    engine_message(eng, "reconnected to %s: the database answers again (%d failed %s, %.1f s "
                        "after reconnecting was said)",
                   shown, tries, tries == 1 ? "try" : "tries", (double)took / 1000.0);
}

static struct eng_job **queue_take_all(aspen_engine *eng, size_t *n);
static void job_free(struct eng_job *j);

/* A permanent store error: nothing this engine writes can succeed until a person acts. Stop
 * claiming, drop what waits in the ready queue (its reservations lapse with the lease: never
 * charged), and say why; wait_idle returns the message, so `aspen worker` exits with it. */
static void engine_fatal(aspen_engine *eng, const char *what, const aspen_store_error *se)
{
    if (atomic_exchange(&eng->fatal_taken, 1))
        return;
    snprintf(eng->fatal_msg, sizeof eng->fatal_msg, "%s: %s", what, se->msg);
    atomic_store(&eng->fatal, 1);
    engine_message(eng, "stopping: %s", eng->fatal_msg);
    size_t n;
    struct eng_job **all = queue_take_all(eng, &n);
    for (size_t i = 0; i < n; i++)
        job_free(all[i]);
    free(all);
}

/* Store failures of the service threads: permanent ones stop the engine, others are retried. */
static bool store_failure(aspen_engine *eng, int rc, const char *what, const aspen_store_error *se)
{
    if (rc && rc != ASPEN_STORE_ELEASE && aspen_store_error_permanent(rc)) {
        engine_fatal(eng, what, se);
        return true;
    }
    return false;
}

int aspen_engine_subscribe(aspen_engine *eng, unsigned mask, aspen_engine_event_fn fn, void *user)
{
    if (!fn || !mask)
        return ASPEN_ENGINE_EINVAL;
    pthread_rwlock_wrlock(&eng->sub_lock);
    struct eng_sub *n = realloc(eng->subs, (eng->n_subs + 1) * sizeof *n);
    if (!n) {
        pthread_rwlock_unlock(&eng->sub_lock);
        return ASPEN_ENGINE_ENOMEM;
    }
    eng->subs = n;
    int id = eng->next_sub_id++;
    eng->subs[eng->n_subs++] = (struct eng_sub){id, mask, fn, user};
    unsigned all = 0;
    for (size_t i = 0; i < eng->n_subs; i++)
        all |= eng->subs[i].mask;
    atomic_store(&eng->sub_mask, all);
    pthread_rwlock_unlock(&eng->sub_lock);
    return id;
}

void aspen_engine_unsubscribe(aspen_engine *eng, int id)
{
    pthread_rwlock_wrlock(&eng->sub_lock);
    unsigned all = 0;
    for (size_t i = 0; i < eng->n_subs;) {
        if (eng->subs[i].id == id) {
            memmove(&eng->subs[i], &eng->subs[i + 1], (eng->n_subs - i - 1) * sizeof eng->subs[0]);
            eng->n_subs--;
            continue;
        }
        all |= eng->subs[i].mask;
        i++;
    }
    atomic_store(&eng->sub_mask, all);
    pthread_rwlock_unlock(&eng->sub_lock);
}

/* ---- the ready queue ---------------------------------------------------------------------------- */

/* Makes room for n more jobs in the ring (q_mu held): grows it, doubling, and lays it out from 0.
 * 0, or -1 when memory ran out (the queue is as it was). */
static int queue_room(aspen_engine *eng, size_t n)
{
    if (eng->q_len + n <= eng->q_cap)
        return 0;
    size_t cap = eng->q_cap ? eng->q_cap : 1024;
    while (cap < eng->q_len + n)
        cap *= 2;
    struct eng_job **nq = malloc(cap * sizeof *nq);
    if (!nq)
        return -1;
    for (size_t i = 0; i < eng->q_len; i++)
        nq[i] = eng->q[(eng->q_head + i) % eng->q_cap];
    free(eng->q);
    eng->q = nq;
    eng->q_cap = cap;
    eng->q_head = 0;
    return 0;
}

static int queue_push_many(aspen_engine *eng, aspen_store_job *jobs, size_t n, int64_t engine_id)
{
    int64_t now = eng_mono_ms();
    pthread_mutex_lock(&eng->q_mu);
    if (queue_room(eng, n) != 0) {
        pthread_mutex_unlock(&eng->q_mu);
        return -1;
    }
    size_t pushed = 0;
    for (size_t i = 0; i < n; i++) {
        struct eng_job *j = malloc(sizeof *j);
        if (!j)
            break;
        j->row = jobs[i];
        memset(&jobs[i], 0, sizeof jobs[i]);
        /* As its worker will run it: the attempt it becomes once started (handlers read it). */
        j->row.state = ASPEN_STORE_RUNNING;
        j->row.attempts++;
        j->row.owner = engine_id;
        j->engine_id = engine_id;
        j->queued_mono = now;
        atomic_init(&j->cancel, CANCEL_NONE);
        eng->q[(eng->q_head + eng->q_len) % eng->q_cap] = j;
        eng->q_len++;
        pushed++;
    }
    atomic_store(&eng->q_ready, eng->q_len);
    if (pushed == 1)
        pthread_cond_signal(&eng->q_nonempty);
    else if (pushed)
        pthread_cond_broadcast(&eng->q_nonempty);
    pthread_mutex_unlock(&eng->q_mu);
    return pushed == n ? 0 : -1;
}

/* Takes every job still waiting in the queue (to release them at shutdown or drop them after a lost
 * lease). Returns a malloc'd array (or NULL) and its length. */
static struct eng_job **queue_take_all(aspen_engine *eng, size_t *n)
{
    pthread_mutex_lock(&eng->q_mu);
    struct eng_job **all = eng->q_len ? malloc(eng->q_len * sizeof *all) : NULL;
    *n = 0;
    if (all) {
        for (size_t i = 0; i < eng->q_len; i++)
            all[i] = eng->q[(eng->q_head + i) % eng->q_cap];
        *n = eng->q_len;
        eng->q_len = 0;
        eng->q_head = 0;
        atomic_store(&eng->q_ready, 0);
        atomic_fetch_add(&eng->q_dry, 1);
    }
    pthread_mutex_unlock(&eng->q_mu);
    return all;
}

static void job_free(struct eng_job *j)
{
    aspen_store_job_clear(&j->row);
    free(j);
}

/* Takes the jobs at the head of the queue that waited longer than max_wait_ms (prefetch that
 * could not start in time: it goes back to the store for other engines). */
static struct eng_job **queue_take_stale(aspen_engine *eng, int64_t now, int64_t max_wait_ms,
                                         size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&eng->q_mu);
    size_t k = 0;
    while (k < eng->q_len && now - eng->q[(eng->q_head + k) % eng->q_cap]->queued_mono > max_wait_ms)
        k++;
    struct eng_job **out = k ? malloc(k * sizeof *out) : NULL;
    if (out) {
        for (size_t i = 0; i < k; i++)
            out[i] = eng->q[(eng->q_head + i) % eng->q_cap];
        eng->q_head = (eng->q_head + k) % eng->q_cap;
        eng->q_len -= k;
        *n = k;
        atomic_store(&eng->q_ready, eng->q_len);
        if (!eng->q_len)
            atomic_fetch_add(&eng->q_dry, 1);
    }
    pthread_mutex_unlock(&eng->q_mu);
    return out;
}

/* Puts jobs taken by queue_take_stale back at the head of the queue, in their order (a give-back
 * the store refused: they are still this engine's reservations, so they must run here — freed,
 * they would stay reserved by a live engine that no longer knows them, never claimed again). 0, or
 * -1 when the queue could not grow (the caller then frees them, as before). */
static int queue_put_back(aspen_engine *eng, struct eng_job **jobs, size_t n)
{
    pthread_mutex_lock(&eng->q_mu);
    if (queue_room(eng, n) != 0) {
        pthread_mutex_unlock(&eng->q_mu);
        return -1;
    }
    eng->q_head = (eng->q_head + eng->q_cap - n % eng->q_cap) % eng->q_cap;
    for (size_t i = 0; i < n; i++)
        eng->q[(eng->q_head + i) % eng->q_cap] = jobs[i];
    eng->q_len += n;
    atomic_store(&eng->q_ready, eng->q_len);
    pthread_cond_broadcast(&eng->q_nonempty);
    pthread_mutex_unlock(&eng->q_mu);
    return 0;
}

void eng_job_started(aspen_engine *eng, struct eng_job *j, int64_t started_ms)
{
    j->row.started_at_ms = started_ms;
    atomic_fetch_add_explicit(&eng->c_started, 1, memory_order_relaxed);
    pthread_mutex_lock(&eng->d_mu);
    if (eng->n_starts == eng->cap_starts) {
        size_t cap = eng->cap_starts ? eng->cap_starts * 2 : 64;
        struct eng_start *grown = realloc(eng->starts, cap * sizeof *grown);
        if (grown) {
            eng->starts = grown;
            eng->cap_starts = cap;
        }
    }
    /* Out of memory: no start mark; the completion still marks it (start and end in one write). */
    if (eng->n_starts < eng->cap_starts) {
        eng->starts[eng->n_starts++] = (struct eng_start){j->row.id, j->engine_id, started_ms};
        if (eng->n_starts == 1 && !eng->d_head)
            pthread_cond_signal(&eng->d_cond);
    }
    pthread_mutex_unlock(&eng->d_mu);
    if (eng_wants(eng, ASPEN_ENGINE_EV_JOB_STATE)) {
        aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_JOB_STATE, .job_id = j->row.id,
                                 .attempt = j->row.attempts, .worker = -1,
                                 .state = ASPEN_STORE_RUNNING, .outcome = -1,
                                 .job_type = j->row.type};
        eng_emit(eng, &ev);
    }
}

/* ---- cancel: find the job wherever it is in this process and stop it ---------------------------- */

/* Returns true if the job was found waiting in the queue or running in a worker. */
static bool cancel_local(aspen_engine *eng, int64_t id)
{
    bool found = false;
    pthread_mutex_lock(&eng->q_mu);
    for (size_t i = 0; i < eng->q_len; i++) {
        struct eng_job *j = eng->q[(eng->q_head + i) % eng->q_cap];
        if (j->row.id == id) {
            atomic_store(&j->cancel, CANCEL_USER);
            found = true;
        }
    }
    pthread_mutex_unlock(&eng->q_mu);
    for (int i = 0; i < eng->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        pthread_mutex_lock(&w->mu);
        if (w->cur_job_id == id) {
            __atomic_store_n(&w->cancel, CANCEL_USER, __ATOMIC_SEQ_CST);
            if (w->cur_vm)
                aspen_vm_interrupt(w->cur_vm);
            found = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
    return found;
}

void eng_worker_interrupt(struct eng_worker *w, int reason)
{
    pthread_mutex_lock(&w->mu);
    if (w->cur_job_id) {
        __atomic_store_n(&w->cancel, reason, __ATOMIC_SEQ_CST);
        if (w->cur_vm)
            aspen_vm_interrupt(w->cur_vm);
    }
    pthread_mutex_unlock(&w->mu);
}

/* ---- dispatcher --------------------------------------------------------------------------------- */

static void sample_throughput(aspen_engine *eng, int64_t now)
{
    uint64_t fin = atomic_load(&eng->c_finished);
    if (eng->last_sample_ms) {
        int64_t dt = now - eng->last_sample_ms;
        if (dt > 0)
            atomic_store(&eng->jobs_per_s,
                         (double)(fin - eng->last_finished_sample) * 1000.0 / (double)dt);
    }
    eng->last_sample_ms = now;
    eng->last_finished_sample = fin;
    if (eng_wants(eng, ASPEN_ENGINE_EV_THROUGHPUT)) {
        aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
        if (!snap)
            return;
        aspen_engine_throughput *t = &snap->throughput;
        t->claimed = atomic_load(&eng->c_claimed);
        t->finished = fin;
        t->succeeded = atomic_load(&eng->c_succeeded);
        t->failed = atomic_load(&eng->c_failed);
        t->retried = atomic_load(&eng->c_retried);
        t->cancelled = atomic_load(&eng->c_cancelled);
        t->timeouts = atomic_load(&eng->c_timeouts);
        t->commits = atomic_load(&eng->c_commits);
        t->commits_held = atomic_load(&eng->c_commits_held);
        t->notify_wakes = atomic_load(&eng->c_notify_wakes);
        t->jobs_per_s = atomic_load(&eng->jobs_per_s);
        pthread_mutex_lock(&eng->q_mu);
        t->queue_depth = eng->q_len;
        pthread_mutex_unlock(&eng->q_mu);
        vm_pool_stats(&eng->pool, t);
        t->builds = atomic_load(&eng->builds);
        t->build_cache_hits = atomic_load(&eng->build_hits);
        aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_THROUGHPUT, .worker = -1, .outcome = -1,
                                 .throughput = t};
        eng_emit(eng, &ev);
        free(snap);
    }
}

/* The lease is gone: another process recovered our jobs. Stop them here (their results would be
 * refused), drop what waits, and come back under a new engine id. */
static bool lease_lost(aspen_engine *eng, const char *why)
{
    engine_message(eng, "engine %lld lost its lease (%s): dropping its jobs and registering again",
                   (long long)atomic_load(&eng->engine_id), why);
    size_t n;
    struct eng_job **all = queue_take_all(eng, &n);
    for (size_t i = 0; i < n; i++)
        job_free(all[i]);
    free(all);
    for (int i = 0; i < eng->n_workers; i++)
        eng_worker_interrupt(&eng->workers[i], CANCEL_LEASE);
    int64_t id = 0, old = atomic_load(&eng->engine_id);
    aspen_store_error se = {0};
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    int64_t sent = eng_mono_ms();
    if (aspen_store_engine_register(eng->disp_store, getpid(), host, eng->cfg.lease_ms,
                                    aspen_store_now_ms(), &id, &se) == 0) {
        atomic_store(&eng->lease_renewed_mono, sent);
        atomic_store(&eng->engine_id, id);
        /* The new id is what `aspen engines`, the console and the attempt rows show from now on:
         * say it, or an operator cannot tell this process's new row from another host's. */
        engine_message(eng, "registered again as engine %lld (was engine %lld)", (long long)id,
                       (long long)old);
        return true;
    }
    /* the old id stays; its next renewal says ELEASE again and this is tried again */
    engine_message(eng, "registering again failed (tried again within a second): %s", se.msg);
    return false;
}

static void apply_cancel_requests(aspen_engine *eng)
{
    int64_t *ids = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    if (aspen_store_cancel_requests(eng->disp_store, atomic_load(&eng->engine_id), &ids, &n, &se))
        return;
    for (size_t i = 0; i < n; i++)
        cancel_local(eng, ids[i]);
    free(ids);
}

static size_t queue_len(aspen_engine *eng)
{
    pthread_mutex_lock(&eng->q_mu);
    size_t n = eng->q_len;
    pthread_mutex_unlock(&eng->q_mu);
    return n;
}

/* Log lines of jobs that have run longer than LIVE_LOG_AFTER_MS go to the store now rather than
 * with the job's completion: short jobs keep their lines in the group commit (no extra writes on
 * the fast path), long ones become visible to `aspen logs --follow` in other processes within
 * about LIVE_LOG_AFTER_MS. A job whose buffer fills (ENG_LOG_BUF_LINES / ENG_LOG_BUF_BYTES) sends
 * it the same way at once, from its worker (worker.c). Lines are moved, not copied, under the
 * worker's lock to the store thread, which writes them before the completions it picked up at the
 * same time and then lets the worker queue more. */
#define LIVE_LOG_AFTER_MS 200

static void flush_live_logs(aspen_engine *eng, int64_t now)
{
    bool any = false;
    for (int i = 0; i < eng->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        pthread_mutex_lock(&w->mu);
        struct eng_done *d = w->cur_done;
        /* Still under the worker's lock: the job's completion can only be queued after these
         * lines are, so the store thread never writes its later lines first. */
        if (d && now - w->cur_started_mono >= LIVE_LOG_AFTER_MS &&
            (d->n_logs || d->log_dropped) &&
            w->live_bytes + d->log_bytes <= ENG_LOG_LIVE_BYTES) { /* else its worker sends them */
            eng_logs_to_live(eng, w, d, true); /* out of memory: the rest goes later */
            any = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
    if (any)
        eng_signal_store(eng);
}

/* Gives the workers back the room their written lines took, so a job waiting to log goes on. */
static void release_live_bytes(aspen_engine *eng, int worker, size_t bytes)
{
    if (worker < 0 || worker >= eng->n_workers || !bytes)
        return;
    struct eng_worker *w = &eng->workers[worker];
    pthread_mutex_lock(&w->mu);
    w->live_bytes -= bytes < w->live_bytes ? bytes : w->live_bytes;
    pthread_cond_broadcast(&w->live_cond);
    pthread_mutex_unlock(&w->mu);
}

#define LIVE_KEEP_MS 60000

/* Store errors after which the same write can succeed later: the lines are kept and retried. */
static bool live_error_passes(int code)
{
    return code == ASPEN_STORE_EFULL || code == ASPEN_STORE_EBUSY || code == ASPEN_STORE_EIO ||
           code == ASPEN_STORE_ENOMEM;
}

/* The store thread's half: write whatever live lines are waiting, in one transaction. Returns
 * false when the store refused them for now (disk full, busy): they go back to the head of the
 * queue, still counted against their workers (whose jobs then wait to log more), and are tried
 * again before anything else is written, so a job's lines never land after its later ones or its
 * completion. */
static bool write_live_logs(aspen_engine *eng)
{
    pthread_mutex_lock(&eng->live_mu);
    struct eng_live *list = eng->live_head;
    eng->live_head = NULL;
    eng->live_tail = &eng->live_head;
    pthread_mutex_unlock(&eng->live_mu);
    size_t n = 0;
    struct eng_live **last = &list;
    for (struct eng_live *l = list; l; l = l->next) {
        n++;
        last = &l->next;
    }
    if (!n)
        return true;
    aspen_store_log_line *lines = calloc(n, sizeof *lines);
    aspen_store_error se = {0};
    int rc = ASPEN_STORE_ENOMEM;
    if (lines) {
        size_t i = 0;
        for (struct eng_live *l = list; l; l = l->next)
            lines[i++] = (aspen_store_log_line){.job_id = l->job_id, .attempt = l->attempt,
                                                .time_ms = l->time_ms, .line = l->line,
                                                .dropped = l->dropped};
        rc = aspen_store_append_logs(eng->commit_store, lines, n, &se);
        free(lines);
    } else {
        snprintf(se.msg, sizeof se.msg, "out of memory");
    }
    int64_t now = eng_mono_ms();
    /* Kept for at most LIVE_KEEP_MS: past that the completions they hold back matter more. Not
     * while the database is away (se.disconnected): the completions wait for it too, nothing
     * behind these lines could be written, and they take bounded room (ENG_LOG_LIVE_BYTES per
     * worker, whose job waits to log more) — dropping them lost a job's lines written during a
     * server restart although its result was kept. */
    if (rc && live_error_passes(rc) && !atomic_load(&eng->fatal) &&
        (!eng->live_fails || se.disconnected || now - eng->live_failing_ms < LIVE_KEEP_MS)) {
        bool lost = eng_outage(eng, "writing live log lines", &se, 50);
        if (!eng->live_fails++) {
            eng->live_failing_ms = eng->live_told_ms = now;
            if (!lost)
                engine_message(eng, "writing %zu live log lines failed (kept, retrying): %s", n,
                               se.msg);
        } else if (now - eng->live_told_ms >= 10000 && !lost) {
            eng->live_told_ms = now;
            engine_message(eng, "still cannot write %zu live log lines after %lld s (kept, "
                                "retrying): %s",
                           n, (long long)((now - eng->live_failing_ms) / 1000), se.msg);
        }
        pthread_mutex_lock(&eng->live_mu);
        *last = eng->live_head; /* ahead of what was queued meanwhile */
        if (eng->live_tail == &eng->live_head)
            eng->live_tail = last;
        eng->live_head = list;
        pthread_mutex_unlock(&eng->live_mu);
        /* the store thread's loop goes round at once after a refused write: this is its backoff
         * (claims and commits would meet the same store) */
        sleep_ms(eng->live_fails < 10 ? 50 : 500);
        return false;
    }
    if (rc)
        engine_message(eng, "writing %zu live log lines failed, they are lost: %s", n, se.msg);
    else if (eng->live_fails)
        engine_message(eng, "live log lines are written again after %lld ms of failures",
                       (long long)(now - eng->live_failing_ms));
    eng->live_fails = 0;
    int worker = -1;
    size_t bytes = 0;
    for (struct eng_live *l = list, *next; l; l = next) {
        next = l->next;
        if (l->worker != worker) {
            release_live_bytes(eng, worker, bytes);
            worker = l->worker;
            bytes = 0;
        }
        bytes += l->bytes;
        free(l->line);
        free(l);
    }
    release_live_bytes(eng, worker, bytes);
    return true;
}

/* Resident memory of this process from /proc/self/statm (0 when it cannot be read). */
static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    long long size = 0, resident = 0;
    int ok = fscanf(f, "%lld %lld", &size, &resident) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return ok && resident > 0 && page > 0 ? (int64_t)resident * page : 0;
}

/* The lease renewal carries this engine's live figures (issue 8: every host's engines and what
 * their workers run, for the console and `aspen engines` on any host). */
static int heartbeat(aspen_engine *eng, aspen_store_error *se)
{
    static _Thread_local aspen_engine_snapshot snap; /* ~20 KB: off the dispatcher's stack */
    aspen_engine_snapshot_live(eng, &snap);
    aspen_store_engine_slot slots[ASPEN_STORE_ENGINE_SLOTS];
    aspen_store_engine_figures f = {
        .workers = snap.n_workers,
        .warm_vms = (int64_t)snap.throughput.pool_vms,
        .rss_bytes = rss_bytes(),
        .jobs_per_s = snap.throughput.jobs_per_s >= 0 ? snap.throughput.jobs_per_s : 0,
        .version = ASPEN_VERSION,
        .slots = slots,
    };
    /* which queues it takes ("" = every one), for aspen engines and the Engines pane (issue 10) */
    char queues[ASPEN_STORE_ENGINE_QUEUES_MAX + 1];
    size_t qlen = 0;
    queues[0] = 0;
    for (size_t k = 0; k < eng->cfg.n_queues && qlen < sizeof queues; k++)
        qlen += (size_t)snprintf(queues + qlen, sizeof queues - qlen, "%s%s", k ? "," : "",
                                 eng->cfg.queues[k]);
    f.queues = queues;
    for (int i = 0; i < snap.n_workers; i++) {
        const aspen_engine_worker_status *w = &snap.workers[i];
        if (!w->job_id || strcmp(w->state, "idle") == 0 || strcmp(w->state, "stopped") == 0)
            continue;
        f.busy++;
        if (f.n_slots < ASPEN_STORE_ENGINE_SLOTS) {
            aspen_store_engine_slot *sl = &slots[f.n_slots++];
            sl->worker = w->index;
            sl->job_id = w->job_id;
            snprintf(sl->guest, sizeof sl->guest, "%s", w->guest[0] ? w->guest : w->job_type);
        }
    }
    return aspen_store_engine_heartbeat(eng->disp_store, atomic_load(&eng->engine_id),
                                        eng->cfg.lease_ms, &f, aspen_store_now_ms(), se);
}

static void *dispatcher_main(void *arg)
{
    aspen_engine *eng = arg;
    pthread_setname_np(pthread_self(), "aspen-dispatch");
    const aspen_engine_config *c = &eng->cfg;
    int64_t now = eng_mono_ms();
    int64_t next_renew = now + c->renew_ms, next_recover = now + c->recover_ms,
            next_cancel = now + c->cancel_poll_ms, next_sample = now + 1000,
            next_live = now + LIVE_LOG_AFTER_MS;
    aspen_store_error se = {0};
    /* The recovery rule after an outage (docs/STORE.md, "An outage every engine shared"): while
     * this engine's renewals fail it recovers nobody (it cannot tell a dead engine from one cut
     * off as it is); once a renewal succeeds after failures, or after a gap of a lease period,
     * for one lease period it recovers only engines whose lease expired before its own last
     * good renewal (they were dead before the outage), giving those the same outage cut off
     * time to renew and keep their jobs. */
    bool renew_failing = false;
    /* good_before: the last good renewal before the renewals began to fail. The gap is measured
     * from it, not from lease_renewed_mono when they succeed again: the store thread's own
     * renewal after the reconnect (renew_if_stale, before its first group commit) may have moved
     * that to just now, and a gap of almost nothing let this engine recover an engine cut off by
     * the same outage (test_engine_outage's shared outage: 2 attempts, the first "recovered"). */
    int64_t grace_until = 0, grace_gap = 0, good_before = 0;

    while (!atomic_load(&eng->stopping)) {
        now = eng_mono_ms();
        if (now >= next_renew) {
            next_renew = now + c->renew_ms;
            int64_t sent = eng_mono_ms(), last = atomic_load(&eng->lease_renewed_mono);
            int rc = heartbeat(eng, &se);
            /* A call that waited for the store to reconnect wrote a lease that runs from the time
             * it was called (the caller's "now"), seconds ago: it may end almost at once. The
             * connection is back now, so renew again from a fresh now. */
            if (rc == 0 && eng_mono_ms() - sent > c->renew_ms) {
                sent = eng_mono_ms();
                rc = heartbeat(eng, &se);
            }
            /* Lost (recovered by another engine while this one was away) and registered again
             * is a way back too: it was cut off, so the same grace applies. */
            bool back_again = rc == 0 || (rc == ASPEN_STORE_ELEASE && lease_lost(eng, se.msg));
            if (back_again) {
                int64_t back = eng_mono_ms();
                int64_t from = renew_failing && good_before < last ? good_before : last;
                if (renew_failing || rc != 0 || back - last >= c->lease_ms) {
                    grace_until = back + c->lease_ms;
                    grace_gap = back - from;
                }
                renew_failing = false;
                if (rc == 0 && sent > atomic_load(&eng->lease_renewed_mono))
                    atomic_store(&eng->lease_renewed_mono, sent);
                eng_outage_over(eng);
            } else {
                if (!renew_failing)
                    good_before = last;
                renew_failing = true;
            }
            if (rc && rc != ASPEN_STORE_ELEASE &&
                !store_failure(eng, rc, "renewing the engine's lease", &se) &&
                !eng_outage(eng, "renewing the engine's lease", &se, c->renew_ms))
                engine_message(eng, "renewing the lease failed (will retry): %s", se.msg);
        }
        if (now >= next_recover && !renew_failing) {
            next_recover = now + c->recover_ms;
            aspen_store_recovery rep = {0};
            int64_t min_expired = eng_mono_ms() < grace_until ? grace_gap : 0;
            int rc = aspen_store_recover_others(eng->disp_store, atomic_load(&eng->engine_id),
                                                min_expired, aspen_store_now_ms(), &rep, &se);
            if (rc)
                store_failure(eng, rc, "recovering jobs of dead engines", &se);
            else if (rep.requeued || rep.failed || rep.cancelled)
                engine_message(eng,
                               "recovery: %lld jobs of dead engines requeued, %lld failed (out of "
                               "attempts), %lld cancelled",
                               (long long)rep.requeued, (long long)rep.failed,
                               (long long)rep.cancelled);
        }
        if (now >= next_cancel) {
            next_cancel = now + c->cancel_poll_ms;
            apply_cancel_requests(eng);
        }
        if (now >= next_sample) {
            next_sample = now + 1000;
            sample_throughput(eng, now);
        }
        if (now >= next_live) {
            next_live = now + LIVE_LOG_AFTER_MS;
            flush_live_logs(eng, now);
        }
        int64_t next = next_cancel < next_renew ? next_cancel : next_renew;
        if (next_live < next)
            next = next_live;
        int64_t wait = next - eng_mono_ms();
        if (wait > 0) {
            struct timespec ts;
            eng_abs_deadline(&ts, (int)wait);
            pthread_mutex_lock(&eng->h_mu);
            while (!atomic_load(&eng->stopping))
                if (pthread_cond_timedwait(&eng->h_cond, &eng->h_mu, &ts) == ETIMEDOUT)
                    break;
            pthread_mutex_unlock(&eng->h_mu);
        }
    }
    return NULL;
}

/* Claim sizing. An engine reserves what it can start now — its idle workers — plus a prefetch of
 * what its workers get through in PREFETCH_MS at the rate they have been starting jobs (so 73 µs
 * jobs prefetch a couple of hundred, one-second jobs none), capped by claim_batch. Prefetched jobs
 * that still wait after PREFETCH_MAX_WAIT_MS are given back, and prefetch pauses for a second.
 *
 * The store thread cannot claim while it writes a group, so the prefetch must also last through
 * one: when its recent groups (claim and commit) took longer (a busy machine, a big group), the
 * window stretches to twice that, up to PREFETCH_MAX_MS, and at most PREFETCH_CAP_BATCHES ×
 * claim_batch jobs. Measured (docs/BENCHMARKS.md): with a fixed 25 ms capped at 2 × claim_batch
 * (512 jobs, ~18 ms at the engine's rate), groups of 10–50 ms left the two workers waiting for
 * jobs a quarter of the time. The cap is not larger because every claim steps over the jobs
 * already reserved (the NOT EXISTS in the claim): 2,000 reserved cost a claim ~4,000 more
 * instructions per job claimed than 200 (callgrind). */
#define PREFETCH_MS 25
#define PREFETCH_MAX_MS 80
#define PREFETCH_CAP_BATCHES 4
#define PREFETCH_MAX_WAIT_MS 200
#define PREFETCH_HOLD_MS 1000

struct claim_state {
    bool more, have_version;
    uint64_t last_version;
    int64_t last_version_check, next_claim;
    /* start rate, for the prefetch */
    int64_t rate_ms;
    uint64_t rate_started;
    double rate; /* jobs started per ms (smoothed) */
    int64_t hold_until; /* no prefetch before this (mono ms): it went stale recently */
    double busy_ms;     /* how long the store thread's recent groups took (smoothed, wall) */
    /* The last claim was bounded by a queue's limit or rate (aspen_store_claim_held): claim again
     * after this engine's own completions free a slot (they do not move the data version). */
    bool held;
    /* This state is the claimer thread's (claimer_main). When the engine has a claimer, the
     * store thread's own calls of claim_more and give_back_stale do nothing. */
    bool claimer;
};

/* ---- committer ---------------------------------------------------------------------------------- */

static void count_final(aspen_engine *eng, const struct eng_done *d, aspen_store_state st)
{
    switch (st) {
    case ASPEN_STORE_SUCCEEDED: atomic_fetch_add(&eng->c_succeeded, 1); break;
    case ASPEN_STORE_FAILED: atomic_fetch_add(&eng->c_failed, 1); break;
    case ASPEN_STORE_CANCELLED: atomic_fetch_add(&eng->c_cancelled, 1); break;
    case ASPEN_STORE_QUEUED:
    case ASPEN_STORE_SCHEDULED: atomic_fetch_add(&eng->c_retried, 1); break;
    default: break;
    }
    if (d->outcome == ASPEN_STORE_OUTCOME_TIMEOUT)
        atomic_fetch_add(&eng->c_timeouts, 1);
}

struct commit_buf {
    aspen_store_completion *c;
    struct eng_done **d;
    int *status;
    aspen_store_state *states;
    aspen_store_log_line *logs;
    size_t cap, cap_logs;
};

static int commit_buf_fit(struct commit_buf *b, size_t n, size_t n_logs)
{
    if (n > b->cap) {
        size_t cap = n * 2;
        void *c = realloc(b->c, cap * sizeof *b->c), *d = NULL, *s = NULL, *st = NULL;
        if (c)
            b->c = c;
        d = realloc(b->d, cap * sizeof *b->d);
        if (d)
            b->d = d;
        s = realloc(b->status, cap * sizeof *b->status);
        if (s)
            b->status = s;
        st = realloc(b->states, cap * sizeof *b->states);
        if (st)
            b->states = st;
        if (!c || !d || !s || !st)
            return -1;
        b->cap = cap;
    }
    if (n_logs > b->cap_logs) {
        void *l = realloc(b->logs, n_logs * 2 * sizeof *b->logs);
        if (!l)
            return -1;
        b->logs = l;
        b->cap_logs = n_logs * 2;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A start mark the store refused: the job was cancelled or its reservation given back while it
 * was being started (its worker may already have run some of it). Its result could not be
 * recorded, so its worker stops it and drops the attempt. */
static void start_refused(aspen_engine *eng, int64_t id)
{
    for (int i = 0; i < eng->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        pthread_mutex_lock(&w->mu);
        bool mine = w->cur_job_id == id;
        pthread_mutex_unlock(&w->mu);
        if (mine)
            eng_worker_interrupt(w, CANCEL_LEASE);
    }
}

/* One message for a commit's refused starts, not one per job: a cancel of 100,000 waiting jobs
 * while workers start them refused dozens, and a line each buried the cancel's own result in the
 * console (trial 24). */
static void starts_refused_say(aspen_engine *eng, const int64_t *ids, size_t n, const char *why)
{
    if (!n)
        return;
    if (n == 1) {
        engine_message(eng, "job %lld %s as it was starting: its run was stopped and not recorded",
                       (long long)ids[0], why);
        return;
    }
    char list[96];
    size_t len = 0;
    for (size_t i = 0; i < n && i < 5 && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%lld", i ? ", " : "",
                                (long long)ids[i]);
    engine_message(eng, "%zu jobs %s as they were starting (%s%s): their runs were stopped and not "
                   "recorded", n, why, list, n > 5 ? ", ..." : "");
}

/* The store thread's wait before retrying a failed group commit: 10 ms doubling to 1 s. */
static int64_t commit_backoff_ms(int fails)
{
    int64_t d = 10;
    for (int i = 1; i < fails && d < 1000; i++)
        d *= 2;
    return d < 1000 ? d : 1000;
}

/* Before a commit after a gap in renewals (an outage, a stalled store): renews the lease on the
 * store thread's own handle, so that an engine back from an outage re-takes its own lease — which
 * succeeds only if nobody recovered its jobs meanwhile — before its waiting completions are
 * written. Without it a commit that reached the store before the dispatcher's next renewal found
 * the lease expired, recovered this engine itself and refused every result: each finished job ran
 * again though no other engine had taken anything (the trial's 10 s restart). ELEASE (recovered)
 * is not an error here: the commit then has every item refused, which is right, and the
 * dispatcher's renewal registers again. Returns 0 or a store error after which the group waits. */
static int renew_if_stale(aspen_engine *eng, int64_t engine_id, aspen_store_error *se)
{
    int64_t sent = eng_mono_ms();
    if (sent - atomic_load(&eng->lease_renewed_mono) < eng->cfg.lease_ms / 2)
        return 0; /* the dispatcher's renewals are keeping it */
    int rc = aspen_store_engine_renew(eng->commit_store, engine_id, eng->cfg.lease_ms,
                                      aspen_store_now_ms(), se);
    if (rc == 0 && eng_mono_ms() - sent > eng->cfg.renew_ms) {
        /* it waited for a reconnect: the lease it wrote ran from the call's (old) now */
        sent = eng_mono_ms();
        rc = aspen_store_engine_renew(eng->commit_store, engine_id, eng->cfg.lease_ms,
                                      aspen_store_now_ms(), se);
    }
    if (rc == 0) {
        if (sent > atomic_load(&eng->lease_renewed_mono))
            atomic_store(&eng->lease_renewed_mono, sent);
        return 0;
    }
    return rc == ASPEN_STORE_ELEASE ? 0 : rc;
}

/* Writes one group: start marks of jobs whose completion is not in this group, the completions (a
 * reserved job that started and finished within the group is marked started by its completion),
 * all in one transaction; then releases the handed-back jobs. Only the current engine id's work
 * is written (older ids' was recovered by others). Returns 0, or a store error code after which
 * the group is kept and tried again. */
static int commit_group(aspen_engine *eng, struct eng_done *list, const struct eng_start *starts,
                        size_t n_starts, struct commit_buf *b)
{
    int64_t engine_id = atomic_load(&eng->engine_id);
    size_t n = 0, n_logs = 0, n_done = 0;
    for (struct eng_done *d = list; d; d = d->next) {
        n_done++;
        if (!d->release && d->engine_id == engine_id) {
            n++;
            n_logs += d->n_logs - d->n_flushed;
        }
    }
    if (commit_buf_fit(b, n, n_logs) != 0)
        return ASPEN_STORE_ENOMEM;
    /* Jobs with a completion or release in this group: their start needs no separate mark. */
    int64_t *done_ids = n_done ? malloc(n_done * sizeof *done_ids) : NULL;
    aspen_store_start *marks = n_starts ? malloc(n_starts * sizeof *marks) : NULL;
    int *mark_status = n_starts ? malloc(n_starts * sizeof *mark_status) : NULL;
    if ((n_done && !done_ids) || (n_starts && (!marks || !mark_status))) {
        free(done_ids);
        free(marks);
        free(mark_status);
        return ASPEN_STORE_ENOMEM;
    }
    size_t k = 0;
    for (struct eng_done *d = list; d; d = d->next)
        done_ids[k++] = d->job_id;
    if (n_done > 1)
        qsort(done_ids, n_done, sizeof *done_ids, cmp_i64);
    size_t n_marks = 0;
    for (size_t i = 0; i < n_starts; i++)
        if (starts[i].engine_id == engine_id &&
            !(n_done && bsearch(&starts[i].job_id, done_ids, n_done, sizeof *done_ids, cmp_i64)))
            marks[n_marks++] = (aspen_store_start){starts[i].job_id, starts[i].started_ms};
    free(done_ids);

    size_t i = 0, li = 0;
    for (struct eng_done *d = list; d; d = d->next) {
        if (d->release || d->engine_id != engine_id)
            continue;
        aspen_store_log_line *lg = b->logs + li;
        size_t nl = d->n_logs - d->n_flushed; /* the rest went to the store live */
        for (size_t k2 = d->n_flushed; k2 < d->n_logs; k2++)
            b->logs[li++] = (aspen_store_log_line){.time_ms = d->logs[k2].time_ms,
                                                   .line = d->logs[k2].line};
        b->c[i] = (aspen_store_completion){
            .job_id = d->job_id, .outcome = d->outcome, .stats = d->stats,
            .output = d->output, .output_size = d->output_len, .error = d->error,
            .logs = nl ? lg : NULL, .n_logs = nl, .retry_at_ms = d->retry_at_ms,
            .replay = d->replay, .replay_size = d->replay_len, .replay_attempt = d->attempt};
        b->d[i++] = d;
    }
    aspen_store_error se = {0};
    if (n || n_marks) {
        int rc = renew_if_stale(eng, engine_id, &se);
        if (!rc)
            rc = aspen_store_commit(eng->commit_store, engine_id, marks, n_marks, mark_status,
                                    b->c, n, aspen_store_now_ms(), b->status, b->states, &se);
        if (rc) {
            if (!store_failure(eng, rc, "writing finished jobs", &se)) {
                bool lost = eng_outage(eng, "writing finished jobs", &se, commit_backoff_ms(1));
                if (!atomic_load(&eng->store_failing) && !lost)
                    engine_message(eng,
                                   "writing %zu finished jobs and %zu starts failed: %s. They are "
                                   "kept and written again with backoff; nothing is lost",
                                   n, n_marks, se.msg);
            }
            free(marks);
            free(mark_status);
            return rc;
        }
        int64_t changed[8], lost[8];
        size_t n_changed = 0, n_lost = 0;
        for (size_t m = 0; m < n_marks; m++) {
            if (mark_status[m] == 0)
                continue;
            start_refused(eng, marks[m].job_id);
            bool was_changed = mark_status[m] == ASPEN_STORE_ESTATE;
            size_t *count = was_changed ? &n_changed : &n_lost;
            if (*count < 8)
                (was_changed ? changed : lost)[*count] = marks[m].job_id;
            (*count)++;
        }
        starts_refused_say(eng, changed, n_changed,
                           n_changed == 1 ? "was cancelled (or changed) in the store"
                                          : "were cancelled (or changed) in the store");
        starts_refused_say(eng, lost, n_lost,
                           n_lost == 1 ? "lost its reservation with a lost lease"
                                       : "lost their reservations with a lost lease");
        eng_outage_over(eng);
        if (n) {
            atomic_fetch_add(&eng->c_commits, 1);
            atomic_fetch_add(&eng->c_finished, n);
        }
        eng_store_attempt_data(eng, b->d, b->status, n);
        bool tell = eng_wants(eng, ASPEN_ENGINE_EV_JOB_STATE);
        int64_t committed_ms = aspen_store_now_ms();
        for (size_t k2 = 0; k2 < n; k2++) {
            if (b->status[k2] != 0)
                continue;
            count_final(eng, b->d[k2], b->states[k2]);
            eng_metrics_note(eng, eng->metrics, b->d[k2], b->states[k2], engine_id, committed_ms);
            if (tell) {
                aspen_engine_event ev = {
                    .type = ASPEN_ENGINE_EV_JOB_STATE, .job_id = b->d[k2]->job_id,
                    .attempt = b->d[k2]->attempt, .worker = -1, .state = b->states[k2],
                    .outcome = (int)b->d[k2]->outcome, .job_type = b->d[k2]->type,
                    .message = b->d[k2]->error};
                eng_emit(eng, &ev);
            }
        }
    }
    free(marks);
    free(mark_status);
    size_t unreleased = 0;
    for (struct eng_done *d = list; d; d = d->next) {
        if (!d->release || d->engine_id != engine_id)
            continue;
        if (aspen_store_release(eng->commit_store, engine_id, d->job_id, aspen_store_now_ms(),
                                &se) != 0) {
            unreleased++; /* it stays running under this lease: recovered when the lease ends */
        } else {
            aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_JOB_STATE, .job_id = d->job_id,
                                     .attempt = d->attempt, .worker = -1,
                                     .state = ASPEN_STORE_QUEUED, .outcome = -1,
                                     .job_type = d->type, .message = "released at shutdown"};
            eng_emit(eng, &ev);
        }
    }
    /* A job interrupted at stop that could not be given back is not lost, but the user should
     * know why it shows as running until the lease ends (the server went away during the stop). */
    if (unreleased)
        engine_message(eng, "could not give back %zu jobs interrupted at stop (%s): they stay "
                            "running under this engine's lease and are run again by another "
                            "engine, or the next worker on this database, once it expires",
                       unreleased, se.msg);
    return 0;
}

/* The prefetch: what this engine's workers start in PREFETCH_MS at their recent rate. */
static size_t prefetch_size(aspen_engine *eng, struct claim_state *cs, int64_t now)
{
    uint64_t started = atomic_load_explicit(&eng->c_started, memory_order_relaxed);
    if (!cs->rate_ms) {
        cs->rate_ms = now;
        cs->rate_started = started;
    } else if (now - cs->rate_ms >= 20) {
        double inst = (double)(started - cs->rate_started) / (double)(now - cs->rate_ms);
        cs->rate = cs->rate == 0 ? inst : 0.6 * cs->rate + 0.4 * inst;
        cs->rate_ms = now;
        cs->rate_started = started;
    }
    if (now < cs->hold_until)
        return 0;
    return eng_prefetch_jobs(cs->rate, cs->busy_ms, eng->cfg.claim_batch);
}

int64_t eng_group_close_ms(int64_t opened_ms, int interval_ms, int busy_ms, bool saturated)
{
    return opened_ms + (saturated && busy_ms > interval_ms ? busy_ms : interval_ms);
}

size_t eng_prefetch_jobs(double rate_per_ms, double busy_ms, size_t claim_batch)
{
    double window = 2 * busy_ms;
    window = window < PREFETCH_MS ? PREFETCH_MS : window > PREFETCH_MAX_MS ? PREFETCH_MAX_MS : window;
    double p = rate_per_ms * window + 0.5;
    size_t cap = claim_batch * PREFETCH_CAP_BATCHES;
    return p >= (double)cap ? cap : (size_t)p;
}

/* Gives back prefetched jobs that waited too long for a worker (all busy with long jobs), so that
 * other engines can run them now, and holds the prefetch off for a while. */
static void give_back_stale(aspen_engine *eng, struct claim_state *cs, int64_t now)
{
    if (eng->claimer_on && !cs->claimer)
        return; /* the claimer's: it holds the claims' handle */
    size_t n = 0;
    struct eng_job **old = queue_take_stale(eng, now, PREFETCH_MAX_WAIT_MS, &n);
    if (!n)
        return;
    cs->hold_until = now + PREFETCH_HOLD_MS;
    int64_t *ids = malloc(n * sizeof *ids);
    int64_t engine_id = atomic_load(&eng->engine_id);
    size_t k = 0;
    /* Jobs reserved under an earlier engine id (before a lost lease) are no longer ours: their
     * reservations went with the recovery. The others keep theirs until the unclaim commits. */
    for (size_t i = 0; i < n; i++) {
        if (old[i]->engine_id == engine_id)
            old[k++] = old[i];
        else
            job_free(old[i]);
    }
    for (size_t i = 0; ids && i < k; i++)
        ids[i] = old[i]->row.id;
    aspen_store_error se = {0};
    bool no_memory = k && !ids;
    int rc = !k || no_memory ? 0 : aspen_store_unclaim(eng->claim_store, engine_id, ids, k, &se);
    free(ids);
    if (rc != 0 || no_memory) {
        /* Not given back (the store is away, or no memory): they stay this engine's, so they
         * stay in its queue and run here, or are given back by a later call once the store
         * answers. Freeing them left their reservations held by a live engine that had forgotten
         * them: never claimed again while it ran (worker_pgoutage_test, a server restart). */
        if (rc != 0)
            store_failure(eng, se.code, "giving back prefetched jobs", &se);
        if (queue_put_back(eng, old, k) == 0)
            k = 0;
    }
    for (size_t i = 0; i < k; i++)
        job_free(old[i]);
    free(old);
}

/* Reserves due jobs for the ready queue: enough for the idle workers, plus the prefetch; refills
 * when the queue would leave a worker idle or fell to half the prefetch. When the last claim was
 * not full, only if someone committed something (data version), a local submit woke us, or a
 * second passed (scheduled jobs fall due). Returns true if it claimed anything. */
static bool claim_more(aspen_engine *eng, struct claim_state *cs)
{
    const aspen_engine_config *c = &eng->cfg;
    aspen_store_error se = {0};
    int64_t now = eng_mono_ms();
    if (eng->claimer_on && !cs->claimer)
        return false; /* the claimer claims (claimer_main) */
    if (atomic_load(&eng->fatal) || atomic_load(&eng->store_failing))
        return false;
    size_t qlen = queue_len(eng);
    int running = atomic_load(&eng->running_jobs);
    size_t idle = running < eng->n_workers ? (size_t)(eng->n_workers - running) : 0;
    size_t prefetch = prefetch_size(eng, cs, now);
    size_t target = idle + prefetch;
    if (qlen >= target || (qlen >= idle && qlen > prefetch * 3 / 4))
        return false;
    bool woken = atomic_exchange(&eng->wake_dispatcher, 0) != 0;
    if (!cs->more) {
        uint64_t v = 0;
        if (now - cs->last_version_check >= c->idle_poll_ms || woken) {
            cs->last_version_check = now;
            if (aspen_store_data_version(eng->claim_store, &v, &se) == 0) {
                if (!cs->have_version || v != cs->last_version)
                    cs->more = true;
                cs->last_version = v;
                cs->have_version = true;
            }
        }
        if (now >= cs->next_claim || woken)
            cs->more = true;
    }
    if (!cs->more)
        return false;
    atomic_store(&eng->claiming, 1);
    if (atomic_load(&eng->stopping)) {
        atomic_store(&eng->claiming, 0);
        return false;
    }
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    bool paused = false;
    size_t want = target - qlen;
    int rc = aspen_store_claim(eng->claim_store, atomic_load(&eng->engine_id), want,
                               aspen_store_now_ms(), &jobs, &n, &paused, &se);
    cs->next_claim = now + 1000;
    int64_t retry_in = 0;
    aspen_store_claim_held(eng->claim_store, &cs->held, &retry_in);
    if (retry_in > 0 && retry_in < 1000)
        cs->next_claim = now + retry_in; /* a rate's share comes free then */
    if (rc) {
        /* ELEASE: the dispatcher's renew notices within a second and handles it */
        if (rc != ASPEN_STORE_ELEASE && !store_failure(eng, rc, "claiming jobs", &se) &&
            !eng_outage(eng, "claiming jobs", &se, 1000))
            engine_message(eng, "claiming jobs failed (will retry): %s", se.msg);
        cs->more = false;
    } else {
        cs->more = n == want; /* a full batch: there may be more right away */
        if (n) {
            atomic_fetch_add(&eng->c_claimed, n);
            if (queue_push_many(eng, jobs, n, atomic_load(&eng->engine_id)) != 0)
                engine_message(eng, "out of memory queueing claimed jobs: their reservations "
                                    "lapse when this engine stops");
        }
    }
    aspen_store_jobs_free(jobs, n);
    atomic_store(&eng->claiming, 0);
    return n > 0;
}

/* ---- the claimer (PostgreSQL) ---------------------------------------------------------------- */

/* Wakes the claimer for a claim now; one signal until it has looked. */
static void claimer_kick(aspen_engine *eng)
{
    if (atomic_exchange(&eng->c_kick, 1))
        return;
    pthread_mutex_lock(&eng->c_mu);
    pthread_cond_signal(&eng->c_cond);
    pthread_mutex_unlock(&eng->c_mu);
}

void eng_want_claim(aspen_engine *eng)
{
    if (eng->claimer_on) {
        claimer_kick(eng);
        return;
    }
    if (!atomic_exchange(&eng->need_claim, 1)) {
        pthread_mutex_lock(&eng->d_mu);
        pthread_cond_signal(&eng->d_cond);
        pthread_mutex_unlock(&eng->d_mu);
    }
}

/* What the store thread tells the claim state after each group it wrote (or failed to): how long
 * groups take (the prefetch window follows it) and whether finished jobs freed slots of a limited
 * queue. With a claimer both go to it, and it is woken: the queue may want a refill. */
static void group_done(aspen_engine *eng, struct claim_state *cs, bool freed)
{
    if (!eng->claimer_on) {
        if (freed && cs->held)
            cs->more = true; /* finished jobs freed slots of a limited queue */
        return;
    }
    atomic_store(&eng->c_busy_ms, cs->busy_ms);
    if (freed)
        atomic_store(&eng->c_freed, 1);
    claimer_kick(eng);
}

/* The claimer thread (PostgreSQL): claim_more and give_back_stale on the claims' own connection,
 * the calls the store thread makes itself on SQLite. On one connection a claim waited for the
 * group commit before it (its statements and its fsync) and the next commit for the claim: the
 * store thread's statement chain was the engine's limit on a quiet machine (docs/BENCHMARKS.md,
 * "The engine on PostgreSQL"). Here a claim runs while a commit is in flight. It claims when a
 * worker finds the queue low (eng_want_claim), after each group commit, when a submit or an
 * announcement wakes the engine (eng_wake), and otherwise every commit_busy_ms while jobs run
 * (the store thread looked about once a group) or idle_poll_ms while idle. Looking every
 * commit_interval_ms made claims twice as many and half as big, and the engine no faster than
 * with one connection (docs/BENCHMARKS.md, "Claims on a connection of their own"). The
 * invariants are claim_more's: jobs enter the ready queue only once their claim committed; claims
 * wait while group commits fail (store_failing) and stop with the engine (stopping). */
static void *claimer_main(void *arg)
{
    aspen_engine *eng = arg;
    pthread_setname_np(pthread_self(), "aspen-claim");
    eng_thread_nice_boost(ENG_STORE_NICE_BOOST); /* it feeds the workers, as the store thread */
    struct claim_state cs = {.more = true, .claimer = true};
    while (!atomic_load(&eng->stopping)) {
        atomic_store(&eng->c_kick, 0);
        if (atomic_exchange(&eng->c_freed, 0) && cs.held)
            cs.more = true; /* finished jobs freed slots of a limited queue */
        cs.busy_ms = atomic_load(&eng->c_busy_ms);
        bool got = false;
        if (!atomic_load(&eng->store_failing) && !atomic_load(&eng->fatal)) {
            give_back_stale(eng, &cs, eng_mono_ms());
            got = claim_more(eng, &cs);
        }
        if (got)
            continue; /* a claim that got jobs may be followed by more at once */
        bool busy = atomic_load(&eng->running_jobs) > 0 || atomic_load(&eng->q_ready) > 0;
        struct timespec ts;
        eng_abs_deadline(&ts, busy ? eng->cfg.commit_busy_ms : eng->cfg.idle_poll_ms);
        pthread_mutex_lock(&eng->c_mu);
        while (!atomic_load(&eng->c_kick) && !atomic_load(&eng->stopping))
            if (pthread_cond_timedwait(&eng->c_cond, &eng->c_mu, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&eng->c_mu);
    }
    return NULL;
}

void eng_thread_nice_boost(int boost)
{
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0)
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice_now - boost);
}

/* Backoff between attempts to write a group that failed (disk full, locked, I/O). */
/* The store thread: the engine's only writer of reservations, start marks and completions, so
 * they never wait on each other's SQLite write lock (a busy wait there starved the workers). On
 * PostgreSQL, where row locks let two connections write at once, the reservations are the
 * claimer's (claimer_main) and this thread's calls of claim_more and give_back_stale return at
 * once.
 * Completions and start marks are kept until a commit holding them succeeds: a failing store
 * (disk full) is retried with backoff, claims wait meanwhile, and nothing is dropped unless the
 * error is permanent (engine_fatal) or the engine stops while the store still fails. */
static void *committer_main(void *arg)
{
    aspen_engine *eng = arg;
    pthread_setname_np(pthread_self(), "aspen-store");
    /* This thread alone feeds every worker: when the cores are short, whoever takes the CPU from
     * it starves the workers of jobs a few milliseconds later. So it runs ENG_STORE_NICE_BOOST
     * above the process's priority (Linux: per thread) where that is allowed (root or
     * CAP_SYS_NICE; otherwise it stays as it is). It needs at most one core and sleeps when idle.
     * Measured on a loaded machine (docs/BENCHMARKS.md): bench engine median 4,100 -> 5,500
     * jobs/s. */
    eng_thread_nice_boost(ENG_STORE_NICE_BOOST);
    struct commit_buf b = {0};
    struct claim_state cs = {.more = true};
    struct eng_done *pending = NULL, **ptail = &pending;
    size_t plen = 0;
    struct eng_start *starts = NULL;
    size_t n_starts = 0, cap_starts = 0;
    int fails = 0;
    int64_t retry_at = 0, failing_since = 0, last_msg = 0, group_due = 0, group_opened = 0,
            topup_at = 0;
    unsigned long long dry_at_open = 0;
    bool held = false;
    for (;;) {
        if (!fails)
            eng_metrics_tick(eng, eng->metrics, false);
        int64_t now = eng_mono_ms();
        if (!atomic_load(&eng->stopping) && !fails) {
            give_back_stale(eng, &cs, now);
            claim_more(eng, &cs);
        }
        /* a retention batch the pruner handed over (SQLite), between group commits; it commits
         * early when a claim is wanted, and that claim goes first */
        if (!fails) {
            eng_store_prune_serve(eng);
            if (atomic_load(&eng->need_claim) && !atomic_load(&eng->stopping))
                claim_more(eng, &cs);
        }

        pthread_mutex_lock(&eng->d_mu);
        if (fails) {
            /* Failing: wait out the backoff (stop and new work do not shorten it). */
            struct timespec ts;
            int64_t left = retry_at - eng_mono_ms();
            if (left > 0 && !eng->d_stop) {
                eng_abs_deadline(&ts, (int)left);
                while (!eng->d_stop)
                    if (pthread_cond_timedwait(&eng->d_cond, &eng->d_mu, &ts) == ETIMEDOUT)
                        break;
            }
        } else {
            /* Wait for completions, starts, a low queue, or the idle poll. */
            if (!eng->d_head && !eng->n_starts && !pending && !eng->d_stop && !eng->prune_req) {
                struct timespec ts;
                eng_abs_deadline(&ts, eng->cfg.idle_poll_ms);
                while (!eng->d_head && !eng->n_starts && !eng->d_stop &&
                       !atomic_load(&eng->need_claim) && !eng->prune_req)
                    if (pthread_cond_timedwait(&eng->d_cond, &eng->d_mu, &ts) == ETIMEDOUT)
                        break;
            }
            /* Group: a group opens with its first item and is written commit_interval_ms later
             * (or once commit_batch completions wait). Workers running dry meanwhile get a claim
             * without closing the group: a queue that empties often (the prefetch is small on
             * purpose) must not turn every group commit into a tiny one. */
            if ((eng->d_head || eng->n_starts) && !group_due) {
                group_opened = eng_mono_ms();
                group_due = eng_group_close_ms(group_opened, eng->cfg.commit_interval_ms,
                                               eng->cfg.commit_busy_ms, false);
                dry_at_open = atomic_load(&eng->q_dry);
                held = false;
            }
            while (group_due && eng->d_len < eng->cfg.commit_batch && !eng->d_stop) {
                if (atomic_exchange(&eng->need_claim, 0)) {
                    pthread_mutex_unlock(&eng->d_mu);
                    if (!atomic_load(&eng->stopping))
                        claim_more(eng, &cs);
                    pthread_mutex_lock(&eng->d_mu);
                    continue;
                }
                /* Held past the interval (saturated, see eng_group_close_ms) only while it
                 * lasts: a worker that finds the queue empty, completions that hold
                 * ENG_HOLD_MAX_BYTES, or the engine stopping close the group now. */
                bool saturated = atomic_load(&eng->q_dry) == dry_at_open &&
                                 atomic_load(&eng->q_ready) > 0 &&
                                 atomic_load(&eng->d_bytes) < ENG_HOLD_MAX_BYTES &&
                                 !atomic_load(&eng->stopping);
                if (held && !saturated)
                    break;
                int64_t t = eng_mono_ms(), left = group_due - t;
                if (held && left > 0 && t >= topup_at) {
                    /* The claim each group's end would have made (the loop's top claims once a
                     * group): a held group must not wait for the queue to run dry first — the
                     * workers' low-water call comes only at claim_batch or at empty, and under a
                     * prefetch smaller than claim_batch only at empty, which ends the hold with
                     * workers idle (docs/BENCHMARKS.md: a loaded set without this top-up). */
                    topup_at = t + eng->cfg.commit_interval_ms;
                    pthread_mutex_unlock(&eng->d_mu);
                    claim_more(eng, &cs);
                    pthread_mutex_lock(&eng->d_mu);
                    continue;
                }
                if (left <= 0 && !held && saturated) {
                    int64_t due = eng_group_close_ms(group_opened, eng->cfg.commit_interval_ms,
                                                     eng->cfg.commit_busy_ms, true);
                    if (due > group_due) {
                        held = true;
                        group_due = due;
                        topup_at = t;
                        continue;
                    }
                }
                if (left <= 0)
                    break;
                if (held && topup_at - t < left)
                    left = topup_at - t > 0 ? topup_at - t : 1;
                struct timespec ts;
                eng_abs_deadline(&ts, (int)left);
                /* timed out: the loop's top decides between closing and holding the group */
                (void)pthread_cond_timedwait(&eng->d_cond, &eng->d_mu, &ts);
            }
            if (group_due && held)
                atomic_fetch_add(&eng->c_commits_held, 1);
            group_due = 0;
            held = false;
        }
        atomic_store(&eng->need_claim, 0);
        bool stop = eng->d_stop;
        if (!eng->d_head && !eng->n_starts && !pending && stop) {
            pthread_mutex_unlock(&eng->d_mu);
            break;
        }
        /* Take what arrived: completions after the pending ones, starts after the pending ones
         * (a job's start is always taken no later than its completion). */
        if (eng->d_head) {
            *ptail = eng->d_head;
            ptail = eng->d_tail;
            plen += eng->d_len;
            eng->d_head = NULL;
            eng->d_tail = &eng->d_head;
            eng->d_len = 0;
        }
        if (eng->n_starts) {
            if (n_starts + eng->n_starts > cap_starts) {
                size_t cap = (n_starts + eng->n_starts) * 2;
                struct eng_start *grown = realloc(starts, cap * sizeof *grown);
                if (grown) {
                    starts = grown;
                    cap_starts = cap;
                }
            }
            if (n_starts + eng->n_starts <= cap_starts) {
                memcpy(starts + n_starts, eng->starts, eng->n_starts * sizeof *starts);
                n_starts += eng->n_starts;
            } /* else: out of memory; those jobs are marked started by their completions */
            eng->n_starts = 0;
        }
        pthread_mutex_unlock(&eng->d_mu);
        /* live lines first: any of them belongs to a job whose completion, if it is in `list`,
         * was queued after them */
        bool live_ok = write_live_logs(eng);
        if (!pending && !n_starts)
            continue;
        if (!live_ok && !stop) /* a job's earlier lines first: retry them, then commit */
            continue;
        now = eng_mono_ms();
        if (fails && now < retry_at && !stop)
            continue;

        /* claim first when the workers are about to run dry: the commit can wait 1 ms */
        if (!atomic_load(&eng->stopping) && !fails)
            claim_more(eng, &cs);
        int rc = atomic_load(&eng->fatal) ? ASPEN_STORE_EIO
                                          : commit_group(eng, pending, starts, n_starts, &b);
        {
            /* the prefetch window follows how long groups take (see prefetch_size) */
            double took = (double)(eng_mono_ms() - now);
            cs.busy_ms = cs.busy_ms == 0 ? took : 0.7 * cs.busy_ms + 0.3 * took;
        }
        group_done(eng, &cs, rc == 0 && pending);
        bool drop = rc == 0 || atomic_load(&eng->fatal);
        if (rc == ASPEN_STORE_EFULL) {
            /* The log may be what fills the disk: copy it into the database and cut it back, so
             * the retry has room as soon as anything is freed. */
            aspen_store_error ce = {0};
            aspen_store_checkpoint(eng->commit_store, &ce);
        }
        if (rc && !drop) {
            if (!fails++)
                failing_since = last_msg = now;
            atomic_store(&eng->store_failing, 1);
            retry_at = now + commit_backoff_ms(fails);
            if (now - last_msg >= 10000 && !atomic_load(&eng->outage)) {
                /* (an outage was said once by eng_outage, and its end will be) */
                last_msg = now;
                engine_message(eng, "still cannot write %zu finished jobs after %lld s (retrying; "
                                    "nothing is lost)",
                               plen, (long long)((now - failing_since) / 1000));
            }
            /* Stopping with the database unreachable (an outage, not a full disk): the commit
             * just made its one reconnect attempt (store_give_up) and failed; retrying until
             * the grace ran out was a busy loop of connects that only delayed the exit. */
            bool unreachable = atomic_load(&eng->outage) != 0;
            if (stop && unreachable) {
                size_t n_rel = 0;
                for (const struct eng_done *d = pending; d; d = d->next)
                    n_rel += d->release;
                engine_message(eng, "could not record what %zu jobs did (%zu results, %zu "
                                    "interrupted at stop): the database is unreachable. They "
                                    "stay running under this engine's lease and are run again "
                                    "by another engine, or the next worker on this database, "
                                    "once it expires",
                               plen, plen - n_rel, n_rel);
                drop = true;
            } else if (stop && now - failing_since >= eng->cfg.shutdown_grace_ms) {
                engine_message(eng, "stopping with %zu finished jobs unwritten: the store still "
                                    "fails; those jobs stay running and are recovered once this "
                                    "engine's lease lapses",
                               plen);
                drop = true;
            }
        } else if (rc == 0 && fails) {
            engine_message(eng, "the store accepts writes again: %zu finished jobs written after "
                                "%lld ms of failures",
                           plen, (long long)(now - failing_since));
            fails = 0;
            atomic_store(&eng->store_failing, 0);
        }
        if (!drop)
            continue;
        while (pending) {
            struct eng_done *next = pending->next;
            eng_done_free(pending);
            pending = next;
        }
        ptail = &pending;
        n_starts = 0;
        pthread_mutex_lock(&eng->d_mu);
        eng->d_committed += plen;
        pthread_cond_broadcast(&eng->d_flushed);
        pthread_mutex_unlock(&eng->d_mu);
        plen = 0;
        if (drop && rc) {
            fails = 0;
            atomic_store(&eng->store_failing, 0);
        }
    }
    eng_metrics_tick(eng, eng->metrics, true); /* what this engine finished, before it goes */
    free(starts);
    free(b.c);
    free(b.d);
    free(b.status);
    free(b.states);
    free(b.logs);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------------- */

int aspen_engine_start(aspen_engine *eng, aspen_engine_error *err)
{
    if (eng->started)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "the engine is already started");
    if (eng->cfg.workers == 0)
        return 0; /* a client: nothing to run */
    int code;
    aspen_store_error se = {0};
    aspen_vm_error ve = {0};
    if (aspen_vm_check_kvm(&ve) != 0)
        return eng_err(err, ASPEN_ENGINE_EKVM, "%s", ve.msg);
    if (aspen_store_open(eng->db_path, &eng->store_opts, &eng->disp_store, &se) != 0)
        return eng_store_err(err, &se, "opening the dispatcher's connection");
    if (aspen_store_open(eng->db_path, &eng->store_opts, &eng->commit_store, &se) != 0) {
        code = eng_store_err(err, &se, "opening the committer's connection");
        goto close_disp;
    }
    /* The retention batches the store thread runs for the pruner (SQLite) end when a claim is
     * wanted (retention.c). */
    aspen_store_prune_yield_set(eng->commit_store, eng_store_prune_yield, eng);
    /* On PostgreSQL the claims get a connection of their own, used by the claimer thread, so
     * that they do not wait in line behind the group commits (claimer_main). */
    eng->claim_store = eng->commit_store;
    eng->claimer_on = false;
    if (aspen_store_name_is_postgres(eng->db_path)) {
        if (aspen_store_open(eng->db_path, &eng->store_opts, &eng->claim_store, &se) != 0) {
            eng->claim_store = eng->commit_store;
            code = eng_store_err(err, &se, "opening the claimer's connection");
            goto close_commit;
        }
        eng->claimer_on = true;
    }
    /* The claims serve only the configured queues (checked at open). */
    if (aspen_store_serve_queues(eng->claim_store, eng->cfg.queues, eng->cfg.n_queues, &se) != 0) {
        code = eng_store_err(err, &se, "choosing the queues to serve");
        goto close_commit;
    }
    int64_t now = aspen_store_now_ms();
    aspen_store_recovery rep = {0};
    if (aspen_store_recover(eng->disp_store, now, &rep, &se) != 0) {
        code = eng_store_err(err, &se, "recovering jobs of dead engines");
        goto close_commit;
    }
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    int64_t id = 0;
    int64_t registered_mono = eng_mono_ms(); /* before the call: the lease runs from then at least */
    if (aspen_store_engine_register(eng->disp_store, getpid(), host, eng->cfg.lease_ms, now, &id,
                                    &se) != 0) {
        code = eng_store_err(err, &se, "registering the engine");
        goto close_commit;
    }
    atomic_store(&eng->engine_id, id);
    atomic_store(&eng->lease_renewed_mono, registered_mono);

    eng->n_workers = eng->cfg.workers;
    eng->workers = calloc((size_t)eng->n_workers, sizeof *eng->workers);
    if (!eng->workers) {
        code = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory for workers");
        goto unregister;
    }
    for (int i = 0; i < eng->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        w->eng = eng;
        w->index = i;
        w->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)now ^ (uint64_t)getpid();
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->live_cond, NULL);
        w->st.index = i;
        snprintf(w->st.state, sizeof w->st.state, "idle");
    }
    eng->started = true;
    eng->metrics = eng_metrics_new(); /* NULL (out of memory): no metrics history, jobs run */
    if (pthread_create(&eng->committer_th, NULL, committer_main, eng) != 0) {
        code = eng_err(err, ASPEN_ENGINE_ETHREAD, "cannot start the committer thread");
        goto stop_threads;
    }
    eng->committer_started = true;
    if (eng->claimer_on) {
        if (pthread_create(&eng->claimer_th, NULL, claimer_main, eng) != 0) {
            code = eng_err(err, ASPEN_ENGINE_ETHREAD, "cannot start the claimer thread");
            goto stop_threads;
        }
        eng->claimer_started = true;
    }
    for (int i = 0; i < eng->n_workers; i++) {
        if (pthread_create(&eng->workers[i].th, NULL, eng_worker_main, &eng->workers[i]) != 0) {
            code = eng_err(err, ASPEN_ENGINE_ETHREAD, "cannot start worker thread %d", i);
            goto stop_threads;
        }
        eng->workers[i].started = true;
    }
    if (pthread_create(&eng->dispatcher_th, NULL, dispatcher_main, eng) != 0) {
        code = eng_err(err, ASPEN_ENGINE_ETHREAD, "cannot start the dispatcher thread");
        goto stop_threads;
    }
    eng->dispatcher_started = true;
    eng_listener_start(eng);
    eng_scheduler_start(eng);
    eng_pruner_start(eng);
    if (rep.requeued || rep.failed || rep.cancelled)
        engine_message(eng, "recovery at start: %lld requeued, %lld failed, %lld cancelled",
                       (long long)rep.requeued, (long long)rep.failed, (long long)rep.cancelled);
    return 0;

stop_threads:
    aspen_engine_stop(eng, 0, NULL); /* joins what started, unregisters, closes connections */
    return code;
unregister:
    aspen_store_engine_unregister(eng->disp_store, id, aspen_store_now_ms(), NULL, NULL);
    atomic_store(&eng->engine_id, 0);
close_commit:
    if (eng->claim_store != eng->commit_store)
        aspen_store_close(eng->claim_store);
    aspen_store_close(eng->commit_store);
    eng->commit_store = eng->claim_store = NULL;
    eng->claimer_on = false;
close_disp:
    aspen_store_close(eng->disp_store);
    eng->disp_store = NULL;
    return code;
}

void aspen_engine_stop_request(aspen_engine *eng)
{
    if (eng)
        atomic_store(&eng->store_give_up, 1);
}

int aspen_engine_stop(aspen_engine *eng, int grace_ms, aspen_engine_error *err)
{
    if (!eng->started || eng->stopped)
        return 0;
    eng->stopped = true;
    if (grace_ms < 0)
        grace_ms = eng->cfg.shutdown_grace_ms;
    /* Every call below may find the database away; none may wait out a reconnect backoff (the
     * bound of a stop is the jobs' grace plus one connect attempt per call). */
    atomic_store(&eng->store_give_up, 1);
    atomic_store(&eng->stopping, 1);
    eng_pruner_stop(eng);
    eng_listener_stop(eng);
    eng_scheduler_stop(eng); /* gives the scheduler lease back while still registered */
    pthread_mutex_lock(&eng->h_mu);
    pthread_cond_broadcast(&eng->h_cond);
    pthread_mutex_unlock(&eng->h_mu);
    if (eng->dispatcher_started)
        pthread_join(eng->dispatcher_th, NULL);
    if (eng->claimer_started) { /* a claim in flight lands in the queue, then it stops */
        claimer_kick(eng);
        pthread_join(eng->claimer_th, NULL);
        eng->claimer_started = false;
    }
    while (atomic_load(&eng->claiming)) /* a claim in flight lands in the queue, then stops */
        sleep_ms(1);

    /* Jobs reserved but not started: their reservations go back at once (they never stopped
     * being queued; nothing was charged). */
    size_t n;
    struct eng_job **all = queue_take_all(eng, &n);
    int64_t engine_id = atomic_load(&eng->engine_id);
    int64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
    size_t n_ids = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids && all[i]->engine_id == engine_id)
            ids[n_ids++] = all[i]->row.id;
        job_free(all[i]);
    }
    free(all);
    if (n_ids && !atomic_load(&eng->fatal))
        aspen_store_unclaim(eng->disp_store, engine_id, ids, n_ids, NULL);
    free(ids); /* (unregister below gives back whatever is left) */
    pthread_mutex_lock(&eng->q_mu);
    eng->q_closed = true;
    pthread_cond_broadcast(&eng->q_nonempty);
    pthread_mutex_unlock(&eng->q_mu);

    /* Running jobs get the grace period, then their VMs are stopped and the jobs released. */
    int64_t until = eng_mono_ms() + grace_ms;
    while (atomic_load(&eng->running_jobs) > 0 && eng_mono_ms() < until)
        sleep_ms(5);
    for (int i = 0; i < eng->n_workers; i++)
        eng_worker_interrupt(&eng->workers[i], CANCEL_SHUTDOWN);
    for (int i = 0; i < eng->n_workers; i++)
        if (eng->workers[i].started)
            pthread_join(eng->workers[i].th, NULL);

    /* Flush every completion, then leave. */
    if (eng->committer_started) {
        pthread_mutex_lock(&eng->d_mu);
        eng->d_stop = true;
        pthread_cond_broadcast(&eng->d_cond);
        pthread_mutex_unlock(&eng->d_mu);
        pthread_join(eng->committer_th, NULL);
    }
    int code = 0;
    aspen_store_error se = {0};
    int64_t released = 0;
    if (engine_id && aspen_store_engine_unregister(eng->disp_store, engine_id,
                                                   aspen_store_now_ms(), &released, &se) != 0 &&
        se.code != ASPEN_STORE_ENOTFOUND)
        code = eng_store_err(err, &se,
                             se.disconnected
                                 ? "could not unregister the engine, the database is unreachable "
                                   "(its lease expires by itself and its jobs are then "
                                   "recovered)"
                                 : "unregistering the engine");
    atomic_store(&eng->engine_id, 0);
    for (int i = 0; i < eng->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        if (w->sticky)
            vm_pool_release(&eng->pool, w->sticky);
        w->sticky = NULL;
        aspen_store_close(w->store);
        w->store = NULL;
        aspen_vm_tape_free(w->tape);
        w->tape = NULL;
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->live_cond);
    }
    aspen_store_close(eng->disp_store);
    if (eng->claim_store != eng->commit_store)
        aspen_store_close(eng->claim_store);
    aspen_store_close(eng->commit_store);
    eng->disp_store = eng->commit_store = eng->claim_store = NULL;
    return code;
}

/* ---- waiting, snapshot -------------------------------------------------------------------------- */

static int eng_all_busy(aspen_engine *eng, bool include_scheduled, int64_t *busy,
                        aspen_engine_error *err)
{
    int64_t counts[ASPEN_STORE_STATE_COUNT];
    int rc = aspen_engine_counts(eng, counts, err);
    if (rc == 0)
        *busy = counts[ASPEN_STORE_QUEUED] + counts[ASPEN_STORE_RUNNING] +
                (include_scheduled ? counts[ASPEN_STORE_SCHEDULED] : 0);
    return rc;
}

/* An engine told to serve some queues (--queues) is idle when those are empty: jobs of queues it
 * will never claim must not keep `aspen worker --queues a --until-idle` running for ever. */
static int eng_served_busy(aspen_engine *eng, bool include_scheduled, int64_t *busy,
                           aspen_engine_error *err)
{
    aspen_store_error se = {0};
    aspen_store_queue_info *q = NULL;
    size_t n = 0;
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_queues(eng->api_store, aspen_store_now_ms(), &q, &n, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc != 0)
        return eng_store_err(err, &se, "reading the queues this engine serves");
    *busy = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < eng->cfg.n_queues; k++)
            if (strcmp(q[i].name, eng->cfg.queues[k]) == 0)
                *busy += q[i].queued + q[i].running +
                         (include_scheduled ? q[i].scheduled : 0);
    aspen_store_queues_free(q);
    return 0;
}

int aspen_engine_wait_idle(aspen_engine *eng, int timeout_ms, bool include_scheduled,
                           aspen_engine_error *err)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : eng_mono_ms() + timeout_ms;
    for (;;) {
        if (atomic_load(&eng->fatal))
            return eng_err(err, ASPEN_ENGINE_ESTORE, "the engine stopped: %s", eng->fatal_msg);
        int64_t busy = 0;
        aspen_engine_error e = {0};
        int rc = eng->cfg.n_queues ? eng_served_busy(eng, include_scheduled, &busy, &e)
                                   : eng_all_busy(eng, include_scheduled, &busy, &e);
        if (rc && e.disconnected) {
            /* The database is away (a server restart): not a reason to stop waiting, nor for
             * `aspen worker` to exit — the engine keeps reconnecting and says so once. */
            aspen_store_error se = {.code = e.store_code, .disconnected = true};
            snprintf(se.msg, sizeof se.msg, "%s", e.msg);
            eng_outage(eng, NULL, &se, 100); /* (e.msg names what it was doing) */
            if (eng_mono_ms() >= until)
                return 1;
            sleep_ms(100);
            continue;
        }
        if (rc) {
            if (err)
                *err = e;
            return rc;
        }
        eng_outage_over(eng);
        pthread_mutex_lock(&eng->d_mu);
        bool flushed = eng->d_committed == eng->d_enqueued;
        pthread_mutex_unlock(&eng->d_mu);
        if (busy == 0 && flushed)
            return 0;
        if (eng_mono_ms() >= until)
            return 1;
        sleep_ms(10);
    }
}

/* The snapshot's outage fields from the engine's (eng_outage). */
static void snapshot_outage(aspen_engine *eng, aspen_engine_snapshot *out)
{
    out->reconnecting = atomic_load(&eng->outage) != 0;
    out->reconnecting_since_ms = out->reconnecting ? atomic_load(&eng->outage_since_ms) : 0;
    out->reconnect_tries = out->reconnecting ? atomic_load(&eng->outage_tries) : 0;
}

int aspen_engine_snapshot_get(aspen_engine *eng, aspen_engine_snapshot *out,
                              aspen_engine_error *err)
{
    aspen_engine_snapshot_live(eng, out);
    aspen_store_error se = {0};
    int rc = 0;
    pthread_mutex_lock(&eng->api_mu);
    if (aspen_store_counts(eng->api_store, out->counts, &se) != 0 ||
        aspen_store_oldest_waiting(eng->api_store, aspen_store_now_ms(), &out->oldest_waiting_ms,
                                   &se) != 0 ||
        aspen_store_paused(eng->api_store, &out->paused, &se) != 0)
        rc = eng_store_err(err, &se, "reading the queue's state");
    pthread_mutex_unlock(&eng->api_mu);
    /* A client engine (the console's stats handle) has no service threads: its own reads are
     * how it learns the database went away and came back. */
    if (rc)
        eng_outage(eng, "reading the queue's state", &se, 1000);
    else
        eng_outage_over(eng);
    snapshot_outage(eng, out);
    return rc;
}

void aspen_engine_snapshot_live(aspen_engine *eng, aspen_engine_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->engine_id = atomic_load(&eng->engine_id);
    out->n_workers = eng->started ? eng->n_workers : 0;
    for (int i = 0; i < out->n_workers; i++) {
        struct eng_worker *w = &eng->workers[i];
        if (eng->stopped) {
            out->workers[i] = w->st;
            continue;
        }
        pthread_mutex_lock(&w->mu);
        out->workers[i] = w->st;
        pthread_mutex_unlock(&w->mu);
    }
    aspen_engine_throughput *t = &out->throughput;
    snapshot_outage(eng, out);
    t->claimed = atomic_load(&eng->c_claimed);
    t->finished = atomic_load(&eng->c_finished);
    t->succeeded = atomic_load(&eng->c_succeeded);
    t->failed = atomic_load(&eng->c_failed);
    t->retried = atomic_load(&eng->c_retried);
    t->cancelled = atomic_load(&eng->c_cancelled);
    t->timeouts = atomic_load(&eng->c_timeouts);
    t->commits = atomic_load(&eng->c_commits);
    t->commits_held = atomic_load(&eng->c_commits_held);
    t->notify_wakes = atomic_load(&eng->c_notify_wakes);
    t->jobs_per_s = atomic_load(&eng->jobs_per_s);
    t->queue_depth = queue_len(eng);
    vm_pool_stats(&eng->pool, t);
    t->builds = atomic_load(&eng->builds);
    t->build_cache_hits = atomic_load(&eng->build_hits);
}

/* ---- cancel through this engine (used by api.c) ------------------------------------------------- */

void eng_cancel_local(aspen_engine *eng, int64_t id)
{
    if (eng->started && !eng->stopped)
        cancel_local(eng, id);
}

void eng_wake(aspen_engine *eng)
{
    if (!eng->started || eng->stopped)
        return;
    atomic_store(&eng->wake_dispatcher, 1);
    if (eng->claimer_on) {
        claimer_kick(eng);
        return;
    }
    atomic_store(&eng->need_claim, 1);
    pthread_mutex_lock(&eng->d_mu);
    pthread_cond_signal(&eng->d_cond);
    pthread_mutex_unlock(&eng->d_mu);
}
