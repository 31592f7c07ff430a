/* cli/cmd_edit.c — edits of a waiting job: `aspen priority ID N` (a queued or scheduled job's
 * priority; it takes its new place in the queue at once) and `aspen run-now ID` (a scheduled job,
 * waiting for its --delay or a retry's backoff, is queued now). Both backends, through the engine
 * API (which wakes the engines); the store says why when the job's state does not allow it. And
 * run-now's inverse, `aspen snooze ID DURATION` / `aspen snooze --filter F DURATION` (a waiting
 * job put off by DURATION from when it would run: now, or a scheduled job's later run_at).
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage; snooze --filter 3 when
 * no waiting job matched (as cancel --filter). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* The arguments by hand, not getopt: a priority may be negative (`aspen priority 7 -5`), which
 * getopt would take for an option. --db PATH / --db=PATH, --create, --help; the rest positional. */
static int edit_args(int argc, char **argv, const char *usage, const char *what, const char **pos,
                     int n_pos, const char **db)
{
    int got = 0;
    *db = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_help(stdout, "%s", usage);
            return -1;
        } else if (strcmp(a, "--db") == 0) {
            if (i + 1 >= argc) {
                cli_error("--db needs a value (aspen %s --help lists the options)", argv[0]);
                return 2;
            }
            *db = argv[++i];
        } else if (strncmp(a, "--db=", 5) == 0) {
            *db = a + 5;
        } else if (strcmp(a, "--create") == 0) {
            cli_create = true;
        } else if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
            cli_error("unknown option '%s' for aspen %s (aspen %s --help lists the options)", a,
                      argv[0], argv[0]);
            cli_usage_line(usage);
            return 2;
        } else if (got < n_pos) {
            pos[got++] = a;
        } else {
            cli_error("unexpected argument '%s': aspen %s takes %s", a, argv[0], what);
            cli_usage_line(usage);
            return 2;
        }
    }
    if (got != n_pos) {
        cli_error("aspen %s needs %s", argv[0], what);
        cli_usage_line(usage);
        return 2;
    }
    return 0;
}

int cmd_priority(int argc, char **argv)
{
    static const char usage[] =
        "usage: aspen priority ID N [--db PATH]\n"
        "  sets the priority of a waiting job (queued or scheduled) to N, from -1000000 to\n"
        "  1000000; higher runs first, and the job takes its new place in the queue at once.\n"
        "  A running or finished job keeps its priority (aspen rerun ID makes a new job).\n";
    const char *pos[2], *db;
    int rc = edit_args(argc, argv, usage, "a job ID and a priority N", pos, 2, &db);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t id;
    long long prio;
    if (cli_id_arg(pos[0], &id, usage) ||
        cli_parse_num("the priority", pos[1], ASPEN_STORE_PRIORITY_MIN, ASPEN_STORE_PRIORITY_MAX,
                      &prio))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    rc = aspen_engine_set_priority(eng, id, (int)prio, &err);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    printf("job %lld: priority %lld\n", (long long)id, prio);
    return 0;
}

int cmd_run_now(int argc, char **argv)
{
    static const char usage[] =
        "usage: aspen run-now ID [--db PATH]\n"
        "  a scheduled job (submitted with --delay, or waiting out a retry's backoff) is\n"
        "  queued now: it runs as soon as a worker is free, in the order of its priority.\n";
    const char *pos[1], *db;
    int rc = edit_args(argc, argv, usage, "a job ID (aspen jobs lists them)", pos, 1, &db);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t id;
    if (cli_id_arg(pos[0], &id, usage))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    rc = aspen_engine_run_now(eng, id, &err);
    /* the store says which state the job is in; for a finished one, what runs it again */
    aspen_store_job j = {0};
    aspen_engine_error gerr = {0};
    char instead[96] = "";
    if (rc == ASPEN_ENGINE_ESTATE && aspen_engine_get(eng, id, &j, &gerr) == 0 &&
        aspen_store_state_is_final(j.state))
        snprintf(instead, sizeof instead, " (to run a finished job again: aspen rerun %lld)",
                 (long long)id);
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s%s", err.msg, instead);
        return 1;
    }
    printf("job %lld queued: it runs now\n", (long long)id);
    return 0;
}

/* ---- aspen snooze ------------------------------------------------------------------------------ */

