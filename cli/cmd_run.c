/* cli/cmd_run.c — `aspen run GUEST`: run one job in a fresh micro-VM, straight on vm/.
 *
 * Guest output goes to stdout, guest log lines to stderr prefixed with the guest's name, and the
 * exit status says how it went: 0 success, 1 the job failed (one `error: …` line), 2 usage.
 */
#include "aspen_vm.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_USAGE_LINE "aspen run GUEST [--payload JSON|@FILE|- | --input FILE] (aspen run --help)"
static void usage(FILE *f)
{
    cli_help(f, "usage: aspen run GUEST [--payload JSON|@FILE|- | --input FILE] [--timeout TIME] "
               "[--memory SIZE] [--arg ARG]... [--json] [--gdb HOST:PORT] [--core FILE]\n"
               "  GUEST      a path, or a name in target/guest-binaries/ (e.g. echo-worker)\n"
               "  --payload  the job's input: JSON text (@FILE from a file, - from stdin),\n"
               "             checked before the run as aspen submit checks it\n"
               "  --input    the job's input: raw bytes from FILE ('-' for stdin), up to 16 MiB\n"
               "  --timeout  deadline: milliseconds, or 500ms, 5s, 2m (default 1s)\n"
               "  --memory   guest memory, e.g. 1M, 512K, 64MiB (default 1M)\n"
               "  --arg      one more argument for a static Linux program (argv[1], argv[2], ...)\n"
               "  --json     print one JSON object with outcome, output, error and stats\n"
               "             (times as whole microseconds)\n"
               "  --gdb      serve gdb on HOST:PORT (default host 127.0.0.1) and start stopped at\n"
               "             the guest's entry; in gdb: target remote HOST:PORT\n"
               "  --core     write an ELF core of the guest to FILE if the job faults, panics or\n"
               "             times out (gdb GUEST FILE)\n");
}

struct log_ctx {
    const char *name;
    json_t *lines; /* --json: collected instead of printed */
};

