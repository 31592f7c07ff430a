/* cli/cmd_demo.c — `aspen demo`, the seed's vm_job_demo, through the engine and the store:
 *   1. an echo job and a data-processing job, each in a micro-VM (guest code at CPL 3, no kernel);
 *   2. the seed's "Nix build + execute": a job naming guests/echo-worker as a SOURCE directory,
 *      built once with the SDK and cached by the hash of its sources (seconds the first time,
 *      milliseconds after: run the demo twice);
 *   3. an in-process "checksum" job, to show routing by job type;
 *   4. the echo job rerun, on the now-warm VM;
 *   5. the same echo and data-processing jobs in the seed's Rust guests (guests/rust/);
 *   6. a named queue with a concurrency limit of 1 (demo-limited): three 100 ms sleep jobs that
 *      the demo's two workers would run two at a time run one after another, shown from their
 *      attempts' start and finish times;
 *   7. a schedule (demo-heartbeat, @every 10s, into demo-limited), run once now. It is stored
 *      PAUSED: the demo writes into the user's own database, and an active schedule left there
 *      would enqueue a job every 10 s in every worker run afterwards; `aspen cron resume` starts
 *      it. Both are declared again (not refused) when the demo runs again.
 * Jobs go into the database every other subcommand uses (see `aspen jobs` afterwards); log lines
 * are printed as the guests write them, results and per-attempt stats once each job is stored,
 * and "all jobs done" once the last (the rerun) is.
 */
#include "cli.h"

#include "aspen_vm.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef ASPEN_SOURCE_DIR
#define ASPEN_SOURCE_DIR "."
#endif

/* " --db 'PATH'" when the demo was given --db: the commands it suggests must name the database
 * it wrote, or they look at the default one and find none of its jobs (a new-user trial). */
static char g_dbarg[4200];

