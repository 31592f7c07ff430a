/* engine/retention.c — the engine's retention pruner: a thread with its own store handle that,
 * every retention_poll_ms, reads the database's retention settings (aspen_store_retention_get)
 * and deletes the finished jobs of each final state that are past them, in small transactions
 * (retention_batch jobs, 500 by default) with a pause after each.
 *
 * Never stalling the queue: on SQLite a prune transaction holds the database's write lock, which
 * the engine's store thread needs for every claim and group commit. So a batch is small (a few
 * milliseconds), and after each the pruner sleeps at least twice as long as the batch took (and
 * at least 20 ms): it never holds the lock more than a third of the time, and the store thread's
 * claims and commits, which wait at most one batch, go on between batches. On PostgreSQL a batch
 * locks only its own rows (SKIP LOCKED), and the pause keeps its I/O from crowding the queue.
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
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define PRUNE_PAUSE_MIN_MS 20

static double mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Sleeps up to ms; false when told to stop. */
static bool nap(aspen_engine *eng, int ms)
{
    struct pollfd p = {.fd = eng->prune_pipe[0], .events = POLLIN};
    int n = poll(&p, 1, ms);
    if (n < 0 && errno != EINTR)
        return false;
    return !p.revents && !atomic_load(&eng->stopping);
}

/* One look: every final state past its retention, batch after batch until one comes back short. */
static bool prune_pass(aspen_engine *eng, aspen_store_error *se, bool *complained)
{
    aspen_store_retention r;
    if (aspen_store_retention_get(eng->prune_store, &r, se) != 0)
        goto failed;
    static const aspen_store_state finals[] = {ASPEN_STORE_SUCCEEDED, ASPEN_STORE_FAILED,
                                               ASPEN_STORE_CANCELLED};
    for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
        int64_t keep = r.keep_ms[finals[i]];
        if (keep <= 0)
            continue; /* off: kept forever */
        for (;;) {
            int64_t now = aspen_store_now_ms(), deleted = 0;
            double t0 = mono_ms();
            if (aspen_store_prune(eng->prune_store, finals[i], now - keep,
                                  (size_t)eng->cfg.retention_batch, &deleted, se) != 0)
                goto failed;
            double took = mono_ms() - t0;
            *complained = false;
            pthread_mutex_lock(&eng->prune_mu);
            eng->prune_stats.pruned += deleted;
            eng->prune_stats.batches += deleted > 0;
            if (took > eng->prune_stats.max_batch_ms)
                eng->prune_stats.max_batch_ms = took;
            pthread_mutex_unlock(&eng->prune_mu);
            if (deleted < eng->cfg.retention_batch)
                break;
            int pause = (int)(2 * took) + 1;
            if (!nap(eng, pause < PRUNE_PAUSE_MIN_MS ? PRUNE_PAUSE_MIN_MS : pause))
                return false;
        }
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
    if (aspen_store_open(eng->db_path, NULL, &eng->prune_store, &se) != 0)
        return; /* no pruning here; jobs run on */
    if (pipe2(eng->prune_pipe, O_CLOEXEC) != 0)
        goto close;
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
        pthread_join(eng->prune_th, NULL);
        close(eng->prune_pipe[0]);
        close(eng->prune_pipe[1]);
        eng->prune_started = false;
    }
    aspen_store_close(eng->prune_store);
    eng->prune_store = NULL;
}

void aspen_engine_retention_stats_get(aspen_engine *eng, aspen_engine_retention_stats *out)
{
    pthread_mutex_lock(&eng->prune_mu);
    *out = eng->prune_stats;
    pthread_mutex_unlock(&eng->prune_mu);
}
