/* cli/cmd_jobs.c — the job subcommands on the store, through a client engine (no workers):
 *   aspen submit GUEST --payload JSON [...]   prints the new job's id
 *   aspen jobs [--state S] [--filter F] [--limit N] [--json]
 *   aspen retry ID | --failed [--filter F]
 *   aspen show ID [--json]        the job, its attempts, its result and error
 *   aspen logs ID [--follow]      log lines; --follow waits for more until the job is final
 *   aspen cancel ID | rerun ID | pause | resume
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage.
 */
#include "aspen_vm.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_OPT {"db", required_argument, 0, 'D'}

/* ---- submit ------------------------------------------------------------------------------------- */

static void submit_usage(FILE *f)
{
    fprintf(f,
            "usage: aspen submit [GUEST] [--payload JSON] [--timeout MS] [--priority N]\n"
            "                    [--max-attempts N] [--memory SIZE] [--isolation] [--tag T]...\n"
            "                    [--type T] [--source DIR] [--delay MS] [--db PATH]\n"
            "  GUEST           a path, or a name in target/guest-binaries/ (runs in a micro-VM)\n"
            "  --source DIR    build the guest from this source directory instead (cached)\n"
            "  --type T        job type (default vm_execute with a guest; echo, checksum, sleep\n"
            "                  run in-process in the worker)\n"
            "  --payload JSON  the job's input, checked as JSON now (default {})\n"
            "  --timeout MS    per attempt (default 30000)   --max-attempts N (default 3)\n"
            "  --priority N    higher runs first (default 0) --memory SIZE guest memory (1M)\n"
            "  --isolation     run in a micro-VM whatever the type  --tag T (repeatable)\n"
            "  --delay MS      schedule it MS from now\n");
}

static int parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "error: %s wants a number between %lld and %lld, not '%s'\n", opt, lo, hi,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, 0, 'p'}, {"timeout", required_argument, 0, 't'},
        {"priority", required_argument, 0, 'P'}, {"max-attempts", required_argument, 0, 'a'},
        {"memory", required_argument, 0, 'm'},  {"isolation", no_argument, 0, 'i'},
        {"tag", required_argument, 0, 'g'},     {"type", required_argument, 0, 'T'},
        {"source", required_argument, 0, 's'},  {"delay", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},          DB_OPT,
        {0, 0, 0, 0},
    };
    aspen_engine_job_spec spec = {0};
    const char *db = NULL;
    const char *tags[64];
    size_t n_tags = 0;
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:t:P:a:m:ig:T:s:d:hD:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': spec.payload = optarg; break;
        case 't':
            if (parse_num("--timeout", optarg, 1, 86400000, &v))
                return 2;
            spec.timeout_ms = v;
            break;
        case 'P':
            if (parse_num("--priority", optarg, -1000000, 1000000, &v))
                return 2;
            spec.priority = (int)v;
            break;
        case 'a':
            if (parse_num("--max-attempts", optarg, 1, 1000, &v))
                return 2;
            spec.max_attempts = (int)v;
            break;
        case 'm': {
            size_t sz;
            if (aspen_vm_parse_size(optarg, &sz) != 0) {
                fprintf(stderr, "error: --memory wants a size like 1M or 512K, not '%s'\n", optarg);
                return 2;
            }
            spec.memory_bytes = (int64_t)sz;
            break;
        }
        case 'i': spec.isolation = true; break;
        case 'g':
            if (n_tags == 64) {
                fprintf(stderr, "error: at most 64 tags\n");
                return 2;
            }
            tags[n_tags++] = optarg;
            break;
        case 'T': spec.type = optarg; break;
        case 's': spec.source_dir = optarg; break;
        case 'd':
            if (parse_num("--delay", optarg, 0, 365LL * 86400000, &v))
                return 2;
            spec.run_at_ms = aspen_store_now_ms() + v;
            break;
        case 'D': db = optarg; break;
        case 'h': submit_usage(stdout); return 0;
        default: submit_usage(stderr); return 2;
        }
    }
    if (optind < argc)
        spec.guest = argv[optind++];
    if (optind != argc || (!spec.guest && !spec.source_dir && !spec.type)) {
        submit_usage(stderr);
        return 2;
    }
    spec.tags = tags;
    spec.n_tags = n_tags;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    int64_t id = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_submit(eng, &spec, &id, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    printf("%lld\n", (long long)id);
    return 0;
}

/* ---- jobs --------------------------------------------------------------------------------------- */

