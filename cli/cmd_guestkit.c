/* cli/cmd_guestkit.c — what a finished attempt kept, for debugging a guest (issue 11):
 *   aspen core ID [--attempt N] -o FILE [--binary FILE]   the ELF core of a failed attempt
 *   aspen replay ID [--attempt N] [--set CALL[.I]=VALUE] [--json]   run an attempt again
 * Both go through a client engine (no workers). `core` writes the core (and, with --binary, the
 * exact guest ELF the attempt ran, from the store) and prints the gdb command that opens it.
 * `replay` prints "identical: …" or "diverged …" naming the first host call that differs, then
 * (when it differs) a line each for the outcome, output, error and log lines against the record;
 * `replay --calls` lists the recorded calls and their values, the ones --set can edit.
 * Exit status: 0 done (replay: identical), 1 failed or diverged (one `error: …` line, or the
 * replay's verdict), 2 usage.
 */
#include "cli.h"
#include "aspen_vm.h" /* aspen_vm_core_set_program */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes bytes to path (created or truncated, never through a symlink); 0 or -1 (printed). */
static int write_file(const char *path, const void *bytes, size_t n, const char *what)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        cli_error("cannot write the %s to %s: %s", what, path, strerror(errno));
        return -1;
    }
    const uint8_t *p = bytes;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            cli_error("writing the %s to %s failed: %s", what, path,
                      w < 0 ? strerror(errno) : "nothing written");
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        cli_error("writing the %s to %s failed: %s", what, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* path as an absolute one with its directory resolved (the file itself may not exist yet);
 * false when the directory cannot be resolved. */
static bool resolved_path(const char *path, char *out, size_t cap)
{
    if (realpath(path, out)) /* out is PATH_MAX bytes */
        return true;
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!*base || !realpath(dir, real))
        return false;
    int n = snprintf(out, cap, "%s/%s", strcmp(real, "/") ? real : "", base);
    return n > 0 && (size_t)n < cap;
}

/* -o and --binary checked before anything is written: the same file twice (one path, two
 * spellings of it, a hard link) would get the core and then the ELF over it, and a symbolic link
 * is never written through (write_file) — said now, not after the core is already out. 0, or -1
 * after the error. */
static int check_core_outputs(const char *out, const char *bin_out, int64_t id)
{
    const char *paths[2] = {out, bin_out};
    const char *opt[2] = {"-o", "--binary"};
    struct stat st[2];
    bool exists[2] = {false, false};
    for (int i = 0; i < 2 && paths[i]; i++) {
        if (lstat(paths[i], &st[i]) != 0)
            continue;
        if (S_ISLNK(st[i].st_mode)) {
            cli_error("%s %s is a symbolic link: aspen core writes no file through a link "
                      "(give the path of the file itself, or a new one); nothing was written",
                      opt[i], paths[i]);
            return -1;
        }
        exists[i] = true;
    }
    if (!bin_out)
        return 0;
    char ra[PATH_MAX], rb[PATH_MAX];
    bool same = strcmp(out, bin_out) == 0 ||
                (exists[0] && exists[1] && st[0].st_dev == st[1].st_dev &&
                 st[0].st_ino == st[1].st_ino) ||
                (resolved_path(out, ra, sizeof ra) && resolved_path(bin_out, rb, sizeof rb) &&
                 strcmp(ra, rb) == 0);
    if (same) {
        cli_error("-o %s and --binary %s are the same file: the guest ELF would overwrite the "
                  "core. Give two files (e.g. -o core-%lld --binary guest-%lld); nothing was "
                  "written",
                  out, bin_out, (long long)id, (long long)id);
        return -1;
    }
    return 0;
}

static const char core_usage[] =
    "usage: aspen core ID [--attempt N] -o FILE [--binary FILE] [--db PATH]\n"
    "  writes the ELF core a failed attempt kept (the last one that kept one, or attempt N);\n"
    "  --binary also writes the guest ELF the attempt ran. Open it with: gdb GUEST FILE\n";

/* Where the binary job's core came from is, as a path that works from here: the name it was
 * submitted under (relative to this directory, a bare name), or that name in the guest directory,
 * whichever is the very ELF the attempt ran (sha256). The stored name is only a base name, so a
 * file of that name elsewhere, or a rebuild, is not it: "" then (gdb would say the core does not
 * match, or show wrong lines). */
