/* cli/cmd_cron.c — `aspen cron add|list|runs|rm|pause|resume|run`: periodic jobs (schedules) kept
 * in the database and enqueued by whichever engine holds the scheduler lease (docs/SCHEDULES.md).
 * add goes through the engine (the guest is resolved and stored as a submit does); the others
 * call the store's schedule functions through a client engine. Times are shown in each
 * schedule's own zone, with its UTC offset. */
#include "aspen_vm.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t store_days_from_civil(int64_t y, int m, int d);
void store_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

static void cron_usage(FILE *f)
{
    cli_help(f, "%s",
             "usage: aspen cron add NAME 'EXPR' (GUEST | --guest G | --type T | --source DIR)\n"
             "                     [--payload JSON|@FILE|-] [--tz ZONE] [--queue Q]\n"
             "                     [--create-queue] [--missed skip|once] [--grace DURATION]\n"
             "                     [--timeout TIME] [--max-attempts N] [--priority N]\n"
             "                     [--memory SIZE] [--isolation] [--tag T]... [--paused]\n"
             "                     [--replace] [--any-type]\n"
             "       aspen cron list [QUEUE] [--json] [--wide]\n"
             "                                          every schedule (or those of QUEUE):\n"
             "                                          next, last run, outcome\n"
             "       aspen cron show NAME [--json]      one schedule, every setting of it\n"
             "       aspen cron runs NAME [--json]      its latest enqueued occurrences, jobs\n"
             "       aspen cron rm|pause|resume|run NAME  (run: enqueue one job now)\n"
             "  EXPR        5 fields 'minute hour day-of-month month day-of-week'\n"
             "              (*/15 9-17 * * MON-FRI), @hourly @daily @weekly @monthly\n"
             "              @yearly, or @every 30s|5m|1h30m\n"
             "  --tz        an IANA zone (Europe/Berlin; default UTC): fields match its wall\n"
             "              clock\n"
             "  --queue     a queue that exists (default, declared with aspen queue set, or\n"
             "              holding jobs); another is refused with a did-you-mean unless\n"
             "              --create-queue\n"
             "  --missed    occurrences older than --grace (default 60s) when an engine comes\n"
             "              back are dropped (skip, the default) or enqueued as one job (once)\n"
             "  --type T    a built-in type (echo, checksum, sleep), or with --any-type one\n"
             "              that a program of your own registers (aspen submit --help)\n"
             "  --wide      list and runs fit the terminal's width (80 when output is not a\n"
             "              terminal, or $COLUMNS) by hiding the least needed columns;\n"
             "              --wide shows them all\n"
             "  every command takes --db PATH\n");
}

/* A time in a zone as "2026-03-29 03:00:00 +02:00" ("-" for none). */
static void format_in_zone(int64_t ms, const char *zone, char *out, size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    aspen_store_tz *tz = NULL;
    if (aspen_store_tz_open(zone, &tz, NULL) != 0)
        tz = NULL;
    int64_t s = ms / 1000;
    int32_t off = tz ? aspen_store_tz_offset(tz, s, NULL) : 0;
    aspen_store_tz_close(tz);
    int64_t local = s + off, day = local / 86400 - (local % 86400 < 0), y;
    int mo, d;
    store_civil_from_days(day, &y, &mo, &d);
    int64_t sec = local - day * 86400;
    int aoff = off < 0 ? -off : off;
    snprintf(out, cap, "%04lld-%02d-%02d %02d:%02d:%02d %c%02d:%02d", (long long)y, mo, d,
             (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), off < 0 ? '-' : '+',
             aoff / 3600, aoff / 60 % 60);
}

static const char *outcome(const aspen_store_schedule *sc)
{
    if (!sc->last_job_id)
        return "-";
    if (sc->last_job_state < 0)
        return "deleted";
    return aspen_store_state_name((aspen_store_state)sc->last_job_state);
}

/* Why a schedule cannot run, or NULL: the scheduler's stored error, else its zone as this host
 * reads it now. A zone file removed (or a tzdata update that dropped a name) after the schedule
 * was added left cron list showing it "active", its next run printed at +00:00, while the
 * console said "broken" (trial 10): the stored next run was computed in a zone that no longer
 * loads, and no engine will run it. The message is the store's (buf holds it). */
