/* sqlite_busy.c — how an SQLite connection of the store waits for a lock another connection holds
 * (issue 10: claim latency while the retention pruner runs).
 *
 * sqlite3_busy_timeout's handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between
 * tries. The engine's write lock is held for a few ms at a time (a group commit, a prune batch
 * bounded at 6 ms), so a claim that found it held by a 4 ms batch slept 10-25 ms and more — after
 * the lock was long free again — and that sleep, not the batch, was the claim's p99. So the store's
 * connections wait with short sleeps while a wait is young (SQ_BUSY_FAST_US), when the lock is
 * most likely held by a short transaction, then back off to longer sleeps, as a lock held for
 * seconds (another process's long transaction, a stopped process) deserves no busy polling.
 *
 * A waiter is also seen: each wait's tries leave their time in last_wait_us, so a time-bounded
 * prune batch of the same process (sqlite_prune.c) commits as soon as another connection — the
 * engine's store thread, wanting to claim — waits for its lock, instead of running out its 4-6 ms
 * (SQLite itself cannot tell a lock holder that someone waits). Waiters in other processes are not
 * seen; for them the batch's time bound still holds.
 *
 * The total is unchanged: the wait ends with SQLITE_BUSY once busy_timeout_ms have passed (on the
 * monotonic clock, not SQLite's sum of intended sleeps, which a loaded host oversleeps), and the
 * caller says so with store_sqlite_err's "locked ... for more than N ms" message. */
#include "sqlite_store.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

int64_t sq_busy_delay_us(int count, int64_t waited_us, int64_t timeout_us)
{
    if (count < 0 || waited_us < 0 || waited_us >= timeout_us)
        return -1;
    int64_t d;
    if (waited_us < SQ_BUSY_FAST_US) {
        /* SQ_BUSY_FIRST_US, doubled per try up to SQ_BUSY_STEP_US */
        d = SQ_BUSY_FIRST_US;
        for (int i = 0; i < count && d < SQ_BUSY_STEP_US; i++)
            d *= 2;
        if (d > SQ_BUSY_STEP_US)
            d = SQ_BUSY_STEP_US;
    } else {
        /* a quarter of the wait so far: a lock held this long is unlikely to go in µs */
        d = waited_us / 4;
        if (d > SQ_BUSY_MAX_US)
            d = SQ_BUSY_MAX_US;
    }
    /* the last sleep ends at the timeout, so the give-up comes on time */
    if (d > timeout_us - waited_us)
        d = timeout_us - waited_us;
    return d;
}

/* The last lock wait in this process, for sq_busy_other_waiting: when and whose (a connection's
 * sq_busy). Two relaxed atomics, not one record: a torn pair at worst ends one prune batch early
 * or late by one job. */
static _Atomic int64_t last_wait_us;
static _Atomic(const struct sq_busy *) last_waiter;

bool sq_busy_other_waiting(const struct sq_busy *self)
{
    int64_t at = atomic_load_explicit(&last_wait_us, memory_order_relaxed);
    if (at == 0 || store_mono_us() - at > SQ_BUSY_WAITING_US)
        return false;
    return atomic_load_explicit(&last_waiter, memory_order_relaxed) != self;
}

/* SQLite's busy callback: count is 0 on the first call of each new wait. */
static int busy_wait(void *arg, int count)
{
    struct sq_busy *b = arg;
    int64_t now = store_mono_us();
    atomic_store_explicit(&last_waiter, b, memory_order_relaxed);
    atomic_store_explicit(&last_wait_us, now, memory_order_relaxed);
    if (count == 0)
        b->since_us = now;
    int64_t d = sq_busy_delay_us(count, now - b->since_us, (int64_t)b->timeout_ms * 1000);
    if (d < 0)
        return 0; /* SQLITE_BUSY to the caller */
    struct timespec t = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
    return 1;
}

void sq_busy_install(sqlite3 *db, struct sq_busy *b, int timeout_ms)
{
    b->timeout_ms = timeout_ms;
    b->since_us = 0;
    sqlite3_busy_handler(db, busy_wait, b);
}
