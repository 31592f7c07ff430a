/* engine/listen.c — the engine's waiter for new work. On a store that announces new work
 * (PostgreSQL: LISTEN/NOTIFY; aspen_store_wait_fd gives a descriptor) a thread with its own store
 * handle sleeps in poll() on that descriptor and wakes the store thread (eng_wake) the moment a
 * job becomes claimable on any host, rather than at the store thread's next look at the data
 * version or its once-a-second claim. On SQLite there is no descriptor and no thread: reading
 * PRAGMA data_version there is a shared-memory read, and the store thread polls it. */
#include "engine_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

/* How long one wait lasts at most; stop does not wait for it (the pipe wakes it). */
#define LISTEN_POLL_MS 1000

static void *listener_main(void *arg)
{
    aspen_engine *eng = arg;
    pthread_setname_np(pthread_self(), "aspen-listen");
    aspen_store_error se = {0};
    bool complained = false;
    while (!atomic_load(&eng->stopping)) {
        int fd = -1;
        int rc = aspen_store_wait_fd(eng->listen_store, &fd, &se);
        struct pollfd p[2] = {{.fd = eng->listen_pipe[0], .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        if (rc && eng_outage(eng, "waiting for new work", &se, LISTEN_POLL_MS))
            complained = true; /* said once as the outage (eng_outage) */
        if (rc && !complained && eng_wants(eng, ASPEN_ENGINE_EV_ENGINE)) {
            /* Not fatal: the store thread still polls; said once per outage. */
            char msg[700];
            snprintf(msg, sizeof msg, "waiting for new work failed (will retry; claims go on): %s",
                     se.msg);
            aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1, .outcome = -1,
                                     .message = msg};
            eng_emit(eng, &ev);
            complained = true;
        }
        int n = poll(p, rc || fd < 0 ? 1 : 2, LISTEN_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break; /* stop */
        if (rc || fd < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        bool woken = false;
        if (aspen_store_notified(eng->listen_store, &woken, &se) != 0)
            continue; /* the next wait_fd reconnects, or complains */
        complained = false;
        if (woken) {
            atomic_fetch_add(&eng->c_notify_wakes, 1);
            eng_wake(eng);
        }
    }
    return NULL;
}

void eng_listener_start(aspen_engine *eng)
{
    aspen_store_error se = {0};
    int fd = -1;
    if (aspen_store_open(eng->db_path, &eng->store_opts, &eng->listen_store, &se) != 0)
        return; /* the store thread polls instead */
    if (aspen_store_wait_fd(eng->listen_store, &fd, &se) != 0 || fd < 0 ||
        pipe2(eng->listen_pipe, O_CLOEXEC) != 0)
        goto close;
    if (pthread_create(&eng->listen_th, NULL, listener_main, eng) != 0) {
        close(eng->listen_pipe[0]);
        close(eng->listen_pipe[1]);
        goto close;
    }
    eng->listen_started = true;
    return;
close:
    aspen_store_close(eng->listen_store);
    eng->listen_store = NULL;
}

void eng_listener_stop(aspen_engine *eng)
{
    if (eng->listen_started) {
        ssize_t w = write(eng->listen_pipe[1], "x", 1);
        (void)w;
        pthread_join(eng->listen_th, NULL);
        close(eng->listen_pipe[0]);
        close(eng->listen_pipe[1]);
        eng->listen_started = false;
    }
    aspen_store_close(eng->listen_store);
    eng->listen_store = NULL;
}
