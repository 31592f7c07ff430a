/* cli/cmd_metrics.c — `aspen metrics [--since 1h] [--step 5m] [--guest G] [--type T] [--json]`:
 * the metrics history (issue 9) that every engine on the database writes, per window and per
 * guest: attempts finished and failed, jobs/s, p50/p95/p99 run time and queue wait (from the
 * merged histograms of every engine: within 1/16 of the true sample, docs/STORE.md), exits and
 * host calls. `--retention D` sets how long rollups are kept (default 7d). Read-only otherwise:
 * it opens the store itself and registers nothing, so it works on a database no worker runs on
 * now — the history survives every restart. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The time a window really covers up to now (its last minute may still be running). */
static double window_s(const aspen_store_rollup *p, int64_t now_ms)
{
    int64_t start = p->minute * 60000, end = (p->minute + p->minutes) * 60000;
    if (end > now_ms)
        end = now_ms;
    return end > start ? (double)(end - start) / 1000.0 : 0;
}

static json_t *hist_json(const aspen_store_hist *h, uint64_t sum)
{
    if (!h->n)
        return json_null();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "n", (json_int_t)h->n, "p50",
                     (json_int_t)aspen_store_hist_percentile(h, 50), "p95",
                     (json_int_t)aspen_store_hist_percentile(h, 95), "p99",
                     (json_int_t)aspen_store_hist_percentile(h, 99), "max", (json_int_t)h->max,
                     "mean", (json_int_t)(sum / h->n));
}

static json_t *point_json(const aspen_store_rollup *p, int64_t now_ms, bool named)
{
    double secs = window_s(p, now_ms);
    json_t *o = json_object();
    if (named) {
        json_object_set_new(o, "type", cli_json_str(p->type));
        json_object_set_new(o, "guest", cli_json_str(p->guest));
    }
    json_object_set_new(o, "start_ms", json_integer(p->minute * 60000));
    json_object_set_new(o, "minutes", json_integer(p->minutes));
    json_object_set_new(o, "finished", json_integer((json_int_t)p->finished));
    json_object_set_new(o, "succeeded", json_integer((json_int_t)p->succeeded));
    json_object_set_new(o, "failed", json_integer((json_int_t)p->failed));
    json_object_set_new(o, "timeouts", json_integer((json_int_t)p->timeouts));
    json_object_set_new(o, "cancelled", json_integer((json_int_t)p->cancelled));
    json_object_set_new(o, "retried", json_integer((json_int_t)p->retried));
    json_object_set_new(o, "jobs_per_s",
                        json_real(secs > 0 ? (double)((int64_t)((double)p->finished / secs * 100 +
                                                                0.5)) / 100
                                           : 0));
    json_object_set_new(o, "exits", json_integer((json_int_t)p->exits));
    json_object_set_new(o, "host_calls", json_integer((json_int_t)p->host_calls));
    json_object_set_new(o, "run_us", hist_json(&p->run_us, p->run_us_sum));
    json_object_set_new(o, "wait_us", hist_json(&p->wait_us, p->wait_us_sum));
    return o;
}

static void dur(const aspen_store_hist *h, double p, char *out, size_t cap)
{
    if (!h->n)
        snprintf(out, cap, "-");
    else
        cli_format_duration_us((int64_t)aspen_store_hist_percentile(h, p), out, cap);
}

/* The columns of both tables: the label, finished, failed, jobs/s and the run time's p50 and p95
 * are kept at any width; the wait, p99, exits and host calls go first (--wide, --json have them).
 * The label ("vm_execute / rust-data-processor") is what a row is about: columns are hidden before
 * it is cut under 28 columns. */
static const cli_table_col metric_cols[] = {
    {"", 0, 28, 48, false},          {"FINISHED", 0, 0, 0, true}, {"FAILED", 0, 0, 0, true},
    {"JOBS/S", 1, 0, 0, true},       {"RUN p50", 0, 0, 0, true},  {"p95", 1, 0, 0, true},
    {"p99", 4, 0, 0, true},          {"WAIT p50", 2, 0, 0, true}, {"p95", 3, 0, 0, true},
    {"EXITS", 5, 0, 0, true},        {"HOST CALLS", 5, 0, 0, true},
};
#define METRIC_COLS (sizeof metric_cols / sizeof metric_cols[0])

static void add_row(cli_table *t, const char *label, const aspen_store_rollup *p, int64_t now_ms)
{
    char r50[24], r95[24], r99[24], w50[24], w95[24];
    dur(&p->run_us, 50, r50, sizeof r50);
    dur(&p->run_us, 95, r95, sizeof r95);
    dur(&p->run_us, 99, r99, sizeof r99);
    dur(&p->wait_us, 50, w50, sizeof w50);
    dur(&p->wait_us, 95, w95, sizeof w95);
    double secs = window_s(p, now_ms);
    cli_table_str(t, label);
    cli_table_fmt(t, "%llu", (unsigned long long)p->finished);
    cli_table_fmt(t, "%llu", (unsigned long long)p->failed);
    cli_table_fmt(t, "%.1f", secs > 0 ? (double)p->finished / secs : 0.0);
    cli_table_str(t, r50);
    cli_table_str(t, r95);
    cli_table_str(t, r99);
    cli_table_str(t, w50);
    cli_table_str(t, w95);
    cli_table_fmt(t, "%llu", (unsigned long long)p->exits);
    cli_table_fmt(t, "%llu", (unsigned long long)p->host_calls);
}