static void on_log(void *user, const char *line, size_t len)
{
    struct log_ctx *c = user;
    if (c->lines) {
        json_array_append_new(c->lines, cli_json_text(line, len));
    } else {
        fputc('[', stderr);
        cli_puts(stderr, c->name);
        fputs("] ", stderr);
        cli_putn(stderr, line, len, ASPEN_TEXT_KEEP_TAB);
        fputc('\n', stderr);
    }
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, 0, 'p'}, {"input", required_argument, 0, 'i'},
        {"timeout", required_argument, 0, 't'}, {"memory", required_argument, 0, 'm'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {"arg", required_argument, 0, 'a'},
        {"gdb", required_argument, 0, 'g'},     {"core", required_argument, 0, 'c'},
        {0, 0, 0, 0},
    };
    const char *payload = NULL, *input_file = NULL, *gdb_spec = NULL, *core_file = NULL;
    bool as_json = false;
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.warm = false; /* one job: no snapshot needed */
    int c;
    optind = 1;
    static const char *args[1024]; /* --arg values, NULL-terminated */
    size_t nargs = 0;
    while ((c = cli_getopt(argc, argv, "p:i:t:m:jh", opts, argv[0])) != -1) {
        switch (c) {
        case 'a':
            if (nargs == sizeof args / sizeof args[0] - 1) {
                cli_error("at most %zu --arg values", nargs);
                return 2;
            }
            args[nargs++] = optarg;
            args[nargs] = NULL;
            break;
        case 'p': payload = optarg; break;
        case 'i': input_file = optarg; break;
        case 't': {
            long long v;
            if (cli_parse_ms("--timeout", optarg, 1, 86400000, &v))
                return 2;
            cfg.timeout_ms = (uint32_t)v;
            break;
        }
        case 'm': {
            int64_t mem = 0;
            if (cli_memory_opt(optarg, &mem))
                return 2;
            if (mem) /* 0: the VM's default, as for a job */
                cfg.memory_bytes = (size_t)mem;
            break;
        }
        case 'j': as_json = true; break;
        case 'g': gdb_spec = optarg; break;
        case 'c': core_file = optarg; break;
        case 'h': usage(stdout); return 0;
        default: cli_usage_line(RUN_USAGE_LINE); return 2; /* the error said what; the help buries it */
        }
    }
    if (payload && input_file) {
        cli_error("--payload and --input exclude each other: give the job's input one way");
        return 2;
    }
    /* a name in target/guest-binaries/ or a path; only the first line of the usage as the hint */
    int urc = cli_args(argc, argv, optind, 1, 1,
                       "one GUEST: a name in target/guest-binaries/ or a path",
                       RUN_USAGE_LINE);
    if (urc)
        return urc;
    const char *guest = argv[optind];
    char path[4096], msg[1024];
    if (cli_resolve_guest(guest, path, sizeof path, msg, sizeof msg) != 0) {
        cli_error("%s", msg);
        return 1;
    }
    uint8_t *input = NULL;
    size_t input_len = 0;
    if (payload) {
        /* checked and worded as `aspen submit` does (cli_check_payload) */
        char from[4200], pmsg[4608];
        char *text = cli_load_payload(payload, &input_len, from, sizeof from, pmsg, sizeof pmsg);
        if (!text) {
            cli_error("%s", pmsg);
            return 1;
        }
        input = (uint8_t *)text;
    } else if (input_file) {
        /* the limit and wording of --payload @FILE and of `aspen submit` (an unbounded read of
         * /dev/zero or a runaway pipe would grow until the host runs out of memory) */
        input = (uint8_t *)cli_read_bounded(input_file, ASPEN_ENGINE_MAX_PAYLOAD, &input_len, msg,
                                            sizeof msg);
        if (!input) {
            cli_error("%s", msg);
            return 1;
        }
    }

    int rc = 1;
    aspen_vm_error err = {0};
    aspen_vm_image *img = NULL;
    aspen_vm *vm = NULL;
    aspen_vm_gdb *gdb = NULL;
    aspen_vm_result res;
    memset(&res, 0, sizeof res);
    struct log_ctx lc = {.name = guest, .lines = as_json ? json_array() : NULL};
    const char *slash = strrchr(guest, '/');
    if (slash && slash[1])
        lc.name = slash + 1;

    cfg.startup_log = on_log; /* lines from the guest's init, too */
    cfg.argv = args;
    cfg.startup_log_user = &lc;
    if (gdb_spec) {
        bool loopback;
        if (aspen_vm_gdb_listen(gdb_spec, &gdb, &loopback, &err) != 0)
            goto fail_report;
        if (!loopback)
            fprintf(stderr, "[aspen] warning: gdb is served on %s, not a loopback address: "
                            "whoever reaches it controls the guest\n", aspen_vm_gdb_address(gdb));
        fprintf(stderr, "[aspen] waiting for gdb on %s (in gdb: target remote %s)\n",
                aspen_vm_gdb_address(gdb), aspen_vm_gdb_address(gdb));
        fflush(stderr);
        if (aspen_vm_gdb_accept(gdb, &err) != 0)
            goto fail_report;
        cfg.gdb = gdb;
    }
    double t0 = cli_now_us();
    if (aspen_vm_image_load_file(path, &img, &err) != 0 ||
        aspen_vm_create(img, &cfg, NULL, &vm, &err) != 0)
        goto fail_report;
    double t1 = cli_now_us();
    aspen_vm_run_opts ro = {.input = input, .input_len = input_len, .on_log = on_log,
                            .log_user = &lc, .core_max = core_file ? ASPEN_VM_CORE_MAX : 0};
    if (aspen_vm_run(vm, &ro, &res, &err) != 0)
        goto fail_report;
    double t2 = cli_now_us();
    aspen_vm_gdb_finish(gdb, &res);
    if (core_file && res.core) {
        FILE *cf = fopen(core_file, "wb");
        bool ok = cf && fwrite(res.core, 1, res.core_len, cf) == res.core_len;
        if (cf && fclose(cf) != 0)
            ok = false;
        if (!ok) {
            cli_error("cannot write the core to %s", core_file);
        } else {
            fprintf(stderr, "[aspen] core of the failed run written to %s (%zu bytes): gdb %s %s\n",
                    core_file, res.core_len, path, core_file);
        }
    }

    if (as_json) {
        json_t *o = json_pack("{s:o, s:s, s:o}", "guest", cli_json_str(lc.name), "outcome",
                              aspen_vm_outcome_name(res.outcome), "logs", lc.lines);
        lc.lines = NULL;
        if (res.outcome == ASPEN_VM_SUCCESS) {
            /* text (U+FFFD for bad bytes), and the exact bytes as output_base64 when not UTF-8 */
            json_object_set_new(o, "output", cli_json_text(res.output, res.output_len));
            if (!aspen_text_utf8_valid(res.output, res.output_len)) {
                char *b = cli_base64(res.output, res.output_len);
                json_object_set_new(o, "output_base64", b ? json_string(b) : json_null());
                free(b);
            }
        } else {
            json_object_set_new(o, "error", cli_json_str(res.message));
        }
        aspen_vm_stats st;
        aspen_vm_get_stats(vm, &st);
        /* times in whole microseconds: integers, never 546.88599999999997 */
        json_object_set_new(
            o, "stats",
            json_pack("{s:I, s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I, s:I}", "cold_start_us",
                      (json_int_t)llround(st.cold_start_ns / 1e3), "run_us",
                      (json_int_t)llround(res.stats.wall_ns / 1e3), "total_us",
                      (json_int_t)llround(t2 - t0), "exits", (int)res.stats.exits, "host_calls",
                      (int)res.stats.host_calls, "log_lines", (int)res.stats.log_lines,
                      "bytes_in", (json_int_t)res.stats.bytes_in, "bytes_out",
                      (json_int_t)res.stats.bytes_out, "memory_bytes",
                      (json_int_t)st.memory_bytes, "memory_touched",
                      (json_int_t)st.memory_touched));
        cli_json_print(o, stdout, true);
        json_decref(o);
    } else if (res.outcome == ASPEN_VM_SUCCESS) {
        /* the exact bytes into a pipe or file (nothing added, so output can be piped on or
         * compared); escaped (newlines and tabs kept) on a terminal, ending on a newline there
         * so the prompt is not glued to it */
        if (isatty(STDOUT_FILENO)) {
            cli_putn(stdout, res.output, res.output_len, ASPEN_TEXT_KEEP_NEWLINE | ASPEN_TEXT_KEEP_TAB);
            if (res.output_len == 0 || res.output[res.output_len - 1] != '\n')
                putchar('\n');
        } else {
            fwrite(res.output, 1, res.output_len, stdout);
        }
        if (isatty(STDERR_FILENO)) {
            char shown[512];
            aspen_text_escape_str(lc.name, 0, shown, sizeof shown);
            fprintf(stderr, "[aspen] %s: success in %.0f us (VM start %.0f us), %u exits, %u "
                            "host calls\n",
                    shown, t2 - t1, t1 - t0, res.stats.exits, res.stats.host_calls);
        }
    } else {
        cli_error("%s", res.message);
    }
    rc = res.outcome == ASPEN_VM_SUCCESS ? 0 : 1;
    goto done;

fail_report:
    aspen_vm_gdb_finish(gdb, NULL);
    if (as_json) {
        json_t *o = json_pack("{s:o, s:s, s:o}", "guest", cli_json_str(lc.name), "outcome", "error",
                              "error", cli_json_str(err.msg));
        cli_json_print(o, stdout, true);
        json_decref(o);
    } else {
        cli_error("%s", err.msg);
    }
done:
    aspen_vm_result_free(&res);
    aspen_vm_destroy(vm);
    aspen_vm_gdb_close(gdb);
    aspen_vm_image_release(img);
    json_decref(lc.lines);
    free(input);
    return rc;
}
