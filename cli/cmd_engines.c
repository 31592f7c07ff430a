/* cli/cmd_engines.c — `aspen engines [--json]`: every engine registered on the database, whichever
 * host it runs on, with its last heartbeat and live figures (busy workers and the job and guest
 * each runs, warm VMs, memory, jobs/s, the queues it serves), a host whose heartbeat stopped marked
 * stale. Read-only:
 * it opens the store itself and registers nothing. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static json_t *engine_json(const aspen_store_engine_info *e)
{
    json_t *slots = json_array();
    for (size_t i = 0; i < e->n_slots; i++)
        json_array_append_new(slots, json_pack("{s:i, s:I, s:o}", "worker", e->slots[i].worker,
                                               "job", (json_int_t)e->slots[i].job_id, "guest",
                                               cli_json_str(e->slots[i].guest)));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(e->id));
    json_object_set_new(o, "host", cli_json_str(e->host));
    json_object_set_new(o, "pid", json_integer(e->pid));
    json_object_set_new(o, "version", cli_json_str(e->version));
    json_object_set_new(o, "started_at_ms", json_integer(e->started_at_ms));
    json_object_set_new(o, "lease_until_ms", json_integer(e->lease_until_ms));
    json_object_set_new(o, "heartbeat_ms", e->heartbeat_ms ? json_integer(e->heartbeat_ms)
                                                           : json_null());
    json_object_set_new(o, "heartbeat_age_ms", json_integer(e->heartbeat_age_ms));
    json_object_set_new(o, "stale", json_boolean(e->stale));
    json_object_set_new(o, "workers", json_integer(e->workers));
    json_object_set_new(o, "busy", json_integer(e->busy));
    json_object_set_new(o, "running_jobs", json_integer(e->running));
    json_object_set_new(o, "warm_vms", json_integer(e->warm_vms));
    json_object_set_new(o, "rss_bytes", json_integer(e->rss_bytes));
    json_object_set_new(o, "jobs_per_s", json_real(e->jobs_per_s));
    json_object_set_new(o, "slots", slots);
    /* the names it serves; [] = every queue (no --queues, or an engine of an older Aspen);
     * null before its first heartbeat, which carries them */
    json_t *queues = e->heartbeat_ms ? json_array() : json_null();
    for (const char *p = e->queues; json_is_array(queues) && *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(queues, json_stringn(p, len));
        p += len + (p[len] == ',');
    }
    json_object_set_new(o, "queues", queues);
    return o;
}

static void print_table(const aspen_store_engine_info *list, size_t n)
{
    /* which engine, where, whether it is alive and what it runs are kept at any width */
    static const cli_table_col cols[] = {
        {"ID", 0, 0, 0, false},         {"HOST", 1, 8, 40, false},   {"PID", 2, 0, 0, true},
        {"WORKERS", 3, 0, 0, true},     {"BUSY", 2, 0, 0, true},     {"VMS", 5, 0, 0, true},
        {"RSS", 6, 0, 0, true},         {"JOBS/S", 4, 0, 0, true},   {"HEARTBEAT", 0, 0, 0, false},
        {"QUEUES", 1, 6, 60, false},    {"RUNNING", 1, 10, 200, false},
    };
    cli_table *t = cli_table_new(cols, sizeof cols / sizeof cols[0]);
    if (t)
        cli_table_names(t, 9); /* QUEUES: ….2027 and ….2028 stay apart when cut (trial 24) */
    for (size_t i = 0; i < n; i++) {
        const aspen_store_engine_info *e = &list[i];
        char doing[400];
        size_t len = 0;
        doing[0] = 0;
        for (size_t k = 0; k < e->n_slots && len + 80 < sizeof doing; k++)
            len += (size_t)snprintf(doing + len, sizeof doing - len, "%sw%d:#%lld %s",
                                    k ? ", " : "", e->slots[k].worker,
                                    (long long)e->slots[k].job_id, e->slots[k].guest);
        if (!e->n_slots)
            snprintf(doing, sizeof doing, "-");
        cli_table_fmt(t, "%lld", (long long)e->id);
        cli_table_str(t, e->host);
        cli_table_fmt(t, "%lld", (long long)e->pid);
        cli_table_fmt(t, "%lld", (long long)e->workers);
        cli_table_fmt(t, "%lld", (long long)e->busy);
        cli_table_fmt(t, "%lld", (long long)e->warm_vms);
        cli_table_fmt(t, "%.1fM", (double)e->rss_bytes / (1024.0 * 1024.0));
        cli_table_fmt(t, "%.1f", e->jobs_per_s);
        if (e->stale)
            cli_table_fmt(t, "STALE %llds", (long long)(e->heartbeat_age_ms / 1000));
        else
            cli_table_fmt(t, "%.1fs ago", (double)e->heartbeat_age_ms / 1000.0);
        /* "(all)": no queue is named so; "-": not known before the first heartbeat */
        cli_table_str(t, e->queues[0] ? e->queues : e->heartbeat_ms ? "(all)" : "-");
        cli_table_str(t, doing);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
    if (!n)
        printf("(no engine is registered on this database: start one with aspen worker)\n");
}

int cmd_engines(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_WIDE_OPT,
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *usage = "usage: aspen engines [--json] [--wide] [--db PATH]\n"
                        "  every engine on the database (any host), its heartbeat and live "
                        "figures;\n  STALE: no heartbeat for over 5 s (it beats every second)\n"
                        "  QUEUES: the queues it serves (aspen worker --queues), (all): every "
                        "queue\n"
                        "  --wide  every column: the table fits the terminal (80 when output is "
                        "not one)\n";
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
        else if (c == 'C')
            cli_create = true;
        else {
            cli_help(c == 'h' ? stdout : stderr, "%s", usage);
            return c == 'h' ? 0 : 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "", usage);
    if (urc)
        return urc;
    char path[4096];
    if (cli_db_path(db, path, sizeof path) != 0)
        return 1;
    aspen_store_options so = {.read_only = true};
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    /* --create: the database (or PostgreSQL schema) is made first; the listing then reads. */
    if (cli_create) {
        if (cli_store_open(path, NULL, &st, &se) != 0) {
            cli_error("%s", se.msg);
            return 1;
        }
        aspen_store_close(st);
        st = NULL;
    }
    if (cli_store_open(path, &so, &st, &se) != 0 ||
        aspen_store_engines(st, aspen_store_now_ms(), &list, &n, &se) != 0) {
        cli_error("%s", se.msg);
        aspen_store_close(st);
        return 1;
    }
    aspen_store_close(st);
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, engine_json(&list[i]));
        cli_json_print(arr, stdout, false);
        json_decref(arr);
    } else {
        print_table(list, n);
    }
    aspen_store_engines_free(list);
    return 0;
}