static const char *schedule_problem(const aspen_store_schedule *sc, char *buf, size_t cap)
{
    if (sc->error)
        return sc->error;
    aspen_store_cron c;
    aspen_store_error e = {0};
    if (aspen_store_cron_parse(sc->expr, &c, &e) != 0) {
        snprintf(buf, cap, "%s", e.msg);
        return buf;
    }
    if (c.every_ms)
        return NULL; /* @every counts from UTC instants: no zone is read */
    aspen_store_tz *tz = NULL;
    if (aspen_store_tz_open(sc->tz, &tz, &e) != 0) {
        snprintf(buf, cap, "%s; no run is computed until its zone loads again here (or "
                           "give another: aspen cron add %s ... --replace --tz ZONE)",
                 e.msg, sc->name);
        return buf;
    }
    aspen_store_tz_close(tz);
    return NULL;
}

/* "paused", "broken" (it cannot compute its next run: problem says why) or "active": the
 * console's words (tui/pane_schedules.c), so both say the same of one schedule. */
static const char *schedule_state(const aspen_store_schedule *sc, const char *problem)
{
    return sc->paused ? "paused" : problem ? "broken" : "active";
}

static json_t *schedule_json(const aspen_store_schedule *sc)
{
    char why[1024];
    const char *problem = schedule_problem(sc, why, sizeof why);
    json_t *o = json_object();
    json_object_set_new(o, "name", cli_json_str(sc->name));
    json_object_set_new(o, "expr", cli_json_str(sc->expr));
    json_object_set_new(o, "tz", cli_json_str(sc->tz));
    /* a template with no queue enqueues to default: said as the table says it (null read as
     * "no queue", trial 22) */
    json_object_set_new(o, "queue", cli_json_str(sc->queue && *sc->queue ? sc->queue : "default"));
    json_object_set_new(o, "missed", json_string(sc->missed == ASPEN_STORE_MISSED_ONCE ? "once"
                                                                                      : "skip"));
    json_object_set_new(o, "grace_ms", json_integer(sc->grace_ms));
    json_object_set_new(o, "paused", json_boolean(sc->paused));
    json_object_set_new(o, "state", json_string(schedule_state(sc, problem)));
    json_object_set_new(o, "type", cli_json_str(sc->type));
    json_object_set_new(o, "guest", sc->binary_name ? cli_json_str(sc->binary_name) : json_null());
    json_object_set_new(o, "binary_sha256",
                        sc->binary_sha256 ? cli_json_str(sc->binary_sha256) : json_null());
    json_object_set_new(o, "payload", cli_json_parse_or_text(sc->payload, strlen(sc->payload)));
    json_object_set_new(o, "tags", cli_json_parse_or_text(sc->tags, strlen(sc->tags)));
    json_object_set_new(o, "priority", json_integer(sc->priority));
    json_object_set_new(o, "max_attempts", json_integer(sc->max_attempts));
    json_object_set_new(o, "timeout_ms", json_integer(sc->timeout_ms));
    /* a broken schedule has no next run: the stored one was computed in a zone that no longer
     * loads, and no engine enqueues it */
    int64_t next = problem ? 0 : aspen_store_schedule_next_due(sc);
    json_object_set_new(o, "next_run_ms", next ? json_integer(next) : json_null());
    json_object_set_new(o, "last_run_ms", sc->last_run_ms ? json_integer(sc->last_run_ms)
                                                          : json_null());
    json_object_set_new(o, "last_enqueued_at_ms", sc->last_enqueued_at_ms
                                                      ? json_integer(sc->last_enqueued_at_ms)
                                                      : json_null());
    json_object_set_new(o, "last_job", sc->last_job_id ? json_integer(sc->last_job_id)
                                                       : json_null());
    json_object_set_new(o, "last_outcome", sc->last_job_id ? json_string(outcome(sc))
                                                           : json_null());
    json_object_set_new(o, "runs", json_integer(sc->runs));
    json_object_set_new(o, "missed_count", json_integer(sc->missed_count));
    json_object_set_new(o, "error", problem ? cli_json_str(problem) : json_null());
    return o;
}

/* The queue a schedule's jobs go to, as the table shows it. */
static const char *queue_of(const aspen_store_schedule *sc)
{
    return sc->queue && *sc->queue ? sc->queue : "default";
}