/* A table of metric_cols whose first column is headed `first`. */
static cli_table *metric_table(cli_table_col *cols, const char *first)
{
    memcpy(cols, metric_cols, sizeof metric_cols);
    cols[0].head = first;
    return cli_table_new(cols, METRIC_COLS);
}

static void fmt_span(int64_t minutes, char *out, size_t cap)
{
    if (minutes % 1440 == 0)
        snprintf(out, cap, "%lldd", (long long)(minutes / 1440));
    else if (minutes % 60 == 0)
        snprintf(out, cap, "%lldh", (long long)(minutes / 60));
    else
        snprintf(out, cap, "%lldm", (long long)minutes);
}

/* "14:05-14:10" (local time), with the date when the window is not today. */
static void fmt_window(const aspen_store_rollup *p, int64_t now_ms, char *out, size_t cap)
{
    time_t a = (time_t)(p->minute * 60), b = (time_t)((p->minute + p->minutes) * 60),
           now = (time_t)(now_ms / 1000);
    struct tm ta, tb, tn;
    localtime_r(&a, &ta);
    localtime_r(&b, &tb);
    localtime_r(&now, &tn);
    char sa[32], sb[32];
    strftime(sa, sizeof sa,
             ta.tm_yday == tn.tm_yday && ta.tm_year == tn.tm_year ? "%H:%M" : "%m-%d %H:%M", &ta);
    strftime(sb, sizeof sb, "%H:%M", &tb);
    snprintf(out, cap, "%s-%s", sa, sb);
}

