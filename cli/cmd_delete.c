/* cli/cmd_delete.c — removing jobs from the database, through a client engine (no workers):
 *   aspen delete ID... | --filter F  [--yes]     finished jobs, with their attempts and logs
 *   aspen purge --older-than D | --state S[,S] [--older-than D] [--yes]
 *                 finished jobs (of those states) that finished that long ago, in short
 *                 transactions paced as the engines' pruner paces itself; Ctrl-C stops it
 *                 between two (exit 130, saying how many went)
 * Deleting cannot be undone, so both ask first (a line read from stdin, "y" or "yes") unless
 * --yes is given; queued, scheduled and running jobs are never deleted (cancel them first).
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage, 130 purge interrupted.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Jobs deleted per transaction by delete --filter (purge paces itself: aspen_engine_prune_paced). */
#define DELETE_BATCH 500

#define FINAL_STATES                                                                               \
    ((1u << ASPEN_STORE_SUCCEEDED) | (1u << ASPEN_STORE_FAILED) | (1u << ASPEN_STORE_CANCELLED))

/* The ids of every job f matches, oldest first, read a page at a time (never the whole rows at
 * once). malloc'd in *ids; 0 or -1 (printed). */
static int matching_ids(aspen_engine *eng, const aspen_store_filter *f0, int64_t **ids, size_t *n)
{
    enum { PAGE = 1000 };
    aspen_store_filter f = *f0;
    f.order = ASPEN_STORE_ORDER_OLDEST;
    f.limit = PAGE;
    f.offset = 0;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    for (;;) {
        aspen_store_job *jobs = NULL;
        size_t got = 0;
        aspen_engine_error err = {0};
        if (aspen_engine_list(eng, &f, &jobs, &got, &err) != 0) {
            cli_error("%s", err.msg);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        if (*n + got > cap) {
            size_t ncap = cap ? cap * 2 : PAGE;
            while (ncap < *n + got)
                ncap *= 2;
            int64_t *p = realloc(*ids, ncap * sizeof *p);
            if (!p) {
                aspen_store_jobs_free(jobs, got);
                cli_error("out of memory listing the jobs to delete");
                free(*ids);
                *ids = NULL;
                return -1;
            }
            *ids = p;
            cap = ncap;
        }
        for (size_t i = 0; i < got; i++)
            (*ids)[(*n)++] = jobs[i].id;
        aspen_store_jobs_free(jobs, got);
        if (got < PAGE)
            return 0;
        f.offset += PAGE;
    }
}

static void delete_usage(FILE *f)
{
    cli_help(f, "usage: aspen delete ID... | --filter F  [--yes] [--db PATH]\n"
               "  ID...       these jobs (finished ones only: cancel a queued or running job first)\n"
               "  --filter F  every finished job the filter matches (the language of aspen jobs\n"
               "              --filter); queued, scheduled and running matches are kept and counted\n"
               "  --yes       do not ask first (deleting cannot be undone)\n"
               "A job's attempts and logs go with it; prints how many were deleted.\n"
               "Exit status 3 when --filter matches no finished job (nothing deleted).\n");
}

int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filter", required_argument, 0, 'f'}, {"yes", no_argument, 0, 'y'},
        {"help", no_argument, 0, 'h'},         CLI_DB_OPTS,
        {0, 0, 0, 0},
    };
    const char *db = NULL, *filter = NULL;
    bool yes = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "f:yhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'f': filter = optarg; break;
        case 'y': yes = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default: delete_usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
        }
    }
    size_t n_args = (size_t)(argc - optind);
    if ((filter != NULL) == (n_args > 0)) {
        cli_error(filter ? "give job ids or --filter, not both"
                         : "which jobs? give their ids or --filter F");
        delete_usage(stderr);
        return 2;
    }
    int64_t *ids = NULL;
    size_t n = 0;
    aspen_store_filter f;
    char buf[4096];
    if (filter) {
        if (cli_filter_arg(filter, &f, buf, sizeof buf))
            return 2;
    } else {
        ids = calloc(n_args, sizeof *ids);
        if (!ids) {
            cli_error("out of memory");
            return 1;
        }
        for (size_t i = 0; i < n_args; i++)
            if (cli_id_arg(argv[optind + (int)i], &ids[n++], "aspen delete ID... | --filter F [--yes] [--db PATH]") != 0) {
                free(ids);
                return 2;
            }
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng)) {
        free(ids);
        return 1;
    }
    int64_t kept = 0; /* --filter: matches that are not finished */
    if (filter) {
        aspen_store_filter unfinished = f;
        unsigned want = f.states ? f.states : ~0u;
        f.states = want & FINAL_STATES;
        unfinished.states = want & ~FINAL_STATES & ((1u << ASPEN_STORE_STATE_COUNT) - 1);
        if (unfinished.states) {
            /* what is kept, counted exactly so the message can say it */
            int64_t *skip = NULL;
            size_t n_skip = 0;
            if (matching_ids(eng, &unfinished, &skip, &n_skip) != 0) {
                aspen_engine_close(eng);
                return 1;
            }
            kept = (int64_t)n_skip;
            free(skip);
        }
        if (f.states && matching_ids(eng, &f, &ids, &n) != 0) {
            aspen_engine_close(eng);
            return 1;
        }
        if (n == 0) {
            printf("no finished job matches '%s'%s\n", filter,
                   kept ? " (the matching jobs are queued, scheduled or running: cancel them "
                          "first)"
                        : "");
            fflush(stdout);
            if (!kept)
                cli_filter_queue_note(aspen_engine_db_path(eng), &f);
            aspen_engine_close(eng);
            /* nothing to do: exit 3, as cancel --filter and retry --failed (it was 0, read by a
             * script as "deleted": trial 23) */
            return 3;
        }
    }
    if (!yes) {
        char q[700];
        if (filter)
            snprintf(q, sizeof q, "Delete %zu finished job%s matching '%.400s'%s?", n,
                     n == 1 ? "" : "s", filter, kept ? " (unfinished ones are kept)" : "");
        else if (n == 1)
            snprintf(q, sizeof q, "Delete job %lld?", (long long)ids[0]);
        else
            snprintf(q, sizeof q, "Delete %zu jobs?", n);
        if (!cli_confirm(q, "delete")) {
            aspen_engine_close(eng);
            free(ids);
            fprintf(stderr, "nothing deleted\n");
            return 1;
        }
    }
    size_t deleted = 0, refused = 0;
    if (filter) {
        /* One transaction per batch (aspen_store_delete_jobs): a batch goes whole or not at all,
         * and the write lock is held for one batch at a time. A job that stopped being finished
         * or was deleted meanwhile is left alone. */
        for (size_t i = 0; i < n; i += DELETE_BATCH) {
            size_t k = n - i < DELETE_BATCH ? n - i : DELETE_BATCH;
            int64_t gone = 0;
            aspen_engine_error err = {0};
            if (aspen_engine_delete_jobs(eng, ids + i, k, &gone, &err) != 0) {
                cli_error("%s (the %zu jobs deleted before were)", err.msg, deleted);
                refused += n - i;
                break;
            }
            deleted += (size_t)gone;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            aspen_engine_error err = {0};
            if (aspen_engine_delete(eng, ids[i], &err) == 0) {
                deleted++;
            } else {
                refused++;
                cli_error("%s", err.msg);
            }
        }
    }
    aspen_engine_close(eng);
    free(ids);
    printf("deleted %zu job%s", deleted, deleted == 1 ? "" : "s");
    if (refused)
        printf(", %zu refused", refused);
    if (kept)
        printf(", %lld matching job%s not finished (kept)", (long long)kept, kept == 1 ? "" : "s");
    printf("\n");
    return refused ? 1 : 0;
}

