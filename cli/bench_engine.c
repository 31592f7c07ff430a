/* cli/bench_engine.c — `aspen bench engine`: the whole job engine's throughput, measured.
 *
 * N echo jobs are submitted in bulk (batches of 1,000 per transaction) to a fresh database, then
 * the engine starts with W workers (--live: it starts first and the jobs are submitted while it
 * runs); each job runs in its own micro-VM run from a warm snapshot (the guest test-quiet-echo, or
 * --guest), and its result, attempt row and state are written by the engine's group commits. A job
 * counts as finished when the committer tells subscribers its final state, i.e. after the
 * transaction holding it committed (SQLite: WAL, synchronous=NORMAL, durable across a crash of
 * the process; PostgreSQL: the server's COMMIT, as durable as its fsync and synchronous_commit
 * make it; "durability" in --json says which). Printed:
 *   jobs_per_s             N / (last job committed − engine start)   (--live: − first submit)
 *   end_to_end_jobs_per_s  N / (last job committed − first submit began)
 *   p50_ms, p99_ms         per job, its submit call began → its result committed (queueing
 *                          behind the other N included: all are submitted at once)
 * Then the store is asked how many jobs succeeded: all N must have, or the benchmark fails.
 * --json also gives the engine's CPU per job by thread role (store thread, workers, checkpointer,
 * the rest), read from /proc/self/task while the threads still run: where a job's time goes.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

struct bench_state {
    int64_t first_id;
    size_t n;
    double *finish_us;
    atomic_size_t done;
    atomic_size_t bad;
};

/* The temporary database directory of a run without --db, removed on every exit: at the end, and
 * on SIGINT, SIGTERM or SIGHUP (a bench stopped with ^C, a timeout, a closed terminal) by the
 * handler below, which then dies of the signal as it would have. Only async-signal-safe calls
 * (unlink, rmdir, signal, raise) on paths built before the run. */
#define BENCH_DB_FILES 4
static char bench_dir[PATH_MAX], bench_files[BENCH_DB_FILES][PATH_MAX + 32];

static void bench_remove_dir(void)
{
    for (int i = 0; i < BENCH_DB_FILES; i++)
        if (bench_files[i][0])
            unlink(bench_files[i]);
    if (bench_dir[0])
        rmdir(bench_dir);
}

