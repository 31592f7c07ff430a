/* cli/cmd_jobs.c — the job subcommands on the store, through a client engine (no workers):
 *   aspen submit GUEST | --source SRC | --type T [--payload JSON|@FILE|-] [--count N | --jsonl F]
 *                 prints the new jobs' ids, one a line
 *   aspen jobs [--state S] [--filter F] [--limit N | --all] [--json | --jsonl]
 *                 --jsonl: every matching job (read a page at a time), one JSON object a line
 *   aspen retry ID | --failed [--filter F]
 *   aspen show ID [--json]        the job, its attempts, its result and error
 *   aspen logs ID [--follow] [--json]   log lines; --follow waits for more until the job is final
 *   aspen logs --follow [--json]  every job's new lines from every host (the store's log feed)
 *   aspen cancel ID | --filter F [--yes | --dry-run]   a filter's jobs are counted and asked for
 *   aspen rerun ID | pause | resume
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage, 3 nothing to do
 * (aspen cancel of a job that is already final: it says which state, nothing changed; cancel
 * --filter that matched no unfinished job; retry --failed that found no failed job).
 */
#include "aspen_vm.h"
#include "cli.h"

#include <getopt.h>
#include <poll.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_OPT CLI_DB_OPTS

/* ---- submit ------------------------------------------------------------------------------------- */

#define SUBMIT_USAGE_LINE                                                                          \
    "aspen submit GUEST | --source SRC | --type T [--payload JSON] (aspen submit --help)"
static void submit_usage(FILE *f)
{
    cli_help(f,
            "usage: aspen submit GUEST | --source SRC | --type T [--payload JSON|@FILE|-]\n"
            "         [--count N | --jsonl FILE [--batch N]] [--timeout TIME]\n"
            "         [--priority N] [--max-attempts N] [--memory SIZE] [--isolation]\n"
            "         [--tag T]... [--delay TIME] [--queue Q [--create-queue]]\n"
            "         [--unique | --unique-key K | --unique-fields F,...]\n"
            "         [--unique-for D] [--unique-states S,...] [--json] [--any-type]\n"
            "         [--db PATH [--create]]\n"
            "  GUEST           a path, or a name in target/guest-binaries/ (a micro-VM runs it)\n"
            "  --source SRC    or: build the guest from SRC when it runs (cached): a source\n"
            "                  directory, or a git repository and revision REPO#REV[:SUBDIR]\n"
            "  --type T        job type (default vm_execute with a guest; echo, checksum, sleep\n"
            "                  run in-process in the worker, with no guest). Another type is\n"
            "                  refused unless --any-type is given: it runs only in a worker\n"
            "                  program of your own that registers it (aspen_engine_register_handler)\n"
            "  --payload JSON  the job's input, checked as JSON now (default {}); @FILE reads it\n"
            "                  from a file, - from standard input (up to 16 MiB)\n"
            "  --count N       N identical jobs in one transaction (prints N ids, one a line)\n"
            "  --jsonl FILE    one job per line of FILE (- for stdin), each line its payload;\n"
            "                  --batch N lines per transaction (default 1000). A bad line stops\n"
            "                  it, named by number: nothing of its batch is submitted\n"
            "  --timeout TIME  per attempt: ms, or 30s, 5m (default 30s)\n"
            "  --max-attempts N  tries before it fails for good (default 3)\n"
            "  --priority N    higher runs first (default 0)\n"
            "  --memory SIZE   guest memory, 64K to 1G (default 1M)\n"
            "  --isolation     run in a micro-VM whatever the type\n"
            "  --tag T         a tag (repeatable); arg:VALUE tags are a Linux program's argv\n"
            "  --delay TIME    schedule it TIME from now (ms, or 90s, 10m, 1h)\n"
            "  --queue Q       its named queue (default: default; aspen queues lists them);\n"
            "                  one that does not exist yet is refused as a likely typo\n"
            "  --create-queue  take a --queue Q that does not exist yet (or declare it first:\n"
            "                  aspen queue set Q)\n"
            "  --unique        submit only if no such job exists yet: same type, guest and\n"
            "                  payload (keys in any order), queued, scheduled or running.\n"
            "                  A duplicate prints the existing job's id (exit 0) and a note on\n"
            "                  stderr; with --json, \"duplicate\": true. Any option below implies it:\n"
            "  --unique-key K  the key itself (any text, the same across guests)\n"
            "  --unique-fields a,b.c   or: the key from these payload fields only\n"
            "  --unique-for D  only jobs created within D count (10m, 24h; default: any age)\n"
            "  --unique-states S,...   the states that count (default queued,scheduled,\n"
            "                          running; add succeeded to refuse a rerun of a job done\n"
            "                          within --unique-for)\n"
            "  --json          one {\"id\":N,\"duplicate\":false,...} object a line\n"
            "  --db PATH       the database (must exist; --create makes a new one)\n");
}

/* --source DIR, checked before anything is stored so a job that could only fail is not created:
 * here only that it is a directory; what it must hold (C sources, not a Rust guest or a plain
 * libc program, an allowed guest.flags) the engine's submit checks, in one place with the build
 * (engine/build.c eng_source_refusal). 0, or -1 with msg. */
static int check_source_dir(const char *dir, char *msg, size_t cap)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(msg, cap, "guest source directory %s not found: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, cap,
                 "%s is a file, not a directory: --source wants the directory that holds the "
                 "guest's sources (e.g. --source guests/echo-worker)",
                 dir);
        return -1;
    }
    return 0;
}

static bool submit_json; /* --json: one {"id":N,"duplicate":false} a line */

/* Submits n specs in one transaction and prints their ids (a duplicate's is the existing job's,
 * with the one-line note on stderr). 0, or -1 with msg. */
static int submit_specs(aspen_engine *eng, aspen_engine_job_spec *specs, size_t n, char *msg,
                        size_t cap)
{
    aspen_store_submitted *done = calloc(n, sizeof *done);
    if (!done) {
        snprintf(msg, cap, "out of memory for %zu jobs", n);
        return -1;
    }
    aspen_engine_error err = {0};
    int rc = aspen_engine_submit_ex(eng, specs, n, done, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char key[ASPEN_STORE_UNIQUE_KEY_MAX + 1] = "", note[1024];
        if (done[i].duplicate) {
            char *stored = NULL; /* the key as stored with the job it matched */
            aspen_engine_unique_key(eng, done[i].id, &stored, NULL);
            snprintf(key, sizeof key, "%s", stored ? stored : "?");
            free(stored);
            aspen_store_duplicate_message(key, &done[i], aspen_store_now_ms(), note, sizeof note);
            if (!submit_json) {
                fprintf(stderr, "aspen: ");
                cli_puts(stderr, note);
                fprintf(stderr, "\n");
            }
        }
        if (submit_json) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(done[i].id));
            json_object_set_new(o, "duplicate", json_boolean(done[i].duplicate));
            json_object_set_new(o, "state", json_string(aspen_store_state_name(done[i].state)));
            if (done[i].duplicate) {
                json_object_set_new(o, "unique_key", cli_json_str(key));
                json_object_set_new(o, "created_at_ms", json_integer(done[i].created_at_ms));
                json_object_set_new(o, "message", cli_json_str(note));
            }
            cli_json_print(o, stdout, true);
            json_decref(o);
        } else {
            printf("%lld\n", (long long)done[i].id);
        }
    }
    if (rc)
        snprintf(msg, cap, "%s", err.msg);
    fflush(stdout);
    free(done);
    return rc ? -1 : 0;
}

/* One JSONL line, at most ASPEN_ENGINE_MAX_PAYLOAD bytes (a longer one is not read into memory):
 * 1 a line, 0 end of file, -1 too long (msg). The '\n' (and a '\r' before it) is dropped. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len, char *msg, size_t msgcap)
{
    size_t n = 0;
    int c;
    bool any = false;
    while ((c = getc_unlocked(f)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (n + 2 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 4096;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                snprintf(msg, msgcap, "out of memory");
                return -1;
            }
            *buf = nb;
            *cap = ncap;
        }
        (*buf)[n++] = (char)c;
        if (n > ASPEN_ENGINE_MAX_PAYLOAD) {
            snprintf(msg, msgcap,
                     "the line is longer than the %u-byte payload limit (ASPEN_ENGINE_MAX_PAYLOAD)",
                     ASPEN_ENGINE_MAX_PAYLOAD);
            return -1;
        }
    }
    if (ferror(f)) {
        snprintf(msg, msgcap, "read error: %s", strerror(errno));
        return -1;
    }
    if (!any)
        return 0;
    if (n > 0 && (*buf)[n - 1] == '\r')
        n--;
    if (*cap == 0) {
        *buf = malloc(1);
        *cap = 1;
        if (!*buf) {
            snprintf(msg, msgcap, "out of memory");
            return -1;
        }
    }
    (*buf)[n] = '\0';
    *len = n;
    return 1;
}

/* aspen submit ... --jsonl FILE: every non-blank line is one job's payload, the other options the
 * same for all; batch lines per transaction. A bad line stops it: nothing of its batch is
 * submitted, earlier batches are (their ids were printed). */