/* ---- purge -------------------------------------------------------------------------------------- */

static void purge_usage(FILE *f)
{
    /* every line under 80 columns as written: cli_help wraps a longer one at its last space,
     * which left a lone word on a line of its own mid-sentence (trial 10) */
    cli_help(f,
            "usage: aspen purge --older-than DURATION | --state S[,S] [--older-than D]\n"
            "                   [--yes | --dry-run] [--json] [--db PATH]\n"
            "  --older-than D  delete finished jobs that finished more than D ago: 500ms,\n"
            "                  90s, 15m, 12h, 30d, 2w, 1h30m (a unit is required)\n"
            "  --state S,...   only these final states (succeeded, failed, cancelled);\n"
            "                  without --older-than, every job in them\n"
            "  --yes           do not ask first\n"
            "  --dry-run       say how many it would delete, per state, and delete nothing\n"
            "  --json          the counts (and what was deleted) as one JSON object\n"
            "It says how many jobs of each state it is about to delete before it asks, and\n"
            "that nothing matched (the states and age) when none does.\n"
            "A job's attempts, logs and everything else of it go with it, oldest first, in\n"
            "short transactions paced as the engines' retention pruner paces itself (a few\n"
            "ms each: running engines keep claiming). Ctrl-C stops after the current one and\n"
            "says how many went. Queued, scheduled and running jobs are never purged.\n"
            "Exit status 3 when nothing matched (nothing deleted; --dry-run and --json too).\n");
}