/* aspen cron list QUEUE's argument: 0 when it is a queue (one a schedule enqueues to, or one
 * that exists), else 1 or 2 after saying what it is. A schedule's name given here (where
 * "cron list nightly" reads as "show me nightly") said only that the command took no
 * arguments (trial 23): it now says the argument is a queue and what shows one schedule. */
static int list_queue_check(aspen_engine *eng, const char *queue, const aspen_store_schedule *list,
                            size_t n)
{
    bool is_schedule = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(queue_of(&list[i]), queue) == 0)
            return 0;
        is_schedule = is_schedule || strcmp(list[i].name, queue) == 0;
    }
    aspen_store_error se = {0};
    int code = cli_queue_lookup(aspen_engine_db_path(eng), queue, &se);
    if (code == 0)
        return 0;
    char dba[4 * PATH_MAX + 16];
    cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    if (is_schedule)
        cli_error("aspen cron list takes a QUEUE (it lists the schedules whose jobs go there), "
                  "and %s is a schedule, not a queue: aspen cron show %s%s shows it (aspen cron "
                  "runs %s%s its runs)",
                  queue, queue, dba, queue, dba);
    else
        cli_error("aspen cron list takes a QUEUE (it lists the schedules whose jobs go there): "
                  "%s",
                  se.msg);
    return code == ASPEN_STORE_EINVAL ? 2 : 1;
}

static int cron_list(aspen_engine *eng, const char *queue, bool as_json)
{
    aspen_store_schedule *list = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_schedules(eng, &list, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    if (queue) {
        int qrc = list_queue_check(eng, queue, list, n);
        if (qrc) {
            aspen_store_schedules_free(list, n);
            return qrc;
        }
    }
    /* what is listed: every schedule, or those of the queue */
    bool *shown = calloc(n ? n : 1, sizeof *shown);
    if (!shown) {
        aspen_store_schedules_free(list, n);
        cli_error("out of memory listing the schedules");
        return 1;
    }
    size_t n_shown = 0;
    for (size_t i = 0; i < n; i++)
        n_shown += (shown[i] = !queue || strcmp(queue_of(&list[i]), queue) == 0);
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            if (shown[i])
                json_array_append_new(arr, schedule_json(&list[i]));
        cli_json_print(arr, stdout, false);
        json_decref(arr);
    } else {
        int64_t holder = 0, until = 0;
        aspen_engine_scheduler_holder(eng, &holder, &until, NULL);
        /* the name, its schedule, state and next run are kept at any width; an error goes
         * under its row, whole (wrapped by the terminal: it is the one thing to read) */
        static const cli_table_col cols[] = {
            {"NAME", 0, 16, 40, false},    {"SCHEDULE", 0, 12, 40, false},
            {"TZ", 4, 8, 32, false},       {"QUEUE", 3, 8, 40, false},
            {"STATE", 0, 0, 0, false},     {"NEXT RUN", 1, 0, 0, false},
            {"LAST RUN", 3, 0, 0, false},  {"LAST JOB", 2, 8, 24, false},
            {"RUNS", 5, 0, 0, true},
        };
        /* each schedule's problem, once: the row says "broken", the lines under the table why */
        char (*why)[1024] = calloc(n ? n : 1, sizeof *why);
        const char **problem = calloc(n ? n : 1, sizeof *problem);
        if (!why || !problem) {
            free(why);
            free(problem);
            free(shown);
            aspen_store_schedules_free(list, n);
            cli_error("out of memory listing the schedules");
            return 1;
        }
        size_t n_err = 0;
        for (size_t i = 0; i < n; i++)
            if (shown[i])
                n_err += (problem[i] = schedule_problem(&list[i], why[i], sizeof why[i])) != NULL;
        cli_table *t = cli_table_new(cols, sizeof cols / sizeof cols[0]);
        for (size_t i = 0; i < n; i++) {
            if (!shown[i])
                continue;
            const aspen_store_schedule *sc = &list[i];
            char next[48], last[48];
            if (problem[i])
                snprintf(next, sizeof next, "none (see below)");
            else
                format_in_zone(aspen_store_schedule_next_due(sc), sc->tz, next, sizeof next);
            format_in_zone(sc->last_run_ms, sc->tz, last, sizeof last);
            cli_table_str(t, sc->name);
            cli_table_str(t, sc->expr);
            cli_table_str(t, sc->tz);
            /* where its jobs go: the queue's limit, rate and pause apply to them */
            cli_table_str(t, queue_of(sc));
            cli_table_str(t, schedule_state(sc, problem[i]));
            cli_table_str(t, next);
            cli_table_str(t, last);
            if (sc->last_job_id)
                cli_table_fmt(t, "#%lld %s", (long long)sc->last_job_id, outcome(sc));
            else
                cli_table_str(t, "-");
            cli_table_fmt(t, "%lld", (long long)sc->runs);
        }
        /* a queue none enqueues to: the line below says so, under no empty header */
        int prc = n_shown || !queue ? cli_table_print(t, stdout) : 0;
        cli_table_free(t);
        if (prc) {
            free(why);
            free(problem);
            free(shown);
            aspen_store_schedules_free(list, n);
            return 1;
        }
        for (size_t i = 0; i < n && n_err; i++)
            if (problem[i]) {
                /* up to 600 columns: the store's reason and what to do, never cut mid-advice */
                char cell[4096], name[200];
                printf("  ! %s: %s\n", cli_cell_str(list[i].name, 30, name, sizeof name),
                       cli_cell_str(problem[i], 600, cell, sizeof cell));
            }
        free(why);
        free(problem);
        if (!n_shown && queue)
            printf("(no schedule enqueues to queue %s: aspen cron list shows every schedule)\n",
                   queue);
        else if (!n)
            printf("(no schedules: add one with aspen cron add NAME 'EXPR' GUEST)\n");
        else if (!holder)
            printf("(no engine holds the scheduler lease: nothing is\n"
                   " enqueued until an aspen worker or console runs)\n");
        else
            printf("(enqueued by engine %lld, the scheduler lease holder)\n", (long long)holder);
    }
    free(shown);
    aspen_store_schedules_free(list, n);
    return 0;
}

