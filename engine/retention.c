/* engine/retention.c — the engine's retention pruner: a thread that, every retention_poll_ms,
 * reads the database's retention settings (aspen_store_retention_get) and deletes the finished
 * jobs of each final state that are past them, in small transactions with a pause after each.
 *
 * Never stalling the queue: on SQLite a prune transaction holds the database's write lock, which
 * the engine's store thread needs for every claim and group commit. When the pruner had its own
 * connection, a claim that found the lock held slept in SQLite's busy handler, and however the
 * batches were sized, paced, prioritised or checkpointed, the claim p99 stayed 2-4x the p99
 * without a pruner (docs/BENCHMARKS.md: six levers measured, the waits counted). So on SQLite
 * the pruner no longer writes: it hands each batch to the store thread (store_thread_batch), which
 * runs it on its own handle between group commits (eng_store_prune_serve) — one writer, nothing
 * waits for a lock between the two. A claim wanted mid-batch (a submit's wake, the workers'
 * low-water call) ends the batch after the job it is deleting (eng_store_prune_yield through
 * aspen_store_prune_yield_set), and the store thread claims next. The batch is bounded by time too:
 *   - its size follows the last batches' measured speed, aiming at PRUNE_TARGET_MS a batch
 *     (between PRUNE_BATCH_MIN and retention_batch jobs), and
 *   - the store stops the batch itself once it has held the lock PRUNE_BUDGET_MS
 *     (aspen_store_prune_timed), for the batch the estimate got wrong (the group commits and other
 *     processes' engines wait for it), or as soon as another connection of the process (a submit)
 *     waits for the lock (sqlite_busy.c).
 * After each batch the pruner sleeps at least twice as long as the batch took (and at least
 * PRUNE_PAUSE_MIN_MS): prunes take at most a third of the store thread's time, and its claims and
 * commits go on between batches. On PostgreSQL a batch locks only its own rows (SKIP LOCKED) and
 * is one statement the store cannot stop half-way, so there the pruner runs it on its own
 * connection and the size alone keeps it short — aiming at PRUNE_TARGET_PG_MS, longer than
 * SQLite's because a claim never waits for those rows (at 4 ms a batch was a round trip and 16
 * jobs, and a million took most of an hour) — and the pause keeps its I/O from crowding the queue.
 *
 * Several engines on one database: every engine with workers prunes, and that is safe without a
 * lease, because a prune is idempotent and small: on SQLite two pruners' batches are serialised by
 * the write lock and the second finds only what the first left; on PostgreSQL concurrent batches
 * skip each other's locked rows and take disjoint jobs. Nothing is deleted twice and nothing is
 * waited for; a lease would only add a row every engine must renew. */
#include "engine_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* The least pause after a batch: with batches of a few ms, twice the hold is already enough for
 * the store thread's claims and commits to get in; 20 ms (the old floor) made a million jobs take
 * most of an hour on a loaded host. */
#define PRUNE_PAUSE_MIN_MS 5
/* What a batch aims at and the most the store lets it hold the lock: a claim of another process
 * behind a batch waits about this (plus the busy handler's 200 µs step); one of this process ends
 * the batch at once (sqlite_busy.c). */
#define PRUNE_TARGET_MS 4
#define PRUNE_BUDGET_MS 6
/* The same run by the store thread itself (SQLite): while it runs a batch it claims nothing, and
 * a claim wanted meanwhile waits for the deletes' commit, which the bound counts (the store
 * estimates it from the jobs deleted so far, sqlite_prune.c): about 1 ms keeps that under the queue's own group commits'
 * spread (claim p99 1-5 ms without a pruner here). */
#define PRUNE_TARGET_STORE_MS 1
#define PRUNE_BUDGET_STORE_MS 2
/* A write-ahead log this long after a batch means its checkpoints are not catching up (the
 * prune writes 5-8 pages a job): pause longer, so they do before the log reaches the mark at
 * which a commit checkpoints inline (sqlite_checkpoint.c), 10-30 ms of the store thread's time. */
#define PRUNE_LOG_LONG_PAGES 2000
#define PRUNE_LOG_PAUSE_MS 20
#define PRUNE_TARGET_PG_MS 25
/* The smallest batch: below this the transactions' own cost (BEGIN, COMMIT, the index seek)
 * dominates and a million jobs would take hours. */
#define PRUNE_BATCH_MIN 16
/* A purge with no live engine on the database (aspen_engine_prune_paced): no claim waits for the
 * lock, so the batch aims at a size whose transaction cost is negligible, and nothing pauses; the
 * budget still ends a batch the estimate got wrong, so an engine that starts meanwhile waits at
 * most that (and the next check, within PRUNE_ALONE_RECHECK_MS, paces the purge again). */