static int submit_jsonl(aspen_engine *eng, const aspen_engine_job_spec *spec, const char *path,
                        long long batch)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "standard input" : path;
    struct stat st;
    if (!is_stdin && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_error("--jsonl %s is a directory, not a file", path);
        return 1;
    }
    if (is_stdin && isatty(STDIN_FILENO))
        fprintf(stderr, "aspen: reading jobs from standard input, one payload a line (end with "
                        "Ctrl-D)\n");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("cannot open --jsonl %s: %s", path, strerror(errno));
        return 1;
    }
    aspen_engine_job_spec *specs = calloc((size_t)batch, sizeof *specs);
    char **texts = calloc((size_t)batch, sizeof *texts);
    char *line = NULL, msg[1024], note[128] = "";
    size_t cap = 0, len = 0, n = 0;
    long long lineno = 0, first = 0, done = 0;
    bool bad = false;
    int rc = 0;
    if (!specs || !texts) {
        snprintf(msg, sizeof msg, "out of memory for batches of %lld jobs", batch);
        bad = true;
    }
    while (!bad) {
        int r = read_line(f, &line, &cap, &len, msg, sizeof msg);
        if (r != 0)
            lineno++;
        if (r < 0) {
            bad = true;
            break;
        }
        if (r > 0) {
            if (strspn(line, " \t\f\v\r") == len)
                continue; /* a blank line: nothing to submit */
            if (cli_check_payload(line, len, NULL, msg, sizeof msg) != 0) {
                bad = true;
                break;
            }
            if (!(texts[n] = strdup(line))) {
                snprintf(msg, sizeof msg, "out of memory");
                bad = true;
                break;
            }
            if (n == 0)
                first = lineno;
            specs[n] = *spec;
            specs[n].payload = texts[n];
            n++;
        }
        if (n > 0 && (r == 0 || n == (size_t)batch)) {
            if (done)
                snprintf(note, sizeof note, " (the %lld jobs of the lines before were: their ids are above)", done);
            if (submit_specs(eng, specs, n, msg, sizeof msg) != 0) {
                cli_error("%s lines %lld-%lld: %s: nothing of these lines was submitted%s", name,
                          first, lineno, msg, note);
                rc = 1;
                break;
            }
            done += (long long)n;
            for (size_t i = 0; i < n; i++)
                free(texts[i]);
            n = 0;
        }
        if (r == 0)
            break;
    }
    if (bad) {
        if (done)
            snprintf(note, sizeof note, " (the %lld jobs of the lines before were: their ids are above)", done);
        cli_error("%s line %lld: %s: nothing of lines %lld-%lld was submitted%s", name, lineno, msg,
                  n ? first : lineno, lineno, note);
        rc = 1;
    } else if (rc == 0 && done == 0) {
        cli_error("%s has no jobs: write one JSON payload per line", name);
        rc = 1;
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(specs);
    free(line);
    if (!is_stdin)
        fclose(f);
    return rc;
}

int cmd_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, 0, 'p'}, {"timeout", required_argument, 0, 't'},
        {"priority", required_argument, 0, 'P'}, {"max-attempts", required_argument, 0, 'a'},
        {"memory", required_argument, 0, 'm'},  {"isolation", no_argument, 0, 'i'},
        {"tag", required_argument, 0, 'g'},     {"type", required_argument, 0, 'T'},
        {"source", required_argument, 0, 's'},  {"delay", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'n'},   {"jsonl", required_argument, 0, 'J'},
        {"batch", required_argument, 0, 'B'},   {"help", no_argument, 0, 'h'},
        {"queue", required_argument, 0, 'q'},   {"create-queue", no_argument, 0, 'Q'},
        {"unique", no_argument, 0, 'u'},        {"unique-key", required_argument, 0, 'K'},
        {"unique-fields", required_argument, 0, 'F'},
        {"unique-for", required_argument, 0, 'R'},
        {"unique-states", required_argument, 0, 'S'},
        {"json", no_argument, 0, 'j'},          {"any-type", no_argument, 0, 'Y'},
        CLI_DB_OPTS,                            {0, 0, 0, 0},
    };
    aspen_engine_job_spec spec = {0};
    bool any_type = false;
    aspen_store_unique unique = {0};
    bool want_unique = false;
    aspen_store_error se = {0};
    submit_json = false;
    long long count = 1, batch = 1000;
    bool count_given = false, batch_given = false, create_queue = false;
    const char *db = NULL, *payload_arg = NULL, *jsonl = NULL;
    const char *tags[64];
    size_t n_tags = 0;
    long long v;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "p:t:P:a:m:ig:T:s:d:n:hD:", opts, "submit")) != -1) {
        switch (c) {
        case 'p': payload_arg = optarg; break;
        case 'Y': any_type = true; break;
        case 't':
            if (cli_parse_ms("--timeout", optarg, 1, 86400000, &v))
                return 2;
            spec.timeout_ms = v;
            break;
        case 'P':
            if (cli_parse_num("--priority", optarg, -1000000, 1000000, &v))
                return 2;
            spec.priority = (int)v;
            break;
        case 'a':
            if (cli_parse_num("--max-attempts", optarg, 1, 1000, &v))
                return 2;
            spec.max_attempts = (int)v;
            break;
        case 'm':
            if (cli_memory_opt(optarg, &spec.memory_bytes))
                return 2;
            break;
        case 'i': spec.isolation = true; break;
        case 'g':
            if (n_tags == 64) {
                cli_error("at most 64 tags");
                return 2;
            }
            tags[n_tags++] = optarg;
            break;
        case 'T': spec.type = optarg; break;
        case 'q': {
            aspen_store_error qe = {0};
            if (aspen_store_queue_name_check(optarg, &qe) != 0) {
                cli_error("--queue: %s", qe.msg);
                return 2;
            }
            spec.queue = optarg;
            break;
        }
        case 'Q': create_queue = true; break;
        case 's': spec.source_dir = optarg; break;
        case 'd':
            if (cli_parse_ms("--delay", optarg, 0, 365LL * 86400000, &v))
                return 2;
            spec.run_at_ms = aspen_store_now_ms() + v;
            break;
        case 'n':
            if (cli_parse_num("--count", optarg, 1, 100000, &count))
                return 2;
            count_given = true;
            break;
        case 'J': jsonl = optarg; break;
        case 'B':
            if (cli_parse_num("--batch", optarg, 1, 100000, &batch))
                return 2;
            batch_given = true;
            break;
        case 'u': want_unique = true; break;
        case 'K':
            if (!*optarg) {
                cli_error("--unique-key wants a key (any text), not an empty one");
                return 2;
            }
            unique.key = optarg, want_unique = true;
            break;
        case 'F': unique.fields = optarg, want_unique = true; break;
        case 'R':
            if (cli_parse_period("--unique-for", optarg, &unique.period_ms) != 0)
                return 2;
            /* a period of 0 is the store's "any age": written out it would mean the opposite */
            if (unique.period_ms <= 0) {
                cli_error("--unique-for '%s' would count no job: give a positive duration such as "
                          "10m, or leave it out to count jobs of any age",
                          optarg);
                return 2;
            }
            want_unique = true;
            break;
        case 'S':
            if (aspen_store_states_parse(optarg, &unique.states, &se) != 0) {
                cli_error("--unique-states: %s", se.msg);
                return 2;
            }
            want_unique = true;
            break;
        case 'j': submit_json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h': submit_usage(stdout); return 0;
        default:
            /* the error line said what is wrong; the 40-line help would bury it */
            cli_usage_line(SUBMIT_USAGE_LINE);
            return 2;
        }
    }
    if (optind < argc)
        spec.guest = argv[optind++];
    if (optind != argc || (!spec.guest && !spec.source_dir && !spec.type)) {
        if (optind != argc)
            cli_error("unexpected argument '%s': give one GUEST (or --source DIR or --type T)",
                      argv[optind]);
        else
            cli_error("say what to run: a GUEST, --source DIR or --type T");
        cli_usage_line(SUBMIT_USAGE_LINE);
        return 2;
    }
    if (spec.guest && spec.source_dir) {
        /* Say what was given and which to drop: either one alone is a valid submit. Each is
         * named three times, so long ones are cut (with "...") to keep the advice in the line. */
        char g[1300], src[1300];
        cli_cell_str(spec.guest, 200, g, sizeof g);
        cli_cell_str(spec.source_dir, 200, src, sizeof src);
        cli_error("got both a guest (%s) and --source %s: give one — drop %s to build %s, or drop "
                  "--source to run %s (--source takes DIR or REPO#REV[:SUBDIR])",
                  g, src, g, src, g);
        return 2;
    }
    spec.tags = tags;
    spec.n_tags = n_tags;
    if (cli_guest_with_in_process_type(&spec, "GUEST") != 0)
        return 2;
    if (jsonl && (payload_arg || count_given)) {
        cli_error("--jsonl gives every job its payload, one per line: leave out %s",
                  payload_arg ? "--payload" : "--count");
        return 2;
    }
    if (batch_given && !jsonl) {
        cli_error("--batch is the number of --jsonl lines per transaction: it needs --jsonl FILE");
        return 2;
    }
    struct stat sst;
    if (spec.source_dir && (stat(spec.source_dir, &sst) == 0 || !strchr(spec.source_dir, '#'))) {
        /* (REPO#REV[:SUBDIR], a git commit, is checked by the engine) */
        char msg[4608];
        if (check_source_dir(spec.source_dir, msg, sizeof msg) != 0) {
            cli_error("%s", msg);
            return 1;
        }
    }
    if (unique.key && unique.fields) {
        cli_error("give the unique key one way: --unique-key K, or --unique-fields F to derive it");
        return 2;
    }
    if (want_unique)
        spec.unique = &unique;
    char *payload = NULL;
    if (payload_arg) {
        char from[4200], msg[4608];
        size_t len = 0;
        if (!(payload = cli_load_payload(payload_arg, &len, from, sizeof from, msg, sizeof msg))) {
            cli_error("%s", msg);
            return 1;
        }
        spec.payload = payload;
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng)) {
        free(payload);
        return 1;
    }
    if (cli_type_runnable(eng, &spec, any_type) != 0 ||
        (!create_queue &&
         cli_queue_known(aspen_engine_db_path(eng), spec.queue, "--queue", "this submit") != 0)) {
        aspen_engine_close(eng);
        free(payload);
        return 1;
    }
    int rc;
    if (jsonl) {
        rc = submit_jsonl(eng, &spec, jsonl, batch);
    } else {
        aspen_engine_job_spec *specs = calloc((size_t)count, sizeof *specs);
        char msg[1024];
        if (!specs) {
            cli_error("out of memory for %lld jobs", count);
            rc = 1;
        } else {
            for (long long i = 0; i < count; i++)
                specs[i] = spec;
            rc = submit_specs(eng, specs, (size_t)count, msg, sizeof msg) ? 1 : 0;
            if (rc)
                cli_error("%s", msg);
            free(specs);
        }
    }
    aspen_engine_close(eng);
    free(payload);
    return rc;
}