/* aspen cron show NAME: one schedule, every setting and figure of it (--json: the object of
 * cron list --json), as `aspen show ID` gives one job. 0, or 1 when there is none of the name
 * (with a "did you mean" among the schedules there are). */
static int cron_show(aspen_engine *eng, const char *name, bool as_json)
{
    aspen_store_schedule *list = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    if (aspen_engine_schedules(eng, &list, &n, &err) != 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    const aspen_store_schedule *sc = NULL;
    for (size_t i = 0; i < n && !sc; i++)
        if (strcmp(list[i].name, name) == 0)
            sc = &list[i];
    if (!sc) {
        const char **names = calloc(n ? n : 1, sizeof *names);
        for (size_t i = 0; names && i < n; i++)
            names[i] = list[i].name;
        const char *near = names ? cli_nearest(name, names, n) : NULL;
        char dba[4 * PATH_MAX + 16];
        cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
        if (near)
            cli_error("no schedule named \"%s\": did you mean %s? (aspen cron list%s shows them)",
                      name, near, dba);
        else
            cli_error("no schedule named \"%s\" (aspen cron list%s shows them)", name, dba);
        free(names);
        aspen_store_schedules_free(list, n);
        return 1;
    }
    if (as_json) {
        json_t *o = schedule_json(sc);
        cli_json_print(o, stdout, false);
        json_decref(o);
        aspen_store_schedules_free(list, n);
        return 0;
    }
    char why[1024], next[48], last[48], grace[48], timeout[48];
    const char *problem = schedule_problem(sc, why, sizeof why);
    if (problem)
        snprintf(next, sizeof next, "none (it is broken: below)");
    else if (sc->paused)
        snprintf(next, sizeof next, "none while paused");
    else
        format_in_zone(aspen_store_schedule_next_due(sc), sc->tz, next, sizeof next);
    format_in_zone(sc->last_run_ms, sc->tz, last, sizeof last);
    cli_format_duration_us(sc->grace_ms * 1000, grace, sizeof grace);
    cli_format_duration_us(sc->timeout_ms * 1000, timeout, sizeof timeout);
    /* every field escaped: a template's payload and tags are whatever was given */
    const struct {
        const char *k, *v;
    } rows[] = {
        {"schedule", sc->name},
        {"expression", sc->expr},
        {"time zone", sc->tz && *sc->tz ? sc->tz : "UTC"},
        {"queue", queue_of(sc)},
        {"state", schedule_state(sc, problem)},
        {"next run", next},
        {"last run", last},
        {"missed", sc->missed == ASPEN_STORE_MISSED_ONCE ? "once" : "skip"},
        {"grace", grace},
        {"type", sc->type},
        {"guest", sc->binary_name ? sc->binary_name : "-"},
        {"payload", sc->payload},
        {"tags", sc->tags},
        {"timeout", timeout},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        printf("%-11s ", rows[i].k);
        cli_puts(stdout, rows[i].v);
        fputc('\n', stdout);
    }
    printf("%-11s %d\n%-11s %d\n", "priority", sc->priority, "attempts", sc->max_attempts);
    if (sc->last_job_id)
        printf("%-11s #%lld %s\n", "last job", (long long)sc->last_job_id, outcome(sc));
    else
        printf("%-11s -\n", "last job");
    printf("%-11s %lld (missed %lld times)\n", "runs", (long long)sc->runs,
           (long long)sc->missed_count);
    if (problem) {
        printf("%-11s ", "error");
        cli_puts(stdout, problem);
        fputc('\n', stdout);
    }
    aspen_store_schedules_free(list, n);
    return 0;
}

static int cron_runs(const char *db, const char *name, bool as_json)
{
    char path[4096];
    if (cli_db_path(db, path, sizeof path) != 0)
        return 1;
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    aspen_store_options so = {.read_only = true};
    aspen_store_schedule_run *runs = NULL;
    size_t n = 0;
    if (cli_store_open(path, &so, &st, &se) != 0 ||
        aspen_store_schedule_runs(st, name, 100, &runs, &n, &se) != 0) {
        cli_error("%s", se.msg);
        aspen_store_close(st);
        return 1;
    }
    aspen_store_schedule sc = {0};
    aspen_store_schedule_get(st, name, &sc, NULL);
    aspen_store_close(st);
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:I, s:b, s:o, s:o, s:I}", "occurrence_ms",
                               (json_int_t)runs[i].occurrence_ms, "manual", runs[i].manual, "job",
                               runs[i].job_id ? json_integer(runs[i].job_id) : json_null(),
                               "engine",
                               runs[i].engine_id ? json_integer(runs[i].engine_id) : json_null(),
                               "enqueued_at_ms", (json_int_t)runs[i].enqueued_at_ms));
        cli_json_print(arr, stdout, false);
        json_decref(arr);
    } else {
        static const cli_table_col cols[] = {
            {"OCCURRENCE", 0, 0, 0, false}, {"KIND", 2, 0, 0, false}, {"JOB", 0, 0, 0, false},
            {"ENGINE", 3, 0, 0, true},      {"ENQUEUED", 1, 0, 0, false},
        };
        cli_table *t = cli_table_new(cols, sizeof cols / sizeof cols[0]);
        for (size_t i = 0; i < n; i++) {
            char occ[48], at[48];
            format_in_zone(runs[i].occurrence_ms, sc.tz, occ, sizeof occ);
            format_in_zone(runs[i].enqueued_at_ms, sc.tz, at, sizeof at);
            cli_table_str(t, occ);
            cli_table_str(t, runs[i].manual ? "run" : "cron");
            cli_table_fmt(t, "#%lld", (long long)runs[i].job_id);
            cli_table_fmt(t, "%lld", (long long)runs[i].engine_id);
            cli_table_str(t, at);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
        if (!n)
            printf("(nothing enqueued yet)\n");
    }
    aspen_store_schedule_clear(&sc);
    aspen_store_schedule_runs_free(runs);
    return 0;
}

