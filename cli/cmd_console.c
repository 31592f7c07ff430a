/* cli/cmd_console.c — `aspen console`: the operations console (tui/aspen_tui.h) on an engine with
 * workers, on the same database as the other subcommands (--db, $ASPEN_DB, or the user's data
 * dir). The submit form offers the guests of target/guest-binaries/ (echo-worker and
 * data-processor first) and the built-in in-process handlers.
 */
#include "aspen_tui.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: aspen console [--db PATH] [--workers N] [--grace MS]\n"
               "  an interactive terminal console: jobs, VMs, logs; ? inside for the keys\n");
}

int cmd_console(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'D'}, {"workers", required_argument, 0, 'w'},
        {"grace", required_argument, 0, 'g'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *db = NULL;
    int workers = 2, grace = 3000, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "D:w:g:h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'w':
            workers = atoi(optarg);
            if (workers < 0 || workers > ASPEN_ENGINE_MAX_WORKERS) {
                cli_error("--workers wants 0..%d", ASPEN_ENGINE_MAX_WORKERS);
                return 2;
            }
            break;
        case 'g': grace = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    aspen_engine *eng;
    if (cli_open_engine(db, workers, &eng))
        return 1;
    aspen_tui_options o = {0};
    o.guest_dir = cli_guest_dir();
    o.stop_grace_ms = grace;
    aspen_engine_error err = {0};
    int rc = aspen_tui_run(eng, &o, &err);
    aspen_engine_close(eng);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    return 0;
}