#define PRUNE_ALONE_TARGET_MS 100
#define PRUNE_ALONE_BUDGET_MS 150
#define PRUNE_ALONE_CAP ASPEN_STORE_PRUNE_MAX
#define PRUNE_ALONE_RECHECK_MS 1000

/* Sleeps up to ms; false when told to stop. */
static bool nap(aspen_engine *eng, int ms)
{
    struct pollfd p = {.fd = eng->prune_pipe[0], .events = POLLIN};
    int n = poll(&p, 1, ms);
    if (n < 0 && errno != EINTR)
        return false;
    return !p.revents && !atomic_load(&eng->stopping);
}

/* The next batch's size from the last one's: the jobs it would delete in target_ms at the
 * speed just measured, halfway from the current size (one slow batch — a checkpoint, a page-cache
 * miss — moves it only halfway), within [PRUNE_BATCH_MIN, cap]. */
static size_t next_batch(size_t cur, int64_t deleted, double took_ms, double target_ms, size_t cap)
{
    double want = (double)cur * 2; /* instant batch: grow */
    if (deleted > 0 && took_ms > 0.05)
        want = (double)deleted * target_ms / took_ms;
    double next = ((double)cur + want) / 2;
    if (next > (double)cap)
        next = (double)cap;
    if (next < PRUNE_BATCH_MIN)
        next = PRUNE_BATCH_MIN;
    return cap < PRUNE_BATCH_MIN ? cap : (size_t)next;
}

/* One state's prune, batch after batch until one says none are left or `after` says stop: each
 * batch sized from the last ones' measured hold (next_batch, *batch carries it from call to call)
 * and bounded in the store by PRUNE_BUDGET_MS on SQLite. The pruner thread's loop and `aspen
 * purge`'s (aspen_engine_prune_paced) are this one loop, so a purge run beside busy engines never
 * stalls their queue either. mu (may be NULL) is held around each batch and only then: a handle
 * shared with other callers is theirs between batches. 0 done or stopped (p->stopped), -1 (se). */
/* How a prune shares the database: paced (a queue is being served) or alone (no live engine on
 * the database: nothing waits for the lock, so big batches and no pause). Read before each batch:
 * aspen_engine_prune_paced's callback flips it when an engine starts or stops meanwhile. */
typedef struct prune_pace {
    bool alone;
} prune_pace;

/* Where a batch runs: on handle s (mu, if not NULL, held around it), or — via set, SQLite with the
 * engine's store thread running — handed to that thread to run on its own handle. */
typedef struct prune_runner {
    aspen_store *s;
    pthread_mutex_t *mu;
    aspen_engine *via;
} prune_runner;

/* The batch handed to the store thread (eng_store_prune_serve runs it) and waited for. One slot:
 * a second poster (a purge beside the pruner) waits for it to be free. If the engine stops before
 * the store thread took the batch, it is withdrawn and reported as stopped (*stopped), nothing
 * deleted; a batch already taken is waited for (it is short). */
static int store_thread_batch(aspen_engine *eng, aspen_store_state state, int64_t before,
                              size_t max, int64_t budget_us, aspen_store_prune_result *res,
                              bool *stopped, aspen_store_error *se)
{
    struct eng_prune_req r = {.state = state, .before_ms = before, .max = max,
                              .budget_us = budget_us};
    struct timespec ts;
    pthread_mutex_lock(&eng->d_mu);
    while (eng->prune_req && !atomic_load(&eng->stopping)) {
        eng_abs_deadline(&ts, 1000);
        pthread_cond_timedwait(&eng->prune_done, &eng->d_mu, &ts);
    }
    if (!atomic_load(&eng->stopping)) {
        eng->prune_req = &r;
        pthread_cond_signal(&eng->d_cond); /* the store thread may be in its idle wait */
    }
    while (eng->prune_req == &r || (r.taken && !r.done)) {
        if (atomic_load(&eng->stopping) && !r.taken) {
            eng->prune_req = NULL;
            break;
        }
        eng_abs_deadline(&ts, 1000); /* eng_pruner_stop broadcasts; this bounds a missed wake */
        pthread_cond_timedwait(&eng->prune_done, &eng->d_mu, &ts);
    }
    pthread_mutex_unlock(&eng->d_mu);
    if (!r.done) {
        *stopped = true;
        return 0;
    }
    *res = r.res;
    if (r.rc)
        *se = r.se;
    return r.rc;
}