static json_t *job_json(const aspen_store_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "type", json_string(j->type ? j->type : ""));
    json_object_set_new(o, "state", json_string(aspen_store_state_name(j->state)));
    json_object_set_new(o, "binary", j->binary_name ? json_string(j->binary_name) : json_null());
    json_object_set_new(o, "binary_sha256",
                        j->binary_sha256 ? json_string(j->binary_sha256) : json_null());
    json_object_set_new(o, "source_dir", j->source_dir ? json_string(j->source_dir) : json_null());
    json_error_t je;
    json_t *p = json_loads(j->payload ? j->payload : "null", JSON_DECODE_ANY, &je);
    json_object_set_new(o, "payload", p ? p : json_string(j->payload ? j->payload : ""));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
    json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
    json_object_set_new(o, "memory_bytes", json_integer(j->memory_bytes));
    json_object_set_new(o, "isolation", json_boolean(j->isolation));
    json_t *t = json_loads(j->tags ? j->tags : "[]", 0, &je);
    json_object_set_new(o, "tags", t ? t : json_array());
    json_object_set_new(o, "run_at_ms", json_integer(j->run_at_ms));
    json_object_set_new(o, "created_at_ms", json_integer(j->created_at_ms));
    json_object_set_new(o, "started_at_ms", json_integer(j->started_at_ms));
    json_object_set_new(o, "finished_at_ms", json_integer(j->finished_at_ms));
    if (j->result) {
        json_t *r = json_loadb(j->result, j->result_size, JSON_DECODE_ANY, &je);
        json_object_set_new(o, "result", r ? r : json_stringn(j->result, j->result_size));
    } else {
        json_object_set_new(o, "result", json_null());
    }
    json_object_set_new(o, "error", j->error ? json_string(j->error) : json_null());
    json_object_set_new(o, "rerun_of", j->rerun_of ? json_integer(j->rerun_of) : json_null());
    json_object_set_new(o, "owner", j->owner ? json_integer(j->owner) : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
    json_object_set_new(o, "log_lines", json_integer(j->log_count));
    return o;
}

static void one_line(const char *s, size_t max, char *out, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap && n < max; s++)
        out[n++] = (*s == '\n' || *s == '\t' || *s == '\r') ? ' ' : *s;
    if (s && *s && n >= 3 && n >= max)
        memcpy(out + n - 3, "...", 3);
    out[n] = '\0';
}

int cmd_jobs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, 0, 's'}, {"filter", required_argument, 0, 'f'},
        {"limit", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        DB_OPT,
        {0, 0, 0, 0},
    };
    const char *db = NULL, *state = NULL, *filter = NULL;
    long long limit = 50;
    bool as_json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:f:n:jhD:", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'f': filter = optarg; break;
        case 'n':
            if (parse_num("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: aspen jobs [--state S[,S]] [--filter 'payload.user:alice type:T "
                    "tag:T binary:NAME ...'] [--limit N] [--json] [--db PATH]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    char text[2048], buf[4096];
    snprintf(text, sizeof text, "%s%s%s%s", filter ? filter : "", filter && state ? " " : "",
             state ? "state:" : "", state ? state : "");
    aspen_store_filter f;
    aspen_store_error se = {0};
    if (aspen_store_filter_parse(text, &f, buf, sizeof buf, &se) != 0) {
        fprintf(stderr, "error: %s\n", se.msg);
        return 2;
    }
    f.limit = limit;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_store_job *jobs = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_list(eng, &f, &jobs, &n, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, job_json(&jobs[i]));
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(arr);
    } else {
        printf("%-8s %-10s %-12s %-16s %-8s %-19s %s\n", "ID", "STATE", "TYPE", "GUEST", "TRIES",
               "CREATED", "RESULT / ERROR");
        for (size_t i = 0; i < n; i++) {
            const aspen_store_job *j = &jobs[i];
            char when[40], tries[16], what[64];
            cli_format_time(j->created_at_ms, when, sizeof when);
            when[19] = '\0';
            snprintf(tries, sizeof tries, "%d/%d", j->attempts, j->max_attempts);
            one_line(j->error ? j->error : (const char *)j->result, 60, what, sizeof what);
            printf("%-8lld %-10s %-12.12s %-16.16s %-8s %-19s %s\n", (long long)j->id,
                   aspen_store_state_name(j->state), j->type ? j->type : "",
                   j->binary_name ? j->binary_name : "-", tries, when, what);
        }
        if (n == 0)
            printf("(no jobs match)\n");
    }
    aspen_store_jobs_free(jobs, n);
    return 0;
}

