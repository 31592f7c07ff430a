/* cli/jobs_common.c — what the job subcommands (submit, jobs, show, logs, cancel, rerun, worker,
 * bench engine, demo) share: where the database lives and opening an engine on it.
 *
 * The database is --db PATH, else $ASPEN_DB, else $XDG_DATA_HOME/aspen/aspen.db, else
 * ~/.local/share/aspen/aspen.db. The default (and its directory) is created on first use; a path
 * the user gave must exist unless --create is given, because a typo in --db used to create an
 * empty database silently and people thought their jobs had vanished.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A database the user named: it must exist (or --create, in a directory that exists). */
static int check_given(const char *path, const char *how)
{
    if (aspen_store_name_is_postgres(path))
        return 0; /* a server, not a file: opening it says what is wrong (docs/STORE.md) */
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            cli_error("the database %s (%s) is a directory: give the path of a database file",
                      path, how);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT && errno != ENOTDIR)
        return 0; /* e.g. EACCES: opening it says what is wrong */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    bool dir_ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    if (!cli_create) {
        cli_error("the database %s (%s) does not exist%s: check the path, or add --create to "
                  "make a new database there",
                  path, how, dir_ok ? "" : ", nor its directory");
        return -1;
    }
    if (!dir_ok) {
        cli_error("cannot create the database %s (%s): its directory %s does not exist "
                  "(create it first)",
                  path, how, dir);
        return -1;
    }
    return 0;
}

/* The user's data directory, where the default database lives; false when there is none. */
static bool default_dir(char *dir, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(dir, cap, "%s/aspen", xdg);
    else if (home && *home)
        snprintf(dir, cap, "%s/.local/share/aspen", home);
    else
        return false;
    return true;
}

const char *cli_db_arg(const char *db, char *out, size_t cap)
{
    out[0] = '\0';
    if (!db || !*db || cap < 16)
        return out;
    char dir[PATH_MAX], def[PATH_MAX + 16], real[PATH_MAX], redacted[PATH_MAX];
    const char *shown = db;
    if (aspen_store_name_is_postgres(db)) {
        /* never a password in printed text (it ends up in scrollback, logs, bug reports): ***
         * stands for it, and the pasted command then takes it from ~/.pgpass or PGPASSWORD */
        aspen_store_name_shown(db, redacted, sizeof redacted);
        shown = redacted;
    } else {
        /* an SQLite file: as an absolute path, so the command works from any directory */
        if (realpath(db, real))
            shown = real;
        if (default_dir(dir, sizeof dir)) {
            snprintf(def, sizeof def, "%s/aspen.db", dir);
            char rdef[PATH_MAX];
            if (strcmp(shown, def) == 0 || (realpath(def, rdef) && strcmp(shown, rdef) == 0))
                return out; /* the default: pasted as printed, it opens this one */
        }
    }
    /* ' --db '…'': single quotes keep every byte but ' itself, written '\'' */
    size_t n = (size_t)snprintf(out, cap, " --db '");
    const char *p = shown;
    for (; *p && n + 6 < cap; p++) {
        if (*p == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *p;
        }
    }
    if (*p) { /* too long to quote here: a cut path would open another database */
        snprintf(out, cap, " --db DB");
        return out;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return out;
}

int cli_db_path(const char *given, char *out, size_t cap)
{
    if (given) {
        if (!*given) {
            cli_error("--db needs a path (leave it out for the default database)");
            return -1;
        }
        snprintf(out, cap, "%s", given);
        return check_given(out, "--db");
    }
    const char *env = getenv("ASPEN_DB");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return check_given(out, "$ASPEN_DB");
    }
    char dir[PATH_MAX];
    if (!default_dir(dir, sizeof dir)) {
        cli_error("no database given and neither $XDG_DATA_HOME nor $HOME is set: "
                  "use --db PATH or set ASPEN_DB");
        return -1;
    }
    if (aspen_engine_mkdirs(dir) != 0) {
        cli_error("cannot create the data directory %s: %s (use --db PATH)", dir,
                strerror(errno));
        return -1;
    }
    snprintf(out, cap, "%s/aspen.db", dir);
    return 0;
}

int64_t cli_lease_ms;
int cli_recover_ms;
const char *cli_queues[16];
size_t cli_n_queues;