/* "90s", "5m", "1h", "1h30m", "2d" into ms. */
static int cron_add(int argc, char **argv)
{
    static const struct option opts[] = {
        {"guest", required_argument, 0, 'G'},   {"type", required_argument, 0, 'T'},
        {"source", required_argument, 0, 's'},  {"payload", required_argument, 0, 'p'},
        {"tz", required_argument, 0, 'z'},      {"queue", required_argument, 0, 'q'},
        {"missed", required_argument, 0, 'M'},  {"grace", required_argument, 0, 'g'},
        {"timeout", required_argument, 0, 't'}, {"max-attempts", required_argument, 0, 'a'},
        {"priority", required_argument, 0, 'P'}, {"memory", required_argument, 0, 'm'},
        {"isolation", no_argument, 0, 'i'},     {"tag", required_argument, 0, 'x'},
        {"paused", no_argument, 0, 'S'},        {"replace", no_argument, 0, 'R'},
        {"create-queue", no_argument, 0, 'Q'},  {"help", no_argument, 0, 'h'},
        {"any-type", no_argument, 0, 'Y'},
        CLI_DB_OPTS,                            {0, 0, 0, 0},
    };
    aspen_engine_job_spec spec = {0};
    aspen_engine_schedule_def def = {0};
    bool create_queue = false, any_type = false;
    const char *db = NULL, *payload_arg = NULL, *tags[64];
    size_t n_tags = 0;
    long long v;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "G:T:s:p:z:q:M:g:t:a:P:m:ix:SRQhD:", opts, "cron add")) !=
           -1) {
        switch (c) {
        case 'G': spec.guest = optarg; break;
        case 'T': spec.type = optarg; break;
        case 's': spec.source_dir = optarg; break;
        case 'p': payload_arg = optarg; break;
        case 'z': def.tz = optarg; break;
        case 'q': def.queue = optarg; break;
        case 'M':
            if (strcmp(optarg, "skip") == 0)
                def.missed = ASPEN_STORE_MISSED_SKIP;
            else if (strcmp(optarg, "once") == 0)
                def.missed = ASPEN_STORE_MISSED_ONCE;
            else {
                cli_error("--missed is skip or once, not '%s'", optarg);
                return 2;
            }
            break;
        case 'g':
            if (cli_parse_period("--grace", optarg, &def.grace_ms) != 0)
                return 2;
            break;
        case 't':
            if (cli_parse_ms("--timeout", optarg, 1, 86400000, &v))
                return 2;
            spec.timeout_ms = v;
            break;
        case 'a':
            if (cli_parse_num("--max-attempts", optarg, 1, 1000, &v))
                return 2;
            spec.max_attempts = (int)v;
            break;
        case 'P':
            if (cli_parse_num("--priority", optarg, -1000000, 1000000, &v))
                return 2;
            spec.priority = (int)v;
            break;
        case 'm':
            if (cli_memory_opt(optarg, &spec.memory_bytes))
                return 2;
            break;
        case 'i': spec.isolation = true; break;
        case 'x':
            if (n_tags == 64) {
                cli_error("at most 64 tags");
                return 2;
            }
            tags[n_tags++] = optarg;
            break;
        case 'S': def.paused = true; break;
        case 'R': def.replace = true; break;
        case 'Q': create_queue = true; break;
        case 'Y': any_type = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h': cron_usage(stdout); return 0;
        default: cron_usage(stderr); return 2;
        }
    }
    if (argc - optind < 2) {
        cli_error("aspen cron add needs a NAME and an EXPR ('*/5 * * * *', @daily, @every 30s)");
        cli_usage_line("aspen cron add NAME 'EXPR' (GUEST | --guest G | --type T | --source DIR)");
        return 2;
    }
    def.name = argv[optind++];
    def.expr = argv[optind++];
    /* the name is an argument too: a bad one is a usage error (exit 2) before the database is
     * opened, as a bad --queue name is (it exited 1 from the store's check: trial 23) */
    aspen_store_error ne = {0};
    if (aspen_store_schedule_check_name(def.name, &ne) != 0) {
        cli_error("%s", ne.msg);
        return 2;
    }
    if (optind < argc) {
        if (spec.guest) {
            cli_error("give the guest once: a GUEST argument or --guest, not both");
            return 2;
        }
        spec.guest = argv[optind++];
    }
    if (optind != argc) {
        cli_error("unexpected argument '%s' (quote the expression: '*/5 * * * *')", argv[optind]);
        cli_usage_line("aspen cron add NAME 'EXPR' (GUEST | --guest G | --type T | --source DIR)");
        return 2;
    }
    if (!spec.guest && !spec.type && !spec.source_dir) {
        cli_error("say what each run runs: a GUEST, --guest G, --type T or --source DIR");
        return 2;
    }
    /* the expression and the zone are arguments: wrong ones are usage errors (exit 2), said
     * before any database is opened, as every other bad argument is */
    aspen_store_cron parsed;
    aspen_store_error pe = {0};
    aspen_store_tz *zone = NULL;
    if (aspen_store_cron_parse(def.expr, &parsed, &pe) != 0 ||
        (def.tz && aspen_store_tz_open(def.tz, &zone, &pe) != 0)) {
        cli_error("%s", pe.msg);
        return 2;
    }
    aspen_store_tz_close(zone);
    /* a --queue no queue may be named is a usage error too, as in aspen queue (it was found
     * only once the database was open, exit 1: trial 23) */
    if (def.queue && aspen_store_queue_name_check(def.queue, &pe) != 0) {
        cli_error("--queue: %s", pe.msg);
        return 2;
    }
    spec.tags = tags;
    spec.n_tags = n_tags;
    if (cli_guest_with_in_process_type(&spec, "the guest") != 0)
        return 2;
    char *payload = NULL;
    if (payload_arg) {
        char from[4200], msg[4608];
        size_t len = 0;
        if (!(payload = cli_load_payload(payload_arg, &len, from, sizeof from, msg, sizeof msg))) {
            cli_error("%s", msg);
            return 1;
        }
        spec.payload = payload;
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng)) {
        free(payload);
        return 1;
    }
    /* the submit's rule: a typo would make a schedule whose every job waits in a queue that no
     * `aspen worker --queues` serves, unseen until someone wonders where the runs went */
    if (cli_type_runnable(eng, &spec, any_type) != 0 ||
        (!create_queue &&
         cli_queue_known(aspen_engine_db_path(eng), def.queue, "--queue", "this schedule") != 0)) {
        aspen_engine_close(eng);
        free(payload);
        return 1;
    }
    /* checked again inside the store's transaction: a queue removed since the check above is
     * not left behind in a schedule whose first run would make it again */
    def.require_queue = !create_queue;
    aspen_engine_error err = {0};
    int64_t id = 0;
    int rc = aspen_engine_schedule_add(eng, &def, &spec, &id, &err);
    aspen_store_error se = {0};
    if (rc) {
        cli_error("%s", err.msg);
    } else if (create_queue && cli_queue_declare(aspen_engine_db_path(eng), def.queue, &se) != 0) {
        /* the schedule stands; its first job will make the queue as a submit does */
        fprintf(stderr, "warning: schedule %s added, but declaring its queue %s failed: %s (its "
                        "first run makes the queue)\n", def.name, def.queue, se.msg);
    }
    if (!rc) {
        aspen_store_schedule *list = NULL;
        size_t n = 0;
        char next[48] = "-";
        if (aspen_engine_schedules(eng, &list, &n, NULL) == 0)
            for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].name, def.name) == 0)
                    format_in_zone(aspen_store_schedule_next_due(&list[i]), list[i].tz, next,
                                   sizeof next);
        aspen_store_schedules_free(list, n);
        printf("schedule %s %s; next run %s%s\n", def.name, def.replace ? "stored" : "added",
               next, def.paused ? " (paused)" : "");
    }
    aspen_engine_close(eng);
    free(payload);
    return rc ? 1 : 0;
}

