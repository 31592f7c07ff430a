/* cli/cmd_worker.c — `aspen worker`: a headless engine on the database.
 *
 * Runs N worker threads until SIGINT/SIGTERM (graceful: stop claiming, let running jobs finish
 * within the grace period, release the rest, flush, unregister), or with --until-idle until nothing
 * is queued, scheduled or running. Prints one line per finished job (unless --quiet) and engine
 * messages (recovery, lost lease, a store that cannot be written for now) on stderr, and once
 * why it waits when a pause (aspen pause, or aspen queue pause of a queue it serves) holds it. A permanent
 * store error (a table missing, a newer schema, a read-only or corrupt file) ends it with the
 * engine's message and exit status 1; transient ones (disk full, locked) are retried.
 * A second Ctrl-C/SIGTERM exits at once, saying what is left to the lease expiry.
 */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every option, what it does and its default: the help a new user reads first. */
static void worker_usage(FILE *f)
{
    cli_help(f,
            "usage: aspen worker [--workers N] [--until-idle] [--quiet] [--grace MS]\n"
            "                    [--lease MS] [--recover MS] [--queues A,B] [--db PATH] [--create]\n"
            "Runs jobs from the database in warm micro-VMs (and the in-process types) until\n"
            "Ctrl-C or SIGTERM, printing a line per finished job. Start as many as you like, on\n"
            "one host or (PostgreSQL) many: each job runs once.\n"
            "  --workers N   worker threads, each running one job at a time (default 2, at most\n"
            "                %d); a worker keeps the warm VM it used last\n"
            "  --until-idle  stop once nothing is queued, scheduled or running (scripts, tests)\n"
            "  --quiet       no line per finished job; engine messages still go to stderr\n"
            "  --grace MS    at Ctrl-C, how long running jobs may take to finish before they go\n"
            "                back to the queue uncharged (default 5000; 0: at once)\n"
            "  --lease MS    how long this engine's jobs stay its own without a heartbeat\n"
            "                (default 5000, at least 500): a host that dies has its jobs run\n"
            "                elsewhere within about that; it heartbeats every lease / 5\n"
            "  --recover MS  how often it looks for dead engines' jobs (default 5000, at least 100)\n"
            "  --queues A,B  serve only these named queues (default: every queue; aspen queues\n"
            "                lists them); schedules of every queue are still enqueued\n"
            "  --db PATH     the database (an SQLite file, or postgresql://USER@HOST/DB); it must\n"
            "                exist unless --create (without it $ASPEN_DB, else\n"
            "                $XDG_DATA_HOME/aspen/aspen.db (~/.local/share/aspen/aspen.db), as\n"
            "                for every command: aspen --help)\n"
            "Stop it with Ctrl-C (running jobs get --grace), pause every worker on the database\n"
            "with aspen pause; aspen engines lists every worker process and what it runs.\n",
            ASPEN_ENGINE_MAX_WORKERS);
}

static void on_event(const aspen_engine_event *ev, void *user)
{
    bool quiet = *(bool *)user;
    if (ev->type == ASPEN_ENGINE_EV_ENGINE) {
        flockfile(stderr);
        fputs("aspen worker: ", stderr);
        cli_puts(stderr, ev->message); /* escaped (cli/output.c): it may quote a job's words */
        fputc('\n', stderr);
        funlockfile(stderr);
        return;
    }
    if (quiet || ev->type != ASPEN_ENGINE_EV_JOB_STATE || ev->outcome < 0)
        return;
    /* flockfile keeps lines whole when several engine threads print */
    flockfile(stdout);
    printf("job %lld %s (attempt %d, ", (long long)ev->job_id, aspen_store_state_name(ev->state),
           ev->attempt);
    cli_puts(stdout, ev->job_type); /* the type and error are the job's text: escaped */
    fputs(ev->message ? "): " : ")", stdout);
    cli_puts(stdout, ev->message);
    fputc('\n', stdout);
    fflush(stdout);
    funlockfile(stdout);
}