/* ---- jobs --------------------------------------------------------------------------------------- */

/* Tags are stored as a JSON array; text that does not parse (not from this engine, or not UTF-8)
 * is repaired to UTF-8 and tried again, and shown as a string if it still is not JSON. */
static json_t *tags_json(const char *tags)
{
    if (!tags)
        return json_array();
    json_error_t je;
    json_t *t = json_loads(tags, 0, &je);
    if (t)
        return t;
    char *fixed = aspen_text_utf8_repair(tags, strlen(tags), NULL);
    t = fixed ? json_loads(fixed, 0, &je) : NULL;
    free(fixed);
    return t ? t : cli_json_str(tags);
}

static json_t *job_json(const aspen_store_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "type", cli_json_str(j->type ? j->type : ""));
    json_object_set_new(o, "state", json_string(aspen_store_state_name(j->state)));
    json_object_set_new(o, "binary", cli_json_str(j->binary_name));
    json_object_set_new(o, "binary_sha256", cli_json_str(j->binary_sha256));
    json_object_set_new(o, "source_dir", cli_json_str(j->source_dir));
    const char *payload = j->payload ? j->payload : "null";
    json_object_set_new(o, "payload", cli_json_parse_or_text(payload, strlen(payload)));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "queue", cli_json_str(j->queue));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
    json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
    json_object_set_new(o, "memory_bytes", json_integer(j->memory_bytes));
    json_object_set_new(o, "isolation", json_boolean(j->isolation));
    json_object_set_new(o, "tags", tags_json(j->tags));
    json_object_set_new(o, "run_at_ms", json_integer(j->run_at_ms));
    json_object_set_new(o, "created_at_ms", json_integer(j->created_at_ms));
    json_object_set_new(o, "started_at_ms", json_integer(j->started_at_ms));
    json_object_set_new(o, "finished_at_ms", json_integer(j->finished_at_ms));
    cli_json_set_bytes(o, "result", j->result, j->result_size);
    cli_json_set_text(o, "error", j->error, j->error ? strlen(j->error) : 0);
    json_object_set_new(o, "rerun_of", j->rerun_of ? json_integer(j->rerun_of) : json_null());
    json_object_set_new(o, "owner", j->owner ? json_integer(j->owner) : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
    json_object_set_new(o, "log_lines", json_integer(j->log_count));
    json_object_set_new(o, "log_dropped", json_integer(j->log_dropped));
    return o;
}

/* --jsonl: a page of 1000 rows at a time (an export of millions never holds them all), each job
 * one compact line as it is read. Closes eng. */
static int jobs_jsonl(aspen_engine *eng, const aspen_store_filter *f0, int64_t max)
{
    enum { PAGE = 1000 };
    aspen_store_filter f = *f0;
    f.offset = 0;
    int64_t done = 0;
    for (;;) {
        f.limit = max >= 0 && max - done < PAGE ? max - done : PAGE;
        if (f.limit == 0)
            break;
        aspen_store_job *jobs = NULL;
        size_t n = 0;
        aspen_engine_error err = {0};
        if (aspen_engine_list(eng, &f, &jobs, &n, &err) != 0) {
            aspen_engine_close(eng);
            cli_error("%s", err.msg);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *o = job_json(&jobs[i]);
            cli_json_print(o, stdout, true);
            json_decref(o);
        }
        aspen_store_jobs_free(jobs, n);
        done += (int64_t)n;
        if ((int64_t)n < f.limit)
            break;
        f.offset += (int64_t)n;
    }
    aspen_engine_close(eng);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("writing the export failed (disk full, or the reader went away)");
        return 1;
    }
    return 0;
}

int cmd_jobs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, 0, 's'}, {"filter", required_argument, 0, 'f'},
        {"limit", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
        {"all", no_argument, 0, 'A'},         {"help", no_argument, 0, 'h'},
        {"jsonl", no_argument, 0, 'L'},       {"sort", required_argument, 0, 'S'},
        CLI_WIDE_OPT,                         DB_OPT,
        {0, 0, 0, 0},
    };
    const char *db = NULL, *state = NULL, *filter = NULL, *sort = NULL;
    long long limit = 50;
    bool as_json = false, as_jsonl = false, limit_given = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "s:f:n:jAhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'f': filter = optarg; break;
        case 'n':
            if (cli_parse_num("--limit", optarg, 1, 100000000, &limit))
                return 2;
            limit_given = true;
            break;
        case 'L': as_jsonl = true; break;
        case 'W': cli_wide = true; break;
        case 'S': sort = optarg; break;
        case 'j': as_json = true; break;
        case 'A': limit = -1; limit_given = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr,
                    "usage: aspen jobs [--state S[,S]] [--filter F] [--sort COL[,desc]]\n"
                    "                  [--limit N | --all] [--wide] [--json] [--jsonl] [--db PATH]\n"
                    "  --filter F the console's filter language: state:failed,running type:T\n"
                    "             guest:NAME queue:NAME tag:T id:N rerun-of:N payload.FIELD:VALUE\n"
                    "             order:newest|oldest|queue; a bare word is a state, a job id\n"
                    "             (42, #42) or a guest name: --filter 'echo-worker failed'\n"
                    "  --sort COL[,desc]  sort every matching job in the store by id, state,\n"
                    "             guest, priority, attempts, created (or age), duration\n"
                    "             (finished - started; -1 while not finished) or queue,\n"
                    "             ascending unless ,desc: --sort duration,desc --limit 5 is\n"
                    "             the 5 slowest\n"
                    "  --limit N  show at most N jobs (default 50; a last line says how many "
                    "match)\n"
                    "  --all      show every matching job\n"
                    "  --wide     every column whole, and each job's QUEUE; without it the\n"
                    "             table fits the terminal's width (80 when output is not a\n"
                    "             terminal, or $COLUMNS)\n"
                    "  --json     the jobs as a JSON array (ids, times in ms, payload as JSON)\n"
                    "  --jsonl    export: every matching job (no 50-row default; --limit N caps\n"
                    "             it), one JSON object a line, the fields of --json\n");
            return c == 'h' ? 0 : 2;
        }
    }
    /* `aspen jobs failed` used to list every job, the word ignored */
    int urc = cli_args(argc, argv, optind, 0, 0, "",
                       "aspen jobs [--state S[,S]] [--filter F] [--limit N | --all] [--json]");
    if (urc)
        return urc;
    char text[2048], buf[4096];
    snprintf(text, sizeof text, "%s%s%s%s", filter ? filter : "", filter && state ? " " : "",
             state ? "state:" : "", state ? state : "");
    aspen_store_filter f;
    aspen_store_error se = {0};
    if (cli_filter_arg(text, &f, buf, sizeof buf))
        return 2;
    f.limit = limit;
    if (sort && aspen_store_sort_parse(sort, &f.sort, &f.sort_desc, &se) != 0) {
        cli_error("--sort: %s", se.msg);
        return 2;
    }
    if (as_json && as_jsonl) {
        cli_error("--json or --jsonl, not both");
        return 2;
    }
    aspen_engine *eng;
    if (cli_open_engine_reading(db, &eng))
        return 1;
    if (as_jsonl)
        return jobs_jsonl(eng, &f, limit_given && limit > 0 ? limit : -1);
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_list(eng, &f, &jobs, &n, &err);
    char dbp[4 * PATH_MAX + 16]; /* for the note on an unknown queue:NAME, after the close */
    snprintf(dbp, sizeof dbp, "%s", aspen_engine_db_path(eng));
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    /* A full page may not be all: count the matches (read-only, the filter without its limit)
     * so the list never stops silently: a last line in the table, a line on stderr with --json
     * (whose stdout stays exactly the jobs asked for). */
    int64_t total = 0;
    if (limit > 0 && n == (size_t)limit) {
        char path[4096];
        aspen_store_options so = {.read_only = true};
        aspen_store *st = NULL;
        if (cli_db_path(db, path, sizeof path) != 0 ||
            cli_store_open(path, &so, &st, &se) != 0 ||
            aspen_store_count(st, &f, &total, &se) != 0)
            total = 0;
        aspen_store_close(st);
    }
    bool cut = total > (int64_t)n;
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, job_json(&jobs[i]));
        cli_json_print(arr, stdout, false);
        json_decref(arr);
        if (cut)
            fprintf(stderr, "%zu of %lld shown (--limit N or --all for more)\n", n,
                    (long long)total);
        if (n == 0)
            cli_filter_queue_note(dbp, &f);
    } else {
        /* by priority: id, state and what it gave are kept at any width; the type and the
         * tries go first (aspen show ID has them all), then the creation time. --wide adds
         * QUEUE (trial 10: not even --wide showed a job's queue, which queue:NAME filters by);
         * at a terminal's width it would only cut the results shorter, so it is --wide's. */
        static const cli_table_col cols[] = {
            {"ID", 0, 0, 0, false},      {"STATE", 0, 0, 0, false},
            {"TYPE", 4, 10, 24, false},  {"GUEST", 2, 12, 32, false},
            {"TRIES", 5, 0, 0, false},   {"CREATED", 3, 0, 0, false},
            {"RESULT / ERROR", 1, 12, 120, false},
        };
        static const cli_table_col wide_cols[] = {
            {"ID", 0, 0, 0, false},      {"STATE", 0, 0, 0, false},
            {"QUEUE", 6, 5, 24, false},  {"TYPE", 4, 10, 24, false},
            {"GUEST", 2, 12, 32, false}, {"TRIES", 5, 0, 0, false},
            {"CREATED", 3, 0, 0, false}, {"RESULT / ERROR", 1, 12, 120, false},
        };
        cli_table *t = cli_wide ? cli_table_new(wide_cols, sizeof wide_cols / sizeof wide_cols[0])
                                : cli_table_new(cols, sizeof cols / sizeof cols[0]);
        for (size_t i = 0; i < n; i++) {
            const aspen_store_job *j = &jobs[i];
            char when[40];
            cli_format_time(j->created_at_ms, when, sizeof when);
            when[19] = '\0';
            cli_table_fmt(t, "%lld", (long long)j->id);
            cli_table_str(t, aspen_store_state_name(j->state));
            if (cli_wide)
                cli_table_str(t, j->queue[0] ? j->queue : "default");
            cli_table_str(t, j->type);
            cli_table_str(t, j->binary_name ? j->binary_name : "-");
            cli_table_fmt(t, "%d/%d", j->attempts, j->max_attempts);
            cli_table_str(t, when);
            if (j->error)
                cli_table_str(t, j->error);
            else
                cli_table_cell(t, j->result ? j->result : "", j->result ? j->result_size : 0);
        }
        int prc = cli_table_print(t, stdout);
        cli_table_free(t);
        if (prc) {
            aspen_store_jobs_free(jobs, n);
            return 1;
        }
        if (n == 0) {
            printf("(no jobs match)\n");
            fflush(stdout); /* before the note on stderr, in a terminal's order */
            cli_filter_queue_note(dbp, &f);
        }
        if (cut)
            printf("%zu of %lld shown (--limit N or --all for more)\n", n, (long long)total);
    }
    aspen_store_jobs_free(jobs, n);
    return 0;
}

