/* cli/cmd_engines.c — `aspen engines [--json]`: every engine registered on the database, whichever
 * host it runs on, with its last heartbeat and live figures (busy workers and the job and guest
 * each runs, warm VMs, memory, jobs/s), a host whose heartbeat stopped marked stale. Read-only:
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
    return o;
}

static void print_table(const aspen_store_engine_info *list, size_t n)
{
    printf("%-5s %-20s %-8s %-7s %-5s %-4s %-8s %-8s %-10s %s\n", "ID", "HOST", "PID", "WORKERS",
           "BUSY", "VMS", "RSS", "JOBS/S", "HEARTBEAT", "RUNNING");
    for (size_t i = 0; i < n; i++) {
        const aspen_store_engine_info *e = &list[i];
        char host[160], beat[32], doing[400], rss[24];
        cli_col_str(e->host, 20, host, sizeof host);
        if (e->stale)
            snprintf(beat, sizeof beat, "STALE %llds", (long long)(e->heartbeat_age_ms / 1000));
        else
            snprintf(beat, sizeof beat, "%.1fs ago", (double)e->heartbeat_age_ms / 1000.0);
        snprintf(rss, sizeof rss, "%.1fM", (double)e->rss_bytes / (1024.0 * 1024.0));
        size_t len = 0;
        doing[0] = 0;
        for (size_t k = 0; k < e->n_slots && len + 80 < sizeof doing; k++)
            len += (size_t)snprintf(doing + len, sizeof doing - len, "%sw%d:#%lld %s",
                                    k ? ", " : "", e->slots[k].worker,
                                    (long long)e->slots[k].job_id, e->slots[k].guest);
        if (!e->n_slots)
            snprintf(doing, sizeof doing, "-");
        char cell[2400];
        printf("%-5lld %s %-8lld %-7lld %-5lld %-4lld %-8s %-8.1f %-10s %s\n", (long long)e->id,
               host, (long long)e->pid, (long long)e->workers, (long long)e->busy,
               (long long)e->warm_vms, rss, e->jobs_per_s, beat,
               cli_cell_str(doing, 200, cell, sizeof cell));
    }
    if (!n)
        printf("(no engine is registered on this database: start one with aspen worker)\n");
}

int cmd_engines(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *usage = "usage: aspen engines [--json] [--db PATH]\n"
                        "  every engine on the database (any host), its heartbeat and live "
                        "figures;\n  STALE: no heartbeat for over 5 s (it beats every second)\n";
    bool as_json = false;
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "jhD:", opts, argv[0])) != -1) {
        if (c == 'j')
            as_json = true;
        else if (c == 'D')
            db = optarg;
        else if (c == 'C')
            cli_create = true;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
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
        if (aspen_store_open(path, NULL, &st, &se) != 0) {
            cli_error("%s", se.msg);
            return 1;
        }
        aspen_store_close(st);
        st = NULL;
    }
    if (aspen_store_open(path, &so, &st, &se) != 0 ||
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