int cmd_cron(int argc, char **argv)
{
    static const char *const subs[] = {"add",   "list",   "show", "runs",
                                       "rm",    "pause",  "resume", "run"};
    bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    if (argc < 2 || (argv[1][0] == '-' && !help)) {
        /* options come after the command: `aspen cron --db x list` */
        cli_error(argc < 2 ? "aspen cron needs a command: add, list, show, runs, rm, pause, "
                             "resume or run"
                           : "aspen cron needs a command first, then its options: add, list, "
                             "show, runs, rm, pause, resume or run");
        cli_usage_line("aspen cron add|list|show|runs|rm|pause|resume|run ... (aspen cron --help)");
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cron_usage(stdout);
        return 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        return cron_add(argc - 1, argv + 1);
    bool known = false;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        known = known || strcmp(sub, subs[i]) == 0;
    if (!known) {
        const char *near = cli_nearest(sub, subs, sizeof subs / sizeof subs[0]);
        if (near)
            cli_error("unknown cron command '%s': did you mean %s?", sub, near);
        else
            cli_error("unknown cron command '%s': add, list, show, runs, rm, pause, resume or "
                      "run",
                      sub);
        return 2;
    }
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_WIDE_OPT,
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    bool as_json = false;
    const char *db = NULL;
    int c;
    optind = 1;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "cron %s", sub);
    while ((c = cli_getopt(argc - 1, argv + 1, "jhD:", opts, cmd)) != -1) {
        bool lists = strcmp(sub, "list") == 0 || strcmp(sub, "runs") == 0;
        if (c == 'j' && (lists || strcmp(sub, "show") == 0))
            as_json = true;
        else if (c == 'W' && lists)
            cli_wide = true;
        else if (c == 'D')
            db = optarg;
        else if (c == 'C')
            cli_create = true;
        else {
            cron_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    char **rest = argv + 1 + optind;
    int n_rest = argc - 1 - optind;
    bool wants_name = strcmp(sub, "list") != 0;
    if (wants_name ? n_rest != 1 : n_rest > 1) {
        if (wants_name)
            cli_error(n_rest ? "aspen cron %s takes one schedule NAME: quote a name with spaces"
                             : "aspen cron %s needs one schedule NAME (aspen cron list shows them)",
                      sub);
        else
            cli_error("aspen cron list takes at most one QUEUE, the queue whose schedules it "
                      "lists (aspen cron show NAME shows one schedule)");
        fprintf(stderr, wants_name ? "usage: aspen cron %s NAME [--db PATH]\n"
                                   : "usage: aspen cron %s [QUEUE] [--json] [--db PATH]\n", sub);
        return 2;
    }
    /* A name no schedule can have is a usage error (exit 2) before any database is opened, as a
     * bad queue name is in aspen queue (trial 23: cron said 1, queue 2, for the same mistake). */
    if (wants_name) {
        aspen_store_error ne = {0};
        if (aspen_store_schedule_check_name(rest[0], &ne) != 0) {
            cli_error("%s", ne.msg);
            return 2;
        }
    }
    if (strcmp(sub, "runs") == 0)
        return cron_runs(db, rest[0], as_json);
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    int rc = 0;
    if (strcmp(sub, "list") == 0) {
        rc = cron_list(eng, n_rest ? rest[0] : NULL, as_json);
        aspen_engine_close(eng);
        return rc;
    } else if (strcmp(sub, "show") == 0) {
        rc = cron_show(eng, rest[0], as_json);
        aspen_engine_close(eng);
        return rc;
    } else if (strcmp(sub, "rm") == 0) {
        if ((rc = aspen_engine_schedule_remove(eng, rest[0], &err)) == 0)
            printf("schedule %s removed (the jobs it enqueued stay)\n", rest[0]);
    } else if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0) {
        bool pause = strcmp(sub, "pause") == 0;
        /* A pause of a paused schedule (or a resume of an active one) changes nothing: say so,
         * as aspen queue pause does, so an operator who expected a change (another operator
         * first, the wrong name) notices. The set below still runs: it names a missing one. */
        bool unchanged = false;
        aspen_store_schedule *list = NULL;
        size_t n = 0;
        if (aspen_engine_schedules(eng, &list, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].name, rest[0]) == 0)
                    unchanged = list[i].paused == pause;
            aspen_store_schedules_free(list, n);
        }
        char dba[4 * PATH_MAX + 16]; /* the command printed opens this database when pasted */
        cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
        rc = aspen_engine_schedule_set_paused(eng, rest[0], pause, &err);
        if (rc)
            ; /* said below, in the store's words */
        else if (unchanged)
            printf("schedule %s was already %s: nothing changed (aspen cron %s %s%s %s)\n",
                   rest[0], pause ? "paused" : "active", pause ? "resume" : "pause", rest[0], dba,
                   pause ? "starts it again" : "stops it");
        else if (pause)
            printf("schedule %s paused\n", rest[0]);
        else
            printf("schedule %s resumed (occurrences while paused are not run)\n", rest[0]);
    } else {
        aspen_store_submitted job = {0};
        if ((rc = aspen_engine_schedule_run_now_ex(eng, rest[0], &job, &err)) == 0) {
            /* its job still waits or runs: its id, and why no other, as a duplicate submit */
            printf("%lld\n", (long long)job.id);
            if (job.duplicate) {
                char note[600];
                aspen_store_schedule_duplicate_message(rest[0], &job, aspen_store_now_ms(), note,
                                                       sizeof note);
                fprintf(stderr, "%s\n", note);
            }
        }
    }
    if (rc && rc != 1)
        cli_error("%s", err.msg);
    aspen_engine_close(eng);
    return rc ? 1 : 0;
}