/* ---- show --------------------------------------------------------------------------------------- */

/* "  LABEL       VALUE SUFFIX": the value escaped, on one line. */
static void show_field(const char *label, const char *value, const char *suffix)
{
    printf("  %-11s ", label);
    /* an error may hold a compiler's lines: each under the first */
    cli_put_lines(stdout, value ? value : "-", value ? strlen(value) : 1, 0, 14);
    printf("%s\n", suffix);
}

/* The blob of kind an attempt keeps, from the job's list, or NULL. */
static const aspen_store_attempt_data *kept_of(const aspen_store_attempt_data *k, size_t n,
                                               int attempt, aspen_store_data_kind kind)
{
    for (size_t i = 0; i < n; i++)
        if (k[i].attempt == attempt && k[i].kind == kind)
            return &k[i];
    return NULL;
}

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, DB_OPT, {0, 0, 0, 0}};
    const char *db = NULL;
    bool as_json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "jhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr, "usage: aspen show ID [--json] [--db PATH]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    static const char usage[] = "aspen show ID [--json] [--db PATH]";
    int rc;
    if ((rc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", usage)) ||
        (rc = cli_id_arg(argv[optind], &id, usage)))
        return rc;
    aspen_engine *eng;
    if (cli_open_engine_reading(db, &eng))
        return 1;
    aspen_store_job j = {0};
    aspen_store_attempt *att = NULL;
    size_t na = 0;
    aspen_engine_error err = {0};
    aspen_store_attempt_data *kept = NULL; /* the cores and replay records its attempts keep */
    size_t nk = 0;
    char built[65] = ""; /* a --source job's binary, once an attempt built and ran it */
    int built_by = 0;
    rc = aspen_engine_get(eng, id, &j, &err);
    if (rc == 0)
        rc = aspen_engine_attempts(eng, id, &att, &na, &err);
    aspen_engine_error kerr = {0}; /* what attempts kept is extra: the job shows without it */
    if (rc == 0 && aspen_engine_list_attempt_data(eng, id, &kept, &nk, &kerr) != 0)
        kept = NULL, nk = 0;
    /* its uniqueness rule, as retry and rerun apply it (extra too: shown when it reads) */
    aspen_store_job_rule rule = {0};
    aspen_engine_error uerr = {0};
    if (rc == 0 && aspen_engine_unique_rule(eng, id, &rule, &uerr) != 0)
        rule = (aspen_store_job_rule){0};
    for (size_t i = nk; rc == 0 && j.source_dir && !j.binary_sha256 && i-- > 0;) {
        aspen_engine_error e2 = {0}; /* a damaged record: shown as not built, never fatal */
        if (kept[i].kind == ASPEN_STORE_DATA_REPLAY &&
            aspen_engine_attempt_binary(eng, id, kept[i].attempt, built, &e2) == 0) {
            built_by = kept[i].attempt;
            break;
        }
    }
    /* the commands printed below open this database when pasted, not the default one */
    char dba[4 * PATH_MAX + 16];
    cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        aspen_store_attempts_free(att, na);
        free(kept);
        aspen_store_job_rule_clear(&rule);
        aspen_store_job_clear(&j);
        return 1;
    }
    char rule_states[128] = "", rule_for[40] = "";
    if (rule.key) {
        aspen_store_states_format(rule.states, rule_states, sizeof rule_states);
        aspen_store_duration_format(rule.period_ms, rule_for, sizeof rule_for);
    }
    if (as_json) {
        json_t *o = job_json(&j);
        /* {"key":…,"period_ms":0 (any age),"states":[…]}, or null: no rule */
        json_t *u = json_null();
        if (rule.key) {
            u = json_object();
            json_object_set_new(u, "key", cli_json_str(rule.key));
            json_object_set_new(u, "period_ms", json_integer(rule.period_ms));
            json_t *sts = json_array();
            for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
                if (rule.states & (1u << st))
                    json_array_append_new(sts, json_string(aspen_store_state_name(st)));
            json_object_set_new(u, "states", sts);
        }
        json_object_set_new(o, "unique", u);
        if (j.source_dir && !j.binary_sha256)
            json_object_set_new(o, "built_sha256", built[0] ? json_string(built) : json_null());
        json_t *arr = json_array();
        for (size_t i = 0; i < na; i++) {
            json_t *a = json_object();
            json_object_set_new(a, "number", json_integer(att[i].number));
            json_object_set_new(a, "engine", json_integer(att[i].engine_id));
            json_object_set_new(a, "outcome", cli_json_str(att[i].outcome));
            json_object_set_new(a, "started_at_ms", json_integer(att[i].started_at_ms));
            json_object_set_new(a, "finished_at_ms", json_integer(att[i].finished_at_ms));
            json_object_set_new(a, "wall_us", json_integer(att[i].wall_us));
            json_object_set_new(a, "exits", json_integer((json_int_t)att[i].exits));
            json_object_set_new(a, "host_calls", json_integer((json_int_t)att[i].host_calls));
            json_object_set_new(a, "pages_dirtied",
                                json_integer((json_int_t)att[i].pages_dirtied));
            json_object_set_new(a, "error", cli_json_str(att[i].error));
            json_object_set_new(a, "recovered", json_boolean(att[i].recovered));
            const aspen_store_attempt_data *core = kept_of(kept, nk, att[i].number,
                                                           ASPEN_STORE_DATA_CORE);
            bool replay = kept_of(kept, nk, att[i].number, ASPEN_STORE_DATA_REPLAY) != NULL;
            json_object_set_new(a, "core_bytes",
                                core ? json_integer((json_int_t)core->size) : json_null());
            json_object_set_new(a, "replay_record", json_boolean(replay));
            char cmd[sizeof dba + 128];
            snprintf(cmd, sizeof cmd, "aspen core %lld --attempt %d -o FILE%s", (long long)j.id,
                     att[i].number, dba);
            json_object_set_new(a, "core_command", core ? cli_json_str(cmd) : json_null());
            snprintf(cmd, sizeof cmd, "aspen replay %lld --attempt %d%s", (long long)j.id,
                     att[i].number, dba);
            json_object_set_new(a, "replay_command", replay ? cli_json_str(cmd) : json_null());
            json_array_append_new(arr, a);
        }
        json_object_set_new(o, "attempt_list", arr);
        cli_json_print(o, stdout, false);
        json_decref(o);
    } else {
        /* every field from the job is escaped (aspen_text.h): one line each, nothing raw */
        char t1[40], t2[40], t3[40];
        printf("job %lld  %s\n", (long long)j.id, aspen_store_state_name(j.state));
        show_field("type", j.type, aspen_engine_job_needs_vm(&j) ? " (micro-VM)" : "");
        if (j.binary_name || j.binary_sha256) {
            printf("  guest       ");
            cli_puts(stdout, j.binary_name ? j.binary_name : "-");
            if (j.binary_sha256) {
                printf("  sha256 ");
                cli_putn(stdout, j.binary_sha256, strnlen(j.binary_sha256, 16), 0);
                printf("…\n");
            } else if (built[0]) { /* a --source job: what its build made, as its attempt ran it */
                printf("  sha256 %.16s… (built from the source for attempt %d)\n", built, built_by);
            } else {
                printf("  %s\n", j.source_dir ? "not built yet (built when it runs)" : "sha256 -");
            }
        }
        if (j.source_dir) {
            /* "DIR#sha256=HEX": pinned at submit (engine/build.c), shown as the directory and what
             * the build checks */
            size_t sl = strlen(j.source_dir), tl = strlen("#sha256=") + 64;
            if (sl > tl && strncmp(j.source_dir + sl - tl, "#sha256=", 8) == 0) {
                printf("  %-11s ", "source");
                cli_putn(stdout, j.source_dir, sl - tl, 0);
                printf(" (%s, from its files as they were at submit: sha256 %.12s…)\n",
                       built[0] ? "built" : "built when it runs", j.source_dir + sl - 64);
            } else {
                show_field("source", j.source_dir, built[0] ? " (built)" : " (built when it runs)");
            }
        }
        show_field("payload", j.payload, "");
        char mem[32];
        if (j.memory_bytes > 0 && j.memory_bytes % (1 << 20) == 0) /* as --memory 2M said it */
            snprintf(mem, sizeof mem, "%lld MiB", (long long)(j.memory_bytes >> 20));
        else if (j.memory_bytes > 0)
            snprintf(mem, sizeof mem, "%lld KiB", (long long)(j.memory_bytes >> 10));
        else
            snprintf(mem, sizeof mem, "default (1 MiB)");
        char tmo[32];
        cli_format_duration_us(j.timeout_ms * 1000, tmo, sizeof tmo);
        printf("  attempts    %d of %d   priority %d   timeout %s   memory %s\n", j.attempts,
               j.max_attempts, j.priority, tmo, mem);
        show_field("tags", j.tags, j.isolation ? "   isolation on" : "");
        show_field("queue", j.queue, "");
        cli_format_time(j.created_at_ms, t1, sizeof t1);
        cli_format_time(j.started_at_ms, t2, sizeof t2);
        cli_format_time(j.finished_at_ms, t3, sizeof t3);
        printf("  created     %s   started %s   finished %s\n", t1, t2, t3);
        if (j.state == ASPEN_STORE_SCHEDULED) {
            cli_format_time(j.run_at_ms, t1, sizeof t1);
            printf("  next run    %s\n", t1);
        }
        if (j.rerun_of)
            printf("  rerun of    %lld\n", (long long)j.rerun_of);
        if (rule.key) {
            /* the key is the submitter's text: escaped like every field */
            printf("  unique      key ");
            cli_puts(stdout, rule.key);
            printf("   for %s   counts %s\n", rule.period_ms > 0 ? rule_for : "any age",
                   rule_states);
        }
        if (j.cancel_requested)
            printf("  cancel      requested (its worker stops it)\n");
        if (j.result) {
            printf("  result      ");
            cli_putn(stdout, j.result, j.result_size, 0);
            printf("\n");
        }
        if (j.error)
            show_field("error", j.error, "");
        printf("  logs        %d line%s (aspen logs %lld", j.log_count, j.log_count == 1 ? "" : "s",
               (long long)j.id);
        cli_puts(stdout, dba); /* a path is the user's bytes: escaped like every field */
        printf(")");
        if (j.log_dropped > 0) /* counted past the per-job cap, never kept */
            printf(", %lld more not kept (the per-job cap)", (long long)j.log_dropped);
        printf("\n");
        for (size_t i = 0; i < na; i++) {
            char outcome[64], took[32];
            cli_format_duration_us(att[i].wall_us, took, sizeof took);
            printf("  attempt %d   %s %10s  %llu exits  %llu host calls  %llu pages",
                   att[i].number, cli_col_str(att[i].outcome, 9, outcome, sizeof outcome), took,
                   (unsigned long long)att[i].exits,
                   (unsigned long long)att[i].host_calls, (unsigned long long)att[i].pages_dirtied);
            /* the last attempt's error is usually the job's, just printed above: once is enough */
            if (att[i].error && j.error && strcmp(att[i].error, j.error) == 0) {
                printf("  (the error above)");
            } else if (att[i].error) {
                printf("  ");
                cli_put_lines(stdout, att[i].error, strlen(att[i].error), 0, 14);
            }
            printf("%s\n", att[i].recovered ? " (recovered)" : "");
        }
        /* what a failed attempt kept for debugging, and the command that gets each */
        for (size_t i = 0; i < na; i++) {
            const aspen_store_attempt_data *core = kept_of(kept, nk, att[i].number,
                                                           ASPEN_STORE_DATA_CORE);
            bool replay = kept_of(kept, nk, att[i].number, ASPEN_STORE_DATA_REPLAY) != NULL;
            if (!core && !replay)
                continue;
            printf("  kept        attempt %d: ", att[i].number);
            if (core) {
                char sz[32];
                if (core->size < 10240)
                    snprintf(sz, sizeof sz, "%zu bytes", core->size);
                else
                    snprintf(sz, sizeof sz, "%zu KiB", (core->size + 1023) >> 10);
                printf("a core (%s)%s: aspen core %lld --attempt %d -o FILE", sz,
                       replay ? " and a replay record" : "", (long long)j.id, att[i].number);
                cli_puts(stdout, dba);
            } else {
                printf("a replay record:");
            }
            if (replay)
            {
                printf("%s aspen replay %lld --attempt %d", core ? ";" : "", (long long)j.id,
                       att[i].number);
                cli_puts(stdout, dba);
            }
            printf("\n");
        }
    }
    free(kept);
    aspen_store_attempts_free(att, na);
    aspen_store_job_rule_clear(&rule);
    aspen_store_job_clear(&j);
    return 0;
}

