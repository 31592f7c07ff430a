/* cli/cmd_queues.c — `aspen queues [--json]` (every named queue with its settings and figures)
 * and `aspen queue set NAME [--limit N|--no-limit] [--rate N/PERIOD|--no-rate]`,
 * `aspen queue pause|resume NAME`, `aspen queue rm NAME` (refused while it holds unfinished jobs,
 * and for default). The settings live in the database and hold for every worker on it, on every
 * host (docs/QUEUES.md); these commands open the store themselves and start no engine. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static int open_store(const char *db, bool read_only, aspen_store **st)
{
    char path[4096];
    if (cli_db_path(db, path, sizeof path) != 0)
        return 1;
    aspen_store_options so = {.read_only = read_only};
    aspen_store_error se = {0};
    if (cli_store_open(path, &so, st, &se) != 0) {
        cli_error("%s", se.msg);
        return 1;
    }
    return 0;
}

static void rate_text(const aspen_store_queue_info *q, char *buf, size_t size)
{
    if (q->rate_n > 0)
        aspen_store_rate_format(q->rate_n, q->rate_period_ms, buf, size);
    else
        snprintf(buf, size, "-");
}

static json_t *queue_json(const aspen_store_queue_info *q, bool all_paused)
{
    char rate[48];
    rate_text(q, rate, sizeof rate);
    json_t *o = json_object();
    json_object_set_new(o, "name", cli_json_str(q->name));
    json_object_set_new(o, "queued", json_integer(q->queued));
    json_object_set_new(o, "scheduled", json_integer(q->scheduled));
    json_object_set_new(o, "running", json_integer(q->running));
    json_object_set_new(o, "reserved", json_integer(q->reserved));
    json_object_set_new(o, "limit", q->limit ? json_integer(q->limit) : json_null());
    json_object_set_new(o, "rate", q->rate_n ? json_string(rate) : json_null());
    json_object_set_new(o, "rate_n", q->rate_n ? json_integer(q->rate_n) : json_null());
    json_object_set_new(o, "rate_period_ms",
                        q->rate_n ? json_integer(q->rate_period_ms) : json_null());
    json_object_set_new(o, "paused", json_boolean(q->paused));
    /* aspen pause: no queue's jobs start, whatever its own pause says */
    json_object_set_new(o, "all_paused", json_boolean(all_paused));
    json_object_set_new(o, "oldest_waiting_ms", json_integer(q->oldest_waiting_ms));
    json_object_set_new(o, "finished_last_min", json_integer(q->finished_last_min));
    json_object_set_new(o, "throughput_capped", json_boolean(q->throughput_capped));
    return o;
}