void eng_store_prune_serve(aspen_engine *eng)
{
    pthread_mutex_lock(&eng->d_mu);
    struct eng_prune_req *r = eng->prune_req;
    if (r) {
        eng->prune_req = NULL;
        r->taken = true;
    }
    pthread_mutex_unlock(&eng->d_mu);
    if (!r)
        return;
    aspen_store_prune_result res = {0};
    aspen_store_error se = {0};
    int rc = aspen_store_prune_timed(eng->commit_store, r->state, r->before_ms, r->max,
                                     r->budget_us, &res, &se);
    pthread_mutex_lock(&eng->d_mu);
    r->res = res;
    r->se = se;
    r->rc = rc;
    r->done = true; /* r is the poster's: not touched after this */
    pthread_cond_broadcast(&eng->prune_done);
    pthread_mutex_unlock(&eng->d_mu);
}

bool eng_store_prune_yield(void *arg)
{
    aspen_engine *eng = arg;
    return atomic_load(&eng->need_claim) || atomic_load(&eng->stopping);
}

static int run_batch(const prune_runner *run, aspen_store_state state, int64_t before, size_t max,
                     int64_t budget_us, aspen_store_prune_result *res, bool *stopped,
                     aspen_store_error *se)
{
    if (run->via)
        return store_thread_batch(run->via, state, before, max, budget_us, res, stopped, se);
    if (run->mu)
        pthread_mutex_lock(run->mu);
    int rc = aspen_store_prune_timed(run->s, state, before, max, budget_us, res, se);
    if (run->mu)
        pthread_mutex_unlock(run->mu);
    return rc;
}

static int paced_state(const prune_runner *run, bool pg, size_t cap, size_t *batch,
                       aspen_store_state state, int64_t before, aspen_engine_prune_fn after,
                       void *ctx, const prune_pace *pace, aspen_engine_prune_progress *p,
                       aspen_store_error *se)
{
    for (;;) {
        bool alone = pace && pace->alone;
        double target = alone       ? PRUNE_ALONE_TARGET_MS
                        : pg        ? PRUNE_TARGET_PG_MS
                        : run->via  ? PRUNE_TARGET_STORE_MS
                                    : PRUNE_TARGET_MS;
        int budget_ms = alone ? PRUNE_ALONE_BUDGET_MS
                        : run->via ? PRUNE_BUDGET_STORE_MS
                                   : PRUNE_BUDGET_MS;
        size_t top = alone && cap < PRUNE_ALONE_CAP ? PRUNE_ALONE_CAP : cap;
        if (!alone && *batch > cap)
            *batch = cap; /* an engine came back: paced sizes again at once */
        /* the store thread's batches are bounded by their time alone (the store counts the
         * commit to come), so they ask for the most: a size learnt from wall times would shrink
         * to the floor after each commit the file system held up */
        size_t want = run->via && !alone ? cap : *batch;
        aspen_store_prune_result res = {0};
        bool stopped = false;
        int rc = run_batch(run, state, before, want, (int64_t)budget_ms * 1000, &res, &stopped,
                           se);
        if (rc != 0)
            return -1;
        if (stopped) {
            p->stopped = true;
            return 0;
        }
        /* what the queue felt: the time the batch held the lock, not the time it waited for it
         * behind the engines' own commits (that would shrink the batch for nothing) */
        double held = (double)res.held_us / 1000;
        /* an empty look says nothing of speed: only a batch that deleted moves the size */
        if (res.deleted > 0)
            *batch = next_batch(want, res.deleted, held, target, top);
        p->batch_deleted = res.deleted;
        p->deleted += res.deleted;
        p->batches += res.deleted > 0;
        p->last_batch_ms = held;
        if (held > p->max_batch_ms)
            p->max_batch_ms = held;
        p->batch_size = (int64_t)*batch;
        p->more = res.more;
        /* the pause: at least twice the hold, so the prune holds the lock at most a third of the
         * time and the queue's claims and commits go on between batches */
        int pause = (int)(2 * held) + 1;
        if (pause < PRUNE_PAUSE_MIN_MS)
            pause = PRUNE_PAUSE_MIN_MS;
        if (res.log_pages >= PRUNE_LOG_LONG_PAGES && pause < PRUNE_LOG_PAUSE_MS)
            pause = PRUNE_LOG_PAUSE_MS;
        if (alone)
            pause = 1; /* > 0 says "more follow" to the callback; nobody waits for the lock */
        else if (res.more)
            /* give the lock's waiters the CPU at once (2 cores shared by many: the store thread
             * may not be running yet); the callback then sleeps the pause */
            sched_yield();
        bool go_on = after(ctx, p, res.more ? pause : 0);
        if (!res.more)
            return 0;
        if (!go_on) {
            p->stopped = true;
            return 0;
        }
    }
}