/* Set by SIGINT/SIGTERM during a purge; read between batches. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* One purge's run: what the progress line says. */
typedef struct purge_run {
    aspen_engine_prune_progress p;
    aspen_store_state state;
    bool tty, shown;
    double started_ms, shown_at;
} purge_run;

/* The progress line (stderr, a terminal only): rewritten in place at most 10 times a second. */
static void purge_progress(purge_run *r, bool force)
{
    double now = (cli_now_us() / 1000);
    if (!r->tty || (!force && now - r->shown_at < 100))
        return;
    r->shown_at = now;
    double s = (now - r->started_ms) / 1000;
    fprintf(stderr, "\r\033[Kpurging %s jobs: %lld deleted (%.0f/s, %lld batches of up to %lld)"
                    " - Ctrl-C stops safely",
            aspen_store_state_name(r->state), (long long)r->p.deleted,
            s > 0 ? (double)r->p.deleted / s : 0.0, (long long)r->p.batches,
            (long long)r->p.batch_size);
    fflush(stderr);
    r->shown = true;
}

static void purge_progress_clear(purge_run *r)
{
    if (r->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        r->shown = false;
    }
}

/* After each batch: the progress, then the pause the pacing asks for, cut short by a signal. */
static bool purge_after(void *ctx, const aspen_engine_prune_progress *p, int pause_ms)
{
    purge_run *r = ctx;
    (void)p; /* the same struct as r->p */
    purge_progress(r, false);
    if (pause_ms <= 0)
        return true;
    if (g_stop)
        return false;
    struct timespec t = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    nanosleep(&t, NULL); /* EINTR: the signal, read next */
    return !g_stop;
}

/* What a purge would delete now: per final state and in all. */
typedef struct purge_count {
    unsigned states;
    int64_t n[ASPEN_STORE_STATE_COUNT];
    int64_t total;
} purge_count;

/* One count per state asked for, from the store (the kept counts, or a range of the index of
 * finished jobs: never the jobs themselves). 0, or 1 after the error line. */
static int purge_count_read(aspen_engine *eng, unsigned states, int64_t before, purge_count *c)
{
    c->states = states;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        if (!(states & (1u << st)))
            continue;
        aspen_engine_error err = {0};
        if (aspen_engine_prune_count(eng, (aspen_store_state)st, before, &c->n[st], &err)) {
            cli_error("counting the jobs to purge: %s (nothing deleted)", err.msg);
            return 1;
        }
        c->total += c->n[st];
    }
    return 0;
}

/* "12,345 finished jobs (succeeded 10,000, failed 2,000, cancelled 345) older than 24h": the
 * per-state figures when more than one state is asked for. */