/* ---- logs --------------------------------------------------------------------------------------- */

/* One line of the feed: where it ran ("host:pid", or "engine N" once that engine's row is gone),
 * escaped like the line (a host name is another machine's words). */
static void feed_line_print(const aspen_store_feed_line *l, bool as_json)
{
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "job", json_integer(l->job_id));
        json_object_set_new(o, "seq", json_integer(l->seq));
        json_object_set_new(o, "attempt", json_integer(l->attempt));
        json_object_set_new(o, "time_ms", json_integer(l->time_ms));
        json_object_set_new(o, "engine", json_integer(l->engine_id));
        json_object_set_new(o, "host", l->host[0] ? cli_json_str(l->host) : json_null());
        json_object_set_new(o, "pid", l->host[0] ? json_integer(l->pid) : json_null());
        json_object_set_new(o, "line", cli_json_str(l->line ? l->line : ""));
        cli_json_print(o, stdout, true);
        json_decref(o);
        return;
    }
    char t[40];
    cli_format_time(l->time_ms, t, sizeof t);
    printf("%s  job %lld #%d  ", t + 11, (long long)l->job_id, l->attempt);
    if (l->host[0]) {
        cli_puts(stdout, l->host);
        printf(":%lld  ", (long long)l->pid);
    } else {
        printf("engine %lld  ", (long long)l->engine_id);
    }
    cli_putn(stdout, l->line ? l->line : "", l->line ? strlen(l->line) : 0, ASPEN_TEXT_KEEP_TAB);
    printf("\n");
}

/* aspen logs --follow with no job: every job's new lines from every engine on the database (the
 * store's log feed, in commit order), from now on, until interrupted. On PostgreSQL the handle
 * LISTENs for the NOTIFY each transaction with lines sends, so a line shows as its commit lands
 * (and reads once a second besides); on SQLite, where there is no announcement, the feed (an
 * index seek) is read every 200 ms. */