static void guest_path(const char *name, const char *sha, char *out, size_t cap)
{
    out[0] = '\0';
    if (!*name || !*sha)
        return;
    char cands[2][4096], msg[512];
    snprintf(cands[0], sizeof cands[0], "%s", name);
    if (cli_resolve_guest(name, cands[1], sizeof cands[1], msg, sizeof msg) != 0)
        cands[1][0] = '\0';
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (!cands[i][0] || stat(cands[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len = 0;
        uint8_t *bytes = cli_read_file(cands[i], ASPEN_STORE_MAX_BINARY, &len, msg, sizeof msg);
        char hex[65] = "";
        if (bytes)
            aspen_store_sha256_hex(bytes, len, hex);
        free(bytes);
        char real[PATH_MAX];
        if (hex[0] && strcmp(hex, sha) == 0 && realpath(cands[i], real)) {
            snprintf(out, cap, "%s", real);
            return;
        }
    }
}

int cmd_core(int argc, char **argv)
{
    static const struct option opts[] = {{"attempt", required_argument, 0, 'a'},
                                         {"output", required_argument, 0, 'o'},
                                         {"binary", required_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *db = NULL, *out = NULL, *bin_out = NULL;
    long long attempt = 0;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "a:o:b:hD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'a':
            if (cli_parse_num("--attempt", optarg, 1, 1000000, &attempt))
                return 2;
            break;
        case 'o': out = optarg; break;
        case 'b': bin_out = optarg; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr, "%s", core_usage);
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    int urc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", core_usage);
    if (urc || (urc = cli_id_arg(argv[optind], &id, core_usage)))
        return urc;
    if (!out) {
        cli_error("aspen core needs -o FILE: the file to write the core to");
        cli_usage_line(core_usage);
        return 2;
    }
    if (check_core_outputs(out, bin_out, id) != 0)
        return 1;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    void *core = NULL;
    size_t n = 0;
    int which = 0;
    aspen_store_job job = {0};
    int rc = aspen_engine_attempt_data(eng, id, (int)attempt, ASPEN_STORE_DATA_CORE, &core, &n,
                                       &which, &err);
    if (rc == 0)
        rc = aspen_engine_get(eng, id, &job, &err);
    int status = 1;
    if (rc) {
        cli_error("%s", err.msg);
        goto done;
    }
    /* The core names the guest as it was submitted; gdb warns "core file may not match" unless
     * that is the base name of the ELF it is given, so name it after the file --binary writes. */
    if (bin_out)
        (void)aspen_vm_core_set_program(core, n, bin_out); /* not such a core: written as it is */
    if (write_file(out, core, n, "core"))
        goto done;
    char guest[4096] = "";
    if (bin_out) {
        aspen_store_binary b = {0};
        if (!job.binary_sha256) {
            cli_error("job %lld names no stored binary: --binary has nothing to write",
                      (long long)id);
            goto done;
        }
        if (aspen_engine_get_binary(eng, job.binary_sha256, &b, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
        int w = write_file(bin_out, b.bytes, b.size, "guest binary");
        aspen_store_binary_clear(&b);
        if (w)
            goto done;
        snprintf(guest, sizeof guest, "%s", bin_out);
    } else {
        char sha[65] = "";
        if (job.binary_sha256)
            snprintf(sha, sizeof sha, "%s", job.binary_sha256);
        else if (aspen_engine_attempt_binary(eng, id, which, sha, &err) != 0)
            sha[0] = '\0'; /* a --source job without a record: nothing to compare with */
        const char *name = job.binary_name ? job.binary_name : "";
        guest_path(name, sha, guest, sizeof guest);
    }
    printf("wrote the core of job %lld attempt %d (%zu bytes) to %s\n", (long long)id, which, n,
           out);
    if (guest[0]) {
        printf("open it with: gdb %s %s\n", guest, out);
    } else {
        printf("open it with: gdb GUEST %s\n", out);
        printf("  GUEST: the ELF job %lld ran (", (long long)id);
        cli_puts(stdout, job.binary_name && *job.binary_name ? job.binary_name : "its guest");
        printf(" is not here, or is another build), built with ASPEN_GUEST_DEBUG=1 for source "
               "lines; or let aspen write it: aspen core %lld --attempt %d -o %s --binary FILE",
               (long long)id, which, out);
        char dba[4 * PATH_MAX + 16];
        cli_puts(stdout, cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba));
        printf("\n");
    }
    status = 0;
done:
    free(core);
    aspen_store_job_clear(&job);
    aspen_engine_close(eng);
    return status;
}

static const char replay_usage[] =
    "usage: aspen replay ID [--attempt N] [--set CALL[.I]=VALUE | --calls] [--json] [--db PATH]\n"
    "  runs an attempt of a micro-VM job again from the snapshot with its recorded\n"
    "  host-call results and says \"identical\" or where it diverged, then how its\n"
    "  outcome, output, error and log lines compare with the record.\n"
    "  --set first replaces value I (from 1, default 1) of host call CALL (from 1):\n"
    "  what if the host had answered VALUE.\n"
    "  --calls runs nothing: it lists the recorded host calls and their values, the\n"
    "  ones --set can edit.\n";

/* "3=1700000000" or "3.2=42": host calls and their values both count from 1, as the replay's
 * report and errors number them ("host call 1's values = A, B": A is 1.1, B is 1.2). */
static int parse_set(const char *s, aspen_engine_replay_opts *o)
{
    char *end;
    errno = 0;
    unsigned long call = strtoul(s, &end, 10), idx = 1;
    if (end == s || errno || call == 0 || call > UINT32_MAX)
        return -1;
    if (*end == '.') {
        const char *p = end + 1;
        idx = strtoul(p, &end, 10);
        if (end == p || errno || idx == 0 || idx > 64)
            return -1;
    }
    if (*end != '=' || !end[1])
        return -1;
    const char *v = end + 1;
    /* up to 2^64-1 (a clock reading is a uint64_t); a negative one only where the call's value is
     * signed (checked against the record: set_negative_refused) */
    long long value;
    if (*v == '-')
        value = strtoll(v, &end, 10);
    else if (*v >= '0' && *v <= '9')
        value = (long long)strtoull(v, &end, 10);
    else
        return -1;
    if (*end || errno)
        return -1;
    o->set = true;
    o->set_call = (uint32_t)call;
    o->set_index = (uint32_t)(idx - 1); /* the library's index is 0-based */
    o->set_value = value;
    return 0;
}

/* --set CALL.I=-N where the recorded value is unsigned: the SDK's own host functions (hl_*, such as
 * hl_get_time_ns) return a uint64_t, so -5 would reach the guest as 18446744073709551611, which
 * nobody means. A Linux program's system calls and registered functions return signed values
 * (an error is negative): those take it. True after saying so. */
static bool set_negative_refused(aspen_engine *eng, int64_t id, const aspen_engine_replay_opts *ro,
                                 const char *text)
{
    if (!ro->set || ro->set_value >= 0 || !text || text[strcspn(text, "=") + 1] != '-')
        return false;
    aspen_engine_replay_call_list calls = {0};
    aspen_engine_error err = {0};
    bool refused = false;
    if (aspen_engine_replay_calls(eng, id, ro->attempt, &calls, &err) != 0)
        return false; /* the replay itself says what is wrong with the job or attempt */
    for (size_t i = 0; i < calls.n; i++) {
        const aspen_engine_replay_call *k = &calls.calls[i];
        if (k->index != ro->set_call || k->syscall || strncmp(k->name, "hl_", 3) != 0)
            continue;
        char name[200];
        cli_cell_str(k->name, 60, name, sizeof name);
        cli_error("--set %s: value %u.%u of host call %u (%s) is unsigned (a uint64_t the guest "
                  "reads): give a whole number from 0 to 18446744073709551615",
                  text, ro->set_call, ro->set_index + 1, ro->set_call, name);
        refused = true;
    }
    aspen_engine_replay_call_list_free(&calls);
    return refused;
}

/* The calls as JSON: [{"call": 2, "name": "clock_gettime", "syscall": true, "values": [S, NS]}];
 * a value that is bytes is {"bytes": N, "hex": its first 32 bytes}. */
static json_t *calls_json(const aspen_engine_replay_call_list *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->n; i++) {
        const aspen_engine_replay_call *k = &c->calls[i];
        json_t *o = json_object(), *vals = json_array();
        json_object_set_new(o, "call", json_integer(k->index));
        json_object_set_new(o, "name", cli_json_str(k->name));
        json_object_set_new(o, "syscall", json_boolean(k->syscall));
        for (uint32_t j = 0; j < k->nvalues; j++) {
            const aspen_engine_replay_value *v = &c->values[k->first_value + j];
            if (v->is_bytes) {
                json_t *b = json_object();
                json_object_set_new(b, "bytes", json_integer((json_int_t)v->len));
                json_object_set_new(b, "hex", cli_json_str(v->hex));
                json_array_append_new(vals, b);
            } else {
                json_array_append_new(vals, json_integer(v->number));
            }
        }
        json_object_set_new(o, "values", vals);
        json_array_append_new(a, o);
    }
    return a;
}

/* aspen replay ID --calls: the record's calls, one a line, values numbered as --set takes them. */
static void print_calls(int64_t id, const aspen_engine_replay_call_list *c, const char *dba)
{
    if (!c->recorded) {
        printf("job %lld attempt %d kept no replay record: it succeeded and its guest asked the "
               "host for nothing it makes up (no clock reading, no random bytes), so no host "
               "call has a value to set; aspen replay %lld",
               (long long)id, c->attempt, (long long)id);
        cli_puts(stdout, dba);
        printf(" runs it again and counts its calls\n");
        return;
    }
    printf("job %lld attempt %d recorded %zu host call%s, %zu with values", (long long)id,
           c->attempt, c->n, c->n == 1 ? "" : "s", c->with_values);
    if (c->with_values) {
        printf(" (edit one: aspen replay %lld --set CALL.I=VALUE", (long long)id);
        cli_puts(stdout, dba);
        printf(")");
    }
    printf("\n");
    if (c->n)
        printf("%6s  %-16s  %s\n", "CALL", "NAME", "VALUES");
    for (size_t i = 0; i < c->n; i++) {
        const aspen_engine_replay_call *k = &c->calls[i];
        printf("%6u  ", k->index);
        cli_puts(stdout, k->name);
        printf("%*s  ", strlen(k->name) < 16 ? (int)(16 - strlen(k->name)) : 0, "");
        if (!k->nvalues)
            printf("-");
        for (uint32_t j = 0; j < k->nvalues; j++) {
            const aspen_engine_replay_value *v = &c->values[k->first_value + j];
            if (v->is_bytes)
                printf("%s%u.%u=%zu bytes %s%s", j ? "  " : "", k->index, j + 1, v->len, v->hex,
                       v->len > 32 ? "..." : "");
            else
                printf("%s%u.%u=%lld", j ? "  " : "", k->index, j + 1, (long long)v->number);
        }
        printf("\n");
    }
    if (c->truncated)
        printf("the record was cut at its cap: the calls after %zu were not recorded (a replay "
               "runs them live)\n", c->n);
}

/* The comparison of every part (outcome, output, error, log lines) for --json. */
static void report_json(json_t *o, const aspen_engine_replay_report *r)
{
    json_object_set_new(o, "recorded_outcome", cli_json_str(r->recorded_outcome));
    json_object_set_new(o, "outcome_same", json_boolean(!r->outcome_differs));
    json_t *out = json_object();
    json_object_set_new(out, "same", json_boolean(!r->output_differs));
    json_object_set_new(out, "bytes", json_integer((json_int_t)r->output_len));
    json_object_set_new(out, "sha256", cli_json_str(r->output_sha256));
    json_object_set_new(out, "recorded_bytes", json_integer((json_int_t)r->recorded_output_len));
    json_object_set_new(out, "recorded_sha256", cli_json_str(r->recorded_output_sha256));
    json_object_set_new(out, "first_differing_byte",
                        r->output_diff_at >= 0 ? json_integer(r->output_diff_at) : json_null());
    cli_json_set_text(out, "head", r->output_head, r->output_head_len);
    json_object_set_new(o, "output", out);
    json_t *e = json_object();
    json_object_set_new(e, "same", json_boolean(!r->error_differs));
    cli_json_set_text(e, "replayed", r->error, strlen(r->error));
    cli_json_set_text(e, "recorded", r->recorded_error, strlen(r->recorded_error));
    json_object_set_new(o, "error", e);
    json_t *l = json_object();
    /* same: as many lines, and none of the stored ones differs */
    json_object_set_new(l, "same", json_boolean(!r->log_lines_differ && !r->log_diff_at));
    json_object_set_new(l, "replayed", json_integer(r->log_lines));
    json_object_set_new(l, "recorded", json_integer(r->recorded_log_lines));
    json_object_set_new(l, "first_differing_line", json_integer(r->log_diff_at));
    if (r->log_diff_at) {
        cli_json_set_text(l, "recorded_line", r->log_recorded, strlen(r->log_recorded));
        cli_json_set_text(l, "replayed_line", r->log_replayed, strlen(r->log_replayed));
    }
    json_object_set_new(o, "log_lines", l);
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {{"attempt", required_argument, 0, 'a'},
                                         {"set", required_argument, 0, 's'},
                                         {"calls", no_argument, 0, 'L'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_DB_OPTS,
                                         {0, 0, 0, 0}};
    const char *db = NULL, *set_text = NULL;
    bool as_json = false, list = false;
    aspen_engine_replay_opts ro = {0};
    long long attempt = 0;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "a:s:LjhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'a':
            if (cli_parse_num("--attempt", optarg, 1, 1000000, &attempt))
                return 2;
            break;
        case 's':
            set_text = optarg;
            if (parse_set(optarg, &ro)) {
                cli_error("--set wants CALL=VALUE or CALL.I=VALUE (host call and value I "
                          "from 1, VALUE a whole number), not '%s'",
                          optarg);
                return 2;
            }
            break;
        case 'L': list = true; break;
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr, "%s", replay_usage);
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    int urc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", replay_usage);
    if (urc || (urc = cli_id_arg(argv[optind], &id, replay_usage)))
        return urc;
    if (list && ro.set) {
        cli_error("--calls lists the record and runs nothing, --set replays it edited: give one "
                  "of them");
        cli_usage_line(replay_usage);
        return 2;
    }
    ro.attempt = (int)attempt;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    char dba[4 * PATH_MAX + 16]; /* the commands printed open this database when pasted */
    ro.cmd_args = cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    if (set_negative_refused(eng, id, &ro, set_text)) {
        aspen_engine_close(eng);
        return 2;
    }
    aspen_engine_replay_call_list calls = {0};
    aspen_engine_replay_report rep;
    aspen_engine_error err = {0};
    int rc;
    if (list) {
        rc = aspen_engine_replay_calls(eng, id, ro.attempt, &calls, &err);
    } else {
        if (as_json)
            ro.calls = &calls;
        rc = aspen_engine_replay(eng, id, &ro, &rep, &err);
    }
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        aspen_engine_replay_call_list_free(&calls);
        return 1;
    }
    int status = list || rep.identical ? 0 : 1;
    if (list && as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "job", json_integer(id));
        json_object_set_new(o, "attempt", json_integer(calls.attempt));
        json_object_set_new(o, "recorded", json_boolean(calls.recorded));
        json_object_set_new(o, "truncated", json_boolean(calls.truncated));
        json_object_set_new(o, "calls", calls_json(&calls));
        cli_json_print(o, stdout, false);
        json_decref(o);
    } else if (list) {
        print_calls(id, &calls, dba);
    } else if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "job", json_integer(id));
        json_object_set_new(o, "attempt", json_integer(rep.attempt));
        json_object_set_new(o, "identical", json_boolean(rep.identical));
        json_object_set_new(o, "recorded", json_boolean(rep.recorded));
        json_object_set_new(o, "host_calls", json_integer(rep.calls));
        json_object_set_new(o, "values_fed", json_integer(rep.values));
        json_object_set_new(o, "diverged_at", json_integer(rep.diverged_at));
        json_object_set_new(o, "outcome", cli_json_str(rep.outcome));
        report_json(o, &rep);
        json_object_set_new(o, "summary", cli_json_str(rep.summary));
        json_object_set_new(o, "calls", calls_json(&calls));
        cli_json_print(o, stdout, false);
        json_decref(o);
    } else {
        /* the summary and details quote the guest's output, error and log lines: escaped */
        printf("job %lld attempt %d: ", (long long)id, rep.attempt);
        cli_puts(stdout, rep.summary);
        printf("\n");
        if (rep.details[0])
            cli_put_lines(stdout, rep.details, strlen(rep.details), 0, 0);
        if (rep.details[0])
            printf("\n");
    }
    aspen_engine_replay_call_list_free(&calls);
    return status;
}
