/* cli/cmd_console.c — `aspen console`: the operations console (tui/include/aspen_tui.h) on an engine with
 * workers, on the same database as the other subcommands (--db, $ASPEN_DB, or the user's data
 * dir; a --db that does not exist is refused unless --create, as everywhere). The submit form offers the guests of target/guest-binaries/ (echo-worker and
 * data-processor first) and the built-in in-process handlers.
 */
#include "aspen_tui.h"
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    cli_help(f, "usage: aspen console [--db PATH [--create]] [--workers N] [--grace MS]\n"
               "  an interactive terminal console: jobs, VMs, logs; ? inside for the keys\n");
}

int cmd_console(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_DB_OPTS, {"workers", required_argument, 0, 'w'},
        {"grace", required_argument, 0, 'g'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *db = NULL;
    int workers = 2, grace = 3000, c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "D:w:g:h", opts, argv[0])) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'w':
        case 'g': {
            long long v;
            if (cli_parse_num(c == 'w' ? "--workers" : "--grace", optarg, 0,
                              c == 'w' ? ASPEN_ENGINE_MAX_WORKERS : 3600000, &v))
                return 2;
            if (c == 'w')
                workers = (int)v;
            else
                grace = (int)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 0, 0, "",
                       "aspen console [--db PATH [--create]] [--workers N] (aspen console --help)");
    if (urc)
        return urc;
    aspen_engine *eng;
    if (cli_open_engine(db, workers, &eng))
        return 1;
    aspen_tui_options o = {0};
    o.guest_dir = cli_guest_dir();
    o.stop_grace_ms = grace;
    static char dba[4 * PATH_MAX + 16]; /* the Debugging lines' commands name this database */
    o.db_arg = cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    aspen_engine_error err = {0};
    int rc = aspen_tui_run(eng, &o, &err);
    aspen_engine_close(eng);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    return 0;
}