static void purge_count_text(const purge_count *c, const char *what, const char *older, char *out,
                             size_t cap)
{
    char total[32];
    cli_format_count(c->total, total, sizeof total);
    size_t used = (size_t)snprintf(out, cap, "%s %s job%s", total, what, c->total == 1 ? "" : "s");
    int asked = 0;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        asked += (int)((c->states >> st) & 1u);
    if (asked > 1) {
        int k = 0;
        for (int st = 0; st < ASPEN_STORE_STATE_COUNT && used < cap; st++) {
            if (!(c->states & (1u << st)))
                continue;
            char n[32];
            cli_format_count(c->n[st], n, sizeof n);
            used += (size_t)snprintf(out + used, cap - used, "%s%s %s", k++ ? ", " : " (",
                                     aspen_store_state_name((aspen_store_state)st), n);
        }
        if (used < cap)
            used += (size_t)snprintf(out + used, cap - used, ")");
    }
    if (older && used < cap)
        snprintf(out + used, cap - used, " older than %s", older);
}

/* --json: {"dry_run", "older_than", "older_than_ms", "states": {STATE: n}, "total", "deleted",
 * "interrupted"}; "deleted" 0 on a dry run. 0 or 1. */
static int purge_json(const purge_count *c, const char *older, int64_t age_ms, bool dry_run,
                      int64_t deleted, bool interrupted)
{
    json_t *o = json_object(), *per = json_object();
    json_object_set_new(o, "dry_run", json_boolean(dry_run));
    json_object_set_new(o, "older_than", older ? cli_json_str(older) : json_null());
    json_object_set_new(o, "older_than_ms", older ? json_integer(age_ms) : json_null());
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (c->states & (1u << st))
            json_object_set_new(per, aspen_store_state_name((aspen_store_state)st),
                                json_integer(c->n[st]));
    json_object_set_new(o, "states", per);
    json_object_set_new(o, "total", json_integer(c->total));
    json_object_set_new(o, "deleted", json_integer(deleted));
    json_object_set_new(o, "interrupted", json_boolean(interrupted));
    int rc = cli_json_print(o, stdout, false) ? 1 : 0;
    json_decref(o);
    return rc;
}