static int open_engine(const char *db, int workers, bool reading, aspen_engine **out)
{
    static char path[PATH_MAX];
    if (cli_db_path(db, path, sizeof path) != 0)
        return -1;
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = path;
    cfg.workers = workers;
    /* A command that only reads creates no schema on a PostgreSQL database unless --create (an
     * SQLite path the user gave must exist already: check_given). */
    cfg.no_create = reading && !cli_create && aspen_store_name_is_postgres(path);
    cfg.guest_dir = cli_guest_dir();
    if (cli_lease_ms > 0) {
        cfg.lease_ms = cli_lease_ms;
        /* still a heartbeat about once a second, more often for a short lease */
        cfg.renew_ms = cli_lease_ms / 5 < 1000 ? (int)(cli_lease_ms / 5) : 1000;
    }
    if (cli_recover_ms > 0)
        cfg.recover_ms = cli_recover_ms;
    cfg.queues = cli_queues;
    cfg.n_queues = cli_n_queues;
    /* the engine's messages name commands too ("aspen show 7 lists them"): with this --db */
    static char dba[4 * PATH_MAX + 16];
    cfg.cmd_args = cli_db_arg(path, dba, sizeof dba);
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, out, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_store_open(const char *path, const aspen_store_options *opts, aspen_store **out,
                   aspen_store_error *se)
{
    int code = aspen_store_open(path, opts, out, se);
    if (code)
        return code;
    char dba[4 * PATH_MAX + 16];
    if ((code = aspen_store_set_cmd_args(*out, cli_db_arg(path, dba, sizeof dba), se)) != 0) {
        aspen_store_close(*out);
        *out = NULL;
    }
    return code;
}

int cli_open_engine(const char *db, int workers, aspen_engine **out)
{
    return open_engine(db, workers, false, out);
}

int cli_open_engine_reading(const char *db, aspen_engine **out)
{
    return open_engine(db, 0, true, out);
}

int cli_queue_lookup(const char *db_path, const char *queue, aspen_store_error *se)
{
    if (!queue || !*queue || strcmp(queue, "default") == 0)
        return 0;
    /* a handle of its own, read-only: the engine's is busy with its threads */
    aspen_store_options so = {.read_only = true};
    aspen_store *st = NULL;
    int code = cli_store_open(db_path, &so, &st, se);
    if (code == 0)
        code = aspen_store_queue_exists(st, queue, se);
    aspen_store_close(st);
    return code;
}

int cli_queue_known(const char *db_path, const char *queue, const char *opt, const char *by)
{
    /* the default queue is always there; any other must exist already: a typo in --queue used
     * to make a new queue silently, whose jobs no `aspen worker --queues` served */
    aspen_store_error se = {0};
    int code = cli_queue_lookup(db_path, queue, &se);
    if (code == ASPEN_STORE_ENOTFOUND)
        cli_error("%s: %s, or add --create-queue to make it by %s", opt, se.msg, by);
    else if (code)
        cli_error("%s: %s", opt, se.msg);
    return code ? -1 : 0;
}

int cli_queue_declare(const char *db_path, const char *queue, aspen_store_error *se)
{
    if (!queue || !*queue || strcmp(queue, "default") == 0)
        return 0;
    aspen_store *st = NULL;
    int code = cli_store_open(db_path, NULL, &st, se);
    if (code == 0 && aspen_store_queue_exists(st, queue, se) == ASPEN_STORE_ENOTFOUND)
        code = aspen_store_queue_set(st, queue, 0, 0, 0, 0, aspen_store_now_ms(), se);
    aspen_store_close(st);
    return code;
}

int cli_parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    s = s ? s : "";
    long long v = strtoll(s, &end, 10);
    /* say which of the ways it is wrong, so the fix is obvious (a pasted "#12", "12abc", a
     * timestamp pasted where an id goes) */
    if (!*s)
        cli_error("an empty job id: ids are whole numbers from 1 (aspen jobs lists them)");
    else if (*end || end == s)
        cli_error("'%s' is not a job id: ids are whole numbers from 1 (aspen jobs lists them)", s);
    else if (errno == ERANGE && v > 0)
        cli_error("'%s' is not a job id: too large (ids are whole numbers from 1 to %lld)", s,
                  (long long)INT64_MAX);
    else if (v <= 0)
        cli_error("'%s' is not a job id: ids start at 1 (aspen jobs lists them)", s);
    else {
        *id = v;
        return 0;
    }
    return -1;
}

int cli_id_arg(const char *s, int64_t *id, const char *usage)
{
    if (cli_parse_id(s, id) == 0)
        return 0;
    cli_usage_line(usage);
    return 2;
}

int cli_filter_arg(const char *text, aspen_store_filter *f, char *buf, size_t cap)
{
    aspen_store_error se = {0};
    if (aspen_store_filter_parse(text, f, buf, cap, &se) == 0)
        return 0;
    cli_error("%s", se.msg);
    return 2;
}