static int follow_all(const char *db, bool as_json)
{
    char path[4096];
    if (cli_db_path(db, path, sizeof path) != 0)
        return 1;
    aspen_store_options so = {.read_only = true};
    aspen_store *st = NULL;
    aspen_store_error se = {0};
    if (cli_create) { /* as everywhere: the database is made first, then read */
        if (cli_store_open(path, NULL, &st, &se) != 0) {
            cli_error("%s", se.msg);
            return 1;
        }
        aspen_store_close(st);
        st = NULL;
    }
    aspen_store_log_cursor at = ASPEN_STORE_LOG_CURSOR_END;
    aspen_store_feed_line *l = NULL;
    size_t n = 0;
    int fd = -1;
    /* LISTEN before the cursor is placed: a commit in between is both announced and read */
    if (cli_store_open(path, &so, &st, &se) != 0 || aspen_store_log_wait_fd(st, &fd, &se) != 0 ||
        aspen_store_log_feed(st, &at, 0, &l, &n, &se) != 0) {
        cli_error("%s", se.msg);
        aspen_store_close(st);
        return 1;
    }
    aspen_store_log_feed_free(l, n);
    int rc = 0;
    bool complained = false;
    for (;;) {
        bool woken = false;
        /* what arrived is consumed before the read: an announcement after it wakes the next */
        if (aspen_store_log_notified(st, &woken, &se) == 0 &&
            aspen_store_log_feed(st, &at, 500, &l, &n, &se) == 0) {
            complained = false;
            for (size_t i = 0; i < n; i++)
                feed_line_print(&l[i], as_json);
            aspen_store_log_feed_free(l, n);
            if (fflush(stdout) != 0 || ferror(stdout)) {
                rc = 1; /* the reader went away (a closed pipe): nothing more to do */
                break;
            }
            if (n == 500)
                continue; /* more behind these */
        } else if (!complained) {
            /* a server restarting or a locked file: said once, then retried each second */
            cli_error("reading the log feed failed (retrying every second; Ctrl-C to stop): %s",
                      se.msg);
            complained = true;
        }
        if (aspen_store_log_wait_fd(st, &fd, &se) != 0)
            fd = -1;
        if (fd >= 0) {
            /* lines read during the query above were queued by libpq, not left on the socket */
            if (aspen_store_log_notified(st, &woken, &se) == 0 && woken)
                continue;
            struct pollfd p = {.fd = fd, .events = POLLIN};
            /* a second at most: lines held back behind an older open transaction come with no
             * announcement of their own */
            poll(&p, 1, 1000);
        } else {
            struct timespec ts = {0, (complained ? 1000 : 200) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    aspen_store_close(st);
    return rc;
}

int cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, 0, 'f'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         DB_OPT,
                                         {0, 0, 0, 0}};
    const char *db = NULL;
    bool follow = false, as_json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "fhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'f': follow = true; break;
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr,
                    "usage: aspen logs ID [--follow] [--json] [--db PATH]\n"
                    "       aspen logs --follow [--json] [--db PATH]\n"
                    "  --follow  wait for more lines until the job is final, then say on stderr\n"
                    "            how it ended; with no ID, every job's new lines from every worker\n"
                    "            on the database, marked with the host:pid that ran it, until\n"
                    "            Ctrl-C\n"
                    "  --json    one JSON object a line (JSON Lines, so --follow streams):\n"
                    "            {\"job\", \"seq\", \"attempt\", \"time_ms\", \"line\"}, and\n"
                    "            with no ID \"engine\", \"host\" and \"pid\" too\n"
                    "exit status: 0, and with --follow ID: 0 the job succeeded, 3 it failed, 4 it\n"
                    "was cancelled; 1 an error (no such job, the database), 2 a usage error\n");
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    static const char usage[] = "aspen logs ID [--follow] [--json] [--db PATH]";
    int rc;
    if (optind == argc && follow)
        return follow_all(db, as_json);
    if ((rc = cli_args(argc, argv, optind, 1, 1,
                       "a job ID (aspen jobs lists them), or --follow for every job's new lines",
                       usage)) ||
        (rc = cli_id_arg(argv[optind], &id, usage)))
        return rc;
    aspen_engine *eng;
    if (cli_open_engine_reading(db, &eng))
        return 1;
    int64_t after = 0;
    uint64_t version = 0;
    int end_state = -1, end_attempts = 0;
    char *end_error = NULL;
    for (;;) {
        aspen_store_job j = {0};
        aspen_engine_error err = {0};
        if ((rc = aspen_engine_get(eng, id, &j, &err)) != 0) {
            cli_error("%s", err.msg);
            break;
        }
        bool final = aspen_store_state_is_final(j.state);
        if (final && follow) {
            end_state = j.state;
            end_attempts = j.attempts;
            free(end_error);
            end_error = j.error ? strdup(j.error) : NULL;
        }
        aspen_store_job_clear(&j);
        aspen_store_log *l = NULL;
        size_t n = 0;
        if ((rc = aspen_engine_logs(eng, id, after, 0, &l, &n, &err)) != 0) {
            cli_error("%s", err.msg);
            break;
        }
        for (size_t i = 0; i < n && as_json; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "job", json_integer(id));
            json_object_set_new(o, "seq", json_integer(l[i].seq));
            json_object_set_new(o, "attempt", json_integer(l[i].attempt));
            json_object_set_new(o, "time_ms", json_integer(l[i].time_ms));
            /* exact: a line that is not UTF-8 also comes as line_base64 (as result_base64) */
            cli_json_set_text(o, "line", l[i].line ? l[i].line : "",
                              l[i].line ? strlen(l[i].line) : 0);
            cli_json_print(o, stdout, true);
            json_decref(o);
            after = l[i].seq;
        }
        for (size_t i = 0; i < n && !as_json; i++) {
            char t[40];
            cli_format_time(l[i].time_ms, t, sizeof t);
            int w = printf("%s  #%d  ", t + 11, l[i].attempt);
            /* the last field of the line: a tab may stay, nothing else raw; a line holding
             * newlines (a compiler's output) continues under its text */
            cli_put_lines(stdout, l[i].line ? l[i].line : "", l[i].line ? strlen(l[i].line) : 0,
                          ASPEN_TEXT_KEEP_TAB, w > 0 ? w : 0);
            printf("\n");
            after = l[i].seq;
        }
        aspen_store_logs_free(l, n);
        fflush(stdout);
        if (!follow || final)
            break;
        /* wait until another process commits something */
        for (;;) {
            uint64_t v = 0;
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            if (aspen_engine_data_version(eng, &v, &err) != 0 || v != version) {
                version = v;
                break;
            }
        }
    }
    aspen_engine_close(eng);
    if (rc) {
        free(end_error);
        return 1;
    }
    if (end_state < 0)
        return 0;
    /* --follow waited for the end: say how it ended (after the lines, on stderr, so a pipe of
     * the lines stays only lines) and exit as a script waiting on it needs: 0 succeeded, 3
     * failed, 4 cancelled (1 is an error of aspen's, 2 a usage error) */
    fprintf(stderr, "aspen: job %lld %s after %d attempt%s", (long long)id,
            aspen_store_state_name((aspen_store_state)end_state), end_attempts,
            end_attempts == 1 ? "" : "s");
    if (end_error && end_state != ASPEN_STORE_SUCCEEDED) {
        fputs(": ", stderr);
        cli_put_lines(stderr, end_error, strlen(end_error), 0, 2);
    }
    if (end_state == ASPEN_STORE_FAILED)
        fprintf(stderr, " (aspen show %lld has every attempt; aspen retry %lld queues it again)",
                (long long)id, (long long)id);
    fputc('\n', stderr);
    free(end_error);
    return end_state == ASPEN_STORE_SUCCEEDED ? 0 : end_state == ASPEN_STORE_FAILED ? 3 : 4;
}

/* ---- cancel / rerun / pause / resume ------------------------------------------------------------ */

/* Parses "CMD ID [--db PATH]"; returns 0, or the exit status. */
static int id_command(int argc, char **argv, const char *usage, int64_t *id, const char **db)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, DB_OPT, {0, 0, 0, 0}};
    int c;
    optind = 1;
    *db = NULL;
    while ((c = cli_getopt(argc, argv, "hD:", opts, argv[0])) != -1) {
        if (c == 'D' || c == 'C') {
            if (c == 'D')
                *db = optarg;
            else
                cli_create = true;
            continue;
        }
        cli_help(c == 'h' ? stdout : stderr, "usage: %s\n", usage);
        return c == 'h' ? -1 : 2;
    }
    if (!id)
        return cli_args(argc, argv, optind, 0, 0, "", usage);
    int rc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", usage);
    return rc ? rc : cli_id_arg(argv[optind], id, usage);
}

/* How many of the matching jobs' ids the question and --dry-run name (the rest are counted). */
#define CANCEL_SHOWN_IDS 5
_Static_assert(CANCEL_SHOWN_IDS <= ASPEN_ENGINE_UNFINISHED_IDS, "the engine lists that many ids");

/* What aspen cancel --filter is about to do: the unfinished matches per state and the oldest few
 * ids, as the engine counts them for the console's X too (aspen_engine_count_unfinished: reads
 * only, so a --dry-run writes nothing). 0, or 1 printed. */
typedef aspen_engine_unfinished cancel_plan;

static int cancel_plan_read(aspen_engine *eng, const aspen_store_filter *f, cancel_plan *p)
{
    aspen_engine_error err = {0};
    if (aspen_engine_count_unfinished(eng, f, CANCEL_SHOWN_IDS, p, &err) != 0) {
        cli_error("%s (nothing cancelled)", err.msg);
        return 1;
    }
    return 0;
}

/* "3 unfinished jobs matching 'queue:slow' (2 queued, 1 running), ids 4, 5, 9": what the
 * question and --dry-run say; the ids are the oldest few, "and N more" after them. */
static void cancel_plan_text(const cancel_plan *p, const char *filter, char *out, size_t cap)
{
    char count[32];
    cli_format_count(p->total, count, sizeof count);
    size_t used = (size_t)snprintf(out, cap, "%s unfinished job%s matching '%.400s' (", count,
                                   p->total == 1 ? "" : "s", filter);
    int k = 0;
    for (int s = 0; s < ASPEN_STORE_STATE_COUNT && used < cap; s++)
        if (p->n[s]) {
            cli_format_count(p->n[s], count, sizeof count);
            used += (size_t)snprintf(out + used, cap - used, "%s%s %s", k++ ? ", " : "", count,
                                     aspen_store_state_name((aspen_store_state)s));
        }
    for (size_t i = 0; i < p->n_ids && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%lld",
                                 i ? ", " : p->n_ids == 1 ? "), id " : "), ids ",
                                 (long long)p->ids[i]);
    if (!p->n_ids && used < cap)
        used += (size_t)snprintf(out + used, cap - used, ")");
    if (p->total > (int64_t)p->n_ids && used < cap)
        snprintf(out + used, cap - used, " and %lld more", (long long)(p->total - (int64_t)p->n_ids));
}

/* aspen cancel --filter F: every unfinished job the filter matches, in one transaction — asked
 * first, as delete --filter and purge are, since a cancelled job cannot be retried (trial 10: it
 * cancelled at once). 0 done, 1 refused or failed, 2 usage, 3 nothing matched. */
