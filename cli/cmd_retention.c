/* cli/cmd_retention.c — how long finished jobs are kept, through a client engine:
 *   aspen retention [--json]                 the setting of each final state
 *   aspen retention set STATE AGE|off|default   (STATE: succeeded, failed, cancelled, or all)
 * The settings live in the database, so every engine on it prunes by them (engine/retention.c)
 * and every console shows them. Exit status: 0 done, 1 refused or failed, 2 usage. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void retention_usage(FILE *f)
{
    cli_help(f,
            "usage: aspen retention [--json] [--db PATH]\n"
            "       aspen retention set STATE AGE|off|default [--db PATH]\n"
            "  STATE    succeeded, failed, cancelled (or all)\n"
            "  AGE      how long after it finished a job of that state is kept: 90s, 12h,\n"
            "           7d, 2w\n"
            "  off      keep them forever          default  back to the default\n"
            "Defaults: succeeded 24h, cancelled 24h, failed 7d. Every engine with workers\n"
            "deletes jobs past their age while jobs run, in short transactions bounded by\n"
            "time, not by count (about 1 ms on SQLite, 25 ms on PostgreSQL), with a pause\n"
            "after each (docs/OPERATING.md, \"Retention\").\n");
}

static const aspen_store_state finals[] = {ASPEN_STORE_SUCCEEDED, ASPEN_STORE_FAILED,
                                           ASPEN_STORE_CANCELLED};

static int show(aspen_engine *eng, bool json)
{
    aspen_store_retention r;
    aspen_engine_error err = {0};
    if (aspen_engine_retention_get(eng, &r, &err) != 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    json_t *o = json ? json_object() : NULL;
    for (size_t i = 0; i < 3; i++) {
        aspen_store_state st = finals[i];
        char age[32];
        aspen_store_duration_format(r.keep_ms[st], age, sizeof age);
        if (o) {
            json_t *e = json_object();
            json_object_set_new(e, "keep_ms", json_integer(r.keep_ms[st]));
            json_object_set_new(e, "off", json_boolean(r.keep_ms[st] == 0));
            json_object_set_new(e, "default", json_boolean(r.is_default[st]));
            json_object_set_new(o, aspen_store_state_name(st), e);
        } else {
            printf("%-10s %s%s\n", aspen_store_state_name(st), r.keep_ms[st] ? age : "off (kept forever)",
                   r.is_default[st] ? " (default)" : "");
        }
    }
    if (o) {
        cli_json_print(o, stdout, false);
        json_decref(o);
    }
    return 0;
}

int cmd_retention(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, CLI_DB_OPTS, {0, 0, 0, 0},
    };
    const char *db = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "hD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default: retention_usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
        }
    }
    int nargs = argc - optind;
    unsigned states = 0;
    int64_t keep = 0;
    if (nargs > 0) {
        if (strcmp(argv[optind], "set") != 0) {
            cli_error("unknown retention command '%s': aspen retention, or aspen retention "
                      "set STATE AGE|off|default",
                      argv[optind]);
            retention_usage(stderr);
            return 2;
        }
        if (nargs != 3) {
            /* which word was extra, or which is missing ("set wants STATE and AGE" said
             * neither: trial 10) */
            if (nargs > 3)
                cli_error("unexpected argument '%s': aspen retention set takes one STATE and one "
                          "AGE (aspen retention set failed 30d)",
                          argv[optind + 3]);
            else
                cli_error("aspen retention set needs %s: aspen retention set failed 30d",
                          nargs == 1 ? "a STATE and an AGE" : "an AGE (a duration, off or default) "
                                                              "after the STATE");
            retention_usage(stderr);
            return 2;
        }
        const char *st = argv[optind + 1], *age = argv[optind + 2];
        aspen_store_error se = {0};
        if (strcmp(st, "all") == 0) {
            for (size_t i = 0; i < 3; i++)
                states |= 1u << finals[i];
        } else if (aspen_store_states_parse_in(st, 1u << finals[0] | 1u << finals[1] | 1u << finals[2],
                                               &states, &se) != 0) {
            /* the store lists the final states; all is the CLI's, and accepted too */
            cli_error("%s, or all", se.msg);
            return 2;
        }
        for (int s = 0; s < ASPEN_STORE_STATE_COUNT; s++)
            if ((states & (1u << s)) && !aspen_store_state_is_final((aspen_store_state)s)) {
                cli_error("retention is for finished jobs: %s is not a final state (give "
                          "succeeded, failed, cancelled or all)",
                          aspen_store_state_name((aspen_store_state)s));
                return 2;
            }
        if (strcmp(age, "off") == 0 || strcmp(age, "forever") == 0) {
            keep = 0;
        } else if (strcmp(age, "default") == 0) {
            keep = -1;
        } else if (cli_parse_period("the age (a duration, off or default)", age, &keep) != 0) {
            return 2;
        } else if (keep == 0) {
            cli_error("a retention of 0 would delete every finished job at once: give an age "
                      "such as 1h, or off to keep them");
            return 2;
        }
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    int rc = 0;
    for (int s = 0; s < ASPEN_STORE_STATE_COUNT && !rc; s++) {
        if (!(states & (1u << s)))
            continue;
        aspen_engine_error err = {0};
        if (aspen_engine_retention_set(eng, (aspen_store_state)s, keep, &err) != 0) {
            cli_error("%s", err.msg);
            rc = 1;
        }
    }
    if (!rc)
        rc = show(eng, json);
    aspen_engine_close(eng);
    return rc;
}
