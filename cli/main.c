/* cli/main.c — the `aspen` program: dispatches subcommands to cli/cmd_*.c, with "did you mean"
 * for a mistyped command and --version. */
#include "cli.h"

#include <malloc.h>
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
    {"submit", cmd_submit, "queue jobs: aspen submit GUEST --payload JSON|@FILE|- (prints ids)"},
    {"jobs", cmd_jobs, "list jobs: aspen jobs [--state S] [--filter F] [--json]"},
    {"show", cmd_show, "one job with its attempts: aspen show ID [--json]"},
    {"logs", cmd_logs, "a job's log lines: aspen logs ID [--follow] [--json]"},
    {"cancel", cmd_cancel, "cancel a queued job, or stop a running one: aspen cancel ID | --filter F"},
    {"rerun", cmd_rerun, "run a job again as a new job: aspen rerun ID"},
    {"retry", cmd_retry, "failed jobs back to the queue: aspen retry ID | --failed [--filter F]"},
    {"priority", cmd_priority, "a waiting job's new priority: aspen priority ID N"},
    {"run-now", cmd_run_now, "a scheduled (delayed or backing-off) job runs now: aspen run-now ID"},
    {"snooze", cmd_snooze, "put a waiting job off: aspen snooze ID 10m | --filter F 1h"},
    {"pause", cmd_pause, "pause every queue for every worker on the database"},
    {"resume", cmd_resume, "resume every queue that aspen pause holds"},
    {"worker", cmd_worker, "run jobs: aspen worker [--workers N] [--until-idle]"},
    {"delete", cmd_delete, "delete finished jobs: aspen delete ID... | --filter F [--yes]"},
    {"purge", cmd_purge, "delete finished jobs older than: aspen purge --older-than 30d"},
    {"retention", cmd_retention, "how long finished jobs are kept: aspen retention set failed 30d"},
    {"engines", cmd_engines, "every engine on the database, any host: live figures [--json]"},
    {"cron", cmd_cron, "periodic jobs: aspen cron add NAME 'EXPR' GUEST | list | rm | pause | run"},
    {"queues", cmd_queues, "every named queue: size, running, limit, paused, rate [--json]"},
    {"queue", cmd_queue, "a queue's settings: aspen queue set|pause|resume|rm NAME [--limit N]"},
    {"core", cmd_core, "the ELF core a failed attempt kept: aspen core ID -o FILE (for gdb)"},
    {"replay", cmd_replay, "run an attempt again with its recorded host calls: aspen replay ID"},
    {"metrics", cmd_metrics, "jobs/s, failures, p50/p95/p99 per window and guest: [--since 1h]"},
};

static void usage(FILE *f)
{
    cli_help(f, "usage: aspen COMMAND [options]   (aspen COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        cli_help(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
    cli_help(f, "\n  --db PATH  the database, for every command that uses one: it must exist (add\n"
               "             --create for a new one); without it $ASPEN_DB, else\n"
               "             $XDG_DATA_HOME/aspen/aspen.db (~/.local/share/aspen/aspen.db), created\n"
               "             on first use\n"
               "  --version  the version of aspen and of its database schema\n");
}

int main(int argc, char **argv)
{
    /* Buffers of 1 MiB and more (a job's result, its core, a payload) always get their own
     * mapping and go back to the kernel when freed. glibc's default raises its mmap threshold to
     * the size of each large block freed, so after the first big result later ones came from the
     * heap and a long-running worker kept their pages (test_engine_bounds: +254 MB against +240
     * for 24 results of 15 MB). Setting the threshold turns that adjustment off. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("aspen %s (database schema %d)\n", ASPEN_VERSION, ASPEN_STORE_SCHEMA_VERSION);
        return 0;
    }
    /* `aspen --db PATH COMMAND ...` (or --db=PATH): aspen --help lists --db with the commands,
     * and a user put it first (trial 24: "'--db' is not a command"). It is handed to the
     * command as its own option, right after its name. */
    char *moved[4];
    size_t take = strcmp(argv[1], "--db") == 0 ? 2 : strncmp(argv[1], "--db=", 5) == 0 ? 1 : 0;
    if (take && (size_t)argc > take + 1 && argv[take + 1][0] != '-') {
        char *cmd = argv[take + 1];
        for (size_t k = 0; k < take; k++)
            moved[k] = argv[1 + k];
        argv[1] = cmd;
        for (size_t k = 0; k < take; k++)
            argv[2 + k] = moved[k];
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    const char *names[sizeof cmds / sizeof cmds[0]];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        names[i] = cmds[i].name;
    const char *near = cli_nearest(argv[1], names, sizeof names / sizeof names[0]);
    if (take)
        cli_error("--db PATH needs a command after it: aspen --db PATH COMMAND ... (or aspen "
                  "COMMAND --db PATH ...)");
    else if (argv[1][0] == '-')
        cli_error("'%s' is not a command: options go after the command (aspen COMMAND --help)",
                  argv[1]);
    else if (near)
        cli_error("unknown command '%s': did you mean '%s'?", argv[1], near);
    else
        cli_error("unknown command '%s'", argv[1]);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}