static int cancel_filter(const char *filter, const char *db, bool yes, bool dry_run)
{
    aspen_store_filter f;
    char buf[2048];
    if (!*filter) {
        cli_error("--filter is empty: give the jobs to cancel (e.g. --filter 'queue:slow', "
                  "'state:scheduled tag:nightly'); every unfinished job would be --filter "
                  "'state:queued,scheduled,running'");
        return 2;
    }
    if (cli_filter_arg(filter, &f, buf, sizeof buf))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    cancel_plan plan = {0};
    if (cancel_plan_read(eng, &f, &plan)) {
        aspen_engine_close(eng);
        return 1;
    }
    if (!plan.total) {
        /* nothing to do (exit 3, as cancel of a finished job): a script can tell it from a
         * cancel that happened (0) and from a failure (1) */
        printf("no unfinished job matches %s: nothing cancelled\n", filter);
        fflush(stdout);
        cli_filter_queue_note(aspen_engine_db_path(eng), &f);
        aspen_engine_close(eng);
        return 3;
    }
    char what[900];
    cancel_plan_text(&plan, filter, what, sizeof what);
    if (dry_run) {
        aspen_engine_close(eng);
        printf("would cancel %s; nothing cancelled (without --dry-run it asks first)\n", what);
        return 0;
    }
    if (!yes) {
        /* a cancelled job cannot be retried: the question says so; it is answered as delete's
         * and purge's are (cli_confirm: a line of stdin, a pipe too; none is no) */
        char q[1000];
        snprintf(q, sizeof q, "Cancel %s? Cancelled jobs cannot be retried.", what);
        bool ok = cli_confirm(q, "cancel them");
        if (!ok) {
            aspen_engine_close(eng);
            fprintf(stderr, "nothing cancelled\n");
            return 1;
        }
    }
    aspen_engine_error err = {0};
    int64_t cancelled = 0, requested = 0;
    int rc = aspen_engine_cancel_matching(eng, &f, &cancelled, &requested, &err);
    if (rc) {
        aspen_engine_close(eng);
        cli_error("%s (nothing cancelled)", err.msg);
        return 1;
    }
    aspen_engine_close(eng);
    if (!cancelled && !requested) { /* they finished meanwhile (the count was a moment before) */
        printf("no unfinished job matches %s any more: nothing cancelled\n", filter);
        return 3;
    }
    /* in the question's number format, and the difference accounted for: "cancelled 19999"
     * after asking about 20,000 left the user wondering (trial 23) */
    char nc[32], nr[32], gone[160] = "";
    cli_format_count(cancelled, nc, sizeof nc);
    cli_format_count(requested, nr, sizeof nr);
    int64_t missing = plan.total - cancelled - requested;
    if (missing > 0) {
        char nm[32];
        cli_format_count(missing, nm, sizeof nm);
        snprintf(gone, sizeof gone, "; %s finished before %s could be cancelled", nm,
                 missing == 1 ? "it" : "they");
    }
    if (!requested)
        printf("cancelled %s job%s%s\n", nc, cancelled == 1 ? "" : "s", gone);
    else
        printf("cancelled %s job%s; %s running: cancel requested (their workers stop them)%s\n",
               nc, cancelled == 1 ? "" : "s", nr, gone);
    return 0;
}

static void cancel_usage(FILE *f)
{
    cli_help(f,
            "usage: aspen cancel ID [--db PATH]\n"
            "       aspen cancel --filter F [--yes | --dry-run] [--db PATH]\n"
            "  ID          this job: a queued or scheduled one is cancelled, a running one\n"
            "              asked to stop (nothing is asked first)\n"
            "  --filter F  every unfinished job F matches (the filter language of aspen\n"
            "              jobs), in one transaction; it says how many and which, and asks\n"
            "  --yes       do not ask (a script may instead answer: echo y |)\n"
            "  --dry-run   say what would be cancelled, and cancel nothing\n"
            "A cancelled job is not retried (aspen rerun ID runs it again as a new job).\n"
            "exit status: 0 done, 1 refused or failed, 2 usage, 3 nothing to do (the job\n"
            "had finished, or no unfinished job matched)\n");
}

int cmd_cancel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filter", required_argument, 0, 'f'}, {"yes", no_argument, 0, 'y'},
        {"dry-run", no_argument, 0, 'n'},      {"help", no_argument, 0, 'h'},
        DB_OPT,                                {0, 0, 0, 0},
    };
    const char *filter = NULL, *db = NULL;
    bool yes = false, dry_run = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "f:ynhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'f': filter = optarg; break;
        case 'y': yes = true; break;
        case 'n': dry_run = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h': cancel_usage(stdout); return 0;
        default: /* the error said what; the two forms, as before --yes and --dry-run came */
            fputs("usage: aspen cancel ID [--db PATH]\n"
                  "       aspen cancel --filter F [--yes | --dry-run] [--db PATH]\n",
                  stderr);
            return 2;
        }
    }
    if (filter && optind < argc) {
        cli_error("aspen cancel takes a job ID or --filter F, not both (unexpected argument '%s' "
                  "beside --filter)",
                  argv[optind]);
        cli_usage_line("aspen cancel ID | aspen cancel --filter F [--yes | --dry-run] [--db PATH]");
        return 2;
    }
    if (yes && dry_run) {
        cli_error("--yes and --dry-run say opposite things: --dry-run cancels nothing, --yes "
                  "cancels without asking; give one");
        return 2;
    }
    if (filter)
        return cancel_filter(filter, db, yes, dry_run);
    if (optind == argc) {
        /* nothing to cancel named: both forms, since the bulk one is what a user after "all of
         * them" looks for (the ID form's usage line alone hid it) */
        cli_error("aspen cancel needs a job ID or --filter F (aspen jobs lists the jobs)");
        fputs("usage: aspen cancel ID [--db PATH]\n"
              "       aspen cancel --filter F [--yes | --dry-run] [--db PATH]   every unfinished "
              "job F matches (the filter syntax of aspen jobs)\n",
              stderr);
        return 2;
    }
    if (yes || dry_run) {
        /* an explicit id is its own answer: nothing is asked, so nothing to skip or preview */
        cli_error("%s goes with --filter F: aspen cancel ID cancels that job without asking "
                  "(aspen show ID says what it is)",
                  yes ? "--yes" : "--dry-run");
        return 2;
    }
    int64_t id;
    static const char id_usage[] = "aspen cancel ID [--db PATH]\n       aspen cancel --filter F "
                                   "[--yes | --dry-run] [--db PATH]";
    int rc;
    if ((rc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", id_usage)) ||
        (rc = cli_id_arg(argv[optind], &id, id_usage)))
        return rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    bool requested = false;
    aspen_engine_error err = {0};
    rc = aspen_engine_cancel(eng, id, &requested, &err);
    aspen_store_job j = {0};
    aspen_engine_error gerr = {0};
    /* a job that is already final: not an error of the user's, nothing to undo — say which state
     * and that nothing changed, with its own exit status so a script can tell it from a failure */
    bool final = rc == ASPEN_ENGINE_ESTATE && aspen_engine_get(eng, id, &j, &gerr) == 0 &&
                 aspen_store_state_is_final(j.state);
    aspen_engine_close(eng);
    if (final) {
        char when[64];
        cli_format_time(j.finished_at_ms, when, sizeof when);
        const char *st = aspen_store_state_name(j.state);
        /* "is already succeeded" read as if the cancel had done something to it (trial 10):
         * say that the job had finished, how and when, and that this changed nothing */
        fprintf(stderr,
                "aspen: job %lld already finished (%s%s%s): nothing was changed (a finished job "
                "stays as it is; aspen rerun %lld runs it again as a new job)\n",
                (long long)id, st, j.finished_at_ms > 0 ? " at " : "",
                j.finished_at_ms > 0 ? when : "", (long long)id);
        aspen_store_job_clear(&j);
        return 3;
    }
    aspen_store_job_clear(&j);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    if (requested)
        printf("job %lld is running: cancel requested; its worker stops it at once (a VM) or within ~50 ms from another process\n",
               (long long)id);
    else
        printf("job %lld cancelled\n", (long long)id);
    return 0;
}

/* aspen rerun ID [--no-unique] [--json]: a new job of ID's spec. It keeps ID's uniqueness rule, so
 * while a job of the key is in a state the rule counts the answer is that job, as a duplicate
 * submit's is (its id on stdout, exit 0, the note on stderr); --no-unique makes a new job without
 * the rule (submit's side of it: a submit without --unique). */
int cmd_rerun(int argc, char **argv)
{
    static const struct option opts[] = {{"no-unique", no_argument, 0, 'n'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         DB_OPT,
                                         {0, 0, 0, 0}};
    static const char usage[] = "aspen rerun ID [--no-unique] [--json] [--db PATH]";
    const char *db = NULL;
    bool no_unique = false, as_json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "njhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'n': no_unique = true; break;
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr,
                     "usage: %s\n"
                     "  a new queued job with ID's spec (its max attempts as submitted) and its\n"
                     "  uniqueness rule: while a job of its unique key is in a state the rule\n"
                     "  counts, that job's id is printed instead (a duplicate, as aspen submit)\n"
                     "  --no-unique  the new job has no uniqueness rule: made whatever holds the key\n"
                     "  --json       {\"id\":N,\"duplicate\":false,\"state\":\"queued\",...}\n",
                     usage);
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id = 0;
    int rc = cli_args(argc, argv, optind, 1, 1, "a job ID (aspen jobs lists them)", usage);
    if (rc || (rc = cli_id_arg(argv[optind], &id, usage)))
        return rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    aspen_store_submitted done = {0};
    rc = aspen_engine_rerun_ex(eng, id, no_unique ? ASPEN_STORE_RERUN_NO_UNIQUE : 0, &done, &err);
    char key[ASPEN_STORE_UNIQUE_KEY_MAX + 1] = "", note[4 * PATH_MAX + 2048] = "";
    if (!rc && done.duplicate) {
        char *stored = NULL; /* the key as stored with the job it matched */
        aspen_engine_unique_key(eng, done.id, &stored, NULL);
        snprintf(key, sizeof key, "%s", stored ? stored : "?");
        free(stored);
        /* submit's one wording of a duplicate, with what a rerun did instead of a submit */
        char dup[1100];
        aspen_store_duplicate_message(key, &done, aspen_store_now_ms(), dup, sizeof dup);
        char *tail = strstr(dup, "; not submitting another");
        if (tail)
            *tail = '\0';
        char dba[4 * PATH_MAX + 16];
        cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
        snprintf(note, sizeof note,
                 "duplicate: %s; not rerunning job %lld (aspen rerun %lld --no-unique%s makes a "
                 "new job anyway)",
                 dup, (long long)id, (long long)id, dba);
    }
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s%s", err.msg,
                  rc == ASPEN_ENGINE_ENOTFOUND ? ": check the id (aspen jobs lists them)" : "");
        return 1;
    }
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(done.id));
        json_object_set_new(o, "duplicate", json_boolean(done.duplicate));
        json_object_set_new(o, "state", json_string(aspen_store_state_name(done.state)));
        json_object_set_new(o, "rerun_of", json_integer(id));
        if (done.duplicate) {
            json_object_set_new(o, "unique_key", cli_json_str(key));
            json_object_set_new(o, "created_at_ms", json_integer(done.created_at_ms));
            json_object_set_new(o, "message", cli_json_str(note));
        }
        cli_json_print(o, stdout, true);
        json_decref(o);
        return 0;
    }
    if (done.duplicate) {
        fprintf(stderr, "aspen: ");
        cli_puts(stderr, note);
        fprintf(stderr, "\n");
    }
    printf("%lld\n", (long long)done.id);
    return 0;
}