int cmd_purge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"older-than", required_argument, 0, 'o'}, {"yes", no_argument, 0, 'y'},
        {"state", required_argument, 0, 's'},      {"dry-run", no_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},             {"help", no_argument, 0, 'h'},
        CLI_DB_OPTS,                               {0, 0, 0, 0},
    };
    const char *db = NULL, *older = NULL, *states_arg = NULL;
    bool yes = false, dry_run = false, json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "o:ys:nhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'o': older = optarg; break;
        case 'y': yes = true; break;
        case 'n': dry_run = true; break;
        case 'j': json = true; break;
        case 's': states_arg = optarg; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default: purge_usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
        }
    }
    int64_t age_ms = 0;
    if ((!older && !states_arg) || optind != argc) {
        cli_error(optind != argc ? "purge takes no other arguments"
                                 : "purge needs --older-than DURATION or --state S");
        purge_usage(stderr);
        return 2;
    }
    aspen_store_error se = {0};
    if (older && cli_parse_period("--older-than", older, &age_ms) != 0)
        return 2;
    unsigned states = FINAL_STATES;
    if (states_arg) {
        if (aspen_store_states_parse_in(states_arg, FINAL_STATES, &states, &se) != 0) {
            cli_error("--state: %s", se.msg);
            return 2;
        }
        if (states & ~FINAL_STATES) {
            for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
                if ((states & ~FINAL_STATES) & (1u << st)) {
                    cli_error("--state %s: only finished jobs are purged (succeeded, failed, "
                              "cancelled); cancel a %s job first",
                              aspen_store_state_name((aspen_store_state)st),
                              aspen_store_state_name((aspen_store_state)st));
                    break;
                }
            return 2;
        }
    }
    char what[160] = "";
    size_t used = 0;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
        if (states_arg && (states & (1u << st)))
            used += (size_t)snprintf(what + used, sizeof what - used, "%s%s", used ? ", " : "",
                                     aspen_store_state_name((aspen_store_state)st));
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    /* How many it is about to delete, per state, before it asks: the question says what "yes"
     * costs. The same cut-off as the deletes below (taken once, now). */
    int64_t before = older ? aspen_store_now_ms() - age_ms : INT64_MAX;
    purge_count cnt = {0};
    if (purge_count_read(eng, states, before, &cnt)) {
        aspen_engine_close(eng);
        return 1;
    }
    /* the question's "failed or cancelled" (the result line keeps its list, as scripts read it) */
    char either[160] = "";
    used = 0;
    for (int st = 0, k = 0, n = __builtin_popcount(states); st < ASPEN_STORE_STATE_COUNT; st++)
        if (states_arg && (states & (1u << st)))
            used += (size_t)snprintf(either + used, sizeof either - used, "%s%s",
                                     !k++ ? "" : k == n ? " or " : ", ",
                                     aspen_store_state_name((aspen_store_state)st));
    char question[600];
    purge_count_text(&cnt, states_arg ? either : "finished", older, question, sizeof question);
    /* nothing matched: said so, with what was asked, --yes or not ("purged 0" read as if
     * something had been done, and named neither the states nor the age: trial 10) */
    char none[400];
    snprintf(none, sizeof none, "nothing to purge: no %s job%s%s matched; nothing deleted",
             states_arg ? either : "finished", older ? " older than " : "", older ? older : "");
    if (dry_run || cnt.total == 0) {
        aspen_engine_close(eng);
        if (json) {
            int jrc = purge_json(&cnt, older, age_ms, dry_run, 0, false);
            return jrc ? jrc : cnt.total ? 0 : 3;
        }
        if (dry_run && cnt.total)
            printf("would delete %s; nothing deleted (without --dry-run it asks first)\n",
                   question);
        else
            printf("%s\n", none);
        /* nothing matched: exit 3 (nothing to do), as delete --filter, cancel --filter and
         * retry --failed; it was 0 (trial 23). --json prints its counts all the same. */
        return cnt.total ? 0 : 3;
    }
    if (!yes) {
        char q[700];
        snprintf(q, sizeof q, "Delete %s, with %s attempts and logs?", question,
                 cnt.total == 1 ? "its" : "their");
        if (!cli_confirm(q, "delete")) {
            aspen_engine_close(eng);
            fprintf(stderr, "nothing deleted\n");
            return 1;
        }
    }
    /* Every job that finished before now - age (no --older-than: before now + 1, i.e. all), state
     * by state, oldest first, paced as the engines' pruner paces itself. Ctrl-C (or SIGTERM) is
     * caught for the run and read between batches: the batch in flight commits, nothing after it
     * starts. A second one is the default again: it kills, and that too is safe (a batch is one
     * transaction), only without the count. */
    purge_run run = {.tty = isatty(STDERR_FILENO), .started_ms = (cli_now_us() / 1000)};
    struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* no SA_RESTART: the pause's sleep ends at once */
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = 0;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT && !rc && !run.p.stopped; st++) {
        if (!(states & (1u << st)))
            continue;
        if (g_stop) { /* between two states */
            run.p.stopped = true;
            break;
        }
        run.state = (aspen_store_state)st;
        aspen_engine_error err = {0};
        if (aspen_engine_prune_paced(eng, run.state, before, purge_after, &run, &run.p, &err)) {
            purge_progress_clear(&run);
            cli_error("%s (the %lld jobs purged before were; run the same command again to go "
                      "on)",
                      err.msg, (long long)run.p.deleted);
            rc = 1;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    aspen_engine_close(eng);
    purge_progress_clear(&run);
    if (rc)
        return 1;
    if (json) {
        int jrc = purge_json(&cnt, older, age_ms, false, run.p.deleted, run.p.stopped);
        return jrc ? jrc : run.p.stopped ? 130 : run.p.deleted ? 0 : 3;
    }
    if (run.p.deleted == 0 && !run.p.stopped) { /* they went meanwhile (another purge) */
        printf("%s\n", none);
        return 3;
    }
    char count[32]; /* 100,000 as in the question and every other count */
    cli_format_count(run.p.deleted, count, sizeof count);
    printf("purged %s %s job%s", count, states_arg ? what : "finished",
           run.p.deleted == 1 ? "" : "s");
    if (older)
        printf(" older than %s", older);
    if (run.p.stopped) {
        printf(" before it was interrupted; the rest are untouched (run the same command again to "
               "go on)\n");
        fflush(stdout);
        return 130; /* as a shell reports a command stopped by SIGINT */
    }
    printf("\n");
    return 0;
}