static const char snooze_usage[] =
    "usage: aspen snooze ID DURATION [--json] [--db PATH]\n"
    "       aspen snooze --filter F DURATION [--yes | --dry-run] [--json] [--db PATH]\n"
    "  puts a waiting job (queued, or scheduled for a --delay or a retry's backoff) off: it\n"
    "  it runs DURATION later than it would have (now, or a scheduled job's own time: a\n"
    "  snooze never brings a job earlier; 30s, 10m, 1h30m, 2d; at most 365d). No\n"
    "  attempt is counted; its priority, queue and unique key stay. A running job is not\n"
    "  snoozed (it runs now: aspen cancel ID stops it), nor one an engine is starting.\n"
    "  --filter F  every queued or scheduled job F matches (the filter language of aspen\n"
    "              jobs), in batches of 1,000; it says how many and which, and asks\n"
    "  --yes       do not ask (a script may instead answer: echo y |)\n"
    "  --dry-run   say what would be snoozed, and snooze nothing\n"
    "  --json      the outcome as one JSON object\n"
    "aspen run-now ID undoes it (the job is queued now).\n"
    "exit status: 0 done, 1 refused or failed, 2 usage, 3 nothing to do (no waiting job\n"
    "matched the filter)\n";

/* DURATION as --older-than and --unique-for take it (a unit is required: a bare 10 is refused
 * rather than guessed), within a snooze's bounds: 0 or less would make the job due (run-now's
 * work) and more than a year is most likely a unit mistaken. 0, or 2 after the error. */
static int snooze_duration_check(const char *s, int64_t *ms)
{
    if (!*s) {
        cli_error("DURATION is empty: give how long to put the job off, e.g. 30s, 10m or 1h30m "
                  "(at most 365d)");
        return -1;
    }
    if (s[0] == '-') {
        cli_error("DURATION '%s' is negative: a snooze puts a job off by more than 0, at most "
                  "365d (to run a scheduled job now: aspen run-now ID)",
                  s);
        return -1;
    }
    if (cli_parse_period("DURATION", s, ms))
        return -1;
    if (*ms <= 0) {
        cli_error("DURATION '%s' puts nothing off: give more than 0, at most 365d (to run a "
                  "scheduled job now: aspen run-now ID)",
                  s);
        return -1;
    }
    if (*ms > ASPEN_STORE_SNOOZE_MAX_MS) {
        cli_error("DURATION '%s' is too long: a snooze is at most 365d (a year, as submit's "
                  "--delay)",
                  s);
        return -1;
    }
    return 0;
}

/* snooze_duration_check, with the usage line after its error (every usage error's shape). */
static int snooze_duration(const char *s, int64_t *ms)
{
    if (snooze_duration_check(s, ms) == 0)
        return 0;
    cli_usage_line(snooze_usage);
    return 2;
}

#define SNOOZE_SHOWN_IDS 5

/* What aspen snooze --filter is about to do: the waiting matches per state, counted on a
 * read-only handle (a --dry-run writes nothing), and the oldest few ids. 0, or 1 printed. */
struct snooze_plan {
    int64_t queued, scheduled, total;
    int64_t ids[SNOOZE_SHOWN_IDS];
    size_t n_ids;
};

static int snooze_plan_read(aspen_engine *eng, const aspen_store_filter *f0,
                            struct snooze_plan *p)
{
    aspen_store_filter f = *f0;
    unsigned waiting = (f.states ? f.states : ~0u) &
                       (1u << ASPEN_STORE_QUEUED | 1u << ASPEN_STORE_SCHEDULED);
    if (!waiting)
        return 0; /* running or finished states only: nothing to snooze */
    aspen_store_options so = {.read_only = true};
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    if (cli_store_open(aspen_engine_db_path(eng), &so, &st, &se) != 0) {
        cli_error("cannot open the database to count the matching jobs: %s (nothing snoozed)",
                  se.msg);
        return 1;
    }
    int64_t *n[2] = {&p->queued, &p->scheduled};
    const aspen_store_state sts[2] = {ASPEN_STORE_QUEUED, ASPEN_STORE_SCHEDULED};
    for (int i = 0; i < 2; i++) {
        if (!(waiting & (1u << sts[i])))
            continue;
        f.states = 1u << sts[i];
        if (aspen_store_count(st, &f, n[i], &se) != 0) {
            aspen_store_close(st);
            cli_error("counting the matching jobs: %s (nothing snoozed)", se.msg);
            return 1;
        }
        p->total += *n[i];
    }
    aspen_store_close(st);
    if (!p->total)
        return 0;
    f.states = waiting;
    f.order = ASPEN_STORE_ORDER_OLDEST;
    f.limit = SNOOZE_SHOWN_IDS;
    f.offset = 0;
    aspen_store_job *jobs = NULL;
    size_t got = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_list(eng, &f, &jobs, &got, &err) != 0) {
        cli_error("listing the matching jobs: %s (nothing snoozed)", err.msg);
        return 1;
    }
    for (size_t i = 0; i < got && p->n_ids < SNOOZE_SHOWN_IDS; i++)
        p->ids[p->n_ids++] = jobs[i].id;
    aspen_store_jobs_free(jobs, got);
    return 0;
}