/* Why this worker starts nothing, when a pause is the reason: "" when none is. The global pause
 * (aspen pause) holds every queue; else the queues it serves that are paused and hold jobs due
 * now (with --queues, every paused one it serves: it serves nothing else). dba: the --db of
 * the commands it names. key: the reason without its job count ("all", or the paused names),
 * so that the caller says it again only when the reason changes, not at every submit (trial 23
 * printed "(0 jobs waiting)" and then "(1 job waiting)" for the same pause). */
static void pause_reason(aspen_store *st, const char *dba, char *out, size_t cap, char *key,
                         size_t keycap)
{
    out[0] = '\0';
    key[0] = '\0';
    bool all = false;
    aspen_store_error se = {0};
    if (aspen_store_paused(st, &all, &se) != 0)
        return;
    if (all) {
        /* a --db too long for out is cut: the line still says what holds the worker */
        if (snprintf(out, cap, "all queues are paused (aspen pause is on): this worker starts no "
                     "job until aspen resume%s", dba) >= (int)cap)
            out[cap - 1] = '\0';
        snprintf(key, keycap, "*all*");
        return;
    }
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    if (aspen_store_queues(st, aspen_store_now_ms(), &qs, &n, &se) != 0)
        return;
    char names[256] = "", first[ASPEN_STORE_QUEUE_NAME_MAX + 1] = "";
    size_t n_paused = 0;
    int64_t waiting = 0;
    for (size_t i = 0; i < n; i++) {
        bool served = cli_n_queues == 0;
        for (size_t k = 0; k < cli_n_queues; k++)
            served = served || strcmp(cli_queues[k], qs[i].name) == 0;
        if (!served || !qs[i].paused || (cli_n_queues == 0 && qs[i].queued == 0))
            continue;
        if (!n_paused++)
            snprintf(first, sizeof first, "%s", qs[i].name);
        size_t used = strlen(names); /* a cut list still names the first ones whole */
        if (used + strlen(qs[i].name) + 3 < sizeof names)
            snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", qs[i].name);
        waiting += qs[i].queued;
    }
    aspen_store_queues_free(qs);
    if (!n_paused)
        return;
    snprintf(key, keycap, "%s", names);
    /* names passed aspen_store_queue_name_check: plain ASCII, nothing to escape */
    if (snprintf(out, cap, "queue%s %s %s paused (%lld job%s waiting): this worker starts none "
                 "of %s jobs until aspen queue resume %s%s",
                 n_paused == 1 ? "" : "s", names, n_paused == 1 ? "is" : "are",
                 (long long)waiting, waiting == 1 ? "" : "s", n_paused == 1 ? "its" : "their",
                 n_paused == 1 ? first : "NAME", dba) >= (int)cap)
        out[cap - 1] = '\0';
}

/* SIGINT/SIGTERM, taken by a thread of their own (sigwait) rather than by the main loop: the
 * main thread spends its time in store calls (aspen_engine_wait_idle, pause_reason, and at last
 * aspen_engine_stop), which with the database away used to retry for seconds each while the
 * signal waited. The first signal asks the engine to stop (aspen_engine_stop_request: store calls
 * stop retrying) and the main loop to leave; a second one exits at once. */
static atomic_int worker_stop;   /* a first signal came: the main loop stops the engine */
static aspen_engine *worker_eng; /* set before the thread starts, never changed after */
static long long worker_id, worker_lease_ms; /* the id as registered: the stop sets it to 0 */

static void *worker_signal_main(void *arg)
{
    const sigset_t *set = arg;
    for (int n = 0;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
            continue;
        if (n++ == 0) {
            fprintf(stderr, "aspen worker: stopping (letting running jobs finish; %s again "
                            "exits at once)\n",
                    sig == SIGINT ? "Ctrl-C" : "SIGTERM");
            aspen_engine_stop_request(worker_eng);
            atomic_store(&worker_stop, 1);
            continue;
        }
        /* _exit: the engine's threads are mid-stop; nothing of this process is flushed but its
         * own output (stdout lines are flushed one by one). The database keeps every job: what
         * was not recorded stays leased to this engine and is recovered when the lease ends. */
        fflush(stdout);
        fprintf(stderr, "aspen worker: %s again: exiting now without finishing the stop; jobs it "
                        "was running or had not recorded stay leased to engine %lld and are run "
                        "again by another worker once the lease expires (%lld ms)\n",
                sig == SIGINT ? "Ctrl-C" : "SIGTERM", worker_id, worker_lease_ms);
        _exit(130);
    }
    return NULL;
}

int cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"workers", required_argument, 0, 'w'}, {"until-idle", no_argument, 0, 'u'},
        {"quiet", no_argument, 0, 'q'},         {"grace", required_argument, 0, 'g'},
        {"lease", required_argument, 0, 'L'},   {"recover", required_argument, 0, 'R'},
        {"queues", required_argument, 0, 'Q'},
        CLI_DB_OPTS,                            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *db = NULL;
    int workers = 2, grace = -1, c;
    bool until_idle = false, quiet = false;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "w:uqg:D:h", opts, argv[0])) != -1) {
        switch (c) {
        case 'L':
        case 'R': {
            long long v;
            if (cli_parse_num(c == 'L' ? "--lease" : "--recover", optarg, c == 'L' ? 500 : 100,
                              3600000, &v))
                return 2;
            if (c == 'L')
                cli_lease_ms = v;
            else
                cli_recover_ms = (int)v;
            break;
        }
        case 'w':
        case 'g': {
            long long v;
            if (cli_parse_num(c == 'w' ? "--workers" : "--grace", optarg, c == 'w' ? 1 : 0,
                              c == 'w' ? ASPEN_ENGINE_MAX_WORKERS : 3600000, &v))
                return 2;
            if (c == 'w')
                workers = (int)v;
            else
                grace = (int)v;
            break;
        }
        case 'Q': {
            /* a,b,c: checked here so a typo is said before anything starts; strtok_r would
             * skip an empty name (a,,b) silently */
            static char list[16 * 66];
            size_t len = strlen(optarg);
            if (len >= sizeof list || !len || optarg[0] == ',' || optarg[len - 1] == ',' ||
                strstr(optarg, ",,")) {
                cli_error(len >= sizeof list ? "--queues: the list is too long (at most 16 queues)"
                                             : "--queues '%s' has an empty queue name: give names "
                                               "separated by single commas, e.g. --queues emails,default",
                          optarg);
                return 2;
            }
            memcpy(list, optarg, len + 1);
            cli_n_queues = 0;
            for (char *save = NULL, *q = strtok_r(list, ",", &save); q;
                 q = strtok_r(NULL, ",", &save)) {
                aspen_store_error qe = {0};
                if (cli_n_queues == 16) {
                    cli_error("--queues: at most 16 queues");
                    return 2;
                }
                if (aspen_store_queue_name_check(q, &qe) != 0) {
                    cli_error("--queues: %s", qe.msg);
                    return 2;
                }
                cli_queues[cli_n_queues++] = q;
            }
            if (!cli_n_queues) {
                cli_error("--queues wants queue names separated by commas, e.g. --queues emails,default");
                return 2;
            }
            break;
        }
        case 'u': until_idle = true; break;
        case 'q': quiet = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            worker_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "",
                       "aspen worker [--workers N] [--until-idle] [--queues A,B] (aspen worker --help)");
    if (urc)
        return urc;
    /* Engine threads inherit this mask: only worker_signal_main takes SIGINT/SIGTERM. */
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    aspen_engine *eng;
    if (cli_open_engine(db, workers, &eng))
        return 1;
    /* a queue served that does not exist (yet): legitimate (its jobs may come later), so a
     * warning, not a refusal — but a typo would leave the worker idle forever, so say it */
    for (size_t i = 0; i < cli_n_queues; i++) {
        aspen_store_error qe = {0};
        if (cli_queue_lookup(aspen_engine_db_path(eng), cli_queues[i], &qe) == ASPEN_STORE_ENOTFOUND) {
            /* names passed aspen_store_queue_name_check: plain ASCII, nothing to escape */
            fprintf(stderr, "aspen worker: warning: --queues: %s; this worker waits for jobs "
                    "submitted to it\n", qe.msg);
        }
    }
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_JOB_STATE | ASPEN_ENGINE_EV_ENGINE, on_event,
                           &quiet);
    aspen_engine_error err = {0};
    if (aspen_engine_start(eng, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        aspen_engine_close(eng);
        return 1;
    }
    worker_eng = eng;
    worker_id = (long long)aspen_engine_id(eng);
    worker_lease_ms = cli_lease_ms > 0 ? cli_lease_ms : 5000; /* the engine's default lease */
    pthread_t sig_th;
    if (pthread_create(&sig_th, NULL, worker_signal_main, &set) != 0) {
        fprintf(stderr, "error: cannot start the thread that takes Ctrl-C (out of resources?)\n");
        aspen_engine_close(eng);
        return 1;
    }
    pthread_detach(sig_th); /* it lives until the process exits */
    char shown[512]; /* a PostgreSQL conninfo may hold a password */
    aspen_store_name_shown(aspen_engine_db_path(eng), shown, sizeof shown);
    /* which queues it takes, said at once: nothing showed it (trial 23); aspen engines shows it
     * too. Names passed aspen_store_queue_name_check: printable, nothing to escape. */
    char serving[ASPEN_STORE_ENGINE_QUEUES_MAX + 32];
    size_t slen = (size_t)snprintf(serving, sizeof serving, "%s",
                                   cli_n_queues == 0   ? "every queue"
                                   : cli_n_queues == 1 ? "queue "
                                                       : "queues ");
    for (size_t k = 0; k < cli_n_queues && slen < sizeof serving; k++)
        slen += (size_t)snprintf(serving + slen, sizeof serving - slen, "%s%s", k ? ", " : "",
                                 cli_queues[k]);
    fprintf(stderr, "aspen worker: engine %lld on %s with %d worker%s serving %s%s\n",
            (long long)aspen_engine_id(eng), shown, workers, workers == 1 ? "" : "s", serving,
            until_idle ? " (until idle)" : " (Ctrl-C to stop)");
    /* A worker held by a pause said nothing and looked hung (trial 10): it says once why it
     * waits, and once when the pause is lifted. A read-only handle of its own, read once a
     * second: the engine's is busy with its threads. Without one it only stays silent. */
    aspen_store *pst = NULL;
    aspen_store_options pso = {.read_only = true, .give_up = &worker_stop};
    aspen_store_error pse = {0};
    if (cli_store_open(aspen_engine_db_path(eng), &pso, &pst, &pse) != 0)
        pst = NULL;
    char dba[4 * PATH_MAX + 16], said[1024] = "";
    cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    int rc = 0;
    for (unsigned tick = 0;; tick++) {
        if (pst && tick % 10 == 0) {
            char why[1024], key[sizeof said];
            pause_reason(pst, dba, why, sizeof why, key, sizeof key);
            if (strcmp(key, said) != 0) {
                if (why[0])
                    fprintf(stderr, "aspen worker: waiting: %s\n", why);
                else
                    fprintf(stderr, "aspen worker: the pause is lifted: starting jobs again\n");
                snprintf(said, sizeof said, "%s", key);
            }
        }
        struct timespec ts = {0, 100 * 1000000L};
        if (atomic_load(&worker_stop))
            break;
        nanosleep(&ts, NULL);
        if (atomic_load(&worker_stop))
            break;
        /* Also how a permanent store error (schema missing, read-only, corrupt) reaches us: the
         * engine has stopped working and says why; retrying would never end. */
        int w = aspen_engine_wait_idle(eng, 0, true, &err);
        if (w < 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            rc = 1;
            break;
        }
        if (until_idle && w == 0)
            break;
    }
    aspen_store_close(pst);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    if (aspen_engine_stop(eng, grace, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        rc = 1;
    }
    /* the live counters only: reading the store here failed (and the line went missing) when
     * the database was away */
    if (snap) {
        aspen_engine_snapshot_live(eng, snap);
        fprintf(stderr,
                "aspen worker: done: %llu finished (%llu succeeded, %llu failed, %llu retried, "
                "%llu cancelled), warm-VM hit rate %.1f%%\n",
                (unsigned long long)snap->throughput.finished,
                (unsigned long long)snap->throughput.succeeded,
                (unsigned long long)snap->throughput.failed,
                (unsigned long long)snap->throughput.retried,
                (unsigned long long)snap->throughput.cancelled,
                snap->throughput.pool_hit_rate * 100.0);
    }
    free(snap);
    aspen_engine_close(eng);
    return rc;
}