/* aspen retry ID: a failed job back to the queue (one more attempt if it was out of them);
 * aspen retry --failed [--filter F]: every failed job matching F, in one transaction. */
int cmd_retry(int argc, char **argv)
{
    static const struct option opts[] = {{"failed", no_argument, 0, 'a'},
                                         {"filter", required_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         DB_OPT,
                                         {0, 0, 0, 0}};
    const char *db = NULL, *filter = NULL;
    bool all = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "af:hD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'a': all = true; break;
        case 'f': filter = optarg; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default:
            cli_help(c == 'h' ? stdout : stderr,
                    "usage: aspen retry ID [--db PATH]\n"
                    "       aspen retry --failed [--filter 'type:T payload.user:alice ...'] "
                    "[--db PATH]\n"
                    "  a failed job back to the queue, one more attempt allowed; not one whose\n"
                    "  unique key another job holds in a state its rule counts (--failed retries\n"
                    "  the others and names those it left, with the job holding each key)\n");
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id = 0;
    static const char usage[] = "aspen retry ID | aspen retry --failed [--filter F] [--db PATH]";
    if (filter && !all) {
        cli_error("--filter goes with --failed: aspen retry --failed --filter F");
        cli_usage_line(usage);
        return 2;
    }
    if (filter && !*filter) {
        /* an unset shell variable ("--filter $F") read as no filter retried every failed job
         * without a word (trial 22); cancel --filter refuses an empty one too */
        cli_error("--filter is empty: give the failed jobs to retry (e.g. --filter 'queue:emails',"
                  " 'type:T'), or leave --filter out to retry every failed job");
        return 2;
    }
    int urc = all ? cli_args(argc, argv, optind, 0, 0, "", usage)
                  : cli_args(argc, argv, optind, 1, 1, "a job ID, or --failed", usage);
    if (urc || (!all && (urc = cli_id_arg(argv[optind], &id, usage))))
        return urc;
    aspen_store_filter f;
    char buf[2048];
    if (all && cli_filter_arg(filter ? filter : "", &f, buf, sizeof buf))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    int64_t retried = 0;
    aspen_store_retry_skip *skips = NULL; /* --failed: jobs another job's unique key kept failed */
    size_t n_skips = 0;
    int rc = all ? aspen_engine_retry_failed_ex(eng, &f, &retried, &skips, &n_skips, &err)
                 : aspen_engine_retry(eng, (int64_t)id, &err);
    char dba[4 * PATH_MAX + 16];
    cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    char dbp[4096]; /* for the filter's queue note, after the engine is closed */
    snprintf(dbp, sizeof dbp, "%s", aspen_engine_db_path(eng));
    aspen_store_job j = {0};
    aspen_engine_error gerr = {0};
    /* retry is for failed jobs: one that succeeded or was cancelled is run again by rerun, which
     * the store's "cannot become queued" did not say */
    bool got = rc == ASPEN_ENGINE_ESTATE && !all && aspen_engine_get(eng, id, &j, &gerr) == 0;
    if (got && (j.state == ASPEN_STORE_SUCCEEDED || j.state == ASPEN_STORE_CANCELLED)) {
        cli_error("job %lld %s: aspen retry gives a failed job another attempt; to run this one "
                  "again, aspen rerun %lld makes a new job of it",
                  (long long)id, j.state == ASPEN_STORE_SUCCEEDED ? "succeeded" : "was cancelled",
                  (long long)id);
        aspen_store_job_clear(&j);
        aspen_engine_close(eng);
        return 1;
    }
    /* A scheduled job has not failed: it waits for its --delay or a retry's backoff. retry used
     * to queue it at once, saying only "queued again"; now nothing changes and this says when it
     * runs (local time, as aspen show) and how to run it now. */
    if (got && j.state == ASPEN_STORE_SCHEDULED) {
        char at[48], in[48];
        cli_format_time(j.run_at_ms, at, sizeof at);
        int64_t left = j.run_at_ms - aspen_store_now_ms();
        cli_format_duration_us((left > 0 ? left : 0) * 1000, in, sizeof in);
        cli_error("job %lld is scheduled, not failed: it runs at %s (in %s; %s); nothing changed. "
                  "To run it now: aspen run-now %lld (aspen cancel %lld cancels it)",
                  (long long)id, at, in,
                  j.attempts > 0 ? "the backoff after a failed attempt, with attempts left"
                                 : "it was submitted with a delay",
                  (long long)id, (long long)id);
        aspen_store_job_clear(&j);
        aspen_engine_close(eng);
        return 1;
    }
    aspen_store_job_clear(&j);
    /* What it did: a retried job is due now (a --delay it had was for its first run), with how
     * many attempts it has had and may have. */
    if (!rc && !all && aspen_engine_get(eng, id, &j, &gerr) == 0) {
        printf("job %lld queued again: it runs now, as soon as a worker is free (attempt %d of %d)\n",
               (long long)id, j.attempts + 1, j.max_attempts);
        aspen_store_job_clear(&j);
        aspen_engine_close(eng);
        return 0;
    }
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    if (!all) {
        printf("job %lld queued again\n", (long long)id);
        return 0;
    }
    if (retried == 0 && n_skips == 0) {
        /* "0 failed jobs queued again", exit 0, read as if something had happened (trial 10):
         * nothing to do is exit 3, as cancel's, and says so */
        printf("no failed job%s%s%s: nothing to retry\n", filter ? " matches '" : "",
               filter ? filter : "", filter ? "'" : "");
        /* a queue:NAME typo gets the "did you mean" that jobs, cancel and delete give (trial 23:
         * retry alone said nothing) */
        fflush(stdout);
        cli_filter_queue_note(dbp, &f);
        return 3;
    }
    if (retried)
        printf("%lld failed job%s queued again\n", (long long)retried, retried == 1 ? "" : "s");
    if (n_skips) {
        /* the rest were retried as asked; these stay failed, each with who holds its key */
        fflush(stdout);
        fprintf(stderr, "aspen: %zu failed job%s not retried: another job holds %s unique key\n",
                n_skips, n_skips == 1 ? "" : "s", n_skips == 1 ? "its" : "their");
        enum { SHOWN = 20 };
        for (size_t i = 0; i < n_skips && i < SHOWN; i++) {
            char msg[sizeof dba + 1024];
            aspen_store_retry_skip_message(&skips[i], dba, msg, sizeof msg);
            fprintf(stderr, "  ");
            cli_puts(stderr, msg);
            fprintf(stderr, "\n");
        }
        if (n_skips > SHOWN)
            fprintf(stderr, "  … and %zu more (aspen jobs --filter failed lists them)\n",
                    n_skips - SHOWN);
    }
    free(skips);
    return retried ? 0 : 3; /* every match left failed: nothing changed, as above */
}

static int set_paused(int argc, char **argv, bool paused)
{
    const char *db;
    int rc = id_command(argc, argv, paused ? "aspen pause [--db PATH]" : "aspen resume [--db PATH]",
                        NULL, &db);
    if (rc)
        return rc < 0 ? 0 : rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    /* a second pause (or a resume of a running database) changes nothing: said so, as cron
     * pause and queue pause say it (trial 22); unknown, it is said as a change */
    bool was = !paused;
    if (aspen_engine_paused(eng, &was, &err) != 0)
        was = !paused;
    rc = aspen_engine_set_paused(eng, paused, &err);
    /* the commands printed open this database when pasted (aspen queues' hints carry --db) */
    char dba[4 * PATH_MAX + 16];
    cli_db_arg(aspen_engine_db_path(eng), dba, sizeof dba);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    /* one switch for every queue: say so ("queue paused" read as one queue's, trial 10), and
     * that a queue paused on its own (aspen queue pause) is not resumed by it */
    if (was == paused)
        printf("all queues were already %s: nothing changed (aspen %s%s %s)\n",
               paused ? "paused" : "running", paused ? "resume" : "pause", dba,
               paused ? "starts them again" : "stops them");
    else if (paused)
        printf("all queues paused: no worker on this database starts a job (aspen resume%s "
               "starts them again)\n", dba);
    else
        printf("all queues resumed: every worker on this database starts jobs again (a queue "
               "paused on its own stays paused: aspen queue resume NAME%s)\n", dba);
    return 0;
}

int cmd_pause(int argc, char **argv) { return set_paused(argc, argv, true); }
int cmd_resume(int argc, char **argv) { return set_paused(argc, argv, false); }