static void bench_on_signal(int sig)
{
    bench_remove_dir();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A signal the bench was started ignoring (SIGINT of a background job, nohup's SIGHUP) stays
 * ignored: it would not have stopped the bench before either. */
static void bench_catch(int sig)
{
    if (signal(sig, bench_on_signal) == SIG_IGN)
        signal(sig, SIG_IGN);
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* CPU time of this process's threads by role (Linux /proc/self/task: the engine names its
 * threads aspen-store, aspen-workerN, aspen-ckpt); all zero where /proc cannot be read. */
enum { ROLE_STORE, ROLE_WORKERS, ROLE_CKPT, ROLE_OTHER, ROLE_COUNT };

static void thread_cpu_us(double out[ROLE_COUNT])
{
    for (int i = 0; i < ROLE_COUNT; i++)
        out[i] = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    long hz = sysconf(_SC_CLK_TCK);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[64], buf[512];
        snprintf(p, sizeof p, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces, so parse after ')' */
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close < open)
            continue;
        unsigned long long ut = 0, st = 0;
        if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            continue;
        *close = '\0';
        const char *comm = open + 1;
        int role = strcmp(comm, "aspen-store") == 0          ? ROLE_STORE
                   : strncmp(comm, "aspen-worker", 12) == 0 ? ROLE_WORKERS
                   : strcmp(comm, "aspen-ckpt") == 0        ? ROLE_CKPT
                                                            : ROLE_OTHER;
        if (hz > 0)
            out[role] += (double)(ut + st) * 1e6 / (double)hz;
    }
    closedir(d);
}

static void on_event(const aspen_engine_event *ev, void *user)
{
    struct bench_state *b = user;
    if (ev->type != ASPEN_ENGINE_EV_JOB_STATE || !aspen_store_state_is_final(ev->state))
        return;
    int64_t k = ev->job_id - b->first_id;
    if (b->first_id == 0 || k < 0 || (size_t)k >= b->n)
        return;
    b->finish_us[k] = cli_now_us();
    if (ev->state != ASPEN_STORE_SUCCEEDED)
        atomic_fetch_add(&b->bad, 1);
    atomic_fetch_add(&b->done, 1);
}

int bench_engine(int argc, char **argv)
{
    static const struct option opts[] = {
        {"jobs", required_argument, 0, 'n'},  {"workers", required_argument, 0, 'w'},
        {"json", no_argument, 0, 'j'},        {"guest", required_argument, 0, 'g'},
        {"db", required_argument, 0, 'D'},    {"help", no_argument, 0, 'h'},
        {"live", no_argument, 0, 'l'},
        {0, 0, 0, 0},
    };
    long n = 20000;
    long long v;
    int workers = 2, c;
    bool as_json = false, live = false;
    const char *guest = NULL, *db = NULL;
    optind = 1;
    /* cli_getopt: the same "did you mean" as every other command's options */
    while ((c = cli_getopt(argc, argv, "n:w:jg:D:lh", opts, "bench engine")) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_num("--jobs", optarg, 1, 100000000, &v))
                return 2;
            n = (long)v;
            break;
        case 'w':
            if (cli_parse_num("--workers", optarg, 1, ASPEN_ENGINE_MAX_WORKERS, &v))
                return 2;
            workers = (int)v;
            break;
        case 'j': as_json = true; break;
        case 'g': guest = optarg; break;
        case 'D': db = optarg; break;
        case 'l': live = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr,
                    "usage: aspen bench engine [--jobs N] [--workers N] [--guest NAME] "
                    "[--db PATH] [--live] [--json]\n"
                    "  a fresh database in a temporary directory unless --db names one\n"
                    "  jobs are all submitted, then the engine starts (jobs_per_s: its run);\n"
                    "  --live starts the engine first and submits while it runs\n");
            return c == 'h' ? 0 : 2;
        }
    }
    char path[PATH_MAX], msg[1024];
    if (!guest) {
        guest = cli_resolve_guest("test-quiet-echo", path, sizeof path, msg, sizeof msg) == 0
                    ? "test-quiet-echo"
                    : "echo-worker";
    }
    if (cli_resolve_guest(guest, path, sizeof path, msg, sizeof msg) != 0) {
        cli_error("%s", msg);
        return 1;
    }
    char tmpdir[PATH_MAX] = "", dbpath[PATH_MAX + 16];
    if (db) {
        snprintf(dbpath, sizeof dbpath, "%s", db);
    } else {
        /* /var/tmp is disk on most systems (durability means something); /tmp may be tmpfs */
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/aspen-bench-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
            int e = errno;
            snprintf(tmpdir, sizeof tmpdir, "/tmp/aspen-bench-XXXXXX");
            if (!mkdtemp(tmpdir)) {
                cli_error("cannot create a temporary directory for the bench's database in %s "
                          "(%s) nor in /tmp (%s): set TMPDIR to a writable directory, or give "
                          "--db PATH",
                          base, strerror(e), strerror(errno));
                return 1;
            }
        }
        snprintf(dbpath, sizeof dbpath, "%s/bench.db", tmpdir);
        snprintf(bench_dir, sizeof bench_dir, "%s", tmpdir);
        static const char *const sfx[BENCH_DB_FILES] = {"", "-wal", "-shm", "-journal"};
        for (int i = 0; i < BENCH_DB_FILES; i++)
            snprintf(bench_files[i], sizeof bench_files[i], "%s%s", dbpath, sfx[i]);
        bench_catch(SIGINT);
        bench_catch(SIGTERM);
        bench_catch(SIGHUP);
    }

    int rc = 1;
    struct bench_state b = {.n = (size_t)n};
    b.finish_us = calloc((size_t)n, sizeof(double));
    double *submit_us = calloc((size_t)n, sizeof(double));
    double *lat = calloc((size_t)n, sizeof(double));
    int64_t *ids = calloc((size_t)n, sizeof(int64_t));
    aspen_engine_job_spec *specs = calloc(1000, sizeof *specs);
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    if (!b.finish_us || !submit_us || !lat || !ids || !specs) {
        cli_error("out of memory for %ld jobs: try fewer --jobs", n);
        goto done;
    }

    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = dbpath;
    cfg.workers = workers;
    cfg.no_live_logs = true;
    /* tuning knobs for experiments: claim batch, commit batch, commit interval (ms) */
    if (getenv("ASPEN_BENCH_CLAIM")) {
        if (cli_parse_num("ASPEN_BENCH_CLAIM", getenv("ASPEN_BENCH_CLAIM"), 1, 100000, &v))
            goto done;
        cfg.claim_batch = (size_t)v;
    }
    if (getenv("ASPEN_BENCH_COMMIT")) {
        if (cli_parse_num("ASPEN_BENCH_COMMIT", getenv("ASPEN_BENCH_COMMIT"), 1, 100000, &v))
            goto done;
        cfg.commit_batch = (size_t)v;
    }
    if (getenv("ASPEN_BENCH_INTERVAL")) {
        if (cli_parse_num("ASPEN_BENCH_INTERVAL", getenv("ASPEN_BENCH_INTERVAL"), 0, 10000, &v))
            goto done;
        cfg.commit_interval_ms = (int)v;
    }
    if (getenv("ASPEN_BENCH_BUSY")) { /* commit_busy_ms; at or below the interval: never held */
        if (cli_parse_num("ASPEN_BENCH_BUSY", getenv("ASPEN_BENCH_BUSY"), 0, 10000, &v))
            goto done;
        cfg.commit_busy_ms = (int)v;
    }
    if (aspen_engine_open(&cfg, &eng, &err) != 0) {
        cli_error("%s", err.msg);
        goto done;
    }
    /* Store the binary once; every job then names it by hash. */
    char sha[65];
    {
        aspen_engine_job_spec one = {.guest = path, .binary_name = guest,
                                     .payload = "{\"message\":\"warm-up\"}", .timeout_ms = 5000};
        int64_t id0;
        if (aspen_engine_submit(eng, &one, &id0, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
        aspen_store_job j0 = {0};
        if (aspen_engine_get(eng, id0, &j0, &err) != 0 || !j0.binary_sha256) {
            cli_error("%s", err.msg);
            aspen_store_job_clear(&j0);
            goto done;
        }
        snprintf(sha, sizeof sha, "%s", j0.binary_sha256);
        aspen_store_job_clear(&j0);
    }
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_JOB_STATE, on_event, &b);
    double t_start = 0;
    if (live) { /* engine first, then submit while it runs */
        t_start = cli_now_us();
        if (aspen_engine_start(eng, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
    }

    char payload[64];
    snprintf(payload, sizeof payload, "{\"message\":\"Hello\"}");
    double t0 = cli_now_us();
    for (long i = 0; i < n; i += 1000) {
        size_t k = (size_t)(n - i < 1000 ? n - i : 1000);
        for (size_t s = 0; s < k; s++)
            specs[s] = (aspen_engine_job_spec){.binary_sha256 = sha, .binary_name = guest,
                                               .payload = payload, .timeout_ms = 5000};
        double ts = cli_now_us();
        if (aspen_engine_submit_batch(eng, specs, k, ids + i, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
        if (i == 0)
            b.first_id = ids[0];
        for (size_t s = 0; s < k; s++) {
            if (ids[i + (long)s] != b.first_id + i + (long)s) {
                cli_error("the bench's job ids are not consecutive (another process submits to "
                          "--db %s): give a database of its own, or no --db for a fresh one",
                          dbpath);
                goto done;
            }
            submit_us[i + (long)s] = ts;
        }
    }
    double submitted = cli_now_us();
    double cpu0 = live ? 0 : cpu_us();
    double th0[ROLE_COUNT], th1[ROLE_COUNT];
    thread_cpu_us(th0);
    if (!live) { /* all N queued: now start the engine (register, recovery, one cold VM per
                    worker and the warm-up job included in the time) */
        t_start = submitted;
        if (aspen_engine_start(eng, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
    }
    while (atomic_load(&b.done) < (size_t)n) {
        if (cli_now_us() - submitted > 300e6) {
            cli_error("only %zu of %ld jobs finished in 300 s: is the queue paused (aspen "
                      "resume --db %s), or the machine this loaded? Try fewer --jobs",
                      atomic_load(&b.done), n, dbpath);
            goto done;
        }
        usleep(1000);
    }
    double cpu_run = cpu_us() - cpu0; /* the engine's CPU (the waiting main thread: ~0) */
    thread_cpu_us(th1); /* the engine's threads started after th0 (unless --live) */
    aspen_engine_wait_idle(eng, 10000, false, &err); /* the warm-up job too */
    double last = 0;
    for (long i = 0; i < n; i++) {
        if (b.finish_us[i] > last)
            last = b.finish_us[i];
        lat[i] = (b.finish_us[i] - submit_us[i]) / 1000.0;
    }
    cli_sort(lat, (size_t)n);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    if (!snap || aspen_engine_snapshot_get(eng, snap, &err) != 0) {
        cli_error("%s", snap ? err.msg : "out of memory");
        free(snap);
        goto done;
    }
    double secs = (last - t_start) / 1e6, e2e = (last - t0) / 1e6;
    double jps = (double)n / secs;
    int64_t ok = snap->counts[ASPEN_STORE_SUCCEEDED] - 1; /* minus the warm-up job */
    /* What a committed job survives: SQLite's WAL here, or whatever the PostgreSQL server's own
     * fsync and synchronous_commit settings give its COMMIT. */
    const char *durability = aspen_store_name_is_postgres(dbpath)
                                 ? "PostgreSQL COMMIT (as durable as the server's fsync and "
                                   "synchronous_commit settings make it)"
                                 : "SQLite WAL, synchronous=NORMAL";
    char shown[PATH_MAX + 16];
    aspen_store_name_shown(dbpath, shown, sizeof shown); /* never a password in the output */
    if (as_json) {
        printf("{\"benchmark\":\"engine\",\"jobs\":%ld,\"workers\":%d,\"guest\":\"%s\","
               "\"jobs_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"run_s\":%.3f,"
               "\"submit_s\":%.3f,\"submit_per_s\":%.0f,\"end_to_end_jobs_per_s\":%.0f,"
               "\"submit_while_running\":%s,\"cpu_us_per_job\":%.1f,"
               "\"succeeded_in_store\":%lld,\"group_commits\":%llu,\"group_commits_held\":%llu,"
               "\"warm_vm_hit_rate\":%.4f,\"durability\":\"%s\","
               "\"cpu_us_per_job_store_thread\":%.1f,\"cpu_us_per_job_workers\":%.1f,"
               "\"cpu_us_per_job_checkpointer\":%.1f,\"db\":\"%s\"}\n",
               n, workers, guest, jps, cli_pct(lat, (size_t)n, 50), cli_pct(lat, (size_t)n, 99),
               secs, (submitted - t0) / 1e6, (double)n / ((submitted - t0) / 1e6),
               (double)n / e2e, live ? "true" : "false", cpu_run / (double)n, (long long)ok,
               (unsigned long long)snap->throughput.commits,
               (unsigned long long)snap->throughput.commits_held, snap->throughput.pool_hit_rate,
               durability, (th1[ROLE_STORE] - (live ? 0 : th0[ROLE_STORE])) / (double)n,
               (th1[ROLE_WORKERS] - (live ? 0 : th0[ROLE_WORKERS])) / (double)n,
               (th1[ROLE_CKPT] - (live ? 0 : th0[ROLE_CKPT])) / (double)n, shown);
    } else {
        printf("engine: %ld %s jobs, %d workers: %.0f jobs/s (%.3f s; %.0f jobs/s counting the "
               "%.3f s of submit), submit-to-finish p50 "
               "%.2f ms, p99 %.2f ms; %lld succeeded in the store; %llu group commits; warm-VM "
               "hit rate %.2f%%\n",
               n, guest, workers, jps, secs, (double)n / e2e, (submitted - t0) / 1e6,
               cli_pct(lat, (size_t)n, 50),
               cli_pct(lat, (size_t)n, 99), (long long)ok,
               (unsigned long long)snap->throughput.commits,
               snap->throughput.pool_hit_rate * 100);
    }
    free(snap);
    if (ok != n || atomic_load(&b.bad)) {
        if (tmpdir[0]) /* removed below: only a --db of the user's keeps the failures */
            cli_error("%lld of %ld jobs succeeded in the store (%zu ended otherwise): run it "
                      "again with --db PATH to keep them, then aspen jobs --state "
                      "failed --db PATH says why",
                      (long long)ok, n, atomic_load(&b.bad));
        else
            cli_error("%lld of %ld jobs succeeded in the store (%zu ended otherwise): aspen jobs "
                      "--state failed --db %s says why",
                      (long long)ok, n, atomic_load(&b.bad), dbpath);
        goto done;
    }
    rc = 0;
done:
    aspen_engine_close(eng);
    if (tmpdir[0]) {
        for (int i = 0; i < 3; i++) { /* what it was: default, or ignored as it came */
            int sig = i == 0 ? SIGINT : i == 1 ? SIGTERM : SIGHUP;
            if (signal(sig, SIG_DFL) == SIG_IGN)
                signal(sig, SIG_IGN);
        }
        bench_remove_dir();
        if (rmdir(tmpdir) != 0 && errno != ENOENT)
            fprintf(stderr, "warning: could not remove %s: %s\n", tmpdir, strerror(errno));
    }
    free(b.finish_us);
    free(submit_us);
    free(lat);
    free(ids);
    free(specs);
    return rc;
}