int cmd_queues(int argc, char **argv)
{
    /* aspen queue set's options and --create are known here only to be refused by name with
     * where they go: `aspen queues --create` listed the queues and created nothing, silently
     * (trial 10), and --create opened no new database either (this command only reads). */
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_WIDE_OPT,
                                         CLI_DB_OPTS,
                                         {"limit", required_argument, 0, 'l'},
                                         {"no-limit", no_argument, 0, 'L'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"no-rate", no_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    const char *usage =
        "usage: aspen queues [--json] [--wide] [--db PATH]\n"
        "  every queue: jobs waiting (QUEUED, of which RESV reserved by an engine about\n"
        "  to start them), SCHED (later), RUNNING, its LIMIT (running at once, all\n"
        "  hosts), RATE, whether PAUSED (paused: the queue; all: every queue, by aspen\n"
        "  pause), the OLDEST due job's wait and DONE/MIN (finished in the last minute;\n"
        "  when more than 100,000 jobs were made in that minute only the newest 100,000\n"
        "  are counted: >=N is at least N, - none among them)\n"
        "  change them with aspen queue set|pause|resume NAME; aspen queue rm NAME\n"
        "  removes one\n"
        "  --wide  every column: the table fits the terminal (80 when output is not one)\n";
    bool as_json = false;
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "jhD:", opts, argv[0])) != -1) {
        if (c == 'j')
            as_json = true;
        else if (c == 'W')
            cli_wide = true;
        else if (c == 'D')
            db = optarg;
        else if (c == 'C') {
            cli_error("aspen queues only lists queues: --create makes no queue nor database here. "
                      "A queue is made by aspen queue set NAME --limit N (or --no-limit), or by "
                      "aspen submit --queue NAME --create-queue");
            cli_usage_line(usage);
            return 2;
        } else if (c == 'l' || c == 'L' || c == 'r' || c == 'R') {
            cli_error("aspen queues only lists queues: %s goes with aspen queue set NAME",
                      c == 'l' ? "--limit" : c == 'L' ? "--no-limit" : c == 'r' ? "--rate"
                                                                         : "--no-rate");
            cli_usage_line("aspen queue set NAME [--limit N | --no-limit] [--rate N/PERIOD | "
                           "--no-rate] [--db PATH]");
            return 2;
        } else {
            cli_help(c == 'h' ? stdout : stderr, "%s", usage);
            return c == 'h' ? 0 : 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "", usage);
    if (urc)
        return urc;
    aspen_store *st = NULL;
    if (open_store(db, true, &st))
        return 1;
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    int rc = aspen_store_queues(st, aspen_store_now_ms(), &qs, &n, &se);
    /* the global pause (aspen pause) holds every queue: the PAUSED column said "-" under it */
    bool all_paused = false;
    if (!rc)
        rc = aspen_store_paused(st, &all_paused, &se);
    char dba[4 * PATH_MAX + 16]; /* the command printed opens this database when pasted */
    cli_db_arg(aspen_store_path(st), dba, sizeof dba);
    aspen_store_close(st);
    if (rc) {
        cli_error("%s", se.msg);
        return 1;
    }
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, queue_json(&qs[i], all_paused));
        cli_json_print(arr, stdout, false);
        json_decref(arr);
    } else {
        /* the queue and what waits and runs in it are kept at any width */
        static const cli_table_col cols[] = {
            {"QUEUE", 0, 8, 64, false},   {"QUEUED", 0, 0, 0, true}, {"RESV", 5, 0, 0, true},
            {"SCHED", 3, 0, 0, true},     {"RUNNING", 0, 0, 0, true}, {"LIMIT", 1, 0, 0, true},
            {"RATE", 2, 0, 0, false},     {"PAUSED", 1, 0, 0, false}, {"OLDEST", 2, 0, 0, true},
            {"DONE/MIN", 4, 0, 0, true},
        };
        cli_table *t = cli_table_new(cols, sizeof cols / sizeof cols[0]);
        cli_table_names(t, 0); /* .2026 and .2027 stay apart when cut (trial 23) */
        for (size_t i = 0; i < n; i++) {
            const aspen_store_queue_info *q = &qs[i];
            char rate[48], oldest[24];
            rate_text(q, rate, sizeof rate);
            if (q->oldest_waiting_ms)
                cli_format_duration_us(q->oldest_waiting_ms * 1000, oldest, sizeof oldest);
            else
                snprintf(oldest, sizeof oldest, "-");
            cli_table_str(t, q->name);
            cli_table_fmt(t, "%lld", (long long)q->queued);
            cli_table_fmt(t, "%lld", (long long)q->reserved);
            cli_table_fmt(t, "%lld", (long long)q->scheduled);
            cli_table_fmt(t, "%lld", (long long)q->running);
            if (q->limit)
                cli_table_fmt(t, "%lld", (long long)q->limit);
            else
                cli_table_str(t, "-");
            cli_table_str(t, rate);
            cli_table_str(t, q->paused ? "paused" : all_paused ? "all" : "-");
            cli_table_str(t, oldest);
            /* capped: more than 100,000 jobs were made in the last minute and only the newest
             * 100,000 were looked at, so a count is at least that many; for a queue with none
             * among them ">=0" said nothing a person could read (trial 23): "-", not counted */
            if (q->throughput_capped && !q->finished_last_min)
                cli_table_str(t, "-");
            else
                cli_table_fmt(t, "%s%lld", q->throughput_capped ? ">=" : "",
                              (long long)q->finished_last_min);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
        if (all_paused)
            printf("(all queues paused: aspen pause is on; aspen resume%s starts them again)\n",
                   dba);
    }
    aspen_store_queues_free(qs);
    return 0;
}

