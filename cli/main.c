/* cli/main.c — the `aspen` program: dispatches subcommands to cli/cmd_*.c. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cmds[] = {
    {"console", cmd_console, "the operations console: live jobs, VMs and logs (? for keys)"},
    {"run", cmd_run, "run one job in a fresh micro-VM: aspen run GUEST --payload JSON"},
    {"demo", cmd_demo, "an echo job and a data-processing job, with logs and timings"},
    {"bench", cmd_bench, "benchmarks printing JSON: aspen bench vm|engine [--json]"},
    {"submit", cmd_submit, "queue a job: aspen submit GUEST --payload JSON (prints its id)"},
    {"jobs", cmd_jobs, "list jobs: aspen jobs [--state S] [--filter F] [--json]"},
    {"show", cmd_show, "one job with its attempts: aspen show ID [--json]"},
    {"logs", cmd_logs, "a job's log lines: aspen logs ID [--follow]"},
    {"cancel", cmd_cancel, "cancel a queued job, or stop a running one: aspen cancel ID"},
    {"rerun", cmd_rerun, "run a job again as a new job: aspen rerun ID"},
    {"retry", cmd_retry, "failed jobs back to the queue: aspen retry ID | --failed [--filter F]"},
    {"pause", cmd_pause, "pause the queue for every worker on the database"},
    {"resume", cmd_resume, "resume the queue"},
    {"worker", cmd_worker, "run jobs: aspen worker [--workers N] [--until-idle]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aspen COMMAND [options]   (aspen COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "aspen: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