int cmd_metrics(int argc, char **argv)
{
    static const struct option opts[] = {{"since", required_argument, 0, 's'},
                                         {"step", required_argument, 0, 'S'},
                                         {"guest", required_argument, 0, 'g'},
                                         {"type", required_argument, 0, 't'},
                                         {"retention", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_WIDE_OPT,
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *usage =
        "usage: aspen metrics [--since 1h] [--step 5m] [--guest G] [--type T] [--json]\n"
        "                     [--wide] [--db PATH]\n"
        "       aspen metrics --retention 7d\n"
        "  what every engine on the database finished, per window and per guest: attempts,\n"
        "  failures, jobs/s, p50/p95/p99 run time and queue wait, VM exits and host calls\n"
        "  --since D      how far back (default 1h; s, m, h, d, w)\n"
        "  --step D       the window of each row (default: at most 24 rows; whole minutes)\n"
        "  --guest G      one guest (as the jobs name their binary); --type T one job type\n"
        "  --retention D  how long the database keeps rollups (1h .. 366d, default 7d)\n"
        "  --create       make the database (on PostgreSQL, the schema) if it is new\n"
        "  --wide         every column: the tables fit the terminal's width (80 when output\n"
        "                 is not a terminal, or $COLUMNS), hiding wait, p99, exits first\n"
        "  percentiles come from merged log-scale histograms: within 1/16 (6.25%) of the true\n"
        "  sample; queue wait has 1 ms resolution\n";
    bool as_json = false;
    const char *db = NULL, *since = "1h", *step = NULL, *guest = NULL, *type = NULL,
               *retention = NULL;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "jhs:S:g:t:r:D:", opts, argv[0])) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'W': cli_wide = true; break;
        case 's': since = optarg; break;
        case 'S': step = optarg; break;
        case 'g': guest = optarg; break;
        case 't': type = optarg; break;
        case 'r': retention = optarg; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        default: cli_help(c == 'h' ? stdout : stderr, "%s", usage); return c == 'h' ? 0 : 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "", usage);
    if (urc)
        return urc;
    aspen_store_error se = {0};
    int64_t since_ms = 0, step_ms = 0;
    if (cli_parse_period("--since", since, &since_ms) != 0)
        return 2;
    if (since_ms < 60000) {
        cli_error("--since %s is under a minute: rollups are per minute (try --since 1m)", since);
        return 2;
    }
    if (step && cli_parse_period("--step", step, &step_ms) != 0)
        return 2;
    if (step && (step_ms < 60000 || step_ms % 60000)) {
        cli_error("--step %s is not a whole number of minutes: rollups are per minute (try "
                  "--step 1m or 5m)",
                  step);
        return 2;
    }
    char path[4096];
    if (cli_db_path(db, path, sizeof path) != 0)
        return 1;
    /* read-only unless it writes (--retention) or is asked to make the database (--create, as
     * aspen jobs --create does: a read-only open of a new path failed "does not exist" right
     * after cli_db_path had let --create through, trial 10) */
    aspen_store_options so = {.read_only = retention == NULL && !cli_create};
    aspen_store *st = NULL;
    if (cli_store_open(path, &so, &st, &se) != 0) {
        cli_error("%s", se.msg);
        return 1;
    }
    if (retention) {
        int rc = aspen_store_metrics_set_retention(st, retention, &se);
        aspen_store_close(st);
        if (rc) {
            cli_error("--retention: %s", se.msg);
            return rc == ASPEN_STORE_EINVAL ? 2 : 1;
        }
        printf("metrics rollups are kept for %s (engines prune older ones about once a "
               "minute)\n",
               retention);
        return 0;
    }
    int64_t now = aspen_store_now_ms(), to = now / 60000, span = (since_ms + 59999) / 60000;
    int64_t from = to - span + 1, step_min = step_ms / 60000;
    if (!step_min) {
        static const int64_t steps[] = {1, 5, 15, 60, 180, 360, 1440, 10080};
        step_min = steps[sizeof steps / sizeof steps[0] - 1];
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
            if ((span + steps[i] - 1) / steps[i] <= 24) {
                step_min = steps[i];
                break;
            }
    }
    int64_t keep = 0;
    aspen_store_rollup *win = NULL, *tot = NULL, *by = NULL;
    size_t n_win = 0, n_tot = 0, n_by = 0;
    aspen_store_metrics_query q = {.from_minute = from, .to_minute = to, .step_minutes = step_min,
                                   .guest = guest, .type = type};
    aspen_store_metrics_query qt = q, qb = q;
    qt.step_minutes = span;
    qb.step_minutes = span;
    qb.by_guest = true;
    if (aspen_store_metrics_retention(st, &keep, &se) != 0 ||
        aspen_store_metrics(st, &q, &win, &n_win, &se) != 0 ||
        aspen_store_metrics(st, &qt, &tot, &n_tot, &se) != 0 ||
        aspen_store_metrics(st, &qb, &by, &n_by, &se) != 0) {
        cli_error("%s", se.msg);
        free(win);
        free(tot);
        aspen_store_close(st);
        return 1;
    }
    aspen_store_close(st);
    char span_s[32], step_s[32], keep_s[32];
    fmt_span(span, span_s, sizeof span_s);
    fmt_span(step_min, step_s, sizeof step_s);
    fmt_span(keep, keep_s, sizeof keep_s);
    if (as_json) {
        json_t *o = json_object(), *w = json_array(), *g = json_array();
        json_object_set_new(o, "from_ms", json_integer(from * 60000));
        json_object_set_new(o, "to_ms", json_integer(now));
        json_object_set_new(o, "since_minutes", json_integer(span));
        json_object_set_new(o, "step_minutes", json_integer(step_min));
        json_object_set_new(o, "retention_minutes", json_integer(keep));
        json_object_set_new(o, "guest", guest ? cli_json_str(guest) : json_null());
        json_object_set_new(o, "type", type ? cli_json_str(type) : json_null());
        for (size_t i = 0; i < n_win; i++)
            json_array_append_new(w, point_json(&win[i], now, false));
        for (size_t i = 0; i < n_by; i++)
            json_array_append_new(g, point_json(&by[i], now, true));
        json_object_set_new(o, "total", point_json(&tot[0], now, false));
        json_object_set_new(o, "windows", w);
        json_object_set_new(o, "guests", g);
        cli_json_print(o, stdout, false);
        json_decref(o);
    } else {
        char what[1700] = "";
        if (guest || type) {
            char gc[800], tc[800];
            snprintf(what, sizeof what, " of%s%s%s%s", guest ? " guest " : "",
                     guest ? cli_cell_str(guest, 100, gc, sizeof gc) : "", type ? " type " : "",
                     type ? cli_cell_str(type, 100, tc, sizeof tc) : "");
        }
        /* two lines, so that it fits 80 columns whatever the guest and type */
        printf("Metrics%s over the last %s in windows of %s,\nevery engine on the database "
               "(rollups kept %s)\n\n",
               what, span_s, step_s, keep_s);
        char head[48];
        snprintf(head, sizeof head, "WINDOW (%s)", step_s);
        cli_table_col cols[METRIC_COLS];
        cli_table *t = metric_table(cols, head);
        for (size_t i = 0; i < n_win; i++) {
            char label[80];
            fmt_window(&win[i], now, label, sizeof label);
            add_row(t, label, &win[i], now);
        }
        char label[48];
        snprintf(label, sizeof label, "all %s", span_s);
        add_row(t, label, &tot[0], now);
        cli_table_print(t, stdout);
        cli_table_free(t);
        printf("\nBy guest and job type, over the last %s:\n", span_s);
        t = metric_table(cols, "TYPE / GUEST");
        for (size_t i = 0; i < n_by; i++) {
            char name[200];
            snprintf(name, sizeof name, "%s%s%s", by[i].type, by[i].guest[0] ? " / " : "",
                     by[i].guest);
            add_row(t, name, &by[i], now);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
        if (!n_by)
            printf("(nothing finished in that time%s)\n",
                   guest || type ? " for that guest or type" : "");
    }
    free(win);
    free(tot);
    free(by);
    return 0;
}