void cli_filter_queue_note(const char *db_path, const aspen_store_filter *f)
{
    /* queue:NAME is not checked when parsed (a removed queue's finished jobs keep its name, and
     * queue:NAME still finds them), so a typo matched nothing without a word (trial 10). Only
     * once nothing matched is the queue looked up: an unknown one gets the store's "did you mean". */
    if (!f || !f->queue)
        return;
    aspen_store_error se = {0};
    if (cli_queue_lookup(db_path, f->queue, &se) != ASPEN_STORE_ENOTFOUND)
        return;
    fputs("aspen: the filter's queue:", stderr);
    cli_puts(stderr, f->queue);
    fputs(" matched nothing: ", stderr);
    cli_puts(stderr, se.msg);
    fputc('\n', stderr);
}

void cli_usage_line(const char *usage)
{
    /* usage may be a whole help text: its first line is the hint */
    const char *u = strncmp(usage, "usage: ", 7) == 0 ? usage + 7 : usage;
    fprintf(stderr, "usage: %.*s\n", (int)strcspn(u, "\n"), u);
}

int cli_args(int argc, char **argv, int first, int min, int max, const char *what,
             const char *usage)
{
    int n = argc - first;
    if (n < min) {
        if (n == 0)
            cli_error("aspen %s needs %s", argv[0], what);
        else
            cli_error("aspen %s needs %s: %d argument%s given, %d wanted", argv[0], what, n,
                      n == 1 ? "" : "s", min);
    } else if (max >= 0 && n > max) {
        if (max == 0)
            cli_error("unexpected argument '%s': aspen %s takes no arguments, only options",
                      argv[first], argv[0]);
        else
            cli_error("unexpected argument '%s': aspen %s takes %s", argv[first + max], argv[0],
                      what);
    } else {
        return 0;
    }
    cli_usage_line(usage);
    return 2;
}

void cli_format_time(int64_t ms, char *out, size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
    if (n && n + 5 < cap)
        snprintf(out + n, cap - n, ".%03d", (int)(ms % 1000));
}

bool cli_spec_in_vm(const aspen_engine_job_spec *spec)
{
    bool in_vm = spec->isolation;
    for (size_t i = 0; i < spec->n_tags && !in_vm; i++)
        in_vm = strcmp(spec->tags[i], "requires_isolation") == 0;
    return in_vm;
}

int cli_guest_with_in_process_type(const aspen_engine_job_spec *spec, const char *guest_word)
{
    if (!spec->type || !aspen_engine_type_in_process(spec->type) || cli_spec_in_vm(spec) ||
        (!spec->guest && !spec->source_dir))
        return 0;
    char t[200];
    cli_cell_str(spec->type, 40, t, sizeof t);
    const char *what = spec->source_dir ? "--source" : guest_word;
    /* --isolation runs the guest in a micro-VM; the type is then only the job's label */
    cli_error("--type %s runs in the worker with no guest: drop %s, or drop --type to run the "
              "guest (or add --isolation if you meant to run the guest in a micro-VM under the "
              "type %s)",
              t, what, t);
    return -1;
}

int cli_type_runnable(aspen_engine *eng, const aspen_engine_job_spec *spec, bool any_type)
{
    if (!spec->type || any_type)
        return 0;
    /* with isolation (or the tag) the job runs in a micro-VM whatever its type is called */
    if (cli_spec_in_vm(spec))
        return 0;
    const char *names[64];
    size_t n = aspen_engine_handler_types(eng, names, 64);
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], spec->type) == 0)
            return 0;
    const char *near = cli_nearest(spec->type, names, n);
    char list[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s%s", i ? ", " : "", names[i],
                         strcmp(names[i], "vm_execute") == 0 ? " (a GUEST, in a micro-VM)" : "");
        if (w > 0)
            len += (size_t)w;
    }
    /* The worker would fail it, after it waited in the queue, saying only "register one with
     * aspen_engine_register_handler": say it now, and what to do in either case. Custom
     * handlers live only in the programs that register them (nothing in the database lists
     * them), so a program of one's own is the --any-type case. */
    cli_error("no handler for job type '%s' in aspen%s%s%s: the types aspen's workers run are %s. "
              "A type of your own runs only in a worker program that registers it with "
              "aspen_engine_register_handler (the C API, engine/include/aspen_engine.h); if "
              "one serves this database, add --any-type to submit it anyway",
              spec->type, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "",
              list);
    return -1;
}

int cli_memory_opt(const char *text, int64_t *bytes)
{
    aspen_engine_error err = {0};
    if (aspen_engine_memory_parse(text, bytes, &err) == 0)
        return 0;
    cli_error("--memory: %s", err.msg);
    return 2;
}