/* The pruner thread's callback: its stats, said live (the bench and the console read them while
 * a million jobs go), and the pause, cut short when the engine stops. */
typedef struct pruner_ctx {
    aspen_engine *eng;
    bool *complained;
} pruner_ctx;

static bool pruner_after(void *arg, const aspen_engine_prune_progress *p, int pause_ms)
{
    pruner_ctx *c = arg;
    aspen_engine *eng = c->eng;
    *c->complained = false;
    pthread_mutex_lock(&eng->prune_mu);
    eng->prune_stats.pruned += p->batch_deleted;
    eng->prune_stats.batches += p->batch_deleted > 0;
    eng->prune_stats.batch_size = p->batch_size;
    if (p->last_batch_ms > eng->prune_stats.max_batch_ms)
        eng->prune_stats.max_batch_ms = p->last_batch_ms;
    pthread_mutex_unlock(&eng->prune_mu);
    return pause_ms <= 0 || nap(eng, pause_ms);
}

/* One look: every final state past its retention, batch after batch until one says none are left. */
static bool prune_pass(aspen_engine *eng, aspen_store_error *se, bool *complained)
{
    aspen_store_retention r;
    if (aspen_store_retention_get(eng->prune_store, &r, se) != 0)
        goto failed;
    static const aspen_store_state finals[] = {ASPEN_STORE_SUCCEEDED, ASPEN_STORE_FAILED,
                                               ASPEN_STORE_CANCELLED};
    bool pg = aspen_store_name_is_postgres(eng->db_path);
    pruner_ctx ctx = {.eng = eng, .complained = complained};
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
        int64_t keep = r.keep_ms[finals[i]];
        if (keep <= 0)
            continue; /* off: kept forever */
        aspen_engine_prune_progress p = {0};
        /* SQLite: the store thread runs the batches on its own handle (one writer) */
        prune_runner run = {.s = eng->prune_store, .via = pg ? NULL : eng};
        if (paced_state(&run, pg, (size_t)eng->cfg.retention_batch,
                        &eng->prune_batch, finals[i], aspen_store_now_ms() - keep, pruner_after,
                        &ctx, NULL, &p, se) != 0)
            goto failed;
        if (p.stopped)
            return false;
    }
    return true;
failed:
    if (eng_outage(eng, "retention", se, PRUNE_PAUSE_MIN_MS)) {
        *complained = true; /* said once as the outage */
        return true;
    }
    if (aspen_store_error_permanent(se->code) || !*complained) {
        /* Not fatal for the engine: jobs run on; said once per outage. */
        char msg[700];
        snprintf(msg, sizeof msg, "retention: pruning finished jobs failed (will retry): %s",
                 se->msg);
        aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1, .outcome = -1,
                                 .message = msg};
        if (eng_wants(eng, ASPEN_ENGINE_EV_ENGINE))
            eng_emit(eng, &ev);
        *complained = true;
    }
    return true;
}

static void *pruner_main(void *arg)
{
    aspen_engine *eng = arg;
    pthread_setname_np(pthread_self(), "aspen-prune");
    /* No priority boost: on SQLite the store thread (boosted) runs the batches, this thread only
     * sizes and paces them; PostgreSQL's batches lock only their own rows, which no claim waits
     * for. */
    aspen_store_error se = {0};
    bool complained = false;
    /* The first look soon after start (a restarted engine catches up), then every poll. */
    int wait = eng->cfg.retention_poll_ms < 1000 ? eng->cfg.retention_poll_ms : 1000;
    while (nap(eng, wait)) {
        pthread_mutex_lock(&eng->prune_mu);
        eng->prune_stats.last_run_ms = aspen_store_now_ms();
        pthread_mutex_unlock(&eng->prune_mu);
        if (!prune_pass(eng, &se, &complained))
            break;
        wait = eng->cfg.retention_poll_ms;
    }
    return NULL;
}

void eng_pruner_start(aspen_engine *eng)
{
    if (eng->n_workers <= 0 || eng->cfg.retention_poll_ms < 0 || eng->cfg.retention_batch <= 0)
        return;
    aspen_store_error se = {0};
    if (aspen_store_open(eng->db_path, &eng->store_opts, &eng->prune_store, &se) != 0)
        return; /* no pruning here; jobs run on */
    if (pipe2(eng->prune_pipe, O_CLOEXEC) != 0)
        goto close;
    /* start small: the first batch measures the speed, the next ones follow it */
    eng->prune_batch = (size_t)eng->cfg.retention_batch < PRUNE_BATCH_MIN * 2
                           ? (size_t)eng->cfg.retention_batch
                           : PRUNE_BATCH_MIN * 2;
    if (pthread_create(&eng->prune_th, NULL, pruner_main, eng) != 0) {
        close(eng->prune_pipe[0]);
        close(eng->prune_pipe[1]);
        goto close;
    }
    eng->prune_started = true;
    return;
close:
    aspen_store_close(eng->prune_store);
    eng->prune_store = NULL;
}