/* "3 waiting jobs matching 'tag:x' (2 queued, 1 scheduled), ids 4, 5, 9 and 2 more" */
static void snooze_plan_text(const struct snooze_plan *p, const char *filter, char *out, size_t cap)
{
    char count[32], q[32], sc[32];
    cli_format_count(p->total, count, sizeof count);
    cli_format_count(p->queued, q, sizeof q);
    cli_format_count(p->scheduled, sc, sizeof sc);
    size_t used = (size_t)snprintf(out, cap, "%s waiting job%s matching '%.400s' (%s%s%s%s%s)",
                                   count, p->total == 1 ? "" : "s", filter,
                                   p->queued ? q : "", p->queued ? " queued" : "",
                                   p->queued && p->scheduled ? ", " : "",
                                   p->scheduled ? sc : "", p->scheduled ? " scheduled" : "");
    for (size_t i = 0; i < p->n_ids && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%lld",
                                 i ? ", " : p->n_ids == 1 ? ", id " : ", ids ", (long long)p->ids[i]);
    if (p->total > (int64_t)p->n_ids && used < cap)
        snprintf(out + used, cap - used, " and %lld more", (long long)(p->total - (int64_t)p->n_ids));
}

static int snooze_filter(const char *filter, int64_t delay_ms, const char *delay_text,
                         const char *db, bool yes, bool dry_run, bool as_json)
{
    aspen_store_filter f;
    char buf[2048];
    if (!*filter) {
        cli_error("--filter is empty: give the jobs to snooze (e.g. --filter 'queue:slow', "
                  "'tag:nightly'); every waiting job would be --filter 'state:queued,scheduled'");
        return 2;
    }
    if (cli_filter_arg(filter, &f, buf, sizeof buf))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    struct snooze_plan plan = {0};
    if (snooze_plan_read(eng, &f, &plan)) {
        aspen_engine_close(eng);
        return 1;
    }
    char until[64];
    cli_format_time(aspen_store_now_ms() + delay_ms, until, sizeof until);
    if (!plan.total) {
        if (as_json) {
            json_t *o = json_object();
            json_object_set_new(o, "snoozed", json_integer(0));
            json_object_set_new(o, "reserved", json_integer(0));
            json_object_set_new(o, "matched", json_integer(0));
            cli_json_print(o, stdout, true);
            json_decref(o);
        } else {
            printf("no waiting job matches %s: nothing snoozed\n", filter);
        }
        fflush(stdout);
        cli_filter_queue_note(aspen_engine_db_path(eng), &f);
        aspen_engine_close(eng);
        return 3;
    }
    char what[900];
    snooze_plan_text(&plan, filter, what, sizeof what);
    if (dry_run) {
        aspen_engine_close(eng);
        if (as_json) {
            json_t *o = json_object();
            json_object_set_new(o, "would_snooze", json_integer(plan.total));
            json_object_set_new(o, "queued", json_integer(plan.queued));
            json_object_set_new(o, "scheduled", json_integer(plan.scheduled));
            json_object_set_new(o, "delay_ms", json_integer(delay_ms));
            cli_json_print(o, stdout, true);
            json_decref(o);
        } else {
            printf("would snooze %s by %s, each from when it would run (a queued job until "
                   "about %s); nothing snoozed (without --dry-run it asks first)\n",
                   what, delay_text, until);
        }
        return 0;
    }
    if (!yes) {
        char q[1100];
        snprintf(q, sizeof q,
                 "Snooze %s by %s, each from when it would run (a queued job until about %s)? "
                 "aspen run-now ID undoes it.",
                 what, delay_text, until);
        if (!cli_confirm(q, "snooze them")) {
            aspen_engine_close(eng);
            fprintf(stderr, "nothing snoozed\n");
            return 1;
        }
    }
    aspen_engine_error err = {0};
    int64_t snoozed = 0, reserved = 0;
    int rc = aspen_engine_snooze_matching(eng, &f, delay_ms, &snoozed, &reserved, &err);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s (nothing snoozed)", err.msg);
        return 1;
    }
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "snoozed", json_integer(snoozed));
        json_object_set_new(o, "reserved", json_integer(reserved));
        json_object_set_new(o, "matched", json_integer(plan.total));
        json_object_set_new(o, "delay_ms", json_integer(delay_ms));
        cli_json_print(o, stdout, true);
        json_decref(o);
    } else if (!snoozed && !reserved) {
        printf("no waiting job matches %s any more: nothing snoozed\n", filter);
    } else {
        printf("snoozed %lld job%s by %s, each from when it would run (a queued one at about %s)",
               (long long)snoozed, snoozed == 1 ? "" : "s", delay_text, until);
        if (reserved)
            printf("; %lld left as %s: an engine was starting %s (it runs now; aspen cancel "
                   "stops it), or %s unique rule does not count scheduled jobs",
                   (long long)reserved, reserved == 1 ? "it was" : "they were",
                   reserved == 1 ? "it" : "them", reserved == 1 ? "its" : "their");
        printf("\n");
    }
    return !snoozed ? 3 : 0; /* nothing snoozed (all left as they were): nothing done, as 3 says */
}

