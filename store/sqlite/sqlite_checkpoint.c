/* sqlite_checkpoint.c — the SQLite backend's WAL checkpoints, off the writing thread.
 *
 * By default SQLite checkpoints inside the COMMIT that pushes the write-ahead log past 1000 pages:
 * that commit copies the log into the database file and waits for two fsyncs. For the engine's
 * store thread that meant a group commit of 20–100 ms now and then, during which it could not
 * claim, and both workers ran out of jobs (docs/BENCHMARKS.md). So a writable handle registers its
 * own WAL hook instead: past CKPT_PAGES it wakes a checkpointer thread of its own, which runs a
 * PASSIVE checkpoint on a second connection. PASSIVE takes no write lock: the handle keeps
 * committing while the copy and the fsyncs happen, and SQLite restarts the log from its start once
 * a checkpoint has copied all of it. Durability is unchanged (WAL, synchronous=NORMAL: a commit is
 * in the log when COMMIT returns, safe from a crash of the process though not from one of the
 * machine; the checkpoint only moves it into the main file, with the fsyncs SQLite always does).
 *
 * The thread starts on the first checkpoint a handle needs (a handle that never writes 1000 pages
 * never starts one) and is joined by sq_close. If it cannot be started (or its connection cannot
 * be opened), the hook checkpoints inline, as SQLite would have. */
#include "sqlite_store.h"

#include <stdlib.h>

#define CKPT_PAGES 1000 /* SQLite's own default autocheckpoint threshold */
/* A log this long means the checkpointer never caught up (each of its runs found new commits
 * behind it, so the log could not start over): the writer then checkpoints inline, once, with no
 * commit of its own in flight, and the log restarts at its next write. */
#define CKPT_INLINE_PAGES (4 * CKPT_PAGES)

/* On the writer's own connection, after its commit: nothing of its own in flight, so the copy can
 * reach the end of the log. A checkpoint of the thread's in progress would make it fail (one
 * checkpointer at a time): wait for that one to end first. */
static void checkpoint_inline(struct sqlite_store *s)
{
    struct store_checkpointer *c = &s->ckpt;
    int64_t t0 = store_thread_cpu_us();
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        while (c->running)
            pthread_cond_wait(&c->cv, &c->mu);
        c->running = true;
        pthread_mutex_unlock(&c->mu);
    }
    int log = 0, done = 0;
    (void)sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->running = false;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    c->inline_us += store_thread_cpu_us() - t0;
}

static void *checkpointer_main(void *arg)
{
    struct sqlite_store *s = arg;
    struct store_checkpointer *c = &s->ckpt;
    pthread_setname_np(pthread_self(), "aspen-ckpt"); /* not its creator's name in ps/top */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while ((!c->want || c->running) && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->want = false;
        c->running = true;
        pthread_mutex_unlock(&c->mu);
        int log = 0, done = 0;
        /* BUSY (another process checkpointing) is fine: the log gets copied either way */
        (void)sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        pthread_mutex_lock(&c->mu);
        c->running = false;
        pthread_cond_broadcast(&c->cv);
        c->runs++;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Starts the thread and its connection; false if either cannot be had. */
static bool checkpointer_start(struct sqlite_store *s)
{
    struct store_checkpointer *c = &s->ckpt;
    if (c->failed)
        return false;
    int rc = sqlite3_open_v2(s->base.name, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close_v2(c->db);
        c->db = NULL;
        c->failed = true;
        return false;
    }
    sq_busy_install(c->db, &c->busy, s->busy_timeout_ms);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->th, NULL, checkpointer_main, s) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        sqlite3_close_v2(c->db);
        c->db = NULL;
        c->failed = true;
        return false;
    }
    c->started = true;
    return true;
}

static int wal_hook(void *arg, sqlite3 *db, const char *dbname, int pages)
{
    (void)db;
    (void)dbname;
    struct sqlite_store *s = arg;
    struct store_checkpointer *c = &s->ckpt;
    c->log_pages = pages;
    if (pages < CKPT_PAGES)
        return SQLITE_OK;
    if (pages >= CKPT_INLINE_PAGES || (!c->started && !checkpointer_start(s))) {
        checkpoint_inline(s);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&c->mu);
    c->want = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

void store_checkpointer_init(struct sqlite_store *s)
{
    sqlite3_wal_hook(s->db, wal_hook, s);
}

void store_checkpointer_stop(struct sqlite_store *s)
{
    struct store_checkpointer *c = &s->ckpt;
    if (!c->started)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->th, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    sqlite3_close_v2(c->db);
    c->db = NULL;
    c->started = false;
}

uint64_t store_checkpointer_runs(struct sqlite_store *s)
{
    struct store_checkpointer *c = &s->ckpt;
    if (!c->started)
        return 0;
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}