void eng_pruner_stop(aspen_engine *eng)
{
    if (eng->prune_started) {
        ssize_t w = write(eng->prune_pipe[1], "x", 1);
        (void)w;
        /* a batch waiting for the store thread sees `stopping` now (store_thread_batch) */
        pthread_mutex_lock(&eng->d_mu);
        pthread_cond_broadcast(&eng->prune_done);
        pthread_mutex_unlock(&eng->d_mu);
        pthread_join(eng->prune_th, NULL);
        close(eng->prune_pipe[0]);
        close(eng->prune_pipe[1]);
        eng->prune_started = false;
    }
    aspen_store_close(eng->prune_store);
    eng->prune_store = NULL;
}

/* A caller without a callback still pauses between batches (the queue's share of the lock). */
static bool plain_pause(void *ctx, const aspen_engine_prune_progress *p, int pause_ms)
{
    (void)ctx;
    (void)p;
    struct timespec t = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    while (pause_ms > 0 && nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
    return true;
}

/* Whether any engine other than this one is live on the database (a stale one serves nothing).
 * Unknown (the read failed) counts as not alone: the paced way is always safe. */
static bool others_live(aspen_engine *eng)
{
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_engines(eng->api_store, aspen_store_now_ms(), &list, &n, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc != 0)
        return true;
    int64_t self = aspen_engine_id(eng);
    bool live = false;
    for (size_t i = 0; i < n && !live; i++)
        live = !list[i].stale && list[i].id != self;
    aspen_store_engines_free(list);
    return live || eng->n_workers > 0; /* this engine's own workers are a queue too */
}

/* The caller's callback, with the pace re-read about once a second between batches. */
typedef struct paced_ctx {
    aspen_engine *eng;
    aspen_engine_prune_fn after;
    void *ctx;
    prune_pace pace;
    int64_t checked_ms;
} paced_ctx;

static bool paced_after(void *arg, const aspen_engine_prune_progress *p, int pause_ms)
{
    paced_ctx *c = arg;
    int64_t now = aspen_store_now_ms();
    if (p->more && now - c->checked_ms >= PRUNE_ALONE_RECHECK_MS) {
        c->pace.alone = !others_live(c->eng);
        c->checked_ms = now;
    }
    return c->after(c->ctx, p, pause_ms);
}

int aspen_engine_prune_paced(aspen_engine *eng, aspen_store_state state,
                             int64_t finished_before_ms, aspen_engine_prune_fn after, void *ctx,
                             aspen_engine_prune_progress *progress, aspen_engine_error *err)
{
    aspen_engine_prune_progress local = {0};
    aspen_engine_prune_progress *p = progress ? progress : &local;
    size_t cap = eng->cfg.retention_batch > 0 ? (size_t)eng->cfg.retention_batch : 500;
    /* the size measured by an earlier call (another state) goes on; a first call starts small */
    size_t batch = p->batch_size > 0 ? (size_t)p->batch_size
                   : cap < PRUNE_BATCH_MIN * 2 ? cap
                                               : PRUNE_BATCH_MIN * 2;
    p->stopped = false;
    aspen_store_error se = {0};
    paced_ctx pc = {.eng = eng, .after = after ? after : plain_pause, .ctx = ctx,
                    .pace = {.alone = !others_live(eng)}, .checked_ms = aspen_store_now_ms()};
    p->alone = pc.pace.alone;
    /* with this engine's store thread running on SQLite, the batches go to it like the pruner's */
    bool pg = aspen_store_name_is_postgres(eng->db_path);
    prune_runner run = {.s = eng->api_store, .mu = &eng->api_mu,
                        .via = !pg && eng->committer_started ? eng : NULL};
    if (paced_state(&run, pg, cap, &batch, state, finished_before_ms, paced_after, &pc, &pc.pace, p, &se) != 0)
        return eng_store_err(err, &se, NULL);
    return 0;
}

void aspen_engine_retention_stats_get(aspen_engine *eng, aspen_engine_retention_stats *out)
{
    pthread_mutex_lock(&eng->prune_mu);
    *out = eng->prune_stats;
    pthread_mutex_unlock(&eng->prune_mu);
}