static int queue_usage(FILE *f, int code)
{
    cli_help(f, "%s", "usage: aspen queue set NAME [--limit N | --no-limit]\n"
          "                            [--rate N/PERIOD | --no-rate] [--db PATH]\n"
          "       aspen queue pause NAME | aspen queue resume NAME   [--db PATH]\n"
          "       aspen queue rm NAME   [--db PATH]\n"
          "  --limit N        at most N of its jobs run at once, over every worker and host\n"
          "  --rate N/PERIOD  at most N of its jobs start in any PERIOD: a unit or a\n"
          "                   duration as --timeout takes it, up to 7d (100/s, 5/10s,\n"
          "                   50/1h30m, 2000/d)\n"
          "  pause / resume   stop / restart claiming its jobs (aspen pause: every queue)\n"
          "  rm               remove the queue and its settings: refused while it holds\n"
          "                   queued, scheduled or running jobs, and for default; its\n"
          "                   finished jobs stay (queue:NAME still finds them)\n"
          "  set declares the queue when it is new; pause, resume and rm take only a\n"
          "  queue that exists\n");
    return code;
}

int cmd_queue(int argc, char **argv)
{
    static const struct option opts[] = {{"limit", required_argument, 0, 'l'},
                                         {"no-limit", no_argument, 0, 'L'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"no-rate", no_argument, 0, 'R'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *db = NULL;
    unsigned what = 0;
    long long limit = 0;
    int64_t rate_n = 0, period = 0;
    aspen_store_error se = {0};
    /* the option that set each setting, as given: a second one for the same setting (--limit 2
     * --no-limit) was taken silently, the last one winning (trial 10); now it is refused */
    char limit_by[64] = "", rate_by[64] = "";
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "hD:", opts, argv[0])) != -1) {
        if (c == 'l' || c == 'L' || c == 'r' || c == 'R') {
            char *by = c == 'l' || c == 'L' ? limit_by : rate_by;
            char now[64];
            snprintf(now, sizeof now, "%s%s%.40s", c == 'l' ? "--limit" : c == 'L' ? "--no-limit"
                                                    : c == 'r' ? "--rate" : "--no-rate",
                     c == 'l' || c == 'r' ? " " : "", c == 'l' || c == 'r' ? optarg : "");
            if (*by) {
                cli_error("%s and %s both set the queue's %s: give one of them", by, now,
                          c == 'l' || c == 'L' ? "limit" : "rate");
                cli_usage_line("aspen queue set NAME [--limit N | --no-limit] [--rate N/PERIOD | "
                               "--no-rate] [--db PATH]");
                return 2;
            }
            snprintf(by, sizeof limit_by, "%s", now);
        }
        switch (c) {
        case 'l':
            if (strcmp(optarg, "none") == 0) {
                limit = 0; /* what the console's :limit takes; the same as --no-limit */
            } else if (cli_parse_num("--limit", optarg, 1, 1000000, &limit)) {
                fputs("  (--limit none or --no-limit removes the limit)\n", stderr);
                return 2;
            }
            what |= ASPEN_STORE_QUEUE_SET_LIMIT;
            break;
        case 'L':
            limit = 0;
            what |= ASPEN_STORE_QUEUE_SET_LIMIT;
            break;
        case 'r':
            if (aspen_store_rate_parse(optarg, &rate_n, &period, &se) != 0) {
                cli_error("--rate: %s", se.msg);
                return 2;
            }
            what |= ASPEN_STORE_QUEUE_SET_RATE;
            break;
        case 'R':
            rate_n = period = 0;
            what |= ASPEN_STORE_QUEUE_SET_RATE;
            break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h': return queue_usage(stdout, 0);
        default: return queue_usage(stderr, 2);
        }
    }
    int urc = cli_args(argc, argv, optind, 2, 2,
                       "an action and a queue NAME: set|pause|resume|rm NAME",
                       "aspen queue set|pause|resume|rm NAME [--limit N] [--rate N/PERIOD]");
    if (urc)
        return urc;
    const char *verb = argv[optind], *name = argv[optind + 1];
    static const char *const verbs[] = {"set", "pause", "resume", "rm"};
    bool set = !strcmp(verb, "set"), pause = !strcmp(verb, "pause"),
         resume = !strcmp(verb, "resume"),
         rm = !strcmp(verb, "rm") || !strcmp(verb, "remove") || !strcmp(verb, "delete");
    if (!set && !pause && !resume && !rm) {
        const char *near = cli_nearest(verb, verbs, 4);
        if (near)
            cli_error("aspen queue %s: unknown action: did you mean '%s'?", verb, near);
        else
            cli_error("aspen queue %s: unknown action: use set, pause, resume or rm", verb);
        return 2;
    }
    if (aspen_store_queue_name_check(name, &se) != 0) {
        cli_error("%s", se.msg);
        return 2;
    }
    if (set && !what) {
        cli_error("aspen queue set %s: nothing to set: give --limit N, --no-limit, --rate N/PERIOD "
                  "or --no-rate", name);
        return 2;
    }
    if (!set && what) {
        cli_error("aspen queue %s: --limit and --rate go with aspen queue set", verb);
        return 2;
    }
    aspen_store *st = NULL;
    if (open_store(db, false, &st))
        return 1;
    char dba[4 * PATH_MAX + 16]; /* the commands printed below open this database when pasted */
    cli_db_arg(aspen_store_path(st), dba, sizeof dba);
    if (rm) {
        /* the store refuses default, a missing queue (did you mean), one still holding
         * unfinished jobs (how many) and one a schedule's jobs go to (which schedules: their
         * next run would make it again), with what to do, all in its words */
        int rrc = aspen_store_queue_remove(st, name, NULL, &se);
        aspen_store_close(st);
        if (rrc) {
            cli_error("%s", se.msg);
            return 1;
        }
        printf("queue %s removed, with its settings; its finished jobs stay (aspen jobs --filter "
               "'queue:%s'%s lists them)\n",
               name, name, dba);
        return 0;
    }
    int64_t now = aspen_store_now_ms();
    /* A pause of a paused queue (or a resume of a running one) changes nothing; say so, so an
     * operator who expected a change (a typo'd queue name, another operator first) notices. */
    bool unchanged = false, all_paused = false;
    if (!set) {
        /* the global pause (aspen pause) holds every queue whatever its own switch says: a
         * resume under it starts nothing, and saying "running" was untrue (trial 22) */
        if (aspen_store_paused(st, &all_paused, &se) != 0)
            all_paused = false;
        aspen_store_queue_info *qs = NULL;
        size_t nq = 0;
        if (aspen_store_queues(st, now, &qs, &nq, &se) == 0) {
            for (size_t i = 0; i < nq; i++)
                if (!strcmp(qs[i].name, name))
                    unchanged = qs[i].paused == pause;
            aspen_store_queues_free(qs);
        }
    }
    int rc = set ? aspen_store_queue_set(st, name, what, limit, rate_n, period, now, &se)
                 : aspen_store_queue_pause(st, name, pause, now, &se);
    aspen_store_close(st);
    if (rc) {
        cli_error("%s", se.msg);
        return 1;
    }
    /* what still holds the queue after this command: the global pause */
    char held[160 + sizeof dba] = "";
    if (!set && !pause && all_paused)
        snprintf(held, sizeof held, "; but all queues are paused (aspen pause is on): nothing "
                 "starts until aspen resume%s", dba);
    if (!set && unchanged) {
        if (!pause && all_paused)
            printf("queue %s was not paused on its own: nothing changed%s\n", name, held);
        else
            printf("queue %s was already %s: nothing changed (aspen queue %s %s%s %s)\n", name,
                   pause ? "paused" : "running", pause ? "resume" : "pause", name, dba,
                   pause ? "starts it again" : "stops it");
        return 0;
    }
    if (!set) {
        printf("queue %s %s (every worker on this database)%s\n", name,
               pause ? "paused" : "resumed", held);
        return 0;
    }
    printf("queue %s:", name);
    if (what & ASPEN_STORE_QUEUE_SET_LIMIT) {
        if (limit)
            printf(" limit %lld", limit);
        else
            printf(" no limit");
    }
    if (what & ASPEN_STORE_QUEUE_SET_RATE) {
        char rate[48];
        aspen_store_rate_format(rate_n, period, rate, sizeof rate);
        printf(rate_n ? " rate %s" : " no rate", rate);
    }
    printf("\n");
    return 0;
}