/* ---- show --------------------------------------------------------------------------------------- */

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, DB_OPT, {0, 0, 0, 0}};
    const char *db = NULL;
    bool as_json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jhD:", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'D': db = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr, "usage: aspen show ID [--json] [--db PATH]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    if (optind != argc - 1) {
        fprintf(stderr, "usage: aspen show ID [--json] [--db PATH]\n");
        return 2;
    }
    if (cli_parse_id(argv[optind], &id))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_store_job j = {0};
    aspen_store_attempt *att = NULL;
    size_t na = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_get(eng, id, &j, &err);
    if (rc == 0)
        rc = aspen_engine_attempts(eng, id, &att, &na, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        aspen_store_job_clear(&j);
        return 1;
    }
    if (as_json) {
        json_t *o = job_json(&j);
        json_t *arr = json_array();
        for (size_t i = 0; i < na; i++) {
            json_t *a = json_object();
            json_object_set_new(a, "number", json_integer(att[i].number));
            json_object_set_new(a, "engine", json_integer(att[i].engine_id));
            json_object_set_new(a, "outcome", json_string(att[i].outcome));
            json_object_set_new(a, "started_at_ms", json_integer(att[i].started_at_ms));
            json_object_set_new(a, "finished_at_ms", json_integer(att[i].finished_at_ms));
            json_object_set_new(a, "wall_us", json_integer(att[i].wall_us));
            json_object_set_new(a, "exits", json_integer((json_int_t)att[i].exits));
            json_object_set_new(a, "host_calls", json_integer((json_int_t)att[i].host_calls));
            json_object_set_new(a, "pages_dirtied",
                                json_integer((json_int_t)att[i].pages_dirtied));
            json_object_set_new(a, "error", att[i].error ? json_string(att[i].error)
                                                         : json_null());
            json_object_set_new(a, "recovered", json_boolean(att[i].recovered));
            json_array_append_new(arr, a);
        }
        json_object_set_new(o, "attempt_list", arr);
        json_dumpf(o, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(o);
    } else {
        char t1[40], t2[40], t3[40];
        printf("job %lld  %s\n", (long long)j.id, aspen_store_state_name(j.state));
        printf("  type        %s%s\n", j.type, aspen_engine_job_needs_vm(&j) ? " (micro-VM)" : "");
        if (j.binary_name || j.binary_sha256)
            printf("  guest       %s  sha256 %.16s…\n", j.binary_name ? j.binary_name : "-",
                   j.binary_sha256 ? j.binary_sha256 : "-");
        if (j.source_dir)
            printf("  source      %s (built when it runs)\n", j.source_dir);
        printf("  payload     %s\n", j.payload);
        char mem[32];
        if (j.memory_bytes > 0)
            snprintf(mem, sizeof mem, "%lld KiB", (long long)(j.memory_bytes >> 10));
        else
            snprintf(mem, sizeof mem, "default (1 MiB)");
        printf("  attempts    %d of %d   priority %d   timeout %lld ms   memory %s\n",
               j.attempts, j.max_attempts, j.priority, (long long)j.timeout_ms, mem);
        printf("  tags        %s%s\n", j.tags, j.isolation ? "   isolation on" : "");
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
        if (j.cancel_requested)
            printf("  cancel      requested (its worker stops it)\n");
        if (j.result)
            printf("  result      %.*s\n", (int)j.result_size, (const char *)j.result);
        if (j.error)
            printf("  error       %s\n", j.error);
        printf("  logs        %d lines (aspen logs %lld)\n", j.log_count, (long long)j.id);
        for (size_t i = 0; i < na; i++)
            printf("  attempt %d   %-9s %8lld us  %llu exits  %llu host calls  %llu pages%s%s%s\n",
                   att[i].number, att[i].outcome, (long long)att[i].wall_us,
                   (unsigned long long)att[i].exits, (unsigned long long)att[i].host_calls,
                   (unsigned long long)att[i].pages_dirtied, att[i].error ? "  " : "",
                   att[i].error ? att[i].error : "", att[i].recovered ? " (recovered)" : "");
    }
    aspen_store_attempts_free(att, na);
    aspen_store_job_clear(&j);
    return 0;
}

/* ---- logs --------------------------------------------------------------------------------------- */

int cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, DB_OPT, {0, 0, 0, 0}};
    const char *db = NULL;
    bool follow = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "fhD:", opts, NULL)) != -1) {
        switch (c) {
        case 'f': follow = true; break;
        case 'D': db = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: aspen logs ID [--follow] [--db PATH]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    int64_t id;
    if (optind != argc - 1) {
        fprintf(stderr, "usage: aspen logs ID [--follow] [--db PATH]\n");
        return 2;
    }
    if (cli_parse_id(argv[optind], &id))
        return 2;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    int64_t after = 0;
    uint64_t version = 0;
    int rc = 0;
    for (;;) {
        aspen_store_job j = {0};
        aspen_engine_error err = {0};
        if ((rc = aspen_engine_get(eng, id, &j, &err)) != 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            break;
        }
        bool final = aspen_store_state_is_final(j.state);
        aspen_store_job_clear(&j);
        aspen_store_log *l = NULL;
        size_t n = 0;
        if ((rc = aspen_engine_logs(eng, id, after, 0, &l, &n, &err)) != 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            char t[40];
            cli_format_time(l[i].time_ms, t, sizeof t);
            printf("%s  #%d  %s\n", t + 11, l[i].attempt, l[i].line);
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
    return rc ? 1 : 0;
}

/* ---- cancel / rerun / pause / resume ------------------------------------------------------------ */

/* Parses "CMD ID [--db PATH]"; returns 0, or the exit status. */
static int id_command(int argc, char **argv, const char *usage, int64_t *id, const char **db)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, DB_OPT, {0, 0, 0, 0}};
    int c;
    optind = 1;
    *db = NULL;
    while ((c = getopt_long(argc, argv, "hD:", opts, NULL)) != -1) {
        if (c == 'D') {
            *db = optarg;
            continue;
        }
        fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", usage);
        return c == 'h' ? -1 : 2;
    }
    if (!id) {
        if (optind != argc) {
            fprintf(stderr, "usage: %s\n", usage);
            return 2;
        }
        return 0;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    return cli_parse_id(argv[optind], id) ? 2 : 0;
}

int cmd_cancel(int argc, char **argv)
{
    int64_t id;
    const char *db;
    int rc = id_command(argc, argv, "aspen cancel ID [--db PATH]", &id, &db);
    if (rc)
        return rc < 0 ? 0 : rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    bool requested = false;
    aspen_engine_error err = {0};
    rc = aspen_engine_cancel(eng, id, &requested, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (requested)
        printf("job %lld is running: cancel requested; its worker stops it at once (a VM) or within ~50 ms from another process\n",
               (long long)id);
    else
        printf("job %lld cancelled\n", (long long)id);
    return 0;
}

int cmd_rerun(int argc, char **argv)
{
    int64_t id, new_id = 0;
    const char *db;
    int rc = id_command(argc, argv, "aspen rerun ID [--db PATH]", &id, &db);
    if (rc)
        return rc < 0 ? 0 : rc;
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    rc = aspen_engine_rerun(eng, id, &new_id, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    printf("%lld\n", (long long)new_id);
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
    while ((c = getopt_long(argc, argv, "af:hD:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': all = true; break;
        case 'f': filter = optarg; break;
        case 'D': db = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: aspen retry ID [--db PATH]\n"
                    "       aspen retry --failed [--filter 'type:T payload.user:alice ...'] "
                    "[--db PATH]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    char *end = NULL;
    long long id = 0;
    if (!all && optind == argc - 1)
        id = strtoll(argv[optind], &end, 10);
    bool usage_ok = all ? optind == argc : (end && !*end && id > 0 && !filter);
    if (!usage_ok) {
        fprintf(stderr, "usage: aspen retry ID | aspen retry --failed [--filter F] [--db PATH]\n");
        return 2;
    }
    aspen_store_filter f;
    char buf[2048];
    if (all) {
        aspen_store_error se = {0};
        if (aspen_store_filter_parse(filter ? filter : "", &f, buf, sizeof buf, &se) != 0) {
            fprintf(stderr, "error: %s\n", se.msg);
            return 2;
        }
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    aspen_engine_error err = {0};
    int64_t retried = 0;
    int rc = all ? aspen_engine_retry_failed(eng, &f, &retried, &err)
                 : aspen_engine_retry(eng, (int64_t)id, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (all)
        printf("%lld failed job%s queued again\n", (long long)retried, retried == 1 ? "" : "s");
    else
        printf("job %lld queued again\n", id);
    return 0;
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
    rc = aspen_engine_set_paused(eng, paused, &err);
    aspen_engine_close(eng);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    printf("queue %s (every worker on this database)\n", paused ? "paused" : "resumed");
    return 0;
}

int cmd_pause(int argc, char **argv) { return set_paused(argc, argv, true); }
int cmd_resume(int argc, char **argv) { return set_paused(argc, argv, false); }
