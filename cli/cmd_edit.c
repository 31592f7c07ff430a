/* cli/cmd_edit.c — edits of a waiting job: `aspen priority ID N` (a queued or scheduled job's
 * priority; it takes its new place in the queue at once) and `aspen run-now ID` (a scheduled job,
 * waiting for its --delay or a retry's backoff, is queued now). Both backends, through the engine
 * API (which wakes the engines); the store says why when the job's state does not allow it.
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage. */
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
