/* pg_host.c — one "host" of the many-hosts test (test_engine_pg_hosts.c): an engine on a PostgreSQL
 * database with the lease, renewal and recovery periods the test chooses (aspen worker has no
 * flags for them), running until SIGTERM. Prints "engine ID" on stdout once started, and the
 * engine's messages (recovery, lost lease, store errors) on stderr with the wall clock in ms.
 * Usage: pg_host CONNINFO WORKERS LEASE_MS RECOVER_MS CACHE_DIR */
#include "aspen_engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_event(const aspen_engine_event *ev, void *user)
{
    (void)user;
    if (ev->message)
        fprintf(stderr, "%lld pg_host[%d]: %s\n", (long long)aspen_store_now_ms(), (int)getpid(),
                ev->message);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: pg_host CONNINFO WORKERS LEASE_MS RECOVER_MS CACHE_DIR\n");
        return 2;
    }
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = argv[1];
    cfg.workers = atoi(argv[2]);
    cfg.lease_ms = atoll(argv[3]);
    cfg.renew_ms = (int)(cfg.lease_ms / 5);
    cfg.recover_ms = atoi(argv[4]);
    cfg.cache_dir = argv[5];
    cfg.shutdown_grace_ms = 2000;
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0) {
        fprintf(stderr, "pg_host: open: %s\n", err.msg);
        return 1;
    }
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_ENGINE, on_event, NULL);
    if (aspen_engine_start(eng, &err) != 0) {
        fprintf(stderr, "pg_host: start: %s\n", err.msg);
        aspen_engine_close(eng);
        return 1;
    }
    aspen_engine_snapshot snap;
    aspen_engine_snapshot_live(eng, &snap);
    printf("engine %lld\n", (long long)snap.engine_id);
    fflush(stdout);
    while (!stop)
        usleep(20000);
    aspen_engine_stop(eng, -1, &err);
    aspen_engine_close(eng);
    return 0;
}