int cmd_snooze(int argc, char **argv)
{
    const char *pos[2] = {0}, *db = NULL, *filter = NULL;
    bool yes = false, dry_run = false, as_json = false;
    int got = 0;
    /* by hand, as edit_args: DURATION '-1s' is an argument to refuse, not an option */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_help(stdout, "%s", snooze_usage);
            return 0;
        } else if (strcmp(a, "--db") == 0 || strcmp(a, "--filter") == 0) {
            if (i + 1 >= argc) {
                cli_error("%s needs a value (aspen snooze --help lists the options)", a);
                return 2;
            }
            *(a[2] == 'd' ? &db : &filter) = argv[++i];
        } else if (strncmp(a, "--db=", 5) == 0) {
            db = a + 5;
        } else if (strncmp(a, "--filter=", 9) == 0) {
            filter = a + 9;
        } else if (strcmp(a, "--create") == 0) {
            cli_create = true;
        } else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
            yes = true;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry_run = true;
        } else if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            cli_error("unknown option '%s' for aspen snooze (aspen snooze --help lists the "
                      "options)",
                      a);
            cli_usage_line(snooze_usage);
            return 2;
        } else if (got < 2) {
            pos[got++] = a;
        } else {
            cli_error("unexpected argument '%s': aspen snooze takes %s", a,
                      filter ? "--filter F and a DURATION" : "a job ID and a DURATION");
            cli_usage_line(snooze_usage);
            return 2;
        }
    }
    if (yes && dry_run) {
        cli_error("--yes and --dry-run say opposite things: --dry-run snoozes nothing, --yes "
                  "snoozes without asking; give one");
        return 2;
    }
    if (filter) {
        if (got != 1) {
            cli_error(got ? "aspen snooze takes a job ID or --filter F, not both (unexpected "
                            "argument '%s' beside --filter)"
                          : "aspen snooze --filter F needs a DURATION (30s, 10m, 1h30m)%s",
                      got ? pos[0] : "");
            cli_usage_line(snooze_usage);
            return 2;
        }
        int64_t ms;
        int rc = snooze_duration(pos[0], &ms);
        return rc ? rc : snooze_filter(filter, ms, pos[0], db, yes, dry_run, as_json);
    }
    if (got != 2) {
        cli_error("aspen snooze needs %s (aspen jobs lists the jobs)",
                  got ? "a DURATION after the job ID (30s, 10m, 1h30m)"
                      : "a job ID and a DURATION, or --filter F and a DURATION");
        cli_usage_line(snooze_usage);
        return 2;
    }
    if (yes || dry_run) {
        cli_error("%s goes with --filter F: aspen snooze ID DURATION snoozes that job without "
                  "asking (aspen run-now ID undoes it)",
                  yes ? "--yes" : "--dry-run");
        return 2;
    }
    int64_t id, ms;
    int rc;
    if ((rc = cli_id_arg(pos[0], &id, snooze_usage)) || (rc = snooze_duration(pos[1], &ms)))
        return rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    rc = aspen_engine_snooze(eng, id, ms, &err);
    aspen_store_job j = {0};
    aspen_engine_error gerr = {0};
    int grc = rc ? -1 : aspen_engine_get(eng, id, &j, &gerr);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    int64_t run_at = grc == 0 ? j.run_at_ms : aspen_store_now_ms() + ms;
    aspen_store_job_clear(&j);
    char when[64];
    cli_format_time(run_at, when, sizeof when);
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        json_object_set_new(o, "state", json_string("scheduled"));
        json_object_set_new(o, "run_at_ms", json_integer(run_at));
        json_object_set_new(o, "delay_ms", json_integer(ms));
        cli_json_print(o, stdout, true);
        json_decref(o);
        return 0;
    }
    /* "by": put off that long from when it would have run (now, or its later run_at) */
    printf("job %lld snoozed by %s: scheduled, it runs at %s; aspen run-now %lld runs it now\n",
           (long long)id, pos[1], when, (long long)id);
    return 0;
}
