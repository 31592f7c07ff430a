/* cli/jobs_common.c — what the job subcommands (submit, jobs, show, logs, cancel, rerun, worker,
 * bench engine, demo) share: where the database lives and opening an engine on it.
 *
 * The database is --db PATH, else $ASPEN_DB, else $XDG_DATA_HOME/aspen/aspen.db, else
 * ~/.local/share/aspen/aspen.db; the directory of the default is created when missing.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cli_db_path(const char *given, char *out, size_t cap)
{
    if (given && *given) {
        snprintf(out, cap, "%s", given);
        return 0;
    }
    const char *env = getenv("ASPEN_DB");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    char dir[PATH_MAX];
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/aspen", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.local/share/aspen", home);
    else {
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

int cli_open_engine(const char *db, int workers, aspen_engine **out)
{
    static char path[PATH_MAX];
    if (cli_db_path(db, path, sizeof path) != 0)
        return -1;
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = path;
    cfg.workers = workers;
    cfg.guest_dir = cli_guest_dir();
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, out, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s ? s : "", &end, 10);
    if (!s || !*s || *end || errno || v <= 0) {
        cli_error("'%s' is not a job id (a positive number)", s ? s : "");
        return -1;
    }
    *id = v;
    return 0;
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