static void set_dbarg(const char *db)
{
    g_dbarg[0] = '\0';
    if (!db)
        return;
    /* quoted for a shell when it holds anything beyond the usual path characters */
    bool plain = *db && strspn(db, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789/._-+:@=,") == strlen(db);
    if (plain || strchr(db, '\''))
        snprintf(g_dbarg, sizeof g_dbarg, " --db %s", db);
    else
        snprintf(g_dbarg, sizeof g_dbarg, " --db '%s'", db);
}

static void on_event(const aspen_engine_event *ev, void *user)
{
    (void)user;
    flockfile(stdout);
    if (ev->type == ASPEN_ENGINE_EV_LOG) {
        printf("    log  [job %lld] ", (long long)ev->job_id);
        cli_puts(stdout, ev->message);
        putchar('\n');
    } else if (ev->type == ASPEN_ENGINE_EV_ENGINE) {
        printf("    engine: ");
        cli_puts(stdout, ev->message);
        putchar('\n');
    }
    fflush(stdout);
    funlockfile(stdout);
}

static void report(aspen_engine *eng, int64_t id, const char *title)
{
    aspen_store_job j = {0};
    aspen_store_attempt *a = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    printf("\n== job %lld: %s\n", (long long)id, title);
    if (aspen_engine_get(eng, id, &j, &err) != 0 || aspen_engine_attempts(eng, id, &a, &n, &err)) {
        printf("    error: ");
        cli_puts(stdout, err.msg);
        putchar('\n');
        aspen_store_job_clear(&j);
        return;
    }
    char type[256], payload[640];
    printf("    %s, type %s%s, payload %s\n", aspen_store_state_name(j.state),
           cli_cell_str(j.type, 40, type, sizeof type),
           aspen_engine_job_needs_vm(&j) ? " (micro-VM)" : " (in-process handler)",
           cli_cell_str(j.payload, 103, payload, sizeof payload));
    if (j.result) {
        printf("    out  ");
        cli_putn(stdout, j.result, j.result_size > 400 ? 400 : j.result_size, 0);
        putchar('\n');
    }
    if (j.error) {
        printf("    err  ");
        cli_puts(stdout, j.error);
        putchar('\n');
    }
    for (size_t i = 0; i < n; i++) {
        char run[32], stored[32];
        cli_format_duration_us(a[i].wall_us, run, sizeof run);
        cli_format_duration_us((j.finished_at_ms - a[i].started_at_ms) * 1000, stored,
                               sizeof stored);
        printf("    attempt %d: %s in %s (run), %llu exits, %llu host calls, %llu pages "
               "restored; %s from start to stored\n",
               a[i].number, a[i].outcome, run, (unsigned long long)a[i].exits,
               (unsigned long long)a[i].host_calls, (unsigned long long)a[i].pages_dirtied,
               stored);
    }
    aspen_store_attempts_free(a, n);
    aspen_store_job_clear(&j);
}

#define DEMO_QUEUE "demo-limited"
#define DEMO_SCHEDULE "demo-heartbeat"
enum { DEMO_LIMITED_JOBS = 3, DEMO_SLEEP_MS = 100 };

/* Declares the demo's limited queue (limit 1) through the store: the engine API has no queue
 * settings call, and the CLI's `aspen queue set` does the same. It is resumed too: a queue left
 * paused by an earlier `aspen queue pause demo-limited` kept the demo waiting for jobs that could
 * never start (five minutes, then a timeout). */
static int demo_declare_queue(aspen_engine *eng)
{
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    int rc = cli_store_open(aspen_engine_db_path(eng), NULL, &st, &se);
    if (rc == 0)
        rc = aspen_store_queue_set(st, DEMO_QUEUE, ASPEN_STORE_QUEUE_SET_LIMIT, 1, 0, 0,
                                   aspen_store_now_ms(), &se);
    if (rc == 0)
        rc = aspen_store_queue_pause(st, DEMO_QUEUE, false, aspen_store_now_ms(), &se);
    aspen_store_close(st);
    if (rc)
        cli_error("declaring the demo's queue %s: %s", DEMO_QUEUE, se.msg);
    return rc;
}

/* The limited queue's jobs: how many ran at once at most (from their attempts), and the span. */
static void demo_report_queue(aspen_engine *eng, const int64_t *ids, size_t n)
{
    int64_t start[DEMO_LIMITED_JOBS] = {0}, finish[DEMO_LIMITED_JOBS] = {0};
    size_t got = 0;
    for (size_t i = 0; i < n && i < DEMO_LIMITED_JOBS; i++) {
        aspen_store_attempt *a = NULL;
        size_t na = 0;
        aspen_engine_error err = {0};
        if (aspen_engine_attempts(eng, ids[i], &a, &na, &err) != 0)
            continue;
        if (na) { /* the last attempt: the one that ran to the end */
            start[got] = a[na - 1].started_at_ms;
            finish[got] = a[na - 1].finished_at_ms;
            got++;
        }
        aspen_store_attempts_free(a, na);
    }
    int most = 0;
    int64_t first = got ? start[0] : 0, last = got ? finish[0] : 0;
    for (size_t i = 0; i < got; i++) {
        int at = 0; /* how many were running when job i started */
        for (size_t j = 0; j < got; j++)
            at += start[j] <= start[i] && start[i] < finish[j];
        most = at > most ? at : most;
        first = start[i] < first ? start[i] : first;
        last = finish[i] > last ? finish[i] : last;
    }
    char took[32];
    cli_format_duration_us((last - first) * 1000, took, sizeof took);
    printf("\n== queue %s: concurrency limit 1 over every worker and host\n"
           "    %zu sleep jobs of %d ms on 2 workers: at most %d ran at once, %s from the first "
           "start to the last finish\n"
           "    (see `aspen queues%s`; `aspen queue set %s --limit 2%s` lets two run)\n",
           DEMO_QUEUE, got, (int)DEMO_SLEEP_MS, most, took, g_dbarg, DEMO_QUEUE, g_dbarg);
}

static void demo_report_schedule(aspen_engine *eng, int64_t ran)
{
    aspen_store_schedule *l = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_schedules(eng, &l, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, DEMO_SCHEDULE) != 0)
            continue;
        char expr[80];
        printf("\n== schedule %s: %s (%s), jobs into queue %s, %s\n", l[i].name,
               cli_cell_str(l[i].expr, 40, expr, sizeof expr), l[i].tz,
               l[i].queue ? l[i].queue : "default", l[i].paused ? "paused" : "active");
        printf("    run now: job %lld, %s; %lld job%s from it so far\n", (long long)ran,
               l[i].last_job_state >= 0
                   ? aspen_store_state_name((aspen_store_state)l[i].last_job_state)
                   : "deleted",
               (long long)l[i].runs, l[i].runs == 1 ? "" : "s");
        printf("    left paused so that it does not keep enqueueing in this database:\n"
               "    `aspen cron resume %s%s` starts it, `aspen cron rm %s%s` removes it\n",
               l[i].name, g_dbarg, l[i].name, g_dbarg);
    }
    aspen_store_schedules_free(l, n);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_DB_OPTS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "D:h", opts, argv[0])) != -1) {
        if (c == 'D' || c == 'C') {
            if (c == 'D')
                db = optarg;
            else
                cli_create = true;
            continue;
        }
        cli_help(c == 'h' ? stdout : stderr, "usage: aspen demo [--db PATH]   (a new PATH is created)\n");
        return c == 'h' ? 0 : 2;
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "", "aspen demo [--db PATH]");
    if (urc)
        return urc;
    /* every job of the demo runs in a micro-VM: without KVM it would submit them all, then wait
     * for jobs no worker can start. Say so first, having written nothing (not even the
     * database). */
    aspen_vm_error ve = {0};
    if (aspen_vm_check_kvm(&ve) != 0) {
        cli_error("%s (aspen demo runs its jobs in KVM micro-VMs: nothing was submitted)", ve.msg);
        return 1;
    }
    set_dbarg(db);
    /* the demo writes new jobs of its own: a --db it is given may be new (nobody's jobs can seem
     * to vanish), so it is created as with --create */
    cli_create = true;
    aspen_engine *eng;
    if (cli_open_engine(db, 2, &eng))
        return 1;
    /* A database paused with `aspen pause` starts no job: the demo would wait for its jobs until
     * its 300 s bound and time out, so it says so first and changes nothing. */
    bool paused = false;
    aspen_engine_error perr = {0};
    if (aspen_engine_paused(eng, &paused, &perr) == 0 && paused) {
        cli_error("%s is paused (aspen pause): no job would start. Run `aspen resume --db %s`, "
                  "then the demo again",
                  aspen_engine_db_path(eng), aspen_engine_db_path(eng));
        aspen_engine_close(eng);
        return 1;
    }
    printf("Aspen demo: jobs in KVM micro-VMs (guest code at CPL 3, no kernel, 1 MiB of memory),\n"
           "through the job engine and its store %s\n", aspen_engine_db_path(eng));
    aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_LOG | ASPEN_ENGINE_EV_ENGINE, on_event, NULL);

    int rc = 1;
    aspen_engine_error err = {0};
    int64_t echo = 0, data = 0, built = 0, sum = 0, again = 0, recho = 0, rdata = 0;
    aspen_engine_job_spec e = {.guest = "echo-worker", .payload = "{\"message\":\"Hello\"}"};
    aspen_engine_job_spec d = {
        .guest = "data-processor",
        .payload = "{\"records\":[{\"name\":\"  Alice  Smith\",\"age\":30,\"city\":\"paris\"},"
                   "{\"name\":\"bob\",\"age\":25,\"city\":\"Paris \"},"
                   "{\"name\":\"Carol\",\"age\":41,\"city\":\"Berlin\"}]}"};
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/guests/echo-worker", ASPEN_SOURCE_DIR);
    struct stat st;
    bool have_src = stat(src, &st) == 0 && S_ISDIR(st.st_mode);
    aspen_engine_job_spec b = {.source_dir = src, .payload = "{\"message\":\"built from source\"}",
                               .timeout_ms = 5000};
    aspen_engine_job_spec k = {.type = "checksum", .payload = "{\"message\":\"Hello\"}"};
    aspen_engine_job_spec re = e, rd = d;
    re.guest = "rust-echo-worker";
    rd.guest = "rust-data-processor";
    if (aspen_engine_submit(eng, &e, &echo, &err) || aspen_engine_submit(eng, &d, &data, &err) ||
        aspen_engine_submit(eng, &k, &sum, &err) || aspen_engine_submit(eng, &re, &recho, &err) ||
        aspen_engine_submit(eng, &rd, &rdata, &err) ||
        (have_src && aspen_engine_submit(eng, &b, &built, &err))) {
        cli_error("%s", err.msg);
        goto done;
    }
    printf("submitted jobs %lld (echo-worker), %lld (data-processor), %lld (checksum, "
           "in-process), %lld and %lld (the same in Rust)%s\n",
           (long long)echo, (long long)data, (long long)sum, (long long)recho, (long long)rdata,
           have_src ? ", and one built from guests/echo-worker's sources" : "");
    if (!have_src)
        printf("(no guests/echo-worker source directory next to this program: build-from-source "
               "step skipped)\n");

    /* a limited queue and a schedule into it */
    int64_t limited[DEMO_LIMITED_JOBS] = {0}, cron_job = 0;
    char slp_payload[32];
    snprintf(slp_payload, sizeof slp_payload, "{\"ms\":%d}", (int)DEMO_SLEEP_MS);
    aspen_engine_job_spec slp = {.type = "sleep", .payload = slp_payload, .queue = DEMO_QUEUE};
    aspen_engine_job_spec beat = {.type = "checksum", .payload = "{\"message\":\"heartbeat\"}"};
    aspen_engine_schedule_def sdef = {.name = DEMO_SCHEDULE, .expr = "@every 10s",
                                      .queue = DEMO_QUEUE, .paused = true, .replace = true};
    if (demo_declare_queue(eng))
        goto done;
    for (size_t i = 0; i < DEMO_LIMITED_JOBS; i++)
        if (aspen_engine_submit(eng, &slp, &limited[i], &err)) {
            cli_error("%s", err.msg);
            goto done;
        }
    if (aspen_engine_schedule_add(eng, &sdef, &beat, NULL, &err) ||
        aspen_engine_schedule_run_now(eng, DEMO_SCHEDULE, &cron_job, &err)) {
        cli_error("%s", err.msg);
        goto done;
    }
    printf("declared queue %s (limit 1) with jobs %lld-%lld, and schedule %s (paused), run now "
           "as job %lld\n",
           DEMO_QUEUE, (long long)limited[0], (long long)limited[DEMO_LIMITED_JOBS - 1],
           DEMO_SCHEDULE, (long long)cron_job);
    double t0 = cli_now_us();
    if (aspen_engine_start(eng, &err) != 0) {
        cli_error("%s", err.msg);
        goto done;
    }
    if (aspen_engine_wait_idle(eng, 300000, false, &err) != 0) {
        cli_error("the demo's jobs did not finish: %s", err.msg);
        goto done;
    }
    double t1 = cli_now_us();
    report(eng, echo, "echo-worker (first job: cold VM start included in its time)");
    report(eng, data, "data-processor");
    report(eng, sum, "checksum, an in-process C handler (no VM)");
    report(eng, recho, "rust-echo-worker (the seed's Rust guest, guests/rust/echo-worker)");
    report(eng, rdata, "rust-data-processor (guests/rust/data-processor)");
    if (built) {
        report(eng, built, "echo-worker built from source");
        char path[PATH_MAX];
        bool cached = false;
        double a = cli_now_us();
        char took[32];
        if (aspen_engine_build(eng, src, path, sizeof path, &cached, &err) == 0) {
            cli_format_duration_us((int64_t)(cli_now_us() - a), took, sizeof took);
            printf("    build cache: %s; looking it up again took %s (cached: %s)\n", path, took,
                   cached ? "yes" : "no");
        }
    }
    demo_report_queue(eng, limited, DEMO_LIMITED_JOBS);
    demo_report_schedule(eng, cron_job);
    /* The rerun is a job too: "all jobs done" comes after its log line and its report, not
     * before them (trial 10), with the first batch's time and the rerun's apart. */
    double t2 = cli_now_us();
    if (aspen_engine_rerun(eng, echo, &again, &err) != 0 ||
        aspen_engine_wait_idle(eng, 30000, false, &err) != 0) {
        cli_error("%s", err.msg);
        goto done;
    }
    double t3 = cli_now_us();
    report(eng, again, "the echo job rerun: a warm VM restored from its snapshot");
    char all[32], warm[32];
    cli_format_duration_us((int64_t)(t1 - t0), all, sizeof all);
    cli_format_duration_us((int64_t)(t3 - t2), warm, sizeof warm);
    /* the five seed jobs, the built one, the limited queue's and the schedule's run-now */
    int n_first = 5 + (built != 0) + DEMO_LIMITED_JOBS + 1;
    printf("\nall jobs done: the first %d in %s (engine start, cold VMs%s included), the rerun "
           "in %s\n", n_first, all, built ? " and the build" : "", warm);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    if (snap && aspen_engine_snapshot_get(eng, snap, &err) == 0)
        printf("\nwarm VM pool: %zu VM%s, %zu KiB guest memory, hit rate %.0f%%\n"
               "see the jobs with `aspen jobs%s`, one with `aspen show ID%s`\n",
               snap->throughput.pool_vms, snap->throughput.pool_vms == 1 ? "" : "s",
               snap->throughput.pool_bytes / 1024,
               snap->throughput.pool_hit_rate * 100, g_dbarg, g_dbarg);
    free(snap);
    rc = 0;
done:
    aspen_engine_close(eng);
    return rc;
}
